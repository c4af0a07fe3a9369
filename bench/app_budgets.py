"""The app's budgets, measured on the real server in headless Chromium.

Docs: docs/architecture.md, 'Budgets'; the figures are in README.md, 'Speed and memory'.

One run of `streamlit run app.py` (free port, its own run store in a temp folder, no file watcher),
driven by Playwright in the system Chromium, in this order:

1. Cold start. The browser is up first; the clock starts when the server process is started. Printed:
   process start -> health endpoint answers, process start -> home rendered, and first page request ->
   home rendered (the server is up but has run no script yet: the ">= 2 s from a cold server" budget).
   "Rendered" means Streamlit's idle marker ([data-testid=stApp][data-test-script-state=notRunning]),
   the document title containing "Keras Lab" and the home page's "Keras Lab" heading visible. A second,
   fresh tab gives the warm figure. The server's CPU time (utime + stime from /proc) spent on that first
   request is printed too: unlike the wall times, it hardly moves with machine load.
2. No TensorFlow for pages that need no model. After home, Data (digits, then iris, then back to
   digits), Compare runs and FAQ, the server's /proc/<pid>/maps is searched for TensorFlow's shared
   libraries (libtensorflow*, _pywrap_tensorflow*): an independent check that nothing imported it.
   RSS after each page is printed (server process plus any children, from /proc/<pid>/status VmRSS).
3. Memory while one run trains and three visitors browse. Three more browser contexts (a helper process:
   Playwright's sync API is one thread) open the app and go round Explore data -> Compare runs -> FAQ
   until the run has finished. Then Model page: preset "Article CNN" (adapted to 8x8 digits, the default
   data) -> Use preset; Train page: epochs -> Start training. A thread samples RSS every 0.2 s from the
   Model page until the run has finished: the server process and the training worker processes (its
   children, `multiprocessing` spawn; the waiting one too) are summed and also printed apart (goal: the
   whole app <= 1.2 GB with three sessions on the default data). Both import TensorFlow, whose ~0.5 GB
   of shared-library pages RSS counts in each; so once a second the whole app is also measured from
   /proc/<pid>/smaps with each mapped file counted once (what the machine, or a container's memory
   limit, actually holds for them).
4. Epoch end -> visible on the live chart. A thread polls runs/<id>/metrics.jsonl at 20 Hz; an epoch's
   end time is the file's mtime when the epoch line was the only new line since the last poll, else
   the time it was seen. The main thread polls the "loss per epoch" Plotly chart's number of points in
   the page at 20 Hz. Latency = first time the page shows epoch N - time epoch N was written; median and
   max are printed (budget 1.5 s), for the run above (three visitors browsing) and for a second run
   trained alone. The page refreshes once a second, so ~0.5 s median is expected.
5. Click -> first batch on the page: from the click on Start training to the progress bar showing a
   batch done ("batch N/M", N >= 1), for the first run (cold: the server starts the worker process,
   which imports TensorFlow, on the first Start) and for the second run (warm: the worker that replaced
   the first run's has imported TensorFlow; the time it took to get ready after the first run is printed
   too). The page polls once a second, so this includes up to 1 s of polling.

Machine load (other users, other benchmarks) slows all of these; load averages are printed with them.

    .venv/bin/python bench/app_budgets.py [--epochs 30] [--warm-epochs 5] [--visitors 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.runs import is_run_id  # noqa: E402 - a run folder's name, not the store's temporary folders
from tests.e2e.server import chromium, launch_server, stop_server, wait_healthy  # noqa: E402

TF_LIBS = re.compile(r"libtensorflow|_pywrap_tensorflow")
GB = 1024**3

def load_text() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


# ---- /proc readings -----------------------------------------------------------------------------------

def descendants(pid: int) -> list[int]:
    """pid and every process below it (Streamlit does not fork, but a future version might)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            pass  # a child that has just exited
    return total


