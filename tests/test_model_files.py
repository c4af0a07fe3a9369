"""Hostile model files are refused before Keras deserialises them, and loading never changes Keras settings.

Every hostile file is built here: a real Lambda model saved by Keras, a config.json edited to call
keras.config.set_floatx, a Dense of 3·10⁸ units written by hand (never allocated), a truncated file and
a PNG renamed .keras.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image

from core.datasets import load_builtin
from core.model_files import (
    ModelFileError,
    check_compatible,
    check_model_config,
    check_model_file,
    load_model_bytes,
    load_model_file,
    predict_probabilities,
    read_csv_rows,
    read_image,
)


def _settings():
    import keras

    return keras.config.floatx(), keras.config.image_data_format(), keras.config.dtype_policy().name


@pytest.fixture(scope="module")
def good_model_file(tmp_path_factory):
    import keras

    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3, activation="relu"),
                              keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
    path = tmp_path_factory.mktemp("models") / "good.keras"
    model.save(path)
    return path


def _rewrite_config(src, dst, edit):
    """Copy a .keras zip, replacing config.json with edit(config)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "config.json":
                data = json.dumps(edit(json.loads(data))).encode()
            zout.writestr(item, data)
    return dst


def _refused(path, match):
    before = _settings()
    with pytest.raises(ModelFileError, match=match):
        load_model_file(path)
    assert _settings() == before == ("float32", "channels_last", "float32")


@pytest.mark.slow
def test_good_model_loads_and_checks_shapes(good_model_file):
    summary = check_model_file(good_model_file)
    assert summary["class_name"] == "Sequential"
    assert summary["params_estimate"] == (9 * 1 * 2 + 2) + (6 * 6 * 2 + 1) * 10  # conv + dense weights
    model = load_model_file(good_model_file)
    digits, iris = load_builtin("digits"), load_builtin("iris")
    check_compatible(model, digits)
    with pytest.raises(ModelFileError, match=r"expects inputs of shape \(8, 8, 1\) but 'iris' has samples of "
                                             r"shape \(4,\)"):
        check_compatible(model, iris)
    probs = predict_probabilities(model, digits.x[:5])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    model2 = load_model_bytes(good_model_file.read_bytes())
    assert model2.count_params() == model.count_params()
    assert _settings() == ("float32", "channels_last", "float32")


@pytest.mark.slow
def test_lambda_model_saved_by_keras_is_refused(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda x: x * 2), keras.layers.Dense(3)])
    path = tmp_path / "lambda.keras"
    model.save(path)
    _refused(path, "Lambda layer runs arbitrary code")


@pytest.mark.slow
def test_config_calling_set_floatx_is_refused(good_model_file, tmp_path):
    evil_fn = {"module": "keras.config", "class_name": "function", "config": "set_floatx",
               "registered_name": "function"}

    def add_lambda(cfg):
        cfg["config"]["layers"].insert(1, {"module": "keras.layers", "class_name": "Lambda", "registered_name": None,
                                           "config": {"name": "evil", "function": evil_fn,
                                                      "arguments": {"value": "float16"}}})
        return cfg

    _refused(_rewrite_config(good_model_file, tmp_path / "lambda_floatx.keras", add_lambda), "Lambda")

    def function_activation(cfg):  # no Lambda at all: a bare function reference as an activation
        cfg["config"]["layers"][-1]["config"]["activation"] = evil_fn
        return cfg

    _refused(_rewrite_config(good_model_file, tmp_path / "fn.keras", function_activation),
             "reference to a Python function")


@pytest.mark.slow
def test_custom_and_foreign_classes_are_refused(good_model_file, tmp_path):
    def custom(cfg):
        cfg["config"]["layers"][-1]["registered_name"] = "evil>Dense"
        return cfg

    def foreign(cfg):
        cfg["config"]["layers"][-1]["module"] = "os"
        return cfg

    _refused(_rewrite_config(good_model_file, tmp_path / "custom.keras", custom), "custom object registered")
    _refused(_rewrite_config(good_model_file, tmp_path / "foreign.keras", foreign), "module 'os', not from Keras")


def test_huge_dense_is_refused_without_allocating(tmp_path):
    config = {"module": "keras", "class_name": "Sequential", "registered_name": None, "config": {
        "name": "huge", "layers": [
            {"module": "keras.layers", "class_name": "InputLayer", "registered_name": None,
             "config": {"batch_shape": [None, 16], "dtype": "float32", "name": "in"}},
            {"module": "keras.layers", "class_name": "Dense", "registered_name": None,
             "config": {"name": "d", "units": 300_000_000, "activation": "linear"},
             "build_config": {"input_shape": [None, 16]}}]}}
    path = tmp_path / "huge.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("model.weights.h5", b"\0" * 64)
    with pytest.raises(ModelFileError, match="units = 300000000 is larger than the allowed 1,000,000"):
        check_model_file(path)
    config["config"]["layers"][1]["config"]["units"] = 900_000  # under the per-dimension cap…
    config["config"]["layers"][1]["build_config"]["input_shape"] = [None, 1000]
    with pytest.raises(ModelFileError, match=r"about 900,900,000 weights .* the cap is 50,000,000"):
        check_model_config(config)  # …but 900 M weights in total


