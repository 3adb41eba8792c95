"""Drawing a built featureset (``plot_frame``) and summarising its coverage (``coverage_of``).

Figures are made with ``matplotlib.figure.Figure`` and the Agg canvas directly, never through pyplot,
so they render headless and leave no global state behind.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["coverage_of", "plot_frame"]


def plot_frame(frame: pd.DataFrame, *, subplots: bool = True) -> Figure:
    """One panel per column sharing the time axis (``subplots``), or every column z-scored on one axis."""
    columns = list(frame.columns)
    n = max(1, len(columns))
    if subplots:
        figure = Figure(figsize=(11, 1.6 * n + 0.8), layout="constrained")
        axes = figure.subplots(n, 1, sharex=True, squeeze=False)[:, 0]
        for ax, name in zip(axes, columns, strict=False):
            ax.plot(frame.index, frame[name].to_numpy(), linewidth=0.7)
            ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=7)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
        axes[-1].set_xlabel("time (UTC)")
    else:
        figure = Figure(figsize=(11, 5), layout="constrained")
        ax = figure.subplots()
        for name in columns:
            values = frame[name].to_numpy(dtype="float64")
            std = np.nanstd(values)
            ax.plot(
                frame.index,
                (values - np.nanmean(values)) / (std if std > 0 else 1.0),
                linewidth=0.7,
                label=name,
            )
        ax.set_ylabel("z-score")
        ax.set_xlabel("time (UTC)")
        ax.legend(fontsize=6, loc="upper left")
        ax.grid(alpha=0.3)
    if len(frame.index):
        figure.suptitle(
            f"{frame.index[0].isoformat()} .. {frame.index[-1].isoformat()}, {len(frame)} rows", fontsize=9
        )
    FigureCanvasAgg(figure)
    return figure


def coverage_of(raw: pd.DataFrame) -> pd.DataFrame:
    """Per column of an un-dropped frame: ``first_valid``, ``last_valid``, ``nan_share``, ``gaps``.

    ``nan_share``: share of the range's rows holding NaN before any row is dropped. ``gaps``: runs of
    NaN between the first and last valid row (gaps longer than the fill limit).
    """
    rows = []
    for name in raw.columns:
        values = raw[name].to_numpy(dtype="float64")
        valid = ~np.isnan(values)
        positions = np.flatnonzero(valid)
        if len(positions):
            inner = ~valid[positions[0] : positions[-1] + 1]
            gaps = int(np.count_nonzero(inner[1:] & ~inner[:-1]) + (1 if inner[0] else 0))
            first, last = raw.index[positions[0]], raw.index[positions[-1]]
        else:
            gaps, first, last = 0, pd.NaT, pd.NaT
        rows.append(
            {
                "feature": name,
                "first_valid": first,
                "last_valid": last,
                "nan_share": float(1.0 - valid.mean()) if len(values) else 1.0,
                "gaps": gaps,
            }
        )
    out = pd.DataFrame(rows).set_index("feature")
    out["first_valid"] = pd.to_datetime(out["first_valid"], utc=True)
    out["last_valid"] = pd.to_datetime(out["last_valid"], utc=True)
    return out
