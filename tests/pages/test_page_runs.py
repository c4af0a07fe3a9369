"""AppTest of the Runs page on runs written to the temporary run store (arrays written directly, no TF)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from core.compare import describe_change
from core.runs import RunStore
from tests.core.test_evaluation import write_run
from tests.helpers import open_page

ROOT = Path(__file__).resolve().parents[2]


def _app():
    return open_page("pages/runs.py", timeout=60)


def test_table_filters_and_differing_settings(clean_streamlit_caches):
    store = RunStore()
    a = write_run(store, "digits", seed=1, training={"learning_rate": 0.01})
    b = write_run(store, "digits", seed=2, training={"learning_rate": 0.001})
    c = write_run(store, "iris", seed=3, training={"learning_rate": 0.01})
    at = _app()
    table = at.dataframe[0].value
    assert set(table["run_id"]) == {a, b, c}
    settings = [col for col in table.columns if "." in col]
    assert "training.learning_rate" in settings and "training.optimizer" not in settings  # same everywhere
    at.toggle(key="runs_diff").set_value(False).run()
    assert "training.optimizer" in at.dataframe[0].value.columns
    at.multiselect(key="runs_dataset").set_value(["iris"]).run()
    assert list(at.dataframe[0].value["run_id"]) == [c]
    at.multiselect(key="runs_dataset").set_value([]).run()
    at.text_input(key="runs_text").input(b[-6:]).run()
    assert list(at.dataframe[0].value["run_id"]) == [b]


def test_compare_two_runs_says_which_classes_changed(clean_streamlit_caches):
    store = RunStore()
    worse = write_run(store, "digits", accuracy=0.5, seed=1, label="A")
    better = write_run(store, "digits", accuracy=0.9, seed=2, label="B")
    at = _app()
    at.multiselect(key="runs_selected").set_value([better, worse]).run()
    picked = at.multiselect(key="runs_selected")
    assert [picked.format_func(r) for r in (better, worse)] == [  # settings and labels tell runs apart
        f"{better} · digits · tiny · adam 0.001 · 3 ep · B · completed",
        f"{worse} · digits · tiny · adam 0.001 · 3 ep · A · completed"]
    assert not at.exception, at.exception
    at.selectbox(key="cmp_a").set_value(worse)
    at.selectbox(key="cmp_b").set_value(better)
    at.run()

    def f1(run_id):
        p = store.read_predictions(run_id)
        return f1_score(p["y_true"], p["probs"].argmax(1), average=None, labels=range(10), zero_division=0)

    expected = describe_change(pd.Series(f1(better) - f1(worse), index=[str(i) for i in range(10)]),
                               "run A", "run B")
    assert any(expected in m.value for m in at.markdown), [m.value for m in at.markdown]
    iris = write_run(store, "iris", seed=4)
    at.multiselect(key="runs_selected").set_value([better, iris]).run()
    at.selectbox(key="cmp_a").set_value(iris).run()
    assert any("only meaningful on the same dataset" in i.value for i in at.info)


def _bulk(at, action: str, run_ids: list[str]):
    """Select runs, choose a bulk action, confirm and apply it."""
    at.multiselect(key="runs_selected").set_value(run_ids).run()
    at.segmented_control(key="runs_bulk_action").set_value(action).run()
    assert at.button(key="runs_bulk_go").disabled  # nothing happens before the box is ticked
    at.checkbox(key="runs_bulk_sure").check().run()
    at.button(key="runs_bulk_go").click().run()
    assert not at.exception, at.exception
    return at


def test_delete_needs_confirmation_and_refuses_running_runs(clean_streamlit_caches):
    store = RunStore()
    keep = write_run(store, "iris", seed=1)
    gone = write_run(store, "iris", seed=2)
    busy = write_run(store, "iris", seed=3, status="running")
    # trained by another live app process on this machine, so start-up recovery leaves it running
    store.write_status(busy, "running", "training", pid=os.getppid(), host=socket.gethostname())
    at = _app()
    at.multiselect(key="runs_selected").set_value([busy]).run()
    assert any("Queued or running runs are left as they are" in w.value for w in at.warning)
    _bulk(at, "delete", [gone, busy])
    assert [shown(e.value) for e in at.error] == [f"{busy} is queued or running: stop it on the Train page first"]
    assert any(s.value == "Delete: 1 run(s) done." for s in at.success)
    assert not store.run_dir(gone).exists()
    assert store.run_dir(keep).exists() and store.run_dir(busy).exists()
    assert set(at.dataframe[0].value["run_id"]) == {keep, busy}


def test_hide_archive_restore_and_delete_in_bulk(clean_streamlit_caches):
    store = RunStore()
    runs = [write_run(store, "iris", seed=n, label=f"trial {n}", group="sweep:lr") for n in range(5)]
    at = _app()
    at.text_input(key="runs_text").input("sweep:lr").run()
    at.button(key="runs_select_listed").click().run()  # select every listed run at once
    assert sorted(at.multiselect(key="runs_selected").value) == sorted(runs)
    _bulk(at, "hide", runs[:2])
    assert set(at.dataframe[0].value["run_id"]) == set(runs[2:])
    assert all(store.run_info(r).hidden for r in runs[:2]) and store.run_dir(runs[0]).is_dir()
    at.toggle(key="runs_show_hidden").set_value(True).run()
    table = at.dataframe[0].value.set_index("run_id")
    assert set(table.index) == set(runs) and list(table.loc[runs[:3], "hidden"]) == [True, True, False]
    _bulk(at, "unhide", [runs[0]])
    assert not store.run_info(runs[0]).hidden
    at.toggle(key="runs_show_hidden").set_value(False).run()
    _bulk(at, "archive", runs[2:4])
    assert set(at.dataframe[0].value["run_id"]) == {runs[0], runs[4]}
    assert sorted(i.run_id for i in store.archive.list_runs()) == sorted(runs[2:4])
    at.multiselect(key="archive_selected").set_value([runs[2]]).run()
    at.button(key="archive_restore").click().run()
    assert not at.exception, at.exception
    assert set(at.dataframe[0].value["run_id"]) == {runs[0], runs[2], runs[4]}
    at.multiselect(key="archive_selected").set_value([runs[3]]).run()
    assert at.button(key="archive_delete").disabled
    at.checkbox(key="archive_delete_sure").check().run()
    at.button(key="archive_delete").click().run()
    assert store.archive.list_runs() == [] and not (store.archive.root / runs[3]).exists()
    _bulk(at, "delete", [runs[0], runs[4]])
    assert {i.run_id for i in store.list_runs()} == {runs[1], runs[2]}  # runs[1] is still hidden


def test_bulk_actions_only_reach_the_visitors_own_runs():
    """On a shared server a run id of another workspace names no run in this one: nothing happens to it."""
    import streamlit as st

    from core.jobs import JobManager
    from ui.runs import bulk_action
    from ui.workspace import WorkspaceJobs

    manager = JobManager(RunStore())
    try:
        mine, theirs = (WorkspaceJobs(manager, key) for key in ("my-own-workspace-key-0000", "someone-elses-key-0000"))
        run_id = write_run(theirs.store, "iris", seed=1)
        for action in ("hide", "archive", "delete"):
            bulk_action(mine, action, [run_id])
            assert st.session_state["_runs_bulk_result"][1] == [
                f"Could not {action} {run_id}: run {run_id} does not exist (deleted?)"]
        assert theirs.store.run_info(run_id).status == "completed" and not theirs.store.run_info(run_id).hidden
        assert theirs.store.archive.list_runs() == [] and mine.store.list_runs() == []
        bulk_action(theirs, "archive", [run_id])  # its owner can
        assert [i.run_id for i in theirs.store.archive.list_runs()] == [run_id]
    finally:
        manager.shutdown()


def test_cross_validation_group_shows_mean_and_std(clean_streamlit_caches):
    store = RunStore()
    group = "cv-iris-3fold-abc123"
    ids = [write_run(store, "iris", accuracy=acc, seed=i, group=group,
                     split={"kind": "cv", "k": 3, "fold": i, "seed": 0}) for i, acc in enumerate((0.5, 0.7, 0.9))]
    at = _app()
    accs = [np.mean(store.read_predictions(r)["probs"].argmax(1) == store.read_predictions(r)["y_true"])
            for r in ids]
    summary = next(d.value for d in at.dataframe if "mean ± std" in d.value.columns).set_index("metric")
    assert summary.loc["test_accuracy", "mean ± std"] == f"{np.mean(accs):.4f} ± {np.std(accs):.4f}"
    assert any("3 of 3 folds finished" in e.proto.label for e in at.expander)


def test_runs_page_never_imports_tensorflow(tmp_path):
    """DESIGN §8: pages that need no model stay light; a fresh process proves it."""
    store = RunStore(tmp_path / "runs")
    write_run(store, "iris")
    code = ("import sys\nfrom streamlit.testing.v1 import AppTest\n"
            "at = AppTest.from_file('app.py', default_timeout=60); at.run(); at.switch_page('pages/runs.py'); at.run()\n"
            "assert not at.exception, at.exception\nassert len(at.dataframe[0].value) == 1\n"
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "KERAS_LAB_RUNS": str(tmp_path / "runs")})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False False"


def test_settings_chart_shows_what_differs_among_the_chosen_runs(clean_streamlit_caches):
    """Settings that differ only among runs not chosen used to get axes too: flat lines on which the chosen
    runs are equal, and with enough of them the telling settings fell past the 8-axis cap."""
    import json

    store = RunStore()
    adam = write_run(store, "digits", seed=1)
    sgd = write_run(store, "digits", seed=2, training={"optimizer": "sgd", "learning_rate": 0.01})
    for n, batch in enumerate((8, 16, 64, 128)):  # other runs, differing in many other settings
        write_run(store, "digits", seed=3 + n, epochs=2 + n, training={
            "batch_size": batch, "seed": n, "momentum": 0.1 * n, "weight_decay": 0.01 * n, "patience": n,
            "step_every": n + 1, "step_factor": 0.1 * (n + 1), "schedule": ["step", "cosine"][n % 2]})
    at = _app()
    at.multiselect(key="runs_selected").set_value([adam, sgd]).run()
    assert not at.exception, at.exception
    spec = next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if c.proto.spec and "parcoords" in c.proto.spec)
    from core.charts.eval import setting_label

    labels = [d["label"] for d in spec["data"][0]["dimensions"]]
    assert setting_label("training.optimizer") in labels and setting_label("training.learning_rate") in labels, labels
    assert setting_label("training.batch_size") not in labels and setting_label("training.epochs") not in labels, labels


# ---- run store faults are visible, never silent --------------------------------------------------------

def shown(text: str) -> str:
    """What a person reads: Markdown backslash escapes and invisible word joiners removed."""
    return re.sub(r"\\(.)", r"\1", text.replace("\u2060", ""))


def _tear_metrics_line(store, run_id, line: int) -> None:
    path = store.run_dir(run_id) / "metrics.jsonl"
    lines = path.read_bytes().split(b"\n")
    lines[line - 1] = lines[line - 1][:10]
    path.write_bytes(b"\n".join(lines))


def test_damaged_runs_are_listed_with_the_reason_and_can_be_deleted(clean_streamlit_caches):
    store = RunStore()
    good = write_run(store, "iris", seed=1)
    torn = write_run(store, "iris", seed=2)
    _tear_metrics_line(store, torn, 2)
    bad_status = write_run(store, "iris", seed=3)
    (store.run_dir(bad_status) / "status.json").write_bytes(b'{"state": "compl')
    bad_config = write_run(store, "iris", seed=4)
    (store.run_dir(bad_config) / "config.json").write_text('{"training": "adam"}')
    at = _app()
    table = at.dataframe[0].value.set_index("run_id")
    assert set(table.index) == {good, torn, bad_status, bad_config}
    assert table.loc[bad_status, "status"] == table.loc[bad_config, "status"] == "damaged"
    assert table.loc[bad_status, "problem"] == "damaged: status.json is not valid JSON (cut off or corrupt)"
    assert table.loc[bad_config, "problem"] == "damaged: config.json: 'training' is not a JSON object"
    assert table.loc[torn, "problem"] == "metrics.jsonl: line 2 is damaged; 2 epochs shown"
    assert (table.loc[torn, "status"], table.loc[good, "problem"]) == ("completed", "")
    assert any(shown(w.value).startswith("3 run(s) have a problem") for w in at.warning)
    _bulk(at, "delete", [bad_status, bad_config])
    assert not at.error, [shown(e.value) for e in at.error]
    assert sorted(p.name for p in store.root.iterdir()) == sorted([good, torn])
    assert set(at.dataframe[0].value["run_id"]) == {good, torn}


def test_pages_that_pick_runs_skip_damaged_ones_without_crashing(clean_streamlit_caches):
    store = RunStore()
    good = write_run(store, "iris", seed=1)
    bad = write_run(store, "iris", seed=2)
    (store.run_dir(bad) / "status.json").write_bytes(b"")
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file("../../app.py", default_timeout=60)
    at.run()
    at.switch_page("pages/evaluate.py").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="eval_run").options == [at.selectbox(key="eval_run").format_func(good)]
    at.switch_page("pages/runs.py").run()  # cross-validation offers only runs it can reuse
    assert not at.exception, at.exception
    assert [o for o in at.selectbox(key="cv_run").options] == [at.selectbox(key="cv_run").format_func(good)]
    at.query_params["run"] = bad
    at.switch_page("pages/train.py").run()
    assert not at.exception, at.exception
    assert any(shown(w.value).startswith(f"Run `{bad}` is damaged: status.json is not valid JSON")
               for w in at.warning), [shown(w.value) for w in at.warning]


def test_a_read_only_runs_folder_still_lists_runs_and_says_why_nothing_can_change(clean_streamlit_caches,
                                                                                 monkeypatch):
    from tests.core.test_runs import make_read_only

    store = RunStore()
    keep = write_run(store, "iris", seed=1)
    make_read_only(monkeypatch, store.root)
    at = _app()
    reason = f"runs cannot be saved in {store.root}: the file system is read-only"
    assert any(shown(i.value) == f"Runs are shown as far as they can be read, but cannot be imported, changed or "
                                 f"started: {reason}." for i in at.info), [shown(i.value) for i in at.info]
    assert list(at.dataframe[0].value["run_id"]) == [keep]
    assert at.file_uploader(key="runs_import_0").disabled
    _bulk(at, "delete", [keep])
    assert [shown(e.value) for e in at.error] == [f"Could not delete {keep}: cannot delete run {keep}: the file "
                                                  f"system is read-only"]
    _bulk(at, "archive", [keep])
    assert [shown(e.value) for e in at.error] == [f"Could not archive {keep}: cannot archive run {keep}: the file "
                                                  f"system is read-only"]
    assert store.run_info(keep).status == "completed"


# ---- the page follows queued and running runs by itself ----------------------------------------------

def _busy(store: RunStore, run_id: str, state: str) -> None:
    """Queued or training in another live app process on this machine (start-up recovery leaves it)."""
    store.write_status(run_id, state, "training" if state == "running" else "", pid=os.getppid(),
                       host=socket.gethostname())


def _cv_label(at, group: str) -> str:
    return next((e.proto.label for e in at.expander if group in e.proto.label), "")


def _polling(at) -> bool:
    return any("this page updates by itself" in c.value for c in at.caption)


def test_a_cross_validation_in_progress_is_followed_until_its_summary_shows(clean_streamlit_caches):
    """The page used to show a finished cross-validation only after a manual reload. While a fold is queued
    or running it polls (a run_every fragment AppTest does not tick: each at.run() stands for a tick), and
    the summary fills in as the folds finish."""
    store = RunStore()
    group = "cv-iris-2fold-0a1b2c"
    folds = [write_run(store, "iris", accuracy=acc, seed=i, epochs=1, group=group,
                       split={"kind": "cv", "k": 2, "fold": i, "seed": 0}) for i, acc in enumerate((0.6, 0.8))]
    _busy(store, folds[0], "running")
    _busy(store, folds[1], "queued")
    at = _app()
    assert "0 of 2 folds finished" in _cv_label(at, group)
    assert _polling(at), [c.value for c in at.caption]
    line = next(shown(c.value) for c in at.caption if "this page updates by itself" in c.value)
    assert "2 run(s) queued or training" in line and f"{folds[0]} running" in line and f"{folds[1]} queued" in line
    for n, run_id in enumerate(folds, start=1):
        store.write_status(run_id, "completed", "1 epochs")
        at.run()
        assert not at.exception, at.exception
        assert f"{n} of 2 folds finished" in _cv_label(at, group)
    summary = next(d.value for d in at.dataframe if "mean ± std" in d.value.columns).set_index("metric")
    accs = [np.mean(store.read_predictions(r)["probs"].argmax(1) == store.read_predictions(r)["y_true"])
            for r in folds]
    assert summary.loc["test_accuracy", "mean ± std"] == f"{np.mean(accs):.4f} ± {np.std(accs):.4f}"
    assert not _polling(at)  # nothing active: the polling fragment is no longer drawn
    assert set(at.dataframe[0].value["status"]) == {"completed"}


class _Manager:
    """What runs_changed reads of ui.workspace.WorkspaceJobs."""

    def __init__(self, store, live=None, active=()):
        self.store, self.live, self.active = store, dict(live or {}), list(active)

    def live_status(self, run_id):
        return (self.live[run_id], "") if run_id in self.live else None

    def active_run_ids(self):
        return self.active


def test_runs_changed_sees_state_changes_new_runs_and_deletions():
    from ui.runs import runs_changed

    store = RunStore()
    a = write_run(store, "iris", seed=1)
    _busy(store, a, "running")
    b = write_run(store, "iris", seed=2)
    seen = {a: "running", b: "queued"}
    # this server's job manager knows b; a is trained by another process (its status.json)
    assert not runs_changed(_Manager(store, {b: "queued"}, [b]), seen, {a, b})
    assert runs_changed(_Manager(store, {b: "running"}, [b]), seen, {a, b})  # b left the queue
    assert runs_changed(_Manager(store, {b: "queued"}, [b, "20990101-000000-abcdef"]), seen, {a, b})  # a new run
    store.write_status(a, "completed", "done")
    assert runs_changed(_Manager(store, {b: "queued"}, [b]), seen, {a, b})  # a finished elsewhere
    store.delete_run(a)
    assert runs_changed(_Manager(store, {b: "queued"}, [b]), {a: "running"}, {a, b})  # deleted


@pytest.mark.slow
def test_cross_validate_from_the_form_and_watch_the_summary_arrive(clean_streamlit_caches):
    """The real thing: 2 folds of 1 epoch on iris, trained by the job manager's worker process."""
    import time

    from ui.jobs import job_manager

    store = RunStore()
    base = write_run(store, "iris", epochs=1, training={"batch_size": 16})
    at = _app()
    at.selectbox(key="cv_run").set_value(base)
    at.number_input(key="cv_k").set_value(2)
    next(b for b in at.button if b.label == "Cross-validate").click()
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [shown(e.value) for e in at.error]
    message = next(shown(s.value) for s in at.success if s.value.startswith("Queued 2 folds"))
    group = message.split("as group ")[1].split(".")[0]
    assert "0 of 2 folds finished" in _cv_label(at, group) and _polling(at)
    end = time.monotonic() + 240
    while "2 of 2 folds finished" not in _cv_label(at, group):
        assert time.monotonic() < end, f"gave up: {_cv_label(at, group)}"
        time.sleep(1)
        at.run()
        assert not at.exception, at.exception
    summary = next(d.value for d in at.dataframe if "mean ± std" in d.value.columns).set_index("metric")
    assert summary.loc["test_accuracy", "folds"] == 2
    at.run()  # the run after the last change draws no polling fragment
    assert not _polling(at) and not any(s.value.startswith("Queued 2 folds") for s in at.success)
    for run in store.list_runs():
        job_manager().stop(run.run_id)


