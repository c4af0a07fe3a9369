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
from core.i18n import _, language_of
from core.jobs import JobManager, QueueFullError, TrainRequest, dataset_fingerprint
from core.runs import RunStore, RunStoreError
from core.training import TrainConfig, TrainConfigError
from tests.core.test_runs import DiskFull, leftovers, make_read_only
from tests.helpers import wait_until as _wait


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
    with pytest.raises(TrainConfigError, match="batch size must be between 1 and 65,536, got 0"):
        manager.submit(TrainRequest(iris, mlp, TrainConfig(batch_size=0)))
    with pytest.raises(TrainConfigError, match="fine-tuning needs a frozen pre-trained backbone"):
        manager.submit(TrainRequest(iris, mlp, TrainConfig(fine_tune_epochs=2)))  # an MLP has nothing to unfreeze
    assert manager.store.list_runs() == []


@pytest.mark.slow
def test_a_run_writes_its_messages_in_the_language_of_its_request(iris, mlp, managers, tmp_path):
    """Worker threads have no visitor: every message about a run, whoever's thread writes it, is in the
    language of its request, which is by default the language of the code that made it."""
    gate = threading.Event()
    manager = JobManager(RunStore(tmp_path / "runs"), max_queue=2, build_model=_gated_builder(gate))
    managers.append(manager)
    config = TrainConfig(epochs=2, batch_size=16)
    english = TrainRequest(iris, mlp, config)
    with language_of("zh"):
        chinese = TrainRequest(iris, mlp, config)
        said = {"waiting": _("waiting for a worker"), "training": _("training"),
                "taken off": _("stopped before it started (taken off the queue)")}
    assert (english.language, chinese.language) == ("en", "zh")
    assert said["waiting"] != "waiting for a worker" and said["training"] != "training"  # the catalog has them
    first, taken_off, second = (manager.submit(r) for r in (chinese, chinese, english))
    assert manager.store.read_status(taken_off)["message"] == said["waiting"]
    manager.stop(taken_off)  # from this (English) thread
    assert manager.store.read_status(taken_off)["message"] == said["taken off"]
    _wait(lambda: manager.snapshot(first).state == "running", "the first job to start")
    assert manager.store.read_status(first)["message"] == said["training"]  # written by the worker thread
    gate.set()
    _wait(lambda: _done(manager, first) and _done(manager, second), "both jobs to finish")
    status = manager.store.read_status(first)
    with language_of("zh"):
        done = _("{epochs} epochs, test accuracy {accuracy}").format(epochs=2,
                                                                       accuracy=f"{status['test_accuracy']:.3f}")
    assert status["state"] == "completed" and status["message"].startswith(done), status["message"]
    assert manager.store.read_status(second)["message"].startswith("2 epochs, test accuracy ")


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
        assert files == {"config.json", "metrics.jsonl", "status.json", "model.keras", "predictions.npz",
                         "tensorboard"}
        assert [r["epoch"] for r in manager.store.read_metrics(run_id)] == [1, 2]
    assert manager.active_run_ids() == []
    config_json = manager.store.read_config(second)
    assert config_json["label"] == "second" and config_json["model"] == mlp.to_dict()
    assert config_json["training"] == config.to_dict()
    assert config_json["split"] == {"kind": "pooled", "seed": 0, "val_fraction": 0.15, "test_fraction": 0.15}
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
    per_call = manager.store.read_config(run_id)["strategy"]["steps_per_call"]
    assert status["steps_after_stop_request"] <= per_call  # only the step call in flight when stop was asked
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


# ---- queue accounting, all-or-nothing submits and store faults (no TensorFlow: _run_job is replaced) ----

class HeldManager(JobManager):
    """A JobManager whose runs hold their worker until `gate` opens, then complete (no training)."""

    def __init__(self, *args, **kwargs) -> None:
        self.gate = threading.Event()
        super().__init__(*args, **kwargs)

    def _run_job(self, job, runner):
        assert self.gate.wait(120), "the test never opened the gate"
        with self._cond:
            self._finish(job, "completed", "held, then done")


def _held(managers, tmp_path, **kwargs) -> HeldManager:
    manager = HeldManager(RunStore(tmp_path / "runs"), **kwargs)
    managers.append(manager)
    return manager


def _request(iris, mlp, label=None):
    return TrainRequest(iris, mlp, TrainConfig(epochs=1), label=label)


def _active(manager):
    return len(manager.active_run_ids())


