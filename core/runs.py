"""The run store: one folder per run, written atomically, read defensively.

Layout (DESIGN.md §5)::

    runs/<run_id>/config.json      dataset + split seed, model spec, training settings, versions
                  metrics.jsonl    one JSON line per epoch (and sparse batch lines), appended + fsynced
                  status.json      queued | running | completed | stopped | diverged | failed | interrupted
                  model.keras      written as .tmp-<id>.keras, then os.replace
                  predictions.npz  test-set probabilities + labels (allow_pickle=False)

Listing is a scan of folders: there is no shared index that a crash could corrupt. One writer per run.
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

__all__ = [
    "ACTIVE_STATES",
    "FINISHED_STATES",
    "SCHEMA_VERSION",
    "STATES",
    "RunInfo",
    "RunStore",
    "RunStoreError",
    "atomic_write_bytes",
    "default_root",
    "is_run_id",
]

SCHEMA_VERSION = 1
STATES = ("queued", "running", "completed", "stopped", "diverged", "failed", "interrupted")
ACTIVE_STATES = frozenset({"queued", "running"})
FINISHED_STATES = frozenset(STATES) - ACTIVE_STATES
_RUN_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")
_FILES = {"config": "config.json", "metrics": "metrics.jsonl", "status": "status.json",
          "model": "model.keras", "predictions": "predictions.npz"}
_PLAIN_REASONS = {errno.ENOSPC: "the disk is full", errno.EACCES: "permission denied",
                  errno.EROFS: "the file system is read-only", errno.EDQUOT: "the disk quota is exceeded"}


class RunStoreError(OSError):
    """A run could not be written or read; the message is meant for the user."""


def is_run_id(value: object) -> bool:
    """Whether a value (e.g. from a URL) has the shape of a run id, so it can name a folder of the store."""
    return isinstance(value, str) and bool(_RUN_ID.match(value))


def default_root() -> Path:
    """./runs, or the folder named by the KERAS_LAB_RUNS environment variable."""
    return Path(os.environ.get("KERAS_LAB_RUNS", "runs")).expanduser()


def _explain(exc: OSError, what: str) -> RunStoreError:
    reason = _PLAIN_REASONS.get(exc.errno or -1, exc.strerror or str(exc))
    return RunStoreError(exc.errno or 0, f"cannot {what}: {reason}")


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
    status: str  # one of STATES
    message: str  # why it stopped, failed or diverged; empty otherwise
    config: dict[str, Any] = field(repr=False)
    updated: float  # status.json's last write (seconds since the epoch)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATES

    @property
    def has_model(self) -> bool:
        return (self.path / _FILES["model"]).is_file()


class RunStore:
    """All file access to runs goes through here (one writer per run: the worker that trains it)."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()

    # ---- creating and writing -------------------------------------------------------------------
    def create_run(self, config: dict[str, Any]) -> str:
        """Claim a new folder with os.mkdir (atomic), then write its config and status 'queued'."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            for _ in range(20):
                run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
                try:
                    (self.root / run_id).mkdir()
                    break
                except FileExistsError:
                    continue
            else:  # pragma: no cover - 20 collisions of 24 random bits in one second
                raise RunStoreError(errno.EEXIST, "cannot create a run folder: too many collisions")
            full = {"schema_version": SCHEMA_VERSION, "run_id": run_id, "created": time.time(), **config}
            self._write_json(run_id, "config", full)
            self.write_status(run_id, "queued")
        except RunStoreError:
            raise
        except OSError as exc:
            raise _explain(exc, f"create a run in {self.root}") from exc
        return run_id

    def write_status(self, run_id: str, state: str, message: str = "", **extra: Any) -> None:
        if state not in STATES:
            raise ValueError(f"status must be one of {', '.join(STATES)}, got {state!r}")
        self._write_json(run_id, "status", {"state": state, "message": message, "time": time.time(), **extra})

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
        shutil.rmtree(self.run_dir(run_id))

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
        return changed

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
        return self._read_json(run_id, "config")

    def read_status(self, run_id: str) -> dict[str, Any]:
        return self._read_json(run_id, "status")

    def read_metrics(self, run_id: str, kind: str | None = "epoch") -> list[dict[str, Any]]:
        """Metric records in order; a torn or corrupt line (a crash mid-append) is skipped."""
        path = self._file(run_id, "metrics")
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        records = []
        for line in text.splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and (kind is None or rec.get("kind") == kind):
                records.append(rec)
        return records

    def read_predictions(self, run_id: str) -> dict[str, np.ndarray]:
        with np.load(self._file(run_id, "predictions"), allow_pickle=False) as data:
            return {k: data[k] for k in data.files}

    def list_runs(self) -> list[RunInfo]:
        """Every readable run, newest first; folders that are not runs (or half-created) are skipped."""
        if not self.root.is_dir():
            return []
        infos = []
        for entry in self.root.iterdir():
            if not is_run_id(entry.name) or not entry.is_dir():
                continue
            try:
                config = self.read_config(entry.name)
                status_path = self._file(entry.name, "status")
                status = json.loads(status_path.read_text(encoding="utf-8"))
                updated = status_path.stat().st_mtime
            except (OSError, ValueError):
                continue
            infos.append(RunInfo(entry.name, entry, str(status.get("state", "failed")),
                                 str(status.get("message", "")), config, updated))
        return sorted(infos, key=lambda i: i.run_id, reverse=True)

    # ---- internals --------------------------------------------------------------------------------
    def _file(self, run_id: str, what: str) -> Path:
        return self.run_dir(run_id) / _FILES[what]

    def _write_json(self, run_id: str, what: str, obj: dict[str, Any]) -> None:
        data = json.dumps(obj, indent=2, default=_json_default).encode("utf-8")
        try:
            atomic_write_bytes(self._file(run_id, what), data)
        except OSError as exc:
            raise _explain(exc, f"write {_FILES[what]} of run {run_id}") from exc

    def _read_json(self, run_id: str, what: str) -> dict[str, Any]:
        obj = json.loads(self._file(run_id, what).read_text(encoding="utf-8"))
        if not isinstance(obj, dict):
            raise ValueError(f"{_FILES[what]} of run {run_id} is not a JSON object")
        return obj


def _json_default(obj: Any) -> Any:
    """numpy scalars and arrays in configs become plain JSON numbers and lists."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")
