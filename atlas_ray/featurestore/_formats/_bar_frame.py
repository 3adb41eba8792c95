"""Turning parsed bar columns into the canonical bar frame and reading a file's bar resolution."""

from __future__ import annotations

import numpy as np
import pandas as pd

from atlas_ray.featurestore._formats._common import file_error
from atlas_ray.featurestore._schema import Resolution

__all__ = ["bar_frame", "infer_resolution"]


def bar_frame(
    timestamps: pd.DatetimeIndex,
    columns: dict[str, np.ndarray],
    lines: np.ndarray,
) -> pd.DataFrame:
    """The canonical bar rows: timestamp, open, high, low, close, volume, vwap (NaN), trades (-1), and
    ``quote_volume`` when the file gives it (for the volume-against-price check; not stored)."""
    count = len(timestamps)
    vwap = columns.get("vwap")
    trades = columns.get("trades")
    frame = pd.DataFrame(
        {
            "timestamp": timestamps,
            "open": columns["open"],
            "high": columns["high"],
            "low": columns["low"],
            "close": columns["close"],
            "volume": columns["volume"],
            "vwap": vwap if vwap is not None else np.full(count, np.nan),
            "trades": _trade_counts(trades, count),
            "line": lines,
        }
    )
    if "quote_volume" in columns:
        frame["quote_volume"] = columns["quote_volume"]
    return frame


def _trade_counts(trades: np.ndarray | None, count: int) -> np.ndarray:
    if trades is None:
        return np.full(count, -1, dtype="int64")
    values = np.asarray(trades, dtype="float64")
    return np.where(np.isfinite(values), values, -1).astype("int64")


def infer_resolution(timestamps: pd.DatetimeIndex, *, name: str, default: Resolution) -> Resolution:
    """The bar resolution of a file: its most common positive step between rows, in either order.

    A file of one bar takes ``default``. A step that is no known resolution refuses the file.
    """
    values = timestamps.dropna().as_unit("ns").asi8
    if values.size < 2:
        return default
    steps = np.abs(np.diff(values))
    steps = steps[steps > 0]
    if steps.size == 0:
        return default
    unique, counts = np.unique(steps, return_counts=True)
    step_ns = int(unique[np.argmax(counts)])
    for resolution in Resolution:
        if resolution.seconds * 1_000_000_000 == step_ns:
            return resolution
    known = ", ".join(r.short for r in Resolution)
    raise file_error(
        name,
        f"the bars are {pd.Timedelta(step_ns, unit='ns')} apart, "
        f"but the bar resolution must be one of {known}",
    )
