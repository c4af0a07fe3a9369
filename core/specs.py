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
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from core.checks import KerasLabError, boolean, choice, number, whole_number
from core.i18n import _, ngettext
from core.settings import MAX_FEATURE_VALUES, MAX_LAYERS, MAX_PARAMS, MAX_SPEC_JSON_BYTES

__all__ = [
    "ACTIVATIONS",
    "AUGMENTATION_TYPES",
    "BACKBONES",
    "DEFAULT_INITIALIZER",
    "INITIALIZERS",
    "LAYER_TYPES",
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
    "setting_label",
    "validate_spec",
]

SCHEMA_VERSION = 1

# Keras 3 activation names. "leaky_relu" is keras.activations.leaky_relu with its default negative slope
# 0.2; for another slope use the LeakyReLU layer type after a "linear" layer.
ACTIVATIONS = ("relu", "leaky_relu", "elu", "gelu", "sigmoid", "tanh", "softmax", "linear")
# Keras 3 kernel initializer names for Dense and Conv2D; glorot_uniform is Keras' own default, so a spec
# that leaves kernel_initializer out builds exactly the model it built before the setting existed.
INITIALIZERS = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform", "lecun_normal")
DEFAULT_INITIALIZER = "glorot_uniform"


class SpecError(KerasLabError):
    """A spec is malformed, hostile or does not fit the data; the message is meant for the user."""


_MAX_NUMBER_DIGITS = 30  # longer integer literals are refused (Python caps int() at 4,300 digits anyway)


@dataclass(frozen=True)
class _UnreadableNumber:
    """A JSON number that no setting can take (1e400, a 5,000-digit integer): kept as text until the
    field check, so the message can name the field instead of failing inside json.loads."""

    text: str

    def __repr__(self) -> str:
        shown = self.text if len(self.text) <= 24 else _("{start}…({n} digits)").format(
            start=self.text[:12], n=f"{len(self.text):,}")
        return _("{number} (too large to be a number here)").format(number=shown)


def _parse_json_float(text: str) -> float | _UnreadableNumber:
    value = float(text)
    return value if math.isfinite(value) else _UnreadableNumber(text)


def _parse_json_int(text: str) -> int | _UnreadableNumber:
    return int(text) if len(text.lstrip("-")) <= _MAX_NUMBER_DIGITS else _UnreadableNumber(text)


@dataclass(frozen=True)
class Param:
    """One setting of a layer type: its default, its allowed values, and a one-line help for the editor.

    Texts are functions: the table is made once, at import, but each visitor reads them in their language."""

    kind: str  # "int", "float", "choice" or "bool"
    default: Any  # used when a spec leaves the setting out
    help: Callable[[], str]  # shown next to the widget
    low: float | None = None  # smallest allowed value (int / float)
    high: float | None = None  # largest allowed value (int / float)
    choices: tuple = ()  # allowed values ("choice")
    labels: Callable[[], tuple[str, ...]] | None = None  # each choice's text (same order); None: the values

    def label(self, value: Any) -> str:
        """The editor's text for one choice."""
        if self.labels is not None and value in self.choices:
            return self.labels()[self.choices.index(value)]
        return str(value)


def _reg(name: str) -> Param:
    return Param("float", 0.0, lambda: _("{name} weight penalty added to the loss (0 = off)").format(name=name),
                 0.0, 1.0)


_ACT = Param("choice", "relu", lambda: _(
    "non-linearity applied to the output. leaky_relu (negative slope 0.2), elu and gelu let a little gradient "
    "through for negative inputs, so a unit cannot 'die' as a ReLU can"), choices=ACTIVATIONS)
_INIT = Param("choice", DEFAULT_INITIALIZER, lambda: _(
    "how the weights start. Glorot (Keras' default) suits tanh and sigmoid; He is made for ReLU-family "
    "activations (it keeps the signal's size through deep ReLU stacks); LeCun scales by the number of inputs only"),
              choices=INITIALIZERS,
              labels=lambda: (_("glorot_uniform (Keras default)"), "glorot_normal", _("he_uniform (for ReLU)"),
                              _("he_normal (for ReLU)"), "lecun_uniform", "lecun_normal"))

