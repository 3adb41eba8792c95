"""Panels shared by the classifier and regressor baseball cards."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.gridspec import GridSpec

from atlas_ray.experiment import ResultsObject
from atlas_ray.report import stats
from atlas_ray.report._style import empty_axes, new_figure, plain_times, trial_title
from atlas_ray.report._style import grid as layout

__all__ = [
    "card_figure",
    "card_split",
    "draw_accuracy_histogram",
    "draw_accuracy_over_time",
    "draw_backtest",
    "draw_table",
]


def shown_split(result: ResultsObject, split: str) -> str:
    """The split a trial's figures show for the asked ``split``: ``validation`` is a walk-forward
    trial's joined ``oos`` rows; ``test`` only for a trial whose test set was opened (``finalize``),
    otherwise its validation / oos rows (the test part stays sealed)."""
    has_oos = "oos" in result.metrics
    if split == "test" and not result.finalized:
        split = "validation"
    if split == "validation" and has_oos:
        return "oos"
    return split


def card_split(result: ResultsObject, split: str) -> tuple[str, pd.DataFrame]:
    """``shown_split``'s rows, or the first of oos / validation / train / all that has rows; test rows
    only for a finalised trial."""
    split = shown_split(result, split)
    for name in (split, "oos", "validation", "train", "all"):
        frame = stats.split_predictions(result, name)
        if not frame.empty:
            return name, frame
    return split, result.predictions


def card_figure(result: ResultsObject, split: str) -> tuple[str, pd.DataFrame, Figure, GridSpec]:
    """A baseball card's frame: the split shown and its rows, and a titled 3 x 3 figure and its grid."""
    split, frame = card_split(result, split)
    figure = new_figure(16, 12)
    grid = layout(figure, 3, 3, left=0.9, top=0.7, bottom=0.75, hspace=0.55, wspace=0.28)
    hp = ", ".join(f"{a}={b}" for a, b in sorted(result.identity.hyperparameters.items()))
    figure.suptitle(
        trial_title(result.trial_id, result.identity.unit, result.identity.model, hp,
                    f"{split} split, {len(frame)} rows, {result.status.value}"),
        fontsize=11, x=0.01, ha="left",
    )
    return split, frame, figure, grid


def draw_accuracy_over_time(ax: Axes, over_time: pd.DataFrame, overall: float, what: str) -> None:
    if over_time.empty:
        empty_axes(ax, f"no {what} over time")
        return
    ax.plot(plain_times(over_time.index), over_time.iloc[:, 0], marker="o", markersize=3, linewidth=1,
            color="#1f77b4")
    ax.axhline(overall, color="black", linestyle="--", linewidth=0.8, label=f"overall {overall:.3f}")
    ax.set_ylabel(what)
    ax.set_title(f"{what} over time (buckets of {_bucket_text(over_time)})", fontsize=9, loc="left")
    ax.legend(fontsize=7, loc="best")
    ax.tick_params(axis="x", labelsize=7, rotation=20)
    ax.grid(alpha=0.3)


def _bucket_text(over_time: pd.DataFrame) -> str:
    if len(over_time) < 2:
        return "one bucket"
    step = pd.Series(over_time.index).diff().min()
    return str(step).replace("0 days ", "").replace(":00:00", "h") if pd.notna(step) else "?"


def draw_accuracy_histogram(ax: Axes, values: np.ndarray, what: str) -> None:
    values = np.asarray(values, dtype="float64")
    values = values[np.isfinite(values)]
    if values.size == 0:
        empty_axes(ax, f"no {what} buckets")
        return
    ax.hist(values, bins=min(20, max(5, values.size // 3)), color="#1f77b4", edgecolor="white")
    ax.axvline(float(np.mean(values)), color="black", linestyle="--", linewidth=0.8)
    ax.set_xlabel(f"{what} per bucket")
    ax.set_ylabel("buckets")
    ax.set_title(f"histogram of interval {what}", fontsize=9, loc="left")


def draw_table(ax: Axes, rows: Sequence[Sequence[str]], columns: Sequence[str], title: str) -> None:
    """A metrics table as one block of monospaced text (one text object lays out ten times quicker than
    matplotlib's cell-by-cell table), header underlined."""
    ax.axis("off")
    cells = [list(columns), *[list(r) for r in rows]]
    widths = [max(len(str(row[j])) for row in cells) for j in range(len(columns))]
    lines = ["  ".join(str(cell).rjust(width) for cell, width in zip(row, widths, strict=True))
             for row in cells]
    lines.insert(1, "-" * len(lines[0]))
    ax.text(0.0, 1.0, "\n".join(lines), family="monospace", fontsize=9, va="top", ha="left",
            transform=ax.transAxes, linespacing=1.5)
    ax.set_title(title, fontsize=9, loc="left")


def draw_backtest(ax: Axes, result: ResultsObject, frame: pd.DataFrame, cost: float | None,
                  split: str = "all") -> None:
    """The card's backtest of ``frame`` (the rows of ``split``): net of the experiment's cost model (or
    the flat ``cost``) against gross, and buy-and-hold."""
    from atlas_ray.report._costs import charged, trial_curve

    if frame.empty or "label_value" not in frame.columns:
        empty_axes(ax, "no label values: no backtest")
        return
    curve = trial_curve(result, stats.trial_arrays(result).mask(split), cost)
    times = plain_times(curve.index)
    net_label = f"net ({charged(result, cost)[0].describe()})" if cost is None else f"net (cost {cost:g})"
    ax.plot(times, curve["cumulative"], color="#2ca02c", linewidth=1, label=net_label)
    ax.plot(times, curve["cumulative_gross"], color="#1f77b4", linewidth=0.8, alpha=0.7, label="gross")
    hold = np.cumsum(np.nan_to_num(frame["label_value"].to_numpy("float64")))
    ax.plot(times, hold, color="0.5", linewidth=0.8, linestyle=":", label="buy and hold")
    ax.axhline(0.0, color="black", linewidth=0.5)
    ax.set_ylabel("cumulative log return")
    ax.set_title(f"long/short backtest of the signal on the {split} rows", fontsize=9, loc="left")
    ax.legend(fontsize=7, loc="best")
    ax.tick_params(axis="x", labelsize=7, rotation=20)
    ax.grid(alpha=0.3)


def fmt(value: float) -> str:
    if value is None or not np.isfinite(value):
        return "-"
    return f"{value:.3f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


def draw_matrix(ax: Axes, matrix: np.ndarray, xlabels: Sequence[str], ylabels: Sequence[str]) -> None:
    """A row-normalised confusion matrix as a viridis image with each cell's value written in it."""
    ax.imshow(matrix, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=9,
                color="black" if value > 0.6 else "white")
    ax.set_xticks(range(len(xlabels)), list(xlabels), fontsize=7)
    ax.set_yticks(range(len(ylabels)), list(ylabels), fontsize=7)
