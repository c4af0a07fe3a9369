"""The run store: atomic writes survive failures and kills; the reader survives torn and foreign files."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from core.runs import RunStore, RunStoreError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "runs")


def test_create_run_starts_queued_with_config(store):
    run_id = store.create_run({"training": {"epochs": 3}})
    assert store.read_status(run_id)["state"] == "queued"
    config = store.read_config(run_id)
    assert config["training"] == {"epochs": 3} and config["run_id"] == run_id
    assert [i.run_id for i in store.list_runs()] == [run_id]


def test_torn_last_metrics_line_is_skipped_and_never_glued(store):
    run_id = store.create_run({})
    store.append_metrics(run_id, {"kind": "epoch", "epoch": 1, "loss": 1.5})
    with open(store.run_dir(run_id) / "metrics.jsonl", "ab") as fh:  # a crash in the middle of a line
        fh.write(b'{"kind": "epoch", "epoch": 2, "lo')
    assert [r["epoch"] for r in store.read_metrics(run_id)] == [1]
    store.append_metrics(run_id, {"kind": "epoch", "epoch": 3, "loss": 0.5})
    store.append_metrics(run_id, {"kind": "batch", "epoch": 3, "batch": 1, "step": 9, "loss": 0.4})
    assert [r["epoch"] for r in store.read_metrics(run_id)] == [1, 3]
    assert [r["step"] for r in store.read_metrics(run_id, kind="batch")] == [9]
    assert len(store.read_metrics(run_id, kind=None)) == 3


def test_garbage_and_non_object_metric_lines_are_skipped(store):
    run_id = store.create_run({})
    (store.run_dir(run_id) / "metrics.jsonl").write_bytes(b'[1, 2]\n\xff\xfe\n{"kind": "epoch", "epoch": 1}\n')
    assert store.read_metrics(run_id) == [{"kind": "epoch", "epoch": 1}]


def test_missing_metrics_file_reads_as_empty(store):
    assert store.read_metrics(store.create_run({})) == []


def test_half_written_or_missing_status_hides_the_run_from_listing(store):
    good = store.create_run({})
    half = store.create_run({})
    (store.run_dir(half) / "status.json").write_text('{"state": "runn')
    gone = store.create_run({})
    (store.run_dir(gone) / "status.json").unlink()
    assert [i.run_id for i in store.list_runs()] == [good]
    with pytest.raises(ValueError):
        store.read_status(half)


def test_folders_that_are_not_runs_are_ignored(store):
    run_id = store.create_run({})
    (store.root / "notes").mkdir()
    (store.root / "20990101-000000-abcdef").write_text("a file with a run-like name")
    (store.root / "20990101-000000-123456").mkdir()  # half-created: no config yet
    (store.root / "README.txt").write_text("hello")
    assert [i.run_id for i in store.list_runs()] == [run_id]


def test_run_ids_cannot_escape_the_store(store):
    with pytest.raises(RunStoreError, match="not a run id"):
        store.read_status("../../etc")


def test_mark_interrupted_only_touches_active_runs_and_removes_temp_files(store):
    running, queued, done, live = (store.create_run({}) for _ in range(4))
    store.write_status(running, "running")
    store.write_status(done, "completed", "ok")
    store.write_status(live, "running")
    (store.run_dir(running) / ".tmp-dead-model.keras").write_bytes(b"half")
    changed = store.mark_interrupted({live})
    assert sorted(changed) == sorted([running, queued])
    assert store.read_status(running)["state"] == "interrupted"
    assert store.read_status(queued)["state"] == "interrupted"
    assert store.read_status(done)["state"] == "completed"
    assert store.read_status(live)["state"] == "running"
    assert not list(store.run_dir(running).glob(".tmp-*"))


class _FailingModel:
    """Writes part of a file, then fails the way a full disk or a bug would."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def save(self, path):
        Path(path).write_bytes(b"PK\x03\x04 half a zip")
        raise self.exc


