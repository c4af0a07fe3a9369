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
- `ThreadRunner` trains in the calling thread: what tests use with builders that are not picklable.

Both return `(state, message, extra)`: the final status the job manager writes. The message is in the
language of the request (TrainRequest.language, the visitor who started the run): `execute_request` sets it
for the training, in the child process too (it has the catalogs), and the job manager's worker thread for the
messages the parent writes here (a killed or force-stopped process).
"""

from __future__ import annotations

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

__all__ = ["ProcessRunner", "ThreadRunner", "execute_request", "forced_message", "killed_message"]

_log = logging.getLogger(__name__)
_POLL_S = 0.05  # how often the parent checks for progress, a stop request and a dead child
_START_TIMEOUT_S = 180.0  # a child that has not imported TensorFlow by then is considered broken

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
                    build_model: Callable[..., Any] | None = None) -> Outcome:
    """Train one request to its final (state, message, extra), with every message in the request's language;
    never raises: errors become 'failed'."""
    with language_of(getattr(request, "language", None)):
        return _execute(store, run_id, request, progress, build_model)


def _execute(store: RunStore, run_id: str, request: Any, progress: LiveProgress,
             build_model: Callable[..., Any] | None) -> Outcome:
    try:
        split = request.split
        if split is None:
            from core.datasets import split_dataset

            cfg = request.config
            split = split_dataset(request.dataset, seed=cfg.seed, val_fraction=cfg.val_fraction, kind=cfg.split,
                                  test_fraction=cfg.test_fraction)
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
    """The worker process: import TensorFlow once, say ready, train one request, report, exit."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras  # noqa: F401 - the warm import is the point of a waiting worker

    conn.send(("ready", os.getpid()))
    try:
        message = conn.recv()
    except (EOFError, OSError):
        return  # the app went away before giving work
    if message[0] != "train":
        return
    _, store_root, run_id, request, build_model = message
    progress = _PipeProgress(request.config.epochs, conn, stop_event)
    state, text, extra = execute_request(RunStore(store_root), run_id, request, progress, build_model)
    conn.send(("done", state, text, extra))
    conn.close()


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


class ProcessRunner:
    """Runs each request in a warm spawned process; a crash or kill of that process fails only its run."""

    def __init__(self, build_model: Callable[..., Any] | None = None) -> None:
        self.build_model = build_model
        self._ctx = mp.get_context("spawn")
        self._lock = threading.Lock()
        self._child: _Child | None = None  # started and waiting for work
        self._active: _Child | None = None  # training a run now
        self._closed = False
        self.more_work: Callable[[], bool] = lambda: False  # set by the job manager: is another run queued?

    def warm_up(self) -> None:
        """Start the next worker process now (in the background of the caller) if none is waiting."""
        with self._lock:
            if self._closed:
                return
            if self._child is None or not self._child.process.is_alive():
                self._child = _Child(self._ctx)

    def _take_child(self) -> _Child:
        self.warm_up()
        with self._lock:
            child, self._child = self._child, None
            self._active = child
        assert child is not None
        if self.more_work():  # the next run is already queued: its process imports TensorFlow during this one
            self.warm_up()
        return child

    def run(self, store: RunStore, run_id: str, request: Any, progress: LiveProgress,
            force: threading.Event) -> Outcome:
        """Train in a worker process; returns the final status. Starts the next worker before returning."""
        progress.update(message=_("starting the training process"))
        child = self._take_child()
        try:
            if not child.wait_ready(_START_TIMEOUT_S):
                code = child.process.exitcode
                return "failed", _("the training process could not start (exit code {code})").format(code=code), {}
            child.conn.send(("train", str(store.root), run_id, request, self.build_model))
            return self._follow(child, progress, force)
        except (OSError, EOFError, ValueError) as exc:  # the pipe broke while sending: the child is gone
            return "failed", f"{killed_message()} ({exc})", {}
        finally:
            child.end()
            with self._lock:
                self._active = None
            self.warm_up()  # the next run finds TensorFlow loaded; this run's memory went with its process

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
