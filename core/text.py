"""User text (file, column, feature and class names, spec names, run labels) made safe for plotly.

Plotly draws titles, tick labels, legends, annotations and hover text as a small HTML dialect (<b>, <br>,
<a href>, <span style>, entities) and, when MathJax is on the page, `$…$` as LaTeX. A class name is data,
not markup: `plain` escapes it so the chart shows exactly the characters the user typed. A long name on an
axis or in a legend squeezes the plot to nothing, so there names are shortened to LABEL_CHARS (kept apart
from each other) and shown whole in the hover text.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

__all__ = ["LABEL_CHARS", "distinct", "plain", "plain_all", "shorten"]

LABEL_CHARS = 40  # the longest name written on an axis or in a legend


def shorten(text: str, max_chars: int | None) -> str:
    """`text` cut to max_chars with an ellipsis (None: unchanged)."""
    return text if max_chars is None or len(text) <= max_chars else text[: max(0, max_chars - 1)] + "…"


def plain(value: Any, max_chars: int | None = None) -> str:
    """`value` as text plotly shows literally: HTML special characters and `$` become entities.

    max_chars shortens before escaping, so no entity is cut in half."""
    return html.escape(shorten(str(value), max_chars), quote=True).replace("$", "&#36;")


def plain_all(values: Iterable[Any], max_chars: int | None = None) -> list[str]:
    """`plain` of every item (class names on an axis, legend entries). Equal items give equal labels and
    different items different ones, also once shortened ("…", then " (2)"), so no two categories merge."""
    values = [str(v) for v in values]
    unique = list(dict.fromkeys(values))
    labels = dict(zip(unique, distinct(shorten(v, max_chars) for v in unique), strict=True))
    return [plain(labels[v]) for v in values]


def distinct(names: Iterable[Any], reserved: Iterable[str] = ()) -> list[str]:
    """Column names for a table that also has `reserved` columns: a feature called "class" or "true" becomes
    "class (2)" instead of making pandas refuse the table (or two columns sharing one name)."""
    taken = set(reserved)
    out = []
    for name in map(str, names):
        candidate, n = name, 1
        while candidate in taken:
            n += 1
            candidate = f"{name} ({n})"
        taken.add(candidate)
        out.append(candidate)
    return out
