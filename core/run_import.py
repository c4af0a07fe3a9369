"""Runs that travel: a run zip downloaded from Compare runs (core.exports.run_zip) uploaded back.

On Streamlit Community Cloud the disk is wiped on restart, so downloading runs and uploading them later is
how a visitor keeps their work. The upload is hostile input like any other (docs/architecture.md,
"Untrusted input"):

- the zip is bounded before anything is read: its size, its members (counted from the central directory's
  signatures before `zipfile` parses it), their declared sizes and compression ratios;
- a member with an absolute, drive, backslash or '..' path, a symlink or an encrypted member refuses the
  whole upload; nothing is ever extracted by its name: each accepted file is read into memory, checked and
  written by the run store under its own name;
- only a run's own files are taken (config.json, metrics.jsonl, status.json, model.keras, predictions.npz,
  TensorBoard event files under tensorboard/); anything else is left out and named;
- config.json and status.json pass the run store's own checks; metrics.jsonl keeps only lines the pages can
  read; model.keras passes core.model_files.check_model_file (never loaded here); predictions.npz is read
  with allow_pickle=False after its array headers were bounded, and must match the run's classes;
- each run gets a new id in the visitor's own store (never the zip's folder name, never over an existing
  run), keeps its label, and records where it came from in config.json's "imported".
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import stat
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.checks import KerasLabError
from core.i18n import _, ngettext
from core.model_files import ModelFileError, check_model_file
from core.runs import (
    ACTIVE_STATES,
    RUN_FILES,
    SCHEMA_VERSION,
    TENSORBOARD_DIR,
    RunStore,
    config_problem,
    is_run_id,
    is_tensorboard_file,
    plain_reason,
    status_problem,
)
from core.uploads import safe_label

__all__ = ["ImportLimits", "ImportReport", "RunImportError", "import_runs"]

_MB = 1024 * 1024
_PREDICTION_ARRAYS = ("probs", "y_true", "test_idx", "test_loss", "test_accuracy")
_SCALAR = (str, int, float, bool, type(None))
_UNREADABLE = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError)


class RunImportError(KerasLabError):
    """The whole upload was refused; the message names the file and the reason, for the user."""


class _Refused(Exception):
    """One run, or one of its files, was left out; the message says why."""


@dataclass(frozen=True)
class ImportLimits:
    """Caps on one uploaded run zip (the server's maxUploadSize is only the outer fence)."""

    max_bytes: int = 50 * _MB  # the uploaded zip itself (server.maxUploadSize = 50)
    max_members: int = 2_000  # files and folders in it
    max_runs: int = 100  # run folders in it
    max_total_bytes: int = 512 * _MB  # declared uncompressed size of every member
    max_ratio: float = 100.0  # uncompressed / compressed size of one member over 1 MB (zip bombs)
    max_json_bytes: int = 2 * _MB  # config.json, status.json
    max_metrics_bytes: int = 64 * _MB  # metrics.jsonl
    max_model_bytes: int = 200 * _MB  # model.keras (core.model_files.MAX_MODEL_BYTES)
    max_prediction_bytes: int = 128 * _MB  # declared size of the arrays in predictions.npz
    max_tensorboard_bytes: int = 32 * _MB  # all TensorBoard event files of one run


@dataclass(frozen=True)
class ImportReport:
    """What an upload gave: the new runs (id and label, in the zip's order) and what was left out, and why."""

    imported: tuple[tuple[str, str], ...]
    refused: tuple[str, ...]


def import_runs(store: RunStore, data: bytes, filename: str | None,
                limits: ImportLimits = ImportLimits()) -> ImportReport:
    """Every run of an uploaded zip as a new run of `store`; RunImportError when the zip itself is refused."""
    label = safe_label(filename)
    zf = _open(data, label, limits)
    with zf:
        runs, strangers = _group(zf, label, limits)
        known = _known_runs(store)
        imported, refused = [], []
        if strangers:
            refused.append(_("{where}: left out {names}: not files of a run").format(where=label,
                                                                                     names=_some(strangers)))
        for folder, members in runs.items():
            where = _("run folder {name}").format(name=repr(_member_label(folder))) if folder else label
            try:
                run_id, run_label, notes = _import_one(store, zf, members, known, label, limits)
            except _Refused as exc:
                refused.append(_refused(where, str(exc)))
                continue
            imported.append((run_id, run_label))
            refused.extend(_("{what}: {why}").format(what=where, why=note) for note in notes)
    return ImportReport(tuple(imported), tuple(refused))


def _refused(where: str, why: str) -> str:
    """'<the upload or a run folder>: refused, <why>'."""
    return _("{where}: refused, {why}").format(where=where, why=why)


def _too_big(what: str, size: str, limit: str) -> str:
    """'<what> is <size> MB; the limit is <limit> MB'."""
    return _("{what} is {size} MB; the limit is {limit} MB").format(what=what, size=size, limit=limit)


# ---- the zip --------------------------------------------------------------------------------------------


def _open(data: bytes, label: str, limits: ImportLimits) -> zipfile.ZipFile:
    """The upload as a ZipFile, once its size and member count are within the caps."""
    if len(data) > limits.max_bytes:
        raise RunImportError(_too_big(label, f"{len(data) / _MB:.1f}", f"{limits.max_bytes / _MB:.0f}"))
    # zipfile builds an object per central-directory entry before any cap could be checked: count them first
    # (an overcount only when a stored file happens to hold the signature)
    if (entries := data.count(b"PK\x01\x02")) > limits.max_members:
        raise RunImportError(_("{file} has {n} members; the limit is {limit}").format(
            file=label, n=f"{entries:,}", limit=f"{limits.max_members:,}"))
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise RunImportError(_("{file} is not a zip archive of runs ({error}): upload a run zip downloaded from "
                               "Compare runs").format(file=label, error=exc)) from exc


def _member_label(name: str) -> str:
    """A member's path as plain text for messages: letters of any script (a folder named 运行 stays readable),
    digits and . _ / ( ) -; anything else (control and formatting characters, quotes) becomes _."""
    return re.sub(r"[^\w./ ()-]+", "_", name)[:80]


def _some(names: list[str], shown: int = 5) -> str:
    listed = _(", ").join(repr(_member_label(n)) for n in names[:shown])
    return _("{names} and {n} more").format(names=listed, n=len(names) - shown) if len(names) > shown else listed


def _unsafe(name: str) -> bool:
    """Absolute, drive-letter, backslash, '..' or empty-part paths (zip slip), and NUL bytes."""
    parts = name.rstrip("/").split("/")
    return ("\\" in name or "\x00" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name) is not None
            or any(p in ("", ".", "..") for p in parts))


