"""The HTTP feed's door: a bearer token beyond 127.0.0.1 (a token given is enforced on every route), and
every bad body answered with 400 or a counted refusal, never a 500 (through Serve's real HTTP proxy)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from atlas_ray._cli import run_cli
from atlas_ray.errors import AtlasError
from atlas_ray.serve.__main__ import main
from atlas_ray.serve._http import (
    TOKEN_ENV,
    BadBodyError,
    authorized,
    http_token,
    is_loopback,
    read_push,
    token_digest,
)
from tests.conftest import ROOT
from tests.serve._replay import trial_of
from tests.serve.conftest import RedisServer, free_port

TOKEN = "s3cr3t-t0ken-for-the-test"
BAR = {
    "exchange": "coinbase",
    "ts": "2023-03-02T06:00:00Z",
    "open": 23400.0,
    "high": 23410.0,
    "low": 23390.0,
    "close": 23405.0,
    "volume": 2.5,
}


# ------------------------------------------------------------------------------------ the token
def test_loopback_hosts() -> None:
    for host in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "10.1.2.3", "::", "example.com", ""):
        assert not is_loopback(host), host


def test_a_token_is_required_beyond_loopback_and_never_shown(tmp_path: Path) -> None:
    assert http_token("127.0.0.1", environ={}) is None
    assert http_token("127.0.0.1", environ={TOKEN_ENV: TOKEN}) == TOKEN  # given: enforced on loopback too
    assert http_token("0.0.0.0", environ={TOKEN_ENV: f"  {TOKEN}\n"}) == TOKEN
    with pytest.raises(AtlasError, match=r"--http-host 0.0.0.0 .* needs a bearer token .*ATLAS_HTTP_TOKEN"):
        http_token("0.0.0.0", environ={})
    with pytest.raises(AtlasError, match="needs a bearer token"):
        http_token("10.0.0.5", environ={TOKEN_ENV: "   "})
    path = tmp_path / "token"
    path.write_text(f"{TOKEN}\nsecond line ignored\n")
    assert http_token("0.0.0.0", str(path), environ={TOKEN_ENV: "other"}) == TOKEN  # the file comes first
    path.write_text("\n")
    with pytest.raises(AtlasError, match="holds no token") as caught:
        http_token("0.0.0.0", str(path), environ={})
    with pytest.raises(AtlasError, match="cannot be read"):
        http_token("127.0.0.1", str(tmp_path / "missing"), environ={})
    assert TOKEN not in str(caught.value)


def test_only_the_right_bearer_token_passes() -> None:
    digest = token_digest(TOKEN)
    assert TOKEN not in digest
    assert authorized(None, None) and authorized("anything", None)
    assert authorized(f"Bearer {TOKEN}", digest) and authorized(f"bearer  {TOKEN} ", digest)
    for header in (None, "", "Bearer", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer wrong", TOKEN):
        assert not authorized(header, digest), header


# ------------------------------------------------------------------------------------- the body
def test_bad_bodies_are_refused_as_bad_requests() -> None:
    deep = b"[" * 5000 + b"]" * 5000
    for body, why in [
        (deep, "nested too deep"),
        (b"{not json", "not JSON"),
        (b"\xff\xfe\xfa", "not JSON"),
        (b'"a text"', "send an event"),
        (b"1e999", "send an event"),
        (b'{"events": {"a": 1}}', "send an event"),
        (json.dumps({"events": [BAR], "through": "9999-12-31"}).encode(), "bad|between"),
        (json.dumps({"events": [], "through": 2**80}).encode(), "between"),
        (json.dumps({"events": [], "through": [1]}).encode(), "ISO 8601"),
    ]:
        with pytest.raises(BadBodyError, match=why):
            read_push(body)
    assert read_push(json.dumps(BAR).encode()) == {"events": [BAR], "through": None}
    assert read_push(json.dumps([BAR, BAR]).encode())["events"] == [BAR, BAR]
    push = read_push(json.dumps({"events": [BAR], "through": "2023-03-02T06:00:00Z"}).encode())
    assert push["through"] == 1_677_736_800_000_000_000


@pytest.mark.slow  # serves a finished real search: not in scripts/test.sh --quick
def test_a_host_beyond_loopback_without_a_token_does_not_start(
    capsys: pytest.CaptureFixture[str],
    served_experiment: Path,
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    trial = trial_of(served_experiment, "logistic")
    base = [str(served_experiment), "--trial", trial, "--redis", redis_server.url, "--http-host", "0.0.0.0"]
    assert run_cli(main, base) == 2  # refused before anything binds
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "needs a bearer token" in err[0], err


# ------------------------------------------------------------------ through Serve's real HTTP proxy
@pytest.mark.slow
def test_the_http_feed_enforces_its_token_and_never_answers_500(
    served_experiment: Path, redis_server: RedisServer, tmp_path: Path
) -> None:
    trial = trial_of(served_experiment, "logistic")
    port = free_port()
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    redis_server.client().delete("atlas:pred:guarded", "atlas:pred:guarded:stream")
    command = [
        sys.executable, "-m", "atlas_ray.serve", str(served_experiment), "--trial", trial,
        "--name", "guarded", "--redis", redis_server.url, "--http-port", str(port),
        "--http-token-file", str(token_file), "--status-every", "0",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV} | {"PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    base = f"http://127.0.0.1:{port}/guarded"
    good = {"Authorization": f"Bearer {TOKEN}"}
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the HTTP feed did not come up"
            try:
                if requests.get(f"{base}/health", headers=good, timeout=5).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass
            time.sleep(0.5)

        # no token, a wrong one, another scheme: 401 on every route
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
            assert requests.get(f"{base}/health", headers=headers, timeout=10).status_code == 401
            assert requests.get(f"{base}/stats", headers=headers, timeout=10).status_code == 401
            assert requests.get(f"{base}/nothing", headers=headers, timeout=10).status_code == 401
            answer = requests.post(f"{base}/bars", data=json.dumps(BAR), headers=headers, timeout=10)
            assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"

        hostile: list[tuple[bytes, int, int]] = [  # body, status, events refused
            (b"[" * 5000 + b"]" * 5000, 400, 0),
            (b"{" * 100_000, 400, 0),
            (b"\x00\xff garbage", 400, 0),
            (b"1e999", 400, 0),
            (json.dumps({"events": [BAR], "through": "9999-12-31"}).encode(), 400, 0),
            (json.dumps({**BAR, "ts": "9999-12-31"}).encode(), 200, 1),
            (json.dumps({**BAR, "ts": "2200-01-01T00:00:00Z"}).encode(), 200, 1),
            (json.dumps({**BAR, "ts": None, "ts_ns": 2**80}).encode(), 200, 1),
            (json.dumps([1, "x", None, [], {}, {"kind": ["bars"]}]).encode(), 200, 6),
            (b'[{"exchange": "coinbase", "ts": "2023-03-02T06:00:00Z", "open": 1e999, "high": NaN}]', 200, 1),
            (json.dumps([{**BAR, "close": 10**400}]).encode(), 200, 1),
            (json.dumps([{**BAR, "exchange": "x" * 100_000}]).encode(), 200, 1),
            (json.dumps([{**BAR, "exchange": "\ud800"}, {**BAR, "pair": "btc\udcffusd"}]).encode(), 200, 2),
            # taken (each is a good bar), but 53 years apart: decided over at most MAX_PENDING_BARS bars
            (json.dumps([{**BAR, "ts": "1970-01-01T00:00:00Z"}, {**BAR, "ts": "2023-03-02T05:00:00Z"}])
             .encode(), 200, 0),
        ]  # fmt: skip
        refused = 0
        for body, status, count in hostile:
            answer = requests.post(f"{base}/bars", data=body, headers=good, timeout=30)
            assert answer.status_code == status, (body[:80], answer.status_code, answer.text[:300])
            if status == 200:
                assert len(answer.json()["rejected"]) == count, answer.text[:500]
                refused += count
            else:
                assert "error" in answer.json()
        stats = requests.get(f"{base}/stats", headers=good, timeout=10).json()
        assert stats["rejected"] == refused  # every refusal counted
        # a good bar still goes in after all that
        answer = requests.post(f"{base}/bars", data=json.dumps(BAR), headers=good, timeout=30)
        assert answer.status_code == 200 and answer.json()["accepted"] == 1, answer.text
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=90)
    assert process.returncode == 0, err[-3000:]
    assert TOKEN not in out + err
