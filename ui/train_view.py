"""The Train page's view of one run: its own model and settings, progress, Stop / remove from queue, other
jobs, live charts; and the settings form's session keys, which "Use these settings" fills from a run.

render_run is called once a second from the page's polling fragment while a job is active, so it reads the
manager's in-memory snapshot and rebuilds epoch charts only when a new epoch arrives.

"Use these settings" sits in that fragment, but the form it fills is outside it: the button only records
which run to copy (PENDING_KEY) and reruns the whole page, and the page applies it (apply_pending_settings)
before the form's widgets are created, the one moment their session keys may be written.

"Reproduce the article" (render_article_offer) sets the session's data, model and form to the article's
CIFAR-10 experiment and starts it, in a button callback (it runs before the page, so the page then shows
that data, model and run); a run of that experiment shows its result beside the article's.

Every text is in the visitor's language (core.i18n). A run's own message (how it ended, what it is doing) is
written by the job engine in the language of the visitor who started it (TrainRequest.language) and shown
as written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import streamlit as st

from core.charts.training import batch_figure, history_figure, lr_figure, metric_names
from core.datasets import DatasetError, dataset_fingerprint
from core.i18n import _, ngettext
from core.jobs import JobManager, QueueFullError, TrainRequest
from core.runs import RunStoreError
from core.specs import ModelSpec, SpecError, analyse_spec, preset, validate_spec
from core.training import ARTICLE, TrainConfig, TrainConfigError, frozen_backbone, frozen_only
from ui.data import select_dataset
from ui.jobs import remember_run, saved_config, submit_key
from ui.model import set_spec
from ui.runs import compare_on_runs_page, run_state
from ui.text import md_literal

if TYPE_CHECKING:
    from ui.workspace import WorkspaceJobs

    Jobs = JobManager | WorkspaceJobs  # the process-wide manager, or one workspace's view of it

__all__ = ["FINE_TUNE_COMPARE_KEY", "FINE_TUNE_PAIR_KEY", "FORM_KEYS", "PENDING_KEY", "RunSummary",
           "apply_pending_settings", "class_weight_labels", "fine_tune_inputs", "loss_labels", "optimizer_labels",
           "prime_form", "render_article_offer", "render_fine_tune_pair", "render_run", "run_label", "run_summary",
           "same_data", "schedule_labels", "settings_words", "split_labels", "start_again_requested",
           "start_feedback", "started", "submit_fine_tune_pair"]


# The choices of the settings form in words, made at use time (in the visitor's language); keys are the values
# TrainConfig takes, in the order the form lists them.
def optimizer_labels() -> dict[str, str]:
    return {"sgd": _("SGD with momentum"), "adam": "Adam", "adamw": _("AdamW (weight decay)"), "rmsprop": "RMSprop"}


def schedule_labels() -> dict[str, str]:
    return {"constant": _("constant"), "step": _("step decay"), "cosine": _("cosine decay"),
            "plateau": _("reduce on plateau")}


def loss_labels() -> dict[str, str]:
    return {"sparse_categorical_crossentropy": _("cross-entropy"), "mse": _("mean squared error (teaching)")}


def split_labels() -> dict[str, str]:
    return {"official": _("official test set"), "pooled": _("pooled, re-split 70 / 15 / 15")}


def class_weight_labels() -> dict[str, str]:
    return {"none": _("none"), "balanced": _("balanced")}



# TrainConfig field -> the session key of its widget in the Train page's form
FORM_KEYS = {"optimizer": "train_optimizer", "learning_rate": "train_learning_rate", "momentum": "train_momentum",
             "weight_decay": "train_weight_decay", "schedule": "train_schedule", "step_every": "train_step_every",
             "step_factor": "train_step_factor", "loss": "train_loss", "batch_size": "train_batch_size",
             "epochs": "train_epochs", "seed": "train_seed", "class_weights": "train_class_weights",
             "early_stopping": "train_early", "patience": "train_patience", "monitor": "train_monitor",
             "split": "train_split", "fine_tune_epochs": "train_ft_epochs", "fine_tune_layers": "train_ft_layers",
             "fine_tune_lr_factor": "train_ft_factor"}
_FLOATS = ("learning_rate", "momentum", "weight_decay", "step_factor", "fine_tune_lr_factor")
_INTS = ("step_every", "batch_size", "epochs", "seed", "patience", "fine_tune_epochs", "fine_tune_layers")
FINE_TUNE_COMPARE_KEY = "train_ft_compare"  # the form's "also train the frozen-only baseline" toggle
FINE_TUNE_PAIR_KEY = "_train_fine_tune_pair"  # [fine-tuning run, frozen-only run] of this session's last such start
PENDING_KEY = "_train_use_settings"  # run id whose settings the next full run loads into the form
_STARTED_KEY = "_train_started"  # {"run_id", "label", "position", "at"} of this session's last Start
_AGAIN_KEY = "_train_start_again"  # set by "Start another run": the next full run submits the form's settings anew
_ARTICLE_PROBLEM_KEY = "_train_article_problem"  # why the last "Reproduce the article" started nothing


@dataclass(frozen=True)
class RunSummary:
    """What a run was trained with, read from its config.json (None where that part cannot be read)."""

    run_id: str
    label: str | None = None
    spec: ModelSpec | None = None
    params: int | None = None  # the model's parameters on the run's data, when its shapes are known
    dataset: dict[str, Any] | None = None  # config.json's "dataset": name, subset, seed, fingerprint, shapes
    training: TrainConfig | None = None
    problems: tuple[str, ...] = ()  # what could not be read, in words (user text inside: escape to show)
    article: bool = False  # the article's CIFAR-10 experiment (core.training.ARTICLE): compare with its result


def run_summary(manager: Jobs, run_id: str) -> RunSummary:
    """The run's own model, data and training settings from its config.json."""
    try:
        config = manager.store.read_config(run_id)
    except (OSError, ValueError) as exc:
        return RunSummary(run_id, problems=(_("This run's settings cannot be read: {reason}").format(reason=exc),))
    problems = []
    spec = params = training = None
    try:
        spec = ModelSpec.from_dict(config.get("model"))
    except SpecError as exc:
        problems.append(_("This run's model cannot be read: {reason}").format(reason=exc))
    dataset = config.get("dataset") if isinstance(config.get("dataset"), dict) else None
    if spec is not None and dataset is not None:
        try:
            analysis = analyse_spec(spec, tuple(int(d) for d in dataset["input_shape"]), int(dataset["n_classes"]),
                                    str(dataset["kind"]))
            params = analysis.total_params if analysis.ok else None
        except (KeyError, TypeError, ValueError):  # SpecError is a ValueError
            params = None
    try:
        training = TrainConfig.from_dict(config.get("training")).validate()
    except (TrainConfigError, TypeError) as exc:
        problems.append(_("This run's training settings cannot be read: {reason}").format(reason=exc))
    label = config.get("label") if isinstance(config.get("label"), str) else None
    return RunSummary(run_id, label, spec, params, dataset, training, tuple(problems), ARTICLE.matches(config))


