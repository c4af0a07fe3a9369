"""Whose runs this session sees: the visitor's workspace on a shared server (Streamlit side of core.workspaces).

Local lab (the default): no workspace, no workspace UI; every page sees the one runs folder, as always.

Shared server (KERAS_LAB_SHARED=1, on by default on Community Cloud):
- signed in with Streamlit's built-in OIDC sign-in (`st.login`, `[auth]` in .streamlit/secrets.toml), the
  workspace is the user: their identity provider (`iss`) and its stable user id (`sub`), on any device;
- otherwise an anonymous workspace: an unguessable key in the URL (?ws=<key>), kept in session_state too and
  written back to the URL on every run (sidebar navigation drops query parameters), so a reload or a copied
  link comes back to the same runs. Whoever holds the link sees, stops and deletes those runs.

Pages never call the JobManager with a run id directly: `workspace_jobs()` is the manager as this
workspace sees it (every call scoped to it), and its `store` is the workspace's run store.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from urllib.parse import urlencode, urlsplit, urlunsplit

import streamlit as st

from core.deployment import shared_deployment
from core.i18n import _
from core.jobs import JobManager, JobSnapshot, TrainRequest
from core.runs import RunInfo, RunStore
from core.settings import auth_provider
from core.workspaces import is_workspace_key, new_workspace_key, user_workspace
from ui.text import md_literal

__all__ = ["WS_PARAM", "WorkspaceJobs", "current_workspace", "render_workspace_box",
           "signed_in_identity", "workspace_jobs", "workspace_link"]

WS_PARAM = "ws"  # query parameter of an anonymous workspace's key
_KEY = "_workspace_key"  # this session's anonymous key
_SEEN = "_workspace_seen"  # the workspace of the session's previous run (a change forgets the watched run)


def signed_in_identity() -> tuple[str, str] | None:
    """(issuer, subject) of the user signed in with st.login, or None (not signed in, or no stable id)."""
    try:
        user = st.user
        if user.get("is_logged_in") is not True:
            return None
        iss, sub = user.get("iss"), user.get("sub")
    except (AttributeError, KeyError, TypeError):
        return None
    if isinstance(iss, str) and isinstance(sub, str) and iss.strip() and sub.strip():
        return iss, sub
    return None


def _auth_configured() -> bool:
    """st.user carries is_logged_in only when an [auth] section exists (or a sign-in cookie came along)."""
    try:
        return "is_logged_in" in st.user
    except (AttributeError, TypeError):
        return False


def current_workspace() -> str | None:
    """This session's workspace: None in the local lab; the signed-in user's, else the anonymous key's.

    Call on every run (app.py does): it keeps the anonymous key in the URL."""
    if not shared_deployment():
        return None
    identity = signed_in_identity()
    if identity is not None:
        workspace = user_workspace(*identity)
        if WS_PARAM in st.query_params:  # a signed-in user's workspace is not a link to pass around
            del st.query_params[WS_PARAM]
    else:
        key = st.query_params.get(WS_PARAM)
        if not is_workspace_key(key):
            key = st.session_state.get(_KEY)
            if not is_workspace_key(key):
                key = new_workspace_key()
        st.session_state[_KEY] = key
        if st.query_params.get(WS_PARAM) != key:
            st.query_params[WS_PARAM] = key
        workspace = key  # never contains ":", so it cannot be a user's workspace name
    if st.session_state.get(_SEEN, workspace) != workspace:
        from ui.jobs import RUN_KEY  # the watched run belonged to the other workspace

        st.session_state.pop(RUN_KEY, None)
    st.session_state[_SEEN] = workspace
    return workspace


class WorkspaceJobs:
    """The process-wide JobManager as one workspace sees it: every call that names a run is scoped to the
    workspace, so another workspace's run id gets nothing (None, False, []), and `store` is the
    workspace's run store. Submitted requests are put in the workspace."""

    def __init__(self, manager: JobManager, workspace: str | None) -> None:
        self.manager = manager
        self.workspace = workspace
        self.store: RunStore = manager.store_for(workspace)

    @property
    def store_problem(self) -> str:
        return self.manager.store_problem

    def check_writable(self) -> str:
        """'' when this workspace can save runs, else why not: checks the runs folder (and the workspace's
        folder only once it exists, so a visitor who just looks creates nothing)."""
        problem = self.manager.store.check_writable()
        if not problem and self.store.root != self.manager.store.root and self.store.root.is_dir():
            problem = self.store.check_writable()
        return problem

    def _mine(self, request: TrainRequest) -> TrainRequest:
        if request.workspace not in (None, self.workspace):
            raise ValueError("a run can only be queued in the visitor's own workspace")
        return dataclasses.replace(request, workspace=self.workspace)

    def submit(self, request: TrainRequest, idempotency_key: str | None = None) -> str:
        return self.manager.submit(self._mine(request), idempotency_key=idempotency_key)

    def submit_many(self, requests: Iterable[TrainRequest], idempotency_key: str | None = None) -> list[str]:
        return self.manager.submit_many([self._mine(r) for r in requests], idempotency_key=idempotency_key)

    def stop(self, run_id: str) -> bool:
        return self.manager.stop(run_id, self.workspace)

    def force_stop(self, run_id: str) -> bool:
        return self.manager.force_stop(run_id, self.workspace)

    def snapshot(self, run_id: str) -> JobSnapshot | None:
        return self.manager.snapshot(run_id, self.workspace)

    def live_status(self, run_id: str) -> tuple[str, str] | None:
        return self.manager.live_status(run_id, self.workspace)

    def overlay(self, infos: Iterable[RunInfo]) -> list[RunInfo]:
        return self.manager.overlay(infos, self.workspace)

    def active_run_ids(self) -> list[str]:
        return self.manager.active_run_ids(self.workspace)

    def queue_position(self, run_id: str) -> int | None:
        if run_id not in self.manager.active_run_ids(self.workspace):
            return None
        return self.manager.queue_position(run_id)

    # settings of the whole server (no run in them)
    @property
    def max_concurrent(self) -> int:
        return self.manager.max_concurrent

    @property
    def max_queue(self) -> int:
        return self.manager.max_queue

    @property
    def max_per_workspace(self) -> int | None:
        return self.manager.max_per_workspace

    @property
    def runner(self) -> str:
        return self.manager.runner


