"""core.evaluation against scikit-learn computed independently here, and the cell → sample mapping.

`write_run` is shared with the page and compare tests: it writes a run in the real on-disk format.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from core.datasets import load_builtin, split_dataset
from core.evaluation import (
    EvaluationError,
    cell_positions,
    confident_mistakes,
    evaluate_predictions,
    pr_curves,
    resolve_run_data,
    roc_curves,
    worst_cell,
)
from core.runs import RunStore


def fake_probs(y: np.ndarray, k: int, accuracy: float, seed: int) -> np.ndarray:
    """Softmax-like rows where about `accuracy` of the argmaxes equal y."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(len(y), k))
    right = rng.random(len(y)) < accuracy
    logits[np.arange(len(y))[right], y[right]] += 4.0
    e = np.exp(logits)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def write_run(store: RunStore, dataset_name: str = "digits", *, accuracy: float = 0.8, seed: int = 0,
              epochs: int = 3, status: str = "completed", training: dict | None = None,
              group: str | None = None, split: dict | None = None, label: str | None = None) -> str:
    """A finished run in the real format: config.json, metrics.jsonl, status.json, predictions.npz."""
    ds = load_builtin(dataset_name)
    sp = split_dataset(ds, seed=0)
    test_idx = sp.test_idx
    config = {
        "dataset": {"name": ds.name, "subset": None, "seed": 0, "kind": ds.kind,
                    "input_shape": list(ds.input_shape), "class_names": list(ds.class_names),
                    "n_classes": ds.n_classes, "source": ds.source, "fingerprint": "x"},
        "split": split or {"seed": 0, "val_fraction": 0.15, "test_fraction": 0.15},
        "model": {"name": "tiny", "layers": [{"type": "Dense", "params": {"units": 8}}]},
        "training": {"optimizer": "adam", "learning_rate": 1e-3, "batch_size": 32, "epochs": epochs,
                     "seed": 0, **(training or {})},
    }
    if group:
        config["group"] = group
    if label:
        config["label"] = label
    run_id = store.create_run(config)
    for e in range(1, epochs + 1):
        store.append_metrics(run_id, {"kind": "epoch", "epoch": e, "loss": 1.5 / e, "accuracy": 0.5 + 0.1 * e,
                                      "val_loss": 1.6 / e, "val_accuracy": 0.45 + 0.1 * e, "lr": 1e-3,
                                      "time": 1.5 * e})
    y_true = ds.y[test_idx]
    probs = fake_probs(y_true, ds.n_classes, accuracy, seed)
    store.save_predictions(run_id, probs=probs, y_true=y_true, test_idx=test_idx,
                           test_loss=np.float32(0.5), test_accuracy=np.float32(accuracy))
    store.write_status(run_id, status, f"{epochs} epochs")
    return run_id


def test_metrics_of_a_hand_worked_example():
    # true  0 0 0 1 1 2          confusion (rows true)   precision      recall   F1
    # pred  0 0 1 1 2 2          [[2, 1, 0],           a  2/2 = 1       2/3      2·1·(2/3)/(5/3) = 4/5
    #                             [0, 1, 1],           b  1/2           1/2      1/2
    #                             [0, 0, 1]]           c  1/2           1/1      2·(1/2)/(3/2) = 2/3
    y = np.array([0, 0, 0, 1, 1, 2])
    probs = np.array([[.8, .1, .1], [.5, .25, .25], [.25, .5, .25],
                      [.1, .8, .1], [.25, .25, .5], [.1, .1, .8]])
    ev = evaluate_predictions(probs, y, ["a", "b", "c"])
    assert ev.accuracy == pytest.approx(4 / 6)
    assert ev.loss == pytest.approx(-(3 * np.log(.8) + np.log(.5) + 2 * np.log(.25)) / 6)  # -mean log p(true)
    report = ev.report.loc[["a", "b", "c"]]
    np.testing.assert_allclose(report["precision"], [1, 1 / 2, 1 / 2])
    np.testing.assert_allclose(report["recall"], [2 / 3, 1 / 2, 1])
    np.testing.assert_allclose(ev.f1(), [4 / 5, 1 / 2, 2 / 3])
    np.testing.assert_array_equal(report["support"], [3, 2, 1])
    # macro: plain mean over classes; weighted: by support 3, 2, 1 (weighted recall is the accuracy)
    np.testing.assert_allclose(ev.report.loc["macro avg", ["precision", "recall", "f1-score"]],
                               [2 / 3, (2 / 3 + 1 / 2 + 1) / 3, (4 / 5 + 1 / 2 + 2 / 3) / 3])
    np.testing.assert_allclose(ev.report.loc["weighted avg", ["precision", "recall", "f1-score"]],
                               [(3 + 1 + 1 / 2) / 6, 4 / 6, (3 * 4 / 5 + 1 + 2 / 3) / 6])
    np.testing.assert_array_equal(ev.confusion, [[2, 1, 0], [0, 1, 1], [0, 0, 1]])
    np.testing.assert_allclose(ev.confusion_normalised, [[2 / 3, 1 / 3, 0], [0, 1 / 2, 1 / 2], [0, 0, 1]])
    assert ev.top_k == {}  # fewer than 10 classes


def test_a_class_without_test_samples_gets_a_zero_row_not_nan():
    ev = evaluate_predictions(np.array([[.9, .1, 0], [.2, .7, .1]]), np.array([0, 0]), ["a", "b", "c"])
    np.testing.assert_array_equal(ev.confusion_normalised, [[1 / 2, 1 / 2, 0], [0, 0, 0], [0, 0, 0]])


