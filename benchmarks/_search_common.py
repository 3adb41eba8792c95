"""Shared set-up for the search benchmarks: a market store of the real minute bars in a temp folder."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ATLAS_DATA", ROOT.parent / "shared" / "data"))


def minute_store(folder: Path) -> object:
    """A MarketStore at ``folder`` holding Coinbase and Kraken BTC-USD minute bars of March 2023."""
    from atlas_ray.featurestore import MarketStore

    store = MarketStore(folder)
    bars = DATA / "minute_bars_2023-03"
    store.ingest(bars / "coinbase_btcusd.parquet", exchange="coinbase", pair="btc_usd")
    store.ingest(bars / "kraken_btcusd.parquet", exchange="kraken", pair="btc_usd")
    return store


def start_ray(cpus: int = 2) -> None:
    """A local Ray on 127.0.0.1 with token authentication and no dashboard (``atlas_ray._ray_runtime``)."""
    from atlas_ray import _ray_runtime

    _ray_runtime.start_local(num_cpus=cpus, dashboard=False)
