"""Translations: gettext catalogs (compiled by Babel) chosen per visitor, never process-wide.

Streamlit serves every visitor from one process, so `gettext.install` would make everyone see the language
of whoever set it last. Instead the UI sets the language of the script run's own thread
(`set_language`, called at the start of every run) and every user-facing text goes through `_` (or
`ngettext`), which looks it up in that language's catalog. Core code uses the same functions, so its
messages (errors, diagnostics) follow the visitor's language; code that runs outside a page (a training
process, a bench) gets English.

Catalogs: `locales/<locale>/LC_MESSAGES/messages.po`, compiled to `.mo` next to it (`make i18n` extracts,
updates and compiles with Babel; the compiled files are committed, because Community Cloud installs only
requirements.txt). Terminology: `docs/glossary.csv`.
"""

from __future__ import annotations

import gettext
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

__all__ = ["DEFAULT", "LANGUAGES", "_", "best_match", "language", "language_of", "ngettext", "pgettext", "set_language",
           "set_resolver"]

LOCALES = Path(__file__).resolve().parents[1] / "locales"
LANGUAGES = {"en": "English", "zh": "简体中文"}  # code in the URL (?lang=) -> name in the switch
_CATALOGS = {"zh": "zh_CN"}  # code -> catalog folder under locales/
DEFAULT = "en"
_state = threading.local()
_resolver: Callable[[], str | None] | None = None


@cache
def _translation(code: str) -> gettext.NullTranslations:
    if code not in _CATALOGS:
        return gettext.NullTranslations()
    return gettext.translation("messages", localedir=LOCALES, languages=[_CATALOGS[code]])


def set_language(code: str | None) -> str:
    """Use `code` (a key of LANGUAGES; anything else: English) for the texts of this thread; returns it."""
    _state.code = code if code in LANGUAGES else DEFAULT
    return _state.code


def set_resolver(resolver: Callable[[], str | None] | None) -> None:
    """Where a thread that was never given a language asks for one: the UI answers with the visitor's
    language in its script threads (widget callbacks and fragment reruns run in threads that app.py's
    start-of-run code never saw) and None elsewhere (a training process, a sweep thread: English)."""
    global _resolver
    _resolver = resolver


def language() -> str:
    code = getattr(_state, "code", None)
    if code is None and _resolver is not None:
        code = _resolver()
    return code if code in LANGUAGES else DEFAULT


@contextmanager
def language_of(code: str | None) -> Iterator[None]:
    """Texts made inside the block are in `code` (e.g. a message a background thread writes for the
    visitor who started it); the thread's own language afterwards."""
    before = getattr(_state, "code", None)
    set_language(code)
    try:
        yield
    finally:
        if before is None:
            del _state.code
        else:
            _state.code = before


def _(message: str) -> str:
    """`message` in the current thread's language (itself when untranslated or English)."""
    return _translation(language()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _translation(language()).ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    """`message` where the same English word needs another translation elsewhere ("constant": a column kind,
    常量, vs a learning-rate schedule, 恒定)."""
    return _translation(language()).pgettext(context, message)


def best_match(accept_language: str | None) -> str:
    """The language to start in from a browser's Accept-Language header ("zh-CN,zh;q=0.9,en;q=0.8")."""
    ranked = []
    for i, part in enumerate((accept_language or "").split(",")):
        tag, _sep, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        ranked.append((-q, i, tag.strip().lower()))
    for _q, _i, tag in sorted(ranked):
        code = tag.split("-")[0]
        if code in LANGUAGES:
            return code
    return DEFAULT
