"""Browser tests: the real app under `streamlit run`, driven by Playwright in the system Chromium.

Playwright never downloads a browser here: it drives /usr/bin/chromium (Debian's package; `make test`
installs it). The server gets a free port, its own run store and no file watcher. Screenshots go to
test-artifacts/: those a test takes to be looked at, and one of every open tab of a test that fails.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
DESKTOP = {"width": 1400, "height": 1000}
_TABS = pytest.StashKey[list]()  # the Playwright pages a test opened with new_tab


def _chromium() -> str:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.fail("no Chromium found: `make browser` installs Debian's chromium (or set CHROMIUM=/path)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(runs: Path, log: Path, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """`streamlit run app.py` on a free port with its own run store (and `env` added to the environment);
    returns the process and base URL."""
    port = _free_port()
    env = {**os.environ, "KERAS_LAB_RUNS": str(runs), "PYTHONUNBUFFERED": "1", **(env or {})}
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
           "--server.port", str(port), "--server.fileWatcherType", "none",
           "--browser.gatherUsageStats", "false"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    pytest.fail(f"streamlit did not start; log:\n{log.read_text()}")


def stop_server(proc: subprocess.Popen, log: Path) -> None:
    """Stop the server and fail if it printed a traceback."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    server_log = log.read_text()
    assert "Traceback" not in server_log, f"server printed a traceback:\n{server_log}"


@pytest.fixture(scope="session")
def e2e_runs(tmp_path_factory) -> Path:
    """The run store of the shared server (tests may put runs there before opening a page)."""
    return tmp_path_factory.mktemp("e2e-runs")


@pytest.fixture(scope="session")
def app_server(tmp_path_factory, e2e_runs):
    """One server for the browser tests of a session; yields its base URL."""
    log = tmp_path_factory.mktemp("e2e-log") / "streamlit.log"
    proc, url = start_server(e2e_runs, log)
    yield url
    stop_server(proc, log)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=_chromium(), headless=True, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def new_tab(request, browser):
    """Opens a tab in a browser context of its own (own cookies and storage: another visitor's browser).
    They close after the test, not in it, so that a failing test's screenshot still sees them."""
    contexts = []
    tabs = request.node.stash.setdefault(_TABS, [])

    def open_tab(*, timeout_ms: float = 30_000, **context_options):
        context = browser.new_context(**{"viewport": DESKTOP, **context_options})
        contexts.append(context)
        tab = context.new_page()
        tab.set_default_timeout(timeout_ms)
        tabs.append(tab)
        return tab

    yield open_tab
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_tab, app_server):
    """A fresh desktop tab, with the shared server (app_server) up."""
    return new_tab()


def screenshot(tab, name: str) -> None:
    """Save what the tab shows as test-artifacts/<name>.png, for a person to look at after the run. (The app
    scrolls inside its own frame, so a full-page screenshot would show no more.)"""
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"{name}.png"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A test that fails saves each tab it still has open as test-artifacts/<test name>[-<n>].png."""
    report = yield
    open_tabs = [tab for tab in item.stash.get(_TABS, []) if not tab.is_closed()]
    if report.when == "call" and report.failed and open_tabs:
        from playwright.sync_api import Error as PlaywrightError

        stem = re.sub(r"[^\w.\[\]-]+", "_", item.name)
        saved = []
        for n, tab in enumerate(open_tabs, 1):
            name = stem if n == 1 else f"{stem}-{n}"
            try:
                screenshot(tab, name)
                saved.append(f"{ARTIFACTS / name}.png")
            except PlaywrightError as exc:  # a crashed or hung tab: the report says so, the failure stands
                saved.append(f"{name}.png not saved: {exc.message}")
        report.sections.append(("screenshots", "\n".join(saved)))
    return report


def until(page, condition, what: str, deadline_s: float = 240.0):
    """Poll condition() in the page's own event loop until it is truthy; fail naming what never happened.
    The deadline only bounds a hang: it is generous because a loaded 2-core machine is slow."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        page.wait_for_timeout(300)
    pytest.fail(f"gave up waiting for: {what}")


def wait_for_app(page) -> None:
    """Wait until the script has finished its run (Streamlit's own idle marker)."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=60_000)


def goto(page, base_url: str, path: str = "") -> None:
    page.goto(f"{base_url}/{path}")
    wait_for_app(page)