# ---- many runs: one page of the table at a time, metrics read for it only ----------------------------

def test_the_table_pages_and_reads_metrics_of_the_rows_shown_only(clean_streamlit_caches, monkeypatch):
    import core.compare
    import ui.runs

    monkeypatch.setattr(ui.runs, "PAGE_ROWS", 2)
    read = []
    real = core.compare.run_metrics
    monkeypatch.setattr(core.compare, "run_metrics", lambda store, run_id: read.append(run_id) or real(store, run_id))
    store = RunStore()
    runs = sorted(write_run(store, "iris", seed=n, accuracy=0.2 * n) for n in range(5))  # oldest first
    at = _app()
    table = at.dataframe[0].value
    assert list(table["run_id"]) == runs[:2:-1] and sorted(read) == sorted(runs[3:])  # the newest two
    accs = [np.mean(store.read_predictions(r)["probs"].argmax(1) == store.read_predictions(r)["y_true"]) for r in runs]
    assert list(table["test_accuracy"]) == pytest.approx([100 * accs[4], 100 * accs[3]])
    assert at.pagination(key="runs_page").num_pages == 3
    read.clear()
    at.pagination(key="runs_page").set_value(3).run()
    assert list(at.dataframe[0].value["run_id"]) == [runs[0]] and read == [runs[0]]
    read.clear()
    at.run()  # a rerun reads nothing again
    assert read == []
    at.multiselect(key="runs_selected").set_value([runs[4], runs[1]]).run()  # runs of other pages, compared
    assert not at.exception, at.exception
    assert sorted(read) == [runs[1]]  # runs[4]'s metrics were read on page 1 and are cached
    store.append_metrics(runs[0], {"kind": "epoch", "epoch": 4, "val_accuracy": 0.99})
    read.clear()
    at.run()
    assert read == [runs[0]] and at.dataframe[0].value["best_val_accuracy"].max() == pytest.approx(99)
    at.text_input(key="runs_text").input(runs[2][-6:]).run()  # a filter: fewer pages, back within range
    assert list(at.dataframe[0].value["run_id"]) == [runs[2]] and not at.pagination
    at.text_input(key="runs_text").input("no such run").run()
    assert not at.exception, at.exception
    assert at.dataframe[0].value.empty


