"""Compare runs: every run on disk in one table, filters, downloads, delete, comparison, cross-validation."""

import streamlit as st

from core.charts.eval import setting_label
from core.compare import METRIC_COLUMNS, differing_settings, filter_runs, run_label
from core.exports import all_metrics_csv
from core.runs import ACTIVE_STATES
from ui import runs as ui
from ui.state import ensure_app_entry
from ui.text import md_literal
from ui.workspace import workspace_jobs

ensure_app_entry()

st.title(":material/compare: Compare runs")
manager = workspace_jobs()  # a shared server: this visitor's workspace only
store = manager.store
infos = manager.overlay(store.list_runs())  # this server's own jobs: their state in memory comes first
if manager.store_problem:
    st.info(f"Runs are shown as far as they can be read, but cannot be deleted or started: "
            f"{md_literal(manager.store_problem)}.", icon=":material/folder_off:")
if not infos:
    st.info("No runs yet: train a model on the Train page and it appears here.", icon=":material/inbox:")
    st.stop()
table = ui.cached_runs_table(store, infos)
by_id = {i.run_id: i for i in infos}
active = {i.run_id: i.status for i in infos if i.status in ACTIVE_STATES}
if active:  # polls while something is queued or training; a finished cross-validation then shows by itself
    ui.watch_runs(manager, active, frozenset(by_id))

f1, f2, f3, f4 = st.columns([2, 2, 3, 2])
statuses = f1.multiselect("Status", sorted(table["status"].unique()), key="runs_status")
datasets = f2.multiselect("Dataset", sorted(table["dataset"].unique()), key="runs_dataset")
text = f3.text_input("Search", placeholder="run id, model, group, label…", key="runs_text")
only_diff = f4.toggle("Differing settings only", value=True, key="runs_diff")

shown = filter_runs(table, statuses, datasets, text)
flagged = shown["problem"].astype(bool) if "problem" in shown else shown["run_id"].isna()
if flagged.any():
    st.warning(f"{int(flagged.sum())} run(s) have a problem, named in the problem column. A damaged run "
               f"cannot be evaluated or reused: select it below to download what is left or delete it.",
               icon=":material/broken_image:")
base = ["run_id", "status", *(["problem"] if flagged.any() else []), "dataset", "model", "label", *METRIC_COLUMNS, "epochs_run", "duration_s", "group", "created"]
settings = [c for c in table.columns if "." in c and c not in ("dataset.name", "model.name")]
visible_settings = differing_settings(shown, settings) if only_diff else settings
st.session_state["_runs_shown"] = list(shown["run_id"])
st.dataframe(
    shown[[c for c in base + visible_settings if c in shown]].assign(
        **{m: shown[m] * 100 for m in ("best_val_accuracy", "last_val_accuracy", "test_accuracy")}),
    key="runs_table", on_select=lambda: ui.sync_selection("runs_table", "runs_selected", "_runs_shown"),
    selection_mode="multi-row", hide_index=True,
    column_config={"run_id": st.column_config.TextColumn("run", pinned=True),
                   "best_val_accuracy": st.column_config.NumberColumn("best val acc", format="%.2f%%"),
                   "last_val_accuracy": st.column_config.NumberColumn("last val acc", format="%.2f%%"),
                   "test_accuracy": st.column_config.NumberColumn("test acc", format="%.2f%%"),
                   "best_val_loss": st.column_config.NumberColumn("best val loss", format="%.4f"),
                   "last_val_loss": st.column_config.NumberColumn("last val loss", format="%.4f"),
                   "test_loss": st.column_config.NumberColumn("test loss", format="%.4f"),
                   "epochs_run": st.column_config.NumberColumn("epochs"),
                   "duration_s": st.column_config.NumberColumn("duration (s)", format="%.1f"),
                   **{c: st.column_config.Column(setting_label(c)) for c in visible_settings}})
st.caption(f"{len(shown)} of {len(table)} runs. Click a column title to sort; tick rows to select them."
           + ("" if only_diff or not settings else " Showing every setting."))

st.download_button("Every run's metrics (.csv)", data=lambda: all_metrics_csv(store, infos),
                   file_name="keras-lab-metrics.csv", mime="text/csv", icon=":material/download:",
                   on_click="ignore", key="dl_all")
ui.render_cv_summaries(store, table)

if st.session_state.get("runs_selected"):
    st.session_state["runs_selected"] = [r for r in st.session_state["runs_selected"] if r in by_id]
chosen_ids = st.multiselect("Selected runs", list(by_id), key="runs_selected",
                            format_func=lambda r: f"{run_label(by_id[r])} · {by_id[r].status}")
chosen = [by_id[r] for r in chosen_ids]

if len(chosen) >= 2:
    st.header("Compare")
    ui.render_compare(store, chosen, table, visible_settings or settings)
elif chosen:
    st.caption("Select a second run to compare.")

if chosen:
    st.header("Download")
    target = by_id[st.selectbox("Run", chosen_ids, key="dl_run")] if len(chosen) > 1 else chosen[0]
    ui.render_downloads(store, target)
    with st.expander(f"Delete {len(chosen)} selected run(s)", icon=":material/delete:"):
        busy = [i.run_id for i in chosen if i.status in ACTIVE_STATES]
        if busy:
            st.warning(f"Cannot delete a queued or running run: {', '.join(busy)}. Stop it on the Train page "
                       f"first.", icon=":material/block:")
        else:
            sure = st.checkbox(f"Yes, permanently delete {', '.join(chosen_ids)} (folder, model, metrics)",
                               key="runs_delete_sure")
            st.button("Delete", type="primary", disabled=not sure, icon=":material/delete_forever:",
                      key="runs_delete", on_click=ui.delete_runs, args=(manager, chosen_ids))
for message in st.session_state.pop("_runs_delete_errors", []):
    st.error(md_literal(message), icon=":material/error:")

st.header("Cross-validate")
st.caption("Stratified k-fold: every sample is tested once; the table above groups the folds and shows "
           "each metric's mean ± std. Best for small datasets (digits, iris, wine, breast cancer).")
ui.render_cross_validate(manager, infos)
