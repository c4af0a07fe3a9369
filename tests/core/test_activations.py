"""core.activations against Keras and against finite differences; the figure that shows them."""

from __future__ import annotations

import numpy as np
import pytest

from core import activations as acts
from core.charts.activations import SATURATING, activations_figure
from core.specs import ACTIVATIONS as EDITOR_ACTIVATIONS

GRID = np.linspace(-6.0, 6.0, 1201)
KINKED = ("relu", "leaky_relu", "elu")  # one-sided slopes differ (ELU: only its second derivative) at 0
H = 1e-5


def _away_from_zero(name: str) -> np.ndarray:
    return GRID[np.abs(GRID) > 10 * H] if name in KINKED else GRID


def test_every_activation_the_layer_editor_offers_has_a_curve():
    assert set(acts.ACTIVATIONS) == set(EDITOR_ACTIVATIONS)


@pytest.mark.parametrize("name", list(acts.ACTIVATIONS))
def test_derivative_equals_central_finite_differences(name):
    act = acts.ACTIVATIONS[name]
    x = _away_from_zero(name)
    numeric = (act(x + H) - act(x - H)) / (2 * H)
    np.testing.assert_allclose(act.derivative(x), numeric, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", [n for n in acts.ACTIVATIONS if n != "softmax"])
def test_values_equal_keras(name):
    """keras.activations.<name> with its defaults (gelu: approximate=False, the exact erf form)."""
    import keras

    expected = np.asarray(keras.activations.get(name)(GRID))
    assert expected.dtype == np.float64
    # Keras keeps the leaky slope 0.2 as a float32 constant (0.2 + 3e-9); TensorFlow's float64 erfc on the
    # CPU is good to about 1e-6 relative (ours to 1e-15, see the next test)
    np.testing.assert_allclose(acts.ACTIVATIONS[name](GRID), expected, rtol=1e-6, atol=1e-12)


def test_gelu_is_the_exact_erf_form_keras_uses_by_default_not_the_tanh_approximation():
    import inspect
    import math

    import keras

    assert inspect.signature(keras.activations.gelu).parameters["approximate"].default is False
    gelu = acts.ACTIVATIONS["gelu"](GRID)
    exact = np.array([0.5 * x * math.erfc(-x / math.sqrt(2)) for x in GRID])  # the standard library's erfc
    np.testing.assert_allclose(gelu, exact, rtol=1e-13, atol=0)
    approx = np.asarray(keras.activations.gelu(GRID, approximate=True))
    assert np.max(np.abs(gelu - approx)) > 1e-4


def test_softmax_curve_is_the_first_of_two_class_softmax_and_equals_sigmoid():
    import keras

    logits = np.stack([GRID, np.zeros_like(GRID)], axis=-1)
    expected = np.asarray(keras.activations.softmax(logits, axis=-1))[:, 0]
    np.testing.assert_allclose(acts.ACTIVATIONS["softmax"](GRID), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(acts.ACTIVATIONS["softmax"](GRID), 1 / (1 + np.exp(-GRID)), rtol=1e-12)


def test_derivatives_equal_tensorflow_gradients_also_at_the_kinks():
    """tf.GradientTape through keras.activations: the same slope everywhere, and TF's choice at z = 0."""
    import keras
    import tensorflow as tf

    x = np.concatenate([GRID, [0.0]])
    for name, act in acts.ACTIVATIONS.items():
        if name == "softmax":
            continue
        tx = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(tx)
            y = keras.activations.get(name)(tx)
        grad = tape.gradient(y, tx).numpy()
        np.testing.assert_allclose(act.derivative(x), grad, rtol=1e-6, atol=1e-8, err_msg=name)


def test_sigmoid_slope_peaks_at_a_quarter_at_zero():
    z, peak = acts.max_slope(acts.ACTIVATIONS["sigmoid"], GRID)
    assert (z, peak) == (0.0, pytest.approx(0.25, abs=1e-15))
    assert np.all(acts.ACTIVATIONS["sigmoid"].derivative(GRID) <= 0.25)
    assert acts.max_slope(acts.ACTIVATIONS["tanh"], GRID) == (0.0, pytest.approx(1.0, abs=1e-15))


def test_sigmoid_does_not_overflow():
    with np.errstate(over="raise"):
        assert acts.sigmoid(np.array([-1000.0, 1000.0])).tolist() == [0.0, 1.0]


def test_figure_has_each_curve_and_marks_the_sigmoid_slope_limit():
    fig = activations_figure()
    curves = [t for t in fig.data if t.mode == "lines"]
    assert len(curves) == 2 * len(acts.ACTIVATIONS)
    titles = [a.text for a in fig.layout.annotations]
    assert {a.label for a in acts.ACTIVATIONS.values()} <= set(titles)
    assert titles.count("max slope<br>0.25 at z = 0") == 2  # sigmoid and 2-class softmax
    assert "max slope<br>1 at z = 0" in titles  # tanh
    peaks = [(t.x[0], t.y[0]) for t in fig.data if t.mode == "markers"]
    assert len(peaks) == len(SATURATING) and peaks.count((0.0, 0.25)) == 2
    slope = next(t for t in fig.data if t.name.startswith("f′") and t.xaxis == fig.data[0].xaxis)
    assert slope.line.dash == "dash"
