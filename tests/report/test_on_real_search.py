"""The report on a small real atlas_ray search: statistics against scikit-learn on its predictions,
every plot rendered on its ResultsObjects, and the page built from its experiment directory.

The search is real: the June features on one day of real Coinbase / Kraken minute bars, a 3-class
unit (two DNNs and a logistic model) and a regression unit (a DNN regressor and a linear model),
trained on a real local Ray cluster with ASHA.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from ray import tune
from sklearn import metrics as skm

from atlas_ray import report
from atlas_ray.experiment import ResultsObject, TrialStatus
from atlas_ray.featurestore import FeatureLabelSet, TimeSplit
from atlas_ray.featurestore._featuresets._prepared import Task
from atlas_ray.report import stats
from atlas_ray.search import ASHA, Mode, ModelSpec, Resources, WorkSpec, WorkUnit, load_results, run
from atlas_ray.search._finalize import finalize
from tests.search import search_specs

pytestmark = pytest.mark.slow  # runs a whole search: not in scripts/test.sh --quick

MAX_T = 2


@pytest.fixture(scope="module")
def real_search(ray_cluster: None, minute_store, tmp_path_factory: pytest.TempPathFactory) -> Path:
    regression = FeatureLabelSet(search_specs.FEATURES, [search_specs.LABEL])
    units = [
        WorkUnit(
            "direction",
            featureset=search_specs.direction(),
            start="2023-03-01",
            end="2023-03-02",
            split=TimeSplit(train=0.7, validation=0.15, test=0.15),
            models=[
                ModelSpec("dnn", "dnn", {"hidden_units": tune.choice([[3], [6]]), "batch_size": 256},
                          num_samples=2),
                ModelSpec("logistic", "logistic", {"l2": 1e-4, "batch_size": 256}),
            ],
        ),
        WorkUnit(
            "returns",
            featureset=regression,
            start="2023-03-01",
            end="2023-03-02",
            split=TimeSplit(train=0.7, validation=0.15, test=0.15),
            models=[
                ModelSpec("dnn_regressor", "dnn", {"hidden_units": [6], "batch_size": 256}),
                ModelSpec("linear", "linear", {"batch_size": 256}),
            ],
        ),
    ]
    spec = WorkSpec(
        name="report_real",
        units=units,
        scheduler=ASHA(max_t=MAX_T, grace_period=1, reduction_factor=2, metric="val_loss", mode=Mode.MIN),
        resources=Resources(cpu=1),
        seed=11,
    )
    storage = tmp_path_factory.mktemp("report_real")
    experiment = run(spec, storage=str(storage), store=minute_store, spec_path="report_real.py",
                     out=io.StringIO())
    # The search never evaluates the test part; open it once for every trial, as a user would.
    finalize(experiment, top=5, spec=spec, store=minute_store, out=io.StringIO())
    return Path(experiment)


@pytest.fixture(scope="module")
def results(real_search: Path) -> list[ResultsObject]:
    found = load_results(str(real_search))
    assert len(found) == 5
    assert all(r.status in (TrialStatus.COMPLETED, TrialStatus.STOPPED) for r in found), [
        (r.trial_id, r.error) for r in found
    ]
    return found


def classifiers(results: list[ResultsObject]) -> list[ResultsObject]:
    return [r for r in results if r.task is Task.MULTICLASS]


def regressors(results: list[ResultsObject]) -> list[ResultsObject]:
    return [r for r in results if r.task is Task.REGRESSION]


def not_blank(figure: Figure) -> None:
    figure.canvas.draw()
    pixels = np.asarray(figure.canvas.buffer_rgba())[..., :3]  # type: ignore[attr-defined]
    assert pixels.std() > 10, "the figure is blank"
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20


def test_the_report_reads_the_search_as_the_search_does(real_search: Path, results) -> None:
    experiment = report.load_experiment_for_report(str(real_search))
    assert experiment.missing == ()
    assert sorted(r.trial_id for r in experiment.results) == sorted(r.trial_id for r in results)
    assert experiment.metric == "val_loss"
    assert report.asha_settings(experiment.meta)[0] == MAX_T


def test_classifier_statistics_match_sklearn_on_search_predictions(results) -> None:
    # on validation rows: the search keeps the test part sealed until a trial is finalised
    assert len(classifiers(results)) == 3
    for result in classifiers(results):
        frame = stats.split_predictions(result, "validation")
        y_true = stats.class_codes(frame["reality"], result.classes)
        y_pred = stats.class_codes(frame["prediction"], result.classes)
        probs = stats.probabilities(frame, result.classes)
        assert probs is not None and len(frame) > 100
        np.testing.assert_array_equal(
            stats.confusion_matrix(y_true, y_pred, 3), skm.confusion_matrix(y_true, y_pred, labels=[0, 1, 2])
        )
        assert stats.accuracy(y_true, y_pred) == pytest.approx(skm.accuracy_score(y_true, y_pred))
        table = stats.class_statistics(y_true, y_pred, result.classes)
        expected_tpr = skm.recall_score(y_true, y_pred, labels=[0, 1, 2], average=None, zero_division=np.nan)
        np.testing.assert_allclose(table["tpr"], expected_tpr)
        assert stats.macro_auc(y_true, probs) == pytest.approx(
            skm.roc_auc_score(y_true, probs, labels=[0, 1, 2], multi_class="ovr", average="macro")
        )
        # the search's own summary metrics agree with the report's statistics
        assert result.metric("accuracy", "validation") == pytest.approx(stats.accuracy(y_true, y_pred))


def test_regressor_statistics_match_sklearn_on_search_predictions(results) -> None:
    assert len(regressors(results)) == 2
    for result in regressors(results):
        frame = stats.split_predictions(result, "validation")
        prediction = frame["prediction"].to_numpy(float)
        reality = frame["reality"].to_numpy(float)
        found = stats.regression_statistics(prediction, reality)
        assert found["mse"] == pytest.approx(skm.mean_squared_error(reality, prediction))
        assert found["mae"] == pytest.approx(skm.mean_absolute_error(reality, prediction))
        assert result.metric("mse", "validation") == pytest.approx(found["mse"], rel=1e-4)


def test_every_plot_renders_on_search_results(results) -> None:
    best_classifier, best_regressor = classifiers(results)[0], regressors(results)[0]
    figures = [
        report.classifier_baseball_card(best_classifier),
        report.regressor_baseball_card(best_regressor),
        report.heat_table(results, metric="loss", task="multiclass"),
        report.heat_table(results, metric="mse", task="regression"),
        report.learning_curves(best_classifier),
        report.roc_threshold_plots(best_classifier),
        report.probability_histograms(best_classifier),
        report.likelihood_curves(best_classifier),
        report.hyperparameter_plot(classifiers(results), metric="loss"),
        report.asha_plot(results, "val_loss", max_t=MAX_T, grace_period=1, reduction_factor=2),
        report.backtest_plot(classifiers(results)),
    ]
    for figure in figures:
        not_blank(figure)


def test_the_page_builds_from_the_search(real_search: Path, tmp_path: Path) -> None:
    built = report.build_report([str(real_search)], report.ReportSettings(out=tmp_path / "out", top=2))
    assert built.index.exists() and built.missing == ()
    assert built.clipped == ()  # every title and label inside its figure
    assert "How much of the best result is selection luck" in built.index.read_text()
    page = built.index.read_text()
    for result in load_results(str(real_search)):
        assert result.trial_id in page
    assert len(list((tmp_path / "out").glob("*.png"))) >= 5
