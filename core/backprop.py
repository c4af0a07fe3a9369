"""Backpropagation on a small dense network (inputs -> one hidden layer -> one output), exactly.

The Learn page teaches the forward pass, the loss, the chain rule and the SGD update with real numbers.
Everything here is plain NumPy float64 so each printed number can be reproduced by hand; two independent
references prove it: `tf_reference` (tf.GradientTape in float64, TensorFlow imported only when called)
and `finite_difference_gradients` (central differences). `gradient_report` looks at a real Keras model.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

__all__ = [
    "ACTIVATIONS",
    "HEADS",
    "MAX_INPUTS",
    "MAX_WIDTH",
    "BackpropError",
    "ChainFactor",
    "Forward",
    "Gradients",
    "LayerGradients",
    "Network",
    "network_dot",
    "Step",
    "build_demo_mlp",
    "chain_factors",
    "chain_formulas",
    "compare",
    "default_example",
    "demo_batch",
    "demo_gradient_reports",
    "finite_difference_gradients",
    "forward",
    "backward",
    "gradient_of",
    "gradient_report",
    "our_values",
    "param_tex",
    "parameter_names",
    "parameter_value",
    "random_network",
    "resize",
    "sgd_step",
    "tf_reference",
    "train",
    "with_parameter",
    "worked_steps",
]

ACTIVATIONS: dict[str, str] = {"relu": "ReLU", "sigmoid": "sigmoid", "tanh": "tanh"}
HEADS: dict[str, str] = {
    "sigmoid_bce": "sigmoid output + binary cross-entropy",
    "linear_mse": "linear output + mean squared error",
}
MAX_INPUTS = 6
MAX_WIDTH = 8


class BackpropError(ValueError):
    """The network or its inputs are unusable; the message is meant for the user."""


@dataclass(frozen=True, eq=False)
class Network:
    """A 1-hidden-layer net with one output, its training example and learning rate."""

    w1: np.ndarray  # (width, n_inputs) hidden weights: w1[j, i] connects input i to hidden unit j
    b1: np.ndarray  # (width,) hidden biases
    w2: np.ndarray  # (width,) output weights: w2[j] connects hidden unit j to the output
    b2: float  # output bias
    x: np.ndarray  # (n_inputs,) the one training input
    y: float  # its label (0..1 for binary cross-entropy; any real for MSE)
    lr: float = 0.01  # SGD learning rate
    hidden: str = "relu"  # hidden activation: a key of ACTIVATIONS
    head: str = "sigmoid_bce"  # output activation + loss: a key of HEADS

    def __post_init__(self) -> None:
        for name in ("w1", "b1", "w2", "x"):
            object.__setattr__(self, name, np.array(getattr(self, name), dtype=np.float64))
        object.__setattr__(self, "b2", float(self.b2))
        object.__setattr__(self, "y", float(self.y))
        object.__setattr__(self, "lr", float(self.lr))
        if self.hidden not in ACTIVATIONS:
            raise BackpropError(f"hidden activation must be one of {', '.join(ACTIVATIONS)}, got {self.hidden!r}")
        if self.head not in HEADS:
            raise BackpropError(f"output/loss must be one of {', '.join(HEADS)}, got {self.head!r}")
        if self.w1.ndim != 2:
            raise BackpropError(f"hidden weights must be a (width, inputs) table, got shape {self.w1.shape}")
        width, n_in = self.w1.shape
        if not 1 <= width <= MAX_WIDTH:
            raise BackpropError(f"hidden width must be 1 to {MAX_WIDTH}, got {width}")
        if not 1 <= n_in <= MAX_INPUTS:
            raise BackpropError(f"number of inputs must be 1 to {MAX_INPUTS}, got {n_in}")
        for name, shape in (("b1", (width,)), ("w2", (width,)), ("x", (n_in,))):
            if getattr(self, name).shape != shape:
                raise BackpropError(f"{name} must have shape {shape}, got {getattr(self, name).shape}")
        for name in ("w1", "b1", "w2", "b2", "x", "y", "lr"):
            if not np.all(np.isfinite(getattr(self, name))):
                raise BackpropError(f"{name} must be a finite number, got {getattr(self, name)}")
        if self.head == "sigmoid_bce" and not 0.0 <= self.y <= 1.0:
            raise BackpropError(f"with binary cross-entropy the label must lie in 0..1, got {self.y:g}")
        if not 0.0 < self.lr <= 10.0:
            raise BackpropError(f"learning rate must be > 0 and ≤ 10, got {self.lr:g}")

    @property
    def width(self) -> int:
        return int(self.w1.shape[0])

    @property
    def n_inputs(self) -> int:
        return int(self.w1.shape[1])


def default_example() -> Network:
    """The article's 3-2-1 network with its arithmetic made consistent."""
    return Network(w1=[[0.1, 0.2, 0.3], [0.1, 0.2, 0.4]], b1=[0.5, 0.6], w2=[0.7, 0.7], b2=0.8,
                   x=[1.0, 2.0, 3.0], y=1.0, lr=0.01, hidden="relu", head="sigmoid_bce")