def _data_words(info: dict[str, Any] | None) -> str:
    """The run's dataset as Markdown: the name (escaped) and its subset."""
    if not info or not isinstance(info.get("name"), str):
        return _("unknown data")
    words = f"**{md_literal(info['name'], max_chars=80)}**"
    if isinstance(info.get("subset"), int):
        words = _("{data} (subset of {size})").format(data=words, size=f"{info['subset']:,}")
    return words


def same_data(info: dict[str, Any] | None, dataset: Any) -> bool:
    """Was the run trained on the current dataset? Same name and subset; uploads: the same bytes too."""
    if not info or info.get("name") != dataset.name or info.get("subset") != dataset.subset:
        return False
    if dataset.subset is not None and info.get("seed", 0) != dataset.seed:
        return False
    if str(dataset.name).startswith("upload:"):  # two uploads may share a name
        return bool(info.get("fingerprint")) and info.get("fingerprint") == dataset_fingerprint(dataset)
    return True


def settings_words(cfg: TrainConfig) -> str:
    """Training settings in plain words, the ones that matter for this configuration only."""
    parts = [optimizer_labels().get(cfg.optimizer, cfg.optimizer)]
    if cfg.optimizer == "sgd":
        parts[0] = _("{label} (momentum {momentum})").format(label=parts[0], momentum=f"{cfg.momentum:g}")
    elif cfg.optimizer == "adamw":
        parts[0] = _("AdamW (weight decay {decay})").format(decay=f"{cfg.weight_decay:g}")
    parts += [_("learning rate {rate}").format(rate=f"{cfg.learning_rate:g}"),
              _("batch {size}").format(size=f"{cfg.batch_size:,}"),
              ngettext("{n} epoch", "{n} epochs", cfg.epochs).format(n=f"{cfg.epochs:,}")]
    if cfg.schedule == "step":
        parts.append(_("step decay ×{factor} every {n} epochs").format(factor=f"{cfg.step_factor:g}",
                                                                       n=cfg.step_every))
    elif cfg.schedule == "plateau":
        parts.append(_("reduce on plateau ×{factor} after {n} epochs").format(factor=f"{cfg.step_factor:g}",
                                                                              n=cfg.step_every))
    elif cfg.schedule == "cosine":
        parts.append(_("cosine decay"))
    else:
        parts.append(_("constant rate"))
    if cfg.early_stopping:
        parts.append(_("early stopping on {monitor} (patience {patience})").format(monitor=cfg.monitor,
                                                                                    patience=cfg.patience))
    if cfg.class_weights != "none":
        parts.append(_("{weights} class weights").format(
            weights=class_weight_labels().get(cfg.class_weights, cfg.class_weights)))
    if cfg.loss != "sparse_categorical_crossentropy":
        parts.append(loss_labels().get(cfg.loss, cfg.loss))
    if cfg.fine_tune_epochs:
        parts.append(_("then fine-tuning the top {n} backbone layers for {epochs} epochs at learning rate {rate}").format(
            n=cfg.fine_tune_layers, epochs=cfg.fine_tune_epochs, rate=f"{cfg.second_phase().learning_rate:g}"))
    parts.append(_("seed {seed}").format(seed=cfg.seed))
    defaults = TrainConfig()
    if cfg.split == "pooled":
        parts.append(_("pooled split"))
    if (cfg.val_fraction, cfg.test_fraction) != (defaults.val_fraction, defaults.test_fraction):
        parts.append(_("validation {validation} / test {test}").format(validation=f"{cfg.val_fraction:g}",
                                                                      test=f"{cfg.test_fraction:g}"))
    return " · ".join(parts)


