"""Stratified k-fold cross-validation: fold splits, one training job per fold, and the mean ± std summary.

On a small dataset one hold-out split gives a noisy estimate; k folds use every sample for testing once
and show how much the score varies with the split.
"""

from __future__ import annotations

import secrets
from typing import Any

import numpy as np
import pandas as pd

from core.checks import KerasLabError, number, whole_number
from core.i18n import _
from core.settings import MAX_FOLDS, MIN_FOLDS

__all__ = ["CrossValidationError", "check_k", "cv_runs", "fold_splits", "submit_cv", "summarize_cv"]


class CrossValidationError(KerasLabError):
    """The number of folds or the validation share does not fit the dataset; the message says why."""


def check_k(dataset: Any, k: Any) -> int:
    """MIN_FOLDS <= k <= MAX_FOLDS (2 and 10) and k <= the smallest class count (each test fold needs every class)."""
    k = whole_number(_("the number of folds"), k, MIN_FOLDS, MAX_FOLDS, error=CrossValidationError)
    counts = np.bincount(dataset.y, minlength=dataset.n_classes)
    smallest = int(counts[counts > 0].min())
    if k > smallest:
        cls = dataset.class_names[int(np.flatnonzero(counts == smallest)[0])]
        raise CrossValidationError(_("the number of folds must be at most the smallest class count: class {name} "
                                     "has {n} samples, got k = {k}").format(name=cls, n=smallest, k=k))
    return k


def fold_splits(dataset: Any, k: int, seed: int = 0, val_fraction: float = 0.15) -> list[Any]:
    """k Splits: StratifiedKFold test folds; a stratified validation part (val_fraction of the rest);
    tabular features standardised with the training part's statistics only, as split_dataset does."""
    from sklearn.model_selection import StratifiedKFold, train_test_split

    from core.datasets import split_at

    k = check_k(dataset, k)
    number(_("validation fraction"), val_fraction, 0, 0.5, lo_open=True, hi_open=True, error=CrossValidationError)
    y = dataset.y
    skf = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    splits = []
    for rest, test_idx in skf.split(np.zeros(len(y)), y):
        counts = np.bincount(y[rest])
        stratify = y[rest] if counts[counts > 0].min() >= 2 else None
        train_idx, val_idx = train_test_split(rest, test_size=val_fraction, random_state=seed, stratify=stratify)
        splits.append(split_at(dataset, np.sort(train_idx), np.sort(val_idx), np.sort(test_idx), seed=seed))
    return splits


def submit_cv(manager: Any, dataset: Any, spec: Any, config: Any, k: int, *, seed: int | None = None,
              val_fraction: float = 0.15, idempotency_key: str | None = None,
              workspace: str | None = None) -> tuple[str, list[str]]:
    """Queue one training job per fold, all or none (a partial set of folds has no meaningful mean ± std),
    in `workspace` (None: the local lab); returns (group_id, run_ids). QueueFullError when the folds do not
    all fit, saying why."""
    from core.jobs import QueueFullError, TrainRequest

    seed = int(getattr(config, "seed", 0) if seed is None else seed)
    splits = fold_splits(dataset, k, seed=seed, val_fraction=val_fraction)
    safe_name = "".join(ch if ch.isalnum() else "-" for ch in str(dataset.name))[:24].strip("-") or "data"
    group = f"cv-{safe_name}-{k}fold-{secrets.token_hex(3)}"
    requests = []
    for fold, split in enumerate(splits):
        info = {"kind": "cv", "k": k, "fold": fold, "seed": seed, "val_fraction": val_fraction}
        requests.append(TrainRequest(dataset=dataset, spec=spec, config=config, split=split, split_info=info,
                                     group=group, label=_("{group} fold {n}/{k}").format(group=group, n=fold + 1, k=k),
                                     workspace=workspace))
    try:
        run_ids = manager.submit_many(requests, idempotency_key=idempotency_key)
    except QueueFullError as exc:
        if k > exc.capacity:
            hint = _("at most {capacity} runs may be queued or running at once, so choose k <= {capacity} (or raise "
                     "KERAS_LAB_MAX_QUEUE)").format(capacity=exc.capacity)
        elif exc.free >= MIN_FOLDS:
            hint = _("the queue has room for {free} runs now: wait for queued runs to finish or choose k <= "
                     "{free}").format(free=exc.free)
        else:
            hint = _("the queue is full: wait for queued runs to finish, or remove some on the Train page")
        raise QueueFullError(_("no fold was queued: {k} folds do not fit in the job queue; {hint}").format(
            k=k, hint=hint), free=exc.free, capacity=exc.capacity) from exc
    snap = manager.snapshot(run_ids[0], workspace) if hasattr(manager, "snapshot") else None
    if snap is not None and snap.group:  # a repeated submit (double click) returns the first one's runs
        group = snap.group
    return group, list(run_ids)


def cv_runs(store: Any, group_id: str) -> list[Any]:
    """The RunInfo of every run in a cross-validation group, by fold."""
    runs = [i for i in store.list_runs() if i.config.get("group") == group_id]
    return sorted(runs, key=lambda i: int((i.config.get("split") or {}).get("fold", 0)))


def _fold_metrics(store: Any, info: Any) -> dict[str, float]:
    """Test metrics from predictions.npz (sklearn) and the validation metrics of the best epoch."""
    from sklearn.metrics import accuracy_score, f1_score

    row: dict[str, float] = {}
    try:
        pred = store.read_predictions(info.run_id)
        y, probs = np.asarray(pred["y_true"]), np.asarray(pred["probs"])
        labels = list(range(probs.shape[1]))
        row["test_accuracy"] = float(accuracy_score(y, probs.argmax(1)))
        row["test_macro_f1"] = float(f1_score(y, probs.argmax(1), labels=labels, average="macro",
                                              zero_division=0))
        if "test_loss" in pred:
            row["test_loss"] = float(pred["test_loss"])
    except (OSError, KeyError, ValueError):
        pass
    vals = [r.get("val_accuracy") for r in store.read_metrics(info.run_id)]
    vals = [float(v) for v in vals if isinstance(v, int | float)]
    if vals:
        row["best_val_accuracy"] = max(vals)
    return row


def summarize_cv(store: Any, group_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-fold table, summary) over the group's finished folds; summary has mean, std (ddof=0, as
    scikit-learn's cross-validation examples report it), folds and 'mean ± std' for each metric."""
    rows = []
    for info in cv_runs(store, group_id):
        if not info.finished or info.status not in ("completed", "stopped"):
            continue
        rows.append({"fold": int((info.config.get("split") or {}).get("fold", 0)), "run_id": info.run_id,
                     **_fold_metrics(store, info)})
    per_fold = pd.DataFrame(rows)
    metrics = [c for c in per_fold.columns if c not in ("fold", "run_id")]
    summary = []
    for m in metrics:
        vals = pd.to_numeric(per_fold[m], errors="coerce").dropna().to_numpy(dtype=float)
        if len(vals):
            mean, std = float(np.mean(vals)), float(np.std(vals))
            summary.append({"metric": m, "mean": mean, "std": std, "folds": len(vals),
                            "mean ± std": f"{mean:.4f} ± {std:.4f}"})
    return per_fold, pd.DataFrame(summary, columns=["metric", "mean", "std", "folds", "mean ± std"])
