"""The one reach into Streamlit's non-public modules (ui/state.ensure_app_entry): fails loudly if it moves."""

from __future__ import annotations


def test_the_names_ensure_app_entry_relies_on_still_exist():
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    assert isinstance(PagesManager.uses_pages_directory, bool | None)
    assert callable(get_script_run_ctx)
    assert get_script_run_ctx(suppress_warning=True) is None  # outside a script run there is no context
