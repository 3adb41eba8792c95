"""What a desk keeps: the cost model, the position rule and the net-of-cost backtest of a model's output.

The one place these are defined; the search (every epoch's ``val_net_*`` metrics, the ResultsObject's
per-fold, mean and out-of-sample figures, ``finalize``'s test figures) and the report use them.

**Costs** (``Costs``), per unit of position changed, in basis points of the notional traded:
``fee_bps`` the exchange's fee per side, ``spread_bps`` what crossing the spread costs per side (half
the quoted spread), ``minimum_bps`` the least any one trade is charged. A bar where the position changes
by ``|Δ|`` (``Δ`` = 2 when +1 turns into -1: a close and an open) is charged
``max(|Δ| * (fee_bps + spread_bps), minimum_bps) / 1e4`` in return units; a bar with no change, nothing.
The default, ``Costs()``, is Binance spot's base-tier taker fee, 10 bps a side (0.1 %, no BNB
discount), with no spread and no minimum: a WorkUnit that states no costs gets it, so net figures always
exist. The spread is either stated (``spread_bps=0.5``: half the spread you measured) or measured:
``spread_bps=QUOTED`` (the text ``"quoted"``) asks for half the median quoted spread of the market the
unit trades, in bps of the mid (``half_spread_bps``). A quoted cost model cannot charge (``rate`` refuses)
until it is resolved (``Costs.resolved``): the search resolves it once per unit before any trial starts,
from the store's ``quotes`` (bid_price / ask_price) of the featureset's label exchange and pair over the
unit's range before its sealed test block (never the test rows), and refuses a unit whose store holds no
such quotes (one line naming the unit, the exchange and the field; no silent fallback: state a figure
instead). Trials, the ResultsObject's ``backtest`` record, ``finalize`` and the report then use the
resolved figure (``atlas_ray.search``'s ``_spread``).

**Positions** (``PositionRule``): a classifier's position is that of its most probable class, classes
lowest label first as the featurestore builds them (``down, up`` / ``down, flat, up`` / ``c0 .. ck``):
class ``k`` of ``n`` is ``sign(2k - (n - 1))``, so the first class is -1 (short), the last +1 (long) and
the middle class of an odd count 0 (flat); with ``threshold`` > 0 the position is taken only when that
class's probability is above ``threshold``, else flat. The threshold may be searched: a trial whose
hyperparameters hold ``position_threshold`` uses that value (``PositionRule.for_trial``). A regressor's
position is the sign of its prediction, flat where ``|prediction| <= dead_band`` (label units). An
output that is not finite (a diverged model) is flat.

**The backtest** (``net_returns``, ``net_figures``), vectorised over one fold's rows in time order: the
positions are held for the label's horizon ``h`` (``atlas_ray.metrics.held_positions``: the signal at
rows ``0, h, 2h, ...`` held ``h`` rows, credited once with the label value of the row it was taken on,
``held_gross``). The book is flat before the first row and is closed after the last: the first entry is
charged on its row and the final exit on the last row. Per row ``net = gross - cost``. The figures
(``NET_METRICS``):

- ``net_return`` / ``gross_return``: the sums of the per-row net / gross returns (log returns add);
- ``net_sharpe`` / ``gross_sharpe``: mean / std (``ddof=1``) of the per-row (per bar) returns;
- ``net_sharpe_annual``: ``net_sharpe * sqrt(bars per year)``, bars per year = 365.25 days / the
  label's bar resolution (markets that never close; ``bars_per_year``);
- ``turnover``: the mean |position change| per bar, the first entry and the final exit included;
- ``cost``: the sum of the costs paid; ``trades``: the number of position changes (bars charged,
  the final exit included);
- ``max_drawdown``: the largest fall of the cumulative net return from its running peak (from 0);
- ``hit_rate``: the share of holding periods spent in a position whose gross return is > 0.

A backtest that never trades (or has no rows, or no varying return) scores 0 on every figure, never
NaN. With zero costs every net figure equals its gross figure exactly (``net = gross - 0.0``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from atlas_ray.errors import SpecError
from atlas_ray.featurestore import Task
from atlas_ray.metrics import held_gross, held_positions

__all__ = [
    "DEFAULT_COSTS",
    "NET_METRICS",
    "QUOTED",
    "THRESHOLD_KEY",
    "Costs",
    "PositionRule",
    "bars_per_year",
    "class_positions",
    "half_spread_bps",
    "net_figures",
    "net_returns",
    "positions",
]

#: The figures ``net_figures`` returns, in order (the search reports them as ``val_<name>``).
NET_METRICS = (
    "net_return",
    "gross_return",
    "net_sharpe",
    "gross_sharpe",
    "net_sharpe_annual",
    "turnover",
    "cost",
    "max_drawdown",
    "hit_rate",
    "trades",
)

#: ``Costs(spread_bps=QUOTED)``: the spread measured from the store's quotes (half the median quoted
#: spread, in bps of the mid), resolved once per unit before the search's trials start.
QUOTED: Literal["quoted"] = "quoted"

#: The hyperparameter a trial may carry to set its position threshold (searched like any other).
THRESHOLD_KEY = "position_threshold"

_BPS = 1e-4
_YEAR_SECONDS = 365.25 * 24 * 3600


def _check_bps(owner: str, name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise SpecError(
            f"{owner}: the value of `{name}` is {value!r}, but must be a finite number of basis points >= 0."
        )
    return float(value)


@dataclass(frozen=True)
class Costs:
    """The cost model (see the module docstring): basis points per unit of position changed, per side.

    The default is Binance spot's base-tier taker fee (10 bps), no spread, no minimum. ``spread_bps``
    is a number of basis points or ``QUOTED`` (measured from the store's quotes: ``resolved`` gives the
    cost model with the measured figure; an unresolved one cannot charge)."""

    fee_bps: float = 10.0
    spread_bps: float | Literal["quoted"] = 0.0
    minimum_bps: float = 0.0

    def __post_init__(self) -> None:
        for name in ("fee_bps", "spread_bps", "minimum_bps"):
            value = getattr(self, name)
            if name == "spread_bps" and value == QUOTED:
                continue
            try:
                object.__setattr__(self, name, _check_bps("costs", name, value))
            except SpecError:
                if name != "spread_bps":
                    raise
                raise SpecError(
                    f"costs: the value of `spread_bps` is {value!r}, but must be a finite number of basis "
                    f"points >= 0 or {QUOTED!r} (half the median quoted spread, measured from the store)."
                ) from None

    @property
    def quoted(self) -> bool:
        """Whether the spread is to be measured from the store's quotes (not yet resolved)."""
        return self.spread_bps == QUOTED

    def resolved(self, spread_bps: float) -> Costs:
        """This cost model with the spread measured (``half_spread_bps``) in place of ``QUOTED``."""
        return replace(self, spread_bps=spread_bps)

    @property
    def rate(self) -> float:
        """The cost of one unit of position changed, in return units."""
        if isinstance(self.spread_bps, str):
            raise SpecError(
                f"costs: the value of `spread_bps` is {self.spread_bps!r}, which must be resolved from the "
                "store's quotes (`Costs.resolved`; the search does it per unit) before anything is charged."
            )
        return (self.fee_bps + self.spread_bps) * _BPS

    def charge(self, change: np.ndarray) -> np.ndarray:
        """The cost of each position change ``|Δ|`` (0 where nothing changes), in return units."""
        size = np.abs(np.asarray(change, dtype=np.float64))
        return np.where(size > 0, np.maximum(size * self.rate, self.minimum_bps * _BPS), 0.0)

    def as_dict(self) -> dict[str, float | str]:
        return {"fee_bps": self.fee_bps, "spread_bps": self.spread_bps, "minimum_bps": self.minimum_bps}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Costs:
        unknown = set(values) - {"fee_bps", "spread_bps", "minimum_bps"}
        if unknown:
            known = "fee_bps, spread_bps, minimum_bps"
            raise SpecError(f"costs: unknown field(s) {sorted(unknown)}; known: {known}.")
        return cls(**values)

    def describe(self) -> str:
        spread = "quoted spread (half the median)" if self.quoted else f"{self.spread_bps:g} bps spread"
        text = f"{self.fee_bps:g} bps fee + {spread} per side"
        return text + (f", at least {self.minimum_bps:g} bps a trade" if self.minimum_bps else "")


