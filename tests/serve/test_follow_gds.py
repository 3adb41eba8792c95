"""``--feed gds:``: a live model on the Gryphon Data Service as it fills (real MariaDB, real redis, real Ray).

The GDS ``trade`` table is filled with four trades per real Coinbase and Kraken minute bar (its open,
high, low and close, a quarter of its volume each, 15 s apart), so the bars the store builds from
them are the real bars: the live predictions must equal the search's own predictions for those bars.
"""

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
from atlas_ray.featurestore._gds._gds_schema import create_gds_tables, insert_trades, trade_rows
from atlas_ray.featurestore._gds._gds_testing import LocalMariaDB
from atlas_ray.search import read_result
from tests.conftest import ROOT
from tests.serve._replay import check_entries, trial_of
from tests.serve.conftest import RedisServer, free_port

pytestmark = pytest.mark.slow

T0 = pd.Timestamp("2023-03-02T06:00Z")


def trades_of(bars: pd.DataFrame) -> pd.DataFrame:
    """Four trades a bar that rebuild it exactly: open, high, low, close at +0, 15, 30, 45 s."""
    parts = []
    for k, column in enumerate(("open", "high", "low", "close")):
        parts.append(
            pd.DataFrame(
                {
                    "timestamp": bars.index + pd.Timedelta(seconds=15 * k),
                    "price": bars[column].to_numpy(),
                    "size": bars["volume"].to_numpy() / 4.0,
                    "trade_id": [f"{t.value}-{k}" for t in bars.index],
                }
            )
        )
    return pd.concat(parts).sort_values("timestamp", kind="stable").reset_index(drop=True)


def fill(connection: object, source: MarketStore, lo: pd.Timestamp, hi: pd.Timestamp) -> None:
    for exchange in ("coinbase", "kraken"):
        bars = source.read(exchange, "btc_usd", "bars_1m", lo, hi)
        bars = bars[bars["volume"] > 0]
        rows = trade_rows(
            trades_of(bars), exchange=exchange.upper(), volume_currency="BTC", price_currency="USD"
        )
        insert_trades(connection, rows)


def test_a_live_model_on_a_filling_gds(
    served_experiment: Path,
    minute_store: MarketStore,
    redis_server: RedisServer,
    mariadb: LocalMariaDB,
    gds_database: str,
    tmp_path: Path,
) -> None:
    trial = trial_of(served_experiment, "logistic")
    connection = mariadb.connect(gds_database)
    create_gds_tables(connection)
    fill(connection, minute_store, T0 - pd.Timedelta("40min"), T0)
    redis_server.client().delete("atlas:pred:gdslive", "atlas:pred:gdslive:stream")
    command = [
        sys.executable,
        "-m",
        "atlas_ray.serve",
        str(served_experiment),
        "--trial",
        trial,
        "--name",
        "gdslive",
        "--feed",
        f"gds:{mariadb.url(gds_database)}",
        "--poll",
        "0.5",
        "--store",
        str(tmp_path / "store"),
        "--redis",
        redis_server.url,
        "--http-port",
        str(free_port()),
        "--status-every",
        "0",
    ]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    client = redis_server.client()
    try:
        time.sleep(3)
        fill(connection, minute_store, T0, T0 + pd.Timedelta("10min"))  # the database fills while it runs
        deadline = time.monotonic() + 120
        while client.hget("atlas:pred:gdslive", "ts") != "2023-03-02T06:08:00Z":
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no prediction for 06:08 (closed by the 06:09 trades)"
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
        connection.close()  # type: ignore[attr-defined]
    assert process.returncode == 0, err[-2000:]
    entries = [fields for _, fields in client.xrange("atlas:pred:gdslive:stream")]
    stamps = [pd.Timestamp(e["ts"]) for e in entries]
    assert stamps == sorted(set(stamps)) and T0 + pd.Timedelta("8min") in stamps
    offline = read_result(str(served_experiment / "trials" / trial)).predictions
    compared = check_entries(entries, offline, ("down", "flat", "up"), since=T0 - pd.Timedelta("20min"))
    assert compared >= 25, out


