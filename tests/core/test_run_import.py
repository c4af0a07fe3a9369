"""Run zips come back: what core.exports.run_zip downloads, core.run_import takes back as new runs; hostile
zips are refused, and whatever is left out is named.

Every fixture is built in its real format: runs written by the run store, a model saved by Keras, a
TensorBoard event file written by tf.summary, zips written by zipfile."""

from __future__ import annotations

import io
import json
import stat
import zipfile

import numpy as np
import pytest

from core.compare import run_metrics
from core.exports import run_zip
from core.run_import import ImportLimits, RunImportError, import_runs
from core.runs import RunStore
from core.workspaces import workspace_root
from tests.core.test_evaluation import write_run

EVENTS = "tensorboard/train/events.out.tfevents.1700000000.host.1.0.v2"


@pytest.fixture(scope="module")
def model_bytes(tmp_path_factory):
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    path = tmp_path_factory.mktemp("model") / "m.keras"
    model.save(path)
    return path.read_bytes()


@pytest.fixture(scope="module")
def event_bytes(tmp_path_factory):
    """A TensorBoard event file written by tf.summary (as a TensorBoard callback writes them)."""
    import tensorflow as tf

    folder = tmp_path_factory.mktemp("events")
    with tf.summary.create_file_writer(str(folder)).as_default():
        for step in range(3):
            tf.summary.scalar("epoch_loss", 1.0 / (step + 1), step=step)
    [path] = folder.glob("events.out.tfevents.*")
    return path.read_bytes()


@pytest.fixture
def home(tmp_path):
    """The store a run was trained in, and the visitor's own (a workspace) it comes back to."""
    return RunStore(tmp_path / "runs"), RunStore(workspace_root(tmp_path / "runs", "a-visitor-key-0000000000"))


def _full_run(store: RunStore, model_bytes: bytes, event_bytes: bytes, **kwargs) -> str:
    run_id = write_run(store, "iris", **kwargs)
    store.model_path(run_id).write_bytes(model_bytes)
    events = store.run_dir(run_id) / EVENTS
    events.parent.mkdir(parents=True)
    events.write_bytes(event_bytes)
    return run_id


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_a_downloaded_run_comes_back_whole_under_a_new_id(home, model_bytes, event_bytes):
    origin, mine = home
    run_id = _full_run(origin, model_bytes, event_bytes, label="my best run", group="sweep:lr")
    origin.set_hidden(run_id, True)
    report = import_runs(mine, run_zip(origin, run_id), "../../run.zip")
    [(new_id, label)] = report.imported
    assert report.refused == () and label == "my best run" and new_id != run_id
    assert [i.run_id for i in mine.list_runs()] == [new_id]
    old, new = origin.read_config(run_id), mine.read_config(new_id)
    assert new.pop("imported")["run_id"] == run_id and new.pop("run_id") == new_id
    assert new == {k: v for k, v in old.items() if k not in ("run_id", "hidden")}  # what comes back is shown
    assert mine.read_status(new_id) == origin.read_status(run_id)
    assert mine.read_metrics(new_id, kind=None) == origin.read_metrics(run_id, kind=None)
    for key, array in origin.read_predictions(run_id).items():
        np.testing.assert_array_equal(mine.read_predictions(new_id)[key], array)
    assert mine.model_path(new_id).read_bytes() == model_bytes
    assert (mine.run_dir(new_id) / EVENTS).read_bytes() == event_bytes
    assert run_metrics(mine, new_id) == run_metrics(origin, run_id)
    assert not (mine.root / "run.zip").exists() and origin.read_config(run_id)["label"] == "my best run"


def test_several_runs_travel_in_one_zip_and_come_back_once(home, model_bytes, event_bytes):
    origin, mine = home
    a = write_run(origin, "iris", seed=1, label="a")
    b = write_run(origin, "iris", seed=2, label="b")
    data = run_zip(origin, a, b)
    report = import_runs(mine, data, "runs.zip")
    assert sorted(label for _, label in report.imported) == ["a", "b"] and report.refused == ()
    again = import_runs(mine, data, "runs.zip")  # the same zip a second time
    assert again.imported == ()
    back = {run_id: label for run_id, label in report.imported}
    assert sorted(again.refused) == sorted(f"run folder {r!r}: refused, it is already here as run {n}"
                                           for r, n in zip((a, b), sorted(back, key=back.get), strict=True))
    assert sorted(import_runs(origin, data, "runs.zip").refused) == sorted(  # downloaded from this very store
        f"run folder {r!r}: refused, it is already here as run {r}" for r in (a, b))
    assert len(mine.list_runs()) == 2 and len(origin.list_runs()) == 2


