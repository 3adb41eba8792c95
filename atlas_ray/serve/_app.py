"""The driver of ``python -m atlas_ray.serve``: check, start Ray and Serve, deploy or swap, run the feed,
print a status line a minute, and stop cleanly on SIGINT / SIGTERM.

Order of work: every check a user can fail (the trial, the feed, the store's data, the redis URL and
whether redis answers) runs before Ray starts, so a mistake is one line and exit status 2. Deploying
under a name that is already live on the cluster swaps that deployment's model (``--address`` joins
the cluster the first one runs on) and exits; the first process goes on feeding it.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import pandas as pd

from atlas_ray.errors import AtlasError
from atlas_ray.featurestore import MarketData, MarketStore, SourcedMarket
from atlas_ray.serve._engine import required_series
from atlas_ray.serve._feeds import (
    Feed,
    bars_read,
    closed_through,
    gds_pushes,
    gds_unservable,
    history_events,
    paced,
    parse_feed,
    replay_ticks,
    series_events,
    store_pushes,
)
from atlas_ray.serve._http import http_token, token_digest
from atlas_ray.serve._redis_contract import check_name, latest_key, masked_url, parse_iso, redis_url
from atlas_ray.serve._trial import ServedTrial, find_trial

__all__ = ["ServeOptions", "serve_main"]


@dataclass(frozen=True)
class ServeOptions:
    """What the command line asked for."""

    experiment: str
    trial: str | None = None
    best: bool = False
    metric: str | None = None
    name: str | None = None
    feed: str = "http"
    redis: str | None = None
    address: str | None = None
    store: str | None = None
    speed: float = 1.0
    poll: float = 5.0
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    status_every: float = 60.0
    gryphon_key: bool = False
    buffer: int = 10_000
    grace: float | None = None
    http_token_file: str | None = None
    metrics_port: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class _Stop:
    def __init__(self) -> None:
        self.event = threading.Event()

    def __call__(self) -> bool:
        return self.event.is_set()

    def handler(self, signum: int, frame: FrameType | None) -> None:
        self.event.set()


def serve_main(options: ServeOptions) -> int:
    """Serve ``options``' trial: check, start Ray and Serve, swap a live deployment's model (and exit)
    or deploy and feed it until stopped; the exit status."""
    checked = _check(options)
    _announce(checked)
    started_ray = _start_serve(options)
    config = _deployment_config(checked, options)
    if _is_live(checked.name):
        return _swap(checked.name, config)
    handle = _deploy(checked.name, config, options)
    final = _feed_until_stopped(handle, checked, options, started_ray)
    return _replay_verdict(final) if checked.feed.kind == "replay" else 0


@dataclass(frozen=True)
class _Checked:
    """What the checks before Ray found: the trial, where it serves, the feed and what it supplies."""

    served: ServedTrial
    name: str
    feed: Feed
    url: str
    store: MarketStore
    series: list[tuple[str, str, str]]
    grace: pd.Timedelta | None
    token: str | None
    resume_after: int | None
    """Where this name's predictions in redis stopped (a following feed goes on after it)."""


def _check(options: ServeOptions) -> _Checked:
    """Every check a user can fail, before Ray starts: the trial, the name, the feed, the redis URL,
    the series the feed must supply, the store's data, ``--speed`` / ``--grace``, the HTTP token and
    whether redis answers."""
    served = find_trial(options.experiment, trial=options.trial, best=options.best, metric=options.metric)
    name = check_name(options.name or served.experiment_name)
    feed = parse_feed(options.feed)
    url = redis_url(options.redis)
    store = MarketStore(options.store)
    series = _series(served, store, feed)
    if feed.kind in ("replay", "store"):
        _check_store(served, store, feed)
    if options.speed < 0:
        raise AtlasError(f"The value of `--speed` is {options.speed}, but must be `--speed >= 0`.")
    if options.grace is not None and options.grace < 0:
        raise AtlasError(f"The value of `--grace` is {options.grace}, but must be `--grace >= 0`.")
    grace = None if options.grace is None else pd.Timedelta(seconds=options.grace)
    token = http_token(options.http_host, options.http_token_file)
    resume_after = _check_redis(url, name)
    return _Checked(served, name, feed, url, store, series, grace, token, resume_after)


