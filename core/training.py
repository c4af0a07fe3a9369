"""Training settings, the Keras callbacks, and the function a job worker runs for one run.

`train_run` is the whole life of one run inside a worker: seed, build and compile the model (under a
tf.distribute strategy when several devices are visible), fit with callbacks that report progress into a
`LiveProgress` (memory, read by the page), the run store (disk) and TensorBoard event files (the run
folder's tensorboard/), then evaluate on the test split and save the model and predictions. uint8 images
(Keras datasets) are scaled to float32 one batch at a time, so a float copy of a whole dataset never exists.
It never calls Streamlit. TensorFlow and Keras are imported lazily: the classes that need a Keras base get
it on first use (`_keras_class`).

Its messages (errors, progress, how the run ended) go through core.i18n: a run's worker sets the language of
the visitor who started it (TrainRequest.language), so they are written in that language.

Keras 3 keeps much global state per thread and `keras.utils.set_random_seed` is process-wide, so one fit
runs at a time per process (`FIT_LOCK`); `clear_session` is called only by the worker holding it.
"""

from __future__ import annotations

import contextlib
import functools
import math
import operator
import platform
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from importlib import metadata
from typing import Any

import numpy as np

from core.checks import KerasLabError, boolean, choice, number, whole_number
from core.datasets import SPLITS, model_input
from core.i18n import _
from core.runs import TENSORBOARD_DIR
from core.settings import MAX_BATCH_SIZE, MAX_EPOCHS, devices, tf_config

__all__ = [
    "ARTICLE",
    "CLASS_WEIGHTS",
    "FIT_LOCK",
    "LOSSES",
    "MONITORS",
    "OPTIMIZERS",
    "SCHEDULES",
    "ArticleRecipe",
    "LiveProgress",
    "TrainConfig",
    "TrainConfigError",
    "TrainOutcome",
    "FineTuneError",
    "check_fine_tune",
    "choose_strategy",
    "frozen_backbone",
    "frozen_only",
    "unfreeze_top",
    "steps_per_call",
    "library_versions",
    "train_run",
]

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULES = ("constant", "step", "cosine", "plateau")
MONITORS = ("val_loss", "val_accuracy")
LOSSES = ("sparse_categorical_crossentropy", "mse")
CLASS_WEIGHTS = ("none", "balanced")

FIT_LOCK = threading.Lock()  # one model.fit at a time in this process (Keras global state, seeds)
_BATCH_LINE_EVERY_S = 1.0  # sparse batch lines in metrics.jsonl: at most one per second
_RECENT_BATCHES = 4000  # per-batch losses kept in memory for the live smoothed curve
_EXPLODED = 1000.0  # a running loss this many times the first batch's has diverged (finite or not)
_STOP_WITHIN_S = 0.4  # steps per call are chosen so that Stop lands within about this long
_MAX_STEPS_PER_CALL = 32  # beyond this the speed-up is small (measured) and the batch curve thins out
_MIN_CALLS_PER_EPOCH = 20  # the live batch curve keeps at least this many points per epoch
_ASSUMED_FLOPS_PER_S = 4e10  # measured ~6 ms per Article CNN step on 2 cores: 18x the old 5e9 guess
_STEP_OVERHEAD_S = 5e-4  # fixed cost of one training step call (dispatch, callbacks)
_MIN_TRAIN_SHARE = 0.1  # validation and test fractions must leave at least this share of the rows for training
_MAX_UNFROZEN = 1000  # fine-tuning: more layers than any Keras Applications backbone has (MobileNetV2: 154)


