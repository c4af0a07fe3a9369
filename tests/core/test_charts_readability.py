"""Charts a newcomer can read on a phone: titles clear of Plotly's toolbar, whole-number epoch and step axes,
a smoothed loss curve that keeps its gaps, confusion-matrix class names next to their cells,
parallel-coordinates axes named in words."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.charts import data as charts_data
from core.charts import eval as charts_eval
from core.charts import learn as charts_learn
from core.charts import training as charts_training
from core.charts.style import MODEBAR_REMOVED, TOOLBAR_PX, integer_axis, tidy


def _epochs(n: int) -> list[dict]:
    return [{"kind": "epoch", "epoch": e, "loss": 1.0 / e, "val_loss": 1.1 / e, "accuracy": 0.5, "lr": 1e-3}
            for e in range(1, n + 1)]


def _every_figure():
    cm = np.array([[5, 1], [2, 7]])
    table = pd.DataFrame({"training.batch_size": [16, 32], "training.optimizer": ["adam", "sgd"],
                          "best_val_accuracy": [0.8, 0.9]})
    counts = pd.DataFrame({"class": ["a", "b"], "part": ["train", "train"], "count": [3, 4]})
    records = [type("R", (), {"name": "dense", "weight_norm": 1.0, "grad_norm": 0.1,
                              "weights": np.ones(3), "grads": np.ones(3)})()]
    return {
        "history": charts_training.history_figure({"run": _epochs(3)}, "loss"),
        "batch": charts_training.batch_figure([(1, 2.0), (2, 1.5), (3, 1.0)]),
        "lr": charts_training.lr_figure({"run": _epochs(3)}),
        "confusion": charts_eval.confusion_figure(cm, ["a", "b"]),
        "confusion change": charts_eval.confusion_diff_figure(np.zeros((2, 2)), ["a", "b"], "A", "B"),
        "f1 change": charts_eval.f1_change_figure(pd.Series([0.1, -0.1], index=["a", "b"]), "A", "B"),
        "roc": charts_eval.roc_figure({"a": {"fpr": [0, 1], "tpr": [0, 1], "auc": 0.5}}),
        "parcoords": charts_eval.parcoords_figure(table, ["training.batch_size", "training.optimizer"],
                                                  "best_val_accuracy"),
        "class balance": charts_data.class_balance_figure(counts),
        "loss steps": charts_learn.loss_steps_figure([0.3, 0.2]),
        "gradient norms": charts_learn.gradient_norms_figure(records),
    }


@pytest.mark.parametrize("name", list(_every_figure()))
def test_titles_sit_under_the_toolbar_and_the_toolbar_is_short(name):
    """On a touch screen Plotly's toolbar is always shown, top right: the title gets a line of its own under it."""
    fig = _every_figure()[name]
    title = fig.layout.title
    assert title.text, name
    assert (title.yref, title.y, title.yanchor, title.pad.t) == ("container", 1, "top", TOOLBAR_PX), name
    assert fig.layout.margin.t >= TOOLBAR_PX + 30, (name, fig.layout.margin.t)  # the title's line, then the plot
    assert set(MODEBAR_REMOVED) <= set(fig.layout.modebar.remove), name


def test_tidy_leaves_a_figure_without_title_where_it_was():
    import plotly.graph_objects as go

    fig = tidy(go.Figure(layout={"margin": {"t": 10}}))
    assert fig.layout.margin.t == 10 and fig.layout.title.y is None
    assert "zoomin" in fig.layout.modebar.remove


@pytest.mark.parametrize("epochs", [1, 3, 12])
def test_few_epochs_get_one_tick_per_epoch(epochs):
    """1.2, 1.4, … epochs mean nothing: up to 12 epochs, one tick on each."""
    for fig in (charts_training.history_figure({"run": _epochs(epochs)}, "loss"),
                charts_training.lr_figure({"run": _epochs(epochs)})):
        x = fig.layout.xaxis
        assert (x.tickmode, x.tick0, x.dtick, x.tickformat) == ("linear", 0, 1, "d")


def test_many_epochs_or_steps_get_at_most_twelve_whole_number_ticks():
    fig = charts_training.history_figure({"a": _epochs(40), "b": _epochs(5)}, "loss")
    assert (fig.layout.xaxis.tickmode, fig.layout.xaxis.nticks, fig.layout.xaxis.tickformat) == ("auto", 12, "d")
    assert fig.layout.xaxis.dtick is None
    batch = charts_training.batch_figure([(i, 1.0 / i) for i in range(1, 500)])
    assert batch.layout.xaxis.nticks == 12 and batch.layout.xaxis.tickformat == "d"


