"""Building a FeatureLabelSet into a frame: in parallel with Ray Data, or in one process.

Both paths share ``compute_span``: the frame of every feature and label on the bars ``[lo, hi)``.
It loads the market data over ``[lo - (halo_before + fill_limit) bars, hi + halo_after bars)`` (the
widest halo of the featureset's features and labels), computes each feature there and keeps the rows
``[lo, hi)``. The feature library guarantees that such a slice equals the same rows of a computation
over any wider range, so cutting the range into chunks changes nothing: the partitioned build equals
the single-process build exactly. Every chunk reads by the one decision of its build (``Sources``,
see ``_sources``), decided over the whole range before any chunk starts, never per chunk.

Realignment: a row is kept only when every feature and label has a value. Cutting the leading and
trailing rows where some column is NaN (the common valid range) and dropping the rows inside it that
still hold NaN (gaps longer than ``fill_limit`` bars) together drop exactly the rows holding a NaN, a
row-local rule, so each chunk applies it on its own and only valid rows travel through Ray's object
store.

The Ray Data path (``build_ray``): one dataset row per chunk of consecutive bars (by default a
multiple of the cluster's CPU count, about 262,144 rows at most each, cut at UTC midnight when chunks
span days so each daily partition is read by one chunk plus its neighbours' halos); ``map_batches``
computes each chunk in its own task and returns an Arrow table; the driver streams the tables back in
time order and copies each once into the frame's preallocated float64 block.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from atlas_ray.errors import AtlasError
from atlas_ray.featurestore._features._market_data import MarketData
from atlas_ray.featurestore._features._sources import Sources
from atlas_ray.featurestore._schema import Resolution
from atlas_ray.featurestore._store._store import MarketStore

if TYPE_CHECKING:
    from atlas_ray.featurestore._featuresets._featureset import FeatureLabelSet

__all__ = [
    "DEFAULT_MAX_CHUNK_ROWS",
    "build_local",
    "build_ray",
    "chunk_bounds",
    "compute_span",
    "ensure_ray",
    "frame_to_table",
    "parse_range",
    "table_to_frame",
]

DEFAULT_MAX_CHUNK_ROWS = 262_144


def parse_range(start: Any, end: Any, resolution: Resolution) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``start`` and ``end`` as UTC timestamps on the resolution's grid (bars ``start <= t < end``).

    Naive times are read as UTC; both are rounded up to the grid, so the range holds the bars whose
    open time lies in ``[start, end)``. An empty range is refused, naming it.
    """
    try:
        lo, hi = pd.Timestamp(start), pd.Timestamp(end)
    except (TypeError, ValueError) as exc:
        raise AtlasError(f"The range [{start!r}, {end!r}) is not a pair of times: {exc}") from None
    lo = lo.tz_localize("UTC") if lo.tzinfo is None else lo.tz_convert("UTC")
    hi = hi.tz_localize("UTC") if hi.tzinfo is None else hi.tz_convert("UTC")
    lo, hi = lo.as_unit("ns").ceil(resolution.freq), hi.as_unit("ns").ceil(resolution.freq)
    if hi <= lo:
        raise AtlasError(
            f"The range [{lo.isoformat()}, {hi.isoformat()}) holds no {resolution.value} bar, "
            "but must satisfy `start < end`."
        )
    return lo, hi


class _ListedOnce(MarketStore):
    """``store`` for one span's computation, listing each series' partitions once.

    A span asks for a series' partition list several times: the data check, the bars rule and the
    read. Each listing walks every daily partition folder (about 9 ms for two years of days), which
    added about 60 ms to every build and every Ray Data chunk. The span reads for a second or so; a
    partition written meanwhile is not seen, just as a read that had already started would not see
    it."""

    def __init__(self, store: MarketStore) -> None:  # a view of ``store``: the same root and filesystem
        self.__dict__.update(store.__dict__)
        self._listed: dict[tuple[str, str, str], list[str]] = {}

    def dates(self, exchange: str, pair: str, kind: str) -> list[str]:
        key = (exchange, pair, kind)
        if key not in self._listed:
            self._listed[key] = super().dates(exchange, pair, kind)
        return list(self._listed[key])


def _span_columns(
    fls: FeatureLabelSet,
    store: MarketStore,
    lo: pd.Timestamp,
    hi: pd.Timestamp,
    seen: list[MarketData] | None = None,
    sources: Sources | None = None,
) -> tuple[pd.DatetimeIndex, dict[str, np.ndarray]]:
    step = fls.resolution.offset
    before, after = fls.halo
    data = MarketData(
        _ListedOnce(store) if type(store) is MarketStore else store,
        lo - (before + fls.fill_limit) * step,
        hi + after * step,
        fls.resolution,
        fill_limit=fls.fill_limit,
        sources=sources,
    )
    if seen is not None:
        seen.append(data)
    grid = data.grid
    i0, i1 = grid.searchsorted(lo), grid.searchsorted(hi)
    columns: dict[str, np.ndarray] = {}
    for feature in fls.columns:
        values = feature.compute(data)
        columns[feature.name] = np.asarray(values.to_numpy(dtype="float64")[i0:i1])
    data.release()  # (what ``seen`` keeps is the record of stored bars, not the bars)
    return pd.DatetimeIndex(grid[i0:i1], name="timestamp"), columns


