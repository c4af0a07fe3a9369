"""The Train page in AppTest: validation messages, a tiny training polled to the end, finding jobs again."""

from __future__ import annotations

import re
import time

import pytest
from streamlit.testing.v1 import AppTest

from core.runs import RunStore
from tests.pages.test_page_runs import shown


def _train_page(dataset: str = "iris") -> AppTest:
    at = AppTest.from_file("../../app.py", default_timeout=60)
    at.session_state["dataset"] = dataset
    at.run()
    at.switch_page("pages/train.py")
    at.run()
    assert not at.exception, at.exception
    return at


def _number(at: AppTest, label: str):
    return next(w for w in at.number_input if w.label == label)


def _start(at: AppTest) -> None:
    next(b for b in at.button if b.label == "Start training").click()
    at.run()


def _run_until(at: AppTest, done, what: str, deadline_s: float = 240.0) -> None:
    """AppTest does not rerun run_every fragments by itself: rerun the page until done(at)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        at.run()
        assert not at.exception, at.exception
        if done(at):
            return
        time.sleep(0.5)
    pytest.fail(f"gave up waiting for: {what}; page says {[m.value for m in at.markdown]}")


def _next_start(at: AppTest) -> str:
    """The line above the form: what the next Start trains (the session's model and data)."""
    return next(shown(m.value) for m in at.markdown if m.value.startswith("Trains "))


def _badge(at: AppTest) -> str:
    return next((m.value for m in at.markdown if m.value.startswith("#### Run")), "")


def test_invalid_settings_show_a_message_and_start_nothing(clean_streamlit_caches):
    at = _train_page()
    header = _next_start(at)
    assert "Small MLP" in header and "iris" in header
    _number(at, "Batch size").set_value(0)
    _start(at)
    assert [shown(e.value) for e in at.error] == ["Cannot start training: batch size must be between 1 and 65,536, got 0"]
    assert RunStore().list_runs() == []
    _number(at, "Batch size").set_value(16)
    _number(at, "Learning rate").set_value(50.0)
    _start(at)
    assert "learning rate must be greater than 0 and at most 10, got 50.0" in shown(at.error[0].value)
    assert not at.exception


@pytest.mark.slow
def test_start_a_tiny_training_and_poll_it_to_the_end(clean_streamlit_caches):
    at = _train_page()
    _number(at, "Epochs").set_value(3)
    _number(at, "Batch size").set_value(16)
    _start(at)
    assert not at.error, [e.value for e in at.error]
    run_id = at.query_params["run"][0] if isinstance(at.query_params["run"], list) else at.query_params["run"]
    assert at.session_state["train_run_id"] == run_id
    assert RunStore().read_status(run_id)["state"] in ("queued", "running")
    _run_until(at, lambda a: "completed" in _badge(a), "the run to complete")
    assert run_id in _badge(at)
    charts = at.get("plotly_chart")
    assert len(charts) >= 3  # loss, accuracy, learning rate (+ the batch curve)
    assert not at.get("progress")  # polling is over: no progress bar on a finished run
    assert [r["epoch"] for r in RunStore().read_metrics(run_id)] == [1, 2, 3]
    # a new tab (new session) with no ?run= finds nothing active and says how to start
    fresh = _train_page()
    assert any("No training in progress" in i.value for i in fresh.info)


@pytest.mark.slow
def test_a_reloaded_tab_finds_the_running_job_and_can_stop_it(clean_streamlit_caches):
    at = _train_page("digits")
    _number(at, "Epochs").set_value(300)
    _number(at, "Batch size").set_value(8)
    _start(at)
    _run_until(at, lambda a: any("batch" in p.proto.text and "samples/s" in p.proto.text and " 0 samples/s"
                                 not in p.proto.text for p in a.get("progress")), "training to report batches")
    other = _train_page("digits")  # another tab: no session state, no query parameter
    assert "running" in _badge(other) and _badge(other) == _badge(at)
    next(b for b in other.button if b.label == "Stop").click()
    other.run()
    _run_until(other, lambda a: "stopped" in _badge(a), "the run to stop")
    run_id = other.session_state["train_run_id"]
    status = RunStore().read_status(run_id)
    per_call = RunStore().read_config(run_id)["strategy"]["steps_per_call"]
    # the call in flight, plus at most one more begun before the flag crossed to the training process
    assert status["state"] == "stopped" and status["steps_after_stop_request"] <= 2 * per_call
    assert any(link.label == "Evaluate this run" for link in other.get("page_link"))


@pytest.mark.slow
def test_settings_changed_after_a_start_are_the_ones_the_next_start_uses(clean_streamlit_caches):
    """The form's defaults are the last submitted settings; when they changed, unkeyed widgets got new ids
    on the next run and the edits the person made before pressing Start again were silently dropped."""
    at = _train_page()
    _number(at, "Epochs").set_value(2)
    _start(at)
    first = RunStore().list_runs()
    assert len(first) == 1 and not at.error
    _number(at, "Epochs").set_value(3)
    _number(at, "Learning rate").set_value(0.01)
    _start(at)
    assert not at.error, [e.value for e in at.error]
    runs = {i.run_id: i.config["training"] for i in RunStore().list_runs()}
    assert len(runs) == 2
    second = next(cfg for run_id, cfg in runs.items() if run_id != first[0].run_id)
    assert (second["epochs"], second["learning_rate"]) == (3, 0.01)
    _run_until(at, lambda a: all(RunStore().read_status(r)["state"] not in ("queued", "running") for r in runs),
               "both runs to finish")


def _english_for_a_chinese_reader(at: AppTest) -> list[str]:
    """English phrases left on the page (core.i18n's check), the progress bar and toasts included."""
    from tests.pages.test_language import _rendered_texts, english_sentences

    texts = [*_rendered_texts(at), *(p.proto.text for p in at.get("progress")), *(t.value for t in at.get("toast"))]
    return sorted({phrase for text in texts for phrase in english_sentences(text)})


@pytest.mark.slow
def test_a_chinese_reader_follows_a_run_and_its_end_in_chinese(clean_streamlit_caches, monkeypatch):
    """A run's progress and outcome are written by a worker thread, which has no visitor: they are in the
    language of the visitor who pressed Start."""
    from core.i18n import _, language_of

    monkeypatch.setenv("KERAS_LAB_RUNNER", "thread")
    with language_of("zh"):
        start, stop, completed, stopped = _("Start training"), _("Stop"), _("completed"), _("stopped")
        outcome = _("{epochs} epochs, test accuracy {accuracy}").split("{accuracy}")[0].format(epochs=2)
    at = AppTest.from_file("../../app.py", default_timeout=60)
    at.query_params["lang"] = "zh"
    at.session_state["dataset"] = "iris"
    at.run()
    at.switch_page("pages/train.py")
    at.run()

    def heading(a: AppTest) -> str:
        return next((m.value for m in a.markdown if m.value.startswith("#### ")), "")

    at.number_input(key="train_epochs").set_value(2)
    next(b for b in at.button if b.label == start).click()
    at.run()
    _run_until(at, lambda a: completed in heading(a), "the run to complete")
    assert any(m.value.startswith(outcome) for m in at.markdown), [m.value for m in at.markdown]
    assert _english_for_a_chinese_reader(at) == []
    at.number_input(key="train_epochs").set_value(1000)
    at.number_input(key="train_batch_size").set_value(8)
    next(b for b in at.button if b.label == start).click()
    at.run()
    _run_until(at, lambda a: a.get("progress") and len(a.get("plotly_chart")) >= 2,
               "the second run to train with its charts")
    assert _english_for_a_chinese_reader(at) == []
    next(b for b in at.button if b.label == stop).click()
    at.run()
    _run_until(at, lambda a: stopped in heading(a), "the run to stop")
    assert _english_for_a_chinese_reader(at) == []


@pytest.mark.slow
def test_the_watched_run_is_above_the_settings_form(clean_streamlit_caches):
    """Below a tall form the progress was off screen after Start: a person saw no sign that it began."""
    at = _train_page()
    _number(at, "Epochs").set_value(1)
    _start(at)
    assert not at.exception and not at.error
    order = [getattr(e, "value", None) or getattr(e, "label", None) for e in at.main]
    run_heading = next(i for i, v in enumerate(order) if isinstance(v, str) and v.startswith("#### Run"))
    form = next(i for i, e in enumerate(at.main) if e.type == "form")
    assert run_heading < form, order
    _run_until(at, lambda a: "completed" in _badge(a), "the run to finish")


def _exported_script(at: AppTest, served_files) -> tuple[str, str]:
    """The file name and text the page's "Export as a script" button downloads; the text must compile."""
    [button] = [b for b in at.get("download_button") if b.proto.label.startswith("Export as a script")]
    name, data = served_files[button.proto.url]
    code = data.decode()
    compile(code, name, "exec")
    return name, code


def test_export_script_carries_the_last_settings_used(clean_streamlit_caches, served_files, monkeypatch):
    import core.worker
    from core.training import TrainOutcome

    monkeypatch.setattr(core.worker, "train_run", lambda *a, **k: TrainOutcome("completed", "not trained", {}))
    monkeypatch.setenv("KERAS_LAB_RUNNER", "thread")  # the replaced train_run lives in this process
    at = _train_page("iris")
    name, code = _exported_script(at, served_files)
    assert name == "small_mlp_iris_train.py"
    assert "layers.Dense(64, activation='relu', name='dense_1')(x)" in code
    assert "layers.Dropout(0.1, name='dropout_2')(x)" in code
    assert "batch_size=32, epochs=10," in code  # the defaults before any start
    _number(at, "Epochs").set_value(3)
    _number(at, "Batch size").set_value(16)
    _start(at)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "batch_size=16, epochs=3," in _exported_script(at, served_files)[1]


def test_export_script_of_a_runs_settings_once_used_is_that_runs_model_and_settings(clean_streamlit_caches,
                                                                                  served_files):
    at = _watch(_someone_elses_run())
    next(b for b in at.button if b.label == "Use these settings").click()
    at.run()
    assert not at.exception, at.exception
    name, code = _exported_script(at, served_files)
    assert name == "wide_mlp_run_iris_train.py"
    assert "layers.Dense(48, activation='relu', name='dense_1')(x)" in code
    assert "layers.Dropout(0.1, name='dropout_2')(x)" in code and "name='dense_3'" not in code
    assert "keras.optimizers.SGD(learning_rate=lr, momentum=0.8)" in code and "set_random_seed(11)" in code
    assert "ExponentialDecay(0.05, decay_steps=2 * " in code and "decay_rate=0.25" in code
    assert "EarlyStopping(monitor='val_loss', patience=4, restore_best_weights=True)" in code
    assert "batch_size=16, epochs=7," in code


@pytest.mark.slow
def test_a_queued_job_can_be_watched_from_the_running_ones_page(clean_streamlit_caches):
    at = _train_page("digits")
    _number(at, "Epochs").set_value(300)
    _number(at, "Batch size").set_value(8)
    _start(at)
    first = at.session_state["train_run_id"]
    _number(at, "Epochs").set_value(299)  # different settings: a second job, not a double click
    _start(at)
    second = at.session_state["train_run_id"]
    assert second != first and "queued" in _badge(at)
    at.query_params["run"] = first  # watch the first (running) job again
    at.run()
    watch = [b for b in at.button if b.label.startswith(second)]
    assert len(watch) == 1 and "queue #1" in watch[0].label, [b.label for b in at.button]
    watch[0].click()
    at.run()
    assert at.session_state["train_run_id"] == second and second in _badge(at)
    from ui.jobs import job_manager

    for run_id in (second, first):
        job_manager().stop(run_id)
    _run_until(at, lambda a: RunStore().read_status(first)["state"] == "stopped", "the first run to stop")


def test_when_the_disk_fills_the_page_shows_the_failure_not_running_forever(clean_streamlit_caches, monkeypatch):
    """The worker's metrics write fails on a full disk and so does its final status.json: the disk still says
    "running", and the page shows what the worker knows."""
    import core.worker
    from tests.core.test_runs import DiskFull

    disk = DiskFull(monkeypatch, RunStore().root)

    def train_run(store, run_id, **kwargs):
        disk.full = True
        store.append_metrics(run_id, {"kind": "epoch", "epoch": 1, "loss": 1.0})

    monkeypatch.setattr(core.worker, "train_run", train_run)
    monkeypatch.setenv("KERAS_LAB_RUNNER", "thread")  # the replaced train_run lives in this process
    at = _train_page()
    _start(at)
    assert not at.error, [e.value for e in at.error]
    run_id = at.session_state["train_run_id"]
    _run_until(at, lambda a: "failed" in _badge(a), "the page to show the failure")
    texts = [shown(m.value) for m in at.markdown]
    assert any(t.startswith(f"cannot write metrics of run {run_id}: the disk is full (status.json could not be "
                            f"saved") for t in texts), texts
    assert RunStore().read_status(run_id)["state"] == "running"
    at.run()  # and it stays so
    assert "failed" in _badge(at) and not at.get("progress")


@pytest.mark.slow
def test_a_read_only_runs_folder_turns_training_off_and_every_other_page_works(clean_streamlit_caches,
                                                                             monkeypatch):
    from tests.core.test_evaluation import write_run
    from tests.core.test_runs import make_read_only

    store = RunStore()
    done = write_run(store, "iris")
    make_read_only(monkeypatch, store.root)
    reason = f"runs cannot be saved in {store.root}: the file system is read-only"
    at = AppTest.from_file("../../app.py", default_timeout=120)
    at.session_state["dataset"] = "iris"
    at.run()
    assert not at.exception, at.exception
    assert [shown(w.value) for w in at.warning if "Training is off" in shown(w.value)] == [
        f"Training is off: {reason}. Set KERAS_LAB_RUNS to a folder this app can write to and restart it; "
        f"exploring data, building models and the Learn pages work as usual."]
    for page in ("pages/data.py", "pages/model.py", "pages/faq.py", "pages/backprop.py", "pages/evaluate.py"):
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception)
        assert not any("Training is off" in shown(w.value) for w in at.warning), page  # said once per session
    at.switch_page("pages/runs.py").run()
    assert not at.exception and list(at.dataframe[0].value["run_id"]) == [done]
    at.switch_page("pages/train.py").run()
    assert not at.exception, at.exception
    assert [shown(e.value) for e in at.error] == [f"Cannot start a run: {reason}. Set KERAS_LAB_RUNS to a folder "
                                                  f"this app can write to and restart the app."]
    assert next(b for b in at.button if b.label == "Start training").disabled
    assert [p.name for p in store.root.iterdir()] == [done]


