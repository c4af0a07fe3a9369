"""The Model page in AppTest: presets, adding / moving / deleting layers, the Keras summary, the handover."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.datasets import load_builtin
from core.specs import ModelSpec, analyse_spec, make_layer, preset

pytestmark = pytest.mark.slow
APP = str(Path(__file__).resolve().parents[1] / "app.py")


def _open(dataset: str = "digits") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["dataset"] = dataset
    at.run()
    at.switch_page("pages/model.py").run()
    assert not at.exception, at.exception
    return at


def _metric(at: AppTest, label: str) -> int:
    return int(next(m.value for m in at.metric if m.label == label).replace(",", ""))


def _expected(spec: ModelSpec, ds) -> int:
    return analyse_spec(spec, ds.input_shape, ds.n_classes, ds.kind).total_params


def test_preset_then_add_layer_changes_the_summary(clean_streamlit_caches):
    digits = load_builtin("digits")
    at = _open()
    assert at.session_state["model_spec"].name == "Small CNN"
    assert _metric(at, "Parameters") == _expected(preset("Small CNN", digits), digits)

    next(s for s in at.selectbox if s.label == "Start from a preset").set_value("Article CNN")
    next(b for b in at.button if b.label == "Use preset").click()
    at.run()
    article = preset("Article CNN", digits)
    assert at.session_state["model_spec"] == article
    assert _metric(at, "Parameters") == _expected(article, digits)
    assert any("padding='same'" in i.value for i in at.info)  # the adaptation note is shown

    # Add a Dense 64 layer at the end: the summary grows by 64*64 + 64 weights and 64*10 in the head.
    next(s for s in at.selectbox if s.label == "Add a layer").set_value("Dense")
    next(b for b in at.button if b.label == "Add").click()
    at.run()
    grown = ModelSpec(article.layers + (make_layer("Dense"),), "Article CNN (adapted) (edited)", article.notes)
    assert at.session_state["model_spec"] == grown
    assert _metric(at, "Parameters") == _expected(grown, digits) == _expected(article, digits) + 64 * 64 + 64
    assert not at.error


def test_move_and_delete_buttons_edit_the_right_layer(clean_streamlit_caches):
    at = _open()
    before = at.session_state["model_spec"].layers
    downs = [b for b in at.button if b.key and b.key.startswith("down_")]
    downs[0].click()  # Conv2D below the first MaxPooling2D
    at.run()
    after = at.session_state["model_spec"].layers
    assert (after[0], after[1]) == (before[1], before[0]) and after[2:] == before[2:]
    deletes = [b for b in at.button if b.key and b.key.startswith("del_")]
    deletes[0].click()  # the MaxPooling2D now first
    at.run()
    assert at.session_state["model_spec"].layers == after[1:]
    assert not at.exception


def test_breaking_the_shapes_shows_the_error_and_no_summary(clean_streamlit_caches):
    at = _open()
    layers = at.session_state["model_spec"].layers
    flatten = next(i for i, layer in enumerate(layers) if layer.type == "Flatten")
    deletes = [b for b in at.button if b.key and b.key.startswith("del_")]
    deletes[flatten].click()
    at.run()
    errors = [e.value for e in at.error]
    assert any(f"layer {flatten + 1} Dense gets a 2-D feature map" in e for e in errors), errors
    assert not any(m.label == "Parameters" for m in at.metric)
    assert not at.exception


def test_tabular_dataset_gets_the_mlp_and_no_image_layers(clean_streamlit_caches):
    iris = load_builtin("iris")
    at = _open("iris")
    assert at.session_state["model_spec"].name == "Small MLP"
    assert _metric(at, "Parameters") == _expected(preset("Small MLP", iris), iris)
    options = next(s for s in at.selectbox if s.label == "Add a layer").options
    assert "Dropout" in options and "Conv2D" not in options and "RandomFlip" not in options
    assert next(s for s in at.selectbox if s.label == "Start from a preset").options == ["Small MLP"]


def test_a_spec_that_no_longer_fits_is_reported(clean_streamlit_caches):
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["dataset"] = "iris"
    at.session_state["model_spec"] = preset("Small CNN", load_builtin("digits"))
    at.run()
    at.switch_page("pages/model.py").run()
    assert any("does not fit iris" in w.value and "needs image input" in w.value for w in at.warning)
    assert at.session_state["model_spec"].name == "Small MLP"  # what the Train page now gets


def test_tabular_dataset_explains_why_image_layers_are_not_offered(clean_streamlit_caches):
    at = _open("iris")
    assert next(s for s in at.selectbox if s.label == "Start from a preset").options == ["Small MLP"]
    assert any("only dense layers" in c.value and "need images" in c.value for c in at.caption)
    digits = _open("digits")
    assert not any("only dense layers" in c.value for c in digits.caption)