def compute_span(
    fls: FeatureLabelSet,
    store: MarketStore,
    lo: pd.Timestamp,
    hi: pd.Timestamp,
    sources: Sources | None = None,
) -> pd.DataFrame:
    """Every feature then label (float64 columns) on the bars ``[lo, hi)``, NaN rows kept, read by
    ``sources`` (None: each series decided from the store when first read)."""
    index, columns = _span_columns(fls, store, lo, hi, sources=sources)
    return pd.DataFrame(columns, index=index, copy=False)


_GAP_COLUMN = "\x00label_gap_{}"  # a chunk's label-gap rows travel as boolean columns under these names


def _chunk_table(
    fls: FeatureLabelSet, store: MarketStore, lo: pd.Timestamp, hi: pd.Timestamp, sources: Sources | None
) -> pa.Table:
    """``compute_span``'s valid rows as an Arrow table, built from the columns without a frame, and per
    label (in order) a boolean column: which of those rows look across a bar the store lacks (found
    here, from the bars the chunk read, so the driver reads nothing again)."""
    seen: list[MarketData] = []
    index, columns = _span_columns(fls, store, lo, hi, seen, sources)
    keep = np.ones(len(index), dtype=bool)
    for values in columns.values():
        keep &= ~np.isnan(values)
    every = bool(keep.all())
    names = list(columns)
    kept = index if every else index[keep]
    arrays = [pa.array(kept.asi8, type=pa.timestamp("ns", tz="UTC"))]
    for name in names:  # each column freed once copied: the chunk is never held twice
        values = columns.pop(name)
        arrays.append(pa.array(values if every else values[keep]))
    gaps = fls.label_gap_masks(pd.DatetimeIndex(kept), store, seen[0], sources=sources)
    arrays += [pa.array(mask) for mask in gaps.values()]
    return pa.table(arrays, names=["timestamp", *names, *(_GAP_COLUMN.format(i) for i in range(len(gaps)))])


def build_local(
    fls: FeatureLabelSet,
    store: MarketStore,
    lo: pd.Timestamp,
    hi: pd.Timestamp,
    *,
    seen: list[MarketData] | None = None,
    sources: Sources | None = None,
) -> pd.DataFrame:
    """The single-process build: one ``compute_span`` over the whole range, NaN rows dropped.

    The valid rows of each column are copied once into a ``(columns, rows)`` float64 block that
    becomes the frame without another copy (no row-major interleave, no second selection). ``seen``
    given: the ``MarketData`` the build read is appended to it (its bars serve the label gaps)."""
    index, columns = _span_columns(fls, store, lo, hi, seen, sources)
    keep = np.ones(len(index), dtype=bool)
    for values in columns.values():
        keep &= ~np.isnan(values)
    every = bool(keep.all())
    names = list(columns)
    block = np.empty((len(names), int(keep.sum())), dtype="float64")
    for j, name in enumerate(names):  # each column freed once copied: the frame is never held twice
        values = columns.pop(name)
        block[j] = values if every else values[keep]
    # No ``freq`` on the index, as the Ray Data build and the cache give none: the same frame either way.
    nanos = (index if every else index[keep]).as_unit("ns").asi8
    rows = pd.DatetimeIndex(nanos.view("datetime64[ns]"), name="timestamp").tz_localize("UTC")
    return pd.DataFrame(block.T, index=rows, columns=names, copy=False)


