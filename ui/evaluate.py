"""Streamlit widgets shared by the Evaluate and Runs pages: run pickers, cached loads, metric views.

Everything numeric comes from core.evaluation / core.compare; this module only lays it out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import streamlit as st

from core import charts_eval as charts
from core.charts_training import history_figure
from core.diagnostics import Finding, faq_url
from core.evaluation import (
    Evaluation,
    EvaluationError,
    RunData,
    cell_positions,
    confident_mistakes,
    load_run_evaluation,
    normalise_rows,
    pr_curves,
    resolve_run_data,
    roc_curves,
    to_display_image,
    top_classes,
    worst_cell,
)
from core.runs import RunInfo, RunStore
from core.text import distinct
from ui.text import md_literal

if TYPE_CHECKING:
    from ui.workspace import WorkspaceJobs

__all__ = [
    "cached_evaluation",
    "cached_run_data",
    "cached_run_model",
    "cached_upload_model",
    "evaluation_error",
    "evaluable_runs",
    "render_cell_samples",
    "render_confident_mistakes",
    "render_evaluation",
    "render_evaluation_downloads",
    "render_findings",
    "render_model_download",
    "run_picker",
    "cached_runs_table",
    "delete_runs",
    "render_compare",
    "render_cross_validate",
    "render_cv_summaries",
    "render_downloads",
    "sync_selection",
    "runs_changed",
    "watch_runs",
    "REFRESH_S",
]

_EVALUABLE = ("completed", "stopped")
_REPORT_ROWS_SHOWN = 24  # a per-class report up to this many rows is shown whole, without a scroll bar
_CV_STARTED = "_runs_cv_started"  # the message of a cross-validation just queued, shown after the rerun
_SEVERITY = {"error": (st.error, ":material/error:"), "warning": (st.warning, ":material/warning:"),
             "info": (st.info, ":material/info:")}


def evaluable_runs(store: RunStore) -> list[RunInfo]:
    """Completed or stopped runs that saved test predictions, newest first (by creation time: run ids of
    the same second sort by their random suffix)."""
    runs = [i for i in store.list_runs() if i.status in _EVALUABLE and (i.path / "predictions.npz").is_file()]
    return sorted(runs, key=lambda i: (float(i.config.get("created") or 0), i.run_id), reverse=True)


def run_picker(infos: list[RunInfo], label: str, key: str) -> RunInfo | None:
    """A selectbox of runs named by core.compare.run_label (first = newest by default)."""
    from core.compare import run_label

    if not infos:
        return None
    by_id = {i.run_id: i for i in infos}
    if st.session_state.get(key) not in by_id:
        st.session_state.pop(key, None)

    chosen = st.selectbox(label, list(by_id), format_func=lambda r: run_label(by_id[r]), key=key)
    return by_id.get(chosen)


@st.cache_data(show_spinner=False, max_entries=32)
def cached_evaluation(root: str, run_id: str, mtime: float) -> tuple[Evaluation, np.ndarray]:
    """(Evaluation, test_idx) of a run; mtime (of its status) makes a re-written run recompute."""
    return load_run_evaluation(RunStore(root), run_id)


@st.cache_resource(show_spinner="Loading the run's model…", max_entries=2)
def cached_run_model(root: str, run_id: str, mtime: float) -> Any:
    from core.model_files import load_run_model

    return load_run_model(RunStore(root), run_id)


@st.cache_resource(show_spinner="Checking and loading the model…", max_entries=2)
def _load_upload(digest: str, _data: bytes) -> Any:
    from core.model_files import load_model_bytes

    return load_model_bytes(_data)


def cached_upload_model(data: bytes) -> Any:
    """An uploaded .keras model, checked then loaded once per distinct file."""
    return _load_upload(hashlib.sha256(data).hexdigest(), data)


def cached_run_data(config: dict[str, Any], test_idx: np.ndarray, y_true: np.ndarray) -> tuple[RunData | None, str]:
    """The run's dataset: this session's uploads (by fingerprint) or the registry (cached, no download)."""
    from ui.data import current_dataset, load_dataset

    candidates = list(st.session_state.get("uploads", {}).values())
    try:
        candidates.append(current_dataset())
    except (ValueError, OSError):
        pass
    return resolve_run_data(config, test_idx, y_true, candidates=candidates,
                            loader=lambda name, subset, seed: load_dataset(name, subset, seed))


def render_findings(findings: list[Finding]) -> None:
    """Each finding as a coloured box with a link to its FAQ entry."""
    if not findings:
        st.success("No problems found in the history, the class balance or the ReLU units.",
                   icon=":material/check_circle:")
    for f in findings:
        box, icon = _SEVERITY[f.severity]
        url = faq_url(f.faq_id)
        more = f"  \n[Read more in the FAQ]({url})" if url else ""
        box(f"**{md_literal(f.title)}** — {md_literal(f.explanation)}{more}", icon=icon)


def _pick_cell(chart_key: str, names: tuple[str, ...], prefix: str) -> None:
    """on_select callback: a click on the matrix sets the two cell selectboxes."""
    state = st.session_state.get(chart_key)
    try:
        points = state["selection"]["points"]
    except (KeyError, TypeError):
        points = []
    for p in points or []:
        cd = p.get("customdata")
        if isinstance(cd, list | tuple) and len(cd) == 2:
            st.session_state[f"{prefix}_true"] = names[int(cd[0])]
            st.session_state[f"{prefix}_pred"] = names[int(cd[1])]
            return


def _label_width(labels: Any) -> int:
    """Pixels for a column of short labels to show whole ("weighted avg" included), capped for long names."""
    return int(min(320, max(90, 8 * max((len(str(x)) for x in labels), default=0) + 28)))


def render_evaluation(ev: Evaluation, prefix: str,
                      show_cell: Callable[[tuple[int, int]], None] | None = None,
                      downloads: Callable[[], None] | None = None) -> tuple[int, int]:
    """Test metrics, per-class report (downloads draws its buttons right under it), clickable confusion
    matrix (show_cell draws the chosen cell's samples right under it), ROC/PR; returns the chosen cell."""
    cols = st.columns(2 + len(ev.top_k))
    cols[0].metric("Test accuracy", f"{ev.accuracy:.2%}")
    cols[1].metric("Test loss (cross-entropy)", f"{ev.loss:.4f}")
    for col, (k, v) in zip(cols[2:], ev.top_k.items(), strict=True):
        col.metric(f"Top-{k} accuracy", f"{v:.2%}")
    st.subheader("Per-class precision, recall and F1")
    # every row in sight, the macro / weighted averages included; with many classes (CIFAR-100) the table
    # scrolls, so the two averages come first there
    many = len(ev.report) > _REPORT_ROWS_SHOWN
    report = pd.concat([ev.report.tail(2), ev.report.iloc[:-2]]) if many else ev.report
    st.dataframe(report.reset_index(names="class"), height="auto" if many else "content", hide_index=True,
                 column_config={"class": st.column_config.TextColumn(pinned=True, width=_label_width(report.index)),
                                **{c: st.column_config.NumberColumn(format="%.3f")
                                   for c in ("precision", "recall", "f1-score")}})
    if downloads is not None:
        downloads()
    st.subheader("Confusion matrix")
    normalised = st.toggle("Row-normalised (share of each true class)", key=f"{prefix}_norm")
    cm = normalise_rows(ev.confusion) if normalised else ev.confusion
    names = ev.class_names
    chart_key = f"{prefix}_cm"
    default = worst_cell(ev.confusion) or (0, 0)
    for part, idx in (("true", default[0]), ("pred", default[1])):
        if st.session_state.get(f"{prefix}_{part}") not in names:
            st.session_state[f"{prefix}_{part}"] = names[idx]
    st.caption("Click a cell to see its samples below, or choose it with the two boxes." if show_cell else
               "Click a cell, or choose it with the two boxes, to read its count.")
    st.plotly_chart(charts.confusion_figure(cm, names, normalised=normalised), key=chart_key,
                    on_select=lambda: _pick_cell(chart_key, names, prefix), selection_mode="points")
    c1, c2 = st.columns(2)
    true_name = c1.selectbox("True class", names, key=f"{prefix}_true")
    pred_name = c2.selectbox("Predicted class", names, key=f"{prefix}_pred")
    cell = names.index(true_name), names.index(pred_name)
    if show_cell is not None:
        show_cell(cell)
    with st.expander("ROC and precision-recall curves", icon=":material/show_chart:"):
        roc, pr = roc_curves(ev.y_true, ev.probs, names), pr_curves(ev.y_true, ev.probs, names)
        if not roc:
            st.info("The test set lacks positives or negatives for every class: no curve can be drawn.")
        else:
            a, b = st.columns(2)
            a.plotly_chart(charts.roc_figure(roc), key=f"{prefix}_roc")
            b.plotly_chart(charts.pr_figure(pr), key=f"{prefix}_pr")
            if len(names) == 2:
                st.caption(f"Binary task: the curves treat “{md_literal(names[1])}” as the positive class.")
    return cell


def _show_samples(ev: Evaluation, positions: np.ndarray, test_idx: np.ndarray, data: RunData | None,
                  reason: str, key: str) -> None:
    """Images with their top probabilities (image data), or the table rows (tabular data)."""
    if len(positions) == 0:
        st.info("No test samples in this cell.")
        return
    if data is None:
        st.warning(f"The samples cannot be shown: {md_literal(reason)}. The metrics above are unaffected.",
                   icon=":material/visibility_off:")
        return
    ds = data.dataset
    rows = test_idx[positions]
    if ds.kind == "image":
        shown = positions[:24]
        cols = st.columns(6)
        for n, pos in enumerate(shown):
            top = top_classes(ev.probs[pos], ev.class_names, k=3)
            cap = (f"true {md_literal(ev.class_names[ev.y_true[pos]])} → {md_literal(top[0][0])} "
                   f"({top[0][1]:.0%}); then " + ", ".join(f"{md_literal(c)} {p:.0%}" for c, p in top[1:]))
            cols[n % 6].image(to_display_image(ds.x[test_idx[pos]]), caption=cap, width=110)
        if len(positions) > len(shown):
            st.caption(f"Showing the {len(shown)} most confident of {len(positions)} samples.")
        return
    frame = pd.DataFrame(ds.x[rows], columns=distinct(ds.feature_names, ("row", "true", "predicted",
                                                                          "probability")) or None)
    frame.insert(0, "row", rows)
    frame.insert(1, "true", [ev.class_names[i] for i in ev.y_true[positions]])
    frame.insert(2, "predicted", [ev.class_names[i] for i in ev.y_pred[positions]])
    frame.insert(3, "probability", ev.probs[positions, ev.y_pred[positions]])
    st.dataframe(frame, hide_index=True, key=key)


def render_cell_samples(ev: Evaluation, test_idx: np.ndarray, cell: tuple[int, int], data: RunData | None,
                        reason: str, prefix: str) -> None:
    """The samples of the chosen confusion-matrix cell (drawn right under the matrix)."""
    t, p = cell
    pos = cell_positions(ev.y_true, ev.probs, t, p)
    what = ("correct prediction" if t == p else "mistake") + ("" if len(pos) == 1 else "s")
    st.subheader(f"True {md_literal(ev.class_names[t])} → predicted {md_literal(ev.class_names[p])}: "
                 f"{len(pos)} {what}")
    _show_samples(ev, pos, test_idx, data, reason, key=f"{prefix}_cell_rows")


def render_confident_mistakes(ev: Evaluation, test_idx: np.ndarray, data: RunData | None, reason: str,
                              prefix: str) -> None:
    """The test samples the model got wrong with the highest confidence."""
    st.subheader("Most confident mistakes")
    _show_samples(ev, confident_mistakes(ev.y_true, ev.probs, 12), test_idx, data, reason,
                  key=f"{prefix}_mistake_rows")


def evaluation_error(exc: Exception) -> None:
    """One place for the page's error box (never a traceback)."""
    msg = str(exc) if isinstance(exc, EvaluationError | ValueError | OSError) else f"{type(exc).__name__}: {exc}"
    st.error(md_literal(msg), icon=":material/error:")


# ---- Runs page ------------------------------------------------------------------------------------------


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


def render_model_download(container: Any, store: RunStore, info: RunInfo, key: str) -> None:
    """The run's model.keras as <run_id>.keras (read when clicked), or why there is none."""
    if info.has_model:
        container.download_button("Model (.keras)", data=lambda: store.model_path(info.run_id).read_bytes(),
                                  file_name=f"{info.run_id}.keras", mime="application/octet-stream",
                                  icon=":material/deployed_code:", on_click="ignore", key=key)
    else:
        container.caption("No model.keras saved.")


def render_evaluation_downloads(ev: Evaluation, test_idx: np.ndarray, stem: str, prefix: str,
                                store: RunStore | None = None, info: RunInfo | None = None) -> None:
    """The per-class report and the test predictions as CSV (files <stem>-report.csv and
    <stem>-predictions.csv), and the run's model when a run is given; each file is made when clicked."""
    from core.exports import predictions_csv, report_csv

    cols = st.columns(3)
    cols[0].download_button("Per-class report (.csv)", data=lambda: report_csv(ev.report),
                            file_name=f"{stem}-report.csv", mime="text/csv", icon=":material/table:",
                            on_click="ignore", key=f"{prefix}_dl_report",
                            help="Precision, recall, F1 and support per class, then the macro and weighted "
                                 "averages.")
    cols[1].download_button("Test predictions (.csv)",
                            data=lambda: predictions_csv(ev.probs, ev.y_true, test_idx, ev.class_names),
                            file_name=f"{stem}-predictions.csv", mime="text/csv", icon=":material/list_alt:",
                            on_click="ignore", key=f"{prefix}_dl_predictions",
                            help="One row per test sample: its index in the dataset, the true and the predicted "
                                 "class, and the probability of every class.")
    if store is not None and info is not None:
        render_model_download(cols[2], store, info, key=f"{prefix}_dl_model")


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
    from core.crossval import MAX_FOLDS, MIN_FOLDS, submit_cv
    from core.runs import ACTIVE_STATES

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
