"""How much of the best result is selection luck: Sharpe ratio, deflated Sharpe ratio, probability of
backtest overfitting by CSCV, and the information coefficient per day. Plain numpy, no Ray; re-exported
by ``atlas_ray.report.stats``.

Sharpe ratio (per period, not annualised): ``SR = mean(r) / std(r)`` of a return series ``r`` (``std``
with ``ddof=1``).

Deflated Sharpe ratio (Bailey and López de Prado, "The Deflated Sharpe Ratio: Correcting for Selection
Bias, Backtest Overfitting and Non-Normality", Journal of Portfolio Management 40(5), 2014)::

    SR0 = sqrt(V) * ((1 - g) * Z^-1(1 - 1/N) + g * Z^-1(1 - 1/(N e)))      g = Euler-Mascheroni
    DSR = Z((SR - SR0) * sqrt(T - 1) / sqrt(1 - skew * SR + (kurtosis - 1) / 4 * SR^2))

with ``SR`` the selected trial's Sharpe ratio over ``T`` returns of that skewness and (non-excess)
kurtosis, ``N`` the number of trials and ``V`` the variance of their Sharpe ratios. ``SR0`` is the
Sharpe ratio the best of ``N`` skill-less trials would show; ``DSR`` is the probability that the
selected trial's true Sharpe ratio is above it (the probabilistic Sharpe ratio against ``SR0``).

Probability of backtest overfitting by combinatorially symmetric cross-validation (Bailey, Borwein,
López de Prado and Zhu, "The Probability of Backtest Overfitting", Journal of Computational Finance
20(4), 2017; SSRN 2326253): the ``T x N`` matrix of the trials' returns is cut by time into ``S``
blocks (``S`` even); for each of the ``C(S, S/2)`` ways to pick half the blocks as the in-sample set
``J`` (the rest, ``J-bar``, out of sample), the trial ``n*`` with the best in-sample Sharpe ratio is
found, its out-of-sample Sharpe ratio ranked among all trials' (``rank`` 1 = worst .. ``N``),
``w = rank / (N + 1)`` and the logit ``lambda = ln(w / (1 - w))``. ``PBO`` is the share of
combinations with ``lambda <= 0``: how often the in-sample winner is at or below the out-of-sample
median.

Information coefficient (as qlib's ``calc_ic`` and ``SigAnaRecord``): per UTC day, ``IC`` the Pearson and
``Rank IC`` the Spearman correlation between prediction and realised value; their mean over days, and
``ICIR = mean / std`` over days (``ddof=1``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from statistics import NormalDist

import numpy as np
import pandas as pd

__all__ = [
    "EULER_GAMMA",
    "CSCVResult",
    "cscv",
    "cscv_combinations",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "information_coefficients",
    "information_summary",
    "probabilistic_sharpe_ratio",
    "return_moments",
    "sharpe_ratio",
]

#: The Euler-Mascheroni constant.
EULER_GAMMA = 0.5772156649015329

_NORMAL = NormalDist()


def sharpe_ratio(returns: np.ndarray) -> float:
    """``mean / std`` (``ddof=1``) of a return series, per period; NaN with fewer than two returns or
    none that differ."""
    r = np.asarray(returns, dtype="float64")
    r = r[np.isfinite(r)]
    if r.size < 2:
        return math.nan
    std = float(np.std(r, ddof=1))
    return float(np.mean(r)) / std if std > 0 else math.nan


def return_moments(returns: np.ndarray) -> tuple[float, float]:
    """``(skewness, kurtosis)`` of a return series: the third and fourth standardised moments (not
    excess: 3 for a normal distribution), as the deflated Sharpe ratio takes them."""
    r = np.asarray(returns, dtype="float64")
    r = r[np.isfinite(r)]
    if r.size < 2:
        return math.nan, math.nan
    centred = r - r.mean()
    variance = float(np.mean(centred**2))
    if variance == 0:
        return math.nan, math.nan
    return float(np.mean(centred**3)) / variance**1.5, float(np.mean(centred**4)) / variance**2


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """``SR0``: the expected largest Sharpe ratio of ``n_trials`` trials without skill whose Sharpe ratios
    have variance ``sharpe_variance`` (0 for a single trial)."""
    if n_trials < 1:
        raise ValueError(f"The value of `n_trials` is {n_trials}, but must be `n_trials >= 1`.")
    if not sharpe_variance >= 0:
        raise ValueError(f"The value of `sharpe_variance` is {sharpe_variance}, but must be "
                         "`sharpe_variance >= 0`.")
    if n_trials == 1:
        return 0.0
    z = ((1 - EULER_GAMMA) * _NORMAL.inv_cdf(1 - 1 / n_trials)
         + EULER_GAMMA * _NORMAL.inv_cdf(1 - 1 / (n_trials * math.e)))
    return math.sqrt(sharpe_variance) * z


def probabilistic_sharpe_ratio(sharpe: float, benchmark: float, n_obs: int, skew: float,
                               kurtosis: float) -> float:
    """The probability that the true Sharpe ratio exceeds ``benchmark``, given a Sharpe ratio of
    ``sharpe`` measured on ``n_obs`` returns of that skewness and (non-excess) kurtosis."""
    if n_obs < 2:
        raise ValueError(f"The value of `n_obs` is {n_obs}, but must be `n_obs >= 2`.")
    if not all(math.isfinite(v) for v in (sharpe, benchmark, skew, kurtosis)):
        return math.nan
    spread = 1 - skew * sharpe + (kurtosis - 1) / 4 * sharpe**2
    if spread <= 0:
        return math.nan
    return _NORMAL.cdf((sharpe - benchmark) * math.sqrt(n_obs - 1) / math.sqrt(spread))


def deflated_sharpe_ratio(sharpe: float, n_obs: int, n_trials: int, sharpe_variance: float, skew: float,
                          kurtosis: float) -> float:
    """``DSR``: the probabilistic Sharpe ratio against ``expected_max_sharpe(n_trials,
    sharpe_variance)`` (see the module docstring). All Sharpe ratios per period, not annualised."""
    benchmark = expected_max_sharpe(n_trials, sharpe_variance)
    return probabilistic_sharpe_ratio(sharpe, benchmark, n_obs, skew, kurtosis)


# -------------------------------------------------------------------------------------------- CSCV


@dataclass(frozen=True, eq=False)
class CSCVResult:
    """The outcome of ``cscv``: ``pbo``; per combination the ``logits`` (lambda), the in-sample winner
    ``best`` (column index), its in-sample and out-of-sample Sharpe ratios; ``partitions`` (S) and the
    matrix's ``rows`` (T) and ``trials`` (N)."""

    pbo: float
    logits: np.ndarray
    best: np.ndarray
    in_sample: np.ndarray
    out_of_sample: np.ndarray
    partitions: int
    rows: int
    trials: int

    @property
    def combinations(self) -> int:
        return int(self.logits.size)