def chunk_bounds(
    lo: pd.Timestamp, hi: pd.Timestamp, resolution: Resolution, *, chunk_rows: int | None, n_cpus: int
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Consecutive ``[a, b)`` chunks covering ``[lo, hi)``.

    ``chunk_rows`` given: chunks of that many bars. Otherwise the smallest multiple of ``n_cpus`` chunks
    holding at most about 262,144 rows each, of near-equal size, their edges moved to UTC midnight when
    every chunk spans a day or more.
    """
    step = resolution.offset
    rows = int((hi - lo) // step)
    if chunk_rows is not None:
        if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
            raise AtlasError(
                f"The value of `chunk_rows` is {chunk_rows!r}, but must be an integer `chunk_rows >= 1`."
            )
        edges = [lo + k * step for k in range(0, rows, chunk_rows)] + [hi]
    else:
        # A multiple of the CPU count, so the last round of tasks keeps every CPU busy.
        n = max(1, n_cpus) * max(1, math.ceil(rows / DEFAULT_MAX_CHUNK_ROWS / max(1, n_cpus)))
        n = min(n, rows)
        edges = [lo + ((rows * k) // n) * step for k in range(n)] + [hi]
        if rows * step >= n * pd.Timedelta(days=1):
            inner = [e.floor("D") if e.floor("D") > lo else e for e in edges[1:-1]]
            edges = sorted({lo, *inner, hi})
    return list(itertools.pairwise(edges))


def _frame_to_table(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=True)


def table_to_frame(table: pa.Table) -> pd.DataFrame:
    """An Arrow table written by this module back into the frame (UTC ``timestamp`` index)."""
    frame = table.to_pandas()
    if not isinstance(frame.index, pd.DatetimeIndex):
        frame = frame.set_index("timestamp")
    frame.index = pd.DatetimeIndex(frame.index, name="timestamp").as_unit("ns")
    return frame


def _build_chunk_batch(
    batch: pa.Table, fls: FeatureLabelSet, store: MarketStore, sources: Sources | None = None
) -> pa.Table:
    tables = []
    for lo_ns, hi_ns in zip(batch.column("lo").to_pylist(), batch.column("hi").to_pylist(), strict=True):
        lo, hi = pd.Timestamp(lo_ns, tz="UTC"), pd.Timestamp(hi_ns, tz="UTC")
        tables.append(_chunk_table(fls, store, lo, hi, sources))
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables)


def ensure_ray() -> None:
    """Start an embedded local Ray (on 127.0.0.1, token authentication, no dashboard) unless one is
    running (``atlas_ray._ray_runtime``)."""
    from atlas_ray import _ray_runtime

    _ray_runtime.start_local(dashboard=False)


@contextmanager
def _data_context() -> Iterator[None]:
    """Ray Data settings for one build (quiet, blocks in order), restored afterwards."""
    from ray.data import DataContext

    context = DataContext.get_current()
    settings = {
        "enable_progress_bars": False,
        "enable_operator_progress_bars": False,
        "print_on_execution_start": False,
        "enable_auto_log_stats": False,
        "verbose_stats_logs": False,
        # Ray Data reserves a share of the cluster's CPUs for each operator of the plan; on a small
        # cluster that left the chunk computation one CPU of two, and the chunks ran one at a time
        # (measured on 2 CPUs: 2.1-2.3 s for 1M bars; 1.2 s with every CPU free for the chunks).
        "op_resource_reservation_enabled": False,
    }
    settings = {name: value for name, value in settings.items() if hasattr(context, name)}  # (Ray versions)
    saved = {name: getattr(context, name) for name in settings}
    saved_order = context.execution_options.preserve_order
    try:
        for name, value in settings.items():
            setattr(context, name, value)
        context.execution_options.preserve_order = True
        yield
    finally:
        for name, value in saved.items():
            setattr(context, name, value)
        context.execution_options.preserve_order = saved_order


def build_ray(
    fls: FeatureLabelSet,
    store: MarketStore,
    lo: pd.Timestamp,
    hi: pd.Timestamp,
    *,
    chunk_rows: int | None = None,
    sources: Sources | None = None,
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The partitioned build with Ray Data: the frame of the valid rows in time order, and per label
    which of its rows look across a missing bar (``FeatureLabelSet.label_gap_masks``).

    Chunks stream back in order while later chunks are still computing; each is copied once into a
    preallocated ``(columns, rows)`` float64 block that becomes the frame without another copy, and its
    object-store copy is released, so the driver never holds every chunk twice.
    """
    import ray

    ensure_ray()
    n_cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    chunks = chunk_bounds(lo, hi, fls.resolution, chunk_rows=chunk_rows, n_cpus=n_cpus)
    names = [item.name for item in fls.columns]
    labels = [label.name for label in fls.labels]
    capacity = int((hi - lo) // fls.resolution.offset)
    values = np.empty((len(names), capacity), dtype="float64")
    stamps = np.empty(capacity, dtype="int64")
    gaps = np.zeros((len(labels), capacity), dtype=bool)
    filled = 0
    with _data_context():
        items = [{"lo": a.value, "hi": b.value} for a, b in chunks]
        dataset = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            _build_chunk_batch,
            batch_size=1,
            batch_format="pyarrow",
            fn_kwargs={"fls": fls, "store": store, "sources": sources},
            num_cpus=1,
        )
        for table in dataset.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=0):
            n = table.num_rows
            if n == 0:
                continue
            stamps[filled : filled + n] = table.column("timestamp").cast(pa.int64()).to_numpy()
            for j, name in enumerate(names):
                values[j, filled : filled + n] = table.column(name).to_numpy()
            for j in range(len(labels)):
                column = table.column(_GAP_COLUMN.format(j))
                gaps[j, filled : filled + n] = column.to_numpy(zero_copy_only=False)
            filled += n
            del table
    stamps, block, gaps = stamps[:filled], values[:, :filled], gaps[:, :filled]
    if filled > 1 and bool((np.diff(stamps) <= 0).any()):  # blocks out of order: put them in order once
        order = np.argsort(stamps, kind="stable")
        stamps, block, gaps = stamps[order], block[:, order], gaps[:, order]
    # From the int64 nanoseconds by a view (``pd.to_datetime`` of a million ints took 0.4 s).
    index = pd.DatetimeIndex(stamps.view("datetime64[ns]"), name="timestamp").tz_localize("UTC")
    frame = pd.DataFrame(block.T, index=index, columns=names, copy=False)
    return frame, dict(zip(labels, gaps, strict=True))


def frame_to_table(frame: pd.DataFrame) -> pa.Table:
    """A built frame as an Arrow table (the cache's format; ``table_to_frame`` reads it back)."""
    return _frame_to_table(frame)
