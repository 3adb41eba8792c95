"""Views over many trials: hyperparameter against metric, the ASHA picture, and the comparison of
experiments side by side."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from atlas_ray.experiment import ResultsObject, TrialStatus, asha_rungs
from atlas_ray.report._style import empty_axes, new_figure
from atlas_ray.report._style import grid as layout
from atlas_ray.report._summary import lower_is_better, resolve_metric, summary_frame

__all__ = ["asha_plot", "experiment_comparison", "hyperparameter_plot", "rungs", "varying_hyperparameters"]


def rungs(max_t: int | None, grace_period: int | None, reduction_factor: int | None) -> list[int]:
    """ASHA's rung epochs for these settings, as the scheduler decides them
    (``atlas_ray.experiment.asha_rungs``); ``[]`` when a setting is missing or invalid. An experiment's
    own rungs are in its record (``Experiment.rungs``)."""
    if (not max_t or not grace_period or not reduction_factor or reduction_factor < 2 or grace_period < 1
            or grace_period > max_t):
        return []
    return list(asha_rungs(max_t, grace_period, reduction_factor))


def _summary(data: Sequence[ResultsObject] | pd.DataFrame) -> pd.DataFrame:
    return data if isinstance(data, pd.DataFrame) else summary_frame(list(data))


def _values(column: pd.Series) -> list[str]:
    """The distinct recorded values of a hyperparameter column, as text (lists are values too)."""
    return sorted({repr(v) if not isinstance(v, str) else v for v in column if _recorded(v)})


def _recorded(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value))


def varying_hyperparameters(summary: pd.DataFrame) -> list[str]:
    """The ``hp.`` columns of ``summary`` that take at least two distinct values: a constant batch size
    or a single activation says nothing about the metric and gets no panel."""
    return [c for c in summary.columns if c.startswith("hp.") and len(_values(summary[c])) >= 2]


def hyperparameter_plot(data: Sequence[ResultsObject] | pd.DataFrame, metric: str = "loss") -> Figure:
    """One panel per hyperparameter that varies (``varying_hyperparameters``): each trial's ``metric``
    against its value (log axis for positive numbers spanning more than two decades; categories side
    by side, jittered). Colour by work unit; degenerate trials ringed in red."""
    summary = _summary(data)
    recorded = [c for c in summary.columns if c.startswith("hp.")] if not summary.empty else []
    hps = varying_hyperparameters(summary)
    figure = new_figure(4.2 * min(3, max(len(hps), 1)), 3.4 * ((max(len(hps), 1) + 2) // 3))
    if not hps:
        fixed = ", ".join(f"{c[3:]}={_values(summary[c])[0]}" for c in recorded if _values(summary[c]))
        empty_axes(figure.add_subplot(), f"no hyperparameter varies across these trials ({fixed})"
                   if recorded else "no hyperparameters recorded")
        return figure
    metric = resolve_metric(metric, summary)
    cols = min(3, len(hps))
    grid = layout(figure, (len(hps) + cols - 1) // cols, cols, left=1.15, top=0.75, bottom=0.9, hspace=0.6,
                  wspace=0.5)
    units = sorted(summary["unit"].astype(str).unique())
    colour = {u: f"C{i % 10}" for i, u in enumerate(units)}
    rng = np.random.default_rng(0)
    figure.suptitle(f"hyperparameters against {metric} ({'lower' if lower_is_better(metric) else 'higher'} "
                    "is better)", fontsize=10, x=0.01, ha="left")
    for i, column in enumerate(hps):
        ax = figure.add_subplot(grid[i // cols, i % cols])
        rows = summary[summary[column].notna() & summary[metric].notna()]
        if rows.empty:
            empty_axes(ax, f"no trial has both {column[3:]} and {metric}")
            continue
        y = rows[metric].to_numpy("float64")
        raw = rows[column]
        try:
            numeric = pd.to_numeric(raw, errors="coerce")
        except TypeError:  # lists (hidden units per layer) are categories
            numeric = pd.Series(np.nan, index=raw.index)
        if numeric.notna().all() and not raw.map(lambda v: isinstance(v, bool)).any():
            x = numeric.to_numpy("float64")
            if (x > 0).all() and x.max() / x.min() > 100:
                ax.set_xscale("log")
        else:
            names = sorted(raw.astype(str).unique())
            x = raw.astype(str).map({n: j for j, n in enumerate(names)}).to_numpy("float64")
            x = x + rng.uniform(-0.15, 0.15, x.size)
            ax.set_xticks(range(len(names)), names, rotation=20, fontsize=7)
        for unit in units:
            mask = (rows["unit"].astype(str) == unit).to_numpy()
            if mask.any():
                ax.scatter(x[mask], y[mask], s=18, color=colour[unit], alpha=0.75, label=unit)
        bad = rows["degenerate"].to_numpy(bool) if "degenerate" in rows else np.zeros(len(rows), bool)
        if bad.any():
            ax.scatter(x[bad], y[bad], s=70, facecolors="none", edgecolors="red", linewidths=1.2,
                       label="degenerate")
        ax.set_xlabel(column[3:])
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="best")
    return figure


def _curve_column(curves: pd.DataFrame, metric: str) -> str | None:
    for name in (metric, f"val_{metric}", metric.removeprefix("val_")):
        if name in curves.columns:
            return name
    return None


def asha_plot(
    results: Sequence[ResultsObject],
    metric: str = "val_loss",
    *,
    max_t: int | None = None,
    grace_period: int | None = None,
    reduction_factor: int | None = None,
    milestones: Sequence[int] | None = None,
) -> Figure:
    """The ASHA picture: each trial's per-epoch ``metric`` (from its curves) against epoch, one panel per
    work unit; a trial's last epoch is marked (red x: stopped by the scheduler, green dot: ran to the
    end, black square: failed), and dashed lines mark the rungs: ``milestones`` (the experiment
    record's, as the scheduler decided them), else ``rungs`` of the settings when they are known."""
    units: dict[str, list[tuple[ResultsObject, str]]] = {}
    for result in results:
        column = _curve_column(result.curves, metric) if not result.curves.empty else None
        if column is not None and "epoch" in result.curves.columns:
            units.setdefault(result.identity.unit, []).append((result, column))
    n = max(len(units), 1)
    cols = min(2, n)
    figure = new_figure(6.5 * cols, 3.8 * ((n + cols - 1) // cols))
    if not units:
        empty_axes(figure.add_subplot(), f"no trial recorded {metric!r} per epoch")
        return figure
    grid = layout(figure, (n + cols - 1) // cols, cols, left=0.9, top=1.05, hspace=0.5, wspace=0.25)
    milestones = list(milestones) if milestones is not None else rungs(max_t, grace_period, reduction_factor)
    markers = {TrialStatus.STOPPED: ("x", "red"), TrialStatus.COMPLETED: ("o", "green"),
               TrialStatus.FAILED: ("s", "black"), TrialStatus.RUNNING: ("^", "orange")}
    settings = (f"grace {grace_period}, reduction {reduction_factor}, max_t {max_t}; dashed lines = rungs"
                if milestones else "ASHA settings not recorded")
    # two short lines: one line of this text is wider than a one-panel figure
    figure.suptitle(f"ASHA: {metric} per epoch ({settings})\nx = stopped early, o = ran to the end",
                    fontsize=10, x=0.01, ha="left", va="top", y=1 - 0.08 / figure.get_size_inches()[1])
    for i, (unit, members) in enumerate(sorted(units.items())):
        ax = figure.add_subplot(grid[i // cols, i % cols])
        stopped = 0
        lows, highs = [], []
        segments = []
        ends: dict[TrialStatus, list[tuple[float, float]]] = {}
        for result, column in members:
            frame = result.curves[["epoch", column]].dropna()
            if frame.empty:
                continue
            points = frame.to_numpy("float64")
            lows.append(np.nanmin(points[:, 1]))
            highs.append(np.nanmax(points[:, 1]))
            segments.append(points)
            ends.setdefault(result.status, []).append((points[-1, 0], points[-1, 1]))
            stopped += result.status is TrialStatus.STOPPED
        # one collection for all the curves: hundreds of trials draw as quickly as one
        ax.add_collection(LineCollection(segments, linewidths=0.8, alpha=0.55, colors="#1f77b4"))
        for status, xy in ends.items():
            marker, colour = markers[status]
            ax.scatter([p[0] for p in xy], [p[1] for p in xy], marker=marker, color=colour, s=28, zorder=3,
                       label=f"{status.value} ({len(xy)})")
        ax.autoscale_view()
        ax.legend(fontsize=7, loc="best")
        for milestone in milestones:
            ax.axvline(milestone, color="0.3", linestyle="--", linewidth=0.8)
        if lows and min(lows) > 0 and max(highs) / min(lows) > 100:
            ax.set_yscale("log")
        ax.set_title(f"{unit}: {len(members)} trials, {stopped} stopped early", fontsize=9, loc="left")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    return figure


def experiment_comparison(summaries: dict[str, pd.DataFrame], metric: str = "loss") -> Figure:
    """Several experiments side by side: per experiment and work unit, every trial's ``metric``
    (dots) with the best one starred."""
    frames = [s.assign(experiment=name) for name, s in summaries.items() if not s.empty]
    figure = new_figure(11, 1.8 + 0.45 * max(1, sum(f["unit"].nunique() for f in frames) if frames else 1))
    pairs = [f"{e} · {u}" for f in frames for e, u in zip(f["experiment"], f["unit"], strict=True)]
    longest = max((len(p) for p in pairs), default=10)
    width = figure.get_size_inches()[0]
    figure.subplots_adjust(left=min(0.6, (0.3 + 0.065 * longest) / width), right=0.98, top=0.88, bottom=0.2)
    ax = figure.add_subplot()
    if not frames:
        empty_axes(ax, "no experiment has results")
        return figure
    data = pd.concat(frames, ignore_index=True)
    metric = resolve_metric(metric, data)
    data = data[data[metric].notna()]
    if data.empty:
        empty_axes(ax, f"no trial has {metric}")
        return figure
    labels = sorted({f"{e} · {u}" for e, u in zip(data["experiment"], data["unit"], strict=True)})
    position = {label: i for i, label in enumerate(labels)}
    y = np.array([position[f"{e} · {u}"] for e, u in zip(data["experiment"], data["unit"], strict=True)],
                 dtype="float64")
    jitter = np.random.default_rng(0).uniform(-0.18, 0.18, y.size)
    experiments = sorted(data["experiment"].unique())
    for j, experiment in enumerate(experiments):
        mask = (data["experiment"] == experiment).to_numpy()
        ax.scatter(data[metric].to_numpy("float64")[mask], y[mask] + jitter[mask], s=16, alpha=0.7,
                   color=f"C{j % 10}", label=experiment)
    lower = lower_is_better(metric)
    for i in position.values():
        mask = y == i
        values = data[metric].to_numpy("float64")[mask]
        best = np.nanmin(values) if lower else np.nanmax(values)
        ax.scatter([best], [i], marker="*", s=160, color="gold", edgecolors="black", zorder=3)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel(f"{metric} ({'lower' if lower else 'higher'} is better; star = best)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    ax.set_title("experiments side by side", fontsize=10, loc="left")
    return figure
