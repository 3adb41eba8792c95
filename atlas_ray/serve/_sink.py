"""``RedisSink``: writes predictions to redis by the contract, and rides out redis going away.

Every batch of predictions is one pipeline (``XADD`` with the bar's own entry id and ``PUBLISH`` per
prediction, ``HSET`` of the newest, ``SET ML_PREDICTION`` when asked; see ``_redis_contract``).

The buffer (``buffer`` predictions, default 10,000) holds what is not written yet: the batch in flight
(the pipeline being sent) and the predictions waiting behind it, oldest first. Its two rules:

* **Backpressure while redis answers.** ``write`` returns only when every prediction it was given is
  accepted into the buffer: when the buffer is full it waits for a flush to make room
  (``wait_for_room``), so a feed of any pace (a catch-up of weeks pushed at once) is slowed to redis'
  pace and nothing is dropped. The deployment awaits ``write`` before its push returns, so the feed
  waits too.
* **Drop the oldest only while redis is away** (the last write attempt failed: redis down, a timeout):
  the bar processing goes on untouched, a background task tries again with exponential back-off
  (0.1 s doubling to 5 s), and when the buffer is full the oldest prediction *not in flight* is let go
  and counted as ``dropped`` (when the whole buffer is in flight, that is the new prediction itself).
  The batch in flight is never touched: when its write fails it goes back to the front of the buffer,
  when it succeeds exactly its predictions leave. A batch is at most half the buffer, so a full
  buffer always has predictions waiting behind the one in flight.

Short blips are retried inside redis-py itself (its ``Retry`` with ``ExponentialBackoff``) before a
write counts as failed.

One stream entry per bar: a bar at or before the stream's newest entry (read once from redis, then
kept up to date) is not sent and is counted ``repeated``; one that redis refuses all the same (its
entry id is the bar's time, so redis refuses an equal or older one) is counted ``repeated`` too, and
the rest of its batch is written. With ``resume`` (the store and GDS feeds), a prediction at or before
the newest one in the hash is not even buffered (``skipped``): a restarted server neither repeats nor
misses a bar.

Counts always add up, and each prediction is exactly one of them:
``predictions = written + repeated + refused + dropped + buffered`` (``refused``: redis answered with
another error for that entry, logged; ``skipped`` predictions never enter the buffer).

An ``observer`` (``SinkObserver``; the deployment's live metrics, ``_metrics.LiveMetrics``) is told of
every count as it is counted (a write call's ``predictions`` / ``skipped`` / ``dropped`` once at its
end, a batch's outcome once per pipeline), of each prediction written with when its bar was received
and when redis acknowledged it, of the buffer's size and of redis going away and coming back; so the
exported metrics are these counts, not a second bookkeeping.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import time
from collections.abc import Sequence
from typing import Any, Protocol

from atlas_ray.serve._engine import Prediction
from atlas_ray.serve._redis_contract import (
    DEFAULT_STREAM_MAXLEN,
    GRYPHON_KEY,
    channel,
    fields,
    is_repeated,
    latest_key,
    legacy_stream_key,
    masked_url,
    parse_iso,
    stream_id,
    stream_key,
    stream_stamp,
)

__all__ = ["RedisSink", "SinkObserver"]

log = logging.getLogger("atlas_ray.serve")

_BATCH = 500
_BACKOFF_FIRST = 0.1
_BACKOFF_CAP = 5.0
_UNKNOWN = float("nan")  # a prediction whose receipt time is unknown

_Entry = tuple[Prediction, float]
"""A prediction in the buffer and when its bar was received (``time.perf_counter``; NaN: unknown)."""


class SinkObserver(Protocol):
    """Told of every count as the sink counts it (the live metrics: ``serve._metrics.LiveMetrics``)."""

    def counted(self, outcome: str, count: int) -> None:
        """``count`` predictions counted as ``outcome`` (predictions, written, repeated, refused,
        dropped, skipped)."""

    def written(
        self, stamps: Sequence[int], received: Sequence[float], acked: float, acked_wall: float
    ) -> None:
        """The predictions of bars ``stamps`` are in redis, acknowledged at ``acked`` (perf_counter) /
        ``acked_wall`` (epoch seconds); ``received``: when each bar was received (NaN: unknown)."""

    def buffered(self, count: int) -> None:
        """The buffer now holds ``count`` predictions."""

    def redis(self, up: bool) -> None:
        """Redis answered (``True``) or the last write failed."""


def _written_before_bar_ids(info: dict[Any, Any]) -> bool:
    """Whether ``XINFO STREAM``'s newest entry has an id other than its bar's (``ts``) time."""
    last = info.get("last-entry", info.get(b"last-entry"))
    if not last:
        return False
    entry_id, entry = last
    ts = entry.get("ts", entry.get(b"ts")) if isinstance(entry, dict) else None
    if ts is None:
        return False
    try:
        stamp = parse_iso(ts.decode() if isinstance(ts, bytes) else str(ts))
    except ValueError:
        return False
    return bool(stream_stamp(entry_id) != stamp)


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
        observer: SinkObserver | None = None,
    ) -> None:
        if buffer < 1:
            raise ValueError(f"The value of `buffer` is {buffer}, but must be `buffer >= 1`.")
        self.url = url
        self.name = name
        self.stream_maxlen = stream_maxlen
        self.gryphon_key = gryphon_key
        self._pending: collections.deque[_Entry] = collections.deque()
        self._in_flight: list[_Entry] = []
        self.observer = observer
        self._capacity = buffer
        self._batch = max(1, min(_BATCH, buffer // 2))
        self._client: Any = None
        self._down_since: float | None = None
        self._next_attempt = 0.0
        self._backoff = _BACKOFF_FIRST
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._top: int | None = None  # the newest bar in the stream (ns), as far as this sink knows
        self._top_known = False
        self.resume = resume
        self.resume_after: int | None = None
        self.counts: collections.Counter[str] = collections.Counter()
        self.latencies: collections.deque[float] = collections.deque(maxlen=10_000)

    # --------------------------------------------------------------------- life
    async def start(self) -> None:
        """Connect (lazily: redis may be down now and come later), read where a previous run of this
        name stopped, and start the background retry task."""
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import ExponentialBackoff
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

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
            await self._read_top()
        except Exception as error:  # redis down at start: written when it returns
            self._mark_down(error)
        self._task = asyncio.get_running_loop().create_task(self._retry_loop())

    async def close(self, timeout: float = 10.0) -> None:
        """Flush what is buffered (trying for up to ``timeout`` s), then close; what is left is dropped
        and counted."""
        deadline = time.monotonic() + timeout
        while self.buffered and time.monotonic() < deadline:
            await self._flush()  # waits for a batch in flight first
            if self._pending:
                await asyncio.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._pending:
            self._count("dropped", len(self._pending))
            log.warning("stopped with %d prediction(s) not written (redis unreachable)", len(self._pending))
            self._pending.clear()
            if self.observer is not None:
                self.observer.buffered(self.buffered)
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()

    # ------------------------------------------------------------------- writes
    async def write(self, predictions: Sequence[Prediction], received: float | None = None) -> None:
        """Accept every one of ``predictions`` into the buffer (waiting for room while redis answers,
        dropping the oldest not in flight while it is away), and write them now unless redis is known
        to be down."""
        written = 0
        at = _UNKNOWN if received is None else received
        counts = self.counts
        tally: collections.Counter[str] = collections.Counter()  # told to the observer once, at the end
        try:
            for prediction in predictions:
                if self.resume_after is not None and prediction.stamp <= self.resume_after:
                    counts["skipped"] += 1
                    tally["skipped"] += 1
                    continue
                counts["predictions"] += 1
                tally["predictions"] += 1
                if not await self.wait_for_room():
                    counts["dropped"] += 1
                    tally["dropped"] += 1
                    if not self._pending:  # all in flight: the new one is the oldest not in flight
                        continue
                    self._pending.popleft()
                self._pending.append((prediction, at))
        finally:
            if self.observer is not None:
                for outcome, count in tally.items():
                    self.observer.counted(outcome, count)
        # a flush already in flight takes these too (it writes until the buffer is empty): the bar
        # processing does not wait on a retry while redis is away
        due = self._down_since is None or time.monotonic() >= self._next_attempt
        if due and not self._lock.locked():
            written = await self._flush()
        if written and received is not None:
            self.latencies.append(time.perf_counter() - received)
        if self.observer is not None:
            self.observer.buffered(self.buffered)

    def _count(self, outcome: str, count: int) -> None:
        self.counts[outcome] += count
        if self.observer is not None:
            self.observer.counted(outcome, count)

    async def wait_for_room(self) -> bool:
        """Wait until the buffer has room for one more prediction while redis answers (flushing to make
        it); ``False`` at once when the buffer is full and redis is away (the caller drops)."""
        while self.buffered >= self._capacity:
            if self._down_since is not None:
                return False
            await self._flush()
        return True

    async def _flush(self) -> int:
        """Write the buffer, batch by batch, oldest first; how many predictions were written."""
        written = 0
        async with self._lock:
            while self._pending:
                count = min(self._batch, len(self._pending))
                self._in_flight = [self._pending.popleft() for _ in range(count)]
                try:
                    outcome = await self._write_batch(self._in_flight)
                except BaseException as error:
                    self._pending.extendleft(reversed(self._in_flight))
                    self._in_flight = []
                    if not isinstance(error, Exception):
                        raise  # cancelled: the batch is back in the buffer, counted as buffered
                    self._mark_down(error)
                    return written
                self._in_flight = []
                for key, count in outcome.items():
                    self._count(key, count)
                written += outcome["written"]
                self._mark_up()
        return written

    async def _write_batch(self, batch: Sequence[_Entry]) -> collections.Counter[str]:
        """One pipeline for ``batch`` (in time order): its counts by outcome (written, repeated,
        refused)."""
        outcome: collections.Counter[str] = collections.Counter()
        if not self._top_known:
            await self._read_top()
        entries = [e for e in batch if self._top is None or e[0].stamp > self._top]
        fresh = [p for p, _ in entries]
        outcome["repeated"] = len(batch) - len(fresh)
        if not fresh:
            return outcome
        now = time.time()
        documents = [fields(p, now) for p in fresh]
        pipe = self._client.pipeline(transaction=False)
        for prediction, document in zip(fresh, documents, strict=True):
            pipe.xadd(
                stream_key(self.name),
                document,  # type: ignore[arg-type]
                id=stream_id(prediction.stamp),
                maxlen=self.stream_maxlen,
                approximate=True,
            )
            pipe.publish(channel(self.name), json.dumps(document))
        pipe.hset(latest_key(self.name), mapping=documents[-1])
        if self.gryphon_key:
            pipe.set(GRYPHON_KEY, json.dumps(documents[-1]))
        results = await pipe.execute(raise_on_error=False)
        acked, acked_wall = time.perf_counter(), time.time()
        stamps: list[int] = []
        received: list[float] = []
        for i, result in enumerate(results[: 2 * len(fresh) : 2]):
            if not isinstance(result, Exception):
                outcome["written"] += 1
                stamps.append(fresh[i].stamp)
                received.append(entries[i][1])
            elif is_repeated(result):
                outcome["repeated"] += 1
            else:
                outcome["refused"] += 1
                log.warning("redis refused the prediction for %s: %s", documents[i]["ts"], result)
        self._top = max(fresh[-1].stamp, self._top if self._top is not None else fresh[-1].stamp)
        for result in results[2 * len(fresh) :]:
            if isinstance(result, Exception):
                log.warning("redis refused the latest prediction's key: %s", result)
        if stamps and self.observer is not None:
            self.observer.written(stamps, received, acked, acked_wall)
        return outcome

    async def _read_top(self) -> None:
        """The stream's newest entry id (its last generated one: redis refuses any id up to it)."""
        from redis.exceptions import ResponseError

        try:
            info = await self._client.xinfo_stream(stream_key(self.name))
        except ResponseError as error:
            if "no such key" not in str(error).lower():
                raise
            self._top = None
        else:
            if _written_before_bar_ids(info):
                await self._keep_legacy_stream()
                self._top = None
            else:
                last = info.get("last-generated-id", info.get(b"last-generated-id"))
                self._top = stream_stamp(last) if last is not None else None
        self._top_known = True

    async def _keep_legacy_stream(self) -> None:
        """Rename a stream whose entry ids are write times (atlas_ray before one entry per bar): its
        ids would refuse every bar older than its newest write."""
        target = legacy_stream_key(self.name)
        if not await self._client.renamenx(stream_key(self.name), target):
            target = f"{target}:{int(time.time())}"
            await self._client.renamenx(stream_key(self.name), target)
        log.warning(
            "the stream %s was written by an older atlas_ray (its entry ids are write times, not bar "
            "times); renamed to %s, entries kept there; new entries are one per bar",
            stream_key(self.name),
            target,
        )

    def _mark_down(self, error: BaseException) -> None:
        now = time.monotonic()
        self.counts["write_failures"] += 1
        if self.observer is not None:
            self.observer.redis(False)
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

    def _mark_up(self) -> None:
        if self._down_since is not None:
            if self.observer is not None:
                self.observer.redis(True)
            log.warning(
                "redis at %s is back after %.1f s; writing the buffered predictions",
                masked_url(self.url),
                time.monotonic() - self._down_since,
            )
            self._down_since = None
            self._backoff = _BACKOFF_FIRST

    async def _retry_loop(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            if self._pending and time.monotonic() >= self._next_attempt:
                await self._flush()

    # ------------------------------------------------------------------- status
    @property
    def buffered(self) -> int:
        """Predictions not written yet: the batch in flight and those waiting behind it."""
        return len(self._pending) + len(self._in_flight)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def redis_up(self) -> bool:
        return self._down_since is None

    def snapshot(self) -> dict[str, Any]:
        return {
            "predictions": self.counts["predictions"],
            "written": self.counts["written"],
            "repeated": self.counts["repeated"],
            "refused": self.counts["refused"],
            "dropped": self.counts["dropped"],
            "buffered": self.buffered,
            "skipped": self.counts["skipped"],
            "write_failures": self.counts["write_failures"],
            "redis_up": self.redis_up,
        }
