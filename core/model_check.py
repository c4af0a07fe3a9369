"""Check and first load an uploaded .keras model in a short-lived child process with memory and time limits.

The static check (core.model_files, core.model_bound) bounds what a config makes Keras allocate. This is
defence in depth against a bypass nobody has thought of: a fresh `python -m core.model_check` runs the
same check and a real `keras.saving.load_model`; if that needs more than CHECK_MEMORY_BYTES or takes
longer than CHECK_SECONDS the child is killed, so it, not the server, pays. The server loads the file only
after the child accepted it. One check runs at a time: each child holds its own TensorFlow (~0.8 GB).

How memory is limited (measured on Linux, tensorflow-cpu 2.21, in the child's environment below):
  after importing Keras VmSize 1.3 GB, VmData 0.35 GB, VmRSS 0.77 GB; a 28 M-weight model loaded:
  VmData 0.65 GB, peak VmRSS 1.25 GB (RSS also counts ~0.4 GB of TensorFlow's library pages).
* RLIMIT_AS would cap VmSize, which is mostly TensorFlow's shared libraries and untouched reservations
  (a GPU build reserves far more), so it limits the build, not the model: not used.
* RLIMIT_DATA caps private writable memory (heap, anonymous mmaps: where weights live, since Linux 4.7).
  An allocation past it fails at once (MemoryError, or TensorFlow's ResourceExhaustedError after its
  allocator's retries). It is set to the cap plus _DATA_HEADROOM: a hard ceiling for whatever the
  polling below could miss, and the guard against one huge allocation (8.8 GB: refused at once).
* The parent reads the child's VmRSS from /proc every _POLL_S and kills it over the cap: this is what
  the cap means (memory really used), and it stops a growing child without waiting for TF's retries.
Elsewhere than Linux only the time limit and whatever RLIMIT_DATA does there apply (none on Windows).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from core.i18n import _, language, set_language

__all__ = ["CHECK_MEMORY_BYTES", "CHECK_SECONDS", "check_in_child", "checking_turn", "main"]

# Resident memory of the checking child: TF takes ~0.76 GB, a load ~16 bytes per weight (28 M weights:
# 1.21 GB), so models up to ~45 M of the 50 M weights the static check allows get through.
CHECK_MEMORY_BYTES = 1_500_000_000
CHECK_SECONDS = 60.0  # start (TensorFlow import, ~3-5 s on a busy 2-core server), check and load
_DATA_HEADROOM = 500_000_000  # RLIMIT_DATA = cap + this: above what the RSS watch allows, never below
_POLL_S = 0.02
_ROOT = Path(__file__).resolve().parents[1]
_CHILD_ENV = {
    "CUDA_VISIBLE_DEVICES": "-1",  # no GPU: nothing to initialise, no device memory reserved
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "KERAS_BACKEND": "tensorflow",
    "TF_NUM_INTRAOP_THREADS": "1",  # a load needs no parallelism; fewer threads, fewer stacks
    "TF_NUM_INTEROP_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "TF_ENABLE_ONEDNN_OPTS": "0",
}
_CAPS = ("MAX_PARAMS", "MAX_DIMENSION")  # the parent's caps, passed on so both sides check alike
_LANGUAGE_ENV = "KERAS_LAB_LANGUAGE"  # the visitor's language, passed on so the child's refusals are in it
# One check, and the server's own load after it, at a time: each child holds its own TensorFlow and a
# load its model, and the server has little memory to spare. Reentrant, so a caller can hold the turn
# across check_in_child and its own load.
_TURN = threading.RLock()


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB"


def _rss(pid: int) -> int | None:
    """Resident memory of a process in bytes, from /proc (None where there is no /proc)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


@contextmanager
def checking_turn(seconds: float | None = None) -> Iterator[None]:
    """Wait (at most `seconds`, default CHECK_SECONDS) for the one checking turn; ModelFileError if busy."""
    from core.model_files import ModelFileError

    limit = float(seconds or CHECK_SECONDS)
    if not _TURN.acquire(timeout=limit):
        raise ModelFileError(_("another model file is being checked and did not finish within {seconds} s; try "
                               "again in a minute").format(seconds=f"{limit:.0f}"))
    try:
        yield
    finally:
        _TURN.release()


def check_in_child(path: str | os.PathLike[str], *, memory_bytes: int | None = None,
                   seconds: float | None = None) -> dict[str, Any]:
    """Check and load `path` in a fresh child process; its summary, or ModelFileError saying why it was refused.

    Limits default to CHECK_MEMORY_BYTES and CHECK_SECONDS (read at call time)."""
    from core import model_files

    memory = int(memory_bytes or CHECK_MEMORY_BYTES)
    limit = float(seconds or CHECK_SECONDS)
    with checking_turn(limit):
        return _run_child(Path(path).resolve(), memory, limit, {k: getattr(model_files, k) for k in _CAPS})