class TrainConfigError(KerasLabError):
    """A training setting is out of range; the message says what was given and what is allowed."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides how a model is trained; stored in each run's config.json."""

    optimizer: str = "adam"  # one of OPTIMIZERS
    learning_rate: float = 1e-3  # initial step size, 0 < lr <= 10
    momentum: float = 0.9  # SGD only: fraction of the previous update kept, 0 <= m < 1
    weight_decay: float = 0.004  # AdamW only: decoupled weight decay, 0 <= wd <= 1
    schedule: str = "constant"  # one of SCHEDULES: how the learning rate changes over training
    step_every: int = 5  # step schedule: multiply the rate every this many epochs; plateau: patience
    step_factor: float = 0.5  # step and plateau schedules: the factor, 0 < f < 1
    batch_size: int = 32  # samples per gradient step (per replica when several devices train)
    epochs: int = 10  # full passes over the training split, 1..1000
    early_stopping: bool = False  # stop when `monitor` has not improved for `patience` epochs
    patience: int = 3  # early stopping: epochs without improvement before stopping
    monitor: str = "val_loss"  # early stopping (and plateau schedule): one of MONITORS
    seed: int = 0  # seeds the split, the weights and the shuffling: same seed, same curves (CPU)
    class_weights: str = "none"  # "balanced" weighs each class by n / (k * count) (scikit-learn)
    loss: str = "sparse_categorical_crossentropy"  # or "mse" on one-hot targets (a teaching option)
    # one of core.datasets.SPLITS: "official" keeps a Keras dataset's test file as the test part (ignored where
    # the data has no official split), "pooled" re-splits every row by the two fractions below
    split: str = "official"
    val_fraction: float = 0.15  # share held out for validation: of the training files (official), of all rows
    test_fraction: float = 0.15  # pooled split only: share held out for the final test, 0 < t < 1, v + t < 0.9
    # fine-tuning, the article's pre-train -> fine-tune: after `epochs` with a frozen Backbone (only the new head
    # trains), unfreeze its top `fine_tune_layers` layers and train `fine_tune_epochs` more at the learning rate
    # times `fine_tune_lr_factor`, in the same run; 0 epochs = no second phase
    fine_tune_epochs: int = 0
    fine_tune_layers: int = 20
    fine_tune_lr_factor: float = 0.1

    def validate(self) -> TrainConfig:
        """Raise TrainConfigError naming the first bad setting; return self so calls can chain."""
        error = TrainConfigError
        choice(_("optimizer"), self.optimizer, OPTIMIZERS, error=error)
        choice(_("schedule"), self.schedule, SCHEDULES, error=error)
        choice(_("monitor"), self.monitor, MONITORS, error=error)
        choice(_("loss"), self.loss, LOSSES, error=error)
        choice(_("class weights"), self.class_weights, CLASS_WEIGHTS, error=error)
        choice(_("split"), self.split, SPLITS, error=error)
        number(_("learning rate"), self.learning_rate, 0, 10, lo_open=True, error=error)
        number(_("momentum"), self.momentum, 0, 1, hi_open=True, error=error)
        number(_("weight decay"), self.weight_decay, 0, 1, error=error)
        number(_("step factor"), self.step_factor, 0, 1, lo_open=True, hi_open=True, error=error)
        whole_number(_("batch size"), self.batch_size, 1, MAX_BATCH_SIZE, error=error)
        whole_number(_("epochs"), self.epochs, 1, MAX_EPOCHS, error=error)
        whole_number(_("patience"), self.patience, 1, MAX_EPOCHS, error=error)
        whole_number(_("step every"), self.step_every, 1, MAX_EPOCHS, error=error)
        whole_number(_("fine-tuning epochs"), self.fine_tune_epochs, 0, MAX_EPOCHS, error=error)
        whole_number(_("layers to unfreeze"), self.fine_tune_layers, 1, _MAX_UNFROZEN, error=error)
        number(_("fine-tuning learning-rate factor"), self.fine_tune_lr_factor, 0, 1, lo_open=True, error=error)
        if self.total_epochs > MAX_EPOCHS:
            raise TrainConfigError(_("epochs + fine-tuning epochs must be at most {most}, got {epochs} + {more}").format(
                most=MAX_EPOCHS, epochs=self.epochs, more=self.fine_tune_epochs))
        whole_number(_("seed"), self.seed, 0, 2**31 - 1, error=error)
        boolean(_("early stopping"), self.early_stopping, error=error)
        number(_("validation fraction"), self.val_fraction, 0, 1, lo_open=True, hi_open=True, error=error)
        number(_("test fraction"), self.test_fraction, 0, 1, lo_open=True, hi_open=True, error=error)
        if self.val_fraction + self.test_fraction >= 1 - _MIN_TRAIN_SHARE:
            raise TrainConfigError(_("validation + test fractions must leave at least {share} for training, got "
                                     "{validation} + {test}").format(share=f"{_MIN_TRAIN_SHARE:.0%}",
                                                                    validation=f"{self.val_fraction:g}",
                                                                    test=f"{self.test_fraction:g}"))
        return self

    @property
    def total_epochs(self) -> int:
        """Both phases: the epochs with the backbone frozen, then those fine-tuning it."""
        return self.epochs + self.fine_tune_epochs

    def second_phase(self) -> TrainConfig:
        """The settings phase 2 trains with: the fine-tuning epochs at the learning rate times the factor (the
        schedule spread over them); core.models' exported script derives its phase 2 from this too."""
        return replace(self, learning_rate=self.learning_rate * self.fine_tune_lr_factor,
                       epochs=self.fine_tune_epochs)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Known keys only (older or newer runs may carry others); missing keys take defaults."""
        if not isinstance(data, dict):
            raise TrainConfigError(_("training settings must be a JSON object, got {type}").format(
                type=type(data).__name__))
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class ArticleRecipe:
    """The article's CIFAR-10 experiment as printed: data, model and settings, and the test accuracy it
    reports, so a run can be set up like it in one click and its result shown beside the article's."""

    dataset: str = "cifar10"  # the whole of it, official test set kept apart
    preset: str = "Article CNN"  # core.specs: 'valid' 3x3 convolutions, 122,570 parameters on 32x32x3
    config: TrainConfig = TrainConfig(optimizer="adam", learning_rate=1e-3, batch_size=32, epochs=10,
                                      split="official")
    reported_test_accuracy: float = 0.70  # "about 70 %" on the test set after the 10 epochs

    def matches(self, run_config: dict[str, Any]) -> bool:
        """Whether a run's config.json is this experiment (any seed): the same data, split, model and settings."""
        from types import SimpleNamespace

        from core.specs import ModelSpec, preset

        data, split = run_config.get("dataset") or {}, run_config.get("split") or {}
        if data.get("name") != self.dataset or data.get("subset") is not None or split.get("kind") != "official":
            return False
        try:
            training = TrainConfig.from_dict(run_config.get("training") or {})
            spec = ModelSpec.from_dict(run_config.get("model"))
            shaped = SimpleNamespace(name=self.dataset, input_shape=tuple(data["input_shape"]),
                                     n_classes=int(data["n_classes"]), kind=data["kind"])
            article = preset(self.preset, shaped)
        except (KeyError, TypeError, ValueError):  # SpecError and TrainConfigError are ValueErrors
            return False
        return spec.layers == article.layers and replace(training, seed=self.config.seed) == self.config


ARTICLE = ArticleRecipe()


def library_versions() -> dict[str, str]:
    """Versions stored with each run, read from package metadata (importing TensorFlow costs seconds)."""
    def version(*dists: str) -> str:
        for dist in dists:
            try:
                return metadata.version(dist)
            except metadata.PackageNotFoundError:
                continue
        return "not installed"

    return {"python": platform.python_version(), "tensorflow": version("tensorflow", "tensorflow-cpu"),
            "keras": version("keras"), "numpy": np.__version__, "sklearn": version("scikit-learn")}


# ---- live progress: written by the worker's callback, read by the page -------------------------------

