"""Browser tests: the real app under `streamlit run`, driven by Playwright in the system Chromium.

The server and the browser come from tests/e2e/server.py (Debian's chromium, never a download; a free port,
the server's own run store, no file watcher). Screenshots go to test-artifacts/: those a test takes to be
looked at, and one of every open tab of a test that fails.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.e2e import server
from tests.e2e.server import start_server
from tests.helpers import ROOT, wait_until

ARTIFACTS = ROOT / "test-artifacts"
DESKTOP = {"width": 1400, "height": 1000}
_TABS = pytest.StashKey[list]()  # the Playwright pages a test opened with new_tab


def stop_server(proc: subprocess.Popen, log: Path) -> None:
    """Stop the server and fail if it printed a traceback."""
    server.stop_server(proc)
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
        b = pw.chromium.launch(executable_path=server.chromium(), headless=True, args=["--no-sandbox"])
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
    """Poll condition() in the page's own event loop until it is truthy; fail naming what never happened."""
    return wait_until(condition, what, deadline_s, pause=lambda s: page.wait_for_timeout(s * 1000), every_s=0.3)


def console_errors(page, *paths: str) -> list[str]:
    """The list that the tab's console errors and uncaught page errors are added to from now on (a test
    checks it is empty at its end).

    Opening a page by its own URL (/faq) makes Streamlit's frontend try that path as the app's base path
    first (/faq/_stcore/health, /faq/_stcore/host-config: 404) before it falls back to "/" (streamlit#7074,
    open). That probe, for the page `paths` given, is Streamlit's, not the page's: it is left out."""
    probe = re.compile(rf"/({'|'.join(map(re.escape, paths))})/_stcore/(health|host-config)$")
    problems: list[str] = []

    def on_console(m) -> None:
        url = m.location.get("url", "")
        if m.type == "error" and not (m.text.startswith("Failed to load resource") and probe.search(url)):
            problems.append(f"console: {m.text} ({url})")

    page.on("console", on_console)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    return problems


def wait_for_app(page) -> None:
    """Wait until the script has finished its run (Streamlit's own idle marker)."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=60_000)


def goto(page, base_url: str, path: str = "") -> None:
    page.goto(f"{base_url}/{path}")
    wait_for_app(page)
