"""Every environment variable Keras Lab reads, and the caps on what one model, file or request may ask for.

The environment is read when a function here is called, never at import: a test sets a variable with
monkeypatch.setenv and the next call sees it; a server reads it again when it starts.

============================  ==============  ===========================================================
Variable                      Default         Meaning (function that reads it)
============================  ==============  ===========================================================
KERAS_LAB_RUNS                ./runs          folder of the run store (`runs_dir`)
KERAS_LAB_MAX_JOBS            1               trainings at a time, each in its own worker (`job_settings`)
KERAS_LAB_MAX_QUEUE           8               jobs waiting beyond those (`job_settings`)
KERAS_LAB_MAX_PER_WORKSPACE   5               shared server: runs one workspace may have queued or running
                                              (`job_settings`)
KERAS_LAB_RUNNER              process         "process" (a worker process per run) or "thread" (tests and
                                              debugging only) (`job_settings`)
KERAS_LAB_SHARED              unset           1 / 0 (true / false, yes / no, on / off): a server shared by
                                              strangers; unset, core.deployment decides from where the
                                              app runs (`shared_setting`)
KERAS_LAB_AUTH_PROVIDER       unset           the [auth.<name>] section st.login signs in with; unset: the
                                              [auth] section itself (`auth_provider`)
KERAS_LAB_DEVICES             gpu             devices training mirrors over: gpu (every GPU), cpu (every
                                              logical CPU) or names such as /gpu:0,/gpu:1 (`devices`)
TF_CONFIG                     unset           the cluster of a multi-worker training (`tf_config`)
KERAS_HOME                    ~/.keras        Keras' cache: datasets/ and models/ below it (`keras_home`)
============================  ==============  ===========================================================

A job setting that is not a whole number, or a runner that is neither process nor thread, is logged and
its default used (the server still starts); a KERAS_LAB_SHARED that is neither on nor off raises, because
guessing wrong would show a stranger another visitor's runs or error details.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "MAX_BATCH_SIZE",
    "MAX_EPOCHS",
    "MAX_FEATURE_VALUES",
    "MAX_FOLDS",
    "MAX_LAYERS",
    "MAX_PARAMS",
    "MAX_SPEC_JSON_BYTES",
    "MIN_FOLDS",
    "SHARED_ENV",
    "JobSettings",
    "auth_provider",
    "devices",
    "job_settings",
    "keras_home",
    "runs_dir",
    "shared_setting",
    "tf_config",
]

# ---- caps -------------------------------------------------------------------------------------------

MAX_PARAMS = 50_000_000  # weights of one model (a spec, or the bound of an uploaded .keras file); 200 MB float32
MAX_LAYERS = 64  # layers in one model spec (the classifier head not counted)
MAX_FEATURE_VALUES = 8_000_000  # values in one layer's output for one example (activation memory)
MAX_SPEC_JSON_BYTES = 64_000  # an uploaded model spec file; real specs are a few KB
MAX_EPOCHS = 1000  # epochs of one training
MAX_BATCH_SIZE = 65_536  # samples per gradient step
MIN_FOLDS, MAX_FOLDS = 2, 10  # k of a cross-validation

# ---- environment variables ------------------------------------------------------------------------

SHARED_ENV = "KERAS_LAB_SHARED"
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}
_RUNNERS = ("process", "thread")
_log = logging.getLogger(__name__)


def _text(name: str, environ: Mapping[str, str] | None = None) -> str:
    """The variable stripped of spaces; "" when unset."""
    return (os.environ if environ is None else environ).get(name, "").strip()


def runs_dir() -> Path:
    """Where the run store keeps its run folders (KERAS_LAB_RUNS, default ./runs)."""
    return Path(_text("KERAS_LAB_RUNS") or "runs").expanduser()


@dataclass(frozen=True)
class JobSettings:
    """How the server's job manager runs trainings."""

    runner: str  # "process" or "thread"
    max_jobs: int  # trainings at a time, >= 1
    max_queue: int  # jobs waiting beyond those, >= 0
    max_per_workspace: int  # runs one workspace may have queued or running (shared servers), >= 1


def _whole(name: str, default: int, lo: int) -> int:
    """A whole-number variable, raised to `lo` when below; a value that is not a number is logged, default used."""
    raw = _text(name)
    try:
        value = int(raw) if raw else default
    except ValueError:
        _log.warning("%s must be a whole number, got %r; using %d", name, raw, default)
        return default
    return max(lo, value)


def job_settings() -> JobSettings:
    """KERAS_LAB_RUNNER, KERAS_LAB_MAX_JOBS, KERAS_LAB_MAX_QUEUE and KERAS_LAB_MAX_PER_WORKSPACE."""
    runner = _text("KERAS_LAB_RUNNER").lower() or "process"
    if runner not in _RUNNERS:
        _log.warning("KERAS_LAB_RUNNER must be process or thread, got %r; using process", runner)
        runner = "process"
    return JobSettings(runner=runner, max_jobs=_whole("KERAS_LAB_MAX_JOBS", 1, 1),
                       max_queue=_whole("KERAS_LAB_MAX_QUEUE", 8, 0),
                       max_per_workspace=_whole("KERAS_LAB_MAX_PER_WORKSPACE", 5, 1))


def shared_setting(environ: Mapping[str, str] | None = None) -> bool | None:
    """KERAS_LAB_SHARED as True or False; None when unset. ValueError when it is neither on nor off."""
    raw = _text(SHARED_ENV, environ).lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    if raw:
        raise ValueError(f"{SHARED_ENV} must be 1 or 0 (true/false), got {raw[:20]!r}")
    return None


def auth_provider() -> str | None:
    """The sign-in provider's name (KERAS_LAB_AUTH_PROVIDER); None: the [auth] section's own provider."""
    return _text("KERAS_LAB_AUTH_PROVIDER") or None


def devices() -> str:
    """KERAS_LAB_DEVICES in lower case: "gpu" (the default), "cpu", or comma-separated device names."""
    return _text("KERAS_LAB_DEVICES").lower() or "gpu"


def tf_config() -> str | None:
    """TF_CONFIG, the multi-worker cluster description TensorFlow reads itself; None when unset."""
    return _text("TF_CONFIG") or None


def keras_home() -> Path:
    """KERAS_HOME, or ~/.keras (/tmp/.keras when the home folder is read-only), as Keras decides."""
    home = _text("KERAS_HOME")
    if not home:
        base = os.path.expanduser("~")
        home = os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")
    return Path(os.path.expanduser(home))
