"""Hostile names in a real browser: no page makes a request to another host, and no dialog opens.

Runs with hostile class names, spec name, label and message are on disk before the server starts (what
another visitor left behind); this visitor uploads a CSV with hostile column and class names and a spec
with a hostile name and notes, then opens every page that shows them. The hostile strings point at
evil.example (which does not resolve): any request to it, or to any host but this server, means
Markdown or HTML was interpreted.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlparse

import pytest

from core.runs import RunStore
from tests.e2e.conftest import goto, screenshot, start_server, stop_server, wait_for_app
from tests.pages.test_hostile_text import (
    CLASSES,
    MESSAGE,
    SPEC_NAME,
    hostile_csv,
    hostile_dataset,
    hostile_spec,
    write_hostile_run,
)
from ui.text import WORD_JOINER

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory):
    """A server of its own whose run store already holds runs with hostile names."""
    runs = tmp_path_factory.mktemp("hostile-runs")
    ds = hostile_dataset()
    store = RunStore(runs)
    write_hostile_run(store, ds, state="failed", message=MESSAGE)
    older = write_hostile_run(store, ds, learning_rate=1e-3, accuracy=0.5)
    newest = write_hostile_run(store, ds, learning_rate=1e-2, accuracy=0.9)
    log = tmp_path_factory.mktemp("hostile-log") / "streamlit.log"
    proc, url = start_server(runs, log)
    yield url, (older, newest)
    stop_server(proc, log)


def _settle(page) -> None:
    wait_for_app(page)
    page.wait_for_timeout(400)  # images and fonts the render asked for


def _texts(locator) -> list[str]:
    """What the reader sees, without the invisible word joiners that keep Streamlit from matching patterns."""
    return [t.replace(WORD_JOINER, "").strip() for t in locator.all_inner_texts()]


def _nav(page, name: str) -> None:
    page.locator('[data-testid="stSidebarNavLink"]', has_text=name).click()
    _settle(page)


def test_hostile_names_fetch_nothing_elsewhere_and_open_no_dialog(new_tab, hostile_server, tmp_path):
    url, (older, newest) = hostile_server
    own_host = urlparse(url).hostname
    page = new_tab(timeout_ms=60_000, viewport={"width": 1400, "height": 1100})
    elsewhere, dialogs = [], []
    page.on("request", lambda r: elsewhere.append(r.url)
            if urlparse(r.url).scheme not in ("data", "blob") and urlparse(r.url).hostname != own_host else None)
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    goto(page, url)
    _nav(page, "Explore data")
    page.locator('[data-testid="stExpander"] summary').first.click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        files=[{"name": "![f](http://evil.example/f.png).csv", "mimeType": "text/csv",
                "buffer": hostile_csv()}])
    use = page.get_by_role("button", name=re.compile(r"^Use "))
    use.wait_for()
    _settle(page)
    use.click()
    page.get_by_text("uploaded CSV").wait_for()
    _settle(page)
    page.get_by_role("tab", name="Features").click()
    _settle(page)
    page.get_by_role("tab", name="2-D projection").click()
    _settle(page)

    _nav(page, "Build a model")
    spec = tmp_path / "spec.json"
    spec.write_text(hostile_spec(hostile_dataset()).to_json())
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(spec))
    page.get_by_role("heading").filter(has_text="Layers of").filter(has_not_text="Small MLP").wait_for()
    _settle(page)
    assert f"Layers of “{SPEC_NAME}”" in _texts(page.get_by_role("heading"))  # shown as typed

    _nav(page, "Train")
    assert any(SPEC_NAME in t for t in _texts(page.locator('[data-testid="stMarkdownContainer"]')))

    _nav(page, "Evaluate")
    page.wait_for_selector('[data-testid="stPlotlyChart"] .js-plotly-plot')
    _settle(page)
    headings = _texts(page.get_by_role("heading"))
    assert any(h.startswith("True ") and any(c[:40] in h for c in CLASSES) for h in headings), headings
    page.set_viewport_size({"width": 1400, "height": 3400})  # the app scrolls inside: show it all
    _settle(page)
    screenshot(page, "hostile-evaluate")
    page.set_viewport_size({"width": 1400, "height": 1100})
    page.get_by_role("tab", name="Errors").click()
    page.get_by_role("tab", name="Diagnostics").click()
    _settle(page)

    _nav(page, "Compare runs")
    chooser = page.locator('[data-testid="stMultiSelect"]', has_text="Selected runs")
    for _ in range(2):
        chooser.locator("input").click()
        page.get_by_role("option").first.click()
        _settle(page)
    page.keyboard.press("Escape")
    page.get_by_role("tab", name="Class by class").click()
    _settle(page)
    screenshot(page, "hostile-runs")
    page.get_by_role("tab", name="Settings vs metric").click()
    _settle(page)

    goto(page, url, f"faq?q={quote(CLASSES[0] + ' ' + CLASSES[2])}")
    page.wait_for_timeout(400)
    assert any(CLASSES[0] in t for t in _texts(page.locator('[data-testid="stCaptionContainer"]')))

    assert page.locator('[data-testid="stException"]').count() == 0
    assert not dialogs, f"a dialog opened: {dialogs}"
    assert not elsewhere, f"requests to another host: {sorted(set(elsewhere))}"
    screenshot(page, "hostile-text-last-page")
