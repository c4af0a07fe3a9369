"""Streamlit-wide settings the app installs: Keras state of a training thread survives page reruns."""

import threading
from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def test_page_reruns_leave_the_keras_state_of_a_training_thread_alone(clean_streamlit_caches):
    import keras
    from keras.src.backend.common import global_state

    at = AppTest.from_file(APP, default_timeout=30)
    at.run()  # app.py installs its guard
    ready, rerun_done, seen = threading.Event(), threading.Event(), {}

    def worker():  # stands for the training thread: it sets its policy and seed, then trains
        keras.config.set_dtype_policy("mixed_float16")
        global_state.set_global_attribute("probe", 42)
        ready.set()
        rerun_done.wait(60)
        seen["policy"], seen["probe"] = keras.config.dtype_policy().name, global_state.get_global_attribute("probe")

    thread = threading.Thread(target=worker)
    thread.start()
    ready.wait(60)
    at.run()  # a rerun of the page, as the Train page polls once a second
    rerun_done.set()
    thread.join()
    assert not at.exception
    assert seen == {"policy": "mixed_float16", "probe": 42}


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