def half_spread_bps(bid: np.ndarray, ask: np.ndarray) -> float:
    """Half the median quoted spread in basis points of the mid: the median over the rows of
    ``(ask - bid) / (ask + bid) * 1e4`` (half of ``(ask - bid) / mid``). Rows whose bid or ask is
    missing, not finite or not positive, or whose book is crossed (``ask < bid``), are left out; NaN
    when no row is left."""
    b = np.asarray(bid, dtype=np.float64).reshape(-1)
    a = np.asarray(ask, dtype=np.float64).reshape(-1)
    valid = np.isfinite(b) & np.isfinite(a) & (b > 0) & (a >= b)
    if not valid.any():
        return math.nan
    return float(np.median((a[valid] - b[valid]) / (a[valid] + b[valid]) * 1e4))


DEFAULT_COSTS = Costs()


@dataclass(frozen=True)
class PositionRule:
    """How a model's output becomes a position (see the module docstring).

    ``threshold``: a classifier trades only when its most probable class's probability is above it
    (``0 <= threshold < 1``; 0 always trades); ``dead_band``: a regressor is flat where
    ``|prediction| <= dead_band`` (``>= 0``, label units)."""

    threshold: float = 0.0
    dead_band: float = 0.0

    def __post_init__(self) -> None:
        threshold = self.threshold
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 <= threshold < 1:
            raise SpecError(
                f"position: the value of `threshold` is {threshold!r}, but must be `0 <= threshold < 1`."
            )
        band = self.dead_band
        if isinstance(band, bool) or not isinstance(band, int | float) or not math.isfinite(band) or band < 0:
            raise SpecError(
                f"position: the value of `dead_band` is {band!r}, but must be a finite number >= 0."
            )
        object.__setattr__(self, "threshold", float(threshold))
        object.__setattr__(self, "dead_band", float(band))

    def for_trial(self, hyperparameters: Mapping[str, Any]) -> PositionRule:
        """This rule with the trial's ``position_threshold`` hyperparameter, where it has one."""
        if THRESHOLD_KEY not in hyperparameters:
            return self
        return replace(self, threshold=float(hyperparameters[THRESHOLD_KEY]))

    def as_dict(self) -> dict[str, float]:
        return {"threshold": self.threshold, "dead_band": self.dead_band}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> PositionRule:
        unknown = set(values) - {"threshold", "dead_band"}
        if unknown:
            raise SpecError(f"position: unknown field(s) {sorted(unknown)}; known: threshold, dead_band.")
        return cls(**values)