def _someone_elses_run(dataset: str = "iris") -> str:
    """A finished run in the store with another model and other settings than a fresh session's."""
    from tests.core.test_evaluation import write_run

    store = RunStore()
    run_id = write_run(store, dataset, epochs=7, training={
        "optimizer": "sgd", "momentum": 0.8, "learning_rate": 0.05, "batch_size": 16, "schedule": "step",
        "step_every": 2, "step_factor": 0.25, "early_stopping": True, "patience": 4, "seed": 11})
    store.update_config(run_id, model={"name": "Wide *MLP* [run]", "layers": [
        {"type": "Dense", "params": {"units": 48}}, {"type": "Dropout", "params": {"rate": 0.1}}]},
        label=f"Wide *MLP* [run] on {dataset}")
    return run_id


def _watch(run_id: str, dataset: str = "iris") -> AppTest:
    """A new tab opened on ?run=<id> (a reload: nothing in the session but the URL)."""
    at = AppTest.from_file("../../app.py", default_timeout=60)
    at.session_state["dataset"] = dataset
    at.run()
    at.switch_page("pages/train.py")
    at.query_params["run"] = run_id
    at.run()
    assert not at.exception, at.exception
    return at


def _widget(at: AppTest, kind: str, label: str):
    return next(w for w in at.get(kind) if w.label == label)


