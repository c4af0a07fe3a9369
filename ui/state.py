"""Session state shared across pages: the selected dataset, the model spec, the current job."""

from __future__ import annotations

import argparse
import sys

import streamlit as st

from core.datasets import DEFAULT_DATASET

__all__ = ["ensure_app_entry", "init_session"]


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
    st.navigation call in a server process, the first script run of a fresh server serves /train by
    running pages/train.py alone — the old automatic sidebar, no page config, no session defaults.
    Leaving that mode and rerunning once lets app.py route the same URL through st.navigation.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
