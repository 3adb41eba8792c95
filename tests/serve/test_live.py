"""The ``LiveModel`` deployment on a real local Ray Serve: HTTP bars, health, Serve's status, its
metrics (scraped from Ray's endpoint and by a real Prometheus), and redis going away for 30 s while
bars keep coming."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from atlas_ray.featurestore import MarketStore
from atlas_ray.serve import find_trial, required_series
from atlas_ray.serve._feeds import history_events, paced, replay_ticks
from tests.serve._replay import REPLAY_START, trial_of
from tests.serve._scrape import expected_from_stats, prometheus, scrape, wait_for_metrics
from tests.serve.conftest import RedisServer, free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def http_port(ray_cluster: None) -> Iterator[int]:
    from ray import serve

    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    yield port
    serve.shutdown()


def deploy(experiment: Path, trial: str, name: str, redis_url: str, store: MarketStore, **extra: Any) -> Any:
    from ray import serve

    from atlas_ray.serve._deployment import LiveModel

    served = find_trial(str(experiment), trial=trial)
    config = {
        "name": name,
        "experiment": str(experiment),
        "trial": trial,
        "redis_url": redis_url,
        "series": [list(s) for s in required_series(served, store)],
        **extra,
    }
    deployment: Any = LiveModel
    return serve.run(
        deployment.options(name=f"LiveModel_{name}").bind(config), name=name, route_prefix=f"/{name}"
    )


def warm(handle: Any, store: MarketStore, series: list[tuple[str, str, str]], start: pd.Timestamp) -> None:
    events = history_events(store, series, _one_min(), start - pd.Timedelta("2h"), start)
    handle.push.remote(
        {"events": events, "through": (start - pd.Timedelta("1min")).value, "warm": True}
    ).result()


def _one_min() -> Any:
    from atlas_ray.featurestore import Resolution

    return Resolution.ONE_MIN


def _http(method: str, url: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _dashboard_applications() -> dict[str, Any]:
    """The Serve applications the Ray dashboard lists (with the cluster's token, when it has one)."""
    import ray._private.worker as worker

    url = worker.get_dashboard_url()
    token = Path.home() / ".ray" / "auth_token"
    headers = {"Authorization": f"Bearer {token.read_text().strip()}"} if token.exists() else {}
    request = urllib.request.Request(f"http://{url}/api/serve/applications/", headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read())["applications"])


