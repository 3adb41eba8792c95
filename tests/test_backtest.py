"""The cost model, the position rule and the net-of-cost backtest (``atlas_ray.backtest``), on a real
trial's predictions (the kept experiment under tests/experiment/fixtures: a 3-class DNN on Coinbase's
next minute, its validation rows): a plain Python loop, written from the rules in the module docstring,
gives the same figures as the vectorised backtest; zero cost gives the gross figures exactly; the first
entry and the final exit are paid; a backtest that never trades scores 0."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import numpy as np
import pytest

from atlas_ray.backtest import (
    NET_METRICS,
    QUOTED,
    Costs,
    PositionRule,
    class_positions,
    half_spread_bps,
    net_figures,
    net_returns,
    positions,
)
from atlas_ray.errors import SpecError
from atlas_ray.experiment import ResultsObject, load_results
from atlas_ray.featurestore import Task
from atlas_ray.metrics import held_gross

FIXTURE = Path(__file__).parent / "experiment" / "fixtures" / "old_experiment"
SOME_COSTS = Costs(fee_bps=10.0, spread_bps=2.0, minimum_bps=15.0)


@pytest.fixture(scope="module")
def trial() -> ResultsObject:
    return load_results(str(FIXTURE))[1]


def validation(result: ResultsObject) -> tuple[np.ndarray, np.ndarray]:
    """The trial's validation probabilities ``(rows, 3)`` and label values, in time order."""
    rows = result.predictions[result.predictions["split"] == "validation"].sort_values("timestamp")
    probs = rows[[f"prob_{c}" for c in result.classes]].to_numpy("float64")
    return probs, rows["label_value"].to_numpy("float64")


