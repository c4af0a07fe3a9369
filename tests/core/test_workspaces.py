"""Workspaces: core functions, the scoped job manager, and every page in AppTest on a shared server.

A shared server (KERAS_LAB_SHARED=1) gives every visitor a workspace of their own; the local lab (the
default) keeps one runs folder and shows no workspace UI. Runs are written in the real format (no TF).
"""

from __future__ import annotations

import re

import pytest
from streamlit.testing.v1 import AppTest

from core.jobs import JobManager, QueueFullError, TrainRequest
from core.runs import RunStore
from core.workspaces import (
    WORKSPACES_DIR,
    is_workspace_key,
    new_workspace_key,
    user_workspace,
    workspace_root,
    workspace_roots,
)
from tests.core.test_evaluation import write_run
from tests.pages.test_page_runs import shown

# ---- core ---------------------------------------------------------------------------------------------


def test_new_keys_are_valid_unguessable_and_different():
    keys = {new_workspace_key() for _ in range(200)}
    assert len(keys) == 200 and all(is_workspace_key(k) for k in keys)
    assert all(len(k) >= 22 for k in keys)  # 16 random bytes


@pytest.mark.parametrize("value", [None, 12, "", "short", "a" * 21, "a" * 65, "../../etc/passwd-aaaaaaaaaa",
                                   "user:https://x:1234567890123456789012", "aaaaaaaaaaaaaaaaaaaaaa\n",
                                   "aaaaaaaaaaa aaaaaaaaaaaa", "ääääääääääääääääääääääää"])
def test_a_link_key_that_new_workspace_key_could_not_have_made_is_refused(value):
    assert not is_workspace_key(value)


def test_workspace_folders_are_hashes_under_the_runs_folder(tmp_path):
    key = new_workspace_key()
    user = user_workspace("https://accounts.example.com", "1234")
    assert workspace_root(tmp_path, None) == tmp_path  # the local lab: the runs folder itself
    a, b = workspace_root(tmp_path, key), workspace_root(tmp_path, user)
    assert a != b and a.parent == b.parent == tmp_path / WORKSPACES_DIR
    assert re.fullmatch(r"[0-9a-f]{32}", a.name) and key not in str(a) and "1234" not in str(b)
    assert workspace_root(tmp_path, key) == a  # stable
    assert user_workspace("https://other.example.com", "1234") != user  # same id at another provider
    assert workspace_roots(tmp_path) == []
    RunStore(a).create_run({"x": 1})
    (tmp_path / WORKSPACES_DIR / "not-a-workspace").mkdir()
    assert workspace_roots(tmp_path) == [a]


# ---- the scoped manager ---------------------------------------------------------------------------------


@pytest.fixture
def held(tmp_path):
    from tests.core.test_jobs import HeldManager

    manager = HeldManager(RunStore(tmp_path / "runs"), max_concurrent=1, max_queue=8, max_per_workspace=2)
    yield manager
    manager.gate.set()
    manager.shutdown(timeout=60)


def _request(workspace=None, label=None):
    from core.datasets import load_builtin
    from core.specs import preset
    from core.training import TrainConfig

    ds = load_builtin("iris")
    return TrainRequest(ds, preset("Small MLP", ds), TrainConfig(epochs=1), label=label, workspace=workspace)


def test_a_workspace_sees_and_stops_only_its_own_runs(held, tmp_path):
    from ui.workspace import WorkspaceJobs

    a, b = WorkspaceJobs(held, new_workspace_key()), WorkspaceJobs(held, new_workspace_key())
    run = a.submit(_request())  # the request gets a's workspace
    assert (a.store.root / run).is_dir() and not (b.store.root / run).exists()
    assert not (tmp_path / "runs" / run).exists()  # not in the local lab either
    assert a.snapshot(run) is not None and a.live_status(run) is not None and a.active_run_ids() == [run]
    assert b.snapshot(run) is None and b.live_status(run) is None and b.active_run_ids() == []
    assert b.queue_position(run) is None and b.overlay(a.store.list_runs())[0].run_id == run  # no state leaked
    assert not b.stop(run) and not b.force_stop(run)
    assert a.snapshot(run).active and a.snapshot(run).stop_requested_s is None  # b's Stop did nothing
    with pytest.raises(ValueError, match="own workspace"):
        b.submit(_request(workspace=a.workspace))
    assert a.stop(run)


def test_one_workspace_cannot_fill_the_queue_for_everyone(held):
    from ui.workspace import WorkspaceJobs

    a, b = WorkspaceJobs(held, new_workspace_key()), WorkspaceJobs(held, new_workspace_key())
    a.submit(_request(label="1"))
    a.submit(_request(label="2"))
    with pytest.raises(QueueFullError, match="your workspace already has 2 runs queued or training; at most 2"):
        a.submit(_request(label="3"))
    assert b.submit(_request(label="1"))  # another visitor still has room


