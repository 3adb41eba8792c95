"""Ingest: one market-data file -> validated canonical rows -> the store, atomically, with a report.

What happens to bad input (decided here, once):

* **Refuse the file** (``IngestError`` naming the file and, where known, the 1-based line in the file
  and the field; the store is left exactly as it was): the file cannot be read; a compressed file is
  truncated or corrupt; the file (or its data part) is empty; required columns are missing or the
  columns match no format; a ragged CSV row; a present value that is not a number or not a time
  (``'abc'`` in ``close``); a time column mixing UTC offsets, or naive with offset times; bars spaced
  at no known resolution; an unknown format name.
* **Reject the row and count it** (``IngestReport.rejected``), keeping the rest:

  - ``unparseable``: the row has no time (an empty / null timestamp, as in the bitFlyer ticker) or its
    bytes are not text (the non-UTF-8 rows of the CryptoDataDownload files);
  - ``bad_price``: a price field (bar open / high / low / close, trade price, bid / ask price, order
    price) is NaN or not positive;
  - ``duplicate``: a row whose key (bars and quotes: the time; trades: the trade id, else every field;
    order events: every field) repeats an earlier row of the file, or a row already in the store
    (re-ingesting a file adds nothing and counts every row here). The first occurrence wins;
  - ``out_of_order``: in a file ordered by time (oldest first, or newest first as in
    CryptoDataDownload), a row earlier than a row before it. Files whose order carries no meaning
    (bitFlyer executions come in newest-first API batches) are sorted instead.

  Checks run in that order, each on the rows the previous ones kept.

Everything is parsed and validated before anything is written; the write goes through
``MarketStore.write_many``, which stages every partition before replacing any.

Gaps: for kinds with a nominal spacing (bars: their resolution; minute quotes and book snapshots: one
minute) every step longer than 1.5 spacings between consecutive kept rows is a gap; ``gaps`` counts the
missing intervals (``round(step / spacing) - 1`` each) and ``gap_ranges`` lists the first and last
missing interval of each gap.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from atlas_ray.errors import IngestError
from atlas_ray.featurestore._formats import Source, read_source
from atlas_ray.featurestore._schema import COLUMNS
from atlas_ray.featurestore._store import dedupe_keys

if TYPE_CHECKING:
    from atlas_ray.featurestore._store import MarketStore

__all__ = [
    "REJECT_REASONS",
    "GapRange",
    "IngestReport",
    "ingest_file",
    "ingest_files",
    "prepare_source",
    "validate_name",
]

REJECT_REASONS = ("unparseable", "bad_price", "duplicate", "out_of_order")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")


@dataclass(frozen=True)
class GapRange:
    """A run of missing intervals: the first and last missing interval's time and how many are missing."""

    start: pd.Timestamp
    end: pd.Timestamp
    missing: int

    def __str__(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M}..{self.end:%Y-%m-%d %H:%M} ({self.missing})"


@dataclass(frozen=True)
class IngestReport:
    """What one ``MarketStore.ingest`` did. ``rows_read`` counts the file's data rows (events for order
    files); ``written`` maps each kind to the rows that were new in the store; ``rows_written`` is their
    sum; ``rejected`` maps each reason of ``REJECT_REASONS`` to a count."""

    file: str
    format: str
    exchange: str
    pair: str
    kinds: tuple[str, ...]
    rows_read: int
    rows_written: int
    rejected: Mapping[str, int]
    gaps: int
    gap_ranges: tuple[GapRange, ...] = ()
    written: Mapping[str, int] = field(default_factory=dict)
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None

    @property
    def rows_rejected(self) -> int:
        return sum(self.rejected.values())

    def __str__(self) -> str:
        rejected = ", ".join(f"{reason} {count}" for reason, count in self.rejected.items() if count)
        span = f" {self.start:%Y-%m-%d %H:%M}..{self.end:%Y-%m-%d %H:%M}" if self.start is not None else ""
        return (
            f"{self.file}: {self.format} -> {self.exchange}/{self.pair} {'+'.join(self.kinds)}{span}: "
            f"read {self.rows_read}, written {self.rows_written}, "
            f"rejected {self.rows_rejected}{f' ({rejected})' if rejected else ''}, "
            f"gaps {self.gaps} missing in {len(self.gap_ranges)} ranges"
        )


def validate_name(value: str, what: str) -> str:
    """An exchange or pair name as stored: lower case letters, digits, ``_`` and ``-``."""
    normal = str(value).strip().lower()
    if not _NAME.match(normal):
        raise IngestError(
            f"The value of `{what}` is {value!r}, but must be letters, digits, '_' or '-' (like 'btc_usd')."
        )
    return normal