def test_the_smoothed_batch_curve_skips_a_diverged_batch_and_is_not_pulled_to_zero():
    # weight 0.5: each point averages the finite losses so far, the newest weighing 1, the one before 1/2, …
    # 1 -> 1;  gap;  3 -> (3 + 1/2) / (1 + 1/2) = 7/3;  gap;  5 -> (5 + 3/2 + 1/4) / (1 + 1/2 + 1/4) = 27/7
    # (the values the hand-written loop before pandas' ewm gave; the gaps stay gaps on the chart)
    smoothed = charts_training.smooth([1.0, float("nan"), 3.0, float("inf"), 5.0], 0.5)
    np.testing.assert_allclose(smoothed, [1, np.nan, 7 / 3, np.nan, 27 / 7])
    assert charts_training.smooth([None, 2.0, 2.0], 0.9) == pytest.approx([np.nan, 2.0, 2.0], nan_ok=True)
    fig = charts_training.batch_figure([(1, 1.0), (2, float("nan")), (3, 3.0)], weight=0.5)
    np.testing.assert_allclose(fig.data[1].y, [1, np.nan, 7 / 3])


def test_integer_axis_ignores_missing_values():
    import plotly.graph_objects as go

    fig = integer_axis(go.Figure(go.Scatter(x=[1, None, 3.0, float("nan")], y=[1, 2, 3, 4])))
    assert fig.layout.xaxis.dtick == 1
    assert integer_axis(go.Figure()).layout.xaxis.dtick == 1  # nothing drawn yet


def test_backprop_steps_are_whole_numbers_and_step_zero_is_not_on_the_edge():
    fig = charts_learn.loss_steps_figure([0.02])
    assert fig.layout.xaxis.dtick == 1 and fig.layout.xaxis.range == (-0.5, 5.5)
    many = charts_learn.loss_steps_figure(list(np.linspace(1, 0, 101)))
    assert many.layout.xaxis.range == (-0.5, 100.5) and many.layout.xaxis.nticks == 12


@pytest.mark.parametrize("make", [
    lambda: charts_eval.confusion_figure(np.eye(3) * 5, ["cat", "dog", "bird"]),
    lambda: charts_eval.confusion_diff_figure(np.zeros((3, 3)), ["cat", "dog", "bird"], "A", "B"),
])
def test_confusion_cells_stay_square_by_shrinking_the_axes_so_names_stay_beside_them(make):
    fig = make()
    assert fig.layout.yaxis.scaleanchor == "x"
    assert fig.layout.xaxis.constrain == "domain" and fig.layout.yaxis.constrain == "domain"
    # the axes end at the outer cells (row 0 on top): no padding between the names and the matrix
    assert fig.layout.xaxis.range == (-0.5, 2.5) and fig.layout.yaxis.range == (2.5, -0.5)
    assert fig.layout.xaxis.autorange is False and fig.layout.yaxis.autorange is False


@pytest.mark.parametrize(("column", "words"), [
    ("training.batch_size", "batch size"), ("training.learning_rate", "learning rate"),
    ("training.optimizer", "optimizer"), ("model.name", "model"), ("dataset.name", "dataset"),
    ("dataset.subset", "dataset subset"), ("split.val_fraction", "split val fraction"),
    ("model.n_layers", "layers"), ("best_val_accuracy", "best val accuracy"), ("group", "group"),
    ("training.schedule.warmup", "schedule warmup"),
])
def test_settings_are_named_in_words(column, words):
    assert charts_eval.setting_label(column) == words


def test_parallel_coordinates_axes_are_named_in_words_without_a_colour_bar():
    table = pd.DataFrame({"training.batch_size": [16, 32, 64], "training.optimizer": ["adam", "sgd", "adam"],
                          "best_val_accuracy": [0.8, 0.9, 0.85]})
    fig = charts_eval.parcoords_figure(table, ["training.batch_size", "training.optimizer"], "best_val_accuracy")
    trace = fig.data[0]
    assert [d.label for d in trace.dimensions] == ["batch size", "optimizer", "best val accuracy"]
    assert list(trace.dimensions[1].ticktext) == ["adam", "sgd"]
    assert trace.line.showscale is False  # the metric's own axis carries the scale; a bar squeezed phones
    assert fig.layout.title.text == "Settings against best val accuracy"