def test_a_watched_run_shows_its_own_model_and_settings_not_the_sessions(clean_streamlit_caches):
    """A reload showed the session's default model above someone else's run."""
    run_id = _someone_elses_run()
    at = _watch(run_id)
    texts = [shown(m.value) for m in at.markdown]
    assert _badge(at).startswith(f"#### Run `{run_id}`") and "completed" in _badge(at)
    head = texts.index(shown(_badge(at)))
    # right under the run's heading: its model (name shown literally), parameters, data and settings
    assert texts[head + 1] == ":material/view_in_ar: Model **Wide *MLP* [run]** (387 parameters) on **iris**", texts
    assert texts[head + 2] == (":material/tune: SGD with momentum (momentum 0.8) · learning rate 0.05 · batch 16 · "
                               "7 epochs · step decay ×0.25 every 2 epochs · early stopping on val_loss "
                               "(patience 4) · seed 11")
    assert not any("Trains" in t for t in texts[:head]), texts  # nothing of the session's above the run
    assert "Small MLP" in _next_start(at)  # the form below still trains the session's own model
    order = [e.type for e in at.main]
    assert order.index("form") > head


@pytest.mark.slow
def test_use_these_settings_fills_the_form_and_makes_the_run_model_the_next_one(clean_streamlit_caches):
    run_id = _someone_elses_run()
    at = _watch(run_id)
    assert _number(at, "Epochs").value == 10 and _widget(at, "selectbox", "Optimizer").value == "adam"
    next(b for b in at.button if b.label == "Use these settings").click()
    at.run()
    assert not at.exception, at.exception
    assert [_number(at, label).value for label in ("Epochs", "Batch size", "Learning rate", "Momentum (SGD)",
                                                   "Step every / plateau patience (epochs)",
                                                   "Step / plateau factor", "Patience (epochs)", "Seed")] == [
        7, 16, 0.05, 0.8, 2, 0.25, 4, 11]
    assert _widget(at, "selectbox", "Optimizer").value == "sgd"
    assert _widget(at, "selectbox", "Learning-rate schedule").value == "step"
    assert _widget(at, "toggle", "Early stopping").value is True
    assert "Trains **Wide *MLP* [run]** (387 parameters) on **iris**" in _next_start(at)
    assert at.session_state["model_spec"].name == "Wide *MLP* [run]"
    assert [shown(s.value) for s in at.success] == [
        f"Loaded the training settings of run `{run_id}` into the form below, and its model “Wide *MLP* [run]” "
        f"as your model: Start training trains it again with these settings."]
    assert [t.value for t in at.toast] == [f"Settings of run {run_id} loaded into the form."]

    # Start trains exactly that: the run's model with the run's settings
    _start(at)
    assert not at.error, [e.value for e in at.error]
    new = at.session_state["train_run_id"]
    assert new != run_id
    config = RunStore().read_config(new)
    assert config["model"]["name"] == "Wide *MLP* [run]"
    assert {k: config["training"][k] for k in ("optimizer", "momentum", "learning_rate", "batch_size", "epochs",
                                               "schedule", "step_every", "step_factor", "early_stopping",
                                               "patience", "seed")} == {
        "optimizer": "sgd", "momentum": 0.8, "learning_rate": 0.05, "batch_size": 16, "epochs": 7,
        "schedule": "step", "step_every": 2, "step_factor": 0.25, "early_stopping": True, "patience": 4,
        "seed": 11}
    _run_until(at, lambda a: "completed" in _badge(a) or "stopped" in _badge(a), "the new run to finish")


