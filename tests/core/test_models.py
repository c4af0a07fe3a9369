"""Building specs with Keras: every preset on every dataset it claims, counts against Keras, code export."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile

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


def _exported_model_config(code: str, tmp_path) -> dict:
    """The config of the model the exported script's build_model() makes, from a fresh interpreter."""
    (tmp_path / "exported_module.py").write_text(code)
    driver = tmp_path / "driver.py"
    driver.write_text("import json, exported_module\n"
                      "print('CONFIG=' + json.dumps(exported_module.build_model().get_config(), default=str))\n")
    done = subprocess.run([sys.executable, str(driver)], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.split("CONFIG=", 1)[1])


def test_exported_script_trains_and_rebuilds_the_same_model(datasets, tmp_path):
    from core.models import build_model, export_code
    from core.specs import ModelSpec

    digits = datasets["digits"]
    base = preset("Article CNN", digits)
    conv = make_layer("Conv2D", **{**base.layers[0].params, "kernel_initializer": "he_normal",
                                   "activation": "leaky_relu"})
    spec = ModelSpec((conv,) + base.layers[1:-1] + (
        make_layer("Dense", units=64, activation="linear", kernel_initializer="he_uniform", l1=1e-5, l2=1e-4),
        make_layer("LeakyReLU", negative_slope=0.1),
        make_layer("Dense", units=32, activation="gelu", kernel_initializer="lecun_normal"),
        make_layer("Dropout", rate=0.3)), "Article CNN (edited)")
    code = export_code(spec, digits, {"optimizer": "sgd", "momentum": 0.8, "learning_rate": 0.01, "batch_size": 64,
                                      "schedule": "step", "step_every": 2, "step_factor": 0.5,
                                      "early_stopping": True, "patience": 2, "monitor": "val_accuracy",
                                      "epochs": 1, "loss": "sparse_categorical_crossentropy", "seed": 3})
    # the optimizer and callbacks the app's training builds for these settings (core.training), all of them
    for text in ("ExponentialDecay(0.01, decay_steps=2 * int(np.ceil(len(train_idx) / 64)), decay_rate=0.5, "
                 "staircase=True)", "keras.optimizers.SGD(learning_rate=lr, momentum=0.8)",
                 "EarlyStopping(monitor='val_accuracy', patience=2, restore_best_weights=True)",
                 "activation='leaky_relu', kernel_initializer='he_normal'", "kernel_initializer='he_uniform'",
                 "layers.LeakyReLU(negative_slope=0.1, name='leaky_relu_8')", "activation='gelu'",
                 "kernel_initializer='lecun_normal'"):
        assert text in code, text
    out = _run_script(code, tmp_path)
    model = build_model(spec, digits)
    assert int(re.search(r"parameters: (\d+)", out).group(1)) == model.count_params()
    assert "data: 1797 examples of shape (8, 8, 1)" in out
    accuracy = float(re.search(r"test accuracy: ([0-9.]+)", out).group(1))
    assert 0.0 <= accuracy <= 1.0
    # Not only the count: every layer's config (initializer, activation, slope, regularizer) is the same.
    exported = _exported_model_config(code, tmp_path)
    assert exported == json.loads(json.dumps(model.get_config(), default=str))
    by_name = {layer["name"]: layer["config"] for layer in exported["layers"]}
    assert by_name["conv2d_1"]["kernel_initializer"]["class_name"] == "HeNormal"
    assert by_name["conv2d_1"]["activation"] == "leaky_relu"
    assert by_name["leaky_relu_8"]["negative_slope"] == 0.1
    assert by_name["dense_9"]["activation"] == "gelu"