# Layer types a user may put in a spec, and every setting each one accepts.
LAYER_TYPES: dict[str, dict[str, Param]] = {
    "Dense": {
        "units": Param("int", 64, lambda: _("number of neurons"), 1, 16_384),
        "activation": _ACT,
        "kernel_initializer": _INIT,
        "l1": _reg("L1"),
        "l2": _reg("L2"),
    },
    "Conv2D": {
        "filters": Param("int", 32, lambda: _("number of feature maps"), 1, 2_048),
        "kernel_size": Param("int", 3, lambda: _("size of the square kernel"), 1, 15),
        "strides": Param("int", 1, lambda: _("step of the kernel"), 1, 8),
        "padding": Param("choice", "valid", lambda: _("'valid' shrinks the map by kernel-1, 'same' keeps its size"),
                         choices=("valid", "same")),
        "activation": _ACT,
        "kernel_initializer": _INIT,
        "l1": _reg("L1"),
        "l2": _reg("L2"),
    },
    "MaxPooling2D": {
        "pool_size": Param("int", 2, lambda: _("size of the square window (its stride too)"), 1, 8),
        "padding": Param("choice", "valid", lambda: _("'same' keeps a leftover edge row/column"),
                         choices=("valid", "same")),
    },
    "AveragePooling2D": {
        "pool_size": Param("int", 2, lambda: _("size of the square window (its stride too)"), 1, 8),
        "padding": Param("choice", "valid", lambda: _("'same' keeps a leftover edge row/column"),
                         choices=("valid", "same")),
    },
    "GlobalAveragePooling2D": {},
    "Flatten": {},
    "Dropout": {"rate": Param("float", 0.2, lambda: _("fraction of inputs zeroed during training"), 0.0, 0.95)},
    "BatchNormalization": {},
    "Activation": {"activation": _ACT},
    "LeakyReLU": {"negative_slope": Param("float", 0.2, lambda: _(
        "output = slope x input for negative inputs (0 = ReLU, 1 = no activation); put it after a layer with "
        "activation linear"), 0.0, 1.0)},
    "RandomFlip": {
        "mode": Param("choice", "horizontal", lambda: _("mirror images at random during training"),
                      choices=("horizontal", "vertical", "horizontal_and_vertical")),
    },
    "RandomRotation": {"factor": Param("float", 0.05, lambda: _("max rotation as a fraction of a full turn"), 0.0,
                                       0.5)},
    "RandomZoom": {"factor": Param("float", 0.1, lambda: _("max zoom in/out as a fraction of the size"), 0.0, 0.9)},
    "RandomTranslation": {"factor": Param("float", 0.1, lambda: _("max shift as a fraction of height/width"), 0.0,
                                          0.9)},
    "Backbone": {
        "name": Param("choice", "MobileNetV2", lambda: _("Keras Applications network used as feature extractor"),
                      choices=("MobileNetV2",)),
        "alpha": Param("choice", 0.35, lambda: _("width multiplier: 0.35 is the smallest and fastest"),
                       choices=(0.35, 0.5, 0.75, 1.0)),
        "weights": Param("choice", "imagenet",
                         lambda: _("'imagenet' = pre-trained (downloaded once), 'none' = random"),
                         choices=("imagenet", "none")),
        "trainable": Param("bool", False, lambda: _("fine-tune the backbone too (off = frozen feature extractor)")),
        "input_size": Param("int", 32, lambda: _("images are resized up to this square size (32 is the minimum)"),
                            32, 224),
    },
}


def setting_label(name: str) -> str:
    """A layer setting as the editor names it: the name itself in English (as specs and exported code spell
    it), words in the visitor's language otherwise."""
    return {
        "units": _("units"), "activation": _("activation"), "kernel_initializer": _("kernel_initializer"),
        "l1": _("l1"), "l2": _("l2"), "filters": _("filters"), "kernel_size": _("kernel_size"),
        "strides": _("strides"), "padding": _("padding"), "pool_size": _("pool_size"), "rate": _("rate"),
        "negative_slope": _("negative_slope"), "mode": _("mode"), "factor": _("factor"), "name": _("name"),
        "alpha": _("alpha"), "weights": _("weights"), "trainable": _("trainable"), "input_size": _("input_size"),
    }.get(name, name)


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
    what = f"{where}: {name}"
    if p.kind == "bool":
        return boolean(what, value, error=SpecError)
    if p.kind == "choice":
        return choice(what, value, p.choices, error=SpecError)
    if p.kind == "int":  # JSON may write 64 as 64.0
        return whole_number(what, value, int(p.low), int(p.high), error=SpecError, integral_floats=True)
    return number(what, value, p.low, p.high, error=SpecError)


@dataclass(frozen=True)
class LayerSpec:
    """One layer: a type from LAYER_TYPES and its settings (JSON-able; treat `params` as read-only)."""

    type: str  # a key of LAYER_TYPES, e.g. "Conv2D"
    params: dict = field(default_factory=dict)  # setting name -> JSON value; missing ones take defaults

    def to_dict(self) -> dict:
        return {"type": self.type, "params": dict(self.params)}