def memory_once(pids: list[int]) -> int:
    """Bytes resident for the processes with each file counted once: their anonymous memory (heap, stacks:
    RssAnon-like) plus, per mapped file, the largest resident size any of them has of it. The server and
    the worker map the same TensorFlow libraries (~0.5 GB of file pages): RSS counts them in both, the
    machine -- and a container's memory limit -- holds them once. Everything below the app (Chromium,
    other users) is left out, unlike PSS, which splits shared pages with whatever else maps them."""
    anon, files = 0, {}
    for p in pids:
        mine: dict[str, int] = {}
        try:
            with open(f"/proc/{p}/smaps") as f:
                path = ""
                for line in f:
                    head = line.split(None, 6)
                    if "-" in head[0] and len(head) >= 5 and ":" in head[3]:  # a mapping's header line
                        path = head[5].strip() if len(head) > 5 else ""
                    elif head[0] == "Rss:":
                        kb = int(head[1])
                        if path.startswith("/") and not path.startswith("/dev/"):
                            mine[path] = mine.get(path, 0) + kb
                        else:
                            anon += kb
        except (OSError, ValueError, IndexError):
            continue  # a child that has just exited
        for path, kb in mine.items():
            files[path] = max(files.get(path, 0), kb)
    return (anon + sum(files.values())) * 1024


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of the processes: a load-independent companion to the wall times."""
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        except (OSError, IndexError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def tf_libraries(pids: list[int]) -> set[str]:
    found: set[str] = set()
    for p in pids:
        try:
            with open(f"/proc/{p}/maps") as f:
                for line in f:
                    if TF_LIBS.search(line):
                        found.add(line.split()[-1].rsplit("/", 1)[-1])
        except OSError:
            pass
    return found


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def split_tree(server: int) -> tuple[list[int], list[int]]:
    """(training worker processes: multiprocessing-spawned children, the waiting one too; other children)."""
    workers, others = [], []
    for pid in descendants(server)[1:]:
        (workers if "multiprocessing.spawn" in cmdline(pid) else others).append(pid)
    return workers, others


class RssSampler(threading.Thread):
    """RSS of the server, its training workers and any other children every `every_s` seconds."""

    def __init__(self, pid: int, every_s: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.every_s = pid, every_s
        self.samples: list[tuple[float, int, int, int]] = []  # (time, server, workers, other children)
        self.once: list[tuple[float, int]] = []  # (time, memory_once of the whole app), every second
        self.done = threading.Event()

    def run(self) -> None:
        workers, others = split_tree(self.pid)
        next_tree = next_once = time.monotonic()
        while not self.done.is_set():
            if time.monotonic() >= next_tree:  # rescan: a worker ends after each run, a fresh one starts
                (workers, others), next_tree = split_tree(self.pid), time.monotonic() + 0.5
            self.samples.append((time.time(), rss_bytes([self.pid]), rss_bytes(workers), rss_bytes(others)))
            if time.monotonic() >= next_once:  # /proc/<pid>/smaps is slower to read: once a second
                self.once.append((time.time(), memory_once([self.pid, *workers, *others])))
                next_once = time.monotonic() + 1.0
            self.done.wait(self.every_s)

    @property
    def peak_sample(self) -> tuple[float, int, int, int]:
        return max(self.samples, key=lambda s: s[1] + s[2] + s[3], default=(0.0, 0, 0, 0))

    def peak(self, part: int) -> int:
        return max((s[part] for s in self.samples), default=0)


class EpochWatcher(threading.Thread):
    """Polls the run store for the newest run's metrics.jsonl at 20 Hz; records when each epoch line lands."""

    def __init__(self, runs: Path) -> None:
        super().__init__(daemon=True)
        self.runs = runs
        self.before = {p.parent.name for p in runs.glob("*/config.json")}  # earlier runs: not this one
        self.written: dict[int, float] = {}  # epoch -> wall time its line was written
        self.fit_time: dict[int, float] = {}  # epoch -> the record's own "time" (seconds since the fit began)
        self.exact = 0  # epochs timed by the file's mtime (the rest: by the poll that saw them)
        self.run_id: str | None = None
        self.done = threading.Event()

    def run(self) -> None:
        path, offset, buf = None, 0, b""
        while not self.done.is_set():
            if self.run_id is None:
                found = sorted(p.parent.name for p in self.runs.glob("*/config.json")
                               if p.parent.name not in self.before and is_run_id(p.parent.name))  # not .tmp-*
                if found:
                    self.run_id = found[-1]
            if path is None and self.run_id is not None and (self.runs / self.run_id / "metrics.jsonl").exists():
                path = self.runs / self.run_id / "metrics.jsonl"
            if path is not None:
                seen = time.time()
                try:
                    mtime = path.stat().st_mtime
                    with open(path, "rb") as f:
                        f.seek(offset)
                        chunk = f.read()
                except OSError:
                    chunk = b""
                if chunk:
                    offset += len(chunk)
                    buf += chunk
                    *lines, buf = buf.split(b"\n")
                    lines = [json.loads(line) for line in lines if line.strip()]
                    for rec in lines:
                        if rec.get("kind") == "epoch":
                            only = len(lines) == 1 and mtime <= seen
                            self.written[int(rec["epoch"])] = mtime if only else seen
                            self.fit_time[int(rec["epoch"])] = float(rec.get("time") or 0.0)
                            self.exact += only
            self.done.wait(0.05)