def test_top_k_of_a_hand_worked_example_with_ten_classes():
    # Every row ranks the classes 0, 1, ..., 9 (class 0 most probable). The true classes 0, 2, 3, 5 rank
    # 1st, 3rd, 4th and 6th: two of four are in the top 3, three of four in the top 5.
    scores = np.arange(10, 0, -1) / 55
    ev = evaluate_predictions(np.tile(scores, (4, 1)), np.array([0, 2, 3, 5]), [str(i) for i in range(10)])
    assert ev.top_k == {3: pytest.approx(2 / 4), 5: pytest.approx(3 / 4)}


def test_curves_equal_sklearn_multiclass_and_binary():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 120)
    probs = fake_probs(y, 3, 0.6, 4)
    roc = roc_curves(y, probs, ["a", "b", "c"])
    pr = pr_curves(y, probs, ["a", "b", "c"])
    for c, name in enumerate("abc"):
        assert roc[name]["auc"] == pytest.approx(skm.roc_auc_score(y == c, probs[:, c]))
        assert pr[name]["ap"] == pytest.approx(skm.average_precision_score(y == c, probs[:, c]))
    yb = rng.integers(0, 2, 80)
    pb = fake_probs(yb, 2, 0.7, 5)
    roc_b = roc_curves(yb, pb, ["neg", "pos"])
    assert list(roc_b) == ["pos"]  # binary: one curve, for the positive class
    assert roc_b["pos"]["auc"] == pytest.approx(skm.roc_auc_score(yb, pb[:, 1]))


def test_cell_maps_to_the_right_samples():
    y = np.array([3, 3, 1, 3, 0, 3])
    probs = np.full((6, 4), 0.1)
    probs[[0, 1, 3, 5], [1, 1, 3, 1]] = [0.6, 0.9, 0.7, 0.5]  # samples 0, 1, 5: true 3 -> predicted 1
    probs[2, 1] = probs[4, 0] = 0.7
    pos = cell_positions(y, probs, 3, 1)
    assert list(pos) == [1, 0, 5]  # most confident first
    expected = {i for i in range(6) if y[i] == 3 and probs[i].argmax() == 1}
    assert set(pos) == expected
    assert list(cell_positions(y, probs, 3, 3)) == [3]
    assert worst_cell(skm.confusion_matrix(y, probs.argmax(1), labels=range(4))) == (3, 1)
    assert list(confident_mistakes(y, probs, n=2)) == [1, 0]
    with pytest.raises(EvaluationError, match="true class must lie in 0..3, got 7"):
        cell_positions(y, probs, 7, 1)


@pytest.mark.parametrize(("probs", "y", "message"), [
    (np.ones((3, 2)) / 2, np.array([0, 1]), r"labels must have shape \(3,\)"),
    (np.ones((2, 3)) / 3, np.array([0, 1]), r"shape \(n, 2\) for 2 classes"),
    (np.array([[np.nan, 1.0], [0.5, 0.5]]), np.array([0, 1]), "NaN"),
    (np.ones((2, 2)) / 2, np.array([0, 5]), r"labels must lie in 0..1, got 0..5"),
])
def test_bad_predictions_are_refused_with_a_message(probs, y, message):
    with pytest.raises(EvaluationError, match=message):
        evaluate_predictions(probs, y, ["a", "b"])


def test_resolve_run_data_finds_builtin_and_checks_labels(tmp_path):
    store = RunStore(tmp_path / "runs")
    run_id = write_run(store, "iris")
    pred = store.read_predictions(run_id)
    data, reason = resolve_run_data(store.read_config(run_id), pred["test_idx"], pred["y_true"])
    assert reason == "" and data is not None
    np.testing.assert_array_equal(data.split.test_idx, pred["test_idx"])
    wrong = pred["y_true"].copy()
    wrong[0] = (wrong[0] + 1) % 3
    data, reason = resolve_run_data(store.read_config(run_id), pred["test_idx"], wrong)
    assert data is None and "labels" in reason
    cfg = {"dataset": {"name": "upload: mine.csv", "fingerprint": "abc"}}
    data, reason = resolve_run_data(cfg, pred["test_idx"], pred["y_true"])
    assert data is None and "not available in this session" in reason


@pytest.mark.parametrize("kind", ["official", "pooled", None])  # None: a run from before the official split
def test_resolve_run_data_rebuilds_the_split_a_keras_dataset_run_recorded(tmp_path, monkeypatch, kind):
    from core.datasets import load
    from core.jobs import TrainRequest, run_config
    from core.specs import preset
    from core.training import TrainConfig
    from tests.core.test_datasets import write_mnist

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    write_mnist(tmp_path, n_train=300, n_test=100)
    ds = load("mnist", download=False)
    config = run_config(TrainRequest(ds, preset("Small MLP", ds), TrainConfig(seed=4, split=kind or "pooled")))
    assert config["split"]["kind"] == (kind or "pooled")
    if kind is None:
        del config["split"]["kind"]
    made = split_dataset(ds, seed=4, kind=kind or "pooled")  # what the worker trained on
    data, reason = resolve_run_data(config, made.test_idx, ds.y[made.test_idx])
    assert reason == "" and data.split is not None
    np.testing.assert_array_equal(data.split.test_idx, made.test_idx)
    np.testing.assert_array_equal(data.split.val_idx, made.val_idx)
    if kind == "official":
        np.testing.assert_array_equal(made.test_idx, np.arange(300, 400))


def test_raw_rows_for_prediction_are_scaled_like_training_from_the_training_part_only():
    ds = load_builtin("wine")
    sp = split_dataset(ds, seed=3)
    raw = ds.x[sp.test_idx[:5]]
    np.testing.assert_allclose(sp.standardise(raw), sp.x_test[:5], rtol=0, atol=1e-12)
