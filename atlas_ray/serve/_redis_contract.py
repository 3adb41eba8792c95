"""The redis contract of live predictions: the one place that knows the keys and the fields.

For a live model named ``NAME`` (letters, digits, ``_ . -``):

* hash ``atlas:pred:NAME``: the latest prediction;
* stream ``atlas:pred:NAME:stream``: every prediction, oldest first (``XADD ... MAXLEN ~ N``, default
  100,000 entries), for history and consumer groups; **one entry per bar**: the entry id is the bar's
  time, ``<bar_ms>-<ns within the ms>`` (``stream_id``: 2023-03-01T00:01:00Z is ``1677628860000-0``),
  so redis itself refuses a bar written again (a replay, a restart, a write retried after a timeout)
  or an older one ("equal or smaller than the target stream top item"): a writer counts such a bar as
  ``repeated``, never as an error, and the rest of its batch is written. ``XRANGE`` by time is
  ``XRANGE key <start_ms> <end_ms>``. A stream written by atlas_ray before this rule (its entry ids
  were the write times, which would refuse every older bar) is renamed once, on the writer's start,
  to ``atlas:pred:NAME:stream:legacy`` (``legacy_stream_key``), its entries kept there;
* channel ``atlas:pred:NAME``: each prediction ``PUBLISH``-ed as one JSON object with the same fields;
* optionally (``--gryphon-key``) the string key ``ML_PREDICTION``: the latest prediction as that JSON
  object, for strategies written for Gryphon Atlas' model runner.

The writer (``RedisSink``) sends one pipeline per batch, oldest bar first: ``XADD`` with the bar's id
and ``PUBLISH`` per prediction, then ``HSET`` of the newest (and ``SET ML_PREDICTION``). Bars at or
before the stream's newest entry are not sent at all, so the hash never goes back in time and the
channel does not repeat them; only a write retried after a timeout that redis had in fact applied
can publish a bar twice (the stream still holds it once).

Fields (all strings, identical in the hash, in each stream entry and in the published JSON):
``ts`` (the bar's open time, ISO 8601 UTC: ``2023-03-01T00:00:00Z``), ``written`` (when it was
written, ISO 8601 UTC with microseconds), ``experiment``, ``trial``, ``version`` (a counter per name,
raised by each swap), and either ``class`` and ``probabilities`` (a JSON list in the ResultsObject's
class order, ``classes``) or ``value`` for a regression model.

A reader::

    import json, redis
    r = redis.Redis.from_url("redis://127.0.0.1:6379/0", decode_responses=True)
    latest = r.hgetall("atlas:pred:june")                    # {"ts": ..., "class": "up", ...}
    probabilities = json.loads(latest["probabilities"])
    history = r.xrange("atlas:pred:june:stream", count=100)  # [(id, fields), ...]
    pubsub = r.pubsub(); pubsub.subscribe("atlas:pred:june")  # one JSON message per prediction

The URL comes from ``--redis`` or ``$REDIS_URL`` (default ``redis://127.0.0.1:6379/0``); a password and
TLS (``rediss://``) go in the URL and ``masked_url`` keeps the password out of every message.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pandas as pd

from atlas_ray.errors import AtlasError
from atlas_ray.serve._engine import Prediction

__all__ = [
    "DEFAULT_REDIS_URL",
    "DEFAULT_STREAM_MAXLEN",
    "GRYPHON_KEY",
    "channel",
    "is_repeated",
    "check_name",
    "fields",
    "latest_key",
    "legacy_stream_key",
    "masked_url",
    "redis_url",
    "stream_id",
    "stream_key",
    "stream_stamp",
]

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_STREAM_MAXLEN = 100_000
GRYPHON_KEY = "ML_PREDICTION"
PREFIX = "atlas:pred"
_NAME_RULE = re.compile(r"[A-Za-z0-9_.-]{1,100}")


def check_name(name: str) -> str:
    """A live model's name, refused unless it is 1-100 letters, digits, ``_``, ``.`` or ``-``."""
    if not isinstance(name, str) or not _NAME_RULE.fullmatch(name):
        raise AtlasError(
            f"The value of `--name` is {name!r}, but must be 1-100 letters, digits, '_', '.' or '-'."
        )
    return name


def latest_key(name: str) -> str:
    return f"{PREFIX}:{name}"


def stream_key(name: str) -> str:
    return f"{PREFIX}:{name}:stream"


def legacy_stream_key(name: str) -> str:
    """Where a stream of ``name`` written before entry ids were bar times is kept (see the docstring)."""
    return f"{PREFIX}:{name}:stream:legacy"


def channel(name: str) -> str:
    return f"{PREFIX}:{name}"


def stream_id(stamp_ns: int) -> str:
    """The stream entry id of the bar opened at ``stamp_ns``: ``<ms>-<ns within the ms>``. Distinct bar
    times give distinct ids in the same order (sub-millisecond differences land in the sequence part)."""
    if stamp_ns <= 0:
        raise ValueError(f"The bar time is {stamp_ns} ns, but must be after 1970-01-01 (`stamp_ns > 0`).")
    ms, rest = divmod(int(stamp_ns), 1_000_000)
    return f"{ms}-{rest}"


def stream_stamp(entry_id: str | bytes) -> int:
    """The bar time (ns) of a stream entry id written by ``stream_id`` (the inverse)."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    if not ms.isdigit() or not (seq or "0").isdigit():
        raise ValueError(f"The stream entry id is {text!r}, but must be `<ms>-<seq>`.")
    return int(ms) * 1_000_000 + int(seq or 0)


def is_repeated(error: BaseException) -> bool:
    """Whether redis refused an ``XADD`` because the stream already holds that bar or a newer one."""
    return "equal or smaller than the target stream top item" in str(error)


def iso(stamp_ns: int) -> str:
    """``2023-03-01T00:00:00Z`` (microseconds shown only when present)."""
    text = pd.Timestamp(stamp_ns, tz="UTC").isoformat()
    return text.replace("+00:00", "Z")


def parse_iso(text: str) -> int:
    """The ns timestamp of a ``ts`` field."""
    return int(pd.Timestamp(text).as_unit("ns").value)


def fields(prediction: Prediction, written: float | None = None) -> dict[str, str]:
    """The fields of one prediction (see the module docstring)."""
    now = time.time() if written is None else written
    out = {
        "ts": iso(prediction.stamp),
        "written": datetime.fromtimestamp(now, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "experiment": prediction.experiment,
        "trial": prediction.trial,
        "version": str(prediction.version),
    }
    if prediction.value is not None:
        out["value"] = repr(float(prediction.value))
    else:
        out["class"] = str(prediction.label)
        out["probabilities"] = json.dumps([float(p) for p in prediction.probabilities or ()])
    return out


def decode(entry: Mapping[Any, Any]) -> dict[str, str]:
    """A hash, stream entry or published JSON as ``str -> str``."""
    return {_text(k): _text(v) for k, v in entry.items()}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def redis_url(url: str | None) -> str:
    """``url``, else ``$REDIS_URL``, else the default; refused unless redis://, rediss:// or unix://."""
    chosen = url or os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    scheme = urlsplit(chosen).scheme
    if scheme not in ("redis", "rediss", "unix"):
        raise AtlasError(
            f"The redis URL {masked_url(chosen)} has the scheme {scheme!r}, but must be redis://, "
            "rediss:// (TLS) or unix://."
        )
    return chosen


def masked_url(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    netloc = f"{user}:***@{host}{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
