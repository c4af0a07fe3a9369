"""Sweeps: an Optuna study over the current model and settings; every trial is a run of the job engine."""

import time

import streamlit as st

from core.i18n import _
from core.sweeps import SweepError, compare_optimizers_plan, load_study
from ui import sweep as ui
from ui.data import current_dataset
from ui.jobs import saved_config
from ui.model import current_spec, spec_problem
from ui.state import ensure_app_entry
from ui.text import md_literal
from ui.workspace import workspace_jobs

ensure_app_entry()

st.title(":material/tune: " + _("Sweeps"))
manager = workspace_jobs()  # a shared server: this visitor's runs and sweeps only
root = str(manager.store.root)
storage = ui.storage_for(root)
dataset = current_dataset()
spec, config = current_spec(dataset), saved_config()
st.caption(_("Base: **{model}** on **{dataset}**, the settings of your last Train start ({epochs} epochs, batch "
             "{batch}, {optimizer}, seed {seed}). Each trial is an ordinary run: Evaluate and Compare runs work on it.")
           .format(model=md_literal(spec.name), dataset=md_literal(dataset.name), epochs=config.epochs,
                   batch=config.batch_size, optimizer=config.optimizer, seed=config.seed))
problem = spec_problem(dataset) or manager.check_writable()
if problem:
    st.warning(md_literal(problem), icon=":material/warning:")

stamp = time.strftime("%m-%d %H:%M")
with st.expander(_("New sweep"), icon=":material/add:", expanded=not ui.study_names(storage)):
    asked = ui.plan_form(config, f"{spec.name} · {stamp}")
    st.divider()
    st.markdown(_("Or, in one click, the article's optimizer comparison on this model, data and seed:"))
    if st.button(_("Compare optimizers (SGD, Adam, AdamW, RMSprop)"), icon=":material/compare_arrows:",
                 key="sweep_optimizers"):
        asked = (_("optimizers · {model} · {time}").format(model=spec.name, time=stamp), compare_optimizers_plan(config.seed))
if asked is not None and not problem:
    try:
        storage = ui.storage_for(root, create=True)
        ui.start(manager, storage, asked[0], asked[1], dataset, spec, config)
    except SweepError as exc:
        st.error(_("Cannot start the sweep: {reason}").format(reason=md_literal(str(exc))), icon=":material/error:")

names = ui.study_names(storage)
if not names:
    st.info(_("No sweep yet: choose what to vary above and press **Start sweep**."), icon=":material/info:")
    st.stop()
name = st.selectbox(_("Sweep"), names, index=names.index(ui.selected_name(names)), key="sweep_pick",
                    on_change=lambda: ui.select(st.session_state["sweep_pick"]))


@st.fragment(run_every=2)
def _live(name: str) -> None:
    _view(name)
    if not (d := ui.driver(root, name)) or not d.running:
        st.rerun()  # the sweep ended: one full run switches polling off


def _view(name: str) -> None:
    study, plan, base = load_study(storage, name)
    running = (d := ui.driver(root, name)) is not None and d.running
    ui.render_counts(study, running, plan)
    if d is not None and d.error:
        st.error(_("The sweep stopped on an error: {error}").format(error=md_literal(d.error)), icon=":material/error:")
    if running:
        if st.button(_("Stop the sweep"), icon=":material/stop:", key=f"sweep_stop_{name}",
                     help=_("No new trials; the trials running now are stopped.")):
            d.stop()
    elif any(t.state.name in ("RUNNING", "WAITING") for t in study.trials) or \
            sum(t.state.name != "WAITING" for t in study.trials) < plan.trials_to_run():
        if st.button(_("Resume"), icon=":material/play_arrow:", key=f"sweep_resume_{name}",
                     help=_("Runs the trials left in the budget (e.g. after the server restarted).")):
            try:
                ui.start(manager, storage, name, plan, ui.base_dataset(base, dataset), spec, config, resume=True)
            except SweepError as exc:
                st.error(_("Cannot resume: {reason}").format(reason=md_literal(str(exc))), icon=":material/error:")
            else:
                st.rerun()
    ui.render_best(study, base)
    hide = st.toggle(_("Hide pruned trials in the table and plots"), value=True, key=f"sweep_hide_{name}")
    ui.render_trials(study, hide)
    ui.render_plots(study, hide, key=f"sweep_{name}")


if (d := ui.driver(root, name)) is not None and d.running:
    _live(name)
else:
    _view(name)
