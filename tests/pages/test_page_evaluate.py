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
from tests.helpers import open_page, write_stuck_backbone_run

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
    return open_page("pages/evaluate.py", timeout=90)


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
    import core.diagnostics as D
    from tests.pages.test_page_runs import shown

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(D, "relu_activations", lambda model, x: {})  # the note's relu probe: no model here
    write_stuck_backbone_run(RunStore())
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


# ---- explanations ---------------------------------------------------------------------------------------

def _saved(model, tmp_path) -> bytes:
    path = tmp_path / "model.keras"
    model.save(path)
    return path.read_bytes()


def _explain_figures(at) -> list[dict]:
    tab = next(t for t in at.tabs if "Explain" in t.label)
    return [json.loads(chart.proto.spec) for chart in tab.get("plotly_chart")]


def _array(value) -> np.ndarray:
    """A number array from a figure's JSON: plotly writes numpy arrays as base64 ("bdata") with their dtype."""
    import base64

    if isinstance(value, dict):
        shape = [int(n) for n in str(value.get("shape", "-1")).split(",")]
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).reshape(shape)
    return np.asarray(value)


def _titles(figure: dict) -> list[str]:
    return [a["text"] for a in figure["layout"].get("annotations", [])]


def test_explain_overlays_saliency_and_grad_cam_of_the_run_model(clean_streamlit_caches, tmp_path):
    """A small CNN on digits: the chosen sample and the six most confident mistakes, each with saliency and
    Grad-CAM laid over the image, computed by core.explain on the run's model.keras."""
    import keras

    from core.explain import explain
    from core.model_files import load_run_model

    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
                              keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
    store = RunStore()
    run_id = write_run(store, "digits", accuracy=0.8, seed=4)
    store.model_path(run_id).write_bytes(_saved(model, tmp_path))
    at = _app()
    assert not at.exception and not at.error
    figures = _explain_figures(at)
    assert len(figures) == 1 + 6  # the chosen sample, then the six most confident mistakes
    for figure in figures:
        assert [t["type"] for t in figure["data"]] == ["image", "image", "heatmap", "image", "heatmap"]
        assert _titles(figure) == ["input", "saliency", "Grad-CAM"]
    pred = store.read_predictions(run_id)
    predicted = int(pred["probs"][0].argmax())
    assert f"explaining {predicted}" in figures[0]["layout"]["title"]["text"]
    tab = next(t for t in at.tabs if "Explain" in t.label)
    assert any("feature maps of conv, the model's last Conv2D layer: 6×6 positions, upsampled to the 8×8 image"
               in c.value for c in tab.caption)
    from core.datasets import load_builtin

    x = load_builtin("digits").x[pred["test_idx"][:1]]
    ex = explain(load_run_model(store, run_id), x, [predicted])  # what the page shows is core.explain's answer
    np.testing.assert_allclose(_array(figures[0]["data"][2]["z"]), ex.saliency[0] / ex.saliency[0].max(), rtol=1e-6)

    true_class = int(pred["y_true"][5])
    at.number_input(key=f"ev_{run_id}_explain_sample").set_value(5).run()
    at.selectbox(key=f"ev_{run_id}_explain_class_5").set_value(true_class).run()
    assert not at.exception
    title = _explain_figures(at)[0]["layout"]["title"]["text"]
    assert title.startswith(f"dataset row {int(pred['test_idx'][5])}: true {true_class} → ")
    assert title.endswith(f"explaining {true_class}")


def test_explain_says_why_a_dense_model_has_no_grad_cam(clean_streamlit_caches, tiny_model_bytes):
    store = RunStore()
    run_id = write_run(store, "digits", accuracy=0.85, seed=2)
    store.model_path(run_id).write_bytes(tiny_model_bytes)
    at = _app()
    tab = next(t for t in at.tabs if "Explain" in t.label)
    assert any("Grad-CAM is not available" in i.value and "no Conv2D layer" in i.value for i in tab.info)
    for figure in _explain_figures(at):
        assert [t["type"] for t in figure["data"]] == ["image", "image", "heatmap"]


def test_explain_a_table_attributes_the_score_to_named_features(clean_streamlit_caches, tmp_path):
    """iris: gradient × input per feature, as bars for one row and a rows × features map for the mistakes."""
    import keras

    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    store = RunStore()
    run_id = write_run(store, "iris", accuracy=0.6, seed=3)
    store.model_path(run_id).write_bytes(_saved(model, tmp_path))
    at = _app()
    assert not at.exception and not at.error
    one, mistakes = _explain_figures(at)
    features = {"sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"}
    assert one["data"][0]["type"] == "bar" and set(one["data"][0]["y"]) == features
    assert mistakes["data"][0]["type"] == "heatmap" and set(mistakes["data"][0]["x"]) == features
    pred = store.read_predictions(run_id)
    n_wrong = int((pred["probs"].argmax(1) != pred["y_true"]).sum())
    assert len(mistakes["data"][0]["y"]) == min(6, n_wrong)


def test_explain_a_model_that_does_not_fit_the_data_says_so(clean_streamlit_caches, tmp_path):
    """A model.keras replaced by one made for other data (4 features, not 8×8 images): a message, no crash."""
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(10, activation="softmax")])
    store = RunStore()
    run_id = write_run(store, "digits", accuracy=0.7, seed=6)
    store.model_path(run_id).write_bytes(_saved(model, tmp_path))
    at = _app()
    tab = next(t for t in at.tabs if "Explain" in t.label)
    assert any("does not accept its test data" in i.value for i in tab.info), [i.value for i in tab.info]