def test_truncated_png_and_plain_files_are_refused(good_model_file, tmp_path):
    data = good_model_file.read_bytes()
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="not a complete zip archive"):
        check_model_file(truncated)
    png = tmp_path / "picture.keras"
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, "PNG")
    png.write_bytes(buf.getvalue())
    with pytest.raises(ModelFileError, match="PNG image renamed to .keras"):
        check_model_file(png)
    text = tmp_path / "notes.keras"
    text.write_text("hello")
    with pytest.raises(ModelFileError, match="this file is not a zip archive"):
        check_model_file(text)
    with pytest.raises(ModelFileError, match="not a zip archive"):
        load_model_bytes(b"hello")


@pytest.mark.slow
def test_settings_changed_during_load_are_restored_and_refused(good_model_file, monkeypatch):
    import keras

    real = keras.saving.load_model

    def sneaky(*args, **kwargs):
        keras.config.set_floatx("float16")  # what a crafted config would do through a public function
        return real(*args, **kwargs)

    monkeypatch.setattr(keras.saving, "load_model", sneaky)
    with pytest.raises(ModelFileError, match=r"changed process-wide Keras settings \(floatx"):
        load_model_file(good_model_file)
    assert keras.config.floatx() == "float32"


def _png(size, mode="L", color=255):
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, "PNG")
    return buf.getvalue()


def test_read_image_resizes_scales_and_caps_pixels():
    x = read_image(_png((40, 30), "RGB", (255, 255, 255)), (8, 8, 1))
    assert x.shape == (1, 8, 8, 1) and x.dtype == np.float32
    np.testing.assert_allclose(x, 1.0)
    np.testing.assert_allclose(read_image(_png((16, 16)), (8, 8, 1), invert=True), 0.0)
    assert read_image(_png((16, 16)), (32, 32, 3)).shape == (1, 32, 32, 3)
    with pytest.raises(ModelFileError, match=r"5000×4000 = 20,000,000 pixels; the cap is 16,000,000"):
        read_image(_png((5000, 4000)), (8, 8, 1))
    with pytest.raises(ModelFileError, match="not an image"):
        read_image(b"GIF89a-not-really", (8, 8, 1))


def test_read_image_refuses_a_huge_header_with_a_message():
    """A 20000x20000 PNG header trips PIL's own bomb check in Image.open: a message, not a traceback."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0))
    data = b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(b"\x00")) + chunk(b"IEND", b"")
    with pytest.raises(ModelFileError, match="too large to decode safely.*the cap is 16,000,000 pixels"):
        read_image(data, (8, 8, 1))
    with pytest.raises(ModelFileError, match="does not take images"):
        read_image(_png((8, 8)), (4,))


def test_read_csv_rows_with_and_without_header():
    names = ("a", "b", "c")
    np.testing.assert_allclose(read_csv_rows(b"c,a,b\n3,1,2\n", names), [[1, 2, 3]])
    np.testing.assert_allclose(read_csv_rows(b"1;2;-0.5\n", names), [[1, 2, -0.5]])
    with pytest.raises(ModelFileError, match="lacks the column"):
        read_csv_rows(b"a,b\n1,2\n", names)
    with pytest.raises(ModelFileError, match="each row must have 3 values"):
        read_csv_rows(b"1,2\n", names)
    with pytest.raises(ModelFileError, match="row 1, column 'b' is not a finite number: '=cmd'"):
        read_csv_rows(b"a,b,c\n1,=cmd,3\n", names)


def test_a_light_background_upload_is_inverted_for_dark_background_training_images():
    from core.model_files import border_brightness, should_invert

    dark_digits = np.zeros((5, 8, 8, 1), np.float32)
    dark_digits[:, 2:6, 3:5] = 1.0  # light ink on black, like digits and MNIST
    paper = read_image(_png((40, 40), "L", 255), (8, 8, 1))  # a white sheet
    assert border_brightness(paper) == pytest.approx(1.0) and border_brightness(dark_digits) == 0.0
    assert should_invert(paper, dark_digits)
    assert not should_invert(1.0 - paper, dark_digits)  # already light ink on black
    assert should_invert(1.0 - paper, 1.0 - dark_digits)  # the reverse pairing too
    photos = np.full((5, 8, 8, 3), 0.5, np.float32)  # natural images: no dark or light background
    assert not should_invert(read_image(_png((40, 40), "RGB", (255, 255, 255)), (8, 8, 3)), photos)
    assert not should_invert(paper, None)  # the training data is not at hand: leave it alone
