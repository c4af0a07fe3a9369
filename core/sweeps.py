"""Sweeps: Optuna studies whose trials are ordinary runs of the job engine (no Streamlit here).

Optuna decides everything a search needs (samplers, pruners, storage, several workers on one study); this
module only turns a trial's parameters into a `TrainRequest`, reports each epoch's validation metric to the
trial, and tells Optuna how the run ended. Every trial is a run in the run store (group "sweep:<study>",
its parameters in config.json under "trial"), so Evaluate and Compare runs work on trials unchanged; a
trial the pruner stops ends as a run with state "pruned".

Storage is Optuna's journal file `<runs>/optuna.journal` by default: several processes on one machine may
share it (SQLite raises "database is locked" under parallel workers, and Optuna's docs advise against it
for parallel optimisation). Any Optuna storage URL (e.g. postgresql://…) lets workers on other machines
join a study: `python -m core.sweeps --storage URL --study NAME --runs DIR` (see `main`).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from core.i18n import _, language, language_of, set_language
from core.jobs import JobManager, QueueFullError, TrainRequest
from core.runs import ACTIVE_STATES, RunStore
from core.specs import LayerSpec, ModelSpec
from core.training import OPTIMIZERS, SCHEDULES, TrainConfig

__all__ = ["DIMENSIONS", "Dimension", "SweepDriver", "SweepError", "SweepPlan", "apply_params", "best_trial",
           "compare_optimizers_plan", "create_study", "fail_orphans", "journal_path", "load_study", "main",
           "method_names", "open_storage", "plot_study", "setting_names", "state_counts", "study_rows"]

_log = logging.getLogger(__name__)
optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial would flood the server log

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "hyperband", "none")
GRID_POINTS = 4  # values per numeric dimension in a grid search
MAX_TRIALS = 200


class SweepError(ValueError):
    """A sweep that cannot run as asked; the message says what was given and what is allowed."""


def setting_names() -> dict[str, str]:
    """Each key of DIMENSIONS as messages, tables and figures name it: the key itself in English (as run files
    and the code name it), a word in the visitor's language otherwise."""
    return {"optimizer": _("optimizer"), "learning_rate": _("learning_rate"), "batch_size": _("batch_size"),
            "epochs": _("epochs"), "schedule": _("schedule"), "dropout": _("dropout"), "width": _("width")}


def method_names() -> dict[str, str]:
    """Each of SAMPLERS and PRUNERS as messages name it, the same way as `setting_names`."""
    return {"tpe": _("tpe"), "random": _("random"), "grid": _("grid"), "median": _("median"),
            "hyperband": _("hyperband"), "none": _("none")}


@dataclass(frozen=True)
class Dimension:
    """One setting a sweep varies: a choice among values, or a numeric range (log-scaled if `log`)."""

    name: str  # a key of DIMENSIONS
    kind: str  # "choice" | "float" | "int"
    choices: tuple = ()
    low: float | None = None
    high: float | None = None
    log: bool = False

    def distribution(self) -> optuna.distributions.BaseDistribution:
        if self.kind == "choice":
            return optuna.distributions.CategoricalDistribution(list(self.choices))
        if self.kind == "int":
            return optuna.distributions.IntDistribution(int(self.low), int(self.high), log=self.log)
        return optuna.distributions.FloatDistribution(float(self.low), float(self.high), log=self.log)

    def grid_values(self) -> list:
        """What a grid search tries: every choice, or GRID_POINTS values spread over the range."""
        if self.kind == "choice":
            return list(self.choices)
        space = np.geomspace if self.log else np.linspace
        values = space(float(self.low), float(self.high), GRID_POINTS)
        if self.kind == "int":
            return sorted({int(round(v)) for v in values})
        return sorted({float(f"{v:.3g}") for v in values})

    def check(self) -> Dimension:
        if self.name not in DIMENSIONS:
            raise SweepError(_("unknown sweep setting {name}; allowed: {allowed}").format(
                name=repr(self.name), allowed=", ".join(DIMENSIONS)))
        template = DIMENSIONS[self.name]
        name = setting_names()[self.name]
        if self.kind != template.kind:
            raise SweepError(_("{name} is a {kind} setting, got {given}").format(
                name=name, kind=template.kind, given=repr(self.kind)))
        if self.kind == "choice":
            bad = [c for c in self.choices if c not in template.choices]
            if not self.choices or bad:
                raise SweepError(_("{name}: choose among {allowed}, got {given}").format(
                    name=name, allowed=", ".join(map(str, template.choices)),
                    given=", ".join(map(str, bad)) or _("nothing")))
            return self
        if not (template.low <= self.low < self.high <= template.high):
            raise SweepError(_("{name}: the range must lie within {low} … {high} with low < high, got {lo} … {hi}")
                             .format(name=name, low=f"{template.low:g}", high=f"{template.high:g}",
                                     lo=f"{self.low:g}", hi=f"{self.high:g}"))
        return self


