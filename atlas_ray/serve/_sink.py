"""``RedisSink``: writes predictions to redis by the contract, and rides out redis going away.

Every batch of predictions is one pipeline (``XADD`` and ``PUBLISH`` per prediction, ``HSET`` of the
newest, ``SET ML_PREDICTION`` when asked). Writes go through a bounded buffer (default 10,000
predictions): when a write fails (redis down, a timeout) the predictions stay buffered, the bar
processing goes on untouched, and a background task tries again with exponential back-off (0.1 s
doubling to 5 s). When the buffer is full the oldest prediction is let go and counted as ``dropped``.
Short blips are retried inside redis-py itself (its ``Retry`` with ``ExponentialBackoff``) before a
write counts as failed.

With ``resume`` (the store and GDS feeds), a prediction at or before the newest one already in redis
for this name is not written again: a restarted server neither repeats nor misses a bar. A replay
writes every bar it is given.

Counts always add up: ``predictions = written + dropped + buffered`` (``skipped`` predictions, at or
before the bar a restarted deployment finds already written, never enter the buffer).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

from atlas_ray.serve._engine import Prediction
from atlas_ray.serve._redis_contract import (
    DEFAULT_STREAM_MAXLEN,
    GRYPHON_KEY,
    channel,
    fields,
    latest_key,
    masked_url,
    parse_iso,
    stream_key,
)

__all__ = ["RedisSink"]

log = logging.getLogger("atlas_ray.serve")

_BATCH = 500
_BACKOFF_FIRST = 0.1
_BACKOFF_CAP = 5.0


class RedisSink:
    """Predictions of the live model ``name`` into redis at ``url`` (see the module docstring)."""

    def __init__(
        self,
        url: str,
        name: str,
        *,
        buffer: int = 10_000,
        stream_maxlen: int = DEFAULT_STREAM_MAXLEN,
        gryphon_key: bool = False,
        resume: bool = True,
    ) -> None:
        if buffer < 1:
            raise ValueError(f"The value of `buffer` is {buffer}, but must be `buffer >= 1`.")
        self.url = url
        self.name = name
        self.stream_maxlen = stream_maxlen
        self.gryphon_key = gryphon_key
        self._buffer: collections.deque[Prediction] = collections.deque()
        self._capacity = buffer
        self._client: Any = None
        self._down_since: float | None = None
        self._next_attempt = 0.0
        self._backoff = _BACKOFF_FIRST
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.resume = resume
        self.resume_after: int | None = None
        self.counts: collections.Counter[str] = collections.Counter()
        self.latencies: collections.deque[float] = collections.deque(maxlen=10_000)

    # --------------------------------------------------------------------- life
    async def start(self) -> None:
        """Connect (lazily: redis may be down now and come later), read where a previous run of this
        name stopped, and start the background retry task."""
        import redis.asyncio as aioredis
        from redis.backoff import ExponentialBackoff
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError
        from redis.retry import Retry

        self._client = aioredis.Redis.from_url(  # type: ignore[call-overload]
            self.url,
            socket_connect_timeout=1.0,
            socket_timeout=2.0,
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 2),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
        )
        try:
            latest = await self._client.hget(latest_key(self.name), "ts") if self.resume else None
            if latest:
                self.resume_after = parse_iso(latest.decode() if isinstance(latest, bytes) else latest)
        except Exception as error:  # redis down at start: written when it returns
            self._mark_down(error)
        self._task = asyncio.get_running_loop().create_task(self._retry_loop())

    async def close(self, timeout: float = 10.0) -> None:
        """Flush what is buffered (trying for up to ``timeout`` s), then close; what is left is dropped
        and counted."""
        deadline = time.monotonic() + timeout
        while self._buffer and time.monotonic() < deadline:
            await self._flush()
            if self._buffer:
                await asyncio.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        if self._buffer:
            self.counts["dropped"] += len(self._buffer)
            log.warning("stopped with %d prediction(s) not written (redis unreachable)", len(self._buffer))
            self._buffer.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()

    # ------------------------------------------------------------------- writes
    async def write(self, predictions: Sequence[Prediction], received: float | None = None) -> None:
        """Buffer ``predictions`` and write them now unless redis is known to be down."""
        for prediction in predictions:
            if self.resume_after is not None and prediction.stamp <= self.resume_after:
                self.counts["skipped"] += 1
                continue
            if len(self._buffer) >= self._capacity:
                self._buffer.popleft()
                self.counts["dropped"] += 1
            self._buffer.append(prediction)
            self.counts["predictions"] += 1
        if self._down_since is None or time.monotonic() >= self._next_attempt:
            written = await self._flush()
            if written and received is not None:
                self.latencies.append(time.perf_counter() - received)

    async def _flush(self) -> int:
        written = 0
        async with self._lock:
            while self._buffer:
                batch = list(self._buffer)[:_BATCH]
                try:
                    await self._write_batch(batch)
                except Exception as error:
                    self._mark_down(error)
                    return written
                for _ in batch:
                    self._buffer.popleft()
                written += len(batch)
                self.counts["written"] += len(batch)
            if self._down_since is not None:
                log.warning(
                    "redis at %s is back after %.1f s; buffered predictions written",
                    masked_url(self.url),
                    time.monotonic() - self._down_since,
                )
                self._down_since = None
                self._backoff = _BACKOFF_FIRST
        return written

    async def _write_batch(self, batch: Sequence[Prediction]) -> None:
        now = time.time()
        pipe = self._client.pipeline(transaction=False)
        documents = [fields(p, now) for p in batch]
        for document in documents:
            pipe.xadd(stream_key(self.name), document, maxlen=self.stream_maxlen, approximate=True)
            pipe.publish(channel(self.name), json.dumps(document))
        newest = max(range(len(batch)), key=lambda i: batch[i].stamp)
        pipe.hset(latest_key(self.name), mapping=documents[newest])
        if self.gryphon_key:
            pipe.set(GRYPHON_KEY, json.dumps(documents[newest]))
        await pipe.execute()

    def _mark_down(self, error: BaseException) -> None:
        now = time.monotonic()
        self.counts["write_failures"] += 1
        if self._down_since is None:
            self._down_since = now
            log.warning(
                "redis at %s is unreachable (%s); buffering predictions and retrying",
                masked_url(self.url),
                type(error).__name__,
            )
        else:
            self._backoff = min(_BACKOFF_CAP, self._backoff * 2)
        self._next_attempt = now + self._backoff

    async def _retry_loop(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            if self._buffer and time.monotonic() >= self._next_attempt:
                await self._flush()

    # ------------------------------------------------------------------- status
    @property
    def buffered(self) -> int:
        return len(self._buffer)

    @property
    def redis_up(self) -> bool:
        return self._down_since is None

    def snapshot(self) -> dict[str, Any]:
        return {
            "predictions": self.counts["predictions"],
            "written": self.counts["written"],
            "dropped": self.counts["dropped"],
            "buffered": self.buffered,
            "skipped": self.counts["skipped"],
            "write_failures": self.counts["write_failures"],
            "redis_up": self.redis_up,
        }
