"""Exchange minute klines / candles (format ``minute_bars``), parquet or CSV -> ``bars_<res>``.

Layouts (as in ``minute_bars_2023-03``; column names are matched case-insensitively):

* Coinbase candles: ``start`` (epoch seconds, may be a string), low, high, open, close, volume. No VWAP
  or trade count (stored as NaN / -1).
* Kraken OHLC: open, high, low, close, volume, trades (and ``vwap`` when present).
* Binance klines, the 12 fields ``open_time, open, high, low, close, volume, close_time, quote_volume,
  trades, taker_buy_base, taker_buy_quote, ignore`` (some as strings; also headerless, as Binance's
  public CSV files are). VWAP = quote_volume / volume (NaN when the volume is 0).

The time is the parquet index / column ``timestamp`` when present, else the first of ``open_time``,
``start``, ``time``, ``date``, ``datetime`` (other names: ``HEADER``): epoch numbers
(unit read from the magnitude)
or time strings (an offset is honoured; naive times are UTC). The resolution is the file's most common
step (1m for the files here). Rows are expected oldest first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from atlas_ray.featurestore._formats._bar_frame import bar_frame, infer_resolution
from atlas_ray.featurestore._formats._columns import MARKET_FIELDS, Field, match_fields
from atlas_ray.featurestore._formats._common import (
    Source,
    file_error,
    header_lines,
    numbers,
    open_bytes,
    read_csv_table,
    times_from_column,
)
from atlas_ray.featurestore._formats._header import Header, match_header, rename_to_fields
from atlas_ray.featurestore._formats._market_columns import FRAME_COLUMNS, market_labels
from atlas_ray.featurestore._schema import Resolution, bars_kind

__all__ = ["BINANCE_KLINE_FIELDS", "FORMAT", "HEADER", "looks_like_minute_bars", "read_minute_bars"]

FORMAT = "minute_bars"

BINANCE_KLINE_FIELDS = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "trades",
    "taker_buy_base",
    "taker_buy_quote",
    "ignore",
)
_TIME = ("open_time", "start", "time", "date", "datetime", "t", "open_timestamp", "ts")
HEADER = Header(
    format=FORMAT,
    fields=(
        Field("timestamp", _TIME),
        Field("open", ("o", "open_price")),
        Field("high", ("h", "high_price")),
        Field("low", ("l", "low_price")),
        Field("close", ("c", "close_price")),
        Field("volume", ("v", "vol", "base_volume", "volume_base")),
        Field(
            "quote_volume",
            ("quote_asset_volume", "volume_quote", "quote_vol", "quotevolume"),
            required=False,
        ),
        Field("trades", ("number_of_trades", "num_trades", "trade_count", "tradecount", "count"), False),
        Field("vwap", ("vw", "average_price"), required=False),
        *MARKET_FIELDS,
    ),
    needs="minute bars need",
)
_REQUIRED = ("open", "high", "low", "close", "volume")


def looks_like_minute_bars(columns: list[str]) -> bool:
    """True when ``columns`` hold a time and most OHLCV fields, under any of their names (a file
    lacking one of them is still read as bars, so that the error names the missing column)."""
    found, _ = match_fields(columns, HEADER.fields)
    return "timestamp" in found and len(set(_REQUIRED) & set(found)) >= 3


def looks_like_headerless_klines(first_line: str) -> bool:
    """A Binance kline CSV without a header: 12 comma-separated numbers."""
    fields = first_line.strip().split(",")
    if len(fields) != len(BINANCE_KLINE_FIELDS):
        return False
    try:
        [float(f) for f in fields]
    except ValueError:
        return False
    return True


def read_minute_bars(path: Path, name: str) -> Source:
    """Parse a kline / candle file (parquet or CSV) into canonical bar rows."""
    if path.read_bytes()[:4] == b"PAR1":
        table = _read_parquet(path, name)
        lines = header_lines(table.num_rows, 1)
    else:
        data = open_bytes(path)
        first = data.split(b"\n", 1)[0].decode("utf-8", "replace")
        if looks_like_headerless_klines(first):
            table = read_csv_table(data, name=name, column_names=BINANCE_KLINE_FIELDS)
            lines = header_lines(table.num_rows, 1)
        else:
            table = read_csv_table(data, name=name)
            lines = header_lines(table.num_rows, 2)
    if table.num_rows == 0:
        raise file_error(name, "the file holds no rows")
    found = match_header(table.column_names, HEADER, name)
    written = dict(found)
    table = rename_to_fields(table.select(list(found.values())), found)
    time_column = "timestamp"
    timestamps = times_from_column(table.column(time_column), name=name, column=time_column, lines=lines)
    columns = {c: numbers(table.column(c), name=name, column=c, lines=lines) for c in _REQUIRED}
    if "vwap" in table.column_names:
        columns["vwap"] = numbers(table.column("vwap"), name=name, column="vwap", lines=lines)
    elif "quote_volume" in table.column_names:
        quote = numbers(table.column("quote_volume"), name=name, column="quote_volume", lines=lines)
        with np.errstate(divide="ignore", invalid="ignore"):
            columns["vwap"] = np.where(columns["volume"] > 0, quote / columns["volume"], np.nan)
        columns["quote_volume"] = quote
    if "trades" in table.column_names:
        columns["trades"] = numbers(table.column("trades"), name=name, column="trades", lines=lines)
    frame = bar_frame(timestamps, columns, lines)
    markets = {part: part for part in FRAME_COLUMNS if part in found}
    for column, labels in market_labels(table, markets).items():
        frame[column] = labels.array
    resolution = infer_resolution(timestamps, name=name, default=Resolution.ONE_MIN)
    return Source(
        format=FORMAT,
        kind=bars_kind(resolution),
        frame=frame,
        rows_read=table.num_rows,
        order="ascending",
        price_columns=("open", "high", "low", "close"),
        interval=resolution.offset,
        market_columns={part: written[part] for part in markets},
    )


def _read_parquet(path: Path, name: str) -> pa.Table:
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as error:
        raise file_error(name, f"is not a readable parquet file ({error})") from None
    # The pandas index (``timestamp`` in the exchange files) is an ordinary column in the arrow table.
    return table
