"""The run store: one folder per run, written atomically, read defensively.

Layout (docs/architecture.md, 'Run store')::

    runs/<run_id>/config.json      dataset + split seed, model spec, training settings, versions
                  metrics.jsonl    one JSON line per epoch (and sparse batch lines), appended + fsynced
                  status.json      queued | running | completed | stopped | pruned | diverged | failed | interrupted
                  model.keras      written as .tmp-<id>.keras, then os.replace
                  predictions.npz  test-set probabilities + labels (allow_pickle=False)
                  tensorboard/     TensorBoard event files (train/, validation/)

Listing is a scan of folders: there is no shared index that a crash could corrupt. One writer per run.
A run folder appears complete (config + status) or not at all: it is built under a hidden name and renamed
into place. A folder whose config or status cannot be read is still listed, as "damaged" with the reason,
so that it can be seen and deleted instead of silently vanishing. What a listing read is remembered while
a run's config.json and status.json stay the same files (inode, size, time), so a page listing thousands of
runs on every rerun reads only the runs that changed.

Archived runs move whole to `_archive/<run_id>` (a store of its own, which listing skips); hidden runs
stay in place with `"hidden": true` in their config (the Runs page leaves them out of its lists).
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.i18n import _, ngettext
from core.settings import runs_dir

__all__ = [
    "ACTIVE_STATES",
    "ARCHIVE_DIR",
    "DAMAGED",
    "FINISHED_STATES",
    "RUN_FILES",
    "SCHEMA_VERSION",
    "STATES",
    "TENSORBOARD_DIR",
    "RunInfo",
    "RunStore",
    "RunStoreError",
    "atomic_write_bytes",
    "config_problem",
    "file_stamp",
    "is_run_id",
    "is_tensorboard_file",
    "plain_reason",
    "status_problem",
]

SCHEMA_VERSION = 1
STATES = ("queued", "running", "completed", "stopped", "pruned", "diverged", "failed", "interrupted")
ACTIVE_STATES = frozenset({"queued", "running"})
FINISHED_STATES = frozenset(STATES) - ACTIVE_STATES
DAMAGED = "damaged"  # RunInfo.status of a run whose config.json or status.json cannot be read (never written)
_RUN_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")
_FILES = {"config": "config.json", "metrics": "metrics.jsonl", "status": "status.json",
          "model": "model.keras", "predictions": "predictions.npz"}
RUN_FILES = tuple(_FILES.values())  # every file a run folder may hold, besides TENSORBOARD_DIR
TENSORBOARD_DIR = "tensorboard"  # TensorBoard's event files of a run, in subfolders such as train/ and validation/
ARCHIVE_DIR = "_archive"  # archived runs, under the store's folder (never a run id, so listing skips it)
_PATH_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")  # one part of a file's path inside a run
_TENSORBOARD_EVENTS = "events.out.tfevents."
_CONFIG_SECTIONS = ("dataset", "split", "model", "training", "strategy", "versions")  # JSON objects when present
_STALE_TEMP_S = 3600.0  # a hidden temp folder this old in the store root is left over from a killed process
_MEMO_RUNS = 20_000  # RunInfos remembered by the listing, all stores together (~12 KB each)
_MEMO: OrderedDict[str, RunInfo] = OrderedDict()  # run folder -> what listing last read there (least recent first)
_MEMO_LOCK = threading.Lock()


class RunStoreError(OSError):
    """A run could not be written or read; the message is meant for the user."""

    def __str__(self) -> str:  # OSError would prefix "[Errno 28]": the message alone is what users read
        return str(self.strerror if self.strerror is not None else super().__str__())


def is_run_id(value: object) -> bool:
    """Whether a value (e.g. from a URL) has the shape of a run id, so it can name a folder of the store."""
    return isinstance(value, str) and bool(_RUN_ID.match(value))


def is_tensorboard_file(relative: str) -> bool:
    """Whether a path inside a run folder ("tensorboard/train/events.out.tfevents.…") names a TensorBoard event
    file: plain names only (no "..", no leading dot), at most two folders below tensorboard/."""
    parts = relative.split("/")
    return (2 <= len(parts) <= 4 and parts[0] == TENSORBOARD_DIR and parts[-1].startswith(_TENSORBOARD_EVENTS)
            and all(_PATH_PART.match(p) for p in parts))


def plain_reason(exc: OSError) -> str:
    """Why a file operation failed, in words ("the disk is full"), for messages."""
    reasons = {errno.ENOSPC: _("the disk is full"), errno.EACCES: _("permission denied"),
               errno.EROFS: _("the file system is read-only"), errno.EDQUOT: _("the disk quota is exceeded")}
    if exc.errno in reasons:
        return reasons[exc.errno]
    if isinstance(exc, RunStoreError):  # "<what failed>: <why>", the colon in English or Chinese
        return re.split(r": |：", str(exc))[-1]
    return exc.strerror or str(exc)


def _failed(what: str, why: str) -> str:
    """'cannot save …: the disk is full', punctuated in the reader's language."""
    return _("{what}: {why}").format(what=what, why=why)