def random_network(seed: int, n_inputs: int = 3, width: int = 2, hidden: str = "relu",
                   head: str = "sigmoid_bce") -> Network:
    """A seeded random network and example (for tests and the page's "randomise" button)."""
    rng = np.random.default_rng(seed)
    y = float(rng.integers(0, 2)) if head == "sigmoid_bce" else float(rng.normal())
    return Network(w1=rng.normal(0, 0.7, (width, n_inputs)), b1=rng.normal(0, 0.5, width),
                   w2=rng.normal(0, 0.7, width), b2=float(rng.normal(0, 0.5)),
                   x=rng.normal(0, 1.0, n_inputs), y=y, lr=0.01, hidden=hidden, head=head)


def resize(net: Network, n_inputs: int, width: int) -> Network:
    """Change the shape and keep every weight that still exists; new weights start at 0.1, new inputs at 1."""
    w1 = np.full((width, n_inputs), 0.1)
    keep_j, keep_i = min(width, net.width), min(n_inputs, net.n_inputs)
    w1[:keep_j, :keep_i] = net.w1[:keep_j, :keep_i]
    b1 = np.full(width, 0.1)
    b1[:keep_j] = net.b1[:keep_j]
    w2 = np.full(width, 0.1)
    w2[:keep_j] = net.w2[:keep_j]
    x = np.ones(n_inputs)
    x[:keep_i] = net.x[:keep_i]
    return replace(net, w1=w1, b1=b1, w2=w2, x=x)


# --- forward and backward -------------------------------------------------------------------------

