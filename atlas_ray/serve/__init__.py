"""Live models: a trial of an experiment on Ray Serve, its predictions written to redis.

``python -m atlas_ray.serve EXPERIMENT --best --feed replay:2023-03-08/2023-03-09`` (see ``__main__``).
The parts: ``LiveEngine`` (events in, predictions out, with the feature library's own code),
``RedisSink`` and the redis contract (``_redis_contract``: keys, fields, a reader example), the
``LiveModel`` deployment and the feeds.
"""

from atlas_ray.serve._engine import LiveEngine, Prediction, PushOutcome, required_series
from atlas_ray.serve._events import REASONS, EventError, MarketEvent, parse_event
from atlas_ray.serve._live_market import LiveMarket
from atlas_ray.serve._redis_contract import channel, fields, latest_key, masked_url, stream_id, stream_key
from atlas_ray.serve._sink import RedisSink
from atlas_ray.serve._trial import ServedTrial, find_trial

__all__ = [
    "REASONS",
    "LiveEngine",
    "LiveMarket",
    "MarketEvent",
    "Prediction",
    "PushOutcome",
    "RedisSink",
    "EventError",
    "ServedTrial",
    "channel",
    "fields",
    "find_trial",
    "latest_key",
    "masked_url",
    "parse_event",
    "required_series",
    "stream_id",
    "stream_key",
]
