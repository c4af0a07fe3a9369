"""Diagnostics on synthetic histories: each problem is found, healthy runs raise nothing."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.diagnostics import (
    check_class_imbalance,
    check_dead_relu,
    check_divergence,
    check_learning_rate,
    check_overfitting,
    check_underfitting,
    dead_relu_shares,
    diagnose,
    faq_url,
)


def hist(loss, val_loss=None, acc=None, val_acc=None):
    out = []
    for i, v in enumerate(loss):
        rec = {"kind": "epoch", "epoch": i + 1, "loss": v}
        for key, seq in (("val_loss", val_loss), ("accuracy", acc), ("val_accuracy", val_acc)):
            if seq is not None:
                rec[key] = seq[i]
        out.append(rec)
    return out


HEALTHY = hist([1.2, 0.6, 0.4, 0.3, 0.25], [1.25, 0.7, 0.5, 0.42, 0.40],
               [0.6, 0.8, 0.88, 0.91, 0.93], [0.58, 0.77, 0.84, 0.87, 0.88])


def test_healthy_history_has_no_findings():
    assert diagnose(HEALTHY, 10, class_counts=[50] * 10, relu_shares={"dense": 0.05}) == []


def test_overfitting_when_validation_loss_turns_up():
    h = hist([1.0, 0.5, 0.3, 0.15, 0.08, 0.04], [1.0, 0.6, 0.5, 0.55, 0.65, 0.8],
             [0.6, 0.8, 0.9, 0.95, 0.98, 0.99], [0.6, 0.78, 0.84, 0.83, 0.82, 0.8])
    f = check_overfitting(h)
    assert f is not None and f.faq_id == "overfitting" and "epoch 3" in f.explanation
    assert check_overfitting(HEALTHY) is None


def test_underfitting_near_chance():
    h = hist([2.30, 2.29, 2.28], acc=[0.1, 0.11, 0.12])
    f = check_underfitting(h, 10)
    assert f is not None and f.faq_id == "underfitting"
    assert f"{math.log(10):.3f}" in f.explanation
    assert check_underfitting(HEALTHY, 10) is None


def test_divergence_on_nan_loss_and_diverged_status():
    h = hist([1.0, 3.0, float("nan")])
    f = check_divergence(h)
    assert f.severity == "error" and f.faq_id == "divergence" and "epoch 3" in f.explanation
    assert check_divergence(hist([1.0]), status="diverged").faq_id == "divergence"
    assert [x.faq_id for x in diagnose(h, 3)] == ["divergence"]  # other history checks skip NaN runs


def test_learning_rate_too_high_and_too_low():
    rising = hist([1.0, 1.4, 0.9, 1.6, 1.2, 1.8])
    assert check_learning_rate(rising).faq_id == "learning-rate-too-high"
    flat = hist([2.000, 1.998, 1.995, 1.992])
    assert check_learning_rate(flat).faq_id == "learning-rate-too-low"
    assert check_learning_rate(HEALTHY) is None


def test_class_imbalance_from_counts():
    f = check_class_imbalance([300, 40, 100], ["a", "b", "c"])
    assert f.faq_id == "class-imbalance" and "7.5×" in f.explanation
    assert check_class_imbalance([100, 80, 60], ["a", "b", "c"]) is None


def test_dead_relu_share_per_layer():
    rng = np.random.default_rng(0)
    dense = np.abs(rng.normal(size=(32, 8)))
    dense[:, [1, 4, 6]] = 0.0  # 3 of 8 units never fire
    conv = np.abs(rng.normal(size=(32, 4, 4, 5)))
    conv[..., 2] = 0.0
    conv[0, 0, 0, 3] = 0.0  # zero once is not dead
    shares = dead_relu_shares({"dense": dense, "conv": conv})
    assert shares == {"dense": 3 / 8, "conv": 1 / 5}
    f = check_dead_relu(shares)
    assert f.severity == "info" and f.faq_id == "dead-relu" and "dense" in f.title
    assert check_dead_relu({"d": 0.6}).severity == "warning"


def test_every_finding_links_to_an_faq_entry_that_exists():
    from core import faq

    ids = {"overfitting", "underfitting", "divergence", "learning-rate-too-high", "learning-rate-too-low",
           "class-imbalance", "dead-relu"}
    for entry in ids:
        assert faq.get(entry).id == entry
        assert faq_url(entry) == faq.faq_link(entry)


@pytest.mark.slow
def test_relu_activations_of_a_keras_model_find_the_dead_units():
    import keras

    from core.diagnostics import relu_activations

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu", name="hidden"),
                              keras.layers.Dense(2, activation="softmax")])
    kernel, bias = model.get_layer("hidden").get_weights()
    bias[[0, 2]] = -1000.0  # units 0 and 2 can never be positive on inputs in [0, 1]
    bias[[1, 3]] = 1000.0
    model.get_layer("hidden").set_weights([kernel, bias])
    acts = relu_activations(model, np.random.default_rng(0).random((16, 3)).astype(np.float32))
    assert list(acts) == ["hidden"] and acts["hidden"].shape == (16, 4)
    assert dead_relu_shares(acts) == {"hidden": 0.5}


# ---- one diagnosis per cause: the ordered rule table ---------------------------------------------------

from core.diagnostics import RULES, backbone_weights_file, check_random_backbone  # noqa: E402

CHANCE_10 = math.log(10)  # 2.302585: the loss of blind guessing between 10 classes
UNAVAILABLE = ["ImageNet weights for MobileNetV2 could not be downloaded (URL fetch failure: network is "
               "unreachable). The backbone starts from RANDOM weights, so it is not pre-trained: expect much "
               "lower accuracy, and consider switching 'trainable' on."]


def backbone_config(weights="imagenet", trainable=False, notes=UNAVAILABLE, alpha=0.35, input_size=32):
    """config.json of a Transfer-learning run (as core.jobs.run_config writes it, build_notes added by training)."""
    return {"model": {"name": "Transfer learning (MobileNetV2)", "layers": [
                {"type": "Backbone", "params": {"name": "MobileNetV2", "alpha": alpha, "weights": weights,
                                                "trainable": trainable, "input_size": input_size}},
                {"type": "Dense", "params": {"units": 64}}]},
            "build_notes": list(notes)}


# stuck at chance: the head on random features learns nothing; the loss wobbles in the 5th decimal
STUCK = hist([2.30262, 2.30259, 2.30260, 2.30258, 2.30263], [2.30259] * 5, [0.1] * 5, [0.1] * 5)

# words that tell the learner which way to move the learning rate
LOWER = ("smaller", "lower the learning rate", "learning rate (÷10)")
RAISE = ("larger", "raise the learning rate", "raise a learning rate")


def lr_advice(findings) -> set[str]:
    text = " ".join(f"{f.title} {f.explanation}".lower() for f in findings)
    return {d for d, words in (("lower", LOWER), ("raise", RAISE)) if any(w in text for w in words)}


def test_loss_at_chance_on_a_frozen_backbone_without_imagenet_weights_says_exactly_that(monkeypatch, tmp_path):
    """The reported run: Transfer learning offline, loss 2.3026 for 10 classes. It used to get "learning rate
    probably too low" (and "too high" when the loss ticked up) in Diagnostics."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    without = diagnose(STUCK, 10)
    assert {f.faq_id for f in without} >= {"learning-rate-too-high"}  # what the bare history suggests
    found = diagnose(STUCK, 10, run_config=backbone_config(), relu_shares={"dense_2": 0.7})
    assert [f.title for f in found] == ["The frozen backbone has random weights"]
    text = found[0].explanation
    assert "2.3026" in text and "ln 10 = 2.3026" in text
    assert "ImageNet weights of MobileNetV2 were unavailable" in text
    assert "frozen backbone has random weights and its features carry no information" in text
    assert "Unfreeze it" in text
    weights = tmp_path / "kh" / "models" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"
    assert f"provide the ImageNet weights: the file {weights}." in text
    assert "learning rate" not in text.lower() and lr_advice(found) == set()