def _sigmoid(v: np.ndarray | float) -> Any:
    """Numerically stable logistic function (never overflows)."""
    v = np.asarray(v, dtype=np.float64)
    e = np.exp(-np.abs(v))
    return np.where(v >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _act(name: str, z: np.ndarray) -> np.ndarray:
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "sigmoid":
        return _sigmoid(z)
    return np.tanh(z)


def _act_grad(name: str, z: np.ndarray) -> np.ndarray:
    """Derivative of the activation at z; ReLU'(0) = 0, as TensorFlow defines it."""
    if name == "relu":
        return (z > 0).astype(np.float64)
    if name == "sigmoid":
        s = _sigmoid(z)
        return s * (1.0 - s)
    return 1.0 - np.tanh(z) ** 2


@dataclass(frozen=True)
class Forward:
    """Every intermediate value of the forward pass."""

    z: np.ndarray  # hidden net inputs  z_j = sum_i w1[j,i] x_i + b1[j]
    h: np.ndarray  # hidden activations h_j = act(z_j)
    net_out: float  # output net input  sum_j w2[j] h_j + b2
    y_hat: float  # prediction
    loss: float


def forward(net: Network) -> Forward:
    """Forward pass of the network on its example."""
    z = net.w1 @ net.x + net.b1
    h = _act(net.hidden, z)
    net_out = float(net.w2 @ h + net.b2)
    if net.head == "sigmoid_bce":
        y_hat = float(_sigmoid(net_out))
        # -[y ln ŷ + (1-y) ln(1-ŷ)] written as softplus(net) - y·net: equal, and finite for any net.
        loss = float(np.logaddexp(0.0, net_out) - net.y * net_out)
    else:
        y_hat = net_out
        loss = (y_hat - net.y) ** 2
    return Forward(z=z, h=h, net_out=net_out, y_hat=y_hat, loss=loss)


@dataclass(frozen=True)
class Gradients:
    """The chain rule's factors and the gradient of the loss for every parameter."""

    dl_dyhat: float  # dL/dŷ
    dyhat_dnet: float  # dŷ/dnet_out
    delta_out: float  # dL/dnet_out = dL/dŷ · dŷ/dnet_out
    dl_dh: np.ndarray  # dL/dh_j = delta_out · w2[j]
    dh_dz: np.ndarray  # act'(z_j)
    delta_hidden: np.ndarray  # dL/dz_j = dL/dh_j · act'(z_j)
    w1: np.ndarray  # dL/dw1[j,i] = delta_hidden[j] · x_i
    b1: np.ndarray  # dL/db1[j] = delta_hidden[j]
    w2: np.ndarray  # dL/dw2[j] = delta_out · h_j
    b2: float  # dL/db2 = delta_out


def backward(net: Network, fwd: Forward | None = None) -> Gradients:
    """Backpropagation: apply the chain rule from the loss back to every weight."""
    fwd = forward(net) if fwd is None else fwd
    if net.head == "sigmoid_bce":
        one_minus = float(_sigmoid(-fwd.net_out))  # 1 - ŷ without cancellation
        with np.errstate(divide="ignore"):
            dl_dyhat = float(-net.y / fwd.y_hat + (1.0 - net.y) / one_minus) if one_minus > 0 else math.inf
        dyhat_dnet = fwd.y_hat * one_minus
        delta_out = fwd.y_hat - net.y  # the product above, simplified: stays exact when ŷ saturates
    else:
        dl_dyhat = 2.0 * (fwd.y_hat - net.y)
        dyhat_dnet = 1.0
        delta_out = dl_dyhat
    dl_dh = delta_out * net.w2
    dh_dz = _act_grad(net.hidden, fwd.z)
    delta_hidden = dl_dh * dh_dz
    return Gradients(dl_dyhat=dl_dyhat, dyhat_dnet=dyhat_dnet, delta_out=delta_out, dl_dh=dl_dh,
                     dh_dz=dh_dz, delta_hidden=delta_hidden, w1=np.outer(delta_hidden, net.x),
                     b1=delta_hidden.copy(), w2=delta_out * fwd.h, b2=delta_out)


def sgd_step(net: Network, grads: Gradients | None = None) -> Network:
    """One SGD update: every parameter moves against its gradient, θ ← θ − η·∂L/∂θ."""
    g = backward(net) if grads is None else grads
    return replace(net, w1=net.w1 - net.lr * g.w1, b1=net.b1 - net.lr * g.b1,
                   w2=net.w2 - net.lr * g.w2, b2=net.b2 - net.lr * g.b2)


def train(net: Network, steps: int) -> tuple[Network, list[float]]:
    """Run `steps` SGD steps; return the new network and the loss after each step."""
    if not 1 <= steps <= 10_000:
        raise BackpropError(f"steps must be 1 to 10000, got {steps}")
    losses = []
    for _ in range(steps):
        net = sgd_step(net)
        losses.append(forward(net).loss)
    return net, losses


# --- parameters by name ---------------------------------------------------------------------------

_NAME = re.compile(r"^(W1)\[(\d+),(\d+)\]$|^(b1|W2)\[(\d+)\]$|^(b2)$")


def parameter_names(net: Network) -> list[str]:
    """Every parameter, named as the page shows it (1-based): W1[j,i], b1[j], W2[j], b2."""
    names = [f"W1[{j + 1},{i + 1}]" for j in range(net.width) for i in range(net.n_inputs)]
    names += [f"b1[{j + 1}]" for j in range(net.width)]
    names += [f"W2[{j + 1}]" for j in range(net.width)]
    return names + ["b2"]


def _parse(net: Network, name: str) -> tuple[str, int, int]:
    """'W1[2,3]' -> ('W1', 1, 2) (0-based); raises on unknown names."""
    m = _NAME.match(name.replace(" ", ""))
    if not m or name not in parameter_names(net):
        raise BackpropError(f"unknown parameter {name!r}; expected one of W1[j,i], b1[j], W2[j], b2 "
                            f"with j in 1..{net.width} and i in 1..{net.n_inputs}")
    if m.group(1):
        return "W1", int(m.group(2)) - 1, int(m.group(3)) - 1
    if m.group(4):
        return m.group(4), int(m.group(5)) - 1, 0
    return "b2", 0, 0


def _get(net_or_grads: Network | Gradients, kind: str, j: int, i: int) -> float:
    arrays = {"W1": "w1", "b1": "b1", "W2": "w2", "b2": "b2"}
    value = getattr(net_or_grads, arrays[kind])
    if kind == "W1":
        return float(value[j, i])
    if kind == "b2":
        return float(value)
    return float(value[j])


def parameter_value(net: Network, name: str) -> float:
    """The current value of a parameter by name."""
    return _get(net, *_parse(net, name))


def param_tex(name: str) -> str:
    """LaTeX symbol of a parameter name: 'W1[2,3]' -> w^{(1)}_{23}."""
    m = _NAME.match(name.replace(" ", ""))
    if not m:
        raise BackpropError(f"unknown parameter {name!r}; expected W1[j,i], b1[j], W2[j] or b2")
    if m.group(1):
        return f"w^{{(1)}}_{{{m.group(2)}{m.group(3)}}}"
    if m.group(4):
        return f"{m.group(4)[0].lower()}^{{({m.group(4)[1]})}}_{{{m.group(5)}}}"
    return "b^{(2)}"


def with_parameter(net: Network, name: str, value: float) -> Network:
    """A copy of the network with one parameter set to `value`."""
    kind, j, i = _parse(net, name)
    value = float(value)
    if kind == "b2":
        return replace(net, b2=value)
    array = getattr(net, kind.lower()).copy()
    array[(j, i) if kind == "W1" else j] = value
    return replace(net, **{kind.lower(): array})


def gradient_of(grads: Gradients, net: Network, name: str) -> float:
    """dL/d(parameter) by name."""
    return _get(grads, *_parse(net, name))


@dataclass(frozen=True)
class ChainFactor:
    """One factor of the chain rule for a chosen parameter."""

    symbol: str  # LaTeX, e.g. \frac{\partial L}{\partial \hat y}
    meaning: str  # one phrase for the reader
    value: float


def chain_factors(net: Network, name: str) -> tuple[list[ChainFactor], float]:
    """The factors whose product is dL/d(name), and that product."""
    kind, j, i = _parse(net, name)
    fwd, g = forward(net), backward(net)
    loss_word = "binary cross-entropy" if net.head == "sigmoid_bce" else "squared error"
    out_word = "sigmoid" if net.head == "sigmoid_bce" else "linear output (slope 1)"
    factors = [
        ChainFactor(r"\frac{\partial L}{\partial \hat y}", f"how the {loss_word} changes with ŷ", g.dl_dyhat),
        ChainFactor(r"\frac{\partial \hat y}{\partial \mathrm{net}}", f"slope of the {out_word}", g.dyhat_dnet),
    ]
    if kind == "W2":
        factors.append(ChainFactor(rf"\frac{{\partial \mathrm{{net}}}}{{\partial w^{{(2)}}_{{{j + 1}}}}} = h_{{{j + 1}}}",
                                   f"activation of hidden unit {j + 1}", float(fwd.h[j])))
    elif kind == "b2":
        factors.append(ChainFactor(r"\frac{\partial \mathrm{net}}{\partial b^{(2)}}", "a bias adds 1 × itself", 1.0))
    else:
        act = ACTIVATIONS[net.hidden]
        factors.append(ChainFactor(rf"\frac{{\partial \mathrm{{net}}}}{{\partial h_{{{j + 1}}}}} = w^{{(2)}}_{{{j + 1}}}",
                                   f"output weight of hidden unit {j + 1}", float(net.w2[j])))
        factors.append(ChainFactor(rf"\frac{{\partial h_{{{j + 1}}}}}{{\partial z_{{{j + 1}}}}}",
                                   f"slope of {act} at z = {_num(fwd.z[j])}", float(g.dh_dz[j])))
        if kind == "W1":
            factors.append(ChainFactor(
                rf"\frac{{\partial z_{{{j + 1}}}}}{{\partial w^{{(1)}}_{{{j + 1}{i + 1}}}}} = x_{{{i + 1}}}",
                f"input {i + 1}", float(net.x[i])))
        else:
            factors.append(ChainFactor(rf"\frac{{\partial z_{{{j + 1}}}}}{{\partial b^{{(1)}}_{{{j + 1}}}}}",
                                       "a bias adds 1 × itself", 1.0))
    product = 1.0
    for f in factors:
        product *= f.value
    if net.head == "sigmoid_bce" and not math.isfinite(product):
        product = gradient_of(g, net, name)  # ŷ saturated at exactly 0 or 1: use the simplified ŷ − y
    return factors, product


def chain_formulas(net: Network, name: str) -> list[str]:
    """Three LaTeX lines: the chain rule for `name`, the numbers multiplied, and the SGD update."""
    factors, product = chain_factors(net, name)
    symbol = param_tex(name)
    value = parameter_value(net, name)
    chain = r" \cdot ".join(f.symbol.split(" = ")[0] for f in factors)
    numbers = r" \cdot ".join(_p(f.value) for f in factors)
    return [rf"\frac{{\partial L}}{{\partial {symbol}}} = {chain}",
            rf"= {numbers} = {_num(product)}",
            rf"{symbol} \leftarrow {_num(value)} - {_num(net.lr)} \cdot {_p(product)} = {_num(value - net.lr * product)}"]


# --- independent references -----------------------------------------------------------------------

def our_values(net: Network) -> dict[str, float]:
    """Forward values and every gradient by name (what the references are compared with)."""
    fwd, g = forward(net), backward(net)
    values = {f"z{j + 1}": float(fwd.z[j]) for j in range(net.width)}
    values.update({f"h{j + 1}": float(fwd.h[j]) for j in range(net.width)})
    values.update({"net_out": fwd.net_out, "y_hat": fwd.y_hat, "loss": fwd.loss})
    values.update({f"dL/d{p}": gradient_of(g, net, p) for p in parameter_names(net)})
    after = sgd_step(net, g)
    values.update({f"new {p}": _get(after, *_parse(net, p)) for p in parameter_names(net)})
    return values


def tf_reference(net: Network) -> dict[str, float]:
    """The same values from TensorFlow: float64 ops, gradients by tf.GradientTape, the update in TF.

    Imports TensorFlow (a few seconds the first time).
    """
    import keras
    import tensorflow as tf

    x = tf.constant(net.x, dtype=tf.float64)
    y = tf.constant(net.y, dtype=tf.float64)
    variables = {
        "w1": keras.Variable(net.w1, dtype="float64", name="w1"),
        "b1": keras.Variable(net.b1, dtype="float64", name="b1"),
        "w2": keras.Variable(net.w2, dtype="float64", name="w2"),
        "b2": keras.Variable(net.b2, dtype="float64", name="b2"),
    }
    act = {"relu": tf.nn.relu, "sigmoid": tf.sigmoid, "tanh": tf.tanh}[net.hidden]
    with tf.GradientTape() as tape:
        z = tf.linalg.matvec(variables["w1"].value, x) + variables["b1"].value
        h = act(z)
        net_out = tf.tensordot(variables["w2"].value, h, axes=1) + variables["b2"].value
        if net.head == "sigmoid_bce":
            y_hat = tf.sigmoid(net_out)
            loss = tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=net_out)
        else:
            y_hat = net_out
            loss = tf.square(y_hat - y)
    keys = list(variables)
    grads = dict(zip(keys, tape.gradient(loss, [variables[k].value for k in keys]), strict=True))
    values = {f"z{j + 1}": float(z[j]) for j in range(net.width)}
    values.update({f"h{j + 1}": float(h[j]) for j in range(net.width)})
    values.update({"net_out": float(net_out), "y_hat": float(y_hat), "loss": float(loss)})
    tf_grads = Gradients(0.0, 0.0, 0.0, np.zeros(0), np.zeros(0), np.zeros(0), w1=grads["w1"].numpy(),
                         b1=grads["b1"].numpy(), w2=grads["w2"].numpy(), b2=float(grads["b2"]))
    values.update({f"dL/d{p}": gradient_of(tf_grads, net, p) for p in parameter_names(net)})
    for k in keys:  # the SGD update in float64 (Keras' SGD keeps its learning rate in float32)
        variables[k].assign_sub(net.lr * grads[k])
    after = replace(net, **{k: variables[k].numpy() for k in keys})
    values.update({f"new {p}": _get(after, *_parse(net, p)) for p in parameter_names(net)})
    return values


