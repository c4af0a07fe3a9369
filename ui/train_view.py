"""The Train page's view of one run: its own model and settings, progress, Stop / remove from queue, other
jobs, live charts; and the settings form's session keys, which "Use these settings" fills from a run.

render_run is called once a second from the page's polling fragment while a job is active, so it reads the
manager's in-memory snapshot and rebuilds epoch charts only when a new epoch arrives.

"Use these settings" sits in that fragment, but the form it fills is outside it: the button only records
which run to copy (PENDING_KEY) and reruns the whole page, and the page applies it (apply_pending_settings)
before the form's widgets are created, the one moment their session keys may be written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import streamlit as st

from core.charts.training import batch_figure, history_figure, lr_figure, metric_names
from core.datasets import dataset_fingerprint
from core.jobs import JobManager
from core.specs import ModelSpec, SpecError, analyse_spec, validate_spec
from core.training import TrainConfig, TrainConfigError
from ui.jobs import remember_run, saved_config
from ui.model import set_spec
from ui.text import md_literal

if TYPE_CHECKING:
    from ui.workspace import WorkspaceJobs

    Jobs = JobManager | WorkspaceJobs  # the process-wide manager, or one workspace's view of it

__all__ = ["FORM_KEYS", "LOSSES", "OPTIMIZERS", "PENDING_KEY", "SCHEDULES", "RunSummary", "apply_pending_settings",
           "prime_form", "render_run", "run_summary", "same_data", "settings_words", "start_again_requested",
           "start_feedback", "started"]

OPTIMIZERS = {"sgd": "SGD with momentum", "adam": "Adam", "adamw": "AdamW (weight decay)", "rmsprop": "RMSprop"}
SCHEDULES = {"constant": "constant", "step": "step decay", "cosine": "cosine decay", "plateau": "reduce on plateau"}
LOSSES = {"sparse_categorical_crossentropy": "cross-entropy", "mse": "mean squared error (teaching)"}

# TrainConfig field -> the session key of its widget in the Train page's form
FORM_KEYS = {"optimizer": "train_optimizer", "learning_rate": "train_learning_rate", "momentum": "train_momentum",
             "weight_decay": "train_weight_decay", "schedule": "train_schedule", "step_every": "train_step_every",
             "step_factor": "train_step_factor", "loss": "train_loss", "batch_size": "train_batch_size",
             "epochs": "train_epochs", "seed": "train_seed", "class_weights": "train_class_weights",
             "early_stopping": "train_early", "patience": "train_patience", "monitor": "train_monitor"}
_FLOATS = ("learning_rate", "momentum", "weight_decay", "step_factor")
_INTS = ("step_every", "batch_size", "epochs", "seed", "patience")
PENDING_KEY = "_train_use_settings"  # run id whose settings the next full run loads into the form
_STARTED_KEY = "_train_started"  # {"run_id", "label", "position", "at"} of this session's last Start
_AGAIN_KEY = "_train_start_again"  # set by "Start another run": the next full run submits the form's settings anew


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


def run_summary(manager: Jobs, run_id: str) -> RunSummary:
    """The run's own model, data and training settings from its config.json."""
    try:
        config = manager.store.read_config(run_id)
    except (OSError, ValueError) as exc:
        return RunSummary(run_id, problems=(f"This run's settings cannot be read: {exc}",))
    problems = []
    spec = params = training = None
    try:
        spec = ModelSpec.from_dict(config.get("model"))
    except SpecError as exc:
        problems.append(f"This run's model cannot be read: {exc}")
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
        problems.append(f"This run's training settings cannot be read: {exc}")
    label = config.get("label") if isinstance(config.get("label"), str) else None
    return RunSummary(run_id, label, spec, params, dataset, training, tuple(problems))


