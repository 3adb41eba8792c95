"""Row-by-row cross-checks that catch a vendor's mistakes (used by ``_ingest.validate``).

Each check is a small function over the rows still kept; it returns a boolean mask of the rows it
refuses (or fixes). The reasons, in the order ``validate`` applies them:

* ``bad_time``: a time before ``RowChecks.earliest`` (default 2009-01-03, the first bitcoin block) or
  more than ``RowChecks.future_slack`` (default 1 hour) after now.
* ``bad_volume``: a negative or NaN volume / size.
* ``misaligned`` (bars, checked in ``_ingest``): a bar whose open time is not on its resolution's
  grid (a 1-minute bar at 12:00:30): bars of one resolution are never written into the partition of
  another.
* ``ohlc`` (bars): the bar contradicts itself: ``low > min(open, close)`` or ``high < max(open, close)``
  (so also ``low > high``). Which field is wrong cannot be told, so the row is refused.
* volume against price (bars whose file gives both base and quote volume): the quote volume must be
  the base volume times a price inside the bar, ``low * (1 - tol) <= quote / base <= high * (1 + tol)``
  (``tol`` = ``RowChecks.volume_tolerance``, 2%; both zero is consistent). When the file's reading is
  inconsistent but the swapped reading (the two columns exchanged) is consistent, the consistent
  reading wins: **fixed** as ``swapped_volume`` (volume and VWAP recomputed). When neither reading is
  consistent the row is refused as ``volume_mismatch``.
* ``price_outlier`` (bars, trades, quotes; not order events, whose far-away limit prices are real): a
  price more than ``RowChecks.max_jump`` times (default 5) above, or that many times below, the
  centred rolling median of the reference price (bar close, trade price, quote mid) over
  ``RowChecks.median_window`` (default 101) kept rows.
* duplicates (in ``_ingest``): rows with the same key and the same values are ``duplicate`` (the
  first is kept); rows with the same key but different values are ``conflict``: which one is right
  cannot be told, so every row of that key is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = [
    "FIX_REASONS",
    "RowChecks",
    "bad_times",
    "bad_volumes",
    "contradicting_ohlc",
    "price_outliers",
    "volume_readings",
]

FIX_REASONS = ("swapped_volume",)

_BAR_PRICES = ("open", "high", "low", "close")


@dataclass(frozen=True)
class RowChecks:
    """The settings of the row checks; see the module docstring. ``now`` None means the wall clock."""

    max_jump: float = 5.0
    median_window: int = 101
    earliest: pd.Timestamp = field(default_factory=lambda: pd.Timestamp("2009-01-03", tz="UTC"))
    future_slack: pd.Timedelta = field(default_factory=lambda: pd.Timedelta(hours=1))
    volume_tolerance: float = 0.02
    now: pd.Timestamp | None = None

    def __post_init__(self) -> None:
        if not self.max_jump > 1:
            raise ValueError(f"The value of `max_jump` is {self.max_jump}, but must be `max_jump > 1`.")
        if self.median_window < 3:
            raise ValueError(
                f"The value of `median_window` is {self.median_window}, but must be `median_window >= 3`."
            )
        if not 0 <= self.volume_tolerance < 1:
            raise ValueError(
                f"The value of `volume_tolerance` is {self.volume_tolerance}, "
                "but must be `0 <= volume_tolerance < 1`."
            )
        if self.future_slack < pd.Timedelta(0):
            raise ValueError(f"The value of `future_slack` is {self.future_slack}, but must be >= 0.")

    def latest(self) -> pd.Timestamp:
        """The latest time a row may carry."""
        now = self.now if self.now is not None else pd.Timestamp.now(tz="UTC")
        return pd.Timestamp(now) + self.future_slack


def bad_times(times: pd.Series, checks: RowChecks) -> np.ndarray:
    """Rows whose time is before ``earliest`` or after now plus ``future_slack``."""
    nanos = pd.DatetimeIndex(times).as_unit("ns").asi8
    low = pd.Timestamp(checks.earliest).as_unit("ns").value
    high = checks.latest().as_unit("ns").value
    return np.asarray((nanos < low) | (nanos > high), dtype=bool)


def bad_volumes(frame: pd.DataFrame) -> np.ndarray:
    """Rows with a negative or NaN ``volume`` (bars) or ``size`` (trades, order events)."""
    bad = np.zeros(len(frame), dtype=bool)
    for column in ("volume", "size"):
        if column in frame.columns:
            values = frame[column].to_numpy(dtype="float64")
            bad |= ~(values >= 0)
    return bad


def contradicting_ohlc(frame: pd.DataFrame) -> np.ndarray:
    """Bars whose low is above the open or close, or whose high is below them."""
    if not set(_BAR_PRICES) <= set(frame.columns):
        return np.zeros(len(frame), dtype=bool)
    o, h, lo, c = (frame[col].to_numpy(dtype="float64") for col in _BAR_PRICES)
    return np.asarray((lo > np.minimum(o, c)) | (h < np.maximum(o, c)), dtype=bool)


def volume_readings(frame: pd.DataFrame, checks: RowChecks) -> tuple[np.ndarray, np.ndarray]:
    """``(swapped, mismatched)`` masks for bars with a ``quote_volume`` column (see the module doc).

    ``swapped``: the file's reading is inconsistent with the bar's prices and the swapped one is
    consistent. ``mismatched``: neither reading is consistent.
    """
    none = np.zeros(len(frame), dtype=bool)
    if "quote_volume" not in frame.columns or not set(_BAR_PRICES) <= set(frame.columns):
        return none, none
    base = frame["volume"].to_numpy(dtype="float64")
    quote = frame["quote_volume"].to_numpy(dtype="float64")
    low = frame["low"].to_numpy(dtype="float64") * (1 - checks.volume_tolerance)
    high = frame["high"].to_numpy(dtype="float64") * (1 + checks.volume_tolerance)
    known = np.isfinite(base) & np.isfinite(quote)
    both_zero = known & (base == 0) & (quote == 0)
    positive = known & (base > 0) & (quote > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        as_is = positive & (quote / base >= low) & (quote / base <= high)
        swapped = positive & (base / quote >= low) & (base / quote <= high)
    fix = swapped & ~as_is
    mismatched = known & ~both_zero & ~as_is & ~swapped
    return np.asarray(fix, dtype=bool), np.asarray(mismatched, dtype=bool)


def swap_volumes(frame: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """``frame`` with the base and quote volume of ``rows`` exchanged and their VWAP recomputed."""
    if not rows.any():
        return frame
    out = frame.copy()
    base = out["volume"].to_numpy(dtype="float64").copy()
    quote = out["quote_volume"].to_numpy(dtype="float64").copy()
    base[rows], quote[rows] = quote[rows], base[rows].copy()
    out["volume"] = base
    out["quote_volume"] = quote
    with np.errstate(divide="ignore", invalid="ignore"):
        vwap = out["vwap"].to_numpy(dtype="float64").copy()
        vwap[rows] = quote[rows] / base[rows]
    out["vwap"] = vwap
    return out


def reference_price(frame: pd.DataFrame) -> np.ndarray | None:
    """The price an outlier is measured against: bar close, trade price, quote mid (None: no check)."""
    if "close" in frame.columns:
        return np.asarray(frame["close"].to_numpy(dtype="float64"))
    if "bid_price" in frame.columns and "ask_price" in frame.columns:
        bid = frame["bid_price"].to_numpy(dtype="float64")
        ask = frame["ask_price"].to_numpy(dtype="float64")
        return np.asarray((bid + ask) / 2)
    if "price" in frame.columns:
        return np.asarray(frame["price"].to_numpy(dtype="float64"))
    return None


def price_outliers(
    frame: pd.DataFrame, price_columns: tuple[str, ...], checks: RowChecks
) -> tuple[np.ndarray, np.ndarray]:
    """``(outlier, median)``: rows with a price beyond ``max_jump`` times the rolling median, and the
    median each row was measured against."""
    reference = reference_price(frame)
    if reference is None or len(frame) == 0:
        return np.zeros(len(frame), dtype=bool), np.full(len(frame), np.nan)
    median = _rolling_median(reference, checks.median_window)
    bad = np.zeros(len(frame), dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        for column in price_columns:
            ratio = frame[column].to_numpy(dtype="float64") / median
            bad |= (ratio > checks.max_jump) | (ratio < 1 / checks.max_jump)
    return bad, median


def _rolling_median(values: np.ndarray, window: int) -> np.ndarray:
    """The centred rolling median. Long series use the median of 64-row block medians (exact enough to
    tell a price many times off the market, and far cheaper than a per-row window)."""
    if len(values) <= 20_000:
        series = pd.Series(values)
        return np.asarray(series.rolling(window, center=True, min_periods=1).median().to_numpy())
    block = 64
    count = -(-len(values) // block)
    padded = np.full(count * block, np.nan)
    padded[: len(values)] = values
    blocks = np.nanmedian(padded.reshape(count, block), axis=1)
    span = max(3, window // block) | 1
    smooth = pd.Series(blocks).rolling(span, center=True, min_periods=1).median().to_numpy()
    return np.asarray(np.repeat(smooth, block)[: len(values)])
