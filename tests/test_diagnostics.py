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
