"""Dataset statistics and 2-D projections for the Data page (numpy / pandas / scikit-learn only, no TF).

Everything here takes plain arrays or a `Dataset` and returns arrays or DataFrames, so it is tested without
Streamlit and cached by the ui layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from core.datasets import Dataset, DatasetError, Split, subset_indices
from core.text import distinct

__all__ = [
    "PCA_MAX_POINTS",
    "TSNE_MAX_POINTS",
    "Progress",
    "Projection",
    "class_counts",
    "class_sample_indices",
    "correlation",
    "describe",
    "mean_images",
    "mosaic",
    "pixel_histogram",
    "preview_table",
    "project_2d",
]

TSNE_MAX_POINTS = 2000  # t-SNE is O(n log n) per step but slow on 2 cores; larger sets are subsampled
PCA_MAX_POINTS = 5000  # points drawn in the PCA scatter (PCA itself is fitted on every sample)

Progress = Callable[[float, str], None]


def class_counts(dataset: Dataset, split: Split | None = None) -> pd.DataFrame:
    """Samples per class, long format (class, part, count): one part "all", or train / validation / test."""
    parts = {"all": dataset.y} if split is None else {
        "train": split.y_train, "validation": split.y_val, "test": split.y_test}
    rows = []
    for part, y in parts.items():
        counts = np.bincount(y, minlength=dataset.n_classes)
        rows += [(dataset.class_names[k], part, int(c)) for k, c in enumerate(counts)]
    return pd.DataFrame(rows, columns=["class", "part", "count"])


def class_sample_indices(y: np.ndarray, cls: int, n: int = 24, seed: int = 0) -> np.ndarray:
    """Up to n row indices of class `cls`, in a seeded random order (a new seed is a reshuffle)."""
    rows = np.flatnonzero(y == cls)
    if rows.size == 0:
        raise DatasetError(f"class index {cls} has no samples")
    return np.random.default_rng(seed).permutation(rows)[:n]


def mean_images(x: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """The average image of each class, (k, h, w, c); a class without samples gets zeros."""
    if x.ndim != 4:
        raise DatasetError(f"mean images need (n, h, w, c) images, got shape {x.shape}")
    sums = np.zeros((n_classes, *x.shape[1:]), np.float64)
    np.add.at(sums, y, x)
    counts = np.bincount(y, minlength=n_classes).reshape(-1, 1, 1, 1)
    return (sums / np.maximum(counts, 1)).astype(np.float32)


def mosaic(images: np.ndarray, cols: int, pad: int = 1, fill: float = 1.0) -> np.ndarray:
    """Tile (n, h, w, c) images into one (rows*(h+pad)-pad, cols*(w+pad)-pad, c) picture, row by row."""
    n, h, w, c = images.shape
    cols = max(1, min(cols, n))
    rows = -(-n // cols)
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad, c), fill, np.float32)
    for i, img in enumerate(images):
        r, k = divmod(i, cols)
        out[r * (h + pad):r * (h + pad) + h, k * (w + pad):k * (w + pad) + w] = img
    return out


def pixel_histogram(x: np.ndarray, bins: int = 32) -> pd.DataFrame:
    """Counts of pixel values in [0, 1] per channel, long format (channel, left, right, count)."""
    if x.ndim != 4:
        raise DatasetError(f"pixel histograms need (n, h, w, c) images, got shape {x.shape}")
    names = ["grey"] if x.shape[3] == 1 else ["red", "green", "blue", "alpha"][:x.shape[3]]
    edges = np.linspace(0.0, 1.0, bins + 1)
    frames = []
    for ch, name in enumerate(names):
        counts, _ = np.histogram(x[..., ch], bins=edges)
        frames.append(pd.DataFrame({"channel": name, "left": edges[:-1], "right": edges[1:], "count": counts}))
    return pd.concat(frames, ignore_index=True)


def preview_table(dataset: Dataset, n: int = 200) -> pd.DataFrame:
    """The first n tabular rows with their class name in front, for a quick look."""
    if dataset.kind != "tabular":
        raise DatasetError(f"{dataset.name}: a table preview is for tabular data")
    frame = pd.DataFrame(dataset.x[:n], columns=distinct(dataset.feature_names, ["class"]))
    frame.insert(0, "class", [dataset.class_names[k] for k in dataset.y[:n]])
    return frame


def describe(dataset: Dataset) -> pd.DataFrame:
    """pandas describe() of each tabular feature, one row per feature."""
    if dataset.kind != "tabular":
        raise DatasetError(f"{dataset.name}: describe() is for tabular data")
    return pd.DataFrame(dataset.x, columns=distinct(dataset.feature_names)).describe().T


def correlation(dataset: Dataset) -> pd.DataFrame:
    """Pearson correlation between tabular features (NaN where a feature is constant)."""
    if dataset.kind != "tabular":
        raise DatasetError(f"{dataset.name}: correlation is for tabular data")
    return pd.DataFrame(dataset.x.astype(np.float64), columns=distinct(dataset.feature_names)).corr()


@dataclass(frozen=True, eq=False)
class Projection:
    """2-D coordinates for the rows `idx` of a dataset."""

    coords: np.ndarray = field(repr=False)  # (m, 2)
    idx: np.ndarray = field(repr=False)  # (m,) rows of the dataset they belong to
    method: str = "pca"  # "pca" or "tsne"
    note: str = ""  # what was subsampled or explained, for a caption


def project_2d(dataset: Dataset, method: Literal["pca", "tsne"] = "pca", *, seed: int = 0,
               max_points: int | None = None, progress: Progress | None = None) -> Projection:
    """PCA or t-SNE to 2-D (flattened images; standardised tabular features); t-SNE on <= 2000 points."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from sklearn.preprocessing import StandardScaler

    if method not in ("pca", "tsne"):
        raise DatasetError(f"projection method must be 'pca' or 'tsne', got {method!r}")
    report = progress or (lambda _f, _t: None)
    limit = max_points or (TSNE_MAX_POINTS if method == "tsne" else PCA_MAX_POINTS)
    idx = subset_indices(dataset.y, limit, seed)
    notes = []
    if len(idx) < dataset.n_samples:
        notes.append(f"a stratified sample of {len(idx):,} of {dataset.n_samples:,} points")
    if len(idx) < 3:
        raise DatasetError(f"{dataset.name}: a 2-D projection needs at least 3 samples, got {len(idx)}")
    x = dataset.x[idx].reshape(len(idx), -1).astype(np.float64)
    if dataset.kind == "tabular":
        x = StandardScaler().fit_transform(x)  # features in cm and in mg must weigh alike
    if x.shape[1] == 1:  # nothing to project: PCA and t-SNE both need two dimensions
        notes.insert(0, "a single feature: its (standardised) values are shown along the first axis")
        return Projection(np.column_stack([x[:, 0], np.zeros(len(idx))]), idx, method, "; ".join(notes))
    if method == "pca":
        report(0.1, "Fitting PCA")
        pca = PCA(n_components=2, random_state=seed).fit(x)
        ratio = pca.explained_variance_ratio_
        notes.insert(0, f"PCA: the two components explain {ratio[0]:.0%} and {ratio[1]:.0%} of the variance")
        report(1.0, "Done")
        return Projection(pca.transform(x), idx, "pca", "; ".join(notes))
    if x.shape[1] > 50:
        report(0.1, f"Reducing {x.shape[1]} dimensions to 50 with PCA")
        x = PCA(n_components=min(50, len(idx)), random_state=seed).fit_transform(x)
    report(0.25, f"Running t-SNE on {len(idx):,} points")
    perplexity = float(min(30.0, max(2.0, (len(idx) - 1) / 3)))
    coords = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                  max_iter=500).fit_transform(x)
    notes.insert(0, f"t-SNE (perplexity {perplexity:g}): cluster sizes and the gaps between them are not "
                    f"meaningful")
    report(1.0, "Done")
    return Projection(coords, idx, "tsne", "; ".join(notes))
