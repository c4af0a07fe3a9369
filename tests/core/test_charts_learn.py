"""The Learn figures show exactly the numbers they are given (norms, log10 gradient sizes, losses)."""

import numpy as np

from core.charts.learn import gradient_histograms, gradient_norms_figure, loss_steps_figure
from core.layer_gradients import LayerGradients


def _records():
    rng = np.random.default_rng(0)
    w1, g1 = rng.normal(size=12), np.array([0.0, 1e-6, -2e-5, 3e-4, 0.0, 1e-3])
    w2, g2 = rng.normal(size=4), np.array([0.5, -0.25, 0.0, 2.0])
    return [LayerGradients("dense", float(np.linalg.norm(w1)), float(np.linalg.norm(g1)), w1, g1),
            LayerGradients("out", float(np.linalg.norm(w2)), float(np.linalg.norm(g2)), w2, g2)]


def test_norms_figure_has_one_bar_per_layer_on_a_log_axis():
    records = _records()
    fig = gradient_norms_figure(records)
    weights, grads = fig.data
    assert list(weights.x) == ["dense", "out"] and list(grads.x) == ["dense", "out"]
    np.testing.assert_allclose(weights.y, [np.linalg.norm(r.weights) for r in records])
    np.testing.assert_allclose(grads.y, [np.linalg.norm(r.grads) for r in records])
    assert fig.layout.yaxis.type == "log"


def test_gradient_histogram_shows_log10_of_nonzero_sizes():
    records = _records()
    weights, grads = gradient_histograms(records)
    np.testing.assert_allclose(weights.data[0].x, records[0].weights)
    np.testing.assert_allclose(grads.data[0].x, np.log10([1e-6, 2e-5, 3e-4, 1e-3]))  # zeros left out
    np.testing.assert_allclose(grads.data[1].x, np.log10([0.5, 0.25, 2.0]))


def test_loss_figure_plots_each_step():
    fig = loss_steps_figure([0.3, 0.2, 0.15])
    assert list(fig.data[0].x) == [0, 1, 2] and list(fig.data[0].y) == [0.3, 0.2, 0.15]


def test_the_curves_mark_where_fine_tuning_starts_for_each_run():
    from core.charts.training import fine_tuning_starts, history_figure

    tuned = [{"epoch": e, "loss": 1.0 / e, "val_loss": 1.2 / e, "phase": 1 if e <= 3 else 2} for e in range(1, 6)]
    frozen = [{"epoch": e, "loss": 1.0 / e, "val_loss": 1.3 / e} for e in range(1, 6)]
    assert fine_tuning_starts(tuned) == 4 and fine_tuning_starts(frozen) is None
    single = history_figure({"run a": tuned}, "loss")
    assert [(s.x0, s.x1, s.line.dash) for s in single.layout.shapes] == [(3.5, 3.5, "dot")]
    assert [a.text for a in single.layout.annotations] == ["fine-tuning starts"]
    both = history_figure({"tuned": tuned, "frozen": frozen}, "loss")
    assert len(both.layout.shapes) == 1  # the frozen-only run has no phase change
    assert both.layout.shapes[0].line.color == both.data[0].line.color  # in the colour of the run it belongs to
    assert "phase" not in [t.name for t in both.data]  # the phase is not drawn as a metric
