"""The runs table and the comparison of runs: settings side by side, confusion and per-class F1 changes.

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

__all__ = [
    "METRIC_COLUMNS",
    "comparable",
    "confusion_change",
    "describe_change",
    "differing_settings",
    "filter_runs",
    "f1_change",
    "flatten_settings",
    "run_label",
    "run_row",
    "runs_table",
]

METRIC_COLUMNS = ("best_val_accuracy", "last_val_accuracy", "best_val_loss", "last_val_loss",
                  "test_accuracy", "test_loss")
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
        parts.append(f"{training['epochs']} ep")
    label = cfg.get("label")
    if label and label != f"{model} on {dataset}":  # the Train page's default label repeats model and data
        parts.append(str(label))
    return " · ".join(parts)


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, str | int | float | bool)


def flatten_settings(config: dict[str, Any]) -> dict[str, Any]:
    """Scalar settings as 'section.key' (dataset, split, model, training, group); lists summarised."""
    out: dict[str, Any] = {}
    for section in ("dataset", "split", "model", "training"):
        part = config.get(section) or {}
        if not isinstance(part, dict):
            continue
        for key, value in part.items():
            name = f"{section}.{key}"
            if name in _SKIP_SETTINGS:
                continue
            if _scalar(value):
                out[name] = value
            elif isinstance(value, dict) and all(_scalar(v) for v in value.values()):
                for k2, v2 in value.items():
                    out[f"{name}.{k2}"] = v2
    layers = (config.get("model") or {}).get("layers")
    if isinstance(layers, list):
        out["model.n_layers"] = len(layers)
        out["model.layer_types"] = " → ".join(str((la or {}).get("type", "?")) for la in layers
                                              if isinstance(la, dict))
    if config.get("group"):
        out["group"] = str(config["group"])
    return out


def _finite(values: Sequence[Any]) -> list[float]:
    return [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)
            and math.isfinite(v)]


def run_row(store: Any, info: Any) -> dict[str, Any]:
    """One line of the runs table: identity, status, key metrics, duration and every scalar setting."""
    records = store.read_metrics(info.run_id, kind="epoch")
    row: dict[str, Any] = {"run_id": info.run_id, "status": info.status,
                           "dataset": str((info.config.get("dataset") or {}).get("name", "")),
                           "model": str((info.config.get("model") or {}).get("name", "")),
                           "epochs_run": len(records)}
    vacc = _finite([r.get("val_accuracy") for r in records])
    vloss = _finite([r.get("val_loss") for r in records])
    row["best_val_accuracy"] = max(vacc) if vacc else math.nan
    row["last_val_accuracy"] = vacc[-1] if vacc else math.nan
    row["best_val_loss"] = min(vloss) if vloss else math.nan
    row["last_val_loss"] = vloss[-1] if vloss else math.nan
    row["test_accuracy"] = row["test_loss"] = math.nan
    try:
        pred = store.read_predictions(info.run_id)
        if "probs" in pred and "y_true" in pred and len(pred["y_true"]):
            from sklearn.metrics import accuracy_score

            row["test_accuracy"] = float(accuracy_score(pred["y_true"], np.asarray(pred["probs"]).argmax(1)))
        if "test_loss" in pred:
            row["test_loss"] = float(pred["test_loss"])
    except (OSError, ValueError, KeyError):
        pass
    times = _finite([r.get("time") for r in records])
    row["duration_s"] = max(times) if times else math.nan
    created = info.config.get("created")
    row["created"] = pd.Timestamp(created, unit="s") if isinstance(created, int | float) else pd.NaT
    row["group"] = str(info.config.get("group") or "")
    row["message"] = info.message
    row["label"] = str(info.config.get("label") or "")
    row.update(flatten_settings(info.config))
    return row


def runs_table(store: Any, infos: Sequence[Any] | None = None) -> pd.DataFrame:
    """Every run as one row (newest first)."""
    infos = store.list_runs() if infos is None else infos
    rows = [run_row(store, i) for i in infos]
    if not rows:
        return pd.DataFrame(columns=["run_id", "status", "dataset", "model", *METRIC_COLUMNS])
    return pd.DataFrame(rows)


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
        return f"the runs use different datasets ({da.get('name')} and {db.get('name')})"
    if list(da.get("class_names") or []) != list(db.get("class_names") or []):
        return "the runs have different classes, so their confusion matrices do not line up"
    return None


def confusion_change(a: Evaluation, b: Evaluation) -> np.ndarray:
    """Row-normalised confusion matrix of B minus A (each row: shares of a true class)."""
    if a.class_names != b.class_names:
        raise ValueError("the runs have different classes")
    return b.confusion_normalised - a.confusion_normalised


def f1_change(a: Evaluation, b: Evaluation) -> pd.Series:
    """Per-class F1 of B minus A (scikit-learn classification_report)."""
    if a.class_names != b.class_names:
        raise ValueError("the runs have different classes")
    return pd.Series(b.f1() - a.f1(), index=list(a.class_names), name="f1_change")


def _list(names: Sequence[str]) -> str:
    names = [str(n) for n in names]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def describe_change(change: pd.Series, label_a: str = "A", label_b: str = "B", threshold: float = 0.01) -> str:
    """'B got better on classes …, worse on …' (changes of F1 smaller than `threshold` count as unchanged)."""
    better = [c for c, v in change.items() if v > threshold]
    worse = [c for c, v in change.items() if v < -threshold]
    if not better and not worse:
        return f"{label_b} and {label_a} score within {threshold:.2f} F1 on every class."

    def side(names: list[str]) -> str:
        return f"class{'es' if len(names) > 1 else ''} {_list(names)}" if names else "no class"

    return (f"{label_b[:1].upper()}{label_b[1:]} got better on {side(better)} and worse on {side(worse)} "
            f"(per-class F1 compared with {label_a}).")