def test_cross_validation_folds_go_to_the_workspace_that_asked(held):
    from core.crossval import submit_cv
    from core.datasets import load_builtin
    from core.specs import preset
    from core.training import TrainConfig

    ws = new_workspace_key()
    held.max_per_workspace = 3
    ds = load_builtin("iris")
    group, run_ids = submit_cv(held, ds, preset("Small MLP", ds), TrainConfig(epochs=1), 3, workspace=ws)
    assert sorted(i.run_id for i in held.store_for(ws).list_runs()) == sorted(run_ids)
    assert held.store.list_runs() == [] and held.active_run_ids() == []  # nothing in the local lab


# ---- pages on a shared server ---------------------------------------------------------------------------


@pytest.fixture
def shared(monkeypatch, clean_streamlit_caches, _isolated_run_store):
    monkeypatch.setenv("KERAS_LAB_SHARED", "1")
    monkeypatch.setenv("KERAS_LAB_RUNNER", "thread")
    return _isolated_run_store


def _visit(page: str = "pages/home.py", *, ws: str | None = None, run: str | None = None,
           user: dict | None = None) -> AppTest:
    """A new browser session (a new tab, or a reload with only what the URL holds) opened on `page`."""
    at = AppTest.from_file("../../app.py", default_timeout=60)
    if user is not None:
        at.user = user
    if ws is not None:
        at.query_params["ws"] = ws
    at.run()
    assert not at.exception, at.exception
    if page != "pages/home.py":
        at.switch_page(page)
        if run is not None:
            at.query_params["run"] = run
        at.run()
        assert not at.exception, at.exception
    return at


def _key(at: AppTest) -> str:
    key = at.query_params["ws"]
    assert is_workspace_key(key) and at.session_state["_workspace_key"] == key
    return key


def _everything(at: AppTest) -> str:
    """Every text the page shows (main area and sidebar), as one string."""
    texts = []
    for kind in ("markdown", "caption", "info", "success", "warning", "error", "code", "toast", "title",
                 "header", "subheader"):
        texts += [str(getattr(e, "value", "")) for e in at.get(kind)]
    texts += [str(e.value) for e in at.dataframe] + [b.label for b in at.button]
    for kind in ("selectbox", "multiselect"):
        texts += [str(o) for w in at.get(kind) for o in w.options]
    return "\n".join(texts)


def test_two_visitors_get_private_workspaces_kept_in_the_url(shared):
    a, b = _visit(), _visit()
    key_a, key_b = _key(a), _key(b)
    assert key_a != key_b
    box = [c.value for c in a.sidebar.code]
    assert box == [f"?ws={key_a}"] and any("Your workspace" in m.value for m in a.sidebar.markdown)
    assert any("Anyone who has the link sees, stops and deletes these runs" in c.value for c in a.sidebar.caption)
    assert not [x for x in a.sidebar.button if x.label in ("Sign in", "Sign out")]  # no sign-in configured
    for page in ("pages/data.py", "pages/runs.py", "pages/faq.py"):  # navigation keeps it
        a.switch_page(page).run()
        assert not a.exception and _key(a) == key_a, page
    again = _visit(ws=key_a)  # a reload, or the copied link in another browser
    assert _key(again) == key_a


def test_a_bad_link_key_gets_a_fresh_workspace(shared):
    at = _visit(ws="../../not a key")
    assert _key(at) != "../../not a key"


def test_runs_of_one_workspace_are_not_listed_evaluated_or_picked_for_another(shared):
    a = _visit()
    key_a = _key(a)
    mine = write_run(RunStore(workspace_root(shared, key_a)), "iris", label="A's run")
    RunStore(workspace_root(shared, key_a)).model_path(mine).write_bytes(b"not read here")  # for the picker
    lab = write_run(RunStore(shared), "iris", label="local lab run")  # a run of the local lab's folder

    a.switch_page("pages/runs.py").run()
    assert not a.exception and list(a.dataframe[0].value["run_id"]) == [mine]
    a.switch_page("pages/evaluate.py").run()
    assert not a.exception and mine in _everything(a)  # A evaluates its run
    a.switch_page("pages/backprop.py").run()
    assert not a.exception and mine in _everything(a)  # and picks it for the gradient report

    b = _visit("pages/runs.py")
    assert [shown(i.value) for i in b.info] == ["No runs yet: train a model on the Train page and it appears here."]
    for page in ("pages/evaluate.py", "pages/backprop.py", "pages/train.py"):
        b.switch_page(page).run()
        assert not b.exception, (page, b.exception)
        text = _everything(b)
        assert mine not in text and "A's run" not in text and lab not in text, page
        if page != "pages/train.py":
            assert [i.value for i in b.info if i.value.startswith("No finished run")], page
    assert not workspace_root(shared, _key(b)).exists()  # looking around creates no folder
    with_link = _visit("pages/runs.py", ws=key_a)  # whoever has A's link sees A's runs
    assert list(with_link.dataframe[0].value["run_id"]) == [mine]