def _group(zf: zipfile.ZipFile, label: str, limits: ImportLimits
           ) -> tuple[dict[str, dict[str, zipfile.ZipInfo]], list[str]]:
    """Members by run folder ("" for a run zipped without its folder): {folder: {path in run: member}}, and
    the names of members that are no file of a run. Structural hostility refuses the whole upload."""
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        raise RunImportError(_("{file} has {n} members; the limit is {limit}").format(
            file=label, n=f"{len(infos):,}", limit=f"{limits.max_members:,}"))
    total = sum(i.file_size for i in infos)
    if total > limits.max_total_bytes:
        raise RunImportError(_("{file} unpacks to {size} MB; the limit is {limit} MB").format(
            file=label, size=f"{total / _MB:,.0f}", limit=f"{limits.max_total_bytes / _MB:.0f}"))
    runs: dict[str, dict[str, zipfile.ZipInfo]] = {}
    strangers = []
    for info in infos:
        name = info.filename
        member = repr(_member_label(name))
        if _unsafe(name):
            raise RunImportError(_refused(label, _("member {name} has an unsafe path (absolute, '..', empty parts or "
                                                   "backslashes)").format(name=member)))
        if stat.S_ISLNK(info.external_attr >> 16):
            raise RunImportError(_refused(label, _("member {name} is a symbolic link").format(name=member)))
        if info.flag_bits & 0x1:
            raise RunImportError(_refused(label, _("member {name} is encrypted").format(name=member)))
        if info.file_size > _MB and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise RunImportError(_refused(label, _("member {name} is compressed {ratio}:1 (a possible zip bomb)").format(
                name=member, ratio=f"{info.file_size // max(info.compress_size, 1):,}")))
        if info.is_dir():
            continue
        parts = name.split("/")
        folder, path = ("", name) if parts[0] in RUN_FILES or parts[0] == TENSORBOARD_DIR else \
            (parts[0], "/".join(parts[1:]))
        if not (path in RUN_FILES or is_tensorboard_file(path)):
            strangers.append(name)
            continue
        members = runs.setdefault(folder, {})
        if path in members:
            raise RunImportError(_refused(label, _("member {name} appears twice").format(name=member)))
        members[path] = info
    for folder in [f for f, members in runs.items() if "config.json" not in members]:
        strangers.extend(f"{folder}/{path}" if folder else path for path in runs.pop(folder))
    if not runs:
        raise RunImportError(_("{file} holds no run: a run zip has <run id>/config.json, status.json, … as "
                               "downloaded from Compare runs").format(file=label))
    if len(runs) > limits.max_runs:
        raise RunImportError(_("{file} holds {n} runs; the limit is {limit} per upload").format(
            file=label, n=f"{len(runs):,}", limit=f"{limits.max_runs:,}"))
    return dict(sorted(runs.items())), strangers


