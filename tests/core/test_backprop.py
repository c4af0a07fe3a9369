"""core.backprop and its text, proof and layer-gradient modules: the worked example's numbers, and every
gradient against two independent references (tests/core/references.py)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core import backprop as bp
from core import backprop_check as check
from core import backprop_text as bp_text
from core import layer_gradients as lg
from tests.core import references

COMBOS = [(act, head, width) for act in bp.ACTIVATIONS for head in bp.HEADS for width in (1, 3, 8)]


def _net(act: str, head: str, width: int) -> bp.Network:
    seed = 1000 * list(bp.ACTIVATIONS).index(act) + 100 * list(bp.HEADS).index(head) + width
    return bp.random_network(seed, n_inputs=4, width=width, hidden=act, head=head)


def test_default_example_gives_the_article_numbers_corrected():
    net = bp.default_example()
    fwd = bp.forward(net)
    assert fwd.z == pytest.approx([0.1 * 1 + 0.2 * 2 + 0.3 * 3 + 0.5, 0.1 * 1 + 0.2 * 2 + 0.4 * 3 + 0.6], abs=1e-12)
    assert fwd.z == pytest.approx([1.9, 2.3], abs=1e-12)
    assert fwd.net_out == pytest.approx(0.7 * 1.9 + 0.7 * 2.3 + 0.8, abs=1e-12)
    assert fwd.net_out == pytest.approx(3.74, abs=1e-12)
    expected_yhat = 1 / (1 + math.exp(-3.74))
    assert fwd.y_hat == pytest.approx(expected_yhat, abs=1e-12)
    assert round(fwd.y_hat, 4) == 0.9768
    assert fwd.loss == pytest.approx(-math.log(expected_yhat), abs=1e-12)
    assert round(fwd.loss, 4) == 0.0235


def test_worked_steps_print_the_right_arithmetic():
    text = "\n".join(f for s in bp_text.worked_steps(bp.default_example()) for f in s.formulas)
    assert r"0.1 \cdot 1 + 0.2 \cdot 2 + 0.3 \cdot 3 + 0.5 = 1.9" in text
    assert r"= 2.3" in text and r"= 3.74" in text and "0.976797" in text
    assert "1.6" not in text  # the article's wrong sum
    steps = bp_text.worked_steps(bp.default_example())
    assert len(steps) == 10 and all(s.text.endswith(".") for s in steps)


def test_hand_derived_gradient_of_default_example():
    """dL/dW1[1,1] = (ŷ − y) · w2_1 · ReLU'(z1) · x1, computed here from scratch."""
    net = bp.default_example()
    y_hat = 1 / (1 + math.exp(-3.74))
    expected = (y_hat - 1.0) * 0.7 * 1.0 * 1.0
    g = bp.backward(net)
    assert g.w1[0, 0] == pytest.approx(expected, abs=1e-15)
    factors, product = bp_text.chain_factors(net, "W1[1,1]")
    assert len(factors) == 5
    assert product == pytest.approx(expected, abs=1e-15)
    new = bp.sgd_step(net)
    assert new.w1[0, 0] == pytest.approx(0.1 - 0.01 * expected, abs=1e-15)


@pytest.mark.parametrize(("act", "head", "width"), COMBOS)
def test_gradients_match_finite_differences(act, head, width):
    """Ours against an independent finite-difference reference; the page's own finite differences too."""
    net = _net(act, head, width)
    ours = check.our_values(net)
    fd = references.finite_difference_gradients(net)
    assert set(fd) == {f"dL/d{p}" for p in bp.parameter_names(net)}
    for name, value in fd.items():
        assert ours[name] == pytest.approx(value, abs=1e-6), name
    assert check.finite_difference_gradients(net) == pytest.approx(fd, abs=1e-6)


@pytest.mark.parametrize(("act", "head", "width"), COMBOS)
def test_chain_factor_products_equal_the_gradients(act, head, width):
    net = _net(act, head, width)
    g = bp.backward(net)
    for name in bp.parameter_names(net):
        _, product = bp_text.chain_factors(net, name)
        assert product == pytest.approx(bp.gradient_of(g, net, name), rel=1e-12, abs=1e-15), name