def test_use_these_settings_of_a_run_on_other_data_keeps_the_model_and_says_so(clean_streamlit_caches):
    run_id = _someone_elses_run("wine")
    at = _watch(run_id, "iris")
    next(b for b in at.button if b.label == "Use these settings").click()
    at.run()
    assert not at.exception, at.exception
    assert _number(at, "Epochs").value == 7 and _widget(at, "selectbox", "Optimizer").value == "sgd"
    assert "Small MLP" in _next_start(at) and "model_spec" not in at.session_state
    assert [shown(w.value) for w in at.warning] == [
        f"Loaded the training settings of run `{run_id}` into the form below. Its model “Wide *MLP* [run]” "
        f"trained on **wine**, not on the data you have selected (**iris**), so your model is unchanged: select that "
        f"dataset on the Data page and press Use these settings again to train its model too."]


@pytest.mark.slow
def test_start_confirms_next_to_the_button_with_the_run_and_its_queue_position(clean_streamlit_caches):
    """The run's progress appears above the form, out of sight on a phone: Start answers beside itself."""
    at = _train_page()
    _number(at, "Epochs").set_value(2)
    _start(at)
    assert not at.error, [e.value for e in at.error]
    run_id = at.session_state["train_run_id"]
    nodes = list(at.main)  # every element in page order
    start = next(i for i, e in enumerate(nodes) if e.type == "button" and e.label == "Start training")
    after = nodes[start + 1]  # the element right after the Start button
    assert after.type in ("success", "info") and run_id in after.value, [e.type for e in nodes]
    text = shown(after.value)
    assert f"run `{run_id}` (Small MLP on iris)" in text and text.startswith(("Started at", "Queued at")), text
    assert [t.value for t in at.toast] and run_id in at.toast[0].value
    _run_until(at, lambda a: "completed" in _badge(a), "the run to finish")
    ended = shown(next(i.value for i in at.info if run_id in i.value))
    assert ended.startswith(f"Run `{run_id}` (Small MLP on iris), started at ") and "has ended: **completed**" in ended


