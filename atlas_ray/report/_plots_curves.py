"""Curves of one trial: learning curves per epoch, ROC and precision / recall against threshold (the
Jane Street notebook's plots), probability histograms and likelihood-ratio curves."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from atlas_ray.experiment import ResultsObject
from atlas_ray.featurestore import Task
from atlas_ray.report import stats
from atlas_ray.report._plots_card import card_split
from atlas_ray.report._style import class_colour, empty_axes, new_figure
from atlas_ray.report._style import grid as layout

__all__ = ["learning_curves", "likelihood_curves", "probability_histograms", "roc_threshold_plots"]


def _panel_grid(figure: Figure, n: int, columns: int = 3) -> list:
    cols = min(columns, max(n, 1))
    rows = (max(n, 1) + cols - 1) // cols
    grid = layout(figure, rows, cols, hspace=0.5, wspace=0.3)
    return [figure.add_subplot(grid[i // cols, i % cols]) for i in range(max(n, 1))]


def learning_curves(result: ResultsObject) -> Figure:
    """One panel per metric in ``result.curves`` (loss, accuracy, precision, recall, AUC, ...): the
    training value and the validation one (``val_`` prefix) per epoch."""
    curves = result.curves
    names: list[str] = []
    if not curves.empty and "epoch" in curves.columns:
        for column in curves.columns:
            base = column.removeprefix("val_")
            # (``rounds``: a LightGBM trial's boosting rounds so far, a clock like ``epoch``, not a metric)
            if column not in ("epoch", "rounds") and base not in names and pd.api.types.is_numeric_dtype(
                curves[column]
            ):
                names.append(base)
    figure = new_figure(4.2 * min(3, max(len(names), 1)), 3.2 * ((max(len(names), 1) + 2) // 3))
    axes = _panel_grid(figure, len(names))
    figure.suptitle(f"learning curves · {result.trial_id} ({result.identity.model}, {result.status.value} "
                    f"after {result.epochs} epochs)", fontsize=10, x=0.01, ha="left")
    if not names:
        empty_axes(axes[0], "no per-epoch curves recorded")
        return figure
    epochs = curves["epoch"].to_numpy()
    for ax, name in zip(axes, names, strict=True):
        if name in curves.columns:
            ax.plot(epochs, curves[name], marker="o", markersize=3, label="train", color="#1f77b4")
        if f"val_{name}" in curves.columns:
            ax.plot(epochs, curves[f"val_{name}"], marker="o", markersize=3, label="validation",
                    color="#ff7f0e")
        ax.set_title(name, fontsize=9, loc="left")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return figure


def _class_inputs(result: ResultsObject, split: str) -> tuple[str, np.ndarray, np.ndarray | None]:
    split, frame = card_split(result, split)
    if frame.empty or result.task is Task.REGRESSION:
        return split, np.zeros(0, dtype="int64"), None
    y_true = stats.class_codes(frame["reality"], result.classes)
    return split, y_true, stats.probabilities(frame, result.classes)


def roc_threshold_plots(result: ResultsObject, split: str = "test") -> Figure:
    """The ROC curve per class and, per class, precision and recall against the decision threshold
    (as in the Jane Street notebook: precision dashed blue, recall green)."""
    split, y_true, probs = _class_inputs(result, split)
    classes = list(result.classes)
    figure = new_figure(4.2 * (1 + max(len(classes), 1)), 3.8)
    grid = layout(figure, 1, 1 + max(len(classes), 1), wspace=0.25)
    axes = [figure.add_subplot(grid[0, i]) for i in range(1 + max(len(classes), 1))]
    figure.suptitle(f"ROC and precision / recall against threshold · {result.trial_id} · {split}",
                    fontsize=10, x=0.01, ha="left")
    if probs is None:
        for ax in axes:
            empty_axes(ax, "no class probabilities")
        return figure
    roc_ax = axes[0]
    for c, name in enumerate(classes):
        positive = y_true == c
        fpr, tpr, _ = stats.roc_curve(positive, probs[:, c])
        roc_ax.plot(fpr, tpr, color=class_colour(c, len(classes)), linewidth=1.2,
                    label=f"{name} (AUC {stats.auc(fpr, tpr):.3f})")
        precision, recall, thresholds = stats.precision_recall_curve(positive, probs[:, c])
        ax = axes[1 + c]
        ax.plot(thresholds, precision[:-1], "b--", label="precision")
        ax.plot(thresholds, recall[:-1], "g-", label="recall")
        ax.axhline(float(positive.mean()) if positive.size else np.nan, color="0.5", linewidth=0.7,
                   linestyle=":", label="prevalence")
        ax.set_xlabel(f"threshold on prob_{name}")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"class {name}", fontsize=9, loc="left")
        ax.legend(fontsize=7, loc="best")
        ax.grid(alpha=0.3)
    roc_ax.plot([0, 1], [0, 1], "k--", linewidth=0.7)
    roc_ax.set_xlabel("false positive rate")
    roc_ax.set_ylabel("true positive rate")
    roc_ax.set_title("ROC (one vs rest)", fontsize=9, loc="left")
    roc_ax.legend(fontsize=7, loc="lower right")
    roc_ax.grid(alpha=0.3)
    return figure


def probability_histograms(result: ResultsObject, split: str = "test") -> Figure:
    """Per class, the histogram of ``prob_<class>`` for rows that are the class and rows that are not
    (densities, so the two overlap on one scale): well separated humps mean a useful score."""
    split, y_true, probs = _class_inputs(result, split)
    classes = list(result.classes)
    figure = new_figure(4.2 * max(len(classes), 1), 3.4)
    grid = layout(figure, 1, max(len(classes), 1), wspace=0.25)
    axes = [figure.add_subplot(grid[0, i]) for i in range(max(len(classes), 1))]
    figure.suptitle(f"probability histograms · {result.trial_id} · {split}", fontsize=10, x=0.01, ha="left")
    if probs is None:
        empty_axes(axes[0], "no class probabilities")
        return figure
    for c, name in enumerate(classes):
        ax = axes[c]
        score = probs[:, c]
        low, high = float(np.nanmin(score)), float(np.nanmax(score))
        bins = np.linspace(low, high if high > low else low + 1e-6, 40).tolist()
        ax.hist(score[y_true == c], bins=bins, density=True, alpha=0.6, color=class_colour(c, len(classes)),
                label=f"is {name}")
        ax.hist(score[y_true != c], bins=bins, density=True, alpha=0.5, color="0.4", label=f"not {name}",
                histtype="step", linewidth=1.2)
        ax.set_xlabel(f"prob_{name}")
        ax.set_title(f"class {name}", fontsize=9, loc="left")
        ax.legend(fontsize=7)
    return figure


def likelihood_curves(result: ResultsObject, split: str = "test") -> Figure:
    """LR+ (TPR / FPR) of "predict the class when its probability >= t" against t, and the precision
    and frequency of those predictions against t (``stats.confidence_thresholds``)."""
    split, y_true, probs = _class_inputs(result, split)
    classes = list(result.classes)
    figure = new_figure(12, 3.8)
    grid = layout(figure, 1, 3, wspace=0.25)
    axes = [figure.add_subplot(grid[0, i]) for i in range(3)]
    figure.suptitle(f"likelihood curves · {result.trial_id} · {split}", fontsize=10, x=0.01, ha="left")
    if probs is None:
        for ax in axes:
            empty_axes(ax, "no class probabilities")
        return figure
    thresholds = np.linspace(0.0, 1.0, 41)
    table = stats.confidence_thresholds(y_true, probs, classes, thresholds)
    for c, name in enumerate(classes):
        colour = class_colour(c, len(classes))
        curve = stats.likelihood_ratio_curve(y_true == c, probs[:, c])
        axes[0].plot(curve["threshold"], curve["lr_plus"], color=colour, label=name)
        rows = table[table["class"] == name]
        axes[1].plot(rows["threshold"], rows["precision"], color=colour, label=name)
        axes[2].plot(rows["threshold"], rows["frequency"], color=colour, label=name)
    axes[0].axhline(1.0, color="black", linestyle="--", linewidth=0.7)
    for ax, title in zip(axes, ("LR+ against threshold", "precision at confidence >= t",
                                "frequency at confidence >= t"), strict=True):
        ax.set_xlabel("threshold on the class probability")
        ax.set_title(title, fontsize=9, loc="left")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    return figure
