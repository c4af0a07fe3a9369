"""Dataset statistics and projections, each checked against an independent computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core import explore
from core.charts import data as charts
from core.datasets import Dataset, DatasetError, load, split_dataset


@pytest.fixture(scope="module")
def digits():
    return load("digits")


@pytest.fixture(scope="module")
def wine():
    return load("wine")


def test_class_counts_match_bincount_per_split(wine):
    split = split_dataset(wine, seed=0)
    counts = explore.class_counts(wine, split)
    for part, y in (("train", split.y_train), ("validation", split.y_val), ("test", split.y_test)):
        got = counts[counts["part"] == part].set_index("class")["count"]
        assert got.tolist() == np.bincount(y, minlength=3).tolist()
    whole = explore.class_counts(wine)
    assert whole["count"].sum() == wine.n_samples and set(whole["part"]) == {"all"}


def test_class_sample_indices_are_of_the_class_and_reshuffle_with_the_seed(digits):
    a = explore.class_sample_indices(digits.y, 3, 24, seed=0)
    assert len(a) == 24 and np.all(digits.y[a] == 3) and len(set(a)) == 24
    np.testing.assert_array_equal(a, explore.class_sample_indices(digits.y, 3, 24, seed=0))
    assert not np.array_equal(a, explore.class_sample_indices(digits.y, 3, 24, seed=1))
    with pytest.raises(DatasetError, match="class index 42 has no samples"):
        explore.class_sample_indices(digits.y, 42)


def test_mean_images_equal_per_class_means(digits):
    means = explore.mean_images(digits.x, digits.y, 10)
    for k in (0, 7):
        np.testing.assert_allclose(means[k], digits.x[digits.y == k].mean(axis=0), rtol=1e-5, atol=1e-6)


def test_mosaic_places_tiles_row_by_row():
    imgs = np.arange(5, dtype=np.float32).reshape(5, 1, 1, 1) * np.ones((5, 2, 3, 1), np.float32)
    pic = explore.mosaic(imgs, cols=3, pad=1, fill=-1)
    assert pic.shape == (2 * 3 - 1, 3 * 4 - 1, 1)
    assert pic[0, 0, 0] == 0 and pic[0, 4, 0] == 1 and pic[3, 4, 0] == 4 and pic[2, 0, 0] == -1
    assert pic[3, 8, 0] == -1  # the sixth tile does not exist


def test_pixel_histogram_matches_numpy(digits):
    hist = explore.pixel_histogram(digits.x, bins=16)
    expected, _ = np.histogram(digits.x.ravel(), bins=16, range=(0, 1))
    assert hist["count"].tolist() == expected.tolist() and hist["count"].sum() == digits.x.size
    rgb = explore.pixel_histogram(np.random.default_rng(0).random((3, 4, 4, 3), dtype=np.float32), bins=4)
    assert list(dict.fromkeys(rgb["channel"])) == ["red", "green", "blue"]


def test_describe_and_correlation_agree_with_numpy(wine):
    desc = explore.describe(wine)
    np.testing.assert_allclose(desc["mean"], wine.x.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(desc["std"], wine.x.std(axis=0, ddof=1), rtol=1e-4)
    corr = explore.correlation(wine)
    np.testing.assert_allclose(corr.to_numpy(), np.corrcoef(wine.x.astype(np.float64).T), atol=1e-6)
    table = explore.preview_table(wine, n=5)
    assert table.columns[0] == "class" and len(table) == 5
    with pytest.raises(DatasetError, match="tabular"):
        explore.describe(load("digits"))


def test_pca_projection_matches_sklearn_on_standardised_features(wine):
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    proj = explore.project_2d(wine, "pca")
    ref = PCA(n_components=2).fit_transform(StandardScaler().fit_transform(wine.x.astype(np.float64)))
    # PCA components are defined up to sign
    for d in range(2):
        assert min(np.abs(proj.coords[:, d] - ref[:, d]).max(), np.abs(proj.coords[:, d] + ref[:, d]).max()) < 1e-6
    assert "explain" in proj.note and len(proj.idx) == wine.n_samples


def test_projection_subsamples_stratified_and_reports_progress():
    rng = np.random.default_rng(0)
    ds = Dataset("blobs", np.concatenate([rng.normal(0, 1, (1500, 60)), rng.normal(8, 1, (1500, 60))]).astype(np.float32),
                 np.repeat([0, 1], 1500), ("a", "b"), "tabular", feature_names=tuple(f"f{i}" for i in range(60)))
    seen = []
    proj = explore.project_2d(ds, "tsne", max_points=200, progress=lambda f, t: seen.append((f, t)))
    assert proj.coords.shape == (200, 2) and np.bincount(ds.y[proj.idx]).tolist() == [100, 100]
    assert "200 of 3,000" in proj.note
    assert [f for f, _ in seen] == sorted(f for f, _ in seen) and seen[-1][0] == 1.0
    assert any("PCA" in t for _, t in seen)  # 60 dimensions are reduced before t-SNE
    # the real iterations, read from scikit-learn's own log, not one fixed "25 %" for the whole run
    iterations = [(f, t) for f, t in seen if "iteration" in t]
    assert len(iterations) >= 5 and "iteration 50 of 500" in iterations[0][1]
    assert 0.15 < iterations[0][0] < iterations[-1][0] < 1.0
    # two far-apart blobs stay apart: every point is nearer its own class centre
    c = np.array([proj.coords[ds.y[proj.idx] == k].mean(axis=0) for k in (0, 1)])
    nearest = np.argmin(((proj.coords[:, None, :] - c[None]) ** 2).sum(-1), axis=1)
    assert np.mean(nearest == ds.y[proj.idx]) > 0.99


def test_tsne_caps_at_2000_points_by_default(digits):
    assert explore.TSNE_MAX_POINTS == 2000
    with pytest.raises(DatasetError, match="'umap'"):
        explore.project_2d(digits, "umap")  # type: ignore[arg-type]


def test_figures_carry_the_data(digits, wine):
    counts = explore.class_counts(digits)
    fig = charts.class_balance_figure(counts)
    assert sum(sum(t.y) for t in fig.data) == digits.n_samples
    proj = explore.project_2d(wine, "pca")
    labels = [wine.class_names[k] for k in wine.y[proj.idx]]
    fig = charts.projection_figure(proj.coords, labels, list(wine.class_names), "PCA")
    assert sorted(t.name for t in fig.data) == sorted(wine.class_names)
    assert sum(len(t.x) for t in fig.data) == wine.n_samples
    corr = charts.correlation_figure(pd.DataFrame(np.eye(3), columns=list("abc"), index=list("abc")))
    assert corr.layout.coloraxis.cmin == -1 and corr.layout.coloraxis.cmax == 1
    pic = explore.mosaic(explore.mean_images(digits.x, digits.y, 10), 5)
    fig = charts.image_mosaic_figure(pic, tile=(8, 8), cols=5, titles=list(digits.class_names))
    assert [a.text for a in fig.layout.annotations] == list(digits.class_names)
    hist = charts.pixel_histogram_figure(explore.pixel_histogram(digits.x))
    assert sum(sum(t.y) for t in hist.data) == digits.x.size


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_projection_of_a_single_feature_shows_the_feature_instead_of_failing(method):
    x = np.linspace(-3, 3, 40, dtype=np.float32)[:, None]
    ds = Dataset("one.csv", x, np.arange(40) % 2, ("a", "b"), "tabular", feature_names=("f",))
    proj = explore.project_2d(ds, method)
    assert proj.coords.shape == (40, 2) and not proj.coords[:, 1].any()
    standardised = (x[proj.idx, 0] - x.mean()) / x.std()
    np.testing.assert_allclose(proj.coords[:, 0], standardised, rtol=1e-5, atol=1e-6)
    assert "single feature" in proj.note


def test_projection_of_fewer_than_three_samples_is_a_dataset_error():
    ds = Dataset("tiny.csv", np.array([[1.0, 2.0], [3.0, 1.0]], np.float32), np.array([0, 1]), ("x", "y"),
                 "tabular", feature_names=("a", "b"))
    with pytest.raises(DatasetError, match="at least 3 samples"):
        explore.project_2d(ds, "pca")


def test_tsne_log_lines_become_progress_and_other_threads_still_print(capsys):
    """The t-SNE log is captured for the computing thread only; what other threads print reaches stdout."""
    import sys
    import threading

    seen: list[tuple[float, str]] = []
    log = explore._TsneLog(lambda f, t: seen.append((f, t)), 1797, 500)
    real = sys.stdout
    with explore._stdout_of_this_thread(log):
        assert sys.stdout is not real
        print("[t-SNE] Computed conditional probabilities for sample 1000 / 1797")
        print("[t-SNE] Iteration 250: error = 61.3, gradient norm = 0.001 (50 iterations in 1.4s)")
        sys.stdout.write("[t-SNE] Iteration 500: error = 0.8")  # a line in two writes
        other = threading.Thread(target=lambda: print("from another thread"))
        other.start()
        other.join()
        print(", gradient norm = 0.01")
    assert sys.stdout is real
    assert capsys.readouterr().out == "from another thread\n"
    assert [round(f, 3) for f, _ in seen] == [0.128, 0.575, 0.999]
    assert seen[1][1] == "t-SNE on 1,797 points: iteration 250 of 500"


def test_task_runs_in_the_background_and_reports_progress():
    gate = __import__("threading").Event()

    def compute(progress):
        progress(0.5, "half way")
        gate.wait(5)
        progress(0.2, "a stage that reports less must not move the bar back")
        return 42

    task = explore.Task(compute)
    assert not task.wait(0.05) and not task.done()
    assert task.fraction == 0.5 and task.text == "half way" and task.elapsed > 0
    gate.set()
    assert task.result(5) == 42 and task.done() and not task.failed()
    assert task.fraction == 0.5  # never backwards
    elapsed = task.elapsed
    assert task.elapsed == elapsed  # frozen once finished


def test_task_cache_computes_each_key_once_and_retries_only_crashes():
    cache = explore.TaskCache(max_entries=2)
    calls: list[str] = []

    def make(value, error=None):
        def compute(progress):
            calls.append(value)
            if error:
                raise error
            return value
        return compute

    a = cache.get("a", make("a"))
    assert cache.get("a", make("other")) is a and a.result(5) == "a" and calls == ["a"]
    assert cache.get("a", make("other")).result(5) == "a" and calls == ["a"]  # finished: kept

    bad = cache.get("bad", make("bad", DatasetError("too few samples")))
    with pytest.raises(DatasetError, match="too few"):
        bad.result(5)
    assert cache.get("bad", make("x")) is bad  # a DatasetError is the answer for that data: remembered

    crash = cache.get("crash", make("crash", MemoryError()))
    with pytest.raises(MemoryError):
        crash.result(5)
    retry = cache.get("crash", make("fixed"))
    assert retry is not crash and retry.result(5) == "fixed"  # a crash is forgotten: asking again retries
    assert len(cache) <= 2 and "crash" in cache._tasks  # least recently used finished tasks were dropped


def test_task_cache_never_drops_a_running_task():
    import threading

    gate = threading.Event()
    cache = explore.TaskCache(max_entries=1)
    slow = cache.get("slow", lambda progress: gate.wait(5))
    for k in range(3):
        cache.get(k, lambda progress, k=k: k).result(5)
    assert cache.get("slow", lambda progress: "again") is slow
    gate.set()
    assert slow.result(5) is True
