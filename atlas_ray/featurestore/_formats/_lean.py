"""QuantConnect LEAN crypto zips at every resolution (formats ``lean_trade``, ``lean_quote``,
``lean_tick_trade``, ``lean_tick_quote``).

Layouts, as LEAN documents and writes them (the docs' "Data Format > Crypto" pages, and
``LeanData.GenerateLine`` / ``DateFormat.TwelveCharacter`` in the LEAN source): each zip holds one
headerless CSV.

* Tick, second and minute: ``<date>_<tickType>.zip`` holding ``<date>_<ticker>_<resolution>_<tickType>.csv``;
  the first field is milliseconds since midnight UTC of the date in the name (the member's, else the
  zip's).
* Hour and daily: ``<ticker>_<tickType>.zip`` holding ``<ticker>.csv``; the first field is the time
  as ``yyyyMMdd HH:mm`` (UTC).

Rows:

* trade bars (``lean_trade``): time, open, high, low, close, volume -> ``bars_<res>`` at their own
  resolution (``bars_1s``, ``bars_1m``, ``bars_1h``, ``bars_1d``), labelled by open time; no VWAP or
  trade count (NaN / -1). ``store.bars`` aggregates them exactly into a coarser resolution.
* quote bars (``lean_quote``): time, bid open / high / low / close, last bid size, ask open / high /
  low / close, last ask size -> ``quotes``. Decision: the top of book a quote bar tells for certain is
  the one at its end, so a quote row is the bar's bid close and ask close with the last sizes, stamped
  at the bar's close time ``t + resolution`` (a quote at ``T`` is then known at ``T``, never earlier).
* trade ticks (``lean_tick_trade``): time, price, quantity (and an optional suspicious flag) ->
  ``trades`` (side and trade id unknown).
* quote ticks (``lean_tick_quote``): time, bid price, bid size, ask price, ask size (and an optional
  suspicious flag) -> ``quotes``; of several updates in one millisecond the last is the book's state.

The resolution is named by the member (``_second_``, ``_minute_``, ``_tick_``) or, for hour and daily
files, by the folder (``hour`` / ``daily``) when the path has one, else read from the rows' spacing.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from atlas_ray.featurestore._formats._bar_frame import bar_frame, infer_resolution
from atlas_ray.featurestore._formats._common import (
    Source,
    file_error,
    header_lines,
    numbers,
    read_csv_table,
    row_error,
)
from atlas_ray.featurestore._formats._common import _strptime as strptime_times
from atlas_ray.featurestore._formats._header import open_nonempty
from atlas_ray.featurestore._schema import Resolution, bars_kind

__all__ = [
    "lean_kind_of",
    "read_lean_quote",
    "read_lean_tick_quote",
    "read_lean_tick_trade",
    "read_lean_trade",
]

_TRADE_FIELDS = ("time", "open", "high", "low", "close", "volume")
_QUOTE_FIELDS = (
    "time",
    "bid_open",
    "bid_high",
    "bid_low",
    "bid_close",
    "bid_size",
    "ask_open",
    "ask_high",
    "ask_low",
    "ask_close",
    "ask_size",
)
_TICK_TRADE_FIELDS = ("time", "price", "quantity", "suspicious")
_TICK_QUOTE_FIELDS = ("time", "bid_price", "bid_size", "ask_price", "ask_size", "suspicious")
_DAY_MS = 86_400_000
_DATE = re.compile(r"(\d{8})")
_LONG_TIME = re.compile(r"^\d{8} \d\d:\d\d$")
_LONG_FORMAT = "%Y%m%d %H:%M"


def lean_kind_of(first_line: str, member: str) -> str | None:
    """The LEAN format of a headerless CSV from its first line and the zip member's name, else None."""
    fields = first_line.strip().split(",")
    if _LONG_TIME.match(fields[0].strip()):
        return {len(_TRADE_FIELDS): "lean_trade", len(_QUOTE_FIELDS): "lean_quote"}.get(len(fields))
    try:
        values = [float(f) if f else float("nan") for f in fields]
    except ValueError:
        return None
    if not values or not (0 <= values[0] < _DAY_MS) or not _DATE.search(member):
        return None
    lowered = member.lower()
    if "_tick_" in lowered:
        if "_quote" in lowered or len(fields) == 5:
            return "lean_tick_quote" if len(fields) in (5, 6) else None
        return "lean_tick_trade" if len(fields) in (3, 4) else None
    if len(fields) == len(_TRADE_FIELDS):
        return "lean_trade"
    if len(fields) == len(_QUOTE_FIELDS):
        return "lean_quote"
    return None


def _day(path: Path, member: str | None) -> pd.Timestamp:
    for text in (member or "", path.name):
        match = _DATE.search(text)
        if match:
            try:
                return pd.Timestamp(pd.to_datetime(match.group(1), format="%Y%m%d"), tz="UTC")
            except ValueError:
                continue
    raise file_error(path.name, "names no date (YYYYMMDD); LEAN times count from midnight UTC of that date")


