"""Unexpected errors: the full trace goes to the server log; a visitor of a shared server sees only a short
message with an error id (to quote when reporting it), a learner on their own machine sees everything."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

import streamlit as st

from core.deployment import shared_deployment
from core.i18n import _

__all__ = ["configure_error_details", "run_guarded"]

_log = logging.getLogger("keras_lab")


def configure_error_details() -> bool:
    """Hide Streamlit's own tracebacks (e.g. from fragments) on a shared deployment; returns whether shared."""
    shared = shared_deployment()
    st.set_option("client.showErrorDetails", "none" if shared else "full")
    return shared


def run_guarded(page: Callable[[], None], *, shared: bool) -> None:
    """Run a page; an exception it does not handle is logged with an id and shown briefly (shared) or in full.

    st.stop / st.rerun raise BaseException subclasses, so they pass through untouched."""
    try:
        page()
    except Exception as exc:
        error_id = secrets.token_hex(4)
        _log.exception("unexpected error %s", error_id)
        if shared:
            st.error(_("Something went wrong on this page (error id {error_id}). Your runs and uploads are safe; "
                       "reload the page or try again. If it keeps happening, report the error id.")
                     .format(error_id=error_id))
        else:
            st.error(_("Unexpected error (error id {error_id}); the full trace is below and in the server log.")
                     .format(error_id=error_id))
            st.exception(exc)
