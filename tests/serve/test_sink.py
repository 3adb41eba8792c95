"""``RedisSink`` on a real redis-server: a flush held in flight (``CLIENT PAUSE WRITE``) while predictions
arrive into a full buffer, backpressure while redis answers, a catch-up far larger than the buffer, and
one stream entry per bar whatever is written again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import redis

from atlas_ray.serve import Prediction, RedisSink
from atlas_ray.serve._redis_contract import fields, stream_id, stream_stamp
from tests.serve.conftest import RedisServer

T0 = 1_678_233_600_000_000_000  # 2023-03-08T00:00:00Z
MINUTE = 60_000_000_000


def predictions(first: int, count: int, *, step: int = MINUTE) -> list[Prediction]:
    return [
        Prediction(T0 + (first + i) * step, "june", "t1", 1, label="up", probabilities=(0.25, 0.75))
        for i in range(count)
    ]


def bars(client: redis.Redis, name: str) -> list[int]:
    """The bars in the stream, as minute numbers after T0, oldest first (checked against their ids)."""
    from atlas_ray.serve._redis_contract import parse_iso

    out = []
    for entry_id, entry in client.xrange(f"atlas:pred:{name}:stream"):
        stamp = parse_iso(entry["ts"])
        assert stream_stamp(entry_id) == stamp
        out.append((stamp - T0) // MINUTE)
    return out


def accounted(sink: RedisSink) -> None:
    s = sink.snapshot()
    assert s["predictions"] == s["written"] + s["repeated"] + s["refused"] + s["dropped"] + s["buffered"], s


@pytest.fixture
def server(redis_server: RedisServer) -> Iterator[RedisServer]:
    """The session's redis, flushed; running again and unpaused afterwards whatever the test did."""
    redis_server.client().flushdb()
    yield redis_server
    if redis_server.process is None:
        redis_server.start()
    redis_server.client().execute_command("CLIENT", "UNPAUSE")


def pause_writes(server: RedisServer) -> None:
    # writes block until CLIENT UNPAUSE (well inside the sink's 2 s socket timeout in these tests)
    server.client().execute_command("CLIENT", "PAUSE", 10_000, "WRITE")


def unpause(server: RedisServer) -> None:
    server.client().execute_command("CLIENT", "UNPAUSE")


