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
  always built from all the finer bars the store holds for its interval.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from atlas_ray.errors import MissingDataError
from atlas_ray.featurestore._schema import BAR_COLUMNS, Resolution, bars_kind

if TYPE_CHECKING:
    from atlas_ray.featurestore._source import MarketSource

__all__ = ["as_resolution", "bars_from_trades", "read_bars", "resample_bars"]

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
    """The finer-data range that covers whole coarse bars with ``start <= open < end``."""
    lo = _utc(start).ceil(res.freq) if start is not None else None
    hi = _utc(end).ceil(res.freq) if end is not None else None
    return lo, hi


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
    kind = bars_kind(res)
    if store.has(exchange, pair, kind):
        frame = store.read(exchange, pair, kind, start, end, columns=BAR_COLUMNS)
        return frame[list(BAR_COLUMNS)]
    finer = [
        r
        for r in Resolution
        if r.seconds < res.seconds
        and res.seconds % r.seconds == 0
        and store.has(exchange, pair, bars_kind(r))
    ]
    lo, hi = _bounds(start, end, res)
    if finer:
        source = max(finer, key=lambda r: r.seconds)
        fine = store.read(exchange, pair, bars_kind(source), lo, hi, columns=BAR_COLUMNS)
        return resample_bars(fine, res)
    if store.has(exchange, pair, "trades"):
        trades = store.read(exchange, pair, "trades", lo, hi, columns=["price", "size"])
        return bars_from_trades(trades, res)
    held = ", ".join(store.kinds(exchange, pair)) or "nothing"
    raise MissingDataError(
        f"no {res.short} bars for {exchange}/{pair}: the store at {store.root} holds no {kind}, no finer "
        f"bars and no trades for it (it holds: {held})"
    )