def class_positions(n_classes: int) -> np.ndarray:
    """The position of each class, lowest first: ``sign(2k - (n - 1))`` (-1 .. 0 .. +1)."""
    return np.sign(2.0 * np.arange(n_classes) - (n_classes - 1))


def positions(task: Task, output: np.ndarray, rule: PositionRule) -> np.ndarray:
    """The position (+1 / 0 / -1) of each row of a model's output: class probabilities ``(rows,
    classes)`` for a classifier, values ``(rows,)`` for a regressor (``experiment.predict_proba``)."""
    values = np.asarray(output, dtype=np.float64)
    if task is Task.REGRESSION:
        values = values.reshape(-1)
        finite = np.isfinite(values)
        safe = np.where(finite, values, 0.0)
        return np.where(finite & (np.abs(safe) > rule.dead_band), np.sign(safe), 0.0)
    if values.ndim == 1 or values.shape[1] == 1:  # one sigmoid unit: the probability of class 1
        up = values.reshape(-1)
        values = np.column_stack([1.0 - up, up])
    if values.shape[0] == 0:
        return np.zeros(0)
    whole = np.asarray(np.isfinite(values).all(axis=1), dtype=bool)
    safe = np.where(whole[:, None], values, 0.0)
    chosen = np.argmax(safe, axis=1)
    confident = safe[np.arange(len(safe)), chosen] > rule.threshold
    return np.where(whole & confident, class_positions(values.shape[1])[chosen], 0.0)


