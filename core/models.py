"""Turn a ModelSpec into a Keras model, summarise it, and export it as a runnable Python script.

`build_model` always appends the classifier head, Dense(n_classes, softmax) named "classifier"; the spec
holds only the body (see core/specs.py). Both `build_model` and `export_code` take each layer's Keras
class and arguments from one table (`_layer_call`), so the exported script rebuilds the same model.
Keras is imported inside the functions: importing this module costs nothing.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

from core.datasets import KERAS_DATASETS
from core.i18n import _
from core.specs import (
    DEFAULT_INITIALIZER,
    LayerSpec,
    ModelSpec,
    SpecError,
    analyse_spec,
    describe_layer,
    make_layer,
)

__all__ = ["BYTES_PER_PARAM", "ModelSummary", "build_model", "export_code", "export_file_stem", "layer_position",
           "model_summary"]

BYTES_PER_PARAM = 4  # float32 weights
_FAILED_WEIGHTS: dict[tuple[str, float], str] = {}  # (backbone, alpha) -> why ImageNet weights failed
_FAILED_LOCK = threading.Lock()
_OPTIMIZERS = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "rmsprop": "RMSprop"}
_LOSSES = ("sparse_categorical_crossentropy",)


@dataclass(frozen=True)
class _Reg:
    """An L1/L2 weight penalty, turned into keras.regularizers.L1L2 (or its source code)."""

    l1: float
    l2: float


def _snake(type_: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", type_).lower().replace("2_d", "2d").replace("re_lu", "relu")


def _layer_call(layer: LayerSpec, index: int) -> tuple[str, list, dict]:
    """Keras layer class name, positional and keyword arguments for one (non-Backbone) spec layer."""
    p, name = layer.params, f"{_snake(layer.type)}_{index}"
    # Keras' own default initializer is left out, so specs from before the setting build (and export) as before.
    init = p.get("kernel_initializer", DEFAULT_INITIALIZER)
    reg = {} if init == DEFAULT_INITIALIZER else {"kernel_initializer": init}
    if p.get("l1") or p.get("l2"):
        reg["kernel_regularizer"] = _Reg(p["l1"], p["l2"])
    match layer.type:
        case "Dense":
            return "Dense", [p["units"]], {"activation": p["activation"], **reg, "name": name}
        case "Conv2D":
            return "Conv2D", [p["filters"], p["kernel_size"]], {
                "strides": p["strides"], "padding": p["padding"], "activation": p["activation"], **reg,
                "name": name}
        case "LeakyReLU":
            return "LeakyReLU", [], {"negative_slope": p["negative_slope"], "name": name}
        case "MaxPooling2D" | "AveragePooling2D":
            return layer.type, [], {"pool_size": p["pool_size"], "padding": p["padding"], "name": name}
        case "Dropout":
            return "Dropout", [p["rate"]], {"name": name}
        case "Activation":
            return "Activation", [p["activation"]], {"name": name}
        case "RandomFlip":
            return "RandomFlip", [p["mode"]], {"name": name}
        case "RandomRotation":
            return "RandomRotation", [p["factor"]], {"name": name}
        case "RandomZoom" | "RandomTranslation":
            return layer.type, [p["factor"], p["factor"]], {"name": name}
        case "GlobalAveragePooling2D" | "Flatten" | "BatchNormalization":
            return layer.type, [], {"name": name}
    raise SpecError(f"layer {index}: no Keras layer for type {layer.type!r}")  # pragma: no cover


def _checked(spec: ModelSpec, dataset: Any) -> tuple[LayerSpec, ...]:
    """The spec's layers with every setting filled in; SpecError (all problems) if it cannot be built."""
    if not isinstance(spec, ModelSpec):
        raise SpecError(f"expected a ModelSpec, got {type(spec).__name__}")
    analysis = analyse_spec(spec, dataset.input_shape, dataset.n_classes, dataset.kind)
    if analysis.errors:
        raise SpecError(" ".join(analysis.errors))
    return tuple(make_layer(layer.type, _("layer {index}").format(index=i), **layer.params)
                 for i, layer in enumerate(spec.layers, 1))


