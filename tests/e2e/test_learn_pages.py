"""Browser: the backprop page renders its formulas and loss chart and steps; the FAQ filters as you type."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import goto, wait_for_app

pytestmark = pytest.mark.e2e


def test_backprop_formulas_chart_and_step(page, app_server):
    goto(page, app_server)  # home first: it runs app.py's st.navigation (see the report on direct URLs)
    goto(page, app_server, "backprop")
    page.get_by_text("The worked example").wait_for()
    assert page.locator('[data-testid="stSidebarNav"]').get_by_text("Backpropagation").is_visible()
    katex = page.locator(".katex")
    katex.nth(20).wait_for()  # KaTeX loads lazily
    assert katex.count() > 20
    all_math = " ".join(katex.all_inner_texts())
    assert "1.9" in all_math and "3.74" in all_math and "0.976797" in all_math
    page.locator('[data-testid="stGraphVizChart"] svg >> visible=true').first.wait_for()  # the network diagram
    page.get_by_text("Keep training").scroll_into_view_if_needed()
    page.locator('[data-testid="stPlotlyChart"]').first.wait_for()
    page.get_by_role("button", name="Step", exact=True).click()
    page.get_by_text("1 step since the last edit").wait_for()
    wait_for_app(page)
    assert page.locator('[data-testid="stException"]').count() == 0


def test_faq_search_and_link(page, app_server):
    goto(page, app_server)
    goto(page, app_server, "faq")
    box = page.get_by_label("Search")
    box.fill("federated")
    box.press("Enter")
    page.get_by_text("1 of").wait_for()
    wait_for_app(page)
    headings = page.locator('[data-testid="stHeading"] h3').all_inner_texts()
    assert len(headings) == 1 and "private" in headings[0]
    goto(page, app_server, "faq?q=dead-relu")
    page.locator("h3#dead-relu").wait_for()
    first = page.locator('[data-testid="stHeading"] h3').first.inner_text()
    assert first.startswith("Dead ReLU units")
