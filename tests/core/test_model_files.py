"""Hostile model files are refused before Keras deserialises them, and loading never changes Keras settings.

Every hostile file is built here in the real .keras zip format: a real Lambda model saved by Keras, a
config.json edited to call keras.config.set_floatx, layers whose optional metadata (build_config, tensor
shapes) is left out or lies, functional graphs, a truncated file and a PNG renamed .keras. Files that
would make Keras allocate gigabytes are only ever loaded by the checking child, never by this process.
"""

from __future__ import annotations

import io
import json
import zipfile

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
    assert _settings() == ("float32", "channels_last", "float32")


@pytest.mark.slow
def test_predict_batches_shrink_for_models_with_huge_feature_maps(good_model_file):
    """One predict() batch of an uploaded model must not take gigabytes: 2.1 M values per sample (8.4 MB)
    leave room for 31 samples in 256 MB, not the default 256."""
    import keras

    from core.model_files import predict_batch_size

    wide = keras.Sequential([keras.Input((256, 256, 3)), keras.layers.Conv2D(32, 3, padding="same"),
                             keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    assert predict_batch_size(wide) == 256 * 1024 * 1024 // (4 * (256 * 256 * 32 + 32 + 2)) == 31
    assert predict_batch_size(keras.saving.load_model(good_model_file)) == 256


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


# ---- hand-made configs in the real .keras format ----------------------------------------------------


def _layer(cls, name, *, build=None, nodes=None, **cfg):
    """One layer object as Keras 3 writes it; build= adds a build_config, nodes= makes it a functional node."""
    node = {"module": "keras.layers", "class_name": cls, "registered_name": None, "config": {"name": name, **cfg}}
    if build is not None:
        node["build_config"] = {"input_shape": build}
    if nodes is not None:
        node["name"] = name
        node["inbound_nodes"] = [{"args": list(args), "kwargs": {}} for args in nodes]
    return node


def _input(name, batch_shape, functional=False):
    node = _layer("InputLayer", name, batch_shape=batch_shape, dtype="float32")
    if functional:
        node["name"], node["inbound_nodes"] = name, []
    return node


def _tensor(layer, shape=(None, 4), node=0, index=0):
    """A graph tensor; `shape` is the optional metadata written next to it (never trusted)."""
    return {"class_name": "__keras_tensor__", "config": {"shape": list(shape), "dtype": "float32",
                                                         "keras_history": [layer, node, index]}}


def _sequential(*layers, **extra):
    return {"module": "keras", "class_name": "Sequential", "registered_name": None,
            "config": {"name": "seq", "trainable": True, "layers": list(layers), **extra}}


def _functional(layers, inputs, outputs, name="fun"):
    return {"module": "keras.src.models.functional", "class_name": "Functional", "registered_name": None,
            "config": {"name": name, "trainable": True, "layers": layers, "input_layers": inputs,
                       "output_layers": outputs}}


def _keras_file(path, config):
    """A .keras zip around a config (the weights file is a placeholder: the check never reads it)."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("model.weights.h5", b"\0" * 64)
    return path


def _big_flatten_dense(units=2200, build=None):
    """The audit's file: a 1000x1000 input, Flatten, Dense(2200): 2.2e9 weights (8.8 GB) and no build_config.

    The old check took the Dense layer's input size from build_config and assumed 1 without it (4,400
    weights); Keras builds it from the graph instead and allocates 8.8 GB before failing."""
    return _sequential(_input("in", [None, 1000, 1000]), _layer("Flatten", "flat"),
                       _layer("Dense", "dense", units=units, build=build))


@pytest.fixture(autouse=True)
def _fresh_refusal_memo(monkeypatch):
    from collections import OrderedDict

    import core.model_files as model_files

    monkeypatch.setattr(model_files, "_REFUSED", OrderedDict())


def test_huge_dense_is_refused_without_allocating(tmp_path):
    config = _sequential(_input("in", [None, 16]),
                         _layer("Dense", "d", units=300_000_000, build=[None, 16]))
    path = _keras_file(tmp_path / "huge.keras", config)
    with pytest.raises(ModelFileError, match="units = 300000000 is larger than the allowed 1,000,000"):
        check_model_file(path)
    config["config"]["layers"][1]["config"]["units"] = 900_000  # under the per-dimension cap…
    config["config"]["layers"][0]["config"]["batch_shape"] = [None, 1000]
    with pytest.raises(ModelFileError, match=r"up to 900,900,000 weights \(Dense layer 'd' alone up to "
                                             r"900,900,000\); the cap is 50,000,000"):
        check_model_config(config)  # …but 900 M weights in total


def test_missing_build_config_does_not_mean_an_input_of_one(tmp_path):
    path = _keras_file(tmp_path / "no_build_config.keras", _big_flatten_dense())
    assert path.stat().st_size < 2_000
    with pytest.raises(ModelFileError, match=r"up to 2,200,002,200 weights \(Dense layer 'dense' alone"):
        check_model_file(path)
    with pytest.raises(ModelFileError, match="2,200,002,200 weights"):
        load_model_bytes(path.read_bytes())  # the public path refuses it before any child or Keras
    # The same shapes within the cap pass, with the exact count Keras would allocate.
    ok = check_model_config(_sequential(_input("in", [None, 10, 10]), _layer("Flatten", "f"),
                                        _layer("Dense", "d", units=3)))
    assert ok["params_estimate"] == 100 * 3 + 3


def test_a_lying_build_config_is_outvoted_by_the_graph_and_counted_when_larger():
    # build_config says 16 inputs; the graph gives the Dense 1,000,000: the graph's size is counted.
    with pytest.raises(ModelFileError, match="up to 2,200,002,200 weights"):
        check_model_config(_big_flatten_dense(build=[None, 16]))
    # build_config says 1,000,000 inputs while the graph gives 16: Keras builds from build_config while
    # deserialising, before the graph is wired, so that allocation is counted too.
    lying = _sequential(_input("in", [None, 16]), _layer("Dense", "d", units=1000, build=[None, 1_000_000]))
    with pytest.raises(ModelFileError, match="up to 1,000,001,000 weights"):
        check_model_config(lying)
    # A build_config on a layer that is never called still builds it.
    orphan = _functional([_input("in", [None, 4], True),
                          _layer("Dense", "out", units=2, nodes=[[_tensor("in")]]),
                          _layer("Dense", "orphan", units=1000, build=[None, 900_000], nodes=[])],
                         [["in", 0, 0]], [["out", 0, 0]])
    with pytest.raises(ModelFileError, match="Dense layer 'orphan' alone up to 900,001,000"):
        check_model_config(orphan)


def test_functional_graph_is_followed_by_layer_names_not_by_written_shapes():
    # Tensor shapes written in the config claim 4 values everywhere; the graph gives 1,000,000.
    layers = [_input("img", [None, 1000, 1000], True),
              _layer("Flatten", "flat", nodes=[[_tensor("img", (None, 4, 1))]]),
              _layer("Dense", "d", units=2200, nodes=[[_tensor("flat", (None, 4))]])]
    with pytest.raises(ModelFileError, match=r"up to 2,200,002,200 weights \(Dense layer 'd' alone"):
        check_model_config(_functional(layers, [["img", 0, 0]], [["d", 0, 0]]))
    # A shared layer is bounded by its largest call; a nested Sequential without an InputLayer is built
    # by its call (so from the outer graph); merges, wrappers and multi-output layers are followed.
    inner = _sequential(_layer("Dense", "inner_d", units=5))
    inner.update(name="inner", inbound_nodes=[{"args": [_tensor("cat")], "kwargs": {}}])
    inner["config"]["name"] = "inner"
    layers = [_input("a", [None, 3], True), _input("b", [None, 7], True),
              _layer("Dense", "shared", units=2, nodes=[[_tensor("a")], [_tensor("shared")]]),
              _layer("Concatenate", "cat", nodes=[[[_tensor("shared", node=1), _tensor("b")]]]),
              inner,
              _layer("RepeatVector", "rep", n=6, nodes=[[_tensor("inner")]]),
              _layer("LSTM", "lstm", units=4, return_state=True, nodes=[[_tensor("rep")]]),
              _layer("Add", "add", nodes=[[[_tensor("lstm", index=0), _tensor("lstm", index=2)]]])]
    summary = check_model_config(_functional(layers, [["a", 0, 0], ["b", 0, 0]], [["add", 0, 0]]))
    shared = 3 * 2 + 2  # built by its first call (3 inputs); the second call (2 inputs) allocates nothing
    lstm = 4 * 4 * (5 + 4) + 4 * 4
    assert summary["params_estimate"] == shared + (9 * 5 + 5) + lstm


def test_sizes_the_graph_leaves_unknown_are_refused_not_assumed():
    with pytest.raises(ModelFileError, match="declares no input shape"):  # no InputLayer, no input_shape
        check_model_config(_sequential(_layer("Dense", "d", units=10)))
    with pytest.raises(ModelFileError, match=r"cannot bound the weights of Dense layer 'd': axis -1 of input "
                                             r"shape \(None, None\) is unknown; refusing rather than guessing"):
        check_model_config(_sequential(_input("in", [None, None, 8]), _layer("Flatten", "f"),
                                       _layer("Dense", "d", units=10)))
    with pytest.raises(ModelFileError, match="declares no shape"):
        check_model_config(_sequential(_layer("InputLayer", "in"), _layer("Dense", "d", units=1)))
    # The older ways of declaring the input are followed as Keras follows them.
    legacy = _sequential(_layer("Dense", "d", units=100, input_shape=[900_000]))
    with pytest.raises(ModelFileError, match="up to 90,000,100 weights"):
        check_model_config(legacy)
    declared = _sequential(_layer("Dense", "d", units=100), build_input_shape=[None, 900_000])
    with pytest.raises(ModelFileError, match="up to 90,000,100 weights"):
        check_model_config(declared)
    free = _functional([_input("in", [None, 4], True),
                        _layer("Dense", "d", units=100, nodes=[[{"class_name": "__keras_tensor__", "config": {
                            "shape": [None, 900_000], "dtype": "float32", "keras_history": None}}]])],
                       [["in", 0, 0]], [["d", 0, 0]])  # a tensor with no history: Keras uses its shape
    with pytest.raises(ModelFileError, match="up to 90,000,100 weights"):
        check_model_config(free)


@pytest.mark.parametrize("config, match", [
    (_sequential(_input("in", [None, 64, 64, 3]), _layer("UpSampling2D", "up", size=[500, 500])),
     r"UpSampling2D layer 'up' outputs \(None, 32000, 32000, 3\) = 3,072,000,000 values per sample; the cap "
     r"is 10,000,000"),
    (_sequential(_input("in", [None, 100]), _layer("Dense", "d", units=10, lora_rank=1_000_000)),
     "up to 110,001,010 weights"),  # LoRA adapters: rank x (inputs + units)
    (_sequential(_input("in", [100_000, 10, 8]), _layer("LSTM", "l", units=500, stateful=True)),
     "up to 101,018,000 weights"),  # a stateful LSTM keeps 2 states per sample of its fixed batch
    (_sequential(_input("in", [None, 16]), _layer("Dense", "d", units=10, dtype="float64")),
     "dtype 'float64' is not accepted; allowed: float32"),
    (_sequential(_input("in", [None, 16]), _layer("Dense", "d", units=10, dtype={
        "module": "keras", "class_name": "DTypePolicy", "registered_name": None,
        "config": {"name": "int8_from_float32"}})),
     "dtype policy 'int8_from_float32' is not accepted"),
    (_functional([_input("in", [None, 4], True),
                  _layer("Dense", "a", units=2, nodes=[[_tensor("b")]]),
                  _layer("Dense", "b", units=2, nodes=[[_tensor("a")]])], [["in", 0, 0]], [["b", 0, 0]]),
     "the graph has loops or refers to missing nodes"),
    (_functional([_input("in", [None, 4], True), _layer("Dense", "a", units=2, nodes=[[_tensor("ghost")]])],
                 [["in", 0, 0]], [["a", 0, 0]]),
     "refers to layer 'ghost', which the model does not have"),
    (_functional([_input("in", [None, 4], True),
                  {**_sequential(_input("i2", [None, 4]), _layer("Dense", "d", units=2)), "name": "nested",
                   "inbound_nodes": [{"args": [_tensor("in")], "kwargs": {}}],
                   "compile_config": {"optimizer": "adam"}}],
                 [["in", 0, 0]], [["nested", 0, 0]]),
     "nested model saved compiled"),
    (_functional([_input("in", [None, 4], True), _layer("Dense", "out", units=2, nodes=[[_tensor("in")]]),
                  {**_sequential(_input("i2", [None, 900_000]), _layer("Dense", "d", units=100)),
                   "name": "orphan", "inbound_nodes": []}],
                 [["in", 0, 0]], [["out", 0, 0]]),
     "up to 90,000,110 weights"),  # never called, but a Sequential with an InputLayer is built on loading
])
def test_graph_tricks_are_refused_with_a_message(config, match):
    with pytest.raises(ModelFileError, match=match):
        check_model_config(config)


# ---- every layer type against Keras, and every preset ---------------------------------------------------


def _layer_zoo():
    """Small models covering every weight-bearing layer type on the allow-list, and most of the others."""
    import keras
    from keras import layers as L

    def seq(name, shape, *layers):
        return keras.Sequential([keras.Input(shape), *layers], name=name)

    zoo = [
        seq("dense", (6, 5, 3), L.Flatten(), L.Dense(7, use_bias=False), L.Dense(3, lora_rank=2)),
        seq("conv1d", (20, 4), L.Conv1D(5, 3, strides=2, padding="same"), L.SeparableConv1D(6, 3, depth_multiplier=2),
            L.DepthwiseConv1D(3), L.Conv1DTranspose(4, 3, strides=2), L.MaxPooling1D(2), L.UpSampling1D(3),
            L.ZeroPadding1D((1, 2)), L.Cropping1D(1), L.GlobalAveragePooling1D(), L.Dense(2)),
        seq("conv2d", (17, 15, 3), L.Conv2D(8, (3, 5), strides=(2, 1)), L.BatchNormalization(),
            L.SeparableConv2D(9, 3, padding="same"), L.DepthwiseConv2D(3, depth_multiplier=2, use_bias=False),
            L.Conv2DTranspose(5, 3, strides=2, output_padding=1), L.AveragePooling2D(3, strides=2, padding="same"),
            L.ZeroPadding2D(((1, 0), (2, 1))), L.Cropping2D(((0, 1), (1, 1))), L.UpSampling2D((2, 3)),
            L.PReLU(shared_axes=[1, 2]), L.LayerNormalization(axis=[-1]), L.GroupNormalization(groups=5),
            L.UnitNormalization(), L.SpatialDropout2D(0.1), L.GlobalMaxPooling2D(keepdims=True), L.Flatten(),
            L.Dense(3)),
        seq("conv3d", (6, 7, 8, 2), L.Conv3D(4, 3), L.Conv3DTranspose(3, 2, strides=2), L.MaxPooling3D(2),
            L.ZeroPadding3D(1), L.Cropping3D(1), L.UpSampling3D(2), L.GlobalAveragePooling3D(), L.Dense(2)),
        seq("channels_first", (3, 12, 10), L.Conv2D(4, 3, data_format="channels_first"),
            L.MaxPooling2D(2, data_format="channels_first"), L.BatchNormalization(axis=1),
            L.Flatten(data_format="channels_first"), L.Dense(2)),
        seq("preprocessing", (20, 24, 3), L.Rescaling(1 / 255), L.Resizing(16, 18), L.CenterCrop(12, 14),
            L.RandomCrop(10, 10), L.RandomFlip(), L.RandomRotation(0.1), L.RandomZoom(0.1),
            L.RandomTranslation(0.1, 0.1), L.RandomContrast(0.1), L.RandomBrightness(0.1), L.Identity(),
            L.Normalization(), L.Flatten(), L.Dense(3)),
        seq("reshape", (4, 6), L.Reshape((3, -1)), L.Permute((2, 1)), L.Flatten(), L.RepeatVector(3), L.Masking(),
            L.GaussianNoise(0.1), L.GaussianDropout(0.1), L.AlphaDropout(0.1), L.ActivityRegularization(), L.ReLU(),
            L.LeakyReLU(), L.ELU(), L.Softmax(), L.Activation("tanh"), L.Dense(2)),
        seq("rnn", (7, 5), L.LSTM(6, return_sequences=True), L.GRU(4, return_sequences=True),
            L.SimpleRNN(3, return_sequences=True), L.Bidirectional(L.LSTM(2, return_sequences=True)),
            L.Bidirectional(L.GRU(3), merge_mode="sum"), L.Dense(2)),
        seq("time_distributed", (5, 8, 8, 1), L.TimeDistributed(L.Conv2D(3, 3)), L.TimeDistributed(L.Flatten()),
            L.TimeDistributed(L.Dense(4)), L.GRU(3, reset_after=False), L.Dense(2)),
        seq("embedding", (10,), L.Embedding(50, 8), L.Conv1D(4, 3), L.GlobalMaxPooling1D(), L.Dense(2)),
        seq("einsum", (5, 6), L.EinsumDense("abc,cd->abd", output_shape=(5, 7), bias_axes="d"),
            L.EinsumDense("...b,bc->...c", output_shape=4, bias_axes="c"), L.Flatten(), L.Dense(2)),
    ]
    x = keras.Input((8, 6), name="seq_in")
    a = L.MultiHeadAttention(2, 3, name="mha")(x, x)
    b = L.MultiHeadAttention(3, 2, value_dim=4, output_shape=5, name="mha2")(x, a, key=x)
    c = L.Attention(use_scale=True, score_mode="concat")([a, x])
    d = L.AdditiveAttention()([x, x])
    e = L.Add()([L.Dense(6)(L.Concatenate()([a, b, c, d])), x])
    g = L.Flatten()(L.Dot(axes=(2, 2))([e, x]))
    m = L.Minimum()([L.Maximum()([L.Average()([L.Subtract()([g, g]), g]), g]), L.Multiply()([g, g])])
    zoo.append(keras.Model(x, L.Dense(3)(m), name="attention"))
    inner = keras.Sequential([keras.Input((6,)), L.Dense(5), L.Dense(4)], name="inner_seq")
    fin = keras.Input((4,))
    inner_f = keras.Model(fin, L.Dense(3)(fin), name="inner_fun")
    shared = L.Dense(4, name="shared")
    i1, i2 = keras.Input((6,), name="i1"), keras.Input((6,), name="i2")
    y = L.Concatenate()([inner_f(inner(i1)), inner_f(inner(i2)), shared(i1), shared(i2)])
    zoo.append(keras.Model([i1, i2], L.Dense(2)(y), name="nested_shared"))
    ri = keras.Input((5, 3))
    seqs, h, c = L.LSTM(4, return_sequences=True, return_state=True)(ri)
    z = L.GRU(4)(seqs, initial_state=h)
    zoo.append(keras.Model(ri, L.Dense(2)(L.Concatenate()([z, c])), name="rnn_states"))
    return zoo


def _strip_optional(config):
    """The config with every build_config removed and every written tensor shape blanked."""
    if isinstance(config, list):
        return [_strip_optional(v) for v in config]
    if not isinstance(config, dict):
        return config
    if config.get("class_name") == "__keras_tensor__":
        return {**config, "config": {**config["config"], "shape": [None]}}
    return {k: _strip_optional(v) for k, v in config.items() if k != "build_config"}


@pytest.mark.slow
def test_the_bound_is_exactly_what_keras_allocates_for_every_layer_type():
    import keras

    for model in _layer_zoo():
        config = json.loads(json.dumps(keras.saving.serialize_keras_object(model)))
        real = model.count_params()
        assert check_model_config(config)["params_estimate"] == real, model.name
        assert check_model_config(_strip_optional(config))["params_estimate"] == real, model.name


@pytest.mark.slow
def test_every_preset_saved_by_build_model_passes_the_check_and_the_child(tmp_path, no_downloads):
    from core.datasets import Dataset
    from core.models import build_model
    from core.specs import available_presets, preset

    rng = np.random.default_rng(0)
    cifar_like = Dataset("cifar_like", rng.random((20, 32, 32, 3), dtype=np.float32), np.arange(20) % 10,
                         tuple(str(i) for i in range(10)), "image")
    seen = set()
    for ds in (load_builtin("digits"), load_builtin("iris"), cifar_like):
        for name in available_presets(ds):
            model = build_model(preset(name, ds), ds)
            path = tmp_path / f"{ds.name}-{name.replace(' ', '_')}.keras"
            model.save(path)
            summary = check_model_file(path)
            assert summary["params_estimate"] == model.count_params(), (ds.name, name)
            seen.add(name)
    assert seen == {"Article CNN", "Small CNN", "Stronger CNN", "Transfer learning", "Small MLP"}
    # The heaviest preset (a nested MobileNetV2, resized and rescaled inputs) through the child too.
    loaded = load_model_bytes(path.read_bytes())
    assert loaded.count_params() == model.count_params()


# ---- the checking child: memory and time limits ---------------------------------------------------------


def _rss() -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmRSS:"))


@pytest.fixture
def server_never_loads(monkeypatch):
    """Should the child ever let a hostile file through, fail here instead of allocating gigabytes."""
    import core.model_files as model_files

    def refuse(path):
        raise AssertionError(f"the server was about to load {path}, which the child should have refused")

    monkeypatch.setattr(model_files, "_keras_load", refuse)  # the server's own load


def _turn_is_free(model_check) -> bool:
    """Whether another thread (another visitor) could take the checking turn now."""
    import threading

    free = []

    def probe():
        if model_check._TURN.acquire(blocking=False):
            model_check._TURN.release()
            free.append(True)

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    return bool(free)


def _dense_stack(path, n, width):
    config = _sequential(_input("in", [None, width]),
                         *[_layer("Dense", f"d{i}", units=width) for i in range(n)])
    return _keras_file(path, config)


@pytest.mark.slow
def test_a_bypass_costs_the_child_not_the_server(tmp_path, monkeypatch, server_never_loads):
    """With the static caps raised (a bypass simulated), the child meets the 8.8 GB allocation; the
    server gets a message, never loads the file, and is free for the next check."""
    import core.model_check as model_check
    import core.model_files as model_files

    monkeypatch.setattr(model_files, "MAX_PARAMS", 10**12)  # passed on to the child as well
    data = _keras_file(tmp_path / "bypass.keras", _big_flatten_dense()).read_bytes()
    before = _rss()
    with pytest.raises(ModelFileError, match=r"^the model file was refused: checking it needed more than "
                                             r"1\.5 GB of memory"):
        load_model_bytes(data)
    assert _rss() - before < 100_000_000  # this process never allocated the weights
    with pytest.raises(ModelFileError, match="needed more than 1.5 GB"):  # remembered: no second child
        load_model_bytes(data)
    assert _turn_is_free(model_check)  # the next upload is checked at once


@pytest.mark.slow
def test_a_weights_file_that_declares_gigabytes_is_refused_by_the_child(tmp_path, good_model_file,
                                                                       server_never_loads):
    """A real bypass of the static check: config.json is the good model's, but model.weights.h5 declares a
    3.7 GB kernel stored as nothing (HDF5 fill value), under Keras' own 4 GiB bomb floor. Reading it would
    take the server's memory; the child meets it under its limit instead."""
    import h5py

    with zipfile.ZipFile(good_model_file) as zin:
        weights = io.BytesIO(zin.read("model.weights.h5"))
        with h5py.File(weights, "r+") as h5:
            kernel = next(n for n in ("layers/dense/vars/0", "layers/dense_1/vars/0") if n in h5)
            del h5[kernel]
            h5.create_dataset(kernel, shape=(1_000_000_000,), dtype="float32", chunks=(1_000_000,), fillvalue=1.0)
        bomb = tmp_path / "weights_bomb.keras"
        with zipfile.ZipFile(bomb, "w") as zout:
            for item in zin.infolist():
                zout.writestr(item, weights.getvalue() if item.filename == "model.weights.h5" else
                              zin.read(item.filename))
    assert bomb.stat().st_size < 100_000
    assert check_model_file(bomb)["params_estimate"] == (9 * 2 + 2) + (6 * 6 * 2 + 1) * 10  # the config is fine
    before = _rss()
    with pytest.raises(ModelFileError, match=r"^the model file was refused: checking it needed more than "
                                             r"1\.5 GB of memory"):
        load_model_bytes(bomb.read_bytes())
    assert _rss() - before < 100_000_000


@pytest.mark.slow
def test_the_child_is_killed_when_its_memory_grows_past_the_cap(tmp_path, monkeypatch, server_never_loads):
    """8 Dense layers of 4096x4096 (537 MB) stay under RLIMIT_DATA: the parent's RSS watch stops the child."""
    import core.model_check as model_check
    import core.model_files as model_files

    monkeypatch.setattr(model_files, "MAX_PARAMS", 10**9)
    monkeypatch.setattr(model_check, "CHECK_MEMORY_BYTES", 1_100_000_000)
    path = _dense_stack(tmp_path / "stack.keras", 8, 4096)
    with pytest.raises(ModelFileError, match=r"checking it needed more than 1\.1 GB of memory \(the check was "
                                             r"stopped at 1\.[1-9] GB\)"):
        load_model_file(path)


@pytest.mark.slow
def test_the_child_is_killed_past_the_time_limit(monkeypatch, good_model_file):
    import time

    import core.model_check as model_check

    monkeypatch.setattr(model_check, "CHECK_SECONDS", 1.0)
    started = time.monotonic()
    with pytest.raises(ModelFileError, match=r"^the model file was refused: checking it took longer than 1 s$"):
        load_model_file(good_model_file)
    assert time.monotonic() - started < 5


def test_one_check_at_a_time(tmp_path):
    import threading

    from core import model_check

    path = _keras_file(tmp_path / "small.keras", _sequential(_input("in", [None, 4]), _layer("Dense", "d", units=2)))
    holding, done = threading.Event(), threading.Event()

    def other_visitor():  # holds the turn, as a check and load in progress would
        with model_check.checking_turn():
            holding.set()
            done.wait(10)

    thread = threading.Thread(target=other_visitor)
    thread.start()
    try:
        assert holding.wait(10)
        with pytest.raises(ModelFileError, match="another model file is being checked and did not finish "
                                                 "within 0 s"):
            model_check.check_in_child(path, seconds=0.2)
    finally:
        done.set()
        thread.join()


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
        load_model_file(good_model_file, isolate=False)  # this process's own guard (the child's is the same)
    assert keras.config.floatx() == "float32"


def test_a_run_imported_from_a_zip_has_its_model_loaded_in_the_child_first(tmp_path, monkeypatch):
    """The server's own runs skip the child; a run whose model.keras a visitor supplied (config "imported")
    goes through it, like any uploaded model."""
    from core import model_files
    from core.runs import RunStore

    store = RunStore(tmp_path / "runs")
    own = store.create_run({"dataset": {"name": "digits"}})
    imported = store.create_run({"dataset": {"name": "digits"}, "imported": {"from": "runs.zip"}})
    for run_id in (own, imported):
        store.model_path(run_id).write_bytes(b"model")
    isolated = {}
    monkeypatch.setattr(model_files, "load_model_file",
                        lambda path, isolate=True: isolated.setdefault(path.parent.name, isolate))
    model_files.load_run_model(store, own)
    model_files.load_run_model(store, imported)
    assert isolated == {own: False, imported: True}