def _backbone(keras: Any, p: dict, index: int, notes: list[str], warnings_: list[str]) -> Any:
    """The Keras Applications network; ImageNet weights if they can be had, else random ones and a note that
    is also a warning."""
    size, key = p["input_size"], (p["name"], p["alpha"])
    kwargs = dict(input_shape=(size, size, 3), alpha=p["alpha"], include_top=False, pooling="avg",
                  name=f"{p['name'].lower()}_{index}")
    factory = getattr(keras.applications, p["name"])
    if p["weights"] == "imagenet":
        with _FAILED_LOCK:
            failed = _FAILED_WEIGHTS.get(key)
        if failed is None:
            try:
                import warnings

                with warnings.catch_warnings():  # "weights for 224x224 will be loaded": expected, harmless
                    warnings.simplefilter("ignore", UserWarning)
                    net = factory(weights="imagenet", **kwargs)
                notes.append(_("{name} starts from ImageNet weights (pre-trained).").format(name=p["name"]))
                return net
            except Exception as exc:  # noqa: BLE001 - any download/cache failure means: no weights
                failed = str(exc).rsplit(" -- ", 1)[-1][:160] or type(exc).__name__  # the cause, not the URL
                with _FAILED_LOCK:  # do not retry on every rerun of the page
                    _FAILED_WEIGHTS[key] = failed
        warning = _("ImageNet weights for {name} could not be downloaded ({cause}). The backbone starts from "
                    "RANDOM weights, so it is not pre-trained: expect much lower accuracy, and consider switching "
                    "'trainable' on.").format(name=p["name"], cause=failed)
        notes.append(warning)
        warnings_.append(warning)
    return factory(weights=None, **kwargs)


def _build(spec: ModelSpec, dataset: Any) -> tuple[Any, list[tuple[str, Any]], list[str], list[str]]:
    """The model, (spec position or role, Keras layer) for each top-level layer, notes, and those of the
    notes that are warnings."""
    import keras

    layers_ = _checked(spec, dataset)
    notes: list[str] = []
    warnings_: list[str] = []
    inputs = keras.Input(shape=dataset.input_shape, name="input")
    entries: list[tuple[str, Any]] = []
    x = inputs
    for i, layer in enumerate(layers_, 1):
        if layer.type == "Backbone":
            p = layer.params
            size = p["input_size"]
            if x.shape[-1] == 1:
                rgb = keras.layers.Concatenate(name=f"grey_to_rgb_{i}")
                x = rgb([x, x, x])
                entries.append((f"{i} (auto)", rgb))
            if tuple(x.shape[1:3]) != (size, size):
                resize = keras.layers.Resizing(size, size, name=f"resize_{i}")
                x = resize(x)
                entries.append((f"{i} (auto)", resize))
            scale = keras.layers.Rescaling(2.0, offset=-1.0, name=f"scale_to_pm1_{i}")
            x = scale(x)
            entries.append((f"{i} (auto)", scale))
            net = _backbone(keras, p, i, notes, warnings_)
            net.trainable = p["trainable"]
            x = net(x, training=None if p["trainable"] else False)  # frozen: BatchNorm keeps its statistics
            entries.append((str(i), net))
            continue
        cls, args, kwargs = _layer_call(layer, i)
        kwargs = {k: keras.regularizers.L1L2(l1=v.l1, l2=v.l2) if isinstance(v, _Reg) else v
                  for k, v in kwargs.items()}
        keras_layer = getattr(keras.layers, cls)(*args, **kwargs)
        x = keras_layer(x)
        entries.append((str(i), keras_layer))
    head = keras.layers.Dense(dataset.n_classes, activation="softmax", name="classifier")
    outputs = head(x)
    entries.append(("head", head))
    model = keras.Model(inputs, outputs, name=export_file_stem(spec.name))
    return model, entries, notes, warnings_