class LiveProgress:
    """The in-memory view of one training, updated by the worker and read under a lock by any thread."""

    def __init__(self, epochs: int) -> None:
        self.stop_event = threading.Event()  # set by JobManager.stop; checked after every batch
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {"epoch": 0, "epochs": epochs, "batch": 0, "step": 0, "batches_per_epoch": 0,
                                       "samples_per_s": 0.0, "eta_s": None, "lr": None, "message": "",
                                       "epoch_ended_at": None}
        self._epochs: list[dict[str, Any]] = []
        self._batches: deque[tuple[int, float]] = deque(maxlen=_RECENT_BATCHES)

    def update(self, **values: Any) -> None:
        with self._lock:
            self._state.update(values)

    def request_stop(self) -> int:
        """Ask the worker to stop after the batch in flight; returns the steps done when asked."""
        with self._lock:
            self.stop_event.set()
            self._state.setdefault("stop_requested_at_step", self._state["step"])
            return int(self._state["step"])

    def add_batch(self, step: int, loss: float, **values: Any) -> None:
        with self._lock:
            self._batches.append((step, loss))
            self._state.update(values, step=step)

    def add_epoch(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._epochs.append(dict(record))
            self._state["epoch_ended_at"] = time.time()

    def read(self) -> dict[str, Any]:
        """A consistent copy: the scalar fields, the epoch records and the recent (step, loss) pairs."""
        with self._lock:
            return {**self._state, "records": [dict(r) for r in self._epochs], "batches": list(self._batches)}


@dataclass(frozen=True)
class TrainOutcome:
    """How a run ended; the worker writes it as the final status."""

    state: str  # completed | stopped | diverged
    message: str  # one line for the user
    extra: dict[str, Any]  # test metrics and counts, stored in status.json


# ---- distribution -------------------------------------------------------------------------------------

_MULTI_WORKER: Any = None  # this process's MultiWorkerMirroredStrategy, made by its first multi-worker run


def choose_strategy() -> tuple[Any, dict[str, Any]]:
    """(strategy or None, description). TF_CONFIG -> MultiWorkerMirroredStrategy; >1 GPU -> Mirrored.

    KERAS_LAB_DEVICES (core.settings) picks the devices to mirror over: "gpu" (every visible GPU, the
    default), "cpu" (every logical CPU: how the tests exercise the multi-device path without a GPU) or a
    comma-separated list of device names such as "/gpu:0,/gpu:1". One device means no strategy (plain fit).
    """
    import tensorflow as tf

    if tf_config():
        global _MULTI_WORKER
        if _MULTI_WORKER is None:  # once per process: a second one aborts the collectives of the next run
            _patch_keras_for_multi_worker()
            _MULTI_WORKER = tf.distribute.MultiWorkerMirroredStrategy()
        strategy = _MULTI_WORKER
        return strategy, {"name": "MultiWorkerMirroredStrategy", "replicas": strategy.num_replicas_in_sync}
    wanted = devices()
    if wanted in ("gpu", "cpu"):
        names = [d.name for d in tf.config.list_logical_devices(wanted.upper())]
    else:
        names = [d.strip() for d in wanted.split(",") if d.strip()]
    if len(names) > 1:
        strategy = tf.distribute.MirroredStrategy(devices=names)
        return strategy, {"name": "MirroredStrategy", "replicas": strategy.num_replicas_in_sync,
                          "devices": names}
    return None, {"name": "default", "replicas": 1}


def _patch_keras_for_multi_worker() -> None:
    """Let Keras 3 fit under MultiWorkerMirroredStrategy, which it cannot as shipped (3.15 included:
    keras-team/keras#20585, tensorflow/tensorflow#72388). Two private pieces of its TensorFlow trainer fail:
    fit's symbolic build passes the whole (x, y) batch to strategy.reduce, which the collective strategy takes
    one value at a time, and every step reduces its scalar metrics across workers with axis=0. Both are
    wrapped once per process and change nothing unless a multi-worker strategy is in use;
    tests/core/test_multiworker.py fails if a Keras upgrade moves them or breaks multi-worker training otherwise.
    """
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer as tf_trainer

    if getattr(tf_trainer, "_keras_lab_multi_worker", False):
        return
    multi_worker = tf_trainer._collective_all_reduce_multi_worker
    reduce_per_replica = tf_trainer.reduce_per_replica
    symbolic_build = tf_trainer.TensorFlowTrainer._maybe_symbolic_build

    def reduce(values: Any, strategy: Any, reduction: str) -> Any:
        if reduction in ("auto", "mean") and multi_worker(strategy):
            return tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return reduce_per_replica(values, strategy, reduction)

    def build(self: Any, iterator: Any = None, data_batch: Any = None) -> Any:
        strategy = self.distribute_strategy
        if iterator is not None and multi_worker(strategy):
            for _, _, batches in iterator:  # the shapes are all the build needs: this worker's part of batch 1
                data_batch = tree.map_structure(lambda v: strategy.experimental_local_results(v)[0],
                                                next(batches))
                break
            iterator = None
        return symbolic_build(self, iterator=iterator, data_batch=data_batch)

    tf_trainer.reduce_per_replica = reduce
    tf_trainer.TensorFlowTrainer._maybe_symbolic_build = build
    tf_trainer._keras_lab_multi_worker = True


def _stop_agreed(strategy: Any, mine: bool) -> bool:
    """True when any worker of a multi-worker strategy asked to stop (one tiny all-reduce on every worker)."""
    import tensorflow as tf

    flags = strategy.experimental_distribute_values_from_function(lambda _: tf.constant(1.0 if mine else 0.0))
    return float(strategy.reduce("SUM", flags, axis=None)) > 0


# ---- the Keras pieces ---------------------------------------------------------------------------------

def steps_per_call(flops_per_example: int, global_batch: int, steps_per_epoch: int) -> int:
    """Training steps Keras runs per call (`compile(steps_per_execution=...)`).

    One step per call (Keras' default) pays the call's fixed cost on every batch: on small models that is
    most of the time (the Article CNN on 28x28 trained 1.5-1.7x faster with 32 steps per call). But Stop
    and the batch curve only see the end of a call, so the count is bounded by an estimate of the step
    time (3x the forward FLOPs for forward + backward, at a deliberately slow rate) so that Stop still
    lands within about _STOP_WITHIN_S, and by the epoch length so the curve keeps enough points.
    """
    step_s = _STEP_OVERHEAD_S + 3.0 * max(flops_per_example, 0) * max(global_batch, 1) / _ASSUMED_FLOPS_PER_S
    by_time = int(_STOP_WITHIN_S // step_s)
    by_curve = max(steps_per_epoch, 1) // _MIN_CALLS_PER_EPOCH
    return max(1, min(_MAX_STEPS_PER_CALL, by_time, by_curve))


def _optimizer(config: TrainConfig, steps_per_epoch: int) -> Any:
    import keras

    lr: Any = config.learning_rate
    if config.schedule == "step":
        lr = keras.optimizers.schedules.ExponentialDecay(
            config.learning_rate, decay_steps=config.step_every * steps_per_epoch,
            decay_rate=config.step_factor, staircase=True)
    elif config.schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(config.learning_rate,
                                                    decay_steps=config.epochs * steps_per_epoch)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=config.momentum)
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate=lr, weight_decay=config.weight_decay)
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=lr)
    return keras.optimizers.Adam(learning_rate=lr)


