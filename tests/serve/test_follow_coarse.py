"""The prediction layer of the equivalence matrix for ``store:`` and HTTP at 1m, 5m and 1h, ``replay:``
at 5m and 1h (at 1m: ``test_cli``'s, one Serve start less) and ``gds:`` at 5m and 1h: one real search
(a logistic trial a resolution, on 1-minute bars), real Ray Serve, real redis, and for ``gds:`` a real
MariaDB.

A writer thread appends the real Coinbase and Kraken minute bars of March 2023 to the store, in chunks
that end inside coarse bars, while the live model follows it. Each bar must be predicted once, when it
has closed, and the redis stream must equal the stream of a replay of the same bars from the finished
store (same bars, same classes, same probabilities), and the stream of the same bars POSTed to the
HTTP feed (as ``bar_events`` makes them, every field); each stream equals the ResultsObject's
predictions. The ``gds:`` feed follows a GDS ``trade`` table filled likewise with the same minute bars
as trades.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import requests

from atlas_ray.featurestore import (
    FeatureLabelSet,
    LogReturns,
    MarketStore,
    Percentiles,
    TimeSplit,
    Volume,
    as_resolution,
)
from atlas_ray.featurestore._gds._gds_schema import create_gds_tables
from atlas_ray.featurestore._gds._gds_testing import LocalMariaDB
from atlas_ray.featurestore._schema import bars_kind
from atlas_ray.search import ASHA, Mode, ModelSpec, Resources, WorkSpec, WorkUnit, read_result
from atlas_ray.serve._feeds import history_events
from tests.conftest import ROOT
from tests.serve._replay import check_entries
from tests.serve.conftest import RedisServer, free_port
from tests.serve.test_follow_gds import fill, gds_command

pytestmark = pytest.mark.slow

T0 = pd.Timestamp("2023-03-02T06:00Z")
MARKETS = (("coinbase", "btc_usd"), ("kraken", "btc_usd"))
CASES = {
    # unit: (fluent resolution, training range, bars followed, minutes a write appends)
    "minute": ("one_min", ("2023-03-01", "2023-03-03"), pd.Timedelta("15min"), "4min"),
    "five": ("five_min", ("2023-03-01", "2023-03-04"), pd.Timedelta("60min"), "3min"),
    "hourly": ("hour", ("2023-03-01", "2023-03-21"), pd.Timedelta("4h"), "17min"),
}
STEPS = {"minute": pd.Timedelta("1min"), "five": pd.Timedelta("5min"), "hourly": pd.Timedelta("1h")}


def coarse_spec() -> WorkSpec:
    units = []
    for unit, (method, (start, end), _, _) in CASES.items():

        def at(feature: LogReturns | Volume, method: str = method) -> LogReturns | Volume:
            return getattr(feature, method)()  # type: ignore[no-any-return]

        features = [
            at(LogReturns().coinbase()),
            at(LogReturns().kraken()).lookback(3),
            at(Volume().coinbase()),
        ]
        fls = FeatureLabelSet(
            features, [at(LogReturns().coinbase()).lookforward(1)], categories=Percentiles((33.3, 66.7))
        )
        units.append(
            WorkUnit(
                unit,
                featureset=fls,
                start=start,
                end=end,
                split=TimeSplit(train=0.6, validation=0.2, test=0.2),
                models=[
                    ModelSpec(
                        "logistic", "logistic", {"learning_rate": 3e-3, "batch_size": 256}, num_samples=1
                    )
                ],
            )
        )
    return WorkSpec(
        name="coarse",
        units=units,
        scheduler=ASHA(max_t=2, grace_period=2, reduction_factor=2, metric="val_loss", mode=Mode.MIN),
        resources=Resources(cpu=1),
        seed=11,
    )


@pytest.fixture(scope="module")
def coarse_experiment(
    minute_store: MarketStore, ray_cluster: None, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A finished real search: a logistic trial on 5-minute bars, one on hourly bars (from 1-minute bars)."""
    from atlas_ray.search import run

    storage = tmp_path_factory.mktemp("coarse_experiments")
    return Path(run(coarse_spec(), storage=str(storage), store=minute_store, out=io.StringIO()))


def trial_of_unit(experiment: Path, unit: str) -> str:
    for directory in sorted((experiment / "trials").iterdir()):
        if read_result(str(directory)).identity.unit == unit:
            return directory.name
    raise LookupError(unit)


def write_minutes(source: MarketStore, target: MarketStore, lo: pd.Timestamp, hi: pd.Timestamp) -> None:
    for exchange, pair in MARKETS:
        bars = source.read(exchange, pair, "bars_1m", lo, hi)
        if len(bars):
            target.write(bars, exchange=exchange, pair=pair, kind="bars_1m")