def finite_difference_gradients(net: Network, eps: float = 1e-6) -> dict[str, float]:
    """dL/dθ ≈ (L(θ+ε) − L(θ−ε)) / 2ε for every parameter: no calculus, just the forward pass."""
    out = {}
    for p in parameter_names(net):
        v = _get(net, *_parse(net, p))
        up = forward(with_parameter(net, p, v + eps)).loss
        down = forward(with_parameter(net, p, v - eps)).loss
        out[f"dL/d{p}"] = (up - down) / (2 * eps)
    return out


def compare(ours: dict[str, float], reference: dict[str, float]) -> tuple[list[dict[str, Any]], float]:
    """Rows (quantity, ours, reference, |difference|) for the names both have, and the largest difference."""
    rows = []
    for name, value in ours.items():
        if name in reference:
            rows.append({"quantity": name, "ours (NumPy)": value, "reference": reference[name],
                         "|difference|": abs(value - reference[name])})
    return rows, max((r["|difference|"] for r in rows), default=0.0)


def network_dot(net: Network) -> str:
    """The network as a Graphviz DOT diagram: values in the nodes, weights on the edges."""
    fwd = forward(net)
    out = "ŷ" if net.head == "sigmoid_bce" else "ŷ (linear)"
    # Compact ranks and large type: the chart is scaled down to half the page width.
    lines = ["digraph net {", "rankdir=LR; splines=line; nodesep=0.15; ranksep=0.6; pad=0.05;",
             'node [shape=circle, fixedsize=true, width=0.95, fontsize=17, fontname="sans-serif"];',
             'edge [fontsize=15, fontname="sans-serif", arrowsize=0.6];']
    for i in range(net.n_inputs):
        lines.append(f'x{i} [label="x{i + 1}\\n{net.x[i]:.4g}", style=filled, fillcolor="#e8f0fe"];')
    for j in range(net.width):
        lines.append(f'h{j} [label="h{j + 1}\\nz={fwd.z[j]:.4g}\\nh={fwd.h[j]:.4g}", style=filled, '
                     f'fillcolor="#fef7e0"];')
    lines.append(f'o [label="{out}\\nnet={fwd.net_out:.4g}\\n{fwd.y_hat:.4g}", style=filled, fillcolor="#e6f4ea"];')
    for prefix, n in (("x", net.n_inputs), ("h", net.width)):  # keep x1, x2, ... top to bottom
        if n > 1:
            chain = " -> ".join(f"{prefix}{k}" for k in range(n))
            lines.append(f"{{rank=same; {chain} [style=invis];}}")
    lines.append(f'L [label="L\\n{fwd.loss:.4g}", shape=box, width=0.9, style=filled, fillcolor="#fce8e6"];')
    for j in range(net.width):
        for i in range(net.n_inputs):
            lines.append(f'x{i} -> h{j} [label="{net.w1[j, i]:.4g}"];')
        lines.append(f'h{j} -> o [label="{net.w2[j]:.4g}"];')
    lines.append(f'o -> L [label="y={net.y:.4g}"];')
    return "\n".join(lines + ["}"])


