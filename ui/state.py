"""Session state shared across pages: the selected dataset, the model spec, the current job."""

from __future__ import annotations

import argparse
import sys

import streamlit as st

from core.datasets import DEFAULT_DATASET

__all__ = ["ensure_app_entry", "init_session", "keep_keras_state"]


def _cli_dataset() -> str:
    """`streamlit run app.py -- --dataset iris` preselects a dataset; digits otherwise."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--dataset", default=DEFAULT_DATASET)
    args, _ = parser.parse_known_args(sys.argv[1:])
    return args.dataset


def init_session() -> None:
    """Set defaults once per browser session."""
    st.session_state.setdefault("dataset", _cli_dataset())


def ensure_app_entry() -> None:
    """Make sure app.py (and its st.navigation) drives this run, also on a direct link such as /train.

    Streamlit still has a legacy mode for a `pages/` folder beside the main script: until the first
    st.navigation call in a process (and in every AppTest run), a request for /train runs pages/train.py
    alone — the old automatic sidebar, no page config, no session defaults. Here we leave that mode and
    run app.py in this same script run (so a click that triggered it is not lost); app.py's navigation
    then runs this page properly, and the legacy run stops.
    """
    import runpy

    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    if not PagesManager.uses_pages_directory:
        return
    PagesManager.uses_pages_directory = False
    ctx = get_script_run_ctx()
    if ctx is None:  # bare mode (python pages/x.py): nothing to route
        return
    runpy.run_path(ctx.main_script_path, run_name="__main__")
    st.stop()


def keep_keras_state() -> None:
    """Stop Streamlit from calling keras.backend.clear_session() after every script run.

    Streamlit does that to free the models a script built in its own thread. Here models train in a worker
    thread while the page polls once a second, and each call replaces Keras's thread-local state for every
    thread (seed, dtype policy, name counters) and clears TensorFlow's kernel cache mid-training. The worker
    clears its own session, under the training lock (DESIGN.md §4). Matplotlib is still closed as before.
    """
    from streamlit.runtime.scriptrunner import script_runner

    if getattr(script_runner._clean_problem_modules, "keeps_keras_state", False):
        return

    def clean_without_keras() -> None:
        if (plt := sys.modules.get("matplotlib.pyplot")) is not None:
            plt.close("all")

    clean_without_keras.keeps_keras_state = True  # type: ignore[attr-defined]
    script_runner._clean_problem_modules = clean_without_keras
