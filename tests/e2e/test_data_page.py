"""The Data page in a real browser: charts render, and a CSV uploaded through the file input is used."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import goto, screenshot, wait_for_app

pytestmark = pytest.mark.e2e

CSV = b"length,width,kind\n" + b"1.0,0.5,short\n1.2,0.4,short\n3.1,0.9,long\n3.3,1.1,long\n" * 6


def test_data_page_shows_charts_and_takes_a_csv_upload(page, app_server, tmp_path):
    goto(page, app_server)  # home first: it sets up the navigation
    page.locator('[data-testid="stSidebarNavLink"]', has_text="Explore data").click()
    wait_for_app(page)
    page.wait_for_selector('[data-testid="stPlotlyChart"] .js-plotly-plot')
    assert page.locator('[data-testid="stMetricValue"]').first.inner_text() == "1,797"  # digits
    screenshot(page, "data-page-digits")

    csv = tmp_path / "beans.csv"
    csv.write_bytes(CSV)
    page.locator('[data-testid="stExpander"] summary').click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(csv))
    use = page.get_by_role("button", name="Use beans.csv")
    use.wait_for()
    use.click()
    page.get_by_text("uploaded CSV beans.csv").wait_for(timeout=120_000)  # a loaded CI machine: reading it took > 30 s once
    wait_for_app(page)
    assert page.locator('[data-testid="stMetricValue"]').first.inner_text() == "24"
    page.get_by_role("tab", name="Features").click()
    page.wait_for_selector('[data-testid="stPlotlyChart"]:visible .js-plotly-plot')
    screenshot(page, "data-page-upload")
    assert page.locator('[data-testid="stException"]').count() == 0
