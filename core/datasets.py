"""One Dataset type, the registry of datasets, and the deterministic stratified split.

Every page and the training worker see data through `Dataset` and `Split`; where the data came from
(scikit-learn built-ins, keras.datasets, an upload) is recorded in `source` and `name` only. A registry
dataset is rebuilt from `Dataset.ref` (name + subset + seed) with `load(**ref.to_dict())`; uploads have no
ref and travel as objects.

keras.datasets are read straight from the Keras cache folder (never importing TensorFlow just to read
data); only a missing file triggers the Keras download, and its failure becomes a `DatasetError` saying
which file to fetch, from where, and into which folder. Their images stay uint8 (a quarter of float32's
memory: CIFAR-10 takes 176 MB instead of 703 MB); `model_input` scales them to [0, 1] where a model reads them,
a batch at a time in training. They keep their official test file as the test part unless a run asks for
the pooled re-split, so results compare with published figures.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import weakref
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from core.checks import KerasLabError, choice, number, whole_number
from core.i18n import _
from core.settings import keras_home

__all__ = [
    "ALL_DATASETS",
    "BUILTIN_DATASETS",
    "DEFAULT_DATASET",
    "KERAS_DATASETS",
    "SPLITS",
    "TENSORFLOW_BYTES",
    "Dataset",
    "DatasetError",
    "DatasetRef",
    "MemoryNeed",
    "Split",
    "dataset_fingerprint",
    "dataset_description",
    "describe_source",
    "describe_split",
    "fetch",
    "is_cached",
    "keras_cache_dir",
    "load",
    "load_builtin",
    "load_keras",
    "memory_need",
    "model_input",
    "split_at",
    "split_dataset",
    "split_indices",
    "split_used",
    "subset_indices",
]

DEFAULT_DATASET = "digits"
# How a run splits its data: "official" keeps a Keras dataset's own test file as the test part and carves
# validation from its training files; "pooled" merges every row and re-splits them (what datasets without an
# official split, scikit-learn's and uploads, always get).
SPLITS = ("official", "pooled")
_FINGERPRINTS: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


class DatasetError(KerasLabError):
    """A dataset could not be loaded or is unusable; the message is meant for the user."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """Features and integer labels, with what is needed to show and train on them."""

    name: str  # registry key or "upload: <sanitised label>"
    # images: (n, h, w, c), uint8 pixels (Keras datasets) or float32 in [0, 1]; read them through
    # model_input. Tabular: (n, f) float32.
    x: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)  # (n,) int64 class indices 0..k-1
    class_names: tuple[str, ...]  # one name per class index
    kind: Literal["image", "tabular"]
    feature_names: tuple[str, ...] = ()  # tabular column names; empty for images
    source: str = ""  # one line for the user: where the data came from
    subset: int | None = None  # stratified subset size it was drawn with (None: every sample)
    seed: int = 0  # seed of that subset draw
    # An uploaded table's raw feature columns and recipe (core.tabular.TableData): each split fits its
    # preparation (imputation, one-hot, scaling) on its own training rows. None: x is used as it is.
    table: Any = field(default=None, repr=False)
    # Keras datasets: rows before this index come from the official training files, the rest from the official
    # test file. None: the data has no official split.
    official_test_start: int | None = None

    def __post_init__(self) -> None:
        if self.x.shape[0] != self.y.shape[0]:
            raise DatasetError(_("{name}: {x} samples but {y} labels").format(
                name=self.name, x=self.x.shape[0], y=self.y.shape[0]))
        if self.kind == "image" and self.x.ndim != 4:
            raise DatasetError(_("{name}: images must be (n, height, width, channels), got {shape}").format(
                name=self.name, shape=self.x.shape))
        if self.kind == "tabular" and self.x.ndim != 2:
            raise DatasetError(_("{name}: tabular data must be (n, features), got {shape}").format(
                name=self.name, shape=self.x.shape))
        if self.y.size and (self.y.min() < 0 or self.y.max() >= len(self.class_names)):
            raise DatasetError(_("{name}: labels must lie in 0..{last}").format(
                name=self.name, last=len(self.class_names) - 1))
        if self.official_test_start is not None and not 0 <= self.official_test_start <= self.n_samples:
            raise DatasetError(_("{name}: the official test part must start within its {n} rows, got {start}").format(
                name=self.name, n=self.n_samples, start=self.official_test_start))

    @property
    def n_samples(self) -> int:
        return int(self.x.shape[0])

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x.shape[1:])

    @property
    def has_official_split(self) -> bool:
        """Whether the rows hold both official parts, training files and test file (a tiny subset may not)."""
        return self.official_test_start is not None and 0 < self.official_test_start < self.n_samples

    @property
    def ref(self) -> DatasetRef | None:
        """What `load` needs to rebuild this dataset; None for uploads, which cannot be reloaded by name."""
        if self.name not in ALL_DATASETS:
            return None
        return DatasetRef(self.name, self.subset, self.seed)


@dataclass(frozen=True)
class DatasetRef:
    """A registry dataset by name, as stored in a run's config.json: `load(**ref.to_dict())` rebuilds it."""

    name: str  # a key of ALL_DATASETS
    subset: int | None = None  # stratified subset size; None for every sample
    seed: int = 0  # seed of the subset draw

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetRef:
        return cls(str(data["name"]), data.get("subset"), int(data.get("seed", 0)))


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
    mean: np.ndarray | None = field(default=None, repr=False)  # tabular: the training part's feature means
    std: np.ndarray | None = field(default=None, repr=False)  # tabular: its standard deviations (constant columns: 1)
    # tabular: the preparation fitted on the training part, as plain JSON data (core.tabular); it turns raw
    # rows into the model's inputs and is stored with the run
    preparation: dict[str, Any] | None = field(default=None, repr=False)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "validation": len(self.y_val), "test": len(self.y_test)}

    def standardise(self, x: np.ndarray) -> np.ndarray:
        """New raw rows of numbers scaled exactly as this split's parts were (images are left as they are).

        An uploaded table's raw rows are text: they go through `preparation` (core.tabular.prepare_rows)."""
        x = np.asarray(x, dtype=np.float32)
        if self.mean is None and self.preparation is not None and self.preparation.get("columns"):
            raise DatasetError("this split's rows are prepared from raw columns: use core.tabular.prepare_rows")
        return x if self.mean is None else ((x - self.mean) / self.std).astype(np.float32)


