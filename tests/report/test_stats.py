"""Atlas' statistics against scikit-learn, on real predictions of real models on real minute bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from atlas_ray import metrics
from atlas_ray.report import stats


def _classifier_inputs(result, split="test"):
    frame = stats.split_predictions(result, split)
    y_true = stats.class_codes(frame["reality"], result.classes)
    y_pred = stats.class_codes(frame["prediction"], result.classes)
    return frame, y_true, y_pred, stats.probabilities(frame, result.classes)


@pytest.fixture(scope="module")
def multiclass(by_id):
    return by_id["sgd_00001"]


@pytest.fixture(scope="module")
def binary(by_id):
    return by_id["binlogit_00012"]


def test_confusion_matrix_and_accuracy_match_sklearn(multiclass):
    _, y_true, y_pred, _ = _classifier_inputs(multiclass)
    assert (y_true >= 0).all() and (y_pred >= 0).all()
    expected = skm.confusion_matrix(y_true, y_pred, labels=[0, 1, 2])
    np.testing.assert_array_equal(stats.confusion_matrix(y_true, y_pred, 3), expected)
    assert stats.accuracy(y_true, y_pred) == pytest.approx(skm.accuracy_score(y_true, y_pred))


def test_class_statistics_match_sklearn(multiclass):
    _, y_true, y_pred, _ = _classifier_inputs(multiclass)
    table = stats.class_statistics(y_true, y_pred, multiclass.classes)
    labels = [0, 1, 2]
    np.testing.assert_allclose(table["predictive_value"], skm.precision_score(
        y_true, y_pred, labels=labels, average=None, zero_division=np.nan))
    np.testing.assert_allclose(table["tpr"], skm.recall_score(y_true, y_pred, labels=labels, average=None))
    for c, name in enumerate(multiclass.classes):
        truth, predicted = y_true == c, y_pred == c
        tnr = skm.recall_score(~truth, ~predicted)
        npv = skm.precision_score(~truth, ~predicted)
        lr_plus, lr_minus = skm.class_likelihood_ratios(truth, predicted)
        row = table.loc[name]
        assert row["tnr"] == pytest.approx(tnr)
        assert row["npv"] == pytest.approx(npv)
        assert row["lr_plus"] == pytest.approx(lr_plus)
        assert row["lr_minus"] == pytest.approx(lr_minus)
        assert row["prevalence"] == pytest.approx(truth.mean())
        assert row["positive_rate"] == pytest.approx(predicted.mean())
    rate, value = table["positive_rate"].to_numpy(), table["predictive_value"].to_numpy()
    atlas = stats.atlas_likelihood_ratio(rate, value)
    np.testing.assert_allclose(atlas, table["positive_rate"] / (1 - table["predictive_value"]))


def test_roc_and_auc_match_sklearn(multiclass, binary):
    _, y_true, _, probs = _classifier_inputs(multiclass)
    for c in range(3):
        fpr, tpr, thresholds = stats.roc_curve(y_true == c, probs[:, c])
        e_fpr, e_tpr, e_thr = skm.roc_curve(y_true == c, probs[:, c], drop_intermediate=False)
        np.testing.assert_allclose(fpr, e_fpr)
        np.testing.assert_allclose(tpr, e_tpr)
        np.testing.assert_allclose(thresholds, e_thr)
        expected = skm.roc_auc_score(y_true == c, probs[:, c])
        assert stats.roc_auc(y_true == c, probs[:, c]) == pytest.approx(expected)
    assert stats.macro_auc(y_true, probs) == pytest.approx(
        skm.roc_auc_score(y_true, probs, multi_class="ovr", average="macro"))
    _, b_true, _, b_probs = _classifier_inputs(binary)
    assert stats.macro_auc(b_true, b_probs) == pytest.approx(skm.roc_auc_score(b_true, b_probs[:, 1]))
    assert stats.auc(fpr, tpr) == pytest.approx(skm.auc(fpr, tpr))


def test_precision_recall_curve_matches_sklearn(multiclass):
    _, y_true, _, probs = _classifier_inputs(multiclass)
    for c in range(3):
        precision, recall, thresholds = stats.precision_recall_curve(y_true == c, probs[:, c])
        e_p, e_r, e_t = skm.precision_recall_curve(y_true == c, probs[:, c])
        np.testing.assert_allclose(precision, e_p)
        np.testing.assert_allclose(recall, e_r)
        np.testing.assert_allclose(thresholds, e_t)


def test_thresholding_and_confidence_tables(multiclass):
    _, y_true, _, probs = _classifier_inputs(multiclass)
    confident = stats.threshold_predictions(probs, 0.45)
    sure = probs.max(axis=1) >= 0.45
    assert 0 < sure.sum() < len(sure)
    np.testing.assert_array_equal(confident[sure], probs[sure].argmax(axis=1))
    assert (confident[~sure] == -1).all()
    with pytest.raises(ValueError, match=r"`confidence` is 1.5, but must be `0 <= confidence <= 1`"):
        stats.threshold_predictions(probs, 1.5)

    table = stats.confidence_thresholds(y_true, probs, multiclass.classes, [0.0, 0.4])
    up = table[(table["class"] == "up") & (table["threshold"] == 0.0)].iloc[0]
    assert up["frequency"] == pytest.approx(1.0)
    assert up["precision"] == pytest.approx(np.mean(y_true == 2))
    up = table[(table["class"] == "up") & (table["threshold"] == 0.4)].iloc[0]
    predicted = probs[:, 2] >= 0.4
    assert up["frequency"] == pytest.approx(predicted.mean())
    assert up["precision"] == pytest.approx(skm.precision_score(y_true == 2, predicted))


def test_likelihood_ratio_curve_is_tpr_over_fpr(multiclass):
    _, y_true, _, probs = _classifier_inputs(multiclass)
    curve = stats.likelihood_ratio_curve(y_true == 0, probs[:, 0])
    assert 2 < len(curve) <= 200
    assert curve["frequency"].is_monotonic_increasing
    ok = curve["fpr"] > 0
    np.testing.assert_allclose(curve.loc[ok, "lr_plus"], curve.loc[ok, "tpr"] / curve.loc[ok, "fpr"])
    assert curve["frequency"].iloc[-1] == pytest.approx(1.0)
    assert curve["lr_plus"].iloc[-1] == pytest.approx(1.0)


def test_accuracy_and_hit_rate_over_time(multiclass):
    frame, y_true, y_pred, _ = _classifier_inputs(multiclass)
    correct = y_true == y_pred
    buckets = stats.accuracy_over_time(frame["timestamp"], correct, "6h")
    assert buckets["count"].sum() == len(frame)
    assert np.average(buckets["accuracy"], weights=buckets["count"]) == pytest.approx(correct.mean())
    assert (pd.Series(buckets.index).diff().dropna() >= pd.Timedelta("6h")).all()
    assert stats.choose_bucket(frame["timestamp"]) in stats.BUCKETS

    position = stats.positions(multiclass, frame)
    hits = stats.hit_rate_over_time(frame["timestamp"], position, frame["label_value"].to_numpy(), "6h")
    active = position != 0
    assert hits["trades"].sum() == active.sum()
    expected = np.mean(np.sign(position[active]) == np.sign(frame["label_value"].to_numpy()[active]))
    assert np.average(hits["hit_rate"], weights=hits["trades"]) == pytest.approx(expected)


def test_regression_statistics_match_sklearn(by_id):
    result = by_id["ridge_00013"]
    frame = stats.split_predictions(result, "test")
    p, r = frame["prediction"].to_numpy(), frame["reality"].to_numpy()
    values = stats.regression_statistics(p, r)
    assert values["mse"] == pytest.approx(skm.mean_squared_error(r, p))
    assert values["mae"] == pytest.approx(skm.mean_absolute_error(r, p))
    assert values["zero_mse"] == pytest.approx(skm.mean_squared_error(r, np.zeros_like(r)))
    assert values["persistence_mse"] == pytest.approx(skm.mean_squared_error(r[1:], r[:-1]))
    assert values["sign_accuracy"] == pytest.approx(skm.accuracy_score(np.sign(r), np.sign(p)))
    assert values["skill"] == pytest.approx(1 - values["mse"] / values["zero_mse"])


def test_the_report_persistence_is_the_search_persistence(by_id):
    """The report recomputes the persistence baseline from the stored predictions with the rule the
    search stores (``atlas_ray.metrics``): the last realised h-bar return, placed by the rows' times."""
    result = by_id["ridge_00013"]
    arrays = stats.trial_arrays(result)
    mask = arrays.mask("test")
    found = stats.result_regression_statistics(result, mask)
    stored_rule = metrics.regressor_metrics(
        arrays.y_true[mask], arrays.y_pred[mask], label_value=arrays.label_value[mask],
        horizon=stats.label_horizon(result.label), index=arrays.timestamps[mask],
        bar=stats.label_bar(result.label),
    )
    assert found["persistence_mse"] == pytest.approx(stored_rule["persistence_mse"])
    r = arrays.y_true[mask]
    three = stats.regression_statistics(arrays.y_pred[mask], r, horizon=3)  # no times: rows consecutive
    assert three["persistence_mse"] == pytest.approx(skm.mean_squared_error(r[3:], r[:-3]))


