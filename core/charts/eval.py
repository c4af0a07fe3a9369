"""Pure plotly figures for evaluation and run comparison: data in, go.Figure out (no Streamlit, no Keras).

Text arguments (class names, run labels, settings) are plain text: escaped here with core.text.plain,
and class names shortened on axes and in legends (whole in the hover text).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.charts.style import LEGEND_BELOW, tidy
from core.i18n import _, ngettext
from core.text import LABEL_CHARS, plain, plain_all

__all__ = [
    "confusion_diff_figure",
    "confusion_figure",
    "cv_figure",
    "f1_change_figure",
    "parcoords_figure",
    "pr_figure",
    "probabilities_figure",
    "roc_figure",
    "setting_label",
]

_MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}  # every chart here but the parallel coordinates


def _square_axes(fig: go.Figure, n: int, x_title: str, y_title: str, names: Sequence[str] = ()) -> go.Figure:
    """Square cells; the figure grows by the height of the (slanted) class names under it.

    Keeping the cells square shrinks the axes' domains ("constrain": "domain"), not widens their ranges, and
    the ranges end at the outer cells: with widened or padded ranges the matrix sat in the middle of a wide
    plot and its class names stayed at the far edges, a long way from the rows and columns they name."""
    fig.update_layout(  # fixed ranges: autorange would pad them for the click layer's big markers
        xaxis={"title": x_title, "type": "category", "side": "bottom", "showgrid": False, "constrain": "domain",
               "range": [-0.5, n - 0.5], "autorange": False},
        yaxis={"title": y_title, "type": "category", "range": [n - 0.5, -0.5], "autorange": False,
               "scaleanchor": "x", "showgrid": False, "constrain": "domain", "constraintoward": "top"},
        height=_height(n) + 7 * min(LABEL_CHARS, max((len(str(c)) for c in names), default=0)),
        margin=_MARGIN,
        plot_bgcolor="white", clickmode="event+select", dragmode=False,
    )
    return tidy(fig)


def _height(n: int) -> int:
    return max(360, min(720, 60 + 48 * n))


def _cell_text(values: np.ndarray, normalised: bool) -> list[list[str]]:
    fmt = (lambda v: f"{v:.2f}" if v else "") if normalised else (lambda v: f"{int(v)}" if v else "")
    return [[fmt(v) for v in row] for row in values]


def _click_layer(names: Sequence[str], hover: np.ndarray, full: Sequence[str]) -> go.Scatter:
    """Invisible markers over every cell: heatmaps send no selection events, scatter points do."""
    k = len(names)
    xs = [names[j] for i in range(k) for j in range(k)]
    ys = [names[i] for i in range(k) for j in range(k)]
    return go.Scatter(
        x=xs, y=ys, mode="markers", showlegend=False,
        customdata=[[i, j] for i in range(k) for j in range(k)],
        marker={"symbol": "square", "size": max(4, min(48, int(0.7 * (_height(k) - 110) / max(k, 1)))),
                "opacity": 0.01,
                "color": "black"},
        text=[_("true {true} → predicted {predicted}: {value}").format(true=full[i], predicted=full[j],
                                                                        value=hover[i, j])
              for i in range(k) for j in range(k)],
        hovertemplate="%{text}<extra>" + _("click to see these samples") + "</extra>",
        selected={"marker": {"opacity": 0.35}}, unselected={"marker": {"opacity": 0.01}},
    )


def confusion_figure(cm: np.ndarray, class_names: Sequence[str], *, normalised: bool = False,
                     title: str | None = None) -> go.Figure:
    """Annotated heatmap (rows = true class, columns = predicted), clickable cell by cell; the title is
    "Confusion matrix" in the reader's language unless given."""
    names = plain_all(class_names, LABEL_CHARS)
    values = np.asarray(cm, dtype=float)
    heat = go.Heatmap(z=values, x=names, y=names, colorscale="Blues", zmin=0,
                      zmax=1 if normalised else max(1.0, float(values.max())),
                      text=_cell_text(values, normalised), texttemplate="%{text}",
                      hoverinfo="skip", colorbar={"title": _("share") if normalised else _("count"),
                                                  "thickness": 12})
    hover = np.vectorize(lambda v: f"{v:.1%}" if normalised else
                         ngettext("{n} sample", "{n} samples", int(v)).format(n=int(v)))(values)
    fig = go.Figure([heat, _click_layer(names, hover, plain_all(class_names))])
    fig.update_layout(title=plain(_("Confusion matrix") if title is None else title))
    return _square_axes(fig, len(names), _("predicted class"), _("true class"), class_names)


