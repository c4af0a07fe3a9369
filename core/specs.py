"""Model specs: JSON-able descriptions of a Keras model, the presets, and validation in words.

A spec lists the *body* of a classifier. `core.models.build_model` adds the input layer and always appends
the classifier head, Dense(n_classes, softmax), so one spec fits any dataset with the same kind of input
(the Article CNN's final "Dense 10 softmax" is that head; on iris it becomes Dense 3).

This module never imports TensorFlow: shapes, parameter counts and FLOPs are worked out here by plain
arithmetic, so the Model page can explain a broken spec, and refuse an oversize or hostile one, before
Keras allocates anything. Tests check these numbers against Keras.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ACTIVATIONS",
    "AUGMENTATION_TYPES",
    "BACKBONES",
    "DEFAULT_INITIALIZER",
    "INITIALIZERS",
    "LAYER_TYPES",
    "MAX_FEATURE_VALUES",
    "MAX_LAYERS",
    "MAX_PARAMS",
    "MAX_SPEC_JSON_BYTES",
    "PRESETS",
    "SCHEMA_VERSION",
    "LayerRow",
    "LayerSpec",
    "ModelSpec",
    "Param",
    "SpecAnalysis",
    "SpecError",
    "analyse_spec",
    "available_presets",
    "default_preset_name",
    "describe_layer",
    "layer_types_for",
    "make_layer",
    "preset",
    "preset_caption",
    "validate_spec",
]

MAX_LAYERS = 64  # layers in one spec (the head not counted)
MAX_PARAMS = 50_000_000  # total parameters; 200 MB of float32 weights is already far beyond this app
MAX_FEATURE_VALUES = 8_000_000  # values in one layer's output for one example (activation memory)
MAX_SPEC_JSON_BYTES = 64_000  # an uploaded spec file; real specs are a few KB
SCHEMA_VERSION = 1

# Keras 3 activation names. "leaky_relu" is keras.activations.leaky_relu with its default negative slope
# 0.2; for another slope use the LeakyReLU layer type after a "linear" layer.
ACTIVATIONS = ("relu", "leaky_relu", "elu", "gelu", "sigmoid", "tanh", "softmax", "linear")
# Keras 3 kernel initializer names for Dense and Conv2D; glorot_uniform is Keras' own default, so a spec
# that leaves kernel_initializer out builds exactly the model it built before the setting existed.
INITIALIZERS = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform", "lecun_normal")
DEFAULT_INITIALIZER = "glorot_uniform"


class SpecError(ValueError):
    """A spec is malformed, hostile or does not fit the data; the message is meant for the user."""


_MAX_NUMBER_DIGITS = 30  # longer integer literals are refused (Python caps int() at 4,300 digits anyway)


@dataclass(frozen=True)
class _UnreadableNumber:
    """A JSON number that no setting can take (1e400, a 5,000-digit integer): kept as text until the
    field check, so the message can name the field instead of failing inside json.loads."""

    text: str

    def __repr__(self) -> str:
        shown = self.text if len(self.text) <= 24 else f"{self.text[:12]}…({len(self.text):,} digits)"
        return f"{shown} (too large to be a number here)"


def _parse_json_float(text: str) -> float | _UnreadableNumber:
    value = float(text)
    return value if math.isfinite(value) else _UnreadableNumber(text)


def _parse_json_int(text: str) -> int | _UnreadableNumber:
    return int(text) if len(text.lstrip("-")) <= _MAX_NUMBER_DIGITS else _UnreadableNumber(text)


@dataclass(frozen=True)
class Param:
    """One setting of a layer type: its default, its allowed values, and a one-line help for the editor."""

    kind: str  # "int", "float", "choice" or "bool"
    default: Any  # used when a spec leaves the setting out
    help: str  # shown next to the widget
    low: float | None = None  # smallest allowed value (int / float)
    high: float | None = None  # largest allowed value (int / float)
    choices: tuple = ()  # allowed values ("choice")
    labels: tuple = ()  # what the editor shows for each choice (same order); empty = the values themselves

    def label(self, value: Any) -> str:
        """The editor's text for one choice."""
        if self.labels and value in self.choices:
            return self.labels[self.choices.index(value)]
        return str(value)


def _reg(name: str) -> Param:
    return Param("float", 0.0, f"{name} weight penalty added to the loss (0 = off)", 0.0, 1.0)


_ACT = Param("choice", "relu", "non-linearity applied to the output. leaky_relu (negative slope 0.2), elu "
             "and gelu let a little gradient through for negative inputs, so a unit cannot 'die' as a ReLU can",
             choices=ACTIVATIONS)
