"""Model specs without TensorFlow: shape arithmetic, presets, validation messages, hostile JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.datasets import Dataset, load_builtin
from core.settings import MAX_PARAMS, MAX_SPEC_JSON_BYTES
from core.specs import (
    ACTIVATIONS,
    INITIALIZERS,
    LAYER_TYPES,
    LayerSpec,
    ModelSpec,
    SpecError,
    analyse_spec,
    available_presets,
    default_preset_name,
    describe_layer,
    layer_types_for,
    make_layer,
    preset,
    preset_caption,
    validate_spec,
)

BUILTINS = ("digits", "iris", "wine", "breast_cancer")


def _images(h: int, w: int, c: int, classes: int = 10, name: str = "synthetic") -> Dataset:
    rng = np.random.default_rng(0)
    return Dataset(name, rng.random((20, h, w, c), dtype=np.float32), np.arange(20) % classes,
                   tuple(str(i) for i in range(classes)), "image")


@pytest.fixture(scope="module")
def datasets() -> dict[str, Dataset]:
    return {**{n: load_builtin(n) for n in BUILTINS}, "cifar_like": _images(32, 32, 3)}


def _spec(*layers: tuple) -> ModelSpec:
    return ModelSpec(tuple(make_layer(t, **p) for t, p in layers))


def test_article_cnn_shapes_and_parameters_match_the_article():
    cifar = _images(32, 32, 3)
    spec = preset("Article CNN", cifar)
    assert spec.name == "Article CNN"
    a = analyse_spec(spec, cifar.input_shape, cifar.n_classes, cifar.kind)
    # The article's model.summary(): valid 3x3 convs and 2x2 pools on 32x32x3, then Dense 64 and Dense 10.
    assert [r.output_shape for r in a.rows] == [(30, 30, 32), (15, 15, 32), (13, 13, 64), (6, 6, 64),
                                               (4, 4, 64), (1024,), (64,), (10,)]
    assert [r.params for r in a.rows] == [896, 0, 18496, 0, 36928, 0, 65600, 650]
    assert a.total_params == a.trainable_params == 122_570
    assert a.ok and not a.warnings


def test_article_cnn_is_adapted_for_8x8_digits_with_a_note(datasets):
    digits = datasets["digits"]
    original = ModelSpec(preset("Article CNN", datasets["cifar_like"]).layers)
    errors = validate_spec(original, digits.input_shape, digits.n_classes, digits.kind)
    assert errors and "shrinks the feature map below 1x1" in errors[0] and "8x8 input" in errors[0]
    adapted = preset("Article CNN", digits)
    assert adapted.name == "Article CNN (adapted)"
    assert any("padding='same'" in n for n in adapted.notes)
    # Same layer types and filters; only the convolution padding changed.
    assert [(ly.type, ly.params.get("filters")) for ly in adapted.layers] == \
        [(ly.type, ly.params.get("filters")) for ly in original.layers]
    assert {ly.params["padding"] for ly in adapted.layers if ly.type == "Conv2D"} == {"same"}
    assert not validate_spec(adapted, digits.input_shape, digits.n_classes, digits.kind)


def test_every_preset_fits_every_dataset_it_claims_and_round_trips_json(datasets):
    seen = set()
    for ds in datasets.values():
        names = available_presets(ds)
        assert default_preset_name(ds) in names
        for name in names:
            spec = preset(name, ds)
            assert not validate_spec(spec, ds.input_shape, ds.n_classes, ds.kind), (name, ds.name)
            assert ModelSpec.from_json(spec.to_json()) == spec
            assert ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
            seen.add(name)
    assert seen == {"Article CNN", "Small CNN", "Stronger CNN", "Transfer learning", "Small MLP"}
    assert default_preset_name(datasets["digits"]) == "Small CNN"
    assert default_preset_name(datasets["iris"]) == "Small MLP"
    assert default_preset_name(datasets["cifar_like"]) == "Article CNN"


def test_image_presets_refuse_tabular_data(datasets):
    assert available_presets(datasets["iris"]) == ["Small MLP"]
    with pytest.raises(SpecError, match="needs image data; iris is tabular"):
        preset("Article CNN", datasets["iris"])
    assert "Conv2D" not in layer_types_for("tabular") and "RandomFlip" in layer_types_for("image")


def test_augmentation_suits_the_data(datasets):
    digits = [ly.type for ly in preset("Stronger CNN", datasets["digits"]).layers]
    photos = [ly.type for ly in preset("Stronger CNN", datasets["cifar_like"]).layers]
    assert "RandomFlip" not in digits and "RandomRotation" in digits  # a mirrored digit is another symbol
    assert "RandomFlip" in photos
    assert any("no RandomFlip" in n for n in preset("Stronger CNN", datasets["digits"]).notes)


def test_stronger_cnn_adapts_to_image_size_and_number_of_images(datasets):
    """What won at equal training time on real 28x28 MNIST (README, "Presets on real data"): from 10,000 images
    on, on images the article's valid layout fits, the Article CNN's layout with a 16-filter first convolution,
    no augmentation, no BatchNorm and no Dropout. Fewer images get augmentation, BatchNorm and Dropout; 8x8
    digits keep the layout that won there."""
    def types(spec: ModelSpec) -> list[str]:
        return [ly.type for ly in spec.layers]

    many = Dataset("mnist_like", np.zeros((10_000, 28, 28, 1), np.uint8), np.arange(10_000) % 10,
                   tuple("0123456789"), "image")
    few = Dataset("mnist_like", many.x[:9_999], many.y[:9_999], many.class_names, "image")
    large = preset("Stronger CNN", many)
    article = preset("Article CNN", many)
    assert types(large) == types(article) == ["Conv2D", "MaxPooling2D"] * 2 + ["Conv2D", "Flatten", "Dense"]
    convs = [ly.params for ly in large.layers if ly.type == "Conv2D"]
    assert [p["filters"] for p in convs] == [16, 64, 64] and {p["padding"] for p in convs} == {"valid"}
    assert [p["filters"] for p in (ly.params for ly in article.layers if ly.type == "Conv2D")] == [32, 64, 64]
    assert any("16 filters instead of 32" in n and "28x28" in n and "10,000" in n for n in large.notes)
    # 28x28 -> 26 -> 13 -> 11 -> 5 -> 3: Flatten gives 3*3*64 = 576; convs 9*16+16 = 160, 9*16*64+64 = 9,280,
    # 9*64*64+64 = 36,928; Dense 576*64+64 = 36,928; head 64*10+10 = 650
    assert analyse_spec(large, many.input_shape, 10, "image").total_params == \
        160 + 9_280 + 36_928 + 36_928 + 650 == 83_946
    assert analyse_spec(article, many.input_shape, 10, "image").total_params == 93_322
    small_data = preset("Stronger CNN", few)
    assert types(small_data)[:3] == ["RandomRotation", "RandomZoom", "RandomTranslation"]
    assert types(small_data).count("Dropout") == 3 and "GlobalAveragePooling2D" in types(small_data)
    assert any("padding='valid'" in n for n in small_data.notes)
    colour = Dataset("cifar_like", np.zeros((10_000, 32, 32, 3), np.uint8), np.arange(10_000) % 10,
                     tuple("0123456789"), "image")
    # 32x32x3 -> 30 -> 15 -> 13 -> 6 -> 4: Flatten 1,024; conv1 27*16+16 = 448, Dense 1,024*64+64 = 65,600
    a = analyse_spec(preset("Stronger CNN", colour), colour.input_shape, 10, "image")
    assert a.ok and a.total_params == 448 + 9_280 + 36_928 + 65_600 + 650 == 112_906 < 122_570
    digits = preset("Stronger CNN", datasets["digits"])
    assert types(digits)[3:7] == ["Conv2D", "BatchNormalization", "Activation", "MaxPooling2D"]
    assert {ly.params["padding"] for ly in digits.layers if ly.type == "Conv2D"} == {"same"}
    assert not any("padding='valid'" in n or "No augmentation" in n or "16 filters" in n for n in digits.notes)


def test_transfer_preset_declares_a_frozen_small_backbone(datasets):
    spec = preset("Transfer learning", datasets["digits"])
    backbone = spec.layers[0]
    assert backbone.type == "Backbone" and backbone.params["trainable"] is False
    assert backbone.params["alpha"] == 0.35 and backbone.params["weights"] == "imagenet"
    assert any("grey channel repeated" in n and "8x8 up to 32x32" in n for n in spec.notes)


@pytest.mark.parametrize(("layers", "shape", "kind", "expected"), [
    ((("Conv2D", {}),), (4,), "tabular", "layer 1 Conv2D needs image input; the dataset is tabular"),
    ((("Dense", {}), ("Dense", {}), ("MaxPooling2D", {})), (13,), "tabular",
     "layer 3 MaxPooling2D needs image input; the dataset is tabular"),
    ((("Conv2D", {}), ("Dense", {})), (8, 8, 1), "image",
     "layer 2 Dense gets a 2-D feature map (6x6x32) directly; a Dense layer needs a flat vector"),
    ((("Dense", {}),), (8, 8, 1), "image", "layer 1 Dense gets the input images (8x8x1) directly"),
    ((("MaxPooling2D", {}),) * 4, (8, 8, 1), "image",
     "layer 4 MaxPooling2D shrinks the feature map below 1x1: a 2x2 pooling window does not fit the 1x1 map"),
    ((("Conv2D", {"kernel_size": 9}), ("Flatten", {})), (8, 8, 1), "image",
     "layer 1 Conv2D shrinks the feature map below 1x1: a 9x9 'valid' kernel does not fit the 8x8 map"),
    ((("Flatten", {}), ("Conv2D", {})), (8, 8, 1), "image",
     "layer 2 Conv2D needs a 2-D feature map (height x width x channels) but gets a flat vector of 64 values "
     "(flattened by layer 1)"),
    ((("Conv2D", {}),), (8, 8, 1), "image", "the model ends on a 6x6x32 feature map"),
    ((("Flatten", {}), ("Dense", {"units": 16384}), ("Dense", {"units": 16384})), (32, 32, 3), "image",
     f"parameters; at most {MAX_PARAMS:,} allowed"),
    ((("Backbone", {}),), (8, 8, 4), "image", "needs grey (1 channel) or RGB (3 channels) images, got 4"),
])
def test_invalid_specs_are_explained(layers, shape, kind, expected):
    errors = validate_spec(_spec(*layers), shape, 3, kind)
    assert any(expected in e for e in errors), errors


# One row per layer type: (type, settings, input shape) -> (output shape, parameters, trainable, FLOPs).
LAYER_ROWS = [
    ("Dense", {"units": 5}, (4,), ((5,), 25, 25, 40)),
    ("Conv2D", {"filters": 4, "kernel_size": 3, "strides": 2, "padding": "same"}, (8, 8, 1), ((4, 4, 4), 40, 40, 1152)),
    ("MaxPooling2D", {"pool_size": 2}, (7, 7, 1), ((3, 3, 1), 0, 0, 36)),
    ("AveragePooling2D", {"pool_size": 3, "padding": "same"}, (8, 8, 2), ((3, 3, 2), 0, 0, 162)),
    ("GlobalAveragePooling2D", {}, (4, 4, 3), ((3,), 0, 0, 48)),
    ("Flatten", {}, (4, 4, 3), ((48,), 0, 0, 0)),
    ("Dropout", {}, (10,), ((10,), 0, 0, 0)),
    ("BatchNormalization", {}, (10,), ((10,), 40, 20, 20)),
    ("Activation", {"activation": "tanh"}, (10,), ((10,), 0, 0, 10)),
    ("LeakyReLU", {}, (10,), ((10,), 0, 0, 10)),
    ("RandomFlip", {}, (32, 32, 3), ((32, 32, 3), 0, 0, 0)),
    ("RandomRotation", {}, (8, 8, 1), ((8, 8, 1), 0, 0, 0)),
    ("RandomZoom", {}, (8, 8, 1), ((8, 8, 1), 0, 0, 0)),
    ("RandomTranslation", {}, (8, 8, 1), ((8, 8, 1), 0, 0, 0)),
    ("Backbone", {"trainable": True}, (32, 32, 3), ((1280,), 410_208, 396_128, 2_408_163)),
]


@pytest.mark.parametrize(("type_", "params", "shape", "expected"), LAYER_ROWS, ids=[r[0] for r in LAYER_ROWS])
def test_each_layer_type_has_its_shape_and_count_rule(type_, params, shape, expected):
    kind = "image" if len(shape) == 3 else "tabular"
    row = analyse_spec(_spec((type_, params)), shape, 3, kind).rows[0]
    assert (row.output_shape, row.params, row.trainable, row.flops) == expected
    assert {r[0] for r in LAYER_ROWS} == set(LAYER_TYPES)


@pytest.mark.parametrize(("layers", "shape", "classes", "expected"), [
    ((("Conv2D", {"kernel_size": 1, "strides": 4}), ("Conv2D", {})), (8, 8, 1), 3,
     "the 8x8 input has been through 1 shrinking layer (stride-4 convolution)"),
    ((("Conv2D", {"filters": 2048, "kernel_size": 1, "padding": "same"}), ("GlobalAveragePooling2D", {})),
     (64, 64, 3), 3, "layer 1 Conv2D outputs 64x64x2048 = 8,388,608 values per example; at most 8,000,000 allowed"),
    ((("Dense", {}),), (4,), 1, "the dataset needs at least 2 classes, got 1"),
    ((("Dropout", {}),) * 65, (4,), 3, "a model may have at most 64 layers, got 65"),
])
def test_caps_and_shrinking_strides_are_explained(layers, shape, classes, expected):
    errors = validate_spec(_spec(*layers), shape, classes, "image" if len(shape) == 3 else "tabular")
    assert any(expected in e for e in errors), errors


@pytest.mark.parametrize(("layers", "shape", "expected"), [
    ((("Conv2D", {"padding": "same"}), ("RandomZoom", {}), ("Flatten", {})), (8, 8, 1),
     "layer 2 RandomZoom comes after trainable layers"),
    ((("Backbone", {}),), (64, 64, 3), "layer 1 Backbone resizes the 64x64 input down to 32x32"),
    ((("Conv2D", {"padding": "same", "filters": 3}), ("Backbone", {})), (32, 32, 3),
     "layer 2 Backbone normally comes first (after augmentation)"),
])
def test_layers_in_odd_places_are_warned_about(layers, shape, expected):
    a = analyse_spec(_spec(*layers), shape, 3, "image")
    assert a.ok and any(expected in w for w in a.warnings), a.warnings


def test_shrink_message_counts_what_shrank_the_map():
    spec = _spec(("Conv2D", {}), ("MaxPooling2D", {}), ("Conv2D", {}), ("MaxPooling2D", {}), ("Flatten", {}))
    (error,) = validate_spec(spec, (8, 8, 1), 10, "image")
    assert "the 8x8 input has been through 3 shrinking layers" in error
    assert "(3x3 valid convolution, 2x2 pooling, 3x3 valid convolution)" in error


def test_warnings_do_not_block_the_build():
    spec = _spec(("Flatten", {}), ("Dense", {"activation": "softmax"}))
    a = analyse_spec(spec, (8, 8, 1), 10, "image")
    assert a.ok and any("already ends in softmax" in w for w in a.warnings)
    flip = analyse_spec(_spec(("RandomFlip", {}), ("Flatten", {})), (8, 8, 1), 10, "image")
    assert flip.ok and any("mirrored image" in w for w in flip.warnings)


def test_layer_specs_written_in_code_are_checked_too():
    spec = ModelSpec((LayerSpec("Dense", {"units": 0}),))
    assert validate_spec(spec, (4,), 3, "tabular") == ["layer 1 Dense: units must be between 1 and 16,384, got 0"]
    short = ModelSpec((LayerSpec("Dense", {"units": 5}),))  # other settings take their defaults
    assert analyse_spec(short, (4,), 3, "tabular").total_params == 4 * 5 + 5 + 5 * 3 + 3


@pytest.mark.parametrize(("text", "expected"), [
    ('{"layers": [{"type": "Lambda", "params": {}}]}', "unknown layer type 'Lambda'"),
    ('{"layers": [{"type": "Dense", "params": {"units": 100000000}}]}',
     "units must be between 1 and 16,384, got 100,000,000"),
    ('{"layers": [{"type": "Dense", "params": {"units": 1e300}}]}', "units must be between 1 and 16,384"),
    ('{"layers": [{"type": "Dense", "params": {"units": NaN}}]}', "NaN, which is not a valid number"),
    ('{"layers": [{"type": "Dense", "params": {"units": true}}]}', "units must be a whole number, got True"),
    ('{"layers": [{"type": "Dense", "params": {"units": "64"}}]}', "units must be a whole number, got '64'"),
    ('{"layers": [{"type": "Dense", "params": {"function": "os.system"}}]}', "unknown setting 'function'"),
    ('{"layers": [{"type": "Dense", "params": {"activation": "exec"}}]}', "activation must be one of relu"),
    ('{"layers": [{"type": "Dropout", "params": {"rate": 1.5}}]}', "rate must be between 0.0 and 0.95"),
    ('{"layers": [], "name": "x"}', "a model needs 1 to 64 layers, got 0"),
    ('{"layers": [{"type": "Flatten"}], "module": "keras"}', "unknown field 'module'"),
    ('[1, 2]', "must be a JSON object, got list"),
    ('{"layers": [', "not valid JSON"),
    ('[' * 50_000 + ']' * 50_000, f"at most {MAX_SPEC_JSON_BYTES:,} allowed"),
    ('[' * 30_000 + ']' * 30_000, "nested too deeply"),
    (json.dumps({"layers": [{"type": "Flatten"}] * 65}), "1 to 64 layers, got 65"),
])
def test_hostile_json_is_refused_with_a_message(text, expected):
    with pytest.raises(SpecError, match=None) as info:
        ModelSpec.from_json(text)
    assert expected in str(info.value)


def test_from_json_fills_defaults_and_accepts_bytes():
    spec = ModelSpec.from_json(b'{"name": "mine", "layers": [{"type": "Dense", "params": {"units": 8}}]}')
    assert spec.name == "mine" and spec.layers[0].params == {
        "units": 8, "activation": "relu", "kernel_initializer": "glorot_uniform", "l1": 0.0, "l2": 0.0}


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1" * 5000, "-" + "9" * 40, "1e999999"],
                         ids=["1e400", "-1e400", "5000-digits", "-40-digits", "1e999999"])
@pytest.mark.parametrize("field", ["units", "rate"])
def test_from_json_overflowing_numbers_name_the_field(number, field):
    """1e400 parses to inf and a 5,000-digit integer exceeds int()'s limit inside json.loads: both must
    become a SpecError naming the layer and the field, never a traceback."""
    layer = "Dense" if field == "units" else "Dropout"
    text = '{"layers": [{"type": "LAYER", "params": {"FIELD": NUMBER}}]}'
    text = text.replace("LAYER", layer).replace("FIELD", field).replace("NUMBER", number)
    with pytest.raises(SpecError, match=rf"layer 1 {layer}: {field} must be") as err:
        ModelSpec.from_json(text)
    assert len(str(err.value)) < 300


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 10 ** 5000, -(10 ** 5000)],
                         ids=["inf", "nan", "10**5000", "-10**5000"])
def test_from_dict_refuses_non_finite_and_huge_python_numbers(value):
    with pytest.raises(SpecError, match="layer 1 Dense: units must be") as err:
        ModelSpec.from_dict({"layers": [{"type": "Dense", "params": {"units": value}}]})
    assert len(str(err.value)) < 300


def test_from_json_huge_numbers_elsewhere_get_messages():
    for text in ('{"name": 1e400, "layers": []}', '{"schema_version": ' + "7" * 5000 + ', "layers": []}'):
        with pytest.raises(SpecError):
            ModelSpec.from_json(text)


# ---------------------------------------------------------------- initializers, LeakyReLU, GELU (issue 11.5)


def test_a_spec_saved_before_initializers_existed_loads_as_it_built_then():
    """An old file has no kernel_initializer: it gets Keras' default, and the counts do not change."""
    old = {"schema_version": 1, "name": "old", "notes": [], "layers": [
        {"type": "Conv2D", "params": {"filters": 8, "kernel_size": 3, "strides": 1, "padding": "same",
                                      "activation": "relu", "l1": 0.0, "l2": 0.0}},
        {"type": "Flatten", "params": {}},
        {"type": "Dense", "params": {"units": 16, "activation": "relu", "l1": 0.0, "l2": 0.0}}]}
    spec = ModelSpec.from_json(json.dumps(old))
    assert [ly.params.get("kernel_initializer") for ly in spec.layers] == ["glorot_uniform", None, "glorot_uniform"]
    assert ModelSpec.from_json(spec.to_json()) == spec
    assert "init" not in describe_layer(spec.layers[0])  # the default is not worth a word
    a = analyse_spec(spec, (8, 8, 1), 10, "image")
    assert a.total_params == (9 * 8 + 8) + (512 * 16 + 16) + (16 * 10 + 10)


