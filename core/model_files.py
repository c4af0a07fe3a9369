"""Loading .keras models safely, and predicting with them (core.prediction_input reads what is predicted on).

Keras 3's safe mode blocks Python lambdas but still lets a crafted config call public Keras functions
(e.g. a Lambda wrapping `keras.config.set_floatx`, which changes the whole process) or make Keras allocate
gigabytes from a few kilobytes of JSON. So a model file is checked *before* Keras deserialises it: the
zip is walked with caps, its config.json is read and every object in it must be a known Keras class
from a Keras module, with sizes under caps, and the weights Keras would allocate are bounded from the
model's own graph (core.model_bound: optional metadata is never trusted, an unknown size is refused).
An uploaded file is then checked and loaded once more in a child process with memory and time limits
(core.model_check); only then does the server run `keras.saving.load_model(safe_mode=True,
compile=False)`, comparing process-wide Keras settings before and after.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import threading
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from core.checks import KerasLabError
from core.datasets import model_input
from core.settings import MAX_PARAMS

__all__ = [
    "MAX_DIMENSION",
    "MAX_MODEL_BYTES",
    "MAX_PARAMS",
    "ModelFileError",
    "check_compatible",
    "check_model_config",
    "check_model_file",
    "load_model_bytes",
    "load_model_file",
    "load_run_model",
    "predict_batch_size",
    "predict_probabilities",
]

MAX_MODEL_BYTES = 200 * 1024 * 1024  # compressed .keras file
_MAX_UNCOMPRESSED = 600 * 1024 * 1024  # sum of declared member sizes
_MAX_MEMBERS = 64
_MAX_RATIO = 200  # declared / compressed size of any big member (zip bombs)
_MAX_CONFIG_BYTES = 8 * 1024 * 1024
_MAX_DEPTH = 64  # nesting of config.json
MAX_DIMENSION = 1_000_000  # any single size field (units, filters, a shape entry)
_MAX_INPUT_ELEMENTS = 10_000_000  # values per sample in any tensor of the graph, inputs included
_PREDICT_BYTES = 256 * 1024 * 1024  # activations of one predict() batch
_UNKNOWN_SIZE = 1024  # a size a model leaves open (variable image or sequence size), when sizing batches
_MAX_CALLS = 5_000  # layer calls followed by the bound (nested models and shared layers included)


class ModelFileError(KerasLabError):
    """A model file was refused or cannot be used; the message is meant for the user."""


_REFUSED: OrderedDict[tuple, str] = OrderedDict()  # (sha256, caps) of a refused upload -> the message
_REFUSED_LOCK = threading.Lock()
_MAX_REFUSED = 64
_TRANSIENT = ("took longer than", "is being checked")  # refusals that may not recur on a quieter server


# ---- the allow-list: class name -> module prefixes it may come from ---------------------------------
_LAYERS = """InputLayer Dense EinsumDense Conv1D Conv2D Conv3D SeparableConv1D SeparableConv2D DepthwiseConv1D
DepthwiseConv2D Conv1DTranspose Conv2DTranspose Conv3DTranspose MaxPooling1D MaxPooling2D MaxPooling3D
AveragePooling1D AveragePooling2D AveragePooling3D GlobalAveragePooling1D GlobalAveragePooling2D
GlobalAveragePooling3D GlobalMaxPooling1D GlobalMaxPooling2D GlobalMaxPooling3D Flatten Reshape Permute
RepeatVector Dropout SpatialDropout1D SpatialDropout2D SpatialDropout3D GaussianNoise GaussianDropout
AlphaDropout ActivityRegularization BatchNormalization LayerNormalization GroupNormalization UnitNormalization
Activation ReLU LeakyReLU PReLU ELU Softmax Add Subtract Multiply Average Maximum Minimum Concatenate Dot
Embedding LSTM GRU SimpleRNN LSTMCell GRUCell SimpleRNNCell Bidirectional TimeDistributed ZeroPadding1D
ZeroPadding2D ZeroPadding3D Cropping1D Cropping2D Cropping3D UpSampling1D UpSampling2D UpSampling3D Rescaling
Resizing CenterCrop Normalization RandomFlip RandomRotation RandomZoom RandomTranslation RandomContrast RandomBrightness
RandomCrop Identity Masking Attention AdditiveAttention MultiHeadAttention""".split()
_INITIALIZERS = """Zeros Ones Constant RandomNormal RandomUniform TruncatedNormal GlorotUniform GlorotNormal
HeUniform HeNormal LecunUniform LecunNormal Orthogonal Identity IdentityInitializer VarianceScaling""".split()
_ALLOWED: dict[str, tuple[str, ...]] = {
    **{c: ("keras.initializers", "keras.src.initializers") for c in _INITIALIZERS},
    **{c: ("keras.layers", "keras.src.layers") for c in _LAYERS},
    **{c: ("keras.regularizers", "keras.src.regularizers") for c in ("L1", "L2", "L1L2", "OrthogonalRegularizer")},
    **{c: ("keras.constraints", "keras.src.constraints") for c in ("MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm")},
    **{c: ("keras.optimizers", "keras.src.optimizers") for c in
       ("Adam", "AdamW", "SGD", "RMSprop", "Adagrad", "Adadelta", "Adamax", "Nadam", "Ftrl", "Lion",
        "ExponentialDecay", "CosineDecay", "CosineDecayRestarts", "PiecewiseConstantDecay",
        "InverseTimeDecay", "PolynomialDecay")},
    **{c: ("keras.losses", "keras.src.losses") for c in
       ("SparseCategoricalCrossentropy", "CategoricalCrossentropy", "BinaryCrossentropy", "MeanSquaredError")},
    **{c: ("keras.metrics", "keras.src.metrics") for c in
       ("SparseCategoricalAccuracy", "CategoricalAccuracy", "Accuracy", "BinaryAccuracy", "MeanMetricWrapper")},
    "Sequential": ("keras", "keras.src.models"),
    "Functional": ("keras.src.models.functional", "keras.src.models", "keras"),
    "Model": ("keras", "keras.src.models"),
    "DTypePolicy": ("keras", "keras.src.dtype_policies", "keras.dtype_policies"),
    "FloatDTypePolicy": ("keras", "keras.src.dtype_policies", "keras.dtype_policies"),
}
_ALLOWED["Identity"] = ("keras.layers", "keras.src.layers", "keras.initializers", "keras.src.initializers")
_INTERNAL = {"__keras_tensor__"}  # functional graph references: a shape, a dtype and a layer name
_FORBIDDEN_HINT = {"Lambda": "a Lambda layer runs arbitrary code",
                   "function": "a reference to a Python function",
                   "__lambda__": "serialised Python bytecode", "__function__": "a Python function"}
_SIZE_KEYS = {"units", "filters", "input_dim", "output_dim", "kernel_size", "pool_size", "size", "n",
              "target_shape", "batch_shape", "input_shape", "shape", "dims", "num_heads", "key_dim",
              "value_dim", "depth_multiplier", "output_shape", "cropping", "padding", "height", "width",
              "sequence_length", "lora_rank"}
# Weights are counted, not bytes: only dtype policies of at most 4 bytes per weight are loaded.
_POLICIES = ("float32", "float16", "bfloat16", "mixed_float16", "mixed_bfloat16")
_TENSOR_DTYPES = ("float32", "float16", "bfloat16", "float64", "int8", "int16", "int32", "int64", "uint8", "bool")


def _module_ok(module: Any, allowed: tuple[str, ...]) -> bool:
    return isinstance(module, str) and any(module == a or module.startswith(a + ".") for a in allowed)


def _ints(value: Any) -> list[int]:
    """Every integer inside a size field (ints, lists, nested lists)."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, float) and value.is_integer():
        return [int(value)]
    if isinstance(value, list | tuple):
        return [i for v in value for i in _ints(v)]
    return []


