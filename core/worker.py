"""Where a run's `model.fit` executes: a warm worker process (the default) or a thread (tests, debugging).

A fit inside the Streamlit server shares its fate: an out-of-memory kill or a native crash in one fit
takes down every visitor's session and the queue. So the job engine hands each run to a runner:

- `ProcessRunner` keeps one spawned process (never fork once TensorFlow may be loaded) that has imported
  TensorFlow and waits for work. The parent sends the pickled request over a `multiprocessing` pipe; the
  child trains with `core.training.train_run` (writing metrics, model and predictions into the run store
  itself) and streams progress back over the same pipe; the parent replays it into the job's
  `LiveProgress`, so the page polls memory exactly as before. Stop is a `multiprocessing.Event` checked
  after every training step call; "force stop" and a dead child (SIGKILL, the OOM killer) end the run
  without taking anything else down. After each run the child exits (its memory goes back to the
  operating system) and a fresh one is started at once, so the next run finds TensorFlow already loaded.
  One exception: when the run that ends is a sweep trial and the next queued run is a trial of the same
  sweep (`ProcessRunner.continues`), the child trains that one too, up to _MAX_RUNS_PER_PROCESS runs: a
  fresh process would cost each trial a TensorFlow import (3 s, 8 s on a loaded machine) and its first
  tracing, more than a short trial's whole fit. The dataset is then not sent again and the split is made
  once (the child keeps both). A child kept this way that finds no such run next is ended and replaced
  (`release_kept`), so the memory still goes back when the sweep's queue is empty.
- `ThreadRunner` trains in the calling thread: what tests use with builders that are not picklable.

Both return `(state, message, extra)`: the final status the job manager writes. The message is in the
language of the request (TrainRequest.language, the visitor who started the run): `execute_request` sets it
for the training, in the child process too (it has the catalogs), and the job manager's worker thread for the
messages the parent writes here (a killed or force-stopped process).
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import multiprocessing as mp
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from core.i18n import _, language_of
from core.runs import RunStore, RunStoreError
from core.training import LiveProgress, train_run

__all__ = ["ProcessRunner", "ThreadRunner", "execute_request", "forced_message", "killed_message", "reuse_key"]

_log = logging.getLogger(__name__)
_POLL_S = 0.05  # how often the parent checks for progress, a stop request and a dead child
_START_TIMEOUT_S = 180.0  # a child that has not imported TensorFlow by then is considered broken
_MAX_RUNS_PER_PROCESS = 16  # runs one child may train back to back (one sweep's trials); then a fresh one
_KEEP_AFTER = ("completed", "pruned", "stopped", "diverged")  # a run that failed leaves its process ended

Outcome = tuple[str, str, dict[str, Any]]


def killed_message() -> str:
    """A run whose training process died, in the current language."""
    return _("the training process was killed (out of memory?); what it had written is kept, and the next run "
             "starts in a fresh process")


def forced_message() -> str:
    """A run ended by Force stop, in the current language."""
    return _("force-stopped: the training process was ended before it could finish the batch; the model at that "
             "point was not saved (the curves so far are kept)")


def execute_request(store: RunStore, run_id: str, request: Any, progress: LiveProgress,
                    build_model: Callable[..., Any] | None = None, splits: dict[Any, Any] | None = None) -> Outcome:
    """Train one request to its final (state, message, extra), with every message in the request's language;
    never raises: errors become 'failed'. `splits` keeps the splits made of request.dataset for later runs on
    the same dataset object (a process that trains a sweep's trials)."""
    with language_of(getattr(request, "language", None)):
        return _execute(store, run_id, request, progress, build_model, splits)


def _execute(store: RunStore, run_id: str, request: Any, progress: LiveProgress,
             build_model: Callable[..., Any] | None, splits: dict[Any, Any] | None) -> Outcome:
    try:
        split = request.split
        if split is None:
            from core.datasets import split_dataset

            cfg = request.config
            key = ("split", cfg.seed, cfg.val_fraction, cfg.split, cfg.test_fraction)
            split = splits.get(key) if splits is not None else None
            if split is None:  # seeded: the same settings give the same split
                split = split_dataset(request.dataset, seed=cfg.seed, val_fraction=cfg.val_fraction, kind=cfg.split,
                                      test_fraction=cfg.test_fraction)
                if splits is not None:
                    splits[key] = split
        if getattr(split, "preparation", None) is not None:  # tabular: raw row -> inputs, fitted on training
            store.update_config(run_id, preparation=split.preparation)
        outcome = train_run(store, run_id, dataset=request.dataset, split=split, spec=request.spec,
                            config=request.config, progress=progress, build_model=build_model)
        return outcome.state, outcome.message, outcome.extra
    except RunStoreError as exc:
        return "failed", str(exc), {}
    except OSError as exc:
        return "failed", _("a file could not be written or read: {reason}").format(reason=exc), {}
    except ValueError as exc:  # settings, spec or dataset problems carry messages meant for the user
        return "failed", str(exc), {}
    except Exception as exc:  # noqa: BLE001 - a worker must never take the app down
        _log.exception("run %s failed", run_id)
        return "failed", f"{type(exc).__name__}: {exc}", {}


class ThreadRunner:
    """Trains in the calling thread (one fit at a time per process: core.training.FIT_LOCK)."""

    def __init__(self, build_model: Callable[..., Any] | None = None) -> None:
        self.build_model = build_model

    def run(self, store: RunStore, run_id: str, request: Any, progress: LiveProgress,
            force: threading.Event) -> Outcome:
        return execute_request(store, run_id, request, progress, self.build_model)

    def warm_up(self) -> None:
        """Nothing to start: the thread is the caller's."""

    def release_kept(self) -> None:
        """Nothing is kept."""

    def close(self) -> None:
        """Nothing to release."""


# ---- the child process ---------------------------------------------------------------------------------

class _PipeProgress(LiveProgress):
    """LiveProgress in the child: every change is also sent to the parent, which replays it."""

    def __init__(self, epochs: int, conn: Any, stop_event: Any) -> None:
        super().__init__(epochs)
        self.stop_event = stop_event  # the parent's multiprocessing.Event
        self._conn = conn

    def update(self, **values: Any) -> None:
        super().update(**values)
        self._conn.send(("update", values))

    def add_batch(self, step: int, loss: float, **values: Any) -> None:
        super().add_batch(step, loss, **values)
        self._conn.send(("batch", step, loss, values))

    def add_epoch(self, record: dict[str, Any]) -> None:
        super().add_epoch(record)
        self._conn.send(("epoch", record))


def _child_main(conn: Any, stop_event: Any) -> None:
    """The worker process: import TensorFlow once, say ready, train a request and report; then exit, or train
    the next request when the parent sends one (a sweep's next trial, see the module docstring)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras  # noqa: F401 - the warm import is the point of a waiting worker

    # Every run starts with keras.backend.clear_session(), whose gc.collect() walks every object: ~350,000 after
    # the import, 0.3-0.6 s of each run. They live as long as the process, so the collector may skip them.
    gc.freeze()
    # Each trial of a sweep builds a new model, so its functions are traced anew by design: not worth a warning
    logging.getLogger("tensorflow").addFilter(lambda record: "triggered tf.function retracing" not in
                                              record.getMessage())
    conn.send(("ready", os.getpid()))
    kept: dict[str, Any] = {}  # the dataset of the previous run, and the splits made of it
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # the app went away (or ended this process's reuse)
        if message[0] != "train":
            return
        _, store_root, run_id, request, build_model = message
        request = _with_kept_data(request, kept)
        progress = _PipeProgress(request.config.total_epochs, conn, stop_event)
        state, text, extra = execute_request(RunStore(store_root), run_id, request, progress, build_model, kept)
        conn.send(("done", state, text, extra))


def _with_kept_data(request: Any, kept: dict[str, Any]) -> Any:
    """The request with the dataset this process holds when the parent left it out (None: the previous run's);
    a new dataset replaces what was kept, splits included."""
    if request.dataset is None:
        return dataclasses.replace(request, dataset=kept["dataset"])
    if kept.get("dataset") is not request.dataset:
        kept.clear()
        kept["dataset"] = request.dataset
    return request


# ---- the parent side -------------------------------------------------------------------------------------

class _Child:
    """One started worker process and its end of the pipe."""

    def __init__(self, ctx: Any) -> None:
        self.conn, child_conn = ctx.Pipe(duplex=True)
        self.stop = ctx.Event()
        self.process = ctx.Process(target=_child_main, args=(child_conn, self.stop),
                                   name="keras-lab-trainer", daemon=True)
        self.process.start()
        child_conn.close()  # the child holds its own copy; EOF here means the child is gone
        self.ready = False
        self.runs = 0  # runs sent to it
        self.reuse_key: Any = None  # the sweep of its last run, when it is kept for that sweep's next one
        self.dataset: Any = None  # the dataset object it holds (sent with its last run)

    def wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.ready and time.monotonic() < deadline:
            if self.conn.poll(_POLL_S):
                try:
                    msg = self.conn.recv()
                except (EOFError, OSError):
                    return False
                self.ready = msg[0] == "ready"
            elif not self.process.is_alive():
                return False
        return self.ready

    def end(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()


def reuse_key(request: Any) -> Any:
    """What a run must share with the previous one to train in the same process: the sweep it is a trial of
    (workspace and study); None for every other run, which gets a fresh process."""
    trial = getattr(request, "trial", None)
    return (getattr(request, "workspace", None), trial.get("study")) if trial else None


class ProcessRunner:
    """Runs each request in a warm spawned process; a crash or kill of that process fails only its run."""

    def __init__(self, build_model: Callable[..., Any] | None = None) -> None:
        self.build_model = build_model
        self._ctx = mp.get_context("spawn")
        self._lock = threading.Lock()
        self._child: _Child | None = None  # started and waiting for work (fresh, or kept for a sweep's next trial)
        self._active: _Child | None = None  # training a run now
        self._closed = False
        self.more_work: Callable[[], bool] = lambda: False  # set by the job manager: is another run queued?
        # set by the job manager: is the next queued run a continuation of this request (same sweep)?
        self.continues: Callable[[Any], bool] = lambda request: False

    def warm_up(self) -> None:
        """Start the next worker process now (in the background of the caller) if none is waiting."""
        with self._lock:
            if self._closed:
                return
            if self._child is None or not self._child.process.is_alive():
                self._child = _Child(self._ctx)

    def release_kept(self) -> None:
        """End a process kept for a sweep's next trial that did not come (its memory goes back to the operating
        system) and start a fresh one; called by the job manager when its queue is empty."""
        with self._lock:
            child = self._child if self._child is not None and self._child.runs else None
            if child is not None:
                self._child = None
        if child is not None:
            child.end()
            self.warm_up()

    def _take_child(self, request: Any) -> _Child:
        with self._lock:
            child, self._child = self._child, None
        if child is not None and (not child.process.is_alive() or (child.runs and child.reuse_key != reuse_key(
                request))):
            child.end()  # killed while it waited, or kept for another sweep: this run gets a fresh process
            child = None
        if child is None:
            self.warm_up()
            with self._lock:
                child, self._child = self._child, None
        with self._lock:
            self._active = child
        assert child is not None
        if self.more_work() and not self.continues(request):
            self.warm_up()  # the next run is already queued: its process imports TensorFlow during this one
        return child

    def run(self, store: RunStore, run_id: str, request: Any, progress: LiveProgress,
            force: threading.Event) -> Outcome:
        """Train in a worker process; returns the final status. Before returning, starts the next worker, or
        keeps this one when the next queued run continues the same sweep."""
        progress.update(message=_("starting the training process"))
        child = self._take_child(request)
        outcome: Outcome | None = None
        try:
            if not child.wait_ready(_START_TIMEOUT_S):
                code = child.process.exitcode
                return "failed", _("the training process could not start (exit code {code})").format(code=code), {}
            child.stop.clear()  # a kept process: the previous run's Stop must not stop this one
            sent = request
            if child.dataset is not None and request.dataset is child.dataset:
                sent = dataclasses.replace(request, dataset=None)  # the child holds it from the previous run
            child.dataset, child.runs, child.reuse_key = request.dataset, child.runs + 1, reuse_key(request)
            child.conn.send(("train", str(store.root), run_id, sent, self.build_model))
            outcome = self._follow(child, progress, force)
            return outcome
        except (OSError, EOFError, ValueError) as exc:  # the pipe broke while sending: the child is gone
            return "failed", f"{killed_message()} ({exc})", {}
        finally:
            self._after(child, request, outcome)

    def _after(self, child: _Child, request: Any, outcome: Outcome | None) -> None:
        """Keep the child for the sweep's next trial, or end it and start the next worker (the next run finds
        TensorFlow loaded; this run's memory went with its process)."""
        keep = (outcome is not None and outcome[0] in _KEEP_AFTER and not outcome[2].get("forced")
                and child.reuse_key is not None and child.runs < _MAX_RUNS_PER_PROCESS
                and child.process.is_alive() and self.continues(request))
        with self._lock:
            self._active = None
            if keep and not self._closed and self._child is None:
                self._child = child
                return
        child.end()
        self.warm_up()

    def _follow(self, child: _Child, progress: LiveProgress, force: threading.Event) -> Outcome:
        while True:
            if progress.stop_event.is_set():
                child.stop.set()
            if force.is_set():
                return "stopped", forced_message(), {"forced": True}
            if child.conn.poll(_POLL_S):
                try:
                    msg = child.conn.recv()
                except (EOFError, OSError):
                    return self._dead(child)
                kind = msg[0]
                if kind == "update":
                    progress.update(**msg[1])
                elif kind == "batch":
                    progress.add_batch(msg[1], msg[2], **msg[3])
                elif kind == "epoch":
                    progress.add_epoch(msg[1])
                elif kind == "done":
                    state, text, extra = msg[1], msg[2], msg[3]
                    asked = progress.read().get("stop_requested_at_step")  # Stop was pressed here, not there
                    if asked is not None and "steps" in extra:
                        extra["steps_after_stop_request"] = extra["steps"] - asked
                    return state, text, extra
            elif not child.process.is_alive():
                return self._dead(child)

    @staticmethod
    def _dead(child: _Child) -> Outcome:
        child.process.join(5)
        code = child.process.exitcode
        _log.warning("training process %s ended with exit code %s", child.process.pid, code)
        return "failed", killed_message(), {"exit_code": code}

    def training_pid(self) -> int | None:
        """The process id of the worker training now, if any (tests kill it: a crash costs only that run)."""
        with self._lock:
            return self._active.process.pid if self._active is not None else None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            children = [c for c in (self._child, self._active) if c is not None]
            self._child = None
        for child in children:
            child.end()
