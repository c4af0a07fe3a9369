"""Layout shared by every chart of the app: the title clear of Plotly's toolbar, and whole-number axes.

Plotly's toolbar (the modebar) sits in the top-right corner of a chart. With a mouse it shows only while
the pointer is over the chart, but on a touch screen it is always there, and on a phone it spans most of a
chart's width, so it covered the titles. `tidy` puts the title on its own line under the toolbar and drops
the buttons that a click on a phone mostly hits by mistake (zoom in / out, autoscale: the magnifier and
the home button remain).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go

__all__ = ["LEGEND_BELOW", "MODEBAR_REMOVED", "TOOLBAR_PX", "integer_axis", "tidy"]

TOOLBAR_PX = 30  # the toolbar's height (its buttons are 22 px, 2 px from the top edge); titles start below
_LOWER_PX = 20  # how much lower the plot starts than with Plotly's title placement (middle of a 40 px margin)
MODEBAR_REMOVED = ("zoomin", "zoomout", "autoscale", "lasso", "select")
# A legend at the foot of the chart, in rows: one beside the plot takes a third of a phone's width.
LEGEND_BELOW = {"orientation": "h", "yref": "container", "y": 0, "yanchor": "bottom", "x": 0, "xanchor": "left"}


def tidy(fig: go.Figure) -> go.Figure:
    """Title under the toolbar (with room for it in the top margin) and a shorter toolbar; returns fig."""
    fig.update_layout(modebar={"remove": list(MODEBAR_REMOVED)})
    if fig.layout.title.text:
        top = fig.layout.margin.t if fig.layout.margin.t is not None else 40
        fig.update_layout(title={"y": 1, "yref": "container", "yanchor": "top", "pad": {"t": TOOLBAR_PX}},
                          margin={"t": max(top, 40) + _LOWER_PX})
    return fig


def integer_axis(fig: go.Figure, axis: str = "x") -> go.Figure:
    """Ticks on whole numbers only (epochs, steps) on the x or y axes of every trace of fig: one per value
    when they span up to 12, else at most 12 ticks (so Plotly's spacing is 2, 5, 10, …, never 0.2)."""
    span = 0.0
    values = [getattr(trace, axis) for trace in fig.data]
    numbers = np.asarray([v for seq in values if seq is not None for v in seq
                          if isinstance(v, int | float | np.number)], dtype=np.float64)
    finite = numbers[np.isfinite(numbers)]
    if finite.size:
        span = float(finite.max() - finite.min())
    ticks: dict[str, Any] = {"tickformat": "d"}
    if span <= 12:
        ticks.update(tickmode="linear", tick0=0, dtick=1)
    else:
        ticks.update(tickmode="auto", nticks=12)  # spacing ≥ span / 12 > 1: Plotly rounds it to 2, 5, 10, …
    getattr(fig, f"update_{axis}axes")(**ticks)
    return fig