async def until(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail("timed out")
        await asyncio.sleep(0.005)


def test_a_flush_in_flight_keeps_its_batch_and_the_oldest_waiting_is_dropped(server: RedisServer) -> None:
    """The reproduction: a buffer of 4 filled while redis was away, redis back, the retry's batch held in
    flight while two more predictions arrive into the full buffer."""

    async def scenario() -> RedisSink:
        sink = RedisSink(server.url, "inflight", buffer=4, resume=False)
        await sink.start()
        server.stop()
        await sink.write(predictions(0, 4))  # redis away: all four buffered
        assert (sink.buffered, sink.redis_up, sink.snapshot()["written"]) == (4, False, 0)
        server.start()
        pause_writes(server)
        await until(lambda: sink.in_flight > 0)  # the retry's batch (0, 1) is being sent, held there
        assert sink.in_flight == 2 and not sink.redis_up
        # redis is still away as far as the sink knows: the bar processing does not wait on the retry
        await asyncio.wait_for(sink.write(predictions(4, 2)), 1.0)
        s = sink.snapshot()
        assert (s["predictions"], s["dropped"], s["buffered"], sink.in_flight) == (6, 2, 4, 2)
        accounted(sink)
        unpause(server)
        await until(lambda: sink.buffered == 0)
        await sink.close()
        return sink

    sink = asyncio.run(scenario())
    s = sink.snapshot()
    # the batch in flight was written, the oldest waiting (2, 3) were dropped, 4 and 5 were written
    assert bars(server.client(), "inflight") == [0, 1, 4, 5]
    assert (s["predictions"], s["written"], s["dropped"], s["buffered"], s["repeated"]) == (6, 4, 2, 0, 0)
    assert s["redis_up"]
    accounted(sink)


def test_with_every_prediction_in_flight_the_new_one_is_the_oldest_not_in_flight(server: RedisServer) -> None:
    async def scenario() -> RedisSink:
        sink = RedisSink(server.url, "single", buffer=1, resume=False)
        await sink.start()
        server.stop()
        await sink.write(predictions(0, 1))
        server.start()
        pause_writes(server)
        await until(lambda: sink.in_flight == 1)
        await asyncio.wait_for(sink.write(predictions(1, 1)), 1.0)
        assert sink.snapshot()["dropped"] == 1 and sink.buffered == 1
        unpause(server)
        await until(lambda: sink.buffered == 0)
        await sink.write(predictions(2, 1))
        await sink.close()
        return sink

    sink = asyncio.run(scenario())
    assert bars(server.client(), "single") == [0, 2]
    s = sink.snapshot()
    assert (s["predictions"], s["written"], s["dropped"]) == (3, 2, 1)
    accounted(sink)


def test_a_full_buffer_waits_while_redis_answers(server: RedisServer) -> None:
    """Backpressure: with redis answering (slowly: writes paused), ``write`` waits for room and drops
    nothing."""

    async def scenario() -> RedisSink:
        sink = RedisSink(server.url, "waits", buffer=4, resume=False)
        await sink.start()
        pause_writes(server)
        writing = asyncio.get_running_loop().create_task(sink.write(predictions(0, 10)))
        await until(lambda: sink.in_flight > 0)
        await asyncio.sleep(0.3)
        assert not writing.done()  # waiting for room, not dropping
        s = sink.snapshot()
        assert (s["dropped"], s["buffered"], s["predictions"]) == (0, 4, 5)  # the fifth waits for room
        unpause(server)
        await asyncio.wait_for(writing, 5.0)
        await sink.close()
        return sink

    sink = asyncio.run(scenario())
    assert bars(server.client(), "waits") == list(range(10))
    s = sink.snapshot()
    assert (s["predictions"], s["written"], s["dropped"], s["buffered"]) == (10, 10, 0, 0)


def test_a_catch_up_far_larger_than_the_buffer_writes_every_prediction_once(server: RedisServer) -> None:
    """20,160 predictions (two weeks of minute bars) handed over at once to a buffer of 64."""
    count = 14 * 24 * 60

    async def scenario() -> RedisSink:
        sink = RedisSink(server.url, "catchup", buffer=64, resume=False)
        await sink.start()
        await sink.write(predictions(0, count))
        assert sink.buffered <= 64
        await sink.close()
        return sink

    sink = asyncio.run(scenario())
    s = sink.snapshot()
    assert (s["predictions"], s["written"], s["dropped"], s["buffered"]) == (count, count, 0, 0)
    assert bars(server.client(), "catchup") == list(range(count))


def test_one_stream_entry_per_bar_whatever_is_written_again(server: RedisServer) -> None:
    client = server.client()

    async def write(name: str, items: list[Prediction], before: object = None) -> RedisSink:
        sink = RedisSink(server.url, name, buffer=100, resume=False)
        await sink.start()
        if before is not None:
            before()  # type: ignore[operator]
        await sink.write(items)
        await sink.close()
        return sink

    first = asyncio.run(write("again", predictions(0, 10)))
    assert first.snapshot()["written"] == 10
    # another writer puts bar 15 in after this sink read the stream's top (9): redis itself refuses
    # bars 10-15 inside the pipeline, and the rest of the batch is written
    other = predictions(15, 1)[0]
    second = asyncio.run(
        write(
            "again",
            predictions(10, 10),
            lambda: client.xadd("atlas:pred:again:stream", fields(other), id=stream_id(other.stamp)),
        )
    )
    s = second.snapshot()
    assert (s["written"], s["repeated"], s["refused"], s["dropped"]) == (4, 6, 0, 0)
    assert bars(client, "again") == [*range(10), 15, 16, 17, 18, 19]
    # a replay of everything: nothing is sent, the latest prediction does not go back in time
    pubsub = client.pubsub()
    pubsub.subscribe("atlas:pred:again")
    pubsub.get_message(timeout=2)
    third = asyncio.run(write("again", predictions(0, 20)))
    s = third.snapshot()
    assert (s["predictions"], s["written"], s["repeated"]) == (20, 0, 20)
    assert client.xlen("atlas:pred:again:stream") == 15
    assert client.hget("atlas:pred:again", "ts") == "2023-03-08T00:19:00Z"
    assert pubsub.get_message(timeout=0.5) is None  # nothing published again
    # bars less than a millisecond apart are distinct entries, in time order
    close = [Prediction(T0 + 10**15 + k * 1_000, "june", "t1", 1, value=0.0) for k in range(3)]
    fourth = asyncio.run(write("again", close))
    assert fourth.snapshot()["written"] == 3
    newest = [stream_stamp(i) for i, _ in client.xrevrange("atlas:pred:again:stream", count=3)]
    assert newest == [p.stamp for p in reversed(close)]


def test_the_stream_is_still_trimmed(server: RedisServer) -> None:
    async def scenario() -> RedisSink:
        sink = RedisSink(server.url, "trimmed", buffer=1_000, stream_maxlen=100, resume=False)
        await sink.start()
        await sink.write(predictions(0, 2_000))
        await sink.close()
        return sink

    sink = asyncio.run(scenario())
    client = server.client()
    assert sink.snapshot()["written"] == 2_000
    assert 100 <= client.xlen("atlas:pred:trimmed:stream") < 400  # MAXLEN ~ 100: whole nodes trimmed
    assert bars(client, "trimmed")[-1] == 1_999


def test_a_stream_written_before_bar_ids_is_kept_aside(server: RedisServer) -> None:
    """An older atlas_ray's stream (entry ids: the write times, after every bar) would refuse each bar:
    it is renamed once, its entries kept, and the bars written one per bar."""
    client = server.client()
    for prediction in predictions(0, 3):
        client.xadd("atlas:pred:legacy:stream", fields(prediction))  # ids: now, as the old writer did

    async def scenario() -> RedisSink:
        sink = RedisSink(server.url, "legacy", resume=False)
        await sink.start()
        await sink.write(predictions(0, 5))
        await sink.close()
        return sink

    sink = asyncio.run(scenario())
    assert sink.snapshot()["written"] == 5
    assert bars(client, "legacy") == list(range(5))
    assert client.xlen("atlas:pred:legacy:stream:legacy") == 3