def _details(summary: RunSummary, dataset: Any | None) -> None:
    """The watched run's own model, data and settings, and the button that copies them to the form."""
    spec = summary.spec
    model = f"**{md_literal(spec.name, max_chars=80)}**" if spec is not None else _("a model that cannot be read")
    data = _data_words(summary.dataset)
    text, button = st.columns([5, 1.3], vertical_alignment="center")
    if summary.params is not None:
        words = _("Model {model} ({count} parameters) on {data}").format(model=model, count=f"{summary.params:,}",
                                                                       data=data)
    else:
        words = _("Model {model} on {data}").format(model=model, data=data)
    text.markdown(f":material/view_in_ar: {words}")
    if summary.label and spec is not None and summary.dataset and \
            summary.label != run_label(spec.name, summary.dataset.get("name")):
        text.caption(md_literal(summary.label, max_chars=120))
    if summary.training is not None:
        text.markdown(f":material/tune: {md_literal(settings_words(summary.training))}")
    for problem in summary.problems:
        text.caption(f":material/warning: {md_literal(problem)}")
    if summary.training is None:
        return
    other_data = dataset is not None and not same_data(summary.dataset, dataset)
    if other_data:
        text.caption(_("Not the data you have selected ({data}): Use these settings loads its training settings "
                       "only, not its model.").format(data=md_literal(dataset.name, max_chars=80)))
    help_text = (_("Fills the form below with this run's training settings and makes its model your model, so "
                   "Start trains it again.") if not other_data else
                 _("Fills the form below with this run's training settings. Its model stays out: the run trained "
                   "on other data than the dataset you have selected."))
    if button.button(_("Use these settings"), icon=":material/input:", key=f"use-settings-{summary.run_id}",
                     help=help_text, width="stretch"):
        st.session_state[PENDING_KEY] = summary.run_id
        st.rerun()  # the whole page: the form is outside the polling fragment


def run_label(model: str, data: Any) -> str:
    """The label a run started on the Train page gets: its model and data (plain text, not Markdown)."""
    return _("{model} on {data}").format(model=model, data=data)


_BADGES = {"completed": ("green", ":material/check_circle:"), "stopped": ("orange", ":material/stop_circle:"),
          "diverged": ("red", ":material/trending_up:"), "failed": ("red", ":material/error:"),
          "interrupted": ("gray", ":material/power_off:"), "running": ("blue", ":material/autorenew:"),
          "queued": ("violet", ":material/hourglass_top:")}


