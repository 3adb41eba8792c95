"""From a trained model to its ResultsObject, and how the driver settles a trial's status (no Ray)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from atlas_ray.featurestore import FeatureLabelSet, LogReturns, MarketStore, TimeSplit
from atlas_ray.featurestore._featuresets._prepared import PreparedSet, Task
from atlas_ray.search import TrialIdentity, TrialStatus, load_model, read_result
from atlas_ray.search._gather import evaluate_trial, failed_result, read_status, settle_trial, unit_info
from atlas_ray.search._zoo import get_model
from tests.search import search_specs


def prepared_set(store: MarketStore, featureset: FeatureLabelSet) -> PreparedSet:
    frame = featureset.build_local("2023-03-02", "2023-03-03", store)
    return featureset.prepare(frame, TimeSplit(0.7, 0.15, 0.15))


def trained(prepared: PreparedSet, name: str = "dnn") -> object:
    model = get_model(name).build(
        {"hidden_units": [4], "seed": 1} if name == "dnn" else {"seed": 1},
        input_shape=tuple(prepared.train.X.shape[1:]),
        task=prepared.task,
        n_classes=prepared.n_classes,
        train_X=prepared.train.X,
    )
    model.fit(prepared.train.X, prepared.train.y, epochs=1, batch_size=512, verbose=0)
    return model


IDENTITY = TrialIdentity("exp", "specs/x.py", "direction", "dnn", "abc_00001", {"hidden_units": [4]}, 11)
CURVES = [{"epoch": 1, "loss": 1.1, "val_loss": 1.2}, {"epoch": 2, "loss": 1.0, "val_loss": 1.15}]


@pytest.fixture(scope="module")
def classifier(minute_store: MarketStore) -> PreparedSet:
    return prepared_set(minute_store, search_specs.direction())


def test_evaluated_classifier_round_trips(classifier: PreparedSet, tmp_path: Path) -> None:
    model = trained(classifier)
    directory = str(tmp_path / "trial")
    written = evaluate_trial(
        model, classifier, identity=IDENTITY, status=TrialStatus.RUNNING, curves=CURVES, directory=directory
    )
    result = read_result(directory)
    assert result.status is TrialStatus.RUNNING and result.epochs == 2
    assert result.identity == IDENTITY
    assert set(result.metrics) == {"train", "validation"}  # the test part stays sealed
    assert set(result.predictions["split"]) == {"train", "validation"}
    assert result.folds == () and result.finalized is None
    accuracy = written.metrics["validation"]["accuracy"]
    assert result.metrics["validation"]["accuracy"] == pytest.approx(accuracy)
    rows = result.predictions[result.predictions["split"] == "validation"]
    expected = np.asarray(model.predict(classifier.validation.X, verbose=0))
    np.testing.assert_allclose(rows[["prob_down", "prob_flat", "prob_up"]].to_numpy(), expected, rtol=1e-5)
    assert list(rows["prediction"]) == [classifier.classes[k] for k in expected.argmax(axis=1)]
    assert (np.asarray(load_model(result).predict(classifier.validation.X, verbose=0)) == expected).all()
    assert list(result.curves["epoch"]) == [1, 2]
    assert result.categories == classifier.categories and result.scaling == json.loads(
        json.dumps(classifier.scaling)
    )


def test_regressor_predictions_are_values(minute_store: MarketStore, tmp_path: Path) -> None:
    regression = FeatureLabelSet(search_specs.FEATURES, [search_specs.LABEL], categories=None)
    prepared = prepared_set(minute_store, regression)
    assert prepared.task is Task.REGRESSION
    directory = str(tmp_path / "trial")
    evaluate_trial(
        trained(prepared, "linear"),
        prepared,
        identity=IDENTITY,
        status=TrialStatus.COMPLETED,
        curves=CURVES,
        directory=directory,
    )
    result = read_result(directory)
    for name in ("mse", "mae", "sign_accuracy", "persistence_mse", "zero_mse"):
        assert name in result.metrics["validation"]
    assert result.predictions["prediction"].dtype == np.float64
    assert not any(c.startswith("prob_") for c in result.predictions.columns)


def test_a_multi_bar_label_stores_the_honest_persistence(minute_store: MarketStore, tmp_path: Path) -> None:
    """A 5-bar regression label: the stored ``persistence_mse`` predicts each row with the label of the
    row 5 bars earlier (the return realised at the bar), found by brute force over the predictions."""
    label = LogReturns().coinbase().one_min().lookforward(5)
    prepared = prepared_set(minute_store, FeatureLabelSet(search_specs.FEATURES, [label]))
    directory = str(tmp_path / "trial")
    evaluate_trial(trained(prepared, "linear"), prepared, identity=IDENTITY, status=TrialStatus.COMPLETED,
                   curves=CURVES, directory=directory)
    result = read_result(directory)
    frame = result.predictions[result.predictions["split"] == "validation"]
    by_time = dict(zip(frame["timestamp"], frame["label_value"], strict=True))
    errors = [(real - by_time[t - pd.Timedelta(minutes=5)]) ** 2
              for t, real in zip(frame["timestamp"], frame["reality"], strict=True)
              if t - pd.Timedelta(minutes=5) in by_time]
    assert 0 < len(errors) < len(frame)
    assert result.metrics["validation"]["persistence_mse"] == pytest.approx(np.mean(errors), rel=1e-6)
    one_row_back = np.mean(np.diff(frame["reality"].to_numpy()) ** 2)  # the old rule, for the record
    assert result.metrics["validation"]["persistence_mse"] > 2 * one_row_back


def test_settling_gives_the_final_status_once(classifier: PreparedSet, tmp_path: Path) -> None:
    directory = str(tmp_path / "trial")
    evaluate_trial(
        trained(classifier),
        classifier,
        identity=IDENTITY,
        status=TrialStatus.RUNNING,
        curves=CURVES[:1],
        directory=directory,
    )
    before = read_result(directory)
    assert settle_trial(directory, status=TrialStatus.STOPPED) is True
    after = read_result(directory)
    assert after.status is TrialStatus.STOPPED and after.metrics == before.metrics and after.epochs == 1
    # a settled trial is left alone (idempotent on resume), whatever is asked later
    text = Path(directory, "result.json").read_text()
    assert settle_trial(directory, status=TrialStatus.FAILED, error="late") is False
    assert Path(directory, "result.json").read_text() == text
    assert read_status(directory) == (TrialStatus.STOPPED, 1)


def test_a_trial_without_result_gets_its_failure(classifier: PreparedSet, tmp_path: Path) -> None:
    directory = str(tmp_path / "trial")
    assert read_status(directory) is None
    fallback = failed_result(
        unit_info(classifier), identity=IDENTITY, error="ValueError: boom", curves=CURVES[:1]
    )
    assert settle_trial(directory, status=TrialStatus.FAILED, error="ValueError: boom", fallback=fallback)
    result = read_result(directory)
    assert result.status is TrialStatus.FAILED and result.error == "ValueError: boom"
    assert result.model_path is None and result.metrics == {} and result.epochs == 1
    assert result.features == classifier.feature_names and result.classes == classifier.classes
    assert settle_trial(str(tmp_path / "other"), status=TrialStatus.STOPPED) is False
