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

from core.runs import DAMAGED, RunStore, RunStoreError

ROOT = Path(__file__).resolve().parents[2]


# ---- faults at the operating-system boundary, for any user (chmod does not stop root) ------------------

def _under(root: Path, path, dir_fd=None) -> bool:
    path = os.fsdecode(path) if isinstance(path, bytes | str | os.PathLike) else None
    if path is None:
        return False
    if dir_fd is not None and not os.path.isabs(path):
        path = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), path)
    root_s = os.path.abspath(root)
    return os.path.abspath(path) == root_s or os.path.abspath(path).startswith(root_s + os.sep)


def make_read_only(monkeypatch, root: Path, code: int = errno.EROFS) -> None:
    """Every write under `root` fails as on a read-only mount (EROFS): creating, renaming, removing files
    and folders and opening files for writing. Reads work."""
    import builtins

    def refuse(path):
        raise OSError(code, os.strerror(code), os.fspath(path))

    def guard(real, *, path_args=1):
        def wrapper(*args, **kwargs):
            for path in args[:path_args]:
                if _under(root, path, kwargs.get("dir_fd") or kwargs.get("src_dir_fd")):
                    refuse(path)
            return real(*args, **kwargs)
        return wrapper

    for name, n in (("mkdir", 1), ("rename", 2), ("replace", 2), ("unlink", 1), ("remove", 1), ("rmdir", 1)):
        monkeypatch.setattr(os, name, guard(getattr(os, name), path_args=n))
    real_open = builtins.open

    def open_(file, mode="r", *args, **kwargs):
        if isinstance(mode, str) and set(mode) & set("wax+") and _under(root, file):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", open_)


class DiskFull:
    """os.fsync of files under `root` fails with ENOSPC once `full` is set (or after `after` more calls):
    what a full disk does to the store's writes, which all fsync before they count."""

    def __init__(self, monkeypatch, root: Path, *, full: bool = False, after: int | None = None) -> None:
        self.root, self.full, self.after, self.calls = root, full, after, 0
        real = os.fsync

        def fsync(fd):
            if _under(self.root, os.readlink(f"/proc/self/fd/{fd}")):
                self.calls += 1
                if self.full or (self.after is not None and self.calls > self.after):
                    raise OSError(errno.ENOSPC, "No space left on device")
            return real(fd)

        monkeypatch.setattr(os, "fsync", fsync)


def leftovers(root: Path) -> list[str]:
    """Everything in the store root, hidden temporary folders included."""
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


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
    assert store.metrics_problem(run_id) == "metrics.jsonl: line 2 is damaged; 2 epochs shown"


def test_damaged_metric_lines_anywhere_are_flagged_with_their_numbers(store):
    run_id = store.create_run({})
    assert store.metrics_problem(run_id) == ""  # no file yet
    for e in range(1, 9):
        store.append_metrics(run_id, {"kind": "epoch", "epoch": e, "loss": 1.0 / e})
    assert store.metrics_problem(run_id) == ""
    path = store.run_dir(run_id) / "metrics.jsonl"
    lines = path.read_bytes().split(b"\n")
    lines[6] = lines[6][:9]  # line 7 torn in the middle of the file (a disk error, a bad copy)
    path.write_bytes(b"\n".join(lines))
    records, problem = store.read_metrics_checked(run_id)
    assert [r["epoch"] for r in records] == [1, 2, 3, 4, 5, 6, 8]
    assert problem == "metrics.jsonl: line 7 is damaged; 7 epochs shown"
    lines[1] = b"\x00\x00\x00\x00"  # zeroed block
    lines[2] = b"[1, 2]"  # valid JSON, not a record
    lines[7] = lines[7][:-3]  # and the last line cut off
    path.write_bytes(b"\n".join(lines[:8]))
    assert store.metrics_problem(run_id) == "metrics.jsonl: lines 2, 3, 7 and 1 more are damaged; 4 epochs shown"
    path.write_bytes(b"\n".join(lines[:3]) + b"\n")
    assert store.metrics_problem(run_id) == "metrics.jsonl: lines 2 and 3 are damaged; 1 epoch shown"


