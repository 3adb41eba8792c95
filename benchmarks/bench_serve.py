"""Live serving: a real trained DNN on Ray Serve, real Coinbase + Kraken minute bars, a real redis-server.

End to end, from a bar handed to the feed (``DeploymentHandle.push``) to its prediction received by a
redis subscriber (``SUBSCRIBE atlas:pred:NAME``, in another thread of this process):

* latency p50 / p99 at 50 bars a second (``LATENCY_BARS`` bars, one bar = both exchanges' bars of a
  minute, about a minute of wall time);
* throughput at ``--speed 0`` over 10,000 bars (pushes of 64 bars, as the replay feed sends them).

The floor, measured in the same run: one plain Python loop of the same feature update and prediction
(``LiveEngine.push``, no Ray) and a plain redis pipeline write (HSET + XADD + PUBLISH), timed to the
same subscriber. Both paths must give the same prediction for every bar, or the benchmark fails.

Targets on this machine: p50 <= 5 ms and p99 <= 20 ms at 50 bars/s; >= 1,000 predictions/s at full
speed. ``ratio`` is the p50 over the floor's p50. Last line: one JSON object.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd

DATA = Path(os.environ.get("ATLAS_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
BARS = 10_000
LATENCY_BARS = 3_000
RATE = 50.0
START = pd.Timestamp("2023-03-02T00:00Z")
TARGET = {"p50_ms": 5.0, "p99_ms": 20.0, "throughput_per_s": 1000.0}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Subscriber:
    """Receipt time of every published prediction, by bar time."""

    def __init__(self, url: str, channel: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url, decode_responses=True)
        self.pubsub = self.client.pubsub()
        self.pubsub.subscribe(channel)
        self.pubsub.get_message(timeout=2)
        self.received: dict[str, float] = {}
        self.documents: dict[str, dict[str, str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            message = self.pubsub.get_message(timeout=0.1)
            if message and message["type"] == "message":
                document = json.loads(message["data"])
                self.received[document["ts"]] = time.perf_counter()
                self.documents[document["ts"]] = document

    def wait_for(self, count: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.pubsub.close()


def train(store: Any, storage: str) -> tuple[str, str]:
    from atlas_ray.featurestore import (
        FeatureLabelSet,
        InterExchangeSpread,
        LogReturns,
        Midpoint,
        Percentiles,
        TimeSplit,
        Volatility,
        Volume,
    )
    from atlas_ray.search import ASHA, Mode, ModelSpec, Resources, WorkSpec, WorkUnit, run

    features = [
        *(LogReturns().coinbase().one_min().lookback(n) for n in (1, 5, 15, 60)),
        *(LogReturns().kraken().one_min().lookback(n) for n in (1, 5, 15, 60)),
        Volume().coinbase().one_min(),
        Volume().kraken().one_min(),
        Volatility().coinbase().one_min().window(30),
        InterExchangeSpread(Midpoint().coinbase().one_min(), Midpoint().kraken().one_min()),
    ]
    fls = FeatureLabelSet(
        features, [LogReturns().coinbase().one_min().lookforward(1)], categories=Percentiles((33.3, 66.7))
    )
    spec = WorkSpec(
        name="bench_serve",
        units=[
            WorkUnit(
                "direction",
                featureset=fls,
                start="2023-03-01",
                end="2023-03-02",
                split=TimeSplit(train=0.7, validation=0.15, test=0.15),
                models=[
                    ModelSpec(
                        "dnn", "dnn", {"hidden_units": [6, 6], "learning_rate": 3e-3, "batch_size": 256}
                    )
                ],
            )
        ],
        scheduler=ASHA(max_t=1, grace_period=1, reduction_factor=2, metric="val_loss", mode=Mode.MIN),
        resources=Resources(cpu=1),
        seed=2017,
    )
    experiment = run(spec, storage=storage, store=store, out=io.StringIO())
    trial = sorted(p.name for p in (Path(experiment) / "trials").iterdir())[0]
    return experiment, trial


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, q))


def serve_path(
    experiment: str, trial: str, store: Any, url: str, series: list[Any], resolution: Any
) -> dict[str, Any]:
    from ray import serve

    from atlas_ray.serve._deployment import LiveModel
    from atlas_ray.serve._feeds import history_events, paced, replay_ticks

    serve.start(http_options={"host": "127.0.0.1", "port": free_port()})
    deployment: Any = LiveModel
    config = {
        "name": "bench",
        "experiment": experiment,
        "trial": trial,
        "redis_url": url,
        "series": [list(s) for s in series],
    }
    handle = serve.run(
        deployment.options(name="LiveModel_bench").bind(config), name="bench", route_prefix="/bench"
    )
    subscriber = Subscriber(url, "atlas:pred:bench")
    warm = history_events(store, series, resolution, START - pd.Timedelta("3h"), START)
    handle.push.remote({"events": warm, "through": (START - resolution.offset).value, "warm": True}).result()
    # latency at RATE bars a second
    end = START + LATENCY_BARS * resolution.offset
    handed: dict[int, float] = {}
    for push, _due in paced(replay_ticks(store, series, resolution, START, end), RATE * resolution.seconds):
        handed[int(push["through"])] = time.perf_counter()  # type: ignore[call-overload]
        handle.push.remote(push).result()
    subscriber.wait_for(LATENCY_BARS)
    from atlas_ray.serve._redis_contract import iso

    latencies = [subscriber.received[iso(t)] - handed[t] for t in handed if iso(t) in subscriber.received]
    # throughput at speed 0
    first_bar = end
    last_bar = START + BARS * resolution.offset
    began = time.perf_counter()
    for push, _ in paced(replay_ticks(store, series, resolution, first_bar, last_bar), 0, chunk=64):
        handle.push.remote(push).result()
    subscriber.wait_for(BARS)
    finished = max(subscriber.received.values())
    throughput = (BARS - LATENCY_BARS) / (finished - began)
    stats = handle.stats.remote().result()
    documents = dict(subscriber.documents)
    subscriber.close()
    serve.delete("bench")
    serve.shutdown()
    return {"latencies": latencies, "throughput": throughput, "stats": stats, "documents": documents}


def floor_path(
    experiment: str, trial: str, store: Any, url: str, series: list[Any], resolution: Any
) -> dict[str, Any]:
    import redis

    from atlas_ray.search import load_model
    from atlas_ray.serve import LiveEngine, find_trial
    from atlas_ray.serve._feeds import history_events, paced, replay_ticks
    from atlas_ray.serve._redis_contract import channel, fields, iso, latest_key, stream_key

    served = find_trial(experiment, trial=trial)
    engine = LiveEngine(served, load_model(served.result), series=series)
    client = redis.Redis.from_url(url)
    subscriber = Subscriber(url, channel("floor"))
    engine.push(
        history_events(store, series, resolution, START - pd.Timedelta("3h"), START),
        through=(START - resolution.offset).value,
        warm=True,
    )
    end = START + LATENCY_BARS * resolution.offset
    handed: dict[int, float] = {}
    for push, _ in paced(replay_ticks(store, series, resolution, START, end), RATE * resolution.seconds):
        handed[int(push["through"])] = time.perf_counter()  # type: ignore[call-overload]
        outcome = engine.push(push["events"], through=push["through"])  # type: ignore[arg-type]
        pipe = client.pipeline(transaction=False)
        for prediction in outcome.predictions:
            document = fields(prediction)
            pipe.xadd(stream_key("floor"), document, maxlen=100_000, approximate=True)
            pipe.publish(channel("floor"), json.dumps(document))
            pipe.hset(latest_key("floor"), mapping=document)
        pipe.execute()
    subscriber.wait_for(LATENCY_BARS)
    latencies = [subscriber.received[iso(t)] - handed[t] for t in handed if iso(t) in subscriber.received]
    documents = dict(subscriber.documents)
    subscriber.close()
    return {"latencies": latencies, "documents": documents}


def main() -> int:
    import ray

    from atlas_ray import _ray_runtime
    from atlas_ray.featurestore import MarketStore
    from atlas_ray.serve import find_trial, required_series

    work = Path(tempfile.mkdtemp(prefix="bench_serve_"))
    port = free_port()
    redis_process = subprocess.Popen(
        [
            shutil.which("redis-server") or "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(work),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        _ray_runtime.start_local(num_cpus=2, dashboard=False)
        store = MarketStore(work / "store")
        for name, exchange in (("coinbase_btcusd.parquet", "coinbase"), ("kraken_btcusd.parquet", "kraken")):
            store.ingest(DATA / "minute_bars_2023-03" / name, exchange=exchange, pair="btc_usd")
        print("training a real DNN (a one-trial search) ...", flush=True)
        experiment, trial = train(store, str(work / "experiments"))
        served = find_trial(experiment, trial=trial)
        series = required_series(served, store)
        resolution = served.featureset.resolution
        print(f"serving trial {trial}: {len(served.featureset.features)} features on {series}", flush=True)
        live = serve_path(experiment, trial, store, url, series, resolution)
        floor = floor_path(experiment, trial, store, url, series, resolution)
    finally:
        ray.shutdown()
        redis_process.terminate()
        shutil.rmtree(work, ignore_errors=True)

    # both paths gave the same prediction for every bar of the latency run
    common = sorted(set(live["documents"]) & set(floor["documents"]))
    mismatched = [
        ts
        for ts in common
        if live["documents"][ts]["class"] != floor["documents"][ts]["class"]
        or not np.allclose(
            json.loads(live["documents"][ts]["probabilities"]),
            json.loads(floor["documents"][ts]["probabilities"]),
            atol=1e-6,
        )
    ]
    p50, p99 = percentile(live["latencies"], 50), percentile(live["latencies"], 99)
    floor_p50, floor_p99 = percentile(floor["latencies"], 50), percentile(floor["latencies"], 99)
    stats = live["stats"]
    print(
        f"latency at {RATE:.0f} bars/s over {len(live['latencies']):,} bars: "
        f"p50 {p50:.2f} ms, p99 {p99:.2f} ms "
        f"(target p50 <= {TARGET['p50_ms']}, p99 <= {TARGET['p99_ms']})"
    )
    print(
        "floor (plain loop: LiveEngine.push + redis pipeline): "
        f"p50 {floor_p50:.2f} ms, p99 {floor_p99:.2f} ms"
    )
    print(f"ratio to the floor: p50 {p50 / floor_p50:.2f}x, p99 {p99 / floor_p99:.2f}x")
    print(
        f"throughput at speed 0 over {BARS - LATENCY_BARS:,} bars: {live['throughput']:,.0f} predictions/s "
        f"(target >= {TARGET['throughput_per_s']:,.0f})"
    )
    print(
        f"deployment counts: written {stats['written']:,}, dropped {stats['dropped']}, "
        f"rejected {stats['rejected']}, "
        f"incomplete {stats['incomplete']}"
    )
    print(f"same predictions on both paths: {len(common) - len(mismatched):,} of {len(common):,} bars")
    ok = bool(common) and not mismatched and stats["dropped"] == 0 and stats["rejected"] == 0
    print(
        json.dumps(
            {
                "p50_ms": round(p50, 3),
                "p99_ms": round(p99, 3),
                "throughput_per_s": round(live["throughput"], 1),
                "floor_p50_ms": round(floor_p50, 3),
                "floor_p99_ms": round(floor_p99, 3),
                "ratio": round(p50 / floor_p50, 3),
                "target": TARGET,
                "same_answer": ok,
            }
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