def test_initializers_and_activations_reach_keras_and_survive_a_model_file(datasets, tmp_path):
    """Issue 11.5: He / LeCun / Glorot initializers, leaky_relu / gelu / elu and a LeakyReLU layer, checked
    against Keras itself, then saved, passed by the upload check (allow-list and weight bound) and reloaded."""
    import keras

    from core.model_bound import bound_model
    from core.model_files import check_model_file, load_model_file
    from core.models import build_model, model_summary
    from core.specs import ModelSpec

    digits = datasets["digits"]
    spec = ModelSpec((
        make_layer("Conv2D", filters=8, padding="same", kernel_initializer="he_uniform", activation="gelu"),
        make_layer("Conv2D", filters=8, kernel_initializer="lecun_normal", activation="linear"),
        make_layer("LeakyReLU", negative_slope=0.1),
        make_layer("MaxPooling2D"),
        make_layer("Flatten"),
        make_layer("Dense", units=16, kernel_initializer="he_normal", activation="leaky_relu"),
        make_layer("Activation", activation="elu"),
        make_layer("Dense", units=8, kernel_initializer="glorot_normal", activation="tanh"),
        make_layer("Dense", units=8, kernel_initializer="lecun_uniform", activation="relu"),
        make_layer("Dense", units=8)), "new settings")
    model = build_model(spec, digits)
    layers = {layer.name: layer for layer in model.layers}
    init = {n: type(layers[n].kernel_initializer).__name__ for n in
            ("conv2d_1", "conv2d_2", "dense_6", "dense_8", "dense_9", "dense_10", "classifier")}
    assert init == {"conv2d_1": "HeUniform", "conv2d_2": "LecunNormal", "dense_6": "HeNormal",
                    "dense_8": "GlorotNormal", "dense_9": "LecunUniform", "dense_10": "GlorotUniform",
                    "classifier": "GlorotUniform"}
    assert layers["conv2d_1"].activation is keras.activations.gelu
    assert layers["dense_6"].activation is keras.activations.leaky_relu
    assert layers["activation_7"].activation is keras.activations.elu
    assert isinstance(layers["leaky_relu_3"], keras.layers.LeakyReLU)
    assert layers["leaky_relu_3"].negative_slope == pytest.approx(0.1)
    y = np.asarray(layers["leaky_relu_3"](np.array([[-1.0, 2.0]], dtype="float32")))
    np.testing.assert_allclose(y, [[-0.1, 2.0]], rtol=1e-6)
    # The initializer really draws differently: He normal's spread is sqrt(2 / fan_in) (truncated normal).
    fan_in = int(layers["dense_6"].kernel.shape[0])
    assert np.std(layers["dense_6"].kernel.numpy()) == pytest.approx(np.sqrt(2 / fan_in), rel=0.25)
    analysis = analyse_spec(spec, digits.input_shape, digits.n_classes, digits.kind)
    summary = model_summary(spec, digits)
    assert model.count_params() == analysis.total_params == summary.total_params
    assert summary.flops == analysis.flops
    # A Keras Lab model with these settings is a model the upload check admits, with an exact bound.
    path = tmp_path / "new_settings.keras"
    model.save(path)
    checked = check_model_file(path)
    assert checked["params_estimate"] == model.count_params()
    with zipfile.ZipFile(path) as zf:
        config = json.loads(zf.read("config.json"))
    assert bound_model(config, max_values=10_000_000, max_calls=5_000).params == model.count_params()
    again = load_model_file(path, isolate=False)
    assert type(again.get_layer("dense_6").kernel_initializer).__name__ == "HeNormal"
    assert again.get_layer("leaky_relu_3").negative_slope == pytest.approx(0.1)
    np.testing.assert_allclose(np.asarray(again(digits.x[:4])), np.asarray(model(digits.x[:4])), rtol=1e-5)


def test_specs_without_the_new_settings_build_exactly_as_before(datasets):
    """Default initializer: nothing extra is passed to Keras, and the exported code does not change."""
    from core.models import build_model, export_code

    cifar = datasets["cifar_like"]
    spec = preset("Article CNN", cifar)
    code = export_code(spec, cifar)
    assert "kernel_initializer" not in code and "LeakyReLU" not in code
    model = build_model(spec, cifar)
    assert {type(layer.kernel_initializer).__name__ for layer in model.layers if hasattr(layer, "kernel")} == \
        {"GlorotUniform"}


