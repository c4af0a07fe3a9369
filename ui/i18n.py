"""The visitor's language: from the URL (?lang=zh), else the browser's; a switch in the sidebar.

Each script run sets the language of its own thread (core.i18n.set_language), so two visitors never see
each other's language. The choice is written to the URL, so it survives reloads and travels with links.
"""

from __future__ import annotations

import streamlit as st

from core.i18n import LANGUAGES, _, best_match, set_language

__all__ = ["init_language", "language_switch"]

_PARAM = "lang"
_KEY = "ui_language"


def init_language() -> str:
    """Called first in every script run (app.py): ?lang= wins, then the session's choice, then the browser."""
    code = st.query_params.get(_PARAM)
    if code not in LANGUAGES:
        code = st.session_state.get(_KEY) or best_match(st.context.headers.get("Accept-Language")
                                                        or st.context.locale)
    st.session_state[_KEY] = set_language(code)
    return st.session_state[_KEY]


def _switched() -> None:
    code = st.session_state[f"{_KEY}_widget"] or st.session_state[_KEY]  # a click on the chosen one clears it
    st.session_state[_KEY] = set_language(code)
    st.query_params[_PARAM] = code


def language_switch() -> None:
    """English / 简体中文 in the sidebar (each name in its own language, so anyone can find theirs)."""
    st.session_state[f"{_KEY}_widget"] = st.session_state[_KEY]
    st.sidebar.segmented_control(_("Language"), list(LANGUAGES), format_func=LANGUAGES.get,
                                 key=f"{_KEY}_widget", on_change=_switched, label_visibility="collapsed")
