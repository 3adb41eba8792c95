"""Benchmark: ingesting the ~750,000 real bitFlyer executions (all five days) into a fresh store.

Times ``MarketStore.ingest_many`` (parse, validate, UTC conversion, write partitioned parquet) and, as
the reference measured in the same run, a plain ``pandas.read_csv`` of the same gzipped files (reading
only, no validation or writing). Prints rows per second for both, the ratio of atlas_ray's rate to the
target, and the target (>= 1,000,000 rows/s on the 2-core machine). The last line is one JSON object.

    .venv/bin/python benchmarks/bench_ingest.py [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from atlas_ray.featurestore import MarketStore  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "bitflyer_2018-01"
TARGET = 1_000_000.0


def time_atlas(files: list[Path]) -> tuple[float, int]:
    folder = Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    try:
        store = MarketStore(folder / "store")
        start = time.perf_counter()
        reports = store.ingest_many(files, exchange="bitflyer", pair="btc_jpy")
        elapsed = time.perf_counter() - start
        return elapsed, sum(r.rows_read for r in reports)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def time_pandas(files: list[Path]) -> tuple[float, int]:
    start = time.perf_counter()
    rows = sum(len(pd.read_csv(path)) for path in files)
    return time.perf_counter() - start, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best is reported")
    args = parser.parse_args()
    files = sorted(DATA.glob("bitflyer.execution.*.BTC_JPY.csv.gz"))
    atlas = min((time_atlas(files) for _ in range(args.repeat)), key=lambda r: r[0])
    reference = min((time_pandas(files) for _ in range(args.repeat)), key=lambda r: r[0])
    atlas_rate = atlas[1] / atlas[0]
    pandas_rate = reference[1] / reference[0]
    ratio = atlas_rate / TARGET
    print(f"files: {len(files)} bitFlyer execution files, {atlas[1]:,} rows (best of {args.repeat})")
    print(f"atlas_ray ingest (parse + validate + write parquet): {atlas[0]:.2f} s, {atlas_rate:,.0f} rows/s")
    print(f"pandas.read_csv (read only, reference): {reference[0]:.2f} s, {pandas_rate:,.0f} rows/s")
    print(f"atlas_ray / pandas.read_csv: {atlas_rate / pandas_rate:.2f}")
    print(f"ratio (atlas_ray rows/s / target): {ratio:.2f}   target: >= {TARGET:,.0f} rows/s")
    print(
        json.dumps(
            {
                "atlas_rows_per_s": round(atlas_rate),
                "pandas_read_csv_rows_per_s": round(pandas_rate),
                "ratio": round(ratio, 3),
                "target": TARGET,
            }
        )
    )


if __name__ == "__main__":
    main()