# ---- the browser --------------------------------------------------------------------------------------

def wait_idle(page, timeout_ms: int = 120_000) -> None:
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout_ms)


def wait_home(page) -> None:
    wait_idle(page)
    page.wait_for_function("document.title.includes('Keras Lab')", timeout=120_000)
    page.get_by_role("heading", name="Keras Lab").first.wait_for(timeout=120_000)
    wait_idle(page)


def nav(page, title: str) -> None:
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=title, exact=True).click()
    page.wait_for_timeout(200)  # the click starts a script run: let the marker leave "notRunning"
    wait_idle(page)


def pick(page, label: str, option: str) -> None:
    """Choose `option` (a regex on the option's text) in the selectbox labelled `label`."""
    box = page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first
    box.locator('[role="combobox"], input').first.click()
    page.get_by_role("option", name=re.compile(option)).first.click()
    page.wait_for_timeout(200)
    wait_idle(page)


_JS_RUN = """(runId) => {
  // the watched run's frame: its "Run <id>" heading, its progress bar and charts (the id shown elsewhere,
  // e.g. next to the Start button, does not count, nor does the previous run's chart)
  const head = runId && [...document.querySelectorAll('h4')].find(h => h.innerText.includes('Run ' + runId));
  if (!head) return [0, null];
  let frame = head;
  for (let i = 0; i < 10 && frame.parentElement; i++) {
    frame = frame.parentElement;
    if (frame.querySelector('[data-testid="stProgress"], .js-plotly-plot')) break;
  }
  const loss = [...frame.querySelectorAll('.js-plotly-plot')].find(
    p => p.layout && p.layout.title && String(p.layout.title.text).includes('loss per epoch'));
  const points = loss && loss.data && loss.data[0] && loss.data[0].x ? loss.data[0].x.length : 0;
  const text = [...frame.querySelectorAll('[data-testid="stProgress"]')].map(e => e.innerText).join(' ');
  const m = text.match(/epoch (\\d+)\\/\\d+ · batch (\\d+)\\//);
  return [points, m ? [Number(m[1]), Number(m[2])] : null];
}"""

VISIT = (("Explore data", '[data-testid="stPlotlyChart"] .js-plotly-plot'),
         ("Compare runs", None), ("FAQ", None))


def visitors_main(url: str, n: int, stop_file: Path) -> None:
    """Helper process: n visitors (browser contexts) go round Data -> Runs -> FAQ until stop_file exists."""
    from playwright.sync_api import sync_playwright

    deadline = time.monotonic() + 900  # bounded whatever happens to the main process
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium(), headless=True, args=["--no-sandbox"])
        pages = []
        for _ in range(n):
            page = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
            page.set_default_timeout(180_000)
            page.goto(url)
            wait_home(page)
            pages.append(page)
        print("ready", flush=True)
        views, errors, k = [0] * n, 0, 0
        while not stop_file.exists() and time.monotonic() < deadline:
            for i, page in enumerate(pages):
                title, selector = VISIT[(k + i) % len(VISIT)]
                try:
                    nav(page, title)
                    if selector:
                        page.wait_for_selector(selector)
                    views[i] += 1
                except Exception:  # noqa: BLE001 - a slow page under load: count it, keep browsing
                    errors += 1
            k += 1
        exceptions = sum(p.locator('[data-testid="stException"]').count() for p in pages)
        browser.close()
    print(json.dumps({"views": views, "errors": errors, "exceptions": exceptions}), flush=True)


