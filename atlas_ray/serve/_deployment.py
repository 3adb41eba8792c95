"""``LiveModel``: the Ray Serve deployment of one live model.

One replica per live name (the feature history is state: a second replica would see half the bars).
``__init__`` loads everything once: the trial (``ServedTrial``), its Keras model, the ``LiveEngine``
and the ``RedisSink``. The handlers are small:

* ``push(push)``: one push from a feed, ``{"events": [...], "through": ISO or ns, "warm": bool}``;
  concurrent pushes are gathered by ``@serve.batch`` and decided together (one feature computation,
  one model call, one redis pipeline for the batch); a push returns only once its predictions are
  accepted into the sink's buffer, which waits for room while redis answers (backpressure: a feed
  is slowed to redis' pace, never outruns it into drops; see ``_sink``);
* HTTP on Serve's proxy (127.0.0.1 unless asked): ``POST /NAME/bars`` with an event, a list of events
  or a push object; ``GET /NAME/health`` (200 while the model is loaded, with redis' state and counts);
  ``GET /NAME/stats``;
* ``swap(config)``: load another trial and hand it this engine's market history and position, between
  two pushes, so no bar is skipped; the version goes up by one;
* ``stats()``, ``flush()``, ``stop()``.

Its metrics (``_metrics``: bars in, refusals, the sink's counts, latency and freshness, the live
version) are recorded through Ray's metrics system as it counts, tagged with the live name.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import numpy as np
from ray import serve

from atlas_ray.serve._engine import LiveEngine, PushOutcome
from atlas_ray.serve._metrics import LiveMetrics
from atlas_ray.serve._sink import RedisSink

__all__ = ["LiveModel", "build_engine"]

log = logging.getLogger("atlas_ray.serve")

MAX_BATCH = 256


def build_engine(config: dict[str, Any], previous: LiveEngine | None = None) -> LiveEngine:
    """The engine for ``config`` (experiment, trial, version, series), taking over ``previous``."""
    from atlas_ray.search import load_model  # registers the zoo's custom layers first
    from atlas_ray.serve._trial import find_trial

    served = find_trial(config["experiment"], trial=config["trial"])
    model = load_model(served.result)
    version = int(config.get("version", 1))
    if previous is not None:
        return previous.successor(served, model, version)
    series = [tuple(s) for s in config["series"]] if config.get("series") else None
    return LiveEngine(served, model, version=version, series=series)  # type: ignore[arg-type]


def _through(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    from atlas_ray.serve._redis_contract import parse_iso

    return parse_iso(str(value))


@serve.deployment(num_replicas=1, max_ongoing_requests=MAX_BATCH * 4, health_check_period_s=5)
class LiveModel:
    """One live model (see the module docstring)."""

    def __init__(self, config: dict[str, Any]) -> None:
        import os

        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        self.config = dict(config)
        self.name = str(config["name"])
        self.engine = build_engine(config)
        self.metrics = LiveMetrics(self.name, self.engine.step)
        self.metrics.live(self.engine.served.trial_id, self.engine.version)
        import ray

        self.node_id = ray.get_runtime_context().get_node_id()
        self.sink = RedisSink(
            config["redis_url"],
            self.name,
            buffer=int(config.get("buffer", 10_000)),
            gryphon_key=bool(config.get("gryphon_key", False)),
            resume=bool(config.get("resume", False)),
            observer=self.metrics,
        )
        self._started = False
        self._lock = asyncio.Lock()
        self.started_at = time.time()
        self.last_push = 0.0

    async def _start(self) -> None:
        if not self._started:
            self._started = True
            await self.sink.start()

    # ------------------------------------------------------------------ pushes
    async def push(self, push: dict[str, Any]) -> dict[str, Any]:
        """One push (see the module docstring); returns the batch's counts and refusals."""
        result: dict[str, Any] = await self._push_batch(push)
        return result

    @serve.batch(max_batch_size=MAX_BATCH, batch_wait_timeout_s=0.0)
    async def _push_batch(self, pushes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        received = time.perf_counter()
        await self._start()
        async with self._lock:
            total = PushOutcome()
            # consecutive pushes with the same `warm` flag are decided together
            group: list[dict[str, Any]] = []
            for push in [*pushes, {"_end": True}]:
                if group and (push.get("_end") or bool(push.get("warm")) != bool(group[0].get("warm"))):
                    events = [e for p in group for e in _events(p)]
                    marks = [t for t in (_through(p.get("through")) for p in group) if t is not None]
                    outcome = self.engine.push(
                        events, through=max(marks) if marks else None, warm=bool(group[0].get("warm"))
                    )
                    total.predictions.extend(outcome.predictions)
                    total.rejected.extend(outcome.rejected)
                    total.accepted += outcome.accepted
                    total.incomplete += outcome.incomplete
                    for reason, count in outcome.unpredictable.items():
                        total.unpredictable[reason] = total.unpredictable.get(reason, 0) + count
                    group = []
                    self.metrics.pushed(outcome.accepted, outcome.rejected, outcome.unpredictable)
                if not push.get("_end"):
                    group.append(push)
            await self.sink.write(total.predictions, received)  # returns once all are accepted
            self.last_push = time.time()
        answer = {
            "accepted": total.accepted,
            "rejected": [{"reason": r, "message": m} for r, m in total.rejected],
            "predictions": len(total.predictions),
            "incomplete": total.incomplete,
            "unpredictable": total.unpredictable,
            "version": self.engine.version,
        }
        return [answer] * len(pushes)

    # -------------------------------------------------------------------- HTTP
    async def __call__(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        from atlas_ray.serve._http import BadBodyError, authorized, read_push

        if not authorized(request.headers.get("authorization"), self.config.get("http_token_sha256")):
            return JSONResponse(
                {"error": "a bearer token is required (Authorization: Bearer TOKEN)"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        path = request.url.path.rstrip("/").rsplit("/", 1)[-1]
        if request.method == "GET" and path in ("health", "stats"):
            stats = await self.stats()
            return JSONResponse(stats, status_code=200)
        if request.method == "POST" and path == "bars":
            try:
                push = read_push(await request.body())
            except BadBodyError as error:
                return JSONResponse({"error": str(error)}, status_code=400)
            answer = await self.push({**push, "warm": False})
            return JSONResponse(answer, status_code=200)
        return JSONResponse(
            {"error": f"{request.method} {request.url.path}: use POST bars, GET health or GET stats"},
            status_code=404,
        )

    # -------------------------------------------------------------- management
    async def swap(self, config: dict[str, Any]) -> dict[str, Any]:
        """Replace the model by ``config['trial']`` of ``config['experiment']`` without a gap."""
        await self._start()
        async with self._lock:
            previous = self.engine
            config = {**config, "version": previous.version + 1}
            self.engine = build_engine(config, previous)
            self.metrics.bar_ns = self.engine.step
            self.metrics.live(self.engine.served.trial_id, self.engine.version, previous.served.trial_id)
            log.warning(
                "swapped: trial %s (version %d) -> trial %s (version %d)",
                previous.served.trial_id,
                previous.version,
                self.engine.served.trial_id,
                self.engine.version,
            )
        return await self.stats()

    async def stats(self) -> dict[str, Any]:
        await self._start()
        counts = self.engine.counts
        latencies = np.asarray(self.sink.latencies, dtype="float64") * 1000.0
        freshness = np.asarray(self.metrics.freshness_ms, dtype="float64")
        rejected = {k.split(".", 1)[1]: v for k, v in counts.items() if k.startswith("rejected.")}
        unpredictable = {k.split(".", 1)[1]: v for k, v in counts.items() if k.startswith("unpredictable.")}
        done = self.engine.done
        return {
            "status": "ok",
            "name": self.name,
            "experiment": self.engine.served.experiment_name,
            "trial": self.engine.served.trial_id,
            "version": self.engine.version,
            "events": counts["events"],
            "rejected": counts["rejected"],
            "rejected_by_reason": rejected,
            "incomplete": counts["incomplete"],
            "predicted": counts["predictions"],
            "unpredictable": counts["unpredictable"],
            "unpredictable_by_reason": unpredictable,
            "last_bar": None if done is None else _iso(done),
            "latency_last_ms": float(latencies[-1]) if len(latencies) else None,
            "latency_p50_ms": float(np.percentile(latencies, 50)) if len(latencies) else None,
            "latency_p99_ms": float(np.percentile(latencies, 99)) if len(latencies) else None,
            "freshness_p50_ms": float(np.percentile(freshness, 50)) if len(freshness) else None,
            "freshness_p99_ms": float(np.percentile(freshness, 99)) if len(freshness) else None,
            "node_id": self.node_id,
            **self.sink.snapshot(),
        }

    async def flush(self, timeout: float = 30.0) -> dict[str, Any]:
        """Wait (up to ``timeout`` s) until every buffered prediction is written."""
        await self._start()
        deadline = time.monotonic() + timeout
        while self.sink.buffered and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return await self.stats()

    async def stop(self, timeout: float = 10.0) -> dict[str, Any]:
        """Flush (up to ``timeout`` s) and close the redis connection; the counts after it."""
        await self._start()
        async with self._lock:
            await self.sink.close(timeout)
        return await self.stats()

    def check_health(self) -> None:
        """Serve's health check: the model and engine are loaded (redis may be down: that is buffered)."""
        if self.engine.model is None:
            raise RuntimeError("no model loaded")


def _events(push: dict[str, Any]) -> list[Any]:
    events = push.get("events", [])
    return list(events) if isinstance(events, list) else [events]


def _iso(stamp: int) -> str:
    from atlas_ray.serve._redis_contract import iso

    return iso(stamp)