# --- the worked example as text -------------------------------------------------------------------

def _num(v: float, digits: int = 6) -> str:
    """A number as the page prints it: up to `digits` significant digits, a real minus sign."""
    if not math.isfinite(v):
        return r"\infty" if v > 0 else r"-\infty"
    text = f"{v:.{digits}g}"
    if "e" in text:
        mant, exp = text.split("e")
        text = rf"{mant} \times 10^{{{int(exp)}}}"
    return text


def _p(v: float) -> str:
    """A number in parentheses when negative, so '− (−0.3)' reads correctly."""
    s = _num(v)
    return f"({s})" if v < 0 else s


def _vec(values: np.ndarray) -> str:
    return r"\begin{pmatrix}" + r" \\ ".join(_num(float(v)) for v in values) + r"\end{pmatrix}"


def _mat(values: np.ndarray) -> str:
    rows = [" & ".join(_num(float(v)) for v in row) for row in values]
    return r"\begin{pmatrix}" + r" \\ ".join(rows) + r"\end{pmatrix}"


@dataclass(frozen=True)
class Step:
    """One numbered step of the worked example: a title, one sentence, and formulas with numbers."""

    title: str
    text: str
    formulas: list[str] = field(default_factory=list)


_ACT_TEX = {
    "relu": (r"\mathrm{ReLU}(z) = \max(0, z)", r"\mathrm{ReLU}'(z) = 1 \text{ if } z > 0 \text{ else } 0"),
    "sigmoid": (r"\sigma(z) = \frac{1}{1 + e^{-z}}", r"\sigma'(z) = \sigma(z)\,(1 - \sigma(z))"),
    "tanh": (r"\tanh(z)", r"\tanh'(z) = 1 - \tanh^2(z)"),
}


