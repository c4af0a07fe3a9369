"""core.settings: every environment variable is read when asked, with its default and its bad values handled."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from core import settings
from core.runs import RunStore

_JOB_VARIABLES = ("KERAS_LAB_RUNNER", "KERAS_LAB_MAX_JOBS", "KERAS_LAB_MAX_QUEUE", "KERAS_LAB_MAX_PER_WORKSPACE")


@pytest.fixture
def no_job_variables(monkeypatch):
    for name in _JOB_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_the_runs_folder_follows_the_variable_at_each_call(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_LAB_RUNS", str(tmp_path / "a"))
    assert settings.runs_dir() == tmp_path / "a"
    monkeypatch.setenv("KERAS_LAB_RUNS", str(tmp_path / "b"))
    assert RunStore().root == tmp_path / "b"
    monkeypatch.delenv("KERAS_LAB_RUNS")
    assert settings.runs_dir() == Path("runs")


def test_job_settings_have_defaults(no_job_variables):
    assert settings.job_settings() == settings.JobSettings(runner="process", max_jobs=1, max_queue=8,
                                                           max_per_workspace=5)


def test_job_settings_are_read_raised_to_their_least_value_or_logged_and_defaulted(no_job_variables, monkeypatch,
                                                                                   caplog):
    monkeypatch.setenv("KERAS_LAB_RUNNER", " Thread ")
    monkeypatch.setenv("KERAS_LAB_MAX_JOBS", "0")  # at least one training at a time
    monkeypatch.setenv("KERAS_LAB_MAX_QUEUE", "3")
    monkeypatch.setenv("KERAS_LAB_MAX_PER_WORKSPACE", "many")
    with caplog.at_level(logging.WARNING, logger="core.settings"):
        got = settings.job_settings()
    assert got == settings.JobSettings(runner="thread", max_jobs=1, max_queue=3, max_per_workspace=5)
    assert ["KERAS_LAB_MAX_PER_WORKSPACE must be a whole number, got 'many'; using 5"] == caplog.messages
    monkeypatch.setenv("KERAS_LAB_RUNNER", "fork")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="core.settings"):
        assert settings.job_settings().runner == "process"
    assert "KERAS_LAB_RUNNER must be process or thread" in caplog.text


def test_the_server_job_manager_is_made_from_the_job_settings(no_job_variables, monkeypatch,
                                                              clean_streamlit_caches):
    import streamlit as st

    from ui.jobs import job_manager

    monkeypatch.setenv("KERAS_LAB_RUNNER", "thread")
    monkeypatch.setenv("KERAS_LAB_MAX_JOBS", "2")
    monkeypatch.setenv("KERAS_LAB_MAX_QUEUE", "0")
    monkeypatch.setenv("KERAS_LAB_MAX_PER_WORKSPACE", "4")
    for shared, per_workspace in (("0", None), ("1", 4)):
        monkeypatch.setenv(settings.SHARED_ENV, shared)
        st.cache_resource.clear()  # releases (shuts down) the previous manager
        manager = job_manager()
        assert (manager.runner, manager.max_concurrent, manager.max_queue, manager.max_per_workspace) == \
            ("thread", 2, 0, per_workspace)


@pytest.mark.parametrize(("raw", "expected"), [("1", True), (" YES ", True), ("on", True), ("true", True),
                                                ("0", False), ("off", False), ("No", False), ("", None)])
def test_the_shared_setting_is_on_off_or_unset(raw, expected):
    assert settings.shared_setting({settings.SHARED_ENV: raw}) is expected
    assert settings.shared_setting({}) is None


def test_a_shared_setting_that_is_neither_on_nor_off_is_refused(monkeypatch):
    monkeypatch.setenv(settings.SHARED_ENV, "maybe")
    with pytest.raises(ValueError, match="KERAS_LAB_SHARED must be 1 or 0 \\(true/false\\), got 'maybe'"):
        settings.shared_setting()


def test_sign_in_provider_devices_and_cluster(monkeypatch):
    for name in ("KERAS_LAB_AUTH_PROVIDER", "KERAS_LAB_DEVICES", "TF_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    assert (settings.auth_provider(), settings.devices(), settings.tf_config()) == (None, "gpu", None)
    monkeypatch.setenv("KERAS_LAB_AUTH_PROVIDER", " google ")
    monkeypatch.setenv("KERAS_LAB_DEVICES", "CPU")
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {}}')
    assert (settings.auth_provider(), settings.devices(), settings.tf_config()) == ("google", "cpu",
                                                                                    '{"cluster": {}}')
    monkeypatch.setenv("KERAS_LAB_DEVICES", " ")
    assert settings.devices() == "gpu"


def test_keras_home_follows_the_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "k"))
    assert settings.keras_home() == tmp_path / "k"
    from core.datasets import keras_cache_dir

    assert keras_cache_dir() == tmp_path / "k" / "datasets"
