"""AppTest of the Sweeps page: a sweep started from the page runs its trials as runs, survives a new session,
shows Optuna's figures, and its best trial's settings can be taken over."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from core.runs import RunStore
from core.sweeps import journal_path
from tests.pages.test_page_runs import shown

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def _page(query: dict | None = None):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=90)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    at.switch_page("pages/sweep.py")
    at.run()
    assert not at.exception, at.exception
    return at


def _driver(name: str):
    from ui.sweep import driver

    return driver(str(RunStore().root), name)


@pytest.mark.slow
def test_a_sweep_started_on_the_page_runs_its_trials_and_a_new_session_finds_it(clean_streamlit_caches,
                                                                                monkeypatch):
    monkeypatch.setenv("KERAS_LAB_RUNNER", "thread")  # trains in this process: no worker start-up per test
    at = _page()
    assert any("No sweep yet" in i.value for i in at.info)
    at.multiselect(key="sweep_vary").set_value(["optimizer"])
    at.multiselect(key="sweep_optimizer").set_value(["sgd", "adam"])
    at.selectbox(key="sweep_sampler").set_value("grid")
    at.number_input(key="sweep_trials").set_value(5)
    at.text_input(key="sweep_name").input("two optimizers")
    at.button(key="sweep_start").click()
    at.run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    driver = _driver("two optimizers")
    assert driver is not None
    driver.join(300)
    assert driver.error is None and not driver.running

    again = _page({"sweep": "two optimizers"})  # a reload: a new session, the sweep named in the URL
    assert again.selectbox(key="sweep_pick").value == "two optimizers"
    counts = {m.label: m.value for m in again.metric}
    assert counts["Complete"] == "2" and counts["Running"] == "0"
    table = again.dataframe[0].value
    assert sorted(table["param optimizer"]) == ["adam", "sgd"] and set(table["state"]) == {"complete"}
    study = optuna.load_study(study_name="two optimizers",
                              storage=optuna.storages.JournalStorage(
                                  optuna.storages.journal.JournalFileBackend(str(journal_path(RunStore().root)))))
    runs = {info.run_id: info for info in RunStore().list_runs()}
    assert {t.user_attrs["run_id"] for t in study.trials} == set(runs)  # every trial is an ordinary run
    assert all(info.config["group"] == "sweep:two optimizers" for info in runs.values())
    best = max(study.trials, key=lambda t: t.value)
    assert any(f"Best: trial {best.number}" in s.value for s in again.success)

    again.button(key="sweep_use").click()
    again.run()
    assert again.session_state["train_config"]["optimizer"] == best.params["optimizer"]


def test_a_bad_plan_is_refused_with_a_message_and_nothing_is_created(clean_streamlit_caches):
    at = _page()
    at.multiselect(key="sweep_vary").set_value(["learning_rate"])
    at.number_input(key="sweep_learning_rate_lo").set_value(0.1)
    at.number_input(key="sweep_learning_rate_hi").set_value(0.01)
    at.button(key="sweep_start").click()
    at.run()
    assert not at.exception
    assert [shown(e.value) for e in at.error] == [
        "Cannot start the sweep: learning_rate: the range must lie within 1e-05 … 1 with low < high, got 0.1 … 0.01"]
    assert not journal_path(RunStore().root).exists() or not optuna.study.get_all_study_names(
        optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal_path(RunStore().root)))))
