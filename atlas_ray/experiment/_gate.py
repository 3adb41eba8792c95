"""The promotion gate's test: does a challenger forecast better than the champion on the same bars?

The test is Diebold and Mariano's (F. X. Diebold and R. S. Mariano, "Comparing Predictive Accuracy",
Journal of Business & Economic Statistics 13(3), 1995, 253-263) on the two models' per-bar losses,
with the small-sample correction of Harvey, Leybourne and Newbold (D. Harvey, S. Leybourne and
P. Newbold, "Testing the equality of prediction mean squared errors", International Journal of
Forecasting 13(2), 1997, 281-291), and a heteroskedasticity- and autocorrelation-consistent (HAC)
variance with Bartlett weights (W. K. Newey and K. D. West, "A Simple, Positive Semi-Definite,
Heteroskedasticity and Autocorrelation Consistent Covariance Matrix", Econometrica 55(3), 1987).

Over the ``T`` bars both models predicted and whose labels were realised by the decision time, with
``d_t = loss_challenger_t - loss_champion_t`` (negative where the challenger did better):

- ``mean = (1/T) sum d_t`` and the autocovariances ``g_k = (1/T) sum_{t>k} (d_t - mean)(d_{t-k} - mean)``;
- the long-run variance ``S = g_0 + 2 sum_{k=1..L} (1 - k/(L+1)) g_k`` with the lag
  ``L = max(h - 1, floor(4 (T/100)^(2/9)))``: a label ``h`` bars long makes the losses of
  neighbouring bars overlap for ``h - 1`` bars (an MA(h-1) under the null, DM's own lag), and the
  Newey-West rule of thumb covers the volatility clustering of market losses beyond it;
- ``DM = mean / sqrt(S / T)``, corrected to ``DM* = DM * sqrt((T + 1 - 2h + h(h-1)/T) / T)`` and
  compared with Student's t with ``T - 1`` degrees of freedom (HLN);
- one-sided: the alternative is that the challenger's expected loss is lower, ``p = P(t_{T-1} <= DM*)``.

The challenger passes when ``p < significance`` (and at least ``min_bars`` bars were compared).
Everything else keeps the champion: too few bars, no difference at all (``S = 0``), or a loss that is
NaN or infinite on some bar (a diverged model never passes). The same test, the roles swapped, decides
a rollback: the previous champion comes back when it beats the promoted model on the bars since.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["GATE_METHOD", "GateDecision", "PromotionGate", "diebold_mariano"]

GATE_METHOD = "diebold_mariano_hln_hac"


@dataclass(frozen=True)
class DieboldMariano:
    """The test's figures: ``statistic`` is the HLN-corrected ``DM*`` (NaN where undefined)."""

    statistic: float
    p_value: float
    mean_differential: float
    bars: int
    lag: int


def diebold_mariano(challenger: np.ndarray, champion: np.ndarray, horizon: int = 1) -> DieboldMariano:
    """The one-sided Diebold-Mariano test of the module docstring on per-bar losses of equal length.

    ``p_value`` is 1.0 where the test is undefined (fewer than 2 bars, a non-finite loss, or no
    variance at all), so an undefined test never promotes.
    """
    a = np.asarray(challenger, dtype="float64").ravel()
    b = np.asarray(champion, dtype="float64").ravel()
    if a.shape != b.shape:
        raise ValueError(
            f"The challenger has {a.size} losses and the champion {b.size}, but the test needs one of "
            "each per bar."
        )
    if not isinstance(horizon, int) or isinstance(horizon, bool) or horizon < 1:
        raise ValueError(f"The value of `horizon` is {horizon!r}, but must be an integer >= 1.")
    bars = int(a.size)
    lag = newey_west_lag(bars, horizon)
    if bars < 2 or not (np.isfinite(a).all() and np.isfinite(b).all()):
        return DieboldMariano(math.nan, 1.0, _mean(a - b), bars, lag)
    d = a - b
    mean = float(d.mean())
    variance = long_run_variance(d, lag)
    if not variance > 0.0:
        return DieboldMariano(math.nan, 1.0, mean, bars, lag)
    dm = mean / math.sqrt(variance / bars)
    h = horizon
    correction = (bars + 1 - 2 * h + h * (h - 1) / bars) / bars
    if correction <= 0.0:  # a horizon as long as the sample: no test
        return DieboldMariano(math.nan, 1.0, mean, bars, lag)
    statistic = dm * math.sqrt(correction)
    return DieboldMariano(statistic, student_t_cdf(statistic, bars - 1), mean, bars, lag)


