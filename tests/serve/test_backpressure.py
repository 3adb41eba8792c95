"""Backpressure on the command line: ``--feed store:START`` catching up two weeks of real minute bars
(20,160 bars of Coinbase and of Kraken, pushed at once) writes every bar once with redis answering,
whatever the buffer; killed with SIGKILL in the middle of the catch-up and started again with the same
command, every closed bar is in the stream exactly once, in time order."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from atlas_ray.featurestore import MarketStore
from atlas_ray.serve._redis_contract import parse_iso, stream_stamp
from tests.conftest import ROOT
from tests.serve._replay import trial_of
from tests.serve.conftest import RedisServer, free_port

pytestmark = pytest.mark.slow

LO, HI = pd.Timestamp("2023-03-08T00:00Z"), pd.Timestamp("2023-03-22T00:00Z")


@pytest.fixture(scope="module")
def two_weeks(minute_store: MarketStore, tmp_path_factory: pytest.TempPathFactory) -> MarketStore:
    """A store of its own with the real Coinbase and Kraken minute bars of 7-21 March (a day of
    history before the catch-up's start)."""
    store = MarketStore(tmp_path_factory.mktemp("two_weeks"))
    for exchange in ("coinbase", "kraken"):
        bars = minute_store.read(exchange, "btc_usd", "bars_1m", LO - pd.Timedelta("1D"), HI)
        store.write(bars, exchange=exchange, pair="btc_usd", kind="bars_1m")
    return store


def start(
    experiment: Path, store: MarketStore, redis: RedisServer, name: str, *extra: str
) -> subprocess.Popen[str]:
    command = [
        sys.executable,
        "-m",
        "atlas_ray.serve",
        str(experiment),
        "--trial",
        trial_of(experiment, "logistic"),
        "--name",
        name,
        "--feed",
        f"store:{LO.isoformat()}",
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
        *extra,
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def last_closed_bar(store: MarketStore) -> str:
    newest = min(store.read(e, "btc_usd", "bars_1m", LO, HI).index.max() for e in ("coinbase", "kraken"))
    return f"{newest.isoformat().replace('+00:00', 'Z')}"


def wait_for(
    redis: RedisServer, name: str, ts: str, process: subprocess.Popen[str], timeout: float = 400
) -> None:
    client = redis.client()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.hget(f"atlas:pred:{name}", "ts") == ts:
            return
        if process.poll() is not None:
            pytest.fail(process.communicate()[1][-3000:])
        time.sleep(0.2)
    pytest.fail(f"no prediction for {ts} within {timeout} s")


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err[-3000:]
    return out


def crash(process: subprocess.Popen[str]) -> None:
    """SIGKILL to the command and every process it started (its local Ray, the Serve replica), all at
    once, as a machine or container going away does."""
    import psutil

    family = [psutil.Process(process.pid)]
    family += family[0].children(recursive=True)
    for member in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    psutil.wait_procs(family, timeout=30)


def final_counts(out: str) -> dict[str, int]:
    line = out.strip().splitlines()[-1]
    found = {
        k: int(v.replace(",", ""))
        for k, v in re.findall(r"(written|repeated|dropped|buffered) ([\d,]+)", line)
    }
    found["predictions written"] = found.pop("written")
    return found


def stream(redis: RedisServer, name: str) -> list[int]:
    """The stream's bars (ns), checked: one entry per bar, its id the bar's time, in time order."""
    entries = redis.client().xrange(f"atlas:pred:{name}:stream")
    stamps = [parse_iso(fields["ts"]) for _, fields in entries]
    assert [stream_stamp(entry_id) for entry_id, _ in entries] == stamps
    assert stamps == sorted(set(stamps))
    return stamps


def test_a_two_week_catch_up_writes_every_bar_once_even_killed_in_the_middle(
    served_experiment: Path, two_weeks: MarketStore, redis_server: RedisServer
) -> None:
    client = redis_server.client()
    client.delete(
        "atlas:pred:catchup", "atlas:pred:catchup:stream", "atlas:pred:killed", "atlas:pred:killed:stream"
    )
    last = last_closed_bar(two_weeks)

    # the reported case, with the default buffer of 10,000: it used to end 'written 10,000 | dropped
    # 10,092', and a restart then went on after the newest prediction, the dropped bars never predicted
    process = start(served_experiment, two_weeks, redis_server, "catchup")
    wait_for(redis_server, "catchup", last, process)
    counts = final_counts(stop(process))
    reference = stream(redis_server, "catchup")
    assert len(reference) > 20_000 and reference[0] == LO.value and reference[-1] == parse_iso(last)
    assert counts == {"predictions written": len(reference), "repeated": 0, "dropped": 0, "buffered": 0}

    # a buffer of 50 (25 predictions a pipeline) makes the catch-up long enough to be killed in the
    # middle of it, found by watching the stream grow
    first = start(served_experiment, two_weeks, redis_server, "killed", "--buffer", "50")
    deadline = time.monotonic() + 400
    while client.xlen("atlas:pred:killed:stream") < 2_000:
        assert time.monotonic() < deadline and first.poll() is None, first.communicate()[1][-3000:]
        time.sleep(0.002)
    crash(first)
    at_kill = client.xlen("atlas:pred:killed:stream")
    time.sleep(2)
    assert client.xlen("atlas:pred:killed:stream") == at_kill  # nothing of the first run writes on
    assert 2_000 <= at_kill < len(reference) - 1_000, at_kill  # in the middle of the catch-up

    second = start(served_experiment, two_weeks, redis_server, "killed", "--buffer", "50")
    wait_for(redis_server, "killed", last, second)
    counts = final_counts(stop(second))
    assert counts["dropped"] == 0 and counts["buffered"] == 0
    assert counts["predictions written"] == len(reference) - at_kill  # went on after the newest
    # every closed bar exactly once, in time order: the bars of the catch-up never interrupted
    assert stream(redis_server, "killed") == reference