def build_model(spec: ModelSpec, dataset: Any, *, notes: list[str] | None = None) -> Any:
    """A fresh, uncompiled functional keras.Model: the spec's layers plus the softmax classifier head.

    `dataset` needs only input_shape, n_classes and kind. Raises SpecError, before any weight is
    allocated, if the spec does not fit. Messages about the build (e.g. ImageNet weights unavailable)
    are appended to `notes` when a list is given.
    """
    model, _entries, build_notes, _warnings = _build(spec, dataset)
    if notes is not None:
        notes.extend(build_notes)
    return model


@dataclass(frozen=True)
class ModelSummary:
    """What the user sees about a built model; counts come from Keras itself."""

    rows: tuple[dict, ...]  # per top-level layer: layer, type, settings, output shape, params, trainable
    total_params: int  # all weights
    trainable_params: int  # weights updated by training
    non_trainable_params: int  # e.g. BatchNorm moving statistics, a frozen backbone
    flops: int  # forward pass per example, 2 per multiply-add (see _layer_flops)
    weight_bytes: int  # float32 weights in memory
    notes: tuple[str, ...]  # from the build, e.g. about pre-trained weights
    warnings: tuple[str, ...] = ()  # the notes that are bad news, e.g. ImageNet weights unavailable


def _count(weights: list) -> int:
    import math

    return sum(math.prod(int(d) for d in w.shape) for w in weights)


def _layer_flops(layer: Any) -> int:
    """Forward FLOPs per example with the conventions of core.specs.analyse_spec (nested models walked)."""
    import math

    import keras

    if isinstance(layer, keras.Model):
        return sum(_layer_flops(sub) for sub in layer.layers)
    try:
        out = tuple(int(d) for d in layer.output.shape[1:])
        inp = tuple(int(d) for d in layer.input.shape[1:])
    except (AttributeError, TypeError, ValueError):  # layers with several inputs (Add, Concatenate)
        return 0
    n_out, name = math.prod(out), type(layer).__name__
    if name == "Conv2D":
        kh, kw, cin, cout = (int(d) for d in layer.kernel.shape)
        return 2 * kh * kw * cin * n_out
    if name == "DepthwiseConv2D":
        kh, kw = (int(d) for d in layer.kernel.shape[:2])
        return 2 * kh * kw * n_out
    if name == "Dense":
        return 2 * int(layer.kernel.shape[0]) * n_out
    if name in ("MaxPooling2D", "AveragePooling2D"):
        return math.prod(layer.pool_size) * n_out
    if name == "GlobalAveragePooling2D":
        return math.prod(inp)
    if name == "BatchNormalization":
        return 2 * n_out
    if name in ("ReLU", "LeakyReLU") or (name == "Activation" and layer.get_config()["activation"] != "linear"):
        return n_out
    return 0


def layer_position(position: str) -> str:
    """A summary row's "layer" ("3", "3 (auto)" for a layer added for a backbone, or "head") as people read it."""
    if position == "head":
        return _("head")
    index, auto = position.split(" ")[0], position.endswith("(auto)")
    return _("{index} (auto)").format(index=index) if auto else position


