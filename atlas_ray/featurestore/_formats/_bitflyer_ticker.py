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

from atlas_ray.featurestore._formats._columns import (
    FORMAT_FIELDS,
    describe_missing,
    header_names,
    match_fields,
)
from atlas_ray.featurestore._formats._common import (
    Source,
    file_error,
    header_lines,
    numbers,
    open_bytes,
    read_csv_table,
    timestamps_from_strings,
)
from atlas_ray.featurestore._formats._market_columns import FRAME_COLUMNS, LABEL_TYPE, market_labels

__all__ = ["FORMAT", "looks_like_bitflyer_ticker", "read_bitflyer_ticker"]

FORMAT = "bitflyer_ticker"
_FIELDS = FORMAT_FIELDS[FORMAT]
_OURS = {
    "bid_price": "best_bid",
    "bid_size": "best_bid_size",
    "ask_price": "best_ask",
    "ask_size": "best_ask_size",
}


def looks_like_bitflyer_ticker(header: list[str]) -> bool:
    return not match_fields(header, _FIELDS)[1]


def read_bitflyer_ticker(path: Path, name: str) -> Source:
    """Parse ticker rows into quotes: timestamp (UTC), bid_price, bid_size, ask_price, ask_size, line."""
    data = open_bytes(path)
    if not data.strip():
        raise file_error(name, "the file is empty")
    header = header_names(data.split(b"\n", 1)[0].decode("utf-8", "replace").strip())
    found, missing = match_fields(header, _FIELDS)
    if missing:
        raise file_error(
            name,
            f"lacks the columns {describe_missing(missing)}; a bitFlyer ticker needs "
            f"{', '.join(f.name for f in _FIELDS if f.required)} (it has {', '.join(header)})",
        )
    wanted = [found[f.name] for f in _FIELDS if f.required]
    markets = {part: found[part] for part in FRAME_COLUMNS if part in found}
    types = {**{c: pa.string() for c in wanted}, **dict.fromkeys(markets.values(), LABEL_TYPE)}
    table = read_csv_table(data, name=name, types=types, include=list(types))
    table = table.rename_columns([{v: k for k, v in found.items()}[c] for c in table.column_names])
    if table.num_rows == 0:
        raise file_error(name, "the file holds no rows")
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
