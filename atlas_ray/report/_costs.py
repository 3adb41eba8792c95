"""What the report charges a trial: the experiment's cost model, the one its search scored it with.

Each trial's ``result.json`` records the cost model and position rule of its net figures
(``ResultsObject.backtest``, from the spec's WorkUnit: ``atlas_ray.backtest``); the report's backtests,
net figures, cards and selection-luck statistics use that record, so the report and the search agree.
A result written before it was recorded gets the default cost model (``atlas_ray.backtest.Costs()``)
and the trial's ``position_threshold`` hyperparameter, if any. ``--cost`` (``cost``, a float in
log-return units per unit of position changed) overrides the record with that flat rate for every
trial (the old flat-cost backtest, for comparing with older reports).

Positions follow the rule: a classifier's from its stored probabilities (``prob_<class>``), a
regressor's from its predictions; a result without probabilities falls back to its predicted class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from atlas_ray.backtest import Costs, PositionRule, bars_per_year, net_figures, net_returns, positions
from atlas_ray.experiment import ResultsObject
from atlas_ray.featurestore import Task
from atlas_ray.report import stats

__all__ = ["NET_RANKED", "charged", "cost_text", "ranks_net", "trial_curve", "trial_figures"]

#: Metric base names that make an experiment one ranked on what a desk keeps (net of costs).
NET_RANKED = frozenset({"net_return", "net_sharpe", "net_sharpe_annual", "cost", "turnover", "max_drawdown"})


def ranks_net(metric: str | None) -> bool:
    """Whether ``metric`` (an experiment's ranking metric, e.g. ``val_net_sharpe``) is a net-of-cost one."""
    name = str(metric or "")
    for prefix in ("val_", "oos_", "train_", "test_"):
        name = name.removeprefix(prefix)
    return name in NET_RANKED


def charged(result: ResultsObject, cost: float | None = None) -> tuple[Costs, PositionRule]:
    """The cost model and position rule the report applies to ``result`` (see the module docstring)."""
    record: Mapping[str, object] = result.backtest or {}
    costs = Costs.from_dict(record["costs"]) if isinstance(record.get("costs"), Mapping) else Costs()  # type: ignore[arg-type]
    if isinstance(record.get("position"), Mapping):
        rule = PositionRule.from_dict(record["position"])  # type: ignore[arg-type]
    else:
        rule = PositionRule().for_trial(result.identity.hyperparameters)
    if cost is not None:
        costs = Costs(fee_bps=float(cost) / 1e-4, spread_bps=0.0, minimum_bps=0.0)
    return costs, rule


def _signal(result: ResultsObject, mask: np.ndarray, rule: PositionRule) -> np.ndarray:
    arrays = stats.trial_arrays(result)
    if result.task is Task.REGRESSION:
        return positions(result.task, arrays.y_pred[mask], rule)
    if arrays.probs is not None and arrays.probs.shape[1] == len(result.classes):
        return positions(result.task, arrays.probs[mask], rule)
    return arrays.position[mask]


def trial_curve(result: ResultsObject, mask: np.ndarray, cost: float | None = None) -> pd.DataFrame:
    """The trial's backtest on the rows ``mask`` of its ``stats.trial_arrays`` (time order): per row
    ``position`` (held), ``gross``, ``cost``, ``net`` and the cumulative sums ``cumulative`` (net) and
    ``cumulative_gross`` (``stats.backtest``'s columns), charged as ``charged`` says."""
    arrays = stats.trial_arrays(result)
    costs, rule = charged(result, cost)
    held, gross, paid, net = net_returns(
        _signal(result, mask, rule), arrays.label_value[mask], costs, stats.label_horizon(result.label)
    )
    return pd.DataFrame(
        {"position": held, "gross": gross, "cost": paid, "net": net, "cumulative": np.cumsum(net),
         "cumulative_gross": np.cumsum(gross)},
        index=pd.DatetimeIndex(arrays.timestamps[mask]),
    )


def trial_figures(result: ResultsObject, mask: np.ndarray, cost: float | None = None) -> dict[str, float]:
    """``atlas_ray.backtest.net_figures`` of the trial on the rows ``mask``, charged as ``charged`` says."""
    arrays = stats.trial_arrays(result)
    costs, rule = charged(result, cost)
    if result.task is Task.REGRESSION:
        output = arrays.y_pred[mask]
    elif arrays.probs is not None and arrays.probs.shape[1] == len(result.classes):
        output = arrays.probs[mask]
    else:  # no probabilities: a one-hot of the predicted class gives its position
        codes = arrays.y_pred[mask]
        output = np.zeros((codes.size, len(result.classes)))
        output[np.arange(codes.size)[codes >= 0], codes[codes >= 0]] = 1.0
        rule = replace(rule, threshold=0.0)
    return net_figures(result.task, arrays.label_value[mask], output, costs, rule,
                       horizon=stats.label_horizon(result.label), bars_per_year=bars_per_year(result.label))


def cost_text(results: Sequence[ResultsObject], cost: float | None = None) -> str:
    """What the report charged, for a figure's title: the flat ``--cost``, or the experiment's cost
    model(s) (one per unit when they differ; "default" for results that record none)."""
    if cost is not None:
        return f"flat cost {cost:g} per unit of position changed (--cost)"
    models = sorted({charged(r)[0].describe() + ("" if r.backtest else " (default)") for r in results})
    if not models:
        return "the experiment's cost model"
    return "cost: " + "; ".join(models)