def dataset_fingerprint(dataset: Any) -> str:
    """sha256 of x and y bytes: lets a page match a run to an uploaded dataset still in its session."""
    try:
        return _FINGERPRINTS[dataset]
    except (KeyError, TypeError):
        pass
    digest = hashlib.sha256()
    for arr in (dataset.x, dataset.y):
        arr = np.ascontiguousarray(arr)
        digest.update(f"{arr.dtype.str}{arr.shape}".encode())
        digest.update(memoryview(arr).cast("B"))
    value = digest.hexdigest()
    try:
        _FINGERPRINTS[dataset] = value
    except TypeError:
        pass
    return value


def model_input(x: np.ndarray) -> np.ndarray:
    """Samples as a model reads them: uint8 pixels scaled to float32 in [0, 1], other arrays as float32.

    Keras datasets keep their images uint8 (a quarter of the memory); scaling happens here, on the rows
    about to be used (a batch, a gallery), with the same float32 division as scaling them all at load."""
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return np.divide(x, 255, dtype=np.float32)
    return x.astype(np.float32, copy=False)


def split_used(dataset: Dataset, kind: str = "official") -> str:
    """The split a run asking for `kind` gets: "official" only where the data has one, else "pooled"."""
    choice("split", kind, SPLITS, error=DatasetError)
    return "official" if kind == "official" and dataset.has_official_split else "pooled"