def ingest_file(
    store: MarketStore, path: str | Path, *, exchange: str, pair: str, format: str | None = None
) -> IngestReport:
    """Parse, validate, derive and write one file; see the module docstring for the rules."""
    return ingest_files(store, [path], exchange=exchange, pair=pair, format=format)[0]


def ingest_files(
    store: MarketStore,
    paths: Iterable[str | Path],
    *,
    exchange: str,
    pair: str,
    format: str | None = None,
) -> list[IngestReport]:
    """Ingest several files: all are parsed and validated before any is written (a broken file refuses
    the whole call). Files of one plain kind going into new partitions are written together as one
    atomic write; otherwise each file is written atomically in turn."""
    exchange = validate_name(exchange, "exchange")
    pair = validate_name(pair, "pair")
    files = [Path(path) for path in paths]
    if len(files) > 1:
        # Decompression, CSV parsing and most validation release the GIL: files parse in parallel.
        with ThreadPoolExecutor(max_workers=min(len(files), os.cpu_count() or 1)) as pool:
            prepared = list(pool.map(lambda path: _prepare(path, format), files))
    else:
        prepared = [_prepare(path, format) for path in files]
    together = _write_together(store, prepared, exchange, pair)
    if together is not None:
        return [
            batch.report(exchange, pair, written) for batch, written in zip(prepared, together, strict=True)
        ]
    reports = []
    for batch in prepared:
        items = [(frame, exchange, pair, kind) for kind, frame in batch.outputs.items()]
        counts = store.write_counted(items, unique=True)
        written = {kind: counts.get((exchange, pair, kind), 0) for kind in batch.outputs}
        reports.append(batch.report(exchange, pair, written))
    return reports


