"""The runs table and the comparison of runs: settings side by side, confusion and per-class F1 changes.

The table is built in two parts so that thousands of runs list quickly: `runs_table` from what listing
the store already read (config and status: identity, settings), and `run_metrics` only for the runs a page
shows or compares (it reads their metrics.jsonl and predictions.npz).

MLflow lists runs side by side; what it cannot say is *which classes* two runs confuse differently.
Here the two confusion matrices are row-normalised and subtracted, and per-class F1 (scikit-learn)
is compared, so the page can say in one sentence which classes improved.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from core.evaluation import Evaluation
from core.i18n import _, ngettext
from core.runs import DAMAGED

__all__ = [
    "METRIC_COLUMNS",
    "RUN_METRIC_COLUMNS",
    "comparable",
    "confusion_change",
    "describe_change",
    "differing_settings",
    "filter_runs",
    "f1_change",
    "flatten_settings",
    "run_label",
    "run_metrics",
    "run_row",
    "runs_table",
]

METRIC_COLUMNS = ("best_val_accuracy", "last_val_accuracy", "best_val_loss", "last_val_loss",
                  "test_accuracy", "test_loss")
RUN_METRIC_COLUMNS = (*METRIC_COLUMNS, "epochs_run", "duration_s")  # what run_metrics reads from a run's files
_ROW_COLUMNS = ["run_id", "status", "dataset", "model", "label", "group", "created", "message", "hidden", "problem"]
_SKIP_SETTINGS = {"dataset.class_names", "dataset.input_shape", "dataset.fingerprint", "dataset.source",
                  "dataset.feature_names", "model.layers"}


def run_label(info: Any) -> str:
    """'<run id> · <dataset> · <model> · <optimizer> <rate> · <epochs> ep[ · label]': how a run is named in
    pickers and legends. Two runs of one model on one dataset differ in their settings, so the optimizer,
    learning rate and epochs are part of the name; the label only when it adds something."""
    cfg = info.config
    dataset = (cfg.get("dataset") or {}).get("name", "?")
    model = (cfg.get("model") or {}).get("name", "?")
    parts = [info.run_id, dataset, model]
    training = cfg.get("training") or {}
    if training.get("optimizer"):
        rate = training.get("learning_rate")
        parts.append(f"{training['optimizer']} {rate:g}" if isinstance(rate, int | float) else training["optimizer"])
    if isinstance(training.get("epochs"), int):
        tuned = training.get("fine_tune_epochs") or 0
        parts.append(_("{n} ep").format(n=training["epochs"] if not tuned else f"{training['epochs']}+{tuned}"))
    label = cfg.get("label")
    if label and label != f"{model} on {dataset}":  # the Train page's default label repeats model and data
        parts.append(str(label))
    return " · ".join(parts)


_SCALARS = (str, int, float, bool, type(None))  # a tuple: isinstance with it is quicker than with a union


def flatten_settings(config: dict[str, Any]) -> dict[str, Any]:
    """Scalar settings as 'section.key' (dataset, split, model, training, group); lists summarised."""
    out: dict[str, Any] = {}
    for section in ("dataset", "split", "model", "training"):
        part = config.get(section)
        if not isinstance(part, dict):
            continue
        for key, value in part.items():
            if isinstance(value, _SCALARS):
                name = f"{section}.{key}"
                if name not in _SKIP_SETTINGS:
                    out[name] = value
            elif isinstance(value, dict) and all(isinstance(v, _SCALARS) for v in value.values()):
                for k2, v2 in value.items():
                    out[f"{section}.{key}.{k2}"] = v2
    layers = (config.get("model") or {}).get("layers")
    if isinstance(layers, list):
        out["model.n_layers"] = len(layers)
        out["model.layer_types"] = " → ".join([str(la.get("type", "?")) for la in layers if isinstance(la, dict)])
    if config.get("group"):
        out["group"] = str(config["group"])
    return out


def _finite(values: Sequence[Any]) -> list[float]:
    return [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)
            and math.isfinite(v)]


def run_row(info: Any) -> dict[str, Any]:
    """One line of the runs table from config and status alone (no file is read): identity, status, label,
    group, creation time, every scalar setting, and what is wrong with a damaged run."""
    cfg = info.config
    created = cfg.get("created")
    row: dict[str, Any] = {"run_id": info.run_id, "status": info.status,
                           "dataset": str((cfg.get("dataset") or {}).get("name", "")),
                           "model": str((cfg.get("model") or {}).get("name", "")),
                           "label": str(cfg.get("label") or ""), "group": str(cfg.get("group") or ""),
                           "created": created if isinstance(created, int | float) else math.nan,
                           "message": info.message, "hidden": cfg.get("hidden") is True,
                           "problem": _("damaged: {reason}").format(reason=info.message) if info.status == DAMAGED else ""}
    row.update(flatten_settings(cfg))
    return row


def runs_table(infos: Sequence[Any]) -> pd.DataFrame:
    """Every run as one row, in the order given, without metrics (see run_metrics)."""
    frame = pd.DataFrame([run_row(i) for i in infos], columns=None if infos else _ROW_COLUMNS)
    frame["created"] = pd.to_datetime(frame["created"], unit="s")
    return frame


def run_metrics(store: Any, run_id: str) -> dict[str, Any]:
    """The metric columns of one run (RUN_METRIC_COLUMNS) from its epoch records and test predictions, and
    'problem': which lines of its metrics.jsonl are damaged ('' when none)."""
    records, problem = store.read_metrics_checked(run_id, kind="epoch")
    vacc = _finite([r.get("val_accuracy") for r in records])
    vloss = _finite([r.get("val_loss") for r in records])
    times = _finite([r.get("time") for r in records])
    row = {"best_val_accuracy": max(vacc) if vacc else math.nan, "last_val_accuracy": vacc[-1] if vacc else math.nan,
           "best_val_loss": min(vloss) if vloss else math.nan, "last_val_loss": vloss[-1] if vloss else math.nan,
           "test_accuracy": math.nan, "test_loss": math.nan, "epochs_run": len(records),
           "duration_s": max(times) if times else math.nan, "problem": problem}
    try:
        pred = store.read_predictions(run_id)
        probs, y_true = np.asarray(pred["probs"]), np.asarray(pred["y_true"])
        if probs.ndim == 2 and probs.shape[0] == len(y_true) > 0:
            row["test_accuracy"] = float(np.mean(probs.argmax(axis=1) == y_true))
        if "test_loss" in pred:
            row["test_loss"] = float(pred["test_loss"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return row


def differing_settings(table: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """The setting columns whose value is not the same in every row (missing counts as a value)."""
    out = []
    for col in columns:
        if col in table and table[col].astype(str).nunique(dropna=False) > 1:
            out.append(col)
    return out


def filter_runs(table: pd.DataFrame, statuses: Sequence[str] = (), datasets: Sequence[str] = (),
                text: str = "") -> pd.DataFrame:
    """Rows whose status and dataset are among those chosen (all when none) and whose text contains `text`."""
    out = table
    if statuses:
        out = out[out["status"].isin(list(statuses))]
    if datasets:
        out = out[out["dataset"].isin(list(datasets))]
    text = text.strip().lower()
    if text and len(out):
        cols = [c for c in ("run_id", "status", "dataset", "model", "group", "message", "label") if c in out]
        hay = out[cols].fillna("").astype(str).apply(lambda col: col.str.lower())
        mask = np.zeros(len(out), dtype=bool)
        for col in cols:
            mask |= hay[col].str.contains(text, regex=False).to_numpy()
        out = out[mask]
    return out


def comparable(config_a: dict[str, Any], config_b: dict[str, Any]) -> str | None:
    """None when two runs can be compared class by class; otherwise the reason in plain words."""
    da, db = config_a.get("dataset") or {}, config_b.get("dataset") or {}
    if da.get("name") != db.get("name"):
        return _("the runs use different datasets ({a} and {b})").format(a=da.get("name"), b=db.get("name"))
    if list(da.get("class_names") or []) != list(db.get("class_names") or []):
        return _("the runs have different classes, so their confusion matrices do not line up")
    return None


def confusion_change(a: Evaluation, b: Evaluation) -> np.ndarray:
    """Row-normalised confusion matrix of B minus A (each row: shares of a true class)."""
    if a.class_names != b.class_names:
        raise ValueError(_("the runs have different classes"))
    return b.confusion_normalised - a.confusion_normalised


def f1_change(a: Evaluation, b: Evaluation) -> pd.Series:
    """Per-class F1 of B minus A (scikit-learn classification_report)."""
    if a.class_names != b.class_names:
        raise ValueError(_("the runs have different classes"))
    return pd.Series(b.f1() - a.f1(), index=list(a.class_names), name="f1_change")


def _list(names: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c' (in the reader's language)."""
    names = [str(n) for n in names]
    if len(names) == 1:
        return names[0]
    return _("{items} and {last}").format(items=_(", ").join(names[:-1]), last=names[-1])


def describe_change(change: pd.Series, label_a: str = "A", label_b: str = "B", threshold: float = 0.01) -> str:
    """'B got better on classes …, worse on …' (changes of F1 smaller than `threshold` count as unchanged)."""
    better = [c for c, v in change.items() if v > threshold]
    worse = [c for c, v in change.items() if v < -threshold]
    if not better and not worse:
        return _("{b} and {a} score within {threshold} F1 on every class.").format(
            b=label_b, a=label_a, threshold=f"{threshold:.2f}")

    def side(names: list[str]) -> str:
        return ngettext("class {names}", "classes {names}", len(names)).format(names=_list(names)) if names \
            else _("no class")

    return _("{b} got better on {better} and worse on {worse} (per-class F1 compared with {a}).").format(
        b=label_b[:1].upper() + label_b[1:], better=side(better), worse=side(worse), a=label_a)
