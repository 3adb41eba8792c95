"""bitFlyer ticker (format ``bitflyer_ticker``) -> ``quotes`` (top of book about once a minute).

Gzipped CSV with quoted fields; the columns used are ``timestamp`` (the ticker's own time, +09:00,
becomes UTC; ``loaded`` is when it was fetched and is not used), ``best_bid``, ``best_bid_size``,
``best_ask``, ``best_ask_size``. Rows whose ``timestamp`` is empty (the exchange was closed for
maintenance; every field is empty) are rejected as unparseable; a repeated timestamp is a duplicate.
Rows are expected oldest first. Gaps are counted against a nominal one-minute spacing.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa

from atlas_ray.featurestore._formats._columns import MARKET_FIELDS, Field
from atlas_ray.featurestore._formats._common import Source, header_lines, numbers, timestamps_from_strings
from atlas_ray.featurestore._formats._header import Header, read_header_csv
from atlas_ray.featurestore._formats._market_columns import FRAME_COLUMNS, LABEL_TYPE, market_labels

__all__ = ["FORMAT", "HEADER", "looks_like_bitflyer_ticker", "read_bitflyer_ticker"]

FORMAT = "bitflyer_ticker"
HEADER = Header(
    format=FORMAT,
    fields=(
        Field("timestamp", ("ticker_time", "time")),
        Field("best_bid", ("bid", "bid_price")),
        Field("best_bid_size", ("bid_size", "bid_qty")),
        Field("best_ask", ("ask", "ask_price")),
        Field("best_ask_size", ("ask_size", "ask_qty")),
        *MARKET_FIELDS,
    ),
    needs="a bitFlyer ticker needs",
)
_OURS = {
    "bid_price": "best_bid",
    "bid_size": "best_bid_size",
    "ask_price": "best_ask",
    "ask_size": "best_ask_size",
}


def looks_like_bitflyer_ticker(header: list[str]) -> bool:
    return HEADER.accepts(header)


def read_bitflyer_ticker(path: Path, name: str) -> Source:
    """Parse ticker rows into quotes: timestamp (UTC), bid_price, bid_size, ask_price, ask_size, line."""
    types = {**dict.fromkeys(HEADER.required, pa.string()), **dict.fromkeys(FRAME_COLUMNS, LABEL_TYPE)}
    table, found = read_header_csv(path, name, HEADER, types)
    markets = {part: found[part] for part in FRAME_COLUMNS if part in found}
    lines = header_lines(table.num_rows, 2)
    frame = pd.DataFrame(
        {
            "timestamp": timestamps_from_strings(
                table.column("timestamp"), name=name, column="timestamp", lines=lines
            ),
            **{
                ours: numbers(table.column(theirs), name=name, column=theirs, lines=lines)
                for ours, theirs in _OURS.items()
            },
            "line": lines,
            **market_labels(table, {part: part for part in markets}),
        }
    )
    return Source(
        format=FORMAT,
        kind="quotes",
        frame=frame,
        rows_read=table.num_rows,
        order="ascending",
        price_columns=("bid_price", "ask_price"),
        interval=pd.Timedelta(minutes=1),
        market_columns=markets,
    )
