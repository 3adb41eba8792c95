"""What the counts say: a bar the model cannot predict is counted by reason (never silent), in the
engine's counts, the status line, and a replay that predicts nothing says why and exits 1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from atlas_ray.featurestore import MarketStore
from atlas_ray.serve._app import _replay_verdict, _StatusPrinter
from tests.conftest import ROOT
from tests.serve._replay import REPLAY_START, engine_for, replay, trial_of
from tests.serve.conftest import RedisServer, free_port

STATS = {
    "name": "june",
    "version": 1,
    "trial": "t1",
    "events": 8_108,
    "written": 0,
    "repeated": 1_440,
    "dropped": 0,
    "buffered": 0,
    "rejected": 0,
    "rejected_by_reason": {},
    "predicted": 1_440,
    "unpredictable": 4_054,
    "unpredictable_by_reason": {"no value: log_returns_kraken": 4_000, "no full window of 8 bars": 54},
    "latency_last_ms": None,
    "latency_p99_ms": None,
    "last_bar": "2023-03-08T23:59:00Z",
    "redis_up": True,
}


def test_the_status_line_names_unpredictable_bars_and_repeats() -> None:
    line = _StatusPrinter.line(STATS)
    assert "predictions written 0 | repeated 1,440 | dropped 0" in line
    assert "unpredictable 4,054 (no full window of 8 bars 54, no value: log_returns_kraken 4,000)" in line
    assert "| bar->redis n/a |" in line  # what the latency measures is named: bar received -> in redis
    timed = _StatusPrinter.line({**STATS, "latency_last_ms": 56.7, "latency_p99_ms": 133.1})
    assert "| bar->redis last 56.7 ms, p99 133.1 ms |" in timed
    assert "| close->redis n/a |" in line
    fresh = _StatusPrinter.line({**STATS, "freshness_p50_ms": 5_300.0, "freshness_p99_ms": 0.4})
    assert "| close->redis p50 5.3 s, p99 0.4 ms |" in fresh
    replayed = _StatusPrinter.line({**STATS, "freshness_p50_ms": 3 * 86_400_000.0, "freshness_p99_ms": 9e7})
    assert "close->redis p50 3.0 d, p99 1.0 d" in replayed  # a replay writes bars that closed long ago


def test_a_replay_that_predicts_nothing_says_why(capsys: pytest.CaptureFixture[str]) -> None:
    assert _replay_verdict(STATS) == 0  # every bar predicted, already in redis: not a failure
    assert _replay_verdict({**STATS, "predicted": 0}) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the replay predicted no bar: 4,054 bar(s) could not be predicted")
    assert "no value: log_returns_kraken 4,000" in err
    assert _replay_verdict({**STATS, "predicted": 0, "unpredictable": 0, "events": 0, "rejected": 3}) == 1
    assert "3 event(s) refused; no event in the range" in capsys.readouterr().err


def kraken_stopped_early(source: MarketStore, root: Path, kraken_end: pd.Timestamp) -> MarketStore:
    """Coinbase for all of 1-2 March, Kraken only until ``kraken_end``."""
    store = MarketStore(root)
    lo, hi = pd.Timestamp("2023-03-01", tz="UTC"), pd.Timestamp("2023-03-03", tz="UTC")
    for exchange, end in (("coinbase", hi), ("kraken", kraken_end)):
        bars = source.read(exchange, "btc_usd", "bars_1m", lo, end)
        store.write(bars, exchange=exchange, pair="btc_usd", kind="bars_1m")
    return store


@pytest.mark.slow
def test_bars_without_a_feature_value_are_counted_by_reason(
    served_experiment: Path, minute_store: MarketStore
) -> None:
    engine = engine_for(served_experiment, trial_of(served_experiment, "logistic"), minute_store)
    replay(engine, minute_store, REPLAY_START, REPLAY_START + pd.Timedelta("10min"))
    assert engine.counts["unpredictable"] == 0
    start = REPLAY_START + pd.Timedelta("10min")
    bars = minute_store.bars("coinbase", "btc_usd", "1m", start, start + pd.Timedelta("30min"))
    predicted, unpredictable = 0, 0
    for t, row in bars.iterrows():  # Coinbase only: Kraken's features run out of values
        event = {
            "exchange": "coinbase",
            "ts": t.isoformat(),
            **{c: float(row[c]) for c in ("open", "high", "low", "close", "volume")},
        }  # type: ignore[union-attr]
        outcome = engine.push([event], through=t.value)  # type: ignore[union-attr]
        predicted += len(outcome.predictions)
        unpredictable += sum(outcome.unpredictable.values())
        assert all(r.startswith("no value: ") and "kraken" in r for r in outcome.unpredictable), outcome
    assert predicted + unpredictable == 30 and unpredictable >= 20  # each bar one or the other
    assert engine.counts["unpredictable"] == unpredictable
    reasons = {k: v for k, v in engine.counts.items() if k.startswith("unpredictable.")}
    assert sum(reasons.values()) == unpredictable


@pytest.mark.slow
def test_a_replay_of_bars_that_cannot_be_predicted_exits_1(
    served_experiment: Path, minute_store: MarketStore, redis_server: RedisServer, tmp_path: Path
) -> None:
    store = kraken_stopped_early(minute_store, tmp_path / "store", pd.Timestamp("2023-03-02T04:00Z"))
    command = [
        sys.executable,
        "-m",
        "atlas_ray.serve",
        str(served_experiment),
        "--trial",
        trial_of(served_experiment, "logistic"),
        "--name",
        "unpredictable",
        "--feed",
        "replay:2023-03-02T06:00/2023-03-02T07:00",
        "--speed",
        "0",
        "--store",
        str(store.root),
        "--redis",
        redis_server.url,
        "--http-port",
        str(free_port()),
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr[-3000:]
    assert "predictions written 0" in done.stdout and "unpredictable 60 (no value: " in done.stdout, (
        done.stdout
    )
    error = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert error and "60 bar(s) could not be predicted (no value: " in error[0] and "kraken" in error[0]


@pytest.mark.slow
def test_a_replay_run_again_adds_nothing(
    served_experiment: Path, minute_store: MarketStore, redis_server: RedisServer
) -> None:
    """``scripts/main.sh`` replays a day into the same name at every run: one stream entry per bar."""
    client = redis_server.client()
    client.delete("atlas:pred:again_cli", "atlas:pred:again_cli:stream")
    command = [
        sys.executable,
        "-m",
        "atlas_ray.serve",
        str(served_experiment),
        "--trial",
        trial_of(served_experiment, "dnn"),
        "--name",
        "again_cli",
        "--feed",
        "replay:2023-03-02T06:00/2023-03-02T06:30",
        "--speed",
        "0",
        "--store",
        str(minute_store.root),
        "--redis",
        redis_server.url,
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    outs = []
    for _ in range(2):
        run = [*command, "--http-port", str(free_port())]
        done = subprocess.run(run, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        outs.append(done.stdout)
    assert "predictions written 30 | repeated 0 | dropped 0" in outs[0], outs[0]
    assert "predictions written 0 | repeated 30 | dropped 0" in outs[1], outs[1]
    entries = client.xrange("atlas:pred:again_cli:stream")
    assert [f["ts"][11:16] for _, f in entries] == [f"06:{m:02d}" for m in range(30)]
    assert client.hget("atlas:pred:again_cli", "ts") == "2023-03-02T06:29:00Z"