@pytest.mark.slow
def test_a_second_start_says_where_it_waits_in_the_queue(clean_streamlit_caches):
    from ui.jobs import job_manager

    at = _train_page()
    _number(at, "Epochs").set_value(500)
    _number(at, "Batch size").set_value(8)
    _start(at)
    first = at.session_state["train_run_id"]
    _number(at, "Epochs").set_value(499)  # other settings: a second run, not a double click
    _start(at)
    second = at.session_state["train_run_id"]
    assert second != first and not at.error
    feedback = [shown(s.value) for s in at.success]
    assert len(feedback) == 1, feedback
    # next in line, or second while the first run still waited for the training process
    said = re.fullmatch(rf"Queued at \d\d:\d\d:\d\d: run `{second}` \(Small MLP on iris\), (next in line for "
                        r"training|position 2 in the queue \(1 run ahead of it\))\. Progress and Stop are at the top "
                        r"of the page\.", feedback[0])
    assert said, feedback
    toast = "queued, next in line" if said.group(1).startswith("next") else "queued, position 2"
    assert any(t.value.startswith(f"Run {second} {toast}: Small MLP on iris") for t in at.toast), \
        [t.value for t in at.toast]
    for run_id in (second, first):
        job_manager().stop(run_id)
    _run_until(at, lambda a: all(RunStore().read_status(r)["state"] == "stopped" for r in (first, second)),
               "both runs to stop")


