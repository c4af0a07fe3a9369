"""The backprop page's proof: our numbers next to finite differences and to TensorFlow, for the user to see.

Both references share nothing with `backward`: finite differences only run the forward pass, and
`tf_reference` builds the network again from TensorFlow ops (TensorFlow is imported only when called).
"""

from __future__ import annotations

from typing import Any

from core.backprop import (
    Network,
    backward,
    forward,
    named_values,
    parameter_names,
    parameter_value,
    sgd_step,
    with_parameter,
)
from core.i18n import _

__all__ = ["compare", "finite_difference_gradients", "our_values", "quantity_label", "tf_reference"]


def _values(z: Any, h: Any, net_out: float, y_hat: float, loss: float) -> dict[str, float]:
    """The forward pass's values by the names the comparison table shows."""
    values = {f"z{j + 1}": float(v) for j, v in enumerate(z)}
    values.update({f"h{j + 1}": float(v) for j, v in enumerate(h)})
    values.update({"net_out": float(net_out), "y_hat": float(y_hat), "loss": float(loss)})
    return values


def our_values(net: Network) -> dict[str, float]:
    """Forward values, every gradient and every updated parameter by name (what the references are compared with)."""
    fwd, g = forward(net), backward(net)
    after = sgd_step(net, g)
    values = _values(fwd.z, fwd.h, fwd.net_out, fwd.y_hat, fwd.loss)
    values.update({f"dL/d{p}": v for p, v in named_values(g.w1, g.b1, g.w2, g.b2).items()})
    values.update({f"new {p}": v for p, v in named_values(after.w1, after.b1, after.w2, after.b2).items()})
    return values


def tf_reference(net: Network) -> dict[str, float]:
    """The same values from TensorFlow: float64 ops, gradients by tf.GradientTape, the update in TF.

    Imports TensorFlow (a few seconds the first time).
    """
    import keras
    import tensorflow as tf

    x = tf.constant(net.x, dtype=tf.float64)
    y = tf.constant(net.y, dtype=tf.float64)
    variables = {k: keras.Variable(getattr(net, k), dtype="float64", name=k) for k in ("w1", "b1", "w2", "b2")}
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
    grads = dict(zip(variables, tape.gradient(loss, [v.value for v in variables.values()]), strict=True))
    values = _values(z.numpy(), h.numpy(), net_out, y_hat, loss)
    values.update({f"dL/d{p}": v for p, v in named_values(**{k: g.numpy() for k, g in grads.items()}).items()})
    for k, v in variables.items():  # the SGD update in float64 (Keras' SGD keeps its learning rate in float32)
        v.assign_sub(net.lr * grads[k])
    values.update({f"new {p}": v for p, v in named_values(**{k: v.numpy() for k, v in variables.items()}).items()})
    return values


def finite_difference_gradients(net: Network, eps: float = 1e-6) -> dict[str, float]:
    """dL/dθ ≈ (L(θ+ε) − L(θ−ε)) / 2ε for every parameter: no calculus, just the forward pass."""
    out = {}
    for p in parameter_names(net):
        v = parameter_value(net, p)
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


def quantity_label(name: str) -> str:
    """A row's quantity as the table shows it, in the reader's language (the names above stay keys)."""
    if name.startswith("new "):
        return _("new {parameter}").format(parameter=name.removeprefix("new "))
    return {"net_out": _("net_out"), "y_hat": _("y_hat"), "loss": _("loss")}.get(name, name)
