"""Shared fixtures: a temporary run store per test, clean Streamlit caches for AppTest, files a download
button served, and no ImageNet downloads."""

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


@pytest.fixture
def served_files(monkeypatch):
    """URL -> (file name, bytes) of every file a download button handed to Streamlit (AppTest serves none)."""
    from streamlit.runtime.media_file_manager import MediaFileManager

    files = {}
    original = MediaFileManager.add

    def spy(self, path_or_data, mimetype, coordinates, file_name=None, is_for_static_download=False):
        url = original(self, path_or_data, mimetype, coordinates, file_name, is_for_static_download)
        files[url] = (file_name, path_or_data)
        return url

    monkeypatch.setattr(MediaFileManager, "add", spy)
    return files


@pytest.fixture
def no_downloads(monkeypatch):
    """ImageNet weights unavailable, as offline: asking Keras for them raises what its download raises (the
    Transfer learning preset starts from random weights); the memo of failures starts empty."""
    import keras

    import core.models as models

    real = keras.applications.MobileNetV2

    def offline(*args, weights="imagenet", **kwargs):
        if weights == "imagenet":
            raise Exception("URL fetch failure: -- [Errno -2] Name or service not known")
        return real(*args, weights=weights, **kwargs)

    monkeypatch.setattr(keras.applications, "MobileNetV2", offline)
    monkeypatch.setattr(models, "_FAILED_WEIGHTS", {})
