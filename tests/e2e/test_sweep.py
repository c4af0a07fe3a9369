"""A person runs a 12-trial sweep with pruning from the browser: it keeps running through a reload, every
trial ends as a run, and Optuna's figures are drawn."""

from __future__ import annotations

import re

import pytest

from core.runs import RunStore
from tests.e2e.conftest import goto, screenshot, until, wait_for_app

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _counts(page) -> dict[str, int]:
    """The state counters at the top of the sweep: {'Running': 1, 'Complete': 3, ...}."""
    counts = {}
    for text in page.locator('[data-testid="stMetric"]').all_inner_texts():
        label, _, value = text.strip().partition("\n")
        if value.strip().isdigit():
            counts[label.strip()] = int(value)
    return counts


def _ended(page) -> int:
    c = _counts(page)
    return c.get("Complete", 0) + c.get("Pruned", 0) + c.get("Failed", 0)


def test_a_sweep_with_pruning_runs_from_the_browser_and_survives_a_reload(page, app_server, e2e_runs):
    goto(page, app_server, "sweep")
    page.get_by_label("Learning rate: from").fill("0.00001")
    page.get_by_label("Learning rate: to").fill("1")
    page.get_by_label("Trials", exact=True).fill("12")
    page.get_by_label("Name", exact=True).fill("e2e sweep")
    page.get_by_label("Name", exact=True).press("Enter")
    page.get_by_role("button", name="Start sweep").click()
    until(page, lambda: _counts(page).get("Running", 0) + _ended(page) >= 1, "the first trial to start")
    until(page, lambda: "sweep=e2e" in page.url, "the sweep named in the URL")
    until(page, lambda: _ended(page) >= 2, "two trials to end")

    page.reload()  # the sweep runs in the server: a reload finds it, still going
    wait_for_app(page)
    until(page, lambda: _counts(page).get("Running", 0) == 1 or _ended(page) == 12, "the sweep after the reload")
    caption = page.get_by_text(re.compile(r"budget 12 trials")).first.inner_text()
    assert "pruner median" in caption

    until(page, lambda: _ended(page) == 12 and _counts(page).get("Running", 0) == 0, "all 12 trials to end",
          deadline_s=600)
    counts = _counts(page)
    assert counts.get("Failed", 0) == 0, counts
    until(page, lambda: page.locator(".js-plotly-plot").count() >= 1, "Optuna's figures")
    # the page reruns once more when the sweep ends; mid-rerun Streamlit shows the old and the new toggle at once
    until(page, lambda: page.get_by_text("Hide pruned trials").count() == 1, "one Hide pruned trials toggle")
    wait_for_app(page)
    page.get_by_text("Hide pruned trials").click()  # pruned trials back in the table and the plots
    wait_for_app(page)
    screenshot(page, "sweep-finished")
    trials = [info for info in RunStore(e2e_runs).list_runs() if info.config.get("group") == "sweep:e2e sweep"]
    assert sorted(info.config["trial"]["number"] for info in trials) == list(range(12))  # each trial: one run
    assert {info.status for info in trials} <= {"completed", "pruned"}
