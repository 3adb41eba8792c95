"""``PartitionStore``: the partitioned parquet market-data store (partitions only).

It reads and writes partitions of the store's kinds and knows nothing of file formats, ingest or the
bars rule: ``atlas_ray.featurestore._store._ingest`` and ``atlas_ray.featurestore._store._bars`` use it, and
``MarketStore`` (``atlas_ray.featurestore._store._store``) puts the three together for callers.

Layout (hive partitioning, one file per partition)::

    ROOT/exchange=<exchange>/pair=<pair>/kind=<kind>/date=<YYYY-MM-DD>/data.parquet

``ROOT`` is a local path or any pyarrow filesystem URI (``s3://bucket/store``, ``gs://...``). Default:
``$ATLAS_STORE``, else ``./atlas_store``.

Writes merge new rows into the existing partition, drop duplicates on the kind's key (so re-writing the
same rows adds nothing), sort by time and replace the partition file atomically (``atlas_ray._atomic``:
a temporary file moved over it on a local disk, one whole-object upload on a bucket). ``write_many``
stages every partition before putting any in place, so a failure while preparing leaves the store as
it was. A relative ``ROOT`` is made absolute when the store is made (``atlas_ray._storage.resolve``).

One writer at a time per series (exchange / pair / kind): every write reads, merges and replaces its
partitions while holding the series' writer lock (``atlas_ray._locks``: an fcntl lock on
``ROOT/_locks/exchange=<e>/pair=<p>/kind=<k>.lock`` on a local disk or a shared POSIX mount; a lease
object ``...kind=<k>.lease`` on an object store, where a second writer is refused). Two processes
writing one partition side by side then both keep their rows; ``writing(series)`` holds the locks
across more than one write (ingest checks against the store and writes under them; GDS writes a page
and moves its watermark under them). Readers take no lock: each partition file is read through one
open handle (one whole-object read on a bucket), so a file put in place meanwhile is never mixed
with the one being read.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from atlas_ray import _atomic, _locks, _storage
from atlas_ray.errors import MissingDataError
from atlas_ray.featurestore._schema import COLUMNS, Resolution

__all__ = [
    "DEFAULT_STORE",
    "PartitionInfo",
    "PartitionStore",
    "arrow_rows",
    "dedupe_keys",
    "default_root",
]

DEFAULT_STORE = "./atlas_store"

_KEYS: dict[str, tuple[str, ...]] = {
    "trades": ("timestamp", "trade_id", "price", "size", "side"),
    "quotes": ("timestamp",),
    "book": ("timestamp", "side", "level"),
}


def default_root() -> str:
    """``$ATLAS_STORE`` if set, else ``./atlas_store``."""
    return os.environ.get("ATLAS_STORE") or DEFAULT_STORE


def dedupe_keys(kind: str) -> tuple[str, ...]:
    """The columns that identify a row of ``kind`` (bars: the timestamp)."""
    return _KEYS.get(kind, ("timestamp",))


def row_identity(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    """What makes two rows of ``kind`` the same row: the ``dedupe_keys`` columns, except that a trade
    with an exchange id is identified by that id alone (two versions of an export may write the same
    trade with other notations; its id is what it is). Trades without an id keep every field."""
    if kind != "trades" or "trade_id" not in frame.columns:
        return frame[list(dedupe_keys(kind))]
    ids = frame["trade_id"].astype(str)
    blank = (ids == "").to_numpy()
    if not blank.any():
        return pd.DataFrame({"identity": ids.to_numpy()})
    whole = frame[list(dedupe_keys(kind))].astype(str).agg("|".join, axis=1)
    return pd.DataFrame({"identity": np.where(blank, "\x00" + whole.to_numpy(), ids.to_numpy())})


@dataclass(frozen=True)
class PartitionInfo:
    """One stored partition: what ``MarketStore.partitions`` lists."""

    exchange: str
    pair: str
    kind: str
    date: str
    path: str


class PartitionStore:
    """A partitioned parquet dataset of market data, on any pyarrow filesystem."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        # Resolved once, here: a relative root means this process's working directory on every node
        # (the store is pickled by its root to Ray workers, whose working directory differs).
        self.root = _storage.resolve(root if root is not None else default_root())
        self._fs, self._base = _storage.filesystem(self.root)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.root!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PartitionStore) and other.root == self.root

    def __hash__(self) -> int:
        return hash(self.root)

    def __reduce__(self) -> tuple[type[PartitionStore], tuple[str]]:
        return (type(self), (self.root,))

    # ------------------------------------------------------------------ paths
    def _dir(self, exchange: str, pair: str, kind: str, date: str | None = None) -> str:
        parts = [self._base, f"exchange={exchange}", f"pair={pair}", f"kind={kind}"]
        if date is not None:
            parts.append(f"date={date}")
        return "/".join(parts)

    def _children(self, directory: str, prefix: str) -> list[str]:
        try:
            infos = self._fs.get_file_info(pafs.FileSelector(directory, allow_not_found=True))
        except FileNotFoundError:
            return []
        return sorted(
            info.base_name[len(prefix) :]
            for info in infos
            if info.type == pafs.FileType.Directory and info.base_name.startswith(prefix)
        )

    # ------------------------------------------------------------ inventory
    def exchanges(self) -> list[str]:
        return self._children(self._base, "exchange=")

    def pairs(self, exchange: str) -> list[str]:
        return self._children(f"{self._base}/exchange={exchange}", "pair=")

    def kinds(self, exchange: str, pair: str) -> list[str]:
        return self._children(f"{self._base}/exchange={exchange}/pair={pair}", "kind=")

    def dates(self, exchange: str, pair: str, kind: str) -> list[str]:
        """The dates of the series' partitions that hold a data file, sorted."""
        directory = self._dir(exchange, pair, kind)
        if isinstance(self._fs, pafs.LocalFileSystem):
            return _local_dates(directory)
        try:
            infos = self._fs.get_file_info(pafs.FileSelector(directory, allow_not_found=True, recursive=True))
        except FileNotFoundError:
            return []
        suffix = "/data.parquet"
        dates = set()
        for info in infos:
            path = info.path
            if info.type == pafs.FileType.File and path.endswith(suffix):
                folder = path[: -len(suffix)].rsplit("/", 1)[-1]
                if folder.startswith("date="):
                    dates.add(folder[len("date=") :])
        return sorted(dates)

    def has(self, exchange: str, pair: str, kind: str) -> bool:
        return bool(self.dates(exchange, pair, kind))

    def partitions(self) -> list[PartitionInfo]:
        """Every stored partition, sorted by exchange, pair, kind and date."""
        return [
            PartitionInfo(ex, pair, kind, date, self._file(ex, pair, kind, date))
            for ex in self.exchanges()
            for pair in self.pairs(ex)
            for kind in self.kinds(ex, pair)
            for date in self.dates(ex, pair, kind)
        ]

    def _file(self, exchange: str, pair: str, kind: str, date: str) -> str:
        return f"{self._dir(exchange, pair, kind, date)}/data.parquet"

    def _exists(self, path: str) -> bool:
        return bool(self._fs.get_file_info(path).type == pafs.FileType.File)

    # ----------------------------------------------------------------- read
    def read(
        self,
        exchange: str,
        pair: str,
        kind: str,
        start: pd.Timestamp | str | None = None,
        end: pd.Timestamp | str | None = None,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Rows of one exchange / pair / kind with ``start <= timestamp < end``, indexed by timestamp.

        Only the daily partitions that overlap the range are opened. An absent series gives an empty
        frame with the kind's columns.
        """
        lo = _utc(start) if start is not None else None
        hi = _utc(end) if end is not None else None
        wanted = list(columns) if columns is not None else list(COLUMNS.get(kind, ()))
        # A day's partition holds [day, day + 1 day): it overlaps [lo, hi) when lo's date <= day <= the
        # date of hi's last nanosecond. Compared as ISO date text (no Timestamp per partition: a long
        # range has thousands; no rounding either, which overflows at Timestamp.max).
        first = lo.strftime("%Y-%m-%d") if lo is not None else ""
        last = "~" if hi is None else "" if hi <= _EARLIEST else (hi - _NANOSECOND).strftime("%Y-%m-%d")
        files = [
            self._file(exchange, pair, kind, date)
            for date in self.dates(exchange, pair, kind)
            if first <= date <= last
        ]
        if not files:
            empty = pd.DataFrame({c: pd.Series(dtype="float64") for c in wanted})
            empty.index = pd.DatetimeIndex([], tz="UTC", name="timestamp")
            return empty
        # Every partition file read through one handle of its own (side by side), converted to pandas once.
        table = self._read_files(files, wanted)
        present = [c for c in wanted if c in table.column_names and c != "timestamp"]
        if lo is not None or hi is not None:
            table = _between(table, lo, hi)
        # The index straight from the timestamp column, the values without a second copy for
        # ``set_index`` and a third for the column order.
        frame = table.select(present).to_pandas()
        frame.index = pd.DatetimeIndex(table.column("timestamp").to_pandas(), name="timestamp")
        return frame

    def timestamps(self, exchange: str, pair: str, kind: str) -> pd.DatetimeIndex:
        """Every stored timestamp of a series (only that column is read), sorted, repeats kept."""
        files = [self._file(exchange, pair, kind, d) for d in self.dates(exchange, pair, kind)]
        parts = [
            _atomic.read_parquet(self._fs, path, ["timestamp"]).column("timestamp").to_numpy()
            for path in files
        ]
        if not parts:
            return pd.DatetimeIndex([], tz="UTC", name="timestamp")
        values = np.concatenate(parts).astype("datetime64[ns]")
        return pd.DatetimeIndex(np.sort(values), name="timestamp").tz_localize("UTC")

    def time_range(self, exchange: str, pair: str, kind: str) -> tuple[pd.Timestamp, pd.Timestamp]:
        """First and last timestamp stored for a series (raises ``KeyError`` if absent)."""
        dates = self.dates(exchange, pair, kind)
        if not dates:
            raise KeyError((exchange, pair, kind))
        first = self.read(exchange, pair, kind, start=dates[0], columns=[]).index.min()
        last_day = pd.Timestamp(dates[-1], tz="UTC")
        last = self.read(exchange, pair, kind, start=last_day, columns=[]).index.max()
        return first, last

    def _read_files(self, files: list[str], wanted: list[str]) -> pa.Table:
        """The ``timestamp`` and ``wanted`` columns (those a file holds) of ``files``, in order."""

        def one(path: str) -> pa.Table:
            return _atomic.read_parquet(self._fs, path, ["timestamp", *wanted])

        if len(files) == 1:
            tables = [one(files[0])]
        else:
            with ThreadPoolExecutor(max_workers=min(len(files), os.cpu_count() or 1)) as pool:
                tables = list(pool.map(one, files))
        return pa.concat_tables(tables, promote_options="default")

    # ---------------------------------------------------------------- write
    def writing(self, series: Iterable[tuple[str, str, str]]) -> contextlib.AbstractContextManager[None]:
        """Hold the writer lock of every series ``(exchange, pair, kind)`` while the block runs.

        Writes inside the block (``write_counted`` takes the same locks again) and whatever else must
        agree with them (a check against the stored rows, a GDS watermark) then see no other writer.
        Raises ``StoreBusyError`` when another writer keeps one (see ``atlas_ray._locks``)."""
        chosen = sorted(set(series))
        names = [self._lock_name(*one) for one in chosen]
        what = ", ".join(f"{e}/{p} {k}" for e, p, k in chosen)
        return _locks.hold(self._fs, names, what=f"{self.root}: {what}")

    def _lock_name(self, exchange: str, pair: str, kind: str) -> str:
        return "/".join([self._base, "_locks", f"exchange={exchange}", f"pair={pair}", f"kind={kind}"])

    def write(self, frame: pd.DataFrame, *, exchange: str, pair: str, kind: str) -> int:
        """Merge ``frame`` (a ``timestamp`` column or index, the kind's columns) into the store.

        Returns the number of rows that were new. Atomic per partition; see ``write_many``.
        """
        return self.write_many([(frame, exchange, pair, kind)])

    def write_many(self, items: Iterable[tuple[pd.DataFrame, str, str, str]]) -> int:
        """Merge several frames, staging every partition before replacing any; returns new rows."""
        return sum(self.write_counted(items).values())

    def write_counted(
        self, items: Iterable[tuple[pd.DataFrame, str, str, str]], *, unique: bool = False
    ) -> dict[tuple[str, str, str], int]:
        """``write_many`` that returns the new rows per (exchange, pair, kind).

        ``unique=True`` promises that no frame repeats a key of its kind (ingest has removed duplicates
        already), which skips the within-frame duplicate check; rows already stored are still dropped.
        Every series written is locked (``writing``) from the first read of a partition to the last
        partition put in place.
        """
        # Checked and sorted before the locks are taken: a frame that cannot be written locks nothing.
        normal = [(_sorted_by_time(_normalise(frame, kind)), e, p, kind) for frame, e, p, kind in items]
        with self.writing((exchange, pair, kind) for _, exchange, pair, kind in normal):
            return self._write_locked(normal, unique)

    def write_new_table(self, table: pa.Table, *, exchange: str, pair: str, kind: str) -> int | None:
        """Write an Arrow ``table`` of ``kind`` (``arrow_rows``: the canonical columns and types, sorted by
        time, no key repeated) into days the store does not hold yet: each day is one slice of the table,
        encoded side by side (``_stage_all``), none put in place before all are staged; no pandas frame, no
        merge. Returns the rows written, or None (nothing written) when the store holds one of the days
        already (the caller then writes through ``write_counted``, which merges).

        Same files as ``write_counted(..., unique=True)`` writes for the same rows (the same columns,
        types and pandas metadata), without the copies of ``_normalise`` and ``Table.from_pandas``."""
        if table.num_rows == 0:
            return 0
        nanos = table.column("timestamp").cast(pa.int64()).to_numpy()
        days = nanos // _DAY_NS
        bounds = np.flatnonzero(np.diff(days)) + 1
        starts, stops = [0, *bounds.tolist()], [*bounds.tolist(), len(days)]
        with self.writing([(exchange, pair, kind)]):
            targets = [self._file(exchange, pair, kind, _day_name(int(days[a]))) for a in starts]
            if any(self._exists(target) for target in targets):
                return None
            pending = [
                (target, table.slice(a, b - a)) for target, a, b in zip(targets, starts, stops, strict=True)
            ]
            staged = self._stage_all(pending)
            _commit_all(staged)
        return table.num_rows

    def _write_locked(
        self, items: list[tuple[pd.DataFrame, str, str, str]], unique: bool
    ) -> dict[tuple[str, str, str], int]:
        staged: list[_atomic.Staged] = []
        added: dict[tuple[str, str, str], int] = {}
        pending: list[tuple[str, pa.Table]] = []
        try:
            for normal, exchange, pair, kind in items:
                added.setdefault((exchange, pair, kind), 0)
                whole: pa.Table | None = None
                for date, first, stop in _date_slices(normal):
                    target = self._file(exchange, pair, kind, date)
                    if unique and not self._exists(target):
                        # A new partition of rows known to be unique: slice one arrow table, no merge.
                        if whole is None:
                            whole = pa.Table.from_pandas(normal, preserve_index=False)
                        table = whole.slice(first, stop - first)
                        new_rows = stop - first
                    else:
                        merged, new_rows = self._merge(target, normal.iloc[first:stop], kind, unique)
                        if new_rows == 0:
                            continue
                        table = pa.Table.from_pandas(merged, preserve_index=False)
                    added[(exchange, pair, kind)] += new_rows
                    pending.append((target, table))
            staged = self._stage_all(pending)
        except BaseException:
            for item in staged:
                item.discard()
            raise
        for item in staged:
            item.commit()
        return added

    def _stage_all(self, pending: list[tuple[str, pa.Table]]) -> list[_atomic.Staged]:
        """Every partition file written beside its place (``_atomic.stage``), side by side on the CPUs
        (parquet encoding and fsync release the GIL); if one fails, the others are discarded and the
        error raised: nothing is put in place."""
        if len(pending) < 2:
            return [_atomic.stage(self._fs, target, _parquet_writer(table)) for target, table in pending]
        with ThreadPoolExecutor(max_workers=min(len(pending), os.cpu_count() or 1)) as pool:
            futures = [pool.submit(_atomic.stage, self._fs, path, _parquet_writer(t)) for path, t in pending]
        staged, failure = [], None
        for future in futures:
            try:
                staged.append(future.result())
            except BaseException as exc:  # raised below, once every file is accounted for
                failure = failure or exc
        if failure is not None:
            for item in staged:
                item.discard()
            raise failure
        return staged

    def _merge(
        self, target: str, part: pd.DataFrame, kind: str, unique: bool = False
    ) -> tuple[pd.DataFrame, int]:
        keys = list(dedupe_keys(kind))
        if not unique:
            part = part.loc[~row_identity(part, kind).duplicated(keep="first").to_numpy()]
        if not self._exists(target):
            return _sorted_by_time(part), len(part)
        incoming = pd.DatetimeIndex(part["timestamp"]).as_unit("ns").asi8
        if keys == ["timestamp"]:
            # Read only the stored times first: a re-ingest then touches nothing else.
            stamps = _atomic.read_parquet(self._fs, target, ["timestamp"]).column("timestamp")
            stored = pd.DatetimeIndex(stamps.to_pandas()).as_unit("ns").asi8
            fresh = part.loc[~np.isin(incoming, stored)]
            if fresh.empty:
                return part.iloc[:0], 0
            existing = _atomic.read_parquet(self._fs, target).to_pandas()
        elif kind == "trades" and _has_ids(part):
            # Trades with exchange ids: an id stored anywhere in the partition is the same trade, even
            # where another version of the export wrote its time otherwise.
            existing = _atomic.read_parquet(self._fs, target).to_pandas()
            ids = part["trade_id"].astype(str)
            fresh = part.loc[(ids == "").to_numpy() | ~ids.isin(existing["trade_id"].astype(str)).to_numpy()]
            blank = (fresh["trade_id"].astype(str) == "").to_numpy()
            if blank.any():
                both = pd.concat([existing, fresh.loc[blank]], ignore_index=True)
                repeated = row_identity(both, kind).duplicated(keep="first").to_numpy()[len(existing) :]
                keep = np.ones(len(fresh), dtype=bool)
                keep[np.flatnonzero(blank)[repeated]] = False
                fresh = fresh.loc[keep]
        else:
            existing = _atomic.read_parquet(self._fs, target).to_pandas()
            stored = pd.DatetimeIndex(existing["timestamp"]).as_unit("ns").asi8
            # Only rows inside the stored time span can repeat a stored key: compare just those.
            inside = (incoming >= stored.min()) & (incoming <= stored.max()) if len(stored) else incoming < 0
            outside = part.loc[~inside]
            candidates = part.loc[inside]
            if len(candidates):
                low, high = incoming[inside].min(), incoming[inside].max()
                window = existing.loc[(stored >= low) & (stored <= high)]
                both = pd.concat([window, candidates], ignore_index=True)
                repeated = row_identity(both, kind).duplicated(keep="first").to_numpy()[len(window) :]
                candidates = candidates.loc[~repeated]
            fresh = pd.concat([outside, candidates]) if len(outside) else candidates
        if fresh.empty:
            return existing, 0
        merged = pd.concat([existing, fresh], ignore_index=True)
        new_rows = len(merged) - len(existing)
        return _sorted_by_time(merged), new_rows

    # ------------------------------------------------------------ market data
    def quotes(
        self,
        exchange: str,
        pair: str,
        start: pd.Timestamp | str | None = None,
        end: pd.Timestamp | str | None = None,
    ) -> pd.DataFrame:
        """Top-of-book rows (bid_price, bid_size, ask_price, ask_size) indexed by observation time."""
        return self._require(exchange, pair, "quotes", "quotes (top of book)").read(
            exchange, pair, "quotes", start, end
        )

    def book(
        self,
        exchange: str,
        pair: str,
        start: pd.Timestamp | str | None = None,
        end: pd.Timestamp | str | None = None,
    ) -> pd.DataFrame:
        """Order-book snapshots in long form (side, level, price, size) indexed by snapshot time."""
        return self._require(exchange, pair, "book", "order-book snapshots").read(
            exchange, pair, "book", start, end
        )

    def _require(self, exchange: str, pair: str, kind: str, what: str) -> PartitionStore:
        if not self.has(exchange, pair, kind):
            held = ", ".join(self.kinds(exchange, pair)) or "nothing"
            raise MissingDataError(
                f"no {what} for {exchange}/{pair}: the store at {self.root} holds no {kind} for it "
                f"(it holds: {held})"
            )
        return self


def arrow_rows(frame: pd.DataFrame, kind: str) -> pa.Table:
    """The Arrow table ``write_counted`` writes for ``frame`` (a ``timestamp`` column and the kind's
    columns), in the frame's row order: zero-copy from a frame that is canonical already (UTC
    nanosecond times; trades and quotes, whose rows need no grid check), else through ``_normalise``."""
    columns = ["timestamp", *COLUMNS[kind]]
    if (
        not kind.startswith("bars_")
        and set(columns) <= set(frame.columns)
        and frame["timestamp"].dtype == "datetime64[ns, UTC]"
    ):
        return pa.Table.from_pandas(frame[columns], preserve_index=False)
    return pa.Table.from_pandas(_normalise(frame, kind), preserve_index=False)


def _commit_all(staged: list[_atomic.Staged]) -> None:
    """Put every staged file in place (each rename waits on a folder fsync, about 8 ms here): side by
    side when there are several. Only called once every file is staged, as ``_write_locked`` does."""
    if len(staged) < 2:
        for item in staged:
            item.commit()
        return
    with ThreadPoolExecutor(max_workers=min(len(staged), 8)) as pool:
        for future in [pool.submit(item.commit) for item in staged]:
            future.result()


def _has_ids(frame: pd.DataFrame) -> bool:
    return "trade_id" in frame.columns and bool((frame["trade_id"].astype(str) != "").any())


def _parquet_writer(table: pa.Table) -> _atomic.Writer:
    # Dictionary-encode only the low-cardinality text column; statistics only for time (both choices
    # make writing trades several times faster).
    def write(out: pa.NativeFile) -> None:
        pq.write_table(
            table,
            out,
            use_dictionary=[c for c in ("side",) if c in table.column_names],
            write_statistics=["timestamp"],
        )

    return write


_EARLIEST = pd.Timestamp.min.tz_localize("UTC")
_NANOSECOND = pd.Timedelta(1, "ns")


def _utc(value: pd.Timestamp | str) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _normalise(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    if "timestamp" not in frame.columns:
        frame = frame.reset_index()
        if "timestamp" not in frame.columns:
            frame = frame.rename(columns={frame.columns[0]: "timestamp"})
    columns = ["timestamp", *COLUMNS[kind]]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"A {kind} frame lacks the columns {missing}; it must have {columns}.")
    out = frame[columns].copy()
    out["timestamp"] = pd.to_datetime(out["timestamp"], utc=True).astype("datetime64[ns, UTC]")
    if kind.startswith("bars_"):
        _require_grid(out["timestamp"], kind)
    return out


def _require_grid(times: pd.Series, kind: str) -> None:
    """A partition of ``bars_<res>`` holds only bars that open on the ``<res>`` grid: a bar of another
    resolution is never written into it."""
    step = Resolution.from_short(kind.removeprefix("bars_")).seconds * 1_000_000_000
    nanos = pd.DatetimeIndex(times).as_unit("ns").asi8
    off = np.flatnonzero(nanos % step != 0)
    if off.size:
        first = pd.Timestamp(int(nanos[off[0]]), tz="UTC")
        raise ValueError(
            f"A {kind} frame has {off.size} rows off the {kind.removeprefix('bars_')} grid (the first at "
            f"{first}); a bar must open on its resolution's boundary and bars of another resolution "
            "belong in their own kind."
        )


def _sorted_by_time(frame: pd.DataFrame) -> pd.DataFrame:
    if pd.DatetimeIndex(frame["timestamp"]).is_monotonic_increasing:
        return frame.reset_index(drop=True)
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)


def _date_slices(frame: pd.DataFrame) -> list[tuple[str, int, int]]:
    """``(date, first, stop)`` row ranges of each UTC day in a frame sorted by time."""
    if frame.empty:
        return []
    days = pd.DatetimeIndex(frame["timestamp"]).as_unit("ns").asi8 // _DAY_NS
    bounds = np.flatnonzero(np.diff(days)) + 1
    starts = [0, *bounds.tolist()]
    stops = [*bounds.tolist(), len(days)]
    return [(_day_name(int(days[a])), a, b) for a, b in zip(starts, stops, strict=True)]


_DAY_NS = 86_400_000_000_000


def _day_name(day: int) -> str:
    return str(pd.Timestamp(day * _DAY_NS).date())


def _local_dates(directory: str) -> list[str]:
    """``dates`` on a local disk: the folder's ``date=`` entries and one existence check per day (a
    third of the time of pyarrow's recursive listing, which reads every entry of every day)."""
    try:
        entries = [entry.name for entry in os.scandir(directory) if entry.name.startswith("date=")]
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(
        name[len("date=") :] for name in entries if os.path.isfile(f"{directory}/{name}/data.parquet")
    )


def _between(table: pa.Table, lo: pd.Timestamp | None, hi: pd.Timestamp | None) -> pa.Table:
    """The rows of ``table`` with ``lo <= timestamp < hi`` (either bound None: open).

    Partitions are read in date order and each is stored sorted, so the timestamps are normally sorted
    and the range is one slice found by binary search (no mask built over every row); unsorted ones
    (a store written by something else) are masked, row by row."""
    times = table.column("timestamp")
    nanos = times.cast(pa.int64()).to_numpy() if times.num_chunks else np.empty(0, dtype="int64")
    if len(nanos) < 2 or bool(np.all(nanos[1:] >= nanos[:-1])):
        first = 0 if lo is None else int(np.searchsorted(nanos, lo.as_unit("ns").value, side="left"))
        last = len(nanos) if hi is None else int(np.searchsorted(nanos, hi.as_unit("ns").value, side="left"))
        return table.slice(first, max(0, last - first))
    mask = pa.scalar(True)
    if lo is not None:
        mask = pc.and_(mask, pc.greater_equal(times, pa.scalar(lo.as_unit("ns"), times.type)))
    if hi is not None:
        mask = pc.and_(mask, pc.less(times, pa.scalar(hi.as_unit("ns"), times.type)))
    return table.filter(mask)