def confusion_diff_figure(diff: np.ndarray, class_names: Sequence[str], label_a: str, label_b: str
                          ) -> go.Figure:
    """Row-normalised B − A; the colour says better or worse for B, the text the change itself.

    On the diagonal more is better (more right); off it more is worse (more of that mistake). Colouring
    the raw difference made blue mean "better" on the diagonal and "worse" beside it, so the colour is
    the gain for B: the difference, with its sign flipped off the diagonal. Blue = better, red = worse.
    """
    names = plain_all(class_names, LABEL_CHARS)
    label_a, label_b = plain(label_a), plain(label_b)
    diff = np.asarray(diff, dtype=float)
    gain = -diff
    np.fill_diagonal(gain, np.diag(diff))
    lim = max(0.05, float(np.abs(diff).max()))
    text = [[f"{v:+.2f}" if abs(v) >= 0.005 else "" for v in row] for row in diff]
    better, worse = _("better for {run}").format(run=label_b), _("worse for {run}").format(run=label_b)
    verdict = [["" if abs(g) < 0.005 else (better if g > 0 else worse) for g in row] for row in gain]
    fig = go.Figure(go.Heatmap(
        z=gain, x=names, y=names, colorscale="RdBu", zmid=0, zmin=-lim, zmax=lim, text=text,
        texttemplate="%{text}", customdata=np.dstack([diff, np.array(verdict, dtype=object)]),
        colorbar={"title": _("for {run}").format(run=label_b), "tickvals": [-lim, 0, lim],
                  "ticktext": [_("worse"), _("same"), _("better")], "thickness": 12},
        hovertemplate=_("true {true} → predicted {predicted}: {value}").format(
            true="%{y}", predicted="%{x}", value="%{customdata[0]:+.3f} %{customdata[1]}") + "<extra></extra>"))
    fig.update_layout(title=_("Confusion change, {b} minus {a} (row shares)").format(b=label_b, a=label_a))
    fig = _square_axes(fig, len(names), _("predicted class"), _("true class"), class_names)
    fig.update_layout(clickmode="event", dragmode="zoom")
    return fig


def f1_change_figure(change: pd.Series, label_a: str, label_b: str) -> go.Figure:
    """Bar per class of F1(B) − F1(A): green up, red down."""
    vals = change.to_numpy(dtype=float)
    colors = ["#2e7d32" if v > 0 else "#c62828" if v < 0 else "#9e9e9e" for v in vals]
    label_a, label_b = plain(label_a), plain(label_b)
    fig = go.Figure(go.Bar(x=plain_all(change.index, LABEL_CHARS), y=vals, marker_color=colors,
                           hovertemplate=_("class {name}: {value}").format(name="%{x}", value="%{y:+.3f}")
                           + "<extra></extra>"))
    fig.update_layout(title=_("Per-class F1 change, {b} minus {a}").format(b=label_b, a=label_a),
                      xaxis={"title": _("class"), "type": "category"}, yaxis={"title": "ΔF1", "zeroline": True},
                      height=340, margin=_MARGIN)
    return tidy(fig)


def roc_figure(curves: dict[str, dict]) -> go.Figure:
    """One-vs-rest ROC curves with their AUC in the legend, and the chance diagonal."""
    fig = go.Figure()
    for name, c in curves.items():
        fig.add_scatter(x=c["fpr"], y=c["tpr"], mode="lines",
                        name=f"{plain(name, LABEL_CHARS)} (AUC {c['auc']:.3f})")
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name=_("chance"), line={"dash": "dot", "color": "grey"})
    fig.update_layout(title=_("ROC (one class vs the rest)"), xaxis={"title": _("false positive rate")},
                      yaxis={"title": _("true positive rate")}, height=460, legend=LEGEND_BELOW,
                      margin=_MARGIN)
    return tidy(fig)


def pr_figure(curves: dict[str, dict]) -> go.Figure:
    """Precision-recall curves with average precision in the legend."""
    fig = go.Figure()
    for name, c in curves.items():
        fig.add_scatter(x=c["recall"], y=c["precision"], mode="lines",
                        name=f"{plain(name, LABEL_CHARS)} (AP {c['ap']:.3f})")
    fig.update_layout(title=_("Precision-recall (one class vs the rest)"), xaxis={"title": _("recall")},
                      yaxis={"title": _("precision"), "range": [0, 1.05]}, height=460, legend=LEGEND_BELOW,
                      margin=_MARGIN)
    return tidy(fig)


def probabilities_figure(top: Sequence[tuple[str, float]], title: str | None = None) -> go.Figure:
    """Horizontal bars of the top classes of one prediction, most probable on top; the title is "Predicted
    probabilities" in the reader's language unless given."""
    names = plain_all((n for n, _p in top), LABEL_CHARS)[::-1]
    probs = [p for _n, p in top][::-1]
    fig = go.Figure(go.Bar(x=probs, y=names, orientation="h", text=[f"{p:.1%}" for p in probs],
                           textposition="auto"))
    fig.update_layout(title=plain(_("Predicted probabilities") if title is None else title),
                      xaxis={"range": [0, 1], "tickformat": ".0%"},
                      yaxis={"type": "category"}, height=80 + 34 * len(names),
                      margin=_MARGIN)
    return tidy(fig)


