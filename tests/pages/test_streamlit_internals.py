"""The Streamlit behaviour ui.state.ensure_app_entry works around, on a two-page app of its own.

Streamlit (1.67) runs a `pages/` folder beside the main script in its legacy mode until some session calls
st.navigation: a first request for /<page> runs that page file alone, without the main script. No option
turns the folder off (client.showSidebarNavigation = false only hides the sidebar's links). The first test
fails the day Streamlit stops doing this: then ensure_app_entry, and its call at the top of every page, can go.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = """
import streamlit as st

st.markdown("set up by app.py")
st.navigation([st.Page("pages/home.py", default=True), st.Page("pages/other.py")]).run()
"""


def _direct_link(tmp_path: Path, page_head: str) -> list[str]:
    """What a first request for /other shows (AppTest starts every run as a fresh server process would)."""
    (tmp_path / "pages").mkdir()
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "pages" / "home.py").write_text('import streamlit as st\n\nst.markdown("home page")\n')
    (tmp_path / "pages" / "other.py").write_text(f'{page_head}import streamlit as st\n\nst.markdown("other page")\n')
    at = AppTest.from_file(str(tmp_path / "app.py"), default_timeout=30)
    at.switch_page("pages/other.py").run()
    assert not at.exception, at.exception
    return [m.value for m in at.markdown]


def test_a_direct_link_runs_the_page_file_without_the_main_script(tmp_path):
    assert _direct_link(tmp_path, "") == ["other page"]


@pytest.mark.usefixtures("clean_streamlit_caches")
def test_ensure_app_entry_runs_the_main_script_and_its_navigation_first(tmp_path):
    shown = _direct_link(tmp_path, "from ui.state import ensure_app_entry\n\nensure_app_entry()\n")
    assert shown == ["set up by app.py", "other page"]
