"""Every plot renders on real ResultsObjects; the pixels are checked, not just that a figure exists."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from atlas_ray import report
from atlas_ray.report import ReportError


def pixels(figure: Figure) -> np.ndarray:
    figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba())[..., :3]  # type: ignore[attr-defined]


def drawn_axes(figure: Figure) -> list:
    return [ax for ax in figure.axes if ax.has_data() or ax.texts or ax.tables]


def assert_not_blank(figure: Figure) -> np.ndarray:
    image = pixels(figure)
    assert image.shape[0] > 100 and image.shape[1] > 100
    assert image.std() > 10, "the figure is (nearly) one colour"
    colours = np.unique(image.reshape(-1, 3)[::7], axis=0)
    assert len(colours) > 20, "the figure has almost no distinct colours"
    return image


def test_notebook_api_is_exported():
    for name in ("classifier_baseball_card", "regressor_baseball_card", "heat_table", "learning_curves",
                 "roc_threshold_plots", "probability_histograms", "likelihood_curves", "hyperparameter_plot",
                 "asha_plot", "backtest_plot", "experiment_comparison", "baseball_card", "stats"):
        assert name in report.__all__ and hasattr(report, name)


def test_classifier_baseball_card(by_id):
    figure = report.classifier_baseball_card(by_id["sgd_00001"])
    assert len(figure.axes) == 7
    assert len(drawn_axes(figure)) == 7
    assert_not_blank(figure)
    matrix = figure.axes[0]
    assert len(matrix.texts) == 9  # a 3 x 3 confusion matrix with its values written in
    assert "bias" in matrix.get_xticklabels()[0].get_text()
    roc = figure.axes[5]
    assert len(roc.get_lines()) == 4  # one per class and the diagonal
    with pytest.raises(ValueError, match="regressor_baseball_card"):
        report.classifier_baseball_card(by_id["ridge_00013"])


def test_regressor_baseball_card(by_id):
    figure = report.regressor_baseball_card(by_id["ridge_00013"])
    assert len(figure.axes) == 6
    assert len(drawn_axes(figure)) == 6
    assert_not_blank(figure)
    assert len(figure.axes[0].texts) == 4  # 2 x 2 signs
    assert report.baseball_card(by_id["ridge_00013"]).axes[0].texts[0].get_text() == \
        figure.axes[0].texts[0].get_text()


def test_a_failed_trial_draws_an_explained_empty_card(by_id):
    figure = report.classifier_baseball_card(by_id["logit_00010"])
    assert "no predictions" in figure.axes[0].texts[0].get_text()
    pixels(figure)


def test_heat_table_counts_cells_and_marks_degenerate_rows(june_a):
    summary = report.summary_frame(june_a.results)
    figure = report.heat_table(summary, metric="accuracy", top=6, task="multiclass")
    ax = figure.axes[0]
    rows = len(ax.get_yticklabels())
    columns = len(ax.get_xticklabels())
    assert rows == 6
    assert len(ax.texts) == rows * columns
    assert "accuracy" in ax.get_xticklabels()[0].get_text()
    image = assert_not_blank(figure)
    # viridis cells: many distinct colours across the table
    assert len(np.unique(image.reshape(-1, 3)[::3], axis=0)) > 50
    # the degenerate majority-class model ranks high on accuracy: it is shown, in red, hatched
    labels = [t.get_text() for t in ax.get_yticklabels()]
    flagged = [t for t in ax.get_yticklabels() if t.get_text().startswith("DEGENERATE")]
    assert any("dummy_00009" in label for label in labels)
    assert len(flagged) == 1 and flagged[0].get_color() == "#c00000"
    assert len(ax.patches) == 1
    values = [float(ax.texts[i * columns].get_text()) for i in range(rows)]
    assert values == sorted(values, reverse=True)
    with pytest.raises(ReportError, match=r"unknown --metric 'sortino'; known metrics: .*accuracy"):
        report.heat_table(summary, metric="sortino")


def test_curves_and_threshold_plots(by_id):
    result = by_id["sgd_00001"]
    figure = report.learning_curves(result)
    assert len(figure.axes) == 5  # loss, accuracy, precision, recall, auc
    assert all(len(ax.get_lines()) == 2 for ax in figure.axes)
    assert_not_blank(figure)
    figure = report.roc_threshold_plots(result)
    assert len(figure.axes) == 4 and len(figure.axes[1].get_lines()) == 3
    assert_not_blank(figure)
    figure = report.probability_histograms(result)
    assert len(figure.axes) == 3 and all(len(ax.patches) > 20 for ax in figure.axes)
    assert_not_blank(figure)
    figure = report.likelihood_curves(result)
    assert len(figure.axes) == 3 and len(figure.axes[0].get_lines()) == 4
    assert_not_blank(figure)
    empty = report.learning_curves(by_id["dummy_00009"])
    assert "no per-epoch curves" in empty.axes[0].texts[0].get_text()


def test_search_views(june_a, report_experiments):
    figure = report.asha_plot(june_a.results, "val_loss", max_t=8, grace_period=2, reduction_factor=2)
    titles = [a.get_title(loc="left") for a in figure.axes]
    assert titles == ["regression: 1 trials, 0 stopped early", "three_class: 9 trials, 3 stopped early"]
    ax = figure.axes[1]
    stopped = [c for c in ax.collections if c.get_label().startswith("stopped")]
    assert len(stopped) == 1 and len(stopped[0].get_offsets()) == 3  # the three trials ASHA stopped
    assert tuple(np.round(stopped[0].get_facecolor()[0][:3], 2)) == (1.0, 0.0, 0.0)
    assert len(ax.collections[0].get_segments()) == 9  # every three_class trial's curve
    # the scheduler's rungs at epochs 2, 4 and 8 (Ray's ASHA has a rung at max_t too)
    assert sum(1 for line in ax.get_lines() if line.get_linestyle() == "--") == 3
    assert report.rungs(8, 2, 2) == [2, 4, 8]  # the scheduler's rungs (atlas_ray.experiment.asha_rungs)
    assert_not_blank(figure)

    figure = report.hyperparameter_plot(june_a.results, "loss")
    # the majority model's single `strategy` never varies: no panel for it
    assert sorted(ax.get_xlabel() for ax in figure.axes) == ["C", "alpha"]
    assert_not_blank(figure)
    fixed = report.summary_frame([r for r in june_a.results if r.identity.model == "majority"])
    figure = report.hyperparameter_plot(fixed, "loss")
    assert len(figure.axes) == 1 and not figure.axes[0].collections
    assert "no hyperparameter varies across these trials (strategy=most_frequent)" in \
        figure.axes[0].texts[0].get_text()

    b = report.load_experiment_for_report(str(report_experiments["june_b"]))
    summaries = {"june_a": report.summary_frame(june_a.results), "june_b": report.summary_frame(b.results)}
    figure = report.experiment_comparison(summaries, "accuracy")
    assert len(figure.axes[0].get_yticklabels()) == 4  # 2 experiments x 2 classifier units
    assert_not_blank(figure)

    figure = report.backtest_plot(june_a.results[:3])
    assert len(figure.axes[0].get_lines()) >= 3
    assert_not_blank(figure)
