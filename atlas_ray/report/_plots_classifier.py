"""The classifier baseball card: everything about one classification trial on one figure.

Panels: the normalised confusion matrix (each row sums to 1: the share of each true class predicted as
each class; row labels carry the class's prevalence, column labels its positive rate and prediction
bias = positive rate / prevalence, > 1 means the model over-predicts the class), the metrics table
(per class PV, NPV, TPR, TNR, LR+, LR-; accuracy, AUC, loss), accuracy over time and the histogram of
interval accuracy, LR+ against frequency per class, ROC per class, and the backtest of the signal.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from atlas_ray.experiment import ResultsObject
from atlas_ray.featurestore import Task
from atlas_ray.report import stats
from atlas_ray.report._plots_card import (
    card_figure,
    draw_accuracy_histogram,
    draw_accuracy_over_time,
    draw_backtest,
    draw_matrix,
    draw_table,
    fmt,
)
from atlas_ray.report._style import class_colour, empty_axes
from atlas_ray.report._summary import DEFAULT_COST

__all__ = ["classifier_baseball_card"]

_TABLE_COLUMNS = (
    "prevalence", "positive_rate", "predictive_value", "npv", "tpr", "tnr", "lr_plus", "lr_minus"
)


def classifier_baseball_card(
    result: ResultsObject,
    split: str = "test",
    *,
    bucket: str | None = None,
    cost: float | None = DEFAULT_COST,
) -> Figure:
    """The baseball card of a classification trial on ``split`` (falls back to a split with rows)."""
    if result.task is Task.REGRESSION:
        raise ValueError(
            f"The value of `result.task` is {result.task.value!r}, but a classifier card needs a "
            "classification trial; use `regressor_baseball_card`."
        )
    split, frame, figure, grid = card_figure(result, split)
    classes = list(result.classes)
    k = len(classes)
    ax_cm = figure.add_subplot(grid[0, 0])
    ax_table = figure.add_subplot(grid[0, 1:])
    ax_time = figure.add_subplot(grid[1, :2])
    ax_hist = figure.add_subplot(grid[1, 2])
    ax_lr = figure.add_subplot(grid[2, 0])
    ax_roc = figure.add_subplot(grid[2, 1])
    ax_bt = figure.add_subplot(grid[2, 2])
    if frame.empty or k == 0:
        for ax in (ax_cm, ax_table, ax_time, ax_hist, ax_lr, ax_roc, ax_bt):
            empty_axes(ax, f"no predictions ({result.status.value}: {result.error or 'none written'})")
        return figure

    y_true = stats.class_codes(frame["reality"], classes)
    y_pred = stats.class_codes(frame["prediction"], classes)
    table = stats.class_statistics(y_true, y_pred, classes)
    cm = stats.confusion_matrix(y_true, y_pred, k).astype("float64")
    rows = cm.sum(axis=1, keepdims=True)
    normalised = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    prevalence = table["prevalence"].to_numpy()
    rate = table["positive_rate"].to_numpy()
    bias = np.divide(rate, prevalence, out=np.full(k, np.nan), where=prevalence > 0)
    draw_matrix(ax_cm, normalised,
                [f"{c}\nPR {r:.2f}\nbias {b:.2f}" for c, r, b in zip(classes, rate, bias, strict=True)],
                [f"{c}\nprev {p:.2f}" for c, p in zip(classes, prevalence, strict=True)])
    ax_cm.set_xlabel("predicted", fontsize=8)
    ax_cm.set_ylabel("true", fontsize=8)
    ax_cm.set_title("confusion matrix (rows sum to 1)", fontsize=9, loc="left")

    probs = stats.probabilities(frame, classes)
    acc = stats.accuracy(y_true, y_pred)
    auc_value = stats.macro_auc(y_true, probs) if probs is not None else float("nan")
    columns = ["class", "prevalence", "PR", "PV", "NPV", "TPR", "TNR", "LR+", "LR-"]
    body = [
        [name, *(fmt(float(table[c].to_numpy()[i])) for c in _TABLE_COLUMNS)]
        for i, name in enumerate(classes)
    ]
    loss = result.metric("loss", split)
    body.append(["all", f"n={len(frame)}", "", f"acc {fmt(acc)}", "", f"AUC {fmt(auc_value)}", "",
                 f"loss {fmt(loss)}", ""])
    draw_table(ax_table, body, columns, "metrics (LR+ = TPR / (1 - TNR), LR- = (1 - TPR) / TNR)")

    correct = (y_true == y_pred).astype("float64")
    over_time = stats.accuracy_over_time(frame["timestamp"], correct, bucket)
    draw_accuracy_over_time(ax_time, over_time, acc, "accuracy")
    draw_accuracy_histogram(ax_hist, over_time["accuracy"].to_numpy(), "accuracy")

    if probs is None:
        empty_axes(ax_lr, "no class probabilities")
        empty_axes(ax_roc, "no class probabilities")
    else:
        for c, name in enumerate(classes):
            colour = class_colour(c, k)
            curve = stats.likelihood_ratio_curve(y_true == c, probs[:, c])
            ax_lr.plot(curve["frequency"], curve["lr_plus"], color=colour, linewidth=1, label=name)
            fpr, tpr, _ = stats.roc_curve(y_true == c, probs[:, c])
            ax_roc.plot(fpr, tpr, color=colour, linewidth=1,
                        label=f"{name} AUC {stats.auc(fpr, tpr):.3f}")
        ax_lr.axhline(1.0, color="black", linestyle="--", linewidth=0.7)
        ax_lr.set_xlabel("frequency (share of rows predicted as the class)")
        ax_lr.set_ylabel("LR+")
        ax_lr.set_title("likelihood ratio against frequency", fontsize=9, loc="left")
        ax_lr.legend(fontsize=7)
        ax_lr.grid(alpha=0.3)
        ax_roc.plot([0, 1], [0, 1], color="black", linestyle="--", linewidth=0.7)
        ax_roc.set_xlabel("false positive rate")
        ax_roc.set_ylabel("true positive rate")
        ax_roc.set_title("ROC per class (one vs rest)", fontsize=9, loc="left")
        ax_roc.legend(fontsize=7, loc="lower right")
        ax_roc.grid(alpha=0.3)
    draw_backtest(ax_bt, result, frame, cost, split)
    return figure
