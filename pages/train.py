"""Train: settings in a form -> a background job -> live charts polled once a second while it runs."""

import streamlit as st

from core.i18n import _
from core.jobs import QueueFullError, TrainRequest
from core.models import export_code, export_file_stem
from core.runs import RunStoreError
from core.specs import analyse_spec
from core.training import CLASS_WEIGHTS, MONITORS, TrainConfig, TrainConfigError
from ui.data import current_dataset
from ui.i18n import in_a_form
from ui.jobs import current_run_id, remember_run, saved_config, submit_key
from ui.model import current_spec, spec_problem
from ui.state import ensure_app_entry
from ui.text import md_literal
from ui.train_view import (
    FINE_TUNE_COMPARE_KEY,
    FINE_TUNE_PAIR_KEY,
    FORM_KEYS,
    apply_pending_settings,
    class_weight_labels,
    fine_tune_inputs,
    loss_labels,
    optimizer_labels,
    prime_form,
    render_article_offer,
    render_fine_tune_pair,
    render_run,
    run_label,
    schedule_labels,
    split_labels,
    start_again_requested,
    start_feedback,
    started,
    submit_fine_tune_pair,
)
from ui.workspace import workspace_jobs

ensure_app_entry()

st.title(":material/model_training: " + _("Train"))
manager = workspace_jobs()  # a shared server: this visitor's runs only (ui.workspace)
dataset = current_dataset()
if store_problem := manager.check_writable():  # checked on every full run: fixing it re-enables Start
    st.error(_("Cannot start a run: {problem}. Set KERAS_LAB_RUNS to a folder this app can write to and restart the "
               "app.").format(problem=md_literal(store_problem)), icon=":material/folder_off:")

# The watched run (its own model and settings) goes above the form: after Start, progress is on screen.
run_slot = st.container()

# Below it, what the next Start trains: the session's model and data, and the form. "Use these settings" of
# the watched run is applied here, before the widgets exist (only then may their session keys be written).
st.markdown("##### :material/play_circle: " + _("Next start"))
render_article_offer(manager, disabled=bool(store_problem))
apply_pending_settings(manager, dataset)
spec = current_spec(dataset)
analysis = analyse_spec(spec, dataset.input_shape, dataset.n_classes, dataset.kind)
c1, c2, c3 = st.columns([3, 1, 1], vertical_alignment="center")
c1.markdown(_("Trains **{model}** ({params} parameters) on **{data}** ({samples} samples, {classes} classes).").format(
    model=md_literal(spec.name), params=f"{analysis.total_params:,}", data=md_literal(dataset.name),
    samples=f"{dataset.n_samples:,}", classes=dataset.n_classes))
c2.page_link("pages/data.py", label=_("Change data"), icon=":material/bar_chart:")
c3.page_link("pages/model.py", label=_("Change model"), icon=":material/view_in_ar:")
if problem := spec_problem(dataset):
    st.warning(md_literal(problem), icon=":material/warning:")

# Keyed widgets without value=: each starts from its session key, set from the last submitted (or loaded)
# settings when missing. Their ids never depend on a value, so edits made before Start are never dropped.
prime_form(saved_config())
in_a_form([*FORM_KEYS.values(), FINE_TUNE_COMPARE_KEY])  # a language switch keeps their unsubmitted edits
with st.form("train_form"):
    a, b, c = st.columns(3)
    optimizers, schedules, losses, weights, splits = (optimizer_labels(), schedule_labels(), loss_labels(),
                                                      class_weight_labels(), split_labels())
    optimizer = a.selectbox(_("Optimizer"), list(optimizers), format_func=optimizers.get, key="train_optimizer")
    learning_rate = a.number_input(_("Learning rate"), format="%g", step=1e-4, key="train_learning_rate")
    momentum = a.number_input(_("Momentum (SGD)"), format="%g", step=0.05, key="train_momentum")
    weight_decay = a.number_input(_("Weight decay (AdamW)"), format="%g", step=1e-3, key="train_weight_decay")
    schedule = b.selectbox(_("Learning-rate schedule"), list(schedules), format_func=schedules.get,
                           key="train_schedule")
    step_every = b.number_input(_("Step every / plateau patience (epochs)"), step=1, key="train_step_every")
    step_factor = b.number_input(_("Step / plateau factor"), format="%g", step=0.1, key="train_step_factor")
    loss = b.selectbox(_("Loss"), list(losses), format_func=losses.get, key="train_loss",
                       help=_("Mean squared error on one-hot targets is here to compare with cross-entropy."))
    batch_size = c.number_input(_("Batch size"), step=8, key="train_batch_size")
    epochs = c.number_input(_("Epochs"), step=1, key="train_epochs")
    seed = c.number_input(_("Seed"), step=1, help=_("Same seed and settings: same curves (CPU)."), key="train_seed")
    class_weights = c.selectbox(_("Class weights"), CLASS_WEIGHTS, format_func=weights.get, key="train_class_weights")
    e1, e2, e3, e4 = st.columns(4)
    early = e1.toggle(_("Early stopping"), key="train_early")
    patience = e2.number_input(_("Patience (epochs)"), step=1, key="train_patience")
    monitor = e3.selectbox(_("Monitored metric"), MONITORS, key="train_monitor")
    split = e4.selectbox(_("Test set"), list(splits), format_func=splits.get, key="train_split",
                         disabled=not dataset.has_official_split,
                         help=_("Keras datasets: their official test file, so results compare with published "
                                "figures (validation: {share} of the training files), or every image pooled and "
                                "re-split 70 / 15 / 15. Other datasets are always split 70 / 15 / 15.").format(
                             share=f"{TrainConfig.val_fraction:.0%}"))
    ft_epochs, ft_layers, ft_factor, ft_compare = fine_tune_inputs(spec)
    submitted = st.form_submit_button(_("Start training"), icon=":material/play_arrow:", type="primary",
                                      disabled=bool(store_problem))