@pytest.mark.slow
def test_a_double_start_says_so_names_the_run_and_can_start_another(clean_streamlit_caches):
    """The same settings a moment after Start are a double click: nothing new starts, and the page says so
    beside the button, names the run, and offers a deliberate second start."""
    at = _train_page()
    _number(at, "Epochs").set_value(300)
    _number(at, "Batch size").set_value(8)
    _start(at)
    first = at.session_state["train_run_id"]
    _start(at)  # unchanged settings, within the double-click window
    assert at.session_state["train_run_id"] == first
    assert [r.run_id for r in RunStore().list_runs()] == [first]
    said = [shown(w.value) for w in at.warning]
    assert len(said) == 1 and f"a few seconds after it started run `{first}` (Small MLP on iris)" in said[0], said
    assert "that counts as a double click, so nothing new started" in said[0]
    assert not at.success  # no "Started at …" as if this press had started something
    assert any(t.value.startswith(f"Nothing new started: run {first}") for t in at.toast), [t.value for t in at.toast]
    nodes = list(at.main)
    start = next(i for i, e in enumerate(nodes) if e.type == "button" and e.label == "Start training")
    assert nodes[start + 1].type == "warning"  # right under the Start button

    next(b for b in at.button if b.label == "Start another run with these settings").click()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    second = at.session_state["train_run_id"]
    assert second != first and {r.run_id for r in RunStore().list_runs()} == {first, second}
    assert RunStore().read_config(second)["training"] == RunStore().read_config(first)["training"]
    assert not at.warning and any(second in shown(s.value) for s in at.success)
    from ui.jobs import job_manager

    for run_id in (second, first):
        job_manager().stop(run_id)
    _run_until(at, lambda a: all(RunStore().read_status(r)["state"] in ("stopped", "completed")
                                 for r in (first, second)), "both runs to stop")