def workspace_jobs() -> WorkspaceJobs:
    """The job manager and run store of this session's workspace (the local lab's when not shared)."""
    from ui.jobs import job_manager

    return WorkspaceJobs(job_manager(), current_workspace())


def workspace_link(url: str | None, key: str) -> str:
    """The page's address (st.context.url: no query; None outside a browser) with ?ws=<key>."""
    parts = urlsplit(url or "")
    return urlunsplit((parts.scheme, parts.netloc, parts.path or ("/" if parts.netloc else ""),
                       urlencode({WS_PARAM: key}), ""))


def _login() -> None:
    st.login(auth_provider())


def render_workspace_box(workspace: str | None) -> None:
    """The sidebar box of a shared server: whose runs these are, the link to keep, sign in / out. Nothing
    in the local lab."""
    if workspace is None:
        return
    box = st.sidebar.container(border=True, key="workspace_box")
    box.markdown("**:material/folder_shared: " + _("Your workspace") + "**")
    if signed_in_identity() is not None:
        who = st.user.get("email") or st.user.get("name") or _("your account")
        box.caption(_("Signed in as {who}. Your runs are private to your account, on any device.")
                    .format(who=md_literal(who, max_chars=60)))
        box.button(_("Sign out"), icon=":material/logout:", key="workspace_sign_out", on_click=st.logout)
        return
    box.code(workspace_link(st.context.url, st.session_state[_KEY]), language=None, wrap_lines=True)
    box.caption(_("Your runs are private to this link: keep it to come back to them (point at it for a copy "
                  "button). Anyone who has the link sees, stops and deletes these runs."))
    if st.user.get("is_logged_in") is True:  # signed in, but the ID token had no iss / sub to own runs by
        box.caption(_("Your sign-in gave no stable user id, so your runs stay with this link."))
        box.button(_("Sign out"), icon=":material/logout:", key="workspace_sign_out", on_click=st.logout)
    elif _auth_configured():
        box.button(_("Sign in"), icon=":material/login:", key="workspace_sign_in", on_click=_login,
                   help=_("Keep your runs with your account instead of a link. Runs made with the link stay "
                          "with the link."))
