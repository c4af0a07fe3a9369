"""Compare runs: every run on disk in one table, filters, downloads, import, hide / archive / delete in bulk,
comparison, cross-validation."""

import math

import streamlit as st

from core.charts.eval import setting_label
from core.compare import METRIC_COLUMNS, differing_settings, filter_runs, run_label
from core.exports import all_metrics_csv
from core.i18n import _
from core.runs import ACTIVE_STATES
from ui import runs as ui
from ui.i18n import in_language
from ui.state import ensure_app_entry
from ui.text import md_literal
from ui.workspace import workspace_jobs

ensure_app_entry()

st.title(":material/compare: " + _("Compare runs"))
manager = workspace_jobs()  # a shared server: this visitor's workspace only
store = manager.store
every = manager.overlay(store.list_runs())  # this server's own jobs: their state in memory comes first
if manager.store_problem:
    st.info(_("Runs are shown as far as they can be read, but cannot be imported, changed or started: {reason}.")
            .format(reason=md_literal(manager.store_problem)), icon=":material/folder_off:")
ui.render_bulk_result()
ui.render_import(manager, expanded=not every)
if not every:
    st.info(_("No runs yet: train a model on the Train page and it appears here."), icon=":material/inbox:")
    ui.render_archive(manager)
    st.stop()
full = ui.cached_runs_table(store, every)
active = {i.run_id: i.status for i in every if i.status in ACTIVE_STATES}
if active:  # polls while something is queued or training; a finished cross-validation then shows by itself
    ui.watch_runs(manager, active, frozenset(i.run_id for i in every))

f1, f2, f3, f4 = st.columns([2, 2, 3, 2])
statuses = f1.multiselect(_("Status"), sorted(full["status"].unique()), format_func=ui.run_state,
                          placeholder=_("Choose options"), key="runs_status")
datasets = f2.multiselect(_("Dataset"), sorted(full["dataset"].unique()), placeholder=_("Choose options"),
                          key="runs_dataset")
text = f3.text_input(_("Search"), placeholder=_("run id, model, group, label…"), key="runs_text")
only_diff = f4.toggle(_("Differing settings only"), value=True, key="runs_diff")
n_hidden = int(full["hidden"].sum())
show_hidden = f4.toggle(_("Show hidden runs ({n})").format(n=n_hidden), key="runs_show_hidden", disabled=not n_hidden)
infos = every if show_hidden else [i for i in every if not i.hidden]
table = full if show_hidden else full[~full["hidden"]]
by_id = {i.run_id: i for i in infos}

shown = filter_runs(table, statuses, datasets, text)
pages = max(1, math.ceil(len(shown) / ui.PAGE_ROWS))
if st.session_state.get("runs_page", 1) > pages:  # fewer rows after a filter changed
    st.session_state["runs_page"] = pages
page = st.pagination(pages, key="runs_page") if pages > 1 else 1
rows = ui.with_metrics(store, shown.iloc[(page - 1) * ui.PAGE_ROWS:page * ui.PAGE_ROWS])
problems = int(rows["problem"].astype(bool).sum() + shown["problem"].drop(rows.index).astype(bool).sum())
if problems:
    st.warning(_("{n} run(s) have a problem, named in the problem column. A damaged run cannot be evaluated or "
                 "reused: select it below to download what is left or delete it.").format(n=problems),
               icon=":material/broken_image:")
base = ["run_id", "status", *(["problem"] if rows["problem"].astype(bool).any() else []),
        *(["hidden"] if show_hidden else []), "dataset", "model", "label", *METRIC_COLUMNS, "epochs_run",
        "duration_s", "group", "created"]