def _loss_and_metric(config: TrainConfig) -> tuple[Any, Any]:
    import keras

    if config.loss == "mse":  # one-hot targets, softmax outputs: the teaching comparison with cross-entropy
        return keras.losses.MeanSquaredError(), keras.metrics.CategoricalAccuracy(name="accuracy")
    return keras.losses.SparseCategoricalCrossentropy(), keras.metrics.SparseCategoricalAccuracy(name="accuracy")


def _targets(y: np.ndarray, config: TrainConfig, n_classes: int) -> np.ndarray:
    if config.loss == "mse":
        return np.eye(n_classes, dtype=np.float32)[y]
    return y


def _class_weights(y: np.ndarray, config: TrainConfig, n_classes: int) -> dict[int, float] | None:
    if config.class_weights != "balanced":
        return None
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(y)
    weights = compute_class_weight("balanced", classes=present, y=y)
    full = dict.fromkeys(range(n_classes), 1.0)
    full.update({int(c): float(w) for c, w in zip(present, weights, strict=True)})
    return full


def _current_lr(model: Any) -> float | None:
    try:
        lr = model.optimizer.learning_rate  # a variable, or a tensor computed from a schedule
        return float(lr.numpy() if hasattr(lr, "numpy") else lr)
    except Exception:  # noqa: BLE001 - a display value; never let it stop training
        return None


@functools.cache
def _keras_class(logic: type, base: str) -> type:
    """`logic` on top of a Keras class (`base`, e.g. "callbacks.Callback"), made once on first use: importing
    this module never imports Keras."""
    import keras

    return type(logic.__name__, (logic, operator.attrgetter(base)(keras)), {})


def _progress_callback(store: Any, run_id: str, progress: LiveProgress, n_train: int, global_batch: int,
                       epochs: int, multi_worker: Any = None) -> Any:
    """The keras.callbacks.Callback that reports a fit's progress (see _ProgressReporter)."""
    return _keras_class(_ProgressReporter, "callbacks.Callback")(store, run_id, progress, n_train, global_batch,
                                                                 epochs, multi_worker)


