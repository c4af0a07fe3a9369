"""The FAQ's hands-on recipes do what the answers say, run with the same code as the pages they point to."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from core import backprop as bp
from core import faq


def _losses(net: bp.Network, steps: int) -> list[float]:
    """The loss before any step, then after each SGD step (what the Backpropagation page's chart shows)."""
    return [bp.forward(net).loss, *bp.train(net, steps)[1]]


def test_the_learning_rate_too_high_recipe_diverges():
    """Article's example, linear output + squared error, learning rate 10: every step multiplies the loss."""
    answer = faq.get("learning-rate-too-high").answer
    assert f"**{bp.HEADS['linear_mse']}**" in answer and "learning rate to **10**" in answer
    start = replace(bp.default_example(), head="linear_mse", lr=10.0)
    history = _losses(start, 100)
    growth = np.array(history[1:]) / np.array(history[:-1])
    assert np.all(growth > 300) and np.allclose(growth[1:], 361)  # "361 times larger with every step"
    errors = np.array([bp.forward(bp.train(start, n)[0]).y_hat - start.y for n in range(1, 6)])
    np.testing.assert_allclose(errors[1:] / errors[:-1], -19)  # "changes sign and grows 19-fold"
    assert history[-1] > 1e250  # no bound in sight: 100 more steps would overflow float64
    quoted = f"{history[0]:.1f} → {history[1]:,.0f} → {history[2] / 1e6:.2f} million → {history[3] / 1e6:.0f} million"
    assert quoted in answer, quoted
    assert _losses(replace(start, lr=0.1), 100)[-1] < 1e-6 * history[0]  # "at learning rate 0.1 ... falls"


def test_the_old_recipe_does_not_diverge():
    """The FAQ once said: learning rate 10 on the default sigmoid + cross-entropy network. Its loss drops."""
    history = _losses(replace(bp.default_example(), lr=10.0), 100)
    assert max(history[1:]) < history[0] and history[-1] < 1e-5
    assert f"to {history[1] * 1e6:.0f}·10⁻⁶" in faq.get("learning-rate-too-high").answer