def model_summary(spec: ModelSpec, dataset: Any) -> ModelSummary:
    """Build the model once and report each layer, the totals, FLOPs and weight memory.

    Each row's "layer" is the position as data ("3", "3 (auto)", "head"); layer_position puts it in words."""
    model, entries, notes, warnings_ = _build(spec, dataset)
    rows = []
    for position, layer in entries:
        index = position.split(" ")[0]
        spec_layer = spec.layers[int(index) - 1] if index.isdigit() else None
        if position.endswith("(auto)"):
            settings = _("added for the backbone")
        elif spec_layer is not None:
            settings = describe_layer(make_layer(spec_layer.type, **spec_layer.params))
        else:
            settings = _("{n} classes, softmax").format(n=dataset.n_classes)
        kind = type(layer).__name__
        if spec_layer is not None and spec_layer.type == "Backbone" and not position.endswith("(auto)"):
            kind = _("Backbone ({name}, {n} layers)").format(name=layer.name, n=len(layer.layers))
        rows.append({
            "layer": position, "type": kind, "settings": settings,
            "output shape": " x ".join(str(int(d)) for d in layer.output.shape[1:]),
            "params": _count(layer.weights), "trainable": _count(layer.trainable_weights),
        })
    total = int(model.count_params())
    trainable = _count(model.trainable_weights)
    flops = sum(_layer_flops(layer) for _position, layer in entries)
    return ModelSummary(tuple(rows), total, trainable, total - trainable, flops, total * BYTES_PER_PARAM,
                        tuple(notes), tuple(warnings_))


# ---------------------------------------------------------------- code export

_SKLEARN_LOADERS = {"digits": "load_digits", "iris": "load_iris", "wine": "load_wine",
                    "breast_cancer": "load_breast_cancer"}


def _source(value: Any) -> str:
    if isinstance(value, _Reg):
        return f"regularizers.L1L2(l1={value.l1!r}, l2={value.l2!r})"
    return repr(value)


def _table_code(dataset: Any, seed: int) -> list[str]:
    """For an uploaded table: its file, the preparation fitted on the training part of the split with `seed`
    (as a literal), the app's own preparation code (core.tabular's shared block) and a load_data() that
    reads the file as Keras Lab did."""
    from core import tabular

    return [
        *_table_settings_code(dataset, seed),
        "",
        "",
        "# ---- Keras Lab's own preparation code (core/tabular.py), unchanged ----",
        "",
        tabular.export_source(),
        "",
        "# ---- end of Keras Lab's preparation code ----",
        "",
        "",
        *_COLUMN_NAMES_CODE,
        "",
        "",
        "def load_data():",
        f'    """{_comment(dataset.name)}, read and prepared as Keras Lab did (rows without a target dropped)."""',
        *_TABLE_LOAD_BODY,
    ]


def _table_settings_code(dataset: Any, seed: int) -> list[str]:
    """The table's file and format, and the preparation fitted on the training part, as literals."""
    import pprint

    from core import tabular
    from core.datasets import split_indices

    train_idx = split_indices(dataset, seed=seed)[0]
    prep = tabular.check_preparation(tabular.preparation_for(dataset.table, train_idx))
    info = dict(dataset.table.file)
    literal = pprint.pformat(prep, width=110, sort_dicts=False, compact=True)
    return [
        "import os",
        "",
        "import pandas as pd",
        "",
        f"DATA_FILE = {str(info.get('label', 'data.csv'))!r}  # put the uploaded table next to this script",
        f"SEPARATOR = {str(info.get('separator', ','))!r}",
        f"ENCODING = {str(info.get('encoding', 'utf-8'))!r}",
        "# How Keras Lab prepared the table: missing values filled, categories one-hot encoded, dates expanded,",
        "# then standardised, with values fitted on the training part of the split only. Plain data.",
        f"PREPARATION = {literal}",
    ]


