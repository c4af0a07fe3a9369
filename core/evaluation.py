"""Test-set predictions → scikit-learn metrics, confusion-matrix cells, curves, and the run's data.

Every number here comes from `sklearn.metrics`; this module only validates inputs, picks the right
function for the binary and multi-class cases, and maps confusion-matrix cells back to samples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.checks import KerasLabError
from core.datasets import model_input

__all__ = [
    "Evaluation",
    "EvaluationError",
    "RunData",
    "cell_positions",
    "confident_mistakes",
    "evaluate_predictions",
    "load_run_evaluation",
    "prediction_table",
    "pr_curves",
    "resolve_run_data",
    "roc_curves",
    "run_split",
    "to_display_image",
    "top_classes",
    "worst_cell",
]

_TOP_K_MIN_CLASSES = 10  # top-k accuracy is only informative with many classes


class EvaluationError(KerasLabError):
    """Predictions or a run's files cannot be evaluated; the message is meant for the user."""


@dataclass(frozen=True, eq=False)
class Evaluation:
    """Everything the Evaluate page shows about one set of test predictions."""

    class_names: tuple[str, ...]  # one per class index
    y_true: np.ndarray = field(repr=False)  # (n,) int labels
    probs: np.ndarray = field(repr=False)  # (n, k) probabilities
    y_pred: np.ndarray = field(repr=False)  # (n,) argmax of probs
    accuracy: float  # sklearn accuracy_score
    loss: float  # sklearn log_loss (cross-entropy), the quantity Keras minimises
    report: pd.DataFrame = field(repr=False)  # per class + macro/weighted avg: precision, recall, f1, support
    confusion: np.ndarray = field(repr=False)  # (k, k) counts, rows = true class, columns = predicted
    confusion_normalised: np.ndarray = field(repr=False)  # each row / its total (recall per class), empty: 0
    top_k: dict[int, float]  # {k: top-k accuracy} when there are >= 10 classes

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def f1(self) -> np.ndarray:
        """Per-class F1 in class order."""
        return self.report.loc[list(self.class_names), "f1-score"].to_numpy(dtype=float)