@pytest.mark.slow
def test_the_same_settings_after_the_double_click_window_start_a_new_run(clean_streamlit_caches, monkeypatch):
    """Only a repeat within a few seconds is a double click: a deliberate Start later trains again."""
    import core.jobs

    monkeypatch.setattr(core.jobs, "_DEDUPE_S", 0.0)  # as if the few seconds had passed
    at = _train_page()
    _number(at, "Epochs").set_value(2)
    _start(at)
    first = at.session_state["train_run_id"]
    _start(at)
    second = at.session_state["train_run_id"]
    assert second != first and {r.run_id for r in RunStore().list_runs()} == {first, second}
    assert not at.warning and any(second in shown(s.value) for s in at.success), [s.value for s in at.success]
    _run_until(at, lambda a: all(RunStore().read_status(r)["state"] == "completed" for r in (first, second)),
               "both runs to finish")


def test_a_training_process_started_during_a_page_run_does_not_run_the_app(tmp_path):
    """A spawned training process re-imports the script that __main__ was when it started, and a page run
    can be app.py itself (run through runpy on a first direct link, and in every AppTest run): there app.py
    must do nothing, not build a job manager and scan the run store in every training process."""
    import subprocess
    import sys
    from pathlib import Path

    app = Path(__file__).resolve().parents[2] / "app.py"
    probe = ("import runpy, sys; runpy.run_path(sys.argv[1], run_name='__mp_main__'); "
             "print(sorted(m for m in ('ui.jobs', 'core.jobs') if m in sys.modules and "
             "getattr(sys.modules[m], '_MANAGERS', None)))")
    out = subprocess.run([sys.executable, "-c", probe, str(app)], capture_output=True, text=True, timeout=120,
                         cwd=app.parent)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout


# ---- "Reproduce the article" --------------------------------------------------------------------------------

def _article_button(at: AppTest):
    return next(b for b in at.button if b.label == "Reproduce the article")