def make_layer(type_: str, where: str | None = None, **params: Any) -> LayerSpec:
    """A checked LayerSpec with every setting filled in (defaults for those not given); `where` names it in
    messages ("layer 3"; "layer" when not given)."""
    where = where or _("layer")
    if not isinstance(type_, str) or type_ not in LAYER_TYPES:
        shown = type_ if isinstance(type_, str) and len(type_) <= 40 else f"{str(type_)[:40]}…"
        raise SpecError(_("{where}: unknown layer type {type}; allowed: {allowed}").format(
            where=where, type=repr(shown), allowed=", ".join(LAYER_TYPES)))
    schema = LAYER_TYPES[type_]
    unknown = [k for k in params if k not in schema]
    if unknown:
        allowed = ", ".join(schema) or _("none")
        raise SpecError(_("{where} {type}: unknown setting {setting}; allowed: {allowed}").format(
            where=where, type=type_, setting=repr(str(unknown[0])[:40]), allowed=allowed))
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
            raise SpecError(_("a model spec must be a JSON object, got {type}").format(type=type(d).__name__))
        unknown = [k for k in d if k not in ("schema_version", "name", "notes", "layers")]
        if unknown:
            raise SpecError(_("unknown field {field} in model spec; allowed: schema_version, name, notes, layers")
                            .format(field=repr(str(unknown[0])[:40])))
        version = d.get("schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise SpecError(_("schema_version must be {version}, got {given}").format(
                version=SCHEMA_VERSION, given=repr(str(version)[:20])))
        name = d.get("name", "custom")
        if not isinstance(name, str) or not 0 < len(name) <= 80:
            raise SpecError(_("name must be a text of 1 to 80 characters"))
        notes = d.get("notes", [])
        if not isinstance(notes, list) or len(notes) > 20 or not all(
                isinstance(n, str) and len(n) <= 1000 for n in notes):
            raise SpecError(_("notes must be a list of at most 20 texts of at most 1,000 characters"))
        layers = d.get("layers")
        if not isinstance(layers, list):
            raise SpecError(_("layers must be a list of layers"))
        if not 0 < len(layers) <= MAX_LAYERS:
            raise SpecError(_("a model needs 1 to {max} layers, got {n}").format(max=MAX_LAYERS, n=len(layers)))
        out = []
        for i, item in enumerate(layers, 1):
            if not isinstance(item, dict) or set(item) - {"type", "params"} or "type" not in item:
                raise SpecError(_("layer {index} must be an object with 'type' and 'params'").format(index=i))
            params = item.get("params", {})
            if not isinstance(params, dict):
                raise SpecError(_("layer {index}: params must be an object, got {type}").format(
                    index=i, type=type(params).__name__))
            out.append(make_layer(item["type"], _("layer {index}").format(index=i),
                                  **{str(k): v for k, v in params.items()}))
        return cls(tuple(out), name, tuple(notes))

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelSpec:
        """Parse an uploaded spec: size capped, NaN/Infinity refused, then checked like from_dict."""
        if len(text) > MAX_SPEC_JSON_BYTES:
            raise SpecError(_("spec file is {size} bytes; at most {limit} allowed").format(
                size=f"{len(text):,}", limit=f"{MAX_SPEC_JSON_BYTES:,}"))
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise SpecError(_("spec file is not UTF-8 text ({reason} at byte {position})").format(
                    reason=exc.reason, position=exc.start)) from None

        def _no_constants(name: str) -> None:
            raise SpecError(_("spec file contains {name}, which is not a valid number").format(name=name))

        try:
            data = json.loads(text, parse_constant=_no_constants, parse_float=_parse_json_float,
                              parse_int=_parse_json_int)
        except json.JSONDecodeError as exc:
            raise SpecError(_("spec file is not valid JSON: {problem} (line {line}, column {column})").format(
                problem=exc.msg, line=exc.lineno, column=exc.colno)) from None
        except RecursionError:
            raise SpecError(_("spec file is nested too deeply")) from None
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
    failed: tuple[int, ...] = ()  # 1-based positions of the layers an error is about

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
    return "x".join(str(d) for d in shape) if shape else _("scalar")


def describe_layer(layer: LayerSpec) -> str:
    """Its key settings in a few words, for lists and diagrams."""
    p = layer.params
    reg = "".join(f" {k.upper()}={p[k]:g}" for k in ("l1", "l2") if p.get(k))
    init = p.get("kernel_initializer", DEFAULT_INITIALIZER)
    if init != DEFAULT_INITIALIZER:  # the default is not worth a word
        reg = " " + _("{initializer} init").format(initializer=init) + reg
    match layer.type:
        case "Dense":
            return _("{units} units {activation}").format(units=p["units"], activation=p["activation"]) + reg
        case "Conv2D":
            stride = " " + _("stride {n}").format(n=p["strides"]) if p["strides"] != 1 else ""
            return _("{filters} filters {size}x{size}{stride} {padding} {activation}").format(
                filters=p["filters"], size=p["kernel_size"], stride=stride, padding=p["padding"],
                activation=p["activation"]) + reg
        case "MaxPooling2D" | "AveragePooling2D":
            return f"{p['pool_size']}x{p['pool_size']}" + (" same" if p["padding"] == "same" else "")
        case "Dropout":
            return _("rate {rate}").format(rate=f"{p['rate']:g}")
        case "Activation":
            return p["activation"]
        case "LeakyReLU":
            return _("negative slope {slope}").format(slope=f"{p['negative_slope']:g}")
        case "RandomFlip":
            return {"horizontal": _("horizontal"), "vertical": _("vertical"),
                    "horizontal_and_vertical": _("horizontal and vertical")}[p["mode"]]
        case "RandomRotation":
            return _("up to ±{degrees}°").format(degrees=f"{p['factor'] * 360:g}")
        case "RandomZoom" | "RandomTranslation":
            return _("up to ±{percent}%").format(percent=f"{p['factor'] * 100:g}")
        case "Backbone":
            return _("{name} α={alpha} {weights}, {training}, input {size}x{size}").format(
                name=p["name"], alpha=p["alpha"], size=p["input_size"],
                weights="ImageNet" if p["weights"] == "imagenet" else _("random init"),
                training=_("fine-tuned") if p["trainable"] else _("frozen"))
    return ""


