"""Dataset statistics and 2-D projections for the Data page (numpy / pandas / scikit-learn only, no TF).

Everything here takes plain arrays or a `Dataset` and returns arrays or DataFrames, so it is tested without
Streamlit and cached by the ui layer. Slow work (t-SNE: seconds to a minute) runs through `TaskCache`: a
process-wide memo that computes each key once in a background thread and publishes its progress, so a page
can poll and draw a progress bar *outside* any cached function (Streamlit replays what a cached function
drew, and a bar made outside it cannot be replayed), and a click or a page change during the run does not
throw the work away.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

import numpy as np
import pandas as pd

from core.datasets import Dataset, DatasetError, Split, subset_indices
from core.text import distinct

__all__ = [
    "PCA_MAX_POINTS",
    "TSNE_ITERATIONS",
    "TSNE_MAX_POINTS",
    "Progress",
    "Projection",
    "Task",
    "TaskCache",
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
T = TypeVar("T")


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
        report(0.02, f"Reducing {x.shape[1]} dimensions to 50 with PCA")
        x = PCA(n_components=min(50, len(idx)), random_state=seed).fit_transform(x)
    perplexity = float(min(30.0, max(2.0, (len(idx) - 1) / 3)))
    report(0.05, f"t-SNE on {len(idx):,} points: finding each point's neighbours")
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, max_iter=TSNE_ITERATIONS,
                verbose=2)  # verbose 2 prints "[t-SNE] Iteration 50: ..." every 50 steps: the real progress
    with _stdout_of_this_thread(_TsneLog(report, len(idx), TSNE_ITERATIONS)):
        coords = tsne.fit_transform(x)
    notes.insert(0, f"t-SNE (perplexity {perplexity:g}): cluster sizes and the gaps between them are not "
                    f"meaningful")
    report(1.0, "Done")
    return Projection(coords, idx, "tsne", "; ".join(notes))


# --- t-SNE progress from scikit-learn's own log --------------------------------------------------------------
# scikit-learn's TSNE has no callback; with verbose=2 it prints its stages and every 50th iteration to
# sys.stdout. Those lines are read (only the computing thread's, so a server's other output is untouched)
# and turned into fractions: neighbours 5-10 %, affinities 10-15 %, iterations 15-100 %.

TSNE_ITERATIONS = 500
_ITERATION = re.compile(r"\[t-SNE\] Iteration (\d+)")
_AFFINITIES = re.compile(r"\[t-SNE\] Computed conditional probabilities for sample (\d+) / (\d+)")


class _TsneLog:
    """A write() sink that turns scikit-learn's t-SNE log lines into progress reports (others are ignored)."""

    def __init__(self, report: Progress, n_points: int, max_iter: int) -> None:
        self.report, self.n_points, self.max_iter = report, n_points, max_iter
        self.pending = ""

    def __call__(self, text: str) -> None:
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            self.line(line)

    def line(self, line: str) -> None:
        if m := _ITERATION.match(line):
            i = min(int(m.group(1)), self.max_iter)
            self.report(0.15 + 0.85 * i / self.max_iter * 0.999,
                        f"t-SNE on {self.n_points:,} points: iteration {i} of {self.max_iter}")
        elif m := _AFFINITIES.match(line):
            done, total = int(m.group(1)), max(1, int(m.group(2)))
            self.report(0.10 + 0.05 * done / total, f"t-SNE on {self.n_points:,} points: neighbour affinities")
        elif line.startswith("[t-SNE] Computed neighbors"):
            self.report(0.10, f"t-SNE on {self.n_points:,} points: neighbour affinities")


class _StdoutRouter:
    """sys.stdout while some threads capture their output: their writes go to their sink, all others pass."""

    def __init__(self, fallback: Any) -> None:
        self.fallback = fallback
        self.sinks: dict[int, Callable[[str], None]] = {}

    def write(self, text: str) -> int:
        sink = self.sinks.get(threading.get_ident())
        if sink is None:
            return self.fallback.write(text)
        sink(text)
        return len(text)

    def flush(self) -> None:
        if threading.get_ident() not in self.sinks:
            self.fallback.flush()

    def __getattr__(self, name: str) -> Any:  # encoding, isatty, fileno...: those of the real stream
        return getattr(self.fallback, name)


