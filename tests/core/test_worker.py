"""Trainings in a worker process: a killed worker fails only its run, force stop, parallel workers, and the
server process never imports TensorFlow to train."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from core.datasets import load_builtin
from core.i18n import _, language_of
from core.jobs import JobManager, TrainRequest
from core.runs import RunStore
from core.training import TrainConfig
from core.worker import _with_kept_data, forced_message, killed_message
from tests.core.test_jobs import _wait

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def digits():
    return load_builtin("digits")


@pytest.fixture(scope="module")
def mlp(digits):
    from core.specs import preset

    return preset("Small MLP", digits)


def _request(dataset, spec, epochs=2, batch_size=32):
    return TrainRequest(dataset, spec, TrainConfig(epochs=epochs, batch_size=batch_size))


@pytest.fixture
def manager(tmp_path):
    made = JobManager(RunStore(tmp_path / "runs"), runner="process")
    yield made
    made.shutdown(timeout=60)


def _trial(dataset, spec, study, number, epochs=2):
    """A sweep trial as core.sweeps submits it (its study decides which runs may share a process)."""
    return TrainRequest(dataset, spec, TrainConfig(epochs=epochs, batch_size=32), group=f"sweep:{study}",
                        trial={"study": study, "number": number, "params": {}})


def _pid_recorder(manager, pids, name):
    """An epoch hook that notes the process training the run at each epoch (the hook runs in this process)."""
    def hook(record):
        pids.setdefault(name, set()).update(manager.training_pids())
    return hook


def _state(manager, run_id):
    return manager.snapshot(run_id).state


def _training(manager, run_id, epochs_done=1):
    snap = manager.snapshot(run_id)
    return snap.state == "running" and len(snap.records) >= epochs_done


def test_a_run_trains_in_a_worker_process_and_reports_live_progress(manager, digits, mlp):
    run_id = manager.submit(_request(digits, mlp, epochs=2))
    _wait(lambda: _state(manager, run_id) not in ("queued", "running"), "the run to end")
    snap = manager.snapshot(run_id)
    assert snap.state == "completed", snap.message
    assert [r["epoch"] for r in snap.records] == [1, 2]  # replayed from the worker, epoch by epoch
    assert len(snap.batch_losses) >= 2
    store = manager.store
    assert store.model_path(run_id).is_file()
    status = store.read_status(run_id)
    assert status["state"] == "completed" and status["test_accuracy"] > 0.5
    assert [r["epoch"] for r in store.read_metrics(run_id)] == [1, 2]


def test_the_training_process_writes_in_the_language_of_the_request(manager, digits, mlp):
    with language_of("zh"):
        request = _request(digits, mlp, epochs=1)
        done = _("{epochs} epochs, test accuracy {accuracy}")
    run_id = manager.submit(request)
    _wait(lambda: _state(manager, run_id) not in ("queued", "running"), "the run to end")
    status = manager.store.read_status(run_id)
    assert status["state"] == "completed"
    expected = done.format(epochs=1, accuracy=f"{status['test_accuracy']:.3f}")
    assert status["message"].startswith(expected) and not expected.startswith("1 epochs"), status["message"]


def test_a_killed_worker_fails_its_run_and_the_next_run_trains_in_a_fresh_one(manager, digits, mlp):
    doomed = manager.submit(_request(digits, mlp, epochs=500, batch_size=8))
    after = manager.submit(_request(digits, mlp, epochs=1))
    _wait(lambda: _training(manager, doomed), "the first run to finish an epoch")
    [pid] = manager.training_pids()
    assert pid != os.getpid()
    os.kill(pid, signal.SIGKILL)  # what the out-of-memory killer does
    _wait(lambda: _state(manager, doomed) == "failed", "the killed run to fail")
    assert manager.snapshot(doomed).message == killed_message()
    assert manager.store.read_status(doomed)["state"] == "failed"
    assert manager.store.read_metrics(doomed), "what the run had written is kept"
    _wait(lambda: _state(manager, after) not in ("queued", "running"), "the next run to end")
    assert _state(manager, after) == "completed", manager.snapshot(after).message


def test_stop_lands_and_keeps_the_model_force_stop_ends_the_process_without_one(manager, digits, mlp):
    gentle = manager.submit(_request(digits, mlp, epochs=500, batch_size=8))
    _wait(lambda: _training(manager, gentle), "the run to train")
    assert manager.stop(gentle)
    _wait(lambda: _state(manager, gentle) == "stopped", "Stop to land")
    assert manager.store.model_path(gentle).is_file()
    per_call = manager.store.read_config(gentle)["strategy"]["steps_per_call"]
    # the call in flight, plus at most one more begun before the flag crossed to the training process
    assert manager.store.read_status(gentle)["steps_after_stop_request"] <= 2 * per_call

    forced = manager.submit(_request(digits, mlp, epochs=500, batch_size=8))
    _wait(lambda: _training(manager, forced), "the second run to train")
    [pid] = manager.training_pids()
    assert manager.force_stop(forced)
    _wait(lambda: _state(manager, forced) == "stopped", "Force stop to land")
    assert manager.snapshot(forced).message == forced_message()
    assert not manager.store.model_path(forced).exists()
    _wait(lambda: not _pid_alive(pid), "the forced worker process to be gone")


def test_force_stop_is_refused_for_threads_and_other_workspaces(tmp_path, digits, mlp):
    threads = JobManager(RunStore(tmp_path / "t"), runner="thread")
    try:
        mine = TrainRequest(digits, mlp, TrainConfig(epochs=1), workspace="a" * 22)
        run_id = threads.submit(mine)
        assert not threads.force_stop(run_id, "a" * 22)  # a thread cannot be killed; Stop is what it has
        other = "b" * 22
        assert threads.snapshot(run_id, other) is None and threads.live_status(run_id, other) is None
        assert not threads.stop(run_id, other) and threads.active_run_ids(other) == []
        _wait(lambda: threads.snapshot(run_id, "a" * 22).state == "completed", "the thread run to end")
        assert threads.store_for("a" * 22).model_path(run_id).is_file()
        assert not threads.store.run_dir(run_id).exists()  # not in the local lab's folder
    finally:
        threads.shutdown()


def test_max_jobs_two_trains_two_runs_at_once_in_two_processes(tmp_path, digits, mlp):
    manager = JobManager(RunStore(tmp_path / "runs"), max_concurrent=2, runner="process")
    try:
        a = manager.submit(_request(digits, mlp, epochs=500, batch_size=8))
        b = manager.submit(_request(digits, mlp, epochs=500, batch_size=8))
        _wait(lambda: _training(manager, a) and _training(manager, b), "both runs to train at the same time")
        pids = manager.training_pids()
        assert len(set(pids)) == 2 and os.getpid() not in pids
        for run_id in (a, b):
            manager.stop(run_id)
        _wait(lambda: {_state(manager, a), _state(manager, b)} == {"stopped"}, "both to stop")
    finally:
        manager.shutdown(timeout=60)


def test_the_server_process_never_imports_tensorflow_to_train(tmp_path):
    """Training through the process runner leaves the calling process free of TensorFlow."""
    script = textwrap.dedent(f"""
        import sys, time
        from core.datasets import load_builtin
        from core.jobs import JobManager, TrainRequest
        from core.runs import RunStore
        from core.specs import preset
        from core.training import TrainConfig
        if __name__ == "__main__":
            ds = load_builtin("iris")
            m = JobManager(RunStore({str(tmp_path / "runs")!r}), runner="process")
            rid = m.submit(TrainRequest(ds, preset("Small MLP", ds), TrainConfig(epochs=1)))
            while m.snapshot(rid).state in ("queued", "running"):
                time.sleep(0.1)
            m.shutdown()
            print(m.snapshot(rid).state, "tensorflow" in sys.modules, "keras" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-3:] == ["completed", "False", "False"], out.stdout


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stuck_builder(spec, dataset, notes=None):
    """Stands for a fit stuck where Stop is never checked (a native op, a deadlock): it never returns."""
    import time

    time.sleep(3600)


