"""What every script run needs before its page: session defaults (the dataset from the command line),
app.py in charge of a direct link such as /train, and a cheap garbage collection once TensorFlow is loaded."""

from __future__ import annotations

import argparse
import gc
import sys
import threading

import streamlit as st

from core.datasets import DEFAULT_DATASET

__all__ = ["ensure_app_entry", "init_session", "keep_gc_cheap"]


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
    then runs this page properly, and the legacy run stops. Streamlit has no option to turn that mode off;
    tests/pages/test_streamlit_internals.py fails the day it no longer needs this.
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


_heap_frozen = threading.Lock()  # held for good once the heap is frozen


def keep_gc_cheap() -> bool:
    """Once TensorFlow is in this process (a model summary, an evaluation), hide its ~350,000 long-lived
    objects from the garbage collector with `gc.freeze()`; returns True the one time it froze.

    Streamlit runs a full `gc.collect` after every script run; with TensorFlow loaded each one walks every
    object (0.17 s measured on this 2-core machine, holding the GIL), a delay on every click. Trainings no
    longer run in this process, so this is only about page latency. Call it at the start of every run.
    """
    if "tensorflow" not in sys.modules or not _heap_frozen.acquire(blocking=False):
        return False
    gc.collect()  # what is garbage now is collected first, not frozen with the rest
    gc.freeze()
    return True
