"""User text made literal for Streamlit's Markdown: one visitor's class name must not become another's image.

Streamlit renders Markdown in st.markdown / caption / title / headers / alerts / toasts, image captions,
widget labels and tooltips, tab, expander, button and metric labels (and metric values), progress and
spinner texts, and the options of radio, segmented control, pills and select_slider. Selectbox and
multiselect options, dataframes, st.text and st.code are shown literally and need nothing.

Streamlit's dialect (1.67) is GitHub Markdown plus `$…$` LaTeX, `:red[…]`-style directives, `:material/…:`
icons, `:emoji:` shortcodes, `:streamlit:`, autolinked URLs, www. addresses and e-mail addresses, and
typographic arrows (` -> ` becomes →); HTML is not rendered (no unsafe_allow_html here) but entities such
as `&lt;` are decoded. md_literal defeats each construct with as little change to the source as it can:
- a backslash before every character that opens inline syntax anywhere: \\ ` * _ ~ [ ] < > & | $;
- at the start only (where block syntax lives): a backslash before # + - = and the . or ) of "1." / "1)";
- a WORD JOINER (U+2060, invisible and zero-width) after a `:` or `@` that touches the next character,
  between `www` and `.`, and inside a free-standing arrow or `--`: icons, emoji, directives, autolinks
  and arrows are matched in the already-unescaped text, where a backslash no longer exists.
Line breaks become spaces, so no user text can start a line of its own.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["WORD_JOINER", "md_literal"]

WORD_JOINER = "\u2060"
_ESCAPE = {ord(c): "\\" + c for c in "\\`*_~[]<>&|$"}
_LINE_BREAKS = re.compile(r"[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+")
_ARROW = re.compile(r"(?<!\S)(<->|->|<-|--|>=|<=|~=)(?!\S)")
_JOIN_AFTER = re.compile(r"([:@])(?=\S)")
_WWW = re.compile(r"(www)(?=\.)", re.IGNORECASE)
_BLOCK_START = re.compile(r"^(\s*)(?:([#+\-=])|(\d+)([.)]))")


def md_literal(value: Any, max_chars: int | None = None) -> str:
    """`value` as Markdown that Streamlit displays character for character (line breaks become spaces).

    max_chars shortens very long text with an ellipsis (before escaping, so no escape is cut in half).
    """
    text = _LINE_BREAKS.sub(" ", str(value))
    if max_chars is not None and len(text) > max_chars:
        text = text[: max(0, max_chars - 1)] + "…"
    text = _ARROW.sub(lambda m: m[1][0] + WORD_JOINER + m[1][1:], text)
    text = text.translate(_ESCAPE)
    text = _JOIN_AFTER.sub(r"\1" + WORD_JOINER, text)
    text = _WWW.sub(r"\1" + WORD_JOINER, text)
    return _BLOCK_START.sub(lambda m: m[1] + (f"\\{m[2]}" if m[2] else f"{m[3]}\\{m[4]}"), text, count=1)
