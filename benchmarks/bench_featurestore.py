"""Benchmark: building a FeatureLabelSet of 23 features and 2 labels over more than 1,000,000 one-minute rows.

Data: the real Coinbase and Kraken BTC-USD minute bars of March 2023 (21 days, ../shared/data) tiled
``--tiles`` times (default 35) into a temporary market store: tile k is shifted k * 21 days later, and
its prices (open, high, low, close) are multiplied by ``r ** k`` with ``r`` = Coinbase's last close /
first open of the 21 days (one factor for both exchanges, so the inter-exchange spread stays real):
prices chain from tile to tile and every return inside a tile is the real one. Gaps in the real data
(Coinbase's 4h38m outage, Kraken's missing minutes) repeat in every tile.

Three builds of the same range, from the same store:

* atlas_ray: ``FeatureLabelSet.build(..., cache=False)`` on a local Ray cluster (2 CPUs): the range
  holds 1,058,400 bars, at least ``LOCAL_BUILD_ROWS``, so Ray Data over time chunks. Ray is started and
  warmed (one small Ray Data build, so worker processes exist and have imported the package) before
  timing, as in a search where the cluster lives for hours. ``ratio`` is this build's.
* the other path: ``build(..., parallel=False)``, in this process; its frame must equal the first
  exactly, and its time, ratio and memory are printed beside it.
* reference: a plain single-process pandas implementation written here (read each exchange's
  partitions with pyarrow, reindex to the minute grid, forward-fill up to 5 bars, vectorised pandas
  maths, drop NaN rows). Its frame is compared with atlas_ray's: the same rows, the same columns and
  every value equal within ``RTOL`` / ``ATOL`` (largest difference printed). When they differ the
  benchmark says where on stderr and exits with status 1 (after its JSON line): a fast wrong frame is
  no result.

Peak memory: a thread samples, every 50 ms, the proportional set size (PSS, which splits shared pages
such as Ray's object store among the processes mapping them, so nothing is counted twice) summed over
this process and every process it started (raylet, object store, Ray workers); the figure is the
highest sum during the build less the sum just before it, divided by the finished frame's size
(``DataFrame.memory_usage(deep=True).sum()``).

Scaling: ``build`` (cache off) over the first 1, 2 and 4 weeks, best of ``--repeat``: time and rows/s
in a small table, and whether the time grew no faster than the rows (10% slack for timer noise; printed
and in the JSON, never failing: a timing). Ranges that short (10,000 to 40,000 rows) are below
``LOCAL_BUILD_ROWS``, so ``build`` computes them in process: what a search's first trial waits for.

Priority: Ray's workers run at the driver's niceness (``RAY_worker_niceness=0``; Ray's default is 15),
so that on a shared machine the Ray Data build is not starved against the reference.

Timing: the three builds alternate ``--repeat`` times (default 3) and each keeps its best time (the
machine is shared, so the best run is the least disturbed one); memory keeps the highest rise.

Targets (issue 12): rows/s ratio atlas_ray / pandas >= 1.5 on this 2-core machine (issue 2 asked for
1.0); peak memory <= 3x the finished frame. The last printed line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# Ray starts its workers at niceness 15: on a machine shared with other work they wait behind every
# normal process while the pandas reference (this process) runs at 0. Measured under a load of ~30 on
# the 2 cores, that made the Ray Data build 35 s against 7.6 s in process. Both builds run at the
# driver's priority here, so they compete for the CPUs alike.
os.environ.setdefault("RAY_worker_niceness", "0")

import numpy as np
import pandas as pd
import psutil
import pyarrow.dataset as ds

from atlas_ray import _ray_runtime
from atlas_ray.featurestore import (
    VWAP,
    FeatureLabelSet,
    InterExchangeSpread,
    LogReturns,
    MarketStore,
    Midpoint,
    MidpointDiff,
    SimpleReturns,
    Volatility,
    Volume,
)
from atlas_ray.featurestore._featuresets._featureset import LOCAL_BUILD_ROWS
from atlas_ray.featurestore._schema import BAR_COLUMNS

DATA = Path(os.environ.get("ATLAS_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
EXCHANGES = (("coinbase", "coinbase_btcusd.parquet"), ("kraken", "kraken_btcusd.parquet"))
TILE_DAYS = 21
LOOKBACKS = (1, 5, 15, 60)
WINDOWS = (10, 30)
FILL_LIMIT = 5
TARGET = 1.5
SCALING_WEEKS = (1, 2, 4)
SCALING_SLACK = 1.1
RTOL, ATOL = 1e-9, 1e-12  # floating-point summation order differs between the two builds, nothing more


# ------------------------------------------------------------------------------------------ data
def _real_bars(name: str) -> pd.DataFrame:
    raw = pd.read_parquet(DATA / "minute_bars_2023-03" / name)
    frame = pd.DataFrame(index=pd.DatetimeIndex(raw.index, name="timestamp"))
    for column in ("open", "high", "low", "close", "volume"):
        frame[column] = raw[column].astype("float64").to_numpy()
    frame["vwap"] = np.nan
    frame["trades"] = raw["trades"].astype("int64").to_numpy() if "trades" in raw else -1
    return frame.loc["2023-03-01":"2023-03-21"]


def make_store(root: Path, tiles: int) -> tuple[MarketStore, pd.Timestamp, pd.Timestamp]:
    """The scaled-up store (see the module docstring) and its range ``[start, end)``."""
    store = MarketStore(root)
    real = {exchange: _real_bars(name) for exchange, name in EXCHANGES}
    coinbase = real["coinbase"]
    ratio = float(coinbase["close"].iloc[-1] / coinbase["open"].iloc[0])
    items = []
    for exchange, bars in real.items():
        for k in range(tiles):
            tile = bars.copy()
            tile.index = tile.index + pd.Timedelta(days=TILE_DAYS * k)
            tile[["open", "high", "low", "close"]] *= ratio**k
            items.append((tile, exchange, "btc_usd", "bars_1m"))
    store.write_many(items)
    start = pd.Timestamp("2023-03-01", tz="UTC")
    return store, start, start + pd.Timedelta(days=TILE_DAYS * tiles)


def featureset() -> FeatureLabelSet:
    features = []
    for exchange in ("coinbase", "kraken"):
        features += [LogReturns().exchange(exchange).one_min().lookback(n) for n in LOOKBACKS]
        features += [
            SimpleReturns().exchange(exchange).one_min(),
            Volume().exchange(exchange).one_min(),
            VWAP().exchange(exchange).one_min(),
            Midpoint().exchange(exchange).one_min(),
            MidpointDiff().exchange(exchange).one_min(),
        ]
        features += [Volatility().exchange(exchange).one_min().window(n) for n in WINDOWS]
    features.append(InterExchangeSpread(Midpoint().coinbase().one_min(), Midpoint().kraken().one_min()))
    labels = [LogReturns().coinbase().one_min().lookforward(n) for n in (1, 5)]
    return FeatureLabelSet(features, labels)


# ------------------------------------------------------------------------------ pandas reference
def _read_bars(root: Path, exchange: str, lo: pd.Timestamp, hi: pd.Timestamp) -> pd.DataFrame:
    path = root / f"exchange={exchange}" / "pair=btc_usd" / "kind=bars_1m"
    table = ds.dataset(path, format="parquet", partitioning="hive").to_table(
        columns=["timestamp", *BAR_COLUMNS],
        filter=(ds.field("timestamp") >= lo) & (ds.field("timestamp") < hi),
    )
    frame = table.to_pandas().set_index("timestamp").sort_index()
    grid = pd.date_range(lo, hi, freq="1min", inclusive="left", name="timestamp").as_unit("ns")
    frame = frame.astype("float64").reindex(grid)
    close = frame["close"]
    filled_close = close.ffill(limit=FILL_LIMIT)
    filled = close.isna() & filled_close.notna()
    for column in ("open", "high", "low", "close"):
        frame[column] = frame[column].mask(filled, filled_close)
    frame["volume"] = frame["volume"].mask(filled, 0.0)
    return frame


def _strict(values: pd.Series, nan_source: pd.Series, before: int, after: int = 0) -> pd.Series:
    """NaN wherever ``nan_source`` has a NaN in rows ``t - before .. t + after`` (a window over a gap)."""
    bad = nan_source.isna().astype("float64").rolling(before + after + 1).max().shift(-after)
    return values.mask(bad.ne(0.0))


def reference_build(root: Path, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """The same 25 columns in plain pandas, single process."""
    lead = pd.Timedelta(minutes=max(*LOOKBACKS, *WINDOWS) + FILL_LIMIT)
    lo, hi = start - lead, end + pd.Timedelta(minutes=5)
    columns: dict[str, pd.Series] = {}
    mids = {}
    first_close = None
    for exchange, _ in EXCHANGES:
        bars = _read_bars(root, exchange, lo, hi)
        close = bars["close"]
        log_close = np.log(close)
        for n in LOOKBACKS:
            columns[f"LogReturns().{exchange}().one_min()" + (f".lookback({n})" if n != 1 else "")] = _strict(
                log_close.diff(n), close, n
            )
        columns[f"SimpleReturns().{exchange}().one_min()"] = close.pct_change(fill_method=None)
        columns[f"Volume().{exchange}().one_min()"] = bars["volume"]
        typical = (bars["high"] + bars["low"] + close) / 3.0
        vwap = bars["vwap"].fillna(typical).where(bars["volume"] > 0)
        columns[f"VWAP().{exchange}().one_min()"] = vwap
        mid = (bars["high"] + bars["low"]) / 2.0
        mids[exchange] = mid
        columns[f"Midpoint().{exchange}().one_min()"] = mid
        columns[f"MidpointDiff().{exchange}().one_min()"] = mid.diff()
        one_bar = log_close.diff()
        for w in WINDOWS:
            columns[f"Volatility().{exchange}().one_min().window({w})"] = one_bar.rolling(w).std()
        if first_close is None:
            first_close = close
    columns["InterExchangeSpread(Midpoint().coinbase().one_min(), Midpoint().kraken().one_min())"] = (
        mids["coinbase"] - mids["kraken"]
    )
    assert first_close is not None
    log_close = np.log(first_close)
    for n in (1, 5):
        columns[f"LogReturns().coinbase().one_min().lookforward({n})"] = _strict(
            log_close.shift(-n) - log_close, first_close, 0, n
        )
    frame = pd.DataFrame(columns).loc[start : end - pd.Timedelta(1, "ns")]
    return frame.dropna()


# ---------------------------------------------------------------------------------- measurement
class PeakMemory:
    """Peak of the PSS summed over this process and its descendants, sampled every 50 ms."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self.baseline = self._sample()
        self.peak = self.baseline
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _sample() -> int:
        me = psutil.Process()
        total = 0
        for process in [me, *me.children(recursive=True)]:
            try:
                total += process.memory_full_info().pss
            except (psutil.Error, AttributeError):
                continue
        return total

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self._sample())

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())

    @property
    def rise(self) -> int:
        return self.peak - self.baseline