def newey_west_lag(bars: int, horizon: int) -> int:
    """``max(h - 1, floor(4 (T/100)^(2/9)))``, below ``T``."""
    rule = math.floor(4.0 * (max(bars, 0) / 100.0) ** (2.0 / 9.0)) if bars > 0 else 0
    return max(0, min(max(horizon - 1, rule), bars - 1))


def long_run_variance(d: np.ndarray, lag: int) -> float:
    """``g_0 + 2 sum_{k=1..L} (1 - k/(L+1)) g_k`` of the module docstring (never negative)."""
    centred = d - d.mean()
    n = centred.size
    total = float(centred @ centred) / n
    for k in range(1, lag + 1):
        total += 2.0 * (1.0 - k / (lag + 1)) * float(centred[k:] @ centred[:-k]) / n
    return total


def student_t_cdf(x: float, df: int) -> float:
    """``P(T <= x)`` for Student's t with ``df`` degrees of freedom (scipy's ``stdtr``)."""
    from scipy.special import stdtr

    return float(stdtr(df, x))


@dataclass(frozen=True)
class GateDecision:
    """What the gate decided and why, as the registry records it."""

    promote: bool
    method: str
    statistic: float
    p_value: float
    significance: float
    mean_differential: float
    bars: int
    lag: int
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "promote": self.promote,
            "method": self.method,
            "statistic": None if math.isnan(self.statistic) else self.statistic,
            "p_value": self.p_value,
            "significance": self.significance,
            "mean_differential": None if math.isnan(self.mean_differential) else self.mean_differential,
            "bars": self.bars,
            "lag": self.lag,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class PromotionGate:
    """Promote a challenger only when it beats the champion by the test at ``significance``, on at
    least ``min_bars`` bars both predicted with realised labels."""

    significance: float = 0.05
    min_bars: int = 100

    def __post_init__(self) -> None:
        if not (isinstance(self.significance, int | float) and 0.0 < self.significance < 1.0):
            raise ValueError(
                f"The value of `significance` is {self.significance!r}, but must be 0 < significance < 1."
            )
        if not isinstance(self.min_bars, int) or isinstance(self.min_bars, bool) or self.min_bars < 2:
            raise ValueError(f"The value of `min_bars` is {self.min_bars!r}, but must be an integer >= 2.")

    def decide(self, challenger: np.ndarray, champion: np.ndarray, horizon: int = 1) -> GateDecision:
        """The decision on the two models' per-bar losses over the same bars (challenger first)."""
        test = diebold_mariano(challenger, champion, horizon)
        if test.bars < self.min_bars:
            promote, reason = False, f"{test.bars} bars compared, fewer than min_bars {self.min_bars}"
        elif math.isnan(test.statistic):
            promote, reason = False, "the test is undefined (a non-finite loss, or no difference at all)"
        elif test.p_value < self.significance:
            promote, reason = True, f"p {test.p_value:.4g} < significance {self.significance:g}"
        else:
            promote, reason = False, f"p {test.p_value:.4g} >= significance {self.significance:g}"
        return GateDecision(
            promote=promote,
            method=GATE_METHOD,
            statistic=test.statistic,
            p_value=test.p_value,
            significance=self.significance,
            mean_differential=test.mean_differential,
            bars=test.bars,
            lag=test.lag,
            reason=reason,
        )


def _mean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else math.nan
