"""The multi-model heat-table: one row per trial, one column per summary metric, viridis.

Each column is coloured on its own scale over the rows shown (yellow = best for metrics with a
direction, so a bright column is a good one; positive rates are coloured by their value, 0..1). Rows
are sorted by the chosen metric (best first; its column comes first, marked ▼), cut to the top ``top``.
A degenerate model (one class
predicted on at least 95% of the validation rows, see ``stats.is_degenerate``) has its row label in
red, prefixed "DEGENERATE", and its row hatched, so it stands out at a glance however well it scores.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from atlas_ray.experiment import ResultsObject
from atlas_ray.report._style import empty_axes, new_figure
from atlas_ray.report._summary import heat_columns, lower_is_better, resolve_metric, summary_frame

__all__ = ["heat_table", "sort_summary"]


def sort_summary(summary: pd.DataFrame, metric: str, ascending: bool | None = None) -> pd.DataFrame:
    """``summary`` best first by ``metric`` (NaN last); ``ascending`` defaults to the metric's
    direction (``lower_is_better``)."""
    if ascending is None:
        ascending = lower_is_better(metric)
    return summary.sort_values(metric, ascending=ascending, na_position="last", kind="stable")


def _classes(summary: pd.DataFrame) -> list[str]:
    """The classes of these rows, in each trial's own order (``classes`` column, ``|``-joined)."""
    out: list[str] = []
    if "classes" in summary.columns:
        for value in summary["classes"].dropna().unique():
            out += [c for c in str(value).split("|") if c and c not in out]
    return out


def _varying_hyperparameters(rows: pd.DataFrame) -> list[str]:
    """The ``hp.*`` columns whose values differ among ``rows``: what tells these trials apart."""
    varying = []
    for column in (c for c in rows.columns if c.startswith("hp.")):
        values = {repr(v) for v in rows[column] if not (isinstance(v, float) and np.isnan(v))}
        if len(values) > 1:
            varying.append(column)
    return varying


def _label(row: pd.Series, varying: Sequence[str], width: int = 64) -> str:
    """``trial model`` and the hyperparameters that vary among the rows shown (not those all share)."""
    text = f"{row['trial_id']}  {row['model']}"
    shown = [
        f"{column[3:]}={_short_value(row[column])}"
        for column in varying
        if not (isinstance(row[column], float) and np.isnan(row[column]))
    ]
    if shown:
        text += "  " + ", ".join(shown)
    if len(text) > width:
        text = text[: width - 1] + "…"
    if row.get("status") not in (None, "completed"):
        text += f" ({row['status']})"
    if bool(row.get("degenerate", False)):
        text = "DEGENERATE · " + text
    return text


def _short_value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value).replace(" ", "")


def heat_table(
    data: Sequence[ResultsObject] | pd.DataFrame,
    metric: str | None = None,
    top: int = 40,
    *,
    task: str | None = None,
    ascending: bool | None = None,
    title: str | None = None,
) -> Figure:
    """The heat-table of ``data`` (ResultsObjects, or a ``summary_frame``) sorted by ``metric`` (default
    ``loss``, else the first column), top ``top`` rows. Rows of one task are drawn (``task``, default
    the most common one), since classifiers and regressors have different columns."""
    if top < 1:
        raise ValueError(f"The value of `top` is {top}, but must be `top >= 1`.")
    summary = data if isinstance(data, pd.DataFrame) else summary_frame(list(data))
    if summary.empty:
        figure = new_figure(6, 2)
        empty_axes(figure.add_subplot(), "no trials with results")
        return figure
    if task is None:
        task = str(summary["task"].mode().iloc[0])
    rows = summary[summary["task"] == task]
    columns = heat_columns(rows, task, _classes(rows))
    if not columns:
        figure = new_figure(6, 2)
        empty_axes(figure.add_subplot(), f"no {task} trial has metrics")
        return figure
    if metric is None:
        metric = "loss" if "loss" in columns else columns[0]
    metric = resolve_metric(metric, rows)
    columns = [metric, *(c for c in columns if c != metric)]
    shown = sort_summary(rows, metric, ascending).head(top)
    values = shown[columns].to_numpy("float64")
    colours = np.full(values.shape, np.nan)
    for j, column in enumerate(columns):
        v = values[:, j]
        if column.startswith("positive_rate["):
            colours[:, j] = v
            continue
        finite = np.isfinite(v)
        if not finite.any():
            continue
        low, high = np.nanmin(v), np.nanmax(v)
        scaled = (v - low) / (high - low) if high > low else np.full(v.shape, 0.5)
        colours[:, j] = 1.0 - scaled if lower_is_better(column) else scaled

    n_rows, n_cols = values.shape
    varying = _varying_hyperparameters(shown)
    labels = [_label(row, varying) for _, row in shown.iterrows()]
    left = 0.3 + 0.068 * max(len(label) for label in labels)
    width, height = left + 0.95 * n_cols + 0.4, 1.75 + 0.3 * n_rows
    figure = new_figure(width, height)
    figure.subplots_adjust(left=left / width, right=1 - 0.4 / width, top=1 - 1.55 / height,
                           bottom=0.1 / height)
    ax = figure.add_subplot()
    ax.imshow(np.ma.masked_invalid(colours), cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto",
              interpolation="nearest")
    ax.set_facecolor("0.85")
    for i in range(n_rows):
        for j in range(n_cols):
            value = values[i, j]
            shade = colours[i, j]
            text = "-" if not np.isfinite(value) else f"{value:.3g}"
            colour = "black" if np.isfinite(shade) and shade > 0.6 else "white"
            if not np.isfinite(shade):
                colour = "black"
            ax.text(j, i, text, ha="center", va="center", fontsize=7.5, color=colour)
    headers = [f"▼ {c}" if c == metric else c for c in columns]
    ax.set_xticks(range(n_cols), headers, rotation=35, ha="left", fontsize=8)
    ax.xaxis.tick_top()
    ax.set_yticks(range(n_rows), labels, fontsize=8)
    degenerate = shown["degenerate"].to_numpy(bool) if "degenerate" in shown else np.zeros(n_rows, bool)
    for i, tick in enumerate(ax.get_yticklabels()):
        if degenerate[i]:
            tick.set_color("#c00000")
            tick.set_fontweight("bold")
            ax.add_patch(Rectangle((-0.5, i - 0.5), n_cols, 1, fill=False, hatch="///", edgecolor="#c00000",
                                   linewidth=1.2))
    ax.set_xticks(np.arange(n_cols + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(n_rows + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", linewidth=0.6)
    ax.tick_params(which="minor", length=0)
    direction = "lowest" if (lower_is_better(metric) if ascending is None else ascending) else "highest"
    count = len(rows)
    heading = title or f"{task} trials"
    ax.set_title(
        f"{heading}: top {n_rows} of {count} by {metric} ({direction} first)"
        + (f"; {int(degenerate.sum())} degenerate shown" if degenerate.any() else ""),
        fontsize=10, loc="left",
    )
    return figure
