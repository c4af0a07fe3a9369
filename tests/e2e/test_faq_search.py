"""Browser: four FAQ searches in a row, each typed + Enter, each taking effect in the box, the URL and the
answers (every second one used to be lost: the box snapped back to the query before); a ?q= link fills the
box when the page is opened with it."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import console_errors, goto, screenshot, wait_for_app

pytestmark = pytest.mark.e2e

QUERIES = [  # (typed, the question shown first)
    ("energy", "How much energy and compute"),
    ("privacy", "How can personal data stay private"),
    ("over-fitting", "What is the difference between over- and under-fitting?"),
    ("energies", "How much energy and compute"),
]


def _url_query(page) -> str | None:
    return parse_qs(urlparse(page.url).query).get("q", [None])[0]


def _questions(page) -> list[str]:
    return page.locator('[data-testid="stHeading"] h3').all_inner_texts()


def test_four_searches_in_a_row_each_take_effect_and_the_url_follows(page, app_server):
    problems = console_errors(page, "faq")  # every console error but Streamlit's base-path probe fails
    goto(page, app_server)
    goto(page, app_server, "faq?q=dead-relu")  # a link fills the box on arrival
    page.locator("h3#dead-relu").wait_for()
    box = page.get_by_label("Search")
    expect(box).to_have_value("dead-relu")
    assert _url_query(page) == "dead-relu"

    for n, (query, question) in enumerate(QUERIES, 1):
        box.fill(query)
        box.press("Enter")
        page.get_by_text(f"answers match “{query}”").wait_for()
        wait_for_app(page)
        page.wait_for_function("q => new URLSearchParams(location.search).get('q') === q", arg=query)
        expect(box).to_have_value(query)
        assert _url_query(page) == query, (n, query, page.url)
        assert _questions(page)[0].startswith(question), (n, query, _questions(page))  # best match first
        screenshot(page, f"faq-search-{n}")

    page.reload()  # the URL now carries the last query, and a fresh load takes it into the box
    wait_for_app(page)
    page.get_by_text("answers match “energies”").wait_for()
    expect(page.get_by_label("Search")).to_have_value("energies")
    assert page.locator('[data-testid="stException"]').count() == 0
    assert problems == [], problems
