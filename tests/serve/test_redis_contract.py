"""The redis contract: names, fields, URLs and passwords kept out of messages."""

from __future__ import annotations

import json

import pytest

from atlas_ray.errors import AtlasError
from atlas_ray.serve import Prediction, fields, latest_key, masked_url, stream_key
from atlas_ray.serve._redis_contract import (
    channel,
    check_name,
    iso,
    parse_iso,
    redis_url,
    stream_id,
    stream_stamp,
)

STAMP = 1_677_628_860_000_000_000  # 2023-03-01T00:01:00Z


def test_keys_follow_the_schema() -> None:
    assert latest_key("june") == "atlas:pred:june"
    assert stream_key("june") == "atlas:pred:june:stream"
    assert channel("june") == "atlas:pred:june"
    for bad in ("", "a b", "x" * 101, "a:b", "é"):
        with pytest.raises(AtlasError, match="--name"):
            check_name(bad)


def test_classifier_and_regressor_fields() -> None:
    cls = Prediction(STAMP, "june", "t1", 3, label="up", probabilities=(0.2, 0.3, 0.5))
    document = fields(cls, written=1_700_000_000.0)
    assert document["ts"] == "2023-03-01T00:01:00Z" and parse_iso(document["ts"]) == STAMP
    assert document["written"] == "2023-11-14T22:13:20.000000Z"
    assert (document["experiment"], document["trial"], document["version"]) == ("june", "t1", "3")
    assert document["class"] == "up" and json.loads(document["probabilities"]) == [0.2, 0.3, 0.5]
    assert "value" not in document
    reg = fields(Prediction(STAMP, "june", "t2", 1, value=-0.00125))
    assert float(reg["value"]) == -0.00125 and "class" not in reg and "probabilities" not in reg
    assert iso(STAMP) == "2023-03-01T00:01:00Z"


def test_urls_come_from_the_option_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert redis_url(None) == "redis://127.0.0.1:6379/0"
    monkeypatch.setenv("REDIS_URL", "rediss://:s3cret@cache.example:6380/2")
    assert redis_url(None) == "rediss://:s3cret@cache.example:6380/2"
    assert redis_url("redis://127.0.0.1:7000/1") == "redis://127.0.0.1:7000/1"
    with pytest.raises(AtlasError) as caught:
        redis_url("http://user:hunter2@host/0")
    assert "hunter2" not in str(caught.value) and "***" in str(caught.value)


def test_passwords_are_masked() -> None:
    assert masked_url("redis://:s3cret@127.0.0.1:6379/0") == "redis://:***@127.0.0.1:6379/0"
    assert masked_url("rediss://bob:s3cret@h:1/0") == "rediss://bob:***@h:1/0"
    assert masked_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_stream_ids_are_the_bar_times() -> None:
    assert stream_id(STAMP) == "1677628860000-0" and stream_stamp("1677628860000-0") == STAMP
    # sub-millisecond differences land in the sequence part: distinct, in time order, round trip
    stamps = [STAMP, STAMP + 1, STAMP + 999_999, STAMP + 1_000_000]
    ids = [stream_id(s) for s in stamps]
    assert ids == ["1677628860000-0", "1677628860000-1", "1677628860000-999999", "1677628860001-0"]
    assert [stream_stamp(i.encode()) for i in ids] == stamps
    with pytest.raises(ValueError, match="stamp_ns > 0"):
        stream_id(0)
    with pytest.raises(ValueError, match="<ms>-<seq>"):
        stream_stamp("x-1")
