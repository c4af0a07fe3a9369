"""Small multiples of the activation functions and their slopes, for the Backprop and Model pages."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.activations import ACTIVATIONS, max_slope
from core.charts.style import LEGEND_BELOW, tidy
from core.i18n import _

__all__ = ["SATURATING", "activations_figure"]

SATURATING = ("sigmoid", "tanh", "softmax")  # bounded curves: their largest slope is marked
_COLOURS = {"function": "#1f77b4", "slope": "#ff7f0e"}
_ROW_PX = 190


def activations_figure(names: Sequence[str] = tuple(ACTIVATIONS), z_max: float = 4.0) -> go.Figure:
    """One panel per activation, two columns: f(z) solid, its slope f′(z) dashed, z from −z_max to z_max.

    On the saturating curves the slope's peak is marked and labelled: the most a gradient can keep when it
    passes back through that unit.
    """
    z = np.linspace(-z_max, z_max, 401)  # odd: z = 0 is on the grid, where sigmoid and tanh peak
    rows = -(-len(names) // 2)
    fig = make_subplots(rows=rows, cols=2, subplot_titles=[ACTIVATIONS[n].label for n in names],
                        horizontal_spacing=0.1, vertical_spacing=0.5 / (rows + 1))
    curves = (("function", "solid", "f(z)", _("f(z), the activation")), ("slope", "dash", "f′(z)", _("f′(z), its slope")))
    for k, name in enumerate(names):
        act, row, col = ACTIVATIONS[name], k // 2 + 1, k % 2 + 1
        slope = act.derivative(z)
        slope[1:][np.abs(np.diff(slope)) > 0.1] = np.nan  # a gap where the slope jumps (ReLU at 0), no riser
        values = {"function": act(z), "slope": slope}
        for part, dash, symbol, label in curves:
            fig.add_trace(go.Scatter(x=z, y=values[part], mode="lines", name=label, legendgroup=part,
                                     showlegend=k == 0, line={"color": _COLOURS[part], "dash": dash},
                                     hovertemplate=f"{act.label}<br>z = %{{x:.2f}}<br>{symbol}"
                                                   " = %{y:.4f}<extra></extra>"), row=row, col=col)
        if name in SATURATING:
            peak_z, peak = max_slope(act, z)
            fig.add_trace(go.Scatter(x=[peak_z], y=[peak], mode="markers", showlegend=False, hoverinfo="skip",
                                     marker={"color": _COLOURS["slope"], "size": 8}), row=row, col=col)
            # the label in the upper-left corner, which a saturating curve leaves empty (on a phone a label
            # beside the peak runs into the next panel)
            fig.add_annotation(x=0.02, y=0.98, xref="x domain", yref="y domain", xanchor="left", yanchor="top",
                               text=_("max slope<br>{peak} at z = {z}").format(peak=f"{peak:.4g}", z=f"{peak_z:g}"),
                               showarrow=False, align="left",
                               font={"size": 12, "color": _COLOURS["slope"]}, row=row, col=col)
    fig.update_xaxes(zeroline=True, zerolinecolor="#bbb", range=[-z_max, z_max])  # labels never widen it
    fig.update_yaxes(zeroline=True, zerolinecolor="#bbb")
    fig.update_xaxes(title_text="z", row=rows)
    # t: the figure's title under the toolbar, then the first row's panel titles on a line of their own
    fig.update_layout(height=_ROW_PX * rows + 170, margin={"l": 10, "r": 10, "t": 60, "b": 10},
                      title=_("Activations (solid) and their slopes (dashed)"), legend=LEGEND_BELOW)
    return tidy(fig)
