"""Gradients of a real Keras model, layer by layer: the vanishing-gradient demo and a run's report.

One batch through tf.GradientTape gives each layer's weight and gradient norms; TensorFlow and Keras are
imported only inside the functions, so the Learn page opens without them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.backprop import ACTIVATIONS, BackpropError
from core.datasets import model_input
from core.i18n import _

__all__ = ["LayerGradients", "build_demo_mlp", "demo_batch", "demo_gradient_reports", "gradient_report"]


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

    x_batch, y_batch = model_input(x_batch), np.asarray(y_batch)
    if len(x_batch) == 0 or len(x_batch) != len(y_batch):
        raise BackpropError(_("need a non-empty batch with one label per sample, got {samples} samples and "
                              "{labels} labels").format(samples=len(x_batch), labels=len(y_batch)))
    loss_fn = _default_loss(model, y_batch) if loss is None else loss
    layers = [layer for layer in model.layers if layer.trainable_weights]
    if not layers:
        raise BackpropError(_("the model has no trainable weights"))
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
        raise BackpropError(_("activation must be one of {choices}, got {value}").format(
            choices=", ".join(ACTIVATIONS), value=repr(activation)))
    if not 1 <= depth <= 20 or not 1 <= width <= 512:
        raise BackpropError(_("depth must be 1 to 20 and width 1 to 512, got {depth} and {width}").format(
            depth=depth, width=width))
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