def worked_steps(net: Network) -> list[Step]:
    """The forward pass, loss, chain rule and SGD update, each with its formula and the real numbers."""
    fwd, g = forward(net), backward(net)
    act_name = {"relu": r"\mathrm{ReLU}", "sigmoid": r"\sigma", "tanh": r"\tanh"}[net.hidden]
    act_def, act_slope = _ACT_TEX[net.hidden]
    bce = net.head == "sigmoid_bce"
    steps = []

    lines = [r"z_j = \sum_i w^{(1)}_{ji}\, x_i + b^{(1)}_j"]
    for j in range(net.width):
        terms = " + ".join(f"{_num(net.w1[j, i])} \\cdot {_p(net.x[i])}" for i in range(net.n_inputs))
        lines.append(f"z_{{{j + 1}}} = {terms} + {_p(net.b1[j])} = {_num(fwd.z[j])}")
    steps.append(Step("Hidden net input", "Each hidden unit adds up its weighted inputs and its bias.", lines))

    lines = [f"h_j = {act_name}(z_j), \\quad {act_def}"]
    lines += [f"h_{{{j + 1}}} = {act_name}({_num(fwd.z[j])}) = {_num(fwd.h[j])}" for j in range(net.width)]
    steps.append(Step("Hidden activation", f"The {ACTIVATIONS[net.hidden]} activation bends the sum so "
                      "that stacked layers can model more than a straight line.", lines))

    terms = " + ".join(f"{_num(net.w2[j])} \\cdot {_p(fwd.h[j])}" for j in range(net.width))
    steps.append(Step("Output net input", "The output unit does the same with the hidden activations.", [
        r"\mathrm{net} = \sum_j w^{(2)}_j\, h_j + b^{(2)}",
        rf"\mathrm{{net}} = {terms} + {_p(net.b2)} = {_num(fwd.net_out)}"]))

    if bce:
        steps.append(Step("Prediction", "The sigmoid squeezes the net input into a probability between 0 and 1.", [
            rf"\hat y = \sigma(\mathrm{{net}}) = \frac{{1}}{{1 + e^{{-{_p(fwd.net_out)}}}}} = {_num(fwd.y_hat)}"]))
        steps.append(Step("Loss", "Binary cross-entropy is small when the predicted probability of the true "
                          "label is close to 1.", [
            r"L = -\left[\, y \ln \hat y + (1 - y) \ln(1 - \hat y) \,\right]",
            rf"L = -\left[\, {_num(net.y)} \ln {_num(fwd.y_hat)} + {_num(1 - net.y)} \ln {_num(1 - fwd.y_hat)}"
            rf" \,\right] = {_num(fwd.loss)}"]))
        dl = rf"-\frac{{y}}{{\hat y}} + \frac{{1 - y}}{{1 - \hat y}} = -\frac{{{_num(net.y)}}}{{{_num(fwd.y_hat)}}}" \
             rf" + \frac{{{_num(1 - net.y)}}}{{{_num(1 - fwd.y_hat)}}} = {_num(g.dl_dyhat)}"
        dy = rf"\hat y (1 - \hat y) = {_num(fwd.y_hat)} \cdot {_num(1 - fwd.y_hat)} = {_num(g.dyhat_dnet)}"
        simpl = r" = \hat y - y"
    else:
        steps.append(Step("Prediction", "A linear output passes the net input through unchanged.", [
            rf"\hat y = \mathrm{{net}} = {_num(fwd.y_hat)}"]))
        steps.append(Step("Loss", "Squared error grows with the square of the distance to the label.", [
            r"L = (\hat y - y)^2",
            rf"L = ({_num(fwd.y_hat)} - {_p(net.y)})^2 = {_num(fwd.loss)}"]))
        dl = rf"2(\hat y - y) = 2\,({_num(fwd.y_hat)} - {_p(net.y)}) = {_num(g.dl_dyhat)}"
        dy = r"1"
        simpl = ""
    steps.append(Step("Error at the output", "The chain rule starts at the loss: how much L changes when the "
                      "output's net input moves a little.", [
        rf"\frac{{\partial L}}{{\partial \hat y}} = {dl}",
        rf"\frac{{\partial \hat y}}{{\partial \mathrm{{net}}}} = {dy}",
        rf"\delta^{{(2)}} = \frac{{\partial L}}{{\partial \mathrm{{net}}}} = \frac{{\partial L}}{{\partial \hat y}}"
        rf" \cdot \frac{{\partial \hat y}}{{\partial \mathrm{{net}}}} = {_num(g.dl_dyhat)} \cdot {_p(g.dyhat_dnet)}"
        rf"{simpl} = {_num(g.delta_out)}"]))

    lines = [r"\frac{\partial L}{\partial w^{(2)}_j} = \delta^{(2)} \cdot h_j, \qquad "
             r"\frac{\partial L}{\partial b^{(2)}} = \delta^{(2)}"]
    lines += [rf"\frac{{\partial L}}{{\partial w^{{(2)}}_{{{j + 1}}}}} = {_num(g.delta_out)} \cdot {_p(fwd.h[j])}"
              rf" = {_num(g.w2[j])}" for j in range(net.width)]
    lines.append(rf"\frac{{\partial L}}{{\partial b^{{(2)}}}} = {_num(g.b2)}")
    steps.append(Step("Output-layer gradients", "A weight's gradient is the error it feeds times the "
                      "activation that flows through it.", lines))

    lines = [rf"\delta^{{(1)}}_j = \frac{{\partial L}}{{\partial z_j}} = \delta^{{(2)}}\, w^{{(2)}}_j"
             rf" \cdot {act_name}'(z_j), \quad {act_slope}"]
    lines += [rf"\delta^{{(1)}}_{{{j + 1}}} = {_num(g.delta_out)} \cdot {_p(net.w2[j])} \cdot {_p(g.dh_dz[j])}"
              rf" = {_num(g.delta_hidden[j])}" for j in range(net.width)]
    steps.append(Step("Error at the hidden layer", "The output error flows back through each output weight "
                      "and is scaled by the slope of the hidden activation.", lines))

    steps.append(Step("Hidden-layer gradients", "Each hidden weight's gradient is its unit's error times the "
                      "input it multiplies; the bias gradient is the error itself.", [
        r"\frac{\partial L}{\partial W^{(1)}} = \delta^{(1)}\, x^{\top}, \qquad "
        r"\frac{\partial L}{\partial b^{(1)}} = \delta^{(1)}",
        rf"\frac{{\partial L}}{{\partial W^{{(1)}}}} = {_vec(g.delta_hidden)}"
        rf"\begin{{pmatrix}} {' & '.join(_num(v) for v in net.x)} \end{{pmatrix}} = {_mat(g.w1)}",
        rf"\frac{{\partial L}}{{\partial b^{{(1)}}}} = {_vec(g.b1)}"]))

    new = sgd_step(net, g)
    eta = _num(net.lr)
    lines = [rf"\theta \leftarrow \theta - \eta\, \frac{{\partial L}}{{\partial \theta}}, \quad \eta = {eta}",
             rf"W^{{(1)}} \leftarrow {_mat(net.w1)} - {eta} \cdot {_mat(g.w1)}",
             rf"= {_mat(new.w1)}",
             rf"b^{{(1)}} \leftarrow {_vec(net.b1)} - {eta} \cdot {_vec(g.b1)} = {_vec(new.b1)}",
             rf"w^{{(2)}} \leftarrow {_vec(net.w2)} - {eta} \cdot {_vec(g.w2)} = {_vec(new.w2)}",
             rf"b^{{(2)}} \leftarrow {_num(net.b2)} - {eta} \cdot {_p(g.b2)} = {_num(new.b2)}"]
    steps.append(Step("SGD update", "Gradient descent moves every parameter a small step (the learning rate) "
                      "against its gradient, which lowers the loss.", lines))
    return steps


