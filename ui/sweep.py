"""Sweeps page helpers: the plan form, the process-wide registry of running sweeps, and the live view.

A sweep's driver thread (core.sweeps.SweepDriver) lives in a process-wide registry, not in the session:
a reload, a page change or a second tab finds it still running. The study itself is on disk (Optuna's
journal file in the workspace's runs folder), so after a server restart it is listed and can be resumed.
"""

from __future__ import annotations

import threading
from typing import Any

import optuna
import pandas as pd
import streamlit as st

from core.charts.sweep import sweep_figure
from core.i18n import _, ngettext
from core.specs import ModelSpec
from core.sweeps import (
    DIMENSIONS,
    PRUNERS,
    SAMPLERS,
    Dimension,
    SweepDriver,
    SweepError,
    SweepPlan,
    apply_params,
    best_trial,
    create_study,
    fail_orphans,
    journal_path,
    load_study,
    method_names,
    open_storage,
    plot_study,
    setting_names,
    state_counts,
    study_rows,
)
from core.training import TrainConfig
from ui.text import md_literal


def _setting_labels() -> dict[str, str]:
    return {"optimizer": _("Optimizer"), "learning_rate": _("Learning rate"), "batch_size": _("Batch size"),
            "epochs": _("Epochs"), "schedule": _("Learning-rate schedule"),
            "dropout": _("Dropout rate (every Dropout layer)"),
            "width": _("Width multiplier (units / filters of every Dense and Conv2D layer)")}


def _sampler_labels() -> dict[str, str]:
    return {"tpe": _("TPE (Bayesian: learns from earlier trials)"), "random": _("Random"), "grid": _("Grid")}


def _pruner_labels() -> dict[str, str]:
    return {"median": _("Median: stop a trial worse than the median so far"),
            "hyperband": _("Hyperband: successive halving over epochs"), "none": _("None: every trial runs out")}


def _state_labels() -> dict[str, str]:
    """Trial states (Optuna's, lower case) as the counts above the table name them."""
    return {"running": _("Running"), "complete": _("Complete"), "pruned": _("Pruned"), "fail": _("Failed"),
            "waiting": _("Waiting")}


def _state_words() -> dict[str, str]:
    """Trial states as the table's state column names them."""
    return {"running": _("running"), "complete": _("complete"), "pruned": _("pruned"), "fail": _("fail"),
            "waiting": _("waiting")}


_DEFAULT_RANGES = {"learning_rate": (1e-4, 1e-1), "epochs": (2, 10), "dropout": (0.0, 0.5), "width": (0.5, 2.0)}
_SELECTED = "sweep"  # query parameter naming the sweep on screen (reloads and direct links keep it)


@st.cache_resource(show_spinner=False)
def _registry() -> tuple[threading.Lock, dict[tuple[str, str], SweepDriver]]:
    """Every sweep driver of this server process, by (runs folder, study name)."""
    return threading.Lock(), {}


@st.cache_resource(show_spinner=False, max_entries=64)
def _storage(root: str) -> optuna.storages.BaseStorage:
    return open_storage(journal_path(root))


def storage_for(root: str, *, create: bool = False) -> optuna.storages.BaseStorage | None:
    """The workspace's Optuna journal (one file, every sweep of the workspace); None while it does not
    exist, unless `create` (a visitor who only looks leaves nothing on disk)."""
    if not create and not journal_path(root).is_file():
        return None
    return _storage(root)


def driver(root: str, name: str) -> SweepDriver | None:
    lock, drivers = _registry()
    with lock:
        return drivers.get((root, name))


def study_names(storage: optuna.storages.BaseStorage | None) -> list[str]:
    """Sweeps of the workspace, newest first."""
    if storage is None:
        return []
    summaries = optuna.study.get_all_study_summaries(storage, include_best_trial=False)
    return [s.study_name for s in sorted(summaries, key=lambda s: s.user_attrs.get("created", 0), reverse=True)]


