"""``python -m atlas_ray.report`` in a subprocess."""

from __future__ import annotations

import html
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from atlas_ray.report._html import MEANINGS

pytestmark = pytest.mark.slow  # runs the CLI in subprocesses: not in scripts/test.sh --quick

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "atlas_ray.report", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)


def test_the_command_writes_the_report_and_prints_where(report_experiments, tmp_path):
    out = tmp_path / "out"
    done = run(str(report_experiments["june_a"]), "--out", str(out), "--top", "1", "--filter", "unit=binary",
               "--metric", "val_accuracy")
    assert done.returncode == 0, done.stderr
    assert f"report: {out / 'index.html'}" in done.stdout
    assert (out / "index.html").stat().st_size > 10_000
    assert len(list(out.glob("*.png"))) >= 5
    assert "missing: trial logit_00010 failed without predictions" in done.stdout


def test_the_default_output_is_reports_slash_the_experiment_name(report_experiments, tmp_path):
    done = run(str(report_experiments["june_b"]), "--top", "1", "--filter", "unit=regression", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    page = html.unescape((tmp_path / "reports" / "june_b" / "index.html").read_text())
    # the regressors' information coefficient, with what it means and the data it was computed on
    assert MEANINGS["ic"] in page and "Information coefficient of the regressors" in page
    assert "the <b>validation</b> rows of each trial's predictions" in page
    assert (tmp_path / "reports" / "june_b" / "june_b_ic.png").exists()


def test_a_half_finished_experiment_reports_what_is_missing(report_experiments, tmp_path):
    crashed = tmp_path / "crashed"
    shutil.copytree(report_experiments["june_b"], crashed)
    (crashed / "experiment.json").unlink()
    (crashed / "trials" / "ridge_00014" / "result.json").unlink()
    done = run(str(crashed), "--out", str(tmp_path / "r"), "--top", "1", "--filter", "unit=regression")
    assert done.returncode == 0, done.stderr
    assert "missing: experiment.json is missing" in done.stdout
    assert "missing: trial ridge_00014: no result.json" in done.stdout
    page = (tmp_path / "r" / "index.html").read_text()
    assert "experiment.json is missing" in page and "ridge_00014" in page


def test_user_mistakes_are_one_line_and_exit_2(report_experiments, tmp_path):
    done = run(str(tmp_path / "nowhere"))
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert done.stderr.startswith("error: experiment ") and "does not exist" in done.stderr

    done = run(str(report_experiments["june_a"]), "--out", str(tmp_path / "x"), "--metric", "sortino")
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0
    assert "unknown --metric 'sortino'; known metrics: " in done.stderr and "accuracy" in done.stderr

    done = run(str(report_experiments["june_a"]), "--filter", "colour=blue")
    assert done.returncode == 2 and "unknown --filter key 'colour'" in done.stderr

    done = run(str(report_experiments["june_a"]), "--top", "0")
    assert done.returncode == 2 and "`--top` is 0, but must be `--top >= 1`" in done.stderr
    assert not (tmp_path / "x").exists()
