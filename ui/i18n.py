"""The visitor's language: from the URL (?lang=zh), else the browser's; a switch in the sidebar.

Each script run sets the language of its own thread (core.i18n.set_language), so two visitors never see
each other's language. The choice is written to the URL, so it survives reloads and travels with links.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import streamlit as st

from core.i18n import LANGUAGES, _, best_match, language, language_of, set_language, set_resolver

__all__ = ["in_a_form", "in_language", "init_language", "language_switch"]

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
    _redisplay_choices()


_FORM_KEYS: set[str] = set()  # keys of widgets inside an st.form (see in_a_form)


def in_a_form(keys: Iterable[str]) -> None:
    """Declare widget keys that live inside an st.form: a language switch leaves them alone, because writing
    their value back would throw away what the reader changed there and has not submitted yet."""
    _FORM_KEYS.update(keys)


def _redisplay_choices() -> None:
    """Write every choice widget's value back, so that it is shown in the new language. A selectbox keeps the
    text its format_func gave in the old language until its value is set (streamlit/streamlit#13788, open in
    1.67); a value set through session_state is sent to the browser again, formatted anew. Only plain choice
    values (text, numbers, lists of them) outside forms are written: a button's True/False, an upload or an
    editor's edits may not be set this way and need no new text, and a form's unsubmitted edits would be lost
    (its choices keep their old-language text until the form is submitted or they are changed)."""
    for key in list(st.session_state.keys()):
        value = st.session_state[key]
        if key.startswith(("_", _KEY)) or key in _FORM_KEYS or isinstance(value, bool):  # _KEY: the switch itself
            continue
        if isinstance(value, str | int | float) or (isinstance(value, list) and all(
                isinstance(v, str | int | float) and not isinstance(v, bool) for v in value)):
            st.session_state[key] = value


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
