"""AppTest of the Evaluate page on runs written to the temporary run store (a tiny real model.keras)."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix

from core.runs import RunStore
from tests.core.test_evaluation import write_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_model_bytes(tmp_path_factory):
    """An untrained digits model whose ReLU layer has 6 of 8 units dead (bias -1000), saved by Keras."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(8, activation="relu", name="hidden"),
                              keras.layers.Dense(10, activation="softmax")])
    kernel, bias = model.get_layer("hidden").get_weights()
    bias[:6] = -1000.0  # inputs lie in [0, 1]: these units can never fire
    model.get_layer("hidden").set_weights([kernel, bias])
    path = tmp_path_factory.mktemp("m") / "tiny.keras"
    model.save(path)
    return path.read_bytes()


def _app():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file("../../app.py", default_timeout=90)
    at.run()
    at.switch_page("pages/evaluate.py")
    at.run()
    assert not at.exception, at.exception
    return at


def _with_lambda(good: bytes) -> bytes:
    """The good file with a Lambda that would call keras.config.set_floatx('float16') inserted."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good)) as zin, zipfile.ZipFile(out, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "config.json":
                cfg = json.loads(data)
                cfg["config"]["layers"].insert(1, {
                    "module": "keras.layers", "class_name": "Lambda", "registered_name": None,
                    "config": {"name": "evil", "arguments": {"value": "float16"},
                               "function": {"module": "keras.config", "class_name": "function",
                                            "config": "set_floatx", "registered_name": "function"}}})
                data = json.dumps(cfg).encode()
            zout.writestr(item, data)
    return out.getvalue()


def test_metrics_cells_and_diagnostics_of_a_run(clean_streamlit_caches, tiny_model_bytes):
    store = RunStore()
    older = write_run(store, "digits", accuracy=0.6, seed=1, label="older")
    newest = write_run(store, "digits", accuracy=0.85, seed=2, label="newest")
    store.model_path(newest).write_bytes(tiny_model_bytes)
    at = _app()
    assert at.selectbox(key="eval_run").value == newest  # the newest finished run by default
    pred = store.read_predictions(newest)
    y, y_pred = pred["y_true"], pred["probs"].argmax(1)
    assert at.metric[0].value == f"{accuracy_score(y, y_pred):.2%}"
    assert {"Top-3 accuracy", "Top-5 accuracy"} <= {m.label for m in at.metric}
    cm = confusion_matrix(y, y_pred, labels=range(10))
    off = cm.astype(float)
    np.fill_diagonal(off, -1)
    worst = np.unravel_index(off.argmax(), off.shape)  # the page opens on the commonest confusion
    assert at.selectbox(key=f"ev_{newest}_true").value == str(worst[0])
    assert at.selectbox(key=f"ev_{newest}_pred").value == str(worst[1])
    off[worst] = -1
    t, p = (int(v) for v in np.unravel_index(off.argmax(), off.shape))  # another mistake cell, chosen by hand
    at.selectbox(key=f"ev_{newest}_true").set_value(str(t))
    at.selectbox(key=f"ev_{newest}_pred").set_value(str(p))
    at.run()
    assert not at.exception
    heads = [h.value for h in at.subheader]
    assert f"True {t} → predicted {p}: {cm[t, p]} mistake{'' if cm[t, p] == 1 else 's'}" in heads, heads
    # "Click a cell to see its samples below": they are in the Metrics tab, right under the matrix
    metrics_tab = next(tab for tab in at.tabs if "Metrics" in tab.label)
    assert f"True {t} → predicted {p}: {cm[t, p]} mistake{'' if cm[t, p] == 1 else 's'}" in [
        h.value for h in metrics_tab.subheader]
    assert any("samples below" in c.value for c in metrics_tab.caption)
    captions = [c for img in at.get("image") for c in img.captions]
    n_cell = min(int(cm[t, p]), 24)
    assert n_cell > 0 and all(c.startswith(f"true {t} → {p} (") for c in captions[:n_cell]), captions[:n_cell]
    assert len(captions) == n_cell + min(12, len(y) - int(np.trace(cm)))  # then the most confident mistakes
    # diagnostics ran the real model on the test split: 6 of 8 ReLU units are dead
    assert not at.error
    assert any("Dead ReLU units (75% in hidden)" in w.value and "/faq?q=dead-relu" in w.value for w in at.warning), \
        [w.value for w in at.warning]
    # switching runs works too
    at.selectbox(key="eval_run").set_value(older)
    at.run()
    assert not at.exception and at.metric[0].value == f"{np.mean(store.read_predictions(older)['probs'].argmax(1) == store.read_predictions(older)['y_true']):.2%}"


def test_hostile_uploads_are_refused_and_the_page_keeps_working(clean_streamlit_caches, tiny_model_bytes):
    import keras

    at = _app()
    assert any("No finished run" in i.value for i in at.info)
    png = io.BytesIO()
    from PIL import Image

    Image.new("RGB", (4, 4)).save(png, "PNG")
    hostile = [("lambda.keras", _with_lambda(tiny_model_bytes), "Lambda"),
               ("picture.keras", png.getvalue(), "PNG image renamed"),
               ("cut.keras", tiny_model_bytes[:300], "truncated")]
    for name, data, message in hostile:
        at.file_uploader(key="eval_model_upload").set_value((name, data, "application/octet-stream"))
        at.run()
        assert not at.exception, at.exception
        assert any(message in e.value for e in at.error), [e.value for e in at.error]
        assert keras.config.floatx() == "float32"
    at.file_uploader(key="eval_model_upload").set_value(("good.keras", tiny_model_bytes, "application/octet-stream"))
    at.run()
    assert not at.exception and not at.error
    assert any("Model accepted" in s.value for s in at.success)
    assert at.metric[0].label == "Test accuracy"


def test_a_digit_drawn_on_paper_is_inverted_before_prediction(clean_streamlit_caches, tiny_model_bytes,
                                                               served_files):
    """digits are light ink on black: a dark-on-white upload got a confident wrong answer unless the
    person knew to tick 'invert'; now a new upload starts inverted when its background is the opposite."""
    from PIL import Image, ImageDraw

    store = RunStore()
    run_id = write_run(store, "digits", accuracy=0.85, seed=2)
    store.model_path(run_id).write_bytes(tiny_model_bytes)
    at = _app()
    img = Image.new("L", (64, 64), 255)
    ImageDraw.Draw(img).line([(20, 10), (44, 10), (30, 54)], fill=0, width=6)  # a dark 7 on white paper
    png = io.BytesIO()
    img.save(png, "PNG")
    at.file_uploader(key=f"pred_img_{run_id}").set_value(("seven.png", png.getvalue(), "image/png"))
    at.run()
    assert not at.exception, at.exception
    box = next(c for c in at.checkbox if c.key.startswith(f"pred_inv_{run_id}"))
    assert box.value is True
    assert any("Inverted automatically" in c.value for c in at.caption)
    [shown] = [i for i in at.get("image") if any("as the model sees it" in c.caption for c in i.proto.imgs)]
    pixels = np.asarray(Image.open(io.BytesIO(served_files[shown.proto.imgs[0].url][1])).convert("L"), float)
    assert pixels.mean() < 64 and pixels.max() > 128  # light ink on a dark background, as digits are drawn


# ---- downloads where the numbers are shown --------------------------------------------------------------

HOSTILE_NAMES = ["=HYPERLINK(\"http://x\",\"a\")", "+cmd|' /C calc'!A0", "@SUM(1)", *map(str, range(3, 10))]


@pytest.fixture
def deferred_files(monkeypatch):
    """file name -> the callable a deferred download button registered (AppTest serves no files)."""
    from streamlit.runtime.media_file_manager import MediaFileManager

    files = {}
    original = MediaFileManager.add_deferred

    def spy(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        files[file_name] = data_callable
        return original(self, data_callable, mimetype, coordinates, file_name, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add_deferred", spy)
    return files


def test_evaluate_offers_the_model_the_predictions_and_the_report(clean_streamlit_caches, tiny_model_bytes,
                                                                  deferred_files):
    import pandas as pd
    from sklearn.metrics import classification_report, precision_recall_fscore_support

    store = RunStore()
    run_id = write_run(store, "digits", accuracy=0.7, seed=3)
    dataset = dict(store.read_config(run_id)["dataset"], class_names=HOSTILE_NAMES)  # names a spreadsheet runs
    store.update_config(run_id, dataset=dataset)
    store.model_path(run_id).write_bytes(tiny_model_bytes)
    at = _app()
    metrics_tab = next(tab for tab in at.tabs if "Metrics" in tab.label)
    labels = [b.proto.label for b in metrics_tab.get("download_button")]
    assert labels == ["Per-class report (.csv)", "Test predictions (.csv)", "Model (.keras)"], labels
    assert {f"{run_id}-report.csv", f"{run_id}-predictions.csv", f"{run_id}.keras"} <= set(deferred_files)

    pred = store.read_predictions(run_id)
    y, probs = pred["y_true"], pred["probs"]
    y_pred = probs.argmax(1)
    safe = ["'" + n if n[0] in "=+@" else n for n in HOSTILE_NAMES]  # neutralised: a leading apostrophe

    report = pd.read_csv(io.BytesIO(deferred_files[f"{run_id}-report.csv"]()), keep_default_na=False)
    assert list(report.columns) == ["class", "precision", "recall", "f1-score", "support"]
    assert list(report["class"]) == [*safe, "macro avg", "weighted avg"]
    p, r, f, s = precision_recall_fscore_support(y, y_pred, labels=range(10), zero_division=0)
    np.testing.assert_allclose(report[["precision", "recall", "f1-score"]].to_numpy()[:10], np.c_[p, r, f])
    np.testing.assert_array_equal(report["support"].to_numpy()[:10], s)
    sk = classification_report(y, y_pred, labels=range(10), output_dict=True, zero_division=0)
    for row, avg in ((10, "macro avg"), (11, "weighted avg")):
        np.testing.assert_allclose(report.loc[row, ["precision", "recall", "f1-score", "support"]].astype(float),
                                   [sk[avg][m] for m in ("precision", "recall", "f1-score", "support")])

    rows = pd.read_csv(io.BytesIO(deferred_files[f"{run_id}-predictions.csv"]()), keep_default_na=False)
    assert list(rows.columns) == ["index", "true", "predicted", *[f"P({n})" for n in HOSTILE_NAMES]]
    np.testing.assert_array_equal(rows["index"], pred["test_idx"])
    assert list(rows["true"]) == [safe[i] for i in y] and list(rows["predicted"]) == [safe[i] for i in y_pred]
    np.testing.assert_allclose(rows.iloc[:, 3:].to_numpy(), probs, rtol=1e-6)

    assert deferred_files[f"{run_id}.keras"]() == tiny_model_bytes


def test_a_frozen_random_backbone_gets_one_diagnosis_in_the_message_and_the_panel(clean_streamlit_caches,
                                                                                   monkeypatch, tmp_path):
    """The reported run: Transfer learning offline, stuck at loss 2.3026 on 10 classes. Its message said
    "try a smaller learning rate", its Diagnostics "learning rate probably too low, try 3-10x larger"."""
    from types import SimpleNamespace

    import core.diagnostics as D
    from core.training import _chance_note
    from tests.core.test_diagnostics import STUCK, backbone_config
    from tests.pages.test_page_runs import shown

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(D, "relu_activations", lambda model, x: {})  # the note's relu probe: no model here
    store = RunStore()
    run_id = write_run(store, "digits", accuracy=0.1, seed=5, epochs=0)
    config = backbone_config()
    store.update_config(run_id, model=config["model"], build_notes=config["build_notes"])
    for record in STUCK:
        store.append_metrics(run_id, record)
    from core.datasets import load_builtin, split_dataset

    digits = load_builtin("digits")
    split = split_dataset(digits, seed=0)
    note = _chance_note(0.1, SimpleNamespace(y_test=split.y_test, y_train=split.y_train, x_test=split.x_test),
                        digits, STUCK, None, config)
    store.write_status(run_id, "completed", f"5 epochs, test accuracy 0.100; {note}; {config['build_notes'][0]}")
    at = _app()
    diag = next(tab for tab in at.tabs if "Diagnostics" in tab.label)
    alerts = [shown(a.value) for kind in ("error", "warning", "info") for a in diag.get(kind)]
    assert len(alerts) == 1 and alerts[0].startswith("**The frozen backbone has random weights** — "), alerts
    explanation = alerts[0].split(" — ", 1)[1]
    assert "ln 10 = 2.3026" in explanation and "Unfreeze it" in explanation
    assert str(tmp_path / "models" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5") in explanation
    caption = next(shown(c.value) for c in at.caption if c.value.startswith("completed"))
    # the same words in the message (which goes on after them: "; ImageNet weights for …")
    assert f"The frozen backbone has random weights: {explanation.rstrip('.')}; " in caption
    for text in (*alerts, caption.split("; ImageNet weights for")[0]):
        assert "learning rate" not in text.lower()
