"""The dataset registry: built-ins, keras.datasets read from fixtures in the real Keras cache formats (uint8
images, official train / test parts), official and pooled splits, stratified subsets, the restricted CIFAR
unpickler, the message when a dataset is missing, and the memory a training needs."""

from __future__ import annotations

import gzip
import json
import os
import pickle
import struct

import numpy as np
import pytest

from core import datasets as D
from core.datasets import DatasetError, DatasetRef, load

RNG = np.random.default_rng(7)


# --- fixture writers in the formats Keras leaves in ~/.keras/datasets ----------------------------------

def write_mnist(home, n_train=40, n_test=20):
    folder = home / "datasets"
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"x_train": RNG.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              "y_train": np.arange(n_train, dtype=np.uint8) % 10,
              "x_test": RNG.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              "y_test": np.arange(n_test, dtype=np.uint8) % 10}
    np.savez(folder / "mnist.npz", **arrays)
    return arrays


def _idx(path, array):
    """IDX format: magic (0, 0, dtype 0x08, ndim), big-endian dims, then raw uint8 bytes; gzipped."""
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


def write_fashion(home, n_train=30, n_test=10):
    folder = home / "datasets" / "fashion-mnist"
    folder.mkdir(parents=True, exist_ok=True)
    parts = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        x = RNG.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = (np.arange(n) % 10).astype(np.uint8)
        _idx(folder / f"{prefix}-images-idx3-ubyte.gz", x)
        _idx(folder / f"{prefix}-labels-idx1-ubyte.gz", y)
        parts[prefix] = (x, y)
    return parts


def _cifar_batch(n, label_key, n_classes):
    data = RNG.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = [int(i % n_classes) for i in range(n)]
    return {b"batch_label": b"fixture", label_key: labels, b"data": data,
            b"filenames": [f"img_{i}.png".encode() for i in range(n)]}


