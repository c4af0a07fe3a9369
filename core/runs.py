"""The run store: one folder per run, written atomically, read defensively.

Layout (docs/architecture.md, 'Run store')::

    runs/<run_id>/config.json      dataset + split seed, model spec, training settings, versions
                  metrics.jsonl    one JSON line per epoch (and sparse batch lines), appended + fsynced
                  status.json      queued | running | completed | stopped | pruned | diverged | failed | interrupted
                  model.keras      written as .tmp-<id>.keras, then os.replace
                  predictions.npz  test-set probabilities + labels (allow_pickle=False)

Listing is a scan of folders: there is no shared index that a crash could corrupt. One writer per run.
A run folder appears complete (config + status) or not at all: it is built under a hidden name and renamed
into place. A folder whose config or status cannot be read is still listed, as "damaged" with the reason,
so that it can be seen and deleted instead of silently vanishing.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.settings import runs_dir

__all__ = [
    "ACTIVE_STATES",
    "DAMAGED",
    "FINISHED_STATES",
    "SCHEMA_VERSION",
    "STATES",
    "RunInfo",
    "RunStore",
    "RunStoreError",
    "atomic_write_bytes",
    "is_run_id",
    "plain_reason",
]

SCHEMA_VERSION = 1
STATES = ("queued", "running", "completed", "stopped", "pruned", "diverged", "failed", "interrupted")
ACTIVE_STATES = frozenset({"queued", "running"})
FINISHED_STATES = frozenset(STATES) - ACTIVE_STATES
DAMAGED = "damaged"  # RunInfo.status of a run whose config.json or status.json cannot be read (never written)
_RUN_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")
_FILES = {"config": "config.json", "metrics": "metrics.jsonl", "status": "status.json",
          "model": "model.keras", "predictions": "predictions.npz"}
_PLAIN_REASONS = {errno.ENOSPC: "the disk is full", errno.EACCES: "permission denied",
                  errno.EROFS: "the file system is read-only", errno.EDQUOT: "the disk quota is exceeded"}
_CONFIG_SECTIONS = ("dataset", "split", "model", "training", "strategy", "versions")  # JSON objects when present
_STALE_TEMP_S = 3600.0  # a hidden temp folder this old in the store root is left over from a killed process


class RunStoreError(OSError):
    """A run could not be written or read; the message is meant for the user."""

    def __str__(self) -> str:  # OSError would prefix "[Errno 28]": the message alone is what users read
        return str(self.strerror if self.strerror is not None else super().__str__())


def is_run_id(value: object) -> bool:
    """Whether a value (e.g. from a URL) has the shape of a run id, so it can name a folder of the store."""
    return isinstance(value, str) and bool(_RUN_ID.match(value))


def plain_reason(exc: OSError) -> str:
    """Why a file operation failed, in words ("the disk is full"), for messages."""
    if exc.errno in _PLAIN_REASONS:
        return _PLAIN_REASONS[exc.errno]
    if isinstance(exc, RunStoreError):
        return str(exc).rsplit(": ", 1)[-1]
    return exc.strerror or str(exc)


def _explain(exc: OSError, what: str) -> RunStoreError:
    return RunStoreError(exc.errno or 0, f"cannot {what}: {plain_reason(exc)}")


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
    config: dict[str, Any] = field(repr=False)  # {} when config.json is damaged
    updated: float  # status.json's last write (seconds since the epoch); the folder's for a damaged run

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


class RunStore:
    """All file access to runs goes through here (one writer per run: the worker that trains it)."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else runs_dir()  # KERAS_LAB_RUNS, default ./runs

    # ---- creating and writing -------------------------------------------------------------------
    def create_run(self, config: dict[str, Any], message: str = "", **status: Any) -> str:
        """A new run with its config and status 'queued' (message and extra status fields as given).

        Built in a hidden folder and renamed into place, so a failure (disk full, read-only) leaves nothing
        behind and a reader never sees a run folder without its config and status.
        """
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = self.root / f".tmp-{secrets.token_hex(6)}"
            tmp.mkdir()
        except OSError as exc:
            raise _explain(exc, f"create a run in {self.root}") from exc
        try:
            for _ in range(20):
                run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
                final = self.root / run_id
                if os.path.lexists(final):
                    continue
                full = {"schema_version": SCHEMA_VERSION, "run_id": run_id, "created": time.time(), **config}
                atomic_write_bytes(tmp / _FILES["config"], _dumps(full))
                atomic_write_bytes(tmp / _FILES["status"], _dumps(_status_record("queued", message, status)))
                try:
                    os.rename(tmp, final)  # atomic; fails if another process took the id meanwhile
                    return run_id
                except OSError as exc:
                    if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                        raise
            raise RunStoreError(errno.EEXIST, "cannot create a run folder: too many id collisions, try again")
        except RunStoreError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise _explain(exc, f"create a run in {self.root}") from exc
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
            raise _explain(exc, f"write metrics of run {run_id}") from exc

    def save_model(self, run_id: str, model: Any) -> Path:
        """model.save to a temporary .keras in the run folder, then os.replace (same file system)."""
        final = self._file(run_id, "model")
        tmp = final.with_name(f".tmp-{secrets.token_hex(4)}.keras")
        try:
            model.save(tmp)
            os.replace(tmp, final)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise _explain(exc, f"save the model of run {run_id}") from exc
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
            raise _explain(exc, f"save the predictions of run {run_id}") from exc

    def delete_run(self, run_id: str) -> None:
        """Rename the folder to a hidden name (the run disappears at once and whole), then remove it."""
        folder = self.run_dir(run_id)
        doomed = self.root / f".tmp-deleting-{secrets.token_hex(4)}-{run_id}"
        try:
            os.rename(folder, doomed)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise _explain(exc, f"delete run {run_id}") from exc
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
            return f"runs cannot be saved in {self.root}: {plain_reason(exc)}"
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
            raise RunStoreError(errno.EINVAL, f"not a run id: {run_id!r}")
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
            return [], f"{_FILES['metrics']} cannot be read: {plain_reason(exc)}"
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
        return records, (f"{_FILES['metrics']}: {_lines_phrase(bad)} damaged; "
                         f"{epochs} epoch{'' if epochs == 1 else 's'} shown")

    def read_predictions(self, run_id: str) -> dict[str, np.ndarray]:
        with np.load(self._file(run_id, "predictions"), allow_pickle=False) as data:
            return {k: data[k] for k in data.files}

    def run_info(self, run_id: str) -> RunInfo:
        """One run as list_runs sees it (damaged included); RunStoreError when there is no such folder."""
        folder = self.run_dir(run_id)
        if not folder.is_dir():
            raise RunStoreError(errno.ENOENT, f"run {run_id} does not exist (deleted?)")
        return self._info(run_id, folder)

    def list_runs(self) -> list[RunInfo]:
        """Every run, newest first, damaged ones included (status DAMAGED); folders that are not runs are
        skipped, and a runs folder that cannot be read lists nothing (check_writable says why)."""
        try:
            entries = [e for e in self.root.iterdir() if is_run_id(e.name) and e.is_dir()]
        except OSError:
            return []
        return sorted((self._info(e.name, e) for e in entries), key=lambda i: i.run_id, reverse=True)

    def _info(self, run_id: str, folder: Path) -> RunInfo:
        problems, config, status = [], {}, {}
        try:
            config = self.read_config(run_id)
        except (OSError, ValueError) as exc:
            problems.append(_read_problem(exc, "config"))
        try:
            status = self.read_status(run_id)
        except (OSError, ValueError) as exc:
            problems.append(_read_problem(exc, "status"))
        try:
            updated = (folder / _FILES["status"]).stat().st_mtime
        except OSError:
            try:
                updated = folder.stat().st_mtime
            except OSError:
                updated = 0.0
        if problems:
            return RunInfo(run_id, folder, DAMAGED, "; ".join(problems), config, updated)
        return RunInfo(run_id, folder, status["state"], str(status.get("message", "")), config, updated)

    # ---- internals --------------------------------------------------------------------------------
    def _file(self, run_id: str, what: str) -> Path:
        return self.run_dir(run_id) / _FILES[what]

    def _write_json(self, run_id: str, what: str, obj: dict[str, Any]) -> None:
        try:
            atomic_write_bytes(self._file(run_id, what), _dumps(obj))
        except OSError as exc:
            raise _explain(exc, f"write {_FILES[what]} of run {run_id}") from exc

    def _read_json(self, run_id: str, what: str) -> dict[str, Any]:
        name = _FILES[what]
        try:
            obj = json.loads(self._file(run_id, what).read_bytes().decode("utf-8"))
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError alike
            raise ValueError(f"{name} is not valid JSON (cut off or corrupt)") from exc
        if not isinstance(obj, dict):
            raise ValueError(f"{name} is not a JSON object")
        if problem := (_config_problem(obj) if what == "config" else _status_problem(obj)):
            raise ValueError(f"{name}: {problem}")
        return obj


