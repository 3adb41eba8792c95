"""Ingest: one market-data file -> validated canonical rows -> the store, atomically, with a report.

What happens to bad input (decided here, once):

* **Refuse the file** (``IngestError`` naming the file and, where known, the 1-based line in the file
  and the field; the store is left exactly as it was): the file cannot be read; a compressed file is
  truncated or corrupt; the file (or its data part) is empty; required columns are missing or the
  columns match no format; a ragged CSV row; a present value that is not a number or not a time
  (``'abc'`` in ``close``); a time column mixing UTC offsets, or naive with offset times; bars spaced
  at no known resolution; an unknown format name.
* **Refuse a file of another market**: a file whose own market columns (bitFlyer's ``product_code``
  and ``domain``, CryptoDataDownload's ``Symbol``, ...) name another market than ``--exchange`` /
  ``--pair`` in every row; where a name is not given, the file's own is taken (rules in
  ``_file_market``). A file whose first (last) prices lie more than ``max_jump`` times off the stored
  rows just before (after) it: other units or another market (``_stored_neighbours.edge_jump``).
* **Reject the row and count it** (``IngestReport.rejected``), keeping the rest:

  - ``unparseable``: the row has no time (an empty / null timestamp, as in the bitFlyer ticker) or its
    bytes are not text (the non-UTF-8 rows of the CryptoDataDownload files);
  - ``other_market``: in a file of several markets, a row whose market column names another market
    than the one ingested;
  - ``bad_price``: a price field (bar open / high / low / close, trade price, bid / ask price, order
    price) is NaN or not positive;
  - ``duplicate``: a row whose key (bars and quotes: the time; trades: the trade id, else every field;
    order events: every field) repeats an earlier row of the file, or a row already in the store
    (re-ingesting a file adds nothing and counts every row here). The first occurrence wins;
  - ``out_of_order``: in a file ordered by time (oldest first, or newest first as in
    CryptoDataDownload), a row earlier than a row before it. Files whose order carries no meaning
    (bitFlyer executions come in newest-first API batches) are sorted instead.

  Checks run in that order, each on the rows the previous ones kept; the row cross-checks of
  ``atlas_ray.featurestore._store._validate_rows`` (``bad_time`` right after ``unparseable``; ``bad_volume``,
  ``misaligned``, ``ohlc``, ``volume_mismatch``, ``price_outlier`` after ``bad_price``; ``conflict``
  beside ``duplicate``; and the one fix, ``swapped_volume``) run among them. The full order is
  ``REJECT_REASONS``. A bar or quote whose time the store already holds with other values is a
  ``conflict`` too: the stored row stays and the file's row is not written. ``price_outlier`` measures
  a file's first and last rows against the stored rows just before and after them as well
  (``_stored_neighbours``).
* **Fix the row and count it** (``IngestReport.fixed``) where the fix is certain: base and quote volume
  columns swapped (the consistent reading wins).
* ``strict=True`` (CLI ``--strict``): the first defect of any kind (the lowest line) refuses the whole
  file instead, naming the line, the field and the reason.

Each ingest keeps its full report (counts, the checks' settings and the first lines of every defect)
as JSON beside the data: ``ROOT/exchange=<e>/pair=<p>/_reports/`` (see ``_ingest_reports``).

Everything is parsed and validated before anything is written; the check against the stored rows
(``conflict``) and the write happen under the writer locks of the series written
(``PartitionStore.writing``), and the write goes through ``PartitionStore.write_counted``, which stages
every partition before replacing any.

Gaps: for kinds with a nominal spacing (bars: their resolution; minute quotes and book snapshots: one
minute) every step longer than 1.5 spacings between consecutive kept rows is a gap; ``gaps`` counts the
missing intervals (``round(step / spacing) - 1`` each) and ``gap_ranges`` lists the first and last
missing interval of each gap.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from atlas_ray.errors import IngestError
from atlas_ray.featurestore._formats import Source, read_source
from atlas_ray.featurestore._formats._common import parsing_in_this_thread, row_error
from atlas_ray.featurestore._schema import COLUMNS, Resolution
from atlas_ray.featurestore._store._file_market import FileMarket, other_market_rows, resolve_market
from atlas_ray.featurestore._store._ingest_reports import keep_report, report_stamps
from atlas_ray.featurestore._store._partitions import arrow_rows, dedupe_keys, row_identity
from atlas_ray.featurestore._store._stored_neighbours import NONE, Neighbours, edge_jump, stored_neighbours
from atlas_ray.featurestore._store._validate_rows import (
    FIX_REASONS,
    RowChecks,
    bad_times,
    bad_volumes,
    contradicting_ohlc,
    price_outliers,
    swap_volumes,
    volume_readings,
)

if TYPE_CHECKING:
    from atlas_ray.featurestore._store._partitions import PartitionStore

__all__ = [
    "FIX_REASONS",
    "REJECT_REASONS",
    "Checked",
    "GapRange",
    "IngestReport",
    "ingest_files",
    "prepare_source",
    "validate_name",
]

REJECT_REASONS = (
    "unparseable",
    "other_market",
    "bad_time",
    "bad_price",
    "bad_volume",
    "misaligned",
    "ohlc",
    "volume_mismatch",
    "price_outlier",
    "duplicate",
    "conflict",
    "out_of_order",
)
_EXAMPLES = 20
"""Defects listed per reason in the kept report (their lines, field and value)."""
_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")
_WORKERS = os.cpu_count() or 1
"""Files parsed side by side: one per core (each parses in one thread, ``parsing_in_this_thread``)."""


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
    sum; ``rejected`` maps each reason of ``REJECT_REASONS`` to a count, ``fixed`` each reason of
    ``FIX_REASONS``; ``examples`` lists the first defects of each reason (line, field, value);
    ``report_path`` is where the full report was kept (None: not kept)."""

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
    fixed: Mapping[str, int] = field(default_factory=dict)
    examples: Mapping[str, tuple[Defect, ...]] = field(default_factory=dict)
    report_path: str | None = None
    market_note: str = ""
    """What of the market was taken from the file (``(pair from product_code BTC_JPY)``), or ""."""

    @property
    def rows_rejected(self) -> int:
        return sum(self.rejected.values())

    @property
    def rows_fixed(self) -> int:
        return sum(self.fixed.values())

    def __str__(self) -> str:
        rejected = ", ".join(
            f"{reason} {count}{self._other_markets() if reason == 'other_market' else ''}"
            for reason, count in self.rejected.items()
            if count
        )
        fixed = ", ".join(f"{reason} {count}" for reason, count in self.fixed.items() if count)
        span = f" {self.start:%Y-%m-%d %H:%M}..{self.end:%Y-%m-%d %H:%M}" if self.start is not None else ""
        return (
            f"{self.file}: {self.format} -> {self.exchange}/{self.pair}"
            f"{f' {self.market_note}' if self.market_note else ''} {'+'.join(self.kinds)}{span}: "
            f"read {self.rows_read}, written {self.rows_written}, "
            f"rejected {self.rows_rejected}{f' ({rejected})' if rejected else ''}, "
            f"fixed {self.rows_fixed}{f' ({fixed})' if fixed else ''}, "
            f"gaps {self.gaps} missing in {len(self.gap_ranges)} ranges"
        )

    def _other_markets(self) -> str:
        """`` [product_code ETH_BTC, not btc_jpy]``: which markets the ``other_market`` rows named."""
        found = self.examples.get("other_market", ())
        said = sorted({(d.field, d.value, d.rule.endswith("(the exchange ingested)")) for d in found})
        return "".join(
            f" [{column} {value}, not {self.exchange if exchange else self.pair}]"
            for column, value, exchange in said
        )


