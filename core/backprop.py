"""Backpropagation on a small dense network (inputs -> one hidden layer -> one output), exactly.

The Learn page teaches the forward pass, the loss, the chain rule and the SGD update with real numbers.
Everything here is plain NumPy float64 so each printed number can be reproduced by hand. The page's text
is in `core.backprop_text`, its checks against TensorFlow in `core.backprop_check`, and the gradients of
a real Keras model in `core.layer_gradients`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from core.checks import KerasLabError
from core.i18n import _

__all__ = [
    "ACTIVATIONS",
    "HEADS",
    "MAX_INPUTS",
    "MAX_WIDTH",
    "BackpropError",
    "Forward",
    "Gradients",
    "Network",
    "backward",
    "default_example",
    "forward",
    "gradient_of",
    "head_label",
    "named_values",
    "parameter_names",
    "parameter_value",
    "parse_parameter",
    "random_network",
    "resize",
    "sgd_step",
    "train",
    "with_parameter",
]

ACTIVATIONS: dict[str, str] = {"relu": "ReLU", "sigmoid": "sigmoid", "tanh": "tanh"}
HEADS: dict[str, str] = {
    "sigmoid_bce": "sigmoid output + binary cross-entropy",
    "linear_mse": "linear output + mean squared error",
}
MAX_INPUTS = 6
MAX_WIDTH = 8


def head_label(head: str) -> str:
    """HEADS[head] in the reader's language (HEADS is read once at import, so it stays English)."""
    return {"sigmoid_bce": _("sigmoid output + binary cross-entropy"),
            "linear_mse": _("linear output + mean squared error")}[head]


class BackpropError(KerasLabError):
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
            raise BackpropError(_("hidden activation must be one of {choices}, got {value}").format(
                choices=", ".join(ACTIVATIONS), value=repr(self.hidden)))
        if self.head not in HEADS:
            raise BackpropError(_("output/loss must be one of {choices}, got {value}").format(
                choices=", ".join(HEADS), value=repr(self.head)))
        if self.w1.ndim != 2:
            raise BackpropError(_("hidden weights must be a (width, inputs) table, got shape {shape}").format(
                shape=self.w1.shape))
        width, n_in = self.w1.shape
        if not 1 <= width <= MAX_WIDTH:
            raise BackpropError(_("hidden width must be 1 to {most}, got {value}").format(most=MAX_WIDTH, value=width))
        if not 1 <= n_in <= MAX_INPUTS:
            raise BackpropError(_("number of inputs must be 1 to {most}, got {value}").format(most=MAX_INPUTS, value=n_in))
        for name, shape in (("b1", (width,)), ("w2", (width,)), ("x", (n_in,))):
            if getattr(self, name).shape != shape:
                raise BackpropError(_("{name} must have shape {shape}, got {value}").format(
                    name=name, shape=shape, value=getattr(self, name).shape))
        for name in ("w1", "b1", "w2", "b2", "x", "y", "lr"):
            if not np.all(np.isfinite(getattr(self, name))):
                raise BackpropError(_("{name} must be a finite number, got {value}").format(
                    name=name, value=getattr(self, name)))
        if self.head == "sigmoid_bce" and not 0.0 <= self.y <= 1.0:
            raise BackpropError(_("with binary cross-entropy the label must lie in 0..1, got {value}").format(
                value=f"{self.y:g}"))
        if not 0.0 < self.lr <= 10.0:
            raise BackpropError(_("learning rate must be > 0 and ≤ 10, got {value}").format(value=f"{self.lr:g}"))

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
        raise BackpropError(_("steps must be 1 to 10000, got {value}").format(value=steps))
    losses = []
    for _step in range(steps):
        net = sgd_step(net)
        losses.append(forward(net).loss)
    return net, losses


# --- parameters by name ---------------------------------------------------------------------------

_NAME = re.compile(r"^(W1)\[(\d+),(\d+)\]$|^(b1|W2)\[(\d+)\]$|^(b2)$")


def named_values(w1: np.ndarray, b1: np.ndarray, w2: np.ndarray, b2: float) -> dict[str, float]:
    """Every entry of the four parameter arrays (or of their gradients) under its page name, 1-based."""
    values = {f"W1[{j + 1},{i + 1}]": float(v) for (j, i), v in np.ndenumerate(w1)}
    values.update({f"b1[{j + 1}]": float(v) for j, v in enumerate(b1)})
    values.update({f"W2[{j + 1}]": float(v) for j, v in enumerate(w2)})
    values["b2"] = float(b2)
    return values


def parameter_names(net: Network) -> list[str]:
    """Every parameter, named as the page shows it (1-based): W1[j,i], b1[j], W2[j], b2."""
    return list(named_values(net.w1, net.b1, net.w2, net.b2))


def parse_parameter(name: str, net: Network | None = None) -> tuple[str, int, int]:
    """'W1[2,3]' -> ('W1', 1, 2): the array and its 0-based indices; with `net`, only names it has."""
    m = _NAME.match(name.replace(" ", ""))
    if net is not None and name not in parameter_names(net):
        raise BackpropError(_("unknown parameter {name}; expected one of W1[j,i], b1[j], W2[j], b2 with j in "
                              "1..{width} and i in 1..{inputs}").format(name=repr(name), width=net.width,
                                                                        inputs=net.n_inputs))
    if not m:
        raise BackpropError(_("unknown parameter {name}; expected W1[j,i], b1[j], W2[j] or b2").format(
            name=repr(name)))
    if m.group(1):
        return "W1", int(m.group(2)) - 1, int(m.group(3)) - 1
    if m.group(4):
        return m.group(4), int(m.group(5)) - 1, 0
    return "b2", 0, 0


def _get(net_or_grads: Network | Gradients, kind: str, j: int, i: int) -> float:
    value = getattr(net_or_grads, kind.lower())
    if kind == "W1":
        return float(value[j, i])
    if kind == "b2":
        return float(value)
    return float(value[j])


def parameter_value(net: Network, name: str) -> float:
    """The current value of a parameter by name."""
    return _get(net, *parse_parameter(name, net))


def with_parameter(net: Network, name: str, value: float) -> Network:
    """A copy of the network with one parameter set to `value`."""
    kind, j, i = parse_parameter(name, net)
    value = float(value)
    if kind == "b2":
        return replace(net, b2=value)
    array = getattr(net, kind.lower()).copy()
    array[(j, i) if kind == "W1" else j] = value
    return replace(net, **{kind.lower(): array})


def gradient_of(grads: Gradients, net: Network, name: str) -> float:
    """dL/d(parameter) by name."""
    return _get(grads, *parse_parameter(name, net))