def _out_size(size: int, window: int, stride: int, padding: str) -> int:
    """Keras' output length along one axis for a conv or pooling window."""
    if padding == "same":
        return -(-size // stride)
    return (size - window) // stride + 1 if size >= window else 0


def analyse_spec(spec: ModelSpec, input_shape: tuple[int, ...], n_classes: int, kind: str) -> SpecAnalysis:
    """Walk the layers with shape arithmetic: output shapes, parameters, FLOPs, and problems in words.

    Each layer type has its rule in _RULES; the walk does what every layer shares (checked settings, image
    layers on flat data, the activation cap), then adds the classifier head and checks the parameter cap."""
    if kind not in ("image", "tabular"):
        raise SpecError(f"kind must be 'image' or 'tabular', got {kind!r}")
    walk = _Walk(spec.layers, tuple(int(d) for d in input_shape), kind)
    if len(spec.layers) > MAX_LAYERS:
        walk.errors.append(_("a model may have at most {max} layers, got {n}").format(max=MAX_LAYERS,
                                                                                        n=len(spec.layers)))
    shape: tuple[int, ...] | None = walk.input_shape
    for index, given in enumerate(spec.layers, 1):
        shape = _walk_layer(walk, index, given, shape)
    _add_head(walk, shape, n_classes)
    if spec.layers and spec.layers[-1].type in ("Dense", "Activation") and \
            spec.layers[-1].params.get("activation") == "softmax":
        walk.warnings.append(_("layer {index} uses softmax; the classifier head already ends in softmax, so this "
                               "squashes the features twice (use relu).").format(index=len(spec.layers)))
    total = sum(r.params for r in walk.rows)
    if total > MAX_PARAMS:
        walk.errors.append(_("the model has {n} parameters; at most {max} allowed").format(
            n=f"{total:,}", max=f"{MAX_PARAMS:,}"))
    return SpecAnalysis(tuple(walk.rows), tuple(walk.errors), tuple(walk.warnings), tuple(walk.failed))


@dataclass
class _Walk:
    """What the walk over a spec's layers has gathered by the time it reaches the next layer."""

    layers: tuple[LayerSpec, ...]  # the whole spec, for rules that look back
    input_shape: tuple[int, ...]  # one example of the data
    kind: str  # "image" or "tabular"
    rows: list[LayerRow] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)  # positions of the layers the errors are about
    history: list[str] = field(default_factory=list)  # what has shrunk the map so far, for messages
    flattened_at: int | None = None  # the layer that turned the map into a flat vector
    seen_trainable: bool = False  # a layer with weights came before


@dataclass(frozen=True)
class _Layer:
    """A checked layer and the shape it gets, as a rule sees it."""

    index: int  # 1-based position in the spec
    spec: LayerSpec  # every setting filled in
    shape: tuple[int, ...]  # its input, per example

    @property
    def where(self) -> str:
        return _("layer {index} {type}").format(index=self.index, type=self.spec.type)

    @property
    def params(self) -> dict:
        return self.spec.params


@dataclass(frozen=True)
class _Out:
    """What one layer makes of its input, per example."""

    shape: tuple[int, ...]
    params: int = 0  # all weights
    trainable: int = 0  # of which trained by backprop
    flops: int = 0  # forward pass, 2 per multiply-add


class _Unfit(Exception):
    """A layer cannot take the shape it gets; the message says why, and every shape after it is unknown."""


def _walk_layer(walk: _Walk, index: int, given: LayerSpec, shape: tuple[int, ...] | None
                ) -> tuple[int, ...] | None:
    """Add the layer's row (and its problems) to the walk; returns its output shape, None once unknown."""
    try:  # specs built in code may leave settings out or get them wrong
        checked = make_layer(given.type, _("layer {index}").format(index=index), **given.params)
    except SpecError as exc:
        walk.errors.append(str(exc))
        walk.failed.append(index)
        walk.rows.append(LayerRow(index, str(given.type)[:40], "", None, 0, 0, 0))
        return None
    unknown = LayerRow(index, checked.type, describe_layer(checked), None, 0, 0, 0)
    if shape is None:
        walk.rows.append(unknown)
        return None
    layer = _Layer(index, checked, shape)
    try:
        if checked.type in _IMAGE_ONLY and len(shape) != 3:
            raise _Unfit(_needs_a_map_message(layer, walk))
        out = _RULES[checked.type](layer, walk)
    except _Unfit as exc:
        walk.errors.append(str(exc))
        walk.failed.append(index)
        walk.rows.append(unknown)
        return None
    if out.params:
        walk.seen_trainable = True
    walk.rows.append(replace(unknown, output_shape=out.shape, params=out.params,
                              trainable=out.trainable, flops=out.flops))
    values = math.prod(out.shape)
    if values > MAX_FEATURE_VALUES:
        walk.errors.append(_("{where} outputs {shape} = {n} values per example; at most {max} allowed (use pooling "
                             "or strides).").format(where=layer.where, shape=_shape_text(out.shape), n=f"{values:,}",
                                                    max=f"{MAX_FEATURE_VALUES:,}"))
        walk.failed.append(index)
        return None
    return out.shape


