"""The training process is killed mid-run (what the out-of-memory killer does): the page shows that run
failed, the server stays up, and the next queued run trains in a fresh process."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest

from core.runs import RunStore
from tests.e2e.conftest import goto, screenshot, start_server, stop_server, until, wait_for_app

pytestmark = pytest.mark.e2e
_RUN_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}")


@pytest.fixture
def own_server(tmp_path):
    runs, log = tmp_path / "runs", tmp_path / "streamlit.log"
    proc, url = start_server(runs, log)
    yield proc, url, runs
    stop_server(proc, log)


def _training_processes(server_pid: int) -> list[int]:
    """Children of the server that are multiprocessing spawn workers (not its resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == server_pid and "spawn_main" in cmdline:
            found.append(int(entry.name))
    return found


def _run_in_url(page) -> str:
    found = _RUN_ID.search(page.url)
    return found.group(0) if found else ""


def _start(page, epochs: int) -> str:
    """Start a run; its id, once the URL names it instead of the run the page showed before."""
    before = _run_in_url(page)
    page.get_by_label("Epochs", exact=True).fill(str(epochs))
    page.get_by_role("button", name="Start training").click()
    run_id = until(page, lambda: _run_in_url(page) if _run_in_url(page) != before else "", "the new run's id in the URL")
    wait_for_app(page)
    return run_id


def test_killing_the_worker_fails_only_its_run_and_the_next_one_trains(new_tab, own_server):
    proc, url, runs = own_server
    store = RunStore(runs)
    page = new_tab()
    goto(page, url, "train")
    doomed = _start(page, 400)
    until(page, lambda: store.read_metrics(doomed), "the first run's first epoch on disk")
    later = _start(page, 2)
    [worker] = until(page, lambda: _training_processes(proc.pid), "the training process")
    os.kill(worker, signal.SIGKILL)

    until(page, lambda: store.read_status(later)["state"] == "completed", "the next run to complete",
          deadline_s=240)
    assert proc.poll() is None, "the server died with its worker"
    status = store.read_status(doomed)
    assert status["state"] == "failed" and "killed (out of memory?)" in status["message"]

    goto(page, url, f"train?run={doomed}")
    until(page, lambda: "failed" in page.locator("h4", has_text="Run ").first.inner_text(),
          "the killed run shown as failed")
    assert page.get_by_text("the training process was killed (out of memory?)").count() >= 1
    screenshot(page, "worker-killed")
