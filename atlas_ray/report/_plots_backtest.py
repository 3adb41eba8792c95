"""The backtest's cumulative-return curve for one trial or several side by side."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from atlas_ray.experiment import ResultsObject
from atlas_ray.report import stats
from atlas_ray.report._costs import cost_text, trial_curve, trial_figures
from atlas_ray.report._plots_card import shown_split
from atlas_ray.report._style import empty_axes, new_figure, plain_times
from atlas_ray.report._summary import DEFAULT_COST

__all__ = ["backtest_plot"]


def backtest_plot(
    results: ResultsObject | Sequence[ResultsObject], split: str = "test", cost: float | None = DEFAULT_COST
) -> Figure:
    """Net (solid) against gross (dotted, same colour) cumulative log return of each trial's long/short
    signal on ``split`` (``_costs.trial_curve``: the experiment's cost model, or a flat ``cost`` per unit
    of position changed), its turnover and cost drag in the legend, with buy-and-hold of the same rows
    for reference."""
    many = [results] if isinstance(results, ResultsObject) else list(results)
    figure = new_figure(11, 4.2)
    # 1.15 inches left of the axes: room for tick labels such as -0.00025 and the axis label
    figure.subplots_adjust(left=1.15 / 11, right=0.98, top=0.9, bottom=0.14)
    ax = figure.add_subplot()
    drawn = 0
    hold_drawn = False
    shown_splits = set()
    for i, result in enumerate(many):
        shown = shown_split(result, split)
        frame = stats.split_predictions(result, shown)
        if frame.empty or "label_value" not in frame.columns:
            continue
        shown_splits.add(shown)
        mask = stats.trial_arrays(result).mask(shown)
        curve = trial_curve(result, mask, cost)
        figures = trial_figures(result, mask, cost)
        times = plain_times(curve.index)
        ax.plot(times, curve["cumulative"], linewidth=1, color=f"C{i % 10}",
                label=f"{result.trial_id} ({result.identity.model}) net {figures['net_return']:+.4f} "
                      f"(gross {figures['gross_return']:+.4f}), turnover {figures['turnover']:.3f}/bar, "
                      f"cost {figures['cost']:.4f}")
        ax.plot(times, curve["cumulative_gross"], linewidth=0.7, color=f"C{i % 10}", linestyle=":", alpha=0.8)
        if not hold_drawn:
            hold = np.cumsum(np.nan_to_num(frame["label_value"].to_numpy("float64")))
            ax.plot(times, hold, color="0.5", linestyle=":", linewidth=1, label="buy and hold")
            hold_drawn = True
        drawn += 1
    if not drawn:
        empty_axes(ax, f"no trial has {split} predictions with label values")
        return figure
    ax.axhline(0.0, color="black", linewidth=0.5)
    ax.set_ylabel("cumulative log return")
    rows = ", ".join(sorted(shown_splits))
    ax.set_title(f"long/short backtest on the {rows} rows: net (solid) and gross (dotted); "
                 f"{cost_text(many, cost)}", fontsize=10, loc="left")
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    ax.tick_params(axis="x", labelsize=8, rotation=15)
    return figure
