"""The report: statistics, comparison plots, baseball cards and one HTML page over experiments.

From a notebook::

    from atlas_ray import report
    experiment = report.load_experiment_for_report("experiments/june")
    report.heat_table(experiment.results, metric="accuracy")
    report.classifier_baseball_card(experiment.results[0])
    luck = report.selection_luck(experiment.results)   # DSR, PBO, IC on out-of-sample rows, net of the
                                                       # experiment's cost model (cost=1e-4: a flat one)
    report.pbo_plot(luck)

From the shell: ``python -m atlas_ray.report EXPERIMENT [EXPERIMENT ...] [--out DIR] [--metric NAME]
[--top K] [--filter unit=NAME]`` (see ``atlas_ray.report.__main__``). Every plot function returns a
headless ``matplotlib.figure.Figure``.
"""

from matplotlib.figure import Figure

from atlas_ray.experiment import ResultsObject
from atlas_ray.report import stats
from atlas_ray.report._build import ReportSettings, build_report
from atlas_ray.report._load import (
    Experiment,
    ExperimentNotFoundError,
    asha_settings,
    load_experiment_for_report,
)
from atlas_ray.report._luck import SelectionLuck, selection_luck
from atlas_ray.report._plots_backtest import backtest_plot
from atlas_ray.report._plots_classifier import classifier_baseball_card
from atlas_ray.report._plots_curves import (
    learning_curves,
    likelihood_curves,
    probability_histograms,
    roc_threshold_plots,
)
from atlas_ray.report._plots_heat import heat_table, sort_summary
from atlas_ray.report._plots_luck import ic_plot, pbo_plot
from atlas_ray.report._plots_regressor import regressor_baseball_card
from atlas_ray.report._plots_search import asha_plot, experiment_comparison, hyperparameter_plot, rungs
from atlas_ray.report._style import overflowing_texts, render_png
from atlas_ray.report._summary import ReportError, known_metrics, resolve_metric, summary_frame


def baseball_card(result: ResultsObject, split: str = "test") -> Figure:
    """The classifier or regressor baseball card, whichever fits ``result``'s task."""
    from atlas_ray.featurestore import Task

    if result.task is Task.REGRESSION:
        return regressor_baseball_card(result, split)
    return classifier_baseball_card(result, split)


__all__ = [
    "Experiment",
    "ExperimentNotFoundError",
    "ReportError",
    "ReportSettings",
    "SelectionLuck",
    "asha_plot",
    "asha_settings",
    "backtest_plot",
    "baseball_card",
    "build_report",
    "classifier_baseball_card",
    "experiment_comparison",
    "heat_table",
    "hyperparameter_plot",
    "ic_plot",
    "known_metrics",
    "learning_curves",
    "likelihood_curves",
    "load_experiment_for_report",
    "overflowing_texts",
    "pbo_plot",
    "probability_histograms",
    "regressor_baseball_card",
    "render_png",
    "resolve_metric",
    "roc_threshold_plots",
    "rungs",
    "selection_luck",
    "sort_summary",
    "stats",
    "summary_frame",
]
