"""Streamlit widgets of the Evaluate page, and those the Runs page (ui/runs.py) shares with it: run pickers,
cached loads, metric views, error boxes.

Everything numeric comes from core.evaluation / core.compare; this module only lays it out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from core.charts import eval as charts
from core.diagnostics import Finding, faq_url
from core.evaluation import (
    Evaluation,
    EvaluationError,
    RunData,
    cell_positions,
    confident_mistakes,
    load_run_evaluation,
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
]

_EVALUABLE = ("completed", "stopped", "pruned")  # stopped and pruned runs saved the model they had
_REPORT_ROWS_SHOWN = 24  # a per-class report up to this many rows is shown whole, without a scroll bar
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
    cm = ev.confusion_normalised if normalised else ev.confusion
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
