"""An upper bound on the weights Keras will allocate for a model config, by shape arithmetic alone.

A .keras file's optional metadata (`build_config`, the shapes written next to graph tensors) can be left
out or can lie, and Keras builds each layer from whatever it meets first: a `build_config` while the layer
is deserialised, else the shapes that reach it through the model's own graph. So every layer is bounded
from both, taking the larger, and the graph is followed the way Keras rebuilds it: a Sequential from its
InputLayer (or declared input shape) layer by layer, a Functional model node by node through the layer
names its inbound nodes refer to, nested models and wrappers included. A size the graph leaves unknown
where a weight needs it is refused, never assumed. Pure Python: no TensorFlow, nothing allocated.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from core.checks import whole_number
from core.model_files import ModelFileError

__all__ = ["Bound", "bound_model"]

Shape = tuple  # (batch, d1, d2, ...): ints, or None where the graph leaves a size unknown

_MODELS = ("Sequential", "Functional", "Model")
_SAME_SHAPE = {
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise", "GaussianDropout",
    "AlphaDropout", "ActivityRegularization", "UnitNormalization", "Activation", "ReLU", "LeakyReLU", "ELU",
    "Softmax", "Rescaling", "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation",
    "RandomContrast", "RandomBrightness", "Identity", "Masking", "BatchNormalization", "LayerNormalization",
    "GroupNormalization", "PReLU", "Normalization"}
_MERGE = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"}
_RNN = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}
_CELLS = {"LSTMCell": 4, "GRUCell": 3, "SimpleRNNCell": 1}


class _Unknown(Exception):
    """A size a weight depends on is not known from the graph (None, or the rank does not fit)."""


@dataclass(frozen=True)
class Bound:
    """The result: an upper bound on all weights, and the heaviest layer (for messages)."""

    params: int  # weights over all layers, nested ones included
    heaviest: tuple[str, int]  # (layer, its weights)
    calls: int  # layer calls followed to get there


@dataclass
class _Ctx:
    max_values: int  # values per sample in any tensor of the graph
    max_calls: int  # layer calls followed in all: a crafted graph must not make the check itself slow
    calls: int = 0
    heaviest: tuple[str, int] = ("", 0)
    models: dict = field(default_factory=dict)  # (id of a model node, call shapes) -> its result

    def note(self, where: str, weights: int) -> None:
        if weights > self.heaviest[1]:
            self.heaviest = (where, weights)


def bound_model(config: dict[str, Any], *, max_values: int, max_calls: int) -> Bound:
    """Upper bound on the weights of a checked model config (class names already on the allow-list).

    Raises ModelFileError when the graph cannot be followed or leaves a weight's size unknown."""
    ctx = _Ctx(max_values, max_calls)
    params, _ = _model(config, None, ctx, "model", top=True)
    return Bound(params, ctx.heaviest, ctx.calls)


# ---- small readers: every value a bound uses is checked, none is assumed -----------------------------


def _where(path: str, node: dict[str, Any]) -> str:
    cfg = node.get("config") if isinstance(node.get("config"), dict) else {}
    name = cfg.get("name", node.get("name"))
    return f"{node.get('class_name')} layer {str(name)[:60]!r}" if name else f"{path} ({node.get('class_name')})"


def _int(cfg: dict[str, Any], key: str, default: Any, where: str, *, low: int = 0) -> int:
    """A whole-number setting ≥ low (JSON may write 3 as 3.0); the default when it is missing or null."""
    value = cfg.get(key, default)
    return whole_number(f"{where}: {key}", default if value is None else value, low, error=ModelFileError,
                        integral_floats=True)


def _ints(cfg: dict[str, Any], key: str, n: int, default: Any, where: str, *, low: int = 1) -> tuple[int, ...]:
    """An int or a list of n ints (kernel_size, strides, ...)."""
    value = cfg.get(key, default)
    if value is None:
        value = default
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = [value] * n
    if not isinstance(value, list | tuple) or len(value) != n:
        raise ModelFileError(f"{where}: {key} = {str(value)[:40]} should be a number or {n} numbers")
    return tuple(_int({key: v}, key, None, where, low=low) for v in value)


def _shape(value: Any, where: str, what: str) -> Shape:
    """A shape from a config (batch dimension included): whole numbers ≥ 0 or null."""
    if not isinstance(value, list | tuple) or not value or len(value) > 8:
        raise ModelFileError(f"{where}: {what} {str(value)[:60]} is not a shape (a list of 1 to 8 sizes)")
    out = []
    for d in value:
        if d is None:
            out.append(None)
            continue
        out.append(whole_number(f"{where}: a size in {what} {str(value)[:60]}", d, 0, error=ModelFileError,
                                integral_floats=True))
    return tuple(out)


def _known(shape: Shape, axis: int) -> int:
    try:
        d = shape[axis]
    except IndexError:
        raise _Unknown(f"axis {axis} of a rank-{len(shape)} input") from None
    if d is None:
        raise _Unknown(f"axis {axis} of input shape {_show(shape)} is unknown")
    return d


def _prod(dims: Any) -> int:
    return math.prod(dims)


def _show(shape: Any) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _spatial(shape: Shape, cfg: dict[str, Any], n: int) -> tuple[list, int]:
    """The n spatial sizes and the channel axis of an image-like input."""
    if len(shape) != n + 2:
        raise _Unknown(f"expects a rank-{n + 2} input, gets {_show(shape)}")
    first = cfg.get("data_format") == "channels_first"
    return (list(shape[2:]) if first else list(shape[1:-1])), (1 if first else -1)


