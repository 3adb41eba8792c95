"""Selection-luck figures: the CSCV logit histogram of the probability of backtest overfitting, and the
information coefficient per day of regressors."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from atlas_ray.report._luck import SelectionLuck
from atlas_ray.report._style import empty_axes, new_figure, plain_times
from atlas_ray.report._style import grid as layout

__all__ = ["ic_plot", "pbo_plot"]


def pbo_plot(luck: SelectionLuck) -> Figure:
    """Left: the histogram of CSCV's logits ``lambda`` over every combination, the share at or left of 0
    (red) being the PBO. Right: per combination, the in-sample winner's Sharpe ratio in sample against
    out of sample (performance degradation)."""
    figure = new_figure(11, 3.9)
    result = luck.pbo
    if result is None:
        empty_axes(figure.add_subplot(), "no probability of backtest overfitting: "
                   + ("; ".join(n for n in luck.notes if n.startswith("PBO")) or "too few trials"))
        return figure
    grid = layout(figure, 1, 2, left=0.75, top=1.15, bottom=0.6, wspace=0.25)
    figure.suptitle(f"probability of backtest overfitting {result.pbo:.2f}: CSCV over {result.trials} "
                    f"trials, {result.rows} {luck.split} rows in {result.partitions} blocks\n"
                    f"({result.combinations:,} in-sample / out-of-sample splits)\n"
                    f"performance: Sharpe ratio of the {luck.returns}",
                    fontsize=10, x=0.01, ha="left", va="top", y=1 - 0.08 / figure.get_size_inches()[1])
    ax = figure.add_subplot(grid[0, 0])
    logits = result.logits
    values, counts = np.unique(np.round(logits, 12), return_counts=True)
    below = values <= 0
    labels = (f"lambda <= 0: {counts[below].sum()} splits ({result.pbo:.0%})",
              f"lambda > 0: {counts[~below].sum()} splits")
    if values.size <= 4 * result.trials + 8:
        # few trials: lambda takes one value per out-of-sample rank, one bar each
        width = 0.8 * (float(np.min(np.diff(values))) if values.size > 1 else 1.0)
        for side, colour, label in ((below, "#d62728", labels[0]), (~below, "#1f77b4", labels[1])):
            ax.bar(values[side], counts[side], width=width, color=colour, alpha=0.85, label=label)
    else:
        found = np.histogram_bin_edges(logits, bins=40)
        edges = [float(e) for e in (np.unique(np.r_[found, 0.0]) if found[0] < 0 < found[-1] else found)]
        ax.hist(logits[logits <= 0], bins=edges, color="#d62728", alpha=0.85, label=labels[0])
        ax.hist(logits[logits > 0], bins=edges, color="#1f77b4", alpha=0.85, label=labels[1])
    ax.axvline(0.0, color="black", linewidth=1)
    ax.set_xlabel("logit of the in-sample winner's out-of-sample rank, lambda")
    ax.set_ylabel("splits")
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    ax = figure.add_subplot(grid[0, 1])
    ax.scatter(result.in_sample, result.out_of_sample, s=6, alpha=0.35, color="#1f77b4")
    ax.axhline(0.0, color="black", linewidth=0.6)
    ax.set_xlabel("in-sample Sharpe ratio of the winner (per row)")
    ax.set_ylabel("its out-of-sample Sharpe ratio")
    ax.grid(alpha=0.3)
    ax.ticklabel_format(axis="both", style="sci", scilimits=(-3, 3))
    return figure


def ic_plot(daily: Mapping[str, pd.DataFrame], split: str = "validation") -> Figure:
    """IC and Rank IC per UTC day of each trial in ``daily`` (``{trial_id: stats.information_coefficients
    table}``), one panel per trial, the mean and ICIR in the panel's title."""
    trials = [(t, d) for t, d in daily.items() if not d.empty]
    n = max(len(trials), 1)
    figure = new_figure(11, 1.0 + 2.3 * n)
    if not trials:
        empty_axes(figure.add_subplot(), f"no regressor has {split} predictions")
        return figure
    grid = layout(figure, n, 1, left=0.8, top=0.7, bottom=0.7, hspace=0.7)
    figure.suptitle(f"information coefficient per UTC day on {split} rows (IC: Pearson, Rank IC: Spearman)",
                    fontsize=10, x=0.01, ha="left")
    for i, (trial, table) in enumerate(trials):
        ax = figure.add_subplot(grid[i, 0])
        days = plain_times(table.index)
        width = np.timedelta64(6, "h")
        ax.bar(days - width / 2, table["ic"].to_numpy("float64"), width=width, color="#1f77b4", label="IC")
        ax.bar(days + width / 2, table["rank_ic"].to_numpy("float64"), width=width, color="#ff7f0e",
               label="Rank IC")
        ax.axhline(0.0, color="black", linewidth=0.6)
        ic, rank_ic = table["ic"].dropna(), table["rank_ic"].dropna()
        icir = ic.mean() / ic.std() if len(ic) > 1 and ic.std() > 0 else np.nan
        rank_icir = rank_ic.mean() / rank_ic.std() if len(rank_ic) > 1 and rank_ic.std() > 0 else np.nan
        ax.set_title(f"{trial}: IC mean {ic.mean():+.4f}, ICIR {icir:+.2f}; "
                     f"Rank IC mean {rank_ic.mean():+.4f}, Rank ICIR {rank_icir:+.2f} ({len(table)} days)",
                     fontsize=9, loc="left")
        ax.set_ylabel("correlation")
        ax.legend(fontsize=7, loc="upper right")
        ax.grid(alpha=0.3)
        ax.tick_params(axis="x", labelsize=8)
    return figure