def test_a_run_link_of_another_workspace_shows_nothing_and_its_stop_is_refused(shared, monkeypatch):
    from tests.core.test_jobs import HeldManager
    from ui import jobs
    from ui.workspace import WorkspaceJobs

    manager = HeldManager(RunStore(shared), max_concurrent=1, max_queue=8, max_per_workspace=5)
    monkeypatch.setattr(jobs, "_shared_manager", lambda: manager)
    try:
        a = _visit()
        key_a = _key(a)
        run = WorkspaceJobs(manager, key_a).submit(_request(label="A's secret run"))

        b = _visit("pages/train.py", run=run)
        text = _everything(b)
        assert run not in text and "secret" not in text, text
        assert "run" not in b.query_params and "train_run_id" not in b.session_state  # the link is dropped
        assert not [x for x in b.button if x.label.startswith(("Stop", "Force"))]
        assert not WorkspaceJobs(manager, _key(b)).stop(run)
        assert manager.snapshot(run, key_a).active and manager.snapshot(run, key_a).stop_requested_s is None

        a_tab = _visit("pages/train.py", ws=key_a, run=run)  # A's own link shows it, with Stop
        assert run in _everything(a_tab) and [x for x in a_tab.button if x.label.startswith("Stop")]
        assert a_tab.query_params["run"] == run
    finally:
        manager.gate.set()
        manager.shutdown(timeout=60)


def test_a_signed_in_user_owns_a_workspace_on_any_device_and_no_link(shared):
    alice = {"is_logged_in": True, "iss": "https://accounts.example.com", "sub": "1001", "email": "alice@x.org"}
    a = _visit(user=alice, ws=new_workspace_key())
    assert "ws" not in a.query_params  # no link to pass around
    assert [x.label for x in a.sidebar.button] == ["Sign out"] and not a.sidebar.code
    assert any(c.value.startswith("Signed in as alice@") for c in a.sidebar.caption)
    run = write_run(RunStore(workspace_root(shared, user_workspace(alice["iss"], alice["sub"]))), "iris")
    on_phone = _visit("pages/runs.py", user=dict(alice, email="alice@phone"))
    assert list(on_phone.dataframe[0].value["run_id"]) == [run]
    bob = _visit("pages/runs.py", user=dict(alice, sub="1002"))
    assert not bob.dataframe and run not in _everything(bob)


def test_sign_in_is_offered_when_configured(shared):
    at = _visit(user={"is_logged_in": False})  # st.user says so when secrets.toml has an [auth] section
    assert [x.label for x in at.sidebar.button] == ["Sign in"]
    assert is_workspace_key(at.query_params["ws"])  # until then, the anonymous link
    no_id = _visit(user={"is_logged_in": True, "email": "x@y.z"})  # an ID token without iss / sub
    assert is_workspace_key(no_id.query_params["ws"]) and [x.label for x in no_id.sidebar.button] == ["Sign out"]


def test_the_link_to_copy_is_the_page_address_with_the_key():
    from ui.workspace import workspace_link

    assert workspace_link("https://lab.streamlit.app", "k" * 22) == f"https://lab.streamlit.app/?ws={'k' * 22}"
    assert workspace_link("http://localhost:8501/runs", "abc") == "http://localhost:8501/runs?ws=abc"
    assert workspace_link(None, "abc") == "?ws=abc"  # no browser (AppTest)


def test_the_local_lab_has_no_workspaces(monkeypatch, clean_streamlit_caches, _isolated_run_store):
    monkeypatch.setenv("KERAS_LAB_SHARED", "0")
    run = write_run(RunStore(_isolated_run_store), "iris")
    at = _visit("pages/runs.py", ws=new_workspace_key())
    assert list(at.dataframe[0].value["run_id"]) == [run]
    assert not at.sidebar.code and not any("workspace" in m.value.lower() for m in at.sidebar.markdown)
    assert "_workspace_key" not in at.session_state and not at.sidebar.button
    assert not (_isolated_run_store / WORKSPACES_DIR).exists()
    from ui.workspace import WorkspaceJobs

    assert WorkspaceJobs(JobManager(RunStore(_isolated_run_store)), None).store.root == _isolated_run_store