def _data_words(info: dict[str, Any] | None) -> str:
    """The run's dataset as Markdown: the name (escaped) and its subset."""
    if not info or not isinstance(info.get("name"), str):
        return "unknown data"
    words = f"**{md_literal(info['name'], max_chars=80)}**"
    if isinstance(info.get("subset"), int):
        words += f" (subset of {info['subset']:,})"
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
    parts = [OPTIMIZERS.get(cfg.optimizer, cfg.optimizer)]
    if cfg.optimizer == "sgd":
        parts[0] += f" (momentum {cfg.momentum:g})"
    elif cfg.optimizer == "adamw":
        parts[0] = f"AdamW (weight decay {cfg.weight_decay:g})"
    parts += [f"learning rate {cfg.learning_rate:g}", f"batch {cfg.batch_size:,}",
              f"{cfg.epochs:,} epoch{'s' if cfg.epochs != 1 else ''}"]
    if cfg.schedule == "step":
        parts.append(f"step decay ×{cfg.step_factor:g} every {cfg.step_every} epochs")
    elif cfg.schedule == "plateau":
        parts.append(f"reduce on plateau ×{cfg.step_factor:g} after {cfg.step_every} epochs")
    elif cfg.schedule == "cosine":
        parts.append("cosine decay")
    else:
        parts.append("constant rate")
    if cfg.early_stopping:
        parts.append(f"early stopping on {cfg.monitor} (patience {cfg.patience})")
    if cfg.class_weights != "none":
        parts.append(f"{cfg.class_weights} class weights")
    if cfg.loss != "sparse_categorical_crossentropy":
        parts.append(LOSSES.get(cfg.loss, cfg.loss))
    parts.append(f"seed {cfg.seed}")
    defaults = TrainConfig()
    if (cfg.val_fraction, cfg.test_fraction) != (defaults.val_fraction, defaults.test_fraction):
        parts.append(f"validation {cfg.val_fraction:g} / test {cfg.test_fraction:g}")
    return " · ".join(parts)


def _details(summary: RunSummary, dataset: Any | None) -> None:
    """The watched run's own model, data and settings, and the button that copies them to the form."""
    spec = summary.spec
    model = f"**{md_literal(spec.name, max_chars=80)}**" if spec is not None else "a model that cannot be read"
    params = f" ({summary.params:,} parameters)" if summary.params is not None else ""
    text, button = st.columns([5, 1.3], vertical_alignment="center")
    text.markdown(f":material/view_in_ar: Model {model}{params} on {_data_words(summary.dataset)}")
    if summary.label and spec is not None and summary.dataset and \
            summary.label != f"{spec.name} on {summary.dataset.get('name')}":
        text.caption(md_literal(summary.label, max_chars=120))
    if summary.training is not None:
        text.markdown(f":material/tune: {md_literal(settings_words(summary.training))}")
    for problem in summary.problems:
        text.caption(f":material/warning: {md_literal(problem)}")
    if summary.training is None:
        return
    other_data = dataset is not None and not same_data(summary.dataset, dataset)
    if other_data:
        text.caption(f"Not the data you have selected ({md_literal(dataset.name, max_chars=80)}): Use these "
                     f"settings loads its training settings only, not its model.")
    help_text = ("Fills the form below with this run's training settings and makes its model your model, so "
                 "Start trains it again." if not other_data else
                 "Fills the form below with this run's training settings. Its model stays out: the run trained "
                 "on other data than the dataset you have selected.")
    if button.button("Use these settings", icon=":material/input:", key=f"use-settings-{summary.run_id}",
                     help=help_text, width="stretch"):
        st.session_state[PENDING_KEY] = summary.run_id
        st.rerun()  # the whole page: the form is outside the polling fragment


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
    log_y = st.toggle("Log scale", key="train_log_y")
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
    st.caption("Other jobs:")
    for column, other in zip(st.columns(min(len(others), 4)), others[:4], strict=False):
        position = manager.queue_position(other)
        where = "running" if position is None else f"queue #{position}"
        if column.button(f"{other} ({where})", icon=":material/visibility:", key=f"watch-{other}",
                         help="Watch this job instead"):
            remember_run(other)
            st.rerun()  # the whole page: the watched run is chosen outside the polling fragment


