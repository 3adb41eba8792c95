"""The Gryphon Data Service (GDS) into the store: once (``ingest_gds``) or as it fills (``follow``).

GDS is the MySQL / MariaDB database Gryphon fills as the exchanges trade. Two of its tables are read:

* ``trade`` (trade_id, unique_id, exchange, timestamp, time_created, exchange_trade_id, source, price,
  price_currency, volume, volume_currency) -> ``trades`` (bars are then built from them, as for any
  trades: ``MarketStore.bars``). ``size`` is ``volume``; ``trade_id`` is ``exchange_trade_id`` ("" when
  NULL); ``side`` is "" (GDS does not record it).
* ``orderbook`` (orderbook_id, unique_id, exchange, timestamp, time_created, bids, asks; bids and asks
  JSON lists of ``[price, volume, ...]`` entries) -> ``book`` snapshots in long form (entries at one
  price summed into a level, the best ``BOOK_DEPTH`` levels per side, level 0 = best, as the order-event
  rebuild stores them) and ``quotes`` (each snapshot's level 0 on both sides).

Names. The pair of a trade is its volume currency then its price currency, lower case (BTC traded in USD
-> ``btc_usd``). The exchange is GDS's name in lower case, without a trailing ``_<pair>``: Gryphon names
its exchanges ``KRAKEN_BTC_USD``, which becomes exchange ``kraken``, pair ``btc_usd``. An order book has
no currencies: its pair comes from the exchange name (``BITSTAMP_BTC_USD``), else from ``pair=``
(``--pair``), else the read stops with an error naming the row.

Validation is the file ingest's (``atlas_ray.featurestore._store._ingest``): rows of one table and one
exchange / pair become a ``Source`` and go through the same checks and counts. GDS rows carry no order
that counts (ids follow commits, not exchange time), so rows are sorted by time rather than rejected as
out of order, and a GDS row that cannot be read (no time, bids / asks that are not JSON lists of
``[price, volume]``) is rejected as ``unparseable``, never refused: a database cannot be fixed and
re-ingested like a file, and one bad row must not stop a live feed. For order books ``rows_read`` and
``unparseable`` count GDS rows (snapshots); the other counts are of level rows.

Incremental reading: only rows past the table's watermark are read, and each page of rows is written to
the store before the watermark (kept in the store, see ``_gds_watermark``) moves past it, so a run that
stops anywhere (a crash, a lost connection, Ctrl-C) continues where it stopped, missing no row and
reading none twice. A lost connection is retried (``retries`` times, for ever while following) and the
read resumes from the watermark.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import pymysql

from atlas_ray.errors import IngestError
from atlas_ray.featurestore._formats import Source
from atlas_ray.featurestore._gds._gds_url import GdsUrl, mask_url, parse_gds_url
from atlas_ray.featurestore._gds._gds_watermark import SETTLE_SECONDS, StateFile, Watermark
from atlas_ray.featurestore._schema import Resolution
from atlas_ray.featurestore._store._bars import as_resolution, closed_before
from atlas_ray.featurestore._store._ingest import (
    REJECT_REASONS,
    IngestReport,
    neighbours_of,
    prepare_source,
    validate_name,
)
from atlas_ray.featurestore._store._orderbook import BOOK_DEPTH, quotes_from_book
from atlas_ray.featurestore._store._store import MarketStore, dedupe_keys
from atlas_ray.featurestore._store._validate_rows import RowChecks

__all__ = [
    "GdsReader",
    "GdsRound",
    "TABLES",
    "follow",
    "follow_bars",
    "ingest_gds",
    "new_bars",
    "parse_gds_url",
]

logger = logging.getLogger("atlas_ray.gds")

TRADE_BATCH = 100_000
BOOK_BATCH = 200

# MySQL / MariaDB error codes that mean "the connection is gone; reconnect and carry on".
_LOST = {1053, 1927, 2006, 2013, 2014, 2055}
_CANNOT_CONNECT = 2003
_EPOCH = "'1970-01-01 00:00:00'"


@dataclass(frozen=True)
class _Table:
    name: str
    id_column: str
    required: tuple[str, ...]
    select: tuple[str, ...]


TABLES: dict[str, _Table] = {
    "trade": _Table(
        "trade",
        "trade_id",
        (
            "trade_id",
            "unique_id",
            "exchange",
            "timestamp",
            "time_created",
            "exchange_trade_id",
            "source",
            "price",
            "price_currency",
            "volume",
            "volume_currency",
        ),
        (
            "trade_id",
            "exchange",
            f"TIMESTAMPDIFF(MICROSECOND, {_EPOCH}, `timestamp`)",
            "exchange_trade_id",
            "CAST(price AS DOUBLE)",
            "price_currency",
            "CAST(volume AS DOUBLE)",
            "volume_currency",
        ),
    ),
    "orderbook": _Table(
        "orderbook",
        "orderbook_id",
        ("orderbook_id", "unique_id", "exchange", "timestamp", "time_created", "bids", "asks"),
        ("orderbook_id", "exchange", f"TIMESTAMPDIFF(MICROSECOND, {_EPOCH}, `timestamp`)", "bids", "asks"),
    ),
}
"""The GDS tables read, in reading order; ``select`` are the expressions read from each row."""

_PAIRED_NAME = re.compile(r"^(.+?)_([a-z0-9]{2,6})_([a-z0-9]{2,6})$")


# --------------------------------------------------------------------------------------------- round
@dataclass(frozen=True)
class GdsRound:
    """What one read of the GDS tables ingested.

    ``reports`` hold one ``IngestReport`` per table and exchange / pair read (pages merged). ``trades``
    and ``quotes`` hold the validated rows read this round by ``(exchange, pair)`` (indexed by time, the
    store's columns), for a live model to run on (see ``new_bars`` and ``follow_bars``). ``skipped``
    counts trade rows without currencies (no pair to file them under); ``reconnects`` the connections
    lost and made again.
    """

    reports: tuple[IngestReport, ...] = ()
    trades: Mapping[tuple[str, str], pd.DataFrame] = field(default_factory=dict)
    quotes: Mapping[tuple[str, str], pd.DataFrame] = field(default_factory=dict)
    skipped: int = 0
    reconnects: int = 0

    @property
    def rows_read(self) -> int:
        return sum(r.rows_read for r in self.reports) + self.skipped

    @property
    def rows_written(self) -> int:
        return sum(r.rows_written for r in self.reports)


def new_bars(
    store: MarketStore,
    round: GdsRound,
    resolution: Resolution | str = Resolution.ONE_MIN,
    *,
    after: Mapping[tuple[str, str], pd.Timestamp] | None = None,
    closed_only: bool = True,
) -> dict[tuple[str, str], pd.DataFrame]:
    """The bars a round's trades touched, by ``(exchange, pair)``, read back from the store (so a bar
    holds every stored trade of its interval, not only this round's): from the bar of the round's first
    trade, or, for a series in ``after``, from the bar after the one given there.

    With ``closed_only`` the bar holding the newest stored trade is left out: it may still grow, and
    closes once a later trade arrives (pass the last bar given in ``after`` so that it then comes). A
    trade committed late (see ``_gds_watermark``) brings its bar again, updated, unless ``after`` is
    past it: key bars by their open time.
    """
    res = as_resolution(resolution)
    out: dict[tuple[str, str], pd.DataFrame] = {}
    for series, trades in round.trades.items():
        if trades.empty:
            continue
        given = after.get(series) if after is not None else None
        start = (
            given + res.offset if given is not None else pd.DatetimeIndex(trades.index).min().floor(res.freq)
        )
        bars = store.bars(series[0], series[1], res, start=start)
        if closed_only and len(bars):
            bars = bars.iloc[:-1]
        out[series] = bars
    return out


# ----------------------------------------------------------------------------------------- session
class _ConnectionLostError(Exception):
    """The connection went away mid-read (server restart, network, ``KILL``); carry on after reconnecting."""


class _Session:
    """One pymysql connection to GDS that maps errors: user mistakes to ``IngestError`` (one line, the
    password masked), a lost connection to ``_ConnectionLostError``."""

    def __init__(self, url: GdsUrl, *, reconnecting: bool) -> None:
        self.url = url
        try:
            self.conn = pymysql.connect(
                host=url.host,
                port=url.port,
                user=url.user,
                password=url.password,
                database=url.database,
                connect_timeout=10,
                read_timeout=600,
                write_timeout=600,
                autocommit=True,
                charset="utf8mb4",
            )
        except pymysql.err.OperationalError as error:
            code = _code(error)
            if reconnecting and (code in _LOST or code == _CANNOT_CONNECT):
                raise _ConnectionLostError(_message(error)) from None
            raise self._user_error(error) from None
        except (OSError, pymysql.err.InterfaceError) as error:
            if reconnecting:
                raise _ConnectionLostError(str(error)) from None
            raise IngestError(f"gds {url.masked}: cannot connect ({mask_url(str(error))})") from None

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            with self.conn.cursor() as cursor:
                cursor.execute(sql, tuple(params))
                return list(cursor.fetchall())
        except pymysql.err.OperationalError as error:
            if _code(error) in _LOST:
                raise _ConnectionLostError(_message(error)) from None
            raise self._user_error(error) from None
        except pymysql.err.ProgrammingError as error:
            raise self._user_error(error) from None
        except (OSError, pymysql.err.InterfaceError) as error:
            raise _ConnectionLostError(str(error) or type(error).__name__) from None

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a dead connection may fail in many ways
            self.conn.close()

    def _user_error(self, error: Exception) -> IngestError:
        code, where = _code(error), f"gds {self.url.masked}"
        if code == 1045:
            return IngestError(f"{where}: access denied for user {self.url.user!r} (wrong user or password)")
        if code == 1049:
            return IngestError(f"{where}: the database {self.url.database!r} does not exist")
        if code == _CANNOT_CONNECT:
            return IngestError(
                f"{where}: cannot connect to {self.url.host}:{self.url.port} ({_reason(error)})"
            )
        return IngestError(f"{where}: {_message(error)}")


def _code(error: Exception) -> int:
    return int(error.args[0]) if error.args and isinstance(error.args[0], int) else 0


def _message(error: Exception) -> str:
    text = str(error.args[1]) if len(error.args) > 1 else str(error)
    return mask_url(" ".join(text.split()))


def _reason(error: Exception) -> str:
    text = _message(error)
    found = re.search(r"\(\[Errno -?\d+\] ([^)]*)\)", text) or re.search(r"\((.*)\)\s*$", text)
    return found.group(1) if found else text


# ------------------------------------------------------------------------------------------ reader
class GdsReader:
    """Reads the GDS tables into a store, page by page, past the watermarks kept in the store.

    ``read_round()`` reads every row visible now and returns a ``GdsRound``; call it again for rows
    that arrived since (``follow`` does that in a loop). ``exchanges`` limits the read to those
    exchanges (store names, like ``kraken``); ``pair`` is the pair of order books whose exchange name
    carries none. ``retries`` bounds reconnects within one round (None: for ever, as ``follow`` does).
    ``progress`` is called with each page's reports once the page is written.
    """

    def __init__(
        self,
        store: MarketStore,
        url: GdsUrl | str | None,
        *,
        exchanges: Sequence[str] | None = None,
        pair: str | None = None,
        settle: float = SETTLE_SECONDS,
        trade_batch: int = TRADE_BATCH,
        book_batch: int = BOOK_BATCH,
        retries: int | None = 3,
        progress: Callable[[IngestReport], None] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        for name, value in (("trade_batch", trade_batch), ("book_batch", book_batch)):
            if value < 1:
                raise ValueError(f"The value of `{name}` is {value}, but must be `{name} >= 1`.")
        if settle < 0:
            raise ValueError(f"The value of `settle` is {settle}, but must be `settle >= 0`.")
        self.store = store
        self.url = url if isinstance(url, GdsUrl) else parse_gds_url(url)
        self.exchanges = (
            tuple(sorted({validate_name(e, "exchange") for e in exchanges})) if exchanges else None
        )
        self.pair = validate_name(pair, "pair") if pair else None
        self.settle = settle
        self.batches = {"trade": trade_batch, "orderbook": book_batch}
        self.retries = retries
        self.progress = progress
        self.stop = stop
        self.selection = ",".join(self.exchanges) if self.exchanges else "*"
        self.state = StateFile(store.root, self.url.key, self.url.masked)
        self._session: _Session | None = None
        self._connected_once = False

    def __enter__(self) -> GdsReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    # ------------------------------------------------------------------ one round
    def read_round(self) -> GdsRound:
        """Read every row visible now from both tables (reconnecting on a lost connection)."""
        pages: list[_Page] = []
        reconnects = 0
        backoff = 0.5
        for table in TABLES.values():
            while True:
                if self.stop is not None and self.stop.is_set():
                    return _round(pages, reconnects)
                try:
                    page = self._read_page(self._connect(), table)
                except _ConnectionLostError as lost:
                    self.close()
                    reconnects += 1
                    if self.retries is not None and reconnects > self.retries:
                        raise IngestError(
                            f"gds {self.url.masked}: the connection was lost {reconnects} times while "
                            f"reading {table.name} (last: {lost}); the store holds every page read before"
                        ) from None
                    logger.warning(
                        "gds %s: connection lost (%s); resuming from the watermark in %.1f s",
                        self.url.masked,
                        lost,
                        backoff,
                    )
                    if self.stop is not None:
                        if self.stop.wait(backoff):
                            return _round(pages, reconnects)
                    else:
                        time.sleep(backoff)
                    backoff = min(backoff * 2, 30.0)
                    continue
                backoff = 0.5
                pages.append(page)
                if page.ids < self.batches[table.name]:
                    break
        return _round(pages, reconnects)

    def _connect(self) -> _Session:
        if self._session is None:
            self._session = _Session(self.url, reconnecting=self._connected_once)
            self._check_tables(self._session)
            self._connected_once = True
        return self._session

    def _check_tables(self, session: _Session) -> None:
        rows = session.rows(
            "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
            "AND TABLE_NAME IN ('trade', 'orderbook')",
            (self.url.database,),
        )
        columns: dict[str, set[str]] = {}
        for table, column in rows:
            columns.setdefault(str(table).lower(), set()).add(str(column).lower())
        for table in TABLES.values():
            if table.name not in columns:
                raise IngestError(
                    f"gds {self.url.masked}: the table {table.name!r} is missing; a GDS database has the "
                    f"tables {' and '.join(TABLES)}"
                )
            missing = [c for c in table.required if c not in columns[table.name]]
            if missing:
                raise IngestError(
                    f"gds {self.url.masked}: the table {table.name!r} lacks the columns {missing}; "
                    f"it must have {', '.join(table.required)}"
                )

    # ------------------------------------------------------------------- one page
    def _read_page(self, session: _Session, table: _Table) -> _Page:
        states = self.state.load()
        mark = states.get(table.name, {}).get(self.selection, Watermark())
        ids, rows = self._fetch(session, table, mark)
        if len(ids) == 0:
            settled = mark.settle(time.time(), self.settle)
            if settled != mark:
                self.state.update(table.name, self.selection, settled)
            return _Page(table.name, 0, [], {}, {}, 0)
        # No rows at all when every id of the page belongs to an exchange not chosen.
        batches: dict[tuple[str, str], Source] = {}
        skipped = 0
        if rows and table.name == "trade":
            batches, skipped = _trade_sources(rows, self.exchanges)
        elif rows:
            batches, skipped = _book_sources(rows, self.exchanges, self.pair, self.url.masked)
        prepared = []
        for (exchange, pair), source in batches.items():
            # The stored rows next to the page's: a short page at ten times the stored price is refused.
            neighbours = neighbours_of(self.store, exchange, pair, source, RowChecks())
            batch = prepare_source(source, f"gds:{table.name}", neighbours=neighbours)
            if source.kind == "book":
                book = batch.outputs["book"]
                batch = replace(batch, outputs={"book": book, "quotes": quotes_from_book(book)})
            prepared.append(((exchange, pair), batch))
        items = [
            (frame, exchange, pair, kind)
            for (exchange, pair), batch in prepared
            for kind, frame in batch.outputs.items()
        ]
        # The rows and the watermark past them under the series' locks: another writer of these series
        # (a file ingest, a reader with another exchange choice) neither loses them nor sees one without
        # the other.
        with self.store.writing((exchange, pair, kind) for _, exchange, pair, kind in items):
            counts = self.store.write_counted(items, unique=True)
            self.state.update(table.name, self.selection, mark.advance(ids, time.time(), self.settle))
        reports = []
        trades: dict[tuple[str, str], pd.DataFrame] = {}
        quotes: dict[tuple[str, str], pd.DataFrame] = {}
        for (exchange, pair), batch in prepared:
            written = {kind: counts.get((exchange, pair, kind), 0) for kind in batch.outputs}
            reports.append(batch.report(written, exchange, pair))
            if "trades" in batch.outputs:
                trades[(exchange, pair)] = batch.outputs["trades"].set_index("timestamp")
            if "quotes" in batch.outputs:
                quotes[(exchange, pair)] = batch.outputs["quotes"].set_index("timestamp")
        if self.progress is not None:
            for report in reports:
                self.progress(report)
        return _Page(table.name, len(ids), reports, trades, quotes, skipped)

    def _fetch(
        self, session: _Session, table: _Table, mark: Watermark
    ) -> tuple[np.ndarray, list[tuple[Any, ...]]]:
        """The ids of the next page (every unread id, up to the batch size) and the rows among them of
        the exchanges selected, read in one consistent snapshot."""
        where, params = mark.where(table.id_column)
        limit = self.batches[table.name]
        columns = ", ".join(table.select)
        order = f"ORDER BY {table.id_column} LIMIT {int(limit)}"
        if self.exchanges is None:
            rows = session.rows(f"SELECT {columns} FROM {table.name} WHERE {where} {order}", params)
            return np.asarray([row[0] for row in rows], dtype="int64"), rows
        chosen, chosen_params = _exchange_filter(self.exchanges)
        session.rows("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        try:
            found = session.rows(f"SELECT {table.id_column} FROM {table.name} WHERE {where} {order}", params)
            ids = np.asarray([row[0] for row in found], dtype="int64")
            rows = []
            if len(ids):
                rows = session.rows(
                    f"SELECT {columns} FROM {table.name} WHERE {where} AND {table.id_column} <= %s "
                    f"AND {chosen} ORDER BY {table.id_column}",
                    [*params, int(ids[-1]), *chosen_params],
                )
        finally:
            session.rows("COMMIT")
        return ids, rows


@dataclass(frozen=True)
class _Page:
    table: str
    ids: int
    reports: list[IngestReport]
    trades: dict[tuple[str, str], pd.DataFrame]
    quotes: dict[tuple[str, str], pd.DataFrame]
    skipped: int


def _round(pages: list[_Page], reconnects: int) -> GdsRound:
    merged: dict[tuple[str, str, str], IngestReport] = {}
    trades: dict[tuple[str, str], list[pd.DataFrame]] = {}
    quotes: dict[tuple[str, str], list[pd.DataFrame]] = {}
    for page in pages:
        for report in page.reports:
            key = (page.table, report.exchange, report.pair)
            merged[key] = _merge(merged[key], report) if key in merged else report
        for series, frame in page.trades.items():
            trades.setdefault(series, []).append(frame)
        for series, frame in page.quotes.items():
            quotes.setdefault(series, []).append(frame)
    return GdsRound(
        reports=tuple(merged.values()),
        trades={s: pd.concat(f).sort_index(kind="stable") for s, f in trades.items()},
        quotes={s: pd.concat(f).sort_index(kind="stable") for s, f in quotes.items()},
        skipped=sum(page.skipped for page in pages),
        reconnects=reconnects,
    )


def _merge(a: IngestReport, b: IngestReport) -> IngestReport:
    starts = [s for s in (a.start, b.start) if s is not None]
    ends = [e for e in (a.end, b.end) if e is not None]
    return replace(
        a,
        kinds=tuple(dict.fromkeys((*a.kinds, *b.kinds))),
        rows_read=a.rows_read + b.rows_read,
        rows_written=a.rows_written + b.rows_written,
        rejected={r: a.rejected.get(r, 0) + b.rejected.get(r, 0) for r in REJECT_REASONS},
        gaps=a.gaps + b.gaps,
        gap_ranges=a.gap_ranges + b.gap_ranges,
        written={k: a.written.get(k, 0) + b.written.get(k, 0) for k in {**a.written, **b.written}},
        start=min(starts) if starts else None,
        end=max(ends) if ends else None,
    )


def _exchange_filter(exchanges: Sequence[str]) -> tuple[str, list[str]]:
    """SQL keeping GDS rows whose exchange may map to one of ``exchanges`` (``KRAKEN`` or
    ``KRAKEN_<pair>``); the exact choice is made after mapping."""
    parts = ["LOWER(exchange) IN (" + ", ".join(["%s"] * len(exchanges)) + ")"]
    params = list(exchanges)
    for name in exchanges:
        parts.append("LOWER(exchange) LIKE %s")
        params.append(name.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%") + "\\_%")
    return "(" + " OR ".join(parts) + ")", params


# ------------------------------------------------------------------------------------- row mapping
def _times(micros: Sequence[Any]) -> pd.DatetimeIndex:
    """UTC times from microseconds since the epoch; None -> NaT."""
    values = np.asarray([0 if m is None else int(m) for m in micros], dtype="int64")
    missing = np.asarray([m is None for m in micros], dtype=bool)
    nanos = (values * 1000).view("datetime64[ns]")
    if missing.any():
        nanos = nanos.copy()
        nanos[missing] = np.datetime64("NaT")
    return pd.DatetimeIndex(nanos).tz_localize("UTC")


def _trade_sources(
    rows: list[tuple[Any, ...]], exchanges: Sequence[str] | None
) -> tuple[dict[tuple[str, str], Source], int]:
    """Trade rows (``TABLES['trade'].select``) as one ``Source`` per exchange / pair."""
    ids, names, micros, trade_ids, prices, price_ccy, volumes, volume_ccy = zip(*rows, strict=True)
    frame = pd.DataFrame(
        {
            "timestamp": _times(micros),
            "price": np.asarray([np.nan if p is None else p for p in prices], dtype="float64"),
            "size": np.asarray([np.nan if v is None else v for v in volumes], dtype="float64"),
            "side": "",
            "trade_id": ["" if t is None else str(t) for t in trade_ids],
            "line": np.asarray(ids, dtype="int64"),
        }
    )
    groups: dict[tuple[str, str, str], list[int]] = {}
    skipped = 0
    for position, key in enumerate(zip(names, volume_ccy, price_ccy, strict=True)):
        if key[1] is None or key[2] is None or not str(key[1]).strip() or not str(key[2]).strip():
            skipped += 1
            continue
        groups.setdefault((str(key[0]), str(key[1]), str(key[2])), []).append(position)
    sources: dict[tuple[str, str], list[np.ndarray]] = {}
    for (name, volume, price), positions in groups.items():
        pair = validate_name(f"{volume.strip()}_{price.strip()}", "pair")
        exchange = _exchange_name(name, pair, int(ids[positions[0]]), "trade")
        if exchanges is not None and exchange not in exchanges:
            continue
        sources.setdefault((exchange, pair), []).append(np.asarray(positions, dtype="int64"))
    out = {}
    for series, parts in sources.items():
        take = np.sort(np.concatenate(parts))
        part = frame.iloc[take].reset_index(drop=True)
        out[series] = Source(
            format="gds_trade",
            kind="trades",
            frame=part,
            rows_read=len(part),
            order="unordered",
            price_columns=("price",),
            key=dedupe_keys("trades"),
        )
    return out, skipped


def _exchange_name(name: str, pair: str, row: int, table: str) -> str:
    """GDS's exchange name in lower case, less a trailing ``_<pair>``."""
    lowered = name.strip().lower()
    suffix = f"_{pair}"
    if pair and lowered.endswith(suffix) and len(lowered) > len(suffix):
        lowered = lowered[: -len(suffix)]
    try:
        return validate_name(lowered, "exchange")
    except IngestError as error:
        raise IngestError(f"gds {table} row {row}: {error}") from None


def _book_sources(
    rows: list[tuple[Any, ...]],
    exchanges: Sequence[str] | None,
    pair: str | None,
    where: str,
    depth: int = BOOK_DEPTH,
) -> tuple[dict[tuple[str, str], Source], int]:
    """Order-book rows (``TABLES['orderbook'].select``) as one long-form ``book`` ``Source`` per
    exchange / pair."""
    by_series: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    names: dict[str, tuple[str, str]] = {}
    for row in rows:
        name = str(row[1])
        series = names.get(name)
        if series is None:
            series = _book_series(name, pair, int(row[0]), where)
            names[name] = series
        if exchanges is not None and series[0] not in exchanges:
            continue
        by_series.setdefault(series, []).append(row)
    out = {}
    for series, chosen in by_series.items():
        frame, unparseable = _book_frame(chosen, depth)
        out[series] = Source(
            format="gds_orderbook",
            kind="book",
            frame=frame,
            rows_read=len(chosen),
            order="unordered",
            price_columns=("price",),
            key=dedupe_keys("book"),
            unparseable=unparseable,
        )
    return out, 0


def _book_series(name: str, pair: str | None, row: int, where: str) -> tuple[str, str]:
    lowered = name.strip().lower()
    found = _PAIRED_NAME.match(lowered)
    if found:
        return (
            _exchange_name(found.group(1), "", row, "orderbook"),
            validate_name(f"{found.group(2)}_{found.group(3)}", "pair"),
        )
    if pair is None:
        raise IngestError(
            f"gds {where}: orderbook row {row}: the exchange {name!r} names no pair (Gryphon's names look "
            f"like BITSTAMP_BTC_USD); pass --pair for its order books"
        )
    return _exchange_name(lowered, pair, row, "orderbook"), pair


def _parse_side(text: Any) -> tuple[list[float], list[float]] | None:
    """A bids / asks JSON list of ``[price, volume, ...]`` as (prices, volumes); None if unreadable."""
    if text is None:
        return [], []
    try:
        entries = json.loads(text)
        if not isinstance(entries, list):
            return None
        prices = [float(entry[0]) for entry in entries]
        volumes = [float(entry[1]) for entry in entries]
    except (ValueError, TypeError, IndexError, KeyError):
        return None
    return prices, volumes


def _book_frame(rows: list[tuple[Any, ...]], depth: int) -> tuple[pd.DataFrame, int]:
    """Snapshots in long form: entries at one price summed, levels ranked best first per side, the best
    ``depth`` kept (entries with a NaN / non-positive price ranked after them, for validation to count)."""
    stamps = _times([row[2] for row in rows])
    snap: list[np.ndarray] = []
    side: list[np.ndarray] = []
    price: list[np.ndarray] = []
    size: list[np.ndarray] = []
    unparseable = 0
    kept_rows: list[int] = []
    for position, row in enumerate(rows):
        if pd.isna(stamps[position]):
            unparseable += 1
            continue
        bids, asks = _parse_side(row[3]), _parse_side(row[4])
        if bids is None or asks is None:
            unparseable += 1
            continue
        index = len(kept_rows)
        kept_rows.append(position)
        for code, (prices, volumes) in ((0, bids), (1, asks)):
            snap.append(np.full(len(prices), index, dtype="int64"))
            side.append(np.full(len(prices), code, dtype="int8"))
            price.append(np.asarray(prices, dtype="float64"))
            size.append(np.asarray(volumes, dtype="float64"))
    if not snap or sum(len(s) for s in snap) == 0:
        return _empty_book(), unparseable
    s_snap, s_side = np.concatenate(snap), np.concatenate(side)
    s_price, s_size = np.concatenate(price), np.concatenate(size)
    bad = ~(s_price > 0)
    rank = np.where(bad, np.inf, np.where(s_side == 0, -s_price, s_price))
    order = np.lexsort((rank, s_side, s_snap))
    s_snap, s_side, s_price, s_size, rank = (a[order] for a in (s_snap, s_side, s_price, s_size, rank))
    bad = bad[order]
    # One level per (snapshot, side, price); a bad price is a level of its own.
    starts = np.ones(len(s_snap), dtype=bool)
    starts[1:] = (
        (s_snap[1:] != s_snap[:-1]) | (s_side[1:] != s_side[:-1]) | (s_price[1:] != s_price[:-1]) | bad[1:]
    )
    first = np.flatnonzero(starts)
    l_snap, l_side, l_price, l_bad = s_snap[first], s_side[first], s_price[first], bad[first]
    l_size = np.add.reduceat(s_size, first)
    group = np.ones(len(first), dtype=bool)
    group[1:] = (l_snap[1:] != l_snap[:-1]) | (l_side[1:] != l_side[:-1])
    group_start = np.maximum.accumulate(np.where(group, np.arange(len(first)), 0))
    level = np.arange(len(first)) - group_start
    keep = (level < depth) | l_bad
    times = pd.DatetimeIndex(stamps[np.asarray(kept_rows, dtype="int64")])
    lines = np.asarray([rows[p][0] for p in kept_rows], dtype="int64")
    frame = pd.DataFrame(
        {
            "timestamp": times[l_snap[keep]],
            "side": np.where(l_side[keep] == 0, "bid", "ask").astype(object),
            "level": level[keep].astype("int64"),
            "price": l_price[keep],
            "size": l_size[keep],
            "line": lines[l_snap[keep]],
        }
    )
    frame["side"] = frame["side"].astype("str")
    return frame, unparseable


def _empty_book() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "timestamp": pd.DatetimeIndex([], tz="UTC"),
            "side": pd.Series([], dtype="str"),
            "level": pd.Series([], dtype="int64"),
            "price": pd.Series([], dtype="float64"),
            "size": pd.Series([], dtype="float64"),
            "line": pd.Series([], dtype="int64"),
        }
    )


