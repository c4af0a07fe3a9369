"""Sweeps on Optuna: trial parameters -> runs, pruning through the job engine, two workers on one study."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from core.datasets import load_builtin
from core.jobs import JobManager, TrainRequest
from core.runs import RunStore
from core.specs import LayerSpec, ModelSpec, preset
from core.sweeps import (
    Dimension,
    SweepDriver,
    SweepError,
    SweepPlan,
    apply_params,
    best_trial,
    compare_optimizers_plan,
    create_study,
    open_storage,
    study_rows,
)
from core.training import TrainConfig
from tests.helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def iris():
    return load_builtin("iris")


def _base(dataset, spec, config):
    return {"dataset": {"name": dataset.name, "subset": None, "seed": 0, "upload": False},
            "spec": spec.to_dict(), "config": config.to_dict()}


def test_apply_params_changes_the_model_and_settings_it_names_and_nothing_else():
    spec = ModelSpec((LayerSpec("Conv2D", {"filters": 12, "kernel_size": 3}), LayerSpec("Dropout", {"rate": 0.5}),
                      LayerSpec("Dense", {"units": 10})), name="net")
    config = TrainConfig(epochs=3, learning_rate=1e-3)
    new_spec, new_config = apply_params(spec, config, {"width": 1.5, "dropout": 0.1, "learning_rate": 0.02,
                                                       "optimizer": "sgd"})
    assert [layer.params for layer in new_spec.layers] == [{"filters": 18, "kernel_size": 3}, {"rate": 0.1},
                                                           {"units": 15}]
    assert (new_config.learning_rate, new_config.optimizer, new_config.epochs) == (0.02, "sgd", 3)
    assert new_spec.name == "net (width 1.5, dropout 0.1)"
    same_spec, _ = apply_params(spec, config, {"batch_size": 64})
    assert same_spec == spec


def test_grid_values_cover_the_range_and_a_grid_never_runs_a_point_twice():
    assert Dimension("learning_rate", "float", low=1e-4, high=1e-1, log=True).grid_values() == [1e-4, 1e-3, 1e-2, 0.1]
    assert Dimension("epochs", "int", low=2, high=5).grid_values() == [2, 3, 4, 5]
    plan = SweepPlan((Dimension("optimizer", "choice", choices=("sgd", "adam")),), sampler="grid", n_trials=50)
    assert plan.trials_to_run() == 2
    assert compare_optimizers_plan(seed=5).trials_to_run() == 4


@pytest.mark.parametrize("plan, message", [
    (SweepPlan(()), "at least one setting"),
    (SweepPlan((Dimension("optimizer", "choice", choices=("nesterov",)),)), "choose among sgd, adam"),
    (SweepPlan((Dimension("learning_rate", "float", low=0.1, high=0.01, log=True),)), "low < high"),
    (SweepPlan((Dimension("dropout", "float", low=0.0, high=0.5),), sampler="bayes"), "sampler must be one of"),
    (SweepPlan((Dimension("dropout", "float", low=0.0, high=0.5),), n_trials=0), "from 1 to"),
])
def test_a_bad_plan_is_refused_naming_what_was_given(plan, message):
    with pytest.raises(SweepError, match=message):
        plan.check()


@pytest.mark.slow
def test_an_epoch_hook_that_asks_to_prune_ends_the_run_pruned_with_its_reason(iris):
    manager = JobManager()
    try:
        seen = []

        def hook(record):
            seen.append(record["epoch"])
            return "pruned: hopeless" if record["epoch"] == 2 else None

        run_id = manager.submit_many([TrainRequest(iris, preset("Small MLP", iris), TrainConfig(epochs=8))],
                                     epoch_hook=hook)[0]
        wait_until(lambda: not manager.snapshot(run_id).active, "the run to end")
        status = manager.store.read_status(run_id)
        assert (status["state"], status["message"]) == ("pruned", "pruned: hopeless")
        full = [r["epoch"] for r in manager.store.read_metrics(run_id) if not r.get("partial")]
        assert full == [1, 2] and seen[:2] == [1, 2]  # stopped in the epoch after the prune, not at the end
    finally:
        manager.shutdown(timeout=60)


@pytest.mark.slow
def test_a_grid_sweep_runs_each_trial_as_an_ordinary_run_and_tells_optuna_its_value(iris, tmp_path):
    spec, config = preset("Small MLP", iris), TrainConfig(epochs=2, batch_size=32)
    storage = open_storage(tmp_path / "optuna.journal")
    plan = SweepPlan((Dimension("optimizer", "choice", choices=("sgd", "adam")),), sampler="grid", pruner="none",
                     n_trials=10)
    create_study(storage, "opt", plan, _base(iris, spec, config))
    with pytest.raises(SweepError, match="exists already"):
        create_study(storage, "opt", plan, _base(iris, spec, config))
    manager = JobManager()
    try:
        driver = SweepDriver(manager, storage, "opt", iris).start()
        driver.join(300)
        assert not driver.running and driver.error is None
        trials = optuna.load_study(study_name="opt", storage=storage).trials
        assert sorted(t.params["optimizer"] for t in trials) == ["adam", "sgd"]  # the grid, once each
        for trial in trials:
            run_id = trial.user_attrs["run_id"]
            cfg = manager.store.read_config(run_id)
            assert cfg["group"] == "sweep:opt" and cfg["trial"]["number"] == trial.number
            assert cfg["training"]["optimizer"] == trial.params["optimizer"]
            last = [r for r in manager.store.read_metrics(run_id) if r.get("kind") == "epoch"][-1]
            assert trial.state == optuna.trial.TrialState.COMPLETE and trial.value == last["val_accuracy"]
        rows = study_rows(optuna.load_study(study_name="opt", storage=storage))
        assert {r["run"] for r in rows} == {t.user_attrs["run_id"] for t in trials}
        best = best_trial(optuna.load_study(study_name="opt", storage=storage))
        assert best.value == max(t.value for t in trials)
    finally:
        manager.shutdown(timeout=60)


@pytest.mark.slow
def test_a_sweep_in_training_processes_runs_complete_trials_without_waiting_to_poll(tmp_path):
    digits = load_builtin("digits")
    spec, config = preset("Small MLP", digits), TrainConfig(epochs=4, batch_size=32)
    storage = open_storage(tmp_path / "optuna.journal")
    plan = SweepPlan((Dimension("learning_rate", "float", low=1e-3, high=1e-2, log=True),), sampler="grid",
                     pruner="none", n_trials=3)
    create_study(storage, "proc", plan, _base(digits, spec, config))
    manager = JobManager(RunStore(tmp_path / "runs"), runner="process")
    try:
        # an hour between polls: the driver must be woken by each run's end to queue and tell the next
        driver = SweepDriver(manager, storage, "proc", digits, poll_s=3600).start()
        pids: set[int] = set()
        wait_until(lambda: pids.update(manager.training_pids()) or not driver.running, "the sweep to end")
        assert driver.error is None
        trials = optuna.load_study(study_name="proc", storage=storage).trials
        assert len(trials) == 3 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
        assert len(pids) == 1, pids  # one training process for the whole sweep
        for trial in trials:
            run_id = trial.user_attrs["run_id"]
            store = manager.store
            assert store.read_status(run_id)["state"] == "completed"
            assert trial.value == store.read_metrics(run_id)[-1]["val_accuracy"]
            assert store.model_path(run_id).is_file() and store.read_predictions(run_id)["probs"].shape[1] == 10
            assert list((store.run_dir(run_id) / "tensorboard").rglob("events.out.tfevents.*"))
    finally:
        manager.shutdown(timeout=60)


@pytest.mark.slow
def test_two_worker_processes_share_one_study_and_run_every_trial_once(iris, tmp_path):
    journal = tmp_path / "optuna.journal"
    spec, config = preset("Small MLP", iris), TrainConfig(epochs=2, batch_size=32)
    plan = SweepPlan((Dimension("learning_rate", "float", low=1e-3, high=1e-1, log=True),), sampler="random",
                     pruner="median", n_trials=6)
    create_study(open_storage(journal), "shared", plan, _base(iris, spec, config))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = [subprocess.Popen([sys.executable, "-m", "core.sweeps", "--storage", str(journal), "--study", "shared",
                                 "--runs", str(tmp_path / f"runs{i}")], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outputs = [w.communicate(timeout=600) for w in workers]
    for worker, (_out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err[-2000:]
        assert "locked" not in err.lower()
    trials = optuna.load_study(study_name="shared", storage=open_storage(journal)).trials
    assert 6 <= len(trials) <= 7  # each worker checks the budget before asking: at most one extra
    assert all(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in trials)
    runs = []
    for i in range(2):
        store = RunStore(tmp_path / f"runs{i}")
        runs += [json.loads((store.run_dir(info.run_id) / "config.json").read_text())["trial"]["number"]
                 for info in store.list_runs()]
    assert sorted(runs) == sorted(t.number for t in trials)  # every trial ran, and ran once