class _ProgressReporter:
    """Report each batch to memory (cheap), each epoch and a batch line per second to the run store; stop the
    fit when asked or when the loss diverges. A keras.callbacks.Callback once _keras_class gives it that base."""

    def __init__(self, store: Any, run_id: str, progress: LiveProgress, n_train: int, global_batch: int,
                 epochs: int, multi_worker: Any = None) -> None:
        super().__init__()
        self.store, self.run_id, self.progress = store, run_id, progress
        self.n_train, self.global_batch, self.epochs = n_train, global_batch, epochs
        self.multi_worker = multi_worker  # the strategy when every worker must leave fit after the same batch
        self.batches_per_epoch = max(1, math.ceil(n_train / global_batch))
        self.start = time.perf_counter()
        self.last_line = 0.0
        self.epoch = 0
        self.epoch_start = self.start
        self.train_time = 0.0
        self.step = 0
        self.batch_in_epoch = 0
        self.non_finite: tuple[int, int] | None = None  # (epoch, batch) where the loss stopped being finite
        self.first_loss: float | None = None
        self.exploded: tuple[int, int, float] | None = None  # (epoch, batch, loss) of a finite blow-up
        self.records: list[dict[str, Any]] = []
        self.call_start = self.start
        self.call_s: float | None = None  # seconds per step call (moving average): Stop's latency
        self.phase: int | None = None  # fine-tuning runs: 1 (frozen backbone) or 2 (top layers unfrozen)
        self.fits = 0  # model.fit calls so far: a fine-tuning run's second phase is a second fit

    def on_train_begin(self, logs=None):
        self.fits += 1
        if self.fits == 1:  # times count from the first phase's start
            self.start = self.last_line = time.perf_counter()
        self.progress.update(batches_per_epoch=self.batches_per_epoch, lr=_current_lr(self.model),
                             message=_("training"))

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1
        self.batch_in_epoch = 0
        self.epoch_start = self.call_start = time.perf_counter()
        self.progress.update(epoch=self.epoch, batch=0)

    def on_train_batch_end(self, batch, logs=None):
        # Keras calls this once per step call, with the index of the call's last batch
        logs = logs or {}
        now = self._count_steps(batch)
        self._obey_stop()
        loss = float(logs.get("loss", float("nan")))
        self._watch_loss(loss)
        self._report_batch(now, loss, logs)

    def _count_steps(self, batch: int) -> float:
        """Advance the step counters to the end of this call and time it; returns the time now."""
        # the last, partial call of an epoch reports an index rounded up to a whole call: cap it
        steps_in_call = min(batch + 1, self.batches_per_epoch) - self.batch_in_epoch
        self.batch_in_epoch = min(batch + 1, self.batches_per_epoch)
        self.step = (self.epoch - 1) * self.batches_per_epoch + self.batch_in_epoch
        now = time.perf_counter()
        call_s = now - self.call_start
        self.call_start = now
        if steps_in_call > 0 and call_s > 0:  # how long Stop may take: one call, measured
            self.call_s = call_s if self.call_s is None else 0.8 * self.call_s + 0.2 * call_s
        self.train_time = now - self.epoch_start
        return now

    def _obey_stop(self) -> None:
        if self.multi_worker is not None:
            # every worker must leave fit after the same batch, or their collectives mismatch: agree on Stop
            if _stop_agreed(self.multi_worker, self.progress.stop_event.is_set()):
                self.progress.stop_event.set()
                self.model.stop_training = True
        elif self.progress.stop_event.is_set():
            self.model.stop_training = True  # Keras leaves the epoch loop right after this batch

    def _watch_loss(self, loss: float) -> None:
        """Stop a fit whose loss became NaN or infinite, or exploded while staying finite."""
        if not math.isfinite(loss) and self.non_finite is None:
            self.non_finite = (self.epoch, self.batch_in_epoch)
            self.model.stop_training = True  # what TerminateOnNaN does, without a second per-batch callback
        elif self.first_loss is None:
            self.first_loss = loss
        elif self.exploded is None and loss > _EXPLODED * max(self.first_loss, 1e-3):
            # e.g. SGD at rate 10: the loss leaps to 1e7 and every ReLU dies, but stays finite
            self.exploded = (self.epoch, self.batch_in_epoch, loss)
            self.model.stop_training = True

    def _report_batch(self, now: float, loss: float, logs: dict[str, Any]) -> None:
        done = (self.epoch - 1) * self.batches_per_epoch + self.batch_in_epoch
        elapsed = now - self.start
        rate = self.batch_in_epoch * self.global_batch / self.train_time if self.train_time > 0 else 0.0
        eta = elapsed / done * (self.epochs * self.batches_per_epoch - done) if done else None
        self.progress.add_batch(self.step, loss, batch=self.batch_in_epoch, samples_per_s=rate, eta_s=eta,
                                stop_within_s=self.call_s)
        if now - self.last_line >= _BATCH_LINE_EVERY_S:
            self.last_line = now
            self.store.append_metrics(self.run_id, {
                "kind": "batch", "epoch": self.epoch, "batch": self.batch_in_epoch, "step": self.step,
                "loss": loss, "accuracy": _finite_or_none(logs.get("accuracy"))})

    def on_epoch_end(self, epoch, logs=None):
        record: dict[str, Any] = {"kind": "epoch", "epoch": epoch + 1}
        for key, value in (logs or {}).items():
            if key != "learning_rate":
                record[key] = _finite_or_none(value)
        record["lr"] = _current_lr(self.model)
        record["time"] = round(time.perf_counter() - self.start, 4)
        seen = min(self.n_train, self.batch_in_epoch * self.global_batch)
        record["samples_per_s"] = round(seen / self.train_time, 2) if self.train_time > 0 else None
        if self.batch_in_epoch < self.batches_per_epoch:
            record["partial"] = True  # stopped inside this epoch: metrics cover the batches done
        if self.phase is not None:
            record["phase"] = self.phase
        self.records.append(record)
        self.store.append_metrics(self.run_id, record)
        self.progress.add_epoch(record)
        self.progress.update(lr=record["lr"])


class _ImageBatches:
    """uint8 images (with their targets, if any) a batch at a time as float32 in [0, 1], so no float copy of
    the whole set is ever made (CIFAR-10 would take 0.5 GB more). With a seed the rows are shuffled anew each
    epoch, reproducibly. A keras.utils.PyDataset once _keras_class gives it that base; one worker, in the
    fitting process."""

    def __init__(self, x: np.ndarray, y: np.ndarray | None, batch_size: int, seed: int | None = None) -> None:
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size
        self.rng = None if seed is None else np.random.default_rng(seed)
        self.order = np.arange(len(x))
        self.on_epoch_end()

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, ...]:
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        x = model_input(self.x[rows])
        return (x,) if self.y is None else (x, self.y[rows])

    def on_epoch_end(self) -> None:
        if self.rng is not None:
            self.order = self.rng.permutation(len(self.x))


def _feed(x: np.ndarray, y: np.ndarray | None, batch_size: int, *, seed: int | None = None
          ) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The data arguments of fit / evaluate / predict (the tuple is also what validation_data takes).

    Float arrays go as they are: Keras batches them itself (and shuffles them when fit is told to), its
    fastest path. uint8 images go as _ImageBatches, scaled a batch at a time; `seed` shuffles their rows
    each epoch."""
    if x.dtype == np.uint8:
        return (_keras_class(_ImageBatches, "utils.PyDataset")(x, y, batch_size, seed),), {}
    return ((x,) if y is None else (x, y)), {"batch_size": batch_size}


def _finite_or_none(value: Any) -> float | None:
    """JSON has no NaN: a diverged metric is stored as null (the status says why)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


# ---- one run ----------------------------------------------------------------------------------------