def describe_split(dataset: Dataset, kind: str = "official", *, seed: int = 0, val_fraction: float = 0.15,
                   test_fraction: float = 0.15) -> str:
    """The split in words, as training makes it from these settings."""
    if split_used(dataset, kind) == "official":
        n_test = dataset.n_samples - int(dataset.official_test_start or 0)
        return _("the official test file ({n} samples) as the test part; validation: {val} of the training "
                 "files, stratified, seed {seed}").format(n=f"{n_test:,}", val=f"{val_fraction:.0%}", seed=seed)
    train = 1 - val_fraction - test_fraction
    return _("stratified, seed {seed}, {train} / {val} / {test} (training / validation / test)").format(
        seed=seed, train=f"{train:.0%}", val=f"{val_fraction:.0%}", test=f"{test_fraction:.0%}")


def split_indices(dataset: Dataset, *, seed: int = 0, val_fraction: float = 0.15, test_fraction: float = 0.15,
                  kind: str = "official") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, validation, test) row indices of the stratified, seeded split (what split_dataset uses).

    `kind` "official" (where the data has an official split, see split_used): the test part is the official
    test file's rows and validation is `val_fraction` of the training files' rows (`test_fraction` is not
    used). Otherwise every row is pooled and split by both fractions."""
    for label, frac in ((_("validation fraction"), val_fraction), (_("test fraction"), test_fraction)):
        number(label, frac, 0, 1, lo_open=True, hi_open=True, error=DatasetError)
    if split_used(dataset, kind) == "official":
        return _official_indices(dataset, seed, val_fraction)
    return _pooled_indices(dataset, seed, val_fraction, test_fraction)


def _stratify(y: np.ndarray, n_parts: int) -> np.ndarray | None:
    """Stratify when every class present can appear in every part; otherwise a plain shuffle (None)."""
    counts = np.bincount(y)
    return y if counts[counts > 0].min() >= n_parts + 1 else None


def _official_indices(dataset: Dataset, seed: int, val_fraction: float
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    start = int(dataset.official_test_start or 0)
    train_rows = np.arange(start)
    try:
        train_idx, val_idx = train_test_split(train_rows, test_size=val_fraction, random_state=seed,
                                              stratify=_stratify(dataset.y[:start], 1))
    except ValueError as exc:
        raise DatasetError(_("{name}: its {n} training-file samples are too few to carve a {val} validation part "
                             "from; use a larger subset").format(name=dataset.name, n=start,
                                                                  val=f"{val_fraction:.0%}")) from exc
    return train_idx, val_idx, np.arange(start, dataset.n_samples)


def _pooled_indices(dataset: Dataset, seed: int, val_fraction: float, test_fraction: float
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    if val_fraction + test_fraction >= 0.9:
        raise DatasetError(_("validation + test fractions must leave at least {share} for training, got {sum}").format(
            share="10%", sum=f"{val_fraction + test_fraction:.2f}"))
    counts = np.bincount(dataset.y, minlength=dataset.n_classes)
    present = counts[counts > 0]
    if len(present) < 2:
        raise DatasetError(_("{name}: needs at least two classes with samples, found {n}").format(
            name=dataset.name, n=len(present)))
    stratify = _stratify(dataset.y, 2)
    idx = np.arange(dataset.n_samples)
    try:
        rest, test_idx = train_test_split(idx, test_size=test_fraction, random_state=seed,
                                          stratify=stratify)
        train_idx, val_idx = train_test_split(
            rest, test_size=val_fraction / (1 - test_fraction), random_state=seed,
            stratify=None if stratify is None else dataset.y[rest])
    except ValueError as exc:  # too few samples for the requested parts (sklearn's message is about its API)
        train_pct = round(100 * (1 - val_fraction - test_fraction))
        raise DatasetError(_(
            "{name}: {n} samples are too few to split into training, validation and test parts "
            "({train} / {val} / {test} %); use a dataset with more samples (a few per class at least)").format(
            name=dataset.name, n=dataset.n_samples, train=train_pct, val=round(100 * val_fraction),
            test=round(100 * test_fraction))) from exc
    return train_idx, val_idx, test_idx


def split_dataset(dataset: Dataset, *, seed: int = 0, val_fraction: float = 0.15, test_fraction: float = 0.15,
                  kind: str = "official") -> Split:
    """Stratified, seeded split (`kind`: see split_indices); tabular features are prepared with statistics of
    the training part only."""
    train_idx, val_idx, test_idx = split_indices(dataset, seed=seed, val_fraction=val_fraction,
                                                 test_fraction=test_fraction, kind=kind)
    return split_at(dataset, train_idx, val_idx, test_idx, seed=seed)


def split_at(dataset: Dataset, train_idx: np.ndarray, val_idx: np.ndarray, test_idx: np.ndarray, *,
             seed: int = 0) -> Split:
    """The Split of given row indices; tabular features are prepared with the training part's statistics only.

    An uploaded table (`dataset.table`) is prepared from its raw columns: imputation, one-hot encoding and
    scaling fitted on `train_idx` (core.tabular.fit_preparation), the same for every part. Other tabular
    data is standardised with the training part's mean and standard deviation (scikit-learn's StandardScaler).
    uint8 images stay uint8 (see model_input)."""
    if dataset.kind == "tabular" and dataset.table is not None:
        from core import tabular

        preparation = tabular.preparation_for(dataset.table, np.asarray(train_idx))
        x = tabular.encode_table(dataset.table, preparation)
        return Split(x_train=x[train_idx], y_train=dataset.y[train_idx], x_val=x[val_idx],
                     y_val=dataset.y[val_idx], x_test=x[test_idx], y_test=dataset.y[test_idx],
                     train_idx=train_idx, val_idx=val_idx, test_idx=test_idx, seed=seed, preparation=preparation)
    x = dataset.x if dataset.x.dtype == np.uint8 else np.asarray(dataset.x, dtype=np.float32)
    mean = std = None
    if dataset.kind == "tabular":
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler().fit(x[train_idx])  # a constant column keeps scale 1
        # kept as arrays: Split.standardise scales new rows with them exactly as it scales the parts below
        mean, std = scaler.mean_.astype(np.float32), scaler.scale_.astype(np.float32)
    split = Split(
        x_train=x[train_idx], y_train=dataset.y[train_idx], x_val=x[val_idx], y_val=dataset.y[val_idx],
        x_test=x[test_idx], y_test=dataset.y[test_idx],
        train_idx=train_idx, val_idx=val_idx, test_idx=test_idx, seed=seed, mean=mean, std=std,
    )
    if mean is None:
        return split
    from core.tabular import numeric_preparation

    preparation = numeric_preparation(dataset.feature_names or [f"x{i}" for i in range(x.shape[1])], mean, std,
                                      dataset.class_names)
    return replace(split, x_train=split.standardise(split.x_train), x_val=split.standardise(split.x_val),
                   x_test=split.standardise(split.x_test), preparation=preparation)


def _digits() -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[..., None]  # 0..16 grey levels -> [0, 1], 8x8x1
    return Dataset("digits", x, bunch.target.astype(np.int64), tuple(str(c) for c in range(10)), "image",
                   source=_builtin_source("digits"))


def _tabular(loader_name: str, name: str, note: str) -> Dataset:
    import sklearn.datasets as skd

    bunch = getattr(skd, loader_name)()
    return Dataset(name, bunch.data.astype(np.float32), bunch.target.astype(np.int64),
                   tuple(str(c) for c in bunch.target_names), "tabular",
                   feature_names=tuple(str(f) for f in bunch.feature_names), source=note)


BUILTIN_DATASETS: tuple[str, ...] = ("digits", "iris", "wine", "breast_cancer")


def _builtin_source(name: str, subset: int | None = None) -> str:
    """Where a scikit-learn dataset comes from (and the size of its subset), in the visitor's language."""
    source = {
        "digits": _("scikit-learn load_digits: 1,797 8x8 handwritten digits (UCI), bundled, offline"),
        "iris": _("scikit-learn load_iris: 150 flowers, 4 measurements, bundled, offline"),
        "wine": _("scikit-learn load_wine: 178 wines, 13 chemical features, bundled, offline"),
        "breast_cancer": _("scikit-learn load_breast_cancer: 569 tumours, 30 features, bundled, offline"),
    }[name]
    if subset is None:
        return source
    return _("{source}; stratified subset of {n}").format(source=source, n=f"{subset:,}")