_ROUTER_LOCK = threading.Lock()


@contextmanager
def _stdout_of_this_thread(sink: Callable[[str], None]) -> Iterator[None]:
    """Send what this thread prints to `sink` (other threads print as before); nests and overlaps safely."""
    me = threading.get_ident()
    with _ROUTER_LOCK:
        router = sys.stdout if isinstance(sys.stdout, _StdoutRouter) else _StdoutRouter(sys.stdout)
        sys.stdout = router
        router.sinks[me] = sink
    try:
        yield
    finally:
        with _ROUTER_LOCK:
            router.sinks.pop(me, None)
            if not router.sinks and sys.stdout is router:  # the last one out puts the real stream back
                sys.stdout = router.fallback


# --- background computations with progress, memoised per key -------------------------------------------------

class Task(Generic[T]):
    """One computation in a background thread: poll `fraction`, `text` and `elapsed`, `wait`, then `result`."""

    def __init__(self, compute: Callable[[Progress], T], name: str = "keras-lab-task") -> None:
        self.fraction = 0.0
        self.text = "Starting…"
        self.started = time.monotonic()
        self.finished: float | None = None
        self._value: T | None = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._compute: Callable[[Progress], T] | None = compute
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _report(self, fraction: float, text: str) -> None:
        self.fraction = max(self.fraction, min(1.0, float(fraction)))  # never moves backwards
        self.text = text

    def _run(self) -> None:
        try:
            self._value = self._compute(self._report)  # type: ignore[misc]
        except BaseException as exc:  # handed to whoever asks for the result
            self._error = exc
        finally:
            self._compute = None  # let go of the dataset the closure holds
            self.finished = time.monotonic()
            self._done.set()

    @property
    def elapsed(self) -> float:
        """Seconds since the start (until the end, once finished)."""
        return (self.finished or time.monotonic()) - self.started

    def done(self) -> bool:
        return self._done.is_set()

    def failed(self) -> bool:
        return self._done.is_set() and self._error is not None

    def wait(self, timeout: float | None = None) -> bool:
        """Block up to `timeout` seconds; True once finished."""
        return self._done.wait(timeout)

    def result(self, timeout: float | None = None) -> T:
        """The value (waiting for it); re-raises what the computation raised."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"still running after {timeout} s")
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


class TaskCache:
    """Background computations memoised by key, for every session of a process.

    The first caller of a key starts its Task; later callers (another click, another visitor) get the same
    Task, running or finished. At most `max_entries` finished tasks are kept (least recently used go first;
    running ones are never dropped). A task that failed with an exception not in `keep_errors` is forgotten,
    so asking again retries; one that failed with a kept error (a DatasetError: the data cannot be projected)
    is remembered like a result.
    """

    def __init__(self, max_entries: int = 16, keep_errors: tuple[type[BaseException], ...] = (DatasetError,)) -> None:
        self.max_entries = max_entries
        self.keep_errors = keep_errors
        self._tasks: OrderedDict[Hashable, Task[Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[Progress], T]) -> Task[T]:
        """The task for `key`, started with `compute(progress)` when there is none (or the last one crashed)."""
        with self._lock:
            task = self._tasks.get(key)
            if task is not None and task.failed() and not isinstance(task._error, self.keep_errors):
                task = None
            if task is None:
                task = Task(compute)
                self._tasks[key] = task
            self._tasks.move_to_end(key)
            finished = [k for k, t in self._tasks.items() if t.done() and k != key]
            for k in finished[:max(0, len(self._tasks) - self.max_entries)]:
                del self._tasks[k]
            return task

    def __len__(self) -> int:
        return len(self._tasks)