def test_random_backbone_cases():
    chosen = check_random_backbone(STUCK, 10, backbone_config(weights="none", notes=[]))
    assert chosen is not None and "weights: none" in chosen.explanation and "choose ImageNet weights" in chosen.explanation
    pretrained = ["MobileNetV2 starts from ImageNet weights (pre-trained)."]
    assert check_random_backbone(STUCK, 10, backbone_config(notes=pretrained)) is None  # real features: other causes
    assert check_random_backbone(STUCK, 10, backbone_config(trainable=True)) is None  # it learns, from scratch
    assert check_random_backbone(HEALTHY, 10, backbone_config()) is None  # learned anyway: nothing to explain
    assert check_random_backbone(STUCK, 10, None) is None
    assert check_random_backbone(STUCK, 10, {"model": {"layers": [{"type": "Dense"}]}, "build_notes": UNAVAILABLE}) is None
    # the short note of an older run is recognised too
    assert check_random_backbone(STUCK, 10, backbone_config(notes=["ImageNet weights unavailable: random weights"]))


def test_weights_file_is_the_one_keras_reads(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    name = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{}_{}_no_top.h5"
    assert backbone_weights_file({"alpha": 1.0, "input_size": 160}) == tmp_path / "models" / name.format(1.0, 160)
    assert backbone_weights_file({"alpha": 0.5, "input_size": 40}) == tmp_path / "models" / name.format(0.5, 224)
    assert backbone_weights_file({"name": "Other"}) is None


FLAT_HIGH = hist([2.0, 1.998, 1.995, 1.992], acc=[0.2, 0.2, 0.21, 0.21])  # 10 classes: barely moving, far from fit
BUMPY_HIGH = hist([2.1, 2.25, 2.0, 2.3, 2.05, 2.35], acc=[0.15, 0.12, 0.18, 0.1, 0.16, 0.1])
SLOW_HIGH = hist([2.3, 2.2, 2.1, 2.0], acc=[0.12, 0.15, 0.2, 0.22])  # falling steadily, still near chance
UNDER_AND_OVER = hist([2.3, 2.1, 2.0, 1.95, 1.94], [2.2, 2.0, 2.1, 2.3, 2.5], [0.15, 0.18, 0.2, 0.22, 0.24],
                      [0.15, 0.2, 0.18, 0.15, 0.12])


@pytest.mark.parametrize("history, shares, expected", [
    # a flat high loss: one cause, "learning rate too low" — not also "underfitting: raise the learning rate"
    (FLAT_HIGH, None, ["learning-rate-too-low"]),
    # bumpy and high: the rate is too high; underfitting's "train longer / bigger model" would mislead
    (BUMPY_HIGH, None, ["learning-rate-too-high"]),
    # most ReLU units dead explain the flat loss: "lower the rate" only, never also "3-10x larger"
    (FLAT_HIGH, {"dense_1": 0.75}, ["dead-relu"]),
    # a few dead units next to a rate too low would say "lower the learning rate": left out
    (FLAT_HIGH, {"dense_1": 0.3}, ["learning-rate-too-low"]),
    # still learning: train longer or a bigger model, with no learning-rate advice
    (SLOW_HIGH, None, ["underfitting"]),
    # cannot fit the training data: not also "overfitting: add dropout" (the opposite remedy)
    (UNDER_AND_OVER, None, ["underfitting"]),
    (HEALTHY, {"dense_1": 0.3}, ["dead-relu"]),  # a note when nothing else is wrong
])
def test_one_cause_per_symptom(history, shares, expected):
    assert [f.faq_id for f in diagnose(history, 10, relu_shares=shares)] == expected


def test_no_run_gets_advice_in_both_directions():
    """Every combination of crafted histories, dead-unit shares and backbones: never "lower" and "raise"
    the learning rate at once, never two findings of one cause."""
    overfit = hist([1.0, 0.5, 0.3, 0.15, 0.08, 0.04], [1.0, 0.6, 0.5, 0.55, 0.65, 0.8],
                   [0.6, 0.8, 0.9, 0.95, 0.98, 0.99], [0.6, 0.78, 0.84, 0.83, 0.82, 0.8])
    histories = [HEALTHY, STUCK, FLAT_HIGH, BUMPY_HIGH, SLOW_HIGH, UNDER_AND_OVER, overfit,
                 hist([1.0, 1.4, 0.9, 1.6, 1.2, 1.8]), hist([2.0, 1.998, 1.995, 1.992])]
    configs = [None, backbone_config(), backbone_config(weights="none", notes=[]), backbone_config(trainable=True)]
    for h in histories:
        for shares in (None, {"d": 0.3}, {"d": 0.8}):
            for config in configs:
                for counts in (None, [50] * 10, [300] + [20] * 9):
                    found = diagnose(h, 10, relu_shares=shares, run_config=config, class_counts=counts)
                    assert len(lr_advice(found)) <= 1, (h, shares, config, [f.title for f in found])
                    titles = [f.title.split(" (")[0] for f in found]
                    assert len(titles) == len(set(titles)), titles


def test_rule_table_has_one_cause_per_rule():
    causes = [r.cause for r in RULES]
    assert len(causes) == len(set(causes))
    assert all(out in causes for r in RULES for out in r.rules_out)
    assert all(causes.index(out) > causes.index(r.cause) for r in RULES for out in r.rules_out)  # rules out later ones


def test_a_class_without_training_samples_is_named():
    f = check_class_imbalance([104, 0, 0], ["setosa", "versicolor", "virginica"])
    assert f.severity == "error" and f.title == "Classes missing from the training data"
    assert f.explanation.startswith("versicolor, virginica have no training samples")


def test_the_final_message_names_the_diagnosis_the_panel_shows(monkeypatch, tmp_path):
    """core.training's note for a run that learned nothing reads the same evidence through the same table."""
    from types import SimpleNamespace

    import core.diagnostics as D
    from core.training import _chance_note

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(D, "relu_activations", lambda model, x: {})  # no Keras model here
    y = np.arange(100) % 10
    split = SimpleNamespace(y_test=y, y_train=np.repeat(np.arange(10), 30), x_test=np.zeros((100, 4)))
    dataset = SimpleNamespace(n_classes=10, class_names=[str(i) for i in range(10)])
    note = _chance_note(0.1, split, dataset, STUCK, None, backbone_config())
    panel = diagnose(STUCK, 10, class_counts=[30] * 10, run_config=backbone_config())
    assert note == (f"no better than always guessing the most common class (0.100): the model did not learn. "
                    f"{panel[0].title}: {panel[0].explanation.rstrip('.')}")
    assert "learning rate" not in note
    assert _chance_note(0.9, split, dataset, STUCK, None, backbone_config()) is None
    # a flat loss without a backbone: the same "too low" the panel gives, not the old "try a smaller rate"
    flat = _chance_note(0.1, split, dataset, FLAT_HIGH, None, {"model": {"layers": []}})
    assert "Learning rate probably too low" in flat and "smaller" not in flat
