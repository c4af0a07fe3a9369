"""Which inputs a trained model's decision rests on: saliency maps, Grad-CAM and per-feature attributions.

All three start from the gradient of one class's score with respect to something, taken with
tf.GradientTape on the run's own model:

- **Saliency** (Simonyan, Vedaldi & Zisserman, 2014): |∂ score_c / ∂ x| per pixel, the largest over the
  colour channels. It says which pixels would change the score most if nudged.
- **Grad-CAM** (Selvaraju et al., 2017): the last Conv2D layer's feature maps A_k, each weighted by the
  mean of ∂ score_c / ∂ A_k over its positions, summed and passed through a ReLU: where in the last
  feature map the evidence *for* class c lies. It is as coarse as that map and is upsampled to the image.
- **Gradient × input** for tables: ∂ score_c / ∂ x_i · x_i per feature. The inputs are standardised, so
  x_i = 0 is the training mean and the attribution says how this row's deviation from the mean moved the
  score (for a linear model it is exactly that feature's share of the score).

The score is the class's pre-softmax value (its logit), as in both papers: a softmax probability near
1 has almost no gradient, so explaining the probability would show nothing on the confident samples that
matter most. TensorFlow and Keras are imported inside the functions only: pages that never explain stay
light (tests/core/test_no_tensorflow.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.charts.style import tidy
from core.checks import KerasLabError
from core.i18n import _
from core.text import LABEL_CHARS, plain, plain_all

__all__ = [
    "ExplainError",
    "Explanation",
    "attribution_figure",
    "attributions_heatmap",
    "explain",
    "last_conv_layer",
    "overlay_figure",
    "upsample",
]

# see-through where the map is low, so the image shows beneath, then purple, red and yellow at the maximum
_HEAT = [[0.0, "rgba(0,0,0,0)"], [0.2, "rgba(90,0,160,0.3)"], [0.6, "rgba(230,50,30,0.7)"],
         [1.0, "rgba(255,235,0,0.9)"]]
_MAX_BARS = 20  # the bar chart shows this many features, those with the largest attributions


class ExplainError(KerasLabError):
    """The model or the samples cannot be explained; the message is meant for the user."""


@dataclass(frozen=True, eq=False)
class Explanation:
    """Gradients of one class score per sample, and what the page draws from them."""

    classes: np.ndarray  # (n,) the class whose score was explained, per sample
    gradients: np.ndarray  # (n, *input shape) ∂ score_c / ∂ x
    inputs: np.ndarray  # (n, *input shape) the samples, as the model saw them
    grad_cam: np.ndarray | None  # (n, h, w) in [0, 1] at the last Conv2D's resolution, or None
    cam_layer: str  # the Conv2D layer Grad-CAM used ("" without one)
    no_cam_reason: str  # why there is no Grad-CAM ("" when there is)

    @property
    def saliency(self) -> np.ndarray:
        """(n, h, w) |gradient|, the largest over channels (images); (n, features) |gradient| (tables)."""
        magnitude = np.abs(self.gradients)
        return magnitude.max(axis=-1) if magnitude.ndim == 4 else magnitude

    @property
    def attributions(self) -> np.ndarray:
        """Gradient × input, same shape as the inputs: each feature's signed share of the score."""
        return self.gradients * self.inputs


def last_conv_layer(model: Any) -> Any | None:
    """The model's last top-level Conv2D layer, or None (an MLP, a table, a pre-trained backbone only)."""
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    return convs[-1] if convs else None


def _no_cam_reason(model: Any) -> str:
    if any(hasattr(layer, "layers") for layer in model.layers):
        return _("its convolutions are inside the pre-trained backbone, which pools its last feature map into "
                 "one vector before the model's own layers see it, so no map of positions is left to weight")
    return _("this model has no Conv2D layer (a dense network sees the input as one flat vector), and Grad-CAM "
             "weights the feature maps of the last convolution by their gradients")


def _logit_head(model: Any) -> Any | None:
    """The final Dense layer when it applies the softmax itself (every model this app builds); else None."""
    head = model.layers[-1]
    is_softmax = getattr(getattr(head, "activation", None), "__name__", "") == "softmax"
    return head if type(head).__name__ == "Dense" and is_softmax else None


