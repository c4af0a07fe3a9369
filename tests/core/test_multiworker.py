"""Beyond one machine: two local worker processes train runs together under MultiWorkerMirroredStrategy.

The README promises that TF_CONFIG on each machine makes Keras Lab train with
tf.distribute.MultiWorkerMirroredStrategy. Here two processes on this machine's CPU (localhost ports, a
TF_CONFIG each, worker 0 the chief) call core.training.train_run on the same data and settings, each with its
own run folder as two machines would have (tests/core/multiworker_child.py): a full run, then, in the same warm
processes, a run the chief stops. Both processes start once for the module (~15-25 s on two cores).
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("multiworker_child.py")
WORKERS = 2
BATCH = 16  # tests/core/multiworker_child.py: the per-replica batch size
STOP_AFTER_STEP = 5  # tests/core/multiworker_child.py: when the chief asks the second run to stop
TIMEOUT_S = 240  # generous: two TensorFlow imports on two busy cores; a worker left waiting is killed


@dataclass
class Worker:
    index: int
    returncode: int | None
    log: str  # the end of its output, TensorFlow's info lines left out
    runs: list[dict]  # what each finished run recorded (the child rewrites its file after every run)


def _free_ports(n: int) -> list[int]:
    """n distinct free localhost ports (held open together so they differ, then released for TensorFlow)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _tail(path: Path, chars: int = 4000) -> str:
    """The end of a worker's log without TensorFlow's info lines and tensor dumps (an error can quote a batch)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    kept = [line for line in lines if line.strip() and not line.startswith(("I0000", "WARNING: All log"))
            and not line.lstrip().startswith(("[", "...,", "array(["))]
    return "\n".join(kept)[-chars:]


def _kill(proc: subprocess.Popen) -> None:
    """End a worker and anything it started (its own session), then reap it."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def _run_workers(folder: Path) -> list[Worker]:
    """Start the workers, wait for all (or for the first failure: the others would wait on it forever)."""
    ports = _free_ports(WORKERS)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    logs = [folder / f"worker{i}.log" for i in range(WORKERS)]
    results = [folder / f"worker{i}.json" for i in range(WORKERS)]
    procs: list[subprocess.Popen] = []
    try:
        for i in range(WORKERS):
            env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}),
                   "CUDA_VISIBLE_DEVICES": "-1", "TF_CPP_MIN_LOG_LEVEL": "2"}
            env.pop("KERAS_LAB_DEVICES", None)
            with open(logs[i], "wb") as log:
                procs.append(subprocess.Popen([sys.executable, str(CHILD), str(folder / f"runs{i}"), str(results[i])],
                                              cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                              stderr=subprocess.STDOUT, start_new_session=True))
        deadline = time.monotonic() + TIMEOUT_S
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            if any(p.poll() not in (None, 0) for p in procs):
                break
            time.sleep(0.2)
    finally:
        for p in procs:
            _kill(p)  # no leftovers, whatever happened
    workers = []
    for i, p in enumerate(procs):
        runs = json.loads(results[i].read_text()) if results[i].is_file() else []
        workers.append(Worker(i, p.returncode, _tail(logs[i]), runs))
    return workers


def _strategy(run: dict) -> dict:
    """What config.json records of the strategy, less other keys the engine may add (e.g. steps per call)."""
    return {key: run["strategy"].get(key) for key in ("name", "replicas", "global_batch")}


def _failure(workers: list[Worker], what: str) -> str:
    return f"{what}:\n" + "\n".join(f"--- worker {w.index} (exit {w.returncode}):\n{w.log}" for w in workers)


@pytest.fixture(scope="module")
def workers(tmp_path_factory) -> list[Worker]:
    return _run_workers(tmp_path_factory.mktemp("multiworker"))


@pytest.mark.slow
def test_two_workers_train_one_run_in_sync_under_multi_worker_mirrored_strategy(workers):
    if not all(w.runs for w in workers):
        pytest.fail(_failure(workers, "a worker did not finish the first run"))
    chief, other = (w.runs[0] for w in workers)

    # the chief's run folder records the strategy, both replicas and the global batch (config.json)
    assert _strategy(chief) == {"name": "MultiWorkerMirroredStrategy", "replicas": WORKERS,
                                "global_batch": WORKERS * BATCH}
    assert other["strategy"] == chief["strategy"]
    for run in (chief, other):
        assert run["state"] == "completed", run["message"]
        assert [r["epoch"] for r in run["epochs"]] == [1, 2]
        # steps of the global batch: each worker trained on its share of every batch, not on all the data
        assert run["extra"]["steps"] == 2 * math.ceil(run["n_train"] / (WORKERS * BATCH))
        # every worker saved its model, the non-chief too (Keras 3's .keras save runs no collective op)
        assert run["has_model"]
        # predict gathered the test rows of both workers, in order: the saved probabilities score the same
        assert run["probs_rows"] == run["n_test"]
        assert run["probs_accuracy"] == pytest.approx(run["extra"]["test_accuracy"], abs=1e-6)

    # in sync: the gradients were all-reduced every step, so both ended with the same weights and metrics
    assert chief["weights_sha256"] == other["weights_sha256"]
    for a, b in zip(chief["epochs"], other["epochs"], strict=True):
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert a[key] == pytest.approx(b[key], rel=1e-6), key
    assert chief["extra"]["test_accuracy"] == pytest.approx(other["extra"]["test_accuracy"], rel=1e-6)
    assert chief["extra"]["test_accuracy"] > 0.3  # it learned (ten classes, chance is 0.1)


@pytest.mark.slow
def test_stop_on_the_chief_stops_every_worker_after_the_same_batch(workers):
    """A second run in the same warm processes; the chief's Stop must reach the other worker, or the two
    leave fit at different steps and their collective ops mismatch (both processes' collectives abort)."""
    if not all(w.returncode == 0 and len(w.runs) == 2 for w in workers):
        pytest.fail(_failure(workers, "a worker did not finish the stopped second run"))
    chief, other = (w.runs[1] for w in workers)
    assert _strategy(chief) == {"name": "MultiWorkerMirroredStrategy", "replicas": WORKERS,
                                "global_batch": WORKERS * BATCH}
    assert other["strategy"] == chief["strategy"]
    per_call = chief["strategy"].get("steps_per_call", 1)  # Stop is seen at the end of a call of this many steps
    for run in (chief, other):
        assert run["state"] == "stopped", run["message"]
        assert STOP_AFTER_STEP < run["extra"]["steps"] <= STOP_AFTER_STEP + 2 * per_call  # within a call or so
        assert run["has_model"]  # the model at that point was kept, on every worker
    assert chief["extra"]["steps"] == other["extra"]["steps"]
    assert chief["weights_sha256"] == other["weights_sha256"]
    assert chief["extra"]["test_accuracy"] == pytest.approx(other["extra"]["test_accuracy"], rel=1e-6)
