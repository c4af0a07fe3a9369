"""Direct links on a fresh server go through app.py's st.navigation, not Streamlit's legacy pages/ mode."""

import pytest

from .conftest import goto, start_server, stop_server

pytestmark = pytest.mark.e2e


@pytest.fixture
def fresh_server(tmp_path):
    """A server process of its own that nobody has loaded / on yet; yields its base URL."""
    log = tmp_path / "streamlit.log"
    proc, url = start_server(tmp_path / "runs", log)
    yield url
    stop_server(proc, log)


def test_first_request_to_a_page_url_uses_the_app_navigation(new_tab, fresh_server):
    page = new_tab()
    goto(page, fresh_server, "faq")
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