def start(manager: Any, storage: optuna.storages.BaseStorage, name: str, plan: SweepPlan, dataset: Any,
          spec: ModelSpec, config: TrainConfig, *, resume: bool = False) -> SweepDriver:
    """Create the study (unless resuming) and start its driver in the background."""
    root = str(manager.store.root)
    if not resume:
        ref = dataset.ref
        base = {"dataset": {**(ref.to_dict() if ref else {"name": dataset.name}), "upload": ref is None},
                "spec": spec.to_dict(), "config": config.to_dict()}
        create_study(storage, name, plan, base)
    else:
        fail_orphans(load_study(storage, name)[0], manager.manager, manager.workspace)
    new = SweepDriver(manager.manager, storage, name, dataset, workspace=manager.workspace).start()
    lock, drivers = _registry()
    with lock:
        drivers[(root, name)] = new
    st.query_params[_SELECTED] = name
    return new


def base_dataset(base: dict[str, Any], current: Any) -> Any:
    """The dataset a sweep was created on: reloaded by name, or the current upload if it is the same file."""
    ref = base["dataset"]
    if not ref.get("upload"):
        from ui.data import load_dataset

        return load_dataset(ref["name"], ref.get("subset"), ref.get("seed", 0))
    if current.name == ref["name"]:
        return current
    raise SweepError(_("this sweep trains on the uploaded file {name}: upload it again on Explore data to resume it")
                     .format(name=repr(ref["name"])))


def selected_name(names: list[str]) -> str | None:
    wanted = st.query_params.get(_SELECTED)
    return wanted if wanted in names else (names[0] if names else None)


def select(name: str) -> None:
    st.query_params[_SELECTED] = name


# ---- the plan form -------------------------------------------------------------------------------------

def _dimension_widget(name: str, config: TrainConfig) -> Dimension:
    template = DIMENSIONS[name]
    label = _setting_labels()[name]
    if template.kind == "choice":
        default = list(template.choices) if name != "batch_size" else [32, 64, 128]
        chosen = st.multiselect(label, list(template.choices), default=default, key=f"sweep_{name}")
        return Dimension(name, "choice", choices=tuple(chosen))
    low, high = _DEFAULT_RANGES[name]
    a, b = st.columns(2)
    step = 1 if template.kind == "int" else None
    fmt = "%d" if template.kind == "int" else "%g"
    cast = int if template.kind == "int" else float
    lo = a.number_input(_("{setting}: from").format(setting=label), value=cast(low), step=step, format=fmt,
                        key=f"sweep_{name}_lo")
    hi = b.number_input(_("{setting}: to").format(setting=label), value=cast(high), step=step, format=fmt,
                        key=f"sweep_{name}_hi")
    return Dimension(name, template.kind, low=cast(lo), high=cast(hi), log=template.log)


def plan_form(config: TrainConfig, default_name: str) -> tuple[str, SweepPlan] | None:
    """The 'New sweep' settings; (name, checked plan) when Start was pressed, else None (errors shown)."""
    varied = st.multiselect(_("Vary"), list(DIMENSIONS), default=["optimizer", "learning_rate"],
                            format_func=_setting_labels().get, key="sweep_vary",
                            help=_("Everything else comes from the model on Build a model and the settings of "
                                   "your last Train start."))
    dims = [_dimension_widget(name, config) for name in varied]
    a, b, c = st.columns(3)
    sampler = a.selectbox(_("Sampler"), SAMPLERS, format_func=_sampler_labels().get, key="sweep_sampler")
    pruner = b.selectbox(_("Pruner"), PRUNERS, format_func=_pruner_labels().get, key="sweep_pruner",
                         help=_("Fed each epoch with the validation metric; a pruned trial ends as a run with "
                                "state 'pruned'."))
    metric = c.selectbox(_("Optimise"), ("val_accuracy", "val_loss"), key="sweep_metric")
    d, e, f = st.columns(3)
    n_trials = d.number_input(_("Trials"), min_value=1, max_value=200, value=12, step=1, key="sweep_trials")
    minutes = e.number_input(_("Time budget (minutes, 0 = none)"), min_value=0, value=0, step=5,
                             key="sweep_minutes", help=_("No trial starts after this; trials already running finish."))
    name = f.text_input(_("Name"), value=default_name, max_chars=80, key="sweep_name")
    if not st.button(_("Start sweep"), icon=":material/play_arrow:", type="primary", key="sweep_start"):
        return None
    plan = SweepPlan(tuple(dims), sampler=sampler, pruner=pruner, n_trials=int(n_trials),
                     timeout_s=float(minutes) * 60 or None, metric=metric, seed=config.seed)
    try:
        return name, plan.check()
    except SweepError as exc:
        st.error(_("Cannot start the sweep: {reason}").format(reason=md_literal(str(exc))), icon=":material/error:")
        return None