_INIT = Param("choice", DEFAULT_INITIALIZER, "how the weights start. Glorot (Keras' default) suits tanh and "
              "sigmoid; He is made for ReLU-family activations (it keeps the signal's size through deep ReLU "
              "stacks); LeCun scales by the number of inputs only",
              choices=INITIALIZERS,
              labels=("glorot_uniform (Keras default)", "glorot_normal", "he_uniform (for ReLU)",
                      "he_normal (for ReLU)", "lecun_uniform", "lecun_normal"))

# Layer types a user may put in a spec, and every setting each one accepts.
LAYER_TYPES: dict[str, dict[str, Param]] = {
    "Dense": {
        "units": Param("int", 64, "number of neurons", 1, 16_384),
        "activation": _ACT,
        "kernel_initializer": _INIT,
        "l1": _reg("L1"),
        "l2": _reg("L2"),
    },
    "Conv2D": {
        "filters": Param("int", 32, "number of feature maps", 1, 2_048),
        "kernel_size": Param("int", 3, "size of the square kernel", 1, 15),
        "strides": Param("int", 1, "step of the kernel", 1, 8),
        "padding": Param("choice", "valid", "'valid' shrinks the map by kernel-1, 'same' keeps its size",
                         choices=("valid", "same")),
        "activation": _ACT,
        "kernel_initializer": _INIT,
        "l1": _reg("L1"),
        "l2": _reg("L2"),
    },
    "MaxPooling2D": {
        "pool_size": Param("int", 2, "size of the square window (its stride too)", 1, 8),
        "padding": Param("choice", "valid", "'same' keeps a leftover edge row/column",
                         choices=("valid", "same")),
    },
    "AveragePooling2D": {
        "pool_size": Param("int", 2, "size of the square window (its stride too)", 1, 8),
        "padding": Param("choice", "valid", "'same' keeps a leftover edge row/column",
                         choices=("valid", "same")),
    },
    "GlobalAveragePooling2D": {},
    "Flatten": {},
    "Dropout": {"rate": Param("float", 0.2, "fraction of inputs zeroed during training", 0.0, 0.95)},
    "BatchNormalization": {},
    "Activation": {"activation": _ACT},
    "LeakyReLU": {"negative_slope": Param("float", 0.2, "output = slope x input for negative inputs (0 = ReLU, "
                                          "1 = no activation); put it after a layer with activation linear",
                                          0.0, 1.0)},
    "RandomFlip": {
        "mode": Param("choice", "horizontal", "mirror images at random during training",
                      choices=("horizontal", "vertical", "horizontal_and_vertical")),
    },
    "RandomRotation": {"factor": Param("float", 0.05, "max rotation as a fraction of a full turn", 0.0, 0.5)},
    "RandomZoom": {"factor": Param("float", 0.1, "max zoom in/out as a fraction of the size", 0.0, 0.9)},
    "RandomTranslation": {"factor": Param("float", 0.1, "max shift as a fraction of height/width", 0.0, 0.9)},
    "Backbone": {
        "name": Param("choice", "MobileNetV2", "Keras Applications network used as feature extractor",
                      choices=("MobileNetV2",)),
        "alpha": Param("choice", 0.35, "width multiplier: 0.35 is the smallest and fastest",
                       choices=(0.35, 0.5, 0.75, 1.0)),
        "weights": Param("choice", "imagenet", "'imagenet' = pre-trained (downloaded once), 'none' = random",
                         choices=("imagenet", "none")),
        "trainable": Param("bool", False, "fine-tune the backbone too (off = frozen feature extractor)"),
        "input_size": Param("int", 32, "images are resized up to this square size (32 is the minimum)",
                            32, 224),
    },
}

AUGMENTATION_TYPES = ("RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation")
_IMAGE_ONLY = {"Conv2D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "Backbone",
               *AUGMENTATION_TYPES}

# Backbones: parameters without the top, and multiply-adds per example at 224x224 (MobileNetV2 paper,
# Table 6: 59M at alpha 0.35 ... 300M at 1.0), to estimate cost without TensorFlow.
# Keys are (name, alpha); the output is a vector of `features` after global average pooling.
BACKBONES: dict[tuple[str, float], dict[str, int]] = {
    ("MobileNetV2", 0.35): {"params": 410_208, "trainable": 396_128, "features": 1280, "macs224": 59_000_000},
    ("MobileNetV2", 0.5): {"params": 706_224, "trainable": 689_440, "features": 1280, "macs224": 97_000_000},
    ("MobileNetV2", 0.75): {"params": 1_382_064, "trainable": 1_360_160, "features": 1280,
                            "macs224": 209_000_000},
    ("MobileNetV2", 1.0): {"params": 2_257_984, "trainable": 2_223_872, "features": 1280,
                           "macs224": 300_000_000},
}


