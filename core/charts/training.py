"""Training charts as pure functions: epoch records in, plotly figures out (no Streamlit, no Keras).

`history_figure` takes one or more runs' epoch records (the metrics.jsonl format), so the Train page
draws one run live and the Runs page overlays several with the same code. Run labels and metric names
are plain text, escaped here with core.text.plain. Titles, axes and legends are in the reader's language
(core.i18n); metric names other than loss and accuracy stay as Keras names them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.charts.style import LEGEND_BELOW, integer_axis, tidy
from core.i18n import _
from core.text import plain

__all__ = ["batch_figure", "fine_tuning_starts", "history_figure", "lr_figure", "metric_names", "smooth"]

_NOT_METRICS = frozenset({"kind", "epoch", "lr", "time", "samples_per_s", "partial", "batch", "step", "phase"})
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
_HEIGHT = 360


def metric_names(records: Iterable[dict[str, Any]]) -> list[str]:
    """Base metric names present in epoch records, loss first ('val_loss' counts as 'loss')."""
    names: list[str] = []
    for rec in records:
        for key in rec:
            if key in _NOT_METRICS:
                continue
            base = key[4:] if key.startswith("val_") else key
            if base not in names:
                names.append(base)
    return sorted(names, key=lambda n: (n != "loss", n != "accuracy", n))


def _metric_words(metric: str) -> str:
    """A metric's name for titles and axes: translated when it is one the app trains with, else Keras' own."""
    return {"loss": _("loss"), "accuracy": _("accuracy")}.get(metric, metric.replace("_", " "))


def smooth(values: Sequence[float | None], weight: float = 0.9) -> list[float]:
    """TensorBoard's exponential moving average, debiased so the first points are not pulled to zero
    (pandas' adjusted ewm). A missing or infinite value (a diverged batch) stays a gap: it is NaN in the
    output and the average goes on over the finite values alone."""
    if not 0 <= weight < 1:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    series = pd.Series(values, dtype=float).replace([np.inf, -np.inf], np.nan)
    return series.ewm(alpha=1 - weight, adjust=True, ignore_na=True).mean().where(series.notna()).tolist()


def _layout(fig: go.Figure, title: str, x_title: str, y_title: str, log_y: bool) -> go.Figure:
    fig.update_layout(title=title, height=_HEIGHT, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      legend=LEGEND_BELOW,  # long run names wrap there instead of squeezing the plot
                      hovermode="x unified")  # no template: Streamlit themes the chart (and templates cost ~20 ms)
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text=y_title, type="log" if log_y else "linear")
    integer_axis(fig)  # epochs and steps: never 1.2, 1.4, …
    return tidy(fig)


def history_figure(histories: dict[str, list[dict[str, Any]]], metric: str, log_y: bool = False) -> go.Figure:
    """One metric per epoch: training solid, validation dashed, one colour per run (dict key = legend)."""
    fig = go.Figure()
    single = len(histories) == 1
    for i, (name, records) in enumerate(histories.items()):
        color = _COLORS[i % len(_COLORS)]
        epochs = [r.get("epoch") for r in records if r.get("kind", "epoch") == "epoch"]
        for key, dash, part in ((metric, "solid", _("training")), (f"val_{metric}", "dash", _("validation"))):
            ys = [r.get(key) for r in records if r.get("kind", "epoch") == "epoch"]
            if all(y is None for y in ys):
                continue
            label = part if single else f"{plain(name)} · {part}"
            fig.add_trace(go.Scatter(x=epochs, y=ys, mode="lines+markers", name=label, legendgroup=plain(name),
                                     line={"color": color, "dash": dash}, connectgaps=False))
        _mark_fine_tuning(fig, records, color)
    title = plain(_metric_words(metric))
    return _layout(fig, _("{metric} per epoch").format(metric=title), _("epoch"), title, log_y)


def fine_tuning_starts(records: Iterable[dict[str, Any]]) -> int | None:
    """The first epoch of a fine-tuning run's second phase (backbone top unfrozen), or None."""
    return next((r["epoch"] for r in records if r.get("phase") == 2 and "epoch" in r), None)


def _mark_fine_tuning(fig: go.Figure, records: list[dict[str, Any]], color: str) -> None:
    """A dotted line, in the run's colour, between its last frozen epoch and its first fine-tuning one."""
    first = fine_tuning_starts(records)
    if first is None:
        return
    fig.add_vline(x=first - 0.5, line={"color": color, "dash": "dot", "width": 1.5},
                  annotation_text=_("fine-tuning starts"), annotation_position="bottom right",
                  annotation_font_color=color)


def batch_figure(batch_losses: Sequence[tuple[int, float]], weight: float = 0.9, log_y: bool = False,
                 max_points: int = 800) -> go.Figure:
    """The per-batch training loss, faint, with its smoothed curve on top (thinned to max_points).

    Redrawn every second while training: numpy arrays skip plotly's per-element checks, and thinning
    bounds what goes to the browser.
    """
    pairs = np.asarray(batch_losses, dtype=np.float64).reshape(-1, 2)
    steps, losses = pairs[:, 0], pairs[:, 1]
    smoothed = np.asarray(smooth(losses, weight))
    every = max(1, math.ceil(len(steps) / max_points))
    steps, losses, smoothed = steps[::every], losses[::every], smoothed[::every]
    fig = go.Figure()
    fig.add_trace(go.Scattergl(x=steps, y=losses, mode="lines", name=_("per batch"),
                               line={"color": "rgba(31,119,180,0.25)", "width": 1}))
    fig.add_trace(go.Scattergl(x=steps, y=smoothed, mode="lines",
                               name=_("smoothed ({weight})").format(weight=f"{weight:g}"),
                               line={"color": _COLORS[0], "width": 2}))
    return _layout(fig, _("training loss per batch"), _("step (batch)"), _("loss"), log_y)


def lr_figure(histories: dict[str, list[dict[str, Any]]], log_y: bool = False) -> go.Figure:
    """The learning rate at the end of each epoch (schedules and reduce-on-plateau show here)."""
    fig = go.Figure()
    for i, (name, records) in enumerate(histories.items()):
        pts = [(r["epoch"], r["lr"]) for r in records if r.get("lr") is not None and "epoch" in r]
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers",
                                 name=plain(name), line={"color": _COLORS[i % len(_COLORS)], "shape": "hv"}))
    fig = _layout(fig, _("learning rate"), _("epoch"), _("learning rate"), log_y)
    fig.update_layout(showlegend=len(histories) > 1)
    fig.update_yaxes(exponentformat="e", rangemode="tozero" if not log_y else "normal")
    return fig
