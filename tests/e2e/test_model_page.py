"""The Model page in Chromium: add a layer, watch summary and diagram follow, export, refuse a hostile spec."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import goto, screenshot, wait_for_app

pytestmark = pytest.mark.e2e


def _rows(page) -> int:
    """Data rows in the summary table (the dataframe reports its row count in aria-rowcount, header included)."""
    return int(page.locator('[data-testid="stDataFrame"] [aria-rowcount]').first.get_attribute("aria-rowcount")) - 1


def test_build_export_and_refuse_a_hostile_spec(page, app_server, tmp_path):
    goto(page, app_server)
    page.get_by_role("link", name="Build a model").first.click()
    wait_for_app(page)
    page.get_by_text("What you built").wait_for()
    rows_before = _rows(page)
    params_before = page.locator('[data-testid="stMetricValue"]').first.inner_text()

    page.get_by_role("button", name="Add").click()  # Dropout, at the end: the default choice
    page.wait_for_function(f"document.querySelectorAll('[data-testid=stDataFrame] [aria-rowcount]').length && "
                           f"document.querySelector('[data-testid=stDataFrame] [aria-rowcount]')"
                           f".getAttribute('aria-rowcount') == '{rows_before + 2}'")
    wait_for_app(page)
    assert page.locator('[data-testid="stMetricValue"]').first.inner_text() == params_before  # Dropout: 0
    assert page.get_by_text("Dropout", exact=True).count() >= 1
    assert page.locator('[data-testid="stPlotlyChart"]').count() == 1

    with page.expect_download() as download:
        page.get_by_role("button", name="Keras script (.py)").click()
    code = open(download.value.path()).read()
    compile(code, "exported.py", "exec")
    assert code.count("layers.Dropout(") == 2 and "load_digits" in code

    hostile = tmp_path / "hostile.json"
    hostile.write_text(json.dumps({"name": "evil", "layers": [
        {"type": "Flatten"}, {"type": "Dense", "params": {"units": 100_000_000}}]}))
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(hostile))
    page.get_by_text("Spec not loaded: layer 2 Dense: units must be between 1 and 16,384").wait_for()
    wait_for_app(page)
    assert _rows(page) == rows_before + 1  # the model on the page is unchanged
    screenshot(page, "model-page")
