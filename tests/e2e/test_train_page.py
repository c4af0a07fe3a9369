"""A person training on digits: the chart grows, page changes and a reload do not stop it, Stop does."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import goto, screenshot, until, wait_for_app

pytestmark = pytest.mark.e2e

_JS_POINTS = """() => {
  const plots = [...document.querySelectorAll('.js-plotly-plot')];
  const loss = plots.find(p => p.layout && p.layout.title && String(p.layout.title.text).includes('loss per epoch'));
  return loss ? loss.data[0].x.length : 0;
}"""


def _badge(page) -> str:
    """'<run id> <state>' from the run heading, or '' when there is none yet."""
    heading = page.locator("h4", has_text="Run ")
    if heading.count() == 0:
        return ""
    return heading.first.inner_text()


def _epoch(page) -> int:
    text = page.locator('[data-testid="stProgress"]').first.inner_text() if page.locator(
        '[data-testid="stProgress"]').count() else ""
    match = re.search(r"epoch (\d+)/", text)
    return int(match.group(1)) if match else 0


def test_training_survives_page_changes_and_reload_and_stops(page, app_server):
    goto(page, app_server)  # from the home page, as a person would
    page.get_by_role("link", name="Train").first.click()
    wait_for_app(page)
    page.get_by_label("Epochs", exact=True).fill("400")
    page.get_by_role("button", name="Start training").click()
    until(page, lambda: "running" in _badge(page), "the run to start")
    run_id = re.search(r"\d{8}-\d{6}-[0-9a-f]{6}", _badge(page)).group(0)
    assert f"run={run_id}" in page.url

    first = until(page, lambda: page.evaluate(_JS_POINTS) >= 1, "the loss chart's first epoch")
    until(page, lambda: page.evaluate(_JS_POINTS) >= first + 2, "the loss chart to grow by two epochs")
    screenshot(page, "train-running")

    page.get_by_role("link", name="Explore data").click()
    wait_for_app(page)
    page.wait_for_timeout(1500)
    page.get_by_role("link", name="Train").first.click()
    wait_for_app(page)
    until(page, lambda: run_id in _badge(page) and "running" in _badge(page), "the same run after a page change")
    until(page, lambda: f"run={run_id}" in page.url, "the run id back in the URL")

    before = until(page, lambda: _epoch(page), "the progress bar after the page change")
    page.reload()
    wait_for_app(page)
    until(page, lambda: run_id in _badge(page) and "running" in _badge(page), "the same run after a reload")
    until(page, lambda: _epoch(page) > before, "training to go on after the reload")
    until(page, lambda: page.evaluate(_JS_POINTS) >= before, "the chart to show the earlier epochs again")

    page.get_by_role("button", name="Stop").click()
    until(page, lambda: "stopped" in _badge(page), "the run to stop")
    wait_for_app(page)
    until(page, lambda: page.get_by_role("button", name="Stop").count() == 0, "the Stop button to go away")
    screenshot(page, "train-stopped")
    assert page.get_by_role("link", name="Evaluate this run").count() == 1
    assert page.locator('[data-testid="stProgress"]').count() == 0  # polling is off
