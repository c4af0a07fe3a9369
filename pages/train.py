"""Train: settings in a form -> a background job -> live charts polled once a second while it runs."""

import streamlit as st

from core.jobs import QueueFullError, TrainRequest
from core.models import export_code, export_file_stem
from core.runs import RunStoreError
from core.specs import analyse_spec
from core.training import CLASS_WEIGHTS, MONITORS, TrainConfig, TrainConfigError
from ui.data import current_dataset
from ui.jobs import current_run_id, job_manager, remember_run, saved_config, submit_key
from ui.model import current_spec, spec_problem
from ui.state import ensure_app_entry
from ui.text import md_literal
from ui.train_view import render_run

ensure_app_entry()  # a direct link (/train) must run through app.py's navigation

OPTIMIZERS = {"sgd": "SGD with momentum", "adam": "Adam", "adamw": "AdamW (weight decay)", "rmsprop": "RMSprop"}
SCHEDULES = {"constant": "constant", "step": "step decay", "cosine": "cosine decay", "plateau": "reduce on plateau"}
LOSSES = {"sparse_categorical_crossentropy": "cross-entropy", "mse": "mean squared error (teaching)"}
st.title(":material/model_training: Train")
manager = job_manager()
dataset = current_dataset()
spec = current_spec(dataset)
analysis = analyse_spec(spec, dataset.input_shape, dataset.n_classes, dataset.kind)
c1, c2, c3 = st.columns([3, 1, 1], vertical_alignment="center")
c1.markdown(f"Trains **{md_literal(spec.name)}** ({analysis.total_params:,} parameters) on "
            f"**{md_literal(dataset.name)}** ({dataset.n_samples:,} samples, {dataset.n_classes} classes).")
c2.page_link("pages/data.py", label="Change data", icon=":material/bar_chart:")
c3.page_link("pages/model.py", label="Change model", icon=":material/view_in_ar:")
if problem := spec_problem(dataset):
    st.warning(md_literal(problem), icon=":material/warning:")
if store_problem := manager.store.check_writable():  # checked on every full run: fixing it re-enables Start
    st.error(f"Cannot start a run: {md_literal(store_problem)}. Set KERAS_LAB_RUNS to a folder this app can write to and "
             f"restart the app.", icon=":material/folder_off:")

run_slot = st.container()  # the watched run goes above the form: after Start, progress is on screen
d = saved_config()
# Keyed widgets: their ids must not depend on value=, which is the last submitted setting; unkeyed, a start
# that changed a default gave the widget a new id and the next edits were dropped on the next start.
with st.form("train_form"):
    a, b, c = st.columns(3)
    optimizer = a.selectbox("Optimizer", list(OPTIMIZERS), list(OPTIMIZERS).index(d.optimizer),
                            format_func=OPTIMIZERS.get, key="train_optimizer")
    learning_rate = a.number_input("Learning rate", value=d.learning_rate, format="%g", step=1e-4, key="train_learning_rate")
    momentum = a.number_input("Momentum (SGD)", value=d.momentum, format="%g", step=0.05, key="train_momentum")
    weight_decay = a.number_input("Weight decay (AdamW)", value=d.weight_decay, format="%g", step=1e-3, key="train_weight_decay")
    schedule = b.selectbox("Learning-rate schedule", list(SCHEDULES), list(SCHEDULES).index(d.schedule),
                           format_func=SCHEDULES.get, key="train_schedule")
    step_every = b.number_input("Step every / plateau patience (epochs)", value=d.step_every, step=1, key="train_step_every")
    step_factor = b.number_input("Step / plateau factor", value=d.step_factor, format="%g", step=0.1, key="train_step_factor")
    loss = b.selectbox("Loss", list(LOSSES), list(LOSSES).index(d.loss), format_func=LOSSES.get,
                       help="Mean squared error on one-hot targets is here to compare with cross-entropy.", key="train_loss")
    batch_size = c.number_input("Batch size", value=d.batch_size, step=8, key="train_batch_size")
    epochs = c.number_input("Epochs", value=d.epochs, step=1, key="train_epochs")
    seed = c.number_input("Seed", value=d.seed, step=1, help="Same seed and settings: same curves (CPU).", key="train_seed")
    class_weights = c.selectbox("Class weights", CLASS_WEIGHTS, CLASS_WEIGHTS.index(d.class_weights), key="train_class_weights")
    e1, e2, e3 = st.columns(3)
    early = e1.toggle("Early stopping", value=d.early_stopping, key="train_early")
    patience = e2.number_input("Patience (epochs)", value=d.patience, step=1, key="train_patience")
    monitor = e3.selectbox("Monitored metric", MONITORS, MONITORS.index(d.monitor), key="train_monitor")
    submitted = st.form_submit_button("Start training", icon=":material/play_arrow:", type="primary",
                                      disabled=bool(store_problem))

if submitted:
    try:
        config = TrainConfig(optimizer=optimizer, learning_rate=learning_rate, momentum=momentum,
                             weight_decay=weight_decay, schedule=schedule, step_every=int(step_every),
                             step_factor=step_factor, batch_size=int(batch_size), epochs=int(epochs),
                             early_stopping=early, patience=int(patience), monitor=monitor, seed=int(seed),
                             class_weights=class_weights, loss=loss).validate()
        if not analysis.ok:
            raise TrainConfigError(f"the model does not fit {md_literal(dataset.name)}: {analysis.errors[0]}")
        saved_config(config)
        run_id = manager.submit(TrainRequest(dataset, spec, config, label=f"{spec.name} on {dataset.name}"),
                                idempotency_key=submit_key(config, spec, dataset.name))
        remember_run(run_id)
    except (TrainConfigError, QueueFullError, RunStoreError) as exc:
        st.error(f"Cannot start training: {exc}", icon=":material/error:")  # our words; the name escaped above

if analysis.ok:
    settings = saved_config()
    st.download_button(
        "Export as a script: this model trained with the last settings used", icon=":material/download:",
        data=export_code(spec, dataset, train_settings=settings.to_dict()),
        file_name=f"{export_file_stem(spec.name)}_{export_file_stem(dataset.name)}_train.py",
        help="Plain Keras: builds the model, compiles it with the optimizer, learning rate and loss, and fits "
             "it for the epochs and batch size of your last start (the defaults before the first).")

run_id = current_run_id(manager)
remember_run(run_id)


@st.fragment(run_every=1)
def _live(run_id):
    """Polls while the job is queued or running; one full rerun when it ends switches polling off."""
    if not render_run(manager, run_id):
        st.rerun()


@st.fragment
def _final(run_id):
    render_run(manager, run_id)


if run_id is None:
    st.info("No training in progress: choose settings and press **Start training**.", icon=":material/info:")
    st.page_link("pages/runs.py", label="Past runs are on Compare runs", icon=":material/compare:")
else:
    with run_slot:
        if (snap := manager.snapshot(run_id)) is not None and snap.active:
            _live(run_id)
        else:
            _final(run_id)
