"""Streamlit widgets of the Evaluate page, and those the Runs page (ui/runs.py) shares with it: run pickers,
cached loads, metric views, explanations, error boxes.

Everything numeric comes from core.evaluation / core.compare / core.explain; this module only lays it out.
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
from core.explain import Explanation, attribution_figure, attributions_heatmap, explain, overlay_figure
from core.i18n import _, ngettext
from core.runs import RunInfo, RunStore
from core.text import distinct
from ui.i18n import in_language
from ui.text import md_literal

__all__ = [
    "cached_evaluation",
    "cached_explanation",
    "cached_run_data",
    "cached_run_model",
    "cached_upload_model",
    "evaluation_error",
    "evaluable_runs",
    "render_cell_samples",
    "render_confident_mistakes",
    "render_evaluation",
    "render_evaluation_downloads",
    "render_explanations",
    "render_findings",
    "render_model_download",
    "run_picker",
]

_EVALUABLE = ("completed", "stopped", "pruned")  # stopped and pruned runs saved the model they had
_REPORT_ROWS_SHOWN = 24  # a per-class report up to this many rows is shown whole, without a scroll bar
_MISTAKES_EXPLAINED = 6  # the most confident mistakes get saliency and Grad-CAM (one gradient pass for all)
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


@st.cache_resource(show_spinner=False, max_entries=2)
def _load_run_model(root: str, run_id: str, mtime: float) -> Any:
    from core.model_files import load_run_model

    return load_run_model(RunStore(root), run_id)


def cached_run_model(root: str, run_id: str, mtime: float) -> Any:
    """A run's model.keras, loaded once per run and mtime (the spinner, unlike a cache's own, is in the
    reader's language; it shows only when the load takes a while)."""
    with st.spinner(_("Loading the run's model…")):
        return _load_run_model(root, run_id, mtime)


@st.cache_resource(show_spinner=False, max_entries=2)
def _load_upload(digest: str, _data: bytes) -> Any:
    from core.model_files import load_model_bytes

    return load_model_bytes(_data)


def cached_upload_model(data: bytes) -> Any:
    """An uploaded .keras model, checked then loaded once per distinct file."""
    with st.spinner(_("Checking and loading the model…")):
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
        st.success(_("No problems found in the history, the class balance or the ReLU units."),
                   icon=":material/check_circle:")
    for f in findings:
        box, icon = _SEVERITY[f.severity]
        url = faq_url(f.faq_id)
        more = "  \n" + _("[Read more in the FAQ]({url})").format(url=url) if url else ""
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
    cols[0].metric(_("Test accuracy"), f"{ev.accuracy:.2%}")
    cols[1].metric(_("Test loss (cross-entropy)"), f"{ev.loss:.4f}")
    for col, (k, v) in zip(cols[2:], ev.top_k.items(), strict=True):
        col.metric(_("Top-{k} accuracy").format(k=k), f"{v:.2%}")
    st.subheader(_("Per-class precision, recall and F1"))
    # every row in sight, the macro / weighted averages included; with many classes (CIFAR-100) the table
    # scrolls, so the two averages come first there
    many = len(ev.report) > _REPORT_ROWS_SHOWN
    report = pd.concat([ev.report.tail(2), ev.report.iloc[:-2]]) if many else ev.report
    report = report.rename(index={"macro avg": _("macro avg"), "weighted avg": _("weighted avg")})
    headers = {"precision": _("precision"), "recall": _("recall"), "f1-score": _("f1-score")}  # shown, not the data's
    st.dataframe(report.reset_index(names="class"), height="auto" if many else "content", hide_index=True,
                 column_config={"class": st.column_config.TextColumn(_("class"), pinned=True,
                                                                     width=_label_width(report.index)),
                                "support": st.column_config.NumberColumn(_("support")),
                                **{c: st.column_config.NumberColumn(label, format="%.3f")
                                   for c, label in headers.items()}})
    if downloads is not None:
        downloads()
    st.subheader(_("Confusion matrix"))
    normalised = st.toggle(_("Row-normalised (share of each true class)"), key=f"{prefix}_norm")
    cm = ev.confusion_normalised if normalised else ev.confusion
    names = ev.class_names
    chart_key = f"{prefix}_cm"
    default = worst_cell(ev.confusion) or (0, 0)
    for part, idx in (("true", default[0]), ("pred", default[1])):
        if st.session_state.get(f"{prefix}_{part}") not in names:
            st.session_state[f"{prefix}_{part}"] = names[idx]
    st.caption(_("Click a cell to see its samples below, or choose it with the two boxes.") if show_cell else
               _("Click a cell, or choose it with the two boxes, to read its count."))
    st.plotly_chart(charts.confusion_figure(cm, names, normalised=normalised), key=chart_key,
                    on_select=lambda: _pick_cell(chart_key, names, prefix), selection_mode="points")
    c1, c2 = st.columns(2)
    true_name = c1.selectbox(_("True class"), names, key=f"{prefix}_true")
    pred_name = c2.selectbox(_("Predicted class"), names, key=f"{prefix}_pred")
    cell = names.index(true_name), names.index(pred_name)
    if show_cell is not None:
        show_cell(cell)
    with st.expander(_("ROC and precision-recall curves"), icon=":material/show_chart:"):
        roc, pr = roc_curves(ev.y_true, ev.probs, names), pr_curves(ev.y_true, ev.probs, names)
        if not roc:
            st.info(_("The test set lacks positives or negatives for every class: no curve can be drawn."))
        else:
            a, b = st.columns(2)
            a.plotly_chart(charts.roc_figure(roc), key=f"{prefix}_roc")
            b.plotly_chart(charts.pr_figure(pr), key=f"{prefix}_pr")
            if len(names) == 2:
                st.caption(_("Binary task: the curves treat “{name}” as the positive class.").format(
                    name=md_literal(names[1])))
    return cell


