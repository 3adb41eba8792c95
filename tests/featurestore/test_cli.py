"""``python -m atlas_ray.featurestore`` in a subprocess: exit codes, report lines, one error line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs the CLI in subprocesses: not in scripts/test.sh --quick

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, store: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ATLAS_STORE": str(store) if store else ""}
    return subprocess.run(
        [sys.executable, "-m", "atlas_ray.featurestore", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )


def test_ingest_then_show(data_dir: Path, tmp_path: Path) -> None:
    lean = data_dir / "lean_coinbase_btcusd"
    store = tmp_path / "store"
    done = _run(
        "ingest",
        str(lean / "20170903_trade.zip"),
        str(lean / "20170903_quote.zip"),
        "--exchange",
        "coinbase",
        "--pair",
        "btc_usd",
        "--store",
        str(store),
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("20170903_trade.zip: lean_trade -> coinbase/btc_usd bars_1m")
    assert "written 1440" in lines[0]
    shown = _run("show", store=store)  # the store from $ATLAS_STORE
    assert shown.returncode == 0, shown.stderr
    assert "bars_1m" in shown.stdout and "quotes" in shown.stdout and "coverage" in shown.stdout


def test_broken_file_is_one_error_line_and_exit_2(data_dir: Path, tmp_path: Path) -> None:
    raw = (data_dir / "bitflyer_2018-01" / "bitflyer.ticker.20180121.BTC_JPY.csv.gz").read_bytes()
    broken = tmp_path / "ticker.csv.gz"
    broken.write_bytes(raw[:5000])
    store = tmp_path / "store"
    done = _run("ingest", str(broken), "--exchange", "bitflyer", "--pair", "btc_jpy", "--store", str(store))
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: ingest: ticker.csv.gz: the gzip data is truncated")
    assert not store.exists() or not any(p.is_file() for p in store.rglob("*"))


def test_usage_mistakes_exit_2_with_one_line(tmp_path: Path, data_dir: Path) -> None:
    missing = _run("ingest", "--pair", "btc_usd", "--store", str(tmp_path))
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        "error: python -m atlas_ray.featurestore ingest: the following arguments are required: PATH"
    ]
    # A file that does not name its exchange needs --exchange (one that does is checked against it).
    lean = data_dir / "lean_coinbase_btcusd" / "20180404_trade.zip"
    unnamed = _run("ingest", str(lean), "--pair", "btc_usd", "--store", str(tmp_path / "s"))
    assert unnamed.returncode == 2
    assert unnamed.stderr.strip().splitlines() == [
        "error: ingest: 20180404_trade.zip: --exchange is needed: the file names no exchange"
    ]
    assert not (tmp_path / "s").exists()
    bad_format = _run(
        "ingest",
        str(data_dir / "README.md"),
        "--exchange",
        "x",
        "--pair",
        "y",
        "--format",
        "csv",
        "--store",
        str(tmp_path),
    )
    assert bad_format.returncode == 2 and len(bad_format.stderr.strip().splitlines()) == 1
    assert "invalid choice: 'csv'" in bad_format.stderr


def test_show_an_empty_store(tmp_path: Path) -> None:
    done = _run("show", "--store", str(tmp_path / "nothing"))
    assert done.returncode == 0
    assert done.stdout.strip().endswith(": empty")


def test_strict_refuses_on_the_first_defect_and_show_lists_the_reports(
    data_dir: Path, tmp_path: Path
) -> None:
    import pandas as pd

    frame = pd.read_parquet(data_dir / "minute_bars_2023-03" / "kraken_btcusd.parquet").iloc[:500]
    frame.iloc[40, frame.columns.get_loc("low")] = frame["high"].iloc[40] + 1  # line 41: low above high
    path = tmp_path / "kraken_500.parquet"
    frame.to_parquet(path)
    store = tmp_path / "store"
    args = ("ingest", str(path), "--exchange", "kraken", "--pair", "btc_usd", "--store", str(store))
    strict = _run(*args, "--strict")
    assert strict.returncode == 2 and strict.stdout == ""
    lines = strict.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: ingest: kraken_500.parquet row 41 field 'low'") and "ohlc" in lines[0]
    assert not store.exists()
    done = _run(*args)
    assert done.returncode == 0, done.stderr
    assert "written 499, rejected 1 (ohlc 1), fixed 0" in done.stdout
    shown = _run("show", "--store", str(store))
    assert shown.returncode == 0, shown.stderr
    assert f"ingest reports (1), kept in {store}/exchange=E/pair=P/_reports/:" in shown.stdout
    assert list((store / "exchange=kraken" / "pair=btc_usd" / "_reports").glob("*.json"))
    assert shown.stdout.count(done.stdout.strip()) == 1
    assert str(store) not in shown.stdout.split("_reports/:")[1]  # the folder is said once
