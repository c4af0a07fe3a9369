"""Cross-validation bookkeeping: folds disjoint, covering, stratified; jobs submitted; summary = numpy."""

from __future__ import annotations

import numpy as np
import pytest

from core.crossval import CrossValidationError, check_k, fold_splits, submit_cv, summarize_cv
from core.datasets import load_builtin
from core.runs import RunStore
from tests.core.test_evaluation import write_run


@pytest.mark.parametrize("name", ["iris", "digits"])
def test_folds_are_disjoint_cover_everything_and_are_stratified(name):
    ds = load_builtin(name)
    k = 5
    folds = fold_splits(ds, k, seed=1)
    tests = [f.test_idx for f in folds]
    assert sorted(np.concatenate(tests).tolist()) == list(range(ds.n_samples))  # each sample tested once
    overall = np.bincount(ds.y, minlength=ds.n_classes) / ds.n_samples
    for f in folds:
        parts = [set(f.train_idx), set(f.val_idx), set(f.test_idx)]
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
        assert sum(map(len, parts)) == ds.n_samples
        share = np.bincount(ds.y[f.test_idx], minlength=ds.n_classes) / len(f.test_idx)
        assert np.abs(share - overall).max() < 0.05  # stratified: class shares as in the whole set
        np.testing.assert_array_equal(f.y_test, ds.y[f.test_idx])


