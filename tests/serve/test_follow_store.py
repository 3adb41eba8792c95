"""``--feed store:``: a live model follows bars as they are ingested, stops cleanly on SIGTERM, and
after a restart goes on from the newest prediction in redis: no bar missed, none twice. While it runs,
its metrics scraped from the endpoint the command names equal the deployment's own counts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from atlas_ray.featurestore import MarketStore
from tests.conftest import ROOT
from tests.serve._replay import trial_of
from tests.serve._scrape import expected_from_stats, scrape, wait_for_metrics
from tests.serve.conftest import RedisServer, free_port

pytestmark = pytest.mark.slow

T0 = pd.Timestamp("2023-03-02T06:00Z")


def ingest(source: MarketStore, target: MarketStore, lo: pd.Timestamp, hi: pd.Timestamp) -> None:
    for exchange in ("coinbase", "kraken"):
        bars = source.read(exchange, "btc_usd", "bars_1m", lo, hi)
        target.write(bars, exchange=exchange, pair="btc_usd", kind="bars_1m")


def start(
    experiment: Path, trial: str, store: MarketStore, redis: RedisServer, feed: str, http_port: int = 0
) -> subprocess.Popen[str]:
    command = [
        sys.executable,
        "-m",
        "atlas_ray.serve",
        str(experiment),
        "--trial",
        trial,
        "--name",
        "follow",
        "--feed",
        feed,
        "--poll",
        "0.5",
        "--store",
        str(store.root),
        "--redis",
        redis.url,
        "--http-port",
        str(http_port or free_port()),
        "--status-every",
        "0",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for_latest(
    redis: RedisServer, ts: str, process: subprocess.Popen[str], timeout: float = 120
) -> None:
    client = redis.client()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.hget("atlas:pred:follow", "ts") == ts:
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.2)
    pytest.fail(f"no prediction for {ts} within {timeout} s")


def metrics_endpoint(process: subprocess.Popen[str]) -> str:
    """The address the command says to scrape (its line at start, read as it is printed)."""
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        if "metrics (Prometheus text" in line:
            return line.split("/metrics", 1)[0].rsplit("http://", 1)[1]
    pytest.fail(f"the serve command named no metrics endpoint: {''.join(seen)}")


def stats(http_port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/follow/stats", timeout=30) as response:
        return dict(json.loads(response.read()))


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err[-2000:]
    return out


def test_follow_the_store_across_a_restart(
    served_experiment: Path, minute_store: MarketStore, redis_server: RedisServer, tmp_path: Path
) -> None:
    trial = trial_of(served_experiment, "logistic")
    store = MarketStore(tmp_path / "growing")
    ingest(minute_store, store, T0 - pd.Timedelta("3h"), T0)
    redis_server.client().delete("atlas:pred:follow", "atlas:pred:follow:stream")

    port = free_port()
    first = start(served_experiment, trial, store, redis_server, f"store:{T0.isoformat()}", port)
    endpoint = metrics_endpoint(first)
    assert endpoint.startswith("127.0.0.1:")  # a local Ray exports on loopback only
    time.sleep(2)
    ingest(minute_store, store, T0, T0 + pd.Timedelta("10min"))  # bars arrive while it runs
    wait_for_latest(redis_server, "2023-03-02T06:09:00Z", first)
    # the metrics a desk scrapes equal the deployment's own counts (each histogram: one per write)
    counts = stats(port)
    assert counts["written"] == 10 and counts["buffered"] == 0
    samples = wait_for_metrics(lambda: scrape(endpoint), "follow", expected_from_stats(counts))
    assert any(name == "ray_atlas_live_freshness_ms_bucket" for name, _ in samples)
    out = stop(first)
    assert "predictions written 10" in out and "close->redis p50 " in out

    ingest(minute_store, store, T0 + pd.Timedelta("10min"), T0 + pd.Timedelta("15min"))  # while it was down
    second = start(served_experiment, trial, store, redis_server, "store:")
    wait_for_latest(redis_server, "2023-03-02T06:14:00Z", second)
    ingest(minute_store, store, T0 + pd.Timedelta("15min"), T0 + pd.Timedelta("20min"))
    wait_for_latest(redis_server, "2023-03-02T06:19:00Z", second)
    stop(second)

    stamps = [pd.Timestamp(f["ts"]) for _, f in redis_server.client().xrange("atlas:pred:follow:stream")]
    assert stamps == list(
        pd.date_range(T0, T0 + pd.Timedelta("19min"), freq="1min")
    )  # none missed, none twice
