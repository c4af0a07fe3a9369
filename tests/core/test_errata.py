"""core.errata: every "correct" value is the app's, recomputed here by hand; every printed one differs from it."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from core import backprop as bp
from core import errata


def _sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def _by_quantity() -> dict[str, errata.Erratum]:
    return {e.quantity: e for e in errata.errata()}


def _hand_computed() -> dict[str, float]:
    """The example network (x = (1, 2, 3), y = 1, ReLU, sigmoid + cross-entropy, η = 0.01), with NumPy."""
    w1 = np.array([[0.1, 0.2, 0.3], [0.1, 0.2, 0.4]])
    x = np.array([1.0, 2.0, 3.0])
    z = w1 @ x + np.array([0.5, 0.6])
    h = np.maximum(z, 0)
    net = 0.7 * h[0] + 0.7 * h[1] + 0.8
    y_hat = _sigmoid(net)
    return {"hidden unit 1's sum z1": z[0], "hidden unit 2's sum z2": z[1], "the output unit's sum net": net,
            "σ(1.64), the sigmoid of the article's own sum": 1 / (1 + np.exp(-1.64)),
            "the binary cross-entropy L = −ln ŷ (label y = 1)": -np.log(y_hat),
            "the output bias b2 after one step, b2 − η·(ŷ − y), η = 0.01": 0.8 - 0.01 * (y_hat - 1.0)}


def test_every_correct_value_is_the_apps_value_recomputed_by_hand():
    entries = _by_quantity()
    expected = _hand_computed()
    assert set(expected) <= set(entries)
    for quantity, value in expected.items():
        e = entries[quantity]
        assert e.correct_value == pytest.approx(value, abs=1e-12), quantity
        assert e.correct == f"{value:.6g}", quantity  # the page shows the same number


def test_the_known_values():
    entries = _by_quantity()
    assert entries["hidden unit 1's sum z1"].correct == "1.9"
    assert entries["hidden unit 2's sum z2"].correct == "2.3"
    assert entries["the output unit's sum net"].correct == "3.74"
    assert round(entries["σ(1.64), the sigmoid of the article's own sum"].correct_value, 4) == 0.8375
    assert round(entries["the binary cross-entropy L = −ln ŷ (label y = 1)"].correct_value, 4) == 0.0235


def test_every_printed_number_differs_from_the_correct_one():
    numeric = [e for e in errata.errata() if e.correct_value is not None]
    assert len(numeric) == 6
    for e in numeric:
        assert e.printed_value is not None
        assert abs(e.printed_value - e.correct_value) > 0.01, e.quantity
        assert e.printed != e.correct


def test_correct_values_follow_the_apps_example(monkeypatch):
    """Nothing "correct" is typed in: change the example and the errata change with it."""
    base = bp.default_example()
    monkeypatch.setattr(bp, "default_example", lambda: bp.with_parameter(base, "b1[1]", 0.6))
    z1 = _by_quantity()["hidden unit 1's sum z1"]
    assert z1.correct == "2" and z1.correct_value == pytest.approx(2.0)


def test_the_loss_fits_neither_logarithm_of_the_articles_prediction():
    loss = _by_quantity()["the binary cross-entropy L = −ln ŷ (label y = 1)"]
    assert abs(-math.log(0.613) - 0.268) > 0.05 and abs(-math.log10(0.613) - 0.268) > 0.05
    assert f"{-math.log(0.613):.6g}" in loss.why and f"{-math.log10(0.613):.6g}" in loss.why


def test_the_printed_update_is_ten_times_the_step():
    update = _by_quantity()["the output bias b2 after one step, b2 − η·(ŷ − y), η = 0.01"]
    step = 0.01 * (1 - 0.613)
    assert round(step, 5) == 0.00387
    assert round((0.839 - 0.8) / step) == 10
    assert "0.80387, not 0.839" in update.why and "10.1 times" in update.why


def test_the_hidden_formula_keeps_the_activation_slope():
    """Without f′(z) the formula is wrong for a sigmoid hidden layer, by the factor the erratum names."""
    formula = next(e for e in errata.errata() if e.correct_value is None)
    assert "f′(z)" in formula.correct and "no f′(z)" in formula.printed
    g = bp.backward(replace(bp.default_example(), hidden="sigmoid"))
    z1 = 1.9
    without_slope = g.delta_out * 0.7 * 1.0  # δ(2)·w(2)·x1
    assert g.w1[0, 0] == pytest.approx(without_slope * _sigmoid(z1) * (1 - _sigmoid(z1)), abs=1e-15)
    assert f"{1 / (_sigmoid(z1) * (1 - _sigmoid(z1))):.3g} times" in formula.why


def test_completed_parameters_and_the_name_mapping():
    (w2,) = errata.completed_parameters()
    assert (w2.parameter, w2.values) == ("W2", (0.7, 0.7))
    mapping = {m.article: m for m in errata.name_mapping()}
    assert (mapping["w²¹"].parameter, mapping["w²²"].parameter) == ("W1[1,3]", "W1[2,3]")
    for m in mapping.values():
        assert m.value == m.article_value  # the article's number is the app's value of that weight