def test_garbage_and_non_object_metric_lines_are_skipped(store):
    run_id = store.create_run({})
    (store.run_dir(run_id) / "metrics.jsonl").write_bytes(b'[1, 2]\n\xff\xfe\n{"kind": "epoch", "epoch": 1}\n')
    assert store.read_metrics(run_id) == [{"kind": "epoch", "epoch": 1}]
    assert store.metrics_problem(run_id) == "metrics.jsonl: lines 1 and 2 are damaged; 1 epoch shown"


def test_missing_metrics_file_reads_as_empty(store):
    assert store.read_metrics(store.create_run({})) == []


_STATUS_FAULTS = [
    (b'{"state": "runn', "status.json is not valid JSON (cut off or corrupt)"),  # torn write
    (b"", "status.json is not valid JSON (cut off or corrupt)"),  # truncated to nothing
    (b'\xff\xfe{"state": "completed"}', "status.json is not valid JSON (cut off or corrupt)"),  # not UTF-8
    (b'["completed"]', "status.json is not a JSON object"),
    (b'{"message": "ok"}', "status.json: it has no 'state'"),
    (b'{"state": 42}', "status.json: 'state' is not one of queued, running, completed"),
    (b'{"state": "exploded"}', "status.json: 'state' is not one of queued, running, completed"),
    (b'{"state": "completed", "message": ["a"]}', "status.json: 'message' is not a text"),
    (b'{"state": "completed", "time": "noon"}', "status.json: 'time' is not a number"),
    (None, "status.json is missing"),
]
_CONFIG_FAULTS = [
    (b'{"dataset": {"name": "iris"}, "mod', "config.json is not valid JSON (cut off or corrupt)"),
    (b"null", "config.json is not a JSON object"),
    (b'{"training": [1, 2]}', "config.json: 'training' is not a JSON object"),
    (b'{"dataset": {"name": 7}}', "config.json: 'dataset.name' is not a text"),
    (b'{"label": {"x": 1}}', "config.json: 'label' is not a text"),
    (b'{"created": "yesterday"}', "config.json: 'created' is not a number"),
    (None, "config.json is missing"),
]


@pytest.mark.parametrize("name, content, reason", [("status.json", c, r) for c, r in _STATUS_FAULTS]
                         + [("config.json", c, r) for c, r in _CONFIG_FAULTS])
def test_a_damaged_run_is_listed_with_the_reason_and_can_be_deleted(store, name, content, reason):
    good = store.create_run({"label": "fine"})
    store.write_status(good, "completed", "ok")
    bad = store.create_run({"label": "broken"})
    path = store.run_dir(bad) / name
    if content is None:
        path.unlink()
    else:
        path.write_bytes(content)
    infos = {i.run_id: i for i in store.list_runs()}
    assert set(infos) == {good, bad}
    assert (infos[good].status, infos[good].damaged) == ("completed", False)
    info = infos[bad]
    assert info.status == DAMAGED and info.damaged and not info.finished
    assert info.message.startswith(reason), info.message
    assert store.run_info(bad) == info
    if name == "config.json":
        assert info.config == {}
    with pytest.raises(ValueError if content is not None else FileNotFoundError):
        (store.read_status if name == "status.json" else store.read_config)(bad)
    assert store.mark_interrupted() == []  # a damaged run is never rewritten behind the person's back
    store.delete_run(bad)
    assert [i.run_id for i in store.list_runs()] == [good]
    assert leftovers(store.root) == [good]


def test_both_files_damaged_names_both_and_values_are_never_quoted(store):
    run_id = store.create_run({})
    (store.run_dir(run_id) / "config.json").write_text('{"dataset": {"name": ["![x](http://evil/)"]}}')
    (store.run_dir(run_id) / "status.json").write_text('{"state": "<img src=x onerror=alert(1)>"}')
    info = store.run_info(run_id)
    assert info.message == ("config.json: 'dataset.name' is not a text; status.json: 'state' is not one of "
                            "queued, running, completed, stopped, pruned, diverged, failed, interrupted")
    assert "evil" not in info.message and "img" not in info.message