class _Py2Pickler(pickle._Pickler):
    """Writes bytes the way Python 2 wrote str (BINSTRING), as in the real CIFAR files, not via _codecs."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_py2_str(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str


def _py2_dumps(obj):
    import io

    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def write_cifar10(home, per_batch=10, keras2_layout=False):
    sub = "cifar-10-batches-py" if keras2_layout else "cifar-10-batches-py-target/cifar-10-batches-py"
    folder = home / "datasets" / sub
    folder.mkdir(parents=True, exist_ok=True)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batches[name] = _cifar_batch(per_batch, b"labels", 10)
        (folder / name).write_bytes(_py2_dumps(batches[name]) if keras2_layout else pickle.dumps(batches[name], protocol=4))
    names = [n.encode() for n in ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                                  "ship", "truck")]
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": names, b"num_vis": 3072}, protocol=4))
    return folder, batches


def write_cifar100(home, n_train=200, n_test=100):
    folder = home / "datasets" / "cifar-100-python-target" / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    parts = {}
    for name, n in (("train", n_train), ("test", n_test)):
        batch = _cifar_batch(n, b"fine_labels", 100)
        batch[b"coarse_labels"] = [i % 20 for i in range(n)]
        (folder / name).write_bytes(pickle.dumps(batch, protocol=4))
        parts[name] = batch
    meta = {b"fine_label_names": [f"fine{i}".encode() for i in range(100)],
            b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)]}
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=4))
    return parts


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    home = tmp_path / "keras-home"
    home.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home


# --- built-ins and the ref ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, shape, n_classes", [("digits", (8, 8, 1), 10), ("iris", (4,), 3),
                                                     ("wine", (13,), 3), ("breast_cancer", (30,), 2)])
def test_builtins_load_through_load(name, shape, n_classes):
    ds = load(name)
    assert ds.input_shape == shape and ds.n_classes == n_classes
    assert ds.x.dtype == np.float32 and ds.y.dtype == np.int64
    assert ds.ref == DatasetRef(name, None, 0)


def test_digits_pixels_are_scaled_to_unit_range():
    from sklearn.datasets import load_digits

    ds = load("digits")
    np.testing.assert_allclose(ds.x[..., 0] * 16, load_digits().images, atol=1e-5)


def test_subset_is_stratified_seeded_and_recorded():
    full = load("digits")
    a, b, c = load("digits", subset=500, seed=3), load("digits", subset=500, seed=3), load("digits", subset=500, seed=4)
    assert a.n_samples == 500
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x, c.x)
    expected = np.bincount(full.y) / full.n_samples * 500
    assert np.all(np.abs(np.bincount(a.y) - expected) <= 1)
    ref = a.ref.to_dict()
    assert json.loads(json.dumps(ref)) == {"name": "digits", "subset": 500, "seed": 3}
    again = load(**DatasetRef.from_dict(ref).to_dict())
    np.testing.assert_array_equal(again.x, a.x)


def test_subset_larger_than_dataset_keeps_everything():
    assert load("iris", subset=10_000).n_samples == 150


@pytest.mark.parametrize("subset, message", [(0, "got 0"), (-5, "got -5"), (2.5, "got 2.5"), (2, "at least the number of classes")])
def test_bad_subset_is_refused_with_what_was_given(subset, message):
    with pytest.raises(DatasetError, match=message):
        load("iris", subset=subset)


def test_unknown_name_lists_the_choices():
    with pytest.raises(DatasetError, match="unknown dataset 'nope'.*mnist"):
        load("nope")


def test_uploads_have_no_ref():
    ds = D.Dataset("upload: a.csv", np.zeros((4, 2), np.float32), np.array([0, 1, 0, 1]), ("a", "b"), "tabular")
    assert ds.ref is None


def test_split_keeps_classes_and_standardises_with_train_statistics():
    ds = load("wine")
    split = D.split_dataset(ds, seed=1)
    assert sum(split.sizes().values()) == ds.n_samples
    assert set(np.unique(split.y_test)) == {0, 1, 2}
    np.testing.assert_allclose(split.x_train.mean(axis=0), 0, atol=1e-4)
    raw_train = ds.x[split.train_idx]
    expected_test = (ds.x[split.test_idx] - raw_train.mean(0)) / raw_train.std(0)
    np.testing.assert_allclose(split.x_test, expected_test, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer"])
def test_standardisation_statistics_are_the_training_rows_mean_and_std(name):
    """A constant column (zero variance) keeps scale 1 and becomes 0, instead of a division by ~0."""
    ds = load(name)
    x = np.c_[ds.x, np.full(ds.n_samples, 7.3, np.float32), np.zeros(ds.n_samples, np.float32)]
    wide = D.Dataset(name, x, ds.y, ds.class_names, "tabular")
    split = D.split_dataset(wide, seed=2)
    train = x[split.train_idx].astype(np.float64)
    np.testing.assert_allclose(split.mean, train.mean(0), rtol=1e-6)
    np.testing.assert_allclose(split.std[:-2], train.std(0)[:-2], rtol=1e-6)
    np.testing.assert_array_equal(split.std[-2:], [1.0, 1.0])
    np.testing.assert_array_equal(split.x_test[:, -2:], 0.0)
    np.testing.assert_allclose(split.x_test[:, :-2], (x[split.test_idx, :-2] - train.mean(0)[:-2]) / train.std(0)[:-2],
                               rtol=1e-5, atol=1e-5)


# --- keras datasets from the cache ---------------------------------------------------------------------

def test_mnist_from_cache(keras_home):
    arrays = write_mnist(keras_home)
    assert D.is_cached("mnist")
    ds = load("mnist", download=False)
    assert ds.x.shape == (60, 28, 28, 1) and ds.x.dtype == np.uint8  # pixels as stored: a quarter of float32
    np.testing.assert_array_equal(ds.x[:40, ..., 0], arrays["x_train"])
    np.testing.assert_array_equal(ds.x[40:, ..., 0], arrays["x_test"])
    np.testing.assert_array_equal(ds.y, np.concatenate([arrays["y_train"], arrays["y_test"]]))
    assert ds.official_test_start == 40 and ds.has_official_split
    assert ds.class_names == tuple(str(i) for i in range(10))
    assert str(keras_home) in ds.source


def test_fashion_mnist_from_gz_idx_files(keras_home):
    parts = write_fashion(keras_home)
    ds = load("fashion_mnist", download=False)
    assert ds.x.shape == (40, 28, 28, 1) and ds.official_test_start == 30
    np.testing.assert_array_equal(ds.x[:30, ..., 0], parts["train"][0])
    np.testing.assert_array_equal(ds.y[30:], parts["t10k"][1])
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"


@pytest.mark.parametrize("keras2_layout", [False, True])
def test_cifar10_from_python_batches(keras_home, keras2_layout):
    _, batches = write_cifar10(keras_home, keras2_layout=keras2_layout)
    ds = load("cifar10", download=False)
    assert ds.x.shape == (60, 32, 32, 3) and ds.x.dtype == np.uint8 and ds.y.dtype == np.int64
    first = batches["data_batch_1"][b"data"][0]
    # CIFAR rows are 1024 red, then 1024 green, then 1024 blue values, each row-major 32x32
    np.testing.assert_array_equal(ds.x[0, :, :, 1], first[1024:2048].reshape(32, 32))
    assert ds.x[0, 0, 1, 2] == first[2048 + 1]
    np.testing.assert_array_equal(ds.y[50:], batches["test_batch"][b"labels"])
    assert ds.official_test_start == 50
    assert ds.class_names[:2] == ("airplane", "automobile") and len(ds.class_names) == 10


def test_cifar100_fine_labels_and_names(keras_home):
    parts = write_cifar100(keras_home)
    ds = load("cifar100", subset=150, seed=0, download=False)
    assert ds.n_classes == 100 and ds.class_names[5] == "fine5"
    assert ds.n_samples == 150 and ds.input_shape == (32, 32, 3)
    assert set(ds.y) <= set(parts["train"][b"fine_labels"])


def test_keras_subset_is_stratified(keras_home):
    write_mnist(keras_home, n_train=400, n_test=100)
    ds = load("mnist", subset=100, seed=1, download=False)
    assert ds.n_samples == 100 and np.all(np.bincount(ds.y) == 10)
    assert ds.ref == DatasetRef("mnist", 100, 1)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_cifar_pickle_with_a_foreign_global_is_refused(keras_home, monkeypatch):
    folder, _ = write_cifar10(keras_home)
    (folder / "data_batch_3").write_bytes(_py2_dumps({b"data": _Evil(), b"labels": []}))
    called = []
    monkeypatch.setattr(os, "system", lambda *a: called.append(a))
    with pytest.raises(DatasetError, match="data_batch_3.*(posix|os).system"):
        load("cifar10", download=False)
    assert not called


def test_cifar_batch_with_wrong_shape_is_refused(keras_home):
    folder, _ = write_cifar10(keras_home)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((3, 10), np.uint8), b"labels": [0] * 3}))
    with pytest.raises(DatasetError, match=r"test_batch.*\(n, 3072\)"):
        load("cifar10", download=False)


def test_missing_dataset_says_what_to_download_and_where(keras_home):
    with pytest.raises(DatasetError) as info:
        load("cifar10", download=False)
    msg = str(info.value)
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in msg
    assert str(keras_home / "datasets" / "cifar-10-batches-py-target" / "cifar-10-batches-py") in msg
    assert "data_batch_1" in msg and "batches.meta" in msg


def test_failed_download_becomes_a_plain_message(keras_home, monkeypatch):
    def offline(name):
        raise OSError(f"URL fetch failure for {name}: no network")

    monkeypatch.setattr(D, "_download", offline)
    with pytest.raises(DatasetError, match=r"download failed \(OSError: URL fetch failure for mnist.*"
                                           r"mnist\.npz.*put mnist\.npz in"):
        load("mnist")
    assert not D.is_cached("mnist")


def test_partial_cache_is_not_cached(keras_home):
    folder, _ = write_cifar10(keras_home)
    (folder / "data_batch_5").unlink()
    assert not D.is_cached("cifar10")
    with pytest.raises(DatasetError, match="data_batch_5"):
        load("cifar10", download=False)


def test_keras_home_default_is_dot_keras(monkeypatch, tmp_path):
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert D.keras_cache_dir() == tmp_path / ".keras" / "datasets"


def test_split_of_too_few_samples_says_so_in_plain_words():
    tiny = D.Dataset("tiny.csv", np.array([[1.0], [2.0]], np.float32), np.array([0, 1]), ("x", "y"), "tabular")
    with pytest.raises(D.DatasetError) as info:
        D.split_dataset(tiny)
    message = str(info.value)
    assert "2 samples are too few to split" in message and "70 / 15 / 15" in message
    assert "n_samples" not in message and "train_size" not in message  # no scikit-learn internals


def test_an_uploaded_table_is_prepared_per_split_from_its_training_rows():
    from core import tabular
    from core.uploads import read_csv

    rows = "".join(f"{'NA' if i % 9 == 0 else i % 13},{'red' if i % 3 else 'blue'},{i % 2}\n" for i in range(90))
    ds = read_csv(f"size,colour,label\n{rows}".encode(), "t.csv", "label")
    assert ds.table is not None and ds.input_shape == (3,)
    first, second = D.split_dataset(ds, seed=0), D.split_dataset(ds, seed=1)
    for split in (first, second):
        assert split.preparation == tabular.fit_preparation(ds.table, split.train_idx)
        np.testing.assert_allclose(split.x_train.mean(axis=0), 0, atol=1e-5)  # standardised on training rows
        assert split.mean is None
        with pytest.raises(DatasetError, match="prepare_rows"):
            split.standardise(np.zeros((1, 3)))  # raw rows of a table are text: they go through the preparation
    assert first.preparation["columns"][0]["fill"] != second.preparation["columns"][0]["fill"] or \
        first.preparation["mean"] != second.preparation["mean"]


def test_a_numeric_table_split_carries_its_preparation_as_plain_data():
    ds = load("wine")
    split = D.split_dataset(ds, seed=1)
    prep = split.preparation
    assert prep["features"] == list(ds.feature_names) and prep["classes"] == list(ds.class_names)
    np.testing.assert_allclose(prep["mean"], split.mean, rtol=1e-6)
    np.testing.assert_allclose(prep["scale"], 1 / split.std, rtol=1e-6)
    assert D.split_dataset(load("digits")).preparation is None  # images are not prepared


# --- official and pooled splits ------------------------------------------------------------------------

def test_the_official_split_tests_on_the_test_file_and_carves_validation_from_the_training_files(keras_home):
    write_mnist(keras_home, n_train=400, n_test=100)
    ds = load("mnist", download=False)
    split = D.split_dataset(ds, seed=3)
    np.testing.assert_array_equal(split.test_idx, np.arange(400, 500))  # exactly the official test file
    np.testing.assert_array_equal(np.sort(np.r_[split.train_idx, split.val_idx]), np.arange(400))
    assert len(split.val_idx) == 60  # 15 % of the training files, not of every row
    assert np.all(np.bincount(ds.y[split.val_idx], minlength=10) == 6)  # stratified
    assert split.x_train.dtype == np.uint8  # images stay uint8 in the parts too
    again, other = D.split_dataset(ds, seed=3), D.split_dataset(ds, seed=4)
    np.testing.assert_array_equal(again.val_idx, split.val_idx)
    assert not np.array_equal(np.sort(other.val_idx), np.sort(split.val_idx))


def test_the_pooled_split_re_splits_every_row_as_before(keras_home):
    write_mnist(keras_home, n_train=400, n_test=100)
    ds = load("mnist", download=False)
    pooled = D.split_dataset(ds, seed=1, kind="pooled")
    assert pooled.sizes() == {"train": 350, "validation": 75, "test": 75}
    assert pooled.test_idx.min() < 400  # test rows drawn from the training files too
    # what a run recorded before the official split existed: every row pooled, no kind named
    no_kind = D.Dataset(ds.name, ds.x, ds.y, ds.class_names, "image")
    np.testing.assert_array_equal(D.split_dataset(no_kind, seed=1).test_idx, pooled.test_idx)
    assert D.split_used(ds, "pooled") == "pooled" and D.split_used(ds) == "official"


def test_data_without_an_official_split_is_always_pooled():
    digits = load("digits")
    assert digits.official_test_start is None and D.split_used(digits, "official") == "pooled"
    np.testing.assert_array_equal(D.split_dataset(digits, seed=2).test_idx,
                                  D.split_dataset(digits, seed=2, kind="pooled").test_idx)
    assert "70% / 15% / 15%" in D.describe_split(digits)
    with pytest.raises(DatasetError, match="split must be one of official, pooled, got 'random'"):
        D.split_dataset(digits, kind="random")


def test_a_subset_keeps_the_rows_it_always_had_and_tests_only_on_the_test_file(keras_home):
    write_mnist(keras_home, n_train=400, n_test=100)
    full = load("mnist", download=False)
    ds = load("mnist", subset=100, seed=1, download=False)
    rows = D.subset_indices(full.y, 100, 1)  # the pooled stratified draw runs have always recorded
    np.testing.assert_array_equal(ds.x, full.x[rows])
    assert ds.official_test_start == np.sum(rows < 400)
    split = D.split_dataset(ds, seed=0)
    assert np.all(rows[split.test_idx] >= 400) and np.all(rows[split.train_idx] < 400)
    assert 5 <= len(split.test_idx) <= 40  # about the test file's share (1/5) of the subset
    assert f"{len(split.test_idx):,} from the official test file" in ds.source
    assert D.describe_split(ds).startswith(f"the official test file ({len(split.test_idx)} samples)")


def test_a_subset_without_test_file_rows_is_pooled():
    x, y = np.zeros((30, 2, 2, 1), np.uint8), np.arange(30) % 3
    assert not D.Dataset("mnist", x, y, ("a", "b", "c"), "image", official_test_start=30).has_official_split
    with pytest.raises(DatasetError, match="official test part must start within its 30 rows, got 31"):
        D.Dataset("mnist", x, y, ("a", "b", "c"), "image", official_test_start=31)


def test_model_input_scales_uint8_pixels_as_loading_did_and_leaves_floats_alone():
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    scaled = D.model_input(pixels)
    assert scaled.dtype == np.float32 and scaled.min() == 0.0 and scaled.max() == 1.0
    np.testing.assert_array_equal(scaled, pixels.astype(np.float32) / np.float32(255))  # the old load's bits
    floats = load("digits").x
    assert D.model_input(floats) is floats


def test_memory_need_counts_the_stored_bytes_a_batch_and_the_model(keras_home):
    write_cifar10(keras_home, per_batch=20)
    ds = load("cifar10", download=False)
    need = D.memory_need(ds, batch_size=32, values_per_sample=1000, params=122_570)
    assert need.data == 120 * 3072 + 120 * 8  # one byte per pixel value, int64 labels
    assert need.batch == 32 * 1000 * 4 * 2  # float32 values and their gradients
    assert need.model == 122_570 * 16  # weights, gradients, Adam's two moments
    assert need.training_process == D.TENSORFLOW_BYTES + 2 * need.data + need.batch + need.model
