"""AppTest of the Evaluate page on runs written to the temporary run store (a tiny real model.keras)."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix

from core.runs import RunStore
from tests.test_evaluation import write_run

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

    at = AppTest.from_file("../app.py", default_timeout=90)
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


def test_a_digit_drawn_on_paper_is_inverted_before_prediction(clean_streamlit_caches, tiny_model_bytes):
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
    shown = next(i for i in at.get("image") if any("as the model sees it" in c for c in i.captions))
    assert shown is not None