# What a sweep may vary, with the widest ranges allowed. "dropout" sets every Dropout layer's rate and
# "width" multiplies the units / filters of every Dense and Conv2D layer of the current model.
DIMENSIONS: dict[str, Dimension] = {
    "optimizer": Dimension("optimizer", "choice", choices=OPTIMIZERS),
    "learning_rate": Dimension("learning_rate", "float", low=1e-5, high=1.0, log=True),
    "batch_size": Dimension("batch_size", "choice", choices=(16, 32, 64, 128, 256)),
    "epochs": Dimension("epochs", "int", low=1, high=100),
    "schedule": Dimension("schedule", "choice", choices=SCHEDULES),
    "dropout": Dimension("dropout", "float", low=0.0, high=0.8),
    "width": Dimension("width", "float", low=0.25, high=4.0, log=True),
}


@dataclass(frozen=True)
class SweepPlan:
    """What to vary, how to search, and when to stop: stored with the study (its user attributes)."""

    dimensions: tuple[Dimension, ...]
    sampler: str = "tpe"
    pruner: str = "median"
    n_trials: int = 12
    timeout_s: float | None = None  # stop starting trials after this long; None: no time budget
    metric: str = "val_accuracy"  # the per-epoch validation metric the pruner and the search optimise
    seed: int = 0

    @property
    def direction(self) -> str:
        return "minimize" if self.metric == "val_loss" else "maximize"

    def check(self) -> SweepPlan:
        if self.sampler not in SAMPLERS:
            raise SweepError(_("sampler must be one of {allowed}, got {given}").format(
                allowed=", ".join(SAMPLERS), given=repr(self.sampler)))
        if self.pruner not in PRUNERS:
            raise SweepError(_("pruner must be one of {allowed}, got {given}").format(
                allowed=", ".join(PRUNERS), given=repr(self.pruner)))
        if self.metric not in ("val_accuracy", "val_loss"):
            raise SweepError(_("metric must be val_accuracy or val_loss, got {given}").format(given=repr(self.metric)))
        if not isinstance(self.n_trials, int) or not 1 <= self.n_trials <= MAX_TRIALS:
            raise SweepError(_("trials must be a whole number from 1 to {max}, got {given}").format(
                max=MAX_TRIALS, given=repr(self.n_trials)))
        if self.timeout_s is not None and not (math.isfinite(self.timeout_s) and self.timeout_s > 0):
            raise SweepError(_("the time budget must be a positive number of seconds, got {given}").format(
                given=repr(self.timeout_s)))
        if not self.dimensions:
            raise SweepError(_("choose at least one setting to vary"))
        names = [d.name for d in self.dimensions]
        if len(set(names)) != len(names):
            raise SweepError(_("each setting may be varied once"))
        for dim in self.dimensions:
            dim.check()
        return self

    def grid_size(self) -> int:
        return math.prod(len(d.grid_values()) for d in self.dimensions)

    def trials_to_run(self) -> int:
        """A grid search runs each point once: never more trials than the grid has points."""
        return min(self.n_trials, self.grid_size()) if self.sampler == "grid" else self.n_trials

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepPlan:
        dims = tuple(Dimension(**{**d, "choices": tuple(d.get("choices", ()))}) for d in data["dimensions"])
        return cls(**{**data, "dimensions": dims}).check()

    def grid_points(self) -> list[dict[str, Any]]:
        """The points of a grid search, in a seeded random order (a budget smaller than the grid still
        spreads over it). They are enqueued in the study, so each worker takes the next one exactly once;
        Optuna's GridSampler cannot be used with ask-and-tell (it calls Study.stop, allowed only inside
        `optimize`)."""
        names = [d.name for d in self.dimensions]
        points = [dict(zip(names, values, strict=True))
                  for values in itertools.product(*(d.grid_values() for d in self.dimensions))]
        order = np.random.default_rng(self.seed).permutation(len(points))
        return [points[i] for i in order[:self.trials_to_run()]]

    def make_sampler(self) -> optuna.samplers.BaseSampler:
        if self.sampler in ("random", "grid"):  # grid: every trial was enqueued, the sampler is never asked
            return optuna.samplers.RandomSampler(seed=self.seed)
        return optuna.samplers.TPESampler(seed=self.seed, n_startup_trials=min(5, max(self.n_trials // 3, 1)))

    def make_pruner(self, max_epochs: int) -> optuna.pruners.BasePruner:
        if self.pruner == "median":  # stop a trial whose metric is worse than the median of earlier trials
            return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=2)
        if self.pruner == "hyperband":
            return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(max_epochs, 2))
        return optuna.pruners.NopPruner()


def compare_optimizers_plan(seed: int = 0) -> SweepPlan:
    """The article's §2.5 made visible: SGD, Adam, AdamW and RMSprop on the same model, data and seed."""
    return SweepPlan(dimensions=(Dimension("optimizer", "choice", choices=OPTIMIZERS),), sampler="grid",
                     pruner="none", n_trials=len(OPTIMIZERS), seed=seed).check()


# ---- trial parameters -> a run ----------------------------------------------------------------------------

def _scaled(layer: LayerSpec, key: str, factor: float) -> LayerSpec:
    return LayerSpec(layer.type, {**layer.params, key: max(1, int(round(layer.params[key] * factor)))})


def apply_params(spec: ModelSpec, config: TrainConfig, params: dict[str, Any]) -> tuple[ModelSpec, TrainConfig]:
    """The model and settings of one trial: the base ones with the trial's parameters applied."""
    training = {k: params[k] for k in ("optimizer", "learning_rate", "batch_size", "epochs", "schedule")
                if k in params}
    config = dataclasses.replace(config, **training).validate()
    layers = []
    for layer in spec.layers:
        if "dropout" in params and layer.type == "Dropout":
            layer = LayerSpec(layer.type, {**layer.params, "rate": float(params["dropout"])})
        elif "width" in params and layer.type == "Dense":
            layer = _scaled(layer, "units", params["width"])
        elif "width" in params and layer.type == "Conv2D":
            layer = _scaled(layer, "filters", params["width"])
        layers.append(layer)
    changed = {k: v for k, v in params.items() if k in ("dropout", "width")}
    name = spec.name if not changed else f"{spec.name} ({', '.join(f'{k} {v:.3g}' for k, v in changed.items())})"
    return ModelSpec(tuple(layers), name=name[:80], notes=spec.notes), config


# ---- storage and studies -----------------------------------------------------------------------------------

def journal_path(runs_root: Path) -> Path:
    return Path(runs_root) / "optuna.journal"


def open_storage(where: str | Path) -> optuna.storages.BaseStorage:
    """A storage URL (postgresql://…, mysql://…) as Optuna opens it; anything else is a journal file path."""
    text = str(where)
    if "://" in text:
        return optuna.storages.RDBStorage(text)
    Path(text).parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(text))