def _needs_a_map_message(layer: _Layer, walk: _Walk) -> str:
    """Why an image layer cannot take a flat vector: tabular data, or a Flatten / pooling before it."""
    if walk.kind == "tabular":
        return _("{where} needs image input; the dataset is tabular ({n} features). Remove it or choose an image "
                 "dataset.").format(where=layer.where, n=layer.shape[0])
    after = " " + _("(flattened by layer {index})").format(index=walk.flattened_at) if walk.flattened_at else ""
    return _("{where} needs a 2-D feature map (height x width x channels) but gets a flat vector of {shape} "
             "values{after}; move it before the Flatten / global pooling.").format(
                 where=layer.where, shape=_shape_text(layer.shape), after=after)


def _add_head(walk: _Walk, shape: tuple[int, ...] | None, n_classes: int) -> None:
    """The classifier head build_model appends: Dense(n_classes, softmax), which needs a flat vector."""
    if n_classes < 2:
        walk.errors.append(_("the dataset needs at least 2 classes, got {n}").format(n=n_classes))
    if shape is not None and len(shape) != 1:
        walk.errors.append(_("the model ends on a {shape} feature map; the classifier head (Dense {n} softmax) needs "
                             "a flat vector: add Flatten or GlobalAveragePooling2D at the end.").format(
                                 shape=_shape_text(shape), n=n_classes))
        shape = None
    label = _("{n} classes softmax").format(n=n_classes)
    if shape is None:
        walk.rows.append(LayerRow(0, "Dense (head)", label, None, 0, 0, 0))
        return
    weights = shape[0] * n_classes + n_classes
    walk.rows.append(LayerRow(0, "Dense (head)", label, (n_classes,), weights, weights, 2 * shape[0] * n_classes))


# ---- one rule per layer type: its output shape, weights and FLOPs; raise _Unfit when it cannot fit


def _dense(layer: _Layer, walk: _Walk) -> _Out:
    units, shape = layer.params["units"], layer.shape
    if len(shape) != 1:
        message = _("{where} gets the input images ({shape}) directly; a Dense layer needs a flat vector: add "
                    "Flatten or GlobalAveragePooling2D before it.") if shape == walk.input_shape else _(
            "{where} gets a 2-D feature map ({shape}) directly; a Dense layer needs a flat vector: add Flatten or "
            "GlobalAveragePooling2D before it.")
        raise _Unfit(message.format(where=layer.where, shape=_shape_text(shape)))
    weights = shape[0] * units + units
    return _Out((units,), weights, weights, 2 * shape[0] * units)


def _conv2d(layer: _Layer, walk: _Walk) -> _Out:
    (h, w, c), p = layer.shape, layer.params
    k, s, filters = p["kernel_size"], p["strides"], p["filters"]
    oh, ow = _out_size(h, k, s, p["padding"]), _out_size(w, k, s, p["padding"])
    if oh < 1 or ow < 1:
        raise _Unfit(_shrink_message(layer.where, (h, w), _("a {k}x{k} 'valid' kernel").format(k=k), walk.history,
                                     walk.input_shape))
    if p["padding"] == "valid" and k > 1:
        walk.history.append(_("{k}x{k} valid convolution").format(k=k))
    if s > 1:
        walk.history.append(_("stride-{s} convolution").format(s=s))
    weights = k * k * c * filters + filters
    return _Out((oh, ow, filters), weights, weights, 2 * k * k * c * filters * oh * ow)


def _pooling(layer: _Layer, walk: _Walk) -> _Out:
    (h, w, c), k, padding = layer.shape, layer.params["pool_size"], layer.params["padding"]
    oh, ow = _out_size(h, k, k, padding), _out_size(w, k, k, padding)
    if oh < 1 or ow < 1:
        raise _Unfit(_shrink_message(layer.where, (h, w), _("a {k}x{k} pooling window").format(k=k), walk.history,
                                     walk.input_shape))
    if k > 1:
        walk.history.append(_("{k}x{k} pooling").format(k=k))
    return _Out((oh, ow, c), flops=k * k * oh * ow * c)


def _global_pooling(layer: _Layer, walk: _Walk) -> _Out:
    walk.flattened_at = layer.index
    return _Out((layer.shape[2],), flops=math.prod(layer.shape))


def _flatten(layer: _Layer, walk: _Walk) -> _Out:
    walk.flattened_at = layer.index
    return _Out((math.prod(layer.shape),))


def _batch_norm(layer: _Layer, walk: _Walk) -> _Out:
    c = layer.shape[-1]  # gamma and beta are trained; the moving mean and variance are not
    return _Out(layer.shape, 4 * c, 2 * c, 2 * math.prod(layer.shape))


def _dropout(layer: _Layer, walk: _Walk) -> _Out:
    return _Out(layer.shape)