# --- gradients of a real Keras model --------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class LayerGradients:
    """One layer's trainable weights and their gradient on one batch (all variables flattened together)."""

    name: str
    weight_norm: float  # L2 norm of all the layer's trainable weights
    grad_norm: float  # L2 norm of their gradients
    weights: np.ndarray = field(repr=False)  # 1-D, every trainable value of the layer
    grads: np.ndarray = field(repr=False)  # 1-D, same order


def _default_loss(model: Any, y_batch: np.ndarray) -> Any:
    """The model's compiled loss if it has one; otherwise what its output and labels call for."""
    import keras

    compiled = getattr(model, "loss", None)
    if compiled is not None and not isinstance(compiled, (list, dict)):
        return keras.losses.get(compiled) if isinstance(compiled, str) else compiled
    out_units = int(model.outputs[0].shape[-1])
    last_act = getattr(getattr(model.layers[-1], "activation", None), "__name__", "")
    from_logits = last_act not in ("softmax", "sigmoid")
    if out_units == 1:
        return keras.losses.BinaryCrossentropy(from_logits=from_logits)
    if np.issubdtype(y_batch.dtype, np.integer) and y_batch.ndim == 1:
        return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    return keras.losses.CategoricalCrossentropy(from_logits=from_logits)


def gradient_report(model: Any, x_batch: np.ndarray, y_batch: np.ndarray, loss: Any = None) -> list[LayerGradients]:
    """Per-layer weight and gradient norms on one batch, from tf.GradientTape (shows vanishing/exploding)."""
    import tensorflow as tf

    x_batch, y_batch = np.asarray(x_batch), np.asarray(y_batch)
    if len(x_batch) == 0 or len(x_batch) != len(y_batch):
        raise BackpropError(f"need a non-empty batch with one label per sample, got {len(x_batch)} samples "
                            f"and {len(y_batch)} labels")
    loss_fn = _default_loss(model, y_batch) if loss is None else loss
    layers = [layer for layer in model.layers if layer.trainable_weights]
    if not layers:
        raise BackpropError("the model has no trainable weights")
    variables = [v for layer in layers for v in layer.trainable_weights]
    with tf.GradientTape() as tape:
        pred = model(x_batch, training=False)
        value = loss_fn(y_batch, pred)
    grads = tape.gradient(value, variables)
    records, k = [], 0
    for layer in layers:
        n = len(layer.trainable_weights)
        w = np.concatenate([np.asarray(v.numpy(), dtype=np.float64).ravel() for v in variables[k:k + n]])
        g = np.concatenate([np.zeros(int(np.prod(v.shape))) if gr is None
                            else np.asarray(gr, dtype=np.float64).ravel()
                            for v, gr in zip(variables[k:k + n], grads[k:k + n], strict=True)])
        records.append(LayerGradients(layer.name, float(np.linalg.norm(w)), float(np.linalg.norm(g)), w, g))
        k += n
    return records