def _with_spatial(shape: Shape, cfg: dict[str, Any], sizes: list, channels: Any = "same") -> Shape:
    first = cfg.get("data_format") == "channels_first"
    c = (shape[1] if first else shape[-1]) if channels == "same" else channels
    return (shape[0], c, *sizes) if first else (shape[0], *sizes, c)


def _conv_len(size: int | None, k: int, stride: int, padding: str, dilation: int = 1) -> int | None:
    if size is None:
        return None
    if padding in ("same", "causal"):
        return (size - 1) // stride + 1
    out = (size - dilation * (k - 1) - 1) // stride + 1
    if out < 0:
        raise _Unknown(f"a window of {k} does not fit a size of {size}")
    return out


def _deconv_len(size: int | None, k: int, stride: int, padding: str, out_pad: int | None, dilation: int) -> int | None:
    if size is None:
        return None
    k = k + (k - 1) * (dilation - 1)
    if out_pad is None:
        return size * stride + max(k - stride, 0) if padding == "valid" else size * stride
    pad = k // 2 if padding == "same" else 0
    return max((size - 1) * stride + k - 2 * pad + out_pad, 0)


def _lora(cfg: dict[str, Any], kernel: tuple[int, ...], where: str) -> int:
    """LoRA adapters: (kernel[:-1]..., rank) and (rank, kernel[-1])."""
    rank = _int(cfg, "lora_rank", 0, where)
    return rank * (_prod(kernel[:-1]) + kernel[-1]) if rank else 0


def _bias(cfg: dict[str, Any], n: int) -> int:
    return 0 if cfg.get("use_bias") is False else n  # Keras' default is a bias


def _one(ins: list[Shape], where: str) -> Shape:
    if len(ins) != 1:
        raise ModelFileError(f"{where} takes one input; the graph gives it {len(ins)}")
    return ins[0]


# ---- one layer: (weights, output shapes) from its config and input shapes -------------------------------


@dataclass(frozen=True)
class _LayerCall:
    """One layer called on input shapes: everything a shape rule in _RULES reads."""

    cls: str
    cfg: dict[str, Any]
    ins: list[Shape]
    ctx: _Ctx
    path: str
    where: str
    kw: dict[str, Shape]  # tensors passed by keyword (query, value, key)

    def one(self) -> Shape:
        return _one(self.ins, self.where)


def _layer(node: dict[str, Any], ins: list[Shape], ctx: _Ctx, path: str, kw: dict[str, Shape]) -> tuple[int, list]:
    cls, cfg = node.get("class_name"), node.get("config")
    where = _where(path, node)
    if not isinstance(cfg, dict):
        raise ModelFileError(f"{where} has no config")
    if cls in _MODELS:
        return _model(node, ins, ctx, path)
    rule = _RULES.get(cls, _no_rule)
    try:
        return rule(_LayerCall(cls, cfg, ins, ctx, path, where, kw))
    except _Unknown as exc:
        raise ModelFileError(f"cannot bound the weights of {where}: {exc}; refusing rather than guessing "
                             f"a size") from None


def _no_rule(c: _LayerCall) -> tuple[int, list]:
    raise ModelFileError(f"{c.where}: no shape rule for {c.cls}, so its weights cannot be bounded")


def _input_layer(c: _LayerCall) -> tuple[int, list]:
    raise ModelFileError(f"{c.where}: an InputLayer can only start a model")


def _same_shape(c: _LayerCall) -> tuple[int, list]:
    x = c.one()
    return _norm_weights(c.cls, c.cfg, x, c.where), [x]


def _dense(c: _LayerCall) -> tuple[int, list]:
    x = c.one()
    units = _int(c.cfg, "units", None, c.where, low=1)
    kernel = (_known(x, -1), units)
    return _prod(kernel) + _bias(c.cfg, units) + _lora(c.cfg, kernel, c.where), [(*x[:-1], units)]


def _embedding(c: _LayerCall) -> tuple[int, list]:
    x = c.one()
    kernel = (_int(c.cfg, "input_dim", None, c.where, low=1), _int(c.cfg, "output_dim", None, c.where, low=1))
    return _prod(kernel) + _lora(c.cfg, kernel, c.where), [(*x, kernel[1])]


def _norm_weights(cls: str, cfg: dict[str, Any], x: Shape, where: str) -> int:
    def axes(default: Any) -> list[int]:
        axis = cfg.get("axis", default)
        if axis is None:
            return []
        axis = [axis] if isinstance(axis, int) and not isinstance(axis, bool) else axis
        if not isinstance(axis, list | tuple) or not all(isinstance(a, int) and not isinstance(a, bool)
                                                         for a in axis):
            raise ModelFileError(f"{where}: axis = {str(axis)[:40]} is not an axis or a list of axes")
        return list(axis)

    if cls == "BatchNormalization":  # gamma, beta, moving mean, moving variance
        return 4 * _prod(_known(x, a) for a in axes(-1))
    if cls == "LayerNormalization":  # gamma, beta
        return 2 * _prod(_known(x, a) for a in axes(-1))
    if cls == "GroupNormalization":
        return 2 * _prod(_known(x, a) for a in axes(-1))
    if cls == "Normalization":  # mean, variance per kept axis, and a count
        return 2 * _prod(_known(x, a) for a in axes(-1)) + 1
    if cls == "PReLU":
        shared = cfg.get("shared_axes") or []
        shared = [shared] if isinstance(shared, int) else shared
        return _prod(1 if i in shared else _known(x, i) for i in range(1, len(x)))
    return 0


