"""Direct links on a fresh server go through app.py's st.navigation, not Streamlit's legacy pages/ mode."""

import pytest

from .conftest import goto, start_server, stop_server

pytestmark = pytest.mark.e2e


def test_first_request_to_a_page_url_uses_the_app_navigation(browser, tmp_path):
    log = tmp_path / "streamlit.log"
    proc, url = start_server(tmp_path / "runs", log)  # a fresh process: nobody has loaded / yet
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        goto(page, url, "faq")
        nav = page.get_by_test_id("stSidebarNav")
        nav.get_by_text("Explore data").wait_for()  # our titles, grouped in sections
        links = [text.split("\n")[-1] for text in nav.get_by_role("link").all_inner_texts()]
        assert "FAQ" in links and "Home" in links, links
        assert "app" not in links, f"legacy file-name navigation is showing: {links}"
        page.get_by_role("heading", name="Frequently asked questions").wait_for()
        assert "/faq" in page.url
        assert page.title() == "FAQ · Keras Lab"  # the tab names the page, also on the first request
        sections = [t.strip() for t in nav.get_by_test_id("stNavSectionHeader").all_inner_texts()]
        assert sections == ["Experiment", "Learn"], sections
    finally:
        context.close()
        stop_server(proc, log)
