"""``--feed store:``: a live model follows bars as they are ingested, stops cleanly on SIGTERM, and
after a restart goes on from the newest prediction in redis: no bar missed, none twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from atlas_ray.featurestore import MarketStore
from tests.conftest import ROOT
from tests.serve._replay import trial_of
from tests.serve.conftest import RedisServer, free_port

pytestmark = pytest.mark.slow

T0 = pd.Timestamp("2023-03-02T06:00Z")


def ingest(source: MarketStore, target: MarketStore, lo: pd.Timestamp, hi: pd.Timestamp) -> None:
    for exchange in ("coinbase", "kraken"):
        bars = source.read(exchange, "btc_usd", "bars_1m", lo, hi)
        target.write(bars, exchange=exchange, pair="btc_usd", kind="bars_1m")


def start(
    experiment: Path, trial: str, store: MarketStore, redis: RedisServer, feed: str
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
        str(free_port()),
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

    first = start(served_experiment, trial, store, redis_server, f"store:{T0.isoformat()}")
    time.sleep(2)
    ingest(minute_store, store, T0, T0 + pd.Timedelta("10min"))  # bars arrive while it runs
    wait_for_latest(redis_server, "2023-03-02T06:09:00Z", first)
    out = stop(first)
    assert "predictions written 10" in out

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