def _conv(kind: str, n: int, transpose: bool, c: _LayerCall) -> tuple[int, list]:
    cfg, x, where = c.cfg, c.one(), c.where
    sizes, axis = _spatial(x, cfg, n)
    ch = _known(x, axis)
    k = _ints(cfg, "kernel_size", n, None, where)
    strides = _ints(cfg, "strides", n, 1, where)
    dilation = _ints(cfg, "dilation_rate", n, 1, where)
    padding = cfg.get("padding", "valid")
    kk = _prod(k)
    if kind == "Depthwise":
        dm = _int(cfg, "depth_multiplier", 1, where, low=1)
        kernel, out_c = (*k, ch, dm), ch * dm
        weights = _prod(kernel) + _bias(cfg, out_c)
    else:
        filters = _int(cfg, "filters", None, where, low=1)
        out_c = filters
        if kind == "Separable":
            dm = _int(cfg, "depth_multiplier", 1, where, low=1)
            kernel = (*k, ch, dm)
            weights = kk * ch * dm + ch * dm * filters + _bias(cfg, filters)
        else:
            groups = _int(cfg, "groups", 1, where, low=1)
            kernel = (*k, filters, ch) if transpose else (*k, max(ch // groups, 1), filters)
            weights = _prod(kernel) + _bias(cfg, filters)
    weights += _lora(cfg, kernel, where)
    if transpose:
        out_pad = cfg.get("output_padding")
        pads = [None] * n if out_pad is None else _ints(cfg, "output_padding", n, None, where, low=0)
        new = [_deconv_len(s, kw, st, padding, p, d) for s, kw, st, p, d in zip(sizes, k, strides, pads, dilation,
                                                                                  strict=True)]
    else:
        new = [_conv_len(s, kw, st, padding, d) for s, kw, st, d in zip(sizes, k, strides, dilation, strict=True)]
    return weights, [_with_spatial(x, cfg, new, out_c)]


def _pooling(n: int, c: _LayerCall) -> tuple[int, list]:
    x = c.one()
    sizes, _ = _spatial(x, c.cfg, n)
    pool = _ints(c.cfg, "pool_size", n, 2, c.where)
    strides = _ints(c.cfg, "strides", n, list(pool), c.where)
    padding = c.cfg.get("padding", "valid")
    return 0, [_with_spatial(x, c.cfg, [_conv_len(s, k, st, padding) for s, k, st in zip(sizes, pool, strides,
                                                                                         strict=True)])]


def _global_pooling(n: int, c: _LayerCall) -> tuple[int, list]:
    x = c.one()
    _, axis = _spatial(x, c.cfg, n)
    if c.cfg.get("keepdims"):
        return 0, [_with_spatial(x, c.cfg, [1] * n)]
    return 0, [(x[0], x[axis])]


def _flatten(c: _LayerCall) -> tuple[int, list]:
    x = c.one()
    rest = x[1:]
    return 0, [(x[0], None if None in rest else _prod(rest))]


def _reshape(c: _LayerCall) -> tuple[int, list]:
    x = c.one()
    raw = c.cfg.get("target_shape")
    if not isinstance(raw, list | tuple) or not raw or list(raw).count(-1) > 1:
        raise ModelFileError(f"{c.where}: target_shape {str(raw)[:40]} is not a shape with at most one -1")
    known = _shape([None, *[d for d in raw if d != -1]], c.where, "target_shape")[1:]
    fill = None
    if -1 in raw and None not in x[1:] and _prod(known):
        fill = _prod(x[1:]) // _prod(known)
    return 0, [(x[0], *[fill if d == -1 else d for d in raw])]


def _permute(c: _LayerCall) -> tuple[int, list]:
    x = c.one()
    dims = c.cfg.get("dims")
    if not isinstance(dims, list | tuple) or sorted(dims) != list(range(1, len(x))):
        raise ModelFileError(f"{c.where}: dims {str(dims)[:40]} is not a permutation of 1..{len(x) - 1}")
    return 0, [(x[0], *[x[d] for d in dims])]


def _repeat_vector(c: _LayerCall) -> tuple[int, list]:
    x = c.one()
    return 0, [(x[0], _int(c.cfg, "n", None, c.where), *x[1:])]


def _pad_crop_up(kind: str, n: int, c: _LayerCall) -> tuple[int, list]:
    cfg, x, where = c.cfg, c.one(), c.where
    sizes, _ = _spatial(x, cfg, n)
    if kind == "UpSampling":
        factors = _ints(cfg, "size", n, 2, where)
        return 0, [_with_spatial(x, cfg, [None if s is None else s * f for s, f in zip(sizes, factors, strict=True)])]
    key = "padding" if kind == "ZeroPadding" else "cropping"
    raw = cfg.get(key, 1 if kind == "ZeroPadding" else 0)
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        raw = [raw] * n
    if n == 1 and isinstance(raw, list | tuple) and len(raw) == 2 and all(isinstance(v, int) for v in raw):
        raw = [raw]  # Cropping1D / ZeroPadding1D: (left, right)
    if not isinstance(raw, list | tuple) or len(raw) != n:
        raise ModelFileError(f"{where}: {key} = {str(raw)[:40]} does not fit {n} spatial axes")
    pairs = []
    for v in raw:
        v = [v, v] if isinstance(v, int | float) and not isinstance(v, bool) else v
        if not isinstance(v, list | tuple) or len(v) != 2:
            raise ModelFileError(f"{where}: {key} = {str(raw)[:40]} is not sizes or pairs of sizes")
        pairs.append(_int({key: v[0]}, key, None, where) + _int({key: v[1]}, key, None, where))
    sign = 1 if kind == "ZeroPadding" else -1
    out = [None if s is None else s + sign * p for s, p in zip(sizes, pairs, strict=True)]
    if any(o is not None and o < 0 for o in out):
        raise _Unknown(f"cropping {pairs} is larger than the input {_show(x)}")
    return 0, [_with_spatial(x, cfg, out)]


def _resize(c: _LayerCall) -> tuple[int, list]:
    """Resizing, CenterCrop and RandomCrop: a fixed height and width."""
    x = c.one()
    h, w = _int(c.cfg, "height", None, c.where, low=1), _int(c.cfg, "width", None, c.where, low=1)
    if len(x) == 3:  # one unbatched image
        first = c.cfg.get("data_format") == "channels_first"
        return 0, [(x[0], h, w) if first else (h, w, x[-1])]
    _spatial(x, c.cfg, 2)
    return 0, [_with_spatial(x, c.cfg, [h, w])]


def _merge(c: _LayerCall) -> tuple[int, list]:
    if len(c.ins) < 2:
        raise ModelFileError(f"{c.where} merges at least 2 inputs; the graph gives it {len(c.ins)}")
    return 0, [_broadcast(c.ins, c.where)]


def _broadcast(ins: list[Shape], where: str) -> Shape:
    rank = max(len(s) for s in ins)
    out = []
    for i in range(1, rank + 1):
        dims = [s[-i] for s in ins if len(s) >= i]
        known = [d for d in dims if d is not None and d != 1]
        if len(set(known)) > 1:
            raise ModelFileError(f"{where}: input shapes {', '.join(_show(s) for s in ins)} do not match")
        out.append(known[0] if known else (1 if all(d == 1 for d in dims) else None))
    return tuple(reversed(out))


def _concatenate(c: _LayerCall) -> tuple[int, list]:
    ins, where = c.ins, c.where
    if len(ins) < 1 or len({len(s) for s in ins}) != 1:
        raise ModelFileError(f"{where}: cannot concatenate {', '.join(_show(s) for s in ins) or 'nothing'}")
    axis = _int({"axis": c.cfg.get("axis", -1)}, "axis", None, where, low=-len(ins[0]))
    axis %= len(ins[0])
    if axis == 0:
        raise ModelFileError(f"{where}: cannot concatenate along the batch axis")
    out = list(_broadcast([tuple(d for j, d in enumerate(s) if j != axis) for s in ins], where))
    sizes = [s[axis] for s in ins]
    out.insert(axis, None if None in sizes else sum(sizes))
    return 0, [tuple(out)]


def _dot(c: _LayerCall) -> tuple[int, list]:
    if len(c.ins) != 2:
        raise ModelFileError(f"{c.where} takes 2 inputs; the graph gives it {len(c.ins)}")
    a, b = list(c.ins[0]), list(c.ins[1])
    axes = c.cfg.get("axes", -1)
    if isinstance(axes, int) and not isinstance(axes, bool):
        axes = [axes % len(a), axes % len(b)] if axes < 0 else [axes, axes]
    if not (isinstance(axes, list | tuple) and len(axes) == 2 and all(isinstance(v, int) for v in axes)
            and all(-len(s) <= v < len(s) for v, s in zip(axes, (a, b), strict=True))):
        raise ModelFileError(f"{c.where}: axes = {str(axes)[:40]} do not fit inputs {_show(a)} and {_show(b)}")
    a.pop(axes[0])
    b.pop(axes[1])
    out = a + b[1:]
    return 0, [tuple(out + [1] if len(out) == 1 else out)]


def _rnn(c: _LayerCall) -> tuple[int, list]:
    cls, cfg, where = c.cls, c.cfg, c.where
    x = c.ins[0] if c.ins else None
    if x is None:
        raise ModelFileError(f"{where} has no input in the graph")
    units = _int(cfg, "units", None, where, low=1)
    gates = _RNN.get(cls) or _CELLS[cls]
    ch = _known(x, -1)
    biases = 2 if gates == 3 and cfg.get("reset_after", True) is not False else 1  # GRU: input and recurrent
    weights = gates * units * (ch + units) + _bias(cfg, gates * units * biases)  # kernel, recurrent kernel
    n_states = 2 if gates == 4 else 1
    if cls in _CELLS:
        return weights, [(x[0], units)] * (1 + n_states)
    if len(x) != 3:
        raise _Unknown(f"expects (batch, time, features) input, gets {_show(x)}")
    if cfg.get("stateful"):  # states kept as variables, one row per sample of the fixed batch
        weights += n_states * _known(x, 0) * units
    y = (x[0], x[1], units) if cfg.get("return_sequences") else (x[0], units)
    return weights, [y] + ([(x[0], units)] * n_states if cfg.get("return_state") else [])


def _bidirectional(c: _LayerCall) -> tuple[int, list]:
    forward = _nested_layer(c.cfg, "layer", c.where)
    backward = c.cfg.get("backward_layer")
    backward = _nested_layer(c.cfg, "backward_layer", c.where) if backward is not None else forward
    x = c.ins[:1]
    wf, of = _call(forward, x, c.ctx, f"{c.path}.layer", {})
    wb, ob = _call(backward, x, c.ctx, f"{c.path}.backward_layer", {})
    yf, yb = of[0], ob[0]
    mode = c.cfg.get("merge_mode", "concat")
    if mode == "concat":
        ys = [(*yf[:-1], None if yf[-1] is None or yb[-1] is None else yf[-1] + yb[-1])]
    elif mode is None:
        ys = [yf, yb]
    else:
        ys = [yf]
    return wf + wb, ys + of[1:] + ob[1:]


def _time_distributed(c: _LayerCall) -> tuple[int, list]:
    x = c.one()
    if len(x) < 3:
        raise _Unknown(f"expects (batch, time, ...) input, gets {_show(x)}")
    inner = _nested_layer(c.cfg, "layer", c.where)
    weights, outs = _call(inner, [(x[0], *x[2:])], c.ctx, f"{c.path}.layer", {})
    return weights, [(o[0], x[1], *o[1:]) for o in outs]


def _attention(c: _LayerCall) -> tuple[int, list]:
    """Attention and AdditiveAttention: [query, value] in, the attended values and the scores out."""
    q, v = (c.ins + [None, None])[:2]
    if q is None or v is None:
        raise ModelFileError(f"{c.where} needs [query, value] inputs; the graph gives it {len(c.ins)}")
    if c.cls == "AdditiveAttention":  # a scale per query feature
        extra = _known(q, -1) if c.cfg.get("use_scale", True) else 0
    else:  # scalar scale and concat weight
        extra = int(bool(c.cfg.get("use_scale"))) + int(c.cfg.get("score_mode") == "concat")
    return extra, [(*q[:-1], v[-1]), (q[0], q[1] if len(q) > 1 else None, v[1] if len(v) > 1 else None)]


def _mha(c: _LayerCall) -> tuple[int, list]:
    cfg, ins, kw, where = c.cfg, c.ins, c.kw, c.where
    q = kw.get("query", ins[0] if ins else None)
    v = kw.get("value", ins[1] if len(ins) > 1 else None)
    k = kw.get("key", ins[2] if len(ins) > 2 else v)
    if q is None or v is None or k is None:
        raise ModelFileError(f"{where} needs query and value inputs")
    heads = _int(cfg, "num_heads", None, where, low=1)
    key_dim = _int(cfg, "key_dim", None, where, low=1)
    value_dim = _int(cfg, "value_dim", key_dim, where, low=1)
    qd, kd, vd = _known(q, -1), _known(k, -1), _known(v, -1)
    out = cfg.get("output_shape")
    out_dims = [qd] if out is None else list(_shape([None, *out] if isinstance(out, list | tuple) else [None, out],
                                                    where, "output_shape")[1:])
    if None in out_dims:
        raise _Unknown("output_shape holds an unknown size")
    gate = heads * value_dim * (qd + 1) if cfg.get("use_gate") else 0
    weights = (heads * key_dim * (qd + 1) + heads * key_dim * (kd + 1) + heads * value_dim * (vd + 1) + gate
               + heads * value_dim * _prod(out_dims) + _prod(out_dims))
    scores = (q[0], heads, q[1] if len(q) > 2 else None, v[1] if len(v) > 2 else None)
    return weights, [(*q[:-1], *out_dims), scores]


def _einsum(c: _LayerCall) -> tuple[int, list]:
    """The kernel, bias and output shapes Keras derives from an EinsumDense equation."""
    cfg, x, where = c.cfg, c.one(), c.where
    equation = cfg.get("equation")
    if not isinstance(equation, str) or len(equation) > 64:
        raise ModelFileError(f"{where}: equation {str(equation)[:40]!r} is not an einsum equation")
    text = equation.replace("...", "0")
    left = False
    m = re.fullmatch(r"([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)", text)
    if not m:
        m = re.fullmatch(r"0([a-zA-Z]+),([a-zA-Z]+)->0([a-zA-Z]+)", text)
        left = bool(m)
    if not m:
        m = re.fullmatch(r"([a-zA-Z]{2,})0,([a-zA-Z]+)->([a-zA-Z]+)0", text)
    if not m:
        raise ModelFileError(f"{where}: equation {equation!r} is not of a form EinsumDense accepts")
    ispec, wspec, ospec = m.groups()
    raw = cfg.get("output_shape")
    raw = [raw] if isinstance(raw, int) or raw is None else list(raw) if isinstance(raw, list | tuple) else None
    if raw is None:
        raise ModelFileError(f"{where}: output_shape {str(cfg.get('output_shape'))[:40]} is not a shape")
    full = list(_shape([None, *raw], where, "output_shape"))
    full[0] = x[0]
    elided = len(x) - len(ispec)
    if elided < 0:
        raise _Unknown(f"equation {equation!r} needs a rank-{len(ispec)} input, gets {_show(x)}")
    if elided > 0 and left:
        for i in range(1, elided):
            full.insert(1, x[i])
    elif elided > 0:
        full.extend(x[len(x) - elided:])
    if left:
        imap = {d: i + elided - len(x) for i, d in enumerate(ispec)}
        omap = {d: i + elided for i, d in enumerate(ospec)}
    else:
        imap = {d: i for i, d in enumerate(ispec)}
        omap = {d: i for i, d in enumerate(ospec)}
    try:
        for d, i in omap.items():  # sizes shared with the input come from the input
            if d in imap and full[i] is None:
                full[i] = x[imap[d]]
        kernel = []
        for d in wspec:
            size = x[imap[d]] if d in imap else full[omap[d]] if d in omap else None
            if size is None:
                raise _Unknown(f"the size of kernel axis {d!r} of {equation!r} is unknown")
            kernel.append(size)
        bias_axes = cfg.get("bias_axes") or ""
        if not isinstance(bias_axes, str) or any(b not in omap for b in bias_axes):
            raise ModelFileError(f"{where}: bias_axes {str(bias_axes)[:20]!r} are not output axes of {equation!r}")
        bias = _prod(_known(tuple(full), omap[b]) for b in bias_axes) if bias_axes else 0
    except IndexError:
        raise ModelFileError(f"{where}: equation {equation!r} does not fit input {_show(x)} and output_shape "
                             f"{raw}") from None
    kernel_t = tuple(kernel)
    return _prod(kernel_t) + bias + _lora(cfg, kernel_t, where), [tuple(full)]


def _nested_layer(cfg: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    inner = cfg.get(key)
    if not isinstance(inner, dict) or not isinstance(inner.get("config"), dict):
        raise ModelFileError(f"{where}: {key} is not a layer")
    return inner



_DIMS = (1, 2, 3)
# Every layer class the bound knows: its rule gives (weights, output shapes) from a _LayerCall.
_RULES: dict[str, Callable[[_LayerCall], tuple[int, list]]] = {
    **dict.fromkeys(_SAME_SHAPE, _same_shape),
    "Dense": _dense, "EinsumDense": _einsum, "Embedding": _embedding,
    **{f"{kind}Conv{n}D{'Transpose' if transpose else ''}": partial(_conv, kind, n, transpose)
       for kind in ("", "Separable", "Depthwise") for n in _DIMS for transpose in (False, True)},
    **{f"{op}Pooling{n}D": partial(_pooling, n) for op in ("Max", "Average") for n in _DIMS},
    **{f"Global{op}Pooling{n}D": partial(_global_pooling, n) for op in ("Max", "Average") for n in _DIMS},
    "Flatten": _flatten, "Reshape": _reshape, "Permute": _permute, "RepeatVector": _repeat_vector,
    **{f"{kind}{n}D": partial(_pad_crop_up, kind, n) for kind in ("ZeroPadding", "Cropping", "UpSampling")
       for n in _DIMS},
    **dict.fromkeys(("Resizing", "CenterCrop", "RandomCrop"), _resize),
    **dict.fromkeys(_MERGE, _merge), "Concatenate": _concatenate, "Dot": _dot,
    **dict.fromkeys((*_RNN, *_CELLS), _rnn), "Bidirectional": _bidirectional, "TimeDistributed": _time_distributed,
    **dict.fromkeys(("Attention", "AdditiveAttention"), _attention), "MultiHeadAttention": _mha,
    "InputLayer": _input_layer,
}


# ---- calls, build_config, and whole models ------------------------------------------------------------


def _build_shapes(node: dict[str, Any], where: str) -> tuple[list[Shape], dict[str, Shape]] | None:
    """The shapes a build_config makes Keras build the layer with while deserialising it, if any."""
    bc = node.get("build_config")
    if not bc:
        return None
    if not isinstance(bc, dict):
        raise ModelFileError(f"{where}: build_config is not an object")
    if "input_shape" in bc:
        s = bc["input_shape"]
        if isinstance(s, list) and s and all(isinstance(e, list) for e in s):  # several inputs (merge layers)
            return [_shape(e, where, "build_config input_shape") for e in s], {}
        return [_shape(s, where, "build_config input_shape")], {}
    if "shapes_dict" in bc:
        shapes = bc["shapes_dict"]
        if not isinstance(shapes, dict) or len(shapes) > 8:
            raise ModelFileError(f"{where}: build_config shapes_dict is not a map of shapes")
        named = {str(k).removesuffix("_shape"): _shape(v, where, f"build_config {k}")
                 for k, v in shapes.items() if v is not None}
        return list(named.values()), named
    return None


def _call(node: dict[str, Any], ins: list[Shape], ctx: _Ctx, path: str, kw: dict[str, Shape]) -> tuple[int, list]:
    """A layer called on inputs: the larger of the weights from its build_config and from these inputs."""
    ctx.calls += 1
    if ctx.calls > ctx.max_calls:
        raise ModelFileError(f"the model's graph needs more than {ctx.max_calls:,} layer calls to follow "
                             f"(nested models and shared layers included); the cap is {ctx.max_calls:,}")
    where = _where(path, node)
    weights, outs = _layer(node, ins, ctx, path, kw)
    built = _built_weights(node, ctx, path)
    for o in outs:
        known = [d for d in o[1:] if d is not None]
        if known and _prod(known) > ctx.max_values:
            raise ModelFileError(f"{where} outputs {_show(o)} = {_prod(known):,} values per sample; the cap is "
                                 f"{ctx.max_values:,}")
    best = max(weights, built)
    ctx.note(where, best)
    return best, outs


def _built_weights(node: dict[str, Any], ctx: _Ctx, path: str) -> int:
    """Weights a build_config alone makes Keras allocate (0 when there is none)."""
    if node.get("class_name") in _MODELS:
        return 0  # a nested model's build_config is handled with its inputs in _model
    where = _where(path, node)
    shapes = _build_shapes(node, where)
    if shapes is None:
        return 0
    ins, named = shapes
    weights, _ = _layer(node, ins, ctx, path, named)
    ctx.note(where, weights)
    return weights


def _model(node: dict[str, Any], call: list[Shape] | None, ctx: _Ctx, path: str, *, top: bool = False
           ) -> tuple[int, list]:
    cfg = node.get("config")
    where = _where(path, node)
    if not isinstance(cfg, dict):
        raise ModelFileError(f"{where} has no config")
    if not top and node.get("compile_config"):
        raise ModelFileError(f"{where} is a nested model saved compiled: Keras would build its optimizer while "
                             f"loading; re-save it uncompiled")
    layers = cfg.get("layers")
    if not isinstance(layers, list) or not layers:
        raise ModelFileError(f"{where} has no layers")
    key = (id(node), None if call is None else tuple(call))
    if key not in ctx.models:  # a nested model is followed once per distinct input, however often it is met
        if node.get("class_name") == "Sequential":
            ctx.models[key] = _sequential(node, layers, call, ctx, path, top)
        else:
            ctx.models[key] = _functional(node, cfg, layers, call, ctx, path)
    return ctx.models[key]


def _input_shape(node: dict[str, Any], where: str) -> Shape:
    cfg = node.get("config") or {}
    if cfg.get("batch_shape") is not None:
        return _shape(cfg["batch_shape"], where, "batch_shape")
    if cfg.get("batch_input_shape") is not None:
        return _shape(cfg["batch_input_shape"], where, "batch_input_shape")
    for key in ("shape", "input_shape"):
        if cfg.get(key) is not None:
            batch = cfg.get("batch_size")
            return _shape([batch, *cfg[key]] if isinstance(cfg[key], list | tuple) else cfg[key], where, key)
    raise ModelFileError(f"{where} declares no shape (batch_shape): the model's input size is unknown")


def _sequential(node: dict[str, Any], layers: list, call: list[Shape] | None, ctx: _Ctx, path: str,
                top: bool) -> tuple[int, list | None]:
    """Keras builds a Sequential from its InputLayer, a first layer's input_shape, build_input_shape or a
    build_config; a nested one is also built by its first call. Each layer keeps the weights of its first
    build, so the bound is the larger over every way in, layer by layer. A nested one with none of these
    and no call is never built: (0, None)."""
    where = _where(path, node)
    for i, layer in enumerate(layers):
        if not isinstance(layer, dict):
            raise ModelFileError(f"{where}: layer {i} is not an object")
        if i and layer.get("class_name") == "InputLayer":
            raise ModelFileError(f"{where}: an InputLayer can only be its first layer")
    starts: list[list[Shape]] = []
    first = layers[0]
    body = layers
    if first.get("class_name") == "InputLayer":
        starts.append([_input_shape(first, _where(f"{path}.layers[0]", first))])
        body = layers[1:]
    else:
        fcfg = first.get("config") or {}
        if fcfg.get("input_dim") is not None:
            starts.append([(None, _int(fcfg, "input_dim", None, where, low=1))])
        elif fcfg.get("input_shape") is not None or fcfg.get("batch_input_shape") is not None:
            starts.append([_input_shape(first, _where(f"{path}.layers[0]", first))])
        cfg = node.get("config") or {}
        if cfg.get("build_input_shape"):
            starts.append([_shape(cfg["build_input_shape"], where, "build_input_shape")])
    own = _build_shapes(node, where)
    if own is not None:
        starts.append(own[0][:1])
    if call is not None:
        starts.append(list(call))
    if not starts and not top:
        return 0, None
    if not starts:
        raise ModelFileError(f"{where} declares no input shape (no InputLayer, input_shape or "
                             f"build_input_shape), so the size of its weights cannot be derived")
    per_layer = [0] * len(body)
    outs: list = []
    for ins in starts:
        x = ins
        for i, layer in enumerate(body):
            w, x = _call(layer, x, ctx, f"{path}.layers[{i + len(layers) - len(body)}]", {})
            per_layer[i] = max(per_layer[i], w)
        outs = x
    return sum(per_layer), outs


def _refs(value: Any, out: list) -> None:
    """Every graph tensor in a node's args or kwargs, in order."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            out.append(value)
            return
        for v in value.values():
            _refs(v, out)
    elif isinstance(value, list | tuple):
        for v in value:
            _refs(v, out)


def _functional(node: dict[str, Any], cfg: dict[str, Any], layers: list, call: list[Shape] | None, ctx: _Ctx,
                path: str) -> tuple[int, list]:
    """Follow the graph as keras.src.models.functional.functional_from_config rebuilds it."""
    where = _where(path, node)
    for key in ("input_layers", "output_layers"):
        if key not in cfg:
            raise ModelFileError(f"{where} has no {key}")
    by_name: dict[str, tuple[int, dict]] = {}
    for i, layer in enumerate(layers):
        name = layer.get("name") if isinstance(layer, dict) else None
        if not isinstance(name, str) or name in by_name:
            raise ModelFileError(f"{where}: layer {i} has a missing or repeated name {str(name)[:40]!r}")
        if not isinstance(layer.get("inbound_nodes", []), list):
            raise ModelFileError(f"{where}: layer {name!r} has inbound_nodes that are not a list")
        by_name[name] = (i, layer)
    inputs = _leaves(cfg["input_layers"], where)
    outputs = _leaves(cfg["output_layers"], where)
    for ref in inputs:
        if ref[0] not in by_name or by_name[ref[0]][1].get("class_name") != "InputLayer":
            raise ModelFileError(f"{where}: input {ref[0]!r} is not one of its InputLayers")
    starts = [None]
    if call is not None:
        if len(call) != len(inputs):
            raise ModelFileError(f"{where} takes {len(inputs)} input(s); it is called with {len(call)}")
        starts.append(list(call))
    per_layer: dict[str, int] = {}
    outs: list = []
    for given in starts:
        weights, produced = _run_graph(layers, by_name, inputs, given, ctx, path, where)
        for name, w in weights.items():
            per_layer[name] = max(per_layer.get(name, 0), w)
        outs = []
        for name, ni, ti in outputs:
            nodes = produced.get(name, [])
            ni -= 1 if by_name[name][1].get("class_name") in ("Functional", "Model") else 0
            if not (0 <= ni < len(nodes) and 0 <= ti < len(nodes[ni])):
                raise ModelFileError(f"{where}: output [{name!r}, {ni}, {ti}] does not exist in the graph")
            outs.append(nodes[ni][ti])
    return sum(per_layer.values()), outs


def _leaves(value: Any, where: str) -> list[tuple[str, int, int]]:
    """[layer name, node index, tensor index] triples of input_layers / output_layers (lists, dicts, nesting)."""
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in value[1:]):
            raise ModelFileError(f"{where}: {str(value)[:60]} is not a [layer, node, tensor] reference")
        return [(value[0], value[1], value[2])]
    if isinstance(value, dict):
        return [r for v in value.values() for r in _leaves(v, where)]
    if isinstance(value, list):
        return [r for v in value for r in _leaves(v, where)]
    raise ModelFileError(f"{where}: {str(value)[:60]} is not a [layer, node, tensor] reference")


def _run_graph(layers: list, by_name: dict[str, tuple[int, dict]], inputs: list, given: list | None,
               ctx: _Ctx, path: str, where: str) -> tuple[dict[str, int], dict[str, list]]:
    produced: dict[str, list] = {}
    weights: dict[str, int] = {}
    pending: dict[str, list] = {}
    overrides = {ref[0]: shape for ref, shape in zip(inputs, given, strict=True)} if given is not None else {}
    for i, layer in enumerate(layers):
        name = layer["name"]
        lpath = f"{path}.layers[{i}]"
        cls = layer.get("class_name")
        if cls == "InputLayer":
            shape = overrides.get(name) or _input_shape(layer, _where(lpath, layer))
            produced[name] = [[shape]]
            continue
        produced[name] = []
        weights[name] = _built_weights(layer, ctx, lpath)
        if cls in _MODELS:  # a nested model is built while deserialised when it declares its inputs
            w, outs = _model(layer, None, ctx, lpath)
            weights[name] = max(weights[name], w)
            if cls != "Sequential":  # a functional one starts with a node of its own
                produced[name].append(outs)
        pending[name] = list(layer.get("inbound_nodes") or [])
    while any(pending.values()):
        progressed = False
        for i, layer in enumerate(layers):
            name = layer["name"]
            queue = pending.get(name)
            while queue:
                data = queue[0]
                if not isinstance(data, dict) or set(data) - {"args", "kwargs"}:
                    raise ModelFileError(f"{where}: an inbound node of {name!r} is not in the Keras 3 format "
                                         f"(args, kwargs)")
                found: list = []
                _refs(data.get("args", []), found)
                kwrefs = {k: [] for k in (data.get("kwargs") or {})} if isinstance(data.get("kwargs"), dict) else {}
                for k in kwrefs:
                    _refs(data["kwargs"][k], kwrefs[k])
                resolved = [_resolve(t, produced, by_name, where) for t in found]
                kwresolved = {k: [_resolve(t, produced, by_name, where) for t in v] for k, v in kwrefs.items()}
                if any(r is _WAIT for r in resolved) or any(r is _WAIT for v in kwresolved.values() for r in v):
                    break
                ins = list(resolved)
                kw = {k: v[0] for k, v in kwresolved.items() if len(v) == 1 and k in ("query", "value", "key")}
                if not ins:  # e.g. MultiHeadAttention(query=q, value=v): keyword tensors only
                    ins = [kw[k] for k in ("query", "value", "key") if k in kw]
                if not ins:
                    raise ModelFileError(f"{where}: a call of {name!r} has no input tensor")
                w, outs = _call(layer, ins, ctx, f"{path}.layers[{i}]", kw)
                weights[name] = max(weights[name], w)
                produced[name].append(outs)
                queue.pop(0)
                progressed = True
        if not progressed:
            stuck = sorted(n for n, q in pending.items() if q)
            raise ModelFileError(f"{where}: the graph has loops or refers to missing nodes (at "
                                 f"{', '.join(repr(s[:40]) for s in stuck[:3])})")
    return weights, produced


_WAIT = object()


def _resolve(tensor: dict[str, Any], produced: dict[str, list], by_name: dict, where: str) -> Any:
    cfg = tensor.get("config") if isinstance(tensor.get("config"), dict) else {}
    history = cfg.get("keras_history")
    if history is None:  # a free tensor: Keras takes the shape written next to it
        return _shape(cfg.get("shape"), where, "tensor shape")
    if not (isinstance(history, list) and len(history) == 3 and isinstance(history[0], str)
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in history[1:])):
        raise ModelFileError(f"{where}: keras_history {str(history)[:60]} is not [layer, node, tensor]")
    name, ni, ti = history
    if name not in by_name:
        raise ModelFileError(f"{where}: a node refers to layer {name[:40]!r}, which the model does not have")
    nodes = produced.get(name, [])
    if ni >= len(nodes):
        return _WAIT
    if ti >= len(nodes[ni]):
        raise ModelFileError(f"{where}: layer {name[:40]!r} has no output {ti}")
    return nodes[ni][ti]