def _member_name(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return None
    return names[0] if len(names) == 1 else None


def _read(
    path: Path, name: str, fields: tuple[str, ...], optional: int = 0
) -> tuple[pd.DatetimeIndex, dict[str, np.ndarray], np.ndarray, bool]:
    """Times, number columns and line numbers of a LEAN CSV; the bool tells a ``yyyyMMdd HH:mm`` file.

    The last ``optional`` fields may be absent (LEAN writes the suspicious flag only where it has one).
    """
    data = open_nonempty(path, name)
    first = data.split(b"\n", 1)[0].decode("utf-8", "replace").strip().split(",")
    used = fields if len(first) == len(fields) else fields[: len(fields) - optional]
    if len(first) != len(used):
        raise file_error(
            name, f"the first row has {len(first)} fields, but this LEAN layout has {len(used)}: {used}"
        )
    long_time = bool(_LONG_TIME.match(first[0].strip()))
    types = {"time": pa.string()} if long_time else None
    table = read_csv_table(data, name=name, column_names=used, types=types)
    if table.num_rows == 0:
        raise file_error(name, "the file holds no rows")
    lines = header_lines(table.num_rows, 1)
    values = {f: numbers(table.column(f), name=name, column=f, lines=lines) for f in used if f != "time"}
    if long_time:
        text = table.column("time").combine_chunks()
        times = strptime_times(text, name=name, column="time", lines=lines, formats=(_LONG_FORMAT,))
        return pd.DatetimeIndex(times), values, lines, True
    millis = numbers(table.column("time"), name=name, column="time", lines=lines)
    bad = np.flatnonzero(np.isfinite(millis) & ((millis < 0) | (millis >= _DAY_MS)))
    if bad.size:
        position = int(bad[0])
        raise row_error(
            name,
            int(lines[position]),
            "time",
            f"{millis[position]!r} ms is not within the day (0 <= ms < 86400000)",
        )
    day = _day(path, _member_name(path))
    nanos = np.where(np.isfinite(millis), np.nan_to_num(millis), np.nan)
    times = pd.DatetimeIndex(day + pd.to_timedelta(nanos, unit="ms"))
    return times, values, lines, False


def _resolution(path: Path, name: str, times: pd.DatetimeIndex, long_time: bool) -> Resolution:
    """The bar resolution: named by the member or folder, else read from the spacing."""
    member = (_member_name(path) or path.name).lower()
    folders = [part.lower() for part in path.parts]
    if not long_time:
        if "_second_" in member:
            return Resolution.SECOND
        if "_minute_" in member:
            return Resolution.ONE_MIN
        return infer_resolution(times, name=name, default=Resolution.ONE_MIN)
    if "hour" in folders:
        return Resolution.HOUR
    if "daily" in folders:
        return Resolution.DAY
    at_midnight = bool((times.dropna().as_unit("ns").asi8 % 86_400_000_000_000 == 0).all())
    return infer_resolution(times, name=name, default=Resolution.DAY if at_midnight else Resolution.HOUR)


def read_lean_trade(path: Path, name: str) -> Source:
    """LEAN trade bars (second, minute, hour or daily) -> ``bars_<res>`` at their own resolution."""
    times, values, lines, long_time = _read(path, name, _TRADE_FIELDS)
    resolution = _resolution(path, name, times, long_time)
    return Source(
        format="lean_trade",
        kind=bars_kind(resolution),
        frame=bar_frame(times, values, lines),
        rows_read=len(lines),
        order="ascending",
        price_columns=("open", "high", "low", "close"),
        interval=resolution.offset,
    )


def read_lean_quote(path: Path, name: str) -> Source:
    """LEAN quote bars -> quotes at each bar's close time (see the module docstring)."""
    times, values, lines, long_time = _read(path, name, _QUOTE_FIELDS)
    resolution = _resolution(path, name, times, long_time)
    frame = pd.DataFrame(
        {
            "timestamp": times + resolution.offset,
            "bid_price": values["bid_close"],
            "bid_size": values["bid_size"],
            "ask_price": values["ask_close"],
            "ask_size": values["ask_size"],
            "line": lines,
        }
    )
    return Source(
        format="lean_quote",
        kind="quotes",
        frame=frame,
        rows_read=len(lines),
        order="ascending",
        price_columns=("bid_price", "ask_price"),
        interval=resolution.offset,
    )


def read_lean_tick_trade(path: Path, name: str) -> Source:
    """LEAN trade ticks -> trades (side and id unknown)."""
    times, values, lines, _ = _read(path, name, _TICK_TRADE_FIELDS, optional=1)
    frame = pd.DataFrame(
        {
            "timestamp": times,
            "price": values["price"],
            "size": values["quantity"],
            "side": "",
            "trade_id": "",
            "line": lines,
        }
    )
    return Source(
        format="lean_tick_trade",
        kind="trades",
        frame=frame,
        rows_read=len(lines),
        order="ascending",
        price_columns=("price",),
        key=("timestamp", "price", "size", "side", "trade_id"),
    )


def read_lean_tick_quote(path: Path, name: str) -> Source:
    """LEAN quote ticks -> quotes; the last update of a millisecond is the book's state then."""
    times, values, lines, _ = _read(path, name, _TICK_QUOTE_FIELDS, optional=1)
    frame = pd.DataFrame(
        {
            "timestamp": times,
            "bid_price": values["bid_price"],
            "bid_size": values["bid_size"],
            "ask_price": values["ask_price"],
            "ask_size": values["ask_size"],
            "line": lines,
        }
    )
    later = frame["timestamp"].duplicated(keep="last").to_numpy()
    return Source(
        format="lean_tick_quote",
        kind="quotes",
        frame=frame.loc[~later].reset_index(drop=True),
        rows_read=len(lines),
        order="ascending",
        price_columns=("bid_price", "ask_price"),
        conflicts=False,
    )
