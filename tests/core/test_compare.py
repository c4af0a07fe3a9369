"""Run comparison: the runs table, differing settings, and the two-run differences worked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.compare import (
    METRIC_COLUMNS,
    comparable,
    confusion_change,
    describe_change,
    differing_settings,
    f1_change,
    run_label,
    run_metrics,
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


def test_a_chinese_reader_gets_the_change_run_names_and_setting_words_in_chinese():
    from types import SimpleNamespace

    from core.charts.eval import setting_label
    from core.i18n import language_of

    change = pd.Series([0.2, -0.05, 0.03, 0.0], index=["猫", "狗", "狐", "鸮"])
    info = SimpleNamespace(run_id="r", config={"dataset": {"name": "upload:宠物.csv"}, "model": {"name": "Small CNN"},
                                               "label": "第一次", "training": {"optimizer": "adam",
                                                                             "learning_rate": 0.001, "epochs": 6}})
    with language_of("zh"):
        assert describe_change(change, "运行 A", "运行 B") == ("运行 B 变好的类别：猫 和 狐；变差的类别：狗（按各类别 F1 "
                                                           "与 运行 A 比较）。")
        assert run_label(info) == "r · upload:宠物.csv · Small CNN · adam 0.001 · 6 轮 · 第一次"
        assert [setting_label(c) for c in ("training.batch_size", "best_val_accuracy", "training.new_knob")] == [
            "批大小", "最佳验证准确率", "new knob"]  # a setting added later: the words of its name
    assert run_label(info) == "r · upload:宠物.csv · Small CNN · adam 0.001 · 6 ep · 第一次"


def test_setting_words_in_english_are_what_the_column_names_say():
    """English labels stay those derived from the column ('training.batch_size' → 'batch size')."""
    from core.charts.eval import setting_label

    assert [setting_label(c) for c in ("training.batch_size", "split.val_fraction", "dataset.n_classes",
                                       "best_val_accuracy", "duration_s", "model.name", "epochs_run")] == [
        "batch size", "split val fraction", "dataset n classes", "best val accuracy", "duration s", "model",
        "epochs run"]


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


def test_runs_table_has_the_settings_and_run_metrics_the_metrics(tmp_path):
    store = RunStore(tmp_path / "runs")
    r1 = write_run(store, "digits", accuracy=0.7, seed=1, epochs=3, label="first", group="sweep:lr")
    r2 = write_run(store, "digits", accuracy=0.9, seed=2, epochs=5, training={"learning_rate": 0.01})
    store.set_hidden(r2, True)
    listed = store.list_runs()
    table = runs_table(listed).set_index("run_id")
    assert list(table.index) == [i.run_id for i in listed]  # as listed (two runs of one second: either order)
    assert (table.loc[r1, "label"], table.loc[r1, "group"], table.loc[r2, "label"]) == ("first", "sweep:lr", "")
    assert list(table.loc[[r2, r1], "hidden"]) == [True, False] and not any(c in table for c in METRIC_COLUMNS)
    assert table.loc[r1, "created"] == pd.Timestamp(store.read_config(r1)["created"], unit="s")
    settings = [c for c in table.columns if "." in c]
    assert set(differing_settings(table, settings)) == {"training.learning_rate", "training.epochs"}
    for run_id in (r1, r2):
        val = [r["val_accuracy"] for r in store.read_metrics(run_id)]
        pred = store.read_predictions(run_id)
        row = run_metrics(store, run_id)
        assert row["best_val_accuracy"] == pytest.approx(max(val))
        assert row["last_val_accuracy"] == pytest.approx(val[-1])
        assert row["test_accuracy"] == pytest.approx(np.mean(pred["probs"].argmax(1) == pred["y_true"]))
        assert row["test_loss"] == pytest.approx(float(pred["test_loss"]))
        assert row["duration_s"] == pytest.approx(store.read_metrics(run_id)[-1]["time"])
        assert (row["epochs_run"], row["problem"]) == (len(val), "")
    with open(store.run_dir(r1) / "metrics.jsonl", "ab") as fh:
        fh.write(b'{"kind": "epoch", "val_acc')  # a torn last line
    store.run_dir(r1).joinpath("predictions.npz").unlink()
    row = run_metrics(store, r1)
    assert row["problem"] == "metrics.jsonl: line 4 is damaged; 3 epochs shown"
    assert row["epochs_run"] == 3 and np.isnan(row["test_accuracy"]) and np.isnan(row["test_loss"])


def test_runs_table_of_a_damaged_run_and_of_no_runs(tmp_path):
    store = RunStore(tmp_path / "runs")
    run_id = store.create_run({"label": "x"})
    (store.run_dir(run_id) / "config.json").write_text("{")
    [row] = runs_table(store.list_runs()).to_dict("records")
    assert (row["status"], row["problem"]) == ("damaged", "damaged: config.json is not valid JSON (cut off or corrupt)")
    empty = runs_table([])
    assert empty.empty and {"run_id", "status", "dataset", "hidden", "problem"} <= set(empty.columns)


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
    tuned = info("e", "adam", 0.001, "")
    tuned.config["training"]["fine_tune_epochs"] = 4
    assert run_label(tuned) == "e · digits · Small CNN · adam 0.001 · 6+4 ep"  # frozen, then fine-tuning epochs


def test_confusion_change_colours_mean_better_or_worse_for_b_everywhere():
    from core.charts.eval import confusion_diff_figure

    diff = np.array([[0.10, -0.10], [0.20, -0.20]])  # B: class 0 more right; class 1 more often called 0
    trace = confusion_diff_figure(diff, ["a", "b"], "A", "B").data[0]
    gain = np.asarray(trace.z, dtype=float)
    assert gain[0, 0] > 0 and gain[0, 1] > 0  # more right on the diagonal, fewer 0→1 mistakes: both better
    assert gain[1, 1] < 0 and gain[1, 0] < 0  # fewer right, more 1→0 mistakes: both worse
    assert [list(r) for r in trace.text] == [["+0.10", "-0.10"], ["+0.20", "-0.20"]]  # the numbers stay B − A
    assert trace.customdata[1][0][1] == "worse for B"
