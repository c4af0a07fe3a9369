"""CSV downloads neutralise spreadsheet formulas but keep numbers; a run zips to its own files."""

from __future__ import annotations

import csv
import io
import zipfile

import pandas as pd

from core.exports import all_metrics_csv, csv_bytes, history_csv, neutralise_cell, run_zip
from core.runs import RunStore
from tests.core.test_evaluation import write_run


def test_formula_cells_get_an_apostrophe_numbers_stay():
    for bad in ("=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tx", "\r=1", "=HYPERLINK(\"http://x\")"):
        assert neutralise_cell(bad) == "'" + bad
    for ok in ("-0.5", "+3", "-1e-3", "plain", "a=b", "", "-.5"):
        assert neutralise_cell(ok) == ok
    assert neutralise_cell(-0.5) == -0.5 and neutralise_cell(3) == 3


def test_csv_bytes_round_trip():
    frame = pd.DataFrame({"label": ["=evil()", "fine", "-0.25"], "loss": [-0.5, 1.0, 2.0], "=col": [1, 2, 3]})
    rows = list(csv.reader(io.StringIO(csv_bytes(frame).decode("utf-8-sig"))))
    assert rows[0] == ["label", "loss", "'=col"]
    assert [r[0] for r in rows[1:]] == ["'=evil()", "fine", "-0.25"]
    assert [float(r[1]) for r in rows[1:]] == [-0.5, 1.0, 2.0]  # numbers stay numbers


def test_csv_is_utf8_with_a_byte_order_mark_so_spreadsheets_read_chinese():
    """Excel reads a CSV without a BOM in the system's code page: 猫 would come out as mojibake."""
    import codecs

    data = csv_bytes(pd.DataFrame({"class": ["猫", "=狗"], "n": [1, 2]}))
    assert data.startswith(codecs.BOM_UTF8) and data.count(codecs.BOM_UTF8) == 1
    assert data[len(codecs.BOM_UTF8):] == "class,n\n猫,1\n'=狗,2\n".encode()  # formulas still neutralised


def test_csv_headers_are_in_the_readers_language_and_english_stays_as_it_was(tmp_path):
    import numpy as np

    from core.evaluation import evaluate_predictions
    from core.exports import predictions_csv, report_csv
    from core.i18n import language_of

    ev = evaluate_predictions(np.eye(2)[[0, 1, 1]], np.array([0, 1, 0]), ["猫", "狗"])
    store = RunStore(tmp_path / "runs")
    run_id = write_run(store, "iris", epochs=1)

    def header_and_column(data):
        frame = pd.read_csv(io.BytesIO(data), keep_default_na=False)
        return list(frame.columns), list(frame.iloc[:, 0])

    with language_of("zh"):
        assert header_and_column(report_csv(ev.report)) == (["类别", "精确率", "召回率", "F1 分数", "样本数"],
                                                             ["猫", "狗", "宏平均", "加权平均"])
        columns, _first = header_and_column(predictions_csv(ev.probs, ev.y_true, [5, 6, 7], ev.class_names))
        assert columns == ["样本索引", "真实", "预测", "P(猫)", "P(狗)"]
        columns, _first = header_and_column(history_csv(store.read_metrics(run_id)))
        assert columns[:5] == ["记录类型", "轮次", "损失", "准确率", "验证损失"]
        assert header_and_column(all_metrics_csv(store))[0][:4] == ["运行 ID", "数据集", "模型", "状态"]
    assert header_and_column(report_csv(ev.report)) == (["class", "precision", "recall", "f1-score", "support"],
                                                         ["猫", "狗", "macro avg", "weighted avg"])
    assert header_and_column(history_csv(store.read_metrics(run_id)))[0][:5] == ["kind", "epoch", "loss", "accuracy",
                                                                                 "val_loss"]


def test_history_and_all_metrics_csv(tmp_path):
    store = RunStore(tmp_path / "runs")
    r1 = write_run(store, "iris", epochs=2, label="=cmd")
    r2 = write_run(store, "iris", epochs=3)
    hist = pd.read_csv(io.BytesIO(history_csv(store.read_metrics(r1))))
    assert list(hist["epoch"]) == [1, 2]
    assert list(hist["loss"]) == [r["loss"] for r in store.read_metrics(r1)]
    every = pd.read_csv(io.BytesIO(all_metrics_csv(store)))
    assert sorted(every["run_id"].unique()) == sorted([r1, r2])
    assert (every["run_id"] == r2).sum() == 3
    # each row says which run it is in words a spreadsheet can filter on; a label is neutralised
    r3 = write_run(store, "iris", epochs=1, training={"optimizer": "sgd", "learning_rate": 0.01}, group="cv-x")
    every = pd.read_csv(io.BytesIO(all_metrics_csv(store)), dtype={"label": str})
    first = every.drop_duplicates("run_id").set_index("run_id")
    assert first.loc[r1, "label"] == "'=cmd"
    assert (first.loc[r1, "optimizer"], first.loc[r1, "learning_rate"]) == ("adam", 0.001)
    assert (first.loc[r3, "optimizer"], first.loc[r3, "learning_rate"], first.loc[r3, "group"]) == ("sgd", 0.01, "cv-x")
    assert list(first.loc[r1, ["batch_size", "epochs_requested"]]) == [32, 2]