def _activation(layer: _Layer, walk: _Walk) -> _Out:
    return _Out(layer.shape, flops=0 if layer.params["activation"] == "linear" else math.prod(layer.shape))


def _leaky_relu(layer: _Layer, walk: _Walk) -> _Out:
    source = _non_negative_source(walk.layers, layer.index)
    if source:
        walk.warnings.append(_("{where} only ever gets values ≥ 0 ({source}), so it changes nothing; set that "
                               "layer's activation to linear and let LeakyReLU be its activation.").format(
                                   where=layer.where, source=source))
    return _Out(layer.shape, flops=math.prod(layer.shape))


def _augmentation(layer: _Layer, walk: _Walk) -> _Out:
    if walk.seen_trainable:
        walk.warnings.append(_("{where} comes after trainable layers; augmentation layers normally come first, "
                               "where they change the input images.").format(where=layer.where))
    if layer.spec.type == "RandomFlip" and layer.shape[0] < 16:
        walk.warnings.append(_("{where}: on small images such as digits or letters a mirrored image is often a "
                               "different or invalid symbol; prefer small rotations, zooms and shifts.").format(
                                   where=layer.where))
    return _Out(layer.shape)


def _backbone(layer: _Layer, walk: _Walk) -> _Out:
    (h, w, c), p = layer.shape, layer.params
    if c not in (1, 3):
        raise _Unfit(_("{where} needs grey (1 channel) or RGB (3 channels) images, got {n} channels.").format(
            where=layer.where, n=c))
    size = p["input_size"]
    if h > size or w > size:
        walk.warnings.append(_("{where} resizes the {h}x{w} input down to {size}x{size}; raise input_size to keep "
                               "detail.").format(where=layer.where, h=h, w=w, size=size))
    if layer.index > 1 and any(r.params for r in walk.rows):
        walk.warnings.append(_("{where} normally comes first (after augmentation): it expects images.").format(
            where=layer.where))
    walk.flattened_at = layer.index
    info = BACKBONES[(p["name"], p["alpha"])]
    return _Out((info["features"],), info["params"], info["trainable"] if p["trainable"] else 0,
                round(2 * info["macs224"] * (size / 224) ** 2))


_RULES: dict[str, Callable[[_Layer, _Walk], _Out]] = {
    "Dense": _dense, "Conv2D": _conv2d, "MaxPooling2D": _pooling, "AveragePooling2D": _pooling,
    "GlobalAveragePooling2D": _global_pooling, "Flatten": _flatten, "BatchNormalization": _batch_norm,
    "Dropout": _dropout, "Activation": _activation, "LeakyReLU": _leaky_relu, "Backbone": _backbone,
    **dict.fromkeys(AUGMENTATION_TYPES, _augmentation),
}


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
            return _("layer {index} {type} ends in {activation}").format(index=j, type=before.type, activation=act)
        return ""
    return ""


def _shrink_message(where: str, hw: tuple[int, int], need: str, history: list[str],
                    input_shape: tuple[int, ...]) -> str:
    done = ngettext("the {size} input has been through {n} shrinking layer ({steps})",
                    "the {size} input has been through {n} shrinking layers ({steps})", len(history)).format(
        size=f"{input_shape[0]}x{input_shape[1]}", n=len(history), steps=", ".join(history)) if history else \
        _("the input is that small")
    return _("{where} shrinks the feature map below 1x1: {need} does not fit the {h}x{w} map it gets ({done}). Use "
             "padding='same', a smaller kernel or fewer pooling layers.").format(where=where, need=need, h=hw[0],
                                                                                 w=hw[1], done=done)


def validate_spec(spec: ModelSpec, input_shape: tuple[int, ...], n_classes: int, kind: str) -> list[str]:
    """Problems that stop `spec` being built on this data, in words; empty when it builds."""
    return list(analyse_spec(spec, input_shape, n_classes, kind).errors)


def layer_types_for(kind: str) -> list[str]:
    """Layer types offered in the editor for this kind of data."""
    return [t for t in LAYER_TYPES if kind == "image" or t not in _IMAGE_ONLY]


# ---------------------------------------------------------------- presets

# Name -> its description (a function: the visitor's language is known only when it is shown).
PRESETS: dict[str, Callable[[], str]] = {
    "Article CNN": lambda: _("The article's CIFAR-10 CNN: Conv 32 → pool → Conv 64 → pool → Conv 64 → Dense 64 → "
                             "Dense 10 softmax (122,570 parameters on 32x32x3 with the article's 10-class head)."),
    "Small CNN": lambda: _("Two 'same' convolutions with pooling and a small dense layer; made for 8x8 digits."),
    "Stronger CNN": lambda: _("Made to beat the Article CNN in the same training time, with fewer parameters. On "
                              "small images or datasets: BatchNorm, Dropout, global pooling and gentle augmentation; "
                              "from 10,000 images of 18x18 or more: the Article CNN with a lighter first convolution, "
                              "so more steps fit in the time. Its mean test accuracy was higher on 8x8 digits and on "
                              "28x28 MNIST; single runs on digits swing more."),
    "Transfer learning": lambda: _("A MobileNetV2 (α=0.35) feature extractor pre-trained on ImageNet, frozen, with "
                                   "a new classifier."),
    "Small MLP": lambda: _("Two dense layers with Dropout; for tabular data (images are flattened first)."),
}
_PRESET_KINDS = {"Article CNN": ("image",), "Small CNN": ("image",), "Stronger CNN": ("image",),
                 "Transfer learning": ("image",), "Small MLP": ("image", "tabular")}