def _fmt_eta(seconds):
    if seconds is None:
        return "—"
    m, s = divmod(int(seconds), 60)
    return f"{m}:{s:02d}"


def _cached(key, build):
    """Epoch charts change once an epoch, not once a second: rebuild them only then (plotly is slow)."""
    cache = st.session_state.setdefault("_train_figures", {})
    if key not in cache:
        if len(cache) > 32:
            cache.clear()
        cache[key] = build()
    return cache[key]


def _charts(run_id, records, batch_losses):
    log_y = st.toggle(_("Log scale"), key="train_log_y")
    names = metric_names(records)
    cols = st.columns(2)
    version = (run_id, len(records), log_y)
    for i, metric in enumerate(names):
        fig = _cached((*version, metric), lambda m=metric: history_figure({run_id: records}, m, log_y=log_y))
        cols[i % 2].plotly_chart(fig, key=f"chart-{metric}")
    i = len(names)
    if batch_losses:
        cols[i % 2].plotly_chart(batch_figure(batch_losses, log_y=log_y), key="chart-batch")
        i += 1
    if any(r.get("lr") is not None for r in records):
        cols[i % 2].plotly_chart(_cached((*version, "lr"), lambda: lr_figure({run_id: records}, log_y=log_y)),
                                 key="chart-lr")


def _others(manager, active, shown):
    """The other queued or running jobs, each with a button to watch it instead."""
    others = [r for r in active if r != shown]
    if not others:
        return
    st.caption(_("Other jobs:"))
    for column, other in zip(st.columns(min(len(others), 4)), others[:4], strict=False):
        position = manager.queue_position(other)
        where = run_state("running") if position is None else _("queue #{position}").format(position=position)
        if column.button(f"{other} ({where})", icon=":material/visibility:", key=f"watch-{other}",
                         help=_("Watch this job instead")):
            remember_run(other)
            st.rerun()  # the whole page: the watched run is chosen outside the polling fragment


_FORCE_AFTER_S = 3.0  # Stop lands within ~0.5 s; after this long the worker may be stuck: offer Force stop


def _stop_button(manager: Jobs, run_id: str, snap: Any) -> None:
    """Stop (or Remove from queue); Force stop once a Stop has not landed for a few seconds."""
    if snap.stop_requested_s is not None and snap.stop_requested_s > _FORCE_AFTER_S and snap.can_force:
        st.warning(_("Stop was asked {seconds} s ago and has not landed yet.").format(
            seconds=f"{snap.stop_requested_s:.0f}"), icon=":material/hourglass_top:")
        st.button(_("Force stop"), icon=":material/dangerous:", key=f"force-{run_id}", type="primary",
                  on_click=manager.force_stop, args=(run_id,),
                  help=_("Ends the training process now: the run ends 'stopped', its curves are kept, but the "
                         "model at this point is not saved."))
    else:
        st.button(_("Stop") if snap.state == "running" else _("Remove from queue"), icon=":material/stop:",
                  key=f"stop-{run_id}", on_click=manager.stop, args=(run_id,),
                  disabled=snap.stop_requested_s is not None,
                  help=_("Training stops at the end of the steps in progress (within about {seconds} s) and keeps "
                         "the model at that point.").format(seconds=f"{snap.stop_within_s:.1f}")
                  if snap.stop_within_s else
                  _("Training stops at the end of the steps in progress and keeps the model at that point."))


def _run_heading(run_id: str, state: str) -> str:
    """The heading of a run: its id, and its state as a coloured badge."""
    color, icon = _BADGES.get(state, ("gray", ":material/help:"))
    run = _("Run `{run_id}`").format(run_id=run_id)
    return f"#### {run} :{color}-badge[{icon} {md_literal(run_state(state))}]"