def test_run_zip_holds_the_run_files_only(tmp_path):
    store = RunStore(tmp_path / "runs")
    run_id = write_run(store, "iris")
    folder = store.run_dir(run_id)
    (folder / ".tmp-abc-model.keras").write_bytes(b"half")
    (folder / "notes.txt").write_text("not a run file")
    (folder / "model.keras").symlink_to(tmp_path / "elsewhere.keras")  # a link never travels
    (tmp_path / "elsewhere.keras").write_bytes(b"secret")
    events = folder / "tensorboard" / "train"
    events.mkdir(parents=True)
    (events / "events.out.tfevents.1700000000.host.42.0.v2").write_bytes(b"\0" * 16)
    (events / "profile.pb").write_bytes(b"not an event file")
    (folder / "tensorboard" / "validation").symlink_to(tmp_path)
    with zipfile.ZipFile(io.BytesIO(run_zip(store, run_id))) as zf:
        names = set(zf.namelist())
        assert names == {f"{run_id}/{n}" for n in ("config.json", "metrics.jsonl", "status.json", "predictions.npz",
                                                    "tensorboard/train/events.out.tfevents.1700000000.host.42.0.v2")}
        assert zf.read(f"{run_id}/config.json") == (folder / "config.json").read_bytes()


def test_several_runs_zip_into_one_folder_each(tmp_path):
    store = RunStore(tmp_path / "runs")
    a, b = write_run(store, "iris", seed=1), write_run(store, "iris", seed=2)
    with zipfile.ZipFile(io.BytesIO(run_zip(store, a, b))) as zf:
        assert {n.split("/")[0] for n in zf.namelist()} == {a, b}
        assert zf.read(f"{b}/status.json") == (store.run_dir(b) / "status.json").read_bytes()


def test_predictions_csv_one_row_per_test_sample():
    import numpy as np
    import pytest

    from core.exports import predictions_csv

    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.25, 0.5, 0.25]], dtype=np.float32)
    data = predictions_csv(probs, [0, 1, 1], [40, 7, 13], ["=cmd()", "b", "b"])
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == ["index", "true", "predicted", "P(=cmd())", "P(b)", "P(b) (2)"]  # names kept apart
    assert [r[:3] for r in rows[1:]] == [["40", "'=cmd()", "'=cmd()"], ["7", "b", "b"], ["13", "b", "b"]]
    frame = pd.read_csv(io.BytesIO(data))
    assert frame.iloc[:, 3:].to_numpy() == pytest.approx(probs.astype(float), rel=1e-6)
    with pytest.raises(ValueError, match="do not match"):
        predictions_csv(probs, [0, 1], [1, 2], ["a", "b", "c"])


def test_report_csv_is_the_evaluation_report_with_a_class_column():
    import numpy as np
    from sklearn.metrics import precision_recall_fscore_support

    from core.evaluation import evaluate_predictions
    from core.exports import report_csv

    y = np.array([0, 0, 1, 1, 2, 2, 2, 0, 1, 2])
    probs = np.eye(3)[[0, 1, 1, 2, 2, 0, 2, 0, 1, 1]]
    ev = evaluate_predictions(probs, y, ["-x", "b", "c"])
    frame = pd.read_csv(io.BytesIO(report_csv(ev.report)))
    assert list(frame["class"]) == ["'-x", "b", "c", "macro avg", "weighted avg"]
    p, r, f, s = precision_recall_fscore_support(y, probs.argmax(1), zero_division=0)
    assert np.allclose(frame[["precision", "recall", "f1-score"]].to_numpy()[:3], np.c_[p, r, f])
    assert list(frame["support"]) == [*s, 10, 10]


def test_a_downloaded_run_carries_its_table_preparation_as_plain_json(tmp_path):
    """The preparation travels with the run's config.json: JSON that the app rebuilds and checks field by field
    (never a pickle), so a run folder that comes back can predict raw rows the same way."""
    import json

    import numpy as np

    from core import tabular
    from core.datasets import split_dataset
    from core.uploads import read_csv
    from tests.core.test_tabular import penguins_like

    ds = read_csv(penguins_like(), "penguins.csv")
    prep = split_dataset(ds).preparation
    store = RunStore(tmp_path / "runs")
    run_id = write_run(store, "iris")
    store.update_config(run_id, preparation=prep)
    with zipfile.ZipFile(io.BytesIO(run_zip(store, run_id))) as zf:
        config = json.loads(zf.read(f"{run_id}/config.json"))
        assert not any(n.endswith((".pkl", ".pickle", ".joblib")) for n in zf.namelist())
    back = tabular.check_preparation(config["preparation"])
    row = {"island": ["Biscoe"], "bill_length_mm": ["NA"], "bill_depth_mm": ["15.1"], "flipper_length_mm": ["?"],
           "body_mass_g": ["5000"], "sex": [""], "year": ["2008"]}
    np.testing.assert_array_equal(tabular.prepare_rows(back, row), tabular.prepare_rows(prep, row))