def test_backtest_by_hand_and_on_real_signal(multiclass):
    times = pd.date_range("2023-03-01", periods=4, freq="1min", tz="UTC")
    curve = stats.backtest(times, np.array([1, 1, -1, 0]), np.array([0.01, -0.02, -0.03, 0.05]), cost=0.001)
    np.testing.assert_allclose(curve["gross"], [0.01, -0.02, 0.03, 0.0])
    np.testing.assert_allclose(curve["cost"], [0.001, 0.0, 0.002, 0.001])
    np.testing.assert_allclose(curve["cumulative"], np.cumsum([0.009, -0.02, 0.028, -0.001]))
    summary = stats.backtest_summary(curve)
    assert summary["turnover"] == pytest.approx(4.0)
    assert summary["hit_rate"] == pytest.approx(2 / 3)
    assert summary["max_drawdown"] == pytest.approx(0.02)
    with pytest.raises(ValueError, match=r"`cost` is -1, but must be `cost >= 0`"):
        stats.backtest(times, np.zeros(4), np.zeros(4), cost=-1)

    frame = stats.split_predictions(multiclass, "test")
    position = stats.positions(multiclass, frame)
    assert set(np.unique(position)) <= {-1.0, 0.0, 1.0}
    predicted = frame["prediction"].astype(str).to_numpy()
    assert (position[predicted == "up"] == 1).all() and (position[predicted == "down"] == -1).all()
    assert (position[predicted == "flat"] == 0).all()
    label = frame["label_value"].to_numpy()
    real = stats.backtest(frame["timestamp"], position, label, cost=1e-4)
    turnover = np.abs(np.diff(np.r_[0.0, position])).sum()
    assert real["cumulative"].iloc[-1] == pytest.approx((position * label).sum() - 1e-4 * turnover)


def test_class_positions_by_name_and_by_order():
    np.testing.assert_array_equal(stats.class_positions(("down", "flat", "up")), [-1, 0, 1])
    np.testing.assert_array_equal(stats.class_positions(("UP", "Down")), [1, -1])
    np.testing.assert_array_equal(stats.class_positions(("q0", "q1", "q2", "q3")), [-1, 0, 0, 1])
    np.testing.assert_array_equal(stats.class_positions(("low", "high")), [-1, 1])


def test_degenerate_models_are_found(june_a):
    degenerate = {r.trial_id for r in june_a.results
                  if stats.is_degenerate(r, stats.split_predictions(r, "validation"))}
    assert degenerate == {"dummy_00009"}