def test_initializer_activation_and_leaky_relu_are_offered_and_round_trip():
    assert {"glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_normal"} <= set(INITIALIZERS)
    assert {"relu", "leaky_relu", "gelu", "elu"} <= set(ACTIVATIONS)
    assert "LeakyReLU" in layer_types_for("tabular") and "LeakyReLU" in layer_types_for("image")
    spec = _spec(("Conv2D", {"kernel_initializer": "he_normal", "activation": "leaky_relu"}), ("Flatten", {}),
                 ("Dense", {"units": 32, "kernel_initializer": "he_uniform", "activation": "linear"}),
                 ("LeakyReLU", {"negative_slope": 0.05}), ("Dense", {"units": 8, "activation": "gelu"}))
    assert ModelSpec.from_json(spec.to_json()) == spec
    assert spec.layers[3].params == {"negative_slope": 0.05}
    assert make_layer("LeakyReLU").params == {"negative_slope": 0.2}  # = keras.activations.leaky_relu's slope
    assert describe_layer(spec.layers[0]) == "32 filters 3x3 valid leaky_relu he_normal init"
    assert describe_layer(spec.layers[3]) == "negative slope 0.05"


def test_initializers_and_activations_change_no_shape_or_count_but_leaky_relu_costs_flops():
    plain = _spec(("Flatten", {}), ("Dense", {"units": 32}), ("Dense", {"units": 8}))
    fancy = _spec(("Flatten", {}), ("Dense", {"units": 32, "kernel_initializer": "he_normal", "activation": "linear"}),
                  ("LeakyReLU", {"negative_slope": 0.1}),
                  ("Dense", {"units": 8, "kernel_initializer": "lecun_normal", "activation": "gelu"}))
    a, b = (analyse_spec(s, (8, 8, 1), 10, "image") for s in (plain, fancy))
    assert a.ok and b.ok and not b.warnings
    assert a.total_params == b.total_params == (64 * 32 + 32) + (32 * 8 + 8) + (8 * 10 + 10)
    leaky = b.rows[2]
    assert (leaky.type, leaky.output_shape, leaky.params, leaky.flops) == ("LeakyReLU", (32,), 0, 32)
    assert b.flops == a.flops + 32


