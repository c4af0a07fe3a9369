"""JobManager: a bounded queue of training runs served by background workers (no Streamlit here).

Training must outlive the Streamlit script run that started it: a click, a page change or a reload stops
a script run at its next `st.*` call. So the page only submits a `TrainRequest`; a worker thread owned by
the process-wide manager hands it to its runner, and the page polls `snapshot()`.

Each worker thread has a runner (core.worker): by default a warm training process, so an out-of-memory kill
or a crash costs only that run, memory returns to the operating system after each run, and "force stop" can
end a fit that does not stop. The manager keeps the queue, the quotas (per server and per workspace) and the
in-memory state; the runner only trains. On a shared server each request names its workspace and every
call that reads or changes a job checks it, so one visitor cannot see or stop another's runs.

Messages about a run (queued, stopping, how it ended, why it failed) are written, in status.json too, in the
language of the request (`TrainRequest.language`: by default that of the code that made it, so a page's
request carries its visitor's language and a sweep's that of the visitor who started the sweep). Worker
threads and training processes have no visitor, so they switch to the request's language for its messages
(core.i18n.language_of). A run shows the words it was written in, like a log, whoever reads it later.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from core.datasets import dataset_fingerprint, split_used
from core.i18n import _, language, language_of
from core.runs import ACTIVE_STATES, RunInfo, RunStore, plain_reason
from core.training import LiveProgress, TrainConfig, check_fine_tune, library_versions
from core.worker import ProcessRunner, ThreadRunner, reuse_key
from core.workspaces import workspace_root, workspace_roots

__all__ = ["JobManager", "JobSnapshot", "QueueFullError", "TrainRequest", "dataset_fingerprint", "run_config"]

_log = logging.getLogger(__name__)
_DEDUPE_S = 5.0  # a second submission with the same idempotency key within this window is a double click
_KEEP_FINISHED = 32  # finished jobs kept in memory for snapshots; older ones are read from the store
_MANAGERS: weakref.WeakSet[JobManager] = weakref.WeakSet()  # every manager of this process
_RUNNERS = {"process": ProcessRunner, "thread": ThreadRunner}  # where fits run: see core.worker


class QueueFullError(RuntimeError):
    """Not enough room in the queue; nothing was queued. The message says so and what to do; `free` is how
    many runs would still fit now and `capacity` how many may be queued or running at once."""

    def __init__(self, message: str, *, free: int = 0, capacity: int = 0) -> None:
        super().__init__(message)
        self.free, self.capacity = free, capacity


@dataclass(frozen=True, eq=False)
class TrainRequest:
    """One run to train: data, model spec, settings, and optionally an explicit split (e.g. a CV fold)."""

    dataset: Any  # core.datasets.Dataset
    spec: Any  # core.specs.ModelSpec (anything with to_dict() that build_model accepts)
    config: TrainConfig
    split: Any | None = None  # core.datasets.Split; None: split_dataset with the config's seed and fractions
    split_info: dict[str, Any] | None = None  # how `split` was made, stored in config.json (e.g. a CV fold)
    group: str | None = None  # groups runs (e.g. the folds of one cross-validation)
    label: str | None = None  # a short name for the user
    workspace: str | None = None  # whose run it is on a shared server; None: the one local lab
    trial: dict[str, Any] | None = None  # a sweep trial: {"study", "number", "params"} (core.sweeps)
    language: str = field(default_factory=language)  # of the run's messages (core.i18n): its maker's by default


@dataclass(frozen=True)
class JobSnapshot:
    """What the page shows about one job, copied under a lock (safe to read in any thread)."""

    run_id: str
    state: str  # queued | running | completed | stopped | pruned | diverged | failed | interrupted
    epoch: int  # 1-based epoch in progress (0 before the first)
    epochs: int  # epochs requested
    batch: int  # batches done in the current epoch
    batches_per_epoch: int
    samples_per_s: float
    eta_s: float | None  # seconds left, estimated from the pace so far
    lr: float | None  # current learning rate
    message: str
    records: list[dict[str, Any]] = field(repr=False)  # epoch records so far (metrics.jsonl format)
    batch_losses: list[tuple[int, float]] = field(repr=False)  # recent (step, loss), every batch
    queue_position: int | None = None  # 1 = next to start; None when not waiting
    label: str | None = None
    epoch_ended_at: float | None = None  # time.time() when the newest epoch record was added
    group: str | None = None  # e.g. the cross-validation the run belongs to
    stop_requested_s: float | None = None  # seconds since Stop was pressed, while the run is still active
    can_force: bool = False  # the runner can end the training process now ("Force stop")
    stop_within_s: float | None = None  # measured seconds per step call: how long Stop takes to land

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def fraction(self) -> float:
        """Share of all batches done, 0..1, for a progress bar."""
        if self.state not in ACTIVE_STATES:
            return 1.0
        total = self.epochs * max(self.batches_per_epoch, 1)
        done = max(self.epoch - 1, 0) * self.batches_per_epoch + self.batch
        return min(max(done / total, 0.0), 1.0) if self.batches_per_epoch else 0.0


EpochHook = Callable[[dict[str, Any]], "str | None"]  # an epoch record -> why to prune the run, or None


class _HookedProgress(LiveProgress):
    """The job's live progress, with a hook called on every epoch record (a sweep's pruner): when it gives
    a reason, the run is stopped as after Stop and ends 'pruned' with that reason."""

    def __init__(self, epochs: int, hook: EpochHook | None) -> None:
        super().__init__(epochs)
        self.hook = hook
        self.prune_reason: str | None = None

    def add_epoch(self, record: dict[str, Any]) -> None:
        super().add_epoch(record)
        if self.hook is None or self.prune_reason is not None:
            return
        try:
            reason = self.hook(record)
        except Exception:  # noqa: BLE001 - a failing hook must not fail the run it observes
            _log.exception("epoch hook failed")
            return
        if reason:
            self.prune_reason = reason
            self.request_stop()


class _Job:
    def __init__(self, run_id: str, request: TrainRequest, store: RunStore,
                 epoch_hook: EpochHook | None = None) -> None:
        self.run_id = run_id
        self.request = request
        self.store = store  # the run store of the request's workspace
        self.progress = _HookedProgress(request.config.total_epochs, epoch_hook)
        self.force = threading.Event()  # "force stop": the runner ends the training process
        self.stop_requested_at: float | None = None  # time.monotonic() of the first Stop
        self.state = "queued"
        with self.words():
            self.message = _("waiting for a worker")
        self.finished_at: float | None = None
        self.saved = True  # False when the final status could not be written to status.json

    def words(self) -> AbstractContextManager[None]:
        """A block whose texts are in the run's language (see the module docstring)."""
        return language_of(self.request.language)