def test_the_zips_folder_name_is_never_trusted_and_nothing_is_overwritten(home):
    origin, mine = home
    victim = write_run(mine, "iris", label="victim")
    before = {p.name: p.read_bytes() for p in mine.run_dir(victim).iterdir()}
    source = write_run(origin, "iris", label="intruder")
    members = {name.replace(source, victim): data for name, data in _members(run_zip(origin, source)).items()}
    [(new_id, label)] = import_runs(mine, _zip(members), "x.zip").imported
    assert new_id != victim and label == "intruder"
    assert {p.name: p.read_bytes() for p in mine.run_dir(victim).iterdir()} == before


@pytest.mark.parametrize("name, reason", [
    ("../evil/config.json", "unsafe path"),
    ("/etc/cron.d/config.json", "unsafe path"),
    ("run\\..\\..\\config.json", "unsafe path"),
    ("C:/Windows/config.json", "unsafe path"),
    ("run//config.json", "unsafe path"),
])
def test_zip_slip_and_absolute_paths_refuse_the_whole_upload(home, name, reason):
    origin, mine = home
    members = _members(run_zip(origin, write_run(origin, "iris")))
    members[name] = b"{}"
    with pytest.raises(RunImportError, match=reason):
        import_runs(mine, _zip(members), "evil.zip")
    assert mine.list_runs() == [] and not mine.root.exists()


def test_links_encrypted_and_repeated_members_refuse_the_whole_upload(home):
    origin, mine = home
    run_id = write_run(origin, "iris")
    good = _members(run_zip(origin, run_id))

    def with_member(info: zipfile.ZipInfo, data: bytes, members=good) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for name, content in members.items():
                zf.writestr(name, content)
            zf.writestr(info, data)
        return buf.getvalue()

    link = zipfile.ZipInfo(f"{run_id}/model.keras")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with pytest.raises(RunImportError, match="is a symbolic link"):
        import_runs(mine, with_member(link, b"/etc/passwd"), "x.zip")
    secret = bytearray(with_member(zipfile.ZipInfo(f"{run_id}/model.keras"), b"\x00" * 12))
    secret[secret.rfind(b"PK\x01\x02") + 8] |= 0x1  # the last member's flags: encrypted (zipfile writes none)
    with pytest.raises(RunImportError, match="is encrypted"):
        import_runs(mine, bytes(secret), "x.zip")
    with pytest.warns(UserWarning, match="Duplicate name"):  # zipfile lets it be written all the same
        twice = with_member(zipfile.ZipInfo(f"{run_id}/config.json"), b"{}")
    with pytest.raises(RunImportError, match="appears twice"):
        import_runs(mine, twice, "x.zip")
    assert mine.list_runs() == []


def test_caps_are_checked_before_the_zip_is_read(home):
    origin, mine = home
    data = run_zip(origin, write_run(origin, "iris"))
    with pytest.raises(RunImportError, match="the limit is 0 MB"):
        import_runs(mine, data, "big.zip", ImportLimits(max_bytes=1000))
    with pytest.raises(RunImportError, match="has 4 members; the limit is 3"):
        import_runs(mine, data, "many.zip", ImportLimits(max_members=3))
    with pytest.raises(RunImportError, match="unpacks to"):
        import_runs(mine, data, "x.zip", ImportLimits(max_total_bytes=1000))
    bomb = _zip({"config.json": b"{}", "status.json": b'{"state": "completed"}', "metrics.jsonl": b" " * 20_000_000})
    with pytest.raises(RunImportError, match="is compressed .*:1 \\(a possible zip bomb\\)"):
        import_runs(mine, bomb, "bomb.zip")
    with pytest.raises(RunImportError, match="holds 2 runs; the limit is 1"):
        import_runs(mine, run_zip(origin, *[i.run_id for i in origin.list_runs()], write_run(origin, "iris")),
                    "x.zip", ImportLimits(max_runs=1))
    with pytest.raises(RunImportError, match="is not a zip archive of runs"):
        import_runs(mine, b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "photo.zip")
    with pytest.raises(RunImportError, match="holds no run"):
        import_runs(mine, _zip({"readme.txt": b"hello", "runs/a-run/config.json": b"{}"}), "x.zip")
    assert mine.list_runs() == []