def _check_size(key: str, value: Any, path: str) -> None:
    for v in _ints(value):
        if abs(v) > MAX_DIMENSION:
            raise ModelFileError(f"{path} = {v} is larger than the allowed {MAX_DIMENSION:,}: refusing an "
                                 f"oversized model")
    if key in ("batch_shape", "shape") and isinstance(value, list):
        dims = [d for d in value if isinstance(d, int)]
        if dims and math.prod(dims) > _MAX_INPUT_ELEMENTS:
            raise ModelFileError(f"{path} = {value} has {math.prod(dims):,} values per sample, above the cap "
                                 f"of {_MAX_INPUT_ELEMENTS:,}")


def check_model_config(config: Any) -> dict[str, Any]:
    """Walk a model's config.json; raise ModelFileError on anything not plainly a standard Keras model.

    Every object must be an allowed Keras class with sizes under caps; then the weights Keras would
    allocate are bounded from the model's own graph (core.model_bound), never from optional metadata.
    Returns a summary: {"class_name", "layers", "params_estimate" (that upper bound), "heaviest"}.
    """
    if not isinstance(config, dict) or "class_name" not in config:
        raise ModelFileError("config.json does not describe a Keras model (no class_name at the top)")
    if config.get("class_name") not in ("Sequential", "Functional", "Model"):
        raise ModelFileError(f"the file holds a {config.get('class_name')!r}, not a Sequential or Functional "
                             f"model")
    layers = _walk_config(config, "model", 0)
    from core.model_bound import bound_model

    bound = bound_model(config, max_values=_MAX_INPUT_ELEMENTS, max_calls=_MAX_CALLS)
    if bound.params > MAX_PARAMS:
        layer, weights = bound.heaviest
        raise ModelFileError(f"the model would have up to {bound.params:,} weights ({layer} alone up to "
                             f"{weights:,}); the cap is {MAX_PARAMS:,}")
    return {"class_name": config["class_name"], "layers": layers, "params_estimate": bound.params,
            "heaviest": bound.heaviest}