def wait_worker_ready(server: int, timeout: float = 180.0) -> float:
    """time.time() when a waiting worker process had imported TensorFlow (nan if none did in time): a
    spawned child that maps TensorFlow's libraries and whose CPU time then stays still for 1 s."""
    start = time.monotonic()
    last: dict[int, tuple[float, float]] = {}  # pid -> (cpu, time.time() since when unchanged)
    while time.monotonic() - start < timeout:
        workers, _ = split_tree(server)
        now = time.time()
        for pid in workers:
            cpu = cpu_seconds([pid])
            old = last.get(pid)
            if old is None or old[0] != cpu:
                last[pid] = (cpu, now)
            elif now - old[1] >= 1.0 and tf_libraries([pid]):
                return old[1]
        time.sleep(0.1)
    return float("nan")


def train_and_watch(page, runs: Path, epochs: int, sampler_note: str) -> dict:
    """Set epochs, click Start training, follow the page until the run's final status is on the chart."""
    page.get_by_label("Epochs", exact=True).fill(str(epochs))
    page.get_by_label("Batch size", exact=True).fill("32")
    watcher = EpochWatcher(runs)
    watcher.start()
    t_start = time.time()
    page.get_by_role("button", name="Start training").click()
    shown: dict[int, float] = {}
    first_batch = None
    deadline = time.monotonic() + 600
    status: dict = {}
    while time.monotonic() < deadline:
        try:  # counted only once the page shows this run (its id), not the previous run's chart
            n, progress = page.evaluate(_JS_RUN, watcher.run_id)
            n = int(n)
        except Exception:  # noqa: BLE001 - the page is between renders
            n, progress = 0, None
        now = time.time()
        if first_batch is None and (n > 0 or (progress and (progress[0] > 1 or progress[1] > 0))):
            first_batch = now - t_start
        for epoch in range(1, n + 1):
            shown.setdefault(epoch, now)
        if watcher.run_id and (runs / watcher.run_id / "status.json").exists():
            try:
                status = json.loads((runs / watcher.run_id / "status.json").read_text() or "{}")
            except ValueError:
                status = {}  # caught mid-write
            if status.get("state") not in ("queued", "running", None) and len(shown) >= len(watcher.written):
                break
        time.sleep(0.05)
    else:
        raise TimeoutError(f"the run did not finish on the page within 600 s: status {status}, epochs written "
                           f"{sorted(watcher.written)}, shown {sorted(shown)}, run {watcher.run_id}")
    ended_at = time.time()
    t_train = ended_at - t_start
    wait_idle(page)
    watcher.done.set()
    watcher.join()
    assert status.get("state") == "completed", f"run did not complete: {status}"
    print(f"{sampler_note}: {status.get('epochs_done')} epochs (load {load_text()}): {t_train:.1f} s from the click "
          f"to the final status; click -> first batch on the page {first_batch:.2f} s; {status.get('message')}")
    latencies = {e: shown[e] - t for e, t in watcher.written.items() if e in shown}
    for e in sorted(watcher.written):
        lat = latencies.get(e)
        print(f"  epoch {e:>2}: fit time {watcher.fit_time[e]:6.2f} s, written +{watcher.written[e] - t_start:6.2f} s"
              ", on the chart " + (f"+{shown[e] - t_start:6.2f} s, latency {lat:.2f} s" if lat is not None
                                   else "never seen"))
    return {"first_batch": first_batch, "latencies": list(latencies.values()), "exact": watcher.exact,
            "missing": sorted(set(watcher.written) - set(latencies)), "status": status, "t_train": t_train,
            "ended_at": ended_at}


