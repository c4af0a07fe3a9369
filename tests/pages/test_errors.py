"""Unexpected errors: a shared deployment shows an error id and no traceback; a local lab shows the trace."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.deployment import shared_deployment
from core.settings import SHARED_ENV


def _failing_page():
    import streamlit as st

    from ui.errors import configure_error_details, run_guarded

    shared = configure_error_details()

    def page():
        st.write("before the failure")
        raise RuntimeError("secret path /srv/app/core/x.py leaked")

    run_guarded(page, shared=shared)
    st.write("the app kept running")


def _error_texts(at):
    return [e.value for e in at.error]


def test_shared_deployment_shows_an_error_id_and_no_traceback(monkeypatch, caplog):
    monkeypatch.setenv(SHARED_ENV, "1")
    at = AppTest.from_function(_failing_page)
    with caplog.at_level(logging.ERROR, logger="keras_lab"):
        at.run()
    assert not at.exception, "a traceback element reached the visitor"
    [message] = _error_texts(at)
    assert "error id" in message and "secret path" not in message
    error_id = message.split("error id ")[1].split(")")[0]
    assert len(error_id) == 8
    logged = [r for r in caplog.records if error_id in r.getMessage()]
    assert logged and "secret path" in str(logged[0].exc_info[1]), "the full trace must reach the server log"
    assert any("the app kept running" in m.value for m in at.markdown)


def test_local_lab_keeps_the_full_trace(monkeypatch):
    monkeypatch.setenv(SHARED_ENV, "0")
    at = AppTest.from_function(_failing_page)
    at.run()
    assert at.exception and "secret path" in at.exception[0].message
    assert "error id" in _error_texts(at)[0]


def test_shared_setting_reads_the_environment_and_community_cloud_paths():
    assert shared_deployment({SHARED_ENV: "yes"}) is True
    assert shared_deployment({SHARED_ENV: "0"}, app_dir=Path("/mount/src/keras-lab")) is False
    assert shared_deployment({}, app_dir=Path("/mount/src/keras-lab")) is True
    assert shared_deployment({}, app_dir=Path("/home/me/keras-lab")) is False
    with pytest.raises(ValueError, match="KERAS_LAB_SHARED must be 1 or 0"):
        shared_deployment({SHARED_ENV: "maybe"})