_FORCE_AFTER_S = 3.0  # Stop lands within ~0.5 s; after this long the worker may be stuck: offer Force stop


def render_run(manager: Jobs, run_id: str, dataset: Any | None = None) -> bool:
    """The run's own model and settings, progress, Stop and charts; True while it is queued or running
    (keep polling). `dataset` is the session's current one: "Use these settings" says when it differs."""
    snap = manager.snapshot(run_id)
    if snap is not None and snap.active:
        color, icon = _BADGES[snap.state]
        st.markdown(f"#### Run `{run_id}` :{color}-badge[{icon} {snap.state}]")
        _details(run_summary(manager, run_id), dataset)
        if snap.state == "queued":
            st.info(f"Waiting in the queue, position {snap.queue_position}: one training runs at a time.",
                    icon=":material/hourglass_top:")
        else:
            st.progress(snap.fraction, text=(
                f"epoch {max(snap.epoch, 1)}/{snap.epochs} · batch {snap.batch}/{snap.batches_per_epoch} · "
                f"{snap.samples_per_s:,.0f} samples/s · ETA {_fmt_eta(snap.eta_s)} · "
                f"{md_literal(snap.message)}"))
        if snap.stop_requested_s is not None and snap.stop_requested_s > _FORCE_AFTER_S and snap.can_force:
            st.warning(f"Stop was asked {snap.stop_requested_s:.0f} s ago and has not landed yet.",
                       icon=":material/hourglass_top:")
            st.button("Force stop", icon=":material/dangerous:", key=f"force-{run_id}", type="primary",
                      on_click=manager.force_stop, args=(run_id,),
                      help="Ends the training process now: the run ends 'stopped', its curves are kept, but "
                           "the model at this point is not saved.")
        else:
            st.button("Stop" if snap.state == "running" else "Remove from queue", icon=":material/stop:",
                      key=f"stop-{run_id}", on_click=manager.stop, args=(run_id,),
                      disabled=snap.stop_requested_s is not None,
                      help="Training stops at the end of the steps in progress"
                           + (f" (within about {snap.stop_within_s:.1f} s)" if snap.stop_within_s else "")
                           + " and keeps the model at that point.")
        _others(manager, manager.active_run_ids(), run_id)
        _charts(run_id, snap.records, snap.batch_losses)
        return True
    # what this process knows comes first: status.json may not have been writable (disk full, read-only)
    known = manager.live_status(run_id)
    if known is None:
        try:
            info = manager.store.run_info(run_id)
        except (OSError, ValueError) as exc:
            st.warning(f"Run `{run_id}` cannot be shown: {md_literal(exc)}.", icon=":material/warning:")
            return False
        if info.damaged:
            st.warning(f"Run `{run_id}` is damaged: {md_literal(info.message)}. You can download or delete it on "
                       f"Compare runs.", icon=":material/broken_image:")
            st.page_link("pages/runs.py", label="Compare runs", icon=":material/compare:")
            return False
        known = info.status, info.message
    state, message = known
    color, icon = _BADGES.get(state, ("gray", ":material/help:"))
    st.markdown(f"#### Run `{run_id}` :{color}-badge[{icon} {md_literal(state)}]")
    _details(run_summary(manager, run_id), dataset)
    st.markdown(md_literal(message))
    if state in ("completed", "stopped"):
        st.page_link("pages/evaluate.py", label="Evaluate this run", icon=":material/target:")
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
        st.error(f"Settings of run `{run_id}` not loaded: {md_literal(summary.problems[0])}", icon=":material/error:")
        return
    saved_config(summary.training)
    for key, value in _form_values(summary.training).items():
        st.session_state[key] = value
    spec, info = summary.spec, summary.dataset
    said = f"Loaded the training settings of run `{run_id}` into the form below"
    if spec is None:
        st.warning(f"{said}. Its model cannot be read, so your model is unchanged.", icon=":material/input:")
    elif not same_data(info, dataset):
        st.warning(f"{said}. Its model {_quoted(spec.name)} trained on {_data_words(info)}, not on the data you "
                   f"have selected ({_data_words({'name': dataset.name, 'subset': dataset.subset})}), so your "
                   f"model is unchanged: select that dataset on the Data page and press Use these settings again "
                   f"to train its model too.", icon=":material/input:")
    elif validate_spec(spec, dataset.input_shape, dataset.n_classes, dataset.kind):
        st.warning(f"{said}. Its model {_quoted(spec.name)} does not fit this data any more, so your model is "
                   f"unchanged.", icon=":material/input:")
    else:
        set_spec(spec)
        st.success(f"{said}, and its model {_quoted(spec.name)} as your model: Start training trains it again "
                   f"with these settings.", icon=":material/input:")
    st.toast(f"Settings of run {run_id} loaded into the form.", icon=":material/input:")


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
    what = "queued, next in line" if position == 1 else f"queued, position {position}" if position else "started"
    if again:  # a double click: the page says what happened right under the Start button
        st.toast(f"Nothing new started: run {run_id} was started with these settings a moment ago.",
                 icon=":material/ads_click:")
        return
    st.toast(f"Run {run_id} {what}: {md_literal(label, max_chars=80)}",
             icon=":material/hourglass_top:" if position else ":material/play_arrow:")


