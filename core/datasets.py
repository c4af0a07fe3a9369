"""One Dataset type, the registry of datasets, and the deterministic stratified split.

Every page and the training worker see data through `Dataset` and `Split`; where the data came from
(scikit-learn built-ins, keras.datasets, an upload) is recorded in `source` and `name` only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

__all__ = [
    "BUILTIN_DATASETS",
    "DEFAULT_DATASET",
    "Dataset",
    "DatasetError",
    "Split",
    "load_builtin",
    "split_dataset",
]

DEFAULT_DATASET = "digits"


class DatasetError(ValueError):
    """A dataset could not be loaded or is unusable; the message is meant for the user."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """Features and integer labels, with what is needed to show and train on them."""

    name: str  # registry key or "upload: <sanitised label>"
    x: np.ndarray = field(repr=False)  # images: (n, h, w, c) float32 in [0, 1]; tabular: (n, f) float32
    y: np.ndarray = field(repr=False)  # (n,) int64 class indices 0..k-1
    class_names: tuple[str, ...]  # one name per class index
    kind: Literal["image", "tabular"]
    feature_names: tuple[str, ...] = ()  # tabular column names; empty for images
    source: str = ""  # one line for the user: where the data came from

    def __post_init__(self) -> None:
        if self.x.shape[0] != self.y.shape[0]:
            raise DatasetError(f"{self.name}: {self.x.shape[0]} samples but {self.y.shape[0]} labels")
        if self.kind == "image" and self.x.ndim != 4:
            raise DatasetError(f"{self.name}: images must be (n, height, width, channels), got {self.x.shape}")
        if self.kind == "tabular" and self.x.ndim != 2:
            raise DatasetError(f"{self.name}: tabular data must be (n, features), got {self.x.shape}")
        if self.y.size and (self.y.min() < 0 or self.y.max() >= len(self.class_names)):
            raise DatasetError(f"{self.name}: labels must lie in 0..{len(self.class_names) - 1}")

    @property
    def n_samples(self) -> int:
        return int(self.x.shape[0])

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x.shape[1:])


@dataclass(frozen=True, eq=False)
class Split:
    """Train / validation / test parts of one dataset; indices point into the dataset's rows."""

    x_train: np.ndarray = field(repr=False)
    y_train: np.ndarray = field(repr=False)
    x_val: np.ndarray = field(repr=False)
    y_val: np.ndarray = field(repr=False)
    x_test: np.ndarray = field(repr=False)
    y_test: np.ndarray = field(repr=False)
    train_idx: np.ndarray = field(repr=False)
    val_idx: np.ndarray = field(repr=False)
    test_idx: np.ndarray = field(repr=False)
    seed: int = 0

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "validation": len(self.y_val), "test": len(self.y_test)}


def split_dataset(
    dataset: Dataset, *, seed: int = 0, val_fraction: float = 0.15, test_fraction: float = 0.15
) -> Split:
    """Stratified, seeded split; tabular features are standardised with statistics of the training part only."""
    from sklearn.model_selection import train_test_split

    for label, frac in (("validation fraction", val_fraction), ("test fraction", test_fraction)):
        if not 0 < frac < 1:
            raise DatasetError(f"{label} must be between 0 and 1, got {frac}")
    if val_fraction + test_fraction >= 0.9:
        raise DatasetError(f"validation + test fractions must leave at least 10% for training, got "
                           f"{val_fraction + test_fraction:.2f}")
    counts = np.bincount(dataset.y, minlength=dataset.n_classes)
    present = counts[counts > 0]
    if len(present) < 2:
        raise DatasetError(f"{dataset.name}: needs at least two classes with samples, found {len(present)}")
    # Stratify when every class can appear in every part; otherwise fall back to a plain shuffle.
    stratify = dataset.y if present.min() >= 3 else None
    idx = np.arange(dataset.n_samples)
    try:
        rest, test_idx = train_test_split(idx, test_size=test_fraction, random_state=seed,
                                          stratify=stratify)
        train_idx, val_idx = train_test_split(
            rest, test_size=val_fraction / (1 - test_fraction), random_state=seed,
            stratify=None if stratify is None else dataset.y[rest])
    except ValueError as exc:  # too few samples for the requested parts
        raise DatasetError(f"{dataset.name}: cannot split {dataset.n_samples} samples: {exc}") from exc
    x = dataset.x
    x_train, x_val, x_test = x[train_idx], x[val_idx], x[test_idx]
    if dataset.kind == "tabular":
        mean = x_train.mean(axis=0)
        std = x_train.std(axis=0)
        std[std == 0] = 1.0
        x_train, x_val, x_test = ((a - mean) / std for a in (x_train, x_val, x_test))
    return Split(
        x_train=x_train.astype(np.float32), y_train=dataset.y[train_idx],
        x_val=x_val.astype(np.float32), y_val=dataset.y[val_idx],
        x_test=x_test.astype(np.float32), y_test=dataset.y[test_idx],
        train_idx=train_idx, val_idx=val_idx, test_idx=test_idx, seed=seed,
    )


def _digits() -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[..., None]  # 0..16 grey levels -> [0, 1], 8x8x1
    return Dataset("digits", x, bunch.target.astype(np.int64), tuple(str(c) for c in range(10)), "image",
                   source="scikit-learn load_digits: 1,797 8x8 handwritten digits (UCI), bundled, offline")


def _tabular(loader_name: str, name: str, note: str) -> Dataset:
    import sklearn.datasets as skd

    bunch = getattr(skd, loader_name)()
    return Dataset(name, bunch.data.astype(np.float32), bunch.target.astype(np.int64),
                   tuple(str(c) for c in bunch.target_names), "tabular",
                   feature_names=tuple(str(f) for f in bunch.feature_names), source=note)


BUILTIN_DATASETS: dict[str, str] = {
    "digits": "Handwritten digits, 8x8 images, 10 classes (scikit-learn, offline)",
    "iris": "Iris flowers, 4 features, 3 classes (scikit-learn, offline)",
    "wine": "Wine cultivars, 13 features, 3 classes (scikit-learn, offline)",
    "breast_cancer": "Breast cancer diagnosis, 30 features, 2 classes (scikit-learn, offline)",
}


def load_builtin(name: str) -> Dataset:
    """A dataset bundled with scikit-learn: always available, no network."""
    if name == "digits":
        return _digits()
    notes = {
        "iris": ("load_iris", "scikit-learn load_iris: 150 flowers, 4 measurements, bundled, offline"),
        "wine": ("load_wine", "scikit-learn load_wine: 178 wines, 13 chemical features, bundled, offline"),
        "breast_cancer": ("load_breast_cancer",
                          "scikit-learn load_breast_cancer: 569 tumours, 30 features, bundled, offline"),
    }
    if name not in notes:
        raise DatasetError(f"unknown built-in dataset {name!r}; choose one of {', '.join(BUILTIN_DATASETS)}")
    loader, note = notes[name]
    return _tabular(loader, name, note)