def test_force_stop_ends_a_run_that_ignores_stop(tmp_path, digits, mlp):
    manager = JobManager(RunStore(tmp_path / "runs"), runner="process", build_model=stuck_builder)
    try:
        run_id = manager.submit(_request(digits, mlp, epochs=1))
        _wait(lambda: manager.training_pids(), "the training process to take the run")
        assert manager.stop(run_id)
        _wait(lambda: (manager.snapshot(run_id).stop_requested_s or 0) > 1.0, "Stop to be pending a while")
        snap = manager.snapshot(run_id)
        assert snap.state == "running" and snap.can_force  # Stop did not land: the page offers Force stop
        assert manager.force_stop(run_id)
        _wait(lambda: _state(manager, run_id) == "stopped", "Force stop to land")
        assert manager.store.read_status(run_id)["message"] == forced_message()
        assert manager.training_pids() == []
    finally:
        manager.shutdown(timeout=30)


def test_the_train_page_offers_force_stop_when_stop_does_not_land(clean_streamlit_caches, monkeypatch):
    import functools

    import ui.jobs
    import ui.train_view
    from tests.pages.test_page_train import _badge, _run_until, _start, _train_page

    monkeypatch.setattr(ui.jobs, "JobManager", functools.partial(JobManager, build_model=stuck_builder))
    monkeypatch.setattr(ui.train_view, "_FORCE_AFTER_S", 0.5)
    at = _train_page()
    _start(at)
    _run_until(at, lambda a: "running" in _badge(a), "the run to start")
    next(b for b in at.button if b.label == "Stop").click()
    _run_until(at, lambda a: any(b.label == "Force stop" for b in a.button), "the Force stop button")
    next(b for b in at.button if b.label == "Force stop").click()
    _run_until(at, lambda a: "stopped" in _badge(a), "the run to end stopped")
    assert any("model at that point was not saved" in m.value for m in at.markdown)
    ui.jobs._shared_manager.clear()  # ends the manager and its warm process (on_release)


