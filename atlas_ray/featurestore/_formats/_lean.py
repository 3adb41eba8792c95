"""QuantConnect LEAN crypto minute zips (formats ``lean_trade`` and ``lean_quote``).

Each zip (``YYYYMMDD_trade.zip`` / ``YYYYMMDD_quote.zip``) holds one headerless CSV
(``YYYYMMDD_<symbol>_minute_trade.csv``). The first field is the bar's open time in milliseconds since
midnight UTC of the date in the file name (the member's name, else the zip's).

* ``lean_trade``: time, open, high, low, close, volume -> ``bars_1m`` labelled by open time (no VWAP
  or trade count: NaN / -1).
* ``lean_quote``: time, bid open / high / low / close, last bid size, ask open / high / low / close,
  last ask size -> ``quotes``. Decision: the top of book a quote bar tells for certain is the one at
  its end, so a quote row is the bar's bid close and ask close with the last sizes, stamped at the
  bar's close time ``t + 60 s`` (a quote at ``T`` is then known at ``T``, never earlier).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from atlas_ray.featurestore._formats._bar_frame import bar_frame
from atlas_ray.featurestore._formats._common import (
    Source,
    file_error,
    header_lines,
    numbers,
    open_bytes,
    read_csv_table,
    row_error,
)

__all__ = ["lean_kind_of", "read_lean_quote", "read_lean_trade"]

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
_DAY_MS = 86_400_000
_DATE = re.compile(r"(\d{8})")


def lean_kind_of(first_line: str, member: str) -> str | None:
    """``lean_trade`` / ``lean_quote`` for a headerless minute CSV of 6 / 11 numbers, else None."""
    fields = first_line.strip().split(",")
    try:
        values = [float(f) if f else float("nan") for f in fields]
    except ValueError:
        return None
    if not values or not (0 <= values[0] < _DAY_MS) or not _DATE.search(member):
        return None
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
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return None
    return names[0] if len(names) == 1 else None


def _read(
    path: Path, name: str, fields: tuple[str, ...]
) -> tuple[pd.DatetimeIndex, dict[str, np.ndarray], np.ndarray]:
    data = open_bytes(path)
    if not data.strip():
        raise file_error(name, "the file is empty")
    table = read_csv_table(data, name=name, column_names=fields)
    if table.num_rows == 0:
        raise file_error(name, "the file holds no rows")
    lines = header_lines(table.num_rows, 1)
    values = {f: numbers(table.column(f), name=name, column=f, lines=lines) for f in fields}
    millis = values.pop("time")
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
    return times, values, lines


def read_lean_trade(path: Path, name: str) -> Source:
    """LEAN minute trade bars -> canonical ``bars_1m`` rows."""
    times, values, lines = _read(path, name, _TRADE_FIELDS)
    return Source(
        format="lean_trade",
        kind="bars_1m",
        frame=bar_frame(times, values, lines),
        rows_read=len(lines),
        order="ascending",
        price_columns=("open", "high", "low", "close"),
        interval=pd.Timedelta(minutes=1),
    )


def read_lean_quote(path: Path, name: str) -> Source:
    """LEAN minute quote bars -> quotes at each bar's close time (see the module docstring)."""
    times, values, lines = _read(path, name, _QUOTE_FIELDS)
    frame = pd.DataFrame(
        {
            "timestamp": times + pd.Timedelta(minutes=1),
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
        interval=pd.Timedelta(minutes=1),
    )
