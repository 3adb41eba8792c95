"""Bars: built from trades, resampled from finer bars, and the store's ``bars`` read rule.

A bar is labelled by its open time ``t`` and covers ``[t, t + resolution)`` (UTC, aligned to the
epoch, so hours start at :00). Only bars that exist are returned; nothing is filled.

* From trades (``bars_from_trades``): open = first trade's price, high / low = max / min price,
  close = last trade's price (trades in stored order: by time, ties in the exchange's order),
  volume = sum of sizes, vwap = sum(price * size) / volume (NaN when the volume is 0), trades = count.
  A bar exists when at least one trade falls in it.
* From finer bars (``resample_bars``): open = first bar's open, high = max, low = min, close = last
  bar's close, volume = sum, vwap = sum(vwap * volume) / sum(volume) (NaN if any sub-bar with volume
  has no VWAP, or the volume is 0), trades = sum (-1 if any sub-bar's count is unknown).
  **Partial coarse bars are kept**: a coarse bar exists when at least one finer bar exists in its
  interval, because exchanges omit minute bars in which nothing traded, so a missing finer bar means
  "no trades", not "unknown". A range query is widened to whole coarse bars, so a bar returned is
  always built from all the finer bars the store holds for its interval. A range open at the end
  (``end`` None, or past the last time pandas can hold) reads to the newest row stored.

**Closed bars** (what a live feed may hand a model; ``bars_source`` and ``closed_before``). A bar the
store holds at its own resolution is closed. A bar built from finer bars, ``[t, t + R)`` from bars of
resolution ``f``, is closed once the store holds a finer bar of its series opened at ``t + R - f`` (its
last constituent) or later: finer bars are stored whole and in time order, so nothing can join it. A
bar built from trades is closed once a trade of its series at ``t + R`` or later is stored. Until then
it is *forming*: ``read_bars`` returns it (partial) for a range reaching into it, and a feed holds it
back, so a coarse bar is handed over once, whole, equal to the bar an offline build reads. A feed may
also close bars by the wall clock (``closed_before(..., now=, grace=)``): every bar whose end is at least
``grace`` before ``now``, for an exchange that stores nothing in a quiet minute.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from atlas_ray.errors import MissingDataError
from atlas_ray.featurestore._schema import BAR_COLUMNS, Resolution, bars_kind

if TYPE_CHECKING:
    from atlas_ray.featurestore._store._source import MarketSource

__all__ = ["as_resolution", "bars_from_trades", "bars_source", "closed_before", "read_bars", "resample_bars"]

_ALIASES: dict[str, Resolution] = {}
for _resolution in Resolution:
    _ALIASES[_resolution.value] = _resolution
    _ALIASES[_resolution.short] = _resolution
    _ALIASES[_resolution.freq] = _resolution
    _ALIASES[bars_kind(_resolution)] = _resolution
_ALIASES["60min"] = Resolution.HOUR
_ALIASES["1min"] = Resolution.ONE_MIN


def as_resolution(value: Resolution | str) -> Resolution:
    """A ``Resolution`` from itself or a name: ``"one_min"``, ``"1m"``, ``"1min"``, ``"bars_1m"``..."""
    if isinstance(value, Resolution):
        return value
    found = _ALIASES.get(str(value).strip().lower())
    if found is None:
        known = ", ".join(f"{r.short} / {r.value}" for r in Resolution)
        raise ValueError(f"The value of `resolution` is {value!r}, but must be one of {known}.")
    return found


def _empty_bars() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="int64" if c == "trades" else "float64") for c in BAR_COLUMNS})
    frame.index = pd.DatetimeIndex([], tz="UTC", name="timestamp")
    return frame


def _time_index(frame: pd.DataFrame) -> pd.DatetimeIndex:
    if "timestamp" in frame.columns:
        index = pd.DatetimeIndex(frame["timestamp"])
    else:
        index = pd.DatetimeIndex(frame.index)
    return index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")


def bars_from_trades(trades: pd.DataFrame, resolution: Resolution | str) -> pd.DataFrame:
    """OHLCV + VWAP + trade-count bars from trades (a ``timestamp`` index or column; price, size)."""
    res = as_resolution(resolution)
    if len(trades) == 0:
        return _empty_bars()
    times = _time_index(trades)
    price = trades["price"].to_numpy(dtype="float64")
    size = trades["size"].to_numpy(dtype="float64")
    bucket = times.floor(res.freq)
    work = pd.DataFrame({"price": price, "size": size, "pv": price * size}, index=bucket)
    grouped = work.groupby(level=0, sort=True)
    volume = grouped["size"].sum()
    turnover = grouped["pv"].sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        vwap = np.where(volume.to_numpy() > 0, turnover.to_numpy() / volume.to_numpy(), np.nan)
    out = pd.DataFrame(
        {
            "open": grouped["price"].first(),
            "high": grouped["price"].max(),
            "low": grouped["price"].min(),
            "close": grouped["price"].last(),
            "volume": volume,
            "vwap": vwap,
            "trades": grouped.size().astype("int64"),
        }
    )
    out.index = pd.DatetimeIndex(out.index, name="timestamp")
    return out


def resample_bars(bars: pd.DataFrame, resolution: Resolution | str) -> pd.DataFrame:
    """Finer bars (indexed by open time, ``BAR_COLUMNS``) aggregated into coarser ``resolution`` bars."""
    res = as_resolution(resolution)
    if len(bars) == 0:
        return _empty_bars()
    times = _time_index(bars)
    volume = bars["volume"].to_numpy(dtype="float64")
    vwap = bars["vwap"].to_numpy(dtype="float64")
    trades = bars["trades"].to_numpy(dtype="int64")
    traded = volume > 0
    work = pd.DataFrame(
        {
            "open": bars["open"].to_numpy(dtype="float64"),
            "high": bars["high"].to_numpy(dtype="float64"),
            "low": bars["low"].to_numpy(dtype="float64"),
            "close": bars["close"].to_numpy(dtype="float64"),
            "volume": volume,
            "pv": np.where(traded, np.nan_to_num(vwap) * volume, 0.0),
            "vwap_unknown": traded & np.isnan(vwap),
            "trades": np.where(trades >= 0, trades, 0),
            "trades_unknown": trades < 0,
        },
        index=times.floor(res.freq),
    )
    grouped = work.groupby(level=0, sort=True)
    total = grouped["volume"].sum().to_numpy()
    turnover = grouped["pv"].sum().to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        known = (total > 0) & ~grouped["vwap_unknown"].any().to_numpy()
        coarse_vwap = np.where(known, turnover / total, np.nan)
    counts = np.where(grouped["trades_unknown"].any().to_numpy(), -1, grouped["trades"].sum().to_numpy())
    out = pd.DataFrame(
        {
            "open": grouped["open"].first(),
            "high": grouped["high"].max(),
            "low": grouped["low"].min(),
            "close": grouped["close"].last(),
            "volume": grouped["volume"].sum(),
            "vwap": coarse_vwap,
            "trades": counts.astype("int64"),
        }
    )
    out.index = pd.DatetimeIndex(out.index, name="timestamp")
    return out


def _bounds(
    start: pd.Timestamp | str | None, end: pd.Timestamp | str | None, res: Resolution
) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """The finer-data range that covers whole coarse bars with ``start <= open < end`` (None: open)."""
    lo = _ceil(_utc(start), res) if start is not None else None
    hi = _ceil(_utc(end), res) if end is not None else None
    return lo, hi


def _ceil(stamp: pd.Timestamp, res: Resolution) -> pd.Timestamp | None:
    """``stamp`` rounded up to ``res``; None where that is past the last time pandas holds (2262-04-11:
    ``Timestamp.max`` as an open end)."""
    try:
        return stamp.ceil(res.freq)
    except (ValueError, OverflowError):  # OutOfBoundsDatetime is a ValueError
        return None


def bars_source(store: MarketSource, exchange: str, pair: str, resolution: Resolution | str) -> str:
    """The kind ``read_bars`` builds bars at ``resolution`` from: ``bars_<res>`` stored at it, else the
    coarsest stored finer bars that divide it, else ``trades``; ``MissingDataError`` when none is there."""
    res = as_resolution(resolution)
    kind = bars_kind(res)
    if store.has(exchange, pair, kind):
        return kind
    finer = [
        r
        for r in Resolution
        if r.seconds < res.seconds
        and res.seconds % r.seconds == 0
        and store.has(exchange, pair, bars_kind(r))
    ]
    if finer:
        return bars_kind(max(finer, key=lambda r: r.seconds))
    if store.has(exchange, pair, "trades"):
        return "trades"
    held = ", ".join(store.kinds(exchange, pair)) or "nothing"
    raise MissingDataError(
        f"no {res.short} bars for {exchange}/{pair}: the store at {store.root} holds no {kind}, no finer "
        f"bars and no trades for it (it holds: {held})"
    )


def closed_before(
    newest: pd.Timestamp | None,
    source: str,
    resolution: Resolution | str,
    *,
    now: pd.Timestamp | None = None,
    grace: pd.Timedelta | None = None,
) -> pd.Timestamp | None:
    """The open time before which every bar at ``resolution`` is closed (see the module docstring), given
    the time of the newest stored row of ``source`` (``bars_source``: the kind the bars are built from;
    ``newest`` None when it holds nothing). With ``now`` and ``grace`` also every bar that ended at least
    ``grace`` before ``now``. None: no bar is closed yet."""
    res = as_resolution(resolution)
    closed: pd.Timestamp | None = None
    if newest is not None:
        stamp = _utc(newest)
        if source == "trades":
            closed = stamp.floor(res.freq)
        else:
            closed = (stamp + as_resolution(source).offset).floor(res.freq)
    if now is not None and grace is not None:
        if grace < pd.Timedelta(0):
            raise ValueError(f"The value of `grace` is {grace}, but must be `grace >= 0`.")
        by_clock = (_utc(now) - grace).floor(res.freq)
        closed = by_clock if closed is None else max(closed, by_clock)
    return closed


def _utc(value: pd.Timestamp | str) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def read_bars(
    store: MarketSource,
    exchange: str,
    pair: str,
    resolution: Resolution | str,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
) -> pd.DataFrame:
    """The store's bars rule: stored bars at ``resolution``; else resampled from the coarsest stored
    finer resolution that divides it; else built from stored trades; else ``MissingDataError``."""
    res = as_resolution(resolution)
    source = bars_source(store, exchange, pair, res)
    if source == bars_kind(res):
        frame = store.read(exchange, pair, source, start, end, columns=BAR_COLUMNS)
        return frame[list(BAR_COLUMNS)]
    lo, hi = _bounds(start, end, res)
    if source == "trades":
        trades = store.read(exchange, pair, "trades", lo, hi, columns=["price", "size"])
        return bars_from_trades(trades, res)
    fine = store.read(exchange, pair, source, lo, hi, columns=BAR_COLUMNS)
    return resample_bars(fine, res)
