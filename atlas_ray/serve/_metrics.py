"""Every metric a live model exports, in one place: its name, what it measures, its tags and, for a
histogram, its bucket boundaries (milliseconds).

The metrics go through Ray's metrics system (``ray.util.metrics``): each replica records them, the
node's metrics agent exports them in Prometheus text format at the node's metrics export port
(``atlas_ray._ray_runtime.metrics_address``; on 127.0.0.1 for a local Ray), after its report interval
(``RAY_metrics_report_interval_ms``, 10 s by default). Ray puts ``ray_`` in front of every name and
``_total`` after a counter's, so ``atlas_live_predictions_written`` is scraped as
``ray_atlas_live_predictions_written_total``; a histogram as ``..._bucket`` / ``_count`` / ``_sum``.

Every metric carries the tag ``deployment`` (the live name, ``atlas:pred:NAME``); a few add one more
(``reason``, ``trial``). The retraining counters (``RETRAINS_*``, ``PROMOTIONS``, ``ROLLBACKS``) are
declared here for the retraining work to increment (``live_metric(RETRAINS_STARTED, name)``); nothing
in serving increments them yet.

What each counts is the deployment's own count, so a scrape equals the status line: bars in is the
engine's ``events``, the prediction counters are the sink's (``written``, ``repeated``, ``refused``,
``dropped``, ``skipped``; ``buffered`` a gauge), each counted where the sink counts it
(``RedisSink(observer=...)``).

Hot path: a push records a handful of counters and, per prediction written, one latency and one
freshness observation (two ``Histogram.observe`` calls, a few microseconds each);
``benchmarks/bench_serve.py`` shows it costs no more than its noise.
"""

from __future__ import annotations

import collections
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ALL",
    "BARS_IN",
    "BUFFERED",
    "DEPLOYMENT",
    "EVENTS_REFUSED",
    "FRESHNESS_MS",
    "FRESHNESS_BOUNDARIES_MS",
    "LATENCY_BOUNDARIES_MS",
    "LATENCY_MS",
    "MODEL_VERSION",
    "PREDICTIONS",
    "PREDICTIONS_DROPPED",
    "PREDICTIONS_REFUSED",
    "PREDICTIONS_REPEATED",
    "PREDICTIONS_SKIPPED",
    "PREDICTIONS_WRITTEN",
    "PROMOTIONS",
    "REDIS_UP",
    "RETRAINS_FAILED",
    "RETRAINS_FINISHED",
    "RETRAINS_STARTED",
    "ROLLBACKS",
    "UNPREDICTABLE",
    "Kind",
    "LiveMetrics",
    "MetricDef",
    "live_metric",
    "scraped_name",
]

DEPLOYMENT = "deployment"

LATENCY_BOUNDARIES_MS: tuple[float, ...] = (
    0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 50, 75, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 30_000, 60_000,
)  # fmt: skip
"""A live bar takes a few milliseconds (bench_serve: p50 about 3 ms); a replay at ``--speed 0`` queues
a push of 64 bars behind each other (tens to hundreds of ms); redis away: seconds to a minute."""

FRESHNESS_BOUNDARIES_MS: tuple[float, ...] = (
    5, 10, 25, 50, 100, 250, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000,
    300_000, 600_000, 1_800_000, 3_600_000, 86_400_000,
)  # fmt: skip
"""How long after its bar closed a prediction was in redis: an HTTP feed sending at the close, a few ms;
a ``store:`` feed, its poll (5 s) plus the vendor's delay (seconds to a minute); a bar closed by
``--grace``, that grace. A replay of history writes bars that closed long ago: beyond a day (``+Inf``)."""


