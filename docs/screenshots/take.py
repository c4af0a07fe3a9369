"""Retake the README screenshots from the real app, as a person would see it.

    .venv/bin/python docs/screenshots/take.py            # writes docs/screenshots/*.png
    .venv/bin/python docs/screenshots/take.py --out DIR  # somewhere else

Starts `streamlit run app.py` on a free port with a fresh, empty run store (KERAS_LAB_RUNS in a temporary
folder, deleted afterwards), drives it with Playwright in the system Chromium (/usr/bin/chromium, or
$CHROMIUM; headless, viewport 1400x1000, CSS pixels) and saves one viewport screenshot per page:

    home.png      Home
    data.png      Explore data: digits, the Images tab (samples of a class, mean image per class)
    model.png     Build a model: the Small CNN preset chosen on digits, its layers with shapes and parameters
    train.png     Train: a 15-epoch Small CNN run on digits (Adam), caught while running after 4 epochs: the
                  training process is paused (SIGSTOP) for the picture, as a digits epoch takes half a second
    evaluate.png  Evaluate: that run, its commonest confusion clicked in the matrix, those digits below
                  (1400x1120: the matrix and the digits do not fit in 1000 pixels)
    runs.png      Compare runs: the runs table, that run and a 6-epoch SGD run selected, loss curves overlaid
    backprop.png  Backpropagation: the article's 3-2-1 network, its editor and diagram

Two trainings run on the way; on 2 busy cores the whole script takes 2-5 minutes. Before each screenshot it
waits for Streamlit's idle marker and for every chart in view to be drawn, and prints each file and its
size. Look at the PNGs before committing them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.e2e.server import ServerError, chromium, start_server, stop_server  # noqa: E402 - after the path
from tests.helpers import wait_until  # noqa: E402

IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
VIEWPORT = {"width": 1400, "height": 1000}
RUN_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}")

# True when every plotly chart and graphviz diagram inside the viewport has been drawn, and no spinner,
# skeleton or progress-only placeholder is in view.
_DRAWN = """() => {
  const inView = el => { const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && r.bottom > 0 && r.top < innerHeight; };
  const plots = [...document.querySelectorAll('[data-testid="stPlotlyChart"]')].filter(inView);
  if (!plots.every(p => p.querySelector('.js-plotly-plot .main-svg') && p.querySelector('.js-plotly-plot')._fullLayout))
    return false;
  const graphs = [...document.querySelectorAll('[data-testid="stGraphVizChart"]')].filter(inView);
  if (!graphs.every(g => g.querySelector('svg'))) return false;
  const busy = [...document.querySelectorAll('[data-testid="stSpinner"], [data-testid="stSkeleton"]')].filter(inView);
  return busy.length === 0;
}"""

# [epochs on the live loss chart, the progress bar's text] of the Train page, read at one moment.
_LIVE = """() => {
  const plots = [...document.querySelectorAll('.js-plotly-plot')];
  const loss = plots.find(p => p.layout && p.layout.title && String(p.layout.title.text).includes('loss per epoch'));
  const bar = document.querySelector('[data-testid="stProgress"]');
  return [loss ? loss.data[0].x.length : 0, bar ? bar.innerText : ''];
}"""


def epochs_done(runs: Path, run_id: str) -> int:
    """Epoch lines the training has written to the run's metrics.jsonl so far."""
    try:
        lines = (runs / run_id / "metrics.jsonl").read_text().splitlines()
    except OSError:
        return 0
    count = 0
    for line in lines:
        with contextlib.suppress(ValueError):  # a line being written
            count += json.loads(line).get("kind") == "epoch"
    return count