def _setting_words() -> dict[str, str]:
    """The words of the runs table's known columns in the reader's language (made at each call: the language
    is the visitor's); in English what setting_label derives from the column, except the first five."""
    return {
        "dataset.name": _("dataset"), "model.name": _("model"), "model.n_layers": _("layers"),
        "model.layer_types": _("layer types"), "epochs_run": _("epochs run"),
        "dataset.subset": _("dataset subset"), "dataset.seed": _("dataset seed"), "dataset.kind": _("dataset kind"),
        "dataset.n_classes": _("dataset n classes"), "split.kind": _("split kind"), "split.seed": _("split seed"),
        "split.val_fraction": _("split val fraction"), "split.test_fraction": _("split test fraction"),
        "split.k": _("split k"), "split.fold": _("split fold"), "model.schema_version": _("model schema version"),
        "training.optimizer": _("optimizer"), "training.learning_rate": _("learning rate"),
        "training.momentum": _("momentum"), "training.weight_decay": _("weight decay"),
        "training.schedule": _("schedule"), "training.step_every": _("step every"),
        "training.step_factor": _("step factor"), "training.batch_size": _("batch size"),
        "training.epochs": _("epochs"), "training.early_stopping": _("early stopping"),
        "training.patience": _("patience"), "training.monitor": _("monitor"), "training.seed": _("seed"),
        "training.class_weights": _("class weights"), "training.loss": _("loss"), "training.split": _("split"),
        "training.val_fraction": _("val fraction"), "training.test_fraction": _("test fraction"),
        "training.fine_tune_epochs": _("fine-tuning epochs"), "training.fine_tune_layers": _("layers unfrozen"),
        "training.fine_tune_lr_factor": _("fine-tuning rate factor"), "group": _("group"),
        "best_val_accuracy": _("best val accuracy"),
        "last_val_accuracy": _("last val accuracy"), "best_val_loss": _("best val loss"),
        "last_val_loss": _("last val loss"), "test_accuracy": _("test accuracy"), "test_loss": _("test loss"),
        "duration_s": _("duration s"),
    }


def setting_label(column: str) -> str:
    """A settings or metrics column as words: 'training.batch_size' → 'batch size', 'model.name' → 'model',
    'split.seed' → 'split seed', 'best_val_accuracy' → 'best val accuracy'; known columns in the reader's
    language, others (a setting added later) as the English words of their name."""
    words = _setting_words()
    if column in words:
        return words[column]
    section, _dot, rest = column.partition(".")
    words = rest if section == "training" and rest else column
    return words.replace(".", " ").replace("_", " ").strip() or column


def parcoords_figure(table: pd.DataFrame, settings: Sequence[str], metric: str) -> go.Figure:
    """Parallel coordinates of settings against a metric; text settings get one tick per value.

    Axes are named in words (setting_label). The lines are coloured by the metric, whose own axis is the
    last one, so no colour bar takes a third of a phone's width."""
    dims = []
    for col in [*settings, metric]:
        values = table[col]
        numeric = pd.to_numeric(values, errors="coerce")
        label = plain(setting_label(str(col)), LABEL_CHARS)
        if numeric.notna().all() and not pd.api.types.is_bool_dtype(values):
            dims.append({"label": label, "values": numeric.to_numpy(dtype=float)})
        else:
            text = values.astype(str)
            cats = sorted(text.unique())
            codes = text.map({c: i for i, c in enumerate(cats)}).to_numpy(dtype=float)
            dims.append({"label": label, "values": codes, "tickvals": list(range(len(cats))),
                         "ticktext": plain_all(cats, LABEL_CHARS),
                         "range": [-0.5, len(cats) - 0.5] if len(cats) == 1 else None})
    for d in dims:
        if d.get("range") is None:
            d.pop("range", None)
    color = pd.to_numeric(table[metric], errors="coerce").to_numpy(dtype=float)
    fig = go.Figure(go.Parcoords(line={"color": color, "colorscale": "Viridis", "showscale": False},
                                 dimensions=dims, labelangle=-20 if len(dims) > 3 else 0, labelside="top"))
    fig.update_layout(title=_("Settings against {metric}").format(metric=plain(setting_label(metric))), height=440,  # axis names sit above the axes: room for them under the title
                      margin={"l": 60, "r": 60, "t": 80, "b": 30})
    return tidy(fig)


def cv_figure(per_fold: pd.DataFrame, metric: str) -> go.Figure:
    """One bar per fold for a metric with the mean as a line."""
    vals = pd.to_numeric(per_fold[metric], errors="coerce")
    fig = go.Figure(go.Bar(x=[_("fold {n}").format(n=int(f) + 1) for f in per_fold["fold"]], y=vals,
                           name=plain(metric)))
    fig.add_hline(y=float(vals.mean()), line_dash="dash",
                  annotation_text=_("mean {value}").format(value=f"{vals.mean():.3f}"))
    fig.update_layout(title=_("{metric} per fold").format(metric=plain(metric)), height=320, margin=_MARGIN)
    return tidy(fig)