def start_again_requested() -> bool:
    """True once after "Start another run with these settings" was pressed (see start_feedback)."""
    return bool(st.session_state.pop(_AGAIN_KEY, False))


def _request_start_again() -> None:
    st.session_state[_AGAIN_KEY] = True


def _offer_start_again(run_id: str, info: dict[str, Any], label: str, outcome: str) -> None:
    """A second Start with the same settings a few seconds after the first counts as a double click (one run):
    say so, name the run, and let a deliberate second start through."""
    st.warning(f"Start was pressed again at {info.get('again_at') or info['at']} with the same settings, a few "
               f"seconds after it started run `{run_id}` ({label}) at {info['at']}: that counts as a double "
               f"click, so nothing new started. Run `{run_id}` {outcome}.", icon=":material/ads_click:")
    st.button("Start another run with these settings", icon=":material/replay:", key="train_start_again",
              on_click=_request_start_again,
              help="Trains a second run with exactly the same model, data and settings (with the same seed, "
                   "the same curves on a CPU).")


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
                known = "unknown", ""
        if info.get("again"):
            _offer_start_again(run_id, info, label, f"has ended: **{md_literal(known[0])}**; its charts are at "
                                                    f"the top of the page")
            return
        st.info(f"Run `{run_id}` ({label}), started at {info['at']}, has ended: **{md_literal(known[0])}**. "
                f"Its charts are at the top of the page.", icon=":material/flag:")
        return
    # as of this full run of the page (the polling fragment above keeps the live state)
    position = snap.queue_position if snap.state == "queued" else None
    if info.get("again"):
        _offer_start_again(run_id, info, label, f"is {'queued' if position else 'training'}: its progress and "
                                                f"Stop are at the top of the page")
        if st.query_params.get("run") != run_id:
            st.query_params["run"] = run_id
        return
    if position == 1:
        head = f"Queued at {info['at']}: run `{run_id}` ({label}), next in line for training."
    elif position:
        head = f"Queued at {info['at']}: run `{run_id}` ({label}), position {position} in the queue " \
               f"({position - 1} run{'s' if position > 2 else ''} ahead of it)."
    elif info.get("position"):
        head = f"Queued at {info['at']}: run `{run_id}` ({label}), training now."
    else:
        head = f"Started at {info['at']}: run `{run_id}` ({label}), training now."
    st.success(f"{head} Progress and Stop are at the top of the page.", icon=":material/check_circle:")
