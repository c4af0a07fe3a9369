"""The real app under `streamlit run`, and the system Chromium, for the browser tests and the scripts that drive
them the same way (docs/screenshots/take.py, bench/app_budgets.py).

Playwright never downloads a browser here: it drives /usr/bin/chromium (Debian's package; `make browser`
installs it) or $CHROMIUM. The server gets a free port, its own run store, no file watcher, and a process
group of its own, so that the training workers it spawns end with it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.helpers import ROOT, wait_until


class ServerError(RuntimeError):
    """The browser or the app server cannot be had; the message says why (with the server's log)."""


def chromium() -> str:
    """The Chromium executable Playwright drives."""
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    raise ServerError("no Chromium found: `make browser` installs Debian's chromium (or set CHROMIUM=/path)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_server(runs: Path, log: Path, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """Start `streamlit run app.py` on a free port with its own run store (and `env` added to the
    environment), its output in `log`; returns the process and base URL at once, before it answers."""
    port = free_port()
    env = {**os.environ, "KERAS_LAB_RUNS": str(runs), "PYTHONUNBUFFERED": "1", **(env or {})}
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
           "--server.port", str(port), "--server.fileWatcherType", "none",
           "--browser.gatherUsageStats", "false"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    return proc, f"http://127.0.0.1:{port}"


def _healthy(proc: subprocess.Popen, url: str) -> bool:
    if proc.poll() is not None:
        raise ServerError("streamlit exited")
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def wait_healthy(proc: subprocess.Popen, url: str, log: Path, *, deadline_s: float = 120.0,
                 every_s: float = 0.3) -> None:
    """Wait until the server answers its health check; if it exits or never answers, stop it and raise
    ServerError with its log."""
    try:
        wait_until(lambda: _healthy(proc, url), "the server's health check", deadline_s, every_s=every_s)
    except (ServerError, TimeoutError) as exc:
        stop_server(proc)
        raise ServerError(f"streamlit did not start ({exc}); its log:\n{log.read_text()}") from None


def start_server(runs: Path, log: Path, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """launch_server, then wait_healthy: returns the process and base URL of a server that answers."""
    proc, url = launch_server(runs, log, env)
    wait_healthy(proc, url, log)
    return proc, url


def stop_server(proc: subprocess.Popen) -> None:
    """Terminate the server (killed if it does not end in 20 s), then any process left in its group."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):  # training workers left in its group
        os.killpg(proc.pid, signal.SIGKILL)
