"""Benchmark: ingesting the ~750,000 real bitFlyer executions (all five days) into a fresh store.

Times ``MarketStore.ingest_many`` with every row check on (the default ``RowChecks``: bad times,
prices, sizes, price outliers, duplicates and conflicts; parse, validate, UTC conversion, write
partitioned parquet, keep each file's report) and, as references measured in the same run on the
same gzipped files (reading only, no validation, no writing):

* ``pyarrow.csv.read_csv(path)`` of each file: Arrow's multi-threaded CSV reader with its own gzip
  stream, the floor a plain read reaches (an ingest reads at least that much);
* ``pandas.read_csv(path)`` of each file.

Target (issue 27): atlas_ray's rows/s >= 0.8x the floor's rows/s measured in the same run
(``atlas_over_pyarrow``; ``ratio`` is the same figure, ``target`` 0.8). Issue 12's absolute 2,000,000
rows/s sat at the floor itself on the 2-core machine, so it was restated as a ratio to the floor.

The runs alternate ``--repeat`` times (default 3) and each keeps its best time: the machine is shared,
so the best run is the least disturbed one, and the ratios between figures of the same run hold under
load where the absolute rows/s do not. The load average is printed with the figures, and so are the
CPU seconds of each side (all threads; ``cpu_ratio`` = pyarrow's over atlas_ray's): on a loaded
machine the wall-clock ratio follows the CPU ratio, which varies far less from run to run.

Same results, checked on every run (else the benchmark exits with status 1 after its JSON line):

* the three read the same number of rows, and the store holds every row the reports say was written;
* the store's content equals the pinned ``STORE_DIGEST`` and the reports equal ``REPORTS_DIGEST``.
  Both were computed with ``store_digest`` / ``reports_digest`` below on commit 18d87e5 (main before
  issue 27's ingest work), by ingesting the five files into a fresh store exactly as ``time_atlas``
  does: the store digest covers each partition's path and every column's name, type, nulls and values
  in stored order; the reports digest covers each report's counts by reason, fixes, written rows,
  gaps and gap ranges, time span, first examples (line, field, value, rule) and summary line.

    .venv/bin/python benchmarks/bench_ingest.py [--repeat N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from atlas_ray.featurestore import IngestReport, MarketStore  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "bitflyer_2018-01"
TARGET = 0.8
STORE_DIGEST = "6b335d4195893927eab36838116ce04e14e3ac58970e525e5c63ddfbd282d37e"
REPORTS_DIGEST = "a1395fac910bd10ec42e30e4234e85bb5b134431ccd4f6b6d9732b00b209de2e"


def store_digest(root: Path) -> str:
    """SHA-256 over every partition file of the store (in path order): its path under ``root``, and
    each column's name, type, length, null count, null mask and values in stored order."""
    digest = hashlib.sha256()
    for path in sorted(root.glob("exchange=*/pair=*/kind=*/date=*/data.parquet")):
        table = pq.read_table(path)
        digest.update(str(path.relative_to(root)).encode())
        for name in table.column_names:
            column = table.column(name).combine_chunks()
            digest.update(f"|{name}:{column.type}:{len(column)}:{column.null_count}|".encode())
            if pa.types.is_dictionary(column.type):
                column = column.dictionary_decode()
            if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                digest.update("\x1f".join(pc.fill_null(column, "\x00").to_pylist()).encode())
            else:
                if column.null_count:
                    digest.update(np.asarray(column.is_null().to_numpy(zero_copy_only=False)).tobytes())
                values = column.cast(pa.int64()) if pa.types.is_timestamp(column.type) else column
                digest.update(np.ascontiguousarray(pc.fill_null(values, 0).to_numpy()).tobytes())
    return digest.hexdigest()


def reports_digest(reports: Sequence[IngestReport]) -> str:
    """SHA-256 over each report's content (not where it was kept, nor when)."""
    digest = hashlib.sha256()
    for r in reports:
        content = {
            "file": r.file,
            "format": r.format,
            "exchange": r.exchange,
            "pair": r.pair,
            "kinds": list(r.kinds),
            "rows_read": r.rows_read,
            "rows_written": r.rows_written,
            "rejected": dict(r.rejected),
            "fixed": dict(r.fixed),
            "written": dict(r.written),
            "gaps": r.gaps,
            "gap_ranges": [str(g) for g in r.gap_ranges],
            "start": str(r.start),
            "end": str(r.end),
            "examples": {k: [d.as_dict() for d in v] for k, v in r.examples.items()},
            "market_note": r.market_note,
            "summary": str(r),
        }
        digest.update(json.dumps(content, sort_keys=True).encode())
    return digest.hexdigest()