# "Start another run with these settings" (offered after a double click) submits the form's settings again,
# without the double-click guard
again = start_again_requested() and not store_problem
if submitted or again:
    try:
        config = TrainConfig(optimizer=optimizer, learning_rate=learning_rate, momentum=momentum,
                             weight_decay=weight_decay, schedule=schedule, step_every=int(step_every),
                             step_factor=step_factor, batch_size=int(batch_size), epochs=int(epochs),
                             early_stopping=early, patience=int(patience), monitor=monitor, seed=int(seed),
                             class_weights=class_weights, loss=loss, split=split, fine_tune_epochs=ft_epochs,
                             fine_tune_layers=ft_layers, fine_tune_lr_factor=ft_factor).validate()
        if not analysis.ok:
            raise TrainConfigError(_("the model does not fit {data}: {problem}").format(
                data=md_literal(dataset.name), problem=analysis.errors[0]))
        saved_config(config)
        label = run_label(spec.name, dataset.name)
        request = TrainRequest(dataset, spec, config, label=label, workspace=manager.workspace)
        key = None if again else submit_key(config, spec, dataset.name)
        if ft_epochs and ft_compare:
            run_ids = submit_fine_tune_pair(manager, request, key)
            st.session_state[FINE_TUNE_PAIR_KEY] = run_ids
        else:
            run_ids = [manager.submit(request, idempotency_key=key)]
        remember_run(run_ids[0])
        started(manager, run_ids[0], label)
    except (TrainConfigError, QueueFullError, RunStoreError) as exc:
        st.error(_("Cannot start training: {reason}").format(reason=exc),  # our words; the name escaped above
                 icon=":material/error:")

run_id = current_run_id(manager)
remember_run(run_id)
start_feedback(manager, run_id)  # right under the Start button: on a phone the run above is out of sight
render_fine_tune_pair(st.session_state.get(FINE_TUNE_PAIR_KEY))

if analysis.ok:
    settings = saved_config()
    st.download_button(
        _("Export as a script: this model trained with the last settings used"), icon=":material/download:",
        key="train_export",
        data=export_code(spec, dataset, train_settings=settings.to_dict()),
        file_name=f"{export_file_stem(spec.name)}_{export_file_stem(dataset.name)}_train.py",
        help=_("Plain Keras: builds the model, compiles it with the optimizer, learning rate and loss, and fits "
               "it for the epochs and batch size of your last start, or of the run whose settings you used (the "
               "defaults before either)."))


@st.fragment(run_every=1)
def _live(run_id, state):
    """Polls while the job is queued or running; one full rerun when it ends switches polling off, and one
    when it leaves the queue updates what the page says under the Start button."""
    with st.container(border=True):  # the watched run, framed apart from the form for the next start
        active = render_run(manager, run_id, dataset)
    if not active or ((snap := manager.snapshot(run_id)) is not None and snap.state != state):
        st.rerun()


@st.fragment
def _final(run_id):
    with st.container(border=True):
        render_run(manager, run_id, dataset)


if run_id is None:
    st.info(_("No training in progress: choose settings and press **Start training**."), icon=":material/info:")
    st.page_link("pages/runs.py", label=_("Past runs are on Compare runs"), icon=":material/compare:")
else:
    with run_slot:
        if (snap := manager.snapshot(run_id)) is not None and snap.active:
            _live(run_id, snap.state)
        else:
            _final(run_id)