# ---- the live view -------------------------------------------------------------------------------------

def render_counts(study: optuna.Study, running: bool, plan: SweepPlan) -> None:
    counts = state_counts(study)
    labels = _state_labels()
    for col, (key, label) in zip(st.columns(len(labels)), labels.items(), strict=True):
        col.metric(label, counts.get(key, 0))
    budget = ngettext("{n} trial", "{n} trials", plan.trials_to_run()).format(n=plan.trials_to_run())
    if plan.timeout_s:
        budget = _("{trials}, {minutes} min").format(trials=budget, minutes=f"{plan.timeout_s / 60:g}")
    methods = method_names()
    st.caption(_("{state} · budget {budget} · sampler {sampler} · pruner {pruner} · optimising {metric}").format(
        state=_("Running") if running else _("Not running"), budget=budget, sampler=methods[plan.sampler],
        pruner=methods[plan.pruner], metric=plan.metric))


def render_best(study: optuna.Study, base: dict[str, Any]) -> None:
    best = best_trial(study)
    if best is None:
        st.info(_("No completed trial yet: the best trial appears here (pruned trials never count)."),
                icon=":material/hourglass_empty:")
        return
    names = setting_names()
    params = ", ".join(f"{names.get(k, k)} = {v:.4g}" if isinstance(v, float) else f"{names.get(k, k)} = {v}"
                       for k, v in best.params.items())
    st.success(_("Best: trial {number}, {metric} {value} ({params})").format(
        number=best.number, metric=study.user_attrs["plan"]["metric"], value=f"{best.value:.4f}", params=params),
        icon=":material/emoji_events:")
    a, b = st.columns(2)
    run_id = best.user_attrs.get("run_id")
    if run_id and a.button(_("Evaluate the best trial"), icon=":material/target:", key="sweep_eval"):
        st.session_state["eval_run"] = run_id
        st.switch_page("pages/evaluate.py")
    if b.button(_("Use these settings"), icon=":material/input:", key="sweep_use",
                help=_("Sets the model (dropout, width) and the Train settings to the best trial's.")):
        from ui.jobs import saved_config
        from ui.model import set_spec

        spec, config = apply_params(ModelSpec.from_dict(base["spec"]), TrainConfig.from_dict(base["config"]),
                                    best.params)
        set_spec(spec)
        saved_config(config)
        st.toast(_("The best trial's settings are now those of Build a model and Train."), icon=":material/check:")


def render_trials(study: optuna.Study, hide_pruned: bool) -> None:
    rows = [r for r in study_rows(study) if not (hide_pruned and r["state"] == "pruned")]
    if not rows:
        return
    table = pd.DataFrame(rows)
    words = _state_words()
    table["state"] = table["state"].map(lambda state: words.get(state, state))
    names = setting_names()
    headers = {"trial": _("trial"), "state": _("state"), "value": _("value"), "epochs": _("epochs"), "run": _("run"),
               **{f"param {k}": _("param {name}").format(name=names.get(k, k)) for k in DIMENSIONS}}
    st.dataframe(table.rename(columns=headers), hide_index=True, width="stretch")


def render_plots(study: optuna.Study, hide_pruned: bool, key: str) -> None:
    """Optuna's own plotly figures; pruned trials are left out when asked (their short curves and early
    values squash the axes)."""
    shown = plot_study(study, include_pruned=not hide_pruned)
    done = sum(t.state == optuna.trial.TrialState.COMPLETE for t in shown.trials)
    titles = {"curves": _("Curves (live)"), "history": _("History")}
    if len(study.user_attrs["plan"]["dimensions"]) > 1:
        titles["parallel"] = _("Parallel coordinates")
        titles["contour"] = _("Contour")
    if done >= 2:
        titles["importances"] = _("Importances")
    for tab, kind in zip(st.tabs(list(titles.values())), titles, strict=True):
        with tab:
            try:
                figure = sweep_figure(kind, shown)
            except (ValueError, RuntimeError) as exc:  # e.g. importances of a parameter that never varied
                st.caption(_("Not available yet: {reason}").format(reason=md_literal(str(exc))))
                continue
            st.plotly_chart(figure, key=f"{key}_{kind}", width="stretch")