_COLUMN_NAMES_CODE = [
    "def column_names(header):",
    '    """Header names as Keras Lab reads them: stripped, an empty one named column_<n>, repeats get a _."""',
    "    names = []",
    "    for i, h in enumerate(header):",
    "        name = str(h).strip() or f'column_{i + 1}'",
    "        while name in names:",
    "            name += '_'",
    "        names.append(name)",
    "    return names",
]
_TABLE_LOAD_BODY = [
    "    if not os.path.exists(DATA_FILE):",
    "        print(f'{DATA_FILE} not found next to this script: random placeholder data instead')",
    "        rng = np.random.default_rng(0)",
    "        x = rng.random((200,) + INPUT_SHAPE, dtype='float32')",
    "        return x, rng.integers(0, N_CLASSES, 200).astype('int64')",
    "    frame = pd.read_csv(DATA_FILE, sep=SEPARATOR, encoding=ENCODING, dtype=str, keep_default_na=False,",
    "                        index_col=False, skip_blank_lines=True)",
    "    frame.columns = column_names(frame.columns)",
    "    y = target_codes(PREPARATION, frame[PREPARATION['target']])",
    "    inputs = parse_rows(PREPARATION, frame)",
    "    keep = y >= 0",
    "    if PREPARATION['missing'] == 'drop':",
    "        keep &= complete_rows(PREPARATION, inputs)",
    "    x = encode(PREPARATION, {name: values[keep] for name, values in inputs.items()})",
    "    return x, y[keep]",
]


def _data_code(dataset: Any, seed: int = 0) -> list[str]:
    """A load_data() that returns x, y the way Keras Lab loads them (or a clearly marked placeholder)."""
    name = dataset.name
    if getattr(dataset, "table", None) is not None:
        return _table_code(dataset, seed)
    if name == "digits":
        body = ["    from sklearn.datasets import load_digits", "",
                "    bunch = load_digits()",
                "    x = (bunch.images / 16.0).astype('float32')[..., None]  # 0..16 grey levels -> [0, 1]",
                "    return x, bunch.target.astype('int64')"]
    elif name in _SKLEARN_LOADERS:
        body = [f"    from sklearn.datasets import {_SKLEARN_LOADERS[name]}", "",
                f"    bunch = {_SKLEARN_LOADERS[name]}()",
                "    return bunch.data.astype('float32'), bunch.target.astype('int64')"]
    elif name in KERAS_DATASETS:
        body = [f"    (x_a, y_a), (x_b, y_b) = keras.datasets.{name}.load_data()  # downloads once",
                "    x = np.concatenate([x_a, x_b]).astype('float32') / 255.0",
                "    x = x.reshape((len(x),) + INPUT_SHAPE)",
                "    # the official training files, then the test file: rows from len(x_a) on are the test file",
                "    return x, np.concatenate([y_a, y_b]).ravel().astype('int64'), len(x_a)"]
    else:
        body = ["    # Keras Lab used your own data here; load it yourself: x of shape (n,) + INPUT_SHAPE as",
                "    # float32 (images scaled to [0, 1]), y as int class indices 0..N_CLASSES-1.",
                "    # Until then, random placeholder data lets the script run end to end.",
                "    rng = np.random.default_rng(0)",
                "    x = rng.random((200,) + INPUT_SHAPE, dtype='float32')",
                "    return x, rng.integers(0, N_CLASSES, 200).astype('int64')"]
    return ["def load_data():", f'    """{_comment(name)}, as Keras Lab loads it."""', *body]


def _comment(text: str) -> str:
    """Text safe inside a comment or docstring (names can come from uploads)."""
    return re.sub(r"[^\w .,:()+-]", "_", str(text))[:80]