_ARTICLE_PARAMS = 122_570  # the Article CNN on 32x32x3 with 10 classes, as in the article


def preset_caption(name: str, dataset: Any) -> str:
    """The preset's description plus its size on this dataset, saying why it differs from the article's.

    Plain text: the dataset name may come from an upload, so the page shows it literally."""
    text = PRESETS[name]()
    try:
        spec = preset(name, dataset)
    except SpecError:
        return text
    shape, k = tuple(dataset.input_shape), dataset.n_classes
    total = analyse_spec(spec, shape, k, dataset.kind).total_params
    size = _("{n} features").format(n=shape[0]) if dataset.kind == "tabular" else _shape_text(shape)
    here = _("On your data ({dataset}: {size}, {k} classes) it has {total} parameters").format(
        dataset=dataset.name, size=size, k=k, total=f"{total:,}")
    if name == "Article CNN" and total != _ARTICLE_PARAMS:
        why = ([_("a {k}-class head instead of 10").format(k=k)] if k != 10 else []) + (
            [_("{shape} input instead of 32x32x3").format(shape=_shape_text(shape))] if shape != (32, 32, 3) else [])
        if why:
            reasons = why[0] if len(why) == 1 else _("{first} and {second}").format(first=why[0], second=why[1])
            here = _("{sentence} ({reasons})").format(sentence=here, reasons=reasons)
    return _("{description} {sentence}.").format(description=text, sentence=here)


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
        raise SpecError(_("unknown preset {name}; choose one of {presets}").format(
            name=repr(str(name)[:40]), presets=", ".join(PRESETS)))
    if dataset.kind not in _PRESET_KINDS[name]:
        raise SpecError(_("the {name} preset needs image data; {dataset} is {kind} — try {presets}").format(
            name=name, dataset=dataset.name, kind=dataset.kind, presets=", ".join(available_presets(dataset))))
    shape, k, kind = dataset.input_shape, dataset.n_classes, dataset.kind
    head = _("The final Dense {k} softmax is the classifier head ({k} classes in {dataset}).").format(
        k=k, dataset=dataset.name)
    if name == "Article CNN":
        spec = ModelSpec(_article_cnn("valid"), "Article CNN", (head,))
        if not validate_spec(spec, shape, k, kind):
            return spec
        problem = validate_spec(spec, shape, k, kind)[0]
        spec = ModelSpec(_article_cnn("same"), "Article CNN (adapted)", (
            _("Adapted for {shape} input: the article's 3x3 'valid' convolutions with two 2x2 pools do not fit "
              "({problem}). All three convolutions use padding='same' instead, so only the pools halve the map; "
              "filters, kernels, activations and the dense layers are unchanged.").format(
                shape=_shape_text(shape), problem=re.split("[:：]", problem)[0]),  # either colon: translated
            head))
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
        resize = (_("resized from {h}x{w} up to 32x32 (MobileNetV2's minimum)").format(h=shape[0], w=shape[1])
                  if min(shape[:2]) < 32 or shape[0] != shape[1] else _("kept at 32x32"))
        if shape[-1] == 1:
            resize = _("{resize} and the grey channel repeated to 3 (RGB)").format(resize=resize)
        spec = ModelSpec((backbone, _L("Dropout", rate=0.2)), "Transfer learning", (
            _("MobileNetV2 (α=0.35, 410k parameters) pre-trained on ImageNet, frozen: only the new head trains. "
              "Images are {resize}, and scaled to [-1, 1] as MobileNetV2 expects. If the ImageNet weights cannot "
              "be downloaded the backbone starts from random weights (you will be told). To fine-tune it, set "
              "fine-tuning epochs on Train: a second phase unfreezes its top layers at a lower learning rate.").format(
                resize=resize), head))
    else:  # Small MLP
        first = (_L("Flatten"),) if kind == "image" else ()
        spec = ModelSpec(first + (_L("Dense", units=64, activation="relu"), _L("Dropout", rate=0.1),
                                  _L("Dense", units=32, activation="relu")), "Small MLP", (head,))
    errors = validate_spec(spec, shape, k, kind)
    if errors:
        raise SpecError(_("the {name} preset does not fit {dataset} ({shape}): {problem}").format(
            name=name, dataset=dataset.name, shape=_shape_text(shape), problem=errors[0]))
    return spec


_MANY_IMAGES = 10_000  # from this many images on, the Stronger CNN trains without augmentation or Dropout


