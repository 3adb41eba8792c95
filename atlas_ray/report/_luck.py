"""Selection luck over one experiment's trials, on out-of-sample predictions only.

Which rows: a trial's rows whose ``split`` is ``"oos"`` (the walk-forward search's out-of-sample
predictions) when any trial of the experiment has such rows, else its ``"validation"`` rows. Test rows
are never used here: the test set stays sealed for the finalised trials.

What: each trial's backtest return per row there and its Sharpe ratio: net of the experiment's cost
model (``_costs``: each trial's recorded one, or the flat ``--cost``) when the experiment ranks on a
net-of-cost metric (``val_net_sharpe``, ...: what was selected on is what is deflated), else gross
(``SelectionLuck.returns`` says which, and the report's figures say so); the deflated Sharpe ratio of
the trial with the highest Sharpe ratio and of each task's best trial by the report's ranking metric,
given the number of trials and the variance of their Sharpe ratios; the probability of backtest
overfitting by CSCV over the trials' returns on the rows they all share; and for regressors, IC and
Rank IC per day with their mean and ICIR. The maths is in ``atlas_ray.report._overfitting``
(``stats`` re-exports it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from atlas_ray.experiment import ResultsObject
from atlas_ray.featurestore import Task
from atlas_ray.report import _overfitting as ovf
from atlas_ray.report import stats
from atlas_ray.report._costs import cost_text, trial_curve

__all__ = [
    "OOS_SPLIT",
    "DeflatedSharpe",
    "SelectionLuck",
    "out_of_sample_split",
    "selection_luck",
    "trial_returns",
]

#: The ``split`` value of walk-forward out-of-sample predictions; preferred to ``"validation"``.
OOS_SPLIT = "oos"

#: A year, for annualising a per-row Sharpe ratio by the rows' median spacing (markets that never close).
_YEAR = pd.Timedelta(days=365.25)


def out_of_sample_split(results: Sequence[ResultsObject]) -> str:
    """``"oos"`` when any trial has rows of that split, else ``"validation"``."""
    for result in results:
        arrays = stats.trial_arrays(result)
        if arrays.mask(OOS_SPLIT).any():
            return OOS_SPLIT
    return "validation"


def trial_returns(
    result: ResultsObject, split: str, cost: float | None = None, *, net: bool = True
) -> pd.Series:
    """The trial's backtest return per row of ``split`` (``_costs.trial_curve``: net of ``cost``, the
    experiment's cost model when None; gross when not ``net``), indexed by time; empty when it has no
    such rows or no realised values. ``split`` must not be ``"test"``."""
    if split == "test":
        raise ValueError("The value of `split` is 'test', but selection-luck statistics never read the "
                         "sealed test rows; use 'oos' or 'validation'.")
    arrays = stats.trial_arrays(result)
    mask = arrays.mask(split) if split in stats.SPLITS else np.zeros(arrays.split.shape, bool)
    label = arrays.label_value[mask]
    if not mask.any() or not np.isfinite(label).any():
        return pd.Series(dtype="float64", index=pd.DatetimeIndex([], tz="UTC"))
    returns = trial_curve(result, mask, cost)["net" if net else "gross"]
    return returns[~returns.index.duplicated(keep="last")]


@dataclass(frozen=True)
class DeflatedSharpe:
    """The deflated Sharpe ratio of one trial (``role`` says why it is shown): its Sharpe ratio per row
    and annualised by the rows' spacing, over ``rows`` returns of that ``skew`` and ``kurtosis``, against
    ``expected_max``, the Sharpe ratio the best of ``trials`` skill-less trials with Sharpe-ratio
    variance ``sharpe_variance`` would show; ``dsr`` the probability its true Sharpe ratio is above."""

    trial_id: str
    role: str
    sharpe: float
    annualised: float
    rows: int
    skew: float
    kurtosis: float
    trials: int
    sharpe_variance: float
    expected_max: float
    dsr: float


@dataclass(frozen=True, eq=False)
class SelectionLuck:
    """An experiment's selection-luck statistics (see the module docstring). ``sharpes``: one row per
    trial with out-of-sample returns (trial_id, unit, model, task, sharpe, rows, start, end);
    ``pbo`` with the ``pbo_start`` .. ``pbo_end`` rows it used (``None`` when it could not be
    computed: ``notes`` says why); ``information``: one row per regressor (trial_id, unit, model, ic,
    icir, rank_ic, rank_icir, days) and ``daily_ic`` its per-day table; ``returns``: which returns the
    Sharpe ratios, DSR and PBO are of (net of which costs, or gross), in words."""

    split: str
    tried: int
    sharpes: pd.DataFrame
    deflated: tuple[DeflatedSharpe, ...]
    pbo: ovf.CSCVResult | None
    pbo_start: pd.Timestamp | None
    pbo_end: pd.Timestamp | None
    information: pd.DataFrame
    daily_ic: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    returns: str = "net backtest returns"


def _annualise(returns: pd.Series) -> float:
    """``sqrt(rows per year)`` from the median spacing of the rows."""
    if len(returns) < 2:
        return math.nan
    spacing = pd.Timedelta(pd.Series(returns.index).diff().median())
    return math.sqrt(float(_YEAR / spacing)) if spacing > pd.Timedelta(0) else math.nan


def _deflated(trial_id: str, role: str, returns: pd.Series, trials: int, variance: float) -> DeflatedSharpe:
    values = returns.to_numpy("float64")
    sharpe = ovf.sharpe_ratio(values)
    skew, kurtosis = ovf.return_moments(values)
    expected = ovf.expected_max_sharpe(trials, variance)
    dsr = ovf.probabilistic_sharpe_ratio(sharpe, expected, len(values), skew, kurtosis) \
        if len(values) >= 2 else math.nan
    return DeflatedSharpe(trial_id=trial_id, role=role, sharpe=sharpe,
                          annualised=sharpe * _annualise(returns),
                          rows=len(values), skew=skew, kurtosis=kurtosis, trials=trials,
                          sharpe_variance=variance, expected_max=expected, dsr=dsr)


def _cscv(series: Mapping[str, pd.Series], partitions: int,
          notes: list[str]) -> tuple[ovf.CSCVResult | None, pd.Timestamp | None, pd.Timestamp | None]:
    if len(series) < 2:
        notes.append(f"PBO needs at least two trials with out-of-sample returns; {len(series)} have them")
        return None, None, None
    matrix = pd.concat(series, axis=1, join="inner").sort_index()
    rows = len(matrix)
    while partitions > 2 and rows < 4 * partitions:
        partitions -= 2
    if rows < 4 * partitions:
        notes.append(f"PBO needs at least {4 * partitions} rows that every trial predicted; there are {rows}")
        return None, None, None
    if len(matrix) < max(len(s) for s in series.values()):
        notes.append(f"PBO uses the {rows} rows every trial predicted (trials of different work units may "
                     "cover different times)")
    result = ovf.cscv(matrix.to_numpy("float64"), partitions)
    return result, matrix.index[0], matrix.index[-1]


def _information(results: Sequence[ResultsObject],
                 split: str) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    rows, daily = [], {}
    for result in results:
        if result.task is not Task.REGRESSION:
            continue
        arrays = stats.trial_arrays(result)
        mask = arrays.mask(split)
        if not mask.any():
            continue
        table = ovf.information_coefficients(arrays.timestamps[mask], arrays.y_pred[mask],
                                             arrays.y_true[mask])
        daily[result.trial_id] = table
        rows.append({"trial_id": result.trial_id, "unit": result.identity.unit,
                     "model": result.identity.model,
                     **ovf.information_summary(table)})
    columns = ["trial_id", "unit", "model", "ic", "icir", "rank_ic", "rank_icir", "days"]
    frame = pd.DataFrame(rows, columns=columns)
    if not frame.empty:
        frame = frame.sort_values("ic", ascending=False, na_position="last", kind="stable")
    return frame.reset_index(drop=True), daily


def selection_luck(
    results: Sequence[ResultsObject],
    *,
    cost: float | None = None,
    best: Mapping[str, str] | None = None,
    partitions: int = 16,
    net: bool = True,
    ranked_on: str | None = None,
) -> SelectionLuck:
    """The selection-luck statistics of an experiment's ``results`` (see the module docstring): on net
    returns (``cost``: a flat cost per unit of position changed, None the experiment's cost model) or,
    with ``net=False``, gross; ``ranked_on`` (the experiment's metric) is named in ``returns``.
    ``best``: ``{role: trial_id}`` of trials to deflate besides the one with the highest Sharpe ratio
    (the report passes each task's best by its ranking metric); ``partitions``: CSCV's ``S`` (fewer when
    the shared rows are too few for 4 a block)."""
    split = out_of_sample_split(results)
    notes: list[str] = []
    series: dict[str, pd.Series] = {}
    table = []
    for result in results:
        returns = trial_returns(result, split, cost, net=net)
        sharpe = ovf.sharpe_ratio(returns.to_numpy("float64"))
        if not math.isfinite(sharpe):
            continue
        series[result.trial_id] = returns
        table.append({"trial_id": result.trial_id, "unit": result.identity.unit,
                      "model": result.identity.model,
                      "task": result.task.value, "sharpe": sharpe, "rows": len(returns),
                      "start": returns.index[0], "end": returns.index[-1]})
    sharpes = pd.DataFrame(table, columns=["trial_id", "unit", "model", "task", "sharpe", "rows", "start",
                                           "end"])
    left_out = len(results) - len(series)
    if left_out:
        notes.append(f"{left_out} of {len(results)} trials have no {split} backtest with varying returns "
                     "(failed, no predictions or never in a position) and are not counted")
    deflated: list[DeflatedSharpe] = []
    if len(series) >= 1:
        values = sharpes["sharpe"].to_numpy("float64")
        variance = float(np.var(values, ddof=1)) if values.size > 1 else 0.0
        top = str(sharpes["trial_id"].to_numpy()[int(np.argmax(values))])
        roles: dict[str, list[str]] = {top: ["highest Sharpe ratio"]}
        for role, trial in (best or {}).items():
            if trial in series:
                roles.setdefault(trial, []).append(role)
            else:
                notes.append(f"{role} ({trial}) has no {split} backtest; no deflated Sharpe ratio for it")
        for trial, named in roles.items():
            deflated.append(_deflated(trial, "; ".join(named), series[trial], len(series), variance))
    pbo, start, end = _cscv(series, partitions, notes)
    information, daily = _information(results, split)
    why = f" (the experiment ranks on {ranked_on})" if ranked_on else ""
    described = (f"net backtest returns{why}, {cost_text(results, cost)}" if net
                 else f"gross backtest returns, no cost{why}, not a net-of-cost metric")
    return SelectionLuck(split=split, tried=len(results), sharpes=sharpes, deflated=tuple(deflated), pbo=pbo,
                         pbo_start=start, pbo_end=end, information=information, daily_ic=daily,
                         notes=tuple(notes), returns=described)
