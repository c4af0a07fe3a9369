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

from core.datasets import Dataset, DatasetError, Split, model_input, subset_indices
from core.i18n import _
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
        raise DatasetError(_("class index {cls} has no samples").format(cls=cls))
    return np.random.default_rng(seed).permutation(rows)[:n]


def mean_images(x: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """The average image of each class, (k, h, w, c) in [0, 1] (uint8 pixels are scaled); a class without
    samples gets zeros."""
    if x.ndim != 4:
        raise DatasetError(_("mean images need (n, h, w, c) images, got shape {shape}").format(shape=x.shape))
    # one vectorised sum per class: np.add.at took 10.7 s on the whole of CIFAR-10, this 0.08 s
    sums = np.stack([x[y == k].sum(axis=0, dtype=np.float64) for k in range(n_classes)])
    counts = np.bincount(y, minlength=n_classes).reshape(-1, 1, 1, 1)
    means = sums / np.maximum(counts, 1)
    return (means / 255 if x.dtype == np.uint8 else means).astype(np.float32)


def mosaic(images: np.ndarray, cols: int, pad: int = 1, fill: float = 1.0) -> np.ndarray:
    """Tile (n, h, w, c) images into one (rows*(h+pad)-pad, cols*(w+pad)-pad, c) picture in [0, 1], row by row."""
    images = model_input(images)
    n, h, w, c = images.shape
    cols = max(1, min(cols, n))
    rows = -(-n // cols)
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad, c), fill, np.float32)
    for i, img in enumerate(images):
        r, k = divmod(i, cols)
        out[r * (h + pad):r * (h + pad) + h, k * (w + pad):k * (w + pad) + w] = img
    return out


def pixel_histogram(x: np.ndarray, bins: int = 32) -> pd.DataFrame:
    """Counts of pixel values in [0, 1] per channel, long format (channel, left, right, count); uint8 pixels
    count as value / 255."""
    if x.ndim != 4:
        raise DatasetError(_("pixel histograms need (n, h, w, c) images, got shape {shape}").format(shape=x.shape))
    names = ["grey"] if x.shape[3] == 1 else ["red", "green", "blue", "alpha"][:x.shape[3]]
    edges = np.linspace(0.0, 1.0, bins + 1)
    if x.dtype == np.uint8:  # count the 256 levels, then put each level in its bin: 0.5 s for all of CIFAR-10
        level_bins = np.clip(np.searchsorted(edges, np.arange(256) / 255, side="right") - 1, 0, bins - 1)
        per_channel = [np.bincount(level_bins, weights=levels, minlength=bins).astype(np.int64)
                       for levels in _level_counts(x)]
    else:  # np.histogram sorts the values: 16 s for CIFAR-10's 184 M pixel values
        per_channel = [np.histogram(x[..., ch], bins=edges)[0] for ch in range(len(names))]
    frames = []
    for name, counts in zip(names, per_channel, strict=True):
        frames.append(pd.DataFrame({"channel": name, "left": edges[:-1], "right": edges[1:], "count": counts}))
    return pd.concat(frames, ignore_index=True)


def _level_counts(x: np.ndarray, chunk: int = 1 << 20) -> np.ndarray:
    """(channels, 256) counts of each uint8 level, a chunk of pixels at a time (np.bincount widens its input to
    64-bit integers: whole, that would be 8 bytes per pixel value)."""
    flat = x.reshape(-1, x.shape[-1])
    counts = np.zeros((flat.shape[1], 256), np.int64)
    for start in range(0, len(flat), chunk):
        part = flat[start:start + chunk]
        for ch in range(flat.shape[1]):
            counts[ch] += np.bincount(part[:, ch], minlength=256)
    return counts


def preview_table(dataset: Dataset, n: int = 200) -> pd.DataFrame:
    """The first n tabular rows with their class name in front (headed "class" in the visitor's language)."""
    if dataset.kind != "tabular":
        raise DatasetError(_("{name}: a table preview is for tabular data").format(name=dataset.name))
    heading = _("class")
    frame = pd.DataFrame(dataset.x[:n], columns=distinct(dataset.feature_names, [heading]))
    frame.insert(0, heading, [dataset.class_names[k] for k in dataset.y[:n]])
    return frame


def describe(dataset: Dataset) -> pd.DataFrame:
    """pandas describe() of each tabular feature, one row per feature."""
    if dataset.kind != "tabular":
        raise DatasetError(_("{name}: describe() is for tabular data").format(name=dataset.name))
    return pd.DataFrame(dataset.x, columns=distinct(dataset.feature_names)).describe().T


def correlation(dataset: Dataset) -> pd.DataFrame:
    """Pearson correlation between tabular features (NaN where a feature is constant)."""
    if dataset.kind != "tabular":
        raise DatasetError(_("{name}: correlation is for tabular data").format(name=dataset.name))
    return pd.DataFrame(dataset.x.astype(np.float64), columns=distinct(dataset.feature_names)).corr()