def test_foreign_files_are_left_out_and_named(home):
    origin, mine = home
    run_id = write_run(origin, "iris")
    members = {**_members(run_zip(origin, run_id)), f"{run_id}/notes.txt": b"hi", "__MACOSX/._x": b"",
               f"{run_id}/tensorboard/train/profile.pb": b"x", "other/metrics.jsonl": b"{}"}
    report = import_runs(mine, _zip(members), "runs.zip")
    assert len(report.imported) == 1
    [message] = report.refused
    assert message.startswith("runs.zip: left out ") and message.endswith(": not files of a run")
    for name in ("notes.txt", "__MACOSX/._x", "profile.pb", "other/metrics.jsonl"):
        assert name in message
    new_id = report.imported[0][0]
    assert sorted(p.name for p in mine.run_dir(new_id).iterdir()) == [
        "config.json", "metrics.jsonl", "predictions.npz", "status.json"]


def test_a_run_whose_config_or_status_cannot_be_used_is_refused_and_the_others_come_in(home):
    origin, mine = home
    good, bad = write_run(origin, "iris", label="good"), write_run(origin, "iris", label="bad")
    members = _members(run_zip(origin, good, bad))
    for change, reason in [({f"{bad}/config.json": b'{"dataset": {"name": ["<img src=x>"]}}'},
                            "config.json: 'dataset.name' is not a text"),
                           ({f"{bad}/config.json": b"[" * 100_000}, "config.json is not valid JSON"),
                           ({f"{bad}/config.json": b'{"schema_version": 99}'}, "another version of Keras Lab"),
                           ({f"{bad}/status.json": b'{"state": "hacked"}'}, "status.json: 'state' is not one of")]:
        report = import_runs(mine, _zip({**members, **change}), "runs.zip")
        assert [label for _, label in report.imported] == ["good"]
        assert report.refused == (f"run folder {bad!r}: refused, {reason}",) or reason in report.refused[0]
        for info in mine.list_runs():
            mine.delete_run(info.run_id)
    del members[f"{bad}/status.json"]
    assert import_runs(mine, _zip(members), "x.zip").refused == (f"run folder {bad!r}: refused, status.json is "
                                                                 f"missing",)


def test_a_chinese_reader_is_told_what_was_refused_and_why_in_chinese(home):
    from core.i18n import language_of

    origin, mine = home
    good, bad = write_run(origin, "iris", label="好的"), write_run(origin, "iris")
    members = {**_members(run_zip(origin, good, bad)), f"{bad}/status.json": b'{"state": "hacked"}',
               "笔记/读我.txt": b"hi"}
    with language_of("zh"):
        report = import_runs(mine, _zip(members), "runs.zip")
        assert [label for _, label in report.imported] == ["好的"]
        assert report.refused == (
            "runs.zip：已略过 '笔记/读我.txt'：它们不是运行的文件",  # names of any script stay readable
            f"运行文件夹 {bad!r}：已拒绝，status.json：'state' 不是 queued, running, completed, stopped, pruned, "
            f"diverged, failed, interrupted 之一")
        with pytest.raises(RunImportError) as err:
            import_runs(mine, _zip({"../config.json": b"{}"}), "runs.zip")
    assert str(err.value) == ("runs.zip：已拒绝，成员 '../config.json' 的路径不安全（绝对路径、含 '..'、空的路径段或"
                              "反斜杠）")


def test_a_run_downloaded_while_running_comes_back_interrupted(home):
    origin, mine = home
    run_id = write_run(origin, "iris", status="running")
    [(new_id, _)] = import_runs(mine, run_zip(origin, run_id), "x.zip").imported
    status = mine.read_status(new_id)
    assert (status["state"], status["message"]) == ("interrupted", "it was running when it was downloaded")


def test_damaged_metric_lines_are_left_out_and_counted(home):
    origin, mine = home
    run_id = write_run(origin, "iris", epochs=3)
    members = _members(run_zip(origin, run_id))
    members[f"{run_id}/metrics.jsonl"] += b'{"kind": "epoch", "epo\n[1, 2]\n{"kind": "epoch", "loss": {"x": 1}}\n'
    report = import_runs(mine, _zip(members), "x.zip")
    assert report.refused == (f"run folder {run_id!r}: metrics.jsonl: 3 damaged or foreign lines left out",)
    new_id = report.imported[0][0]
    assert mine.read_metrics(new_id) == origin.read_metrics(run_id) and mine.metrics_problem(new_id) == ""


def _with_lambda(model: bytes) -> bytes:
    """The model with a Lambda layer calling keras.config.set_floatx inserted into its config."""
    members = _members(model)
    config = json.loads(members["config.json"])
    config["config"]["layers"].insert(1, {
        "module": "keras.layers", "class_name": "Lambda", "registered_name": None,
        "config": {"name": "evil", "arguments": {"value": "float16"},
                   "function": {"module": "keras.config", "class_name": "function", "config": "set_floatx",
                                "registered_name": "function"}}})
    return _zip({**members, "config.json": json.dumps(config).encode()})