def _split_code(cfg: Any, official: bool) -> list[str]:
    """The split as core.datasets makes it: a Keras dataset's official test file kept apart (validation carved
    from the training files), or every row pooled; stratified, with the run's seed and fractions."""
    seed, val, test = cfg.seed, cfg.val_fraction, cfg.test_fraction
    if official:
        return [
            f"    # Split as in Keras Lab: the official test file is the test part; validation is {val:.0%} of the",
            "    # training files, stratified, with a fixed seed (so results compare with published ones).",
            "    from sklearn.model_selection import train_test_split",
            "",
            f"    keras.utils.set_random_seed({seed})",
            f"    train_idx, val_idx = train_test_split(np.arange(test_start), test_size={val!r}, random_state={seed},",
            "                                          stratify=y[:test_start])",
            "    test_idx = np.arange(test_start, len(y))",
        ]
    return [
        f"    # Split as in Keras Lab: stratified {1 - val - test:.0%} / {val:.0%} / {test:.0%}, with a fixed seed.",
        "    from sklearn.model_selection import train_test_split",
        "",
        f"    keras.utils.set_random_seed({seed})",
        "    idx = np.arange(len(y))",
        f"    rest, test_idx = train_test_split(idx, test_size={test!r}, random_state={seed}, stratify=y)",
        "    train_idx, val_idx = train_test_split(",
        f"        rest, test_size={val!r} / {1 - test!r}, random_state={seed}, stratify=y[rest])",
    ]


def _fine_tune_code(cfg: Any) -> list[str]:
    """Phase 2 as core.training runs it: the backbone's top layers unfrozen (BatchNormalization stays frozen),
    a fresh optimizer at the lower rate, the epochs counting on."""
    if not cfg.fine_tune_epochs:
        return []
    phase = cfg.second_phase()
    n = cfg.fine_tune_layers
    return [
        f"    # Fine-tuning: unfreeze the backbone's top {n} layers (BatchNormalization stays frozen, keeping its",
        f"    # pre-trained statistics) and train {cfg.fine_tune_epochs} more epochs at the learning rate x "
        f"{cfg.fine_tune_lr_factor!r}.",
        "    backbone = next(layer for layer in model.layers if isinstance(layer, keras.Model))",
        "    backbone.trainable = True",
        "    for i, layer in enumerate(backbone.layers):",
        f"        layer.trainable = i >= len(backbone.layers) - {n} and not isinstance(layer, layers.BatchNormalization)",
        *_optimizer_code(phase),
        f"    model.compile(optimizer=optimizer, loss={cfg.loss!r}, metrics=['accuracy'])",
        "    done = len(history.history['loss'])",
        f"    model.fit(x_train, y[train_idx], validation_data=(x_val, y[val_idx]), batch_size={cfg.batch_size}, "
        f"initial_epoch=done,",
        f"              epochs=done + {cfg.fine_tune_epochs}, callbacks={_callbacks_code(cfg)})",
    ]


def _train_code(settings: dict, tabular: bool, prepared: bool = False, official: bool = False) -> list[str]:
    from core.training import TrainConfig

    try:
        cfg = TrainConfig.from_dict(settings).validate()
    except (TypeError, ValueError) as exc:
        raise SpecError(_("training settings: {problem}").format(problem=exc)) from None
    if cfg.loss not in _LOSSES:
        raise SpecError(_("the exported script trains with {losses}, got {loss}").format(
            losses=", ".join(_LOSSES), loss=repr(cfg.loss)))
    loss, batch, epochs = cfg.loss, cfg.batch_size, cfg.epochs
    standardise = [
        "    # Standardise features with statistics of the training part only.",
        "    mean, std = x_train.mean(axis=0), x_train.std(axis=0)",
        "    std[std == 0] = 1.0",
        "    x_train, x_val, x_test = ((a - mean) / std for a in (x_train, x_val, x_test))",
    ] if tabular and not prepared else [
        "    # load_data() applied PREPARATION: fitted on this training part, standardisation included.",
    ] if prepared else []
    return [
        "",
        *_split_code(cfg, official),
        "    print(f'split: {len(train_idx)} train / {len(val_idx)} validation / {len(test_idx)} test')",
        "    x_train, x_val, x_test = x[train_idx], x[val_idx], x[test_idx]",
        *standardise,
        *_optimizer_code(cfg),
        "    model.compile(",
        "        optimizer=optimizer,",
        f"        loss={loss!r},",
        "        metrics=['accuracy'],",
        "    )",
        f"    history = model.fit(x_train, y[train_idx], validation_data=(x_val, y[val_idx]), batch_size={batch}, "
        f"epochs={epochs},",
        f"                        callbacks={_callbacks_code(cfg)})",
        *_fine_tune_code(cfg),
        "    loss_value, accuracy = model.evaluate(x_test, y[test_idx], verbose=0)",
        "    print(f'test accuracy: {accuracy:.4f}')",
    ]


