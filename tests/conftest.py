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
    """A real local Ray cluster bound to 127.0.0.1, shared by the whole session."""
    import ray

    if not ray.is_initialized():
        ray.init(
            num_cpus=2,
            _node_ip_address="127.0.0.1",
            include_dashboard=True,
            dashboard_host="127.0.0.1",
            dashboard_port=None,
            log_to_driver=False,
            configure_logging=False,
            object_store_memory=1_500_000_000,
        )
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
