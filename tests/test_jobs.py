"""JobManager: queue, lifecycle states, stop within one batch, failures that leave the app up, recovery."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from core.datasets import load_builtin
from core.jobs import JobManager, QueueFullError, TrainRequest, dataset_fingerprint
from core.runs import RunStore, RunStoreError
from core.training import TrainConfig, TrainConfigError


def _wait(condition, what: str, deadline_s: float = 180.0):
    """Poll until condition() is truthy; fail with a message naming what never happened."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"gave up waiting for: {what}")


@pytest.fixture(scope="module")
def iris():
    return load_builtin("iris")


@pytest.fixture(scope="module")
def mlp(iris):
    from core.specs import preset

    return preset("Small MLP", iris)


@pytest.fixture
def managers():
    made: list[JobManager] = []
    yield made
    for manager in made:
        manager.shutdown(timeout=60)


def _gated_builder(gate: threading.Event):
    """build_model that holds the worker until the test opens the gate (keeps a job 'running')."""
    def build(spec, dataset, notes=None):
        from core.models import build_model

        assert gate.wait(120), "the test never opened the gate"
        return build_model(spec, dataset, notes=notes)
    return build


def _done(manager, run_id):
    snap = manager.snapshot(run_id)
    return snap is not None and not snap.active


def test_submit_rejects_bad_settings_before_creating_a_run(iris, mlp, managers):
    manager = JobManager(max_queue=2)
    managers.append(manager)
    with pytest.raises(TrainConfigError, match="batch size must be >= 1, got 0"):
        manager.submit(TrainRequest(iris, mlp, TrainConfig(batch_size=0)))
    assert manager.store.list_runs() == []


@pytest.mark.slow
def test_queue_lifecycle_one_at_a_time_then_both_complete(iris, mlp, managers):
    gate = threading.Event()
    manager = JobManager(max_queue=1, build_model=_gated_builder(gate))
    managers.append(manager)
    config = TrainConfig(epochs=2, batch_size=16)
    first = manager.submit(TrainRequest(iris, mlp, config, label="first"))
    assert manager.store.read_status(first)["state"] in ("queued", "running")
    _wait(lambda: manager.snapshot(first).state == "running", "the first job to start")
    second = manager.submit(TrainRequest(iris, mlp, config, label="second"))
    assert manager.store.read_status(second)["state"] == "queued"  # the folder exists right away
    assert manager.queue_position(second) == 1 and manager.snapshot(second).queue_position == 1
    assert manager.active_run_ids() == [first, second]
    with pytest.raises(QueueFullError, match="the queue is full: 1 runs are waiting"):
        manager.submit(TrainRequest(iris, mlp, config))
    time.sleep(0.5)
    assert manager.snapshot(second).state == "queued"  # one training at a time
    gate.set()
    _wait(lambda: _done(manager, first) and _done(manager, second), "both jobs to finish")
    for run_id in (first, second):
        status = manager.store.read_status(run_id)
        assert status["state"] == "completed", status
        files = {p.name for p in manager.store.run_dir(run_id).iterdir()}
        assert files == {"config.json", "metrics.jsonl", "status.json", "model.keras", "predictions.npz"}
        assert [r["epoch"] for r in manager.store.read_metrics(run_id)] == [1, 2]
    assert manager.active_run_ids() == []
    config_json = manager.store.read_config(second)
    assert config_json["label"] == "second" and config_json["model"] == mlp.to_dict()
    assert config_json["training"] == config.to_dict()
    assert config_json["split"] == {"seed": 0, "val_fraction": 0.15, "test_fraction": 0.15}
    assert config_json["dataset"]["fingerprint"] == dataset_fingerprint(iris)
    assert config_json["dataset"]["n_classes"] == 3 and config_json["dataset"]["input_shape"] == [4]
    assert set(config_json["versions"]) == {"python", "tensorflow", "keras", "numpy", "sklearn"}


@pytest.mark.slow
def test_stop_takes_effect_within_one_batch_and_keeps_the_model(iris, mlp, managers):
    manager = JobManager()
    managers.append(manager)
    run_id = manager.submit(TrainRequest(iris, mlp, TrainConfig(epochs=500, batch_size=4)))
    _wait(lambda: (manager.snapshot(run_id).batch_losses or [(0, 0)])[-1][0] >= 40, "40 training batches")
    assert manager.stop(run_id)
    _wait(lambda: _done(manager, run_id), "the stopped job to end")
    status = manager.store.read_status(run_id)
    assert status["state"] == "stopped" and "stopped by request" in status["message"]
    assert status["steps_after_stop_request"] <= 1  # only the batch in flight when stop was asked
    records = manager.store.read_metrics(run_id)
    assert 1 <= len(records) < 500 and records[-1].get("partial") is True
    assert manager.store.model_path(run_id).is_file()
    assert len(manager.store.read_predictions(run_id)["y_true"]) > 0  # Evaluate works on stopped runs
    assert manager.snapshot(run_id).state == "stopped"
    assert not manager.stop(run_id)  # nothing left to stop