def _series(served: ServedTrial, store: MarketStore, feed: Feed) -> list[tuple[str, str, str]]:
    """The series the feed supplies. The trial's recorded sources (the source rule,
    ``featurestore.decide``) decide them (quotes or bars for a Midpoint, bars or
    trades for bars), as they decided the training build; a store: / replay: feed's store must hold
    them; a GDS feed hands over the bars it builds from the trades it reads: bars only. A trial without
    recorded sources: decided from the store, as before."""
    if feed.kind == "gds":
        series = required_series(served, None, only=frozenset({"bars"}))
        unservable = gds_unservable(series)
        if unservable:
            named = ", ".join(f"{e} {p}" for e, p, _ in unservable)
            raise AtlasError(
                f"trial {served.trial_id} of {served.experiment} reads {named}, which the gds: feed cannot "
                "supply: GDS names a pair by its volume and price currencies, each a code of at most 3 "
                "characters (btc_usd); serve it from a store: or http feed instead."
            )
        return series
    if served.sources is not None:
        return required_series(served, store if feed.kind in ("replay", "store") else None)
    return required_series(served, store if _holds_anything(store) else None)


def _announce(checked: _Checked) -> None:
    served = checked.served
    print(
        f"atlas_ray.serve: {checked.name} <- trial {served.trial_id} of {served.experiment} "
        f"({served.task.value}, {len(served.featureset.features)} features); "
        f"predictions -> {masked_url(checked.url)} atlas:pred:{checked.name}",
        flush=True,
    )


def _start_serve(options: ServeOptions) -> bool:
    """Start (or join) Ray and start Serve's HTTP proxy; whether a Ray was started here."""
    started_ray = _start_ray(options)
    import logging

    from ray import serve

    logging.getLogger("ray.serve").setLevel(logging.WARNING)
    serve.start(http_options={"host": options.http_host, "port": options.http_port})
    return started_ray


def _deployment_config(checked: _Checked, options: ServeOptions) -> dict[str, Any]:
    """What the ``LiveModel`` deployment is built (or swapped) with."""
    token = checked.token
    return {
        "name": checked.name,
        "experiment": checked.served.experiment,
        "trial": checked.served.trial_id,
        "redis_url": checked.url,
        "series": [list(s) for s in checked.series],
        "gryphon_key": options.gryphon_key,
        "buffer": options.buffer,
        "version": 1,
        "resume": checked.feed.kind in ("store", "gds"),
        "http_token_sha256": None if token is None else token_digest(token),
    }


def _swap(name: str, config: dict[str, Any]) -> int:
    """Swap the live deployment ``name``'s model; its running feed goes on."""
    from ray import serve

    handle = serve.get_app_handle(name)
    stats = handle.swap.remote(config).result()
    print(
        f"atlas_ray.serve: swapped {name} to trial {stats['trial']} (version {stats['version']}); "
        "the running feed goes on",
        flush=True,
    )
    return 0


def _deploy(name: str, config: dict[str, Any], options: ServeOptions) -> Any:
    """Run the ``LiveModel`` deployment under ``name`` (HTTP at ``/<name>``); its handle."""
    from ray import serve

    from atlas_ray.serve._deployment import LiveModel

    deployment: Any = LiveModel
    application = deployment.options(name=f"LiveModel_{name}").bind(config)
    handle = serve.run(application, name=name, route_prefix=f"/{name}")
    base = f"http://{options.http_host}:{options.http_port}/{name}"
    print(f"atlas_ray.serve: live; POST bars to {base}/bars, health at {base}/health", flush=True)
    print(_metrics_line(handle.stats.remote().result()["node_id"]), flush=True)
    return handle


def _metrics_line(node_id: str) -> str:
    """Where to scrape the live model's metrics (the metrics export endpoint of the node its replica
    runs on) and Ray's service-discovery file for Prometheus."""
    from atlas_ray import _ray_runtime

    address = _ray_runtime.metrics_address(node_id)
    where = f"http://{address}/metrics" if address else "not exported (Ray's metrics collection is off)"
    return (
        f"atlas_ray.serve: metrics (Prometheus text, atlas_live_*) at {where}; every node's: "
        f"{_ray_runtime.metrics_discovery_file()}"
    )