def test_reproduce_the_article_without_cifar10_says_how_to_get_it_and_starts_nothing(clean_streamlit_caches,
                                                                                     tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    at = _train_page("iris")
    _article_button(at).click()
    at.run()
    assert not at.exception, at.exception
    message = shown(at.error[0].value)
    # the Data page's words: the file to download and the folder to unpack it into
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in message
    assert str(tmp_path / "datasets" / "cifar-10-batches-py-target" / "cifar-10-batches-py") in message
    assert at.session_state["dataset"] == "iris" and RunStore().list_runs() == []
    assert "Small MLP" in _next_start(at)


def test_reproduce_the_article_sets_data_model_and_settings_starts_and_compares(clean_streamlit_caches, tmp_path,
                                                                                monkeypatch):
    import core.worker
    from core.training import ARTICLE, TrainOutcome
    from tests.core.test_datasets import write_cifar10

    seen = []

    def train_run(store, run_id, **kwargs):  # the run as trained; its outcome as the article's run might end
        seen.append(kwargs)
        return TrainOutcome("completed", "10 epochs, test accuracy 0.693", {"test_accuracy": 0.693})

    monkeypatch.setattr(core.worker, "train_run", train_run)
    monkeypatch.setenv("KERAS_LAB_RUNNER", "thread")  # the replaced train_run lives in this process
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    write_cifar10(tmp_path, per_batch=20)
    at = _train_page("iris")
    _article_button(at).click()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.session_state["dataset"] == "cifar10" and at.session_state["dataset_subset"] is None
    assert "Trains **Article CNN** (122,570 parameters) on **cifar10** (120 samples" in _next_start(at)
    assert (_number(at, "Batch size").value, _number(at, "Epochs").value) == (32, 10)
    assert at.selectbox(key="train_optimizer").value == "adam" and at.selectbox(key="train_split").value == "official"
    run_id = at.session_state["train_run_id"]
    assert ARTICLE.matches(RunStore().read_config(run_id))
    _run_until(at, lambda a: "completed" in _badge(a), "the run to complete")
    assert seen[0]["split"].test_idx.tolist() == list(range(100, 120))  # the official test batch
    note = shown(next(i.value for i in at.info if "the article reports" in i.value))
    assert "Test accuracy **69.3%** on CIFAR-10's official test set; the article reports about 70%" in note


@pytest.mark.slow
def test_fine_tuning_queues_the_run_and_its_frozen_only_baseline_and_sends_both_to_compare(clean_streamlit_caches):
    from core.datasets import load_builtin
    from tests.helpers import offline_transfer_spec

    at = _train_page("digits")
    assert not [w for w in at.number_input if w.label == "Fine-tuning epochs"]  # a CNN: no backbone to unfreeze
    assert any("needs a frozen pre-trained backbone" in c.value for c in at.caption)
    at.session_state["model_spec"] = offline_transfer_spec(load_builtin("digits"))  # no download here
    at.run()
    _number(at, "Epochs").set_value(1)
    _number(at, "Fine-tuning epochs").set_value(1)
    _number(at, "Top layers to unfreeze").set_value(5)
    _number(at, "Learning-rate factor").set_value(0.2)
    _start(at)
    assert not at.error, [e.value for e in at.error]
    store = RunStore()
    runs = {info.run_id: info.config for info in store.list_runs()}
    assert len(runs) == 2
    tuned = at.session_state["train_run_id"]
    frozen = next(r for r in runs if r != tuned)
    assert (runs[tuned]["training"]["epochs"], runs[tuned]["training"]["fine_tune_epochs"]) == (1, 1)
    assert runs[tuned]["training"]["fine_tune_layers"] == 5
    assert (runs[frozen]["training"]["epochs"], runs[frozen]["training"]["fine_tune_epochs"]) == (2, 0)
    assert runs[tuned]["group"] == runs[frozen]["group"] and runs[frozen]["label"].endswith("· frozen only")
    assert any(tuned in i.value and frozen in i.value for i in at.info)
    _run_until(at, lambda a: all(store.read_status(r)["state"] == "completed" for r in runs), "both runs finished")
    assert [r.get("phase") for r in store.read_metrics(tuned)] == [1, 2]
    next(b for b in at.button if b.label == "Compare these two runs").click()
    at.run()
    assert not at.exception, at.exception
    assert sorted(at.multiselect(key="runs_selected").value) == sorted(runs)
