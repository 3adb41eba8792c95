"""Shared fixtures: the real market data, a real local Ray cluster on 127.0.0.1, and a market store
holding the real Coinbase and Kraken minute bars of March 2023."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

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
