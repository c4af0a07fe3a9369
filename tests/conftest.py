"""Shared fixtures: a temporary run store per test, and clean Streamlit caches for AppTest."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_run_store(tmp_path, monkeypatch):
    """Every test gets its own run folder (KERAS_LAB_RUNS) so nothing touches ./runs."""
    runs = tmp_path / "runs"
    monkeypatch.setenv("KERAS_LAB_RUNS", str(runs))
    return runs


@pytest.fixture
def clean_streamlit_caches():
    """AppTest shares the process's caches; clear them so tests do not see each other's resources."""
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()
