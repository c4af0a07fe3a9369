"""Independent references for the backprop tests, written from the definitions.

They share no code with `core.backprop`: a network is read only through its attributes (w1, b1, w2, b2, x,
y, lr, hidden, head) and the parameter names are spelled out here again, so a mistake in the maths or in
the naming under test cannot also be in its check.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_PARAMS = ("w1", "b1", "w2", "b2")
_ACTIVATIONS = {"relu": lambda z: np.maximum(z, 0.0), "sigmoid": lambda z: 1 / (1 + np.exp(-z)), "tanh": np.tanh}


def _names(w1: Any, b1: Any, w2: Any, b2: Any) -> dict[str, float]:
    """W1[j,i], b1[j], W2[j], b2, 1-based, as the page names them."""
    w1, b1, w2 = np.asarray(w1), np.asarray(b1), np.asarray(w2)
    values = {f"W1[{j + 1},{i + 1}]": float(w1[j, i]) for j in range(w1.shape[0]) for i in range(w1.shape[1])}
    values |= {f"b1[{j + 1}]": float(b1[j]) for j in range(len(b1))}
    values |= {f"W2[{j + 1}]": float(w2[j]) for j in range(len(w2))}
    return values | {"b2": float(b2)}


def _loss(net: Any, params: dict[str, np.ndarray]) -> float:
    """The loss straight from its definition (not the overflow-safe forms the code under test uses)."""
    z = params["w1"] @ net.x + params["b1"]
    out = params["w2"] @ _ACTIVATIONS[net.hidden](z) + params["b2"]
    if net.head == "sigmoid_bce":
        p = 1 / (1 + np.exp(-out))
        return float(-(net.y * np.log(p) + (1 - net.y) * np.log(1 - p)))
    return float((out - net.y) ** 2)


def finite_difference_gradients(net: Any, eps: float = 1e-6) -> dict[str, float]:
    """Central differences of `_loss`, one parameter entry at a time, keyed 'dL/d<name>'."""
    params = {k: np.array(getattr(net, k), dtype=np.float64) for k in _PARAMS}
    grads = {}
    for k, array in params.items():
        grads[k] = np.zeros_like(array)
        for idx in np.ndindex(array.shape):
            losses = []
            for step in (eps, -eps):
                nudged = array.copy()
                nudged[idx] += step
                losses.append(_loss(net, params | {k: nudged}))
            grads[k][idx] = (losses[0] - losses[1]) / (2 * eps)
    return {f"dL/d{name}": v for name, v in _names(**grads).items()}


def tf_values(net: Any) -> dict[str, float]:
    """Forward values, gradients (tf.GradientTape) and the SGD update, all in float64 TensorFlow."""
    import tensorflow as tf

    variables = {k: tf.Variable(np.asarray(getattr(net, k), dtype=np.float64)) for k in _PARAMS}
    act = {"relu": tf.nn.relu, "sigmoid": tf.math.sigmoid, "tanh": tf.math.tanh}[net.hidden]
    x, y = tf.constant(net.x, tf.float64), tf.constant(net.y, tf.float64)
    with tf.GradientTape() as tape:
        z = tf.linalg.matvec(variables["w1"], x) + variables["b1"]
        h = act(z)
        out = tf.reduce_sum(variables["w2"] * h) + variables["b2"]
        if net.head == "sigmoid_bce":
            y_hat = tf.math.sigmoid(out)
            loss = tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=out)
        else:
            y_hat = out
            loss = tf.square(out - y)
    grads = dict(zip(_PARAMS, tape.gradient(loss, [variables[k] for k in _PARAMS]), strict=True))
    values = {f"z{j + 1}": float(v) for j, v in enumerate(z.numpy())}
    values |= {f"h{j + 1}": float(v) for j, v in enumerate(h.numpy())}
    values |= {"net_out": float(out), "y_hat": float(y_hat), "loss": float(loss)}
    values |= {f"dL/d{name}": v for name, v in _names(**{k: g.numpy() for k, g in grads.items()}).items()}
    for k in _PARAMS:
        variables[k].assign_sub(net.lr * grads[k])
    return values | {f"new {name}": v for name, v in _names(**{k: v.numpy() for k, v in variables.items()}).items()}
