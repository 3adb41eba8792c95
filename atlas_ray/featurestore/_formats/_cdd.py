"""CryptoDataDownload CSV (format ``cdd``) -> ``bars_<res>`` (``bars_1h`` for the hourly files).

Layout: an optional first line naming the site (``https://www.CryptoDataDownload.com``), then the
header ``Date;Symbol;Open;High;Low;Close;Volume <base>;Volume <quote>`` (``;`` or ``,`` separated),
newest row first. Dates look like ``2019-03-12 12-AM`` (also ``2019-03-12 00:00:00``, or a ``Unix``
column, epoch s or ms) and are taken as UTC. The resolution is the file's most common step. Columns are
found by name, in any order; ``Volume <base>`` (the currency the symbol starts with) is the volume;
VWAP = quote volume / base volume (NaN when the volume is 0); the trade count is ``tradecount`` where
newer files have it, else unknown (-1).

A line whose bytes are not UTF-8 (a few rows of the real files carry garbage bytes inside a volume)
is rejected as unparseable; the other rows are kept.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from atlas_ray.featurestore._formats._bar_frame import bar_frame, infer_resolution
from atlas_ray.featurestore._formats._columns import Field
from atlas_ray.featurestore._formats._common import (
    Source,
    file_error,
    numbers,
    open_bytes,
    read_csv_table,
    timestamps_from_epoch,
)
from atlas_ray.featurestore._formats._common import _strptime as strptime_times
from atlas_ray.featurestore._formats._header import Header
from atlas_ray.featurestore._formats._market_columns import market_labels
from atlas_ray.featurestore._schema import Resolution, bars_kind

__all__ = ["FORMAT", "HEADER", "looks_like_cdd", "read_cdd"]

FORMAT = "cdd"
_DATE_FORMATS = ("%Y-%m-%d %I-%p", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")
_PRICES = ("open", "high", "low", "close")
HEADER = Header(
    format=FORMAT,
    fields=(
        Field("date", ("unix", "unix_timestamp")),
        Field("symbol", ("pair", "ticker")),
        Field("open"),
        Field("high"),
        Field("low"),
        Field("close"),
    ),
    needs="CryptoDataDownload bars need",
)
"""The CDD header's fields, for naming the closest format of an unknown header (``_detect``); the
reader itself finds its columns by the CDD names (a ``Volume <currency>`` per side, ``;`` or ``,``)."""


def _split_header(line: str) -> list[str]:
    delimiter = ";" if line.count(";") > line.count(",") else ","
    return [field.strip().lower() for field in line.split(delimiter)]


def looks_like_cdd(lines: list[str]) -> bool:
    """The first (or, after the site line, second) line is a CDD header: date, symbol, OHLC, volumes."""
    for line in lines[:2]:
        fields = _split_header(line)
        timed = bool({"date", "unix", "unix timestamp"} & set(fields))
        if timed and {"symbol", *_PRICES} <= set(fields) and any(f.startswith("volume") for f in fields):
            return True
    return False


def read_cdd(path: Path, name: str) -> Source:
    """Parse a CryptoDataDownload file into canonical bar rows (newest first, as in the file)."""
    data = open_bytes(path)
    raw_lines = data.split(b"\n")
    header_at = next(
        (
            i
            for i, line in enumerate(raw_lines[:2])
            if (b"date" in line.lower() or b"unix" in line.lower()) and b"open" in line.lower()
        ),
        None,
    )
    if header_at is None:
        first = raw_lines[0][:80].decode("utf-8", "replace") if raw_lines else ""
        raise file_error(
            name, f"has no CryptoDataDownload header (Date, Symbol, Open, ...); first line {first!r}"
        )
    header_text = raw_lines[header_at].decode("utf-8", "replace").strip()
    delimiter = ";" if header_text.count(";") > header_text.count(",") else ","
    good: list[bytes] = []
    numbers_of_lines: list[int] = []
    unparseable = 0
    for index in range(header_at + 1, len(raw_lines)):
        line = raw_lines[index].rstrip(b"\r")
        if not line.strip():
            continue
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            unparseable += 1
            continue
        good.append(line)
        numbers_of_lines.append(index + 1)
    if not good and not unparseable:
        raise file_error(name, "the file holds no rows")
    columns = _split_header(header_text)
    timed = [c for c in ("date", "unix", "unix timestamp") if c in columns]
    missing = (["date"] if not timed else []) + [c for c in _PRICES if c not in columns]
    volumes = [c for c in columns if c.startswith("volume")]
    if missing or not volumes:
        lacks = missing + ([] if volumes else ["volume <base>"])
        raise file_error(
            name,
            f"lacks the columns {lacks}; CryptoDataDownload bars need date, open, high, low, close, volume",
        )
    lines = np.asarray(numbers_of_lines, dtype="int64")
    table = read_csv_table(b"\n".join(good), name=name, delimiter=delimiter, column_names=columns)
    if "unix" in columns or "unix timestamp" in columns:
        unix = "unix" if "unix" in columns else "unix timestamp"
        times = timestamps_from_epoch(
            numbers(table.column(unix), name=name, column=unix, lines=lines),
            name=name,
            column=unix,
            lines=lines,
        )
    else:
        text = table.column("date").combine_chunks()
        times = strptime_times(
            text.cast("string"), name=name, column="date", lines=lines, formats=_DATE_FORMATS
        )
    values = {c: numbers(table.column(c), name=name, column=c, lines=lines) for c in _PRICES}
    base, volumes = _base_first(volumes, table)
    values["volume"] = numbers(table.column(base), name=name, column=base, lines=lines)
    if len(volumes) > 1:
        quote = numbers(table.column(volumes[1]), name=name, column=volumes[1], lines=lines)
        with np.errstate(divide="ignore", invalid="ignore"):
            values["vwap"] = np.where(values["volume"] > 0, quote / values["volume"], np.nan)
        values["quote_volume"] = quote
    trades = next((c for c in ("tradecount", "trade count", "trades") if c in columns), None)
    if trades is not None:
        values["trades"] = numbers(table.column(trades), name=name, column=trades, lines=lines)
    resolution = infer_resolution(times, name=name, default=Resolution.HOUR)
    frame = bar_frame(pd.DatetimeIndex(times), values, lines)
    markets = {"pair": "symbol"} if "symbol" in table.column_names else {}
    for column, labels in market_labels(table, markets).items():
        frame[column] = labels.array
    return Source(
        format=FORMAT,
        kind=bars_kind(resolution),
        frame=frame,
        rows_read=len(good) + unparseable,
        order="descending",
        price_columns=_PRICES,
        interval=resolution.offset,
        unparseable=unparseable,
        market_columns={part: _written(header_text, column) for part, column in markets.items()},
    )


def _written(header: str, column: str) -> str:
    """A column's name as the header writes it (``Symbol`` for ``symbol``)."""
    delimiter = ";" if header.count(";") > header.count(",") else ","
    return next((f.strip() for f in header.split(delimiter) if f.strip().lower() == column), column)


def _base_first(volumes: list[str], table: pa.Table) -> tuple[str, list[str]]:
    """The base volume column first: the one named for the currency the symbol starts with
    (``Volume BTC`` for ``BTCUSD``), else the first, as CryptoDataDownload writes them."""
    if len(volumes) < 2 or "symbol" not in table.column_names or table.num_rows == 0:
        return volumes[0], volumes
    symbol = str(table.column("symbol")[0].as_py() or "").replace("/", "").replace("-", "").lower()
    for column in volumes:
        currency = column.removeprefix("volume").strip(" _").lower()
        if currency and symbol.startswith(currency):
            return column, [column, *[c for c in volumes if c != column]]
    return volumes[0], volumes