def train_run(store: Any, run_id: str, *, dataset: Any, split: Any, spec: Any, config: TrainConfig,
              progress: LiveProgress, build_model: Callable[[Any, Any], Any] | None = None) -> TrainOutcome:
    """Train one run to the end (completed, stopped or diverged); store errors propagate as RunStoreError.

    The caller (the job worker) writes status 'running' before and the returned outcome after; this
    function writes metrics, the model and the test-set predictions.
    """
    config.validate()
    check_fine_tune(spec, config)
    if build_model is None:
        from core.models import build_model
    if not FIT_LOCK.acquire(blocking=False):
        progress.update(message=_("waiting for the training in progress to finish (one fit at a time)"))
        FIT_LOCK.acquire()
    try:
        return _train_locked(_Run(store, run_id, dataset, split, spec, config, progress), build_model)
    finally:
        FIT_LOCK.release()


@dataclass(frozen=True)
class _Run:
    """One run's inputs, shared by the steps of train_run."""

    store: Any  # the RunStore it writes to
    run_id: str
    dataset: Any
    split: Any
    spec: Any  # the ModelSpec
    config: TrainConfig
    progress: LiveProgress

    def targets(self, y: np.ndarray) -> np.ndarray:
        return _targets(y, self.config, self.dataset.n_classes)


@dataclass(frozen=True)
class _Plan:
    """How a run trains: its tf.distribute strategy and the batch arithmetic that follows from it."""

    strategy: Any  # a tf.distribute strategy, or None for a plain fit
    info: dict[str, Any]  # stored as the run's "strategy": name, replicas, global batch, steps per call
    global_batch: int  # samples per step over all replicas
    steps_per_epoch: int

    @property
    def multi_worker(self) -> Any:
        """The strategy when every worker must leave fit after the same batch; else None."""
        return self.strategy if self.info["name"] == "MultiWorkerMirroredStrategy" else None


def _train_locked(run: _Run, build_model: Callable[[Any, Any], Any]) -> TrainOutcome:
    """Plan, build and fit under FIT_LOCK; then judge the fit, and keep the model and its test predictions."""
    plan = _plan(run)
    run.store.update_config(run.run_id, strategy=plan.info)
    model, build_notes = _build(run, plan, build_model)
    if build_notes:
        run.store.update_config(run.run_id, build_notes=build_notes)
    reporter = _progress_callback(run.store, run.run_id, run.progress, len(run.split.y_train), plan.global_batch,
                                  run.config.total_epochs, plan.multi_worker)
    run.progress.update(message=_("training"))
    tensorboard = _tensorboard(run)
    if run.config.fine_tune_epochs:
        reporter.phase = 1
    _fit(run, model, plan, [reporter, tensorboard, *_setting_callbacks(run.config)])
    if run.config.fine_tune_epochs and _may_go_on(run, reporter):
        _fine_tune(run, model, plan, reporter, [reporter, tensorboard, *_setting_callbacks(run.config)])

    extra: dict[str, Any] = {"epochs_done": len(reporter.records), "steps": reporter.step}
    stop_step = run.progress.read().get("stop_requested_at_step")
    if stop_step is not None:
        extra["steps_after_stop_request"] = reporter.step - stop_step
    diverged = _diverged(reporter, run.config, extra)
    if diverged is not None:
        return diverged
    run.progress.update(message=_("evaluating on the test split and saving the model"))
    extra.update(_test_and_save(run, model, plan.global_batch))
    return _outcome(run, reporter, model, extra, build_notes)


def _plan(run: _Run) -> _Plan:
    """Reset Keras' process-wide state and seed it, choose the strategy, and work out the batches."""
    import keras

    from core.specs import analyse_spec

    keras.backend.clear_session()
    keras.config.set_dtype_policy("float32")
    keras.utils.set_random_seed(run.config.seed)
    strategy, info = choose_strategy()
    global_batch = run.config.batch_size * info["replicas"]
    steps_per_epoch = max(1, math.ceil(len(run.split.y_train) / global_batch))
    flops = analyse_spec(run.spec, tuple(run.dataset.input_shape), run.dataset.n_classes, run.dataset.kind).flops
    # one step per call under a tf.distribute strategy: Keras 3's multi-step loop fails there ("You must feed a
    # value for placeholder tensor 'while/cond/Placeholder'", keras-team/keras#19246), Mirrored included
    info.update(global_batch=global_batch,
                steps_per_call=1 if strategy is not None else steps_per_call(flops, global_batch, steps_per_epoch))
    return _Plan(strategy, info, global_batch, steps_per_epoch)


def _build(run: _Run, plan: _Plan, build_model: Callable[[Any, Any], Any]) -> tuple[Any, list[str]]:
    """The compiled model, built in the strategy's scope when there is one, and the notes building it left
    (e.g. "ImageNet weights unavailable: random weights")."""
    notes: list[str] = []
    with _in_scope(plan):
        model = build_model(run.spec, run.dataset, notes=notes)
        _compile(model, run.config, plan)
    return model, notes


def _in_scope(plan: _Plan) -> Any:
    """The strategy's scope, where variables (the model's, the optimizer's) must be made; a no-op without one."""
    return plan.strategy.scope() if plan.strategy is not None else contextlib.nullcontext()


def _compile(model: Any, config: TrainConfig, plan: _Plan) -> None:
    """Compile with a fresh optimizer for `config` (call inside _in_scope): the build and fine-tuning's phase 2."""
    loss, metric = _loss_and_metric(config)
    model.compile(optimizer=_optimizer(config, plan.steps_per_epoch), loss=loss, metrics=[metric],
                  steps_per_execution=plan.info["steps_per_call"])


def _tensorboard(run: _Run) -> Any:
    """Keras' own TensorBoard writer: epoch metrics and the model graph in the run folder's tensorboard/, so
    `tensorboard --logdir runs` shows every run; no profiling, no histograms."""
    import keras

    return keras.callbacks.TensorBoard(log_dir=str(run.store.run_dir(run.run_id) / TENSORBOARD_DIR),
                                       histogram_freq=0, update_freq="epoch", profile_batch=0)