def _run_child(path: Path, memory: int, limit: float, caps: dict[str, int]) -> dict[str, Any]:
    from core.model_files import ModelFileError

    env = {**os.environ, **_CHILD_ENV, _LANGUAGE_ENV: language(),
           "PYTHONPATH": os.pathsep.join([str(_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    cmd = [sys.executable, "-m", "core.model_check", str(path), json.dumps(caps), str(memory + _DATA_HEADROOM),
           str(int(limit) + 1)]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    killed, peak = "", 0
    try:
        while True:
            try:
                out, err = proc.communicate(timeout=_POLL_S)
                break
            except subprocess.TimeoutExpired:
                rss = _rss(proc.pid) or 0
                peak = max(peak, rss)
                if rss > memory:
                    killed = "memory"
                elif time.monotonic() - started > limit:
                    killed = "time"
                if killed:
                    proc.kill()
                    out, err = proc.communicate()
                    break
    finally:
        if proc.poll() is None:  # an exception here (e.g. KeyboardInterrupt): never leave the child behind
            proc.kill()
            proc.wait()
    if killed == "memory":
        raise ModelFileError(_("the model file was refused: checking it needed more than {limit} of memory (the "
                               "check was stopped at {peak})").format(limit=_gb(memory), peak=_gb(peak)))
    if killed == "time":
        raise ModelFileError(_("the model file was refused: checking it took longer than {seconds} s").format(
            seconds=f"{limit:.0f}"))
    result = _parse(out)
    if result is None:
        how = _("exit code {code}").format(code=proc.returncode)
        if proc.returncode < 0:
            try:
                how = _("signal {signal}").format(signal=signal.Signals(-proc.returncode).name)
            except ValueError:
                how = _("signal {signal}").format(signal=-proc.returncode)
        tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        raise ModelFileError(_("the model file was refused: the process checking it ended without an answer "
                               "({how}) {output}").format(how=how, output=tail[0][:200]).rstrip())
    if result.get("memory"):
        raise ModelFileError(_("the model file was refused: checking it needed more than {limit} of memory (an "
                               "allocation was refused)").format(limit=_gb(memory)))
    if not result.get("ok"):
        raise ModelFileError(str(result.get("error") or _("the model file was refused")))
    summary = dict(result.get("summary") or {})
    summary["check_seconds"] = round(time.monotonic() - started, 2)
    summary["check_peak_rss"] = max(peak, int(result.get("peak_rss") or 0))
    return summary


def _parse(out: bytes) -> dict[str, Any] | None:
    lines = out.decode("utf-8", "replace").strip().splitlines()
    try:
        result = json.loads(lines[-1]) if lines else None
    except ValueError:
        return None
    return result if isinstance(result, dict) else None


# ---- the child --------------------------------------------------------------------------------------


def _out_of_memory(exc: BaseException | None) -> bool:
    """MemoryError or TensorFlow's ResourceExhaustedError anywhere in the chain, or in Keras' summary text
    (a failed variable load is reported as a ValueError quoting numpy's "Unable to allocate")."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, MemoryError) or type(exc).__name__ == "ResourceExhaustedError" \
                or "Unable to allocate" in str(exc):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def main(argv: list[str]) -> None:
    """Child side: `python -m core.model_check PATH CAPS_JSON DATA_LIMIT CPU_SECONDS`; one JSON line on stdout."""
    path, caps, data_limit, cpu_seconds = argv[0], json.loads(argv[1]), int(argv[2]), int(argv[3])
    set_language(os.environ.get(_LANGUAGE_ENV))
    answer = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # whatever Keras or TensorFlow print goes to stderr; stdout carries only the answer
    try:
        import resource
    except ImportError:  # Windows: the parent's time limit remains
        resource = None
    # CPU time too: should the server die mid-check, the child still ends on its own.
    for which, value in (("RLIMIT_DATA", data_limit), ("RLIMIT_CPU", cpu_seconds)):
        try:
            resource.setrlimit(getattr(resource, which), (value, value))
        except (AttributeError, ValueError, OSError):  # not here: the parent's RSS watch and time limit remain
            pass
    from core import model_files

    for key in _CAPS:
        setattr(model_files, key, int(caps[key]))
    try:
        summary = model_files.check_model_file(path)
        model_files._keras_load(path)
        result: dict[str, Any] = {"ok": True, "summary": summary}
    except BaseException as exc:  # noqa: BLE001 - every failure is an answer to the parent
        if _out_of_memory(exc):
            result = {"ok": False, "memory": True}
        elif isinstance(exc, model_files.ModelFileError):
            result = {"ok": False, "error": str(exc)}
        else:
            result = {"ok": False, "error": _("Keras could not load the model: {error}").format(
                error=f"{type(exc).__name__}: {str(exc)[:300]}")}
    if resource is not None:  # ru_maxrss is in KiB on Linux
        result["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    answer.write(json.dumps(result, default=str) + "\n")
    answer.flush()
    os._exit(0)  # skip TensorFlow's slow teardown


if __name__ == "__main__":
    main(sys.argv[1:])