def test_exported_script_for_other_data_uses_a_marked_placeholder(datasets, tmp_path):
    from core.models import export_code

    cifar = datasets["cifar_like"]
    code = export_code(preset("Stronger CNN", cifar), cifar)
    assert "random placeholder data" in code and "model.fit" not in code
    from core.models import build_model

    out = _run_script(code, tmp_path)
    assert int(re.search(r"parameters: (\d+)", out).group(1)) == \
        build_model(preset("Stronger CNN", cifar), cifar).count_params()


def test_stronger_cnn_for_many_colour_images_builds_as_analysed():
    """The large-dataset Stronger CNN on 32x32x3 (no real colour set is reachable offline to train it on):
    Keras builds it with the parameters analyse_spec counts."""
    from core.models import build_model

    colour = Dataset("cifar_like", np.zeros((10_000, 32, 32, 3), np.uint8), np.arange(10_000) % 10,
                     tuple("0123456789"), "image")
    spec = preset("Stronger CNN", colour)
    assert [ly.params["filters"] for ly in spec.layers if ly.type == "Conv2D"] == [16, 64, 64]
    assert build_model(spec, colour).count_params() == \
        analyse_spec(spec, colour.input_shape, 10, "image").total_params == 112_906


def test_exported_transfer_learning_prepares_grey_images_as_build_model_does(datasets, tmp_path):
    """Grey 8x8 digits: the script's backbone gets the channel repeated to RGB, resized to 32x32 and scaled to
    [-1, 1], layer by layer as build_model does, with the same parameters."""
    from core.models import build_model, export_code
    from tests.helpers import offline_transfer_spec

    digits = datasets["digits"]
    spec = offline_transfer_spec(digits)
    code = export_code(spec, digits)
    assert "weights='imagenet'" not in code and "backbone.trainable = False" in code
    config = _exported_model_config(code, tmp_path)
    model = build_model(spec, digits)
    assert [layer["name"] for layer in config["layers"]] == [layer.name for layer in model.layers]
    assert [layer["class_name"] for layer in config["layers"]][1:5] == \
        ["Concatenate", "Resizing", "Rescaling", "Functional"]


def test_export_file_stem_is_readable_and_safe():
    from core.models import export_file_stem

    assert export_file_stem("Article CNN (adapted) (edited)") == "article_cnn_adapted_edited"
    assert export_file_stem("Small MLP") == "small_mlp"
    assert export_file_stem("../../etc/passwd") == "etc_passwd"
    assert export_file_stem("((()))") == "model"


