"""Optuna's own figures of a sweep, in the visitor's language: Optuna writes their titles, axes and legends in
English, so what it lets us name (`target_name`) is named here and the rest is translated once drawn."""

from __future__ import annotations

import re
from collections.abc import Callable

import optuna
import plotly.graph_objects as go

from core.i18n import _

__all__ = ["sweep_figure"]

_TRIAL_NAME = re.compile(r"Trial(\d+)")  # the intermediate-values plot names each curve "Trial<number>"


def _makers(study: optuna.Study) -> dict[str, Callable[[], go.Figure]]:
    target = _("Objective Value")
    plots = optuna.visualization
    return {"curves": lambda: plots.plot_intermediate_values(study),
            "history": lambda: plots.plot_optimization_history(study, target_name=target),
            "parallel": lambda: plots.plot_parallel_coordinate(study, target_name=target),
            "contour": lambda: plots.plot_contour(study, target_name=target),
            "importances": lambda: plots.plot_param_importances(study, target_name=target)}


def _optuna_texts() -> dict[str, str]:
    """The fixed English texts Optuna 5 writes into the figures above."""
    return {"Intermediate Values Plot": _("Intermediate Values Plot"), "Step": _("Step"),
            "Intermediate Value": _("Intermediate Value"), "Optimization History Plot": _("Optimization History Plot"),
            "Trial": _("Trial"), "Best Value": _("Best Value"), "Feasible Trial": _("Feasible Trial"),
            "Infeasible Trial": _("Infeasible Trial"), "Parallel Coordinate Plot": _("Parallel Coordinate Plot"),
            "Contour Plot": _("Contour Plot"), "Hyperparameter Importances": _("Hyperparameter Importances"),
            "Hyperparameter Importance": _("Hyperparameter Importance"), "Hyperparameter": _("Hyperparameter")}


def sweep_figure(kind: str, study: optuna.Study) -> go.Figure:
    """Optuna's figure `kind` (curves, history, parallel, contour, importances) of `study`, its texts
    translated. Raises what Optuna raises (ValueError, RuntimeError) for a figure the trials cannot give yet."""
    figure = _makers(study)[kind]()
    texts = _optuna_texts()

    def translated(text: str | None) -> str | None:
        if text is not None and (trial := _TRIAL_NAME.fullmatch(text)):
            return _("Trial{number}").format(number=trial[1])
        return texts.get(text, text)

    figure.update_layout(title_text=translated(figure.layout.title.text))
    figure.for_each_xaxis(lambda axis: axis.update(title_text=translated(axis.title.text)))
    figure.for_each_yaxis(lambda axis: axis.update(title_text=translated(axis.title.text)))
    figure.for_each_trace(lambda trace: trace.update(name=translated(trace.name)))
    return figure