def _write_together(
    store: MarketStore, prepared: list[_Prepared], exchange: str, pair: str
) -> list[dict[str, int]] | None:
    """Write several files of one plain kind into partitions the store does not hold yet as one
    atomic write (each partition written once, no merging); None when that does not apply.

    Rows of a later file that repeat a row of an earlier one (files of API data overlap at their
    edges) count as that later file's duplicates.
    """
    kinds = {tuple(batch.outputs) for batch in prepared}
    if len(prepared) < 2 or len(kinds) != 1:
        return None
    (kind_tuple,) = kinds
    if len(kind_tuple) != 1 or kind_tuple[0] not in COLUMNS or prepared[0].source.kind != kind_tuple[0]:
        return None
    kind = kind_tuple[0]
    frames = [batch.outputs[kind] for batch in prepared]
    owner = np.concatenate([np.full(len(frame), i, dtype="int64") for i, frame in enumerate(frames)])
    combined = pd.concat(frames, ignore_index=True)
    nanos = pd.DatetimeIndex(combined["timestamp"]).as_unit("ns").asi8
    if len(nanos) == 0:
        return None
    stored = set(store.dates(exchange, pair, kind))
    days = {
        str(pd.Timestamp(int(d) * 86_400_000_000_000).date()) for d in np.unique(nanos // 86_400_000_000_000)
    }
    if stored & days:
        return None
    # Only rows inside another file's time span can repeat a row of that file.
    spans = [
        (int(nanos[owner == i].min()), int(nanos[owner == i].max()))
        for i in range(len(frames))
        if len(frames[i])
    ]
    candidate = np.zeros(len(combined), dtype=bool)
    for i, (low, high) in enumerate(spans):
        candidate |= (owner != i) & (nanos >= low) & (nanos <= high)
    repeated = np.zeros(len(combined), dtype=bool)
    if candidate.any():
        keys = list(dedupe_keys(kind))
        repeated[candidate] = combined.loc[candidate].duplicated(subset=keys, keep="first").to_numpy()
    kept = combined.loc[~repeated]
    order = np.argsort(pd.DatetimeIndex(kept["timestamp"]).as_unit("ns").asi8, kind="stable")
    store.write_counted([(kept.iloc[order], exchange, pair, kind)], unique=True)
    counts = np.bincount(owner[~repeated], minlength=len(frames))
    return [{kind: int(count)} for count in counts]


@dataclass(frozen=True)
class _Prepared:
    source: Source
    name: str
    outputs: dict[str, pd.DataFrame]
    rejected: dict[str, int]
    kept: int
    gaps: tuple[GapRange, ...]
    span: tuple[pd.Timestamp, pd.Timestamp] | None

    def report(self, exchange: str, pair: str, written: dict[str, int]) -> IngestReport:
        rejected = dict(self.rejected)
        total = sum(written.values())
        if self.source.kind in COLUMNS:
            rejected["duplicate"] += self.kept - written.get(self.source.kind, 0)
        elif total == 0:
            rejected["duplicate"] += self.kept
        return IngestReport(
            file=self.name,
            format=self.source.format,
            exchange=exchange,
            pair=pair,
            kinds=tuple(self.outputs),
            rows_read=self.source.rows_read,
            rows_written=total,
            rejected=rejected,
            gaps=sum(g.missing for g in self.gaps),
            gap_ranges=self.gaps,
            written=written,
            start=self.span[0] if self.span else None,
            end=self.span[1] if self.span else None,
        )


def _prepare(path: Path, format: str | None) -> _Prepared:
    if not path.exists():
        raise IngestError(f"ingest: {path}: no such file")
    if path.is_dir():
        raise IngestError(f"ingest: {path}: is a folder, but must be a file")
    return prepare_source(read_source(path, format), path.name)


def prepare_source(source: Source, name: str) -> _Prepared:
    """Validate and derive rows already parsed into a ``Source`` (a file's, or rows read from a
    database) by the rules above; nothing is written. ``name`` stands for the file in the report."""
    frame, rejected = validate(source)
    outputs = derive(source, frame)
    gap_frame = outputs.get(source.kind, frame) if source.kind in COLUMNS else next(iter(outputs.values()))
    interval = source.interval
    gaps = () if interval is None else find_gaps(pd.DatetimeIndex(gap_frame["timestamp"]).unique(), interval)
    span = (frame["timestamp"].min(), frame["timestamp"].max()) if len(frame) else None
    return _Prepared(source, name, outputs, rejected, len(frame), gaps, span)


def validate(source: Source) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop and count rejected rows (see the module docstring); returns the kept rows sorted by time."""
    frame = source.frame
    if frame["timestamp"].dtype != "datetime64[ns, UTC]":
        frame = frame.assign(timestamp=pd.DatetimeIndex(frame["timestamp"]).as_unit("ns"))
    rejected = dict.fromkeys(REJECT_REASONS, 0)
    rejected["unparseable"] = source.unparseable

    keep = frame["timestamp"].notna().to_numpy().copy()
    rejected["unparseable"] += int((~keep).sum())

    bad = np.zeros(len(frame), dtype=bool)
    for column in source.price_columns:
        values = frame[column].to_numpy(dtype="float64")
        bad |= ~(values > 0)
    bad &= keep
    rejected["bad_price"] = int(bad.sum())
    keep &= ~bad

    kept = frame.loc[keep]
    duplicated = kept.duplicated(subset=list(source.key), keep="first").to_numpy()
    rejected["duplicate"] = int(duplicated.sum())
    kept = kept.loc[~duplicated]

    if source.order == "unordered":
        kept = kept.sort_values("timestamp", kind="stable")
    else:
        times = pd.DatetimeIndex(kept["timestamp"]).as_unit("ns").asi8
        if source.order == "descending":
            times = times[::-1]
        running = np.maximum.accumulate(times)
        late = np.zeros(len(times), dtype=bool)
        late[1:] = times[1:] < running[:-1]
        if source.order == "descending":
            late = late[::-1]
        rejected["out_of_order"] = int(late.sum())
        kept = kept.loc[~late]
        if source.order == "descending":
            kept = kept.iloc[::-1]
    return kept.reset_index(drop=True), rejected


def derive(source: Source, frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The frames to write, by kind: the rows themselves, or (order events) book snapshots and quotes."""
    if source.kind in COLUMNS:
        return {source.kind: frame[["timestamp", *COLUMNS[source.kind]]]}
    if source.kind == "order_events":
        from atlas_ray.featurestore._orderbook import book_snapshots, quotes_from_book

        book = book_snapshots(frame)
        return {"book": book, "quotes": quotes_from_book(book)}
    raise IngestError(f"ingest: the parsed kind {source.kind!r} has no writer")


def find_gaps(times: pd.DatetimeIndex, interval: pd.Timedelta) -> tuple[GapRange, ...]:
    """Runs of missing intervals between consecutive ``times`` (sorted) spaced ``interval`` apart."""
    if len(times) < 2:
        return ()
    values = times.sort_values().as_unit("ns").asi8
    step = int(interval.value)
    diffs = np.diff(values)
    where = np.flatnonzero(diffs > step * 1.5)
    gaps = []
    for position in where:
        missing = round(int(diffs[position]) / step) - 1
        first = pd.Timestamp(values[position] + step, tz="UTC")
        last = pd.Timestamp(values[position] + step * missing, tz="UTC")
        gaps.append(GapRange(first, last, missing))
    return tuple(gaps)