@pytest.mark.parametrize(("text", "expected"), [
    ('{"layers": [{"type": "Dense", "params": {"kernel_initializer": "zeros"}}]}',
     "layer 1 Dense: kernel_initializer must be one of glorot_uniform, glorot_normal, he_uniform, he_normal, "
     "lecun_uniform, lecun_normal, got 'zeros'"),
    ('{"layers": [{"type": "Conv2D", "params": {"kernel_initializer": {"class_name": "Lambda"}}}]}',
     "kernel_initializer must be one of glorot_uniform"),
    ('{"layers": [{"type": "Dense", "params": {"activation": "LeakyReLU"}}]}',
     "activation must be one of relu, leaky_relu, elu, gelu, sigmoid, tanh, softmax, linear, got 'LeakyReLU'"),
    ('{"layers": [{"type": "LeakyReLU", "params": {"negative_slope": -0.1}}]}',
     "layer 1 LeakyReLU: negative_slope must be between 0.0 and 1.0, got -0.1"),
    ('{"layers": [{"type": "LeakyReLU", "params": {"alpha": 0.3}}]}',
     "layer 1 LeakyReLU: unknown setting 'alpha'; allowed: negative_slope"),
    ('{"layers": [{"type": "Flatten", "params": {"kernel_initializer": "he_normal"}}]}',
     "layer 1 Flatten: unknown setting 'kernel_initializer'; allowed: none"),
])
def test_unknown_initializers_and_activations_are_refused_with_the_allowed_list(text, expected):
    with pytest.raises(SpecError) as info:
        ModelSpec.from_json(text)
    assert expected in str(info.value)