def load_builtin(name: str) -> Dataset:
    """A dataset bundled with scikit-learn: always available, no network."""
    if name == "digits":
        return _digits()
    loaders = {"iris": "load_iris", "wine": "load_wine", "breast_cancer": "load_breast_cancer"}
    if name not in loaders:
        raise DatasetError(_("unknown built-in dataset {name}; choose one of {names}").format(
            name=repr(name), names=", ".join(BUILTIN_DATASETS)))
    return _tabular(loaders[name], name, _builtin_source(name))


# --- keras.datasets, read from the Keras cache -------------------------------------------------------

_TF_KERAS = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_FASHION_FILES = ("train-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz",
                  "t10k-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz")
_FASHION_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                  "Bag", "Ankle boot")
_CIFAR10_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

KERAS_DATASETS: tuple[str, ...] = ("mnist", "fashion_mnist", "cifar10", "cifar100")
ALL_DATASETS: tuple[str, ...] = (*BUILTIN_DATASETS, *KERAS_DATASETS)


def dataset_description(name: str) -> str:
    """One line on a registry dataset (what the dataset box lists), in the visitor's language."""
    return {
        "digits": _("Handwritten digits, 8x8 images, 10 classes (scikit-learn, offline)"),
        "iris": _("Iris flowers, 4 features, 3 classes (scikit-learn, offline)"),
        "wine": _("Wine cultivars, 13 features, 3 classes (scikit-learn, offline)"),
        "breast_cancer": _("Breast cancer diagnosis, 30 features, 2 classes (scikit-learn, offline)"),
        "mnist": _("MNIST handwritten digits, 28x28 grey, 70,000 images, 10 classes (Keras, ~11 MB)"),
        "fashion_mnist": _("Fashion-MNIST clothing, 28x28 grey, 70,000 images, 10 classes (Keras, ~30 MB)"),
        "cifar10": _("CIFAR-10 photos, 32x32 colour, 60,000 images, 10 classes (Keras, ~170 MB)"),
        "cifar100": _("CIFAR-100 photos, 32x32 colour, 60,000 images, 100 classes (Keras, ~170 MB)"),
    }[name]

