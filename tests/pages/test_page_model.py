"""The Model page in AppTest: presets, adding / moving / deleting layers, the Keras summary, the handover."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.datasets import load_builtin
from core.specs import ModelSpec, analyse_spec, make_layer, preset

pytestmark = pytest.mark.slow
APP = str(Path(__file__).resolve().parents[2] / "app.py")


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


def test_initializer_activation_and_leaky_relu_from_the_editor(clean_streamlit_caches):
    """Issue 11.5: the dead-ReLU advice (He initialisation, LeakyReLU) can be followed in the layer editor."""
    digits = load_builtin("digits")
    at = _open()
    spec = at.session_state["model_spec"]
    dense = next(i for i, layer in enumerate(spec.layers) if layer.type == "Dense")
    uid = at.session_state["model_spec_ids"][dense]
    init = at.selectbox(key=f"layer_{uid}_kernel_initializer")
    assert init.value == "glorot_uniform" and "he_normal" in init.options[3]  # labelled "he_normal (for ReLU)"
    init.set_value("he_normal").run()
    at.selectbox(key=f"layer_{uid}_activation").set_value("linear").run()
    edited = at.session_state["model_spec"].layers[dense]
    assert (edited.params["kernel_initializer"], edited.params["activation"]) == ("he_normal", "linear")
    assert _metric(at, "Parameters") == _expected(spec, digits)  # an initializer adds no weight

    next(s for s in at.selectbox if s.label == "Add a layer").set_value("LeakyReLU")
    next(s for s in at.selectbox if s.label == "Position").set_value(dense + 1)
    next(b for b in at.button if b.label == "Add").click()
    at.run()
    layers = at.session_state["model_spec"].layers
    assert layers[dense + 1].type == "LeakyReLU" and layers[dense + 1].params == {"negative_slope": 0.2}
    slope_uid = at.session_state["model_spec_ids"][dense + 1]
    at.number_input(key=f"layer_{slope_uid}_negative_slope").set_value(0.1).run()
    assert at.session_state["model_spec"].layers[dense + 1].params == {"negative_slope": 0.1}
    assert _metric(at, "Parameters") == _expected(spec, digits)
    code = next(c.value for c in at.code)
    assert "kernel_initializer='he_normal'" in code and "layers.LeakyReLU(negative_slope=0.1" in code
    assert not at.exception and not at.error and not at.warning


def test_article_cnn_caption_names_the_ten_class_head_and_the_count_here(clean_streamlit_caches):
    """Issue 11.8: a 3-class 32x32x3 upload has 122,115 parameters; the caption must say why not 122,570."""
    import numpy as np

    from core.datasets import Dataset

    rng = np.random.default_rng(0)
    three = Dataset("upload: three", rng.random((30, 32, 32, 3), dtype=np.float32), np.arange(30) % 3,
                    ("a", "b", "c"), "image")
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["uploads"] = {three.name: three}
    at.session_state["dataset"] = three.name
    at.run()
    at.switch_page("pages/model.py").run()
    assert not at.exception, at.exception
    assert at.session_state["model_spec"].name == "Article CNN"
    caption = next(c.value for c in at.caption if "122,570" in c.value)
    assert "with the article's 10" in caption and "class head" in caption
    assert "3 classes) it has 122,115 parameters (a 3" in caption
    assert _metric(at, "Parameters") == 122_115


def _augment_grid(at: AppTest) -> dict | None:
    import json

    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return next((s for s in specs if any("augmented versions" in a.get("text", "")
                                         for a in s["layout"].get("annotations", []))), None)


def test_augmentation_preview_shows_the_grid_and_warns_about_flipped_digits(clean_streamlit_caches):
    """Issue 15.3: the spec's own augmentation on real samples, seeded, and a warning that flips break digits."""
    at = _open()
    assert any("no augmentation layer" in i.value for i in at.info)  # Small CNN: nothing to preview
    assert _augment_grid(at) is None

    next(s for s in at.selectbox if s.label == "Add a layer").set_value("RandomFlip")
    next(s for s in at.selectbox if s.label == "Position").set_value(0)
    next(b for b in at.button if b.label == "Add").click()
    at.run()
    assert at.session_state["model_spec"].layers[0].type == "RandomFlip"
    assert not at.exception, at.exception
    grid = _augment_grid(at)
    assert grid is not None and any(a["text"] == "4 augmented versions (seed 0)" for a in grid["layout"]["annotations"])
    assert [a["text"] for a in grid["layout"]["annotations"][:6]] == ["0", "2", "4", "5", "7", "9"]
    assert any("RandomFlip turns some digits into other symbols" in w.value for w in at.warning)
    assert not any("no augmentation layer" in i.value for i in at.info)

    at.number_input(key="augment_seed").set_value(3).run()
    other = _augment_grid(at)
    assert any(a["text"] == "4 augmented versions (seed 3)" for a in other["layout"]["annotations"])
    assert other["data"][0]["z"] != grid["data"][0]["z"]  # new draws with a new seed
    at.number_input(key="augment_seed").set_value(0).run()
    assert _augment_grid(at)["data"][0]["z"] == grid["data"][0]["z"]  # and the same pictures again