@pytest.mark.slow
@pytest.mark.parametrize(("act", "head", "width"), COMBOS)
def test_everything_matches_tf_gradient_tape(act, head, width):
    """Forward values, gradients and updates against an independent TensorFlow reference; the page's too."""
    net = _net(act, head, width)
    ref = references.tf_values(net)
    assert check.our_values(net) == pytest.approx(ref, rel=0, abs=1e-9)
    assert check.tf_reference(net) == pytest.approx(ref, rel=0, abs=1e-12)


def test_compare_lists_shared_names_and_the_largest_difference():
    rows, worst = check.compare({"a": 1.0, "b": 2.0, "c": 3.0}, {"a": 1.5, "c": 2.0, "d": 9.0})
    assert [r["quantity"] for r in rows] == ["a", "c"]
    assert [r["|difference|"] for r in rows] == [0.5, 1.0] and worst == 1.0
    assert check.compare({"a": 1.0}, {}) == ([], 0.0)


def test_loss_formulas_against_direct_definitions():
    for head in bp.HEADS:
        net = bp.random_network(7, 3, 4, "tanh", head)
        fwd = bp.forward(net)
        h = np.tanh(net.w1 @ net.x + net.b1)
        out = float(net.w2 @ h + net.b2)
        if head == "sigmoid_bce":
            p = 1 / (1 + math.exp(-out))
            assert fwd.loss == pytest.approx(-(net.y * math.log(p) + (1 - net.y) * math.log(1 - p)), rel=1e-12)
        else:
            assert fwd.loss == pytest.approx((out - net.y) ** 2, rel=1e-12)


def test_dead_relu_unit_gets_zero_gradient():
    net = bp.with_parameter(bp.default_example(), "b1[1]", -10.0)  # z1 = 1.4 - 10 < 0
    g = bp.backward(net)
    assert bp.forward(net).h[0] == 0.0
    assert np.all(g.w1[0] == 0.0) and g.b1[0] == 0.0
    assert np.all(g.w1[1] != 0.0)


def test_sgd_steps_lower_the_loss():
    net, losses = bp.train(bp.default_example(), 20)
    start = bp.forward(bp.default_example()).loss
    assert losses[0] < start and all(b < a for a, b in zip(losses, losses[1:], strict=False))
    assert net.w1[0, 0] > 0.1  # the gradient is negative, so the weight grows


def test_validation_says_what_was_given():
    with pytest.raises(bp.BackpropError, match="width must be 1 to 8, got 9"):
        bp.resize(bp.default_example(), 3, 9)
    with pytest.raises(bp.BackpropError, match="label must lie in 0..1, got 2"):
        bp.Network(w1=[[1.0]], b1=[0.0], w2=[1.0], b2=0.0, x=[1.0], y=2.0)
    with pytest.raises(bp.BackpropError, match="hidden activation must be one of"):
        bp.Network(w1=[[1.0]], b1=[0.0], w2=[1.0], b2=0.0, x=[1.0], y=1.0, hidden="gelu")
    with pytest.raises(bp.BackpropError, match="unknown parameter 'W1\\[3,1\\]'"):
        bp_text.chain_factors(bp.default_example(), "W1[3,1]")
    with pytest.raises(bp.BackpropError, match="finite"):
        bp.with_parameter(bp.default_example(), "b2", float("nan"))


