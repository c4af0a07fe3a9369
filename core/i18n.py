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
from functools import cache
from pathlib import Path

__all__ = ["DEFAULT", "LANGUAGES", "_", "best_match", "language", "ngettext", "set_language"]

LOCALES = Path(__file__).resolve().parents[1] / "locales"
LANGUAGES = {"en": "English", "zh": "简体中文"}  # code in the URL (?lang=) -> name in the switch
_CATALOGS = {"zh": "zh_CN"}  # code -> catalog folder under locales/
DEFAULT = "en"
_state = threading.local()


@cache
def _translation(code: str) -> gettext.NullTranslations:
    if code not in _CATALOGS:
        return gettext.NullTranslations()
    return gettext.translation("messages", localedir=LOCALES, languages=[_CATALOGS[code]])


def set_language(code: str | None) -> str:
    """Use `code` (a key of LANGUAGES; anything else: English) for the texts of this thread; returns it."""
    _state.code = code if code in LANGUAGES else DEFAULT
    return _state.code


def language() -> str:
    return getattr(_state, "code", DEFAULT)


def _(message: str) -> str:
    """`message` in the current thread's language (itself when untranslated or English)."""
    return _translation(language()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _translation(language()).ngettext(singular, plural, n)


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