# ------------------------------------------------------------------------------------ entry points
def ingest_gds(
    store: MarketStore,
    url: GdsUrl | str | None,
    *,
    exchanges: Sequence[str] | None = None,
    pair: str | None = None,
    settle: float = SETTLE_SECONDS,
    trade_batch: int = TRADE_BATCH,
    book_batch: int = BOOK_BATCH,
    retries: int = 3,
    progress: Callable[[IngestReport], None] | None = None,
) -> GdsRound:
    """Read every GDS row past the watermarks into ``store`` once; see the module docstring."""
    with GdsReader(
        store,
        url,
        exchanges=exchanges,
        pair=pair,
        settle=settle,
        trade_batch=trade_batch,
        book_batch=book_batch,
        retries=retries,
        progress=progress,
    ) as reader:
        return reader.read_round()


def follow(
    store: MarketStore,
    url: GdsUrl | str | None,
    *,
    interval: float = 5.0,
    exchanges: Sequence[str] | None = None,
    pair: str | None = None,
    settle: float = SETTLE_SECONDS,
    trade_batch: int = TRADE_BATCH,
    book_batch: int = BOOK_BATCH,
    stop: threading.Event | None = None,
    progress: Callable[[IngestReport], None] | None = None,
) -> Iterator[GdsRound]:
    """Keep reading GDS into ``store`` as it fills: a round (``GdsRound``) every ``interval`` seconds,
    yielded even when empty, until ``stop`` is set or the generator is closed. A lost connection is
    retried for ever (back-off up to 30 s) and the read resumes from the watermark; the first
    connection must succeed (a wrong URL or password is an ``IngestError`` at once)."""
    if interval <= 0:
        raise ValueError(f"The value of `interval` is {interval}, but must be `interval > 0`.")
    with GdsReader(
        store,
        url,
        exchanges=exchanges,
        pair=pair,
        settle=settle,
        trade_batch=trade_batch,
        book_batch=book_batch,
        retries=None,
        progress=progress,
        stop=stop,
    ) as reader:
        while True:
            started = time.monotonic()
            yield reader.read_round()
            if stop is not None and stop.is_set():
                return
            wait = max(0.0, interval - (time.monotonic() - started))
            if stop is not None:
                if stop.wait(wait):
                    return
            else:
                time.sleep(wait)


