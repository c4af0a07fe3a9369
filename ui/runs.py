"""Streamlit widgets of the Runs page: the cached runs table, polling while runs are active, selection,
downloads, delete, the comparison of chosen runs and cross-validation.

Everything numeric comes from core.compare / core.crossval; this module only lays it out.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from core.charts import eval as charts
from core.charts.training import history_figure
from core.evaluation import EvaluationError
from core.runs import RunInfo, RunStore
from ui.evaluate import cached_evaluation, evaluation_error, render_model_download, run_picker
from ui.text import md_literal

if TYPE_CHECKING:
    from ui.workspace import WorkspaceJobs

__all__ = [
    "REFRESH_S",
    "cached_runs_table",
    "delete_runs",
    "render_compare",
    "render_cross_validate",
    "render_cv_summaries",
    "render_downloads",
    "runs_changed",
    "sync_selection",
    "watch_runs",
]

_CV_STARTED = "_runs_cv_started"  # the message of a cross-validation just queued, shown after the rerun


def _stamp(store: RunStore, infos: list[RunInfo]) -> tuple:
    """What changes when any run changes: ids, states, status and config times, metrics file sizes."""
    out = []
    for i in infos:
        sizes = []
        for name in ("metrics.jsonl", "config.json"):
            try:
                stat = (i.path / name).stat()
                sizes.append((stat.st_size, stat.st_mtime))
            except OSError:
                sizes.append(None)
        out.append((i.run_id, i.updated, i.status, i.message, *sizes))
    return tuple(out)


@st.cache_data(show_spinner=False, max_entries=4)
def _runs_table(root: str, stamp: tuple) -> pd.DataFrame:
    from core.compare import runs_table

    store = RunStore(root)
    infos = store.list_runs()
    table = runs_table(store, infos)
    # what is wrong with a run, so that it is seen instead of silently missing: a damaged config or status,
    # or damaged lines in its metrics
    table["problem"] = [f"damaged: {i.message}" if i.damaged else store.metrics_problem(i.run_id) for i in infos]
    return table


def cached_runs_table(store: RunStore, infos: list[RunInfo]) -> pd.DataFrame:
    """core.compare.runs_table with a 'problem' column, recomputed only when a run changed; status and
    message are those of `infos` (which may come from the job manager's memory)."""
    table = _runs_table(str(store.root), _stamp(store, infos)).copy()
    known = {i.run_id: i for i in infos}
    for column, attr in (("status", "status"), ("message", "message")):
        if column in table:
            table[column] = [getattr(known[r], attr) if r in known else v
                             for r, v in zip(table["run_id"], table[column], strict=True)]
    return table


REFRESH_S = 2  # how often the Runs page looks for changes while a run of the workspace is queued or running


def runs_changed(manager: Any, seen: dict[str, str], known: Collection[str]) -> bool:
    """Whether the workspace's runs changed since the page was drawn: a run that was queued or running
    (`seen`: run id -> state) is in another state or gone, or a run not listed then (`known`) is active now.
    Reads the manager's memory, and status.json only for the runs in `seen` (not every run folder)."""
    from core.runs import RunStoreError

    for run_id, state in seen.items():
        live = manager.live_status(run_id)
        if live is None:
            try:
                now = manager.store.run_info(run_id).status  # trained by another process, or finished
            except (RunStoreError, OSError, ValueError):
                return True  # deleted meanwhile
        else:
            now = live[0]
        if now != state:
            return True
    return any(run_id not in known for run_id in manager.active_run_ids())


@st.fragment(run_every=REFRESH_S)
def watch_runs(manager: WorkspaceJobs, seen: dict[str, str], known: frozenset[str]) -> None:
    """Drawn only while a run of the workspace is queued or running: says so with each one's progress, and
    every REFRESH_S seconds reruns the whole page once the runs changed (a fold finished, a run started or
    ended), so the table, the cross-validation summaries and the pickers catch up by themselves. The full
    run that finds nothing active no longer draws this fragment, which ends the polling."""
    if runs_changed(manager, seen, known):
        st.rerun()
    parts = []
    for run_id in seen:
        snap = manager.snapshot(run_id)
        if snap is None:
            parts.append(f"{run_id} {seen[run_id]}")
        elif snap.state == "running":
            parts.append(f"{run_id} epoch {snap.epoch} of {snap.epochs}" if snap.epoch else f"{run_id} starting")
        else:
            where = f" (#{snap.queue_position} in line)" if snap.queue_position else ""
            parts.append(f"{run_id} {snap.state}{where}")
    st.caption(f":material/autorenew: {len(seen)} run(s) queued or training — this page updates by itself "
               f"every {REFRESH_S} s: " + md_literal("; ".join(parts)))


def sync_selection(table_key: str, select_key: str, shown_key: str) -> None:
    """on_select callback: rows clicked in the runs table become the 'Selected runs' choice."""
    state = st.session_state.get(table_key)
    try:
        rows = list(state["selection"]["rows"])
    except (KeyError, TypeError):
        return
    shown = st.session_state.get(shown_key, [])
    st.session_state[select_key] = [shown[r] for r in rows if 0 <= r < len(shown)]


def delete_runs(manager: WorkspaceJobs, run_ids: list[str]) -> None:
    """Button callback (runs before the script, so a rerun cannot lose the click): delete finished or
    damaged runs of the manager's workspace; a run this server is training, or another process has queued
    or running, is kept."""
    from core.runs import ACTIVE_STATES

    store = manager.store
    errors = []
    for run_id in run_ids:
        try:
            known = manager.live_status(run_id)
            state = known[0] if known is not None else store.run_info(run_id).status
            if state in ACTIVE_STATES:
                errors.append(f"{run_id} is queued or running: stop it on the Train page first")
                continue
            store.delete_run(run_id)
        except (OSError, ValueError) as exc:
            errors.append(f"Could not delete {run_id}: {exc}")
    st.session_state["_runs_delete_errors"] = errors
    for key in ("runs_selected", "runs_delete_sure"):  # a callback may reset widgets before they are drawn
        st.session_state.pop(key, None)






def render_downloads(store: RunStore, info: RunInfo) -> None:
    """Zip of the run folder, its model.keras and its history as CSV."""
    from core.exports import history_csv, run_zip

    c1, c2, c3 = st.columns(3)
    c1.download_button("Run folder (.zip)", data=lambda: run_zip(store, info.run_id),
                       file_name=f"{info.run_id}.zip", mime="application/zip", icon=":material/folder_zip:",
                       on_click="ignore", key=f"dl_zip_{info.run_id}")
    render_model_download(c2, store, info, key=f"dl_model_{info.run_id}")
    c3.download_button("History (.csv)", data=lambda: history_csv(store.read_metrics(info.run_id)),
                       file_name=f"{info.run_id}-history.csv", mime="text/csv", icon=":material/table:",
                       on_click="ignore", key=f"dl_hist_{info.run_id}")


def render_compare(store: RunStore, chosen: list[RunInfo], table: pd.DataFrame, settings: list[str]) -> None:
    """Learning curves overlaid, settings against a metric, and what changed class by class for two runs."""
    from core.compare import (
        METRIC_COLUMNS,
        comparable,
        confusion_change,
        describe_change,
        differing_settings,
        f1_change,
        run_label,
    )

    curves, par, classes = st.tabs([":material/show_chart: Learning curves", ":material/tune: Settings vs metric",
                                    ":material/difference: Class by class"])
    with curves:
        metric = st.radio("Metric", ["loss", "accuracy"], horizontal=True, key="cmp_curve_metric")
        hist = {run_label(i): store.read_metrics(i.run_id) for i in chosen}
        st.plotly_chart(history_figure(hist, metric, log_y=False), key="cmp_curves")
    with par:
        rows = table[table["run_id"].isin([i.run_id for i in chosen])]
        metric = st.selectbox("Metric", [m for m in METRIC_COLUMNS if rows[m].notna().any()] or ["epochs_run"],
                              format_func=charts.setting_label, key="cmp_par_metric")
        # only what differs among the chosen runs: settings differing elsewhere in the table would crowd
        # out (past the 8-axis cap) the ones that tell these runs apart
        dims = [s for s in differing_settings(rows, settings) if rows[s].notna().all()][:8]
        if dims:
            st.plotly_chart(charts.parcoords_figure(rows, dims, metric), key="cmp_parcoords")
            st.caption("One line per run; text settings are placed on their own ticks.")
        else:
            st.info("The chosen runs share every setting: nothing to draw against the metric.")
    with classes:
        by_id = {i.run_id: i for i in chosen}
        c1, c2 = st.columns(2)
        label = {r: run_label(i) for r, i in by_id.items()}
        a = by_id[c1.selectbox("Run A (before)", list(by_id), index=min(1, len(by_id) - 1), key="cmp_a",
                               format_func=label.get)]
        b = by_id[c2.selectbox("Run B (after)", list(by_id), index=0, key="cmp_b", format_func=label.get)]
        reason = comparable(a.config, b.config)
        if a.run_id == b.run_id:
            st.info("Choose two different runs.")
        elif reason:
            st.info("A class-by-class comparison is only meaningful on the same dataset and classes: "
                    f"{md_literal(reason)}.")
        else:
            try:
                ev_a, _ = cached_evaluation(str(store.root), a.run_id, a.updated)
                ev_b, _ = cached_evaluation(str(store.root), b.run_id, b.updated)
            except (EvaluationError, OSError, ValueError) as exc:
                evaluation_error(exc)
                return
            change = f1_change(ev_a, ev_b)
            st.markdown(f"**{md_literal(describe_change(change, 'run A', 'run B'))}**")
            st.caption(f"Test accuracy: A {ev_a.accuracy:.2%} → B {ev_b.accuracy:.2%}.")
            x, y = st.columns(2)
            x.plotly_chart(charts.f1_change_figure(change, "A", "B"), key="cmp_f1")
            y.plotly_chart(charts.confusion_diff_figure(confusion_change(ev_a, ev_b), ev_a.class_names, "A", "B"),
                           key="cmp_cm_diff")
            y.caption("Blue: better for B (more of that class right on the diagonal, fewer of that mistake off "
                      "it); red: worse. The numbers are B's share minus A's.")


def render_cv_summaries(store: RunStore, table: pd.DataFrame) -> None:
    """Mean ± std of every cross-validation group in the table."""
    from core.crossval import summarize_cv

    groups = [g for g in table.get("group", pd.Series(dtype=str)).dropna().unique() if str(g).startswith("cv-")]
    for group in groups:
        per_fold, summary = summarize_cv(store, group)
        runs = table[table["group"] == group]
        with st.expander(f"Cross-validation {md_literal(group)}: {len(per_fold)} of {len(runs)} folds finished",
                         icon=":material/stacks:", expanded=True):
            if summary.empty:
                st.caption("No fold has finished yet.")
                continue
            st.dataframe(summary[["metric", "mean ± std", "folds"]], hide_index=True, key=f"cv_sum_{group}")
            if "test_accuracy" in per_fold:
                st.plotly_chart(charts.cv_figure(per_fold, "test_accuracy"), key=f"cv_fig_{group}")


def render_cross_validate(manager: WorkspaceJobs, infos: list[RunInfo]) -> None:
    """Start k folds with a finished run's dataset, model and settings, through the job engine (in the
    manager's workspace)."""
    from core.crossval import submit_cv
    from core.runs import ACTIVE_STATES
    from core.settings import MAX_FOLDS, MIN_FOLDS

    finished = [i for i in infos if i.finished and (i.config.get("split") or {}).get("kind") != "cv"]
    started = st.session_state.get(_CV_STARTED)  # (group, message): shown while a fold is queued or running
    if started and not any(i.config.get("group") == started[0] and i.status in ACTIVE_STATES for i in infos):
        started = st.session_state.pop(_CV_STARTED) and None
    if not finished:
        st.caption("Train a run first: cross-validation repeats its settings on k folds.")
        return
    with st.form("cv_form", border=False):
        info = run_picker(finished, "Reuse the dataset, model and settings of", key="cv_run")
        k = st.number_input("Folds (k)", min_value=MIN_FOLDS, max_value=MAX_FOLDS, value=5, step=1, key="cv_k")
        go = st.form_submit_button("Cross-validate", icon=":material/play_arrow:")
    if started:
        st.success(started[1], icon=":material/check_circle:")
    if not go or info is None:
        return
    from core.jobs import QueueFullError

    try:
        from core.specs import ModelSpec
        from core.training import TrainConfig
        from ui.jobs import submit_key

        dataset = _dataset_of(info.config)
        group, run_ids = submit_cv(manager.manager, dataset, ModelSpec.from_dict(info.config["model"]),
                                   TrainConfig.from_dict(info.config["training"]), int(k),
                                   idempotency_key=submit_key("cv", info.run_id, int(k)),
                                   workspace=manager.workspace)
    except QueueFullError as exc:
        st.error(f"Cross-validation not started: {md_literal(exc)}.", icon=":material/block:")
        return
    except (ValueError, KeyError, OSError, RuntimeError) as exc:
        evaluation_error(exc)
        return
    # the whole page again, so that the list above has the new folds and watches them until they finish
    st.session_state[_CV_STARTED] = (group, f"Queued {len(run_ids)} folds as group {md_literal(group)}. Their "
                                            f"summary (mean ± std) fills in above as folds finish: this page "
                                            f"updates by itself. Each fold's training can also be followed on "
                                            f"the Train page.")
    st.rerun()


def _dataset_of(config: dict[str, Any]) -> Any:
    """The Dataset of a run's config: this session's upload with its fingerprint, else the registry."""
    from core.datasets import dataset_fingerprint
    from ui.data import load_dataset

    info = config.get("dataset") or {}
    for ds in st.session_state.get("uploads", {}).values():
        if info.get("fingerprint") and dataset_fingerprint(ds) == info.get("fingerprint"):
            return ds
    name = str(info.get("name", ""))
    if name.startswith("upload:"):
        raise ValueError(f"the data of this run ({name}) is not in this session: upload it again on the Data page")
    return load_dataset(name, info.get("subset"), int(info.get("seed", 0) or 0))
