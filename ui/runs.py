"""Streamlit widgets of the Runs page: the cached runs table and the metrics of the rows shown, polling while
runs are active, selection, downloads, import, hide / archive / delete in bulk, the comparison of chosen runs
and cross-validation.

Everything numeric comes from core.compare / core.crossval; this module only lays it out. With thousands of
runs (sweeps) the page stays quick: the table of every run is built from what listing read (config and
status) and cached on a digest of their file stamps; metrics are read only for the rows shown and the
runs chosen, and cached per run on its metrics and predictions files' stamps.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from core.charts import eval as charts
from core.charts.training import history_figure
from core.evaluation import EvaluationError
from core.i18n import _, language
from core.runs import RunInfo, RunStore, file_stamp
from ui.evaluate import cached_evaluation, evaluation_error, render_model_download, run_picker
from ui.i18n import in_a_form, in_language
from ui.text import md_literal

if TYPE_CHECKING:
    from ui.workspace import WorkspaceJobs

__all__ = [
    "BULK_ACTIONS",
    "PAGE_ROWS",
    "REFRESH_S",
    "apply_pending_selection",
    "bulk_action",
    "compare_on_runs_page",
    "cached_runs_table",
    "import_upload",
    "render_archive",
    "render_bulk",
    "render_bulk_result",
    "render_compare",
    "render_cross_validate",
    "render_cv_summaries",
    "render_downloads",
    "render_import",
    "run_state",
    "runs_changed",
    "select_runs",
    "sync_selection",
    "watch_runs",
    "with_metrics",
]

_CV_STARTED = "_runs_cv_started"  # the message of a cross-validation just queued, shown after the rerun
PAGE_ROWS = 100  # rows of the runs table shown at a time: only their metrics are read
_IMPORT_N = "_runs_import_n"  # bumped after each import, so the uploader is a new, empty widget
_IMPORT_REPORT = "_runs_import_report"
_BULK_RESULT = "_runs_bulk_result"


@st.cache_data(show_spinner=False, max_entries=4)
def _runs_table(digest: str, _infos: Sequence[RunInfo]) -> pd.DataFrame:
    from core.compare import runs_table

    return runs_table(_infos)


def cached_runs_table(store: RunStore, infos: list[RunInfo]) -> pd.DataFrame:
    """core.compare.runs_table (no metrics) of `infos`, rebuilt only when a run's config or status file
    changed, appeared or went, or for a reader of another language (a damaged run's problem is in words);
    status and message are those of `infos` (which may come from the job manager's memory)."""
    digest = hashlib.blake2b(repr([language(), *((str(store.root), i.run_id, i.stamp) for i in infos)]).encode(),
                             digest_size=16).hexdigest()
    table = _runs_table(digest, infos)
    known = {i.run_id: i for i in infos}
    for column in ("status", "message"):
        table[column] = [getattr(known[r], column) for r in table["run_id"]]
    return table


@st.cache_data(show_spinner=False, max_entries=20_000)
def _run_metrics(root: str, run_id: str, stamp: tuple, lang: str) -> dict[str, Any]:
    """`lang`: the problem with the metrics is in words, so each language has its own entry."""
    from core.compare import run_metrics

    return run_metrics(RunStore(root), run_id)


def with_metrics(store: RunStore, rows: pd.DataFrame) -> pd.DataFrame:
    """Rows of the runs table (the ones shown, the runs chosen) with their metric columns
    (core.compare.run_metrics, each run's read again only when its metrics.jsonl or predictions.npz changed)
    and, in 'problem', a damaged run's reason or else its metrics' damaged lines."""
    from core.compare import RUN_METRIC_COLUMNS

    root = str(store.root)
    lang = language()
    metrics = pd.DataFrame([_run_metrics(root, r, tuple(file_stamp(os.path.join(root, r, f))
                                                        for f in ("metrics.jsonl", "predictions.npz")), lang)
                            for r in rows["run_id"]], index=rows.index, columns=[*RUN_METRIC_COLUMNS, "problem"])
    out = pd.concat([rows, metrics.drop(columns="problem")], axis=1)
    out["problem"] = [p or m for p, m in zip(rows["problem"], metrics["problem"], strict=True)]
    return out


def run_state(state: str) -> str:
    """A run's state (core.runs.STATES, or damaged) in the reader's language."""
    return {"queued": _("queued"), "running": _("running"), "completed": _("completed"), "stopped": _("stopped"),
            "pruned": _("pruned"), "diverged": _("diverged"), "failed": _("failed"),
            "interrupted": _("interrupted"), "damaged": _("damaged")}.get(state, state)


def select_runs(run_ids: list[str]) -> None:
    """Button callback: these runs become the 'Selected runs' choice."""
    st.session_state["runs_selected"] = run_ids


_COMPARE_PENDING = "_runs_compare_pending"  # runs another page asked Compare runs to select (not a widget key)


def compare_on_runs_page(run_ids: list[str]) -> None:
    """From another page (not in a callback: switch_page needs the script's own run): open Compare runs with
    these runs selected."""
    st.session_state[_COMPARE_PENDING] = list(run_ids)
    st.switch_page("pages/runs.py")


def apply_pending_selection() -> None:
    """On Compare runs, before its widgets exist: select the runs another page sent here."""
    if pending := st.session_state.pop(_COMPARE_PENDING, None):
        st.session_state["runs_selected"] = pending


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
            parts.append(f"{run_id} {run_state(seen[run_id])}")
        elif snap.state == "running":
            parts.append(_("{run} epoch {epoch} of {epochs}").format(run=run_id, epoch=snap.epoch, epochs=snap.epochs)
                         if snap.epoch else _("{run} starting").format(run=run_id))
        elif snap.queue_position:
            parts.append(_("{run} {state} (#{n} in line)").format(run=run_id, state=run_state(snap.state),
                                                                  n=snap.queue_position))
        else:
            parts.append(f"{run_id} {run_state(snap.state)}")
    st.caption(":material/autorenew: " + _("{n} run(s) queued or training — this page updates by itself every {s} s: "
                                           "{runs}").format(n=len(seen), s=REFRESH_S, runs=md_literal(_("; ").join(parts))))


def sync_selection(table_key: str, select_key: str, shown_key: str) -> None:
    """on_select callback: rows clicked in the runs table become the 'Selected runs' choice."""
    state = st.session_state.get(table_key)
    try:
        rows = list(state["selection"]["rows"])
    except (KeyError, TypeError):
        return
    shown = st.session_state.get(shown_key, [])
    st.session_state[select_key] = [shown[r] for r in rows if 0 <= r < len(shown)]


BULK_ACTIONS = ("hide", "unhide", "archive", "delete")


def _bulk_words(action: str) -> str:
    return {"hide": _("Hide"), "unhide": _("Show again"), "archive": _("Archive"), "delete": _("Delete")}[action]


def bulk_action(manager: WorkspaceJobs, action: str, run_ids: list[str]) -> None:
    """Button callback (runs before the script, so a rerun cannot lose the click): hide, show again, archive
    or delete runs of the manager's workspace (its store: another workspace's run id names no run there).
    A run this server is training, or another process has queued or running, is kept."""
    from core.runs import ACTIVE_STATES

    store = manager.store
    act = {"hide": lambda r: store.set_hidden(r, True), "unhide": lambda r: store.set_hidden(r, False),
           "archive": store.archive_run, "delete": store.delete_run}[action]
    failed = {"hide": _("Could not hide {run_id}: {error}"), "unhide": _("Could not show again {run_id}: {error}"),
              "archive": _("Could not archive {run_id}: {error}"), "delete": _("Could not delete {run_id}: {error}")}
    done, errors = 0, []
    for run_id in run_ids:
        try:
            known = manager.live_status(run_id)
            state = known[0] if known is not None else store.run_info(run_id).status
            if state in ACTIVE_STATES:
                errors.append(_("{run_id} is queued or running: stop it on the Train page first").format(run_id=run_id))
                continue
            act(run_id)
            done += 1
        except (OSError, ValueError) as exc:
            errors.append(failed[action].format(run_id=run_id, error=exc))
    st.session_state[_BULK_RESULT] = (_("{action}: {n} run(s) done.").format(action=_bulk_words(action), n=done)
                                      if done else "", errors)
    for key in ("runs_selected", "runs_bulk_sure"):  # a callback may reset widgets before they are drawn
        st.session_state.pop(key, None)


def render_bulk(manager: WorkspaceJobs, chosen: list[RunInfo]) -> None:
    """Hide, show again, archive or delete the chosen runs, after a confirmation."""
    from core.runs import ACTIVE_STATES

    ids = [i.run_id for i in chosen]
    action = st.segmented_control(_("Action"), BULK_ACTIONS, format_func=_bulk_words, default="hide",
                                  key="runs_bulk_action", required=True)
    busy = [i.run_id for i in chosen if i.status in ACTIVE_STATES]
    if busy:
        st.warning(_("Queued or running runs are left as they are: {runs}. Stop them on the Train page first.").format(
            runs=", ".join(busy)), icon=":material/block:")
    what = {"hide": _("hide them from this list (their files stay; “Show hidden runs” shows them again)"),
            "unhide": _("show them in this list again"),
            "archive": _("move them to the archive below (out of every list; they can be restored)"),
            "delete": _("delete them permanently: folders, models and metrics, freeing their disk space")}[action]
    names = ", ".join(ids[:10])
    if len(ids) > 10:
        names = _("{names} and {n} more").format(names=names, n=len(ids) - 10)
    sure = st.checkbox(_("Yes, {what}: {names}").format(what=what, names=names), key="runs_bulk_sure")
    st.button(_("{action} {n} run(s)").format(action=_bulk_words(action), n=len(ids)),
              type="primary" if action == "delete" else "secondary",
              disabled=not sure, key="runs_bulk_go", on_click=bulk_action, args=(manager, action, ids),
              icon={"hide": ":material/visibility_off:", "unhide": ":material/visibility:",
                    "archive": ":material/inventory_2:", "delete": ":material/delete_forever:"}[action])


def render_bulk_result() -> None:
    """What the last bulk action did, and what it could not do."""
    done, errors = st.session_state.pop(_BULK_RESULT, ("", []))
    if done:
        st.success(done, icon=":material/check_circle:")
    for message in errors:
        st.error(md_literal(message), icon=":material/error:")


def _archive_change(manager: WorkspaceJobs, action: str, run_ids: list[str]) -> None:
    """Button callback: restore or delete archived runs of the manager's workspace."""
    store = manager.store
    failed = {"restore": _("Could not restore {run_id}: {error}"), "delete": _("Could not delete {run_id}: {error}")}
    errors = []
    for run_id in run_ids:
        try:
            if action == "restore":
                store.restore_run(run_id)
            else:
                store.archive.delete_run(run_id)
        except (OSError, ValueError) as exc:
            errors.append(failed[action].format(run_id=run_id, error=exc))
    done = len(run_ids) - len(errors)
    result = {"restore": _("Restore: {n} archived run(s) done."), "delete": _("Delete: {n} archived run(s) done.")}
    st.session_state[_BULK_RESULT] = (result[action].format(n=done) if done else "", errors)
    for key in ("archive_selected", "archive_delete_sure"):
        st.session_state.pop(key, None)


def render_archive(manager: WorkspaceJobs) -> None:
    """The workspace's archived runs: restore them to the lists, or delete them for good."""
    from core.compare import run_label

    archived = {i.run_id: i for i in manager.store.archive.list_runs()}
    if not archived:
        return
    with st.expander(_("Archive: {n} run(s)").format(n=len(archived)), icon=":material/inventory_2:"):
        picked = st.multiselect(_("Archived runs"), list(archived), placeholder=_("Choose options"),
                                key="archive_selected",
                                format_func=lambda r: f"{run_label(archived[r])} · {run_state(archived[r].status)}")
        c1, c2 = st.columns(2)
        c1.button(_("Restore"), icon=":material/unarchive:", disabled=not picked, key="archive_restore",
                  on_click=_archive_change, args=(manager, "restore", picked))
        sure = c2.checkbox(_("Yes, delete the chosen archived runs permanently"), key="archive_delete_sure")
        c2.button(_("Delete"), type="primary", icon=":material/delete_forever:", disabled=not (picked and sure),
                  key="archive_delete", on_click=_archive_change, args=(manager, "delete", picked))


def import_upload(manager: WorkspaceJobs, key: str) -> None:
    """Uploader callback: the uploaded zip's runs become new runs of the manager's workspace (core.run_import);
    the report waits for the page's next run, and the next uploader is a fresh, empty one."""
    from core.run_import import RunImportError, import_runs

    upload = st.session_state.get(key)
    if upload is None:
        return
    try:
        report = import_runs(manager.store, upload.getvalue(), upload.name)
        st.session_state[_IMPORT_REPORT] = (report.imported, report.refused, "")
    except RunImportError as exc:
        st.session_state[_IMPORT_REPORT] = ((), (), str(exc))
    st.session_state[_IMPORT_N] = st.session_state.get(_IMPORT_N, 0) + 1


def render_import(manager: WorkspaceJobs, expanded: bool) -> None:
    """Upload a run zip downloaded from this page (one run or several) to get those runs back."""
    with st.expander(_("Import runs (.zip)"), icon=":material/upload_file:", expanded=expanded):
        st.caption(_("A zip downloaded here (“Run folder” or “Selected runs”) comes back as new runs of this "
                     "workspace, with their labels. On Streamlit Community Cloud the disk is wiped when the app "
                     "restarts: download the runs you want to keep, and upload them here later."))
        key = f"runs_import_{st.session_state.get(_IMPORT_N, 0)}"
        st.file_uploader(_("Run zip"), type=["zip"], key=key, on_change=import_upload, args=(manager, key),
                         disabled=bool(manager.store_problem))
    imported, refused, error = st.session_state.pop(_IMPORT_REPORT, ((), (), ""))  # shown once, expander closed too
    if error:
        st.error(md_literal(error), icon=":material/block:")
    if imported:
        names = "; ".join(f"{run_id} ({label})" if label else run_id for run_id, label in imported)
        st.success(_("Imported {n} run(s): {runs}").format(n=len(imported), runs=md_literal(names, max_chars=600)),
                   icon=":material/check_circle:")
    for message in refused:
        st.warning(md_literal(message), icon=":material/warning:")


def render_downloads(store: RunStore, info: RunInfo, chosen_ids: list[str]) -> None:
    """Zip of the run folder, its model.keras and its history as CSV; one zip of every chosen run."""
    from core.exports import history_csv, run_zip

    c1, c2, c3, c4 = st.columns(4)
    c1.download_button(_("Run folder (.zip)"), data=lambda: run_zip(store, info.run_id),
                       file_name=f"{info.run_id}.zip", mime="application/zip", icon=":material/folder_zip:",
                       on_click="ignore", key=f"dl_zip_{info.run_id}")
    render_model_download(c2, store, info, key=f"dl_model_{info.run_id}")
    c3.download_button(_("History (.csv)"), data=in_language(lambda: history_csv(store.read_metrics(info.run_id))),
                       file_name=f"{info.run_id}-history.csv", mime="text/csv", icon=":material/table:",
                       on_click="ignore", key=f"dl_hist_{info.run_id}")
    if len(chosen_ids) > 1:
        c4.download_button(_("Selected runs ({n}, .zip)").format(n=len(chosen_ids)),
                           data=lambda: run_zip(store, *chosen_ids),
                           file_name=f"keras-lab-{len(chosen_ids)}-runs.zip", mime="application/zip",
                           icon=":material/folder_zip:", on_click="ignore", key="dl_zip_selected")


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

    curves, par, classes = st.tabs([":material/show_chart: " + _("Learning curves"),
                                    ":material/tune: " + _("Settings vs metric"),
                                    ":material/difference: " + _("Class by class")])
    with curves:
        words = {"loss": _("loss"), "accuracy": _("accuracy")}
        metric = st.radio(_("Metric"), list(words), format_func=words.get, horizontal=True, key="cmp_curve_metric")
        hist = {run_label(i): store.read_metrics(i.run_id) for i in chosen}
        st.plotly_chart(history_figure(hist, metric, log_y=False), key="cmp_curves")
    with par:
        rows = table[table["run_id"].isin([i.run_id for i in chosen])]
        metric = st.selectbox(_("Metric"), [m for m in METRIC_COLUMNS if rows[m].notna().any()] or ["epochs_run"],
                              format_func=charts.setting_label, key="cmp_par_metric")
        # only what differs among the chosen runs: settings differing elsewhere in the table would crowd
        # out (past the 8-axis cap) the ones that tell these runs apart
        dims = [s for s in differing_settings(rows, settings) if rows[s].notna().all()][:8]
        if dims:
            st.plotly_chart(charts.parcoords_figure(rows, dims, metric), key="cmp_parcoords")
            st.caption(_("One line per run; text settings are placed on their own ticks."))
        else:
            st.info(_("The chosen runs share every setting: nothing to draw against the metric."))
    with classes:
        by_id = {i.run_id: i for i in chosen}
        c1, c2 = st.columns(2)
        label = {r: run_label(i) for r, i in by_id.items()}
        a = by_id[c1.selectbox(_("Run A (before)"), list(by_id), index=min(1, len(by_id) - 1), key="cmp_a",
                               format_func=label.get)]
        b = by_id[c2.selectbox(_("Run B (after)"), list(by_id), index=0, key="cmp_b", format_func=label.get)]
        reason = comparable(a.config, b.config)
        if a.run_id == b.run_id:
            st.info(_("Choose two different runs."))
        elif reason:
            st.info(_("A class-by-class comparison is only meaningful on the same dataset and classes: {reason}.")
                    .format(reason=md_literal(reason)))
        else:
            try:
                ev_a, _idx_a = cached_evaluation(str(store.root), a.run_id, a.updated)
                ev_b, _idx_b = cached_evaluation(str(store.root), b.run_id, b.updated)
            except (EvaluationError, OSError, ValueError) as exc:
                evaluation_error(exc)
                return
            change = f1_change(ev_a, ev_b)
            said = describe_change(change, _("run A"), _("run B"))
            st.markdown(f"**{md_literal(said)}**")
            st.caption(_("Test accuracy: A {a} → B {b}.").format(a=f"{ev_a.accuracy:.2%}", b=f"{ev_b.accuracy:.2%}"))
            x, y = st.columns(2)
            x.plotly_chart(charts.f1_change_figure(change, "A", "B"), key="cmp_f1")
            y.plotly_chart(charts.confusion_diff_figure(confusion_change(ev_a, ev_b), ev_a.class_names, "A", "B"),
                           key="cmp_cm_diff")
            y.caption(_("Blue: better for B (more of that class right on the diagonal, fewer of that mistake off "
                        "it); red: worse. The numbers are B's share minus A's."))


def render_cv_summaries(store: RunStore, table: pd.DataFrame, rows: pd.DataFrame) -> None:
    """Mean ± std of every cross-validation group with a fold among `rows` (the rows shown); folds counted in
    the whole table."""
    from core.crossval import summarize_cv

    groups = [g for g in rows["group"].dropna().unique() if str(g).startswith("cv-")]
    for group in groups:
        per_fold, summary = summarize_cv(store, group)
        runs = table[table["group"] == group]
        with st.expander(_("Cross-validation {group}: {done} of {total} folds finished").format(
                group=md_literal(group), done=len(per_fold), total=len(runs)), icon=":material/stacks:", expanded=True):
            if summary.empty:
                st.caption(_("No fold has finished yet."))
                continue
            metrics = {"test_accuracy": _("test_accuracy"), "test_macro_f1": _("test_macro_f1"),
                       "test_loss": _("test_loss"), "best_val_accuracy": _("best_val_accuracy")}
            st.dataframe(summary[["metric", "mean ± std", "folds"]].assign(
                metric=[metrics.get(m, m) for m in summary["metric"]]), hide_index=True, key=f"cv_sum_{group}",
                column_config={"metric": st.column_config.TextColumn(_("metric")),
                               "mean ± std": st.column_config.TextColumn(_("mean ± std")),
                               "folds": st.column_config.NumberColumn(_("folds"))})
            if "test_accuracy" in per_fold:
                st.plotly_chart(charts.cv_figure(per_fold.rename(columns=metrics), metrics["test_accuracy"]),
                                key=f"cv_fig_{group}")


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
        st.caption(_("Train a run first: cross-validation repeats its settings on k folds."))
        return
    in_a_form(["cv_run", "cv_k"])
    with st.form("cv_form", border=False):
        info = run_picker(finished, _("Reuse the dataset, model and settings of"), key="cv_run")
        k = st.number_input(_("Folds (k)"), min_value=MIN_FOLDS, max_value=MAX_FOLDS, value=5, step=1, key="cv_k")
        go = st.form_submit_button(_("Cross-validate"), icon=":material/play_arrow:")
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
        st.error(_("Cross-validation not started: {reason}.").format(reason=md_literal(exc)), icon=":material/block:")
        return
    except (ValueError, KeyError, OSError, RuntimeError) as exc:
        evaluation_error(exc)
        return
    # the whole page again, so that the list above has the new folds and watches them until they finish
    st.session_state[_CV_STARTED] = (group, _("Queued {n} folds as group {group}. Their summary (mean ± std) fills "
                                              "in above as folds finish: this page updates by itself. Each fold's "
                                              "training can also be followed on the Train page.").format(
                                                  n=len(run_ids), group=md_literal(group)))
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
        raise ValueError(_("the data of this run ({name}) is not in this session: upload it again on the Data "
                           "page").format(name=name))
    return load_dataset(name, info.get("subset"), int(info.get("seed", 0) or 0))