def _check_param(where: str, name: str, p: Param, value: Any) -> Any:
    """Return the value in its canonical type, or raise SpecError saying what was given and what is allowed."""
    if p.kind == "bool":
        if not isinstance(value, bool):
            raise SpecError(f"{where}: {name} must be true or false, got {value!r}")
        return value
    if p.kind == "choice":
        for c in p.choices:  # 0.35 and "relu" alike; bool is not a number here
            if value == c and type(value) is not bool:
                return c
        raise SpecError(f"{where}: {name} must be one of {', '.join(map(str, p.choices))}, got {value!r}")
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 100:
        value = _UnreadableNumber(f"an integer of about {int(value.bit_length() * 0.30103):,} digits")
    if p.kind == "int":
        if (isinstance(value, bool) or not isinstance(value, int | float)
                or not math.isfinite(value) or value != int(value)):
            raise SpecError(f"{where}: {name} must be a whole number, got {value!r}")
        value = int(value)
    else:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise SpecError(f"{where}: {name} must be a number, got {value!r}")
        value = float(value)
    if not p.low <= value <= p.high:
        lo = int(p.low) if p.kind == "int" else p.low
        hi = f"{int(p.high):,}" if p.kind == "int" else p.high
        raise SpecError(f"{where}: {name} must be between {lo} and {hi}, got {value:,}")
    return value


@dataclass(frozen=True)
class LayerSpec:
    """One layer: a type from LAYER_TYPES and its settings (JSON-able; treat `params` as read-only)."""

    type: str  # a key of LAYER_TYPES, e.g. "Conv2D"
    params: dict = field(default_factory=dict)  # setting name -> JSON value; missing ones take defaults

    def to_dict(self) -> dict:
        return {"type": self.type, "params": dict(self.params)}


def make_layer(type_: str, where: str = "layer", **params: Any) -> LayerSpec:
    """A checked LayerSpec with every setting filled in (defaults for those not given)."""
    if not isinstance(type_, str) or type_ not in LAYER_TYPES:
        shown = type_ if isinstance(type_, str) and len(type_) <= 40 else f"{str(type_)[:40]}…"
        raise SpecError(f"{where}: unknown layer type {shown!r}; allowed: {', '.join(LAYER_TYPES)}")
    schema = LAYER_TYPES[type_]
    unknown = [k for k in params if k not in schema]
    if unknown:
        allowed = ", ".join(schema) or "none"
        raise SpecError(f"{where} {type_}: unknown setting {str(unknown[0])[:40]!r}; allowed: {allowed}")
    full = {name: _check_param(f"{where} {type_}", name, p, params.get(name, p.default))
            for name, p in schema.items()}
    return LayerSpec(type_, full)