@pytest.mark.parametrize(("before", "warned"), [
    ((("Dense", {"activation": "relu"}),), "layer 2 Dense ends in relu"),
    ((("Dense", {"activation": "sigmoid"}), ("Dropout", {})), "layer 2 Dense ends in sigmoid"),
    ((("Dense", {"activation": "linear"}), ("Activation", {"activation": "relu"})), "layer 3 Activation ends in relu"),
    ((("Dense", {"activation": "linear"}),), None),
    ((("Dense", {"activation": "relu"}), ("BatchNormalization", {})), None),  # BatchNorm makes negatives again
    ((("Dense", {"activation": "tanh"}),), None),
])
def test_leaky_relu_after_a_non_negative_output_is_called_useless(before, warned):
    spec = _spec(("Flatten", {}), *before, ("LeakyReLU", {}))
    a = analyse_spec(spec, (8, 8, 1), 10, "image")
    found = [w for w in a.warnings if "LeakyReLU only ever gets values ≥ 0" in w]
    assert a.ok
    if warned:
        assert len(found) == 1 and warned in found[0] and "activation to linear" in found[0], a.warnings
    else:
        assert not found, a.warnings


def test_article_cnn_caption_says_its_count_assumes_ten_classes():
    """Issue 11.8: a 3-class 32x32x3 upload showed 122,115 parameters under a caption saying 122,570."""
    three = _images(32, 32, 3, classes=3, name="upload: three")
    text = preset_caption("Article CNN", three)
    assert "122,570 parameters on 32x32x3 with the article's 10-class head" in text
    assert "On your data (upload: three: 32x32x3, 3 classes) it has 122,115 parameters" in text
    assert "a 3-class head instead of 10" in text
    assert analyse_spec(preset("Article CNN", three), (32, 32, 3), 3, "image").total_params == 122_115
    ten = preset_caption("Article CNN", _images(32, 32, 3))
    assert ten.endswith("10 classes) it has 122,570 parameters.")
    digits = preset_caption("Article CNN", load_builtin("digits"))
    assert "(digits: 8x8x1, 10 classes)" in digits and "8x8x1 input instead of 32x32x3" in digits
    assert "(iris: 4 features, 3 classes)" in preset_caption("Small MLP", load_builtin("iris"))