def _read(zf: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int, what: str) -> bytes:
    """A member's bytes (at most its declared size, which zipfile holds it to), within `cap`."""
    if info.file_size > cap:
        raise _Refused(_too_big(what, f"{info.file_size / _MB:,.1f}", f"{cap / _MB:.0f}"))
    try:
        return zf.read(info)
    except _UNREADABLE as exc:
        raise _Refused(_("{file} is damaged in the zip ({error})").format(file=what, error=exc)) from exc


# ---- one run ----------------------------------------------------------------------------------------------


def _known_runs(store: RunStore) -> dict[str, str]:
    """Original run id -> the run of this store that holds it (itself, or an import of it), archive included."""
    known = {}
    for info in [*store.list_runs(), *store.archive.list_runs()]:
        known[info.run_id] = info.run_id
        imported = info.config.get("imported")
        if isinstance(imported, dict) and is_run_id(imported.get("run_id")):
            known[imported["run_id"]] = info.run_id
    return known


def _import_one(store: RunStore, zf: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], known: dict[str, str],
                label: str, limits: ImportLimits) -> tuple[str, str, list[str]]:
    """(new run id, label, notes on files left out) of one run folder; _Refused when the run cannot come in."""
    config = _json_object(_read(zf, members["config.json"], limits.max_json_bytes, "config.json"), "config.json")
    if problem := config_problem(config):
        raise _Refused(_("{what}: {why}").format(what="config.json", why=problem))
    version = config.get("schema_version", SCHEMA_VERSION)
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= SCHEMA_VERSION:
        raise _Refused(_("config.json was written by another version of Keras Lab (its 'schema_version')"))
    original = config.get("run_id")
    if is_run_id(original) and original in known:
        raise _Refused(_("it is already here as run {run_id}").format(run_id=known[original]))
    if "status.json" not in members:
        raise _Refused(_("{file} is missing").format(file="status.json"))
    status = _status(_json_object(_read(zf, members["status.json"], limits.max_json_bytes, "status.json"),
                                  "status.json"))
    notes: list[str] = []
    files: dict[str, bytes] = {}
    checks = {"metrics.jsonl": lambda: _metrics(_read(zf, members["metrics.jsonl"], limits.max_metrics_bytes,
                                                      "metrics.jsonl"), notes),
              "model.keras": lambda: _model(_read(zf, members["model.keras"], limits.max_model_bytes, "model.keras")),
              "predictions.npz": lambda: _predictions(_read(zf, members["predictions.npz"],
                                                            limits.max_prediction_bytes, "predictions.npz"),
                                                      config, limits)}
    for name, check in checks.items():
        if name in members:
            try:
                files[name] = check()
            except _Refused as exc:
                notes.append(_("{file} left out: {reason}").format(file=name, reason=exc))
    files.update(_tensorboard(zf, {p: i for p, i in members.items() if p.startswith(TENSORBOARD_DIR + "/")},
                              limits, notes))
    config.pop("hidden", None)  # what comes back is shown
    config["imported"] = {"time": time.time(), "file": label, "run_id": original if is_run_id(original) else None}
    try:
        run_id = store.add_run(config, status, files)
    except (OSError, ValueError) as exc:
        raise _Refused(_("it could not be saved: {reason}").format(
            reason=plain_reason(exc) if isinstance(exc, OSError) else exc)) from exc
    if is_run_id(original):
        known[original] = run_id  # the same run twice in one zip comes in once
    return run_id, str(config.get("label") or ""), notes


