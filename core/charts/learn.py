"""Plotly figures of the Learn pages: loss over SGD steps, per-layer gradient norms and histograms.

Layer names come from a trained model, so they are escaped with core.text.plain.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from core.charts.style import LEGEND_BELOW, integer_axis, tidy
from core.i18n import _
from core.text import plain

__all__ = ["gradient_histograms", "gradient_norms_figure", "loss_steps_figure"]

_MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}


def loss_steps_figure(losses: Sequence[float]) -> go.Figure:
    """The loss after each SGD step (step 0 is the network as edited)."""
    fig = go.Figure(go.Scatter(x=list(range(len(losses))), y=list(losses), mode="lines+markers",
                               marker={"size": 5}, name=_("loss")))
    fig.update_layout(height=300, margin=_MARGIN, title=_("Loss after each SGD step"),
                      xaxis_title=_("step"), yaxis_title=_("loss"))
    # whole steps, from half a step before step 0 (its dot is not cut by the edge), room for at least 5 steps
    fig.update_xaxes(range=[-0.5, max(len(losses) - 1, 5) + 0.5])
    fig.update_yaxes(rangemode="tozero")
    return tidy(integer_axis(fig))


def gradient_norms_figure(records: Sequence[Any]) -> go.Figure:
    """Weight and gradient L2 norm per layer on a log axis: vanishing gradients show as a falling staircase."""
    names = [plain(r.name) for r in records]
    fig = go.Figure([go.Bar(name=_("weight norm"), x=names, y=[r.weight_norm for r in records]),
                     go.Bar(name=_("gradient norm"), x=names, y=[r.grad_norm for r in records])])
    fig.update_layout(barmode="group", height=340, margin=_MARGIN, title=_("L2 norm per layer (log scale)"),
                      xaxis_title=_("layer (input side on the left)"),  # a title this long is cut on a phone
                      legend=LEGEND_BELOW)
    fig.update_yaxes(type="log", exponentformat="power")
    return tidy(fig)


def gradient_histograms(records: Sequence[Any]) -> tuple[go.Figure, go.Figure]:
    """(weights, log10 |gradient|) histograms, one overlaid trace per layer; zero gradients are left out."""
    weights, grads = go.Figure(), go.Figure()
    for r in records:
        weights.add_trace(go.Histogram(x=r.weights, name=plain(r.name), opacity=0.55, histnorm="probability",
                                       nbinsx=40))
        nonzero = np.abs(r.grads[r.grads != 0])
        grads.add_trace(go.Histogram(x=np.log10(nonzero), name=plain(r.name), opacity=0.55, histnorm="probability",
                                     nbinsx=40))
    for fig, title, axis in ((weights, _("Weights"), _("weight value")),
                             (grads, _("Gradient sizes"), _("log10 |gradient|"))):
        fig.update_layout(barmode="overlay", height=360, title=title, xaxis_title=axis,
                          yaxis_title=_("share of the layer"), margin=_MARGIN, legend=LEGEND_BELOW)
        tidy(fig)
    return weights, grads