def follow_bars(
    store: MarketStore,
    url: GdsUrl | str | None,
    *,
    resolution: Resolution | str = Resolution.ONE_MIN,
    interval: float = 5.0,
    exchanges: Sequence[str] | None = None,
    pair: str | None = None,
    stop: threading.Event | None = None,
    after: Mapping[tuple[str, str], pd.Timestamp] | None = None,
    grace: pd.Timedelta | None = None,
) -> Iterator[dict[tuple[str, str], pd.DataFrame]]:
    """``follow`` for a live model: after each round, the bars at ``resolution`` that closed since the
    last round, by ``(exchange, pair)`` (an empty dict when none did), each bar once, read back from the
    store (every stored trade of its interval, as an offline build reads it).

    A bar closes when a trade at or after its end is stored (``closed_before``; with ``grace`` also when
    the wall clock is ``grace`` past its end). A trade committed late into a bar already given updates
    the store (features read it from there) but does not give the bar again.

    Where to start, per series: after the bar ``after`` gives for it (the last bar handed over before a
    restart: the bars after it come whether their trades were read in this run or before, so the bar
    open at a crash, its first trades read already, comes once it closes); else at the bar of the first
    trade read."""
    res = as_resolution(resolution)
    following: dict[tuple[str, str], pd.Timestamp] = {
        series: pd.Timestamp(stamp).floor(res.freq) + res.offset for series, stamp in (after or {}).items()
    }
    newest: dict[tuple[str, str], pd.Timestamp | None] = {}
    for round in follow(store, url, interval=interval, exchanges=exchanges, pair=pair, stop=stop):
        for series, trades in round.trades.items():
            if trades.empty:
                continue
            last = pd.DatetimeIndex(trades.index).max()
            if series not in newest:
                newest[series] = _newest_trade(store, series)
            held = newest[series]
            newest[series] = last if held is None else max(held, last)
            following.setdefault(series, pd.DatetimeIndex(trades.index).min().floor(res.freq))
        now = pd.Timestamp.now(tz="UTC") if grace is not None else None
        out: dict[tuple[str, str], pd.DataFrame] = {}
        for series, start in following.items():
            if series not in newest:
                newest[series] = _newest_trade(store, series)
            if newest[series] is None:
                continue  # no trade of it stored yet: nothing to give, whatever the clock says
            closed = closed_before(newest[series], "trades", res, now=now, grace=grace)
            if closed is None or closed <= start:
                continue
            bars = store.bars(series[0], series[1], res, start=start, end=closed)
            following[series] = closed
            if len(bars):
                out[series] = bars
        yield out


def _newest_trade(store: MarketStore, series: tuple[str, str]) -> pd.Timestamp | None:
    """The time of the newest trade of ``series`` in the store (None: none stored)."""
    try:
        return store.time_range(series[0], series[1], "trades")[1]
    except KeyError:
        return None