def test_a_sweeps_trials_share_one_process_which_ends_when_its_queue_is_empty(manager, digits, mlp):
    from core.datasets import split_dataset

    pids: dict[str, set[int]] = {}
    names = ["a0", "a1", "a2", "b0"]  # three trials of sweep a, then one of sweep b queued behind them
    runs = {name: manager.submit_many([_trial(digits, mlp, name[0], int(name[1]))],
                                      epoch_hook=_pid_recorder(manager, pids, name))[0] for name in names}
    _wait(lambda: all(_state(manager, r) not in ("queued", "running") for r in runs.values()), "the trials to end")
    assert all(len(pids[name]) == 1 for name in names), pids
    assert pids["a0"] == pids["a1"] == pids["a2"] != pids["b0"], pids  # another sweep: a fresh process
    assert os.getpid() not in pids["a0"]
    [sweep_a], [sweep_b] = pids["a0"], pids["b0"]
    _wait(lambda: not _pid_alive(sweep_a), "sweep a's process to end")
    # nothing more queued: the process kept for a next trial of b ends too, its memory back to the system
    _wait(lambda: not _pid_alive(sweep_b), "sweep b's process to end when the queue is empty")
    test_idx = split_dataset(digits, seed=0).test_idx  # the split a fresh process would make
    for name, run_id in runs.items():
        store = manager.store
        status = store.read_status(run_id)
        assert status["state"] == "completed", (name, status)
        assert [r["epoch"] for r in store.read_metrics(run_id)] == [1, 2]
        assert store.model_path(run_id).is_file()
        assert (store.read_predictions(run_id)["test_idx"] == test_idx).all()  # the split kept is that split
        events = list((store.run_dir(run_id) / "tensorboard").rglob("events.out.tfevents.*"))
        assert events, f"{name}: no TensorBoard event files"
    after = manager.submit(_request(digits, mlp, epochs=1))  # an ordinary run: a process of its own
    _wait(lambda: manager.training_pids() or _state(manager, after) not in ("queued", "running"),
          "the ordinary run to start")
    assert not set(manager.training_pids()) & {sweep_a, sweep_b}
    _wait(lambda: _state(manager, after) not in ("queued", "running"), "the ordinary run to end")
    assert _state(manager, after) == "completed"


def test_a_pruned_trial_does_not_stop_the_next_one_in_the_same_process(manager, digits, mlp):
    pids: dict[str, set[int]] = {}

    def prune_at_once(record):
        _pid_recorder(manager, pids, "first")(record)
        return "pruned: hopeless"

    first = manager.submit_many([_trial(digits, mlp, "s", 0, epochs=50)], epoch_hook=prune_at_once)[0]
    second = manager.submit_many([_trial(digits, mlp, "s", 1, epochs=3)],
                                 epoch_hook=_pid_recorder(manager, pids, "second"))[0]
    _wait(lambda: _state(manager, second) not in ("queued", "running"), "the second trial to end")
    assert manager.store.read_status(first)["state"] == "pruned"
    assert _state(manager, second) == "completed", manager.snapshot(second).message
    assert [r["epoch"] for r in manager.store.read_metrics(second)] == [1, 2, 3]  # every epoch: no stale Stop
    assert pids["first"] == pids["second"], pids


def test_a_killed_process_fails_only_the_trial_it_was_training(manager, digits, mlp):
    pids: dict[str, set[int]] = {}

    def kill_it(record):
        _pid_recorder(manager, pids, "doomed")(record)
        for pid in pids["doomed"]:
            os.kill(pid, signal.SIGKILL)  # the out-of-memory killer, in a process that trained a trial before

    first = manager.submit_many([_trial(digits, mlp, "s", 0)], epoch_hook=_pid_recorder(manager, pids, "first"))[0]
    doomed = manager.submit_many([_trial(digits, mlp, "s", 1, epochs=500)], epoch_hook=kill_it)[0]
    last = manager.submit_many([_trial(digits, mlp, "s", 2)], epoch_hook=_pid_recorder(manager, pids, "last"))[0]
    _wait(lambda: _state(manager, last) not in ("queued", "running"), "the last trial to end")
    assert _state(manager, first) == "completed"
    assert (_state(manager, doomed), manager.snapshot(doomed).message) == ("failed", killed_message())
    assert _state(manager, last) == "completed", manager.snapshot(last).message
    assert pids["first"] == pids["doomed"] != pids["last"], pids


def test_a_process_that_trains_again_takes_the_dataset_it_holds_and_forgets_it_for_another():
    import dataclasses

    kept: dict = {}
    one, other = object(), object()
    request = TrainRequest(one, None, TrainConfig())
    assert _with_kept_data(request, kept) is request and kept == {"dataset": one}
    kept["split-key"] = "a split of one"
    again = _with_kept_data(dataclasses.replace(request, dataset=None), kept)  # the parent left it out
    assert again.dataset is one and "split-key" in kept
    assert _with_kept_data(dataclasses.replace(request, dataset=other), kept).dataset is other
    assert kept == {"dataset": other}  # splits of the old dataset are gone with it