def create_study(storage: optuna.storages.BaseStorage, name: str, plan: SweepPlan, base: dict[str, Any]) -> str:
    """A new study holding its plan and base (dataset, model spec, settings) so any worker can run trials."""
    plan.check()
    name = name.strip()
    if not name or len(name) > 80:
        raise SweepError(_("a sweep name needs 1 to 80 characters"))
    if name in optuna.study.get_all_study_names(storage):
        raise SweepError(_("a sweep named {name} exists already: choose another name").format(name=repr(name)))
    study = optuna.create_study(study_name=name, storage=storage, direction=plan.direction)
    study.set_user_attr("plan", plan.to_dict())
    study.set_user_attr("base", base)
    study.set_user_attr("created", time.time())
    if plan.sampler == "grid":
        for point in plan.grid_points():
            study.enqueue_trial(point)
    return name


def load_study(storage: optuna.storages.BaseStorage, name: str) -> tuple[optuna.Study, SweepPlan, dict[str, Any]]:
    probe = optuna.load_study(study_name=name, storage=storage)
    plan = SweepPlan.from_dict(probe.user_attrs["plan"])
    base = probe.user_attrs["base"]
    epochs = max(_max_epochs(plan, base), 1)
    study = optuna.load_study(study_name=name, storage=storage, sampler=plan.make_sampler(),
                              pruner=plan.make_pruner(epochs))
    return study, plan, base