def test_bars_over_http_health_and_serve_status(
    served_experiment: Path,
    minute_store: MarketStore,
    redis_server: RedisServer,
    http_port: int,
    tmp_path: Path,
) -> None:
    from ray import serve

    trial = trial_of(served_experiment, "logistic")
    handle = deploy(served_experiment, trial, "http_live", redis_server.url, minute_store)
    series = [
        tuple(s) for s in required_series(find_trial(str(served_experiment), trial=trial), minute_store)
    ]
    warm(handle, minute_store, series, REPLAY_START)  # type: ignore[arg-type]
    client = redis_server.client()
    pubsub = client.pubsub()
    pubsub.subscribe("atlas:pred:http_live")
    pubsub.get_message(timeout=2)  # the subscribe confirmation
    base = f"http://127.0.0.1:{http_port}/http_live"
    # a second model live at once under another name, fed the same bars
    other = trial_of(served_experiment, "dnn")
    second = deploy(served_experiment, other, "http_second", redis_server.url, minute_store)
    warm(second, minute_store, series, REPLAY_START)  # type: ignore[arg-type]
    for _t, events in replay_ticks(
        minute_store,
        series,
        _one_min(),
        REPLAY_START,
        REPLAY_START + pd.Timedelta("3min"),  # type: ignore[arg-type]
    ):
        assert _http("POST", f"http://127.0.0.1:{http_port}/http_second/bars", events)[1]["accepted"] == 2
    assert client.hget("atlas:pred:http_second", "trial") == other
    assert client.hget("atlas:pred:http_second", "ts") == "2023-03-02T06:02:00Z"
    serve.delete("http_second")
    for _t, events in replay_ticks(
        minute_store, series, _one_min(), REPLAY_START, REPLAY_START + pd.Timedelta("3min")
    ):  # type: ignore[arg-type]
        status, answer = _http("POST", f"{base}/bars", events)
        assert status == 200 and answer["accepted"] == 2 and answer["rejected"] == [], answer
    status, answer = _http(
        "POST", f"{base}/bars", {"exchange": "coinbase", "ts": "2023-03-02T06:03:00Z", "close": 1}
    )
    assert status == 200 and [r["reason"] for r in answer["rejected"]] == ["missing_field"]
    status, answer = _http("POST", f"{base}/bars", [{"exchange": "kraken", "kind": "candles"}])
    assert status == 200 and answer["rejected"][0]["reason"] == "malformed"
    status, answer = _http("POST", f"{base}/bars", "not an event")
    assert status == 400 and "error" in answer
    request = urllib.request.Request(f"{base}/bars", data=b"{not json", method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 400
    status, health = _http("GET", f"{base}/health")
    assert status == 200 and health["status"] == "ok" and health["trial"] == trial and health["redis_up"]
    assert health["events"] >= 6 and health["rejected"] == 2
    assert health["rejected_by_reason"] == {"missing_field": 1, "malformed": 1}
    message = pubsub.get_message(timeout=5)
    assert message is not None and json.loads(message["data"])["trial"] == trial
    # a bar is stamped with its open time and sent at its close: bar 06:02 is decided on arrival
    assert client.hget("atlas:pred:http_live", "ts") == "2023-03-02T06:02:00Z"
    applications = serve.status().applications
    assert str(applications["http_live"].status).endswith("RUNNING")
    assert "LiveModel_http_live" in applications["http_live"].deployments
    assert "http_live" in _dashboard_applications()  # what the dashboard's Serve view shows
    # another trial under the same name: swapped in place, the next bar carries version 2
    gru = trial_of(served_experiment, "gru")
    swapped = handle.swap.remote({"experiment": str(served_experiment), "trial": gru}).result()
    assert (swapped["trial"], swapped["version"]) == (gru, 2)
    after = REPLAY_START + pd.Timedelta("3min")
    for _t, events in replay_ticks(minute_store, series, _one_min(), after, after + pd.Timedelta("2min")):  # type: ignore[arg-type]
        assert _http("POST", f"{base}/bars", events)[1]["version"] == 2
    stream = [fields for _, fields in client.xrange("atlas:pred:http_live:stream")]
    assert [f["ts"][11:16] for f in stream] == ["06:00", "06:01", "06:02", "06:03", "06:04"]
    assert [f["version"] for f in stream] == ["1", "1", "1", "2", "2"] and stream[-1]["trial"] == gru
    # its metrics: refusals by reason, the sink's counts, one latency and freshness per write, the
    # version under the live trial (the trial swapped out reads 0), scraped from Ray's endpoint on
    # 127.0.0.1 and through a real Prometheus that found it in Ray's service-discovery file
    from atlas_ray import _ray_runtime

    stats = handle.stats.remote().result()
    expected = expected_from_stats(stats)
    assert stats["rejected_by_reason"] == {"missing_field": 1, "malformed": 1} and stats["written"] == 5
    from atlas_ray.serve._metrics import MODEL_VERSION

    expected[(MODEL_VERSION, (("trial", trial),))] = 0
    endpoint = _ray_runtime.metrics_address(stats["node_id"])
    assert endpoint is not None and endpoint.startswith("127.0.0.1:")
    wait_for_metrics(lambda: scrape(endpoint), "http_live", expected)
    with prometheus(_ray_runtime.metrics_discovery_file(), tmp_path, free_port()) as query:
        wait_for_metrics(query, "http_live", expected)
    serve.delete("http_live")


def test_redis_away_for_30_seconds(
    served_experiment: Path, minute_store: MarketStore, redis_server: RedisServer, http_port: int
) -> None:
    trial = trial_of(served_experiment, "dnn")
    handle = deploy(served_experiment, trial, "outage", redis_server.url, minute_store, buffer=40)
    series = [
        tuple(s) for s in required_series(find_trial(str(served_experiment), trial=trial), minute_store)
    ]
    warm(handle, minute_store, series, REPLAY_START)  # type: ignore[arg-type]
    ticks = replay_ticks(
        minute_store, series, _one_min(), REPLAY_START, REPLAY_START + pd.Timedelta("240min")
    )  # type: ignore[arg-type]
    answers: list[dict[str, Any]] = []
    finished = threading.Event()

    def feed() -> None:  # 4 bars a second for about 48 s
        for push, _ in paced(ticks, 240.0):
            answers.append(handle.push.remote(push).result())
        finished.set()

    thread = threading.Thread(target=feed)
    thread.start()
    time.sleep(5)
    redis_server.stop()
    time.sleep(30)
    during = handle.stats.remote().result()
    redis_server.start()
    thread.join(120)
    assert finished.is_set()
    stats = handle.flush.remote().result()
    # it kept running: every bar was taken and decided while redis was away
    assert len(answers) == 240 and all(a["rejected"] == [] for a in answers)
    assert not during["redis_up"] and during["buffered"] == 40 and during["dropped"] > 50
    # the counts add up, and what was written after redis came back is in redis
    assert stats["redis_up"] and stats["buffered"] == 0 and stats["write_failures"] > 0
    assert stats["predictions"] == 240 == stats["written"] + stats["dropped"]
    after = redis_server.client().xrange("atlas:pred:outage:stream")
    written_before = stats["written"] - len(after)  # this redis keeps nothing across a restart
    assert 0 < written_before < 40 and len(after) > 40
    stamps = [pd.Timestamp(fields["ts"]) for _, fields in after]
    assert stamps == sorted(stamps) and stamps[-1] == REPLAY_START + pd.Timedelta("239min")
    from ray import serve

    serve.delete("outage")