def bars_per_year(label: str) -> float:
    """365.25 days over the bar resolution of the label named ``label`` (a feature name); 1.0 (the
    annualised figure is then the per-bar one) for a name outside the feature library."""
    from atlas_ray.featurestore import Feature

    try:
        seconds = float(Feature.from_name(label).resolution.seconds)
    except Exception:  # a label from outside the feature library
        return 1.0
    return _YEAR_SECONDS / seconds if seconds > 0 else 1.0


def net_returns(
    position: np.ndarray, label_value: np.ndarray, costs: Costs, horizon: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row ``(held position, gross, cost, net)`` of the signal ``position`` held for ``horizon`` rows,
    flat before the first row and closed after the last (the final exit charged on the last row). A
    label value that is not finite earns 0."""
    p = np.asarray(position, dtype=np.float64).reshape(-1)
    value = np.asarray(label_value, dtype=np.float64).reshape(-1)
    value = np.where(np.isfinite(value), value, 0.0)
    if p.shape != value.shape:
        raise ValueError(f"position and label_value must have the same length: {p.size}, {value.size}")
    held = held_positions(p, horizon)
    gross = held_gross(p, value, horizon)
    changes = np.abs(np.diff(np.r_[0.0, held, 0.0]))
    cost = costs.charge(changes[:-1])
    if cost.size:
        cost[-1] += float(costs.charge(changes[-1:])[0])
    return held, gross, cost, gross - cost


def _sharpe(returns: np.ndarray) -> float:
    if returns.size < 2:
        return 0.0
    std = float(np.std(returns, ddof=1))
    return float(np.mean(returns)) / std if std > 0 else 0.0


def net_figures(
    task: Task,
    label_value: np.ndarray,
    output: np.ndarray,
    costs: Costs,
    rule: PositionRule,
    *,
    horizon: int = 1,
    bars_per_year: float = 1.0,
) -> dict[str, float]:
    """The net-of-cost backtest figures (``NET_METRICS``, see the module docstring) of one fold: the
    model's ``output`` on its rows in time order (``experiment.predict_proba``'s form), ``label_value``
    the realised label of each row, ``horizon`` the label's (``metrics.label_horizon``)."""
    held, gross, cost, net = net_returns(positions(task, output, rule), label_value, costs, horizon)
    rows = held.size
    if rows == 0:
        return dict.fromkeys(NET_METRICS, 0.0)
    changes = np.abs(np.diff(np.r_[0.0, held, 0.0]))
    cumulative = np.cumsum(net)
    taken = (np.arange(rows) % horizon == 0) & (held != 0)
    net_sharpe = _sharpe(net)
    figures = {
        "net_return": float(net.sum()),
        "gross_return": float(gross.sum()),
        "net_sharpe": net_sharpe,
        "gross_sharpe": _sharpe(gross),
        "net_sharpe_annual": net_sharpe * math.sqrt(bars_per_year),
        "turnover": float(changes.sum()) / rows,
        "cost": float(cost.sum()),
        "max_drawdown": float(np.max(np.maximum.accumulate(np.r_[0.0, cumulative]) - np.r_[0.0, cumulative])),
        "hit_rate": float(np.mean(gross[taken] > 0)) if taken.any() else 0.0,
        "trades": float(np.count_nonzero(changes)),
    }
    return {name: figures[name] for name in NET_METRICS}