class _GoodModel:
    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def save(self, path):
        Path(path).write_bytes(self.payload)


@pytest.mark.parametrize("exc, match", [(OSError(errno.ENOSPC, "No space left on device"), "disk is full"),
                                        (OSError(errno.EACCES, "Permission denied"), "permission denied"),
                                        (RuntimeError("serialiser bug"), "serialiser bug")])
def test_failed_model_save_keeps_the_previous_model_and_leaves_no_temp_file(store, exc, match):
    run_id = store.create_run({})
    store.save_model(run_id, _GoodModel(b"version 1"))
    store.append_metrics(run_id, {"kind": "epoch", "epoch": 1, "loss": 1.0})
    with pytest.raises((RunStoreError, RuntimeError), match=match):
        store.save_model(run_id, _FailingModel(exc))
    assert store.model_path(run_id).read_bytes() == b"version 1"
    assert store.read_metrics(run_id) == [{"kind": "epoch", "epoch": 1, "loss": 1.0}]
    assert sorted(p.name for p in store.run_dir(run_id).iterdir()) == [
        "config.json", "metrics.jsonl", "model.keras", "status.json"]


def test_full_disk_on_metrics_and_status_gives_a_plain_message(store, monkeypatch):
    run_id = store.create_run({})
    store.write_status(run_id, "running")

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(RunStoreError, match=f"cannot write metrics of run {run_id}: the disk is full"):
        store.append_metrics(run_id, {"kind": "epoch", "epoch": 1})
    with pytest.raises(RunStoreError, match="the disk is full"):
        store.write_status(run_id, "completed")
    monkeypatch.undo()
    assert store.read_status(run_id)["state"] == "running"  # the old status survived the failed rewrite
    assert not list(store.run_dir(run_id).glob(".tmp-*"))


def test_predictions_round_trip_without_pickle(store):
    run_id = store.create_run({})
    probs = np.array([[0.9, 0.1], [0.2, 0.8]], dtype=np.float32)
    store.save_predictions(run_id, probs=probs, y_true=np.array([0, 1]), test_idx=np.array([4, 7]),
                           test_loss=np.float32(0.2), test_accuracy=np.float32(1.0))
    pred = store.read_predictions(run_id)
    np.testing.assert_array_equal(pred["probs"], probs)
    assert pred["test_idx"].tolist() == [4, 7] and float(pred["test_accuracy"]) == 1.0


def test_sigkill_while_saving_a_model_leaves_the_earlier_files_intact(store):
    """A worker process killed mid-save: model.keras and metrics are the earlier ones, readable."""
    run_id = store.create_run({"note": "kill test"})
    store.save_model(run_id, _GoodModel(b"model after epoch 1"))
    store.append_metrics(run_id, {"kind": "epoch", "epoch": 1, "loss": 1.0})
    store.write_status(run_id, "running")
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        sys.path.insert(0, {str(ROOT)!r})
        from core.runs import RunStore

        class Slow:
            def save(self, path):
                with open(path, "wb") as fh:
                    fh.write(b"partial")
                    fh.flush()
                    print("writing", flush=True)
                    while True:
                        fh.write(b"x" * 1024)
                        fh.flush()
                        time.sleep(0.01)

        RunStore({str(store.root)!r}).save_model({run_id!r}, Slow())
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        time.sleep(0.2)
        assert list(store.run_dir(run_id).glob(".tmp-*")), "the child should be writing its temp file"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert store.model_path(run_id).read_bytes() == b"model after epoch 1"
    assert store.read_metrics(run_id) == [{"kind": "epoch", "epoch": 1, "loss": 1.0}]
    assert [i.run_id for i in store.list_runs()] == [run_id]
    # the next start-up marks it interrupted and removes what the killed writer left
    assert store.mark_interrupted() == [run_id]
    assert not list(store.run_dir(run_id).glob(".tmp-*"))
    assert json.loads((store.run_dir(run_id) / "status.json").read_text())["state"] == "interrupted"