def _max_epochs(plan: SweepPlan, base: dict[str, Any]) -> int:
    dim = next((d for d in plan.dimensions if d.name == "epochs"), None)
    return int(dim.high) if dim is not None else int(base["config"].get("epochs", 10))


def _started(study: optuna.Study) -> int:
    """Trials asked so far by any worker (enqueued grid points wait and do not count)."""
    waiting = (optuna.trial.TrialState.WAITING,)
    return len(study.get_trials(deepcopy=False)) - len(study.get_trials(deepcopy=False, states=waiting))


def study_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """One row per trial for a table: number, state, value, run id, parameters, epochs reported."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        rows.append({"trial": t.number, "state": t.state.name.lower(), "value": t.value,
                     "epochs": len(t.intermediate_values), "run": t.user_attrs.get("run_id", ""),
                     **{f"param {k}": v for k, v in t.params.items()}})
    return rows


def state_counts(study: optuna.Study) -> dict[str, int]:
    """Trials by state (running, complete, pruned, fail, waiting)."""
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    return counts


def plot_study(study: optuna.Study, *, include_pruned: bool) -> optuna.Study:
    """An in-memory copy for Optuna's plots: without pruned trials, or with each pruned trial counted at
    the last value it reported (Optuna's own plots leave pruned trials out of most figures). Parameters are
    named as `setting_names` names them, since Optuna writes them on the axes."""
    names = setting_names()
    copy = optuna.create_study(direction=study.direction)
    for t in study.get_trials(deepcopy=False):
        state, value, user_attrs = t.state, t.value, t.user_attrs
        if t.state == optuna.trial.TrialState.PRUNED:
            if not include_pruned or not t.intermediate_values:
                continue
            state, value = optuna.trial.TrialState.COMPLETE, t.intermediate_values[max(t.intermediate_values)]
            user_attrs = {**user_attrs, "pruned": True}
        elif t.state == optuna.trial.TrialState.WAITING:
            continue
        copy.add_trial(optuna.trial.create_trial(
            state=state, value=value, params={names.get(k, k): v for k, v in t.params.items()},
            distributions={names.get(k, k): d for k, d in t.distributions.items()},
            intermediate_values=t.intermediate_values, user_attrs=user_attrs))
    return copy


def fail_orphans(study: optuna.Study, manager: JobManager, workspace: str | None = None) -> int:
    """Trials left 'running' by a process that is gone (a server restart) are told failed, so a resumed
    sweep counts and plots them honestly; returns how many."""
    orphans = 0
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        snap = manager.snapshot(t.user_attrs.get("run_id", ""), workspace)
        if snap is None or not snap.active:
            study.tell(t.number, state=optuna.trial.TrialState.FAIL)
            orphans += 1
    return orphans


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The best COMPLETE trial (Optuna never counts pruned ones as best; neither do we)."""
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not done:
        return None
    pick = min if study.direction == optuna.study.StudyDirection.MINIMIZE else max
    return pick(done, key=lambda t: t.value)


# ---- the driver: asks Optuna, submits runs, reports epochs, tells outcomes ------------------------------

@dataclass
class _InFlight:
    trial: optuna.trial.Trial
    run_id: str
    pruned_at: int | None = None
    values: list[float] = field(default_factory=list)


class SweepDriver:
    """Runs one study's trials through a JobManager, `parallel` at a time, until the plan's budget is spent,
    the time budget runs out or `stop()` is called. A daemon thread: it outlives the page that started it."""

    def __init__(self, manager: JobManager, storage: optuna.storages.BaseStorage, study_name: str,
                 dataset: Any, *, workspace: str | None = None, parallel: int = 1, poll_s: float = 0.2) -> None:
        self.manager, self.workspace, self.dataset = manager, workspace, dataset
        self.study, self.plan, self.base = load_study(storage, study_name)
        self.spec = ModelSpec.from_dict(self.base["spec"])
        self.config = TrainConfig.from_dict(self.base["config"]).validate()
        self.parallel, self.poll_s = max(1, parallel), poll_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._in_flight: dict[str, _InFlight] = {}
        self._unsubmitted: optuna.trial.Trial | None = None  # asked, but the queue had no room yet
        self.error: str | None = None
        self.language = language()  # of the visitor who started it: run labels and prune reasons are saved in it
        self.started_at = time.monotonic()
        self._thread = threading.Thread(target=self._loop, daemon=True, name=f"sweep-{study_name[:20]}")

    @property
    def name(self) -> str:
        return self.study.study_name

    def start(self) -> SweepDriver:
        self._thread.start()
        return self

    def stop(self) -> None:
        """No new trials; trials in flight are stopped (each ends as a failed trial, its run 'stopped')."""
        self._stop.set()
        with self._lock:
            run_ids = list(self._in_flight)
        for run_id in run_ids:
            self.manager.stop(run_id, self.workspace)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    # ---- the loop ----
    def _loop(self) -> None:
        set_language(self.language)
        try:
            while True:
                self._collect()
                while not self._stop.is_set() and (self._unsubmitted is not None or self._may_start()):
                    self._start_trial()
                    if self._unsubmitted is not None:  # no room in the queue now: try again next round
                        break
                with self._lock:
                    idle = not self._in_flight
                    flying = list(self._in_flight)
                if idle and (self._stop.is_set() or (self._unsubmitted is None and not self._may_start())):
                    break
                # woken as soon as a trial's run ends (no polling delay); poll_s bounds the wait for the rest
                self.manager.wait_ended(flying, self.poll_s)
            if self._unsubmitted is not None:  # stopped while it waited for room in the queue
                self.study.tell(self._unsubmitted, state=optuna.trial.TrialState.FAIL)
        except Exception as exc:  # noqa: BLE001 - a sweep thread must never take the app down
            _log.exception("sweep %s failed", self.name)
            self.error = f"{type(exc).__name__}: {exc}"
            self.stop()

    def _may_start(self) -> bool:
        """Room for one more trial: `parallel` training plus one queued behind them, so a training process that
        ends a trial finds the next one queued and trains it too (core.worker: a sweep of short trials would
        otherwise wait for a TensorFlow import between every two)."""
        with self._lock:
            if len(self._in_flight) >= self.parallel + 1:
                return False
        if self.plan.timeout_s is not None and time.monotonic() - self.started_at > self.plan.timeout_s:
            return False
        return _started(self.study) < self.plan.trials_to_run()

    def _start_trial(self) -> None:
        trial = self._unsubmitted or self.study.ask({d.name: d.distribution() for d in self.plan.dimensions})
        spec, config = apply_params(self.spec, self.config, trial.params)
        request = TrainRequest(self.dataset, spec, config, group=f"sweep:{self.name}",
                               label=_("{sweep} · trial {number}").format(sweep=self.name, number=trial.number),
                               workspace=self.workspace,
                               trial={"study": self.name, "number": trial.number, "params": trial.params})
        flight: _InFlight | None = None

        def on_epoch(record: dict[str, Any]) -> str | None:
            return self._report(flight, record) if flight is not None else None

        try:
            run_id = self.manager.submit_many([request], epoch_hook=on_epoch)[0]
        except QueueFullError:  # other visitors' runs fill the queue: keep the trial, try again next round
            self._unsubmitted = trial
            return
        self._unsubmitted = None
        trial.set_user_attr("run_id", run_id)
        flight = _InFlight(trial, run_id)
        with self._lock:
            self._in_flight[run_id] = flight

    def _report(self, flight: _InFlight, record: dict[str, Any]) -> str | None:
        """Called by the job engine after each epoch: report it; a reason to prune, or None."""
        value = record.get(self.plan.metric)
        if record.get("partial") or value is None or flight.pruned_at is not None:
            return None
        flight.values.append(float(value))
        flight.trial.report(float(value), step=int(record["epoch"]))
        if flight.trial.should_prune():
            flight.pruned_at = int(record["epoch"])
            return self._prune_reason(flight.pruned_at, float(value))
        return None

    def _prune_reason(self, epoch: int, value: float) -> str:
        """The pruned run's message, in the sweep's language: the job engine calls the epoch hook in a thread
        of its own, whose language is switched for this text only."""
        with language_of(self.language):
            return _("pruned by the {pruner} pruner after epoch {epoch}: {metric} {value} is worse than the other "
                     "trials at that epoch").format(pruner=method_names()[self.plan.pruner], epoch=epoch,
                                                    metric=self.plan.metric, value=f"{value:.4f}")

    def _collect(self) -> None:
        """Tell Optuna the outcome of every trial whose run has ended."""
        with self._lock:
            flights = list(self._in_flight.values())
        for flight in flights:
            snap = self.manager.snapshot(flight.run_id, self.workspace)
            state = snap.state if snap is not None else "failed"
            if state in ACTIVE_STATES:
                continue
            if state == "pruned":
                self.study.tell(flight.trial, state=optuna.trial.TrialState.PRUNED)
            elif state == "completed" and flight.values:
                self.study.tell(flight.trial, flight.values[-1])
            else:  # stopped, diverged, failed: no value that could be compared with the others
                flight.trial.set_user_attr("outcome", f"{state}: {snap.message if snap else ''}"[:300])
                self.study.tell(flight.trial, state=optuna.trial.TrialState.FAIL)
            with self._lock:
                del self._in_flight[flight.run_id]


# ---- a worker on another machine (or a second process here) --------------------------------------------

def main(argv: list[str] | None = None) -> int:
    """`python -m core.sweeps --storage URL_OR_JOURNAL --study NAME --runs DIR`: run trials of an existing
    study here until its budget is spent. Works for bundled and Keras datasets (uploads stay in the app)."""
    parser = argparse.ArgumentParser(prog="python -m core.sweeps", description=main.__doc__)
    parser.add_argument("--storage", required=True, help="journal file path or Optuna storage URL")
    parser.add_argument("--study", required=True)
    parser.add_argument("--runs", default="runs", help="run store folder for this worker's trials")
    args = parser.parse_args(argv)
    from core.datasets import load

    storage = open_storage(args.storage)
    _, _, base = load_study(storage, args.study)
    ref = base["dataset"]
    if ref.get("upload"):
        parser.error("this study trains on an uploaded file: only the app that holds it can run its trials")
    dataset = load(ref["name"], ref.get("subset"), ref.get("seed", 0), download=False)
    manager = JobManager(RunStore(args.runs), runner="thread")
    driver = SweepDriver(manager, storage, args.study, dataset).start()
    driver.join()
    manager.shutdown()
    print(f"study {args.study}: {len(driver.study.trials)} trials; {driver.error or 'ok'}")
    return 1 if driver.error else 0


if __name__ == "__main__":
    raise SystemExit(main())