@dataclass(frozen=True)
class ModelSpec:
    """A model body (the classifier head is added by build_model), with a name and notes for the user."""

    layers: tuple[LayerSpec, ...]  # in order, input side first
    name: str = "custom"  # preset name or "custom"; shown on pages and stored with runs
    notes: tuple[str, ...] = ()  # why the model looks this way (e.g. what a preset adapted)

    def to_dict(self) -> dict:
        return {"schema_version": SCHEMA_VERSION, "name": self.name, "notes": list(self.notes),
                "layers": [layer.to_dict() for layer in self.layers]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, d: Any) -> ModelSpec:
        """Check untrusted data (an uploaded file) field by field; SpecError says what is wrong."""
        if not isinstance(d, dict):
            raise SpecError(f"a model spec must be a JSON object, got {type(d).__name__}")
        unknown = [k for k in d if k not in ("schema_version", "name", "notes", "layers")]
        if unknown:
            raise SpecError(f"unknown field {str(unknown[0])[:40]!r} in model spec; "
                            "allowed: schema_version, name, notes, layers")
        version = d.get("schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise SpecError(f"schema_version must be {SCHEMA_VERSION}, got {str(version)[:20]!r}")
        name = d.get("name", "custom")
        if not isinstance(name, str) or not 0 < len(name) <= 80:
            raise SpecError("name must be a text of 1 to 80 characters")
        notes = d.get("notes", [])
        if not isinstance(notes, list) or len(notes) > 20 or not all(
                isinstance(n, str) and len(n) <= 1000 for n in notes):
            raise SpecError("notes must be a list of at most 20 texts of at most 1,000 characters")
        layers = d.get("layers")
        if not isinstance(layers, list):
            raise SpecError("layers must be a list of layers")
        if not 0 < len(layers) <= MAX_LAYERS:
            raise SpecError(f"a model needs 1 to {MAX_LAYERS} layers, got {len(layers)}")
        out = []
        for i, item in enumerate(layers, 1):
            if not isinstance(item, dict) or set(item) - {"type", "params"} or "type" not in item:
                raise SpecError(f"layer {i} must be an object with 'type' and 'params'")
            params = item.get("params", {})
            if not isinstance(params, dict):
                raise SpecError(f"layer {i}: params must be an object, got {type(params).__name__}")
            out.append(make_layer(item["type"], f"layer {i}", **{str(k): v for k, v in params.items()}))
        return cls(tuple(out), name, tuple(notes))

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelSpec:
        """Parse an uploaded spec: size capped, NaN/Infinity refused, then checked like from_dict."""
        if len(text) > MAX_SPEC_JSON_BYTES:
            raise SpecError(f"spec file is {len(text):,} bytes; at most {MAX_SPEC_JSON_BYTES:,} allowed")
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise SpecError(f"spec file is not UTF-8 text ({exc.reason} at byte {exc.start})") from None

        def _no_constants(name: str) -> None:
            raise SpecError(f"spec file contains {name}, which is not a valid number")

        try:
            data = json.loads(text, parse_constant=_no_constants, parse_float=_parse_json_float,
                              parse_int=_parse_json_int)
        except json.JSONDecodeError as exc:
            raise SpecError(f"spec file is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
                            ) from None
        except RecursionError:
            raise SpecError("spec file is nested too deeply") from None
        return cls.from_dict(data)


@dataclass(frozen=True)
class LayerRow:
    """What one layer does to the data, by arithmetic (no TensorFlow)."""

    index: int  # 1-based position in the spec; 0 for the head appended by build_model
    type: str  # layer type, e.g. "Conv2D", or "Dense (head)"
    label: str  # short description, e.g. "64 filters 3x3 relu"
    output_shape: tuple[int, ...] | None  # per example; None once the shapes stop making sense
    params: int  # all weights of the layer
    trainable: int  # of which trained by backprop
    flops: int  # per example, forward pass (2 per multiply-add)


@dataclass(frozen=True)
class SpecAnalysis:
    """Shapes, counts and problems of a spec on given data; `ok` when it can be built."""

    rows: tuple[LayerRow, ...]  # the spec's layers then the head
    errors: tuple[str, ...]  # anything that stops the model from being built
    warnings: tuple[str, ...]  # builds, but probably not what was meant

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def total_params(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def trainable_params(self) -> int:
        return sum(r.trainable for r in self.rows)

    @property
    def flops(self) -> int:
        return sum(r.flops for r in self.rows)


def _shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape) if shape else "scalar"


def describe_layer(layer: LayerSpec) -> str:
    """Its key settings in a few words, for lists and diagrams."""
    p = layer.params
    reg = "".join(f" {k.upper()}={p[k]:g}" for k in ("l1", "l2") if p.get(k))
    init = p.get("kernel_initializer", DEFAULT_INITIALIZER)
    reg = ("" if init == DEFAULT_INITIALIZER else f" {init} init") + reg  # the default is not worth a word
    match layer.type:
        case "Dense":
            return f"{p['units']} units {p['activation']}{reg}"
        case "Conv2D":
            stride = f" stride {p['strides']}" if p["strides"] != 1 else ""
            return (f"{p['filters']} filters {p['kernel_size']}x{p['kernel_size']}{stride} "
                    f"{p['padding']} {p['activation']}{reg}")
        case "MaxPooling2D" | "AveragePooling2D":
            return f"{p['pool_size']}x{p['pool_size']}" + (" same" if p["padding"] == "same" else "")
        case "Dropout":
            return f"rate {p['rate']:g}"
        case "Activation":
            return p["activation"]
        case "LeakyReLU":
            return f"negative slope {p['negative_slope']:g}"
        case "RandomFlip":
            return p["mode"].replace("_", " ")
        case "RandomRotation":
            return f"up to ±{p['factor'] * 360:g}°"
        case "RandomZoom" | "RandomTranslation":
            return f"up to ±{p['factor'] * 100:g}%"
        case "Backbone":
            w = "ImageNet" if p["weights"] == "imagenet" else "random init"
            return (f"{p['name']} α={p['alpha']} {w}, {'fine-tuned' if p['trainable'] else 'frozen'}, "
                    f"input {p['input_size']}x{p['input_size']}")
    return ""


def _out_size(size: int, window: int, stride: int, padding: str) -> int:
    """Keras' output length along one axis for a conv or pooling window."""
    if padding == "same":
        return -(-size // stride)
    return (size - window) // stride + 1 if size >= window else 0


def analyse_spec(spec: ModelSpec, input_shape: tuple[int, ...], n_classes: int, kind: str) -> SpecAnalysis:
    """Walk the layers with shape arithmetic: output shapes, parameters, FLOPs, and problems in words."""
    errors: list[str] = []
    warnings: list[str] = []
    rows: list[LayerRow] = []
    shape: tuple[int, ...] | None = tuple(int(d) for d in input_shape)
    if kind not in ("image", "tabular"):
        raise SpecError(f"kind must be 'image' or 'tabular', got {kind!r}")
    if len(spec.layers) > MAX_LAYERS:
        errors.append(f"a model may have at most {MAX_LAYERS} layers, got {len(spec.layers)}")
    history: list[str] = []  # what has shrunk the map so far, for messages
    seen_trainable = False
    flattened_at: int | None = None
    for i, given in enumerate(spec.layers, 1):
        try:  # specs built in code may leave settings out or get them wrong
            layer = make_layer(given.type, f"layer {i}", **given.params)
        except SpecError as exc:
            errors.append(str(exc))
            shape = None
            rows.append(LayerRow(i, str(given.type)[:40], "", None, 0, 0, 0))
            continue
        t, p = layer.type, layer.params
        where = f"layer {i} {t}"
        params = trainable = flops = 0
        out: tuple[int, ...] | None = None
        if shape is None:
            rows.append(LayerRow(i, t, describe_layer(layer), None, 0, 0, 0))
            continue
        if t in _IMAGE_ONLY and len(shape) != 3:
            if kind == "tabular":
                errors.append(f"{where} needs image input; the dataset is tabular "
                              f"({shape[0]} features). Remove it or choose an image dataset.")
            else:
                after = f" (flattened by layer {flattened_at})" if flattened_at else ""
                errors.append(f"{where} needs a 2-D feature map (height x width x channels) but gets a flat "
                              f"vector of {_shape_text(shape)} values{after}; move it before the "
                              "Flatten / global pooling.")
            shape = None
            rows.append(LayerRow(i, t, describe_layer(layer), None, 0, 0, 0))
            continue
        n_in = math.prod(shape)
        if t == "Dense":
            if len(shape) != 1:
                first = "the input images" if shape == tuple(input_shape) else "a 2-D feature map"
                errors.append(f"{where} gets {first} ({_shape_text(shape)}) directly; a Dense layer needs a "
                              "flat vector: add Flatten or GlobalAveragePooling2D before it.")
                shape = None
                rows.append(LayerRow(i, t, describe_layer(layer), None, 0, 0, 0))
                continue
            params = trainable = shape[0] * p["units"] + p["units"]
            flops = 2 * shape[0] * p["units"]
            out = (p["units"],)
        elif t == "Conv2D":
            h, w, c = shape
            k, s = p["kernel_size"], p["strides"]
            oh, ow = _out_size(h, k, s, p["padding"]), _out_size(w, k, s, p["padding"])
            if oh < 1 or ow < 1:
                errors.append(_shrink_message(where, (h, w), f"a {k}x{k} 'valid' kernel", history, input_shape))
                shape = None
                rows.append(LayerRow(i, t, describe_layer(layer), None, 0, 0, 0))
                continue
            params = trainable = k * k * c * p["filters"] + p["filters"]
            flops = 2 * k * k * c * p["filters"] * oh * ow
            out = (oh, ow, p["filters"])
            if p["padding"] == "valid" and k > 1:
                history.append(f"{k}x{k} valid convolution")
            if s > 1:
                history.append(f"stride-{s} convolution")
        elif t in ("MaxPooling2D", "AveragePooling2D"):
            h, w, c = shape
            k = p["pool_size"]
            oh, ow = _out_size(h, k, k, p["padding"]), _out_size(w, k, k, p["padding"])
            if oh < 1 or ow < 1:
                errors.append(_shrink_message(where, (h, w), f"a {k}x{k} pooling window", history, input_shape))
                shape = None
                rows.append(LayerRow(i, t, describe_layer(layer), None, 0, 0, 0))
                continue
            flops = k * k * oh * ow * c
            out = (oh, ow, c)
            if k > 1:
                history.append(f"{k}x{k} pooling")
        elif t == "GlobalAveragePooling2D":
            out = (shape[2],)
            flops = n_in
            flattened_at = i
        elif t == "Flatten":
            out = (n_in,)
            flattened_at = i
        elif t == "BatchNormalization":
            c = shape[-1]
            params, trainable = 4 * c, 2 * c  # gamma, beta trained; moving mean and variance are not
            flops = 2 * n_in
            out = shape
        elif t in ("Dropout", "Activation", "LeakyReLU"):
            out = shape
            flops = n_in if t == "LeakyReLU" or (t == "Activation" and p["activation"] != "linear") else 0
            if t == "LeakyReLU":
                source = _non_negative_source(spec.layers, i)
                if source:
                    warnings.append(f"{where} only ever gets values ≥ 0 ({source}), so it changes nothing; set "
                                    "that layer's activation to linear and let LeakyReLU be its activation.")
        elif t in AUGMENTATION_TYPES:
            out = shape
            if seen_trainable:
                warnings.append(f"{where} comes after trainable layers; augmentation layers normally come "
                                "first, where they change the input images.")
            if t == "RandomFlip" and shape[0] < 16:
                warnings.append(f"{where}: on small images such as digits or letters a mirrored image is "
                                "often a different or invalid symbol; prefer small rotations, zooms and shifts.")
        elif t == "Backbone":
            info = BACKBONES[(p["name"], p["alpha"])]
            size = p["input_size"]
            if shape[2] not in (1, 3):
                errors.append(f"{where} needs grey (1 channel) or RGB (3 channels) images, got {shape[2]} "
                              "channels.")
                shape = None
                rows.append(LayerRow(i, t, describe_layer(layer), None, 0, 0, 0))
                continue
            if shape[0] > size or shape[1] > size:
                warnings.append(f"{where} resizes the {shape[0]}x{shape[1]} input down to {size}x{size}; "
                                "raise input_size to keep detail.")
            params = info["params"]
            trainable = info["trainable"] if p["trainable"] else 0
            flops = round(2 * info["macs224"] * (size / 224) ** 2)
            out = (info["features"],)
            flattened_at = i
            if i > 1 and any(r.params for r in rows):
                warnings.append(f"{where} normally comes first (after augmentation): it expects images.")
        else:  # pragma: no cover - make_layer admits only known types
            raise SpecError(f"{where}: no shape rule for this layer type")
        if params:
            seen_trainable = True
        if math.prod(out) > MAX_FEATURE_VALUES:
            errors.append(f"{where} outputs {_shape_text(out)} = {math.prod(out):,} values per example; "
                          f"at most {MAX_FEATURE_VALUES:,} allowed (use pooling or strides).")
            shape = None
        else:
            shape = out
        rows.append(LayerRow(i, t, describe_layer(layer), out, params, trainable, flops))

    # The head build_model appends.
    if n_classes < 2:
        errors.append(f"the dataset needs at least 2 classes, got {n_classes}")
    if shape is not None and len(shape) != 1:
        errors.append(f"the model ends on a {_shape_text(shape)} feature map; the classifier head "
                      f"(Dense {n_classes} softmax) needs a flat vector: add Flatten or "
                      "GlobalAveragePooling2D at the end.")
        shape = None
    if shape is not None:
        head = shape[0] * n_classes + n_classes
        rows.append(LayerRow(0, "Dense (head)", f"{n_classes} classes softmax", (n_classes,), head, head,
                             2 * shape[0] * n_classes))
    else:
        rows.append(LayerRow(0, "Dense (head)", f"{n_classes} classes softmax", None, 0, 0, 0))
    if spec.layers and spec.layers[-1].type in ("Dense", "Activation") and \
            spec.layers[-1].params.get("activation") == "softmax":
        warnings.append(f"layer {len(spec.layers)} uses softmax; the classifier head already ends in "
                        "softmax, so this squashes the features twice (use relu).")
    total = sum(r.params for r in rows)
    if total > MAX_PARAMS:
        errors.append(f"the model has {total:,} parameters; at most {MAX_PARAMS:,} allowed")
    return SpecAnalysis(tuple(rows), tuple(errors), tuple(warnings))


# Layers that keep every value's sign (≥ 0 in, ≥ 0 out), and activations whose output is never negative.
_SIGN_KEEPING = {"Dropout", "Flatten", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D",
                 *AUGMENTATION_TYPES}
_NON_NEGATIVE = {"relu", "sigmoid", "softmax"}


def _non_negative_source(layers: tuple[LayerSpec, ...], position: int) -> str:
    """Why the input of the layer at 1-based `position` is never negative ("" when it can be)."""
    for j in range(position - 1, 0, -1):
        before = layers[j - 1]
        if before.type in _SIGN_KEEPING:
            continue
        act = before.params.get("activation", "relu") if before.type in ("Dense", "Conv2D", "Activation") else None
        if act in _NON_NEGATIVE:
            return f"layer {j} {before.type} ends in {act}"
        return ""
    return ""


def _shrink_message(where: str, hw: tuple[int, int], need: str, history: list[str],
                    input_shape: tuple[int, ...]) -> str:
    done = (f"the {input_shape[0]}x{input_shape[1]} input has been through {len(history)} shrinking "
            f"layer{'s' if len(history) != 1 else ''} ({', '.join(history)})") if history else \
        "the input is that small"
    return (f"{where} shrinks the feature map below 1x1: {need} does not fit the {hw[0]}x{hw[1]} map it gets "
            f"({done}). Use padding='same', a smaller kernel or fewer pooling layers.")


def validate_spec(spec: ModelSpec, input_shape: tuple[int, ...], n_classes: int, kind: str) -> list[str]:
    """Problems that stop `spec` being built on this data, in words; empty when it builds."""
    return list(analyse_spec(spec, input_shape, n_classes, kind).errors)


def layer_types_for(kind: str) -> list[str]:
    """Layer types offered in the editor for this kind of data."""
    return [t for t in LAYER_TYPES if kind == "image" or t not in _IMAGE_ONLY]


# ---------------------------------------------------------------- presets

PRESETS: dict[str, str] = {
    "Article CNN": "The article's CIFAR-10 CNN: Conv 32 → pool → Conv 64 → pool → Conv 64 → Dense 64 → "
                   "Dense 10 softmax (122,570 parameters on 32x32x3 with the article's 10-class head).",
    "Small CNN": "Two 'same' convolutions with pooling and a small dense layer; made for 8x8 digits.",
    "Stronger CNN": "Augmentation, BatchNorm, Dropout and global pooling: fewer parameters than the "
                    "Article CNN, meant to generalise better in the same training time.",
    "Transfer learning": "A MobileNetV2 (α=0.35) feature extractor pre-trained on ImageNet, frozen, with a "
                         "new classifier.",
    "Small MLP": "Two dense layers with Dropout; for tabular data (images are flattened first).",
}
_PRESET_KINDS = {"Article CNN": ("image",), "Small CNN": ("image",), "Stronger CNN": ("image",),
                 "Transfer learning": ("image",), "Small MLP": ("image", "tabular")}


_ARTICLE_PARAMS = 122_570  # the Article CNN on 32x32x3 with 10 classes, as in the article


def preset_caption(name: str, dataset: Any) -> str:
    """The preset's description plus its size on this dataset, saying why it differs from the article's.

    Plain text: the dataset name may come from an upload, so the page shows it literally."""
    text = PRESETS[name]
    try:
        spec = preset(name, dataset)
    except SpecError:
        return text
    shape, k = tuple(dataset.input_shape), dataset.n_classes
    total = analyse_spec(spec, shape, k, dataset.kind).total_params
    size = f"{shape[0]} features" if dataset.kind == "tabular" else _shape_text(shape)
    here = f"On your data ({dataset.name}: {size}, {k} classes) it has {total:,} parameters"
    if name == "Article CNN" and total != _ARTICLE_PARAMS:
        why = ([f"a {k}-class head instead of 10"] if k != 10 else []) + (
            [f"{_shape_text(shape)} input instead of 32x32x3"] if shape != (32, 32, 3) else [])
        here += f" ({' and '.join(why)})" if why else ""
    return f"{text} {here}."


def _L(type_: str, **params: Any) -> LayerSpec:
    return make_layer(type_, **params)


def _article_cnn(padding: str) -> tuple[LayerSpec, ...]:
    return (_L("Conv2D", filters=32, kernel_size=3, activation="relu", padding=padding),
            _L("MaxPooling2D", pool_size=2),
            _L("Conv2D", filters=64, kernel_size=3, activation="relu", padding=padding),
            _L("MaxPooling2D", pool_size=2),
            _L("Conv2D", filters=64, kernel_size=3, activation="relu", padding=padding),
            _L("Flatten"),
            _L("Dense", units=64, activation="relu"))


def available_presets(dataset: Any) -> list[str]:
    """Preset names that suit this dataset's kind of input."""
    return [n for n in PRESETS if dataset.kind in _PRESET_KINDS[n]]


def default_preset_name(dataset: Any) -> str:
    """Small CNN for small images such as 8x8 digits, the Article CNN for larger ones, Small MLP for tables."""
    if dataset.kind != "image":
        return "Small MLP"
    spec = preset("Article CNN", dataset)
    return "Article CNN" if spec.name == "Article CNN" else "Small CNN"


def preset(name: str, dataset: Any) -> ModelSpec:
    """A preset fitted to the dataset, with notes on anything adapted; SpecError if it cannot fit."""
    if name not in PRESETS:
        raise SpecError(f"unknown preset {str(name)[:40]!r}; choose one of {', '.join(PRESETS)}")
    if dataset.kind not in _PRESET_KINDS[name]:
        raise SpecError(f"the {name} preset needs image data; {dataset.name} is {dataset.kind} — "
                        f"try {', '.join(available_presets(dataset))}")
    shape, k, kind = dataset.input_shape, dataset.n_classes, dataset.kind
    head = f"The final Dense {k} softmax is the classifier head ({k} classes in {dataset.name})."
    if name == "Article CNN":
        spec = ModelSpec(_article_cnn("valid"), "Article CNN", (head,))
        if not validate_spec(spec, shape, k, kind):
            return spec
        problem = validate_spec(spec, shape, k, kind)[0]
        spec = ModelSpec(_article_cnn("same"), "Article CNN (adapted)", (
            f"Adapted for {_shape_text(shape)} input: the article's 3x3 'valid' convolutions with two 2x2 "
            f"pools do not fit ({problem.split(':')[0]}). All three convolutions "
            "use padding='same' instead, so only the pools halve the map; filters, kernels, activations and "
            "the dense layers are unchanged.", head))
    elif name == "Small CNN":
        spec = ModelSpec((_L("Conv2D", filters=16, kernel_size=3, padding="same", activation="relu"),
                          _L("MaxPooling2D", pool_size=2),
                          _L("Conv2D", filters=32, kernel_size=3, padding="same", activation="relu"),
                          _L("MaxPooling2D", pool_size=2),
                          _L("Flatten"),
                          _L("Dense", units=64, activation="relu"),
                          _L("Dropout", rate=0.25)), "Small CNN", (head,))
    elif name == "Stronger CNN":
        spec = _stronger_cnn(dataset, head)
    elif name == "Transfer learning":
        backbone = _L("Backbone", name="MobileNetV2", alpha=0.35, weights="imagenet", trainable=False,
                      input_size=32)
        grey = " and the grey channel repeated to 3 (RGB)" if shape[-1] == 1 else ""
        resize = (f"resized from {shape[0]}x{shape[1]} up to 32x32 (MobileNetV2's minimum)"
                  if min(shape[:2]) < 32 or shape[0] != shape[1] else "kept at 32x32")
        spec = ModelSpec((backbone, _L("Dropout", rate=0.2)), "Transfer learning", (
            f"MobileNetV2 (α=0.35, 410k parameters) pre-trained on ImageNet, frozen: only the new head "
            f"trains. Images are {resize}{grey}, and scaled to [-1, 1] as MobileNetV2 expects. "
            "If the ImageNet weights cannot be downloaded the backbone starts from random weights "
            "(you will be told). Switch 'trainable' on in the layer settings to fine-tune it.", head))
    else:  # Small MLP
        first = (_L("Flatten"),) if kind == "image" else ()
        spec = ModelSpec(first + (_L("Dense", units=64, activation="relu"), _L("Dropout", rate=0.1),
                                  _L("Dense", units=32, activation="relu")), "Small MLP", (head,))
    errors = validate_spec(spec, shape, k, kind)
    if errors:
        raise SpecError(f"the {name} preset does not fit {dataset.name} ({_shape_text(shape)}): {errors[0]}")
    return spec


def _stronger_cnn(dataset: Any, head: str) -> ModelSpec:
    """Augment, then Conv-BN-ReLU blocks with Dropout, and global pooling instead of a big Dense layer."""
    h, w, c = dataset.input_shape
    colour = c == 3 and min(h, w) >= 16
    aug: tuple[LayerSpec, ...] = ((_L("RandomFlip", mode="horizontal"),) if colour else ()) + (
        _L("RandomRotation", factor=0.04), _L("RandomZoom", factor=0.1), _L("RandomTranslation", factor=0.1))
    why = ("Augmentation: horizontal flips (a mirrored photo shows the same object), small rotations, zooms "
           "and shifts." if colour else
           "Augmentation: small rotations (±14°), zooms and shifts only — no RandomFlip, because a mirrored "
           "digit or letter is a different or invalid symbol.")
    blocks: list[LayerSpec] = []
    size = min(h, w)
    for filters, drop, pool in ((32, 0.1, True), (64, 0.2, True), (64, 0.0, False)):
        blocks += [_L("Conv2D", filters=filters, kernel_size=3, padding="same", activation="linear"),
                   _L("BatchNormalization"), _L("Activation", activation="relu")]
        if pool and size >= 2:
            blocks.append(_L("MaxPooling2D", pool_size=2))
            size //= 2
        if drop:
            blocks.append(_L("Dropout", rate=drop))
    blocks += [_L("GlobalAveragePooling2D"), _L("Dropout", rate=0.3)]
    return ModelSpec(aug + tuple(blocks), "Stronger CNN", (
        why, "BatchNormalization steadies training at a higher learning rate; Dropout and global average "
        "pooling (instead of Flatten + Dense 64) cut overfitting and parameters.", head))