def _show_samples(ev: Evaluation, positions: np.ndarray, test_idx: np.ndarray, data: RunData | None,
                  reason: str, key: str) -> None:
    """Images with their top probabilities (image data), or the table rows (tabular data)."""
    if len(positions) == 0:
        st.info(_("No test samples in this cell."))
        return
    if data is None:
        st.warning(_("The samples cannot be shown: {reason}. The metrics above are unaffected.").format(
            reason=md_literal(reason)), icon=":material/visibility_off:")
        return
    ds = data.dataset
    rows = test_idx[positions]
    if ds.kind == "image":
        shown = positions[:24]
        cols = st.columns(6)
        for n, pos in enumerate(shown):
            top = top_classes(ev.probs[pos], ev.class_names, k=3)
            cap = _("true {true} → {predicted} ({probability}); then {others}").format(
                true=md_literal(ev.class_names[ev.y_true[pos]]), predicted=md_literal(top[0][0]),
                probability=f"{top[0][1]:.0%}", others=", ".join(f"{md_literal(c)} {p:.0%}" for c, p in top[1:]))
            cols[n % 6].image(to_display_image(ds.x[test_idx[pos]]), caption=cap, width=110)
        if len(positions) > len(shown):
            st.caption(_("Showing the {shown} most confident of {n} samples.").format(shown=len(shown),
                                                                                        n=len(positions)))
        return
    frame = pd.DataFrame(ds.x[rows], columns=distinct(ds.feature_names, ("row", "true", "predicted",
                                                                          "probability")) or None)
    frame.insert(0, "row", rows)
    frame.insert(1, "true", [ev.class_names[i] for i in ev.y_true[positions]])
    frame.insert(2, "predicted", [ev.class_names[i] for i in ev.y_pred[positions]])
    frame.insert(3, "probability", ev.probs[positions, ev.y_pred[positions]])
    headers = {"row": _("row"), "true": _("true"), "predicted": _("predicted"), "probability": _("probability")}
    st.dataframe(frame, hide_index=True, key=key, column_config=headers)


def render_cell_samples(ev: Evaluation, test_idx: np.ndarray, cell: tuple[int, int], data: RunData | None,
                        reason: str, prefix: str) -> None:
    """The samples of the chosen confusion-matrix cell (drawn right under the matrix)."""
    t, p = cell
    pos = cell_positions(ev.y_true, ev.probs, t, p)
    heading = (ngettext("True {true} → predicted {predicted}: {n} correct prediction",
                        "True {true} → predicted {predicted}: {n} correct predictions", len(pos)) if t == p else
               ngettext("True {true} → predicted {predicted}: {n} mistake",
                        "True {true} → predicted {predicted}: {n} mistakes", len(pos)))
    st.subheader(heading.format(true=md_literal(ev.class_names[t]), predicted=md_literal(ev.class_names[p]),
                                n=len(pos)))
    _show_samples(ev, pos, test_idx, data, reason, key=f"{prefix}_cell_rows")


def render_confident_mistakes(ev: Evaluation, test_idx: np.ndarray, data: RunData | None, reason: str,
                              prefix: str) -> None:
    """The test samples the model got wrong with the highest confidence."""
    st.subheader(_("Most confident mistakes"))
    _show_samples(ev, confident_mistakes(ev.y_true, ev.probs, 12), test_idx, data, reason,
                  key=f"{prefix}_mistake_rows")


@st.cache_data(show_spinner=False, max_entries=32)
def _explanation(root: str, run_id: str, mtime: float, x: np.ndarray, classes: tuple[int, ...]) -> Explanation:
    return explain(_load_run_model(root, run_id, mtime), x, classes)


