"""Fixtures for the report's tests: real experiments of real models on the real Coinbase minute bars.

``report_experiments`` trains real scikit-learn models (see ``tests/report/_real_experiment.py``)
and writes their ResultsObjects with ``write_result`` into two experiment directories, ``june_a``
(5 lagged returns) and ``june_b`` (2 lagged returns). These are real predictions from real models on
real data; the fixture will be replaced by a small real atlas_ray search once that exists (the lead
switches it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from atlas_ray.report import Experiment, load_experiment_for_report
from tests.report._real_experiment import build_experiment, load_bars


@pytest.fixture(scope="session")
def report_experiments(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> dict[str, Path]:
    """``{"june_a": dir, "june_b": dir}``: two real experiments (stand-in for a small real search)."""
    root = tmp_path_factory.mktemp("experiments")
    bars = load_bars(data_dir)
    return {
        "june_a": build_experiment(root, "june_a", bars, lags=5),
        "june_b": build_experiment(root, "june_b", bars, lags=2),
    }


@pytest.fixture(scope="session")
def june_a(report_experiments: dict[str, Path]) -> Experiment:
    return load_experiment_for_report(str(report_experiments["june_a"]))


@pytest.fixture(scope="session")
def by_id(june_a: Experiment) -> dict:
    return {r.trial_id: r for r in june_a.results}