def _probe(model: Any, head: Any | None, conv: Any | None) -> Any:
    """A keras.Model sharing `model`'s layers, from its input to [the head's input (without a softmax head:
    the output), the conv layer's output (when there is one)].

    A loaded Sequential model's layers were called more than once while it was rebuilt, and `layer.output`
    is the first call's, off the path to the model's output; so a Sequential is followed layer by layer.
    """
    import keras

    if not isinstance(model, keras.Sequential):
        outputs = [head.input if head is not None else model.outputs[0]]
        return keras.Model(model.inputs, outputs + ([conv.output] if conv is not None else []))
    inputs = keras.Input(tuple(model.inputs[0].shape[1:]), dtype=model.inputs[0].dtype)
    h, score, conv_out = inputs, None, None
    for layer in model.layers:
        if layer is head:
            score = h
        h = layer(h)
        if layer is conv:
            conv_out = h
    return keras.Model(inputs, [h if score is None else score] + ([conv_out] if conv is not None else []))


def explain(model: Any, x: np.ndarray, classes: np.ndarray | list[int]) -> Explanation:
    """Gradients of each sample's class score (its logit) with respect to the input and, when the model has
    a Conv2D layer, to the last one's feature maps (Grad-CAM). One GradientTape pass for the whole batch:
    the samples do not interact in inference mode, so the gradient of the summed scores is each sample's own.
    """
    import tensorflow as tf

    x = np.asarray(x)
    classes = np.asarray(classes, dtype=np.int64).reshape(-1)
    if len(x) == 0 or len(x) != len(classes):
        raise ExplainError(_("need at least one sample and one class per sample, got {samples} samples and "
                             "{classes} classes").format(samples=len(x), classes=len(classes)))
    n_out = int(model.outputs[0].shape[-1])
    if classes.min() < 0 or classes.max() >= n_out:
        raise ExplainError(_("class indices must lie in 0..{last}, got {low}..{high}").format(
            last=n_out - 1, low=classes.min(), high=classes.max()))
    head = _logit_head(model)
    conv = last_conv_layer(model)
    probe = _probe(model, head, conv)
    x_t = tf.convert_to_tensor(x, dtype=model.inputs[0].dtype)
    with tf.GradientTape() as tape:
        tape.watch(x_t)
        parts = probe(x_t, training=False)
        parts = list(parts) if isinstance(parts, list | tuple) else [parts]
        scores = parts[0]
        if head is not None:  # the logits: the head's affine part without its softmax
            scores = tf.matmul(scores, tf.cast(head.kernel, scores.dtype))
            if head.bias is not None:
                scores = scores + tf.cast(head.bias, scores.dtype)
        chosen = tf.gather(scores, tf.convert_to_tensor(classes), axis=1, batch_dims=1)
    grads = tape.gradient(chosen, [x_t, *parts[1:]])
    cam = None
    if conv is not None:
        maps, map_grads = parts[1].numpy().astype(np.float64), grads[1].numpy().astype(np.float64)
        weights = map_grads.mean(axis=(1, 2), keepdims=True)  # α_k: one weight per feature map
        cam = np.maximum((weights * maps).sum(axis=-1), 0.0)
        peak = cam.max(axis=(1, 2), keepdims=True)
        cam = np.divide(cam, peak, out=np.zeros_like(cam), where=peak > 0)
    return Explanation(classes=classes, gradients=grads[0].numpy().astype(np.float64),
                       inputs=x.astype(np.float64), grad_cam=cam, cam_layer=conv.name if conv is not None else "",
                       no_cam_reason="" if conv is not None else _no_cam_reason(model))


def upsample(heatmap: np.ndarray, height: int, width: int) -> np.ndarray:
    """A (h, w) map resized to (height, width) with bilinear interpolation (pixel centres aligned, as an
    image is resized), so each coarse cell covers the part of the image its feature saw."""
    from PIL import Image

    img = Image.fromarray(np.asarray(heatmap, dtype=np.float32))  # mode "F": 32-bit float pixels
    return np.asarray(img.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float64)


# ---- figures ------------------------------------------------------------------------------------------

def _rgb(image: np.ndarray) -> np.ndarray:
    """A (h, w) or (h, w, c) float image in [0, 1] as (h, w, 3) uint8, for go.Image."""
    img = np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return (img * 255).round().astype(np.uint8)


