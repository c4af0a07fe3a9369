"""Plotly figures for the Data page: pure functions, data in -> go.Figure out (no streamlit).

Class and feature names are plain text: escaped here with core.text.plain, shortened on axes and in
legends, and never used as plotly express column names (those end up inside hover templates).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from core.charts.style import LEGEND_BELOW, tidy
from core.i18n import _
from core.text import LABEL_CHARS, plain, plain_all

__all__ = [
    "class_balance_figure",
    "correlation_figure",
    "feature_histogram_figure",
    "image_mosaic_figure",
    "pixel_histogram_figure",
    "projection_figure",
]

_MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}


def part_label(part: str) -> str:
    """A part of the data (explore.class_counts) as people read it, in the visitor's language."""
    return {"all": _("all"), "train": _("train"), "validation": _("validation"), "test": _("test")}.get(part, part)


def class_balance_figure(counts: pd.DataFrame) -> go.Figure:
    """Grouped bars of samples per class and part (the frame of explore.class_counts)."""
    counts = counts.assign(**{"class": plain_all(counts["class"], LABEL_CHARS), "part": counts["part"].map(part_label)})
    fig = px.bar(counts, x="class", y="count", color="part", barmode="group", text_auto=True,
                 title=_("Samples per class"), category_orders={"class": list(dict.fromkeys(counts["class"]))},
                 labels={"class": _("class"), "count": _("samples"), "part": _("part")})
    many = counts["class"].nunique() > 20
    fig.update_traces(textposition="outside" if not many else "none", cliponaxis=False)
    fig.update_xaxes(type="category", title=None)
    # counts too small to read on a narrow screen (a phone) are left out rather than drawn over each other
    fig.update_layout(margin=_MARGIN, legend={**LEGEND_BELOW, "title_text": ""}, height=380,
                      uniformtext={"minsize": 9, "mode": "hide"})
    return tidy(fig)


def image_mosaic_figure(picture: np.ndarray, *, tile: tuple[int, int], cols: int, titles: list[str] | None = None,
                        pad: int = 1, title: str = "") -> go.Figure:
    """One tiled picture (from explore.mosaic) drawn pixel-exact, with a caption above each tile."""
    rgb = picture.shape[2] >= 3
    if rgb:
        fig = px.imshow((np.clip(picture[..., :3], 0, 1) * 255).astype(np.uint8))
    else:
        fig = px.imshow(picture[..., 0], color_continuous_scale="gray", zmin=0, zmax=1)
        fig.update_coloraxes(showscale=False)
    h, w = tile
    for i, text in enumerate(titles or []):
        r, k = divmod(i, cols)
        fig.add_annotation(x=k * (w + pad) + (w - 1) / 2, y=r * (h + pad) - 0.6, text=plain(text, LABEL_CHARS),
                           showarrow=False,
                           yanchor="bottom", font={"size": 11})
    rows = -(-max(len(titles or []), 1) // cols) if titles else picture.shape[0] // (h + pad) + 1
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    extra = 18 * rows if titles else 0
    width_px = min(1100, max(260, 90 * cols))
    fig.update_layout(title=plain(title) if title else None, margin={**_MARGIN, "t": 40 + (14 if titles else 0)},
                      height=int(width_px * picture.shape[0] / picture.shape[1]) + 60 + extra,
                      hovermode=False)
    return tidy(fig)


def pixel_histogram_figure(hist: pd.DataFrame) -> go.Figure:
    """Bars of pixel-value counts per channel (the frame of explore.pixel_histogram)."""
    colors = {"grey": "#555555", "red": "#d33f49", "green": "#2a9d8f", "blue": "#3a6ea5", "alpha": "#999999"}
    names = {"grey": _("grey"), "red": _("red"), "green": _("green"), "blue": _("blue")}  # alpha stays alpha
    fig = go.Figure()
    for channel, part in hist.groupby("channel", sort=False):
        fig.add_bar(x=(part["left"] + part["right"]) / 2, y=part["count"], name=names.get(channel, str(channel)),
                    width=float((part["right"] - part["left"]).iloc[0]), marker_color=colors.get(channel),
                    opacity=0.6 if hist["channel"].nunique() > 1 else 1.0)
    fig.update_layout(barmode="overlay", title=_("Pixel values"), xaxis_title=_("value (0 = black, 1 = white)"),
                      yaxis_title=_("pixels"), margin=_MARGIN, height=350, legend={**LEGEND_BELOW, "title_text": ""})
    return tidy(fig)


def feature_histogram_figure(values: np.ndarray, labels: list[str], feature: str,
                             class_order: list[str]) -> go.Figure:
    """Overlaid histograms of one feature, one colour per class."""
    short = dict(zip(class_order, plain_all(class_order, LABEL_CHARS), strict=True))
    frame = pd.DataFrame({"value": values, "class": [short[c] for c in labels]})
    fig = px.histogram(frame, x="value", color="class", barmode="overlay", opacity=0.6, nbins=30,
                       category_orders={"class": list(short.values())},
                       title=_("{feature} by class").format(feature=plain(feature, 80)),
                       labels={"value": plain(feature, 80), "class": _("class")})
    fig.update_layout(margin=_MARGIN, height=380, yaxis_title=_("samples"), xaxis_title=plain(feature, 80),
                      legend={**LEGEND_BELOW, "title_text": _("class")})
    return tidy(fig)


def correlation_figure(corr: pd.DataFrame) -> go.Figure:
    """Heatmap of a feature correlation matrix on a fixed -1..1 diverging scale."""
    n = len(corr)
    corr = corr.set_axis(plain_all(corr.index, LABEL_CHARS), axis=0).set_axis(
        plain_all(corr.columns, LABEL_CHARS), axis=1)
    fig = px.imshow(corr, zmin=-1, zmax=1, color_continuous_scale="RdBu_r", text_auto=".2f" if n <= 12 else False,
                    title=_("Feature correlation (Pearson)"), aspect="auto", labels={"color": _("correlation")})
    fig.update_layout(margin=_MARGIN, height=min(900, max(360, 28 * n + 120)))
    fig.update_coloraxes(colorbar_thickness=12)  # a slim scale leaves the matrix room on a phone
    return tidy(fig)


def projection_figure(coords: np.ndarray, labels: list[str], class_order: list[str], title: str) -> go.Figure:
    """Scatter of 2-D coordinates coloured by class."""
    short = dict(zip(class_order, plain_all(class_order, LABEL_CHARS), strict=True))
    frame = pd.DataFrame({"dim 1": coords[:, 0], "dim 2": coords[:, 1], "class": [short[c] for c in labels]})
    fig = px.scatter(frame, x="dim 1", y="dim 2", color="class", category_orders={"class": list(short.values())},
                     title=plain(title), opacity=0.75,
                     labels={"dim 1": _("dim 1"), "dim 2": _("dim 2"), "class": _("class")})
    fig.update_traces(marker={"size": 5 if len(frame) > 1000 else 7})
    fig.update_layout(margin=_MARGIN, height=520, legend={**LEGEND_BELOW, "title_text": _("class")})
    return tidy(fig)