def _setting_callbacks(config: TrainConfig) -> list[Any]:
    """The Keras callbacks the settings ask for: early stopping, the plateau schedule."""
    import keras

    callbacks = []
    if config.early_stopping:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=config.monitor, patience=config.patience,
                                                       restore_best_weights=True))
    if config.schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor=config.monitor, factor=config.step_factor,
                                                           patience=config.step_every, min_lr=1e-7))
    return callbacks


def _fit(run: _Run, model: Any, plan: _Plan, callbacks: list[Any], initial_epoch: int = 0,
         epochs: int | None = None) -> None:
    split, config = run.split, run.config
    data, batching = _feed(split.x_train, run.targets(split.y_train), plan.global_batch, seed=config.seed)
    validation = _feed(split.x_val, run.targets(split.y_val), plan.global_batch)[0] if len(split.y_val) else None
    model.fit(*data, **batching, initial_epoch=initial_epoch, epochs=config.epochs if epochs is None else epochs,
              verbose=0, shuffle=True, callbacks=callbacks, validation_data=validation,
              class_weight=_class_weights(split.y_train, config, run.dataset.n_classes))


# ---- fine-tuning: the second phase ------------------------------------------------------------------

class FineTuneError(TrainConfigError):
    """Fine-tuning was asked of a model it cannot apply to (no frozen backbone)."""


def frozen_backbone(spec: Any) -> Any | None:
    """The spec's frozen Backbone layer (the one a second phase unfreezes), or None."""
    return next((layer for layer in spec.layers
                 if layer.type == "Backbone" and not layer.params.get("trainable", False)), None)


def check_fine_tune(spec: Any, config: TrainConfig) -> None:
    """Raise FineTuneError when a second phase is asked of a model without a frozen backbone."""
    if config.fine_tune_epochs and frozen_backbone(spec) is None:
        raise FineTuneError(_("fine-tuning needs a frozen pre-trained backbone (a Backbone layer with 'trainable' "
                              "off, as in the Transfer learning preset); {model} has none. Set fine-tuning epochs "
                              "to 0, or choose that preset on Build a model.").format(model=spec.name))


def frozen_only(config: TrainConfig) -> TrainConfig:
    """The baseline a fine-tuning run is judged against: the same epochs in all, the backbone frozen throughout."""
    return replace(config, epochs=config.total_epochs, fine_tune_epochs=0)


def _may_go_on(run: _Run, reporter: Any) -> bool:
    """The first phase ended in a way the second may follow: not stopped by request, not diverged."""
    return not (run.progress.stop_event.is_set() or reporter.non_finite is not None or reporter.exploded is not None)


def unfreeze_top(model: Any, layers: int) -> dict[str, int]:
    """Make the top `layers` layers of the model's backbone (a nested Keras model) trainable, the rest frozen,
    as the Keras transfer-learning guide does. Its BatchNormalization layers stay frozen: in Keras 3 a trainable
    BatchNormalization layer updates its statistics in training even though the backbone was called with
    training=False (measured: the moving means of the unfrozen blocks moved), and small fine-tuning batches
    would overwrite the ImageNet statistics. Returns what changed."""
    import keras

    net = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    net.trainable = True
    cut = max(0, len(net.layers) - layers)
    for i, layer in enumerate(net.layers):
        layer.trainable = i >= cut and not isinstance(layer, keras.layers.BatchNormalization)
    return {"backbone_layers": len(net.layers), "unfrozen_layers": len(net.layers) - cut,
            "unfrozen_weights": int(sum(math.prod(w.shape) for w in net.trainable_weights))}


def _fine_tune(run: _Run, model: Any, plan: _Plan, reporter: Any, callbacks: list[Any]) -> None:
    """Phase 2 in the same run: unfreeze the top of the backbone, recompile at the lower rate (a fresh optimizer,
    the schedule spread over these epochs) and go on fitting; the epochs keep counting and are marked phase 2."""
    config, done = run.config, len(reporter.records)
    phase = config.second_phase()
    with _in_scope(plan):
        changed = unfreeze_top(model, config.fine_tune_layers)
        _compile(model, phase, plan)
    run.store.update_config(run.run_id, fine_tune={"from_epoch": done + 1, "learning_rate": phase.learning_rate,
                                                   **changed})
    reporter.phase = 2
    run.progress.update(message=_("fine-tuning: the top {n} backbone layers unfrozen, learning rate {rate}").format(
        n=changed["unfrozen_layers"], rate=f"{phase.learning_rate:g}"))
    _fit(run, model, plan, callbacks, initial_epoch=done, epochs=done + config.fine_tune_epochs)


def _diverged(reporter: Any, config: TrainConfig, extra: dict[str, Any]) -> TrainOutcome | None:
    """The outcome of a fit whose loss became NaN or exploded; None when it did not."""
    if reporter.non_finite is not None:
        epoch, batch = reporter.non_finite
        message = _("the loss became NaN or infinite at epoch {epoch}, batch {batch} (learning rate {rate}, "
                    "{optimizer}); try a smaller learning rate").format(
            epoch=epoch, batch=batch, rate=f"{config.learning_rate:g}", optimizer=config.optimizer)
        return TrainOutcome("diverged", message, extra)
    if reporter.exploded is not None:
        epoch, batch, value = reporter.exploded
        message = _("the loss exploded from {first} to {value} at epoch {epoch}, batch {batch} (learning rate "
                    "{rate}, {optimizer}); training was stopped: try a smaller learning rate").format(
            first=f"{reporter.first_loss:.3g}", value=f"{value:.3g}", epoch=epoch, batch=batch,
            rate=f"{config.learning_rate:g}", optimizer=config.optimizer)
        return TrainOutcome("diverged", message, extra)
    return None


