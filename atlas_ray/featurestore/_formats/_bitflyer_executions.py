"""bitFlyer executions (format ``bitflyer_executions``) -> ``trades``.

Gzipped CSV with quoted fields and the header ``domain, product_code, loaded, id, exec_date, side,
price, size, buy_child_order_acceptance_id, sell_child_order_acceptance_id`` (other exports rename the
id ``exec_id`` / ``execution_id``, add or reorder columns: matched by name, see ``_columns``).
``exec_date`` carries a
+09:00 offset and becomes UTC; ``loaded`` (when the row was fetched) is not used. The rows come in
newest-first API batches that overlap, so file order carries no meaning: rows are sorted by time, ties
by execution id, and a repeated id is a duplicate. ``side`` BUY / SELL becomes buy / sell; an empty
side (auction executions) stays "" (unknown). A row with an empty ``exec_date`` is rejected as
unparseable.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from atlas_ray.featurestore._formats._columns import MARKET_FIELDS, Field
from atlas_ray.featurestore._formats._common import (
    Source,
    header_lines,
    numbers,
    timestamps_from_strings,
)
from atlas_ray.featurestore._formats._header import Header, read_header_csv
from atlas_ray.featurestore._formats._market_columns import FRAME_COLUMNS, LABEL_TYPE

__all__ = ["FORMAT", "HEADER", "looks_like_bitflyer_executions", "read_bitflyer_executions"]

FORMAT = "bitflyer_executions"
HEADER = Header(
    format=FORMAT,
    fields=(
        Field("id", ("exec_id", "execution_id", "executionid", "trade_id", "tid")),
        Field(
            "exec_date",
            ("execution_date", "executed_at", "exec_time", "exec_timestamp", "execution_time"),
        ),
        Field("side", ("taker_side", "exec_side")),
        Field("price", ("exec_price", "execution_price")),
        Field("size", ("amount", "qty", "quantity", "exec_size")),
        *MARKET_FIELDS,
    ),
    needs="bitFlyer executions need",
)
_TYPES = {
    "price": pa.float64(),
    "size": pa.float64(),
    "id": pa.string(),
    "exec_date": pa.string(),
    "side": pa.string(),
}


def looks_like_bitflyer_executions(header: list[str]) -> bool:
    return HEADER.accepts(header)


def read_bitflyer_executions(path: Path, name: str) -> Source:
    """Parse executions into trade rows: timestamp (UTC), price, size, side, trade_id, line.

    Columns are matched by name (``HEADER``): a renamed id column (``exec_id``,
    ``execution_id``...), extra columns and any column order are read."""
    table, found = read_header_csv(path, name, HEADER, {**_TYPES, **dict.fromkeys(FRAME_COLUMNS, LABEL_TYPE)})
    markets = {part: found[part] for part in FRAME_COLUMNS if part in found}
    lines = header_lines(table.num_rows, 2)
    times = timestamps_from_strings(table.column("exec_date"), name=name, column="exec_date", lines=lines)
    price = numbers(table.column("price"), name=name, column="price", lines=lines)
    size = numbers(table.column("size"), name=name, column="size", lines=lines)
    side = pc.fill_null(pc.utf8_lower(table.column("side")), "")
    ids = pc.fill_null(table.column("id"), "")
    nanos = times.as_unit("ns").asi8
    order = pa.array(np.lexsort((_id_order(ids), nanos)))
    columns = pa.table(
        {
            "timestamp": pa.array(nanos, pa.timestamp("ns", tz="UTC"), mask=np.asarray(times.isna())),
            "price": pa.array(price),
            "size": pa.array(size),
            "side": side,
            "trade_id": ids,
            "line": pa.array(lines),
            **{FRAME_COLUMNS[part]: table.column(part) for part in markets},
        }
    ).take(order)
    frame = columns.to_pandas()
    return Source(
        format=FORMAT,
        kind="trades",
        frame=frame,
        rows_read=table.num_rows,
        order="unordered",
        price_columns=("price",),
        key=("trade_id",),
        market_columns=markets,
    )


def _id_order(ids: pa.ChunkedArray) -> np.ndarray:
    """The tie-break among rows of one time: the id as a number (bitFlyer's ids count up; an empty id
    is -1), or, when some id is not a whole number, the id's rank as text."""
    try:
        numbers = pc.cast(pc.if_else(pc.equal(ids, ""), "-1", ids), pa.int64(), safe=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        text = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
        return np.asarray(pc.rank(text, sort_keys="ascending", tiebreaker="dense").to_numpy())
    return np.asarray(numbers.to_numpy())