def serve(
    experiment: Path, trial: str, name: str, feed: str, store: Path, redis: RedisServer, port: int = 0
) -> list[str]:
    return [
        sys.executable, "-m", "atlas_ray.serve", str(experiment), "--trial", trial, "--name", name,
        "--feed", feed, "--poll", "0.3", "--speed", "0", "--store", str(store), "--redis", redis.url,
        "--http-port", str(port or free_port()), "--status-every", "0",
    ]  # fmt: skip


def follow_output(process: subprocess.Popen[str]) -> tuple[list[str], list[str], threading.Event]:
    """The lines ``process`` prints on stdout and stderr (each read by a thread, so neither pipe fills),
    and an event set once it says it is live (deployed, its SIGTERM handler in place)."""
    out: list[str] = []
    err: list[str] = []
    live = threading.Event()

    def read(stream: object, lines: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            lines.append(line)
            if "live; POST bars" in line:
                live.set()

    threading.Thread(target=read, args=(process.stdout, out), daemon=True).start()
    threading.Thread(target=read, args=(process.stderr, err), daemon=True).start()
    return out, err, live


def post_over_http(
    experiment: Path, trial: str, name: str, redis: RedisServer, events: list[dict[str, object]], through: int
) -> None:
    """Serve the trial on the HTTP feed and POST ``events`` (in time order, a bar time at a time)."""
    port = free_port()
    process = subprocess.Popen(
        serve(experiment, trial, name, "http", Path("unused"), redis, port),
        cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}/{name}"
    lines, errors, live = follow_output(process)
    try:
        assert live.wait(180), "".join(lines)  # deployed, and its SIGTERM handler in place
        by_time: dict[object, list[dict[str, object]]] = {}
        for event in events:
            by_time.setdefault(event["ts_ns"], []).append(event)
        for stamp, group in by_time.items():
            body: dict[str, object] = {"events": group}
            if stamp == through:
                body["through"] = through
            answer = requests.post(f"{base}/bars", json=body, timeout=60)
            assert answer.status_code == 200 and answer.json()["rejected"] == [], answer.text
        answer = requests.post(f"{base}/bars", json={"events": [], "through": through}, timeout=60)
        assert answer.status_code == 200, answer.text
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=90)
    assert process.returncode == 0, "".join(errors)[-3000:]


def stream(redis: RedisServer, name: str) -> list[dict[str, str]]:
    return [fields for _, fields in redis.client().xrange(f"atlas:pred:{name}:stream")]


