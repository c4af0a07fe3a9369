"""In the browser: a cross-validation started on Compare runs shows its summary there without a reload; a
Transfer-learning run stuck at chance gets one diagnosis, the same in its message and in Diagnostics; the
Evaluate page downloads its report, predictions and model. No console error on the way."""

from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import expect
from sklearn.metrics import precision_recall_fscore_support

from core.runs import RunStore
from tests.core.test_evaluation import write_run
from tests.e2e.conftest import console_errors, goto, screenshot, start_server, stop_server, wait_for_app
from tests.helpers import write_stuck_backbone_run

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A server of its own (its queue holds only this module's folds) with an iris run to cross-validate,
    a digits run to download from and a stuck Transfer-learning run; yields (url, store, ids)."""
    runs = tmp_path_factory.mktemp("cv-runs")
    store = RunStore(runs)
    ids = {"base": write_run(store, "iris", epochs=1, training={"batch_size": 16}, label="cv base"),
           "digits": _run_with_model(store, tmp_path_factory.mktemp("model")),
           "stuck": _stuck_backbone_run(store, tmp_path_factory.mktemp("keras-home"))}
    log = tmp_path_factory.mktemp("cv-log") / "streamlit.log"
    proc, url = start_server(runs, log, env={"KERAS_HOME": str(ids["stuck"][1])})
    ids["stuck"] = ids["stuck"][0]
    yield url, store, ids
    stop_server(proc, log)


def _run_with_model(store: RunStore, folder) -> str:
    """A digits run with a small real model.keras."""
    import keras

    run_id = write_run(store, "digits", accuracy=0.8, seed=4, label="downloads")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(8, activation="relu"), keras.layers.Dense(10, activation="softmax")])
    model.save(folder / "m.keras")
    store.model_path(run_id).write_bytes((folder / "m.keras").read_bytes())
    return run_id


def _stuck_backbone_run(store: RunStore, keras_home) -> tuple[str, object]:
    """tests.helpers.write_stuck_backbone_run, its message naming the weights file under `keras_home`."""
    import core.diagnostics as D

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KERAS_HOME", str(keras_home))  # the server's too, so both name the same weights file
        mp.setattr(D, "relu_activations", lambda model, x: {})  # no model saved: the page checks no ReLU either
        run_id = write_stuck_backbone_run(store, label="stuck backbone")
    return run_id, keras_home


def _pick(page, label: str, value: str, then: str | None = None) -> None:
    """Choose `value` in a selectbox; `then`: text the rerun shows (wait_for_app alone can return before
    the rerun has begun)."""
    page.get_by_test_id("stSelectbox").filter(has_text=label).click()
    page.keyboard.type(value)
    page.keyboard.press("Enter")
    if then is not None:
        page.get_by_text(then).first.wait_for()
    wait_for_app(page)


def test_a_cross_validation_appears_on_compare_runs_without_a_reload(page, lab):
    url, store, ids = lab
    problems = console_errors(page, "runs")  # every console error but Streamlit's base-path probe fails
    goto(page, url, "runs")
    page.evaluate("window.__sameDocument = true")  # gone if the page were reloaded
    _pick(page, "Reuse the dataset, model and settings of", ids["base"])
    page.get_by_test_id("stNumberInput").filter(has_text="Folds (k)").locator("input").fill("2")
    page.get_by_role("button", name="Cross-validate").click()
    page.get_by_text("Queued 2 folds as group").wait_for()
    group = re.search(r"group (cv-iris-2fold-[0-9a-f]+)", page.get_by_text("Queued 2 folds").inner_text())[1]
    page.get_by_text(re.compile(f"Cross-validation {group}: [01] of 2 folds finished")).wait_for()
    page.get_by_text("queued or training — this page updates by itself").wait_for()
    screenshot(page, "compare-runs-cv-running")
    # no reload, no click: the page follows the folds by itself
    page.get_by_text(f"Cross-validation {group}: 2 of 2 folds finished").wait_for(timeout=240_000)
    polling = page.get_by_text("queued or training — this page updates by itself")
    expect(polling).to_have_count(0, timeout=10_000)  # nothing active: the polling fragment is gone
    wait_for_app(page)
    summary = page.get_by_test_id("stExpander").filter(has_text=f"Cross-validation {group}: 2 of 2")
    expect(summary).to_have_count(1)
    expect(summary.get_by_test_id("stDataFrame")).to_be_visible()
    expect(summary.get_by_test_id("stPlotlyChart")).to_be_visible()
    assert page.evaluate("window.__sameDocument === true")
    screenshot(page, "compare-runs-cv-done")
    folds = [i for i in store.list_runs() if i.config.get("group") == group]
    assert sorted(i.status for i in folds) == ["completed", "completed"]
    assert not problems, problems


def test_a_frozen_random_backbone_gets_one_diagnosis_in_message_and_panel(page, lab):
    url, store, ids = lab
    problems = console_errors(page, "evaluate")
    goto(page, url, "evaluate")
    _pick(page, "Run (completed or stopped)", ids["stuck"], then="completed · 5 epochs")
    page.get_by_role("tab", name="Diagnostics").click()
    panel = page.get_by_role("tabpanel", name="Diagnostics")
    alerts = panel.get_by_test_id("stAlert")
    expect(alerts).to_have_count(1)
    text = alerts.get_by_test_id("stMarkdownContainer").inner_text()  # without the icon's name
    assert text.startswith("The frozen backbone has random weights — ") and "learning rate" not in text.lower()
    assert "ln 10 = 2.3026" in text and "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5" in text
    explanation = text.split(" — ", 1)[1].strip()
    message = page.get_by_test_id("stCaptionContainer").filter(has_text="completed · 5 epochs").inner_text()
    assert explanation.rstrip(".") in message.replace("\n", " ")  # the run's final message says the same
    screenshot(page, "evaluate-diagnostics")
    assert not problems, problems


def test_evaluate_downloads_the_report_the_predictions_and_the_model(page, lab):
    url, store, ids = lab
    run_id = ids["digits"]
    problems = console_errors(page, "evaluate")
    goto(page, url, "evaluate")
    _pick(page, "Run (completed or stopped)", run_id, then="completed · 3 epochs")
    pred = store.read_predictions(run_id)
    y, y_pred = pred["y_true"], pred["probs"].argmax(1)
    files = {}
    for label in ("Per-class report (.csv)", "Test predictions (.csv)", "Model (.keras)"):
        button = page.get_by_test_id("stDownloadButton").filter(has_text=label)
        with page.expect_download() as info:
            button.click()
        download = info.value
        files[download.suggested_filename] = open(download.path(), "rb").read()
    assert set(files) == {f"{run_id}-report.csv", f"{run_id}-predictions.csv", f"{run_id}.keras"}
    report = pd.read_csv(io.BytesIO(files[f"{run_id}-report.csv"]))
    p, r, f, s = precision_recall_fscore_support(y, y_pred, labels=range(10), zero_division=0)
    np.testing.assert_allclose(report[["precision", "recall", "f1-score"]].to_numpy()[:10], np.c_[p, r, f])
    assert list(report["class"])[-2:] == ["macro avg", "weighted avg"] and list(report["support"])[:10] == list(s)
    rows = pd.read_csv(io.BytesIO(files[f"{run_id}-predictions.csv"]))
    np.testing.assert_array_equal(rows["index"], pred["test_idx"])
    assert files[f"{run_id}.keras"] == store.model_path(run_id).read_bytes()
    screenshot(page, "evaluate-downloads")
    assert not problems, problems