# ---- runs that travel: a downloaded zip comes back ---------------------------------------------------

def test_a_run_zip_uploaded_on_the_page_comes_back_as_new_runs(clean_streamlit_caches, tmp_path):
    from core.exports import run_zip

    elsewhere = RunStore(tmp_path / "another-lab")
    a = write_run(elsewhere, "iris", seed=1, label="=HYPERLINK(\"x\") *bold*")
    b = write_run(elsewhere, "iris", seed=2, label="second")
    at = _app()  # no runs yet: the import is open
    assert any("No runs yet" in i.value for i in at.info)
    at.file_uploader(key="runs_import_0").set_value(("runs.zip", run_zip(elsewhere, a, b), "application/zip")).run()
    assert not at.exception, at.exception
    store = RunStore()
    imported = {i.config["label"]: i.run_id for i in store.list_runs()}
    assert set(imported) == {"=HYPERLINK(\"x\") *bold*", "second"} and not {a, b} & set(imported.values())
    [success] = at.success
    assert shown(success.value).startswith("Imported 2 run(s): ") and "*bold*" in shown(success.value)
    assert set(at.dataframe[0].value["run_id"]) == set(imported.values())
    assert at.file_uploader(key="runs_import_1").value is None  # a fresh, empty uploader
    at.file_uploader(key="runs_import_1").set_value(("runs.zip", run_zip(elsewhere, a), "application/zip")).run()
    assert [shown(w.value) for w in at.warning] == [f"run folder '{a}': refused, it is already here as run "
                                                    f"{imported[elsewhere.read_config(a)['label']]}"]


