"""Downloads: CSV with spreadsheet formula injection neutralised, and a run folder as a zip (in memory).

A cell such as `=HYPERLINK(...)` in a run label would run as a formula when the CSV is opened in a
spreadsheet. Text cells starting with = + - @ (or tab / carriage return) get a leading apostrophe;
real numbers, and text that is just a number such as "-0.5", are left as they are.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

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
    """UTF-8 CSV of a neutralised copy, without the index."""
    return neutralise_frame(frame).to_csv(index=False).encode("utf-8")


def history_csv(records: Sequence[dict[str, Any]]) -> bytes:
    """One run's epoch records as CSV (one row per epoch, one column per metric)."""
    return csv_bytes(pd.DataFrame.from_records(list(records)))


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
    frame = pd.DataFrame({"index": np.asarray(test_idx, dtype=np.int64),
                          "true": [names[i] for i in y_true],
                          "predicted": [names[i] for i in probs.argmax(axis=1)]})
    columns = distinct([f"P({n})" for n in names], ("index", "true", "predicted"))
    for j, column in enumerate(columns):
        frame[column] = probs[:, j]
    return csv_bytes(frame)


def report_csv(report: pd.DataFrame) -> bytes:
    """The per-class report of core.evaluation (precision, recall, F1, support per class, then the macro
    and weighted averages) with the class in a first column "class"."""
    frame = report.reset_index(names="class")
    frame["class"] = frame["class"].astype(str)
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
    if not frames:
        return csv_bytes(pd.DataFrame(columns=[*_RUN_COLUMNS, "epoch"]))
    return csv_bytes(pd.concat(frames, ignore_index=True))


def run_zip(store: Any, run_id: str) -> bytes:
    """The run's folder as a zip named <run_id>/…: regular files only, temporary files skipped."""
    folder = store.run_dir(run_id)
    buf = io.BytesIO()
    total = 0
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.iterdir()):
            if path.name.startswith(".tmp-") or path.is_symlink() or not path.is_file():
                continue
            total += path.stat().st_size
            if total > _MAX_ZIP_BYTES:
                raise ValueError(f"run {run_id} is larger than {_MAX_ZIP_BYTES // 2**20} MB; download its "
                                 f"files one by one")
            zf.write(path, f"{run_id}/{path.name}")
    return buf.getvalue()