def _optimizer_code(cfg: Any) -> list[str]:
    """The optimizer exactly as core.training builds it: schedule, momentum (SGD), weight decay (AdamW)."""
    steps = f"int(np.ceil(len(train_idx) / {cfg.batch_size}))"
    lr = repr(cfg.learning_rate)
    lines = []
    if cfg.schedule == "step":
        lines.append(f"    lr = keras.optimizers.schedules.ExponentialDecay({lr}, decay_steps={cfg.step_every} * "
                     f"{steps}, decay_rate={cfg.step_factor!r}, staircase=True)")
        lr = "lr"
    elif cfg.schedule == "cosine":
        lines.append(f"    lr = keras.optimizers.schedules.CosineDecay({lr}, decay_steps={cfg.epochs} * {steps})")
        lr = "lr"
    extra = {"sgd": f", momentum={cfg.momentum!r}", "adamw": f", weight_decay={cfg.weight_decay!r}"}
    lines.append(f"    optimizer = keras.optimizers.{_OPTIMIZERS[cfg.optimizer]}(learning_rate={lr}"
                 f"{extra.get(cfg.optimizer, '')})")
    return lines


def _callbacks_code(cfg: Any) -> str:
    """Early stopping and the plateau schedule, as core.training adds them."""
    calls = []
    if cfg.early_stopping:
        calls.append(f"keras.callbacks.EarlyStopping(monitor={cfg.monitor!r}, patience={cfg.patience}, "
                     f"restore_best_weights=True)")
    if cfg.schedule == "plateau":
        calls.append(f"keras.callbacks.ReduceLROnPlateau(monitor={cfg.monitor!r}, factor={cfg.step_factor!r}, "
                     f"patience={cfg.step_every}, min_lr=1e-7)")
    return f"[{', '.join(calls)}]"


def export_file_stem(name: str) -> str:
    """A safe, readable stem for a spec name: "Article CNN (adapted)" -> "article_cnn_adapted".

    Names the downloaded files and the Keras model itself (built here and in the exported script alike)."""
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_") or "model"


def export_code(spec: ModelSpec, dataset: Any, train_settings: dict | None = None) -> str:
    """Python source that rebuilds the model with Keras (and loads the data; trains when settings are given).

    Only settings that passed validation reach the code, as literals; names are sanitised in comments.
    train_settings keys used: optimizer, learning_rate, batch_size, epochs, loss, seed (others ignored).
    """
    layers_ = _checked(spec, dataset)
    prepared = getattr(dataset, "table", None) is not None
    keras_data = dataset.name in KERAS_DATASETS and not prepared
    official = keras_data and (train_settings or {}).get("split", "official") == "official"
    if train_settings is not None:
        _train_code(dict(train_settings), dataset.kind == "tabular", prepared, official)  # settings checked first
    try:
        seed = int((train_settings or {}).get("seed", 0))
    except (TypeError, ValueError):
        seed = 0
    lines = [
        *_header_code(spec, dataset, prepared),
        *_data_code(dataset, seed),
        "",
        "",
        *_build_code(spec, layers_, tuple(int(d) for d in dataset.input_shape)),
        "",
        "",
        "if __name__ == '__main__':",
        "    model = build_model()",
        "    model.summary()",
        "    print(f'parameters: {model.count_params()}')",
        "    x, y, test_start = load_data()" if keras_data else "    x, y = load_data()",
        "    assert x.shape[1:] == INPUT_SHAPE, f'data shape {x.shape[1:]} does not fit the model {INPUT_SHAPE}'",
        "    print(f'data: {x.shape[0]} examples of shape {x.shape[1:]}')",
    ]
    if train_settings is not None:
        lines += _train_code(dict(train_settings), dataset.kind == "tabular", prepared, official)
    return "\n".join(lines) + "\n"


