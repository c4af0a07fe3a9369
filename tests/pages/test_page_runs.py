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

ROOT = Path(__file__).resolve().parents[2]


def _app():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file("../../app.py", default_timeout=60)
    at.run()
    at.switch_page("pages/runs.py")
    at.run()
    assert not at.exception, at.exception
    return at


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


def test_delete_needs_confirmation_and_refuses_running_runs(clean_streamlit_caches):
    store = RunStore()
    keep = write_run(store, "iris", seed=1)
    gone = write_run(store, "iris", seed=2)
    busy = write_run(store, "iris", seed=3, status="running")
    # trained by another live app process on this machine, so start-up recovery leaves it running
    store.write_status(busy, "running", "training", pid=os.getppid(), host=socket.gethostname())
    at = _app()
    at.multiselect(key="runs_selected").set_value([busy]).run()
    assert any("Cannot delete a queued or running run" in w.value for w in at.warning)
    at.multiselect(key="runs_selected").set_value([gone]).run()
    assert at.button(key="runs_delete").disabled  # nothing happens before the box is ticked
    at.checkbox(key="runs_delete_sure").check().run()
    at.button(key="runs_delete").click().run()
    assert not at.exception, at.exception
    assert not store.run_dir(gone).exists()
    assert store.run_dir(keep).exists() and store.run_dir(busy).exists()
    assert set(at.dataframe[0].value["run_id"]) == {keep, busy}


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
    at.multiselect(key="runs_selected").set_value([bad_status, bad_config]).run()
    assert not at.exception, at.exception
    at.checkbox(key="runs_delete_sure").check().run()
    at.button(key="runs_delete").click().run()
    assert not at.exception, at.exception
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
    assert any(shown(i.value) == f"Runs are shown as far as they can be read, but cannot be deleted or started: "
                                 f"{reason}." for i in at.info), [shown(i.value) for i in at.info]
    assert list(at.dataframe[0].value["run_id"]) == [keep]
    at.multiselect(key="runs_selected").set_value([keep]).run()
    at.checkbox(key="runs_delete_sure").check().run()
    at.button(key="runs_delete").click().run()
    assert not at.exception, at.exception
    assert [shown(e.value) for e in at.error] == [f"Could not delete {keep}: cannot delete run {keep}: the file "
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