def test_parameter_names_parse_back_and_print_as_tex():
    net = bp.random_network(3, n_inputs=2, width=2)
    names = bp.parameter_names(net)
    assert names == ["W1[1,1]", "W1[1,2]", "W1[2,1]", "W1[2,2]", "b1[1]", "b1[2]", "W2[1]", "W2[2]", "b2"]
    assert [bp.parse_parameter(p) for p in ("W1[2,1]", "b1[2]", "W2[1]", "b2")] == [
        ("W1", 1, 0), ("b1", 1, 0), ("W2", 0, 0), ("b2", 0, 0)]
    assert [bp_text.param_tex(p) for p in ("W1[2,1]", "b1[2]", "W2[1]", "b2")] == [
        "w^{(1)}_{21}", "b^{(1)}_{2}", "w^{(2)}_{1}", "b^{(2)}"]
    for k, name in enumerate(names):
        changed = bp.with_parameter(net, name, 5.0 + k)
        assert [bp.parameter_value(changed, p) for p in names] == [
            5.0 + k if p == name else bp.parameter_value(net, p) for p in names]
    with pytest.raises(bp.BackpropError, match="expected W1\\[j,i\\], b1\\[j\\], W2\\[j\\] or b2"):
        bp_text.param_tex("W3[1]")


def test_resize_keeps_existing_weights():
    net = bp.resize(bp.default_example(), 4, 3)
    assert net.w1.shape == (3, 4)
    assert net.w1[:2, :3] == pytest.approx(bp.default_example().w1)
    assert net.x[:3] == pytest.approx([1, 2, 3])
    small = bp.resize(net, 2, 1)
    assert small.w1 == pytest.approx(np.array([[0.1, 0.2]])) and small.w2 == pytest.approx([0.7])


def test_saturated_sigmoid_stays_finite():
    net = bp.Network(w1=[[1.0]], b1=[0.0], w2=[1.0], b2=800.0, x=[1.0], y=0.0)
    fwd, g = bp.forward(net), bp.backward(net)
    assert math.isfinite(fwd.loss) and fwd.loss == pytest.approx(801.0)
    assert g.b2 == pytest.approx(1.0)


def test_importing_core_and_ui_does_not_load_tensorflow():
    code = ("import sys, core.backprop, core.backprop_text, core.backprop_check, core.layer_gradients, core.faq, "
            "ui.learn; print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2],
                         capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# --- core.layer_gradients: gradient_report on real Keras models -------------------------------------------------------

@pytest.mark.slow
def test_gradient_report_equals_independent_tape_norms():
    import keras
    import tensorflow as tf

    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, activation="tanh", name="a"),
                              keras.layers.Dense(3, activation="softmax", name="b")])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 5)).astype("float32")
    y = rng.integers(0, 3, 16)
    records = lg.gradient_report(model, x, y)
    assert [r.name for r in records] == ["a", "b"]

    with tf.GradientTape() as tape:
        p = model(x)
        loss = tf.reduce_mean(-tf.math.log(tf.gather(p, y, batch_dims=1)))  # sparse CE written out
    grads = tape.gradient(loss, model.trainable_variables)
    for layer, rec in zip(model.layers, records, strict=True):
        idx = [i for i, v in enumerate(model.trainable_variables) if any(v is w for w in layer.trainable_weights)]
        g = np.concatenate([grads[i].numpy().ravel() for i in idx])
        w = np.concatenate([model.trainable_variables[i].numpy().ravel() for i in idx])
        assert rec.grad_norm == pytest.approx(float(np.linalg.norm(g)), rel=1e-4)
        assert rec.weight_norm == pytest.approx(float(np.linalg.norm(w)), rel=1e-6)
        assert rec.grads.size == rec.weights.size == w.size


@pytest.mark.slow
def test_deep_sigmoid_stack_shows_vanishing_gradients():
    x, y = lg.demo_batch(64)
    assert x.shape == (64, 64) and y.shape == (64,)
    sig = lg.gradient_report(lg.build_demo_mlp("sigmoid", depth=6, width=32), x, y)
    relu = lg.gradient_report(lg.build_demo_mlp("relu", depth=6, width=32), x, y)
    assert sig[0].grad_norm < sig[-1].grad_norm / 100
    assert sig[0].grad_norm / sig[-1].grad_norm < relu[0].grad_norm / relu[-1].grad_norm
    with pytest.raises(bp.BackpropError, match="one label per sample"):
        lg.gradient_report(lg.build_demo_mlp("relu", depth=1), x, y[:3])