def render_run(manager: Jobs, run_id: str, dataset: Any | None = None) -> bool:
    """The run's own model and settings, progress, Stop and charts; True while it is queued or running
    (keep polling). `dataset` is the session's current one: "Use these settings" says when it differs."""
    snap = manager.snapshot(run_id)
    if snap is not None and snap.active:
        st.markdown(_run_heading(run_id, snap.state))
        summary = run_summary(manager, run_id)
        _details(summary, dataset)
        if summary.article:
            st.caption(":material/menu_book: " + _(
                "The article reports about {accuracy} test accuracy for this experiment; this run's result is shown "
                "here when it ends.").format(accuracy=f"{ARTICLE.reported_test_accuracy:.0%}"))
        if snap.state == "queued":
            st.info(_("Waiting in the queue, position {position}: one training runs at a time.").format(
                position=snap.queue_position), icon=":material/hourglass_top:")
        else:
            progress = _("epoch {epoch}/{epochs} · batch {batch}/{batches} · {rate} samples/s · ETA {eta} · "
                         "{message}")
            st.progress(snap.fraction, text=progress.format(
                epoch=max(snap.epoch, 1), epochs=snap.epochs, batch=snap.batch, batches=snap.batches_per_epoch,
                rate=f"{snap.samples_per_s:,.0f}", eta=_fmt_eta(snap.eta_s), message=md_literal(snap.message)))
        _stop_button(manager, run_id, snap)
        _others(manager, manager.active_run_ids(), run_id)
        _charts(run_id, snap.records, snap.batch_losses)
        return True
    # what this process knows comes first: status.json may not have been writable (disk full, read-only)
    known = manager.live_status(run_id)
    if known is None:
        try:
            info = manager.store.run_info(run_id)
        except (OSError, ValueError) as exc:
            st.warning(_("Run `{run_id}` cannot be shown: {reason}.").format(run_id=run_id, reason=md_literal(exc)),
                       icon=":material/warning:")
            return False
        if info.damaged:
            st.warning(_("Run `{run_id}` is damaged: {reason}. You can download or delete it on Compare runs.").format(
                run_id=run_id, reason=md_literal(info.message)), icon=":material/broken_image:")
            st.page_link("pages/runs.py", label=_("Compare runs"), icon=":material/compare:")
            return False
        known = info.status, info.message
    state, message = known
    st.markdown(_run_heading(run_id, state))
    summary = run_summary(manager, run_id)
    _details(summary, dataset)
    st.markdown(md_literal(message))
    if summary.article:
        _beside_the_article(manager, run_id)
    if state in ("completed", "stopped"):
        st.page_link("pages/evaluate.py", label=_("Evaluate this run"), icon=":material/target:")
    _others(manager, manager.active_run_ids(), run_id)
    records, problem = manager.store.read_metrics_checked(run_id)
    if problem:
        st.warning(md_literal(problem), icon=":material/warning:")
    if snap is not None:  # the worker's own records: complete even if some lines never reached the disk
        records, batches = snap.records, snap.batch_losses
    else:
        batches = [(r["step"], r["loss"]) for r in manager.store.read_metrics(run_id, kind="batch")
                   if r.get("loss") is not None]
    _charts(run_id, records, batches)
    return False


def _beside_the_article(manager: Jobs, run_id: str) -> None:
    """A finished run of the article's experiment: its test accuracy next to the one the article reports."""
    try:
        accuracy = manager.store.read_status(run_id).get("test_accuracy")
    except (OSError, ValueError):
        accuracy = None
    reported = f"{ARTICLE.reported_test_accuracy:.0%}"
    if isinstance(accuracy, int | float):
        st.info(_("Test accuracy **{accuracy}** on CIFAR-10's official test set; the article reports about {reported} "
                  "with the same data, model and settings. Runs differ by a point or two with the seed; here {share} "
                  "of the training images are held out for validation.").format(
            accuracy=f"{accuracy:.1%}", reported=reported, share=f"{ARTICLE.config.val_fraction:.0%}"),
                icon=":material/menu_book:")
    else:
        st.caption(":material/menu_book: " + _("No test accuracy was recorded for this run; the article reports about "
                                               "{reported} with the same data, model and settings.").format(
            reported=reported))


def render_article_offer(manager: Jobs, disabled: bool = False) -> None:
    """One click sets up the article's CIFAR-10 experiment (data, model, settings) and starts it."""
    with st.container(border=True):
        text, button = st.columns([5, 1.3], vertical_alignment="center")
        text.markdown(":material/menu_book: " + _(
            "**Reproduce the article**: the whole of CIFAR-10 with its official test set, the {model} as printed "
            "(122,570 parameters), Adam, batch {batch}, {epochs} epochs. The article reports about {accuracy} test "
            "accuracy.").format(model=ARTICLE.preset, batch=ARTICLE.config.batch_size, epochs=ARTICLE.config.epochs,
                                accuracy=f"{ARTICLE.reported_test_accuracy:.0%}"))
        button.button(_("Reproduce the article"), icon=":material/science:", key="train_article", width="stretch",
                      on_click=_reproduce_article, args=(manager,), disabled=disabled,
                      help=_("Makes CIFAR-10 your dataset, the Article CNN your model and these settings the form's, "
                             "then starts the run (a few minutes per epoch on two CPU cores)."))
        if problem := st.session_state.pop(_ARTICLE_PROBLEM_KEY, None):
            st.error(md_literal(problem), icon=":material/cloud_off:")