@dataclass(frozen=True)
class Defect:
    """One refused or fixed row: its line in the file, the field, the value and the rule it broke."""

    reason: str
    line: int
    field: str
    value: str
    rule: str

    def as_dict(self) -> dict[str, object]:
        return {
            "reason": self.reason,
            "line": self.line,
            "field": self.field,
            "value": self.value,
            "rule": self.rule,
        }


def duplicated(frame: pd.DataFrame, subset: list[str], keep: Literal["first", False] = "first") -> np.ndarray:
    """``frame.duplicated(subset, keep=keep)`` as a mask, with each text column replaced by integers
    equal exactly where the texts are (``_text_codes``): numeric trade ids hash as numbers, about 3x
    faster than pandas hashing the Arrow-backed text (41 ms against 134 ms for 750,000 ids)."""
    columns: dict[str, pd.Series] = {}
    for name in subset:
        column = frame[name].reset_index(drop=True)
        if isinstance(column.dtype, pd.StringDtype):
            array = pa.array(column, from_pandas=True)
            if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
                column = pd.Series(_text_codes(array))
        columns[name] = column
    if len(columns) == 1:
        (values,) = columns.values()
        if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iu":  # (not pandas' nullable Int64)
            return _repeated_integers(values.to_numpy(), keep)
        return np.asarray(values.duplicated(keep=keep).to_numpy(), dtype=bool)
    return np.asarray(pd.DataFrame(columns).duplicated(keep=keep).to_numpy(), dtype=bool)


