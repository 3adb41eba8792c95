"""``python -m atlas_ray.serve``: every start-up mistake is one line and exit status 2; a replay runs
end to end in its own process, on its own local Ray, into a real redis."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from atlas_ray._cli import run_cli
from atlas_ray.featurestore import MarketStore
from atlas_ray.serve.__main__ import main
from tests.conftest import ROOT
from tests.serve._replay import check_entries, trial_of
from tests.serve.conftest import RedisServer, free_port

pytestmark = pytest.mark.slow  # trains a trial and starts Ray: not in scripts/test.sh --quick


def _fails(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert run_cli(main, list(argv)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_a_missing_experiment(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    line = _fails(capsys, str(tmp_path / "nothing"), "--trial", "x")
    assert "nothing" in line and "experiment.json" in line


def test_no_such_trial(capsys: pytest.CaptureFixture[str], served_experiment: Path) -> None:
    line = _fails(capsys, str(served_experiment), "--trial", "no_such_trial")
    assert "no_such_trial" in line and "holds 4 trial(s)" in line


def test_an_incomplete_model_directory(
    capsys: pytest.CaptureFixture[str], served_experiment: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(served_experiment, copy)
    trial = trial_of(copy, "dnn")
    (copy / "trials" / trial / "model.keras").unlink()
    line = _fails(capsys, str(copy), "--trial", trial)
    assert "incomplete" in line and "model.keras" in line
    (copy / "trials" / trial / "model.keras").write_bytes(b"not a zip")
    assert "damaged" in _fails(capsys, str(copy), "--trial", trial)
    (copy / "trials" / trial / "result.json").write_text("{ broken")
    assert "result.json" in _fails(capsys, str(copy), "--trial", trial)


def test_bad_options(
    capsys: pytest.CaptureFixture[str], served_experiment: Path, redis_server: RedisServer
) -> None:
    trial = trial_of(served_experiment, "logistic")
    base = [str(served_experiment), "--trial", trial, "--redis", redis_server.url]
    assert "--feed" in _fails(capsys, *base, "--feed", "kafka:topic")
    assert "empty" in _fails(capsys, *base, "--feed", "replay:2023-03-02/2023-03-01")
    assert "--name" in _fails(capsys, *base, "--name", "has space")
    assert "`--grace >= 0`" in _fails(capsys, *base, "--grace", "-1")
    assert "cannot be read" in _fails(capsys, *base, "--http-token-file", "/nonexistent/token")
    assert "val_loss or accuracy" in _fails(capsys, str(served_experiment), "--best", "--metric", "test_loss")


def test_redis_that_does_not_answer_and_a_password_never_shown(
    capsys: pytest.CaptureFixture[str], served_experiment: Path
) -> None:
    trial = trial_of(served_experiment, "logistic")
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    line = _fails(capsys, str(served_experiment), "--trial", trial, "--redis", url)
    assert "does not answer" in line and "hunter2" not in line and ":***@" in line


def test_missing_market_data_for_a_replay(
    capsys: pytest.CaptureFixture[str], served_experiment: Path, redis_server: RedisServer, tmp_path: Path
) -> None:
    trial = trial_of(served_experiment, "logistic")
    line = _fails(
        capsys,
        str(served_experiment),
        "--trial",
        trial,
        "--redis",
        redis_server.url,
        "--store",
        str(tmp_path / "empty_store"),
        "--feed",
        "replay:2023-03-02/2023-03-03",
    )
    assert "coinbase btc_usd" in line


@pytest.mark.slow
@pytest.mark.parametrize("model", ["dnn", "lightgbm"])
def test_a_replay_from_the_command_line(
    served_experiment: Path, minute_store: MarketStore, redis_server: RedisServer, model: str
) -> None:
    trial = trial_of(served_experiment, model)
    client = redis_server.client()
    client.delete("atlas:pred:cli", "atlas:pred:cli:stream")
    env = {**os.environ, "REDIS_URL": redis_server.url}
    command = [
        sys.executable,
        "-m",
        "atlas_ray.serve",
        str(served_experiment),
        "--trial",
        trial,
        "--name",
        "cli",
        "--feed",
        "replay:2023-03-02T06:00/2023-03-02T07:00",
        "--speed",
        "0",
        "--store",
        str(minute_store.root),
        "--http-port",
        str(free_port()),
        "--gryphon-key",
    ]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "predictions written 60" in done.stdout and "dropped 0" in done.stdout, done.stdout
    assert "note: a replay at --speed 0 sends the bars in pushes" in done.stdout  # what bar->redis means
    entries = client.xrange("atlas:pred:cli:stream")
    assert len(entries) == 60
    from atlas_ray.search import read_result

    offline = read_result(str(served_experiment / "trials" / trial)).predictions
    assert check_entries([fields for _, fields in entries], offline, ("down", "flat", "up")) == 60
    for _, entry in entries:
        assert entry["trial"] == trial and entry["version"] == "1" and entry["experiment"] == "live"
    latest = client.hgetall("atlas:pred:cli")
    assert latest["ts"] == "2023-03-02T06:59:00Z" and latest == entries[-1][1] | {
        "written": latest["written"]
    }
    assert json.loads(client.get("ML_PREDICTION"))["ts"] == "2023-03-02T06:59:00Z"
    assert "hunter" not in done.stdout + done.stderr
