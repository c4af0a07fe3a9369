"""Fine-tuning in two phases (the article's pre-train -> fine-tune): the head trains on a frozen backbone, then
the top N backbone layers are unfrozen at a lower learning rate, in one run, the phase change recorded.

What is checked on the weights themselves: in a two-phase run the backbone layers below the top N end exactly
as they were built, the top N's kernels moved, and no BatchNormalization weight moved (they stay frozen, so
they run in inference mode and keep the pre-trained statistics); in the frozen-only baseline no backbone
weight moved.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from core.datasets import load_builtin, split_dataset
from core.runs import RunStore
from core.specs import LayerSpec, preset
from core.training import (
    FineTuneError,
    LiveProgress,
    TrainConfig,
    TrainConfigError,
    check_fine_tune,
    frozen_backbone,
    frozen_only,
    train_run,
    unfreeze_top,
)
from tests.helpers import offline_transfer_spec

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def digits():
    ds = load_builtin("digits")
    keep = np.arange(240)  # 8x8 grey, resized to 32x32 RGB by the model: a small but real image dataset
    return replace(ds, x=ds.x[keep], y=ds.y[keep])


def _run(dataset, spec, config):
    """Train one run; return the store, run id, outcome and the built model with its weights as built."""
    from core.models import build_model

    built = {}

    def build_and_remember(spec_, dataset_, notes=None):
        model = build_model(spec_, dataset_, notes=notes)
        built["model"] = model
        built["before"] = {w.path: w.numpy().copy() for w in model.weights}
        return model

    store = RunStore()
    run_id = store.create_run({"training": config.to_dict()})
    split = split_dataset(dataset, seed=config.seed)
    outcome = train_run(store, run_id, dataset=dataset, split=split, spec=spec, config=config,
                        progress=LiveProgress(config.total_epochs), build_model=build_and_remember)
    return store, run_id, outcome, built


def _moved(layer, before) -> list[str]:
    return [w.path for w in layer.weights if not np.array_equal(before[w.path], w.numpy())]


def test_two_phases_train_the_head_then_only_the_top_of_the_backbone_at_the_lower_rate(digits):
    import keras

    config = TrainConfig(epochs=2, fine_tune_epochs=2, fine_tune_layers=12, fine_tune_lr_factor=0.1,
                         learning_rate=1e-3, batch_size=32, seed=1)
    store, run_id, outcome, built = _run(digits, offline_transfer_spec(digits), config)
    assert outcome.state == "completed", outcome.message
    assert "epochs 3-4 fine-tuned the top 12 backbone layers" in outcome.message

    records = store.read_metrics(run_id)
    assert [(r["epoch"], r["phase"]) for r in records] == [(1, 1), (2, 1), (3, 2), (4, 2)]
    assert [r["lr"] for r in records] == pytest.approx([1e-3, 1e-3, 1e-4, 1e-4], rel=1e-5)
    assert all(a["time"] < b["time"] for a, b in zip(records, records[1:], strict=False))  # one clock, both phases

    model, before = built["model"], built["before"]
    net = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    info = store.read_config(run_id)["fine_tune"]
    assert info["from_epoch"] == 3 and info["unfrozen_layers"] == 12
    assert info["backbone_layers"] == len(net.layers) and info["learning_rate"] == pytest.approx(1e-4)
    below, top = net.layers[:-12], net.layers[-12:]
    assert not [path for layer in below for path in _moved(layer, before)]  # frozen stays frozen
    top_kernels = [w.path for layer in top for w in layer.trainable_weights if "kernel" in w.path]
    assert top_kernels and set(top_kernels) <= {p for layer in top for p in _moved(layer, before)}
    assert info["unfrozen_weights"] == sum(int(np.prod(w.shape)) for layer in top for w in layer.trainable_weights)
    norms = [layer for layer in top if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and not [path for layer in norms for path in _moved(layer, before)]  # statistics kept
    assert _moved(model.get_layer("classifier"), before)  # the head trained


def test_the_frozen_only_baseline_trains_as_many_epochs_and_never_touches_the_backbone(digits):
    import keras

    config = TrainConfig(epochs=1, fine_tune_epochs=2, batch_size=32, seed=1)
    baseline = frozen_only(config)
    assert (baseline.epochs, baseline.fine_tune_epochs, baseline.total_epochs) == (3, 0, config.total_epochs)
    store, run_id, outcome, built = _run(digits, offline_transfer_spec(digits), baseline)
    assert outcome.state == "completed"
    records = store.read_metrics(run_id)
    assert [r["epoch"] for r in records] == [1, 2, 3] and not any("phase" in r for r in records)
    assert "fine_tune" not in store.read_config(run_id)
    net = next(layer for layer in built["model"].layers if isinstance(layer, keras.Model))
    assert not _moved(net, built["before"])


def test_a_stop_during_the_first_phase_skips_the_second(digits):
    config = TrainConfig(epochs=2, fine_tune_epochs=2, batch_size=32)
    store = RunStore()
    run_id = store.create_run({"training": config.to_dict()})
    progress = LiveProgress(config.total_epochs)
    progress.request_stop()  # Stop pressed before the first batch ends
    outcome = train_run(store, run_id, dataset=digits, split=split_dataset(digits), spec=offline_transfer_spec(digits),
                        config=config, progress=progress)
    assert outcome.state == "stopped" and "of 4" in outcome.message
    assert {r.get("phase") for r in store.read_metrics(run_id)} == {1}
    assert "fine_tune" not in store.read_config(run_id)


def test_fine_tuning_needs_a_frozen_backbone_and_says_so(digits):
    config = TrainConfig(fine_tune_epochs=3)
    mlp = preset("Small MLP", digits)
    assert frozen_backbone(mlp) is None
    with pytest.raises(FineTuneError, match="needs a frozen pre-trained backbone.*Small MLP has none"):
        check_fine_tune(mlp, config)
    spec = offline_transfer_spec(digits)
    check_fine_tune(spec, config)  # the preset's backbone is frozen
    trainable = replace(spec, layers=tuple(LayerSpec(layer.type, {**layer.params, "trainable": True})
                                           if layer.type == "Backbone" else layer for layer in spec.layers))
    with pytest.raises(FineTuneError):
        check_fine_tune(trainable, config)  # already trainable from the start: nothing to unfreeze later
    check_fine_tune(mlp, TrainConfig())  # no second phase asked: any model


@pytest.mark.parametrize(("change", "message"), [
    ({"fine_tune_epochs": -1}, "fine-tuning epochs"),
    ({"fine_tune_layers": 0}, "layers to unfreeze"),
    ({"fine_tune_lr_factor": 0.0}, "fine-tuning learning-rate factor"),
    ({"fine_tune_lr_factor": 1.5}, "fine-tuning learning-rate factor"),
    ({"epochs": 600, "fine_tune_epochs": 600}, "at most 1000, got 600 \\+ 600"),
])
def test_bad_fine_tuning_settings_are_named(change, message):
    with pytest.raises(TrainConfigError, match=message):
        TrainConfig(**change).validate()


def test_unfreezing_more_layers_than_the_backbone_has_unfreezes_all_of_it(digits):
    from core.models import build_model

    model = build_model(offline_transfer_spec(digits), digits)
    changed = unfreeze_top(model, 1000)
    assert changed["unfrozen_layers"] == changed["backbone_layers"]
    head = model.get_layer("classifier").count_params()
    assert changed["unfrozen_weights"] + head == sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_the_exported_script_fine_tunes_in_two_phases_as_the_app_does(digits, tmp_path):
    import re
    import subprocess
    import sys

    from core.models import export_code

    settings = TrainConfig(epochs=1, fine_tune_epochs=1, fine_tune_layers=7, fine_tune_lr_factor=0.05,
                           batch_size=64, learning_rate=2e-3).to_dict()
    code = export_code(offline_transfer_spec(digits), digits, settings)
    assert "keras.optimizers.Adam(learning_rate=0.0001)" in code  # 2e-3 x 0.05, a fresh optimizer
    assert "layer.trainable = i >= len(backbone.layers) - 7 and not isinstance(layer, layers.BatchNormalization)" \
        in code
    script = tmp_path / "exported.py"
    script.write_text(code + "    print('TRAINABLE', sum(int(np.prod(w.shape)) for w in model.trainable_weights))\n"
                             "    print('EPOCHS', len(model.history.history['loss']), model.history.epoch)\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    from core.models import build_model

    model = build_model(offline_transfer_spec(digits), digits)
    changed = unfreeze_top(model, 7)
    head = model.get_layer("classifier").count_params()
    assert int(re.search(r"TRAINABLE (\d+)", done.stdout).group(1)) == changed["unfrozen_weights"] + head
    assert "EPOCHS 1 [1]" in done.stdout  # the second fit went on from epoch 1 (0-based) for one epoch
