"""Windows of ``N`` consecutive rows for sequence models (LSTM, GRU, Conv1D).

A window ending at row ``j`` holds rows ``j - N + 1 .. j`` and predicts from its last row, so its index
is row ``j``'s time. A window is kept only when its rows are consecutive bars (each timestamp exactly
one resolution after the previous one: no data gap, no row dropped for NaN) and all lie on one UTC
day (a window never spans midnight UTC).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from atlas_ray.errors import FeatureError

__all__ = ["check_window", "cut_windows", "window_ends"]


def check_window(window: int | None) -> None:
    if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 1):
        raise FeatureError(
            f"The value of `window` is {window!r}, but must be `None` or an integer `window >= 1`."
        )


def window_ends(index: pd.DatetimeIndex, window: int, step: pd.Timedelta) -> np.ndarray:
    """Positions ``j`` (int64) of ``index`` whose window ``j - window + 1 .. j`` is valid.

    Valid: ``window`` consecutive bars ``step`` apart, all on one UTC day.
    """
    check_window(window)
    n = len(index)
    if n < window:
        return np.zeros(0, dtype="int64")
    stamps = index.as_unit("ns").asi8
    day_ns = 86_400 * 1_000_000_000
    days = stamps // day_ns
    # breaks[k] is True when row k does not continue row k - 1 (a gap or a new day).
    breaks = np.ones(n, dtype=bool)
    breaks[1:] = (np.diff(stamps) != int(step.value)) | (np.diff(days) != 0)
    # run_start[k]: position where the unbroken run holding row k began.
    run_start = np.maximum.accumulate(np.where(breaks, np.arange(n), 0))
    ends = np.arange(window - 1, n, dtype="int64")
    return ends[ends - run_start[ends] + 1 >= window]


def cut_windows(values: np.ndarray, ends: np.ndarray, window: int) -> np.ndarray:
    """``values[(rows, features)]`` cut into ``(len(ends), window, features)`` windows ending at ``ends``."""
    if len(ends) == 0:
        return np.zeros((0, window, values.shape[1]), dtype=values.dtype)
    view = np.lib.stride_tricks.sliding_window_view(values, window, axis=0)  # (n - w + 1, features, w)
    return np.ascontiguousarray(view[ends - window + 1].transpose(0, 2, 1))