def _reproduce_article(manager: Jobs) -> None:
    """The button's callback, run before the page: the session's data, model and form become the article's,
    then the run is submitted. What stops it (CIFAR-10 not downloaded, a full queue) is said under the button."""
    try:
        dataset = select_dataset(ARTICLE.dataset)  # the whole set, from the Keras cache: never downloads
    except DatasetError as exc:  # the Data page's own words: what to download and the folder to put it in
        st.session_state[_ARTICLE_PROBLEM_KEY] = _("{problem} The Data page can also try the download with "
                                                   "Keras.").format(problem=exc)
        return
    spec, config = preset(ARTICLE.preset, dataset), ARTICLE.config
    set_spec(spec)
    saved_config(config)
    st.session_state.update(_form_values(config))
    label = run_label(spec.name, dataset.name)
    try:
        run_id = manager.submit(TrainRequest(dataset, spec, config, label=label),  # in the manager's workspace
                                idempotency_key=submit_key(config, spec, dataset.name))
    except (TrainConfigError, QueueFullError, RunStoreError) as exc:
        st.session_state[_ARTICLE_PROBLEM_KEY] = _("Cannot start training: {reason}").format(reason=exc)
        return
    remember_run(run_id)
    started(manager, run_id, label)


def _form_values(cfg: TrainConfig) -> dict[str, Any]:
    """The form's session values for these settings, typed as its widgets expect (ints stay ints)."""
    values = {}
    for name, key in FORM_KEYS.items():
        value = getattr(cfg, name)
        values[key] = float(value) if name in _FLOATS else int(value) if name in _INTS else value
    return values


def prime_form(cfg: TrainConfig) -> None:
    """Give each form widget its starting value through its session key (set once: widgets without value=
    then never conflict with a value written here). Streamlit drops widget keys on a page change, so the
    form comes back with `cfg`, the last settings submitted or loaded."""
    for key, value in _form_values(cfg).items():
        st.session_state.setdefault(key, value)


def apply_pending_settings(manager: Jobs, dataset: Any) -> None:
    """Load the run chosen with "Use these settings" into the form and, when the run trained on the current
    dataset, its model as the session's model; say what was loaded. Call before the form is created."""
    run_id = st.session_state.pop(PENDING_KEY, None)
    if not isinstance(run_id, str):
        return
    summary = run_summary(manager, run_id)
    if summary.training is None:
        st.error(_("Settings of run `{run_id}` not loaded: {reason}").format(
            run_id=run_id, reason=md_literal(summary.problems[0])), icon=":material/error:")
        return
    saved_config(summary.training)
    for key, value in _form_values(summary.training).items():
        st.session_state[key] = value
    spec, info = summary.spec, summary.dataset
    if spec is None:
        st.warning(_("Loaded the training settings of run `{run_id}` into the form below. Its model cannot be read, "
                     "so your model is unchanged.").format(run_id=run_id), icon=":material/input:")
    elif not same_data(info, dataset):
        st.warning(_("Loaded the training settings of run `{run_id}` into the form below. Its model {model} trained "
                     "on {data}, not on the data you have selected ({selected}), so your model is unchanged: select "
                     "that dataset on the Data page and press Use these settings again to train its model too.").format(
            run_id=run_id, model=_quoted(spec.name), data=_data_words(info),
            selected=_data_words({"name": dataset.name, "subset": dataset.subset})), icon=":material/input:")
    elif validate_spec(spec, dataset.input_shape, dataset.n_classes, dataset.kind):
        st.warning(_("Loaded the training settings of run `{run_id}` into the form below. Its model {model} does not "
                     "fit this data any more, so your model is unchanged.").format(
            run_id=run_id, model=_quoted(spec.name)), icon=":material/input:")
    else:
        set_spec(spec)
        st.success(_("Loaded the training settings of run `{run_id}` into the form below, and its model {model} as "
                     "your model: Start training trains it again with these settings.").format(
            run_id=run_id, model=_quoted(spec.name)), icon=":material/input:")
    st.toast(_("Settings of run {run_id} loaded into the form.").format(run_id=run_id), icon=":material/input:")


