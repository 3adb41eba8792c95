"""The GDS tables as Gryphon creates them, and writers that fill them (for tests, benchmarks and trying
the GDS ingest on a database of your own).

``GDS_TABLES`` is Gryphon's initial migration (gryphon/data_service/migrations, ``trade`` and
``orderbook``) in MySQL DDL: times are ``DATETIME`` (whole seconds, UTC), prices and volumes
``NUMERIC(20, 10)``, bids and asks JSON text.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["GDS_TABLES", "book_rows", "create_gds_tables", "insert_books", "insert_trades", "trade_rows"]

GDS_TABLES = (
    """CREATE TABLE trade (
        trade_id INTEGER NOT NULL AUTO_INCREMENT,
        unique_id VARCHAR(64) NOT NULL,
        exchange VARCHAR(64) NOT NULL,
        `timestamp` DATETIME NOT NULL,
        time_created DATETIME NOT NULL,
        exchange_trade_id VARCHAR(64) NULL,
        source VARCHAR(64) NOT NULL,
        price NUMERIC(20, 10) NULL,
        price_currency VARCHAR(3) NULL,
        volume NUMERIC(20, 10) NULL,
        volume_currency VARCHAR(3) NULL,
        PRIMARY KEY (trade_id),
        UNIQUE KEY uniq_exchange_exchange_trade_id (exchange, exchange_trade_id),
        KEY idx_timestamp_exchange (`timestamp`, exchange)
    ) CHARACTER SET utf8mb4""",
    """CREATE TABLE orderbook (
        orderbook_id INTEGER NOT NULL AUTO_INCREMENT,
        unique_id VARCHAR(64) NOT NULL,
        exchange VARCHAR(64) NOT NULL,
        `timestamp` DATETIME NULL,
        time_created DATETIME NOT NULL,
        bids LONGTEXT NULL,
        asks LONGTEXT NULL,
        PRIMARY KEY (orderbook_id),
        KEY idx_timestamp_exchange (`timestamp`, exchange)
    ) CHARACTER SET utf8mb4""",
)

_TRADE_INSERT = (
    "INSERT INTO trade (unique_id, exchange, `timestamp`, time_created, exchange_trade_id, source, price, "
    "price_currency, volume, volume_currency) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
_BOOK_INSERT = (
    "INSERT INTO orderbook (unique_id, exchange, `timestamp`, time_created, bids, asks) "
    "VALUES (%s, %s, %s, %s, %s, %s)"
)


def create_gds_tables(connection: Any) -> None:
    """Create ``trade`` and ``orderbook`` in the connection's database."""
    with connection.cursor() as cursor:
        for statement in GDS_TABLES:
            cursor.execute(statement)


def trade_rows(
    trades: pd.DataFrame, *, exchange: str, volume_currency: str, price_currency: str
) -> list[tuple[Any, ...]]:
    """GDS ``trade`` rows from store-shaped trades (timestamp column or index, price, size, trade_id)."""
    frame = trades.reset_index() if "timestamp" not in trades.columns else trades
    times = pd.DatetimeIndex(frame["timestamp"]).tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S")
    return [
        (
            uuid.uuid4().hex,
            exchange,
            t,
            t,
            trade_id or None,
            "EXCHANGE",
            repr(p),
            price_currency,
            repr(s),
            volume_currency,
        )
        for t, trade_id, p, s in zip(
            times,
            frame["trade_id"].astype(str),
            frame["price"].to_numpy(dtype="float64").tolist(),
            frame["size"].to_numpy(dtype="float64").tolist(),
            strict=True,
        )
    ]


def book_rows(book: pd.DataFrame, *, exchange: str) -> list[tuple[Any, ...]]:
    """GDS ``orderbook`` rows (one per snapshot, entries ``[price, volume, ""]`` as Gryphon's pollers
    write them) from long-form snapshots (timestamp, side, level, price, size)."""
    frame = book.reset_index() if "timestamp" not in book.columns else book
    frame = frame.assign(
        text=pd.DatetimeIndex(frame["timestamp"]).tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S")
    )
    rows = []
    for text, snapshot in frame.sort_values(["timestamp", "side", "level"]).groupby("text", sort=True):
        sides = {}
        for side in ("bid", "ask"):
            part = snapshot.loc[snapshot["side"] == side].sort_values("level")
            entries = zip(part["price"].tolist(), part["size"].tolist(), strict=True)
            sides[side] = json.dumps([[repr(p), repr(s), ""] for p, s in entries])
        rows.append((uuid.uuid4().hex, exchange, str(text), str(text), sides["bid"], sides["ask"]))
    return rows


def insert_trades(connection: Any, rows: Iterable[tuple[Any, ...]]) -> None:
    """Insert ``trade_rows`` and commit."""
    _insert(connection, _TRADE_INSERT, list(rows))


def insert_books(connection: Any, rows: Iterable[tuple[Any, ...]]) -> None:
    """Insert ``book_rows`` and commit."""
    _insert(connection, _BOOK_INSERT, list(rows))


def _insert(connection: Any, sql: str, rows: list[tuple[Any, ...]]) -> None:
    with connection.cursor() as cursor:
        for start in np.arange(0, len(rows), 5000).tolist():
            cursor.executemany(sql, rows[start : start + 5000])
    connection.commit()