def _explain(exc: OSError, what: str) -> RunStoreError:
    """`what` is the whole failed action in words ("cannot delete run …")."""
    return RunStoreError(exc.errno or 0, _failed(what, plain_reason(exc)))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then os.replace: readers see old or new, never half."""
    tmp = path.with_name(f".tmp-{secrets.token_hex(4)}-{path.name}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class RunInfo:
    """What the Runs page needs to list a run without reading its metrics."""

    run_id: str
    path: Path
    status: str  # one of STATES, or DAMAGED when config.json or status.json cannot be read
    message: str  # why it stopped, failed or diverged; for a damaged run, what is wrong; empty otherwise
    config: dict[str, Any] = field(repr=False)  # {} when config.json is damaged; shared by listings: never change it
    updated: float  # status.json's last write (seconds since the epoch); the folder's for a damaged run
    stamp: tuple = field(default=(), repr=False)  # (inode, size, mtime) of config.json and status.json as read

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATES

    @property
    def damaged(self) -> bool:
        """Listed so that it can be seen and deleted, but skipped by pages that evaluate or reuse runs."""
        return self.status == DAMAGED

    @property
    def has_model(self) -> bool:
        return (self.path / _FILES["model"]).is_file()

    @property
    def hidden(self) -> bool:
        """Hidden on the Runs page (RunStore.set_hidden) until its "show hidden" is on."""
        return self.config.get("hidden") is True


class RunStore:
    """All file access to runs goes through here (one writer per run: the worker that trains it)."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else runs_dir()  # KERAS_LAB_RUNS, default ./runs

    # ---- creating and writing -------------------------------------------------------------------
    def create_run(self, config: dict[str, Any], message: str = "", **status: Any) -> str:
        """A new run with its config and status 'queued' (message and extra status fields as given)."""
        return self._build_run(
            lambda run_id: {"schema_version": SCHEMA_VERSION, "run_id": run_id, "created": time.time(), **config},
            _status_record("queued", message, status), {})

    def add_run(self, config: dict[str, Any], status: dict[str, Any], files: Mapping[str, bytes]) -> str:
        """A whole run under a new id (never an existing folder): its config (given the new run_id), status, and
        other files by their path in the folder ("metrics.jsonl", "tensorboard/train/events.out.tfevents.…").
        For runs that come back from a download (core.run_import), checked before they get here."""
        if problem := config_problem(config) or status_problem(status):
            raise ValueError(problem)
        for name in files:
            if name in (_FILES["config"], _FILES["status"]) or not (name in RUN_FILES or is_tensorboard_file(name)):
                raise ValueError(_("a run folder holds no file named {name}").format(name=repr(name)))
        return self._build_run(lambda run_id: {**config, "run_id": run_id}, status, files)

    def _build_run(self, make_config: Callable[[str], dict[str, Any]], status: dict[str, Any],
                   files: Mapping[str, bytes]) -> str:
        """Built in a hidden folder and renamed into place under a fresh id, so a failure (disk full,
        read-only) leaves nothing behind and a reader never sees a run folder without its config and status."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = self.root / f".tmp-{secrets.token_hex(6)}"
            tmp.mkdir()
        except OSError as exc:
            raise _explain(exc, _("cannot create a run in {folder}").format(folder=self.root)) from exc
        try:
            for name, data in files.items():
                (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(tmp / name, data)
            for _attempt in range(20):
                run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
                final = self.root / run_id
                if os.path.lexists(final):
                    continue
                atomic_write_bytes(tmp / _FILES["config"], _dumps(make_config(run_id)))
                atomic_write_bytes(tmp / _FILES["status"], _dumps(status))
                try:
                    os.rename(tmp, final)  # atomic; fails if another process took the id meanwhile
                    return run_id
                except OSError as exc:
                    if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                        raise
            raise RunStoreError(errno.EEXIST, _("cannot create a run folder: too many id collisions, try again"))
        except RunStoreError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise _explain(exc, _("cannot create a run in {folder}").format(folder=self.root)) from exc
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def write_status(self, run_id: str, state: str, message: str = "", **extra: Any) -> None:
        if state not in STATES:
            raise ValueError(f"status must be one of {', '.join(STATES)}, got {state!r}")
        self._write_json(run_id, "status", _status_record(state, message, extra))

    def update_config(self, run_id: str, **fields: Any) -> None:
        """Add facts known only once training starts (e.g. the distribution strategy's global batch)."""
        self._write_json(run_id, "config", {**self.read_config(run_id), **fields})

    def append_metrics(self, run_id: str, record: dict[str, Any]) -> None:
        """One JSON line, flushed and fsynced so a crash loses at most the line being written."""
        line = (json.dumps(record, allow_nan=True, separators=(",", ":")) + "\n").encode("utf-8")
        path = self._file(run_id, "metrics")
        try:
            with open(path, "a+b") as fh:
                if fh.seek(0, os.SEEK_END) > 0:
                    fh.seek(-1, os.SEEK_END)
                    if fh.read(1) != b"\n":  # a torn line from a crash: never glue a new record onto it
                        line = b"\n" + line
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise _explain(exc, _("cannot write metrics of run {run_id}").format(run_id=run_id)) from exc

    def save_model(self, run_id: str, model: Any) -> Path:
        """model.save to a temporary .keras in the run folder, then os.replace (same file system)."""
        final = self._file(run_id, "model")
        tmp = final.with_name(f".tmp-{secrets.token_hex(4)}.keras")
        try:
            model.save(tmp)
            os.replace(tmp, final)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise _explain(exc, _("cannot save the model of run {run_id}").format(run_id=run_id)) from exc
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return final

    def save_predictions(self, run_id: str, **arrays: np.ndarray) -> None:
        """Test-set arrays (probabilities, labels, indices, …) as one npz, written atomically."""
        import io

        buf = io.BytesIO()
        np.savez_compressed(buf, **{k: np.asarray(v) for k, v in arrays.items()})
        try:
            atomic_write_bytes(self._file(run_id, "predictions"), buf.getvalue())
        except OSError as exc:
            raise _explain(exc, _("cannot save the predictions of run {run_id}").format(run_id=run_id)) from exc

    def set_hidden(self, run_id: str, hidden: bool) -> None:
        """Hide a run from the Runs page's lists (its files stay), or show it again."""
        config = self.read_config(run_id)
        config.pop("hidden", None)
        self._write_json(run_id, "config", {**config, "hidden": True} if hidden else config)

    @property
    def archive(self) -> RunStore:
        """The runs archived from this store: a store of their own in ARCHIVE_DIR, which listing skips."""
        return RunStore(self.root / ARCHIVE_DIR)

    def archive_run(self, run_id: str) -> None:
        """Move the run's folder whole into the archive (one rename: it leaves every list at once)."""
        self._move(run_id, self.run_dir(run_id), self.archive.run_dir(run_id), "archive")

    def restore_run(self, run_id: str) -> None:
        """Move an archived run back into this store, under its own id."""
        self._move(run_id, self.archive.run_dir(run_id), self.run_dir(run_id), "restore")

    def _move(self, run_id: str, source: Path, target: Path, verb: str) -> None:
        what = {"archive": _("cannot archive run {run_id}"),
                "restore": _("cannot restore run {run_id}")}[verb].format(run_id=run_id)
        if not source.is_dir():
            raise RunStoreError(errno.ENOENT, _failed(what, _("it does not exist (moved or deleted?)")))
        if os.path.lexists(target):
            raise RunStoreError(errno.EEXIST, _failed(what, _("a run with that id is already there")))
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(source, target)
        except OSError as exc:
            raise _explain(exc, what) from exc

    def delete_run(self, run_id: str) -> None:
        """Rename the folder to a hidden name (the run disappears at once and whole), then remove it."""
        folder = self.run_dir(run_id)
        doomed = self.root / f".tmp-deleting-{secrets.token_hex(4)}-{run_id}"
        try:
            os.rename(folder, doomed)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise _explain(exc, _("cannot delete run {run_id}").format(run_id=run_id)) from exc
        shutil.rmtree(doomed, ignore_errors=True)  # leftovers are hidden; start-up removes them later

    def check_writable(self) -> str:
        """'' when runs can be created and listed here; otherwise why not, in words (checked at start)."""
        probe = self.root / f".tmp-probe-{secrets.token_hex(4)}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            os.listdir(self.root)
            probe.mkdir()
            with open(probe / "probe", "wb") as fh:
                fh.write(b"ok")
        except OSError as exc:
            return _failed(_("runs cannot be saved in {folder}").format(folder=self.root), plain_reason(exc))
        finally:
            shutil.rmtree(probe, ignore_errors=True)
        return ""

    def mark_interrupted(self, live_run_ids: set[str] | frozenset[str] = frozenset()) -> list[str]:
        """At start-up: runs left queued/running by a dead process become 'interrupted'."""
        changed = []
        for info in self.list_runs():
            if info.status in ACTIVE_STATES and info.run_id not in live_run_ids:
                try:
                    self.write_status(info.run_id, "interrupted",
                                      f"the app stopped while this run was {info.status}")
                    changed.append(info.run_id)
                    self._remove_temp_files(info.run_id)
                except OSError:
                    continue  # read-only store: listing still works, the run just keeps its old status
        self._remove_stale_temp_folders()
        return changed

    def _remove_stale_temp_folders(self) -> None:
        """Hidden folders of creates or deletes that a killed process left (old enough to be nobody's)."""
        try:
            entries = list(self.root.glob(".tmp-*"))
        except OSError:
            return
        for entry in entries:
            try:
                if entry.is_dir() and time.time() - entry.stat().st_mtime > _STALE_TEMP_S:
                    shutil.rmtree(entry, ignore_errors=True)
            except OSError:
                continue

    def _remove_temp_files(self, run_id: str) -> None:
        """Temp files a killed writer left behind (only called once no writer can be alive)."""
        for tmp in self.run_dir(run_id).glob(".tmp-*"):
            tmp.unlink(missing_ok=True)

    # ---- reading ----------------------------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        """The folder of a run; the id is checked so it can never point outside the store."""
        if not is_run_id(run_id):
            raise RunStoreError(errno.EINVAL, _("not a run id: {value}").format(value=repr(run_id)))
        return self.root / run_id

    def model_path(self, run_id: str) -> Path:
        return self._file(run_id, "model")

    def read_config(self, run_id: str) -> dict[str, Any]:
        """config.json; ValueError (with the reason) when it is not valid JSON or has wrong types."""
        return self._read_json(run_id, "config")

    def read_status(self, run_id: str) -> dict[str, Any]:
        """status.json; ValueError (with the reason) when it is not valid JSON or has wrong types."""
        return self._read_json(run_id, "status")

    def read_metrics(self, run_id: str, kind: str | None = "epoch") -> list[dict[str, Any]]:
        """Metric records in order; damaged lines are skipped (metrics_problem says which)."""
        return self.read_metrics_checked(run_id, kind)[0]

    def metrics_problem(self, run_id: str) -> str:
        """'' when every line of metrics.jsonl reads; otherwise which lines are damaged, in words."""
        return self.read_metrics_checked(run_id, None)[1]

    def read_metrics_checked(self, run_id: str, kind: str | None = "epoch") -> tuple[list[dict[str, Any]], str]:
        """(records, problem): the readable records, and '' or e.g. "metrics.jsonl: line 7 is damaged; 6
        epochs shown" when a line is torn or corrupt (a crash mid-append, a disk error, an edit)."""
        path = self._file(run_id, "metrics")
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return [], ""
        except OSError as exc:
            return [], _failed(_("{file} cannot be read").format(file=_FILES["metrics"]), plain_reason(exc))
        records, bad, epochs = [], [], 0
        for number, raw in enumerate(data.split(b"\n"), start=1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw.decode("utf-8"))
            except ValueError:
                rec = None
            if not isinstance(rec, dict):
                bad.append(number)
                continue
            epochs += rec.get("kind") == "epoch"
            if kind is None or rec.get("kind") == kind:
                records.append(rec)
        if not bad:
            return records, ""
        return records, ngettext("{file}: {lines} damaged; {n} epoch shown", "{file}: {lines} damaged; {n} epochs shown",
                                 epochs).format(file=_FILES["metrics"], lines=_lines_phrase(bad), n=epochs)

    def read_predictions(self, run_id: str) -> dict[str, np.ndarray]:
        with np.load(self._file(run_id, "predictions"), allow_pickle=False) as data:
            return {k: data[k] for k in data.files}

    def run_info(self, run_id: str) -> RunInfo:
        """One run as list_runs sees it (damaged included); RunStoreError when there is no such folder."""
        folder = self.run_dir(run_id)
        if not folder.is_dir():
            raise RunStoreError(errno.ENOENT, _("run {run_id} does not exist (deleted?)").format(run_id=run_id))
        return self._info(run_id, str(folder))

    def list_runs(self) -> list[RunInfo]:
        """Every run, newest first, damaged ones included (status DAMAGED); folders that are not runs (the
        archive, workspaces) are skipped, and a runs folder that cannot be read lists nothing (check_writable
        says why). Only runs whose config.json or status.json changed since the last listing are read."""
        try:
            with os.scandir(self.root) as entries:
                folders = {e.name: e.path for e in entries if is_run_id(e.name) and e.is_dir()}
        except OSError:
            return []
        return [self._info(name, folders[name]) for name in sorted(folders, reverse=True)]

    def _info(self, run_id: str, key: str) -> RunInfo:
        """The run in folder `key`, as remembered while its config and status files are the same ones. Plain
        strings, not pathlib, until a run is read: for 10,000 runs pathlib would cost as much as the reading."""
        paths = {what: os.path.join(key, _FILES[what]) for what in ("config", "status")}
        stamp = (file_stamp(paths["config"]), file_stamp(paths["status"]))
        with _MEMO_LOCK:
            known = _MEMO.get(key)
            if known is not None and known.stamp == stamp:
                _MEMO.move_to_end(key)
                return known
        problems, found = [], {"config": {}, "status": {}}
        for what, path in paths.items():
            try:
                found[what] = _load_json(path, what)
            except (OSError, ValueError) as exc:
                problems.append(_read_problem(exc, what))
        config, status = found["config"], found["status"]
        folder = Path(key)
        if stamp[1] is not None:
            updated = stamp[1][2] / 1e9
        else:
            try:
                updated = folder.stat().st_mtime
            except OSError:
                updated = 0.0
        if problems:
            return RunInfo(run_id, folder, DAMAGED, "; ".join(problems), config, updated, stamp)
        info = RunInfo(run_id, folder, status["state"], str(status.get("message", "")), config, updated, stamp)
        with _MEMO_LOCK:  # stamped before reading: a write in between only makes the next listing read again
            _MEMO[key] = info
            _MEMO.move_to_end(key)
            while len(_MEMO) > _MEMO_RUNS:
                _MEMO.popitem(last=False)
        return info

    # ---- internals --------------------------------------------------------------------------------
    def _file(self, run_id: str, what: str) -> Path:
        return self.run_dir(run_id) / _FILES[what]

    def _write_json(self, run_id: str, what: str, obj: dict[str, Any]) -> None:
        try:
            atomic_write_bytes(self._file(run_id, what), _dumps(obj))
        except OSError as exc:
            raise _explain(exc, _("cannot write {file} of run {run_id}").format(file=_FILES[what], run_id=run_id)) from exc

    def _read_json(self, run_id: str, what: str) -> dict[str, Any]:
        return _load_json(str(self._file(run_id, what)), what)


def _load_json(path: str, what: str) -> dict[str, Any]:
    """config.json or status.json, checked; ValueError (with the reason) when it cannot be used."""
    name = _FILES[what]
    with open(path, "rb") as fh:
        data = fh.read()
    try:
        obj = json.loads(data.decode("utf-8"))
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError alike
        raise ValueError(_("{file} is not valid JSON (cut off or corrupt)").format(file=name)) from exc
    if not isinstance(obj, dict):
        raise ValueError(_("{file} is not a JSON object").format(file=name))
    if problem := (config_problem(obj) if what == "config" else status_problem(obj)):
        raise ValueError(_failed(name, problem))
    return obj


def _dumps(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, indent=2, default=_json_default).encode("utf-8")


def _status_record(state: str, message: str, extra: dict[str, Any]) -> dict[str, Any]:
    return {"state": state, "message": message, "time": time.time(), **extra}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def file_stamp(path: str) -> tuple[int, int, int] | None:
    """(inode, size, mtime in ns) of a file, None when it cannot be seen. The store replaces config and status
    on every write (a new inode) and appends to metrics (a new size), so an equal stamp means the same content."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def config_problem(config: dict[str, Any]) -> str:
    """Why a parsed config.json cannot be used by the pages ('' when it can); never quotes its values."""
    for section in _CONFIG_SECTIONS:
        if section in config and not isinstance(config[section], dict):
            return _("'{field}' is not a JSON object").format(field=section)
    for section, key in (("dataset", "name"), ("model", "name"), ("training", "optimizer")):
        value = (config.get(section) or {}).get(key)
        if value is not None and not isinstance(value, str):
            return _("'{field}' is not a text").format(field=f"{section}.{key}")
    for key in ("label", "group", "run_id"):
        if config.get(key) is not None and not isinstance(config[key], str):
            return _("'{field}' is not a text").format(field=key)
    if config.get("created") is not None and not _number(config["created"]):
        return _("'{field}' is not a number").format(field="created")
    if config.get("hidden") is not None and not isinstance(config["hidden"], bool):
        return _("'{field}' is not true or false").format(field="hidden")
    return ""


def status_problem(status: dict[str, Any]) -> str:
    """Why a parsed status.json cannot be used ('' when it can); never quotes its values."""
    if "state" not in status:
        return _("it has no '{field}'").format(field="state")
    if status["state"] not in STATES:
        return _("'{field}' is not one of {values}").format(field="state", values=", ".join(STATES))
    if not isinstance(status.get("message", ""), str):
        return _("'{field}' is not a text").format(field="message")
    if status.get("time") is not None and not _number(status["time"]):
        return _("'{field}' is not a number").format(field="time")
    return ""


def _read_problem(exc: BaseException, what: str) -> str:
    name = _FILES[what]
    if isinstance(exc, FileNotFoundError):
        return _("{file} is missing").format(file=name)
    if isinstance(exc, OSError):
        return _failed(_("{file} cannot be read").format(file=name), plain_reason(exc))
    return str(exc)


def _lines_phrase(numbers: list[int]) -> str:
    """'line 7 is', 'lines 3 and 7 are', 'lines 3, 5, 7 and 4 more are'."""
    if len(numbers) == 1:
        return _("line {n} is").format(n=numbers[0])
    if len(numbers) <= 3:
        return _("lines {first} and {last} are").format(first=_(", ").join(map(str, numbers[:-1])), last=numbers[-1])
    return _("lines {first} and {more} more are").format(first=_(", ").join(map(str, numbers[:3])),
                                                         more=len(numbers) - 3)


def _json_default(obj: Any) -> Any:
    """numpy scalars and arrays in configs become plain JSON numbers and lists."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")
