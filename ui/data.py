"""Cached dataset loading and the dataset the user has selected (shared by every page)."""

from __future__ import annotations

import streamlit as st

from core.datasets import Dataset, load_builtin

__all__ = ["current_dataset", "load_dataset"]


@st.cache_resource(show_spinner="Loading dataset…")
def load_dataset(name: str) -> Dataset:
    """Built-in datasets, loaded once per process and shared read-only by all sessions."""
    return load_builtin(name)


def current_dataset() -> Dataset:
    """The dataset selected on the Data page (digits by default)."""
    return load_dataset(st.session_state.get("dataset", "digits"))