def loop_figures(
    task: Task, output: list, label: list, costs: Costs, rule: PositionRule, horizon: int, per_year: float
) -> dict[str, float]:
    """The backtest one row at a time, from the rules in ``atlas_ray.backtest``'s docstring."""
    signal = []
    for row in output:
        if task is Task.REGRESSION:
            signal.append(0.0 if abs(row) <= rule.dead_band else (1.0 if row > 0 else -1.0))
        else:
            best = max(range(len(row)), key=lambda k: (row[k], -k))  # argmax: the first of ties
            middle = (len(row) - 1) / 2
            side = 0.0 if best == middle else (1.0 if best > middle else -1.0)
            signal.append(side if row[best] > rule.threshold else 0.0)

    def charge(change: float) -> float:
        if not change:
            return 0.0
        return max(change * (costs.fee_bps + costs.spread_bps) / 1e4, costs.minimum_bps / 1e4)

    held, before = 0.0, 0.0
    gross, cost, trades, wins, periods = [], [], 0, 0, 0
    for i, value in enumerate(label):
        if i % horizon == 0:
            held = signal[i]
        paid = charge(abs(held - before))
        trades += held != before
        if i == len(label) - 1 and held != 0:  # the final exit
            paid += charge(abs(held))
            trades += 1
        earned = held * value if i % horizon == 0 else 0.0
        if i % horizon == 0 and held != 0:
            periods += 1
            wins += earned > 0
        gross.append(earned)
        cost.append(paid)
        before = held
    net = [g - c for g, c in zip(gross, cost, strict=True)]
    peak, level, drawdown, turnover, previous = 0.0, 0.0, 0.0, 0.0, 0.0
    for r in net:
        level += r
        peak = max(peak, level)
        drawdown = max(drawdown, peak - level)
    for i in range(len(label)):
        now = signal[(i // horizon) * horizon]
        turnover += abs(now - previous)
        previous = now
    turnover += abs(previous)

    def sharpe(series: list[float]) -> float:
        spread = statistics.stdev(series)
        return statistics.fmean(series) / spread if spread > 0 else 0.0

    return {
        "net_return": sum(net), "gross_return": sum(gross),
        "net_sharpe": sharpe(net), "gross_sharpe": sharpe(gross),
        "net_sharpe_annual": sharpe(net) * math.sqrt(per_year), "turnover": turnover / len(label),
        "cost": sum(cost), "max_drawdown": drawdown, "hit_rate": wins / periods if periods else 0.0,
        "trades": float(trades),
    }


@pytest.mark.parametrize(
    ("task", "rule", "horizon"),
    [
        (Task.MULTICLASS, PositionRule(), 1),
        (Task.MULTICLASS, PositionRule(threshold=0.5), 1),
        (Task.MULTICLASS, PositionRule(threshold=0.45), 5),
        (Task.REGRESSION, PositionRule(dead_band=0.2), 1),
        (Task.REGRESSION, PositionRule(), 3),
    ],
)
def test_a_plain_loop_over_real_predictions_gives_the_vectorised_figures(
    trial: ResultsObject, task: Task, rule: PositionRule, horizon: int
) -> None:
    probs, label = validation(trial)
    # the regressor's output: the trial's own up-minus-down score, a real model's signal
    output = probs[:, 2] - probs[:, 0] if task is Task.REGRESSION else probs
    per_year = 525_960.0
    vectorised = net_figures(task, label, output, SOME_COSTS, rule, horizon=horizon, bars_per_year=per_year)
    looped = loop_figures(task, output.tolist(), label.tolist(), SOME_COSTS, rule, horizon, per_year)
    assert list(vectorised) == list(NET_METRICS)
    assert looped["trades"] > 10 and looped["cost"] > 0  # it trades: the comparison means something
    for name in NET_METRICS:
        assert vectorised[name] == pytest.approx(looped[name], rel=1e-9, abs=1e-15), name


def test_zero_cost_gives_the_gross_figures_exactly(trial: ResultsObject) -> None:
    probs, label = validation(trial)
    free = Costs(fee_bps=0, spread_bps=0, minimum_bps=0)
    figures = net_figures(Task.MULTICLASS, label, probs, free, PositionRule(), horizon=2)
    assert figures["net_return"] == figures["gross_return"] != 0
    assert figures["net_sharpe"] == figures["gross_sharpe"] != 0
    assert figures["cost"] == 0.0 and figures["trades"] > 0
    signal = positions(Task.MULTICLASS, probs, PositionRule())
    _, gross, cost, net = net_returns(signal, label, free, horizon=2)
    assert np.array_equal(net, held_gross(signal, label, 2)) and np.array_equal(net, gross)
    assert not cost.any()


def test_the_first_entry_and_the_final_exit_are_paid(trial: ResultsObject) -> None:
    _, label = validation(trial)
    costs = Costs(fee_bps=10, spread_bps=0.5)
    rate = 10.5e-4
    always_long = np.ones(label.size)
    _, gross, cost, _ = net_returns(always_long, label, costs)
    assert cost[0] == pytest.approx(rate) and cost[-1] == pytest.approx(rate)  # in, then out
    assert cost.sum() == pytest.approx(2 * rate) and gross.sum() == pytest.approx(label.sum())
    flip = np.r_[np.ones(10), -np.ones(label.size - 10)]  # long, then short: a change of 2 at row 10
    _, _, cost, _ = net_returns(flip, label, costs)
    assert np.flatnonzero(cost).tolist() == [0, 10, label.size - 1]
    assert cost.sum() == pytest.approx(rate + 2 * rate + rate)
    floor = Costs(fee_bps=1, minimum_bps=3)  # each trade pays at least 3 bps
    _, _, cost, _ = net_returns(flip, label, floor)
    assert cost[[0, 10, label.size - 1]] == pytest.approx([3e-4, 3e-4, 3e-4])


def test_a_backtest_that_never_trades_scores_zero_never_nan(trial: ResultsObject) -> None:
    probs, label = validation(trial)
    assert probs.max() < 0.999
    for output, task, rule in (
        (probs, Task.MULTICLASS, PositionRule(threshold=0.999)),
        (probs[:, 2] - probs[:, 0], Task.REGRESSION, PositionRule(dead_band=10.0)),
        (np.full_like(probs, np.nan), Task.MULTICLASS, PositionRule()),  # a diverged model is flat
        (np.zeros((0, 3)), Task.MULTICLASS, PositionRule()),
    ):
        figures = net_figures(task, label[: len(output)], output, SOME_COSTS, rule, bars_per_year=1e5)
        assert figures == dict.fromkeys(NET_METRICS, 0.0)


def test_the_threshold_and_the_dead_band_only_flatten(trial: ResultsObject) -> None:
    probs, _ = validation(trial)
    free = positions(Task.MULTICLASS, probs, PositionRule())
    strict = positions(Task.MULTICLASS, probs, PositionRule(threshold=0.5))
    confident = probs.max(axis=1) > 0.5
    assert 0 < confident.sum() < confident.size
    assert np.array_equal(strict, np.where(confident, free, 0.0))
    assert class_positions(3).tolist() == [-1.0, 0.0, 1.0] and class_positions(2).tolist() == [-1.0, 1.0]
    score = probs[:, 2] - probs[:, 0]
    banded = positions(Task.REGRESSION, score, PositionRule(dead_band=0.1))
    assert np.array_equal(banded, np.where(np.abs(score) > 0.1, np.sign(score), 0.0))
    assert PositionRule(threshold=0.2).for_trial({"position_threshold": 0.6}).threshold == 0.6
    assert PositionRule(threshold=0.2).for_trial({"units": 3}).threshold == 0.2


@pytest.mark.parametrize(
    ("make", "field", "shown"),
    [
        (lambda: Costs(fee_bps=-1), "fee_bps", "-1"),
        (lambda: Costs(spread_bps=float("nan")), "spread_bps", "nan"),
        (lambda: Costs(minimum_bps="5"), "minimum_bps", "'5'"),
        (lambda: Costs(spread_bps="wide"), "spread_bps", "'wide'"),
        (lambda: PositionRule(threshold=1.0), "threshold", "1.0"),
        (lambda: PositionRule(dead_band=-0.1), "dead_band", "-0.1"),
    ],
)
def test_bad_fields_are_refused_in_one_line_naming_the_field(make, field: str, shown: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SpecError) as refused:
        make()
    message = str(refused.value)
    assert f"`{field}`" in message and f"is {shown}," in message and "\n" not in message


def test_a_quoted_spread_charges_only_once_resolved() -> None:
    quoted = Costs(fee_bps=4.0, spread_bps=QUOTED)
    assert quoted.quoted and not Costs().quoted and Costs() == Costs(10.0, 0.0, 0.0)
    assert Costs.from_dict(quoted.as_dict()) == quoted and "quoted spread" in quoted.describe()
    with pytest.raises(SpecError, match=r"`spread_bps` is 'quoted', which must be resolved"):
        quoted.charge(np.ones(3))
    resolved = quoted.resolved(0.25)
    assert resolved == Costs(fee_bps=4.0, spread_bps=0.25) and resolved.rate == pytest.approx(4.25e-4)
    bid, ask = np.array([99.0, 100.0, np.nan, 0.0, 101.0]), np.array([101.0, 100.5, 1.0, 1.0, 100.0])
    # the NaN bid, the zero bid and the crossed book (ask < bid) are left out
    expected = statistics.median([2.0 / 200.0 * 1e4, 0.5 / 200.5 * 1e4])
    assert half_spread_bps(bid, ask) == pytest.approx(expected)
    assert math.isnan(half_spread_bps(np.array([]), np.array([])))
