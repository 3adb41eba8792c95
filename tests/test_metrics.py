"""Summary metrics against scikit-learn on real predictions: logistic and linear regressions fitted on
Coinbase minute returns (../shared/data), and the edge cases that must give NaN or inf, never raise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    precision_recall_fscore_support,
    roc_auc_score,
)

from atlas_ray import metrics
from atlas_ray.featurestore import FeatureLabelSet, LogReturns, MarketStore, SplitPart, TimeSplit
from atlas_ray.featurestore._featuresets._prepared import Task
from atlas_ray.metrics import (
    REGRESSOR_METRICS,
    classifier_metric_names,
    classifier_metrics,
    regressor_metrics,
)
from tests.search.zoo_data import MinuteData, load_minute_data


@pytest.fixture(scope="module")
def data(data_dir: Path) -> MinuteData:
    return load_minute_data(data_dir)


def _fitted_proba(data: MinuteData, task: Task) -> tuple[np.ndarray, np.ndarray]:
    parts = data.parts(task, windowed=False)
    model = LogisticRegression(max_iter=500).fit(parts["train"].X, parts["train"].y)
    return parts["test"].y, model.predict_proba(parts["test"].X)


def _sklearn_rates(y: np.ndarray, predicted: np.ndarray, n_classes: int) -> dict[str, np.ndarray]:
    matrix = confusion_matrix(y, predicted, labels=list(range(n_classes)))
    tp = np.diag(matrix).astype(float)
    fn = matrix.sum(axis=1) - tp
    fp = matrix.sum(axis=0) - tp
    tn = matrix.sum() - tp - fn - fp
    with np.errstate(divide="ignore", invalid="ignore"):
        return {"npv": tn / (tn + fn), "tnr": tn / (tn + fp)}


@pytest.mark.parametrize("task", [Task.MULTICLASS, Task.BINARY])
def test_classifier_metrics_match_scikit_learn(data: MinuteData, task: Task) -> None:
    y, proba = _fitted_proba(data, task)
    classes = data.classes[task.value]
    predicted = proba.argmax(axis=1)
    metrics = classifier_metrics(y, proba, classes)
    assert list(metrics) == list(classifier_metric_names(classes))
    assert metrics["accuracy"] == pytest.approx(accuracy_score(y, predicted))
    assert metrics["loss"] == pytest.approx(log_loss(y, proba), rel=1e-6)
    if task is Task.MULTICLASS:
        expected_auc = roc_auc_score(y, proba, multi_class="ovr", average="macro")
    else:
        expected_auc = roc_auc_score(y, proba[:, 1])
    assert metrics["auc"] == pytest.approx(expected_auc, rel=1e-9)
    precision, recall, _, _ = precision_recall_fscore_support(
        y, predicted, labels=list(range(len(classes))), zero_division=np.nan
    )
    rates = _sklearn_rates(y, predicted, len(classes))
    for index, name in enumerate(classes):
        assert metrics[f"precision[{name}]"] == pytest.approx(precision[index], nan_ok=True)
        assert metrics[f"tpr[{name}]"] == pytest.approx(recall[index])
        assert metrics[f"npv[{name}]"] == pytest.approx(rates["npv"][index])
        assert metrics[f"tnr[{name}]"] == pytest.approx(rates["tnr"][index])
        assert metrics[f"lr_plus[{name}]"] == pytest.approx(recall[index] / (1 - rates["tnr"][index]))
        assert metrics[f"lr_minus[{name}]"] == pytest.approx((1 - recall[index]) / rates["tnr"][index])
    assert metrics["auc"] > 0.5  # a real, if weak, signal in minute returns: the test sees real models


def test_binary_probability_shapes_agree(data: MinuteData) -> None:
    y, proba = _fitted_proba(data, Task.BINARY)
    classes = data.classes[Task.BINARY.value]
    by_matrix = classifier_metrics(y, proba, classes, loss=0.5)
    assert by_matrix["loss"] == 0.5
    for shaped in (proba[:, 1], proba[:, 1:2]):
        same = classifier_metrics(y, shaped, classes, loss=0.5)
        assert same == pytest.approx(by_matrix, nan_ok=True)


def test_undefined_classifier_metrics_are_nan_or_inf_never_raise() -> None:
    classes = ("down", "flat", "up")
    y = np.array([0, 0, 2, 2])  # "flat" never occurs
    proba = np.array([[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.1, 0.2, 0.7], [0.2, 0.1, 0.7]])
    metrics = classifier_metrics(y, proba, classes)
    assert metrics["accuracy"] == 1.0
    assert np.isnan(metrics["auc"])  # one-vs-rest AUC of an absent class is undefined
    assert np.isnan(metrics["precision[flat]"]) and np.isnan(metrics["tpr[flat]"])
    assert metrics["tnr[flat]"] == 1.0
    assert metrics["lr_plus[up]"] == np.inf  # perfect: TPR 1, no false positives
    assert metrics["lr_minus[up]"] == 0.0
    assert np.isnan(metrics["lr_plus[flat]"])  # TPR undefined
    # every row predicted "up": TNR of "up" is 0, so lr_minus[up] = (1 - 1) / 0 is 0/0
    everything_up = classifier_metrics(np.array([0, 2]), np.array([[0.1, 0.1, 0.8]] * 2), classes)
    assert np.isnan(everything_up["lr_minus[up]"]) and everything_up["lr_plus[up]"] == 1.0
    assert everything_up["lr_minus[down]"] == 1.0 and np.isnan(everything_up["precision[down]"])
    empty = classifier_metrics(np.array([], dtype=int), np.empty((0, 3)), classes)
    assert all(np.isnan(value) for value in empty.values())
    diverged = classifier_metrics(y, np.full((4, 3), np.nan), classes, loss=float("nan"))
    assert set(diverged) == set(classifier_metric_names(classes))
    assert all(np.isnan(value) for value in diverged.values())


def test_regressor_metrics_match_scikit_learn(data: MinuteData) -> None:
    parts = data.parts(Task.REGRESSION, windowed=False)
    model = LinearRegression().fit(parts["train"].X, parts["train"].y)
    y, label_value = parts["test"].y.astype(float), parts["test"].label_value
    predicted = model.predict(parts["test"].X)
    metrics = regressor_metrics(y, predicted.reshape(-1, 1), label_value=label_value)
    assert tuple(metrics) == REGRESSOR_METRICS
    assert metrics["mse"] == pytest.approx(mean_squared_error(y, predicted))
    assert metrics["loss"] == metrics["mse"]
    assert metrics["mae"] == pytest.approx(mean_absolute_error(y, predicted))
    moved = y != 0
    expected_sign = accuracy_score(np.sign(y[moved]), np.sign(predicted[moved]))
    assert metrics["sign_accuracy"] == pytest.approx(expected_sign)
    assert metrics["persistence_mse"] == pytest.approx(mean_squared_error(y[1:], label_value[:-1]))
    assert metrics["zero_mse"] == pytest.approx(mean_squared_error(y, np.zeros_like(y)))
    three = regressor_metrics(y, predicted, label_value=label_value, horizon=3, loss=1.5)
    assert three["persistence_mse"] == pytest.approx(mean_squared_error(y[3:], label_value[:-3]))
    assert three["loss"] == 1.5
    by_default = regressor_metrics(y, predicted)["persistence_mse"]  # label_value defaults to y_true
    assert by_default == pytest.approx(metrics["persistence_mse"], rel=1e-5)


def test_undefined_regressor_metrics_are_nan_never_raise() -> None:
    empty = regressor_metrics(np.array([]), np.array([]))
    assert all(np.isnan(value) for value in empty.values())
    flat = regressor_metrics(np.zeros(3), np.array([0.1, -0.1, 0.0]))
    assert np.isnan(flat["sign_accuracy"]) and flat["zero_mse"] == 0.0
    short = regressor_metrics(np.array([1.0]), np.array([1.0]))
    assert np.isnan(short["persistence_mse"]) and short["sign_accuracy"] == 1.0
    diverged = regressor_metrics(np.array([1.0, -1.0]), np.array([np.nan, 1.0]))
    assert np.isnan(diverged["mse"]) and np.isnan(diverged["sign_accuracy"]) and diverged["zero_mse"] == 1.0
    with pytest.raises(ValueError, match=r"`horizon` is 0, but must be an integer `horizon >= 1`"):
        regressor_metrics(np.ones(3), np.ones(3), horizon=0)


# ---------------------------------------------------------------------------- multi-bar label backtests
def test_a_multi_bar_label_counts_each_bar_once() -> None:
    """Bar returns r; a 3-bar label at row i is r[i+1] + r[i+2] + r[i+3]. Always long, the held
    backtest earns the sum of the bar returns it spans once; crediting every row would count it ~3x."""
    rng = np.random.default_rng(3)
    bars = rng.normal(0, 1e-3, 40)
    h = 3
    label = np.array([bars[i + 1 : i + 1 + h].sum() for i in range(len(bars) - h)])
    long = np.ones(label.size)
    gross = metrics.held_gross(long, label, h)
    taken = np.arange(label.size) % h == 0
    assert np.count_nonzero(gross) == taken.sum()
    spanned = bars[1 : 1 + h * int(taken.sum())].sum()
    assert gross.sum() == pytest.approx(spanned)
    steady = np.full(label.size, 1e-3 * h)  # every bar returns 1e-3: the label is 3e-3 on each row
    assert metrics.held_gross(long, steady, h).sum() == pytest.approx(1e-3 * h * taken.sum())
    assert (long * steady).sum() == pytest.approx(1e-3 * h * label.size)  # each bar counted ~3 times


def test_held_positions_keep_each_decision_for_its_horizon() -> None:
    signal = np.array([1.0, -1.0, 0.0, -1.0, 1.0, 1.0, -1.0])
    np.testing.assert_array_equal(metrics.held_positions(signal, 3), [1, 1, 1, -1, -1, -1, -1])
    np.testing.assert_array_equal(metrics.held_positions(signal, 1), signal)
    np.testing.assert_array_equal(metrics.held_gross(signal, np.ones(7), 1), signal)
    with pytest.raises(ValueError, match="horizon"):
        metrics.held_positions(signal, 0)


def test_label_horizon_reads_the_feature_name() -> None:
    from atlas_ray.featurestore import LogReturns

    assert metrics.label_horizon(LogReturns().coinbase().one_min().lookforward(5).name) == 5
    assert metrics.label_horizon(LogReturns().coinbase().one_min().lookforward(1).name) == 1
    assert metrics.label_horizon("label") == 1


# ------------------------------------------------------------------------ the persistence baseline
FIVE_BAR = LogReturns().coinbase().one_min().lookforward(5)


@pytest.fixture(scope="module")
def five_bar(minute_store: MarketStore) -> SplitPart:
    """The validation part of a real 5-minute label over real Coinbase minute bars, built and prepared
    through the featurestore (rows missing where bars are missing)."""
    fls = FeatureLabelSet([LogReturns().coinbase().one_min().lookback(1)], [FIVE_BAR])
    frame = fls.build_local("2023-03-09", "2023-03-12", minute_store)
    return fls.prepare(frame, TimeSplit(0.4, 0.5, 0.1)).validation


def test_persistence_is_the_last_realised_return_by_brute_force(five_bar: SplitPart, data_dir: Path) -> None:
    """Row at bar t: persistence predicts log(close[t] / close[t - 5]), the return realised at t,
    which is the label of the row stamped t - 5 minutes; a loop over the rows finds the same mse."""
    horizon, bar = metrics.label_horizon(FIVE_BAR.name), metrics.label_bar(FIVE_BAR.name)
    assert horizon == 5 and bar == np.timedelta64(60, "s")
    stamps, value = five_bar.index, five_bar.label_value
    forecast = metrics.persistence_forecast(value, horizon, index=stamps, bar=bar)
    close = pd.read_parquet(data_dir / "minute_bars_2023-03" / "coinbase_btcusd.parquet")["close"]
    close = close.astype("float64").groupby(level=0).last()
    by_time = dict(zip(stamps, value, strict=True))
    step = pd.Timedelta(minutes=5)
    errors, realised = [], 0
    for i, t in enumerate(stamps):
        earlier = by_time.get(t - step)
        if earlier is None:
            assert np.isnan(forecast[i])
            continue
        assert forecast[i] == earlier
        errors.append((five_bar.y[i] - earlier) ** 2)
        if t in close.index and t - step in close.index:  # both bars stored: the return from the bars
            assert earlier == pytest.approx(np.log(close[t] / close[t - step]), abs=1e-12)
            realised += 1
    assert realised > 1000 and len(errors) < len(stamps)  # real gaps: some rows have no realised value
    found = metrics.regressor_metrics(five_bar.y, np.zeros(len(five_bar)), label_value=value,
                                      horizon=horizon, index=stamps, bar=bar)
    assert found["persistence_mse"] == pytest.approx(np.mean(errors), rel=1e-6)
    consecutive = metrics.persistence_forecast(value, horizon)  # no times: row i - 5
    np.testing.assert_array_equal(consecutive[5:], value[:-5])


def test_the_old_rule_flattered_persistence_on_a_random_walk() -> None:
    """Issue 26: a 5-bar label over a random walk. The label one row back (the old rule) overlaps the
    label by 4 bars: persistence looked ~2.5x better than predicting zero; the last realised 5-bar
    return is independent of the next one, so persistence is ~2x worse than zero."""
    rng = np.random.default_rng(26)
    log_price = np.cumsum(rng.normal(0.0, 1e-3, 20_005))
    label = log_price[5:] - log_price[:-5]  # row t: log(c[t + 5] / c[t])
    zero = metrics.regressor_metrics(label, np.zeros(label.size))["zero_mse"]
    old = metrics.regressor_metrics(label, np.zeros(label.size), horizon=1)["persistence_mse"]
    honest = metrics.regressor_metrics(label, np.zeros(label.size), horizon=5)["persistence_mse"]
    print(f"5-bar random walk: zero {zero:.3g}, old persistence {old:.3g} ({zero / old:.2f}x better), "
          f"honest persistence {honest:.3g} ({honest / zero:.2f}x worse)")
    assert zero / old > 2.0  # the old rule: far better than predicting zero
    assert 1.7 < honest / zero < 2.3  # the honest one: about twice as bad
    stamps = np.datetime64("2023-03-01T00:00", "ns") + np.arange(label.size) * np.timedelta64(1, "m")
    timed = metrics.regressor_metrics(label, np.zeros(label.size), horizon=5, index=stamps,
                                      bar=np.timedelta64(1, "m"))
    assert timed["persistence_mse"] == pytest.approx(honest)
