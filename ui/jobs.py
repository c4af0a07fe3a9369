"""The process-wide JobManager and the session's current run (Streamlit side of core.jobs).

The manager lives in st.cache_resource so every session and every page of this server process shares
the same queue and workers; releasing the cache entry (cache cleared, server shutting down) stops them.
The run a tab is watching is kept both in st.session_state and in the URL (?run=<id>), set again on
every run because sidebar navigation drops query parameters; a reloaded tab without either finds the
running and queued jobs through the manager.

When the runs folder cannot be written (read-only, cannot be created), the manager still starts: the
first page of each session says so once, the Train page says why it cannot start a run, and the pages
that do not train work as usual.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import TYPE_CHECKING, Any

import streamlit as st

from core.deployment import shared_deployment
from core.i18n import _
from core.jobs import JobManager
from core.runs import RunStore, is_run_id
from core.settings import job_settings
from core.training import TrainConfig
from ui.text import md_literal

if TYPE_CHECKING:
    from ui.workspace import WorkspaceJobs

__all__ = ["RUN_KEY", "current_run_id", "job_manager", "remember_run", "saved_config", "store_problem_text",
           "submit_key"]

RUN_KEY = "train_run_id"  # session key (and query parameter "run") of the run this tab is watching
_CONFIG_KEY = "train_config"  # the last settings submitted, so the form keeps them across page changes
_TOKEN_KEY = "_train_submit_token"
_TOLD_KEY = "_runs_store_problem_told"  # this session has been shown the run store's problem once


def _release(manager: JobManager) -> None:
    manager.shutdown(timeout=10)


@st.cache_resource(show_spinner=False, on_release=_release)
def _shared_manager() -> JobManager:
    settings = job_settings()
    return JobManager(RunStore(), max_concurrent=settings.max_jobs, max_queue=settings.max_queue,
                      runner=settings.runner,
                      max_per_workspace=settings.max_per_workspace if shared_deployment() else None)


def store_problem_text(problem: str) -> str:
    """The run store's problem with what it means for the person and what to do."""
    return _("Training is off: {problem}. Set KERAS_LAB_RUNS to a folder this app can write to and restart it; "
             "exploring data, building models and the Learn pages work as usual.").format(problem=problem)


def job_manager() -> JobManager:
    """One manager per server process: KERAS_LAB_MAX_JOBS trainings at a time (1) and KERAS_LAB_MAX_QUEUE
    more waiting (8). When runs cannot be saved, the first call of a session says so, once."""
    manager = _shared_manager()
    if manager.store_problem and not st.session_state.get(_TOLD_KEY):
        st.session_state[_TOLD_KEY] = True
        st.warning(md_literal(store_problem_text(manager.store_problem)), icon=":material/folder_off:")
    return manager


def current_run_id(manager: JobManager | WorkspaceJobs) -> str | None:
    """The run this tab watches: ?run= in the URL, else the session's, else the first active job.

    Pass ui.workspace.workspace_jobs(): on a shared server a ?run= link to another workspace's run is then
    not found, so the page shows nothing of it."""
    from_url = st.query_params.get("run")
    if is_run_id(from_url) and (manager.live_status(from_url) is not None
                                or manager.store.run_dir(from_url).is_dir()):
        return from_url  # a damaged run too: the page says what is wrong with it
    run_id = st.session_state.get(RUN_KEY)
    if is_run_id(run_id):
        return run_id
    active = manager.active_run_ids()
    return active[0] if active else None


def remember_run(run_id: str | None) -> None:
    """Keep the watched run in the session and in the URL (call on every run of the page)."""
    if run_id is None:
        st.session_state.pop(RUN_KEY, None)
        if "run" in st.query_params:
            del st.query_params["run"]
        return
    st.session_state[RUN_KEY] = run_id
    if st.query_params.get("run") != run_id:
        st.query_params["run"] = run_id


def saved_config(config: TrainConfig | None = None) -> TrainConfig:
    """The settings the form starts from; pass a config to store it (widgets forget values on page change)."""
    if config is not None:
        st.session_state[_CONFIG_KEY] = config.to_dict()
        return config
    try:
        return TrainConfig.from_dict(st.session_state.get(_CONFIG_KEY) or {})
    except (TypeError, ValueError):
        return TrainConfig()


def submit_key(*parts: Any) -> str:
    """An idempotency key for one submission: this session + what is submitted (a double click repeats both)."""
    token = st.session_state.setdefault(_TOKEN_KEY, secrets.token_hex(8))
    blob = json.dumps([p.to_dict() if hasattr(p, "to_dict") else p for p in parts], sort_keys=True, default=str)
    return f"{token}:{hashlib.sha256(blob.encode()).hexdigest()[:16]}"