@dataclass(frozen=True, eq=False)
class Projection:
    """2-D coordinates for the rows `idx` of a dataset, and what its caption says about them."""

    coords: np.ndarray = field(repr=False)  # (m, 2)
    idx: np.ndarray = field(repr=False)  # (m,) rows of the dataset they belong to
    method: str = "pca"  # "pca" or "tsne"
    n_total: int = 0  # rows of the dataset: more than len(idx) where a sample was drawn
    explained: tuple[float, float] | None = None  # PCA: each component's share of the variance
    perplexity: float | None = None  # t-SNE
    single_feature: bool = False  # nothing to project: the one feature's values along the first axis

    @property
    def note(self) -> str:
        """What was subsampled or explained, for a caption: written when shown, in the visitor's language (one
        projection serves every visitor)."""
        notes = []
        if self.single_feature:
            notes.append(_("a single feature: its (standardised) values are shown along the first axis"))
        elif self.explained is not None:
            notes.append(_("PCA: the two components explain {first} and {second} of the variance").format(
                first=f"{self.explained[0]:.0%}", second=f"{self.explained[1]:.0%}"))
        elif self.perplexity is not None:
            notes.append(_("t-SNE (perplexity {perplexity}): cluster sizes and the gaps between them are not "
                           "meaningful").format(perplexity=f"{self.perplexity:g}"))
        if len(self.idx) < self.n_total:
            notes.append(_("a stratified sample of {n} of {total} points").format(n=f"{len(self.idx):,}",
                                                                                 total=f"{self.n_total:,}"))
        return _("; ").join(notes)


def project_2d(dataset: Dataset, method: Literal["pca", "tsne"] = "pca", *, seed: int = 0,
               max_points: int | None = None, progress: Progress | None = None) -> Projection:
    """PCA or t-SNE to 2-D (flattened images; standardised tabular features); t-SNE on <= 2000 points."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from sklearn.preprocessing import StandardScaler

    if method not in ("pca", "tsne"):
        raise DatasetError(_("projection method must be 'pca' or 'tsne', got {method}").format(method=repr(method)))
    report = progress or (lambda _f, _t: None)
    limit = max_points or (TSNE_MAX_POINTS if method == "tsne" else PCA_MAX_POINTS)
    idx = subset_indices(dataset.y, limit, seed)
    if len(idx) < 3:
        raise DatasetError(_("{name}: a 2-D projection needs at least 3 samples, got {n}").format(
            name=dataset.name, n=len(idx)))
    x = model_input(dataset.x[idx]).reshape(len(idx), -1).astype(np.float64)
    if dataset.kind == "tabular":
        x = StandardScaler().fit_transform(x)  # features in cm and in mg must weigh alike
    if x.shape[1] == 1:  # nothing to project: PCA and t-SNE both need two dimensions
        return Projection(np.column_stack([x[:, 0], np.zeros(len(idx))]), idx, method, dataset.n_samples,
                          single_feature=True)
    if method == "pca":
        report(0.1, _("Fitting PCA"))
        pca = PCA(n_components=2, random_state=seed).fit(x)
        ratio = pca.explained_variance_ratio_
        report(1.0, _("Done"))
        return Projection(pca.transform(x), idx, "pca", dataset.n_samples,
                          explained=(float(ratio[0]), float(ratio[1])))
    if x.shape[1] > 50:
        report(0.02, _("Reducing {n} dimensions to 50 with PCA").format(n=x.shape[1]))
        x = PCA(n_components=min(50, len(idx)), random_state=seed).fit_transform(x)
    perplexity = float(min(30.0, max(2.0, (len(idx) - 1) / 3)))
    report(0.05, _("t-SNE on {n} points: finding each point's neighbours").format(n=f"{len(idx):,}"))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, max_iter=TSNE_ITERATIONS,
                verbose=2)  # verbose 2 prints "[t-SNE] Iteration 50: ..." every 50 steps: the real progress
    with _stdout_of_this_thread(_TsneLog(report, len(idx), TSNE_ITERATIONS)):
        coords = tsne.fit_transform(x)
    report(1.0, _("Done"))
    return Projection(coords, idx, "tsne", dataset.n_samples, perplexity=perplexity)


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
                        _("t-SNE on {n} points: iteration {i} of {total}").format(
                            n=f"{self.n_points:,}", i=i, total=self.max_iter))
        elif m := _AFFINITIES.match(line):
            done, total = int(m.group(1)), max(1, int(m.group(2)))
            self.report(0.10 + 0.05 * done / total, self._affinities())
        elif line.startswith("[t-SNE] Computed neighbors"):
            self.report(0.10, self._affinities())

    def _affinities(self) -> str:
        return _("t-SNE on {n} points: neighbour affinities").format(n=f"{self.n_points:,}")


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
        self.text = _("Starting…")
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
