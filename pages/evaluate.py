"""Evaluate: a finished run's test metrics, confusion matrix, error gallery, explanations, diagnostics and
predictions."""

import numpy as np
import streamlit as st

from core.charts.eval import probabilities_figure
from core.datasets import split_dataset
from core.diagnostics import check_dead_relu, dead_relu_shares, diagnose, relu_activations
from core.evaluation import (
    EvaluationError,
    evaluate_predictions,
    prediction_table,
    to_display_image,
    top_classes,
)
from core.i18n import _
from core.model_files import ModelFileError, check_compatible, predict_probabilities
from core.prediction_input import read_csv_rows, read_image, should_invert
from ui import evaluate as ui
from ui.runs import run_state
from ui.state import ensure_app_entry
from ui.text import md_literal
from ui.workspace import workspace_jobs

ensure_app_entry()

st.title(":material/target: " + _("Evaluate"))
store = workspace_jobs().store  # a shared server: this visitor's workspace only
infos = ui.evaluable_runs(store)
tab_run, tab_upload = st.tabs([":material/insights: " + _("A run of this app"),
                               ":material/upload_file: " + _("Upload a .keras model")])

with tab_run:
    info = ui.run_picker(infos, _("Run (completed or stopped)"), key="eval_run")
    if info is None:
        st.info(_("No finished run with test predictions yet: train one on the Train page."),
                icon=":material/hourglass_empty:")
    else:
        try:
            ev, test_idx = ui.cached_evaluation(str(store.root), info.run_id, info.updated)
        except (EvaluationError, OSError, ValueError) as exc:
            ui.evaluation_error(exc)
            st.stop()
        data, reason = ui.cached_run_data(info.config, test_idx, ev.y_true)
        status = run_state(info.status)
        st.caption(f"{status} · {md_literal(info.message)}" if info.message else status)
        metrics_tab, errors_tab, explain_tab, diag_tab, predict_tab = st.tabs(
            [":material/grid_on: " + _("Metrics"), ":material/image_search: " + _("Errors"),
             ":material/visibility: " + _("Explain"), ":material/stethoscope: " + _("Diagnostics"),
             ":material/psychology: " + _("Predict")])
        with metrics_tab:
            ui.render_evaluation(ev, prefix=f"ev_{info.run_id}", show_cell=lambda cell: ui.render_cell_samples(
                ev, test_idx, cell, data, reason, prefix=f"ev_{info.run_id}"),
                downloads=lambda: ui.render_evaluation_downloads(ev, test_idx, info.run_id, f"ev_{info.run_id}",
                                                                 store, info))
        with errors_tab:
            ui.render_confident_mistakes(ev, test_idx, data, reason, prefix=f"ev_{info.run_id}")

        model, model_error = None, ""
        if info.has_model:
            try:
                model = ui.cached_run_model(str(store.root), info.run_id, info.updated)
            except (ModelFileError, OSError) as exc:
                model_error = str(exc)
        else:
            model_error = _("this run saved no model.keras")

        with explain_tab:
            ui.render_explanations(ev, test_idx, data, reason, store, info, model_error, prefix=f"ev_{info.run_id}")

        with diag_tab:
            history = store.read_metrics(info.run_id)
            counts = np.bincount(data.split.y_train, minlength=ev.n_classes) if data and data.split else None
            shares = {}
            if model is not None and data is not None:
                x = data.split.x_test if data.split is not None else data.dataset.x[test_idx]
                try:
                    shares = dead_relu_shares(relu_activations(model, x))
                except (ValueError, TypeError):  # e.g. a model.keras replaced by one for other data
                    st.caption(_("Dead ReLU units not checked: the run's model does not accept its test data."))
            findings = diagnose(history, ev.n_classes, class_counts=counts, class_names=ev.class_names,
                                relu_shares=shares, status=info.status, run_config=info.config)
            ui.render_findings(findings)
            if shares and check_dead_relu(shares) is None:
                st.caption(_("Dead ReLU units per layer: {shares}").format(
                    shares=", ".join(f"{md_literal(k)} {v:.0%}" for k, v in shares.items())))
            if counts is None:
                st.caption(_("Class balance not checked: {reason}.").format(
                    reason=md_literal(reason or _("the split could not be rebuilt"))))

        with predict_tab:
            if model is None:
                st.info(_("Prediction needs the run's model: {reason}.").format(reason=md_literal(model_error)))
            elif info.config.get("dataset", {}).get("kind") == "image":
                shape = tuple(info.config["dataset"]["input_shape"])
                up = st.file_uploader(_("An image (PNG, JPEG, …)"),
                                      type=["png", "jpg", "jpeg", "gif", "bmp", "webp"], key=f"pred_img_{info.run_id}")
                if up is not None:
                    try:
                        x = read_image(up.getvalue(), shape)
                        train_x = data.dataset.x if data is not None else None
                        guess = should_invert(x, train_x)  # a new upload starts from the guess
                        if st.checkbox(_("Invert (dark ink on a light background, unlike the training images)"),
                                       value=guess, key=f"pred_inv_{info.run_id}_{up.file_id}"):
                            x = 1.0 - x
                        if guess:
                            st.caption(_("Inverted automatically: this image has a light background, the "
                                         "training images a dark one."))
                        probs = predict_probabilities(model, x)[0]
                        a, b = st.columns([1, 3])
                        a.image(to_display_image(x[0]), caption=_("as the model sees it ({height}×{width})").format(
                            height=shape[0], width=shape[1]))
                        b.plotly_chart(probabilities_figure(top_classes(probs, ev.class_names, 5)))
                    except ModelFileError as exc:
                        ui.evaluation_error(exc)
            elif info.config.get("preparation") or (data is not None and data.split is not None
                                                    and data.split.preparation is not None):
                from ui.data import render_row_prediction  # stored with the run (else the rebuilt split's)

                render_row_prediction(model, info.config.get("preparation") or data.split.preparation,
                                      ev.class_names, key=f"pred_{info.run_id}")
            elif data is None or data.split is None:
                st.info(_("Predicting a CSV row needs the run's training data for scaling: {reason}.").format(
                    reason=md_literal(reason)))
            else:
                ds = data.dataset
                st.caption(_("Columns: {columns} (header optional, up to 100 rows).").format(
                    columns=md_literal(", ".join(ds.feature_names))))
                up = st.file_uploader(_("A CSV with one or more rows"), type=["csv", "txt"],
                                      key=f"pred_csv_{info.run_id}")
                if up is not None:
                    try:
                        raw = read_csv_rows(up.getvalue(), ds.feature_names)
                        probs = predict_probabilities(model, data.split.standardise(raw))
                        k = 3  # prediction_table's last column: "top {k}"
                        st.dataframe(prediction_table(probs, ds.class_names, k), hide_index=True, column_config={
                            "row": _("row"), "prediction": _("prediction"), "probability": _("probability"),
                            f"top {k}": _("top {k}").format(k=k)})
                    except ModelFileError as exc:
                        ui.evaluation_error(exc)

with tab_upload:
    from ui.data import current_dataset

    st.caption(_("The file is checked before Keras reads it: only standard Keras layers, no Lambda or custom "
                 "code, sizes under caps; it is then loaded once in a separate, memory- and time-limited process. "
                 "It is evaluated on the test split of the dataset selected on the Data page."))
    up = st.file_uploader(_("A Keras 3 model (.keras)"), type=["keras"], key="eval_model_upload")
    if up is not None:
        try:
            dataset = current_dataset()
            model = ui.cached_upload_model(up.getvalue())
            check_compatible(model, dataset)
            split = split_dataset(dataset)
            probs = predict_probabilities(model, split.x_test)
            st.success(_("Model accepted and evaluated on {n} test samples of {dataset}.").format(
                n=len(split.y_test), dataset=md_literal(dataset.name)), icon=":material/verified:")
            uploaded = evaluate_predictions(probs, split.y_test, dataset.class_names)
            ui.render_evaluation(uploaded, prefix="up", downloads=lambda: ui.render_evaluation_downloads(
                uploaded, split.test_idx, "uploaded-model", "up"))
        except (ModelFileError, EvaluationError, ValueError, OSError) as exc:
            ui.evaluation_error(exc)
