"""The Train page's view of one run: progress, Stop / remove from queue, other jobs, live charts.

Called once a second from the page's polling fragment while a job is active, so it reads the manager's
in-memory snapshot and rebuilds epoch charts only when a new epoch arrives.
"""

from __future__ import annotations

import streamlit as st

from core.charts_training import batch_figure, history_figure, lr_figure, metric_names
from core.jobs import JobManager
from ui.jobs import remember_run
from ui.text import md_literal

__all__ = ["render_run"]

_BADGES = {"completed": ("green", ":material/check_circle:"), "stopped": ("orange", ":material/stop_circle:"),
          "diverged": ("red", ":material/trending_up:"), "failed": ("red", ":material/error:"),
          "interrupted": ("gray", ":material/power_off:"), "running": ("blue", ":material/autorenew:"),
          "queued": ("violet", ":material/hourglass_top:")}


def _fmt_eta(seconds):
    if seconds is None:
        return "—"
    m, s = divmod(int(seconds), 60)
    return f"{m}:{s:02d}"


def _cached(key, build):
    """Epoch charts change once an epoch, not once a second: rebuild them only then (plotly is slow)."""
    cache = st.session_state.setdefault("_train_figures", {})
    if key not in cache:
        if len(cache) > 32:
            cache.clear()
        cache[key] = build()
    return cache[key]


def _charts(run_id, records, batch_losses):
    log_y = st.toggle("Log scale", key="train_log_y")
    names = metric_names(records)
    cols = st.columns(2)
    version = (run_id, len(records), log_y)
    for i, metric in enumerate(names):
        fig = _cached((*version, metric), lambda m=metric: history_figure({run_id: records}, m, log_y=log_y))
        cols[i % 2].plotly_chart(fig, key=f"chart-{metric}")
    i = len(names)
    if batch_losses:
        cols[i % 2].plotly_chart(batch_figure(batch_losses, log_y=log_y), key="chart-batch")
        i += 1
    if any(r.get("lr") is not None for r in records):
        cols[i % 2].plotly_chart(_cached((*version, "lr"), lambda: lr_figure({run_id: records}, log_y=log_y)),
                                 key="chart-lr")


def _others(manager, active, shown):
    """The other queued or running jobs, each with a button to watch it instead."""
    others = [r for r in active if r != shown]
    if not others:
        return
    st.caption("Other jobs:")
    for column, other in zip(st.columns(min(len(others), 4)), others[:4], strict=False):
        position = manager.queue_position(other)
        where = "running" if position is None else f"queue #{position}"
        if column.button(f"{other} ({where})", icon=":material/visibility:", key=f"watch-{other}",
                         help="Watch this job instead"):
            remember_run(other)
            st.rerun()  # the whole page: the watched run is chosen outside the polling fragment


def render_run(manager: JobManager, run_id: str) -> bool:
    """Progress, Stop and charts of one run; True while it is queued or running (keep polling)."""
    snap = manager.snapshot(run_id)
    if snap is not None and snap.active:
        color, icon = _BADGES[snap.state]
        st.markdown(f"#### Run `{run_id}` :{color}-badge[{icon} {snap.state}]")
        if snap.state == "queued":
            st.info(f"Waiting in the queue, position {snap.queue_position}: one training runs at a time.",
                    icon=":material/hourglass_top:")
        else:
            st.progress(snap.fraction, text=(
                f"epoch {max(snap.epoch, 1)}/{snap.epochs} · batch {snap.batch}/{snap.batches_per_epoch} · "
                f"{snap.samples_per_s:,.0f} samples/s · ETA {_fmt_eta(snap.eta_s)} · "
                f"{md_literal(snap.message)}"))
        st.button("Stop" if snap.state == "running" else "Remove from queue", icon=":material/stop:",
                  key=f"stop-{run_id}", on_click=manager.stop, args=(run_id,))
        _others(manager, manager.active_run_ids(), run_id)
        _charts(run_id, snap.records, snap.batch_losses)
        return True
    # what this process knows comes first: status.json may not have been writable (disk full, read-only)
    known = manager.live_status(run_id)
    if known is None:
        try:
            info = manager.store.run_info(run_id)
        except (OSError, ValueError) as exc:
            st.warning(f"Run `{run_id}` cannot be shown: {md_literal(exc)}.", icon=":material/warning:")
            return False
        if info.damaged:
            st.warning(f"Run `{run_id}` is damaged: {md_literal(info.message)}. You can download or delete it on "
                       f"Compare runs.", icon=":material/broken_image:")
            st.page_link("pages/runs.py", label="Compare runs", icon=":material/compare:")
            return False
        known = info.status, info.message
    state, message = known
    color, icon = _BADGES.get(state, ("gray", ":material/help:"))
    st.markdown(f"#### Run `{run_id}` :{color}-badge[{icon} {md_literal(state)}]")
    st.markdown(md_literal(message))
    if state in ("completed", "stopped"):
        st.page_link("pages/evaluate.py", label="Evaluate this run", icon=":material/target:")
    _others(manager, manager.active_run_ids(), run_id)
    records, problem = manager.store.read_metrics_checked(run_id)
    if problem:
        st.warning(md_literal(problem), icon=":material/warning:")
    if snap is not None:  # the worker's own records: complete even if some lines never reached the disk
        records, batches = snap.records, snap.batch_losses
    else:
        batches = [(r["step"], r["loss"]) for r in manager.store.read_metrics(run_id, kind="batch")
                   if r.get("loss") is not None]
    _charts(run_id, records, batches)
    return False