def _training_processes(server_pid: int) -> list[int]:
    """The server's spawned training workers (multiprocessing's spawn_main), found through /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [server_pid]
    while todo:
        for child in children.get(todo.pop(), []):
            todo.append(child)
            try:
                if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                    found.append(child)
            except OSError:
                pass
    return found


@contextlib.contextmanager
def training_paused(server_pid: int):
    """Freeze the training workers (SIGSTOP) so the Train page holds still for its picture; SIGCONT after.
    On a busy machine a digits epoch takes half a second and the browser lags seconds behind the server:
    without the pause the run ends before the page shows "a few epochs"."""
    pids = _training_processes(server_pid)
    if not pids:
        print("WARNING: no training process found to pause; train.png may show a later epoch", flush=True)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield pids
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


class Shooter:
    """The browser tab and the helpers that wait the way a patient person would."""

    def __init__(self, page, base_url: str, out: Path, runs: Path) -> None:
        self.page, self.url, self.out, self.runs = page, base_url, out, runs

    def idle(self, settle_ms: int = 600) -> None:
        """Let a rerun begin, then wait for Streamlit's idle marker (twice: a rerun may chain another)."""
        for _ in range(2):
            self.page.wait_for_timeout(settle_ms)
            self.page.wait_for_selector(IDLE, timeout=120_000)

    def until(self, condition, what: str, deadline_s: float = 300.0):
        """wait_until, polling in the page's own event loop."""
        return wait_until(condition, what, deadline_s, pause=lambda s: self.page.wait_for_timeout(s * 1000),
                          every_s=0.4)

    def nav(self, name: str) -> None:
        self.page.locator('[data-testid="stSidebarNavLink"]', has_text=name).first.click()
        self.idle()

    def drawn(self) -> None:
        self.until(lambda: self.page.evaluate(_DRAWN), "charts in view to be drawn", 120)
        self.page.wait_for_timeout(800)  # plotly's transitions and fonts

    def shot(self, name: str, *, still_running: bool = False) -> None:
        """Wait for idle and drawn charts, move the mouse off any chart (no hover toolbar), save."""
        self.page.mouse.move(5, VIEWPORT["height"] - 5)
        if not still_running:
            self.idle()
        self.drawn()
        self.page.wait_for_selector(IDLE, timeout=120_000)
        exceptions = self.page.locator('[data-testid="stException"]')
        if exceptions.count():
            raise RuntimeError(f"{name}: the page shows an exception: {exceptions.first.inner_text()[:500]}")
        path = self.out / name
        self.page.screenshot(path=str(path), scale="css")
        print(f"{path}  {path.stat().st_size / 1024:.0f} KB", flush=True)

    def scroll_to(self, locator, top: int = 70) -> None:
        """Put `locator` near the top of the scrolling main area (Streamlit scrolls a div, not the window)."""
        locator.first.scroll_into_view_if_needed()
        locator.first.evaluate(f"""el => {{
            let box = el.parentElement;
            while (box && !(box.scrollHeight > box.clientHeight && getComputedStyle(box).overflowY !== 'visible'))
                box = box.parentElement;
            box = box || document.scrollingElement;
            box.scrollTop += el.getBoundingClientRect().top - {top};
        }}""")
        self.page.wait_for_timeout(500)

    def pick(self, label: str, value: str) -> None:
        """Choose `value` in the selectbox labelled `label` by typing it, as a person would."""
        self.page.get_by_test_id("stSelectbox").filter(has_text=label).first.click()
        self.page.keyboard.type(value)
        self.page.keyboard.press("Enter")
        self.idle()

    # --- the Train page --------------------------------------------------------------------------

    def badge(self) -> str:
        heading = self.page.locator("h4", has_text="Run ")
        return heading.first.inner_text() if heading.count() else ""

    def live(self) -> tuple[int, int, bool]:
        """(epochs on the loss chart, epoch on the progress bar, still running) of the watched run."""
        points, text = self.page.evaluate(_LIVE)
        found = re.search(r"epoch (\d+)/", text or "")
        return points, int(found.group(1)) if found else 0, "running" in self.badge()

    def settled(self, at_least: int = 3) -> None:
        """Wait until the Train page shows the same (epochs charted, epoch in progress) for 3 s, with at
        least `at_least` epochs charted: with the training paused, the page has then caught up with it."""
        last, since = None, time.monotonic()
        end = since + 120
        while time.monotonic() < end:
            now = self.live()
            if now != last:
                last, since = now, time.monotonic()
            elif now[2] and now[0] >= at_least and time.monotonic() - since >= 3:
                return
            self.page.wait_for_timeout(400)
        raise TimeoutError(f"gave up waiting for the Train page to settle (last seen: {last})")

    def start_run(self, optimizer: str, epochs: int, batch_size: int, learning_rate: float) -> str:
        self.nav("Train")
        self.pick("Optimizer", optimizer)
        for label, value in (("Learning rate", learning_rate), ("Batch size", batch_size), ("Epochs", epochs)):
            box = self.page.get_by_label(label, exact=True)
            box.fill(str(value))
            box.press("Tab")
        before = set(os.listdir(self.runs))
        self.page.get_by_role("button", name="Start training").click()
        run_id = wait_until(lambda: next((n for n in os.listdir(self.runs) if RUN_ID.fullmatch(n) and n not in before),
                                         None), "the new run's folder", 120)
        print(f"started {run_id}: {optimizer}, learning rate {learning_rate}, batch {batch_size}, {epochs} epochs",
              flush=True)
        return run_id

    def wait_finished(self, run_id: str) -> None:
        self.until(lambda: run_id in self.badge() and re.search(r"completed|stopped", self.badge()),
                   f"run {run_id} to finish", 600)
        self.idle()


