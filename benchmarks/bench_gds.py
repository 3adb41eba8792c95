"""Benchmark: rows per second from a Gryphon Data Service database into the store.

Fills a fresh GDS-schema database (Gryphon's ``trade`` table) on the machine's MariaDB (or a private
one started for the run, see ``atlas_ray.featurestore._gds._gds_testing``) with real bitFlyer executions,
then times, in the same run:

* atlas_ray: ``ingest_gds`` into a fresh store (paged reads past the watermark, validation, parquet
  writes, watermark saved after each page);
* the reference: a plain ``SELECT`` of the same rows into a pandas DataFrame (pymysql ``fetchall``,
  nothing validated or written).

Both must give the same rows (count, trade ids, total volume) or the benchmark exits 1. ``ratio`` is
atlas_ray's rate over the reference's; the target is ``ratio >= 0.7``: the reference is the bare cost of
getting the rows out of MariaDB through the same client, which the ingest cannot avoid, so 0.7 means
everything atlas_ray adds (validation, parquet writes, the watermark after each page) costs at most ~40%
on top of the read (measured: about 0.95 on the 2-core machine, so the target leaves room for noise but
catches a change that doubles the overhead). The last line is one JSON object.

    .venv/bin/python benchmarks/bench_gds.py [--days N] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from atlas_ray.featurestore import MarketStore  # noqa: E402
from atlas_ray.featurestore._formats import read_source  # noqa: E402
from atlas_ray.featurestore._gds._gds import ingest_gds  # noqa: E402
from atlas_ray.featurestore._gds._gds_schema import create_gds_tables, insert_trades, trade_rows  # noqa: E402
from atlas_ray.featurestore._gds._gds_testing import LocalMariaDB, local_mariadb  # noqa: E402
from atlas_ray.featurestore._store._ingest import validate  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "bitflyer_2018-01"
TARGET = 0.7


def load(server: LocalMariaDB, database: str, days: int) -> int:
    connection = server.connect(database)
    create_gds_tables(connection)
    total = 0
    for path in sorted(DATA.glob("bitflyer.execution.*.BTC_JPY.csv.gz"))[:days]:
        frame, _ = validate(read_source(path))
        rows = trade_rows(frame, exchange="BITFLYER_BTC_JPY", volume_currency="BTC", price_currency="JPY")
        insert_trades(connection, rows)
        total += len(rows)
    connection.close()
    return total


def time_atlas(url: str) -> tuple[float, pd.DataFrame]:
    folder = Path(tempfile.mkdtemp(prefix="bench_gds_"))
    try:
        store = MarketStore(folder / "store")
        start = time.perf_counter()
        ingest_gds(store, url)
        elapsed = time.perf_counter() - start
        return elapsed, store.read("bitflyer", "btc_jpy", "trades")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def time_select(server: LocalMariaDB, database: str) -> tuple[float, pd.DataFrame]:
    columns = [
        "trade_id",
        "exchange",
        "timestamp",
        "exchange_trade_id",
        "price",
        "price_currency",
        "volume",
        "volume_currency",
    ]
    connection = server.connect(database)
    start = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(f'`{c}`' for c in columns)} FROM trade")
        frame = pd.DataFrame(cursor.fetchall(), columns=columns)
    elapsed = time.perf_counter() - start
    connection.close()
    return elapsed, frame


def same_rows(stored: pd.DataFrame, selected: pd.DataFrame) -> list[str]:
    problems = []
    if len(stored) != len(selected):
        problems.append(f"row counts differ: store {len(stored)}, SELECT {len(selected)}")
    if set(stored["trade_id"]) != set(selected["exchange_trade_id"].astype(str)):
        problems.append("trade ids differ")
    volume = float(np.sum(selected["volume"].astype(float)))
    if not np.isclose(stored["size"].sum(), volume, rtol=1e-12):
        problems.append(f"total volume differs: store {stored['size'].sum()}, SELECT {volume}")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=2, help="days of bitFlyer executions to load (1-5)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each; the best is reported")
    args = parser.parse_args()
    with local_mariadb() as server:
        database = f"atlas_gds_bench_{uuid.uuid4().hex[:10]}"
        admin = server.connect(autocommit=True)
        admin.cursor().execute(f"CREATE DATABASE {database}")
        try:
            start = time.perf_counter()
            rows = load(server, database, args.days)
            print(f"loaded {rows:,} real bitFlyer executions into GDS in {time.perf_counter() - start:.1f} s")
            url = server.url(database)
            atlas: list[tuple[float, Any]] = []
            select: list[tuple[float, Any]] = []
            for _ in range(args.repeat):  # interleaved, so both see the same server state
                atlas.append(time_atlas(url))
                select.append(time_select(server, database))
            atlas_s, stored = min(atlas, key=lambda r: r[0])
            select_s, selected = min(select, key=lambda r: r[0])
        finally:
            admin.cursor().execute(f"DROP DATABASE IF EXISTS {database}")
            admin.close()
    problems = same_rows(stored, selected)
    atlas_rate, select_rate = rows / atlas_s, rows / select_s
    ratio = atlas_rate / select_rate
    print(f"atlas_ray ingest_gds -> store: {atlas_s:.2f} s, {atlas_rate:,.0f} rows/s (best of {args.repeat})")
    print(f"plain SELECT -> pandas:        {select_s:.2f} s, {select_rate:,.0f} rows/s")
    print(f"ratio {ratio:.2f} (target >= {TARGET}); same rows: {problems or 'yes'}")
    print(
        json.dumps(
            {
                "rows": rows,
                "gds_rows_per_s": round(atlas_rate),
                "select_rows_per_s": round(select_rate),
                "ratio": round(ratio, 3),
                "target": TARGET,
                "same_rows": not problems,
            }
        )
    )
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