def scaling_table(
    fls: FeatureLabelSet, store: MarketStore, start: pd.Timestamp, repeat: int
) -> list[dict[str, float]]:
    """``build`` (cache off; below ``LOCAL_BUILD_ROWS`` it runs in process) over 1, 2 and 4 weeks of
    minute bars: best time of ``repeat`` and rows per second."""
    table = []
    for weeks in SCALING_WEEKS:
        end = start + pd.Timedelta(weeks=weeks)
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            frame = fls.build(start, end, store, cache=False)
            times.append(time.perf_counter() - t0)
        best = min(times)
        rows = len(frame)
        table.append({"weeks": weeks, "rows": rows, "s": round(best, 4), "rows_per_s": round(rows / best)})
    return table


def scaling_grows_with_rows(table: list[dict[str, float]]) -> bool:
    """Whether the time grows no faster than the rows (``SCALING_SLACK`` for timer noise)."""
    first = table[0]
    return all(
        row["s"] / first["s"] <= SCALING_SLACK * row["rows"] / first["rows"] for row in table[1:]
    )


def compare(atlas: pd.DataFrame, reference: pd.DataFrame) -> tuple[bool, float, list[str]]:
    """Whether the two frames hold the same rows, columns and values (within ``RTOL`` / ``ATOL``), the
    largest relative difference on the common rows and columns, and what differs (one line each)."""
    problems = []
    if set(atlas.columns) != set(reference.columns):
        missing = sorted(set(reference.columns) - set(atlas.columns))
        extra = sorted(set(atlas.columns) - set(reference.columns))
        problems.append(f"columns differ: missing {missing}, extra {extra}")
    if not atlas.index.equals(reference.index):
        only_atlas = atlas.index.difference(reference.index)
        only_reference = reference.index.difference(atlas.index)
        problems.append(
            f"rows differ: {len(only_atlas)} only in atlas_ray (first {list(only_atlas[:3])}), "
            f"{len(only_reference)} only in the reference (first {list(only_reference[:3])})"
        )
    columns = [c for c in reference.columns if c in atlas.columns]
    common = atlas.index.intersection(reference.index)
    a = atlas.loc[common, columns].to_numpy(dtype="float64")
    b = reference.loc[common, columns].to_numpy(dtype="float64")
    if a.size == 0:
        return False, float("nan"), [*problems, "no common rows and columns to compare"]
    max_rel = float(np.nanmax(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))
    close = np.isclose(a, b, rtol=RTOL, atol=ATOL, equal_nan=True)
    if not close.all():
        rows, cols = np.nonzero(~close)
        worst = {columns[c] for c in cols[:1000]}
        problems.append(
            f"{int((~close).sum())} values differ beyond rtol={RTOL:g}, atol={ATOL:g} in "
            f"{len(worst)} columns (e.g. {sorted(worst)[:3]}); first at {common[rows[0]]}: "
            f"atlas_ray {a[rows[0], cols[0]]:.17g}, reference {b[rows[0], cols[0]]:.17g}"
        )
    return not problems, max_rel, problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, default=35, help="copies of the 21 real days (default 35)")
    parser.add_argument("--repeat", type=int, default=3, help="alternating runs of each build (default 3)")
    args = parser.parse_args()

    import ray

    workdir = Path(tempfile.mkdtemp(prefix="bench_featurestore_"))
    try:
        t0 = time.perf_counter()
        store, start, end = make_store(workdir / "store", args.tiles)
        print(
            f"store: real Coinbase + Kraken BTC-USD minute bars (2023-03-01 .. 21) tiled {args.tiles} times, "
            f"shifted by 21 days each, prices chained; {start.date()} .. {end.date()} "
            f"({int((end - start) / pd.Timedelta(minutes=1)):,} minutes), "
            f"written in {time.perf_counter() - t0:.1f}s"
        )
        fls = featureset()
        print(f"featureset: {len(fls.features)} features + {len(fls.labels)} labels")
        _ray_runtime.start_local(num_cpus=2, dashboard=False)
        fls.build(start, start + pd.Timedelta(days=1), store, cache=False, parallel=True)  # warm the workers
        scaling = scaling_table(fls, store, start, args.repeat)

        # The machine is shared: alternate the two builds and keep each one's best time and its
        # highest memory rise.
        atlas_times, pandas_times, atlas_rises, pandas_rises = [], [], [], []
        # ``build`` picks Ray Data from LOCAL_BUILD_ROWS bars on; the other path is timed too.
        bars = int((end - start) / pd.Timedelta(minutes=1))
        default_parallel = bars >= LOCAL_BUILD_ROWS
        path, other_path = ("Ray Data", "in process") if default_parallel else ("in process", "Ray Data")
        other_times, other_rises = [], []
        for _ in range(args.repeat):
            with PeakMemory() as memory:
                t0 = time.perf_counter()
                atlas = fls.build(start, end, store, cache=False)
                atlas_times.append(time.perf_counter() - t0)
            atlas_rises.append(memory.rise)
            del atlas
            with PeakMemory() as memory:
                t0 = time.perf_counter()
                other = fls.build(start, end, store, cache=False, parallel=not default_parallel)
                other_times.append(time.perf_counter() - t0)
            other_rises.append(memory.rise)
            del other
            with PeakMemory() as memory:
                t0 = time.perf_counter()
                reference = reference_build(workdir / "store", start, end)
                pandas_times.append(time.perf_counter() - t0)
            pandas_rises.append(memory.rise)
            del reference
        atlas = fls.build(start, end, store, cache=False)
        other = fls.build(start, end, store, cache=False, parallel=not default_parallel)
        reference = reference_build(workdir / "store", start, end)
        atlas_s, pandas_s, other_s = min(atlas_times), min(pandas_times), min(other_times)
        atlas_rise, pandas_rise, other_rise = max(atlas_rises), max(pandas_rises), max(other_rises)
        frame_bytes = int(atlas.memory_usage(deep=True).sum())

        same_rows = atlas.index.equals(reference.index)
        same, max_rel, problems = compare(atlas, reference)
        try:
            pd.testing.assert_frame_equal(other, atlas, check_exact=True)
        except AssertionError as error:
            same = False
            first = str(error).splitlines()[0]
            problems.append(f"the {other_path} build differs from the {path} one: {first}")

        t0 = time.perf_counter()
        fls.build(start, end, store)  # computes and writes the cache
        write_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        cached = fls.build(start, end, store)
        cached_s = time.perf_counter() - t0
        pd.testing.assert_frame_equal(cached, atlas, check_exact=True)

        rows = len(atlas)
        atlas_rate, pandas_rate = rows / atlas_s, len(reference) / pandas_s
        ratio = atlas_rate / pandas_rate
        memory_ratio = atlas_rise / frame_bytes
        print(f"frame: {rows:,} rows x {atlas.shape[1]} columns, {frame_bytes / 2**20:.1f} MiB")
        print(
            f"reference check: {'the same frame' if same else 'DIFFERENT FRAMES'} (same rows {same_rows}, "
            f"{len(reference):,} reference rows; largest relative difference {max_rel:.2e}, "
            f"tolerance rtol={RTOL:g} atol={ATOL:g})"
        )
        runs = ", ".join(f"{t:.2f}" for t in atlas_times)
        print(
            f"atlas_ray build ({path}, {bars:,} bars): best {atlas_s:.2f}s of [{runs}], "
            f"{atlas_rate:,.0f} rows/s"
        )
        runs = ", ".join(f"{t:.2f}" for t in other_times)
        print(
            f"atlas_ray build(parallel={not default_parallel}) ({other_path}): best {other_s:.2f}s of "
            f"[{runs}], {rows / other_s:,.0f} rows/s; ratio to pandas {rows / other_s / pandas_rate:.2f}, "
            f"peak memory {other_rise / frame_bytes:.2f}x the frame"
        )
        runs = ", ".join(f"{t:.2f}" for t in pandas_times)
        print(f"pandas reference (1 process): best {pandas_s:.2f}s of [{runs}], {pandas_rate:,.0f} rows/s")
        print(f"ratio atlas/pandas: {ratio:.2f} (target >= {TARGET})")
        print(
            f"peak memory atlas_ray: +{atlas_rise / 2**20:.0f} MiB PSS over driver + Ray processes "
            f"= {memory_ratio:.2f}x the frame (target <= 3.0); pandas reference: "
            f"+{pandas_rise / 2**20:.0f} MiB = {pandas_rise / frame_bytes:.2f}x"
        )
        print(f"cache: build + write {write_s:.2f}s, second build (cache read) {cached_s:.2f}s")
        scaling_ok = scaling_grows_with_rows(scaling)
        print(
            f"scaling of build (in process below LOCAL_BUILD_ROWS = {LOCAL_BUILD_ROWS:,} rows; best of "
            f"{args.repeat}):"
        )
        print("  weeks       rows    seconds        rows/s")
        for row in scaling:
            print(f"  {row['weeks']:>5} {row['rows']:>10,} {row['s']:>10.3f} {row['rows_per_s']:>13,.0f}")
        growth = scaling[-1]["s"] / scaling[0]["s"], scaling[-1]["rows"] / scaling[0]["rows"]
        print(
            f"  time grows no faster than the rows: {'yes' if scaling_ok else 'NO'} "
            f"(time x{growth[0]:.2f} for rows x{growth[1]:.2f})"
        )
        print(
            json.dumps(
                {
                    "rows": rows,
                    "features": len(fls.features),
                    "labels": len(fls.labels),
                    "atlas_s": round(atlas_s, 3),
                    "pandas_s": round(pandas_s, 3),
                    "atlas_rows_per_s": round(atlas_rate),
                    "build_path": path,
                    "other_path": other_path,
                    "other_path_s": round(other_s, 3),
                    "other_path_ratio": round(rows / other_s / pandas_rate, 3),
                    "other_path_peak_memory_x_frame": round(other_rise / frame_bytes, 3),
                    "pandas_rows_per_s": round(pandas_rate),
                    "ratio": round(ratio, 3),
                    "target": TARGET,
                    "peak_memory_x_frame": round(memory_ratio, 3),
                    "memory_target": 3.0,
                    "pandas_peak_memory_x_frame": round(pandas_rise / frame_bytes, 3),
                    "frame_mib": round(frame_bytes / 2**20, 1),
                    "same_rows_as_reference": same_rows,
                    "same_as_reference": same,
                    "max_relative_difference": max_rel,
                    "cached_read_s": round(cached_s, 3),
                    "scaling": scaling,
                    "scaling_no_faster_than_rows": scaling_ok,
                    "local_build_rows": LOCAL_BUILD_ROWS,
                }
            )
        )
    finally:
        ray.shutdown()
        shutil.rmtree(workdir, ignore_errors=True)
    if not same:
        for problem in problems:
            print(f"error: atlas_ray's frame differs from the pandas reference: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
