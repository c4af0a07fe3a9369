"""In the browser, on a shared server (KERAS_LAB_SHARED=1, as on Community Cloud whose disk is wiped on
restart): a visitor downloads a run zip from Compare runs; uploaded on Compare runs by a visitor with an
empty workspace (the same person after a restart, or anyone they gave the file), it comes back as a new run
of that workspace, with its label and its metrics; the first workspace is untouched."""

from __future__ import annotations

import io
import zipfile
from urllib.parse import parse_qs, urlparse

import pytest

from core.compare import run_metrics
from core.runs import RunStore
from core.workspaces import is_workspace_key, new_workspace_key, workspace_root
from tests.core.test_evaluation import write_run
from tests.e2e.conftest import (
    console_errors,
    goto,
    screenshot,
    start_server,
    stop_server,
    until,
    wait_for_app,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def travel(tmp_path_factory):
    """A shared server of its own, and a workspace (its key) holding one finished run; yields
    (base URL, runs folder, key, run id)."""
    runs = tmp_path_factory.mktemp("travel-runs")
    key = new_workspace_key()
    run_id = write_run(RunStore(workspace_root(runs, key)), "iris", label="kept by a download")
    log = tmp_path_factory.mktemp("travel-log") / "streamlit.log"
    proc, url = start_server(runs, log, env={"KERAS_LAB_SHARED": "1"})
    yield url, runs, key, run_id
    stop_server(proc, log)


def _ws(page) -> str:
    return parse_qs(urlparse(page.url).query).get("ws", [""])[0]


def test_a_downloaded_run_zip_uploads_back_as_a_new_run(new_tab, travel, tmp_path):
    url, runs, key, run_id = travel
    owner = new_tab()
    problems = console_errors(owner, "runs")
    goto(owner, url, f"runs?ws={key}")
    owner.get_by_test_id("stMultiSelect").filter(has_text="Selected runs").click()
    owner.keyboard.type(run_id)
    owner.keyboard.press("Enter")
    owner.keyboard.press("Escape")
    wait_for_app(owner)
    with owner.expect_download() as info:
        owner.get_by_test_id("stDownloadButton").filter(has_text="Run folder (.zip)").click()
    download = info.value
    assert download.suggested_filename == f"{run_id}.zip"
    data = open(download.path(), "rb").read()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert {n.split("/")[0] for n in zf.namelist()} == {run_id}

    visitor = new_tab()
    problems += console_errors(visitor, "runs")
    goto(visitor, url, "runs")
    until(visitor, lambda: is_workspace_key(_ws(visitor)), "the visitor's workspace key in the URL")
    assert _ws(visitor) != key
    visitor.get_by_text("No runs yet").wait_for()
    saved = tmp_path / download.suggested_filename
    saved.write_bytes(data)
    visitor.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(saved))
    visitor.get_by_text("Imported 1 run(s)").wait_for()
    wait_for_app(visitor)
    mine = RunStore(workspace_root(runs, _ws(visitor)))
    [back] = mine.list_runs()
    assert back.run_id != run_id and back.config["label"] == "kept by a download"
    original = RunStore(workspace_root(runs, key))
    assert run_metrics(mine, back.run_id) == run_metrics(original, run_id)
    assert [i.run_id for i in original.list_runs()] == [run_id]
    visitor.get_by_text("1 of 1 runs.").wait_for()  # listed (the table itself is drawn on a canvas)
    wait_for_app(visitor)
    assert visitor.get_by_text(f"Imported 1 run(s): {back.run_id} (kept by a download)").is_visible()
    screenshot(visitor, "runs-imported")
    assert not problems, problems