def _dumps(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, indent=2, default=_json_default).encode("utf-8")


def _status_record(state: str, message: str, extra: dict[str, Any]) -> dict[str, Any]:
    return {"state": state, "message": message, "time": time.time(), **extra}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _config_problem(config: dict[str, Any]) -> str:
    """Why a parsed config.json cannot be used by the pages ('' when it can); never quotes its values."""
    for section in _CONFIG_SECTIONS:
        if section in config and not isinstance(config[section], dict):
            return f"'{section}' is not a JSON object"
    for section, key in (("dataset", "name"), ("model", "name"), ("training", "optimizer")):
        value = (config.get(section) or {}).get(key)
        if value is not None and not isinstance(value, str):
            return f"'{section}.{key}' is not a text"
    for key in ("label", "group", "run_id"):
        if config.get(key) is not None and not isinstance(config[key], str):
            return f"'{key}' is not a text"
    if config.get("created") is not None and not _number(config["created"]):
        return "'created' is not a number"
    return ""


def _status_problem(status: dict[str, Any]) -> str:
    """Why a parsed status.json cannot be used ('' when it can); never quotes its values."""
    if "state" not in status:
        return "it has no 'state'"
    if status["state"] not in STATES:
        return f"'state' is not one of {', '.join(STATES)}"
    if not isinstance(status.get("message", ""), str):
        return "'message' is not a text"
    if status.get("time") is not None and not _number(status["time"]):
        return "'time' is not a number"
    return ""


def _read_problem(exc: BaseException, what: str) -> str:
    name = _FILES[what]
    if isinstance(exc, FileNotFoundError):
        return f"{name} is missing"
    if isinstance(exc, OSError):
        return f"{name} cannot be read: {plain_reason(exc)}"
    return str(exc)


def _lines_phrase(numbers: list[int]) -> str:
    """'line 7 is', 'lines 3 and 7 are', 'lines 3, 5, 7 and 4 more are'."""
    if len(numbers) == 1:
        return f"line {numbers[0]} is"
    if len(numbers) <= 3:
        return f"lines {', '.join(map(str, numbers[:-1]))} and {numbers[-1]} are"
    return f"lines {', '.join(map(str, numbers[:3]))} and {len(numbers) - 3} more are"


def _json_default(obj: Any) -> Any:
    """numpy scalars and arrays in configs become plain JSON numbers and lists."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")
