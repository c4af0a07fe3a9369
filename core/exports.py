"""Downloads: CSV with spreadsheet formula injection neutralised, and runs as a zip (in memory).

A cell such as `=HYPERLINK(...)` in a run label would run as a formula when the CSV is opened in a
spreadsheet. Text cells starting with = + - @ (or tab / carriage return) get a leading apostrophe;
real numbers, and text that is just a number such as "-0.5", are left as they are.

The CSVs are UTF-8 with a byte-order mark: without it Excel reads them in the system's code page and
Chinese class names or labels come out garbled. Their column headers (and the report's average rows) are
in the reader's language: a download made outside a page's own thread must be made inside
core.i18n.language_of.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.i18n import _
from core.runs import RUN_FILES, TENSORBOARD_DIR, is_tensorboard_file

__all__ = ["all_metrics_csv", "csv_bytes", "history_csv", "neutralise_cell", "neutralise_frame", "predictions_csv",
           "report_csv", "run_zip"]

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_MAX_ZIP_BYTES = 512 * 1024 * 1024
_RUN_COLUMNS = ["run_id", "dataset", "model", "status", "label", "group", "optimizer", "learning_rate",
                "batch_size", "epochs_requested"]


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def neutralise_cell(value: Any) -> Any:
    """Prefix an apostrophe to text a spreadsheet would read as a formula; leave numbers alone."""
    if not isinstance(value, str) or not value.startswith(_TRIGGERS):
        return value
    if _PLAIN_NUMBER.match(value):
        return value
    return "'" + value


def neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with every text cell (and column name) neutralised; numeric columns untouched."""
    out = frame.copy()
    for col in out.columns:
        if not (pd.api.types.is_numeric_dtype(out[col]) or pd.api.types.is_bool_dtype(out[col])):
            out[col] = out[col].map(neutralise_cell)
    out.columns = [neutralise_cell(str(c)) for c in out.columns]
    return out


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """UTF-8 CSV (with a byte-order mark) of a neutralised copy, without the index."""
    return neutralise_frame(frame).to_csv(index=False).encode("utf-8-sig")


def _headers() -> dict[str, str]:
    """Column names of the run CSVs (the keys of config.json and metrics.jsonl) as a reader's headers."""
    return {"run_id": _("run_id"), "dataset": _("dataset"), "model": _("model"), "status": _("status"),
            "label": _("label"), "group": _("group"), "optimizer": _("optimizer"),
            "learning_rate": _("learning_rate"), "batch_size": _("batch_size"),
            "epochs_requested": _("epochs_requested"), "kind": _("kind"), "epoch": _("epoch"), "loss": _("loss"),
            "accuracy": _("accuracy"), "val_loss": _("val_loss"), "val_accuracy": _("val_accuracy"), "lr": _("lr"),
            "time": _("time")}


def history_csv(records: Sequence[dict[str, Any]]) -> bytes:
    """One run's epoch records as CSV (one row per epoch, one column per metric)."""
    return csv_bytes(pd.DataFrame.from_records(list(records)).rename(columns=_headers()))


def predictions_csv(probs: Any, y_true: Any, test_idx: Any, class_names: Sequence[str]) -> bytes:
    """One row per test sample: its index in the dataset, true and predicted class (by name), and the
    probability of each class (columns "P(<class>)", in class order)."""
    from core.text import distinct

    probs = np.asarray(probs, dtype=np.float64)
    y_true = np.asarray(y_true, dtype=np.int64)
    names = [str(c) for c in class_names]
    if probs.ndim != 2 or probs.shape != (len(y_true), len(names)) or len(np.asarray(test_idx)) != len(y_true):
        raise ValueError(f"predictions of shape {probs.shape} do not match {len(y_true)} labels and "
                         f"{len(names)} classes")
    index, true, predicted = _("index"), _("true"), _("predicted")
    frame = pd.DataFrame({index: np.asarray(test_idx, dtype=np.int64), true: [names[i] for i in y_true],
                          predicted: [names[i] for i in probs.argmax(axis=1)]})
    columns = distinct([f"P({n})" for n in names], (index, true, predicted))
    for j, column in enumerate(columns):
        frame[column] = probs[:, j]
    return csv_bytes(frame)


def report_csv(report: pd.DataFrame) -> bytes:
    """The per-class report of core.evaluation (precision, recall, F1, support per class, then the macro
    and weighted averages) with the class in a first column "class"."""
    frame = report.rename(index={"macro avg": _("macro avg"), "weighted avg": _("weighted avg")})
    column = _("class")
    frame = frame.rename(columns={"precision": _("precision"), "recall": _("recall"), "f1-score": _("f1-score"),
                                  "support": _("support")}).reset_index(names=column)
    frame[column] = frame[column].astype(str)
    return csv_bytes(frame)


def all_metrics_csv(store: Any, infos: Sequence[Any] | None = None) -> bytes:
    """Every run's epoch metrics in one long CSV, each row tagged with its run, dataset, model, label, group
    and main training settings (without them two runs of one model cannot be told apart in a spreadsheet)."""
    frames = []
    for info in infos if infos is not None else store.list_runs():
        records = store.read_metrics(info.run_id, kind="epoch")
        if not records:
            continue
        df = pd.DataFrame.from_records(records)
        cfg = info.config
        df.insert(0, "run_id", info.run_id)
        df.insert(1, "dataset", str((cfg.get("dataset") or {}).get("name", "")))
        df.insert(2, "model", str((cfg.get("model") or {}).get("name", "")))
        df.insert(3, "status", info.status)
        training = cfg.get("training") or {}
        tags = {"label": cfg.get("label"), "group": cfg.get("group"), "optimizer": training.get("optimizer"),
                "learning_rate": training.get("learning_rate"), "batch_size": training.get("batch_size"),
                "epochs_requested": training.get("epochs")}
        for n, (name, value) in enumerate(tags.items(), start=4):
            df.insert(n, name, value if _is_scalar(value) else str(value))
        frames.append(df)
    every = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*_RUN_COLUMNS, "epoch"])
    return csv_bytes(every.rename(columns=_headers()))


def run_zip(store: Any, *run_ids: str) -> bytes:
    """Runs as one zip, each in a folder named by its id: the run's own files and its TensorBoard event files
    (what core.run_import takes back), regular files only, never temporary or linked ones."""
    buf = io.BytesIO()
    total = 0
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for run_id in run_ids:
            for path, name in _run_files(store.run_dir(run_id)):
                total += path.stat().st_size
                if total > _MAX_ZIP_BYTES:
                    raise ValueError((_("run {run_id} is larger than {mb} MB; download its files one by one")
                                      if len(run_ids) == 1 else
                                      _("the selected runs are larger than {mb} MB; download fewer runs at a time")
                                      ).format(run_id=run_id, mb=_MAX_ZIP_BYTES // 2**20))
                zf.write(path, f"{run_id}/{name}")
    return buf.getvalue()


def _run_files(folder: Path) -> list[tuple[Path, str]]:
    """(file, its path in the run folder) of every file of a run that a zip carries."""
    files = [(folder / name, name) for name in RUN_FILES]
    events = folder / TENSORBOARD_DIR
    for base, dirs, names in [] if events.is_symlink() else os.walk(events):  # os.walk follows no link below
        dirs.sort()
        for name in sorted(names):
            path = Path(base, name)
            files.append((path, path.relative_to(folder).as_posix()))
    return [(path, name) for path, name in files if (name in RUN_FILES or is_tensorboard_file(name))
            and not path.is_symlink() and path.is_file()]