def _json_object(data: bytes, name: str) -> dict[str, Any]:
    try:
        obj = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError; nesting too deep
        raise _Refused(_("{file} is not valid JSON").format(file=name)) from exc
    if not isinstance(obj, dict):
        raise _Refused(_("{file} is not a JSON object").format(file=name))
    return obj


def _status(status: dict[str, Any]) -> dict[str, Any]:
    """The status as the store writes it; a run downloaded while queued or running comes back interrupted."""
    if problem := status_problem(status):
        raise _Refused(_("{what}: {why}").format(what="status.json", why=problem))
    state, message = status["state"], str(status.get("message", ""))
    if state in ACTIVE_STATES:
        state, message = "interrupted", f"it was {state} when it was downloaded"
    when = status.get("time")
    return {"state": state, "message": message, "time": when if isinstance(when, int | float) else time.time()}


def _metrics(data: bytes, notes: list[str]) -> bytes:
    """metrics.jsonl rewritten from the lines the pages can read: JSON objects of plain values whose kind is
    "epoch" or "batch"; how many other lines were dropped goes into `notes`."""
    lines, dropped = [], 0
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError):
            record = None
        if (isinstance(record, dict) and record.get("kind") in ("epoch", "batch")
                and all(isinstance(v, _SCALAR) for v in record.values())):
            lines.append(json.dumps(record, allow_nan=True, separators=(",", ":")))
        else:
            dropped += 1
    if dropped:
        notes.append(ngettext("{file}: {n} damaged or foreign line left out",
                              "{file}: {n} damaged or foreign lines left out", dropped).format(file="metrics.jsonl",
                                                                                             n=dropped))
    return "".join(line + "\n" for line in lines).encode("utf-8")