def _test_and_save(run: _Run, model: Any, global_batch: int) -> dict[str, Any]:
    """Predict the test split and save its predictions (when it has rows), then the model; the test metrics."""
    split, metrics = run.split, {}
    if len(split.y_test):
        data, batching = _feed(split.x_test, None, global_batch)
        probs = model.predict(*data, **batching, verbose=0).astype(np.float32)
        loss, accuracy = _test_metrics(model, probs, np.asarray(split.y_test, dtype=np.int64), run.config)
        metrics = {"test_loss": _finite_or_none(loss), "test_accuracy": _finite_or_none(accuracy)}
        run.store.save_predictions(run.run_id, probs=probs, y_true=np.asarray(split.y_test, dtype=np.int64),
                                   test_idx=np.asarray(split.test_idx, dtype=np.int64),
                                   test_loss=np.float32(metrics["test_loss"] if metrics["test_loss"] is not None
                                                        else np.nan),
                                   test_accuracy=np.float32(metrics["test_accuracy"] or 0.0))
    run.store.save_model(run.run_id, model)
    return metrics


def _test_metrics(model: Any, probs: np.ndarray, y: np.ndarray, config: TrainConfig) -> tuple[float, float]:
    """Test loss and accuracy from the test predictions, as model.evaluate reports them (the loss as Keras computes
    it from probabilities, plus the weight penalties), without a second pass over the test split: that pass cost
    ~0.1 s CPU a run, 5-7 % of a short sweep trial."""
    p = probs.astype(np.float64)
    if config.loss == "mse":
        loss = float(np.mean((_targets(y, config, p.shape[1]) - p) ** 2))
    else:  # Keras: normalise, clip to [1e-7, 1 - 1e-7], mean of -log p(true class)
        p = np.clip(p / p.sum(axis=1, keepdims=True), 1e-7, 1 - 1e-7)
        loss = float(np.mean(-np.log(p[np.arange(len(y)), y])))
    return loss + sum(float(v) for v in model.losses), float(np.mean(probs.argmax(axis=1) == y))


def _outcome(run: _Run, reporter: Any, model: Any, extra: dict[str, Any], build_notes: list[str]) -> TrainOutcome:
    """How a fit that did not diverge ended: stopped by request, stopped early, or every epoch done."""
    config, records = run.config, reporter.records
    epochs_done = len(records)
    cut_short = epochs_done < config.total_epochs or bool(records and records[-1].get("partial"))
    if run.progress.stop_event.is_set() and cut_short:
        at = records[-1]["epoch"] if records else 0
        return TrainOutcome("stopped", _("stopped by request during epoch {epoch} of {epochs} (batch {batch}); the "
                                         "model at that point was kept").format(
            epoch=at, epochs=config.total_epochs, batch=reporter.batch_in_epoch), extra)
    if epochs_done < config.total_epochs:
        early = (_("early stopping after {done} of {epochs} epochs: {monitor} did not improve for {patience} "
                   "epochs; restored the best weights") if config.early_stopping else
                 _("early stopping after {done} of {epochs} epochs: {monitor} did not improve for {patience} epochs"))
        return TrainOutcome("completed", early.format(done=epochs_done, epochs=config.total_epochs,
                                                      monitor=config.monitor, patience=config.patience), extra)
    acc = extra.get("test_accuracy")
    message = (_("{epochs} epochs").format(epochs=epochs_done) if acc is None else
               _("{epochs} epochs, test accuracy {accuracy}").format(epochs=epochs_done, accuracy=f"{acc:.3f}"))
    notes = [*build_notes]
    tuned = [r["epoch"] for r in records if r.get("phase") == 2]
    if tuned:
        notes.insert(0, _("epochs {first}-{last} fine-tuned the top {n} backbone layers").format(
            first=tuned[0], last=tuned[-1], n=config.fine_tune_layers))
    if acc is not None and len(run.split.y_test) and (note := _chance_note(
            acc, run.split, run.dataset, records, model, {"model": run.spec.to_dict(), "build_notes": build_notes})):
        notes.insert(0, note)
    return TrainOutcome("completed", _("; ").join([message, *notes]), extra)  # i18n: the separator of clauses


def _chance_note(accuracy: float, split: Any, dataset: Any, history: list[dict[str, Any]], model: Any,
                 run_config: dict[str, Any]) -> str | None:
    """A run that finished without NaN can still have learned nothing (e.g. SGD at rate 10 kills every ReLU,
    a frozen backbone has random weights). The note names the main cause core.diagnostics finds from the same
    evidence the Evaluate page's Diagnostics read, so the two never give different advice."""
    counts = np.bincount(np.asarray(split.y_test, dtype=np.int64))
    baseline = float(counts.max() / counts.sum())
    if accuracy > baseline + 0.02:
        return None
    from core.diagnostics import dead_relu_shares, diagnose, relu_activations

    try:
        shares = dead_relu_shares(relu_activations(model, model_input(split.x_test[:256])))
    except Exception:  # noqa: BLE001 - the note must not fail a finished run; it then reads the history only
        shares = {}
    findings = diagnose(history, dataset.n_classes, class_names=list(dataset.class_names), relu_shares=shares,
                        class_counts=np.bincount(np.asarray(split.y_train, dtype=np.int64),
                                                 minlength=dataset.n_classes),
                        status="completed", run_config=run_config)
    note = _("no better than always guessing the most common class ({baseline}): the model did not learn").format(
        baseline=f"{baseline:.3f}")
    if not findings:
        return note
    return _("{note}. {finding}: {explanation}").format(note=note, finding=findings[0].title,
                                                        explanation=findings[0].explanation.rstrip(".。"))
