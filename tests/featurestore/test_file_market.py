"""A file's own market columns against ``--exchange`` / ``--pair`` (``_file_market``), on real bitFlyer
and CryptoDataDownload files rewritten in ``tmp_path``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from atlas_ray.errors import IngestError
from atlas_ray.featurestore import MarketStore
from atlas_ray.featurestore._store._file_market import market_key

FLYER = "bitflyer_2018-01/bitflyer.execution.20180121.BTC_JPY.csv.gz"
TICKER = "bitflyer_2018-01/bitflyer.ticker.20180121.BTC_JPY.csv.gz"
CDD = "hourly_cdd/Bitstamp_BTCUSD_1h.csv"


def _executions(data_dir: Path, rows: int = 3000) -> pd.DataFrame:
    return pd.read_csv(data_dir / FLYER, dtype=str, keep_default_na=False, nrows=rows)


def _written(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_a_file_of_another_market_is_refused_naming_both_and_the_store_is_untouched(
    data_dir: Path, tmp_path: Path
) -> None:
    raw = _executions(data_dir)
    path = _written(raw.assign(product_code="ETH_BTC"), tmp_path / "eth_btc.csv.gz")
    store = MarketStore(tmp_path / "store")
    store.ingest(_written(raw.iloc[:100], tmp_path / "btc_jpy.csv.gz"), exchange="bitflyer", pair="btc_jpy")
    before = {p: p.read_bytes() for p in _files(tmp_path / "store") if "_reports" not in p.parts}
    with pytest.raises(IngestError) as refused:
        store.ingest(path, exchange="bitflyer", pair="btc_jpy")
    assert str(refused.value) == (
        "ingest: eth_btc.csv.gz: the file's product_code says ETH_BTC, but --pair says btc_jpy: a file of "
        "another market is not stored as btc_jpy (give --pair eth_btc or leave it out to take the file's)"
    )
    after = {p: p.read_bytes() for p in _files(tmp_path / "store") if "_reports" not in p.parts}
    assert after == before
    assert store.pairs("bitflyer") == ["btc_jpy"]


def test_the_cli_refuses_it_in_one_line_with_exit_2(data_dir: Path, tmp_path: Path) -> None:
    path = _written(_executions(data_dir, 500).assign(product_code="ETH_BTC"), tmp_path / "eth_btc.csv.gz")
    store = tmp_path / "store"
    flags = ["--exchange", "bitflyer", "--pair", "btc_jpy", "--store", str(store)]
    done = subprocess.run(
        [sys.executable, "-m", "atlas_ray.featurestore", "ingest", str(path), *flags],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        "error: ingest: eth_btc.csv.gz: the file's product_code says ETH_BTC, but --pair"
    )
    assert _files(store) == []


def test_another_exchange_in_the_domain_column_is_refused(data_dir: Path, tmp_path: Path) -> None:
    path = _written(_executions(data_dir, 200), tmp_path / "flyer.csv.gz")
    with pytest.raises(IngestError, match=r"the file's domain says bitflyer\.jp, but --exchange says kraken"):
        MarketStore(tmp_path / "store").ingest(path, exchange="kraken", pair="btc_jpy")


def test_a_futures_code_is_another_market(data_dir: Path, tmp_path: Path) -> None:
    path = _written(_executions(data_dir, 200).assign(product_code="FX_BTC_JPY"), tmp_path / "fx.csv.gz")
    with pytest.raises(IngestError, match="product_code says FX_BTC_JPY, but --pair says btc_jpy"):
        MarketStore(tmp_path / "store").ingest(path, exchange="bitflyer", pair="btc_jpy")


def test_rows_of_another_market_in_a_mixed_file_are_refused_and_counted(
    data_dir: Path, tmp_path: Path
) -> None:
    raw = _executions(data_dir)
    mixed = raw.copy()
    other = mixed.index % 10 == 3
    mixed.loc[other, "product_code"] = "ETH_BTC"
    clean = MarketStore(tmp_path / "clean")
    clean.ingest(_written(raw.loc[~other], tmp_path / "clean.csv.gz"), exchange="bitflyer", pair="btc_jpy")
    store = MarketStore(tmp_path / "store")
    report = store.ingest(_written(mixed, tmp_path / "mixed.csv.gz"), exchange="bitflyer", pair="btc_jpy")
    assert report.rejected["other_market"] == int(other.sum())
    example = report.examples["other_market"][0]
    assert example.field == "product_code" and example.value == "ETH_BTC"
    assert example.rule == "the row's product_code says ETH_BTC, not btc_jpy (the pair ingested)"
    assert f"other_market {int(other.sum())} [product_code ETH_BTC, not btc_jpy]" in str(report)
    pd.testing.assert_frame_equal(
        store.read("bitflyer", "btc_jpy", "trades"), clean.read("bitflyer", "btc_jpy", "trades")
    )
    with pytest.raises(
        IngestError, match=r"row \d+ field 'product_code': 'ETH_BTC': other_market: the row's"
    ):
        MarketStore(tmp_path / "strict").ingest(
            tmp_path / "mixed.csv.gz", exchange="bitflyer", pair="btc_jpy", strict=True
        )


def test_without_flags_the_market_is_taken_from_the_file_and_said(data_dir: Path, tmp_path: Path) -> None:
    store = MarketStore(tmp_path / "store")
    report = store.ingest(data_dir / TICKER)
    assert (report.exchange, report.pair) == ("bitflyer", "btc_jpy")
    assert (
        "-> bitflyer/btc_jpy (exchange from domain bitflyer.jp, pair from product_code BTC_JPY) quotes"
        in str(report)
    )
    assert store.kinds("bitflyer", "btc_jpy") == ["quotes"]
    kept = json.loads(Path(report.report_path or "").read_text())
    assert kept["market_from_file"] == "(exchange from domain bitflyer.jp, pair from product_code BTC_JPY)"
    # CryptoDataDownload names the pair (Symbol BTCUSD) but not the exchange.
    with pytest.raises(
        IngestError,
        match=r"^ingest: Bitstamp_BTCUSD_1h\.csv: --exchange is needed: the file names no exchange$",
    ):
        store.ingest(data_dir / CDD)
    bars = store.ingest(data_dir / CDD, exchange="bitstamp")
    assert bars.pair == "btc_usd" and "(pair from Symbol BTCUSD)" in str(bars)
    with pytest.raises(IngestError, match="the file's Symbol says BTCUSD, but --pair says eth_usd"):
        store.ingest(data_dir / CDD, exchange="bitstamp", pair="eth_usd")


def test_a_file_of_several_markets_without_a_flag_is_refused(data_dir: Path, tmp_path: Path) -> None:
    raw = _executions(data_dir, 300)
    raw.loc[raw.index[:100], "product_code"] = "ETH_BTC"
    path = _written(raw, tmp_path / "mixed.csv.gz")
    with pytest.raises(IngestError) as refused:
        MarketStore(tmp_path / "store").ingest(path, exchange="bitflyer")
    assert str(refused.value) == (
        "ingest: mixed.csv.gz: the file's product_code names several markets (BTC_JPY (200 rows), ETH_BTC "
        "(100 rows)); give --pair to choose one (the rows of the others are then refused as other_market)"
    )
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize(
    ("part", "a", "b"),
    [
        ("pair", "BTC_JPY", "btc_jpy"),
        ("pair", "BTCUSD", "btc_usd"),
        ("pair", "XBT/USD", "btc_usd"),
        ("exchange", "bitflyer.jp", "bitflyer"),
        ("exchange", "www.bitstamp.net", "bitstamp"),
    ],
)
def test_names_compare_without_case_or_separators(part: str, a: str, b: str) -> None:
    assert market_key(part, a) == market_key(part, b)


def test_names_of_other_markets_differ() -> None:
    assert market_key("pair", "FX_BTC_JPY") != market_key("pair", "btc_jpy")
    assert market_key("pair", "ETH_BTC") != market_key("pair", "btc_eth")
