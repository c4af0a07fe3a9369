"""TrainConfig validation, and train_run on tiny models: outcomes, records, reproducibility, strategies, uint8
images fed a batch at a time, TensorBoard event files, and the article's experiment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from core.datasets import Dataset, load_builtin, model_input, split_dataset
from core.runs import RunStore
from core.specs import preset
from core.training import ARTICLE, LiveProgress, TrainConfig, TrainConfigError, train_run

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("change, message", [
    ({"batch_size": 0}, "batch size must be between 1 and 65,536, got 0"),
    ({"batch_size": 2.5}, "batch size must be a whole number, got 2.5"),
    ({"learning_rate": 0.0}, "learning rate must be greater than 0 and at most 10, got 0.0"),
    ({"learning_rate": 11}, "learning rate must be greater than 0 and at most 10, got 11"),
    ({"learning_rate": float("nan")}, "learning rate must be a number, got nan"),
    ({"epochs": 0}, "epochs must be between 1 and 1,000, got 0"),
    ({"epochs": 1001}, "epochs must be between 1 and 1,000, got 1,001"),
    ({"optimizer": "adagrad"}, "optimizer must be one of sgd, adam, adamw, rmsprop, got 'adagrad'"),
    ({"schedule": "linear"}, "schedule must be one of constant, step, cosine, plateau, got 'linear'"),
    ({"momentum": 1.0}, "momentum must be at least 0 and less than 1, got 1.0"),
    ({"monitor": "loss"}, "monitor must be one of val_loss, val_accuracy, got 'loss'"),
    ({"loss": "hinge"}, "loss must be one of sparse_categorical_crossentropy, mse, got 'hinge'"),
    ({"patience": 0}, "patience must be between 1 and 1,000, got 0"),
    ({"step_factor": 1.0}, "step factor must be greater than 0 and less than 1, got 1.0"),
    ({"seed": -1}, "seed must be between 0 and 2,147,483,647, got -1"),
    ({"early_stopping": "yes"}, "early stopping must be true or false, got 'yes'"),
    ({"class_weights": True}, "class weights must be one of none, balanced, got True"),
    ({"weight_decay": "0.1"}, "weight decay must be a number, got '0.1'"),
    ({"test_fraction": 1}, "test fraction must be greater than 0 and less than 1, got 1"),
    ({"val_fraction": 0.5, "test_fraction": 0.4}, "validation + test fractions must leave at least 10% for training, got 0.5 + 0.4"),
    ({"split": "random"}, "split must be one of official, pooled, got 'random'"),
])
def test_invalid_settings_say_what_was_given_and_what_is_allowed(change, message):
    with pytest.raises(TrainConfigError) as info:
        replace(TrainConfig(), **change).validate()
    assert str(info.value) == message


def test_config_round_trips_through_json_and_ignores_unknown_keys():
    config = TrainConfig(optimizer="adamw", schedule="cosine", epochs=7, early_stopping=True)
    data = json.loads(json.dumps(config.to_dict()))
    assert TrainConfig.from_dict(data) == config
    assert TrainConfig.from_dict({**data, "from_the_future": 1}) == config
    assert TrainConfig.from_dict({"epochs": 4}) == TrainConfig(epochs=4)
    with pytest.raises(TrainConfigError, match="must be a JSON object"):
        TrainConfig.from_dict(["epochs", 4])


# ---- training tiny models (TensorFlow) ----------------------------------------------------------------

@pytest.fixture(scope="module")
def iris():
    return load_builtin("iris")


def _spec(dataset):
    from core.specs import preset

    return preset("Small MLP", dataset)


def _train(dataset, config, split=None, store=None, **kw):
    store = store or RunStore()
    run_id = store.create_run({"training": config.to_dict()})
    split = split or split_dataset(dataset, seed=config.seed, val_fraction=config.val_fraction,
                                   test_fraction=config.test_fraction)
    progress = LiveProgress(config.epochs)
    outcome = train_run(store, run_id, dataset=dataset, split=split, spec=_spec(dataset), config=config,
                        progress=progress, **kw)
    return store, run_id, outcome, progress


@pytest.mark.slow
def test_same_seed_same_curves_different_seed_different_curves(iris):
    config = TrainConfig(epochs=3, batch_size=16, seed=3)
    store, a, _, _ = _train(iris, config)
    _, b, _, _ = _train(iris, config, store=store)
    _, c, _, _ = _train(iris, replace(config, seed=4), store=store)
    losses = [[r["loss"] for r in store.read_metrics(run)] for run in (a, b, c)]
    assert len(losses[0]) == 3
    assert losses[0] == losses[1]
    assert losses[0] != losses[2]


@pytest.mark.slow
def test_completed_run_writes_records_model_and_predictions(iris):
    config = TrainConfig(epochs=2, batch_size=16, optimizer="sgd", schedule="step", step_every=1,
                         step_factor=0.5, learning_rate=0.1, class_weights="balanced", loss="mse")
    store, run_id, outcome, progress = _train(iris, config)
    assert outcome.state == "completed"
    records = store.read_metrics(run_id)
    assert [r["epoch"] for r in records] == [1, 2]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "time", "samples_per_s"):
        assert all(isinstance(r[key], float) for r in records), key
    assert records[1]["lr"] == pytest.approx(records[0]["lr"] / 2, rel=1e-5)  # the step schedule halves it
    assert records[0]["time"] < records[1]["time"]
    pred = store.read_predictions(run_id)
    n_test = len(pred["y_true"])
    assert pred["probs"].shape == (n_test, 3) and pred["probs"].dtype == np.float32
    np.testing.assert_allclose(pred["probs"].sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(iris.y[pred["test_idx"]], pred["y_true"])
    assert float(pred["test_accuracy"]) == pytest.approx(outcome.extra["test_accuracy"])
    assert store.model_path(run_id).stat().st_size > 0
    assert store.read_config(run_id)["strategy"] == {"name": "default", "replicas": 1, "global_batch": 16,
                                                     "steps_per_call": 1}  # iris: too few batches to group
    live = progress.read()
    assert live["records"] == records and len(live["batches"]) == outcome.extra["steps"]


@pytest.mark.slow
def test_nan_loss_ends_the_run_as_diverged(iris):
    config = TrainConfig(epochs=3, batch_size=16)
    split = split_dataset(iris, seed=0)
    x_train = split.x_train.copy()
    x_train[:] = 3e38  # overflows to inf in the first Dense layer: the loss is not finite
    split = replace(split, x_train=x_train)
    store, run_id, outcome, _ = _train(iris, config, split=split)
    assert outcome.state == "diverged"
    assert "NaN or infinite at epoch 1, batch 1" in outcome.message
    assert not store.model_path(run_id).exists()  # NaN weights are not worth evaluating
    records = store.read_metrics(run_id)
    assert len(records) == 1 and records[0]["loss"] is None  # JSON has no NaN: stored as null


@pytest.mark.slow
def test_a_finite_loss_explosion_ends_the_run_as_diverged(iris):
    """SGD at rate 10 blows the loss up ~10,000x without a NaN; it used to run on and end as 'completed'."""
    config = TrainConfig(epochs=5, batch_size=32, optimizer="sgd", learning_rate=10.0)
    store, run_id, outcome, _ = _train(iris, config)
    assert outcome.state == "diverged"
    assert "the loss exploded from" in outcome.message and "at epoch 1" in outcome.message
    assert "try a smaller learning rate" in outcome.message
    records = store.read_metrics(run_id)
    assert len(records) == 1  # stopped in the first epoch, not run on to the fifth
    assert not store.model_path(run_id).exists()
    _, _, fine, _ = _train(iris, TrainConfig(epochs=5, batch_size=32, optimizer="sgd", learning_rate=0.1))
    assert fine.state == "completed"


@pytest.mark.slow
def test_a_run_that_learned_nothing_says_so(iris):
    split = split_dataset(iris, seed=0)
    split = replace(split, y_train=np.zeros_like(split.y_train))  # it can only learn "always class 0"
    _, _, outcome, _ = _train(iris, TrainConfig(epochs=3, batch_size=16, learning_rate=0.05), split=split)
    assert outcome.state == "completed"
    baseline = np.bincount(split.y_test).max() / len(split.y_test)
    assert f"no better than always guessing the most common class ({baseline:.3f})" in outcome.message
    # the cause the Evaluate page's Diagnostics name first too: one class in training, not the learning rate
    assert "did not learn. Classes missing from the training data: " in outcome.message
    assert "try a smaller learning rate" not in outcome.message
    _, _, good, _ = _train(iris, TrainConfig(epochs=30, batch_size=16, learning_rate=0.01))
    assert good.extra["test_accuracy"] > 0.6 and "did not learn" not in good.message


@pytest.mark.slow
def test_early_stopping_and_plateau_schedule(iris):
    config = TrainConfig(epochs=40, batch_size=32, learning_rate=0.05, schedule="plateau", step_every=1,
                         step_factor=0.5, early_stopping=True, patience=2, monitor="val_accuracy")
    store, run_id, outcome, _ = _train(iris, config)
    records = store.read_metrics(run_id)
    assert outcome.state == "completed"
    assert len(records) < 40 and "early stopping" in outcome.message
    lrs = [r["lr"] for r in records]
    assert min(lrs) < lrs[0]  # reduce-on-plateau lowered the rate before early stopping ended the run


@pytest.mark.slow
def test_two_logical_cpus_train_under_mirrored_strategy(tmp_path):
    """Logical devices must be set before TensorFlow starts, so this runs in a fresh interpreter."""
    script = textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {str(ROOT)!r})
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from core.datasets import load_builtin, split_dataset
        from core.runs import RunStore
        from core.specs import preset
        from core.training import LiveProgress, TrainConfig, train_run
        ds = load_builtin("iris")
        config = TrainConfig(epochs=2, batch_size=8)
        store = RunStore({str(tmp_path / "runs")!r})
        run_id = store.create_run({{}})
        out = train_run(store, run_id, dataset=ds, split=split_dataset(ds), spec=preset("Small MLP", ds),
                        config=config, progress=LiveProgress(2))
        print(json.dumps({{"state": out.state, "strategy": store.read_config(run_id)["strategy"],
                          "epochs": len(store.read_metrics(run_id))}}))
    """)
    env = {**os.environ, "KERAS_LAB_DEVICES": "cpu", "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("TF_CONFIG", None)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["strategy"]["name"] == "MirroredStrategy"
    assert result["strategy"]["replicas"] == 2
    assert result["strategy"]["global_batch"] == 16
    assert result["state"] == "completed" and result["epochs"] == 2


def test_steps_per_call_groups_cheap_steps_and_keeps_stop_and_the_curve():
    from core.training import steps_per_call

    assert steps_per_call(100_000, 32, 1875) == 32  # a small model: the call's fixed cost dominates
    assert steps_per_call(40_000_000_000, 32, 1875) == 1  # heavy steps: Stop must not wait for several
    assert steps_per_call(100_000, 32, 100) == 5  # short epochs keep >= 20 points of the batch curve
    assert steps_per_call(100_000, 16, 7) == 1
    mid = steps_per_call(10_000_000, 32, 1875)  # 0.0245 s per step at the assumed rate: 16 fit in 0.4 s
    assert mid == 16


@pytest.mark.slow
def test_grouped_steps_report_each_call_and_stop_lands_within_one_call(tmp_path, monkeypatch):
    """With several steps per call the run reports every call, and Stop lands at the end of the call."""
    import core.training as training

    digits = load_builtin("digits")
    spec = preset("Small MLP", digits)
    store = RunStore(tmp_path / "runs")
    split = split_dataset(digits, seed=0)
    monkeypatch.setattr(training, "steps_per_call", lambda *a: 8)
    progress = LiveProgress(3)
    run_id = store.create_run({})
    def stop_later():
        while progress.read()["step"] < 20:
            time.sleep(0.001)
        progress.request_stop()

    thread = threading.Thread(target=stop_later)
    thread.start()
    outcome = train_run(store, run_id, dataset=digits, split=split, spec=spec,
                        config=TrainConfig(epochs=3, batch_size=8), progress=progress)
    thread.join()
    assert store.read_config(run_id)["strategy"]["steps_per_call"] == 8
    assert outcome.state == "stopped"
    assert 0 <= outcome.extra["steps_after_stop_request"] <= 8
    steps = [s for s, _ in progress.read()["batches"]]
    assert steps[:3] == [8, 16, 24]  # one report per call of 8 steps


def test_history_figure_overlays_runs_with_training_and_validation():
    from core.charts.training import history_figure, metric_names

    a = [{"kind": "epoch", "epoch": 1, "loss": 1.0, "val_loss": 1.2, "accuracy": 0.5, "lr": 0.1, "time": 1.0},
         {"kind": "epoch", "epoch": 2, "loss": 0.5, "val_loss": 0.9, "accuracy": 0.7, "lr": 0.1, "time": 2.0}]
    b = [{"kind": "epoch", "epoch": 1, "loss": 2.0, "val_loss": 2.5}]
    assert metric_names(a) == ["loss", "accuracy"]
    fig = history_figure({"run a": a, "run b": b}, "loss", log_y=True)
    assert [t.name for t in fig.data] == ["run a · training", "run a · validation", "run b · training",
                                          "run b · validation"]
    assert list(fig.data[1].y) == [1.2, 0.9] and fig.layout.yaxis.type == "log"
    single = history_figure({"run a": a}, "accuracy")
    assert [t.name for t in single.data] == ["training"]  # no validation accuracy recorded


def test_smoothing_is_debiased_and_batch_curve_is_thinned():
    from core.charts.training import batch_figure, smooth

    assert smooth([2.0, 2.0, 2.0], 0.9) == pytest.approx([2.0, 2.0, 2.0])  # no pull towards zero
    assert smooth([0.0, 1.0], 0.5) == pytest.approx([0.0, 2 / 3])
    with pytest.raises(ValueError, match="smoothing weight must be in"):
        smooth([1.0], 1.0)
    fig = batch_figure([(i, 1.0 / i) for i in range(1, 5001)], max_points=500)
    assert len(fig.data[0].x) <= 500 and fig.data[0].x[0] == 1


# ---- uint8 images, TensorBoard, the article's experiment --------------------------------------------------

def _uint8_digits() -> Dataset:
    digits = load_builtin("digits")
    return Dataset("pixels", np.round(digits.x * 255).astype(np.uint8), digits.y, digits.class_names, "image")


def test_uint8_images_are_fed_a_batch_at_a_time_as_floats_reshuffled_each_epoch():
    from core.training import _ImageBatches, _keras_class

    x, y = _uint8_digits().x[:10], np.arange(10)
    batches = _keras_class(_ImageBatches, "utils.PyDataset")(x, y, 4, seed=7)
    assert len(batches) == 3 and batches.num_batches == 3
    firsts = []
    for _ in range(2):
        seen = [batches[i] for i in range(3)]
        for xb, yb in seen:
            assert xb.dtype == np.float32
            np.testing.assert_array_equal(xb, model_input(x[yb]))  # each batch: its rows' pixels / 255
        assert sorted(np.concatenate([yb for _, yb in seen]).tolist()) == list(range(10))  # every row once
        firsts.append(seen[0][1])
        batches.on_epoch_end()
    assert firsts[0].tolist() != firsts[1].tolist()  # a new order each epoch
    again = _keras_class(_ImageBatches, "utils.PyDataset")(x, y, 4, seed=7)
    assert again[0][1].tolist() == firsts[0].tolist()  # seeded: the same order for the same seed
    plain = _keras_class(_ImageBatches, "utils.PyDataset")(x, None, 4)
    assert len(plain[2]) == 1 and plain[2][0].shape == (2, 8, 8, 1)  # predict: inputs only, the last batch short


@pytest.mark.slow
def test_a_run_on_uint8_images_is_reproducible_and_scores_scaled_test_images():
    import keras

    pixels = _uint8_digits()
    config = TrainConfig(epochs=2, batch_size=32, seed=5)
    store, a, outcome, _ = _train(pixels, config)
    _, b, _, _ = _train(pixels, config, store=store)
    _, c, _, _ = _train(pixels, replace(config, seed=6), store=store)
    losses = [[r["loss"] for r in store.read_metrics(run)] for run in (a, b, c)]
    assert losses[0] == losses[1] and losses[0] != losses[2]
    assert outcome.state == "completed" and outcome.extra["test_accuracy"] > 0.5
    split = split_dataset(pixels, seed=5)
    saved = store.read_predictions(a)["probs"]
    model = keras.saving.load_model(store.model_path(a))
    np.testing.assert_allclose(saved, model.predict(model_input(split.x_test), verbose=0), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_every_run_writes_its_epoch_metrics_as_tensorboard_event_files(iris):
    import tensorflow as tf

    store, run_id, _, _ = _train(iris, TrainConfig(epochs=2, batch_size=16))
    records = store.read_metrics(run_id)

    def scalars(part):
        values = {}
        for path in sorted((store.run_dir(run_id) / "tensorboard" / part).glob("events.out.tfevents.*")):
            for event in tf.compat.v1.train.summary_iterator(str(path)):
                for value in event.summary.value:
                    if value.tag.startswith("epoch_"):
                        values.setdefault(value.tag, []).append(float(tf.make_ndarray(value.tensor)))
        return values

    train, validation = scalars("train"), scalars("validation")
    assert train["epoch_loss"] == pytest.approx([r["loss"] for r in records], rel=1e-6)
    assert train["epoch_accuracy"] == pytest.approx([r["accuracy"] for r in records], rel=1e-6)
    assert validation["epoch_loss"] == pytest.approx([r["val_loss"] for r in records], rel=1e-6)


def _cifar_like(**fields):
    rng = np.random.default_rng(0)
    values = {"name": "cifar10", "x": rng.integers(0, 256, (60, 32, 32, 3), dtype=np.uint8), "y": np.arange(60) % 10,
              "class_names": tuple("abcdefghij"), "kind": "image", "official_test_start": 50, **fields}
    return Dataset(**values)


def test_the_article_recipe_is_the_printed_experiment_and_recognises_its_runs():
    from core.jobs import TrainRequest, run_config
    from core.specs import analyse_spec

    cifar = _cifar_like()
    spec = preset(ARTICLE.preset, cifar)
    assert analyse_spec(spec, cifar.input_shape, 10, "image").total_params == 122_570
    assert (ARTICLE.config.optimizer, ARTICLE.config.batch_size, ARTICLE.config.epochs, ARTICLE.config.split) == \
        ("adam", 32, 10, "official")

    def config(dataset=cifar, model=spec, **settings):
        return json.loads(json.dumps(run_config(TrainRequest(dataset, model, replace(ARTICLE.config, **settings)))))

    assert ARTICLE.matches(config()) and ARTICLE.matches(config(seed=3))
    assert not ARTICLE.matches(config(epochs=5))
    assert not ARTICLE.matches(config(split="pooled"))
    assert not ARTICLE.matches(config(dataset=_cifar_like(subset=60)))
    assert not ARTICLE.matches(config(dataset=_cifar_like(name="cifar100")))
    assert not ARTICLE.matches(config(model=preset("Small CNN", cifar)))
    assert not ARTICLE.matches({"dataset": {"name": "cifar10"}, "split": {"kind": "official"}, "model": "broken"})


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["sparse_categorical_crossentropy", "mse"])
def test_test_metrics_from_the_predictions_equal_what_keras_evaluate_reports(iris, loss):
    """The run's test loss and accuracy come from its test predictions (no second pass over the test split);
    model.evaluate on the saved model, with an L2 penalty in the loss, is the reference."""
    import keras

    from core.specs import ModelSpec, make_layer

    spec = ModelSpec((make_layer("Dense", units=16, activation="relu", l2=1e-2),), "L2 MLP")
    config = TrainConfig(epochs=3, batch_size=16, seed=2, loss=loss)
    store = RunStore()
    run_id = store.create_run({"training": config.to_dict()})
    split = split_dataset(iris, seed=config.seed)
    outcome = train_run(store, run_id, dataset=iris, split=split, spec=spec, config=config,
                        progress=LiveProgress(config.epochs))
    model = keras.models.load_model(store.model_path(run_id))
    y = split.y_test if loss != "mse" else np.eye(iris.n_classes, dtype=np.float32)[split.y_test]
    reference = model.evaluate(split.x_test, y, verbose=0, return_dict=True)
    assert sum(float(v) for v in model.losses) > 1e-3  # the penalty is really part of the loss
    assert outcome.extra["test_loss"] == pytest.approx(reference["loss"], rel=1e-5)
    assert outcome.extra["test_accuracy"] == pytest.approx(reference["accuracy"], abs=1e-7)