@pytest.mark.parametrize("hostile, reason", [
    ("lambda", "Lambda"),
    ("png", "this is a PNG image renamed to .keras"),
    ("no weights", "the archive has no weights file"),
])
def test_a_model_that_fails_the_upload_checks_is_left_out_unloaded(home, model_bytes, hostile, reason, monkeypatch):
    import core.model_files

    origin, mine = home
    run_id = write_run(origin, "iris")
    model = {"lambda": lambda: _with_lambda(model_bytes), "png": lambda: b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
             "no weights": lambda: _zip({"config.json": _members(model_bytes)["config.json"]})}[hostile]()
    members = {**_members(run_zip(origin, run_id)), f"{run_id}/model.keras": model}
    monkeypatch.setattr(core.model_files, "_keras_load", lambda path: pytest.fail("a model was loaded"))
    report = import_runs(mine, _zip(members), "x.zip")
    [(new_id, _)] = report.imported
    [message] = report.refused
    assert message.startswith(f"run folder {run_id!r}: model.keras left out: ") and reason in message
    assert not mine.run_info(new_id).has_model and mine.read_predictions(new_id)


UNPICKLED: list[str] = []


def _unpickled(what: str) -> None:
    UNPICKLED.append(what)


class Bait:
    """Unpickling one records it: predictions must never be unpickled."""

    def __reduce__(self):
        return _unpickled, ("unpickled",)


@pytest.mark.parametrize("change, reason", [
    (lambda p: {**p, "probs": p["probs"][:, :2]}, "'probs' has 2 columns but the run has 3 classes"),
    (lambda p: {**p, "y_true": p["y_true"] + 3}, "'y_true' holds class indices outside the run's classes"),
    (lambda p: {**p, "y_true": p["y_true"][:-1]}, "'y_true' must hold one class index per row"),
    (lambda p: {**p, "probs": p["probs"] * np.nan}, "not probabilities"),
    (lambda p: {**p, "test_idx": -p["test_idx"] - 1}, "'test_idx' must hold one sample index"),
    (lambda p: {**p, "test_loss": np.ones(3)}, "'test_loss' must be a single number"),
    (lambda p: {**p, "extra": np.zeros(2)}, "arrays a run does not have ('extra')"),
    (lambda p: {k: v for k, v in p.items() if k != "probs"}, "it has no 'probs' array"),
    (lambda p: {**p, "y_true": p["y_true"].astype(str)}, "array 'y_true' is not numeric"),
])
def test_predictions_that_do_not_fit_the_run_are_left_out(home, change, reason):
    origin, mine = home
    run_id = write_run(origin, "iris")
    members = _members(run_zip(origin, run_id))
    members[f"{run_id}/predictions.npz"] = _npz(**change(origin.read_predictions(run_id)))
    report = import_runs(mine, _zip(members), "x.zip")
    [message] = report.refused
    assert message.startswith(f"run folder {run_id!r}: predictions.npz left out: ") and reason in message, message
    assert not (mine.run_dir(report.imported[0][0]) / "predictions.npz").exists()


def test_pickled_predictions_are_never_unpickled(home):
    origin, mine = home
    run_id = write_run(origin, "iris")
    pred = origin.read_predictions(run_id)
    buf = io.BytesIO()
    np.savez(buf, **{**pred, "y_true": np.array([Bait()] * len(pred["y_true"]), dtype=object)})
    members = {**_members(run_zip(origin, run_id)), f"{run_id}/predictions.npz": buf.getvalue()}
    report = import_runs(mine, _zip(members), "x.zip")
    assert "array 'y_true' is not numeric (object)" in report.refused[0] and UNPICKLED == []
    np.load(io.BytesIO(buf.getvalue()), allow_pickle=True)["y_true"]  # the bait works when unpickled
    assert UNPICKLED[:1] == ["unpickled"]


def test_event_files_must_be_whole_records(home, event_bytes):
    origin, mine = home
    run_id = write_run(origin, "iris")
    other = EVENTS.replace("host.1", "host.2")
    members = {**_members(run_zip(origin, run_id)), f"{run_id}/{EVENTS}": event_bytes,
               f"{run_id}/{other}": event_bytes[:-3]}  # cut off in its last record
    report = import_runs(mine, _zip(members), "x.zip")
    assert report.refused == (f"run folder {run_id!r}: left out {other!r}: not TensorBoard event files",)
    folder = mine.run_dir(report.imported[0][0])
    assert (folder / EVENTS).read_bytes() == event_bytes and not (folder / other).exists()