# Where Keras 3 puts each dataset under <KERAS_HOME>/datasets (older Keras extracted CIFAR one level up).
_CACHE_LAYOUT: dict[str, dict[str, Any]] = {
    "mnist": {"dirs": ("",), "files": ("mnist.npz",), "url": f"{_TF_KERAS}mnist.npz"},
    "fashion_mnist": {"dirs": ("fashion-mnist",), "files": _FASHION_FILES, "url": _TF_KERAS},
    "cifar10": {"dirs": ("cifar-10-batches-py-target/cifar-10-batches-py", "cifar-10-batches-py"),
                "files": ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
                          "test_batch", "batches.meta"),
                "url": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"},
    "cifar100": {"dirs": ("cifar-100-python-target/cifar-100-python", "cifar-100-python"),
                 "files": ("train", "test", "meta"),
                 "url": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"},
}


def keras_cache_dir() -> Path:
    """<KERAS_HOME>/datasets, or ~/.keras/datasets (/tmp/.keras when home is read-only), as Keras decides."""
    return keras_home() / "datasets"


def _cached_folder(name: str) -> Path | None:
    """The cache folder holding every file of `name`, or None."""
    layout = _CACHE_LAYOUT[name]
    root = keras_cache_dir()
    for sub in layout["dirs"]:
        folder = root / sub if sub else root
        if all((folder / f).is_file() for f in layout["files"]):
            return folder
    return None


def is_cached(name: str) -> bool:
    """Whether a keras dataset can be read offline (built-ins always can)."""
    if name in BUILTIN_DATASETS:
        return True
    if name not in KERAS_DATASETS:
        raise DatasetError(_("unknown dataset {name}; choose one of {names}").format(
            name=repr(name), names=", ".join(ALL_DATASETS)))
    return _cached_folder(name) is not None


def _missing_message(name: str, reason: str | None) -> str:
    """What to download, from where, and the exact folder to put it in."""
    layout = _CACHE_LAYOUT[name]
    folder = keras_cache_dir() / layout["dirs"][0] if layout["dirs"][0] else keras_cache_dir()
    what = (_("{name} is not in the Keras cache") if reason is None
            else _("{name} is not in the Keras cache and the download failed ({reason})")).format(
        name=name, reason=reason)
    steps = {
        "mnist": _("Download {url}, then put mnist.npz in {folder}"),
        "fashion_mnist": _("Download each needed file from {url}, then put the four .gz files (not unpacked) in "
                           "{folder}"),
        "cifar10": _("Download {url}, then unpack it and put the files of its cifar-10-batches-py folder in "
                     "{folder}"),
        "cifar100": _("Download {url}, then unpack it and put the files of its cifar-100-python folder in "
                      "{folder}"),
    }[name].format(url=layout["url"], folder=f"{folder}{os.sep}")
    return _("{what}. {steps} (needed: {files}). Built-in datasets keep working offline.").format(
        what=what, steps=steps, files=", ".join(layout["files"]))


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits only the globals that rebuild numpy arrays; dicts, lists, bytes and ints need none."""

    _ALLOWED = frozenset({
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    })

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are allowed")


def _read_cifar_pickle(path: Path) -> dict[str, Any]:
    """A CIFAR python batch (a Python 2 pickle of a dict) from the Keras cache, keys decoded to str."""
    try:
        with open(path, "rb") as f:
            raw = _NumpyOnlyUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise DatasetError(_("{path} is not a valid CIFAR batch file: {error}. Delete it and download again.").format(
            path=path, error=exc)) from exc
    if not isinstance(raw, dict):
        raise DatasetError(_("{path} is not a valid CIFAR batch file: expected a dict, got {type}").format(
            path=path, type=type(raw).__name__))
    return {k.decode("utf-8") if isinstance(k, bytes) else str(k): v for k, v in raw.items()}


def _cifar_images(batch: dict[str, Any], path: Path) -> np.ndarray:
    data = batch.get("data")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DatasetError(_("{path}: 'data' must be a uint8 array of shape (n, 3072)").format(path=path))
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # channels first on disk -> channels last


def _names(values: Any) -> tuple[str, ...]:
    return tuple(v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values)


def _read_idx_gz(path: Path, offset: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def _read_cache(name: str, folder: Path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], int]:
    """(uint8 images (n, h, w, c), labels, class names, rows from the training files) with the training files
    first, then the test file's rows."""
    if name == "mnist":
        with np.load(folder / "mnist.npz", allow_pickle=False) as f:
            xs, ys = [f["x_train"], f["x_test"]], [f["y_train"], f["y_test"]]
        names = tuple(str(i) for i in range(10))
    elif name == "fashion_mnist":
        ys, xs = [], []
        for labels, images in ((_FASHION_FILES[0], _FASHION_FILES[1]), (_FASHION_FILES[2], _FASHION_FILES[3])):
            y = _read_idx_gz(folder / labels, 8)
            xs.append(_read_idx_gz(folder / images, 16).reshape(len(y), 28, 28))
            ys.append(y)
        names = _FASHION_NAMES
    elif name == "cifar10":
        batches = [folder / f"data_batch_{i}" for i in range(1, 6)] + [folder / "test_batch"]
        xs, ys = [], []
        for path in batches:
            batch = _read_cifar_pickle(path)
            xs.append(_cifar_images(batch, path))
            ys.append(np.asarray(batch.get("labels", []), dtype=np.int64))
        names = _names(_read_cifar_pickle(folder / "batches.meta").get("label_names", _CIFAR10_NAMES))
    else:  # cifar100, fine labels
        xs, ys = [], []
        for part in ("train", "test"):
            batch = _read_cifar_pickle(folder / part)
            xs.append(_cifar_images(batch, folder / part))
            ys.append(np.asarray(batch.get("fine_labels", []), dtype=np.int64))
        names = _names(_read_cifar_pickle(folder / "meta").get("fine_label_names", []))
    x = np.concatenate(xs)
    y = np.concatenate([np.asarray(v).reshape(-1) for v in ys]).astype(np.int64)
    if x.ndim == 3:
        x = x[..., None]
    if not names:
        names = tuple(str(i) for i in range(int(y.max()) + 1))
    return x, y, names, len(x) - len(xs[-1])


def _download(name: str) -> None:
    """Let Keras fetch `name` into its cache (imports TensorFlow; fails without network)."""
    import keras

    getattr(keras.datasets, name).load_data()


def fetch(name: str) -> Path:
    """The cache folder of a keras dataset, downloading it with Keras first when it is missing."""
    if name not in KERAS_DATASETS:
        raise DatasetError(_("unknown keras dataset {name}; choose one of {names}").format(
            name=repr(name), names=", ".join(KERAS_DATASETS)))
    folder = _cached_folder(name)
    if folder is not None:
        return folder
    try:
        _download(name)
    except Exception as exc:  # any network / extraction failure becomes a plain message
        raise DatasetError(_missing_message(name, f"{type(exc).__name__}: {exc}")) from exc
    folder = _cached_folder(name)
    if folder is None:
        outside = _("Keras stored it outside {folder}").format(folder=keras_cache_dir())
        raise DatasetError(_missing_message(name, outside))
    return folder


def subset_indices(y: np.ndarray, subset: int | None, seed: int = 0) -> np.ndarray:
    """Sorted row indices of a stratified, seeded subset of `subset` samples (all rows when None or larger)."""
    n = len(y)
    if subset is None:
        return np.arange(n)
    subset = whole_number(_("subset size"), subset, 1, error=DatasetError)
    if subset >= n:
        return np.arange(n)
    n_classes = len(np.unique(y))
    if subset < n_classes:
        raise DatasetError(_("subset size must be at least the number of classes ({n}), got {subset}").format(
            n=n_classes, subset=subset))
    from sklearn.model_selection import train_test_split

    counts = np.bincount(y)
    stratify = y if counts[counts > 0].min() >= 2 else None
    idx = train_test_split(np.arange(n), train_size=subset, random_state=seed, stratify=stratify)[0]
    return np.sort(idx)


def load_keras(name: str, subset: int | None = None, seed: int = 0, *, download: bool = True) -> Dataset:
    """A keras.datasets set from the cache, uint8 images, the training files' rows then the test file's;
    optionally a stratified subset.

    A subset is drawn stratified from all rows together, as it always was (so a run's `subset` and `seed`
    keep naming the same rows); its rows from the test file are its official test part: about the test
    file's share of the subset, always a part of the official test file."""
    if name not in KERAS_DATASETS:
        raise DatasetError(_("unknown keras dataset {name}; choose one of {names}").format(
            name=repr(name), names=", ".join(KERAS_DATASETS)))
    folder = _cached_folder(name) if not download else fetch(name)
    if folder is None:
        raise DatasetError(_missing_message(name, None))
    try:
        x, y, names, n_train = _read_cache(name, folder)
    except (OSError, ValueError, KeyError, EOFError) as exc:
        if isinstance(exc, DatasetError):
            raise
        raise DatasetError(_("{name}: cached files in {folder} are unreadable ({error}); delete them and download "
                             "again").format(name=name, folder=folder, error=exc)) from exc
    idx = subset_indices(y, subset, seed)
    if len(idx) < len(y):
        x, y = x[idx], y[idx]
    test_start = int(np.searchsorted(idx, n_train))  # idx is sorted: the training files' rows come first
    return Dataset(name, x, y, names, "image", source=_keras_source(name, folder, subset, len(idx), test_start),
                   subset=subset, seed=seed, official_test_start=test_start)


def _keras_source(name: str, folder: Path, subset: int | None, n: int, test_start: int) -> str:
    """Where a keras dataset was read and which of its rows, in the visitor's language."""
    text = (_("keras.datasets.{name} from the Keras cache {folder} (all {n} samples: {train} from the training "
              "files, {test} from the official test file)") if subset is None else
            _("keras.datasets.{name} from the Keras cache {folder} (a stratified subset of {n} samples: {train} from "
              "the training files, {test} from the official test file)"))
    return text.format(name=name, folder=folder, n=f"{n:,}", train=f"{test_start:,}", test=f"{n - test_start:,}")


def describe_source(dataset: Dataset) -> str:
    """Where the data came from, in the visitor's language. A registry dataset's line is written anew: one
    loaded dataset serves every visitor, whatever their language (an upload's line is its uploader's)."""
    if dataset.ref is None:
        return dataset.source
    if dataset.name in BUILTIN_DATASETS:
        return _builtin_source(dataset.name, None if dataset.subset is None else dataset.n_samples)
    folder = _cached_folder(dataset.name)
    if folder is None:  # deleted since it was loaded
        return dataset.source
    return _keras_source(dataset.name, folder, dataset.subset, dataset.n_samples, int(dataset.official_test_start or 0))


def load(name: str, subset: int | None = None, seed: int = 0, *, download: bool = True) -> Dataset:
    """Any registry dataset by name: what the training worker calls to rebuild a run's dataset."""
    if subset is not None:
        whole_number(_("subset size"), subset, 1, error=DatasetError)
    if name in KERAS_DATASETS:
        return load_keras(name, subset, seed, download=download)
    if name not in BUILTIN_DATASETS:
        raise DatasetError(_("unknown dataset {name}; choose one of {names}").format(
            name=repr(name), names=", ".join(ALL_DATASETS)))
    full = load_builtin(name)
    if subset is None:
        return full
    idx = subset_indices(full.y, subset, seed)
    return Dataset(full.name, full.x[idx], full.y[idx], full.class_names, full.kind,
                   feature_names=full.feature_names,
                   source=_builtin_source(name, len(idx)), subset=subset, seed=seed)


# --- memory ---------------------------------------------------------------------------------------------

# A training process without its data: TensorFlow and Keras imported (0.62 GB) and a small model fitting.
# Measured (bench/cifar_memory.py): 1.18 GB peak on the whole of CIFAR-10, of which 2 x 176 MB are its images.
TENSORFLOW_BYTES = 840 * 2**20


@dataclass(frozen=True)
class MemoryNeed:
    """Bytes a training on a dataset needs, part by part (what the Data page shows)."""

    data: int  # the samples as stored (uint8 images: one byte per value), held by the app and the trainer
    batch: int  # one batch as float32: the inputs, every layer's outputs, and their gradients
    model: int  # weights, their gradients and the optimizer's two moments (Adam): 16 bytes per parameter

    @property
    def training_process(self) -> int:
        """The training process: TensorFlow, the data it receives, its train / validation / test copy of
        them, one batch and the model."""
        return TENSORFLOW_BYTES + 2 * self.data + self.batch + self.model


def memory_need(dataset: Dataset, *, batch_size: int, values_per_sample: int, params: int) -> MemoryNeed:
    """The memory a training of `dataset` needs: `values_per_sample` counts the model's input and every layer's
    output for one sample (core.specs.analyse_spec gives the shapes), `params` its parameters."""
    return MemoryNeed(data=int(dataset.x.nbytes + dataset.y.nbytes),
                      batch=2 * 4 * batch_size * int(values_per_sample), model=16 * int(params))
