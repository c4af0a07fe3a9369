"""Process-wide settings the app installs on each run: start-up recovery and a cheap garbage collection."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")


@pytest.mark.slow
def test_once_tensorflow_is_loaded_a_page_run_freezes_the_heap_for_cheap_collections(clean_streamlit_caches):
    """Streamlit collects garbage after every script run; with TensorFlow's objects frozen that walk is cheap."""
    import gc

    import tensorflow  # noqa: F401 - what an Evaluate or Model page visit does in this process

    import ui.state

    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    assert not at.exception
    assert gc.get_freeze_count() > 100_000, "TensorFlow's objects were not frozen"
    assert ui.state.keep_gc_cheap() is False  # once per process


def test_opening_any_page_marks_runs_of_a_dead_server_interrupted(clean_streamlit_caches, _isolated_run_store):
    from core.runs import RunStore

    store = RunStore(_isolated_run_store)
    run_id = store.create_run({"label": "left behind"})
    store.write_status(run_id, "running", pid=2**22 + 12345, host="elsewhere")  # no such live process here
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()  # the home page: no training page visited
    assert not at.exception
    status = store.read_status(run_id)
    assert status["state"] == "interrupted", status