def test_back_to_back_submits_count_a_job_an_idle_worker_is_about_to_take_as_not_waiting(iris, mlp, managers,
                                                                                        tmp_path):
    manager = _held(managers, tmp_path, max_concurrent=1, max_queue=1)
    with manager._cond:  # the worker cannot take the first job yet: it is queued while the worker is idle
        first = manager.submit(_request(iris, mlp, "first"))
        second = manager.submit(_request(iris, mlp, "second"))  # used to be refused: "1 runs are waiting"
        assert manager.active_run_ids() == [first, second]
        with pytest.raises(QueueFullError, match="the queue is full: 1 runs are waiting") as err:
            manager.submit(_request(iris, mlp, "third"))
    assert (err.value.free, err.value.capacity) == (0, 2)
    _wait(lambda: manager.snapshot(first).state == "running", "the first job to start")
    with pytest.raises(QueueFullError):  # the same with the first one running
        manager.submit(_request(iris, mlp, "third"))
    assert manager.queue_position(second) == 1
    assert sorted(i.run_id for i in manager.store.list_runs()) == sorted([first, second])
    manager.gate.set()
    _wait(lambda: _active(manager) == 0, "both jobs to finish")
    again = [manager.submit(_request(iris, mlp)), manager.submit(_request(iris, mlp))]  # room again
    _wait(lambda: all(_done(manager, r) for r in again), "the next two to finish")


def test_max_queue_zero_allows_one_job_per_worker(iris, mlp, managers, tmp_path):
    manager = _held(managers, tmp_path, max_concurrent=2, max_queue=0)
    a, b = manager.submit(_request(iris, mlp)), manager.submit(_request(iris, mlp))
    with pytest.raises(QueueFullError, match="0 runs are waiting"):
        manager.submit(_request(iris, mlp))
    manager.gate.set()
    _wait(lambda: _done(manager, a) and _done(manager, b), "both jobs to finish")


def test_concurrent_submits_never_exceed_the_room(iris, mlp, managers, tmp_path):
    manager = _held(managers, tmp_path, max_concurrent=1, max_queue=3)
    start = threading.Barrier(12)
    accepted, refused, other = [], [], []

    def submit(n):
        start.wait()
        try:
            accepted.append(manager.submit(_request(iris, mlp, f"job {n}")))
        except QueueFullError:
            refused.append(n)
        except BaseException as exc:  # noqa: BLE001 - reported below
            other.append(exc)

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert other == [] and (len(accepted), len(refused)) == (4, 8)
    assert sorted(manager.active_run_ids()) == sorted(accepted)
    assert sorted(i.run_id for i in manager.store.list_runs()) == sorted(accepted)  # no phantom folders
    manager.gate.set()
    _wait(lambda: _active(manager) == 0, "every accepted job to finish")
    assert {manager.store.read_status(r)["state"] for r in accepted} == {"completed"}


def test_submit_many_queues_all_or_none(iris, mlp, managers, tmp_path):
    manager = _held(managers, tmp_path, max_concurrent=1, max_queue=2)
    first = manager.submit(_request(iris, mlp))
    with pytest.raises(QueueFullError, match=r"3 runs do not fit in the queue: room for 2 more .*nothing was "
                                             r"queued") as err:
        manager.submit_many([_request(iris, mlp) for _ in range(3)])
    assert (err.value.free, err.value.capacity) == (2, 3)
    assert manager.active_run_ids() == [first] and len(manager.store.list_runs()) == 1
    pair = manager.submit_many([_request(iris, mlp, "a"), _request(iris, mlp, "b")], idempotency_key="k")
    assert manager.submit_many([_request(iris, mlp)], idempotency_key="k") == pair  # a double click
    assert manager.active_run_ids() == [first, *pair]
    assert [manager.snapshot(r).label for r in pair] == ["a", "b"]
    with pytest.raises(QueueFullError, match="4 runs can never be queued together: at most 3"):
        manager.submit_many([_request(iris, mlp) for _ in range(4)])
    with pytest.raises(ValueError, match="nothing to queue"):
        manager.submit_many([])
    manager.gate.set()
    _wait(lambda: _active(manager) == 0, "every job to finish")


def test_a_submit_many_that_fails_midway_removes_the_runs_it_created(iris, mlp, managers, tmp_path, monkeypatch):
    manager = _held(managers, tmp_path, max_concurrent=1, max_queue=8)
    disk = DiskFull(monkeypatch, manager.store.root, after=4)  # two runs (config + status each), then full
    with pytest.raises(RunStoreError, match="the disk is full"):
        manager.submit_many([_request(iris, mlp) for _ in range(4)])
    assert leftovers(manager.store.root) == [] and manager.active_run_ids() == []
    disk.after = None
    assert len(manager.submit_many([_request(iris, mlp) for _ in range(4)])) == 4  # the room was given back
    manager.gate.set()
    _wait(lambda: _active(manager) == 0, "every job to finish")