def overlay_figure(image: np.ndarray, maps: dict[str, np.ndarray], title: str = "") -> go.Figure:
    """The image, then each map (title -> (h, w) array, any resolution) scaled to [0, 1], upsampled to the
    image and laid over a copy of it; `title` and the map titles are plain text."""
    rgb = _rgb(image)
    h, w = rgb.shape[:2]
    fig = make_subplots(rows=1, cols=1 + len(maps), subplot_titles=[_("input"), *map(plain, maps)],
                        horizontal_spacing=0.03)
    fig.add_trace(go.Image(z=rgb, hoverinfo="skip"), row=1, col=1)
    for col, heat in enumerate(maps.values(), start=2):
        heat = np.asarray(heat, dtype=np.float64)
        if heat.shape != (h, w):
            heat = upsample(heat, h, w)
        top = heat.max()
        heat = heat / top if top > 0 else heat
        fig.add_trace(go.Image(z=rgb, hoverinfo="skip"), row=1, col=col)
        fig.add_trace(go.Heatmap(z=heat, zmin=0, zmax=1, colorscale=_HEAT, showscale=col == 2,
                                 colorbar={"title": _("share of max"), "len": 0.8, "thickness": 10},
                                 hovertemplate=_("row {row}, column {column}: {value}").format(
                                     row="%{y}", column="%{x}", value="%{z:.2f}") + "<extra></extra>"),
                      row=1, col=col)
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x", constrain="domain")
    for col in range(2, 2 + len(maps)):  # each overlay square, like its image
        fig.update_yaxes(scaleanchor=f"x{col}", row=1, col=col)
    fig.update_layout(title=plain(title) if title else None, height=300 if title else 250,
                      margin={"l": 0, "r": 0, "t": 60 if title else 30, "b": 0})
    return tidy(fig)


def _feature_labels(names: list[str] | tuple[str, ...], n: int) -> list[str]:
    return list(names) if len(names) == n else [f"x{i}" for i in range(n)]


def attribution_figure(names: list[str] | tuple[str, ...], attributions: np.ndarray, inputs: np.ndarray,
                       title: str = "") -> go.Figure:
    """Gradient × input per feature as horizontal bars, largest magnitude on top (the _MAX_BARS largest)."""
    values = np.asarray(attributions, dtype=np.float64)
    labels = _feature_labels(names, len(values))
    order = np.argsort(-np.abs(values), kind="stable")[:_MAX_BARS][::-1]  # plotly draws bars bottom-up
    fig = go.Figure(go.Bar(
        x=values[order], y=plain_all([labels[i] for i in order], LABEL_CHARS), orientation="h",
        marker={"color": np.where(values[order] >= 0, "#d62728", "#1f77b4")},
        customdata=np.c_[np.asarray(inputs, dtype=np.float64)[order]],
        hovertext=[plain(labels[i]) for i in order],
        hovertemplate="%{hovertext}: %{x:.3g}<br>" + _("input (standardised) {value}").format(
            value="%{customdata[0]:.3g}") + "<extra></extra>"))
    fig.update_layout(title=plain(title) if title else None, height=max(240, 60 + 22 * len(order)),
                      xaxis_title=_("gradient × input (red raises the score, blue lowers it)"),
                      margin={"l": 10, "r": 10, "t": 40, "b": 10})
    fig.update_yaxes(type="category")
    return tidy(fig)


def attributions_heatmap(names: list[str] | tuple[str, ...], attributions: np.ndarray,
                         rows: list[str]) -> go.Figure:
    """Several samples' gradient × input (samples × features), red raising and blue lowering the explained
    class's score, on one colour scale centred on 0."""
    values = np.asarray(attributions, dtype=np.float64)
    labels = _feature_labels(names, values.shape[1])
    bound = float(np.abs(values).max()) or 1.0
    fig = go.Figure(go.Heatmap(z=values, x=plain_all(labels, LABEL_CHARS), y=plain_all(rows, LABEL_CHARS),
                               zmin=-bound, zmax=bound, colorscale="RdBu_r",
                               colorbar={"title": _("grad × input"), "thickness": 10},
                               hovertemplate="%{y}<br>%{x}: %{z:.3g}<extra></extra>"))
    fig.update_xaxes(type="category", tickangle=-45)
    fig.update_yaxes(type="category", autorange="reversed")
    fig.update_layout(height=max(260, 120 + 28 * len(rows)), margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return tidy(fig)
