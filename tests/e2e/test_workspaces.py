"""A shared server (KERAS_LAB_SHARED=1) in two browsers: A trains a run in its workspace; B, a stranger,
neither lists it nor sees it through A's ?run= link; A's reload keeps its workspace (?ws=) and its run."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest

from core.workspaces import is_workspace_key, workspace_root
from tests.e2e.conftest import goto, screenshot, start_server, stop_server, until, wait_for_app

pytestmark = pytest.mark.e2e

_RUN_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}")


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """A server of its own with KERAS_LAB_SHARED=1; yields (base URL, runs folder)."""
    runs = tmp_path_factory.mktemp("shared-runs")
    log = tmp_path_factory.mktemp("shared-log") / "streamlit.log"
    proc, url = start_server(runs, log, env={"KERAS_LAB_SHARED": "1"})
    yield url, runs
    stop_server(proc, log)


@pytest.fixture
def two_visitors(new_tab, shared_server):
    """Two tabs in separate browser contexts: separate cookies, storage and sessions, as two strangers'."""
    return new_tab(), new_tab()


def _ws(page) -> str:
    return parse_qs(urlparse(page.url).query).get("ws", [""])[0]


def _badge(page) -> str:
    heading = page.locator("h4", has_text="Run ")
    return heading.first.inner_text() if heading.count() else ""


def _nav(page, name: str) -> None:
    """Go to a page with the sidebar navigation, as a person would."""
    page.get_by_test_id("stSidebarNavItems").get_by_role("link", name=name, exact=True).click()
    wait_for_app(page)


def _main_text(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def test_a_strangers_runs_stay_private_and_a_reload_keeps_the_workspace(two_visitors, shared_server):
    base, runs = shared_server
    a, b = two_visitors

    goto(a, base)
    key_a = until(a, lambda: _ws(a) if is_workspace_key(_ws(a)) else "", "A's workspace key in the URL")
    box = a.locator('[data-testid="stSidebar"]').get_by_text("Your workspace")
    assert box.count() == 1
    link = a.locator('[data-testid="stSidebar"] [data-testid="stCode"]').inner_text().strip()
    assert link == f"{base}/?ws={key_a}", link  # the whole link, ready to copy
    screenshot(a, "workspace-a-home")

    # A trains a tiny run: digits, the default model and settings, one epoch
    _nav(a, "Train")
    assert _ws(a) == key_a  # navigation keeps the workspace in the URL
    a.get_by_label("Epochs", exact=True).fill("1")
    a.get_by_role("button", name="Start training").click()
    until(a, lambda: _RUN_ID.search(_badge(a)), "A's run to appear")
    run_id = _RUN_ID.search(_badge(a)).group(0)
    until(a, lambda: "completed" in _badge(a), "A's run to complete")
    assert (workspace_root(runs, key_a) / run_id / "status.json").is_file()  # in A's workspace folder
    assert not (runs / run_id).exists()
    screenshot(a, "workspace-a-trained")

    # B, a stranger: another workspace, and A's run is nowhere
    goto(b, base)
    key_b = until(b, lambda: _ws(b) if is_workspace_key(_ws(b)) else "", "B's workspace key in the URL")
    assert key_b != key_a
    _nav(b, "Compare runs")
    b.get_by_text("No runs yet").wait_for()
    assert run_id not in _main_text(b)
    screenshot(b, "workspace-b-runs")
    _nav(b, "Evaluate")
    b.get_by_text("No finished run with test predictions yet").wait_for()
    assert run_id not in _main_text(b)

    # B opens A's run link (B's own workspace; A's key is not in it): nothing of the run, no Stop
    goto(b, base, f"train?ws={key_b}&run={run_id}")
    b.get_by_text("No training in progress").wait_for()
    assert run_id not in _main_text(b) and run_id not in b.url
    assert b.get_by_role("button", name="Stop").count() == 0
    assert _ws(b) == key_b
    screenshot(b, "workspace-b-link")
    goto(b, base, f"train?run={run_id}")  # the bare link: a fresh workspace, still nothing
    b.get_by_text("No training in progress").wait_for()
    assert run_id not in _main_text(b) and _ws(b) not in ("", key_a)

    # A reloads: same workspace, same run, listed on Compare runs
    a.reload()
    wait_for_app(a)
    assert _ws(a) == key_a
    until(a, lambda: run_id in _badge(a) and "completed" in _badge(a), "A's run after the reload")
    _nav(a, "Compare runs")
    until(a, lambda: _ws(a) == key_a, "the workspace back in the URL after navigation")
    a.get_by_text("1 of 1 runs.").wait_for()
    a.get_by_label("Selected runs").click()
    a.get_by_role("option", name=re.compile(run_id)).wait_for()  # A's run in the picker of the table's rows
    screenshot(a, "workspace-a-runs")
