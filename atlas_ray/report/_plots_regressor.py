"""The regressor baseball card: the confusion matrix of signs (down / up, rows sum to 1), the metrics
table against the persistence (the last realised h-bar return, known at the bar) and zero-change
baselines, sign accuracy over time and its histogram,
predictions against reality, and the backtest of the signal."""

from __future__ import annotations

import numpy as np
import pandas as pd
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
from atlas_ray.report._style import empty_axes
from atlas_ray.report._summary import DEFAULT_COST

__all__ = ["regressor_baseball_card"]


def regressor_baseball_card(
    result: ResultsObject,
    split: str = "test",
    *,
    bucket: str | None = None,
    cost: float | None = DEFAULT_COST,
) -> Figure:
    """The baseball card of a regression trial on ``split`` (falls back to a split with rows)."""
    if result.task is not Task.REGRESSION:
        raise ValueError(
            f"The value of `result.task` is {result.task.value!r}, but a regressor card needs a "
            "regression trial; use `classifier_baseball_card`."
        )
    split, frame, figure, grid = card_figure(result, split)
    ax_cm = figure.add_subplot(grid[0, 0])
    ax_table = figure.add_subplot(grid[0, 1:])
    ax_time = figure.add_subplot(grid[1, :2])
    ax_hist = figure.add_subplot(grid[1, 2])
    ax_scatter = figure.add_subplot(grid[2, :2])
    ax_bt = figure.add_subplot(grid[2, 2])
    if frame.empty:
        for ax in (ax_cm, ax_table, ax_time, ax_hist, ax_scatter, ax_bt):
            empty_axes(ax, f"no predictions ({result.status.value}: {result.error or 'none written'})")
        return figure
    prediction = frame["prediction"].to_numpy("float64")
    reality = frame["reality"].to_numpy("float64")
    sign_true = (reality > 0).astype("int64")
    sign_pred = (prediction > 0).astype("int64")
    cm = stats.confusion_matrix(sign_true, sign_pred, 2).astype("float64")
    rows = cm.sum(axis=1, keepdims=True)
    normalised = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    prevalence = rows[:, 0] / max(cm.sum(), 1)
    rate = cm.sum(axis=0) / max(cm.sum(), 1)
    draw_matrix(ax_cm, normalised,
                [f"{n}\nPR {r:.2f}" for n, r in zip(("<= 0", "> 0"), rate, strict=True)],
                [f"{n}\nprev {p:.2f}" for n, p in zip(("<= 0", "> 0"), prevalence, strict=True)])
    ax_cm.set_xlabel("predicted sign", fontsize=8)
    ax_cm.set_ylabel("true sign", fontsize=8)
    ax_cm.set_title("confusion matrix of signs (rows sum to 1)", fontsize=9, loc="left")

    label = frame["label_value"].to_numpy("float64") if "label_value" in frame else reality
    label = label if np.isfinite(label).all() else reality
    horizon, bar = stats.label_horizon(result.label), stats.label_bar(result.label)
    times = pd.DatetimeIndex(frame["timestamp"])
    values = stats.regression_statistics(prediction, reality, label_value=label, horizon=horizon,
                                         timestamps=times, bar=bar)
    persisted = stats.persistence_forecast(label, horizon, index=times, bar=bar)  # last realised return
    known = np.isfinite(persisted)
    body = [
        ["model", fmt(values["mse"]), fmt(values["mae"]), fmt(values["sign_accuracy"])],
        [f"persistence ({horizon}-bar)", fmt(values["persistence_mse"]),
         fmt(float(np.mean(np.abs(reality[known] - persisted[known])))) if known.any() else "-", "-"],
        ["zero change", fmt(values["zero_mse"]), fmt(float(np.mean(np.abs(reality)))), "-"],
        ["skill vs zero", fmt(values["skill"]), "", f"n={len(frame)}"],
    ]
    draw_table(ax_table, body, ["", "MSE", "MAE", "sign accuracy"],
               "metrics against the baselines (skill = 1 - MSE / zero-change MSE)")

    correct = (np.sign(prediction) == np.sign(reality)).astype("float64")
    over_time = stats.accuracy_over_time(frame["timestamp"], correct, bucket)
    draw_accuracy_over_time(ax_time, over_time, values["sign_accuracy"], "sign accuracy")
    draw_accuracy_histogram(ax_hist, over_time["accuracy"].to_numpy(), "sign accuracy")

    finite = np.isfinite(prediction) & np.isfinite(reality)
    if finite.sum() > 1:
        ax_scatter.hexbin(prediction[finite], reality[finite], gridsize=60, bins="log", cmap="viridis",
                          mincnt=1)
        low, high = np.percentile(prediction[finite], [0.5, 99.5])
        pad = (high - low) * 0.1 or 1e-9
        ax_scatter.plot([low - pad, high + pad], [low - pad, high + pad], color="red", linewidth=0.8,
                        linestyle="--", label="y = x")
        ax_scatter.set_xlim(low - pad, high + pad)  # the predictions' own range: they are often tiny
        ax_scatter.axhline(0, color="black", linewidth=0.4)
        ax_scatter.axvline(0, color="black", linewidth=0.4)
        ax_scatter.set_xlabel("prediction")
        ax_scatter.set_ylabel("reality")
        ax_scatter.set_title("predictions against reality (log-count hexbins)", fontsize=9, loc="left")
        ax_scatter.legend(fontsize=7)
    else:
        empty_axes(ax_scatter, "no finite predictions")
    draw_backtest(ax_bt, result, frame, cost, split)
    return figure