def test_an_unreadable_status_file_is_listed_as_damaged(store, monkeypatch):
    import builtins

    run_id = store.create_run({})
    target = store.run_dir(run_id) / "status.json"
    real = builtins.open

    def open_(file, *args, **kwargs):
        if Path(file) == target:
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", open_)
    info = store.run_info(run_id)
    assert (info.status, info.message) == (DAMAGED, "status.json cannot be read: permission denied")


def test_folders_that_are_not_runs_are_ignored_and_an_empty_run_folder_is_damaged(store):
    run_id = store.create_run({})
    (store.root / "notes").mkdir()
    (store.root / "20990101-000000-abcdef").write_text("a file with a run-like name")
    (store.root / "20990101-000000-123456").mkdir()  # a run folder with nothing in it (e.g. an old crash)
    (store.root / "README.txt").write_text("hello")
    (store.root / ".tmp-0123456789ab").mkdir()  # a create in progress in another process
    infos = store.list_runs()
    assert [i.run_id for i in infos] == ["20990101-000000-123456", run_id]
    assert infos[0].message == "config.json is missing; status.json is missing"


def test_a_runs_folder_that_cannot_be_listed_lists_nothing(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the runs folder should be")
    store = RunStore(blocker)
    assert store.list_runs() == []
    assert store.check_writable().startswith(f"runs cannot be saved in {blocker}: ")
    nested = RunStore(blocker / "runs")  # cannot be created: its parent is a file
    assert nested.list_runs() == []
    assert nested.check_writable() == f"runs cannot be saved in {blocker / 'runs'}: Not a directory"
    with pytest.raises(RunStoreError, match="cannot create a run in .*: Not a directory"):
        nested.create_run({})


def test_check_writable_on_a_read_only_store(store, monkeypatch):
    assert store.check_writable() == ""
    run_id = store.create_run({})
    assert leftovers(store.root) == [run_id]  # the probe leaves nothing
    make_read_only(monkeypatch, store.root)
    assert store.check_writable() == f"runs cannot be saved in {store.root}: the file system is read-only"
    assert [i.run_id for i in store.list_runs()] == [run_id]  # reading still works
    with pytest.raises(RunStoreError, match="cannot create a run in .*: the file system is read-only") as err:
        store.create_run({})
    assert "Errno" not in str(err.value)
    with pytest.raises(RunStoreError, match=f"cannot delete run {run_id}: the file system is read-only"):
        store.delete_run(run_id)
    monkeypatch.undo()
    assert leftovers(store.root) == [run_id] and store.run_info(run_id).status == "queued"


def test_a_chinese_reader_gets_the_store_problems_in_chinese(store, monkeypatch):
    """Damaged runs, damaged metric lines and failed writes, in the reader's language; plain_reason still
    finds the reason after the Chinese colon (core.jobs builds its messages from it)."""
    from core.i18n import language_of
    from core.runs import plain_reason

    run_id = store.create_run({})
    for e in range(1, 4):
        store.append_metrics(run_id, {"kind": "epoch", "epoch": e})
    path = store.run_dir(run_id) / "metrics.jsonl"
    lines = path.read_bytes().split(b"\n")
    lines[1] = lines[1][:5]
    path.write_bytes(b"\n".join(lines))
    bad = store.create_run({})
    (store.run_dir(bad) / "status.json").write_text("{")
    make_read_only(monkeypatch, store.root)
    with language_of("zh"):
        assert store.metrics_problem(run_id) == "metrics.jsonl：第 2 行已损坏；显示 2 轮"
        assert store.run_info(bad).message == "status.json 不是有效的 JSON（被截断或已损坏）"
        with pytest.raises(RunStoreError) as err:
            store.delete_run(run_id)
        assert str(err.value) == f"无法删除运行 {run_id}：文件系统为只读"
        assert plain_reason(err.value) == "文件系统为只读"
    with pytest.raises(RunStoreError) as err:
        store.archive_run(run_id)
    assert plain_reason(err.value) == "the file system is read-only"


@pytest.mark.parametrize("after", [0, 1])  # the disk fills before the config, or between config and status
def test_a_create_that_fails_on_a_full_disk_leaves_nothing_behind(store, monkeypatch, after):
    store.root.mkdir(parents=True)
    DiskFull(monkeypatch, store.root, after=after)
    with pytest.raises(RunStoreError, match="cannot create a run in .*: the disk is full"):
        store.create_run({"label": "x"}, "waiting for a worker", pid=1)
    assert leftovers(store.root) == []


def test_a_create_whose_final_rename_fails_leaves_nothing_behind(store, monkeypatch):
    store.root.mkdir(parents=True)
    real = os.rename

    def rename(src, dst, *args, **kwargs):
        if Path(dst).parent == store.root:
            raise OSError(errno.EIO, "Input/output error")
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(RunStoreError, match="cannot create a run in"):
        store.create_run({})
    assert leftovers(store.root) == []


def test_create_run_writes_status_fields_in_one_go(store):
    run_id = store.create_run({"label": "x"}, "waiting for a worker", pid=123, host="h")
    status = store.read_status(run_id)
    assert (status["state"], status["message"], status["pid"], status["host"]) == (
        "queued", "waiting for a worker", 123, "h")
    assert leftovers(store.root) == [run_id]


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


def test_start_up_removes_hidden_folders_a_killed_process_left_but_not_fresh_ones(store):
    run_id = store.create_run({})
    old, fresh = store.root / ".tmp-deleting-0000-x", store.root / ".tmp-abcdefabcdef"
    for folder in (old, fresh):
        folder.mkdir()
        (folder / "config.json").write_text("{}")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    store.mark_interrupted()
    assert leftovers(store.root) == sorted([".tmp-abcdefabcdef", run_id])


# ---- listing many runs: only what changed is read -----------------------------------------------------

def test_listing_reads_only_the_runs_whose_files_changed(store, monkeypatch):
    import builtins

    ids = sorted(store.create_run({"label": f"run {n}"}) for n in range(4))
    assert [i.run_id for i in store.list_runs()] == ids[::-1]  # newest (greatest id) first
    opened = []
    real = builtins.open

    def open_(file, *args, **kwargs):
        opened.append(Path(file).relative_to(store.root).as_posix())
        return real(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", open_)
    assert [i.run_id for i in store.list_runs()] == ids[::-1] and opened == []  # nothing changed: nothing read
    store.write_status(ids[1], "completed", "done")
    store.write_status(ids[1], "failed", "twice within one clock tick")  # same size class, same mtime tick
    store.update_config(ids[2], label="renamed")
    opened.clear()
    infos = {i.run_id: i for i in store.list_runs()}
    assert sorted(opened) == sorted(f"{r}/{f}" for r in ids[1:3] for f in ("config.json", "status.json"))
    assert (infos[ids[1]].status, infos[ids[1]].message) == ("failed", "twice within one clock tick")
    assert infos[ids[2]].config["label"] == "renamed" and infos[ids[0]].status == "queued"


# ---- hide, archive, restore, delete -----------------------------------------------------------------------

def test_hidden_runs_keep_their_files_and_can_be_shown_again(store):
    run_id = store.create_run({"label": "noisy trial"})
    assert not store.run_info(run_id).hidden
    store.set_hidden(run_id, True)
    info = store.run_info(run_id)
    assert info.hidden and info.config["label"] == "noisy trial" and store.read_config(run_id)["hidden"] is True
    store.set_hidden(run_id, False)
    assert not store.run_info(run_id).hidden and "hidden" not in store.read_config(run_id)
    (store.run_dir(run_id) / "config.json").write_text('{"hidden": "yes"}')
    assert store.run_info(run_id).message == "config.json: 'hidden' is not true or false"


def test_archived_runs_leave_every_list_and_come_back_whole(store, tmp_path):
    from core.workspaces import workspace_root

    keep, old = store.create_run({"label": "keep"}), store.create_run({"label": "old"})
    store.append_metrics(old, {"kind": "epoch", "epoch": 1, "loss": 0.5})
    store.archive_run(old)
    assert [i.run_id for i in store.list_runs()] == [keep]
    assert (store.root / "_archive" / old / "metrics.jsonl").is_file()
    [archived] = store.archive.list_runs()
    assert (archived.run_id, archived.config["label"]) == (old, "old")
    with pytest.raises(RunStoreError, match=f"cannot archive run {old}: it does not exist"):
        store.archive_run(old)
    store.restore_run(old)
    assert {i.run_id for i in store.list_runs()} == {old, keep} and store.archive.list_runs() == []
    assert store.read_metrics(old) == [{"kind": "epoch", "epoch": 1, "loss": 0.5}]
    store.archive_run(old)
    (store.root / old).mkdir()  # something took its place meanwhile: never overwritten
    with pytest.raises(RunStoreError, match=f"cannot restore run {old}: a run with that id is already there"):
        store.restore_run(old)
    assert [i.run_id for i in store.archive.list_runs()] == [old]
    # a workspace's archive is inside the workspace: the local lab lists neither, another workspace neither
    mine = RunStore(workspace_root(store.root, "key-of-one-visitor-000000"))
    theirs = RunStore(workspace_root(store.root, "key-of-another-visitor-00"))
    run_id = mine.create_run({})
    mine.archive_run(run_id)
    assert mine.archive.root.parent == mine.root and mine.archive.list_runs()[0].run_id == run_id
    assert theirs.archive.list_runs() == [] and run_id not in {i.run_id for i in store.list_runs()}
    with pytest.raises(RunStoreError, match="does not exist"):
        theirs.restore_run(run_id)


def test_deleting_a_run_frees_its_disk_space(store):
    run_id = store.create_run({})
    (store.run_dir(run_id) / "model.keras").write_bytes(os.urandom(2_000_000))
    (store.run_dir(run_id) / "tensorboard" / "train").mkdir(parents=True)
    (store.run_dir(run_id) / "tensorboard" / "train" / "events.out.tfevents.1.host.1.v2").write_bytes(b"x" * 1000)

    def bytes_under(root: Path) -> int:
        return sum(os.lstat(os.path.join(d, f)).st_size for d, _, files in os.walk(root) for f in files)

    assert bytes_under(store.root) > 2_000_000
    store.delete_run(run_id)
    assert bytes_under(store.root) == 0 and leftovers(store.root) == []


# ---- runs that come back whole --------------------------------------------------------------------------

def test_add_run_gives_a_new_id_and_only_takes_run_files(store):
    from core.runs import is_tensorboard_file

    existing = store.create_run({"label": "here"})
    files = {"metrics.jsonl": b'{"kind": "epoch", "epoch": 1}\n',
             "tensorboard/train/events.out.tfevents.1.host.2.v2": b"\x00" * 16}
    run_id = store.add_run({"run_id": existing, "label": "back"}, {"state": "completed", "message": "ok"}, files)
    assert run_id != existing and store.read_config(existing)["label"] == "here"
    assert store.read_config(run_id) == {"run_id": run_id, "label": "back"}
    assert store.run_info(run_id).status == "completed" and len(store.read_metrics(run_id)) == 1
    assert (store.run_dir(run_id) / "tensorboard" / "train" / "events.out.tfevents.1.host.2.v2").is_file()
    for name in ("../escape.json", "notes.txt", "tensorboard/../../x", "tensorboard/.hidden/events.out.tfevents.1",
                 "tensorboard/a/b/c/events.out.tfevents.1", "config.json"):
        assert not (name != "config.json" and is_tensorboard_file(name))
        with pytest.raises(ValueError, match="a run folder holds no file named"):
            store.add_run({}, {"state": "completed"}, {name: b"x"})
    with pytest.raises(ValueError, match="'label' is not a text"):
        store.add_run({"label": ["x"]}, {"state": "completed"}, {})
    with pytest.raises(ValueError, match="'state' is not one of"):
        store.add_run({}, {"state": "hacked"}, {})
    assert sorted(leftovers(store.root)) == sorted([existing, run_id])  # nothing half-made


def test_add_run_on_a_full_disk_leaves_nothing_behind(store, monkeypatch):
    store.create_run({})
    before = leftovers(store.root)
    DiskFull(monkeypatch, store.root, after=1)  # fails writing the second file
    with pytest.raises(RunStoreError, match="the disk is full"):
        store.add_run({}, {"state": "completed"}, {"metrics.jsonl": b"{}\n", "predictions.npz": b"x"})
    assert leftovers(store.root) == before