class Kind(enum.Enum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


@dataclass(frozen=True)
class MetricDef:
    """One metric: its Ray name (scraped as ``scraped_name``), what it measures, its tags (``deployment``
    first) and a histogram's boundaries."""

    name: str
    kind: Kind
    description: str
    tags: tuple[str, ...] = (DEPLOYMENT,)
    boundaries: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not self.tags or self.tags[0] != DEPLOYMENT:
            raise ValueError(
                f"The tags of `{self.name}` are {self.tags}, but must start with {DEPLOYMENT!r}."
            )
        if (self.kind is Kind.HISTOGRAM) != bool(self.boundaries):
            raise ValueError(f"`{self.name}` is a {self.kind.value}: boundaries only for a histogram.")


def scraped_name(definition: MetricDef) -> str:
    """The name a Prometheus scrape shows for ``definition``'s value (a histogram: its ``_count``)."""
    suffix = {Kind.COUNTER: "_total", Kind.GAUGE: "", Kind.HISTOGRAM: "_count"}[definition.kind]
    return f"ray_{definition.name}{suffix}"


_C, _G, _H = Kind.COUNTER, Kind.GAUGE, Kind.HISTOGRAM
BARS_IN = MetricDef(
    "atlas_live_bars_in", _C, "market events (bars, quotes, trades, book snapshots) accepted by the engine"
)
EVENTS_REFUSED = MetricDef(
    "atlas_live_events_refused",
    _C,
    "market events refused, by reason (malformed, missing_field, out_of_order, duplicate, ...)",
    (DEPLOYMENT, "reason"),
)
UNPREDICTABLE = MetricDef(
    "atlas_live_bars_unpredictable",
    _C,
    "closed bars not predicted, by reason (no value: FEATURE, no full window of N bars)",
    (DEPLOYMENT, "reason"),
)
PREDICTIONS = MetricDef("atlas_live_predictions", _C, "predictions handed to the redis sink (not skipped)")
PREDICTIONS_WRITTEN = MetricDef("atlas_live_predictions_written", _C, "predictions written to redis")
PREDICTIONS_REPEATED = MetricDef(
    "atlas_live_predictions_repeated", _C, "predictions not written: redis already holds their bar"
)
PREDICTIONS_REFUSED = MetricDef(
    "atlas_live_predictions_refused", _C, "predictions redis answered with another error (logged)"
)
PREDICTIONS_DROPPED = MetricDef(
    "atlas_live_predictions_dropped", _C, "predictions let go: buffer full while redis was away, or at stop"
)
PREDICTIONS_SKIPPED = MetricDef(
    "atlas_live_predictions_skipped", _C, "predictions at or before the newest in redis after a restart"
)
BUFFERED = MetricDef(
    "atlas_live_predictions_buffered", _G, "predictions in the sink's buffer, not written yet"
)
REDIS_UP = MetricDef(
    "atlas_live_redis_up", _G, "1 while the last redis write succeeded, 0 while redis is away"
)
LATENCY_MS = MetricDef(
    "atlas_live_latency_ms",
    _H,
    "per prediction written: its bar event received by the deployment -> its redis write acknowledged (ms)",
    boundaries=LATENCY_BOUNDARIES_MS,
)
FRESHNESS_MS = MetricDef(
    "atlas_live_freshness_ms",
    _H,
    "per prediction written: its bar's close -> its redis write acknowledged, wall clock (ms)",
    boundaries=FRESHNESS_BOUNDARIES_MS,
)
MODEL_VERSION = MetricDef(
    "atlas_live_model_version",
    _G,
    "the live model's version under its trial; a trial swapped out reads 0",
    (DEPLOYMENT, "trial"),
)
RETRAINS_STARTED = MetricDef("atlas_live_retrains_started", _C, "retrains started (the retraining policy)")
RETRAINS_FINISHED = MetricDef("atlas_live_retrains_finished", _C, "retrains that produced a challenger")
RETRAINS_FAILED = MetricDef(
    "atlas_live_retrains_failed", _C, "retrains that failed (the champion kept serving), by reason",
    (DEPLOYMENT, "reason"),
)  # fmt: skip
PROMOTIONS = MetricDef("atlas_live_promotions", _C, "challengers promoted by the gate")
ROLLBACKS = MetricDef("atlas_live_rollbacks", _C, "promoted models rolled back to the previous champion")

ALL: tuple[MetricDef, ...] = (
    BARS_IN,
    EVENTS_REFUSED,
    UNPREDICTABLE,
    PREDICTIONS,
    PREDICTIONS_WRITTEN,
    PREDICTIONS_REPEATED,
    PREDICTIONS_REFUSED,
    PREDICTIONS_DROPPED,
    PREDICTIONS_SKIPPED,
    BUFFERED,
    REDIS_UP,
    LATENCY_MS,
    FRESHNESS_MS,
    MODEL_VERSION,
    RETRAINS_STARTED,
    RETRAINS_FINISHED,
    RETRAINS_FAILED,
    PROMOTIONS,
    ROLLBACKS,
)


def live_metric(definition: MetricDef, deployment: str) -> Any:
    """The Ray metric of ``definition`` with its ``deployment`` tag set (the process must have joined
    Ray: a replica, a Ray task or a driver after ``ray.init``)."""
    from ray.util import metrics

    if definition.kind is Kind.COUNTER:
        metric: Any = metrics.Counter(definition.name, definition.description, definition.tags)
    elif definition.kind is Kind.GAUGE:
        metric = metrics.Gauge(definition.name, definition.description, definition.tags)
    else:
        metric = metrics.Histogram(
            definition.name, definition.description, list(definition.boundaries), definition.tags
        )
    return metric.set_default_tags({DEPLOYMENT: deployment})


# the sink's counts -> their counters
_SINK_COUNTERS = {
    "predictions": PREDICTIONS,
    "written": PREDICTIONS_WRITTEN,
    "repeated": PREDICTIONS_REPEATED,
    "refused": PREDICTIONS_REFUSED,
    "dropped": PREDICTIONS_DROPPED,
    "skipped": PREDICTIONS_SKIPPED,
}


class LiveMetrics:
    """The serving metrics of the live model ``deployment`` (one per replica), and the recent freshness
    figures the status line shows. ``bar_ns``: the model's bar length (its close is ``stamp + bar_ns``).
    Also the sink's observer (``counted``, ``written``, ``buffered``, ``redis``)."""

    def __init__(self, deployment: str, bar_ns: int, *, recent: int = 10_000) -> None:
        self.deployment = deployment
        self.bar_ns = bar_ns
        self._counters = {key: live_metric(d, deployment) for key, d in _SINK_COUNTERS.items()}
        self._bars_in = live_metric(BARS_IN, deployment)
        self._refused = live_metric(EVENTS_REFUSED, deployment)
        self._unpredictable = live_metric(UNPREDICTABLE, deployment)
        self._buffered = live_metric(BUFFERED, deployment)
        self._redis_up = live_metric(REDIS_UP, deployment)
        self._latency = live_metric(LATENCY_MS, deployment)
        self._freshness = live_metric(FRESHNESS_MS, deployment)
        self._version = live_metric(MODEL_VERSION, deployment)
        self._buffered.set(0)
        self._redis_up.set(1)
        self.freshness_ms: collections.deque[float] = collections.deque(maxlen=recent)

    # ------------------------------------------------------------------ engine
    def pushed(
        self, accepted: int, rejected: Sequence[tuple[str, str]], unpredictable: Mapping[str, int]
    ) -> None:
        """One push's engine counts: events accepted, refused (``(reason, message)``), bars not predicted."""
        if accepted:
            self._bars_in.inc(accepted)
        if rejected:
            for reason, count in collections.Counter(r for r, _ in rejected).items():
                self._refused.inc(count, {"reason": reason})
        for reason, count in unpredictable.items():
            if count:
                self._unpredictable.inc(count, {"reason": reason})

    def live(self, trial: str, version: int, previous: str | None = None) -> None:
        """``trial`` is live at ``version`` (``previous``: the trial it replaced, set to 0)."""
        if previous is not None and previous != trial:
            self._version.set(0, {"trial": previous})
        self._version.set(version, {"trial": trial})

    # --------------------------------------------------------- the sink's observer
    def counted(self, outcome: str, count: int) -> None:
        """The sink counted ``count`` predictions as ``outcome`` (its own count names)."""
        counter = self._counters.get(outcome)
        if counter is not None and count > 0:
            counter.inc(count)

    def written(
        self, stamps: Sequence[int], received: Sequence[float], acked: float, acked_wall: float
    ) -> None:
        """Predictions of bars ``stamps`` (ns), received at ``received`` (perf_counter s; NaN: unknown),
        acknowledged by redis at ``acked`` (perf_counter s) / ``acked_wall`` (epoch s)."""
        close_ms = self.bar_ns / 1e6
        wall_ms = acked_wall * 1e3
        for stamp, at in zip(stamps, received, strict=True):
            if at == at:  # not NaN
                self._latency.observe((acked - at) * 1e3)
            freshness = wall_ms - (stamp / 1e6 + close_ms)
            self._freshness.observe(freshness)
            self.freshness_ms.append(freshness)

    def buffered(self, count: int) -> None:
        self._buffered.set(count)

    def redis(self, up: bool) -> None:
        self._redis_up.set(1 if up else 0)
