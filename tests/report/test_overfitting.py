"""Selection-luck statistics: each one against a worked numeric example from its paper, and against a
brute-force computation on real backtests of real models (the report fixtures' validation rows)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate
from scipy import stats as sps

from atlas_ray.report import stats
from atlas_ray.report._luck import trial_returns

COST = 1e-4


@pytest.fixture(scope="module")
def real_returns(june_a) -> pd.DataFrame:
    """The validation net returns of every june_a trial with a backtest, brute force: position times the
    realised log return, less the cost of each change of position (the first entry from flat and the
    final exit to flat included, as ``atlas_ray.backtest`` charges them), on the rows in time order."""
    columns = {}
    for result in june_a.results:
        frame = result.predictions
        if frame.empty:
            continue
        frame = frame[frame["split"] == "validation"].sort_values("timestamp", kind="stable")
        if result.task.value == "regression":
            position = np.sign(frame["prediction"].to_numpy(float))
        else:
            meaning = {"down": -1.0, "flat": 0.0, "up": 1.0}
            position = frame["prediction"].astype(str).map(meaning).to_numpy(float)
        label = frame["label_value"].to_numpy(float)
        changes = np.abs(np.diff(np.concatenate([[0.0], position])))
        if len(changes):
            changes[-1] += abs(position[-1])  # the book is closed after the last row
        net = pd.Series(position * label - COST * changes, index=pd.DatetimeIndex(frame["timestamp"]))
        if net.std() > 0:
            columns[result.trial_id] = net
    return pd.DataFrame(columns)


# ------------------------------------------------------------------------------- deflated Sharpe ratio


def test_deflated_sharpe_matches_the_papers_numerical_example():
    """Bailey and López de Prado, "The Deflated Sharpe Ratio: Correcting for Selection Bias, Backtest
    Overfitting and Non-Normality", Journal of Portfolio Management 40(5) 94-107, 2014 (SSRN 2460551,
    https://www.davidhbailey.com/dhbpapers/deflated-sharpe.pdf), its numerical example: the best of
    N = 100 trials has an annualised Sharpe ratio of 2.5 over five years of daily returns (T = 1250,
    250 a year), the trials' annualised Sharpe ratios have variance 1/2, the returns skewness -3 and
    kurtosis 10. The paper finds SR0 = 0.1132 (non-annualised) and DSR = 0.9004."""
    sharpe = 2.5 / math.sqrt(250)
    variance = 0.5 / 250
    assert stats.expected_max_sharpe(100, variance) == pytest.approx(0.1132, abs=5e-5)
    dsr = stats.deflated_sharpe_ratio(sharpe, 1250, 100, variance, -3.0, 10.0)
    assert dsr == pytest.approx(0.9004, abs=5e-5)
    # a single trial is not deflated: the DSR is the probabilistic Sharpe ratio against zero
    assert stats.deflated_sharpe_ratio(sharpe, 1250, 1, variance, -3.0, 10.0) == pytest.approx(
        stats.probabilistic_sharpe_ratio(sharpe, 0.0, 1250, -3.0, 10.0))


def test_expected_max_sharpe_is_close_to_the_exact_expected_maximum():
    """The paper's SR0 approximates E[max of N standard normals] * sqrt(V); here against the exact
    integral of x N phi(x) Phi(x)^(N-1)."""
    for n in (10, 100, 1000):
        exact = integrate.quad(lambda x, n=n: x * n * sps.norm.pdf(x) * sps.norm.cdf(x) ** (n - 1), -12, 12,
                               limit=200)[0]
        assert stats.expected_max_sharpe(n, 4.0) == pytest.approx(2 * exact, rel=0.03)
    with pytest.raises(ValueError, match=r"`n_trials` is 0, but must be `n_trials >= 1`"):
        stats.expected_max_sharpe(0, 1.0)


def test_deflated_sharpe_by_brute_force_on_real_backtests(june_a, real_returns):
    sharpes = real_returns.mean() / real_returns.std(ddof=1)
    best = sharpes.idxmax()
    r = real_returns[best].to_numpy()
    z = (r - r.mean()) / r.std(ddof=0)
    skew, kurtosis = float(np.mean(z**3)), float(np.mean(z**4))
    assert skew == pytest.approx(sps.skew(r)) and kurtosis == pytest.approx(sps.kurtosis(r, fisher=False))
    n = len(sharpes)
    variance = float(np.var(sharpes.to_numpy(), ddof=1))
    g = 0.5772156649015329
    sr0 = math.sqrt(variance) * ((1 - g) * sps.norm.ppf(1 - 1 / n) + g * sps.norm.ppf(1 - 1 / (n * math.e)))
    sr = float(sharpes[best])
    spread = 1 - skew * sr + (kurtosis - 1) / 4 * sr**2
    dsr = sps.norm.cdf((sr - sr0) * math.sqrt(len(r) - 1) / math.sqrt(spread))

    assert stats.sharpe_ratio(r) == pytest.approx(sr)
    assert stats.return_moments(r) == pytest.approx((skew, kurtosis))
    found = stats.deflated_sharpe_ratio(sr, len(r), n, variance, skew, kurtosis)
    assert found == pytest.approx(dsr, rel=1e-9)
    # and the report's own path from ResultsObjects to returns gives the same series
    by_id = {result.trial_id: result for result in june_a.results}
    np.testing.assert_allclose(trial_returns(by_id[best], "validation", COST).to_numpy(), r)


# ------------------------------------------------------------------- probability of backtest overfitting


def _brute_force_cscv(matrix: np.ndarray, partitions: int) -> np.ndarray:
    """CSCV step by step, one combination at a time, with pandas Sharpe ratios and scipy's ranks."""
    blocks = np.array_split(np.arange(len(matrix)), partitions)
    logits = []
    for chosen in itertools.combinations(range(partitions), partitions // 2):
        inside = np.concatenate([blocks[i] for i in chosen])
        outside = np.concatenate([blocks[i] for i in range(partitions) if i not in chosen])
        j, j_bar = pd.DataFrame(matrix[inside]), pd.DataFrame(matrix[outside])
        r, r_bar = (j.mean() / j.std()).to_numpy(), (j_bar.mean() / j_bar.std()).to_numpy()
        winner = int(np.argmax(r))
        omega = sps.rankdata(r_bar)[winner] / (matrix.shape[1] + 1)
        logits.append(math.log(omega / (1 - omega)))
    return np.array(logits)


def test_pbo_by_brute_force_on_real_backtests(real_returns):
    assert real_returns.shape[1] >= 10
    for rows, partitions in ((real_returns.shape[0], 10), (600, 6)):
        matrix = real_returns.iloc[:rows].to_numpy()
        expected = _brute_force_cscv(matrix, partitions)
        found = stats.cscv(matrix, partitions)
        assert found.combinations == math.comb(partitions, partitions // 2) == len(expected)
        np.testing.assert_allclose(found.logits, expected, rtol=1e-9, atol=1e-12)
        assert found.pbo == pytest.approx(np.mean(expected <= 0))
    assert 0 < stats.cscv(real_returns.to_numpy(), 16).pbo < 1  # neither all luck nor all skill


def test_pbo_reproduces_the_papers_cases():
    """Bailey, Borwein, López de Prado and Zhu, "The Probability of Backtest Overfitting", Journal of
    Computational Finance 20(4), 2017 (SSRN 2326253; text at
    https://paperzz.com/doc/7375663/the-probability-of-backtest-overfitting), its CSCV: S = 16 blocks
    give C(16, 8) = 12,870 combinations, the in-sample winner's relative out-of-sample rank
    w = rank / (N + 1) has logit ln(w / (1 - w)), 0 at the median, and PBO is the share at or below 0.
    Its simulated setting, N(0, 1) returns of N = 100 trials over T = 1000 rows ("reference test case 1,
    high overfitting" in the R package pbo, github.com/mrbcuda/pbo): skill-less trials give about 1/2;
    trials of identical full-sample performance overfit fully (what one half gains the other loses:
    PBO = 1 exactly, every logit below 0); one trial with real skill among them gives 0."""
    assert stats.cscv_combinations(16).shape == (12_870, 16)
    assert (stats.cscv_combinations(16).sum(axis=1) == 8).all()
    rng = np.random.default_rng(2015)
    noise = rng.normal(0.0, 1.0, (1000, 100))
    same = noise - noise.mean(axis=0)
    full = stats.cscv(same, 16)
    assert full.combinations == 12_870 and full.pbo == 1.0
    assert (full.logits < 0).all()
    assert 0.3 < stats.cscv(noise, 16).pbo < 0.7
    skill = noise.copy()
    skill[:, 17] += 0.3
    assert stats.cscv(skill, 16).pbo == 0.0
    with pytest.raises(ValueError, match=r"`partitions` is 7, but must be even"):
        stats.cscv(noise, 7)
    with pytest.raises(ValueError, match=r"has 20 rows, but 16 partitions need `rows >= 32`"):
        stats.cscv(noise[:20], 16)


# --------------------------------------------------------------------------- information coefficient


def test_rank_ic_matches_the_worked_spearman_example():
    """The Spearman rank correlation worked example (Wikipedia, "Spearman's rank correlation coefficient",
    Example; mirrored at http://www.liquisearch.com/spearmans_rank_correlation_coefficient/example):
    IQ against hours of TV a week for 10 people, sum of squared rank differences 194, so
    rho = 1 - 6 * 194 / (10 * 99) = -29/165 = -0.175757..."""
    iq = np.array([106, 86, 100, 101, 99, 103, 97, 113, 112, 110], dtype=float)
    tv = np.array([7, 0, 27, 50, 28, 29, 20, 12, 6, 17], dtype=float)
    times = pd.date_range("2023-03-15 00:00", periods=10, freq="1min", tz="UTC")
    daily = stats.information_coefficients(times, iq, tv)
    assert len(daily) == 1 and daily["count"].iloc[0] == 10
    assert daily["rank_ic"].iloc[0] == pytest.approx(-29 / 165)
    pearson = np.sum((iq - iq.mean()) * (tv - tv.mean())) / math.sqrt(
        np.sum((iq - iq.mean()) ** 2) * np.sum((tv - tv.mean()) ** 2))
    assert daily["ic"].iloc[0] == pytest.approx(pearson)
    summary = stats.information_summary(daily)
    assert summary["days"] == 1 and math.isnan(summary["icir"])  # one day has no spread


def test_ic_by_brute_force_on_a_real_regressor(by_id):
    """As qlib's calc_ic: per day, pandas' Pearson and Spearman correlation of prediction and label;
    ICIR = mean / std over the days."""
    frame = by_id["ridge_00013"].predictions
    frame = frame[frame["split"] == "validation"]
    day = pd.DatetimeIndex(frame["timestamp"]).floor("1D")
    grouped = frame.assign(day=day).groupby("day")
    ic = grouped.apply(lambda d: d["prediction"].corr(d["reality"]))
    rank_ic = grouped.apply(lambda d: d["prediction"].corr(d["reality"], method="spearman"))
    daily = stats.information_coefficients(frame["timestamp"], frame["prediction"].to_numpy(),
                                           frame["reality"].to_numpy())
    assert len(daily) == 3  # 15 to 17 March
    np.testing.assert_allclose(daily["ic"].to_numpy(), ic.to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(daily["rank_ic"].to_numpy(), rank_ic.to_numpy(), rtol=1e-9)
    summary = stats.information_summary(daily)
    assert summary["ic"] == pytest.approx(ic.mean())
    assert summary["icir"] == pytest.approx(ic.mean() / ic.std())
    assert summary["rank_icir"] == pytest.approx(rank_ic.mean() / rank_ic.std())