def build_demo_mlp(activation: str, depth: int = 6, width: int = 32, n_inputs: int = 64, n_classes: int = 10,
                   seed: int = 0) -> Any:
    """A fresh, untrained dense stack (seeded initialisers), for the vanishing-gradient demo."""
    import keras

    if activation not in ACTIVATIONS:
        raise BackpropError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
    if not 1 <= depth <= 20 or not 1 <= width <= 512:
        raise BackpropError(f"depth must be 1 to 20 and width 1 to 512, got {depth} and {width}")
    inputs = keras.Input((n_inputs,))
    h = inputs
    for d in range(depth):
        h = keras.layers.Dense(width, activation=activation, name=f"hidden_{d + 1}",
                               kernel_initializer=keras.initializers.GlorotUniform(seed=seed + d))(h)
    out = keras.layers.Dense(n_classes, activation="softmax", name="output",
                             kernel_initializer=keras.initializers.GlorotUniform(seed=seed + depth))(h)
    return keras.Model(inputs, out, name=f"{activation}_mlp")


def demo_batch(batch_size: int = 128, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A seeded batch of scikit-learn digits, flattened to 64 features in [0, 1]."""
    from core.datasets import load_builtin

    ds = load_builtin("digits")
    idx = np.random.default_rng(seed).permutation(ds.n_samples)[:batch_size]
    return ds.x[idx].reshape(len(idx), -1), ds.y[idx]


def demo_gradient_reports(depth: int = 6, width: int = 32, batch_size: int = 128,
                          seed: int = 0) -> dict[str, list[LayerGradients]]:
    """Gradient reports of an untrained sigmoid MLP and ReLU MLP on the same digits batch."""
    x, y = demo_batch(batch_size, seed)
    return {act: gradient_report(build_demo_mlp(act, depth, width, seed=seed), x, y) for act in ("sigmoid", "relu")}
