"""The augmentation preview as one pixel-exact picture: each sample, then its augmented versions."""

from __future__ import annotations

import numpy as np
import plotly.express as px
import plotly.graph_objects as go

from core.charts.style import tidy
from core.explore import mosaic
from core.i18n import _
from core.text import plain

__all__ = ["augment_grid_figure"]

TILE_PX = 80  # how large one image is drawn (an 8x8 digit 10 times, a 32x32 photo 2.5 times)
_LABEL_CHARS = 12  # class names beside the rows are cut to this many characters
_PAD = 1  # pixels between tiles (a gap of a quarter tile separates the originals from their versions)


def augment_grid_figure(originals: np.ndarray, augmented: np.ndarray, labels: tuple[str, ...] | list[str],
                        seed: int) -> go.Figure:
    """Rows of samples: the original on the left, then its augmented versions; class names beside the rows.

    originals (n, h, w, c) and augmented (n, versions, h, w, c) are in [0, 1]."""
    n, versions, h, w, c = augmented.shape
    left = mosaic(originals, cols=1, pad=_PAD)
    right = mosaic(augmented.reshape(n * versions, h, w, c), cols=versions, pad=_PAD)
    gap = max(2, w // 4)
    picture = np.concatenate([left, np.ones((left.shape[0], gap, c), np.float32), right], axis=1)
    if c >= 3:
        fig = px.imshow((np.clip(picture[..., :3], 0, 1) * 255).astype(np.uint8))
    else:
        fig = px.imshow(picture[..., 0], color_continuous_scale="gray", zmin=0, zmax=1)
        fig.update_coloraxes(showscale=False)
    names = [plain(label, _LABEL_CHARS) for label in labels]
    for r, name in enumerate(names):
        fig.add_annotation(x=-0.8, y=r * (h + _PAD) + (h - 1) / 2, text=name, showarrow=False,
                           xanchor="right", font={"size": 12})
    right_x = w + gap + (right.shape[1] - 1) / 2
    headings = (((w - 1) / 2, _("original")),
                (right_x, _("{n} augmented versions (seed {seed})").format(n=versions, seed=seed)))
    for x, text in headings:
        fig.add_annotation(x=x, y=-0.8, text=text, showarrow=False, yanchor="bottom", font={"size": 12})
    fig.update_xaxes(visible=False)
    # On a narrow screen the picture shrinks to the width: keep it under its headings, the spare height below.
    fig.update_yaxes(visible=False, constraintoward="top")
    scale = TILE_PX / max(h, w)
    left_margin = 12 + 7 * max(map(len, [str(label)[:_LABEL_CHARS] for label in labels]), default=0)
    margin = {"l": left_margin, "r": 10, "t": 30, "b": 10}
    fig.update_layout(width=round(picture.shape[1] * scale) + margin["l"] + margin["r"],
                      height=round(picture.shape[0] * scale) + margin["t"] + margin["b"],
                      margin=margin, hovermode=False)
    return tidy(fig)