def _quoted(name: str) -> str:
    return f"“{md_literal(name, max_chars=80)}”"


def started(manager: Jobs, run_id: str, label: str) -> None:
    """Remember this session's Start (for start_feedback) and confirm it in a toast."""
    previous = st.session_state.get(_STARTED_KEY) or {}
    snap = manager.snapshot(run_id)
    position = snap.queue_position if snap is not None and snap.state == "queued" else None
    again = previous.get("run_id") == run_id  # the same submission twice (a double click): one run
    now = time.strftime("%H:%M:%S")
    info = {"run_id": run_id, "label": label, "position": position, "again": again,
            "at": previous.get("at") if again else now, "again_at": now if again else None}
    st.session_state[_STARTED_KEY] = info
    if again:  # a double click: the page says what happened right under the Start button
        st.toast(_("Nothing new started: run {run_id} was started with these settings a moment ago.").format(
            run_id=run_id), icon=":material/ads_click:")
        return
    label = md_literal(label, max_chars=80)
    if position == 1:
        toast = _("Run {run_id} queued, next in line: {label}")
    elif position:
        toast = _("Run {run_id} queued, position {position}: {label}")
    else:
        toast = _("Run {run_id} started: {label}")
    st.toast(toast.format(run_id=run_id, position=position, label=label),
             icon=":material/hourglass_top:" if position else ":material/play_arrow:")


def start_again_requested() -> bool:
    """True once after "Start another run with these settings" was pressed (see start_feedback)."""
    return bool(st.session_state.pop(_AGAIN_KEY, False))


def _request_start_again() -> None:
    st.session_state[_AGAIN_KEY] = True


def _offer_start_again(run_id: str, info: dict[str, Any], label: str, outcome: str) -> None:
    """A second Start with the same settings a few seconds after the first counts as a double click (one run):
    say so, name the run (`outcome`: a sentence on where it is now), and let a deliberate second start through."""
    said = _("Start was pressed again at {again_at} with the same settings, a few seconds after it started run "
             "`{run_id}` ({label}) at {at}: that counts as a double click, so nothing new started. {outcome}")
    st.warning(said.format(again_at=info.get("again_at") or info["at"], run_id=run_id, label=label, at=info["at"],
                           outcome=outcome), icon=":material/ads_click:")
    st.button(_("Start another run with these settings"), icon=":material/replay:", key="train_start_again",
              on_click=_request_start_again,
              help=_("Trains a second run with exactly the same model, data and settings (with the same seed, the "
                     "same curves on a CPU)."))


def start_feedback(manager: Jobs, watched: str | None) -> None:
    """An inline status right under the Start button: what the last Start of this session did, while the
    page watches that run (on a phone the run's progress above may be out of sight)."""
    info = st.session_state.get(_STARTED_KEY)
    if not info or info.get("run_id") != watched:
        return
    run_id, label = info["run_id"], md_literal(info["label"], max_chars=120)
    snap = manager.snapshot(run_id)
    if snap is None or not snap.active:
        known = manager.live_status(run_id)
        if known is None:
            try:
                known = manager.store.read_status(run_id).get("state"), ""
            except (OSError, ValueError):
                known = None
        state = md_literal(run_state(known[0]) if known else _("unknown"))
        if info.get("again"):
            _offer_start_again(run_id, info, label, _("Run `{run_id}` has ended: **{state}**; its charts are at the "
                                                      "top of the page.").format(run_id=run_id, state=state))
            return
        st.info(_("Run `{run_id}` ({label}), started at {at}, has ended: **{state}**. Its charts are at the top of "
                  "the page.").format(run_id=run_id, label=label, at=info["at"], state=state), icon=":material/flag:")
        return
    # as of this full run of the page (the polling fragment above keeps the live state)
    position = snap.queue_position if snap.state == "queued" else None
    if info.get("again"):
        outcome = (_("Run `{run_id}` is queued: its progress and Stop are at the top of the page.") if position else
                   _("Run `{run_id}` is training: its progress and Stop are at the top of the page."))
        _offer_start_again(run_id, info, label, outcome.format(run_id=run_id))
        if st.query_params.get("run") != run_id:
            st.query_params["run"] = run_id
        return
    if position == 1:
        head = _("Queued at {at}: run `{run_id}` ({label}), next in line for training.")
    elif position:
        head = ngettext("Queued at {at}: run `{run_id}` ({label}), position {position} in the queue ({ahead} run "
                        "ahead of it).",
                        "Queued at {at}: run `{run_id}` ({label}), position {position} in the queue ({ahead} runs "
                        "ahead of it).", position - 1)
    elif info.get("position"):
        head = _("Queued at {at}: run `{run_id}` ({label}), training now.")
    else:
        head = _("Started at {at}: run `{run_id}` ({label}), training now.")
    head = head.format(at=info["at"], run_id=run_id, label=label, position=position, ahead=(position or 1) - 1)
    st.success(_("{head} Progress and Stop are at the top of the page.").format(head=head),
               icon=":material/check_circle:")