def test_exported_script_reproduces_the_preparation_of_an_uploaded_table(tmp_path):
    """The script carries the run's preparation as plain data and the app's own preparation code: next to the
    uploaded file it reads every row as Keras Lab did (same rows, classes and inputs), a raw typed row gives
    the app's numbers, and it trains end to end."""
    import pandas as pd

    from core import tabular
    from core.datasets import split_dataset
    from core.models import export_code
    from core.uploads import read_csv
    from tests.core.test_tabular import adult_like

    data = adult_like(300)
    ds = read_csv(data, "adult census.csv", missing="drop")
    settings = {"optimizer": "adam", "learning_rate": 0.001, "batch_size": 32, "epochs": 1, "seed": 4}
    code = export_code(preset("Small MLP", ds), ds, settings)
    split = split_dataset(ds, seed=4)
    assert "DATA_FILE = 'adult census.csv'" in code and "pickle" not in code
    assert "mean, std = x_train.mean(axis=0)" not in code  # the preparation standardised already
    (tmp_path / "exported_module.py").write_text(code)
    (tmp_path / "adult census.csv").write_bytes(data)
    typed = {"age": ["41"], "workclass": ["?"], "fnlwgt": ["200000"], "education": ["Masters"],
             "native-country": ["Atlantis"], "comment": ["ignored"], "signup": ["17/03/2020"], "income": [""]}
    (tmp_path / "driver.py").write_text(
        "import json, exported_module as m\n"
        "x, y = m.load_data()\n"
        f"row = m.prepare_rows(m.PREPARATION, {typed!r})\n"
        "print('OUT=' + json.dumps({'x': x.tolist(), 'y': y.tolist(), 'row': row.tolist()}))\n")
    done = subprocess.run([sys.executable, "driver.py"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.split("OUT=", 1)[1])
    whole = np.empty((ds.n_samples, ds.input_shape[0]), np.float32)
    for part, idx in (("x_train", split.train_idx), ("x_val", split.val_idx), ("x_test", split.test_idx)):
        whole[idx] = getattr(split, part)
    np.testing.assert_array_equal(out["y"], ds.y)
    np.testing.assert_allclose(out["x"], whole, rtol=1e-5, atol=2e-6)
    np.testing.assert_allclose(out["row"], tabular.prepare_rows(split.preparation, pd.DataFrame(typed)),
                               rtol=1e-6, atol=1e-6)
    trained = _run_script(code, tmp_path)  # the whole script: reads the file, prepares, trains 1 epoch
    assert f"data: {ds.n_samples} examples of shape ({ds.input_shape[0]},)" in trained
    assert 0.0 <= float(re.search(r"test accuracy: ([0-9.]+)", trained).group(1)) <= 1.0


def test_exported_script_keeps_a_keras_datasets_official_test_file(tmp_path):
    """A Keras dataset's script splits as the app does by default: the official test file is the test part,
    validation is carved from the training files (the same rows as core.datasets picks); "pooled" re-splits."""
    from core.datasets import Dataset, split_indices
    from core.models import export_code

    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (60, 28, 28), dtype=np.uint8), "y_train": np.arange(60) % 10,
              "x_test": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8), "y_test": np.arange(20) % 10}
    np.savez(tmp_path / "fixture.npz", **arrays)
    mnist = Dataset("mnist", np.concatenate([arrays["x_train"], arrays["x_test"]])[..., None],
                    np.concatenate([arrays["y_train"], arrays["y_test"]]).astype(np.int64),
                    tuple(str(c) for c in range(10)), "image", official_test_start=60)
    # keras.datasets.mnist.load_data() would check its file hash and download: the driver hands it the fixture
    driver = tmp_path / "driver.py"
    driver.write_text("import runpy, keras, numpy as np\n"
                      "f = np.load('fixture.npz')\n"
                      "keras.datasets.mnist.load_data = lambda: ((f['x_train'], f['y_train']), (f['x_test'], f['y_test']))\n"
                      "runpy.run_path('exported.py', run_name='__main__')\n")
    sizes = {}
    for split in ("official", "pooled"):
        settings = {"epochs": 1, "batch_size": 16, "seed": 2, "split": split, "val_fraction": 0.2,
                    "test_fraction": 0.25}
        (tmp_path / "exported.py").write_text(export_code(preset("Small CNN", mnist), mnist, settings))
        done = subprocess.run([sys.executable, str(driver)], capture_output=True, text=True, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        sizes[split] = tuple(int(n) for n in re.search(r"split: (\d+) train / (\d+) validation / (\d+) test",
                                                       done.stdout).groups())
        expected = split_indices(mnist, seed=2, val_fraction=0.2, test_fraction=0.25, kind=split)
        assert sizes[split] == tuple(len(part) for part in expected), split
    assert sizes["official"] == (48, 12, 20)  # the 20 test-file images, 20 % of the 60 training images
    assert sizes["pooled"][2] == 20 and sizes["pooled"] != sizes["official"]