@pytest.mark.slow
def test_a_queued_job_can_be_taken_off_the_queue(iris, mlp, managers):
    gate = threading.Event()
    manager = JobManager(build_model=_gated_builder(gate))
    managers.append(manager)
    config = TrainConfig(epochs=1, batch_size=16)
    first = manager.submit(TrainRequest(iris, mlp, config))
    second = manager.submit(TrainRequest(iris, mlp, config))
    assert manager.stop(second)
    status = manager.store.read_status(second)
    assert status["state"] == "stopped" and "before it started" in status["message"]
    assert manager.active_run_ids() == [first]
    gate.set()
    _wait(lambda: _done(manager, first), "the first job to finish")
    assert manager.store.read_metrics(second) == []


@pytest.mark.slow
def test_a_double_click_starts_one_job(iris, mlp, managers):
    gate = threading.Event()
    manager = JobManager(build_model=_gated_builder(gate))
    managers.append(manager)
    request = TrainRequest(iris, mlp, TrainConfig(epochs=1))
    a = manager.submit(request, idempotency_key="session-1:abc")
    b = manager.submit(request, idempotency_key="session-1:abc")
    c = manager.submit(request, idempotency_key="session-2:abc")
    assert a == b != c
    assert len(manager.store.list_runs()) == 2
    manager.stop(c)
    manager.stop(a)
    gate.set()


class _DiskFullStore(RunStore):
    """Refuses metric writes the way a full disk does (the real errno path is tested in test_runs.py)."""

    full = True

    def append_metrics(self, run_id, record):
        if self.full:
            raise RunStoreError(errno.ENOSPC, f"cannot write metrics of run {run_id}: the disk is full")
        super().append_metrics(run_id, record)


@pytest.mark.slow
def test_disk_full_fails_that_run_with_a_message_and_the_manager_keeps_working(iris, mlp, managers, tmp_path):
    store = _DiskFullStore(tmp_path / "full")
    manager = JobManager(store)
    managers.append(manager)
    config = TrainConfig(epochs=2, batch_size=16)
    failed = manager.submit(TrainRequest(iris, mlp, config))
    _wait(lambda: _done(manager, failed), "the run to fail")
    status = store.read_status(failed)
    assert status["state"] == "failed" and status["message"].endswith("the disk is full")
    store.full = False
    ok = manager.submit(TrainRequest(iris, mlp, config))
    _wait(lambda: _done(manager, ok), "the next run to finish")
    assert store.read_status(ok)["state"] == "completed"


@pytest.mark.slow
def test_a_model_that_cannot_be_built_fails_with_its_message(iris, mlp, managers):
    def broken(spec, dataset, notes=None):
        raise ValueError("Dense units must be >= 1, got 0")

    manager = JobManager(build_model=broken)
    managers.append(manager)
    run_id = manager.submit(TrainRequest(iris, mlp, TrainConfig(epochs=1)))
    _wait(lambda: _done(manager, run_id), "the run to fail")
    assert manager.store.read_status(run_id) | {"time": 0} == {
        "state": "failed", "message": "Dense units must be >= 1, got 0", "time": 0}
    assert manager.snapshot(run_id).message == "Dense units must be >= 1, got 0"


def test_start_up_marks_runs_of_dead_processes_interrupted_but_not_live_ones(tmp_path):
    store = RunStore(tmp_path / "runs")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    orphan = store.create_run({})
    store.write_status(orphan, "running", pid=dead.pid, host=host)
    never_started = store.create_run({})  # queued, no owner recorded
    elsewhere = store.create_run({})  # a second app process on this machine that is alive
    store.write_status(elsewhere, "running", pid=os.getppid(), host=host)
    finished = store.create_run({})
    store.write_status(finished, "completed", "ok")
    manager = JobManager(store)
    try:
        assert sorted(manager.interrupted) == sorted([orphan, never_started])
        states = {i.run_id: i.status for i in store.list_runs()}
        assert states == {orphan: "interrupted", never_started: "interrupted", elsewhere: "running",
                          finished: "completed"}
        assert "the app stopped while this run was running" in store.read_status(orphan)["message"]
    finally:
        manager.shutdown()


@pytest.mark.slow
def test_shutdown_stops_the_running_job_and_interrupts_the_queue(iris, mlp, tmp_path):
    gate = threading.Event()
    manager = JobManager(RunStore(tmp_path / "runs"), build_model=_gated_builder(gate))
    running = manager.submit(TrainRequest(iris, mlp, TrainConfig(epochs=500, batch_size=4)))
    waiting = manager.submit(TrainRequest(iris, mlp, TrainConfig(epochs=1)))
    _wait(lambda: manager.snapshot(running).state == "running", "the first job to start")
    gate.set()
    manager.shutdown(timeout=120)
    assert manager.store.read_status(running)["state"] == "stopped"
    assert manager.store.read_status(waiting)["state"] == "interrupted"
    with pytest.raises(RuntimeError, match="shut down"):
        manager.submit(TrainRequest(iris, mlp, TrainConfig(epochs=1)))