# ---- fine-tuning in two phases ---------------------------------------------------------------------

def fine_tune_inputs(spec: ModelSpec) -> tuple[int, int, float, bool]:
    """The form's fine-tuning row (second phase epochs, top layers to unfreeze, rate factor, and whether to
    train the frozen-only baseline too) when the model has a frozen backbone; without one, no second phase."""
    st.session_state.setdefault(FINE_TUNE_COMPARE_KEY, True)
    if frozen_backbone(spec) is None:
        st.caption(_("Fine-tuning in two phases (pre-train → fine-tune) needs a frozen pre-trained backbone: choose "
                     "the Transfer learning preset on Build a model."))
        state = st.session_state
        return 0, int(state["train_ft_layers"]), float(state["train_ft_factor"]), False
    st.markdown("**" + _("Fine-tuning: a second phase") + "** — " + _(
        "after the epochs above train the new head on the frozen backbone, unfreeze the backbone's top layers and "
        "train on at a lower learning rate (the article's pre-train → fine-tune). 0 epochs: no second phase."))
    f1, f2, f3, f4 = st.columns([1, 1, 1, 1.4], vertical_alignment="bottom")
    epochs = f1.number_input(_("Fine-tuning epochs"), min_value=0, step=1, key="train_ft_epochs")
    layers = f2.number_input(_("Top layers to unfreeze"), min_value=1, step=1, key="train_ft_layers",
                             help=_("Counted from the backbone's output. MobileNetV2 has about 150 layers; its "
                                    "BatchNormalization layers stay frozen, keeping their pre-trained statistics."))
    factor = f3.number_input(_("Learning-rate factor"), format="%g", step=0.05, key="train_ft_factor",
                             help=_("The second phase trains at the learning rate times this: large updates would "
                                    "wreck the pre-trained features."))
    compare = f4.toggle(_("Also train the frozen-only run"), key=FINE_TUNE_COMPARE_KEY,
                        help=_("The same model and settings with the backbone frozen for all the epochs of both "
                               "phases, queued beside it, so Compare runs shows what fine-tuning added."))
    return int(epochs), int(layers), float(factor), bool(compare)


def submit_fine_tune_pair(manager: Jobs, request: TrainRequest, idempotency_key: str | None) -> list[str]:
    """Queue a fine-tuning run and its frozen-only baseline together (both or neither), as one group."""
    from dataclasses import replace

    group = f"fine-tune-{time.strftime('%H%M%S')}"
    baseline = replace(request, config=frozen_only(request.config), group=group,
                       label=_("{label} · frozen only").format(label=request.label))
    return manager.submit_many([replace(request, group=group), baseline], idempotency_key)


def render_fine_tune_pair(pair: list[str] | None) -> None:
    """After a fine-tuning start with its baseline: say so, and offer both on Compare runs."""
    if not pair:
        return
    tuned, frozen = pair
    c1, c2 = st.columns([3, 1], vertical_alignment="center")
    c1.info(_("Run {tuned} fine-tunes; run {frozen} keeps the backbone frozen for as many epochs. Compare their "
              "curves (the dotted line marks where fine-tuning starts) and test accuracy on Compare runs.").format(
        tuned=tuned, frozen=frozen), icon=":material/compare:")
    if c2.button(_("Compare these two runs"), icon=":material/stacked_line_chart:", key="train_ft_compare_go"):
        compare_on_runs_page(pair)