def gds_command(
    experiment: Path, trial: str, name: str, url: str, store: Path, redis: RedisServer
) -> list[str]:
    return [
        sys.executable, "-m", "atlas_ray.serve", str(experiment), "--trial", trial, "--name", name,
        "--feed", f"gds:{url}", "--poll", "0.3", "--store", str(store), "--redis", redis.url,
        "--http-port", str(free_port()), "--status-every", "0",
    ]  # fmt: skip


def wait_for(
    client: object, name: str, ts: str, process: subprocess.Popen[str], timeout: float = 180
) -> None:
    deadline = time.monotonic() + timeout
    while client.hget(f"atlas:pred:{name}", "ts") != ts:  # type: ignore[attr-defined]
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"no prediction for {ts} within {timeout} s"
        time.sleep(0.2)


def test_a_gds_feed_killed_inside_a_bar_neither_misses_nor_repeats_a_bar_after_a_restart(
    served_experiment: Path,
    minute_store: MarketStore,
    redis_server: RedisServer,
    mariadb: LocalMariaDB,
    gds_database: str,
    tmp_path: Path,
) -> None:
    """SIGKILL while the bar of 06:05 is open, its first two trades read into the store; the rest of its
    trades come while nothing runs. The restarted feed goes on after the newest prediction in redis
    (06:04): 06:05 is predicted once, whole (equal to the search's own prediction), and so is each bar
    after it."""
    trial = trial_of(served_experiment, "logistic")
    connection = mariadb.connect(gds_database)
    create_gds_tables(connection)
    trades = {
        exchange: trades_of(minute_store.read(exchange, "btc_usd", "bars_1m", T0 - pd.Timedelta("40min"),
                                              T0 + pd.Timedelta("11min")).query("volume > 0"))
        for exchange in ("coinbase", "kraken")
    }  # fmt: skip
    inside = T0 + pd.Timedelta("5min 20s")  # after the trades of 06:05:00 and 06:05:15

    def insert(lo: pd.Timestamp, hi: pd.Timestamp) -> None:
        for exchange, frame in trades.items():
            part = frame.loc[(frame["timestamp"] >= lo) & (frame["timestamp"] < hi)]
            rows = trade_rows(part, exchange=exchange.upper(), volume_currency="BTC", price_currency="USD")
            insert_trades(connection, rows)

    name = "gdsrestart"
    client = redis_server.client()
    client.delete(f"atlas:pred:{name}", f"atlas:pred:{name}:stream")
    store = tmp_path / "store"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    insert(T0 - pd.Timedelta("40min"), inside)
    url = mariadb.url(gds_database)
    first = subprocess.Popen(
        gds_command(served_experiment, trial, name, url, store, redis_server),
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for(client, name, "2023-03-02T06:04:00Z", first)  # closed by the trade of 06:05:00
        # every trade inserted was read into the store in the round that closed 06:04 (one page)
        held = MarketStore(store).read("coinbase", "btc_usd", "trades")
        assert held.index.max() == T0 + pd.Timedelta("5min 15s")
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=60)
    assert first.returncode == -signal.SIGKILL
    insert(inside, T0 + pd.Timedelta("11min"))  # the rest of 06:05, then 06:06 .. 06:10, while it is down

    second = subprocess.Popen(
        gds_command(served_experiment, trial, name, url, store, redis_server),
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for(client, name, "2023-03-02T06:09:00Z", second)  # closed by the trades of 06:10
        time.sleep(1.0)
    finally:
        second.send_signal(signal.SIGTERM)
        out, err = second.communicate(timeout=90)
        connection.close()
    assert second.returncode == 0, err[-3000:]
    # the sink would refuse a repeated bar (its stream id is the bar's time): the feed must not send one
    assert "| repeated 0 |" in out, out
    entries = [fields for _, fields in client.xrange(f"atlas:pred:{name}:stream")]
    stamps = [pd.Timestamp(e["ts"]) for e in entries]
    assert stamps == sorted(set(stamps)), "a bar predicted twice"
    since = T0 - pd.Timedelta("20min")
    assert [s for s in stamps if s >= since] == list(
        pd.date_range(since, T0 + pd.Timedelta("9min"), freq="1min")
    ), "a bar missed"
    offline = read_result(str(served_experiment / "trials" / trial)).predictions
    compared = check_entries(entries, offline, ("down", "flat", "up"), since=since)
    assert compared == 30, out
