"""Session state shared across pages: the selected dataset, the model spec, the current job."""

from __future__ import annotations

import argparse
import sys

import streamlit as st

from core.datasets import DEFAULT_DATASET

__all__ = ["init_session"]


def _cli_dataset() -> str:
    """`streamlit run app.py -- --dataset iris` preselects a dataset; digits otherwise."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--dataset", default=DEFAULT_DATASET)
    args, _ = parser.parse_known_args(sys.argv[1:])
    return args.dataset


def init_session() -> None:
    """Set defaults once per browser session."""
    st.session_state.setdefault("dataset", _cli_dataset())