@pytest.mark.parametrize("unit", list(CASES))
def test_a_coarse_model_follows_a_finer_store_as_it_is_written(
    coarse_experiment: Path, minute_store: MarketStore, redis_server: RedisServer, tmp_path: Path, unit: str
) -> None:
    _, _, span, chunk = CASES[unit]
    trial = trial_of_unit(coarse_experiment, unit)
    step = STEPS[unit]
    live_name, replay_name = f"coarse_live_{unit}", f"coarse_replay_{unit}"
    client = redis_server.client()
    for name in (live_name, replay_name):
        client.delete(f"atlas:pred:{name}", f"atlas:pred:{name}:stream")
    growing = MarketStore(tmp_path / "growing")
    write_minutes(minute_store, growing, pd.Timestamp("2023-03-01T00:00Z"), T0)  # the history before T0
    end = T0 + span
    # the minute after ``end`` closes the last coarse bar; at 1m a stored bar is closed once written
    stop = end + pd.Timedelta("1min") if step > pd.Timedelta("1min") else end

    process = subprocess.Popen(
        serve(coarse_experiment, trial, live_name, f"store:{T0.isoformat()}", growing.root, redis_server),
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines, errors, live = follow_output(process)
    written = threading.Event()

    def writer() -> None:  # the store grows while the model follows it, chunks ending inside coarse bars
        cut = T0
        while cut < stop:
            nxt = min(cut + pd.Timedelta(chunk), stop)
            write_minutes(minute_store, growing, cut, nxt)
            cut = nxt
            time.sleep(1.0)
        written.set()

    last = (end - step).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        assert live.wait(180), "".join(lines)
        thread = threading.Thread(target=writer)
        thread.start()
        deadline = time.monotonic() + 300
        while not (written.is_set() and client.hget(f"atlas:pred:{live_name}", "ts") == last):
            assert process.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, f"no prediction for {last}: " + "".join(lines)
            time.sleep(0.3)
        thread.join()
        time.sleep(1.5)  # a few more looks at the finished store: nothing more may come
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=90)
    assert process.returncode == 0, "".join(errors)[-3000:]
    followed = stream(redis_server, live_name)

    if unit == "minute":  # a 1m replay: through the CLI is test_cli's test_a_replay_from_the_command_line
        replayed = followed
    else:
        replay = subprocess.run(
            serve(coarse_experiment, trial, replay_name, f"replay:{T0.isoformat()}/{end.isoformat()}",
                  minute_store.root, redis_server),
            cwd=ROOT, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert replay.returncode == 0, replay.stderr[-3000:]
        replayed = stream(redis_server, replay_name)

    # the same coarse bars (from a day before T0, as bar_events makes them) POSTed to the HTTP feed
    http_name = f"coarse_http_{unit}"
    client.delete(f"atlas:pred:{http_name}", f"atlas:pred:{http_name}:stream")
    resolution = as_resolution({"minute": "1m", "five": "5m", "hourly": "1h"}[unit])
    series = [(exchange, pair, bars_kind(resolution)) for exchange, pair in MARKETS]
    events = history_events(minute_store, series, resolution, T0 - pd.Timedelta("1D"), end)
    post_over_http(coarse_experiment, trial, http_name, redis_server, events, (end - step).value)
    posted = [e for e in stream(redis_server, http_name) if pd.Timestamp(e["ts"]) >= T0]

    expected = [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in pd.date_range(T0, end - step, freq=step)]
    assert [e["ts"] for e in replayed] == expected
    assert [e["ts"] for e in followed] == expected  # each closed bar once, none while forming
    assert [e["ts"] for e in posted] == expected
    # and each equals the ResultsObject's prediction of that bar (the equivalence matrix's second layer)
    result = read_result(str(coarse_experiment / "trials" / trial))
    for entries in (followed, replayed, posted):
        assert check_entries(entries, result.predictions, tuple(result.classes)) == len(expected)
    for a, b, c in zip(followed, replayed, posted, strict=True):
        assert a["class"] == b["class"] == c["class"], a["ts"]
        pa, pb, pc = (json.loads(e["probabilities"]) for e in (a, b, c))
        assert max(abs(x - y) for x, y in zip(pa, pb, strict=True)) < 1e-6, (a["ts"], pa, pb)
        assert max(abs(x - y) for x, y in zip(pc, pb, strict=True)) < 1e-6, (a["ts"], pc, pb)


GDS_HISTORY = {"five": pd.Timedelta("2h"), "hourly": pd.Timedelta("12h")}


@pytest.mark.parametrize("unit", ["five", "hourly"])
def test_a_coarse_model_follows_a_filling_gds(
    coarse_experiment: Path,
    minute_store: MarketStore,
    redis_server: RedisServer,
    mariadb: LocalMariaDB,
    gds_database: str,
    tmp_path: Path,
    unit: str,
) -> None:
    """``--feed gds:`` at 5m and 1h: a real MariaDB ``trade`` table filled with four trades a real minute
    bar (``trades_of``: they rebuild each bar exactly), in chunks that end inside coarse bars while the
    model follows it. Each coarse bar from T0 is predicted once, and equals the ResultsObject's
    prediction of that bar (trained on the same minute bars, in the store)."""
    _, _, span, chunk = CASES[unit]
    step = STEPS[unit]
    trial = trial_of_unit(coarse_experiment, unit)
    name = f"coarse_gds_{unit}"
    client = redis_server.client()
    client.delete(f"atlas:pred:{name}", f"atlas:pred:{name}:stream")
    connection = mariadb.connect(gds_database)
    create_gds_tables(connection)
    fill(connection, minute_store, T0 - GDS_HISTORY[unit], T0)
    end = T0 + span
    url = mariadb.url(gds_database)
    process = subprocess.Popen(
        gds_command(coarse_experiment, trial, name, url, tmp_path / "store", redis_server),
        cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines, errors, live = follow_output(process)
    last = (end - step).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        assert live.wait(180), "".join(lines)
        cut = T0
        while cut < end + pd.Timedelta("1min"):  # the trades of ``end`` close the last bar
            nxt = min(cut + pd.Timedelta(chunk), end + pd.Timedelta("1min"))
            fill(connection, minute_store, cut, nxt)
            cut = nxt
            time.sleep(0.5)
        deadline = time.monotonic() + 180
        while client.hget(f"atlas:pred:{name}", "ts") != last:
            assert process.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, f"no prediction for {last}: " + "".join(lines)
            time.sleep(0.3)
        time.sleep(1.0)  # a few more rounds on the finished table: nothing more may come
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=90)
        connection.close()  # type: ignore[attr-defined]
    assert process.returncode == 0, "".join(errors)[-3000:]
    entries = [e for e in stream(redis_server, name) if pd.Timestamp(e["ts"]) >= T0]
    expected = [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in pd.date_range(T0, end - step, freq=step)]
    assert [e["ts"] for e in entries] == expected, "".join(lines)  # each closed bar once
    result = read_result(str(coarse_experiment / "trials" / trial))
    assert check_entries(entries, result.predictions, tuple(result.classes)) == len(expected)