def time_atlas(files: list[Path]) -> tuple[float, int, int, int, str, str, float]:
    """Seconds, rows read, rows the reports say were written, rows the store then holds, the
    store's and the reports' digests, and the process's CPU seconds (every thread)."""
    folder = Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    try:
        store = MarketStore(folder / "store")
        start, cpu = time.perf_counter(), time.process_time()
        reports = store.ingest_many(files, exchange="bitflyer", pair="btc_jpy")
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        stored = len(store.read("bitflyer", "btc_jpy", "trades"))
        return (
            elapsed,
            sum(r.rows_read for r in reports),
            sum(r.rows_written for r in reports),
            stored,
            store_digest(folder / "store"),
            reports_digest(reports),
            cpu,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def time_pandas(files: list[Path]) -> tuple[float, int]:
    start = time.perf_counter()
    rows = sum(len(pd.read_csv(path)) for path in files)
    return time.perf_counter() - start, rows


def time_pyarrow(files: list[Path]) -> tuple[float, int, float]:
    start, cpu = time.perf_counter(), time.process_time()
    rows = sum(pcsv.read_csv(path).num_rows for path in files)
    return time.perf_counter() - start, rows, time.process_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="alternating runs of each; the best is kept")
    args = parser.parse_args()
    files = sorted(DATA.glob("bitflyer.execution.*.BTC_JPY.csv.gz"))
    atlas_runs, pandas_runs, arrow_runs = [], [], []
    load_before = os.getloadavg()[0]
    for _ in range(args.repeat):
        atlas_runs.append(time_atlas(files))
        pandas_runs.append(time_pandas(files))
        arrow_runs.append(time_pyarrow(files))
    load_after = os.getloadavg()[0]
    atlas = min(atlas_runs, key=lambda r: r[0])
    pandas_best = min(pandas_runs, key=lambda r: r[0])
    arrow_best = min(arrow_runs, key=lambda r: r[0])
    atlas_rate = atlas[1] / atlas[0]
    pandas_rate = pandas_best[1] / pandas_best[0]
    arrow_rate = arrow_best[1] / arrow_best[0]
    over_arrow = atlas_rate / arrow_rate
    atlas_cpu = min(r[6] for r in atlas_runs)
    arrow_cpu = min(r[2] for r in arrow_runs)
    problems = []
    if not atlas[1] == pandas_best[1] == arrow_best[1]:
        problems.append(
            f"rows read differ: atlas_ray {atlas[1]}, pandas {pandas_best[1]}, pyarrow {arrow_best[1]}"
        )
    for run in atlas_runs:
        if run[2] != run[3]:
            problems.append(f"the reports say {run[2]} rows were written, but the store holds {run[3]}")
        if run[4] != STORE_DIGEST:
            problems.append(
                f"the store's content differs from the reference (digest {run[4]}, not {STORE_DIGEST})"
            )
        if run[5] != REPORTS_DIGEST:
            problems.append(f"the reports differ from the reference (digest {run[5]}, not {REPORTS_DIGEST})")
    problems = list(dict.fromkeys(problems))
    print(f"files: {len(files)} bitFlyer execution files, {atlas[1]:,} rows (best of {args.repeat} runs)")
    print(f"load average (1 min) on {os.cpu_count()} cores: {load_before:.1f} before, {load_after:.1f} after")
    print(
        f"atlas_ray ingest (parse + every row check + write parquet): {atlas[0]:.3f} s, "
        f"{atlas_rate:,.0f} rows/s ({atlas[2]:,} rows written, {atlas[1] - atlas[2]:,} rejected)"
    )
    print(f"pyarrow.csv.read_csv (read only, the floor): {arrow_best[0]:.3f} s, {arrow_rate:,.0f} rows/s")
    print(f"pandas.read_csv (read only, reference): {pandas_best[0]:.3f} s, {pandas_rate:,.0f} rows/s")
    print(f"atlas_ray / pandas.read_csv: {atlas_rate / pandas_rate:.2f}")
    print(f"atlas_ray / pyarrow.csv.read_csv: {over_arrow:.2f}   target: >= {TARGET}")
    print(
        f"CPU seconds (all threads, least of the runs): atlas_ray {atlas_cpu:.3f}, pyarrow.csv.read_csv "
        f"{arrow_cpu:.3f}, ratio {arrow_cpu / atlas_cpu:.2f} (under load wall time follows it)"
    )
    print(f"same store and reports as the reference: {'yes' if not problems else 'NO'}")
    print(
        json.dumps(
            {
                "rows": atlas[1],
                "atlas_s": round(atlas[0], 4),
                "pyarrow_read_csv_s": round(arrow_best[0], 4),
                "atlas_rows_per_s": round(atlas_rate),
                "pandas_read_csv_rows_per_s": round(pandas_rate),
                "pyarrow_read_csv_rows_per_s": round(arrow_rate),
                "atlas_over_pandas": round(atlas_rate / pandas_rate, 3),
                "atlas_over_pyarrow": round(over_arrow, 3),
                "atlas_cpu_s": round(atlas_cpu, 4),
                "pyarrow_read_csv_cpu_s": round(arrow_cpu, 4),
                "cpu_ratio": round(arrow_cpu / atlas_cpu, 3),
                "same_rows": not problems,
                "load": round(max(load_before, load_after), 2),
                "ratio": round(over_arrow, 3),
                "target": TARGET,
            }
        )
    )
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
