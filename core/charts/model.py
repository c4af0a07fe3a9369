"""The architecture diagram: layers as boxes, top to bottom, each with its output shape (plotly only).

Layer texts are escaped with core.text.plain: the <b> around each box title is the only markup.
"""

from __future__ import annotations

import math
from typing import Any

from core.i18n import _
from core.models import layer_position
from core.text import plain

__all__ = ["LAYER_COLOURS", "architecture_figure"]

# Box colour per family of layer, so the structure reads at a glance.
LAYER_COLOURS = {
    "input": "#9e9e9e", "conv": "#4c78a8", "pool": "#72b7b2", "dense": "#f58518", "reshape": "#b279a2",
    "regularise": "#bab0ac", "augment": "#54a24b", "backbone": "#e45756", "head": "#d62728",
}


def _family(type_: str) -> str:
    t = type_.split(" ")[0]
    if t.startswith("Backbone"):
        return "backbone"
    if t == "Conv2D":
        return "conv"
    if "Pooling" in t:
        return "pool"
    if t in ("Flatten", "Concatenate", "Resizing", "Rescaling"):
        return "reshape"
    if t.startswith("Random"):
        return "augment"
    if t in ("Dropout", "BatchNormalization", "Activation", "LeakyReLU"):
        return "regularise"
    return "dense"


def architecture_figure(rows: list[dict] | tuple[dict, ...], input_shape: tuple[int, ...]) -> Any:
    """One box per layer (width grows with the log of its output size) from a ModelSummary's rows."""
    import plotly.graph_objects as go

    boxes = [{"label": _("Input"), "detail": "", "shape": " x ".join(map(str, input_shape)), "family": "input",
              "size": math.prod(input_shape)}]
    for r in rows:
        dims = [int(d) for d in str(r["output shape"]).split(" x ") if d.strip().isdigit()]
        family = "head" if r["layer"] == "head" else _family(r["type"])
        label = _("Dense (classifier)") if family == "head" else r["type"].split(" (")[0]
        position = layer_position(r["layer"])
        boxes.append({"label": plain(f"{position} · {label}" if family != "head" else label),
                      "detail": plain(r.get("settings", "")), "shape": plain(r["output shape"]), "family": family,
                      "size": math.prod(dims) if dims else 1, "params": r.get("params", 0)})
    biggest = max(math.log10(b["size"] + 1) for b in boxes) or 1.0
    fig = go.Figure()
    step = 1.0
    for k, b in enumerate(boxes):
        y = -k * step
        half = 0.3 + 0.2 * math.log10(b["size"] + 1) / biggest  # 0.6 to 1.0 of the width: text must fit
        fig.add_shape(type="rect", x0=0.5 - half, x1=0.5 + half, y0=y - 0.36, y1=y + 0.36,
                      fillcolor=LAYER_COLOURS[b["family"]], opacity=0.9, line={"width": 0}, layer="below")
        params = " · " + _("{n} params").format(n=f"{b['params']:,}") if b.get("params") else ""
        fig.add_annotation(x=0.5, y=y, showarrow=False, font={"color": "white", "size": 11},
                           text=f"<b>{b['label']}</b>  →  {b['shape']}{params}")
        if k:
            fig.add_annotation(x=0.5, y=y + 0.36, ax=0.5, ay=y + step - 0.36, xref="x", yref="y",
                               axref="x", ayref="y", showarrow=True, arrowhead=2, arrowsize=0.8,
                               arrowcolor="#888", text="")
    # Invisible points carry the hover text (settings) for every box.
    fig.add_trace(go.Scatter(
        x=[0.5] * len(boxes), y=[-k * step for k in range(len(boxes))], mode="markers",
        marker={"size": 28, "opacity": 0}, showlegend=False,
        hovertext=[f"{b['label']}<br>{b['detail']}<br>" + _("output {shape}").format(shape=b["shape"]) for b in boxes],
        hoverinfo="text"))
    fig.update_xaxes(visible=False, range=[0, 1], fixedrange=True)
    fig.update_yaxes(visible=False, range=[-(len(boxes) - 1) * step - 0.6, 0.6], fixedrange=True)
    fig.update_layout(height=60 + 44 * len(boxes), margin={"l": 0, "r": 0, "t": 10, "b": 10},
                      plot_bgcolor="rgba(0,0,0,0)", paper_bgcolor="rgba(0,0,0,0)")
    return fig
