"""Interrupt the driver with Ctrl-C, run the same command and kill it with SIGKILL mid-run; running the
same command again finishes the experiment with no finished trial lost or run twice; a fourth run says
it is finished and trains nothing; a changed spec is refused. The search runs in a subprocess (the CLI)
joined to the test's real Ray cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from atlas_ray._cli import run_cli
from atlas_ray.search import TrialStatus, load_experiment, load_results
from atlas_ray.search.__main__ import main

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TRIALS = 3
MAX_T = 2


def cli(spec: Path, storage: Path, store: str, address: str, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "atlas_ray.search",
            str(spec),
            "--storage",
            str(storage),
            "--store",
            store,
            "--address",
            address,
            "--max-concurrent",
            "1",
            *extra,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def finished_trials(experiment: Path) -> dict[str, bytes]:
    """result.json bytes of every trial whose result is settled COMPLETED."""
    found = {}
    for path in experiment.glob("trials/*/result.json"):
        data = path.read_bytes()
        if json.loads(data)["status"] == TrialStatus.COMPLETED.value:
            found[path.parent.name] = data
    return found


def interrupt_with_ctrl_c(first: subprocess.Popen[bytes], experiment: Path) -> None:
    """Ctrl-C (SIGINT to the process group) once Tune has started a trial: Tune returns as if finished,
    but the search says it was interrupted (exit 130, no traceback) and leaves the experiment unfinished."""
    deadline = time.monotonic() + 400
    try:
        while not list(experiment.glob("*/params.json")):  # Tune has started a trial
            assert first.poll() is None, first.stdout.read().decode()[-3000:] if first.stdout else ""
            assert time.monotonic() < deadline, "no trial started in time"
            time.sleep(0.2)
        os.killpg(first.pid, signal.SIGINT)
        output, _ = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
    text = output.decode()
    assert first.returncode == 130, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    assert f"the experiment {experiment} is kept unfinished" in text
    assert load_experiment(experiment).status == "running"


def test_ctrl_c_then_sigkill_then_the_same_command_finishes_every_trial_once(
    ray_cluster: None, minute_store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    """Run 1 is interrupted with Ctrl-C, run 2 (the same command) is killed with SIGKILL once a trial has
    finished, run 3 (the same command) finishes every trial with none run twice, run 4 trains nothing."""
    import ray

    address = ray.get_runtime_context().gcs_address
    spec = tmp_path / "resumable.py"
    spec.write_text(
        textwrap.dedent(
            f"""
            from tests.search import search_specs
            MODELS = [search_specs.small_dnn(num_samples={TRIALS})]
            SPEC = search_specs.spec("resumable", MODELS, max_t={MAX_T}, grace_period={MAX_T})
            """
        )
    )
    storage = tmp_path / "experiments"
    experiment = storage / "resumable"
    interrupt_with_ctrl_c(cli(spec, storage, minute_store.root, address), experiment)
    already = set(finished_trials(experiment))

    first = cli(spec, storage, minute_store.root, address)
    deadline = time.monotonic() + 400
    try:
        while not set(finished_trials(experiment)) - already:
            assert first.poll() is None, first.stdout.read().decode()[-3000:] if first.stdout else ""
            assert time.monotonic() < deadline, "no trial finished in time"
            time.sleep(0.5)
        before = finished_trials(experiment)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    assert load_experiment(experiment).status == "running"
    mtimes = {tid: (experiment / "trials" / tid / "result.json").stat().st_mtime_ns for tid in before}

    second = cli(spec, storage, minute_store.root, address)  # the same command, no --resume
    output, _ = second.communicate(timeout=400)
    assert second.returncode == 0, output.decode()[-3000:]
    assert f"continuing the unfinished experiment {experiment}" in output.decode()
    assert f"{TRIALS}/{TRIALS} done" in output.decode()

    record = load_experiment(experiment)
    assert record.status == "finished" and len(record.trial_ids) == TRIALS
    on_disk = sorted(p.name for p in (experiment / "trials").iterdir() if p.is_dir())
    assert on_disk == sorted(record.trial_ids)
    results = load_results(experiment)
    assert len(results) == TRIALS and all(r.status is TrialStatus.COMPLETED for r in results)
    assert all(r.epochs == MAX_T for r in results)
    for trial_id, data in before.items():
        path = experiment / "trials" / trial_id / "result.json"
        assert path.read_bytes() == data, f"{trial_id} was trained again"
        assert path.stat().st_mtime_ns == mtimes[trial_id]

    # a fourth run: finished, so it says so, prints the best trials and trains nothing
    args = [str(spec), "--storage", str(storage), "--store", minute_store.root, "--address", address]
    assert run_cli(main, args) == 0
    printed = capsys.readouterr().out
    assert f"the experiment {experiment} is already finished ({TRIALS} trials" in printed
    assert "best trials by validation loss" in printed
    assert all(
        path.stat().st_mtime_ns == mtimes.get(path.parent.name, path.stat().st_mtime_ns)
        for path in experiment.glob("trials/*/result.json")
    )
    assert load_experiment(experiment).finished == record.finished

    # the spec's text changed since: refused in one line, nothing run
    spec.write_text(spec.read_text() + "# changed\n")
    assert run_cli(main, args) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: spec `resumable`:") and "changed since the experiment" in error
    assert error.count("\n") == 1
