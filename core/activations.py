"""The activation functions a layer can use, and their exact derivatives, in NumPy float64.

The derivative is the factor an activation puts into every gradient that flows back through it, so the
pages plot both (a sigmoid's slope is never above 0.25: stacked sigmoids make gradients vanish). Each
function follows Keras 3's definition and default parameters (`keras.activations.<name>`); at a kink the
derivative is TensorFlow's choice (ReLU'(0) = 0, LeakyReLU'(0) = its negative slope, ELU'(0) = 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import erfc
from scipy.special import softmax as _softmax

from core.i18n import _

__all__ = ["ACTIVATIONS", "ELU_ALPHA", "LEAKY_SLOPE", "Activation", "max_slope", "sigmoid"]

LEAKY_SLOPE = 0.2  # keras.activations.leaky_relu's default negative_slope
ELU_ALPHA = 1.0  # keras.activations.elu's default alpha

Curve = Callable[[np.ndarray], np.ndarray]


def _array(x: np.ndarray | float) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def sigmoid(x: np.ndarray | float) -> np.ndarray:
    """1 / (1 + e^-x), without overflow for large |x|."""
    x = _array(x)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _sigmoid_slope(x: np.ndarray) -> np.ndarray:
    s = sigmoid(x)
    return s * (1.0 - s)


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    """Φ(x) = (1 + erf(x/√2)) / 2, written with erfc so that it stays accurate far below zero."""
    return 0.5 * erfc(-x / np.sqrt(2.0))


def _gelu(x: np.ndarray) -> np.ndarray:
    """The exact form, x·Φ(x): keras.activations.gelu's default (approximate=False)."""
    return x * _normal_cdf(x)


def _gelu_slope(x: np.ndarray) -> np.ndarray:
    """Φ(x) + x·φ(x)."""
    return _normal_cdf(x) + x * np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi)


def _softmax_first(z: np.ndarray) -> np.ndarray:
    """Softmax over the two logits [z, 0], first class: a 2-class softmax is a sigmoid of the logit gap."""
    return _softmax(np.stack([z, np.zeros_like(z)]), axis=0)[0]


def _softmax_first_slope(z: np.ndarray) -> np.ndarray:
    """d p/dz = p(1 − p): the diagonal entry of softmax's Jacobian."""
    p = _softmax_first(z)
    return p * (1.0 - p)


@dataclass(frozen=True)
class Activation:
    """One activation: its Keras name, how the pages label it, the function and its derivative."""

    name: str  # Keras 3 name, as in core.specs.ACTIVATIONS
    symbol: str  # how it is usually written ("LeakyReLU"); `label` adds words where the name needs them
    formula: str  # the definition in one line of plain text
    fn: Curve
    slope: Curve

    @property
    def label(self) -> str:
        """How the pages label it, in the reader's language (read when shown, never at import)."""
        described = {"softmax": _("softmax (2 classes)"), "linear": _("linear")}
        return described.get(self.name, self.symbol)

    def __call__(self, x: np.ndarray | float) -> np.ndarray:
        return self.fn(_array(x))

    def derivative(self, x: np.ndarray | float) -> np.ndarray:
        return self.slope(_array(x))


ACTIVATIONS: dict[str, Activation] = {a.name: a for a in (
    Activation("relu", "ReLU", "max(0, z)",
               lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(np.float64)),
    Activation("leaky_relu", "LeakyReLU", f"z if z > 0 else {LEAKY_SLOPE:g}·z",
               lambda z: np.where(z > 0, z, LEAKY_SLOPE * z), lambda z: np.where(z > 0, 1.0, LEAKY_SLOPE)),
    Activation("elu", "ELU", "z if z > 0 else eᶻ − 1",
               lambda z: np.where(z > 0, z, ELU_ALPHA * np.expm1(np.minimum(z, 0.0))),
               lambda z: np.where(z > 0, 1.0, ELU_ALPHA * np.exp(np.minimum(z, 0.0)))),
    Activation("gelu", "GELU", "z·Φ(z), Φ the standard normal CDF", _gelu, _gelu_slope),
    Activation("sigmoid", "sigmoid", "1 / (1 + e⁻ᶻ)", sigmoid, _sigmoid_slope),
    Activation("tanh", "tanh", "(eᶻ − e⁻ᶻ) / (eᶻ + e⁻ᶻ)", np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
    Activation("softmax", "softmax", "first probability of softmax([z, 0])",
               _softmax_first, _softmax_first_slope),
    Activation("linear", "linear", "z", lambda z: z.copy(), np.ones_like),
)}


def max_slope(activation: Activation, x: np.ndarray) -> tuple[float, float]:
    """(x, f′(x)) where the derivative is largest on the grid `x`."""
    slopes = activation.derivative(x)
    k = int(np.argmax(slopes))
    return float(x[k]), float(slopes[k])