def cscv_combinations(partitions: int) -> np.ndarray:
    """Every choice of ``partitions / 2`` in-sample blocks out of ``partitions``, as a 0/1 matrix of
    shape ``(C(S, S/2), S)`` (in ``itertools.combinations`` order)."""
    if partitions < 2 or partitions % 2:
        raise ValueError(f"The value of `partitions` is {partitions}, but must be even and `>= 2`.")
    chosen = list(combinations(range(partitions), partitions // 2))
    out = np.zeros((len(chosen), partitions), dtype="float64")
    for i, blocks in enumerate(chosen):
        out[i, list(blocks)] = 1.0
    return out


def _sharpe_of_sums(total: np.ndarray, squares: np.ndarray, count: np.ndarray,
                    centre: np.ndarray) -> np.ndarray:
    """Sharpe ratios from the sums of ``count`` returns and of their squares, both taken after
    subtracting ``centre`` (each trial's overall mean); 0 where the returns do not vary (a trial that
    never trades neither wins nor loses)."""
    shifted = total / count
    variance = np.clip((squares - count * shifted**2) / (count - 1), 0.0, None)
    std = np.sqrt(variance)
    mean = shifted + centre
    flat = std <= 1e-9 * (np.abs(mean) + np.sqrt(squares / count) + 1e-300)
    return np.where(flat, 0.0, mean / np.where(flat, 1.0, std))


def cscv(returns: np.ndarray, partitions: int = 16) -> CSCVResult:
    """The probability of backtest overfitting of ``returns`` (``T x N``: a row per time, a column per
    trial, in time order) by CSCV with ``partitions`` blocks (see the module docstring). Blocks are
    consecutive rows, as equal as ``T`` allows (``numpy.array_split``). The in-sample winner is the
    first of the trials with the highest Sharpe ratio; ties out of sample share their mean rank."""
    matrix = np.asarray(returns, dtype="float64")
    if matrix.ndim != 2:
        raise ValueError(f"The value of `returns` has shape {matrix.shape}, but must be (rows, trials).")
    rows, trials = matrix.shape
    if trials < 2:
        raise ValueError(f"The value of `returns` has {trials} trial column(s), but CSCV needs `>= 2`.")
    if rows < 2 * partitions:
        raise ValueError(f"The value of `returns` has {rows} rows, but {partitions} partitions need "
                         f"`rows >= {2 * partitions}` (two rows a block).")
    if not np.isfinite(matrix).all():
        raise ValueError("The value of `returns` holds NaN or infinite values, but must be finite.")
    combos = cscv_combinations(partitions)
    # centre each trial on its mean: sums of squares stay accurate, Sharpe ratios shift back below
    centre = matrix.mean(axis=0)
    centred = matrix - centre
    blocks = np.array_split(np.arange(rows), partitions)
    total = np.stack([centred[b].sum(axis=0) for b in blocks])            # (S, N)
    squares = np.stack([(centred[b] ** 2).sum(axis=0) for b in blocks])    # (S, N)
    count = np.array([b.size for b in blocks], dtype="float64")[:, None]   # (S, 1)
    halves = [_sharpe_of_sums(chosen @ total, chosen @ squares, chosen @ count, centre)
              for chosen in (combos, 1.0 - combos)]
    in_sample, out_of_sample = halves
    best = np.argmax(in_sample, axis=1)
    index = np.arange(combos.shape[0])
    chosen_oos = out_of_sample[index, best][:, None]
    rank = (out_of_sample < chosen_oos).sum(axis=1) + ((out_of_sample == chosen_oos).sum(axis=1) + 1) / 2
    omega = rank / (trials + 1)
    logits = np.log(omega / (1 - omega))
    return CSCVResult(
        pbo=float(np.mean(logits <= 0)), logits=logits, best=best, in_sample=in_sample[index, best],
        out_of_sample=out_of_sample[index, best], partitions=partitions, rows=rows, trials=trials,
    )


# ----------------------------------------------------------------------------- information coefficient


def _correlation_by_group(codes: np.ndarray, x: np.ndarray, y: np.ndarray, groups: int) -> np.ndarray:
    """Pearson correlation of ``x`` and ``y`` within each group (``codes`` 0..groups-1); NaN where a
    group has fewer than two rows or one side does not vary."""
    n = np.bincount(codes, minlength=groups).astype("float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = np.bincount(codes, x, groups) / n
        my = np.bincount(codes, y, groups) / n
        dx = x - mx[codes]
        dy = y - my[codes]
        sxy = np.bincount(codes, dx * dy, groups)
        sxx = np.bincount(codes, dx * dx, groups)
        syy = np.bincount(codes, dy * dy, groups)
        out = sxy / np.sqrt(sxx * syy)
    return np.where((n >= 2) & (sxx > 0) & (syy > 0), out, np.nan)


def information_coefficients(timestamps: pd.Series | pd.DatetimeIndex, prediction: np.ndarray,
                             reality: np.ndarray) -> pd.DataFrame:
    """Per UTC day (index: the day): ``ic`` (Pearson), ``rank_ic`` (Spearman, ties at their mean rank)
    and ``count`` of rows with both values finite."""
    times = pd.DatetimeIndex(timestamps)
    if times.tz is not None:
        times = times.tz_convert("UTC")
    p = np.asarray(prediction, dtype="float64")
    r = np.asarray(reality, dtype="float64")
    keep = np.isfinite(p) & np.isfinite(r)
    days = times[keep].floor("1D")
    if days.size == 0:
        return pd.DataFrame({"ic": [], "rank_ic": [], "count": []}, index=pd.DatetimeIndex([], tz="UTC"))
    codes, uniques = pd.factorize(days, sort=True)
    p, r = p[keep], r[keep]
    groups = len(uniques)
    ranks = pd.DataFrame({"g": codes, "p": p, "r": r}).groupby("g")[["p", "r"]].rank(method="average")
    return pd.DataFrame(
        {
            "ic": _correlation_by_group(codes, p, r, groups),
            "rank_ic": _correlation_by_group(codes, ranks["p"].to_numpy("float64"),
                                             ranks["r"].to_numpy("float64"), groups),
            "count": np.bincount(codes, minlength=groups),
        },
        index=pd.DatetimeIndex(uniques, name="day"),
    )


def information_summary(daily: pd.DataFrame) -> dict[str, float]:
    """``ic``, ``icir``, ``rank_ic``, ``rank_icir`` (mean over days; mean / std with ``ddof=1``, NaN with
    fewer than two days) and ``days`` of ``information_coefficients``' table."""
    out: dict[str, float] = {"days": float(len(daily))}
    for column, mean_name, ir_name in (("ic", "ic", "icir"), ("rank_ic", "rank_ic", "rank_icir")):
        values = daily[column].dropna().to_numpy("float64") if len(daily) else np.zeros(0)
        mean = float(values.mean()) if values.size else math.nan
        std = float(values.std(ddof=1)) if values.size > 1 else math.nan
        out[mean_name] = mean
        out[ir_name] = mean / std if std and math.isfinite(std) and std > 0 else math.nan
    return out