def take(out: Path) -> None:
    import numpy as np
    from playwright.sync_api import sync_playwright

    from core.evaluation import worst_cell
    from core.runs import RunStore

    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="keras-lab-shots-"))
    runs, log = tmp / "runs", tmp / "streamlit.log"
    runs.mkdir()
    proc, url = start_server(runs, log)
    print(f"server {url}, runs in {runs}", flush=True)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium(), headless=True, args=["--no-sandbox"])
            context = browser.new_context(viewport=VIEWPORT)
            page = context.new_page()
            page.set_default_timeout(60_000)
            s = Shooter(page, url, out, runs)

            # Home
            page.goto(url)
            s.idle()
            page.get_by_text("1. Explore data").wait_for()
            s.shot("home.png")

            # Explore data: digits, the sample images of a class and the mean images
            s.nav("Explore data")
            page.locator('[data-testid="stMetricValue"]').first.wait_for()
            page.get_by_role("tab", name="Images").click()
            s.idle()
            page.get_by_text("Samples of class").first.wait_for()
            s.shot("data.png")

            # Build a model: the Small CNN preset
            s.nav("Build a model")
            s.pick("Start from a preset", "Small CNN")
            page.get_by_role("button", name="Use preset").click()
            s.idle()
            page.get_by_text("What you built").wait_for()
            s.shot("model.png")

            # Train: a Small CNN on digits, caught while running with a few epochs on the charts
            first = s.start_run("Adam", 15, batch_size=32, learning_rate=0.001)
            wait_until(lambda: epochs_done(runs, first) >= 4, "four epochs of the first run", 600)
            with training_paused(proc.pid) as pids:
                s.settled()  # the page catches up with the frozen run
                s.shot("train.png", still_running=True)
                points, epoch, running = s.live()
            print(f"train.png: {points} epochs on the loss chart, progress at epoch {epoch}, running: {running} "
                  f"(training paused: {pids})", flush=True)
            s.wait_finished(first)

            # A second, shorter run with another optimizer, for Compare runs
            second = s.start_run("SGD with momentum", 6, batch_size=32, learning_rate=0.02)
            s.wait_finished(second)

            # Evaluate the first run: click its commonest confusion in the matrix
            s.nav("Evaluate")
            s.pick("Run (completed or stopped)", first)
            page.get_by_text("Confusion matrix").first.wait_for()
            pred = RunStore(runs).read_predictions(first)
            n = pred["probs"].shape[1]
            cm = np.bincount(pred["y_true"] * n + pred["probs"].argmax(1), minlength=n * n).reshape(n, n)
            t, p = worst_cell(cm) or (0, 0)
            cells = page.locator('[data-testid="stPlotlyChart"] .scatterlayer path.point')
            for _ in range(3):  # the chart re-mounts after each rerun: a click landing mid-render is retried
                s.idle()
                cells.nth(t * n + p).click(force=True)
                s.idle()
                boxes = page.get_by_test_id("stSelectbox")
                shown = tuple(boxes.filter(has_text=label).locator("input").input_value()
                              for label in ("True class", "Predicted class"))
                if shown == (str(t), str(p)):
                    break
            page.get_by_text(re.compile(f"True {t} → predicted {p}: ")).wait_for()
            # a taller window for this one: the matrix and the digits of the clicked cell together
            page.set_viewport_size({"width": VIEWPORT["width"], "height": 1120})
            s.scroll_to(page.get_by_text("Confusion matrix", exact=True), top=24)
            s.shot("evaluate.png")
            page.set_viewport_size(VIEWPORT)

            # Compare runs: both runs selected, learning curves overlaid
            s.nav("Compare runs")
            page.get_by_test_id("stMultiSelect").filter(has_text="Selected runs").click()
            for run_id in (first, second):
                page.keyboard.type(run_id)
                page.keyboard.press("Enter")
                s.idle()
            page.keyboard.press("Escape")
            page.evaluate("document.activeElement && document.activeElement.blur()")  # no focus ring in the picture
            s.idle()
            page.get_by_role("tab", name="Learning curves").wait_for()
            s.scroll_to(page.get_by_test_id("stDataFrame").first, top=16)  # the runs table, then the comparison
            s.shot("runs.png")

            # Backpropagation
            s.nav("Backpropagation")
            page.locator('[data-testid="stGraphVizChart"] svg >> visible=true').first.wait_for()
            s.shot("backprop.png")

            context.close()
            browser.close()
    finally:
        stop_server(proc)
        if "Traceback" in log.read_text():
            print(f"the server printed a traceback:\n{log.read_text()}", file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent,
                        help="folder for the PNGs (default: docs/screenshots)")
    try:
        take(parser.parse_args().out.resolve())
    except ServerError as exc:
        sys.exit(str(exc))


if __name__ == "__main__":
    main()