def _walk_config(node: Any, path: str, depth: int) -> int:
    """Check every object and size field below node; returns how many Keras layers it holds."""
    if depth > _MAX_DEPTH:
        raise ModelFileError(f"config.json is nested deeper than {_MAX_DEPTH} levels at {path}")
    if isinstance(node, list):
        return sum(_walk_config(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(node))
    if not isinstance(node, dict):
        return 0
    layers = _check_object(node, path) if "class_name" in node else 0
    for key, value in node.items():
        if depth == 0 and key == "compile_config":
            continue  # load_model(compile=False) drops the top-level compile config unread
        if key in _SIZE_KEYS:
            _check_size(key, value, f"{path}.{key}")
        layers += _walk_config(value, f"{path}.{key}", depth + 1)
    return layers


def _check_object(node: dict[str, Any], path: str) -> int:
    """Check one serialised object: its class, module, sizes and dtype. 1 when it is a Keras layer, else 0."""
    name = node.get("class_name")
    where = f"{path} ({name!r})"
    if not isinstance(name, str):
        raise ModelFileError(f"{path}: class_name must be a string")
    if name in _FORBIDDEN_HINT or name.startswith("__") and name not in _INTERNAL:
        hint = _FORBIDDEN_HINT.get(name, "a special serialised object")
        raise ModelFileError(f"refusing {where}: {hint}; only standard Keras layers are allowed")
    if name in _INTERNAL:
        return 0
    _check_origin(node, name, where)
    cfg = node.get("config")
    if isinstance(cfg, dict):  # sizes first: the clearest message for an absurd layer
        for key, value in cfg.items():
            if key in _SIZE_KEYS:
                _check_size(key, value, f"{path}.config.{key}")
    _check_dtype(name, cfg, where)
    return int(name in _LAYERS and isinstance(cfg, dict))


def _check_origin(node: dict[str, Any], name: str, where: str) -> None:
    """A built-in class from the Keras module it belongs to, never a registered custom object."""
    reg = node.get("registered_name")
    if reg is not None and reg != name:
        raise ModelFileError(f"refusing {where}: it is a custom object registered as {reg!r}; only "
                             f"built-in Keras classes are allowed")
    module = node.get("module")
    if not (isinstance(module, str) and (module == "keras" or module.startswith("keras."))):
        raise ModelFileError(f"refusing {where}: it comes from module {module!r}, not from Keras")
    if name not in _ALLOWED:
        raise ModelFileError(f"refusing {where}: {name} is not among the standard Keras classes this "
                             f"app loads")
    if not _module_ok(module, _ALLOWED[name]):
        raise ModelFileError(f"refusing {where}: {name} must come from {' or '.join(_ALLOWED[name])}, "
                             f"not {module!r}")


def _check_dtype(name: str, cfg: Any, where: str) -> None:
    """Dtype policies and layer dtypes of at most 4 bytes a weight (an InputLayer may take any tensor dtype)."""
    if name in ("DTypePolicy", "FloatDTypePolicy"):
        policy = cfg.get("name") if isinstance(cfg, dict) else cfg
        if policy not in _POLICIES:
            raise ModelFileError(f"refusing {where}: dtype policy {str(policy)[:40]!r} is not accepted; "
                                 f"allowed: {', '.join(_POLICIES)}")
    if name in _LAYERS and isinstance(cfg, dict):
        dtype = cfg.get("dtype")
        allowed = _TENSOR_DTYPES if name == "InputLayer" else _POLICIES
        if dtype is not None and not isinstance(dtype, dict) and dtype not in allowed:
            raise ModelFileError(f"refusing {where}: dtype {str(dtype)[:40]!r} is not accepted; allowed: "
                                 f"{', '.join(allowed)}")


def check_model_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Check a .keras file without deserialising it: a sane zip holding a config.json that passes the walk."""
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_MODEL_BYTES:
        raise ModelFileError(f"the model file is {size / 1e6:.1f} MB; the cap is {MAX_MODEL_BYTES / 1e6:.0f} MB")
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith(b"\x89PNG"):
        raise ModelFileError("this is a PNG image renamed to .keras, not a Keras model")
    if not head.startswith(b"PK"):
        kind = "an HDF5 (.h5) file; re-save it with model.save('x.keras')" if head.startswith(b"\x89HDF") \
            else "not a zip archive"
        raise ModelFileError(f"a .keras model is a zip archive with config.json inside; this file is {kind}")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) > _MAX_MEMBERS:
                raise ModelFileError(f"the archive has {len(infos)} files; a .keras model has a handful "
                                     f"(cap {_MAX_MEMBERS})")
            total = sum(i.file_size for i in infos)
            if total > _MAX_UNCOMPRESSED:
                raise ModelFileError(f"the archive unpacks to {total / 1e6:.0f} MB; the cap is "
                                     f"{_MAX_UNCOMPRESSED / 1e6:.0f} MB")
            for info in infos:
                if info.file_size > 1_000_000 and info.file_size > _MAX_RATIO * max(info.compress_size, 1):
                    raise ModelFileError(f"{info.filename!r} is compressed {info.file_size // max(info.compress_size, 1)}:1 "
                                         f"— refusing a possible zip bomb")
            names = {i.filename for i in infos}
            if "config.json" not in names:
                raise ModelFileError("the archive has no config.json: it is not a Keras 3 .keras model")
            cinfo = zf.getinfo("config.json")
            if cinfo.file_size > _MAX_CONFIG_BYTES:
                raise ModelFileError(f"config.json is {cinfo.file_size / 1e6:.1f} MB; the cap is "
                                     f"{_MAX_CONFIG_BYTES / 1e6:.0f} MB")
            raw = zf.read("config.json")
            if not any(n.endswith(".weights.h5") or n.endswith(".weights.npz") for n in names):
                raise ModelFileError("the archive has no weights file (model.weights.h5)")
            zf.testzip() if size < 20 * 1024 * 1024 else None  # CRC check: catches truncated small files
    except zipfile.BadZipFile as exc:
        raise ModelFileError(f"the file is not a complete zip archive (truncated or damaged: {exc})") from exc
    except (EOFError, zipfile.LargeZipFile) as exc:
        raise ModelFileError(f"the zip archive is truncated or damaged ({exc})") from exc
    try:
        config = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ModelFileError(f"config.json is not valid JSON ({exc})") from exc
    return check_model_config(config)


# ---- loading -----------------------------------------------------------------------------------------


def _keras_settings() -> dict[str, Any]:
    """Process-wide Keras settings a crafted config could change through public keras.config functions."""
    import keras
    from keras.src.backend.common import global_state

    cfg = keras.config
    return {"floatx": cfg.floatx(), "image_data_format": cfg.image_data_format(), "epsilon": cfg.epsilon(),
            "dtype_policy": cfg.dtype_policy().name, "max_epochs": cfg.max_epochs(),
            "max_steps_per_epoch": cfg.max_steps_per_epoch(),
            "interactive_logging": cfg.is_interactive_logging_enabled(),
            "traceback_filtering": cfg.is_traceback_filtering_enabled(),
            "safe_mode_saving": global_state.get_global_attribute("safe_mode_saving")}


def _restore_settings(before: dict[str, Any]) -> None:
    import keras
    from keras.src.backend.common import global_state

    cfg = keras.config
    cfg.set_floatx(before["floatx"])
    cfg.set_image_data_format(before["image_data_format"])
    cfg.set_epsilon(before["epsilon"])
    cfg.set_dtype_policy(before["dtype_policy"])
    cfg.set_max_epochs(before["max_epochs"])
    cfg.set_max_steps_per_epoch(before["max_steps_per_epoch"])
    (cfg.enable_interactive_logging if before["interactive_logging"] else cfg.disable_interactive_logging)()
    (cfg.enable_traceback_filtering if before["traceback_filtering"] else cfg.disable_traceback_filtering)()
    global_state.set_global_attribute("safe_mode_saving", before["safe_mode_saving"])


def _keras_load(path: str | os.PathLike[str]) -> Any:
    """keras.saving.load_model(safe_mode=True, compile=False); refuse if process-wide settings changed."""
    import keras

    before = _keras_settings()
    try:
        model = keras.saving.load_model(str(path), safe_mode=True, compile=False)
    except ModelFileError:
        raise
    except Exception as exc:  # any deserialisation failure becomes a message, never a traceback
        raise ModelFileError(f"Keras could not load the model: {type(exc).__name__}: {str(exc)[:300]}") from exc
    finally:
        after = _keras_settings()
        changed = [k for k in before if before[k] != after[k]]
        if changed:
            _restore_settings(before)
    if changed:
        raise ModelFileError(f"loading the model changed process-wide Keras settings ({', '.join(changed)}); "
                             f"they were restored and the model was refused")
    if not isinstance(model, keras.Model):
        raise ModelFileError(f"the file holds a {type(model).__name__}, not a Keras model")
    return model


def load_model_file(path: str | os.PathLike[str], *, isolate: bool = True) -> Any:
    """Check, have a child process check and load it under memory and time limits, then load it here.

    The static check refuses most hostile files at once; the child (core.model_check) is for what it
    misses. `isolate=False` skips the child: only for files this server wrote itself (see load_run_model).
    """
    check_model_file(path)
    if not isolate:
        return _keras_load(path)
    from core.model_check import check_in_child, checking_turn

    with checking_turn():  # the server's load too: uploads are loaded one at a time
        check_in_child(path)
        return _keras_load(path)


def load_model_bytes(data: bytes) -> Any:
    """An uploaded model: written to a private temporary file (never the client's file name), then loaded.

    A refusal is remembered by content (and caps): Streamlit reruns the page on every click while the
    refused file stays in the uploader, and each rerun must not start another checking child."""
    if len(data) > MAX_MODEL_BYTES:
        raise ModelFileError(f"the model file is {len(data) / 1e6:.1f} MB; the cap is "
                             f"{MAX_MODEL_BYTES / 1e6:.0f} MB")
    from core import model_check

    key = (hashlib.sha256(data).hexdigest(), MAX_PARAMS, MAX_DIMENSION, model_check.CHECK_MEMORY_BYTES)
    with _REFUSED_LOCK:
        if key in _REFUSED:
            raise ModelFileError(_REFUSED[key])
    fd, tmp = tempfile.mkstemp(suffix=".keras", prefix="upload-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return load_model_file(tmp)
    except ModelFileError as exc:
        if not any(t in str(exc) for t in _TRANSIENT):
            with _REFUSED_LOCK:
                _REFUSED[key] = str(exc)
                while len(_REFUSED) > _MAX_REFUSED:
                    _REFUSED.popitem(last=False)
        raise
    finally:
        os.unlink(tmp)


def load_run_model(store: Any, run_id: str) -> Any:
    """The model of one of our runs, statically checked like any other file; loaded in the child first when
    the run was imported from a zip (core.run_import), i.e. when a visitor supplied the file.

    Skipping the child for the server's own runs is safe: their model.keras was written by this server's own
    training from a spec that passed core.specs' caps (the same 50 M weights); the static bound still runs,
    in case a run folder is copied in by hand. The child would cost ~4 s and ~0.8 GB on every Evaluate view.
    """
    path = store.model_path(run_id)
    if not path.is_file():
        raise ModelFileError(f"run {run_id} has no model.keras (it did not finish saving a model)")
    imported = isinstance(store.read_config(run_id).get("imported"), dict)
    return load_model_file(path, isolate=imported)


def _io_shapes(model: Any) -> tuple[tuple, tuple]:
    ins = model.inputs if getattr(model, "inputs", None) else None
    if not ins or len(ins) != 1:
        raise ModelFileError(f"the model must have exactly one input, it has {len(ins or [])}")
    outs = model.outputs
    if not outs or len(outs) != 1:
        raise ModelFileError(f"the model must have exactly one output, it has {len(outs or [])}")
    return tuple(ins[0].shape[1:]), tuple(outs[0].shape[1:])


def check_compatible(model: Any, dataset: Any) -> None:
    """The model must take the dataset's samples and give one probability per class; say both shapes if not."""
    in_shape, out_shape = _io_shapes(model)
    want = tuple(dataset.input_shape)
    if len(in_shape) != len(want) or any(a is not None and a != b for a, b in zip(in_shape, want, strict=False)):
        raise ModelFileError(f"the model expects inputs of shape {in_shape} but {dataset.name!r} has samples "
                             f"of shape {want}")
    if out_shape != (dataset.n_classes,):
        raise ModelFileError(f"the model outputs shape {out_shape} but {dataset.name!r} has "
                             f"{dataset.n_classes} classes (expected ({dataset.n_classes},))")


def _activation_values(model: Any) -> int:
    """Values one sample's layer outputs hold in all, nested models included: an upper bound on activations."""
    total, seen = 0, 0
    stack = list(getattr(model, "layers", []))
    while stack and seen < 10_000:
        layer, seen = stack.pop(), seen + 1
        stack.extend(getattr(layer, "layers", None) or [])
        try:
            outs = layer.output if isinstance(layer.output, list | tuple) else [layer.output]
            total += sum(math.prod(_UNKNOWN_SIZE if d is None else int(d) for d in o.shape[1:]) for o in outs)
        except (AttributeError, ValueError, TypeError):  # a layer with several call sites or none
            continue
    return total


def predict_batch_size(model: Any, batch_size: int = 256) -> int:
    """A batch size whose activations fit in _PREDICT_BYTES: an uploaded model with huge feature maps
    would otherwise make one predict() batch take gigabytes of the server's memory."""
    per_sample = 4 * max(_activation_values(model), 1)  # float32
    return int(max(1, min(batch_size, _PREDICT_BYTES // per_sample)))


def predict_probabilities(model: Any, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class probabilities; outputs that are not probabilities (logits) get a softmax."""
    batch_size = predict_batch_size(model, batch_size)
    out = np.asarray(model.predict(model_input(x), batch_size=batch_size, verbose=0),
                     dtype=np.float64)
    if out.ndim != 2:
        raise ModelFileError(f"the model returned shape {out.shape}; expected (samples, classes)")
    if not np.isfinite(out).all():
        raise ModelFileError("the model returned NaN or infinite values")
    rows_ok = np.allclose(out.sum(axis=1), 1.0, atol=1e-3) and out.min() >= -1e-6
    if not rows_ok:
        e = np.exp(out - out.max(axis=1, keepdims=True))
        out = e / e.sum(axis=1, keepdims=True)
    return out