def _model(data: bytes) -> bytes:
    """model.keras as it came, once core.model_files.check_model_file accepts it (nothing is loaded)."""
    fd, tmp = tempfile.mkstemp(suffix=".keras", prefix="import-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        check_model_file(tmp)
    except ModelFileError as exc:
        raise _Refused(str(exc)) from exc
    finally:
        os.unlink(tmp)
    return data


def _predictions(data: bytes, config: dict[str, Any], limits: ImportLimits) -> bytes:
    """predictions.npz saved again from its arrays once they are bounded (from their headers), free of
    Python objects, and consistent with each other and with the run's classes."""
    try:
        npz = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise _Refused(_("it is not a NumPy .npz archive ({error})").format(error=exc)) from exc
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise _Refused(_("it is not a NumPy .npz archive"))
    with npz:
        if unknown := sorted(set(npz.files) - set(_PREDICTION_ARRAYS)):
            raise _Refused(_("it holds arrays a run does not have ({names})").format(names=_some(unknown)))
        if len(npz.zip.namelist()) != len(npz.files):
            raise _Refused(_("it holds members that are not arrays"))
        declared = 0
        for key in npz.files:
            shape, dtype = _npy_header(npz.zip, f"{key}.npy")
            if dtype.hasobject or dtype.kind not in "biuf":
                raise _Refused(_("array {name} is not numeric ({dtype})").format(name=repr(key), dtype=dtype))
            declared += math.prod(shape) * dtype.itemsize
        if declared > limits.max_prediction_bytes:
            raise _Refused(_("its arrays declare {size} MB; the limit is {limit} MB").format(
                size=f"{declared / _MB:,.0f}", limit=f"{limits.max_prediction_bytes / _MB:.0f}"))
        try:
            arrays = {key: npz[key] for key in npz.files}
        except _UNREADABLE + (ValueError,) as exc:
            raise _Refused(_("it is damaged ({error})").format(error=exc)) from exc
    _check_predictions(arrays, config)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def _npy_header(zf: zipfile.ZipFile, member: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from a .npy header, read before any of its data."""
    try:
        with zf.open(member) as fp:
            version = np.lib.format.read_magic(fp)
            if version not in ((1, 0), (2, 0)):
                raise _Refused(_("array {name} uses .npy format {version}").format(name=repr(member), version=version))
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _fortran_order, dtype = read(fp)
    except _UNREADABLE + (ValueError,) as exc:
        raise _Refused(_("array {name} is damaged ({error})").format(name=repr(member), error=exc)) from exc
    return shape, dtype


def _check_predictions(arrays: dict[str, np.ndarray], config: dict[str, Any]) -> None:
    """probs (n × classes, probabilities), y_true (n class indices), test_idx (n indices), scalar test_loss
    and test_accuracy: shapes and values as the Evaluate and Runs pages read them."""
    for key in ("probs", "y_true"):
        if key not in arrays:
            raise _Refused(_("it has no {name} array").format(name=repr(key)))
    probs, y_true = arrays["probs"], arrays["y_true"]
    dataset = config.get("dataset") or {}
    names = dataset.get("class_names")
    classes = len(names) if isinstance(names, list) else dataset.get("n_classes")
    if probs.ndim != 2 or probs.dtype.kind != "f" or not len(probs):
        raise _Refused(_("'probs' must be a table of probabilities, one row per test sample (got shape "
                         "{shape})").format(shape=probs.shape))
    if isinstance(classes, int) and probs.shape[1] != classes:
        raise _Refused(_("'probs' has {n} columns but the run has {classes} classes").format(n=probs.shape[1],
                                                                                             classes=classes))
    if not np.isfinite(probs).all() or probs.min() < -1e-3 or probs.max() > 1 + 1e-3:
        raise _Refused(_("'probs' holds values that are not probabilities (below 0, above 1 or not finite)"))
    if y_true.shape != (len(probs),) or y_true.dtype.kind not in "iu":
        raise _Refused(_("'y_true' must hold one class index per row of 'probs' (got shape {shape})").format(
            shape=y_true.shape))
    if y_true.min() < 0 or y_true.max() >= probs.shape[1]:
        raise _Refused(_("'y_true' holds class indices outside the run's classes"))
    if "test_idx" in arrays:
        idx = arrays["test_idx"]
        if idx.shape != y_true.shape or idx.dtype.kind not in "iu" or (len(idx) and idx.min() < 0):
            raise _Refused(_("'test_idx' must hold one sample index (0 or more) per test sample"))
    for key in ("test_loss", "test_accuracy"):
        if key in arrays and arrays[key].shape != ():
            raise _Refused(_("{name} must be a single number").format(name=repr(key)))


def _tensorboard(zf: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], limits: ImportLimits,
                 notes: list[str]) -> dict[str, bytes]:
    """TensorBoard event files whose records are whole (TFRecord framing), within the run's cap."""
    files, bad = {}, []
    total = sum(i.file_size for i in members.values())
    if total > limits.max_tensorboard_bytes:
        notes.append(_("{folder}/ left out: its event files are {size} MB; the limit is {limit} MB").format(
            folder=TENSORBOARD_DIR, size=f"{total / _MB:,.1f}", limit=f"{limits.max_tensorboard_bytes / _MB:.0f}"))
        return {}
    for path, info in members.items():
        try:
            data = _read(zf, info, limits.max_tensorboard_bytes, path)
        except _Refused:
            bad.append(path)
            continue
        if _whole_records(data):
            files[path] = data
        else:
            bad.append(path)
    if bad:
        notes.append(_("left out {names}: not TensorBoard event files").format(names=_some(bad)))
    return files


def _whole_records(data: bytes) -> bool:
    """Whether data is a sequence of TFRecords (8-byte length, 4-byte CRC, payload, 4-byte CRC) ending exactly
    at its end: the framing TensorBoard reads (CRCs are not checked: TensorBoard does)."""
    pos = 0
    while pos < len(data):
        if len(data) - pos < 16:
            return False
        pos += 16 + int.from_bytes(data[pos:pos + 8], "little")
    return pos == len(data)