def latency_rows(rows: list, label: str, result: dict) -> None:
    lat = result["latencies"]
    if lat:
        print(f"epoch end -> on the live chart ({label}): median {statistics.median(lat):.2f} s, max {max(lat):.2f} s "
              f"over {len(lat)} epochs ({result['exact']} timed by the file's mtime)")
        rows.append((f"epoch end -> on the live chart, {label}: median / max",
                     f"{statistics.median(lat):.2f} s / {max(lat):.2f} s", "max <= 1.5 s"))
    if result["missing"]:
        rows.append((f"epochs never seen on the chart ({label})", ", ".join(map(str, result["missing"])), "none"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30, help="the first run (three visitors browsing)")
    parser.add_argument("--warm-epochs", type=int, default=5, help="the second run (warm worker, alone)")
    parser.add_argument("--visitors", type=int, default=3)
    parser.add_argument("--visitor-url", help=argparse.SUPPRESS)  # the helper process's mode
    parser.add_argument("--stop-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.visitor_url:
        visitors_main(args.visitor_url, args.visitors, args.stop_file)
        return
    from playwright.sync_api import sync_playwright

    rows: list[tuple[str, str, str]] = []  # (measure, value, budget)
    print(f"load average at start: {load_text()}  ({os.cpu_count()} CPUs)")
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        runs, log = Path(tmp) / "runs", Path(tmp) / "streamlit.log"
        browser = pw.chromium.launch(executable_path=chromium(), headless=True, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto("about:blank")  # the browser is warm before the server starts

        t0 = time.perf_counter()
        proc, url = launch_server(runs, log)
        stop_file, visitors = Path(tmp) / "visitors.stop", None
        try:
            wait_healthy(proc, url, log, every_s=0.02)
            t_health = time.perf_counter() - t0
            cpu_health = cpu_seconds(descendants(proc.pid))
            t_req = time.perf_counter()
            page.goto(url)
            wait_home(page)
            t_home = time.perf_counter()
            cpu_home = cpu_seconds(descendants(proc.pid))
            cold_load = load_text()
            second = context.new_page()
            t_warm0 = time.perf_counter()
            second.goto(url)
            wait_home(second)
            t_warm = time.perf_counter() - t_warm0
            second.close()
            print(f"cold start (load {cold_load}): process start -> health {t_health:.2f} s, "
                  f"-> home rendered {t_home - t0:.2f} s; first request -> rendered {t_home - t_req:.2f} s; "
                  f"warm server, new tab -> rendered {t_warm:.2f} s; server CPU: {cpu_health:.2f} s to start, "
                  f"{cpu_home - cpu_health:.2f} s for the first home page")
            rows += [("process start -> server answers", f"{t_health:.2f} s", ""),
                     ("process start -> home rendered", f"{t_home - t0:.2f} s", ""),
                     ("cold server: first request -> home rendered", f"{t_home - t_req:.2f} s", "<= 2 s"),
                     ("  server CPU time in that first request", f"{cpu_home - cpu_health:.2f} s", ""),
                     ("warm server: new tab -> home rendered", f"{t_warm:.2f} s", "")]

            # -- pages that need no model -----------------------------------------------------------
            pids = descendants(proc.pid)
            rss_pages, tf_after = [], {}
            rss_pages.append(("home", rss_bytes(pids)))
            tf_after["home"] = tf_libraries(pids)
            nav(page, "Explore data")
            page.wait_for_selector('[data-testid="stPlotlyChart"] .js-plotly-plot')
            rss_pages.append(("Data: digits", rss_bytes(pids)))
            tf_after["Data: digits"] = tf_libraries(pids)
            pick(page, "Dataset", r"^iris")
            page.wait_for_function("() => { const m = document.querySelector('[data-testid=\"stMetricValue\"]');"
                                   " return m && m.innerText === '150'; }")  # iris: 150 samples
            page.wait_for_selector('[data-testid="stPlotlyChart"] .js-plotly-plot')
            rss_pages.append(("Data: iris", rss_bytes(pids)))
            tf_after["Data: iris"] = tf_libraries(pids)
            pick(page, "Dataset", r"^digits")
            page.wait_for_function("() => { const m = document.querySelector('[data-testid=\"stMetricValue\"]');"
                                   " return m && m.innerText === '1,797'; }")  # digits again, for the Model page
            page.wait_for_selector('[data-testid="stPlotlyChart"] .js-plotly-plot')
            nav(page, "Compare runs")
            page.get_by_role("heading", name="Compare runs").wait_for()
            rss_pages.append(("Compare runs", rss_bytes(pids)))
            tf_after["Compare runs"] = tf_libraries(pids)
            nav(page, "FAQ")
            page.get_by_role("heading", name="Frequently asked questions").wait_for()
            rss_pages.append(("FAQ", rss_bytes(pids)))
            tf_after["FAQ"] = tf_libraries(pids)
            assert page.locator('[data-testid="stException"]').count() == 0, "a page showed an exception"
            print(f"no-model pages (load {load_text()}): " + ", ".join(
                f"{name} {b / 2**20:.0f} MB{' TF!' if tf_after[name] else ''}" for name, b in rss_pages))
            loaded = sorted(set().union(*tf_after.values()))
            rows.append(("TensorFlow loaded after home, Data (digits, iris), Runs, FAQ",
                         "yes: " + ", ".join(loaded) if loaded else "no (/proc/<pid>/maps)", "no"))
            rows.append(("RSS after those pages (max)", f"{max(b for _, b in rss_pages) / 2**20:.0f} MB", ""))

            # -- three visitors browse while one run trains: memory ------------------------------------
            visitors = subprocess.Popen([sys.executable, __file__, "--visitor-url", url, "--visitors",
                                         str(args.visitors), "--stop-file", str(stop_file)],
                                        stdout=subprocess.PIPE, text=True)
            ready = visitors.stdout.readline().strip()
            assert ready == "ready", f"visitors did not start: {ready!r}"
            print(f"{args.visitors} visitors have opened the app (load {load_text()}); RSS now "
                  f"{rss_bytes(descendants(proc.pid)) / 2**20:.0f} MB")
            sampler = RssSampler(proc.pid)
            sampler.start()
            t_model = time.perf_counter()
            nav(page, "Build a model")
            pick(page, "Start from a preset", r"^Article CNN")
            page.get_by_role("button", name="Use preset").click()
            page.get_by_role("heading", name=re.compile(r"Layers of .Article CNN")).wait_for()
            page.get_by_text("What you built").wait_for()
            wait_idle(page)
            t_model = time.perf_counter() - t_model
            rss_model = rss_bytes(descendants(proc.pid))
            print(f"Model page with Article CNN: {t_model:.2f} s, RSS {rss_model / 2**20:.0f} MB (TensorFlow "
                  f"libraries mapped in the server: {bool(tf_libraries([proc.pid]))})")
            nav(page, "Train")
            page.get_by_text("Article CNN (adapted)").first.wait_for()
            rss_before = rss_bytes(descendants(proc.pid))
            cold = train_and_watch(page, runs, args.epochs, f"run 1 (cold worker, {args.visitors} visitors browsing)")
            ready_watch = ThreadPoolExecutor(1).submit(wait_worker_ready, proc.pid)  # the next worker starts now
            stop_file.touch()
            visited = json.loads(visitors.communicate(timeout=300)[0].strip().splitlines()[-1])
            sampler.done.set()
            sampler.join()
            rss_end = rss_bytes(descendants(proc.pid))
            t_peak, server_peak, workers_peak, other_peak = sampler.peak_sample
            total_peak = server_peak + workers_peak + other_peak
            print(f"visitors: page views {visited['views']}, {visited['errors']} slow/failed navigations, "
                  f"{visited['exceptions']} exceptions shown")
            print(f"RSS: before Model page {sum(sampler.samples[0][1:]) / 2**20:.0f} MB, before Start "
                  f"{rss_before / 2**20:.0f} MB, peak {total_peak / 2**20:.0f} MB = server {server_peak / 2**20:.0f} "
                  f"+ workers {workers_peak / 2**20:.0f} + other children {other_peak / 2**20:.0f} MB "
                  f"({len(sampler.samples)} samples every 0.2 s); peaks apart: server "
                  f"{sampler.peak(1) / 2**20:.0f} MB, workers {sampler.peak(2) / 2**20:.0f} MB; after "
                  f"{rss_end / 2**20:.0f} MB")
            once_peak = max((b for _, b in sampler.once), default=0)
            print(f"whole app with each mapped file counted once (shared TensorFlow libraries once): peak "
                  f"{once_peak / 2**20:.0f} MB ({len(sampler.once)} samples every 1 s)")
            rows.append((f"whole app, 1 run training + {args.visitors} visitors: peak RSS sum",
                         f"{total_peak / 2**20:.0f} MB ({total_peak / GB:.2f} GB)", "<= 1.2 GB"))
            rows.append(("  same, shared library files counted once", f"{once_peak / 2**20:.0f} MB "
                         f"({once_peak / GB:.2f} GB)", "<= 1.2 GB"))
            rows.append(("  at that peak: server / worker processes",
                         f"{server_peak / 2**20:.0f} MB / {workers_peak / 2**20:.0f} MB", ""))
            rows.append(("  peaks apart: server / worker processes",
                         f"{sampler.peak(1) / 2**20:.0f} MB / {sampler.peak(2) / 2**20:.0f} MB", ""))
            rows.append((f"visitors' page views during the run ({args.visitors} contexts)",
                         f"{sum(visited['views'])} ({visited['errors']} slow/failed)", ""))
            latency_rows(rows, f"{args.visitors} visitors browsing", cold)

            # -- a second run on the warm worker ----------------------------------------------------------
            ready_s = ready_watch.result() - cold["ended_at"]
            workers, _ = split_tree(proc.pid)
            idle_server, idle_workers = rss_bytes([proc.pid]), rss_bytes(workers)
            idle_once = memory_once(descendants(proc.pid))
            print(f"next worker ready {ready_s:.1f} s after run 1's final status was seen; idle: "
                  f"server {idle_server / 2**20:.0f} MB + waiting worker {idle_workers / 2**20:.0f} MB RSS, "
                  f"{idle_once / 2**20:.0f} MB with files counted once (load {load_text()})")
            rows.append(("idle after a run: server / waiting worker (RSS)", f"{idle_server / 2**20:.0f} MB / "
                         f"{idle_workers / 2**20:.0f} MB", ""))
            rows.append(("  whole app idle, files counted once", f"{idle_once / 2**20:.0f} MB", ""))
            rows.append(("run ends -> next worker has imported TensorFlow", f"{ready_s:.1f} s", ""))
            warm = train_and_watch(page, runs, args.warm_epochs, "run 2 (warm worker, alone)")
            latency_rows(rows, "alone", warm)
            rows.append(("click -> first batch on the page, first run (cold worker)", f"{cold['first_batch']:.2f} s",
                         ""))
            rows.append(("click -> first batch on the page, later run (warm worker)", f"{warm['first_batch']:.2f} s",
                         ""))
        except BaseException:
            shot = Path(tempfile.gettempdir()) / "app_budgets_failure.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"failed; the training tab is in {shot}", flush=True)
            raise
        finally:
            if visitors is not None and visitors.poll() is None:
                stop_file.touch()
                try:
                    visitors.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    visitors.kill()
            stop_server(proc)
            browser.close()
        if "Traceback" in log.read_text():
            print("server log has a traceback:\n" + log.read_text()[-3000:])

    rows.append(("load average (1/5/15 min) at end", load_text(), ""))
    width = max(len(m) for m, _, _ in rows)
    print(f"\nload average at end: {load_text()}")
    print(f"{'measure':<{width}}  {'value':<26} budget")
    for measure, value, budget in rows:
        print(f"{measure:<{width}}  {value:<26} {budget}")


if __name__ == "__main__":
    main()