def run_config(request: TrainRequest) -> dict[str, Any]:
    """config.json of a run (the contract the Evaluate and Runs pages read)."""
    ds, cfg = request.dataset, request.config
    if request.split_info is not None:
        split = dict(request.split_info)
    elif request.split is not None:
        split = {"kind": "explicit", "seed": int(getattr(request.split, "seed", cfg.seed))}
    else:  # the split the worker makes from the settings: official where the data has one and it was asked for
        kind = split_used(ds, cfg.split)
        split = {"kind": kind, "seed": cfg.seed, "val_fraction": cfg.val_fraction}
        if kind == "pooled":
            split["test_fraction"] = cfg.test_fraction
    config: dict[str, Any] = {
        "dataset": {"name": ds.name, "subset": getattr(ds, "subset", None), "seed": getattr(ds, "seed", 0),
                    "kind": ds.kind, "input_shape": list(ds.input_shape), "class_names": list(ds.class_names),
                    "n_classes": ds.n_classes, "source": getattr(ds, "source", ""),
                    "fingerprint": dataset_fingerprint(ds)},
        "split": split,
        "model": request.spec.to_dict(),
        "training": cfg.to_dict(),
        "versions": library_versions(),
        # the worker replaces this with the strategy it really uses (MirroredStrategy, replicas, …)
        "strategy": {"name": "default", "replicas": 1, "global_batch": cfg.batch_size},
    }
    if request.group is not None:
        config["group"] = request.group
    if request.label is not None:
        config["label"] = request.label
    if request.trial is not None:
        config["trial"] = request.trial
    return config


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class JobManager:
    """Owns the queue and the workers; every method is thread-safe and returns quickly.

    `max_concurrent` runs train at a time; `max_queue` more may wait beyond the free workers. So at most
    max_concurrent + max_queue runs are queued or running at once, counted from the jobs' states: a job a
    free worker is about to take is not "waiting", however the workers are scheduled.

    The in-memory state of a job is the truth while this process lives: when status.json cannot be written
    (disk full, read-only) `snapshot` and `overlay` still give the outcome the worker knows.
    """

    def __init__(self, store: RunStore | None = None, max_concurrent: int = 1, max_queue: int = 8, *,
                 build_model: Callable[[Any, Any], Any] | None = None, runner: str = "thread",
                 max_per_workspace: int | None = None) -> None:
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be >= 1, got {max_concurrent}")
        if max_queue < 0:
            raise ValueError(f"max_queue must be >= 0, got {max_queue}")
        if runner not in _RUNNERS:
            raise ValueError(f"runner must be one of {', '.join(_RUNNERS)}, got {runner!r}")
        if max_per_workspace is not None and max_per_workspace < 1:
            raise ValueError(f"max_per_workspace must be >= 1, got {max_per_workspace}")
        self.store = store if store is not None else RunStore()
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self.max_per_workspace = max_per_workspace  # queued + running runs one workspace may have
        self.runner = runner
        self._build_model = build_model
        self._cond = threading.Condition()
        self._jobs: dict[str, _Job] = {}
        self._pending: deque[str] = deque()
        self._running: set[str] = set()
        self._keys: dict[str, tuple[list[str], float]] = {}
        self._workers: list[threading.Thread] = []
        self._runners: list[Any] = []  # one per worker thread (core.worker)
        self._closed = False
        self._unsaved: dict[str, tuple[str, str]] = {}  # run id -> (state, message) not written to disk
        self.store_problem = self.store.check_writable()  # '' or why runs cannot be saved, in words
        if self.store_problem:
            _log.warning("training is off: %s", self.store_problem)
        self.interrupted = self._recover()
        _MANAGERS.add(self)

    # ---- start-up ---------------------------------------------------------------------------------
    def _recover(self) -> list[str]:
        """Runs left queued/running by a dead process become 'interrupted' (live ones are left alone)."""
        live: set[str] = set()
        for manager in list(_MANAGERS):
            live.update(manager.active_run_ids(every_workspace=True))
        me = (os.getpid(), socket.gethostname())
        orphans: dict[str, str] = {}
        changed: list[str] = []
        stores = [self.store, *(RunStore(root) for root in workspace_roots(self.store.root))]
        for store in stores:
            for info in store.list_runs():
                if info.status in ACTIVE_STATES:
                    try:
                        status = store.read_status(info.run_id)
                    except (OSError, ValueError):
                        continue
                    owner = (status.get("pid"), status.get("host"))
                    if owner != me and owner[1] == me[1] and _pid_alive(owner[0]):
                        live.add(info.run_id)  # another app process on this machine is training it
                    else:
                        orphans[info.run_id] = info.status
            try:
                changed += store.mark_interrupted(live)
            except OSError:
                pass
        for run_id, was in orphans.items():  # e.g. a read-only store: say so from memory instead
            if run_id not in changed:
                self._unsaved[run_id] = ("interrupted", _("the app stopped while this run was {state} (this could "
                                                          "not be saved in status.json)").format(state=was))
        return changed

    # ---- the public API ---------------------------------------------------------------------------
    def submit(self, request: TrainRequest, idempotency_key: str | None = None) -> str:
        """Queue a run and return its id; the run folder exists (status queued) when this returns.

        The same idempotency_key within a few seconds returns the first run's id (a double click).
        Raises TrainConfigError for bad settings, QueueFullError when max_concurrent + max_queue runs are
        already queued or running, RunStoreError when the run folder cannot be written (nothing is left).
        """
        return self.submit_many([request], idempotency_key)[0]

    def submit_many(self, requests: Iterable[TrainRequest], idempotency_key: str | None = None, *,
                    epoch_hook: EpochHook | None = None) -> list[str]:
        """Queue several runs together or none of them (e.g. every fold of a cross-validation).

        `epoch_hook` is called in this process with every epoch record of these runs; a text it returns
        stops that run, which ends 'pruned' with the text as its message (core.sweeps).

        Room for all is checked and every run folder created under the lock, so concurrent submits cannot
        take the places in between; if one run cannot be created, those already created are removed.
        """
        requests = list(requests)
        if not requests:
            raise ValueError("nothing to queue")
        for request in requests:
            request.config.validate()
            check_fine_tune(request.spec, request.config)
        workspaces = {r.workspace for r in requests}
        if len(workspaces) != 1:
            raise ValueError("runs queued together must belong to one workspace")
        workspace = workspaces.pop()
        configs = [run_config(r) for r in requests]
        with self._cond:
            if self._closed:
                raise RuntimeError("the job manager is shut down")
            now = time.monotonic()
            self._keys = {k: v for k, v in self._keys.items() if now - v[1] < _DEDUPE_S}
            if idempotency_key is not None and idempotency_key in self._keys:
                return list(self._keys[idempotency_key][0])
            self._check_room(len(requests), workspace)
            store = self.store_for(workspace)
            run_ids = self._create_runs(store, requests, configs)
            for run_id, request in zip(run_ids, requests, strict=True):
                self._jobs[run_id] = _Job(run_id, request, store, epoch_hook)
                self._pending.append(run_id)
            if idempotency_key is not None:
                self._keys[idempotency_key] = (run_ids, now)
            self._start_workers()
            self._cond.notify_all()
        return run_ids

    def store_for(self, workspace: str | None) -> RunStore:
        """The run store of a workspace (None: the local lab's, `self.store`); made per call, not kept, so
        that many visitors cost no memory here."""
        return self.store if workspace is None else RunStore(workspace_root(self.store.root, workspace))

    def _check_room(self, wanted: int, workspace: str | None = None) -> None:
        """Called under the lock: QueueFullError unless `wanted` more runs fit (see the class docstring)."""
        capacity = self.max_concurrent + self.max_queue
        active = sum(1 for job in self._jobs.values() if job.state in ACTIVE_STATES)
        free = max(capacity - active, 0)
        if self.max_per_workspace is not None:
            mine = sum(1 for job in self._jobs.values()
                       if job.state in ACTIVE_STATES and job.request.workspace == workspace)
            if wanted > self.max_per_workspace - mine:
                raise QueueFullError(
                    _("your workspace already has {mine} runs queued or training; at most {most} at a time on this "
                      "shared server (so one visitor cannot fill the queue for everyone): wait for one to finish or "
                      "stop one").format(mine=mine, most=self.max_per_workspace), free=0,
                    capacity=self.max_per_workspace)
        if wanted <= free:
            return
        waiting = max(active - self.max_concurrent, 0)
        if wanted == 1:
            message = _("the queue is full: {waiting} runs are waiting (at most {most}) and {training} training; wait "
                        "for one to start or remove a queued run").format(waiting=waiting, most=self.max_queue,
                                                                          training=active - waiting)
        elif wanted > capacity:
            message = _("{wanted} runs can never be queued together: at most {capacity} may be queued or running at "
                        "once ({training} training + {waiting} waiting); nothing was queued").format(
                wanted=wanted, capacity=capacity, training=self.max_concurrent, waiting=self.max_queue)
        else:
            message = _("{wanted} runs do not fit in the queue: room for {free} more ({active} queued or running, at "
                        "most {capacity}); nothing was queued: wait for runs to finish").format(
                wanted=wanted, free=free, active=active, capacity=capacity)
        raise QueueFullError(message, free=free, capacity=capacity)

    def _create_runs(self, store: RunStore, requests: Sequence[TrainRequest],
                     configs: Sequence[dict[str, Any]]) -> list[str]:
        """Called under the lock: one queued run folder per request (and its config), all or none."""
        created: list[str] = []
        try:
            for request, config in zip(requests, configs, strict=True):
                with language_of(request.language):
                    waiting = _("waiting for a worker")
                created.append(store.create_run(config, waiting, pid=os.getpid(), host=socket.gethostname()))
        except BaseException:
            for run_id in created:
                try:
                    store.delete_run(run_id)
                except OSError:
                    _log.warning("could not remove run %s of a submit that failed", run_id, exc_info=True)
                    self._unsaved[run_id] = ("failed", _("never queued: the submit it belonged to failed"))
            raise
        return created

    def _own(self, run_id: str, workspace: str | None) -> _Job | None:
        """Called under the lock: the job, if it exists and belongs to `workspace`."""
        job = self._jobs.get(run_id)
        return job if job is not None and job.request.workspace == workspace else None

    def stop(self, run_id: str, workspace: str | None = None) -> bool:
        """Stop a running job after its current batch, or take a queued one off the queue.

        Only the job's own workspace may stop it (another visitor's run id gets False)."""
        with self._cond:
            job = self._own(run_id, workspace)
            if job is None or job.state not in ACTIVE_STATES:
                return False
            if job.stop_requested_at is None:
                job.stop_requested_at = time.monotonic()
            job.progress.request_stop()
            with job.words():
                if job.state == "queued" and run_id in self._pending:
                    self._pending.remove(run_id)
                    self._finish(job, "stopped", _("stopped before it started (taken off the queue)"))
                elif within := job.progress.read().get("stop_within_s"):
                    job.progress.update(message=_("stopping after the steps in progress (within about {seconds} s)…")
                                        .format(seconds=f"{within:.1f}"))
                else:
                    job.progress.update(message=_("stopping after the steps in progress…"))
        return True

    def force_stop(self, run_id: str, workspace: str | None = None) -> bool:
        """End a running job's training process now (Stop did not land): the run ends 'stopped' without
        a saved model. False when the job is not running or its runner cannot be killed (threads)."""
        with self._cond:
            job = self._own(run_id, workspace)
            if job is None or job.state != "running" or self.runner != "process":
                return False
            job.progress.request_stop()
            job.force.set()
            with job.words():
                job.progress.update(message=_("force-stopping: ending the training process…"))
        return True

    def snapshot(self, run_id: str, workspace: str | None = None) -> JobSnapshot | None:
        """The live state of a job this manager knows; None for other runs (read those from the store)
        and for another workspace's jobs."""
        with self._cond:
            job = self._own(run_id, workspace)
            if job is None:
                return None
            state, message = job.state, job.message
            position = self._pending.index(run_id) + 1 if run_id in self._pending else None
            asked = job.stop_requested_at
        stop_s = time.monotonic() - asked if asked is not None and state in ACTIVE_STATES else None
        live = job.progress.read()
        if state == "running" and live.get("message"):
            message = live["message"]
        return JobSnapshot(run_id=run_id, state=state, epoch=live["epoch"], epochs=live["epochs"],
                           batch=live["batch"], batches_per_epoch=live["batches_per_epoch"],
                           samples_per_s=float(live["samples_per_s"] or 0.0), eta_s=live["eta_s"],
                           lr=live["lr"], message=message, records=live["records"], batch_losses=live["batches"],
                           queue_position=position, label=job.request.label,
                           epoch_ended_at=live["epoch_ended_at"], group=job.request.group,
                           stop_requested_s=stop_s, can_force=self.runner == "process" and state == "running",
                           stop_within_s=live.get("stop_within_s"))

    def live_status(self, run_id: str, workspace: str | None = None) -> tuple[str, str] | None:
        """(state, message) this process knows for a run of `workspace`, or None: prefer it to status.json,
        which may not have been writable."""
        with self._cond:
            job = self._own(run_id, workspace)
            if job is None:
                if run_id in self._jobs or not (root := self.store_for(workspace).root / run_id).is_dir() \
                        or root.name != run_id:
                    return None  # another workspace's run
                return self._unsaved.get(run_id)
            state, message = job.state, job.message
        if state == "running" and (live := job.progress.read().get("message")):
            message = live
        return state, message

    def overlay(self, infos: Iterable[RunInfo], workspace: str | None = None) -> list[RunInfo]:
        """Runs as listed from a workspace's store, with the state and message this process knows where
        it differs."""
        root = self.store_for(workspace).root
        out = []
        for info in infos:
            known = self.live_status(info.run_id, workspace) if info.path == root / info.run_id else None
            if known is not None and known != (info.status, info.message):
                info = dataclasses.replace(info, status=known[0], message=known[1])
            out.append(info)
        return out

    def queue_position(self, run_id: str) -> int | None:
        """1 for the next run to start; None when the run is not waiting."""
        with self._cond:
            return self._pending.index(run_id) + 1 if run_id in self._pending else None

    def active_run_ids(self, workspace: str | None = None, *, every_workspace: bool = False) -> list[str]:
        """A workspace's running runs first, then its queued ones in order (every workspace's if asked)."""
        with self._cond:
            ids = [*sorted(self._running), *self._pending]
            if every_workspace:
                return ids
            return [i for i in ids if self._jobs[i].request.workspace == workspace]

    def wait_ended(self, run_ids: Iterable[str], timeout: float) -> bool:
        """Block until one of `run_ids` has ended (or is unknown here), at most `timeout` seconds; whether one has.
        A sweep's driver waits here rather than polling, so it tells Optuna and queues the next trial at once."""
        run_ids = list(run_ids)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if any((job := self._jobs.get(r)) is None or job.state not in ACTIVE_STATES for r in run_ids):
                    return True
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    return False
                self._cond.wait(left)

    def training_pids(self) -> list[int]:
        """Process ids of the training processes busy with a run now (process runner only)."""
        return [pid for r in list(self._runners) if (pid := getattr(r, "training_pid", lambda: None)()) is not None]

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop every job (queued ones become 'interrupted') and wait for the workers to finish."""
        with self._cond:
            self._closed = True
            for run_id in list(self._pending):
                job = self._jobs[run_id]
                with job.words():
                    self._finish(job, "interrupted", _("the app shut down before this run started"))
            self._pending.clear()
            for run_id in self._running:
                self._jobs[run_id].progress.request_stop()
            self._cond.notify_all()
            workers = list(self._workers)
        deadline = time.monotonic() + timeout
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        for runner in list(self._runners):
            runner.close()  # ends training processes that did not stop in time, and the warm ones

    # ---- workers ----------------------------------------------------------------------------------
    def _start_workers(self) -> None:
        """Called under the lock: start worker threads lazily, up to max_concurrent, each with its runner
        (a warm training process, or the thread itself)."""
        self._workers = [w for w in self._workers if w.is_alive()]
        while len(self._workers) < self.max_concurrent:
            runner = _RUNNERS[self.runner](self._build_model)
            runner.more_work = lambda: bool(self._pending)  # the next run: warm its process now
            runner.continues = self._continues  # a sweep's next trial: train it in the same process
            self._runners.append(runner)
            worker = threading.Thread(target=self._worker_loop, args=(runner,), daemon=True,
                                      name=f"keras-lab-worker-{len(self._workers)}")
            self._workers.append(worker)
            worker.start()

    def _continues(self, request: TrainRequest) -> bool:
        """Whether the next queued run is a trial of the same sweep as `request` (core.worker.reuse_key)."""
        key = reuse_key(request)
        with self._cond:
            return key is not None and bool(self._pending) and reuse_key(self._jobs[self._pending[0]].request) == key

    def _worker_loop(self, runner: Any) -> None:
        runner.warm_up()  # a training process imports TensorFlow while the first job is being queued
        while True:
            with self._cond:
                idle = not self._pending and not self._closed
            if idle:
                runner.release_kept()  # a process kept for a sweep's next trial that did not come: end it
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                run_id = self._pending.popleft()
                job = self._jobs[run_id]
                with job.words():
                    job.state, job.message = "running", _("starting")
                self._running.add(run_id)
            try:
                self._run_job(job, runner)
            finally:
                with self._cond:
                    self._running.discard(run_id)
                    self._forget_old()

    def _run_job(self, job: _Job, runner: Any) -> None:
        """One run from start to final status, its messages in the run's language; never raises (the app stays
        up whatever happens)."""
        with job.words():
            try:
                job.store.write_status(job.run_id, "running", _("training"), pid=os.getpid(),
                                       host=socket.gethostname())
                state, message, extra = runner.run(job.store, job.run_id, job.request, job.progress, job.force)
            except OSError as exc:
                state, message, extra = "failed", _("a file could not be written or read: {reason}").format(
                    reason=plain_reason(exc)), {}
            except Exception as exc:  # noqa: BLE001 - a worker must never take the app down
                _log.exception("run %s failed", job.run_id)
                state, message, extra = "failed", f"{type(exc).__name__}: {exc}", {}
            if state == "stopped" and job.progress.prune_reason and job.stop_requested_at is None:
                state, message = "pruned", job.progress.prune_reason
            with self._cond:  # one step: a run is never seen finished and still running at once
                self._finish(job, state, message, **extra)
                self._running.discard(job.run_id)

    def _finish(self, job: _Job, state: str, message: str, **extra: Any) -> None:
        """Called under the lock, inside job.words(): record the final state in memory, then (best effort) on disk."""
        job.state, job.message, job.finished_at = state, message, time.monotonic()
        job.progress.update(message=message)
        self._cond.notify_all()  # wait_ended
        try:
            job.store.write_status(job.run_id, state, message, **extra)
        except OSError as exc:  # the disk refuses even the status: the page still shows it from memory
            job.message = _("{message} (status.json could not be saved: {reason}; after a restart this run shows "
                            "as interrupted)").format(message=message, reason=plain_reason(exc))
            job.progress.update(message=job.message)
            job.saved = False

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.finished_at is not None]
        for job in sorted(finished, key=lambda j: j.finished_at or 0)[:max(len(finished) - _KEEP_FINISHED, 0)]:
            if not job.saved:  # status.json never got it: keep the outcome (two strings) for the pages
                self._unsaved[job.run_id] = (job.state, job.message)
            del self._jobs[job.run_id]
