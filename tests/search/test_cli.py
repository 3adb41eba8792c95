"""``python -m atlas_ray.search``: a dry run plans without training; a bad spec is one error line and
exit status 2, before Ray starts."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from atlas_ray._cli import run_cli
from atlas_ray.search.__main__ import main

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


GOOD = """
    from atlas_ray.search import ModelSpec
    from tests.search import search_specs
    MODELS = [search_specs.small_dnn(num_samples=3), ModelSpec("logistic", "logistic")]
    SPEC = search_specs.spec("planned", MODELS)
    """


def test_dry_run_prints_shapes_coverage_and_plan(
    tmp_path: Path, minute_store, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    spec = write(tmp_path, "planned.py", GOOD)
    storage = tmp_path / "experiments"
    status = run_cli(main, [str(spec), "--dry-run", "--storage", str(storage), "--store", minute_store.root])
    out = capsys.readouterr().out
    assert status == 0
    assert "spec planned: 4 trials" in out
    assert "unit direction:" in out and "task multiclass" in out and "classes ['down', 'flat', 'up']" in out
    assert "train=(" in out and "validation=(" in out and "test (sealed)" in out
    assert "InterExchangeSpread(Midpoint().coinbase().one_min(), Midpoint().kraken().one_min())" in out
    assert "direction / dnn: 3 trials x 2 epochs max, 1 CPU each" in out
    assert "direction / logistic: 1 trials x 2 epochs max, 1 CPU each" in out
    assert "nothing trained" in out
    assert not (storage / "planned").exists()


@pytest.mark.slow  # a process of its own (~5-16 s): not in scripts/test.sh --quick
def test_bad_spec_is_one_error_line_and_exit_2_before_ray(tmp_path: Path, minute_store) -> None:  # type: ignore[no-untyped-def]
    spec = write(
        tmp_path,
        "bad.py",
        """
        from ray import tune
        from atlas_ray.featurestore import FeatureLabelSet, LogReturns, Percentiles
        from atlas_ray.search import ModelSpec, WorkSpec, WorkUnit
        FLS = FeatureLabelSet(
            [LogReturns().coinbase().one_min()], [LogReturns().coinbase().one_min().lookforward(1)],
            categories=Percentiles((33.3, 66.7)),
        )
        MODEL = ModelSpec("deep", "dnn", {"dropout": tune.choice([0.1, 2.0])})
        SPEC = WorkSpec("bad", [WorkUnit("direction", FLS, "2023-03-01", "2023-03-02", models=[MODEL])])
        """,
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "atlas_ray.search",
            str(spec),
            "--store",
            minute_store.root,
            "--storage",
            str(tmp_path / "experiments"),
        ],
        cwd=ROOT,
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: unit `direction`, model `deep`, field `space`")
    assert "`dropout` is 2.0" in lines[0]
    assert "Ray" not in done.stdout and not (tmp_path / "experiments").exists()


def test_resume_without_an_experiment(
    tmp_path: Path, minute_store, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    spec = write(tmp_path, "planned.py", GOOD)
    status = run_cli(
        main, [str(spec), "--resume", "--storage", str(tmp_path / "none"), "--store", minute_store.root]
    )
    assert status == 2
    assert "--resume: there is no experiment `planned`" in capsys.readouterr().err


def test_missing_spec_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(main, [str(tmp_path / "nope.py")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: spec file") and "does not exist" in err


def test_help_names_the_finalize_and_harvest_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "python -m atlas_ray.search finalize EXPERIMENT --top K" in text
    assert "python -m atlas_ray.search harvest ssh://USER@HOST/PATH" in text
