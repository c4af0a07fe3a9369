"""The visitor's language: from the URL (?lang=zh), else the browser's; a switch in the sidebar.

Each script run sets the language of its own thread (core.i18n.set_language), so two visitors never see
each other's language. The choice is written to the URL, so it survives reloads and travels with links.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from core.i18n import LANGUAGES, _, best_match, language, language_of, set_language, set_resolver

__all__ = ["in_language", "init_language", "language_switch"]

_PARAM = "lang"
_KEY = "ui_language"


def _session_language() -> str | None:
    """The visitor's language in any thread running their script (callbacks, fragment reruns included)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    if get_script_run_ctx(suppress_warning=True) is None:
        return None
    return st.session_state.get(_KEY)


set_resolver(_session_language)


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


def in_language(make: Callable[[], bytes]) -> Callable[[], bytes]:
    """`make` as a download button's data: Streamlit calls it on the click in a thread of its own, where
    texts would be English; it writes in the language of the visitor who saw the button."""
    code = language()

    def made() -> bytes:
        with language_of(code):
            return make()

    return made