@pytest.mark.parametrize("fault", ["disk full", "read-only"])
def test_a_failed_submit_leaves_no_folder_and_no_queued_job(iris, mlp, managers, tmp_path, monkeypatch, fault):
    manager = _held(managers, tmp_path, max_queue=1)
    kept = manager.submit(_request(iris, mlp))
    if fault == "disk full":
        DiskFull(monkeypatch, manager.store.root, full=True)
    else:
        make_read_only(monkeypatch, manager.store.root)
    with pytest.raises(RunStoreError, match="cannot create a run in .*: the (disk is full|file system is read-only)"):
        manager.submit(_request(iris, mlp))
    monkeypatch.undo()
    assert leftovers(manager.store.root) == [kept] and manager.active_run_ids() == [kept]
    second = manager.submit(_request(iris, mlp))  # the failed submit took no place in the queue
    manager.gate.set()
    _wait(lambda: _done(manager, kept) and _done(manager, second), "both jobs to finish")


def test_when_status_json_cannot_be_written_memory_has_the_outcome(iris, mlp, managers, tmp_path, monkeypatch):
    """The disk fills during training: the metrics write fails, so does the final status. status.json still
    says "running"; the manager (and so the pages) says failed, and why."""
    import core.worker

    store = RunStore(tmp_path / "runs")
    disk = DiskFull(monkeypatch, store.root)
    started = threading.Event()

    def train_run(store, run_id, **kwargs):
        started.set()
        disk.full = True
        store.append_metrics(run_id, {"kind": "epoch", "epoch": 1, "loss": 1.0})
        raise AssertionError("unreachable: the disk is full")

    monkeypatch.setattr(core.worker, "train_run", train_run)
    manager = JobManager(store)
    managers.append(manager)
    run_id = manager.submit(_request(iris, mlp))
    _wait(lambda: _done(manager, run_id), "the run to end")
    snap = manager.snapshot(run_id)
    assert snap.state == "failed"
    assert snap.message.startswith(f"cannot write metrics of run {run_id}: the disk is full (status.json could "
                                   f"not be saved: the disk is full;"), snap.message
    assert store.read_status(run_id)["state"] == "running"  # what the disk says, and why pages ask memory
    assert manager.live_status(run_id) == ("failed", snap.message)
    [info] = manager.overlay(store.list_runs())
    assert (info.status, info.message) == ("failed", snap.message)
    assert manager.overlay(RunStore(tmp_path / "elsewhere").list_runs()) == []


def test_a_read_only_store_starts_with_a_problem_and_remembers_interrupted_runs(tmp_path, monkeypatch):
    store = RunStore(tmp_path / "runs")
    orphan = store.create_run({})
    store.write_status(orphan, "running", "training", pid=2**22 + 12345, host=socket.gethostname())
    make_read_only(monkeypatch, store.root)
    manager = JobManager(store)
    try:
        assert manager.store_problem == f"runs cannot be saved in {store.root}: the file system is read-only"
        assert manager.interrupted == []
        assert store.read_status(orphan)["state"] == "running"  # could not be rewritten
        [info] = manager.overlay(store.list_runs())
        assert info.status == "interrupted" and "could not be saved" in info.message
    finally:
        manager.shutdown()


def test_an_unsaved_outcome_outlives_the_job_being_forgotten(iris, mlp, managers, tmp_path, monkeypatch):
    import core.jobs

    monkeypatch.setattr(core.jobs, "_KEEP_FINISHED", 0)  # forget every finished job at once
    manager = _held(managers, tmp_path)
    run_id = manager.submit(_request(iris, mlp))
    DiskFull(monkeypatch, manager.store.root, full=True)
    manager.gate.set()
    _wait(lambda: manager.snapshot(run_id) is None, "the finished job to be forgotten")
    state, message = manager.live_status(run_id)
    assert state == "completed" and "status.json could not be saved: the disk is full" in message
    assert manager.store.read_status(run_id)["state"] == "queued"


@pytest.mark.slow
def test_wait_ended_returns_when_a_run_ends_not_before(iris, mlp, managers):
    gate = threading.Event()
    manager = JobManager(build_model=_gated_builder(gate))
    managers.append(manager)
    run_id = manager.submit(TrainRequest(iris, mlp, TrainConfig(epochs=1)))
    assert manager.wait_ended([run_id], 0.3) is False and manager.snapshot(run_id).active
    ended = []
    waiter = threading.Thread(target=lambda: ended.append(manager.wait_ended([run_id], 3600)))
    waiter.start()
    gate.set()
    waiter.join(300)  # a waiter that only woke at its timeout would still be waiting here
    assert ended == [True] and not manager.snapshot(run_id).active
    assert manager.wait_ended(["no-such-run"], 3600) is True  # unknown here: nothing to wait for
