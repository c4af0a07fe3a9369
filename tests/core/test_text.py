"""The two escapers of user text: md_literal (Streamlit Markdown) and plain (plotly's HTML subset).

A CommonMark renderer checks that escaped text renders to exactly the original characters; the patterns
Streamlit 1.67's frontend applies to already-parsed text (emoji, icons, directives, autolinks, arrows;
copied from its StreamlitMarkdown bundle) are checked not to match any more.
"""

from __future__ import annotations

import html
import re
import string

import pytest

from core.text import distinct, plain, plain_all
from ui.text import WORD_JOINER, md_literal

HOSTILE = [
    "![x](http://evil.example/x.png)",
    "[click](http://evil.example)",
    "<img src=http://evil.example/y>",
    "<script>alert(1)</script>",
    "$\\frac{1}{2}$",
    "$$x$$",
    ":red[x]",
    ":red-badge[x] :small[x] :color[x]{foreground=red}",
    "**bold** __bold__ *it* _it_ ~~gone~~ `code`",
    ":material/home: :streamlit: :smile: :+1:",
    "see http://evil.example, https://evil.example/a?b=c, www.evil.example and a@evil.example",
    "a -> b <- c <-> d -- e >= f <= g ~= h",
    "&lt;b&gt; &amp; &#60; &copy;",
    "1. one",
    "- item",
    "+ item",
    "# heading",
    "> quote",
    "| a | b |\n|---|---|\n| 1 | 2 |",
    "===",
    "\\backslash\\ \\*",
    "<http://evil.example/auto>",
    "[ref]: http://evil.example\n[ref]",
    "a\nb\r\nc",
    "long_" * 1000,
]

# Patterns Streamlit matches in text nodes, after Markdown escapes are resolved.
_TEXT_PATTERNS = {
    "emoji shortcode": re.compile(r":\+1:|:-1:|:[\w-]+:"),
    "material icon": re.compile(r":material/"),
    "directive": re.compile(r":[a-z][a-z0-9-]*\["),
    "url": re.compile(r"https?://", re.IGNORECASE),
    "www": re.compile(r"www(?=\.)", re.IGNORECASE),
    "e-mail": re.compile(r"[-.\w+]+@[-\w]+(\.[-\w]+)+"),
    "arrow": re.compile(r"(^|\s)(<->|->|<-|--|>=|<=|~=)(\s|$)"),
}


def _render(markdown: str) -> str:
    """CommonMark (with GFM tables and strikethrough) to HTML."""
    markdown_it = pytest.importorskip("markdown_it")
    return markdown_it.MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown)


def _visible(rendered_html: str) -> str:
    """The text a browser shows for one rendered paragraph."""
    inner = rendered_html.strip()
    assert inner.startswith("<p>") and inner.endswith("</p>"), f"not a single paragraph: {inner[:200]!r}"
    inner = inner[3:-4]
    assert "<" not in inner, f"markup in the output: {inner[:200]!r}"
    return html.unescape(inner)


@pytest.mark.parametrize("text", HOSTILE)
def test_md_literal_renders_to_the_same_characters(text):
    rendered = _visible(_render(md_literal(text)))
    expected = re.sub(r"[\r\n]+", " ", text)
    assert rendered.replace(WORD_JOINER, "") == expected


@pytest.mark.parametrize("text", HOSTILE)
def test_md_literal_text_escapes_streamlits_own_text_patterns(text):
    rendered = _visible(_render(md_literal(text)))
    for what, pattern in _TEXT_PATTERNS.items():
        assert not pattern.search(rendered), f"{what} still matches in {rendered[:120]!r}"


@pytest.mark.parametrize("text", HOSTILE)
def test_md_literal_escapes_every_inline_syntax_character(text):
    """`$` (LaTeX, which CommonMark does not know), `*`, `[`, `<` … always come right after a backslash."""
    out, i = md_literal(text), 0
    while i < len(out):
        if out[i] == "\\":
            assert out[i + 1] in string.punctuation, out[i:i + 20]
            i += 2
            continue
        assert out[i] not in "`*_~[]<>&|$", f"unescaped {out[i]!r} in {out[max(0, i - 20):i + 20]!r}"
        i += 1


@pytest.mark.parametrize("text", HOSTILE)
def test_md_literal_is_literal_on_a_line_of_its_own(text):
    """After a line of the page's own text: no heading underline, list or quote starts there."""
    rendered = _render("Title  \n" + md_literal(text)).strip()
    assert rendered.startswith("<p>Title<br />") and rendered.endswith("</p>"), rendered[:200]
    inner = rendered[len("<p>Title<br />"):-4].strip()
    assert "<" not in inner, f"markup in the output: {inner[:200]!r}"
    assert html.unescape(inner).replace(WORD_JOINER, "") == re.sub(r"[\r\n]+", " ", text).strip()


def test_md_literal_keeps_ordinary_text_readable():
    """Only what could be syntax changes: messages stay as written, names with `_` or a leading number too."""
    assert md_literal("setosa") == "setosa"
    message = "petal length (cm), 5,000 rows; 75% (read-only)"
    assert md_literal(message) == message
    assert md_literal(3) == "3"
    assert md_literal(ValueError("column 'x' is empty: fix it")) == "column 'x' is empty: fix it"
    assert md_literal("data_batch_1") == "data\\_batch\\_1"
    assert md_literal("1. one") == "1\\. one" and md_literal("- x") == "\\- x" and md_literal("a - b") == "a - b"
    assert md_literal("http://x") == f"http:{WORD_JOINER}//x"


def test_md_literal_can_shorten_without_cutting_an_escape():
    out = md_literal("*" * 50, max_chars=10)  # 9 characters and the ellipsis, each star escaped
    assert out == "\\*" * 9 + "…"
    assert md_literal("short", max_chars=10) == "short"


@pytest.mark.parametrize("text", HOSTILE)
def test_plain_shows_the_characters_in_plotly(text):
    out = plain(text)
    assert "<" not in out and ">" not in out and "$" not in out and '"' not in out
    assert html.unescape(out) == text  # plotly decodes these entities back to the characters


def test_plain_all_and_ordinary_text():
    assert plain_all(["a", 1, "<b>"]) == ["a", "1", "&lt;b&gt;"]
    assert plain("petal length (cm)") == "petal length (cm)"


def test_shortened_labels_stay_one_per_name():
    """Two long class names sharing their first characters must not merge into one category."""
    names = ["x" * 60 + "a", "x" * 60 + "b", "short", "x" * 60 + "a", "$" * 50]
    labels = plain_all(names, 10)
    assert labels[0] == "x" * 9 + "…" and labels[1] == "x" * 9 + "… (2)" and labels[2] == "short"
    assert labels[3] == labels[0]  # the same name, the same label
    assert labels[4] == "&#36;" * 9 + "…"  # cut before escaping: no entity cut in half
    assert plain("<" * 20, 5) == "&lt;" * 4 + "…"


def test_distinct_renames_clashes_with_reserved_and_repeated_names():
    assert distinct(["class", "true", "a", "a", "class (2)"], ["class", "true"]) == [
        "class (2)", "true (2)", "a", "a (2)", "class (2) (2)"]
    assert distinct([1, 2]) == ["1", "2"]