def _header_code(spec: ModelSpec, dataset: Any, prepared: bool) -> list[str]:
    """The script's docstring, imports and the input shape and class count as constants."""
    shape, n_classes = tuple(int(d) for d in dataset.input_shape), int(dataset.n_classes)
    return [
        "#!/usr/bin/env python",
        f'"""{_comment(spec.name)} for {_comment(dataset.name)}, exported from Keras Lab.',
        "",
        "Rebuilds the same Keras model (the last Dense layer is the classifier head).",
        "Run: python this_file.py   (needs keras 3 with TensorFlow, numpy, scikit-learn"
        + (", pandas; and the table" if prepared else "") + ")",
        '"""',
        "",
        "import numpy as np",
        "import keras",
        "from keras import layers, regularizers",
        "",
        f"INPUT_SHAPE = {shape!r}",
        f"N_CLASSES = {n_classes}",
        "",
        "",
    ]


def _build_code(spec: ModelSpec, layers_: tuple[LayerSpec, ...], shape: tuple[int, ...]) -> list[str]:
    """build_model(): the input, each checked layer as a Keras call, and the classifier head."""
    lines = [
        "def build_model():",
        "    inputs = keras.Input(shape=INPUT_SHAPE, name='input')",
        "    x = inputs",
    ]
    for i, layer in enumerate(layers_, 1):
        if layer.type == "Backbone":
            lines += _backbone_code(layer.params, i, shape)
            continue
        cls, args, kwargs = _layer_call(layer, i)
        arg_text = ", ".join([_source(a) for a in args] + [f"{k}={_source(v)}" for k, v in kwargs.items()])
        lines.append(f"    x = layers.{cls}({arg_text})(x)")
    return lines + [
        "    outputs = layers.Dense(N_CLASSES, activation='softmax', name='classifier')(x)",
        f"    return keras.Model(inputs, outputs, name={export_file_stem(spec.name)!r})",
    ]


def _backbone_code(p: dict[str, Any], i: int, shape: tuple[int, ...]) -> list[str]:
    """A pretrained backbone as core.models builds it: grey to RGB, resized, scaled to [-1, 1]; ImageNet
    weights when they can be had, else the same network with random weights."""
    size = p["input_size"]
    kwargs = (f"input_shape=({size}, {size}, 3), alpha={p['alpha']!r}, include_top=False, "
              f"pooling='avg', name='{p['name'].lower()}_{i}'")
    lines = []
    if shape[-1] == 1:
        lines.append(f"    x = layers.Concatenate(name='grey_to_rgb_{i}')([x, x, x])  # grey -> RGB")
    if shape[:2] != (size, size):
        lines.append(f"    x = layers.Resizing({size}, {size}, name='resize_{i}')(x)")
    lines.append(f"    x = layers.Rescaling(2.0, offset=-1.0, name='scale_to_pm1_{i}')(x)  # [0, 1] -> [-1, 1]")
    if p["weights"] == "imagenet":
        lines += [
            "    try:",
            f"        backbone = keras.applications.{p['name']}(weights='imagenet', {kwargs})",
            "    except Exception as exc:  # no network: same network, random weights",
            "        print(f'ImageNet weights unavailable ({exc}); using random weights')",
            f"        backbone = keras.applications.{p['name']}(weights=None, {kwargs})",
        ]
    else:
        lines.append(f"    backbone = keras.applications.{p['name']}(weights=None, {kwargs})")
    lines.append(f"    backbone.trainable = {p['trainable']!r}")
    lines.append(f"    x = backbone(x, training={'None' if p['trainable'] else 'False'})")
    return lines
