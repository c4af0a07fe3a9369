"""Building specs with Keras: every preset on every dataset it claims, counts against Keras, code export."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from core.datasets import Dataset, load_builtin
from core.specs import SpecError, analyse_spec, available_presets, make_layer, preset

pytestmark = pytest.mark.slow
BUILTINS = ("digits", "iris", "wine", "breast_cancer")


def _cifar_like() -> Dataset:
    rng = np.random.default_rng(0)
    return Dataset("cifar_like", rng.random((20, 32, 32, 3), dtype=np.float32), np.arange(20) % 10,
                   tuple(str(i) for i in range(10)), "image")


@pytest.fixture(scope="module")
def datasets() -> dict[str, Dataset]:
    return {**{n: load_builtin(n) for n in BUILTINS}, "cifar_like": _cifar_like()}


@pytest.fixture
def no_downloads(monkeypatch):
    """ImageNet weights unavailable, as offline: Keras' download raises; the memo of failures starts empty."""
    import keras.src.applications.mobilenet_v2 as mobilenet_v2

    import core.models as models

    def _fail(*args, **kwargs):
        raise Exception("URL fetch failure: -- [Errno -2] Name or service not known")

    monkeypatch.setattr(mobilenet_v2.file_utils, "get_file", _fail)
    monkeypatch.setattr(models, "_FAILED_WEIGHTS", {})


def test_every_preset_builds_on_every_dataset_it_claims(datasets, no_downloads):
    import keras

    from core.models import build_model, model_summary

    for ds in datasets.values():
        x = ds.x[:4]
        for name in available_presets(ds):
            spec = preset(name, ds)
            model = build_model(spec, ds)
            assert isinstance(model, keras.Model) and not model.compiled, name
            assert model.input_shape == (None, *ds.input_shape)
            assert model.output_shape == (None, ds.n_classes)
            head = model.layers[-1]
            assert head.name == "classifier" and head.get_config()["activation"] == "softmax"
            probs = np.asarray(model(x, training=False))
            np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
            # Arithmetic in core.specs (no TensorFlow) agrees with Keras, and so does the summary.
            analysis = analyse_spec(spec, ds.input_shape, ds.n_classes, ds.kind)
            trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
            assert (model.count_params(), trainable) == (analysis.total_params, analysis.trainable_params), \
                (name, ds.name)
            summary = model_summary(spec, ds)
            assert summary.total_params == model.count_params()
            assert sum(r["params"] for r in summary.rows) == summary.total_params
            assert summary.weight_bytes == 4 * summary.total_params
            if name != "Transfer learning":  # the backbone's FLOPs in core.specs are a published estimate
                assert summary.flops == analysis.flops, (name, ds.name)


def test_article_cnn_has_122570_parameters_in_keras(datasets):
    from core.models import build_model

    model = build_model(preset("Article CNN", datasets["cifar_like"]), datasets["cifar_like"])
    assert model.count_params() == 122_570
    assert [type(layer).__name__ for layer in model.layers[1:]] == [
        "Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Conv2D", "Flatten", "Dense", "Dense"]


def test_flops_of_a_conv_layer_match_a_hand_count(datasets):
    from core.models import model_summary

    digits = datasets["digits"]
    from core.specs import ModelSpec

    spec = ModelSpec((make_layer("Conv2D", filters=4, kernel_size=3), make_layer("Flatten")))
    # 6x6 outputs x 4 filters x (3*3*1) multiply-adds x 2, then the head: 144 inputs x 10 classes x 2
    assert model_summary(spec, digits).flops == 6 * 6 * 4 * 9 * 2 + 144 * 10 * 2


def test_transfer_learning_falls_back_to_random_weights_with_a_note(datasets, no_downloads):
    from core.models import build_model, model_summary

    digits = datasets["digits"]
    notes: list[str] = []
    model = build_model(preset("Transfer learning", digits), digits, notes=notes)
    assert len(notes) == 1 and "could not be downloaded" in notes[0] and "RANDOM weights" in notes[0]
    assert "Name or service not known" in notes[0]
    names = [layer.name for layer in model.layers]
    assert names[1:4] == ["grey_to_rgb_1", "resize_1", "scale_to_pm1_1"]
    backbone = model.get_layer("mobilenetv2_1")
    assert backbone.trainable is False and backbone.input_shape == (None, 32, 32, 3)
    head = model.get_layer("classifier")
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == head.count_params()
    # Frozen means frozen: one training step leaves the backbone's weights as they were.
    before = [w.numpy().copy() for w in backbone.weights]
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.train_on_batch(digits.x[:8], digits.y[:8])
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(before, backbone.weights, strict=True))
    assert any("RANDOM" in n for n in model_summary(preset("Transfer learning", digits), digits).notes)


def test_invalid_spec_raises_before_building(datasets):
    from core.models import build_model, export_code
    from core.specs import ModelSpec

    huge = ModelSpec((make_layer("Flatten"), make_layer("Dense", units=16384), make_layer("Dense", units=16384)))
    with pytest.raises(SpecError, match="parameters; at most"):
        build_model(huge, datasets["cifar_like"])
    with pytest.raises(SpecError, match="needs image input; the dataset is tabular"):
        build_model(ModelSpec((make_layer("Conv2D"),)), datasets["iris"])
    with pytest.raises(SpecError, match="optimizer must be one of"):
        export_code(preset("Small MLP", datasets["iris"]), datasets["iris"], {"optimizer": "__import__('os')"})


def _run_script(code: str, tmp_path) -> str:
    path = tmp_path / "exported.py"
    path.write_text(code)
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_exported_script_trains_and_rebuilds_the_same_model(datasets, tmp_path):
    from core.models import build_model, export_code
    from core.specs import ModelSpec

    digits = datasets["digits"]
    base = preset("Article CNN", digits)
    spec = ModelSpec(base.layers[:-1] + (make_layer("Dense", units=64, activation="gelu", l1=1e-5, l2=1e-4),
                                         make_layer("Dropout", rate=0.3)), "Article CNN (edited)")
    code = export_code(spec, digits, {"optimizer": "adam", "learning_rate": 0.001, "batch_size": 64,
                                      "epochs": 1, "loss": "sparse_categorical_crossentropy", "seed": 3})
    out = _run_script(code, tmp_path)
    assert int(re.search(r"parameters: (\d+)", out).group(1)) == build_model(spec, digits).count_params()
    assert "data: 1797 examples of shape (8, 8, 1)" in out
    accuracy = float(re.search(r"test accuracy: ([0-9.]+)", out).group(1))
    assert 0.0 <= accuracy <= 1.0


def test_exported_script_for_other_data_uses_a_marked_placeholder(datasets, tmp_path):
    from core.models import export_code

    cifar = datasets["cifar_like"]
    code = export_code(preset("Stronger CNN", cifar), cifar)
    assert "random placeholder data" in code and "model.fit" not in code
    from core.models import build_model

    out = _run_script(code, tmp_path)
    assert int(re.search(r"parameters: (\d+)", out).group(1)) == \
        build_model(preset("Stronger CNN", cifar), cifar).count_params()


def test_export_file_stem_is_readable_and_safe():
    from core.models import export_file_stem

    assert export_file_stem("Article CNN (adapted) (edited)") == "article_cnn_adapted_edited"
    assert export_file_stem("Small MLP") == "small_mlp"
    assert export_file_stem("../../etc/passwd") == "etc_passwd"
    assert export_file_stem("((()))") == "model"