def _repeated_integers(values: np.ndarray, keep: Literal["first", False]) -> np.ndarray:
    """``Series.duplicated`` of integers by a stable sort instead of a hash table: equal values lie
    next to each other, and of each run the first in the sort is the first in the file. Trade ids
    count up with time and the rows come sorted by time, so the sort meets almost sorted input (a few
    ms for 190,000 ids against 18 ms for pandas' hashing)."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    same = ordered[1:] == ordered[:-1]
    repeated = np.zeros(len(values), dtype=bool)
    repeated[1:] = same
    if keep is False:
        repeated[:-1] |= same
    mask = np.empty(len(values), dtype=bool)
    mask[order] = repeated
    return mask


def _text_codes(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Integers equal exactly where the texts are: the numbers themselves when every text is a
    canonical decimal integer (exchange trade ids: no sign, no leading zero, so equal numbers are equal
    texts), else pyarrow's dictionary codes (a null is its own code, so a null equals a null, as in
    pandas)."""
    if array.null_count == 0 and len(array):
        try:
            numbers = pc.cast(array, pa.int64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            numbers = None
        if numbers is not None:
            firsts = pc.unique(pc.binary_slice(array.cast(pa.binary()), 0, 1)).to_pylist()
            if all(first in _NONZERO_DIGITS for first in firsts):
                return np.asarray(numbers.to_numpy())
    if isinstance(array, pa.ChunkedArray):
        # One dictionary for all the rows (chunks encoded apart would number the same text apart).
        array = array.combine_chunks()
    codes = pc.dictionary_encode(array, null_encoding="encode")
    return np.asarray(codes.indices.to_numpy(zero_copy_only=False))


_NONZERO_DIGITS = frozenset(b"%d" % digit for digit in range(1, 10))


def validate_name(value: str, what: str) -> str:
    """An exchange or pair name as stored: lower case letters, digits, ``_`` and ``-``."""
    normal = str(value).strip().lower()
    if not _NAME.match(normal):
        raise IngestError(
            f"The value of `{what}` is {value!r}, but must be letters, digits, '_' or '-' (like 'btc_usd')."
        )
    return normal


def ingest_files(
    store: PartitionStore,
    paths: Iterable[str | Path],
    *,
    exchange: str | None = None,
    pair: str | None = None,
    format: str | None = None,
    checks: RowChecks | None = None,
    strict: bool = False,
    keep_reports: bool = True,
) -> list[IngestReport]:
    """Ingest several files: all are parsed and validated before any is written (a broken file refuses
    the whole call). Files of one plain kind and one market going into new partitions are written
    together as one atomic write; otherwise each file is written atomically in turn. Each file's full
    report is kept beside the data (``keep_reports``).

    ``exchange`` / ``pair`` None: each file's own (``_file_market``; a file that names none is refused).
    The checks against the store and the writes run under the writer locks of every series written.

    Speed (issue 27; every check on, the same rows and reports, pinned by ``bench_ingest``'s digests):
    each file is decompressed, parsed (in its worker's own thread, ``parsing_in_this_thread``: Arrow's
    hand-over of blocks between threads cost a fifth of the parse) and checked in one thread, the files
    side by side on the cores; trades of several files go to parquet in Arrow end to end
    (``_write_trades_together``: no pandas concatenation or conversion of the whole); the days are
    encoded side by side and put in place side by side, and the reports kept side by side (their
    fsyncs wait on the disk, not the CPU). Measured and not kept: parquet without compression (half
    the encode's CPU, 2.4x the bytes on disk), more parsing threads than cores (more CPU, no gain)."""
    exchange = validate_name(exchange, "exchange") if exchange is not None else None
    pair = validate_name(pair, "pair") if pair is not None else None
    files = [Path(path) for path in paths]
    rules = checks if checks is not None else RowChecks()

    def prepare(path: Path) -> _Prepared:
        return _prepare(store, path, format, rules, strict, exchange, pair)

    if len(files) > 1:
        # Decompression, CSV parsing and most validation release the GIL: files parse in parallel,
        # each in one thread of its own from its bytes to its checked rows (``parsing_in_this_thread``).
        def prepare_here(path: Path) -> _Prepared:
            with parsing_in_this_thread():
                return prepare(path)

        with ThreadPoolExecutor(max_workers=min(len(files), _WORKERS)) as pool:
            prepared = list(pool.map(prepare_here, files))
    else:
        prepared = [prepare(path) for path in files]
    series = [(b.exchange, b.pair, kind) for b in prepared for kind in b.outputs]
    with store.writing(series):
        prepared = [_against_store(store, batch, strict) for batch in prepared]
        together = _write_together(store, prepared)
        if together is not None:
            reports = [batch.report(written) for batch, written in zip(prepared, together, strict=True)]
        else:
            reports = []
            for batch in prepared:
                items = [(frame, batch.exchange, batch.pair, kind) for kind, frame in batch.outputs.items()]
                counts = store.write_counted(items, unique=True)
                written = {kind: counts.get((batch.exchange, batch.pair, kind), 0) for kind in batch.outputs}
                reports.append(batch.report(written))
    if keep_reports:
        reports = _keep_reports(store.root, reports, rules)
    return reports


def _keep_reports(root: str, reports: list[IngestReport], rules: RowChecks) -> list[IngestReport]:
    """Each report kept (``keep_report``); several are written side by side (each write waits on its
    fsyncs, about 8 ms apiece here), under names stamped in the files' order beforehand."""
    if len(reports) < 2:
        return [keep_report(root, report, rules) for report in reports]
    stamps = report_stamps(len(reports))
    with ThreadPoolExecutor(max_workers=min(len(reports), 8)) as pool:
        return list(pool.map(lambda r, s: keep_report(root, r, rules, stamp=s), reports, stamps))


def _write_together(store: PartitionStore, prepared: list[_Prepared]) -> list[dict[str, int]] | None:
    """Write several files of one plain kind into partitions the store does not hold yet as one
    atomic write (each partition written once, no merging); None when that does not apply.

    Rows of a later file that repeat a row of an earlier one (files of API data overlap at their
    edges) count as that later file's duplicates.
    """
    kinds = {tuple(batch.outputs) for batch in prepared}
    markets = {(batch.exchange, batch.pair) for batch in prepared}
    if len(prepared) < 2 or len(kinds) != 1 or len(markets) != 1:
        return None
    ((exchange, pair),) = markets
    (kind_tuple,) = kinds
    if len(kind_tuple) != 1 or kind_tuple[0] not in COLUMNS or prepared[0].source.kind != kind_tuple[0]:
        return None
    kind = kind_tuple[0]
    frames = [batch.outputs[kind] for batch in prepared]
    if kind == "trades":
        in_arrow = _write_trades_together(store, frames, exchange, pair)
        if in_arrow is not None:
            return [{kind: count} for count in in_arrow]
    owner = np.concatenate([np.full(len(frame), i, dtype="int64") for i, frame in enumerate(frames)])
    combined = pd.concat(frames, ignore_index=True)
    nanos = pd.DatetimeIndex(combined["timestamp"]).as_unit("ns").asi8
    if len(nanos) == 0:
        return None
    stored = set(store.dates(exchange, pair, kind))
    if stored & _days_of(nanos):
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
    if kind == "trades" and not (combined["trade_id"].astype(str) == "").any():
        # Exchange ids say which trades two files share, whatever times each file wrote for them.
        repeated = duplicated(combined, ["trade_id"])
    elif candidate.any():
        identity = row_identity(combined.loc[candidate].reset_index(drop=True), kind)
        repeated[candidate] = duplicated(identity, list(identity.columns))
    kept = combined.loc[~repeated] if repeated.any() else combined
    times = pd.DatetimeIndex(kept["timestamp"]).as_unit("ns").asi8
    if not (times[1:] >= times[:-1]).all():  # (files of consecutive days come sorted already)
        kept = kept.iloc[np.argsort(times, kind="stable")]
    # (The caller holds the series' lock: the days found new above are still new, the counts exact.)
    store.write_counted([(kept, exchange, pair, kind)], unique=True)
    counts = np.bincount(owner[~repeated], minlength=len(frames))
    return [{kind: int(count)} for count in counts]


def _days_of(nanos: np.ndarray) -> set[str]:
    """The UTC dates (``YYYY-MM-DD``) of nanosecond times."""
    days = nanos // _DAY_NS
    # (One value per run of equal days first: rows come in runs of a day, the unique is then tiny.)
    runs = days[np.r_[True, days[1:] != days[:-1]]] if len(days) else days
    return {str(pd.Timestamp(int(d) * _DAY_NS).date()) for d in np.unique(runs)}


_DAY_NS = 86_400_000_000_000


def _write_trades_together(
    store: PartitionStore, frames: list[pd.DataFrame], exchange: str, pair: str
) -> list[int] | None:
    """``_write_together`` for trades that all carry an exchange id, in Arrow from the files' rows to
    the parquet files: the rows are taken zero-copy (``arrow_rows``), a repeated id is found on the
    ids' integer codes (``_text_codes``: the same rule as ``duplicated``), and each new day is one
    slice of one table (``PartitionStore.write_new_table``), with no pandas concatenation, no
    ``_normalise`` copy and no ``Table.from_pandas`` of the whole. The new rows per file, or None
    (another path applies: an empty id, mixed column types, no rows, a day already stored)."""
    tables = [arrow_rows(frame, "trades") for frame in frames]
    try:
        combined = pa.concat_tables(tables)
    except pa.ArrowInvalid:
        return None
    if combined.num_rows == 0:
        return None
    ids = combined.column("trade_id")
    if pc.any(pc.equal(ids, "")).as_py():
        return None
    nanos = combined.column("timestamp").cast(pa.int64()).to_numpy()
    if set(store.dates(exchange, pair, "trades")) & _days_of(nanos):
        return None
    owner = np.repeat(np.arange(len(tables)), [table.num_rows for table in tables])
    # Exchange ids say which trades two files share, whatever times each file wrote for them.
    repeated = _repeated_integers(_text_codes(ids), "first")
    kept = combined.filter(pa.array(~repeated)) if repeated.any() else combined
    times = nanos[~repeated] if repeated.any() else nanos
    if not (times[1:] >= times[:-1]).all():  # (files of consecutive days come sorted already)
        kept = kept.take(pa.array(np.argsort(times, kind="stable")))
    # (The caller holds the series' lock: the days found new above are still new, the counts exact.)
    if store.write_new_table(kept, exchange=exchange, pair=pair, kind="trades") is None:
        return None
    return [int(count) for count in np.bincount(owner[~repeated], minlength=len(tables))]


@dataclass(frozen=True)
class _Prepared:
    source: Source
    name: str
    outputs: dict[str, pd.DataFrame]
    rejected: dict[str, int]
    kept: int
    gaps: tuple[GapRange, ...]
    span: tuple[pd.Timestamp, pd.Timestamp] | None
    fixed: dict[str, int] = field(default_factory=dict)
    examples: dict[str, tuple[Defect, ...]] = field(default_factory=dict)
    stored_conflicts: int = 0
    market: FileMarket | None = None

    @property
    def exchange(self) -> str:
        if self.market is None:
            raise ValueError(f"{self.name}: no market was chosen for it")
        return self.market.exchange

    @property
    def pair(self) -> str:
        if self.market is None:
            raise ValueError(f"{self.name}: no market was chosen for it")
        return self.market.pair

    def report(
        self, written: dict[str, int], exchange: str | None = None, pair: str | None = None
    ) -> IngestReport:
        """The report of this file once ``written`` (new rows by kind); ``exchange`` / ``pair`` for rows
        prepared without a ``market`` (GDS pages)."""
        rejected = dict(self.rejected)
        total = sum(written.values())
        if self.source.kind in COLUMNS:
            rejected["conflict"] += self.stored_conflicts
            rejected["duplicate"] += self.kept - self.stored_conflicts - written.get(self.source.kind, 0)
        elif total == 0:
            rejected["duplicate"] += self.kept
        return IngestReport(
            file=self.name,
            format=self.source.format,
            exchange=exchange if exchange is not None else self.exchange,
            pair=pair if pair is not None else self.pair,
            kinds=tuple(self.outputs),
            rows_read=self.source.rows_read,
            rows_written=total,
            rejected=rejected,
            gaps=sum(g.missing for g in self.gaps),
            gap_ranges=self.gaps,
            written=written,
            start=self.span[0] if self.span else None,
            end=self.span[1] if self.span else None,
            fixed=dict(self.fixed),
            examples=dict(self.examples),
            market_note=self.market.note if self.market is not None else "",
        )


def _against_store(store: PartitionStore, batch: _Prepared, strict: bool) -> _Prepared:
    """Rows keyed by time (bars, quotes) whose time the store holds already with other values are
    ``conflict``s, not duplicates: the stored row stays (nothing stored is replaced), the file's row is
    refused and counted (``strict``: the file is refused)."""
    kind = batch.source.kind
    exchange, pair = batch.exchange, batch.pair
    if kind not in COLUMNS or dedupe_keys(kind) != ("timestamp",) or not store.has(exchange, pair, kind):
        return batch
    frame = batch.outputs[kind]
    if frame.empty:
        return batch
    times = pd.DatetimeIndex(frame["timestamp"])
    stored = store.read(exchange, pair, kind, times.min(), times.max() + pd.Timedelta(1, "ns"))
    common = times.isin(stored.index)
    if not common.any():
        return batch
    columns = list(COLUMNS[kind])
    mine = frame.loc[common, columns].reset_index(drop=True)
    theirs = stored.loc[times[common], columns].reset_index(drop=True)
    same = (mine == theirs) | (mine.isna() & theirs.isna())
    differ = ~same.all(axis=1).to_numpy()
    if not differ.any():
        return batch
    first = times[common][int(np.flatnonzero(differ)[0])]
    if strict:
        raise IngestError(
            f"ingest: {batch.name}: {int(differ.sum())} rows conflict with rows already in the store "
            f"(the first at {first}: same time, other values) (--strict refuses the file on its first defect)"
        )
    example = Defect("conflict", 0, "timestamp", str(first), "the store holds this time with other values")
    examples = dict(batch.examples)
    examples["conflict"] = (*examples.get("conflict", ()), example)[:_EXAMPLES]
    return dataclasses.replace(batch, stored_conflicts=int(differ.sum()), examples=examples)


def _prepare(
    store: PartitionStore,
    path: Path,
    format: str | None,
    checks: RowChecks,
    strict: bool,
    exchange: str | None,
    pair: str | None,
) -> _Prepared:
    if not path.exists():
        raise IngestError(f"ingest: {path}: no such file")
    if path.is_dir():
        raise IngestError(f"ingest: {path}: is a folder, but must be a file")
    source = read_source(path, format)
    market = resolve_market(source, path.name, exchange, pair)
    neighbours = neighbours_of(store, market.exchange, market.pair, source, checks)
    return prepare_source(
        source, path.name, checks=checks, strict=strict, market=market, neighbours=neighbours
    )


def neighbours_of(
    store: PartitionStore, exchange: str, pair: str, source: Source, checks: RowChecks
) -> Neighbours:
    """The stored rows next to ``source``'s rows (half a median window each side) for the price check."""
    if source.kind not in COLUMNS or source.frame.empty:
        return NONE
    times = source.frame["timestamp"]
    first, last = times.min(), times.max()
    if pd.isna(first):
        return NONE
    half = checks.median_window // 2
    within = (
        max(pd.Timedelta(days=1), source.interval * half)
        if source.interval is not None
        else pd.Timedelta(days=1)
    )
    return stored_neighbours(store, exchange, pair, source.kind, first, last, half, within)


def prepare_source(
    source: Source,
    name: str,
    *,
    checks: RowChecks | None = None,
    strict: bool = False,
    market: FileMarket | None = None,
    neighbours: Neighbours = NONE,
) -> _Prepared:
    """Validate and derive rows already parsed into a ``Source`` (a file's, or rows read from a
    database) by the rules above; nothing is written. ``name`` stands for the file in the report;
    ``market`` is where the rows go (its rows of other markets are refused); ``neighbours`` are the
    stored rows next to them (``neighbours_of``)."""
    rules = checks if checks is not None else RowChecks()
    checked = check_source(source, rules, name=name, strict=strict, market=market, neighbours=neighbours)
    frame = checked.frame
    outputs = derive(source, frame)
    rejected, fixed, examples = dict(checked.rejected), dict(checked.fixed), dict(checked.examples)
    for companion in source.companions:
        # Rows of another kind in the same file (an event log's trades): checked and written as theirs.
        other = check_source(companion, rules, name=name, strict=strict)
        outputs[companion.kind] = derive(companion, other.frame)[companion.kind]
        for reason, count in other.rejected.items():
            rejected[reason] += count
        for reason, count in other.fixed.items():
            fixed[reason] += count
        for reason, found in other.examples.items():
            examples[reason] = (*examples.get(reason, ()), *found)[:_EXAMPLES]
    gap_frame = outputs.get(source.kind, frame) if source.kind in COLUMNS else next(iter(outputs.values()))
    interval = source.interval
    gaps = () if interval is None else find_gaps(pd.DatetimeIndex(gap_frame["timestamp"]).unique(), interval)
    span = (frame["timestamp"].min(), frame["timestamp"].max()) if len(frame) else None
    return _Prepared(source, name, outputs, rejected, len(frame), gaps, span, fixed, examples, market=market)


@dataclass(frozen=True)
class Checked:
    """The rows ``check_source`` kept (fixed where certain, sorted by time) and what it counted."""

    frame: pd.DataFrame
    rejected: dict[str, int]
    fixed: dict[str, int]
    examples: dict[str, tuple[Defect, ...]]


def validate(source: Source) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop and count rejected rows with the default checks; returns the kept rows sorted by time."""
    checked = check_source(source, RowChecks())
    return checked.frame, checked.rejected


class _Tally:
    """The rows still kept, and every refusal / fix counted with its first examples."""

    def __init__(self, frame: pd.DataFrame, name: str, strict: bool) -> None:
        self.frame = frame
        self.keep = np.ones(len(frame), dtype=bool)
        self.rejected = dict.fromkeys(REJECT_REASONS, 0)
        self.fixed = dict.fromkeys(FIX_REASONS, 0)
        self.examples: dict[str, list[Defect]] = {}
        self.name = name
        self.strict = strict
        self.first: Defect | None = None

    def refuse(
        self, reason: str, mask: np.ndarray, column: str, rule: str, fix: bool = False, field: str = ""
    ) -> None:
        """Count the kept rows of ``mask`` under ``reason`` (a refusal, or a fix when ``fix``); the
        examples show ``column``'s value under the name ``field`` (default: ``column``)."""
        hits = mask & self.keep
        count = int(hits.sum())
        if not count:
            return
        (self.fixed if fix else self.rejected)[reason] += count
        if not fix:
            self.keep &= ~hits
        where = np.flatnonzero(hits)
        found = self.examples.setdefault(reason, [])
        shown = where[: max(_EXAMPLES - len(found), 1)]
        # Only the listed rows' values are read (a whole time column as text would cost more than the check).
        lines = self.frame["line"].to_numpy()[shown] if "line" in self.frame.columns else shown + 1
        values = (
            [str(v) for v in self.frame[column].iloc[shown].tolist()]
            if column in self.frame.columns
            else [""] * len(shown)
        )
        shown_as = field or column
        listed = [Defect(reason, int(n), shown_as, v, rule) for n, v in zip(lines, values, strict=True)]
        found.extend(listed[: _EXAMPLES - len(found)])
        first = listed[0]
        if "line" in self.frame.columns:
            # The lowest line in the file (rows of an unordered file were sorted by time).
            earliest = int(where[np.argmin(self.frame["line"].to_numpy()[where])])
            if earliest != int(shown[0]):
                value = str(self.frame[column].iloc[earliest]) if column in self.frame.columns else ""
                first = Defect(reason, int(self.frame["line"].iloc[earliest]), shown_as, value, rule)
        if self.first is None or first.line < self.first.line:
            self.first = first

    def raise_if_strict(self) -> None:
        if self.strict and self.first is not None:
            defect = self.first
            raise row_error(
                self.name,
                defect.line,
                defect.field,
                f"{defect.value!r}: {defect.reason}: {defect.rule} (--strict refuses the file on its "
                "first defect)",
            )


def check_source(
    source: Source,
    checks: RowChecks,
    *,
    name: str = "",
    strict: bool = False,
    market: FileMarket | None = None,
    neighbours: Neighbours = NONE,
) -> Checked:
    """Drop (or fix) and count defective rows by the rules of the module docstring; the kept rows come
    back sorted by time. ``strict``: the first defect refuses the file (``IngestError``). ``market``:
    rows naming another market are ``other_market``; ``neighbours``: the stored rows the price check
    measures the file's edges against."""
    frame = source.frame
    if frame["timestamp"].dtype != "datetime64[ns, UTC]":
        frame = frame.assign(timestamp=pd.DatetimeIndex(frame["timestamp"]).as_unit("ns"))
    tally = _Tally(frame, name or source.format, strict)
    tally.rejected["unparseable"] = source.unparseable
    if strict and source.unparseable:
        raise IngestError(
            f"ingest: {tally.name}: {source.unparseable} rows are unparseable (--strict refuses the file "
            "on its first defect)"
        )
    tally.refuse("unparseable", frame["timestamp"].isna().to_numpy(), "timestamp", "the time is missing")
    if market is not None:
        for mask, column, rule in other_market_rows(source, frame, market):
            part = "exchange" if column.endswith("exchange") else "pair"
            tally.refuse("other_market", mask, column, rule, field=source.market_columns[part])
    tally.refuse(
        "bad_time",
        bad_times(frame["timestamp"], checks),
        "timestamp",
        f"the time must lie in {checks.earliest:%Y-%m-%d}..now + {checks.future_slack}",
    )
    for column in source.price_columns:
        values = frame[column].to_numpy(dtype="float64")
        tally.refuse("bad_price", ~(values > 0), column, "a price must be a number > 0")
    tally.refuse("bad_volume", bad_volumes(frame), _volume_column(frame), "a volume must be a number >= 0")
    if source.kind.startswith("bars_"):
        resolution = Resolution.from_short(source.kind.removeprefix("bars_"))
        step = resolution.seconds * 1_000_000_000
        misaligned = pd.DatetimeIndex(frame["timestamp"]).as_unit("ns").asi8 % step != 0
        tally.refuse(
            "misaligned",
            misaligned,
            "timestamp",
            f"a {resolution.short} bar must open on a {resolution.short} boundary (bars of another "
            "resolution are never written into its partition)",
        )
        tally.refuse("ohlc", contradicting_ohlc(frame), "low", "low <= open, close <= high")
        swapped, mismatched = volume_readings(frame, checks)
        tally.refuse(
            "swapped_volume",
            swapped,
            "volume",
            "quote volume / base volume must be a price inside the bar; the swapped reading is",
            fix=True,
        )
        tally.refuse(
            "volume_mismatch",
            mismatched,
            "volume",
            f"quote volume / base volume must be a price in [low, high] (±{checks.volume_tolerance:.0%}), "
            "read either way",
        )
        frame = swap_volumes(frame, swapped & tally.keep)
        tally.frame = frame
    if source.kind != "order_events" and tally.keep.any():
        kept_positions = np.flatnonzero(tally.keep)
        # Only the price columns are copied (not the text columns: a take of those costs more).
        needed = [c for c in (*_REFERENCE_COLUMNS, *source.price_columns) if c in frame.columns]
        prices = frame[list(dict.fromkeys(needed))]
        if len(kept_positions) < len(frame):
            prices = prices.iloc[kept_positions]
        times = (
            frame["timestamp"].iloc[kept_positions]
            if len(kept_positions) < len(frame)
            else frame["timestamp"]
        )
        outlier = _price_outliers(prices, times, source.price_columns, checks, neighbours)
        mask = np.zeros(len(frame), dtype=bool)
        mask[kept_positions[outlier]] = True
        tally.refuse(
            "price_outlier",
            mask,
            source.price_columns[0],
            f"a price must lie within {checks.max_jump:g}x of the rolling median of "
            f"{checks.median_window} rows"
            + ("" if neighbours.empty else " (with the stored rows just before and after the file)"),
        )
        if not neighbours.empty:
            _refuse_a_jump_against_the_store(tally, frame, needed, source, checks, neighbours)
    _check_repeats(tally, source)
    _check_order(tally, source)
    tally.raise_if_strict()
    kept = _kept_rows(frame, tally.keep)
    if source.order == "unordered":
        nanos = pd.DatetimeIndex(kept["timestamp"]).as_unit("ns").asi8
        if len(nanos) > 1 and not (nanos[1:] >= nanos[:-1]).all():  # (readers often sort already)
            kept = kept.sort_values("timestamp", kind="stable")
    elif source.order == "descending":
        kept = kept.iloc[::-1]
    return Checked(
        kept.reset_index(drop=True),
        tally.rejected,
        tally.fixed,
        {reason: tuple(found) for reason, found in tally.examples.items()},
    )


def _kept_rows(frame: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    """The rows of ``keep``: a slice (no copy) when they are one run, as when a reader sorted the
    rows with no time (bitFlyer's, rejected as ``unparseable``) first and nothing else was refused;
    else a take of every column."""
    if keep.all():
        return frame
    where = np.flatnonzero(keep)
    if len(where) and where[-1] - where[0] + 1 == len(where):
        return frame.iloc[int(where[0]) : int(where[-1]) + 1]
    return frame.loc[keep]


_REFERENCE_COLUMNS = ("close", "bid_price", "ask_price", "price")
"""What ``_validate_rows.reference_price`` may read."""


def _refuse_a_jump_against_the_store(
    tally: _Tally,
    frame: pd.DataFrame,
    columns: list[str],
    source: Source,
    checks: RowChecks,
    neighbours: Neighbours,
) -> None:
    """A file whose kept rows start (end) at another price level than the stored rows just before
    (after) them is refused as a whole, naming its first (last) row (``_stored_neighbours.edge_jump``)."""
    positions = np.flatnonzero(tally.keep)
    if not len(positions):
        return
    nanos = pd.DatetimeIndex(frame["timestamp"].iloc[positions]).as_unit("ns").asi8
    positions = positions[np.argsort(nanos, kind="stable")]
    jump = edge_jump(frame[columns].iloc[positions], neighbours, checks.max_jump, checks.median_window // 2)
    if jump is None:
        return
    row = int(positions[0] if jump.side == "before" else positions[-1])
    line = int(frame["line"].iloc[row]) if "line" in frame.columns else row + 1
    raise row_error(tally.name, line, source.price_columns[0], jump.describe(checks.max_jump))


def _price_outliers(
    prices: pd.DataFrame,
    times: pd.Series,
    price_columns: tuple[str, ...],
    checks: RowChecks,
    neighbours: Neighbours,
) -> np.ndarray:
    """``price_outliers`` of the kept rows; with stored ``neighbours``, measured in time order with the
    stored rows just before and after them in the window (``_stored_neighbours``), the stored rows
    themselves never refused."""
    if neighbours.empty:
        return price_outliers(prices, price_columns, checks)[0]
    nanos = pd.DatetimeIndex(times).as_unit("ns").asi8
    order = np.argsort(nanos, kind="stable")
    ordered = prices.iloc[order].reset_index(drop=True)
    before = neighbours.before[[c for c in ordered.columns if c in neighbours.before.columns]]
    after = neighbours.after[[c for c in ordered.columns if c in neighbours.after.columns]]
    window = pd.concat([part for part in (before, ordered, after) if len(part)], ignore_index=True)
    found = price_outliers(window, price_columns, checks)[0][len(before) : len(before) + len(ordered)]
    outlier = np.zeros(len(prices), dtype=bool)
    outlier[order] = found
    return outlier


def _volume_column(frame: pd.DataFrame) -> str:
    return "volume" if "volume" in frame.columns else "size"


def _check_repeats(tally: _Tally, source: Source) -> None:
    """Same key and values: ``duplicate`` (first kept); same key, other values: ``conflict`` (all)."""
    frame = tally.frame
    positions = np.flatnonzero(tally.keep)
    key = list(source.key)
    keys = frame[key] if len(positions) == len(frame) else frame[key].iloc[positions]
    repeated = duplicated(keys, key, keep=False)
    if not repeated.any():
        return
    subset = frame.iloc[positions[repeated]]
    values = [c for c in (*COLUMNS.get(source.kind, ()), "timestamp") if c in subset.columns and c not in key]
    if not source.conflicts or not values:
        exact = subset.duplicated(subset=key, keep="first").to_numpy()
        conflicting = np.zeros(len(subset), dtype=bool)
    else:
        exact = subset.duplicated(subset=[*key, *values], keep="first").to_numpy()
        distinct = subset.loc[~exact]
        conflicting_keys = distinct.duplicated(subset=key, keep=False)
        conflicting = (
            subset[key].merge(
                distinct.loc[conflicting_keys, key].drop_duplicates(), how="left", indicator=True
            )["_merge"]
            == "both"
        ).to_numpy()
    where = positions[repeated]
    duplicate = np.zeros(len(frame), dtype=bool)
    duplicate[where[exact & ~conflicting]] = True
    conflict = np.zeros(len(frame), dtype=bool)
    conflict[where[conflicting]] = True
    tally.refuse("conflict", conflict, key[0], f"rows with the same {'/'.join(key)} must agree")
    tally.refuse("duplicate", duplicate, key[0], f"a {'/'.join(key)} may occur once")


def _check_order(tally: _Tally, source: Source) -> None:
    """In a file ordered by time, a row earlier than a row before it is ``out_of_order``."""
    if source.order == "unordered":
        return
    positions = np.flatnonzero(tally.keep)
    times = pd.DatetimeIndex(tally.frame["timestamp"].iloc[positions]).as_unit("ns").asi8
    if source.order == "descending":
        times = times[::-1]
    running = np.maximum.accumulate(times) if len(times) else times
    late = np.zeros(len(times), dtype=bool)
    late[1:] = times[1:] < running[:-1]
    if source.order == "descending":
        late = late[::-1]
    mask = np.zeros(len(tally.frame), dtype=bool)
    mask[positions[late]] = True
    tally.refuse("out_of_order", mask, "timestamp", f"rows must be in {source.order} time order")


def derive(source: Source, frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The frames to write, by kind: the rows themselves, or (order events) book snapshots and quotes."""
    if source.kind in COLUMNS:
        return {source.kind: frame[["timestamp", *COLUMNS[source.kind]]]}
    if source.kind == "order_events":
        from atlas_ray.featurestore._store._orderbook import book_snapshots, quotes_from_book

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