def _feed_until_stopped(handle: Any, checked: _Checked, options: ServeOptions, started_ray: bool) -> Any:
    """Run the feed (a status line every ``--status-every`` seconds) until it ends or SIGINT / SIGTERM;
    then print the final counts, delete the deployment and stop a Ray started here. The final counts."""
    stop = _Stop()
    previous = {sig: signal.signal(sig, stop.handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    status = _StatusPrinter(handle, options.status_every, stop)
    if checked.feed.kind == "replay" and options.speed == 0:
        print(FULL_SPEED_NOTE, flush=True)
    status.start()
    try:
        _run_feed(handle, checked, options, stop)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        status.stop()
        final = handle.stop.remote().result()
        print(status.line(final), flush=True)
        _tear_down(checked.name, started_ray)
    return final


def _run_feed(handle: Any, checked: _Checked, options: ServeOptions, stop: _Stop) -> None:
    """Push what the feed supplies (replay, store, gds); an http feed only waits for the stop."""
    served, store, series, feed = checked.served, checked.store, checked.series, checked.feed
    if feed.kind == "replay":
        assert feed.start is not None and feed.end is not None
        _replay(handle, served, _recorded(served, store), series, feed, options.speed, checked.grace, stop)
    elif feed.kind == "store":
        recorded = _recorded(served, store)
        _follow_store(
            handle, served, recorded, series, feed, options.poll, checked.resume_after, checked.grace, stop
        )
    elif feed.kind == "gds":
        _follow_gds(
            handle, served, store, series, feed, options.poll, checked.resume_after, checked.grace, stop
        )
    else:
        while not stop():
            time.sleep(0.2)


def _tear_down(name: str, started_ray: bool) -> None:
    from ray import serve

    serve.delete(name)
    if started_ray:
        import ray

        ray.shutdown()


def _replay_verdict(final: dict[str, Any]) -> int:
    """0, unless the replay predicted no bar at all: then why (on stderr) and 1."""
    if final.get("predicted", 0):
        return 0
    reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(final.get("unpredictable_by_reason", {}).items()))
    why = [
        f"{final.get('unpredictable', 0):,} bar(s) could not be predicted"
        + (f" ({reasons})" if reasons else "")
    ]
    if final.get("rejected"):
        why.append(f"{final['rejected']:,} event(s) refused")
    if not final.get("events"):
        why.append("no event in the range")
    print(f"error: the replay predicted no bar: {'; '.join(why)}", file=sys.stderr, flush=True)
    return 1


# --------------------------------------------------------------------------------------- checks
def _check_store(served: ServedTrial, store: MarketStore, feed: Feed) -> None:
    fls = served.featureset
    probe = feed.start or pd.Timestamp("2000-01-01", tz="UTC")
    probe = probe.floor(fls.resolution.freq)
    MarketData(store, probe, probe, fls.resolution, fill_limit=fls.fill_limit).check(list(fls.features))


def _holds_anything(store: MarketStore) -> bool:
    try:
        return bool(store.exchanges())
    except OSError:
        return False


def _check_redis(url: str, name: str) -> int | None:
    """Ping redis once (refusing a URL that does not answer) and read where this name stopped."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=2.0)
        client.ping()
        latest = client.hget(latest_key(name), "ts")
        client.close()
    except redis.exceptions.AuthenticationError:
        raise AtlasError(f"redis at {masked_url(url)} refused the password in the URL.") from None
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as error:
        raise AtlasError(f"redis at {masked_url(url)} does not answer ({type(error).__name__}).") from None
    except redis.exceptions.ResponseError as error:
        raise AtlasError(f"redis at {masked_url(url)} answered with an error: {error}") from None
    if not latest:
        return None
    return parse_iso(latest.decode() if isinstance(latest, bytes) else str(latest))


def _start_ray(options: ServeOptions) -> bool:
    """Join ``--address`` or start a local Ray (``atlas_ray._ray_runtime``); whether it started one.
    Prints where the dashboard is and how to get its token."""
    from atlas_ray import _ray_runtime

    started = _ray_runtime.connect(options.address, metrics_port=options.metrics_port)
    for line in _ray_runtime.dashboard_lines():
        print(line, flush=True)
    return started


def _is_live(name: str) -> bool:
    from ray import serve

    try:
        applications = serve.status().applications
    except Exception:
        return False
    return name in applications and str(applications[name].status) in ("RUNNING", "ApplicationStatus.RUNNING")


# ----------------------------------------------------------------------------------------- feeds
def _history(served: ServedTrial) -> pd.Timedelta:
    fls = served.featureset
    before = max(f.halo[0] for f in fls.features)
    window = served.result.window or 1
    return (before + 2 * fls.fill_limit + window + 4) * fls.resolution.offset


def _recorded(served: ServedTrial, store: MarketStore) -> MarketStore | SourcedMarket:
    """The store as the trial's recorded sources read it (``SourcedMarket``): each series from the
    stored kind its training build read, whatever else the store holds now (bars stored later at the
    model's resolution are not read where training resampled finer bars); a trial without recorded
    sources reads by the store's rule, as it did then."""
    if served.sources is None:
        return store
    return SourcedMarket(store, served.featureset.resolution, served.sources)


def _replay(
    handle: Any,
    served: ServedTrial,
    store: MarketStore | SourcedMarket,
    series: list[tuple[str, str, str]],
    feed: Feed,
    speed: float,
    grace: pd.Timedelta | None,
    stop: _Stop,
) -> None:
    assert feed.start is not None and feed.end is not None
    resolution = served.featureset.resolution
    lo, hi = feed.start.ceil(resolution.freq), feed.end.ceil(resolution.freq)
    # bars built from finer bars or trades: not past the last closed one (a store still being written
    # may hold a coarse bar that is forming; it is not replayed as if it had closed)
    now = pd.Timestamp.now(tz="UTC") if grace is not None else None
    for key in series:
        if key[2].startswith("bars_") and bars_read(store, key[0], key[1], resolution) != key[2]:
            closed = closed_through(store, key, resolution, now=now, grace=grace)
            hi = min(hi, closed) if closed is not None else lo
    hi = max(hi, lo)
    warm = history_events(store, series, resolution, lo - _history(served), lo)
    handle.push.remote({"events": warm, "through": (lo - resolution.offset).value, "warm": True}).result()
    for push, _ in paced(replay_ticks(store, series, resolution, lo, hi), speed, stopped=stop):
        handle.push.remote(push).result()
    handle.flush.remote().result()


def _follow_store(
    handle: Any,
    served: ServedTrial,
    store: MarketStore | SourcedMarket,
    series: list[tuple[str, str, str]],
    feed: Feed,
    poll: float,
    resume_after: int | None,
    grace: pd.Timedelta | None,
    stop: _Stop,
) -> None:
    """Poll the store (``store_pushes``); push every closed bar (and every other row) not pushed yet."""
    resolution = served.featureset.resolution
    step = resolution.offset
    marks = [closed_through(store, key, resolution) for key in series]
    if resume_after is not None:
        start = pd.Timestamp(resume_after, tz="UTC") + step
    elif feed.start is not None:
        start = feed.start.ceil(resolution.freq)
    else:
        known = [m for m in marks if m is not None]
        # the newest bar closed in every series (predicted at once), else the bar open now
        latest = min(known) if known and len(known) == len(marks) else pd.Timestamp.now(tz="UTC")
        start = (latest - pd.Timedelta(1, "ns")).floor(resolution.freq)
    warm = _closed_history(store, series, resolution, start - _history(served), start, marks)
    handle.push.remote({"events": warm, "through": (start - step).value, "warm": True}).result()
    for events in store_pushes(store, series, resolution, start, poll=poll, stop=stop.event, grace=grace):
        if events:
            handle.push.remote({"events": events}).result()


def _closed_history(
    store: MarketStore | SourcedMarket,
    series: list[tuple[str, str, str]],
    resolution: Any,
    lo: pd.Timestamp,
    hi: pd.Timestamp,
    marks: list[pd.Timestamp | None],
) -> list[dict[str, object]]:
    """``history_events`` over ``[lo, hi)``, each series only up to where it is closed (``marks``): a bar
    still forming is left to the feed, which hands it over once it closes."""
    ticks = []
    for key, mark in zip(series, marks, strict=True):
        end = hi if mark is None else min(hi, mark)
        if end > lo:
            ticks.extend(series_events(store, key, resolution, lo, end))
    ticks.sort(key=lambda item: item[0])
    return [event for _, event in ticks]


def _follow_gds(
    handle: Any,
    served: ServedTrial,
    store: MarketStore,
    series: list[tuple[str, str, str]],
    feed: Feed,
    poll: float,
    resume_after: int | None,
    grace: pd.Timedelta | None,
    stop: _Stop,
) -> None:
    """Read the Gryphon Data Service into the store as it fills, and push each bar once it closes
    (``gds_pushes``). After a restart it goes on after the newest prediction in redis."""
    resolution = served.featureset.resolution
    for push in gds_pushes(
        store,
        series,
        feed.url,
        resolution,
        _history(served),
        poll=poll,
        stop=stop.event,
        resume_after=resume_after,
        grace=grace,
        lag=served.featureset.fill_limit,
    ):
        handle.push.remote(push).result()


# ---------------------------------------------------------------------------------------- status
FULL_SPEED_NOTE = (
    "note: a replay at --speed 0 sends the bars in pushes of up to 64 as fast as they are taken, so "
    "'bar->redis' on the status lines is mostly each bar's wait behind the rest of its push (a queue), "
    "not a live bar's latency; benchmarks/bench_serve.py measures that at a live rate"
)


class _StatusPrinter:
    """One concise line every ``every`` seconds from the deployment's counts."""

    def __init__(self, handle: Any, every: float, stop: _Stop) -> None:
        self.handle = handle
        self.every = every
        self.stopped = stop
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        if self.every > 0:
            self._thread.start()

    def stop(self) -> None:
        self._done.set()

    def _run(self) -> None:
        while not self._done.wait(self.every):
            with contextlib.suppress(Exception):
                print(self.line(self.handle.stats.remote().result(timeout_s=10)), flush=True)

    @staticmethod
    def line(stats: dict[str, Any]) -> str:
        when = time.strftime("%H:%M:%S")
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(stats.get("rejected_by_reason", {}).items()))
        rejected = f"{stats['rejected']}" + (f" ({reasons})" if reasons else "")
        causes = ", ".join(f"{k} {v:,}" for k, v in sorted(stats.get("unpredictable_by_reason", {}).items()))
        unpredictable = f"{stats.get('unpredictable', 0):,}" + (f" ({causes})" if causes else "")
        last = stats.get("latency_last_ms")
        p99 = stats.get("latency_p99_ms")
        latency = f"last {last:.1f} ms, p99 {p99:.1f} ms" if last is not None and p99 is not None else "n/a"
        f50, f99 = stats.get("freshness_p50_ms"), stats.get("freshness_p99_ms")
        freshness = (
            f"p50 {_duration(f50)}, p99 {_duration(f99)}" if f50 is not None and f99 is not None else "n/a"
        )
        # bar received by the deployment -> its prediction written to redis (FULL_SPEED_NOTE: in a replay
        # at --speed 0 that includes the wait behind the rest of a push)
        return (
            f"[{when}] {stats['name']} v{stats['version']} (trial {stats['trial']}): "
            f"bars in {stats['events']:,} | predictions written {stats['written']:,} | "
            f"repeated {stats.get('repeated', 0):,} | dropped {stats['dropped']:,} | "
            f"buffered {stats['buffered']:,} | rejected {rejected} | unpredictable {unpredictable} | "
            f"bar->redis {latency} | close->redis {freshness} | last bar {stats['last_bar']} | "
            f"redis {'up' if stats['redis_up'] else 'DOWN'}"
        )


def _duration(ms: float) -> str:
    """A freshness in the unit that reads best: ms below a second, then s, min, h, d (a replay of
    history writes bars that closed long ago)."""
    for unit, size in (("d", 86_400_000.0), ("h", 3_600_000.0), ("min", 60_000.0), ("s", 1_000.0)):
        if abs(ms) >= size:
            return f"{ms / size:,.1f} {unit}"
    return f"{ms:.1f} ms"