def _stronger_cnn(dataset: Any, head: str) -> ModelSpec:
    """Conv blocks with BatchNormalization, or a lighter Article CNN from 10,000 images of 18x18 or more: each
    adaptation is what made it beat the Article CNN in the same training time on real data of that kind
    (bench/presets_compare.py; README, "Presets on real data")."""
    shape = tuple(dataset.input_shape)
    h, w, c = shape
    large = not validate_spec(ModelSpec(_article_cnn("valid")), shape, dataset.n_classes, dataset.kind)
    many = dataset.n_samples >= _MANY_IMAGES
    if large and many:
        return _stronger_cnn_for_many_large_images(dataset, head)
    colour = c == 3 and min(h, w) >= 16
    if many:
        aug: tuple[LayerSpec, ...] = ()
        notes = [_("No augmentation and no Dropout inside the blocks: with {n} images the first epochs overfit "
                   "little, and every step counts. On real 28x28 MNIST (70,000 images) augmentation lowered the "
                   "accuracy reached in the same training time, and block Dropout made each training step about "
                   "{share} slower. Below {limit} images the preset adds both.").format(
                       n=f"{dataset.n_samples:,}", share="15 %", limit=f"{_MANY_IMAGES:,}")]
    else:
        aug = ((_L("RandomFlip", mode="horizontal"),) if colour else ()) + (
            _L("RandomRotation", factor=0.02), _L("RandomZoom", factor=0.05), _L("RandomTranslation", factor=0.05))
        notes = [_("Augmentation: horizontal flips (a mirrored photo shows the same object), small rotations, "
                   "zooms and shifts.") if colour else
                 _("Augmentation: small rotations (±7°), zooms and shifts (±5 %) only — no RandomFlip, because a "
                   "mirrored digit or letter is a different or invalid symbol. The factors are gentle because with "
                   "±14° and ±10 % the validation accuracy on 8x8 digits swung by several points from one epoch to "
                   "the next, and was lower on average.")]
    if large:
        notes.append(_("For {shape} input the convolutions use the Article CNN's padding='valid', so the maps "
                       "shrink as in the article, and each block pools before BatchNormalization and ReLU: max "
                       "pooling keeps the same maxima either way, and BatchNormalization and ReLU then work on a map "
                       "a quarter the size (on the full-size map they made each training step on a CPU about a "
                       "third slower). The last convolution, with no pooling after it, has no BatchNormalization, "
                       "which also saves time.").format(shape=_shape_text(shape)))
    blocks: list[LayerSpec] = []
    size = min(h, w)
    for filters, drop, pool in ((32, 0.1, True), (64, 0.2, True), (64, 0.0, False)):
        if large and not pool:
            blocks.append(_L("Conv2D", filters=filters, kernel_size=3, padding="valid", activation="relu"))
        elif large:  # Conv -> pool -> BN -> ReLU; the Article CNN's valid layout always leaves room for the pools
            blocks += [_L("Conv2D", filters=filters, kernel_size=3, padding="valid", activation="linear"),
                       _L("MaxPooling2D", pool_size=2), _L("BatchNormalization"), _L("Activation", activation="relu")]
        else:
            blocks += [_L("Conv2D", filters=filters, kernel_size=3, padding="same", activation="linear"),
                       _L("BatchNormalization"), _L("Activation", activation="relu")]
            if pool and size >= 2:
                blocks.append(_L("MaxPooling2D", pool_size=2))
                size //= 2
        if drop and not many:
            blocks.append(_L("Dropout", rate=drop))
    blocks += [_L("GlobalAveragePooling2D"), _L("Dropout", rate=0.3)]
    return ModelSpec(aug + tuple(blocks), "Stronger CNN", (
        *notes, _("BatchNormalization steadies and speeds up training; Dropout and global average pooling (instead "
                  "of Flatten + Dense 64) cut overfitting and parameters."), head))


def _stronger_cnn_for_many_large_images(dataset: Any, head: str) -> ModelSpec:
    """More steps in the same time: the Article CNN with a lighter first convolution (measured on real MNIST)."""
    layers = (_L("Conv2D", filters=16, kernel_size=3, padding="valid", activation="relu"),
              _L("MaxPooling2D", pool_size=2),
              _L("Conv2D", filters=64, kernel_size=3, padding="valid", activation="relu"),
              _L("MaxPooling2D", pool_size=2),
              _L("Conv2D", filters=64, kernel_size=3, padding="valid", activation="relu"),
              _L("Flatten"),
              _L("Dense", units=64, activation="relu"))
    return ModelSpec(layers, "Stronger CNN", (
        _("For {shape} images, {n} of them, the preset is the Article CNN with 16 filters instead of 32 in the first "
          "convolution, which also halves the work of the second: a training step takes about {share} less CPU "
          "time, so more epochs fit in the same training time, and in the first epochs on this many images more "
          "steps were worth more than the width.").format(
              shape=_shape_text(tuple(dataset.input_shape)), n=f"{dataset.n_samples:,}", share="25 %"),
        _("No augmentation, BatchNormalization, global average pooling or Dropout: on real 28x28 MNIST (70,000 "
          "images) each of them, tried in variants of this layout, made the test accuracy reached in the same "
          "training time lower or no higher. Below {limit} images the preset uses all of them.").format(
              limit=f"{_MANY_IMAGES:,}"),
        head))