def test_a_hostile_zip_is_refused_with_its_reason_and_the_page_keeps_working(clean_streamlit_caches):
    import io
    import zipfile

    store = RunStore()
    keep = write_run(store, "iris")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../../../etc/config.json", "{}")
    at = _app()
    at.file_uploader(key="runs_import_0").set_value(("evil.zip", buf.getvalue(), "application/zip")).run()
    assert not at.exception, at.exception
    assert [shown(e.value) for e in at.error] == [
        "evil.zip: refused, member '../../../etc/config.json' has an unsafe path (absolute, '..', empty parts or "
        "backslashes)"]
    assert [i.run_id for i in store.list_runs()] == [keep] and list(at.dataframe[0].value["run_id"]) == [keep]


# ---- names in any script ---------------------------------------------------------------------------

@pytest.fixture
def downloads(monkeypatch):
    """file name -> the data callable a deferred download button registered (AppTest serves no files)."""
    from streamlit.runtime.media_file_manager import MediaFileManager

    files = {}
    real = MediaFileManager.add_deferred

    def spy(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        files[file_name] = data_callable
        return real(self, data_callable, mimetype, coordinates, file_name, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add_deferred", spy)
    return files


def test_chinese_class_names_and_labels_show_in_the_table_the_chart_and_the_csv(clean_streamlit_caches, downloads):
    """Issue 16, item 5: an upload with Chinese class names and a run with a Chinese label read the same in
    the runs table, the confusion-change chart and the downloaded CSV (UTF-8 with a byte-order mark)."""
    import io
    import json

    store = RunStore()
    runs = [write_run(store, "breast_cancer", seed=n, accuracy=acc, label=label)
            for n, (acc, label) in enumerate(((0.6, "第一次"), (0.9, "第二次")))]
    for run_id in runs:
        dataset = dict(store.read_config(run_id)["dataset"], name="upload:宠物.csv", class_names=["猫", "狗"])
        store.update_config(run_id, dataset=dataset)
    at = _app()
    table = at.dataframe[0].value.set_index("run_id")
    assert list(table.loc[runs, "label"]) == ["第一次", "第二次"]
    assert set(table["dataset"]) == {"upload:宠物.csv"}
    at.multiselect(key="runs_selected").set_value(runs).run()
    at.selectbox(key="cmp_a").set_value(runs[0])
    at.selectbox(key="cmp_b").set_value(runs[1])
    at.run()
    assert not at.exception, at.exception
    chart = json.loads(next(c.proto.spec for c in at.get("plotly_chart") if "Confusion change" in c.proto.spec))
    heat = chart["data"][0]
    assert heat["x"] == heat["y"] == ["猫", "狗"]
    assert any("第一次" in o for o in at.selectbox(key="cmp_a").options)
    data = downloads["keras-lab-metrics.csv"]()
    assert data.startswith("\ufeff".encode())  # a spreadsheet then reads it as UTF-8
    every = pd.read_csv(io.StringIO(data.decode("utf-8-sig")))
    assert set(every["label"]) == {"第一次", "第二次"} and set(every["dataset"]) == {"upload:宠物.csv"}


def test_a_download_is_in_the_language_of_the_visitor_who_clicked_it(clean_streamlit_caches, downloads):
    """Streamlit makes a download's data on the click, in a thread of its own (where texts would be English):
    the CSV still has the headers of the visitor who saw the button."""
    import threading

    from streamlit.testing.v1 import AppTest

    from core.i18n import language_of

    store = RunStore()
    run_id = write_run(store, "iris", label="第一次")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["lang"] = "zh"
    with language_of("zh"):  # AppTest formats the chosen options (run labels) in this thread
        at.run()
        at.switch_page("pages/runs.py").run()
        at.multiselect(key="runs_selected").set_value([run_id]).run()
    assert not at.exception, at.exception
    made = {}
    for name in ("keras-lab-metrics.csv", f"{run_id}-history.csv"):
        clicked = threading.Thread(target=lambda n=name: made.update({n: downloads[n]()}))
        clicked.start()
        clicked.join()
    assert made["keras-lab-metrics.csv"].decode("utf-8-sig").startswith("运行 ID,数据集,模型,状态,标签,")
    assert made[f"{run_id}-history.csv"].decode("utf-8-sig").startswith("记录类型,轮次,损失,准确率,")