def test_tabular_scaling_uses_the_training_part_only():
    ds = load_builtin("wine")
    f = fold_splits(ds, 3, seed=0)[1]
    train = ds.x[f.train_idx].astype(np.float64)
    mean, std = train.mean(0), train.std(0)
    np.testing.assert_allclose(f.x_test, (ds.x[f.test_idx] - mean) / std, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(f.x_train.mean(0), 0, atol=1e-4)


def test_k_is_validated_with_a_message():
    ds = load_builtin("iris")  # 50 per class
    for bad, message in ((1, "between 2 and 10, got 1"), (11, "between 2 and 10, got 11"),
                         (2.5, "whole number")):
        with pytest.raises(CrossValidationError, match=message):
            check_k(ds, bad)
    with pytest.raises(CrossValidationError, match="validation fraction must be greater than 0 and less than 0.5, "
                                                   "got 0.5"):
        fold_splits(ds, 3, val_fraction=0.5)
    from core.datasets import Dataset

    tiny = Dataset("tiny", np.zeros((9, 2), np.float32), np.array([0] * 6 + [1] * 3), ("a", "b"), "tabular")
    with pytest.raises(CrossValidationError, match="class b has 3 samples, got k = 4"):
        check_k(tiny, 4)
    assert check_k(tiny, 3) == 3


class _FakeManager:
    def __init__(self):
        self.requests = []

    def submit_many(self, requests, idempotency_key=None):
        self.requests.extend(requests)
        return [f"run-{n}" for n in range(1, len(self.requests) + 1)]


def test_submit_cv_queues_one_job_per_fold():
    ds = load_builtin("iris")
    manager = _FakeManager()

    class Config:
        seed = 7

    group, run_ids = submit_cv(manager, ds, spec="spec", config=Config(), k=4)
    assert run_ids == ["run-1", "run-2", "run-3", "run-4"]
    assert group.startswith("cv-iris-4fold-")
    infos = [r.split_info for r in manager.requests]
    assert [i["fold"] for i in infos] == [0, 1, 2, 3]
    assert all(i["kind"] == "cv" and i["k"] == 4 and i["seed"] == 7 for i in infos)
    assert all(r.group == group for r in manager.requests)
    expected = fold_splits(ds, 4, seed=7)
    for req, split in zip(manager.requests, expected, strict=True):
        np.testing.assert_array_equal(req.split.test_idx, split.test_idx)


def test_cross_validation_queues_every_fold_or_none_and_says_why(tmp_path):
    from core.jobs import QueueFullError
    from core.specs import preset
    from core.training import TrainConfig
    from tests.core.test_jobs import HeldManager

    ds = load_builtin("iris")
    spec, config = preset("Small MLP", ds), TrainConfig(epochs=1)
    manager = HeldManager(RunStore(tmp_path / "runs"), max_concurrent=1, max_queue=3)  # 4 at once
    try:
        with pytest.raises(QueueFullError, match=r"no fold was queued: 5 folds do not fit in the job queue; at "
                                                 r"most 4 runs may be queued or running at once, so choose k <= 4"):
            submit_cv(manager, ds, spec, config, k=5)
        assert manager.store.list_runs() == []
        group, run_ids = submit_cv(manager, ds, spec, config, k=2)
        assert len(run_ids) == 2 and {i.config["group"] for i in manager.store.list_runs()} == {group}
        with pytest.raises(QueueFullError, match="no fold was queued: 3 folds do not fit in the job queue; the "
                                                 "queue has room for 2 runs now: wait for queued runs to finish "
                                                 "or choose k <= 2"):
            submit_cv(manager, ds, spec, config, k=3)
        assert sorted(i.run_id for i in manager.store.list_runs()) == sorted(run_ids)  # none of the 3 added
        again = submit_cv(manager, ds, spec, config, k=2, idempotency_key="click")
        assert submit_cv(manager, ds, spec, config, k=2, idempotency_key="click") == again  # double click
        with pytest.raises(QueueFullError, match="the queue is full: wait for queued runs to finish"):
            submit_cv(manager, ds, spec, config, k=2)
    finally:
        manager.gate.set()
        manager.shutdown(timeout=60)


def test_summary_mean_and_std_equal_numpy(tmp_path):
    store = RunStore(tmp_path / "runs")
    group = "cv-iris-3fold-abc123"
    ids = [write_run(store, "iris", accuracy=a, seed=i, group=group,
                     split={"kind": "cv", "k": 3, "fold": i, "seed": 0})
           for i, a in enumerate((0.6, 0.8, 0.95))]
    write_run(store, "iris", accuracy=0.1, group=group, status="failed",
              split={"kind": "cv", "k": 3, "fold": 2, "seed": 0})  # unfinished folds are left out
    write_run(store, "iris", accuracy=0.1)  # another run, not in the group
    per_fold, summary = summarize_cv(store, group)
    assert list(per_fold["run_id"]) == ids
    accs = []
    for run_id in ids:
        pred = store.read_predictions(run_id)
        accs.append(np.mean(pred["probs"].argmax(1) == pred["y_true"]))
    row = summary.set_index("metric").loc["test_accuracy"]
    assert row["mean"] == pytest.approx(np.mean(accs))
    assert row["std"] == pytest.approx(np.std(accs))
    assert row["folds"] == 3
    assert row["mean ± std"] == f"{np.mean(accs):.4f} ± {np.std(accs):.4f}"


@pytest.mark.slow
def test_cross_validation_through_the_real_job_engine(tmp_path):
    """k folds train one after another in the job engine; each tests on its own fold; the summary agrees."""
    import time

    from core.jobs import JobManager
    from core.specs import preset
    from core.training import TrainConfig

    ds = load_builtin("iris")
    store = RunStore(tmp_path / "runs")
    manager = JobManager(store)
    try:
        group, run_ids = submit_cv(manager, ds, preset("Small MLP", ds), TrainConfig(epochs=2, batch_size=16), k=3)
        end = time.monotonic() + 300
        while time.monotonic() < end and any(manager.snapshot(r).active for r in run_ids):
            time.sleep(0.1)
        assert [store.read_status(r)["state"] for r in run_ids] == ["completed"] * 3
    finally:
        manager.shutdown()
    folds = fold_splits(ds, 3, seed=0)
    accs = []
    for run_id, split in zip(run_ids, folds, strict=True):
        pred = store.read_predictions(run_id)
        np.testing.assert_array_equal(pred["test_idx"], split.test_idx)  # each run tested on its own fold
        accs.append(np.mean(pred["probs"].argmax(1) == pred["y_true"]))
    tested = np.concatenate([store.read_predictions(r)["test_idx"] for r in run_ids])
    assert sorted(tested) == list(range(ds.n_samples))  # together the folds test every sample once
    row = summarize_cv(store, group)[1].set_index("metric").loc["test_accuracy"]
    assert row["folds"] == 3
    assert row["mean"] == pytest.approx(np.mean(accs)) and row["std"] == pytest.approx(np.std(accs))
