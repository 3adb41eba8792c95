"""Shared fixtures: the real market data, a real local Ray cluster on 127.0.0.1, and a market store
holding the real Coinbase and Kraken minute bars of March 2023."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from atlas_ray.featurestore import MarketStore

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ATLAS_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """``../shared/data``: the real market data (see its README)."""
    if not (DATA / "README.md").exists():
        pytest.fail(f"the real market data is missing: {DATA} has no README.md")
    return DATA


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    """A real local Ray cluster on 127.0.0.1 with token authentication and the dashboard, shared by the
    whole session (started by ``atlas_ray._ray_runtime``, as the commands start theirs)."""
    import ray

    from atlas_ray import _ray_runtime

    _ray_runtime.start_local(num_cpus=2, object_store_memory=1_500_000_000)
    yield
    ray.shutdown()


# ---------------------------------------------------------------- market stores (real data, ingested)
MINUTE_BAR_FILES = (
    ("coinbase_btcusd.parquet", "coinbase", "btc_usd"),
    ("kraken_btcusd.parquet", "kraken", "btc_usd"),
    ("binance_btcusdt.parquet", "binance", "btc_usdt"),
)


@pytest.fixture(scope="session")
def minute_store(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> MarketStore:
    """A ``MarketStore`` in a temporary folder holding the real 1-minute bars of March 2023:
    coinbase btc_usd, kraken btc_usd and binance btc_usdt (``bars_1m``), ingested with ``store.ingest``.
    Read-only by convention: tests that write make their own store."""
    from atlas_ray.featurestore import MarketStore

    store = MarketStore(tmp_path_factory.mktemp("minute_store"))
    for name, exchange, pair in MINUTE_BAR_FILES:
        store.ingest(data_dir / "minute_bars_2023-03" / name, exchange=exchange, pair=pair)
    return store


@pytest.fixture(scope="session")
def book_store(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> MarketStore:
    """A ``MarketStore`` holding the order book of Bitstamp btc_usd rebuilt from the real order events
    of 2015-05-01 00:00..05:04 UTC: ``book`` (top 50 levels per side at every minute) and ``quotes``."""
    from atlas_ray.featurestore import MarketStore

    store = MarketStore(tmp_path_factory.mktemp("book_store"))
    events = data_dir / "bitstamp_orders_2015-05-01" / "orders.csv.xz"
    store.ingest(events, exchange="bitstamp", pair="btc_usd")
    return store


BITFLYER_DAYS = ("20180121", "20180122")


@pytest.fixture(scope="session")
def bitflyer_store(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> MarketStore:
    """A ``MarketStore`` holding bitFlyer btc_jpy for the JST days 2018-01-21 and 2018-01-22 (UTC
    2018-01-20 15:00 .. 2018-01-22 15:00): every execution (``trades``; ``store.bars`` builds 1m / 5m /
    10m / 1h bars from them) and the ticker (``quotes``, about one a minute)."""
    from atlas_ray.featurestore import MarketStore

    store = MarketStore(tmp_path_factory.mktemp("bitflyer_store"))
    folder = data_dir / "bitflyer_2018-01"
    executions = [folder / f"bitflyer.execution.{day}.BTC_JPY.csv.gz" for day in BITFLYER_DAYS]
    tickers = [folder / f"bitflyer.ticker.{day}.BTC_JPY.csv.gz" for day in BITFLYER_DAYS]
    store.ingest_many(executions, exchange="bitflyer", pair="btc_jpy")
    store.ingest_many(tickers, exchange="bitflyer", pair="btc_jpy")
    return store


@pytest.fixture(scope="session")
def lean_store(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> MarketStore:
    """A ``MarketStore`` holding the LEAN Coinbase btc_usd minute data: ``bars_1m`` from every trade zip
    (2016-10-07..09, 2017-09-03/04, 2017-12-17, 2018-04-04..06) and ``quotes`` from every quote zip
    (2017-09-03/04, 2017-12-17, 2018-04-04/05; a quote row is the bar's bid / ask close at t + 60 s)."""
    from atlas_ray.featurestore import MarketStore

    store = MarketStore(tmp_path_factory.mktemp("lean_store"))
    zips = sorted((data_dir / "lean_coinbase_btcusd").glob("*.zip"))
    store.ingest_many(zips, exchange="coinbase", pair="btc_usd")
    return store


@pytest.fixture(scope="session")
def cdd_store(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> MarketStore:
    """A ``MarketStore`` holding the CryptoDataDownload hourly bars (``bars_1h``) of bitstamp btc_usd
    (2017-07-01..2019-03-12, one 50-day gap) and bitfinex btc_usd (2017-10-09..2019-03-12)."""
    from atlas_ray.featurestore import MarketStore

    store = MarketStore(tmp_path_factory.mktemp("cdd_store"))
    folder = data_dir / "hourly_cdd"
    store.ingest(folder / "Bitstamp_BTCUSD_1h.csv", exchange="bitstamp", pair="btc_usd")
    store.ingest(folder / "Bitfinex_BTCUSD_1h.csv", exchange="bitfinex", pair="btc_usd")
    return store
