"""Run comparison: the runs table, differing settings, and the two-run differences worked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from core.compare import (
    comparable,
    confusion_change,
    describe_change,
    differing_settings,
    f1_change,
    run_label,
    runs_table,
)
from core.evaluation import evaluate_predictions
from core.runs import RunStore
from tests.core.test_evaluation import write_run


def test_two_run_differences_of_a_hand_worked_example():
    # true    0 0 1 1 2 2     row shares of run A      of run B         B - A
    # run A   0 1 1 2 2 0     [[1/2, 1/2,   0],        [[1,   0,   0],   [[ 1/2, -1/2,    0],
    # run B   0 0 1 1 2 1      [  0, 1/2, 1/2],         [0,   1,   0],    [   0,  1/2, -1/2],
    #                          [1/2,   0, 1/2]]         [0, 1/2, 1/2]]    [-1/2,  1/2,    0]]
    # F1: run A gets 1 of the 2 predictions and 1 of the 2 samples of each class right: 1/2 everywhere.
    # Run B: class 0 P = R = 1 -> 1; class 1 P = 2/3, R = 1 -> 4/5; class 2 P = 1, R = 1/2 -> 2/3.
    y = np.array([0, 0, 1, 1, 2, 2])
    names = ["a", "b", "c"]
    ea = evaluate_predictions(np.eye(3)[[0, 1, 1, 2, 2, 0]], y, names)
    eb = evaluate_predictions(np.eye(3)[[0, 0, 1, 1, 2, 1]], y, names)
    np.testing.assert_allclose(confusion_change(ea, eb),
                               [[1 / 2, -1 / 2, 0], [0, 1 / 2, -1 / 2], [-1 / 2, 1 / 2, 0]])
    change = f1_change(ea, eb)
    np.testing.assert_allclose(change.to_numpy(), [1 - 1 / 2, 4 / 5 - 1 / 2, 2 / 3 - 1 / 2])
    assert list(change.index) == names


def test_describe_change_names_better_and_worse_classes():
    import pandas as pd

    change = pd.Series([0.2, -0.05, 0.004, 0.03], index=["cat", "dog", "owl", "fox"])
    text = describe_change(change, "run A", "run B")
    assert text.startswith("Run B got better on classes cat and fox and worse on class dog")
    assert "owl" not in text
    same = describe_change(pd.Series([0.001, -0.002], index=["x", "y"]))
    assert "within 0.01 F1 on every class" in same


def test_comparable_needs_same_dataset_and_classes():
    a = {"dataset": {"name": "digits", "class_names": ["0", "1"]}}
    assert comparable(a, a) is None
    assert "different datasets (digits and iris)" in comparable(a, {"dataset": {"name": "iris"}})
    b = {"dataset": {"name": "digits", "class_names": ["1", "0"]}}
    assert "different classes" in comparable(a, b)
    ea = evaluate_predictions(np.eye(2), [0, 1], ["0", "1"])
    eb = evaluate_predictions(np.eye(3), [0, 1, 2], ["0", "1", "2"])
    with pytest.raises(ValueError, match="different classes"):
        f1_change(ea, eb)


def test_runs_table_reads_metrics_and_settings(tmp_path):
    store = RunStore(tmp_path / "runs")
    r1 = write_run(store, "digits", accuracy=0.7, seed=1, epochs=3)
    r2 = write_run(store, "digits", accuracy=0.9, seed=2, epochs=5, training={"learning_rate": 0.01})
    table = runs_table(store).set_index("run_id")
    assert set(table.index) == {r1, r2}
    for run_id in (r1, r2):
        val = [r["val_accuracy"] for r in store.read_metrics(run_id)]
        pred = store.read_predictions(run_id)
        assert table.loc[run_id, "best_val_accuracy"] == pytest.approx(max(val))
        assert table.loc[run_id, "last_val_accuracy"] == pytest.approx(val[-1])
        assert table.loc[run_id, "test_accuracy"] == pytest.approx(
            np.mean(pred["probs"].argmax(1) == pred["y_true"]))
        assert table.loc[run_id, "duration_s"] == pytest.approx(store.read_metrics(run_id)[-1]["time"])
    settings = [c for c in table.columns if "." in c]
    assert set(differing_settings(table, settings)) == {"training.learning_rate", "training.epochs"}


def test_filter_runs_by_status_dataset_and_text():
    import pandas as pd

    from core.compare import filter_runs

    t = pd.DataFrame({"run_id": ["r1", "r2", "r3"], "status": ["completed", "failed", "completed"],
                      "dataset": ["digits", "digits", "iris"], "model": ["Small CNN", "MLP", "MLP"],
                      "group": ["", "cv-x", None]})
    assert list(filter_runs(t, ["completed"])["run_id"]) == ["r1", "r3"]
    assert list(filter_runs(t, [], ["digits"], "mlp")["run_id"]) == ["r2"]
    assert list(filter_runs(t, text="CV-X")["run_id"]) == ["r2"]
    assert filter_runs(t, text="nothing").empty


def test_run_labels_tell_two_runs_of_one_model_apart():
    from types import SimpleNamespace

    def info(run_id, optimizer, rate, label):
        return SimpleNamespace(run_id=run_id, config={
            "dataset": {"name": "digits"}, "model": {"name": "Small CNN"}, "label": label,
            "training": {"optimizer": optimizer, "learning_rate": rate, "epochs": 6}})

    adam = run_label(info("a", "adam", 0.001, "Small CNN on digits"))
    sgd = run_label(info("b", "sgd", 0.01, "Small CNN on digits"))
    assert adam == "a · digits · Small CNN · adam 0.001 · 6 ep"  # the Train page's label repeats model and data
    assert sgd == "b · digits · Small CNN · sgd 0.01 · 6 ep"
    assert run_label(info("c", "adam", 0.001, "fold 2 of 3")).endswith("· 6 ep · fold 2 of 3")
    assert run_label(SimpleNamespace(run_id="d", config={})) == "d · ? · ?"  # an unreadable config still names it


def test_confusion_change_colours_mean_better_or_worse_for_b_everywhere():
    from core.charts.eval import confusion_diff_figure

    diff = np.array([[0.10, -0.10], [0.20, -0.20]])  # B: class 0 more right; class 1 more often called 0
    trace = confusion_diff_figure(diff, ["a", "b"], "A", "B").data[0]
    gain = np.asarray(trace.z, dtype=float)
    assert gain[0, 0] > 0 and gain[0, 1] > 0  # more right on the diagonal, fewer 0→1 mistakes: both better
    assert gain[1, 1] < 0 and gain[1, 0] < 0  # fewer right, more 1→0 mistakes: both worse
    assert [list(r) for r in trace.text] == [["+0.10", "-0.10"], ["+0.20", "-0.20"]]  # the numbers stay B − A
    assert trace.customdata[1][0][1] == "worse for B"