def _check_predictions(probs: Any, y_true: Any, class_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    probs = np.asarray(probs, dtype=np.float64)
    y_true = np.asarray(y_true)
    k = len(class_names)
    if k < 2:
        raise EvaluationError(f"need at least 2 class names, got {k}")
    if probs.ndim != 2 or probs.shape[1] != k:
        raise EvaluationError(f"probabilities must have shape (n, {k}) for {k} classes, got {probs.shape}")
    if y_true.ndim != 1 or len(y_true) != len(probs):
        raise EvaluationError(f"labels must have shape ({len(probs)},), got {y_true.shape}")
    if len(y_true) == 0:
        raise EvaluationError("the test set is empty: there is nothing to evaluate")
    if not np.issubdtype(y_true.dtype, np.integer):
        raise EvaluationError(f"labels must be whole numbers, got dtype {y_true.dtype}")
    if y_true.min() < 0 or y_true.max() >= k:
        raise EvaluationError(f"labels must lie in 0..{k - 1}, got {y_true.min()}..{y_true.max()}")
    if not np.isfinite(probs).all():
        raise EvaluationError("the probabilities contain NaN or infinity (did training diverge?)")
    return probs, y_true.astype(np.int64)


def evaluate_predictions(probs: Any, y_true: Any, class_names: Sequence[str]) -> Evaluation:
    """Accuracy, log loss, per-class report, confusion matrix and top-k, all from sklearn.metrics."""
    from sklearn.metrics import (
        accuracy_score,
        classification_report,
        confusion_matrix,
        log_loss,
        top_k_accuracy_score,
    )

    names = tuple(str(c) for c in class_names)
    probs, y_true = _check_predictions(probs, y_true, names)
    labels = list(range(len(names)))
    y_pred = probs.argmax(axis=1)
    report = classification_report(y_true, y_pred, labels=labels, target_names=list(names),
                                   output_dict=True, zero_division=0)
    rows = {name: report[name] for name in names}
    rows["macro avg"] = report["macro avg"]
    rows["weighted avg"] = report["weighted avg"]
    table = pd.DataFrame.from_dict(rows, orient="index")[["precision", "recall", "f1-score", "support"]]
    table["support"] = table["support"].astype(int)
    top_k: dict[int, float] = {}
    if len(names) >= _TOP_K_MIN_CLASSES:
        for kk in (3, 5):
            top_k[kk] = float(top_k_accuracy_score(y_true, probs, k=kk, labels=labels))
    clipped = np.clip(probs, 1e-7, 1.0)  # log_loss normalises rows itself; clip keeps log finite
    return Evaluation(
        class_names=names, y_true=y_true, probs=probs, y_pred=y_pred,
        accuracy=float(accuracy_score(y_true, y_pred)),
        loss=float(log_loss(y_true, clipped / clipped.sum(axis=1, keepdims=True), labels=labels)),
        report=table, confusion=confusion_matrix(y_true, y_pred, labels=labels),
        confusion_normalised=confusion_matrix(y_true, y_pred, labels=labels, normalize="true"), top_k=top_k,
    )


def cell_positions(y_true: np.ndarray, probs: np.ndarray, true_class: int, pred_class: int) -> np.ndarray:
    """Positions (into the test arrays) of the samples in confusion cell (true, predicted), most confident first."""
    y_true = np.asarray(y_true)
    probs = np.asarray(probs)
    k = probs.shape[1]
    for label, c in (("true class", true_class), ("predicted class", pred_class)):
        if not 0 <= int(c) < k:
            raise EvaluationError(f"{label} must lie in 0..{k - 1}, got {c}")
    y_pred = probs.argmax(axis=1)
    pos = np.flatnonzero((y_true == true_class) & (y_pred == pred_class))
    return pos[np.argsort(-probs[pos, pred_class], kind="stable")]


def confident_mistakes(y_true: np.ndarray, probs: np.ndarray, n: int = 12) -> np.ndarray:
    """Positions of the n wrong predictions made with the highest predicted probability."""
    y_pred = np.asarray(probs).argmax(axis=1)
    wrong = np.flatnonzero(y_pred != np.asarray(y_true))
    conf = np.asarray(probs)[wrong, y_pred[wrong]]
    return wrong[np.argsort(-conf, kind="stable")][: max(0, int(n))]


def worst_cell(cm: np.ndarray) -> tuple[int, int] | None:
    """The off-diagonal cell with the most samples (the commonest confusion); None when all are right."""
    off = np.array(cm, dtype=np.float64)
    np.fill_diagonal(off, -1)
    if off.max() <= 0:
        return None
    i, j = np.unravel_index(int(off.argmax()), off.shape)
    return int(i), int(j)


def top_classes(probs_row: np.ndarray, class_names: Sequence[str], k: int = 3) -> list[tuple[str, float]]:
    """The k most probable classes of one prediction, as (name, probability)."""
    row = np.asarray(probs_row, dtype=np.float64).reshape(-1)
    order = np.argsort(-row, kind="stable")[:k]
    return [(str(class_names[i]), float(row[i])) for i in order]


def _curve_targets(y_true: np.ndarray, probs: np.ndarray, class_names: Sequence[str]):
    """(name, binary target, score) per curve: the positive class alone when binary, one-vs-rest otherwise."""
    probs, y_true = _check_predictions(probs, y_true, class_names)
    classes = [1] if len(class_names) == 2 else range(len(class_names))
    for c in classes:
        target = (y_true == c).astype(int)
        if 0 < target.sum() < len(target):  # a curve needs positives and negatives in the test set
            yield str(class_names[c]), target, probs[:, c]


def roc_curves(y_true: np.ndarray, probs: np.ndarray, class_names: Sequence[str]) -> dict[str, dict]:
    """One-vs-rest ROC per class (binary: the positive class): {name: {fpr, tpr, auc}}."""
    from sklearn.metrics import auc, roc_curve

    out = {}
    for name, target, score in _curve_targets(y_true, probs, class_names):
        fpr, tpr, _ = roc_curve(target, score)
        out[name] = {"fpr": fpr, "tpr": tpr, "auc": float(auc(fpr, tpr))}
    return out


def pr_curves(y_true: np.ndarray, probs: np.ndarray, class_names: Sequence[str]) -> dict[str, dict]:
    """One-vs-rest precision-recall per class: {name: {precision, recall, ap}} (ap = average precision)."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    out = {}
    for name, target, score in _curve_targets(y_true, probs, class_names):
        precision, recall, _ = precision_recall_curve(target, score)
        out[name] = {"precision": precision, "recall": recall,
                     "ap": float(average_precision_score(target, score))}
    return out


def to_display_image(x: np.ndarray, size: int = 96) -> np.ndarray:
    """A (h, w, c) float image in [0, 1] as uint8, enlarged with nearest neighbours so 8x8 digits stay crisp."""
    img = np.clip(model_input(x).astype(np.float64), 0, 1)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    factor = max(1, size // max(img.shape[0], img.shape[1]))
    img = np.repeat(np.repeat(img, factor, axis=0), factor, axis=1)
    return (img * 255).round().astype(np.uint8)


def prediction_table(probs: np.ndarray, class_names: Sequence[str], k: int = 3) -> pd.DataFrame:
    """One row per prediction: the predicted class, its probability and the top k as text."""
    probs = np.asarray(probs, dtype=np.float64)
    rows = []
    for i, row in enumerate(probs):
        top = top_classes(row, class_names, k)
        rows.append({"row": i + 1, "prediction": top[0][0], "probability": top[0][1],
                     f"top {k}": ", ".join(f"{c} {p:.1%}" for c, p in top)})
    return pd.DataFrame(rows)


# ---- a run's predictions and data -------------------------------------------------------------------


def load_run_evaluation(store: Any, run_id: str) -> tuple[Evaluation, np.ndarray]:
    """(Evaluation, test_idx) of a finished run from its predictions.npz and config.json."""
    config = store.read_config(run_id)
    names = (config.get("dataset") or {}).get("class_names")
    try:
        pred = store.read_predictions(run_id)
    except FileNotFoundError as exc:
        raise EvaluationError(f"run {run_id} has no predictions.npz (it ended before the test set was "
                              f"scored)") from exc
    except (OSError, ValueError) as exc:
        raise EvaluationError(f"run {run_id}: predictions.npz is unreadable ({exc})") from exc
    for key in ("probs", "y_true"):
        if key not in pred:
            raise EvaluationError(f"run {run_id}: predictions.npz lacks {key!r}")
    probs = pred["probs"]
    if not names:
        names = [str(i) for i in range(probs.shape[1] if probs.ndim == 2 else 0)]
    test_idx = pred.get("test_idx", np.arange(len(pred["y_true"])))
    return evaluate_predictions(probs, pred["y_true"], names), np.asarray(test_idx, dtype=np.int64)


@dataclass(frozen=True, eq=False)
class RunData:
    """The dataset a run was trained on, found again, and its split (None when it cannot be rebuilt)."""

    dataset: Any  # core.datasets.Dataset
    split: Any  # core.datasets.Split matching the run's test indices, or None


def _fingerprint(dataset: Any) -> str | None:
    """The same fingerprint the job engine stores in config.json (uploads are matched by it)."""
    from core.datasets import dataset_fingerprint

    try:
        return str(dataset_fingerprint(dataset))
    except (AttributeError, TypeError, ValueError):
        return None


def run_split(dataset: Any, config: dict[str, Any]) -> Any:
    """Rebuild the run's split from config['split']: a seeded hold-out (the official test file, or every row
    pooled and re-split: runs that name no kind are from before the official split and were pooled) or a
    cross-validation fold."""
    from core.datasets import split_dataset

    info = config.get("split") or {}
    if info.get("kind") == "cv":
        from core.crossval import fold_splits

        folds = fold_splits(dataset, int(info["k"]), seed=int(info.get("seed", 0)),
                            val_fraction=float(info.get("val_fraction", 0.15)))
        return folds[int(info["fold"])]
    return split_dataset(dataset, seed=int(info.get("seed", 0)),
                         val_fraction=float(info.get("val_fraction", 0.15)),
                         test_fraction=float(info.get("test_fraction", 0.15)),
                         kind="official" if info.get("kind") == "official" else "pooled")


def resolve_run_data(config: dict[str, Any], test_idx: np.ndarray, y_true: np.ndarray, *,
                     candidates: Sequence[Any] = (), loader: Callable[..., Any] | None = None
                     ) -> tuple[RunData | None, str]:
    """Find the run's dataset (uploads by fingerprint among `candidates`, else the registry by name through
    `loader(name, subset, seed)`); check that its labels at the run's test indices are the run's labels.

    Returns (RunData, "") or (None, a plain reason). Never downloads: a missing dataset is a message.
    """
    from core.datasets import ALL_DATASETS, DatasetError, load

    info = config.get("dataset") or {}
    name = str(info.get("name", ""))
    dataset = None
    reason = ""
    want_fp = info.get("fingerprint")
    for cand in candidates:
        if cand is not None and want_fp is not None and _fingerprint(cand) == str(want_fp):
            dataset = cand
            break
    if dataset is None and name in ALL_DATASETS:
        try:
            subset, seed = info.get("subset"), int(info.get("seed", 0) or 0)
            dataset = loader(name, subset, seed) if loader else load(name, subset, seed, download=False)
        except (DatasetError, OSError) as exc:
            reason = f"the dataset {name!r} cannot be loaded here ({exc})"
    if dataset is None:
        return None, reason or (f"the data of this run ({name or 'an upload'}) is not available in this "
                                f"session; upload the same file on the Data page to see its samples")
    test_idx = np.asarray(test_idx, dtype=np.int64)
    if len(test_idx) and (test_idx.min() < 0 or test_idx.max() >= dataset.n_samples):
        return None, (f"the dataset {dataset.name!r} has {dataset.n_samples} samples but the run's test "
                      f"indices go up to {int(test_idx.max())}: it is not the data this run used")
    if not np.array_equal(dataset.y[test_idx], np.asarray(y_true)):
        return None, f"the labels of {dataset.name!r} differ from the run's test labels: it is not the same data"
    try:
        split = run_split(dataset, config)
        if not np.array_equal(np.asarray(split.test_idx), test_idx):
            split = None
    except (ValueError, KeyError, TypeError):
        split = None
    return RunData(dataset, split), ""
