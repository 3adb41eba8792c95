"""The report charges the experiment's cost model (``atlas_ray.report._costs``), on a real trial's
predictions (the kept experiment under tests/experiment/fixtures): the cost model recorded with a trial
is the one used, gross against net and cost drag per trial, and DSR / PBO on net returns when the
experiment ranks on a net metric, gross otherwise, each saying which."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from atlas_ray.backtest import Costs, PositionRule, net_figures
from atlas_ray.experiment import ResultsObject, load_results
from atlas_ray.report import _overfitting as ovf
from atlas_ray.report import stats
from atlas_ray.report._costs import charged, ranks_net, trial_curve
from atlas_ray.report._luck import selection_luck
from atlas_ray.report._summary import summary_row

FIXTURE = Path(__file__).parents[1] / "experiment" / "fixtures" / "old_experiment"
RECORD = {"costs": {"fee_bps": 4.0, "spread_bps": 1.0, "minimum_bps": 0.0},
          "position": {"threshold": 0.45, "dead_band": 0.0}}


@pytest.fixture(scope="module")
def trials() -> list[ResultsObject]:
    """The two real trials, the second with a recorded cost model and threshold."""
    first, second = load_results(str(FIXTURE))
    return [first, replace(second, backtest=RECORD)]


def test_the_recorded_cost_model_is_the_one_charged(trials: list[ResultsObject]) -> None:
    old, recorded = trials
    assert charged(old) == (Costs(), PositionRule())  # written before costs were recorded: the default
    assert charged(recorded) == (Costs(fee_bps=4.0, spread_bps=1.0), PositionRule(threshold=0.45))
    assert charged(recorded, 2e-4)[0] == Costs(fee_bps=2.0, spread_bps=0.0)  # --cost: flat
    with_threshold = replace(old, identity=replace(old.identity, hyperparameters={"position_threshold": 0.5}))
    assert charged(with_threshold)[1] == PositionRule(threshold=0.5)


def test_each_row_shows_gross_against_net_with_the_search_figures(trials: list[ResultsObject]) -> None:
    recorded = trials[1]
    row = summary_row(recorded)
    rows = recorded.predictions[recorded.predictions["split"] == "validation"].sort_values("timestamp")
    probs = rows[[f"prob_{c}" for c in recorded.classes]].to_numpy("float64")
    expected = net_figures(recorded.task, rows["label_value"].to_numpy(), probs,
                           Costs(fee_bps=4.0, spread_bps=1.0), PositionRule(threshold=0.45))
    for name in ("gross_return", "net_return", "gross_sharpe", "net_sharpe", "turnover", "cost", "trades"):
        assert row[name] == pytest.approx(expected[name]), name
    assert row["cost"] > 0 and row["net_return"] < row["gross_return"]
    assert row["cost_drag"] == pytest.approx(row["gross_sharpe"] - row["net_sharpe"])
    free = summary_row(replace(recorded, backtest={**RECORD, "costs": {"fee_bps": 0.0}}))
    assert free["net_return"] == free["gross_return"] and free["cost_drag"] == 0.0


def test_selection_luck_is_net_when_the_experiment_ranks_on_a_net_metric(trials: list[ResultsObject]) -> None:
    assert ranks_net("val_net_sharpe") and ranks_net("val_turnover") and not ranks_net("val_loss")
    net = selection_luck(trials, net=True, ranked_on="val_net_sharpe")
    gross = selection_luck(trials, net=False, ranked_on="val_loss")
    assert "net backtest returns (the experiment ranks on val_net_sharpe)" in net.returns
    assert "4 bps fee + 1 bps spread" in net.returns and "10 bps fee" in net.returns  # recorded; default
    assert gross.returns.startswith("gross backtest returns, no cost (the experiment ranks on val_loss)")
    for result in trials:
        mask = stats.trial_arrays(result).mask("validation")
        curve = trial_curve(result, mask)
        shown = {luck.returns: luck.sharpes.set_index("trial_id")["sharpe"] for luck in (net, gross)}
        assert shown[net.returns][result.trial_id] == pytest.approx(ovf.sharpe_ratio(curve["net"].to_numpy()))
        gross_sharpe = ovf.sharpe_ratio(curve["gross"].to_numpy())
        assert shown[gross.returns][result.trial_id] == pytest.approx(gross_sharpe)
        assert not np.array_equal(curve["net"], curve["gross"])