def cached_explanation(root: str, run_id: str, mtime: float, x: np.ndarray, classes: tuple[int, ...]) -> Explanation:
    """core.explain.explain on the run's model (cached_run_model), once per run, samples and classes."""
    with st.spinner(_("Computing gradients…")):
        return _explanation(root, run_id, mtime, x, classes)


def _model_inputs(data: RunData, test_idx: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """The test samples at `positions` as the model saw them (a table's rows prepared as in training)."""
    return data.split.x_test[positions] if data.split is not None else data.dataset.x[test_idx[positions]]


def _verdict(ev: Evaluation, pos: int) -> str:
    p = int(ev.y_pred[pos])
    return _("true {true} → predicted {predicted} ({probability})").format(
        true=ev.class_names[ev.y_true[pos]], predicted=ev.class_names[p], probability=f"{ev.probs[pos, p]:.0%}")


def _feature_names(info: RunInfo, data: RunData) -> list[str]:
    """The model's input columns: a prepared table's (one-hot columns, date parts), else the dataset's."""
    preparation = info.config.get("preparation") or (data.split.preparation if data.split is not None else None)
    return list((preparation or {}).get("features") or data.dataset.feature_names)


def _overlays(ex: Explanation, image: np.ndarray, n: int, title: str, key: str) -> None:
    """One image with its saliency and, when the model has a Conv2D layer, Grad-CAM laid over it."""
    maps = {_("saliency"): ex.saliency[n]}
    if ex.grad_cam is not None:
        maps["Grad-CAM"] = ex.grad_cam[n]
    st.plotly_chart(overlay_figure(image, maps, title), key=key)


def render_explanations(ev: Evaluation, test_idx: np.ndarray, data: RunData | None, reason: str, store: RunStore,
                        info: RunInfo, model_error: str, prefix: str) -> None:
    """Saliency and Grad-CAM (images) or gradient × input per feature (tables) for a chosen test sample and
    for the most confident mistakes, computed on the run's model (model_error: why there is none)."""
    if model_error:
        st.info(_("Explanations need the run's model: {reason}.").format(reason=md_literal(model_error)))
        return
    if data is None:
        st.info(_("Explanations need the run's test samples: {reason}.").format(reason=md_literal(reason)))
        return
    if data.dataset.kind != "image" and data.split is None:
        st.info(_("Explanations of a table need its rows prepared as in training, and the run's split could not "
                  "be rebuilt here."))
        return

    def explained(positions: np.ndarray, classes: np.ndarray) -> Explanation:
        return cached_explanation(str(store.root), info.run_id, info.updated,
                                  _model_inputs(data, test_idx, positions), tuple(int(c) for c in classes))

    try:
        _explain_one(ev, test_idx, info, data, explained, prefix)
        _explain_mistakes(ev, test_idx, info, data, explained, prefix)
    except (ValueError, TypeError) as exc:  # e.g. a model.keras replaced by one made for other data
        st.info(_("No explanation: the run's model does not accept its test data ({error}).").format(
            error=md_literal(str(exc))))


def _explain_one(ev: Evaluation, test_idx: np.ndarray, info: RunInfo, data: RunData,
                 explained: Callable[[np.ndarray, np.ndarray], Explanation], prefix: str) -> None:
    """A test sample chosen by number, for a class chosen by name (its predicted class at first)."""
    image = data.dataset.kind == "image"
    if image:
        st.caption(_("**Saliency**: how much each pixel would change the class's score if nudged, "
                     "|∂ score / ∂ pixel| (Simonyan et al., 2014). **Grad-CAM**: where in the last Conv2D layer's "
                     "feature maps the evidence *for* the class lies: each map weighted by its mean gradient, "
                     "summed, negatives dropped, upsampled to the image (Selvaraju et al., 2017). The score is the "
                     "class's value before the softmax; brighter means more."))
    else:
        st.caption(_("**Gradient × input** per feature: ∂ score / ∂ x times x. The inputs are standardised, so 0 "
                     "is the training mean: a red bar is a feature whose value in this row raised the class's score "
                     "(before the softmax), a blue one lowered it."))
    st.subheader(_("One test sample"))
    c1, c2 = st.columns(2)
    pos = int(c1.number_input(_("Test sample (0 – {last})").format(last=len(test_idx) - 1), 0, len(test_idx) - 1,
                              0, key=f"{prefix}_explain_sample"))
    names = list(ev.class_names)
    chosen = c2.selectbox(_("Explain the score of class"), range(len(names)), index=int(ev.y_pred[pos]),
                          format_func=names.__getitem__, key=f"{prefix}_explain_class_{pos}",
                          help=_("The predicted class first; choose the true class to see what the model found "
                                 "for it."))
    ex = explained(np.array([pos]), np.array([chosen]))
    title = _("dataset row {row}: {verdict}; explaining {name}").format(row=int(test_idx[pos]),
                                                                       verdict=_verdict(ev, pos), name=names[chosen])
    if not image:
        st.plotly_chart(attribution_figure(_feature_names(info, data), ex.attributions[0], ex.inputs[0], title),
                        key=f"{prefix}_explain_one")
        return
    _overlays(ex, ex.inputs[0], 0, title, key=f"{prefix}_explain_one")
    if ex.grad_cam is None:
        st.info(_("Grad-CAM is not available for this model: {reason}. Saliency is shown alone.").format(
            reason=md_literal(ex.no_cam_reason)), icon=":material/info:")
    else:
        map_rows, map_cols = ex.grad_cam.shape[1:]
        st.caption(_("Grad-CAM uses the feature maps of {layer}, the model's last Conv2D layer: {rows}×{cols} "
                     "positions, upsampled to the {height}×{width} image.").format(
            layer=md_literal(ex.cam_layer), rows=map_rows, cols=map_cols, height=ex.inputs.shape[1],
            width=ex.inputs.shape[2]))


def _explain_mistakes(ev: Evaluation, test_idx: np.ndarray, info: RunInfo, data: RunData,
                      explained: Callable[[np.ndarray, np.ndarray], Explanation], prefix: str) -> None:
    """The most confident mistakes, each explained for the class the model wrongly chose."""
    st.subheader(_("Most confident mistakes, explained"))
    mistakes = confident_mistakes(ev.y_true, ev.probs, _MISTAKES_EXPLAINED)
    if len(mistakes) == 0:
        st.info(_("The model made no mistake on the test set."))
        return
    st.caption(_("Each for its *predicted* class: what pushed the model to its wrong answer."))
    ex = explained(mistakes, ev.y_pred[mistakes])
    verdicts = [_("row {row}: {verdict}").format(row=int(test_idx[p]), verdict=_verdict(ev, p)) for p in mistakes]
    if data.dataset.kind != "image":
        st.plotly_chart(attributions_heatmap(_feature_names(info, data), ex.attributions, verdicts),
                        key=f"{prefix}_explain_mistakes")
        return
    cols = st.columns(2)
    for n, verdict in enumerate(verdicts):
        with cols[n % 2]:
            _overlays(ex, ex.inputs[n], n, verdict, key=f"{prefix}_explain_mistake_{n}")


def evaluation_error(exc: Exception) -> None:
    """One place for the page's error box (never a traceback)."""
    msg = str(exc) if isinstance(exc, EvaluationError | ValueError | OSError) else f"{type(exc).__name__}: {exc}"
    st.error(md_literal(msg), icon=":material/error:")


def render_model_download(container: Any, store: RunStore, info: RunInfo, key: str) -> None:
    """The run's model.keras as <run_id>.keras (read when clicked), or why there is none."""
    if info.has_model:
        container.download_button(_("Model (.keras)"), data=lambda: store.model_path(info.run_id).read_bytes(),
                                  file_name=f"{info.run_id}.keras", mime="application/octet-stream",
                                  icon=":material/deployed_code:", on_click="ignore", key=key)
    else:
        container.caption(_("No model.keras saved."))


def render_evaluation_downloads(ev: Evaluation, test_idx: np.ndarray, stem: str, prefix: str,
                                store: RunStore | None = None, info: RunInfo | None = None) -> None:
    """The per-class report and the test predictions as CSV (files <stem>-report.csv and
    <stem>-predictions.csv), and the run's model when a run is given; each file is made when clicked."""
    from core.exports import predictions_csv, report_csv

    cols = st.columns(3)
    cols[0].download_button(_("Per-class report (.csv)"), data=in_language(lambda: report_csv(ev.report)),
                            file_name=f"{stem}-report.csv", mime="text/csv", icon=":material/table:",
                            on_click="ignore", key=f"{prefix}_dl_report",
                            help=_("Precision, recall, F1 and support per class, then the macro and weighted "
                                   "averages."))
    cols[1].download_button(_("Test predictions (.csv)"),
                            data=in_language(lambda: predictions_csv(ev.probs, ev.y_true, test_idx, ev.class_names)),
                            file_name=f"{stem}-predictions.csv", mime="text/csv", icon=":material/list_alt:",
                            on_click="ignore", key=f"{prefix}_dl_predictions",
                            help=_("One row per test sample: its index in the dataset, the true and the "
                                   "predicted class, and the probability of every class."))
    if store is not None and info is not None:
        render_model_download(cols[2], store, info, key=f"{prefix}_dl_model")