settings = [c for c in table.columns if "." in c and c not in ("dataset.name", "model.name")]
visible_settings = differing_settings(rows, settings) if only_diff else settings
st.session_state["_runs_shown"] = list(rows["run_id"])
st.dataframe(  # data keys stay as they are (the selection and the tests read them); people read the labels
    rows[[c for c in base + visible_settings if c in rows]].assign(
        status=rows["status"].map(ui.run_state),
        **{m: rows[m] * 100 for m in ("best_val_accuracy", "last_val_accuracy", "test_accuracy")}),
    key="runs_table", on_select=lambda: ui.sync_selection("runs_table", "runs_selected", "_runs_shown"),
    selection_mode="multi-row", hide_index=True,
    column_config={"run_id": st.column_config.TextColumn(_("run"), pinned=True),
                   "status": st.column_config.Column(_("status")),
                   "problem": st.column_config.Column(_("problem")),
                   "hidden": st.column_config.Column(_("hidden")),
                   "dataset": st.column_config.Column(_("dataset")),
                   "model": st.column_config.Column(_("model")),
                   "label": st.column_config.Column(_("label")),
                   "best_val_accuracy": st.column_config.NumberColumn(_("best val acc"), format="%.2f%%"),
                   "last_val_accuracy": st.column_config.NumberColumn(_("last val acc"), format="%.2f%%"),
                   "test_accuracy": st.column_config.NumberColumn(_("test acc"), format="%.2f%%"),
                   "best_val_loss": st.column_config.NumberColumn(_("best val loss"), format="%.4f"),
                   "last_val_loss": st.column_config.NumberColumn(_("last val loss"), format="%.4f"),
                   "test_loss": st.column_config.NumberColumn(_("test loss"), format="%.4f"),
                   "epochs_run": st.column_config.NumberColumn(_("epochs")),
                   "duration_s": st.column_config.NumberColumn(_("duration (s)"), format="%.1f"),
                   "group": st.column_config.Column(_("group")),
                   "created": st.column_config.Column(_("created")),
                   **{c: st.column_config.Column(setting_label(c)) for c in visible_settings}})
if pages > 1:
    first = (page - 1) * ui.PAGE_ROWS + 1
    counts = _("{n} of {total} runs. Showing {rows} ({first}–{last}), newest first: click a column title to sort "
               "this page. Tick rows to select them.").format(n=len(shown), total=len(table), rows=len(rows),
                                                             first=first, last=first + len(rows) - 1)
else:
    counts = _("{n} of {total} runs. Click a column title to sort. Tick rows to select them.").format(
        n=len(shown), total=len(table))
st.caption(counts + ("" if only_diff or not settings else _(" Showing every setting.")))
c1, c2 = st.columns(2)
c1.button(_("Select the {n} listed run(s)").format(n=len(shown)), icon=":material/select_all:",
          key="runs_select_listed", disabled=shown.empty, on_click=ui.select_runs, args=(list(shown["run_id"]),))
c2.download_button(_("Every run's metrics (.csv)"), data=in_language(lambda: all_metrics_csv(store, infos)),
                   file_name="keras-lab-metrics.csv", mime="text/csv", icon=":material/download:",
                   on_click="ignore", key="dl_all")
ui.render_cv_summaries(store, full, rows)

ui.apply_pending_selection()  # runs another page sent here ("Compare these two runs")
if st.session_state.get("runs_selected"):
    st.session_state["runs_selected"] = [r for r in st.session_state["runs_selected"] if r in by_id]
chosen_ids = st.multiselect(_("Selected runs"), list(by_id), placeholder=_("Choose options"), key="runs_selected",
                            format_func=lambda r: f"{run_label(by_id[r])} · {ui.run_state(by_id[r].status)}")
chosen = [by_id[r] for r in chosen_ids]

if len(chosen) >= 2:
    st.header(_("Compare"))
    ui.render_compare(store, chosen, ui.with_metrics(store, table[table["run_id"].isin(chosen_ids)]),
                      visible_settings or settings)
elif chosen:
    st.caption(_("Select a second run to compare."))

if chosen:
    st.header(_("Download"))
    target = by_id[st.selectbox(_("Run"), chosen_ids, key="dl_run")] if len(chosen) > 1 else chosen[0]
    ui.render_downloads(store, target, chosen_ids)
    with st.expander(_("Hide, archive or delete {n} selected run(s)").format(n=len(chosen)),
                     icon=":material/inventory_2:"):
        ui.render_bulk(manager, chosen)
ui.render_archive(manager)

st.header(_("Cross-validate"))
st.caption(_("Stratified k-fold: every sample is tested once; the table above groups the folds and shows each "
             "metric's mean ± std. Best for small datasets (digits, iris, wine, breast cancer)."))
ui.render_cross_validate(manager, infos)
