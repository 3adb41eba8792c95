"""LightGBM in the zoo, on real minute bars: a real search under ASHA with boosting rounds as the
resource (a stopped trial grew fewer rounds than ``max_t x rounds_per_step``), its ResultsObjects as a
Keras trial's (curves per step, metrics, predictions, ``model.txt``), a classifier on walk-forward folds
and a regressor, ``finalize`` on a LightGBM trial; and without Ray: a booster restored from its text
checkpoint grows the same trees as one never interrupted, the same seed gives the same model, and bad
LightGBM parameters are refused in one line naming the parameter."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ray import tune

from atlas_ray.errors import SpecError
from atlas_ray.experiment import TREES_MODEL_FILE, load_model, predict_proba
from atlas_ray.featurestore import FeatureLabelSet, Percentiles, TimeSplit, WalkForward
from atlas_ray.search import ASHA, Mode, ModelSpec, Resources, TrialStatus, WorkSpec, WorkUnit, load_results
from atlas_ray.search import run as run_search
from atlas_ray.search._finalize import finalize
from atlas_ray.search._trainable_trees import TreeFolds, read_state, save_state, validation_logs
from atlas_ray.search._validate import validate_static
from atlas_ray.search._zoo import get_model
from tests.search.search_specs import FEATURES, LABEL, direction

pytestmark = pytest.mark.slow

MAX_T = 4
ROUNDS = 5  # rounds_per_step
START, END = "2023-03-01", "2023-03-02"


def trees_spec(name: str = "trees") -> WorkSpec:
    """A walk-forward classifier (6 learning rates, so ASHA has trials to stop) and a regressor."""
    common = {"rounds_per_step": ROUNDS, "num_leaves": 7, "min_data_in_leaf": 40, "bagging_fraction": 0.8}
    return WorkSpec(
        name=name,
        units=[
            WorkUnit(
                "direction",
                featureset=direction(),
                start=START,
                end=END,
                split=WalkForward(folds=2, test=0.15),
                models=[
                    ModelSpec(
                        "gbm",
                        "lightgbm",
                        {**common, "learning_rate": tune.grid_search([0.003, 0.01, 0.03, 0.1, 0.2, 0.4])},
                    )
                ],
            ),
            WorkUnit(
                "returns",
                featureset=FeatureLabelSet(FEATURES, [LABEL]),
                start=START,
                end=END,
                split=TimeSplit(train=0.7, validation=0.15, test=0.15),
                models=[ModelSpec("gbm", "lightgbm", common)],
            ),
        ],
        scheduler=ASHA(max_t=MAX_T, grace_period=1, reduction_factor=2, metric="val_loss", mode=Mode.MIN),
        resources=Resources(cpu=1),
        seed=3,
    )


@pytest.fixture(scope="module")
def experiment(ray_cluster: None, minute_store, tmp_path_factory: pytest.TempPathFactory) -> str:  # type: ignore[no-untyped-def]
    storage = tmp_path_factory.mktemp("trees")
    return run_search(trees_spec(), storage=str(storage), store=minute_store, out=io.StringIO())


def test_asha_stops_trees_by_rounds_and_a_stopped_trial_grew_fewer(experiment: str) -> None:
    results = {r.trial_id: r for r in load_results(experiment)}
    assert len(results) == 7
    statuses = {r.status for r in results.values()}
    assert statuses <= {TrialStatus.COMPLETED, TrialStatus.STOPPED}, [r.error for r in results.values()]
    stopped = [r for r in results.values() if r.status is TrialStatus.STOPPED]
    completed = [r for r in results.values() if r.status is TrialStatus.COMPLETED]
    assert stopped and completed
    for result in results.values():
        booster = load_model(result)
        rounds = booster.current_iteration()
        assert rounds == result.epochs * ROUNDS == int(result.curves["rounds"].iloc[-1])
        assert list(result.curves["epoch"]) == list(range(1, result.epochs + 1))
        if result.status is TrialStatus.STOPPED:
            assert rounds < MAX_T * ROUNDS
        else:
            assert rounds == MAX_T * ROUNDS


def test_a_trees_result_is_a_keras_result(experiment: str) -> None:
    for result in load_results(experiment):
        assert result.model_file == TREES_MODEL_FILE and Path(result.model_path or "").is_file()
        assert result.devices is not None and result.devices["kind"] == "cpu"
        curves, last = result.curves, result.curves.iloc[-1]
        if result.identity.unit == "direction":  # a walk-forward classifier
            assert {"loss", "accuracy", "auc", "val_loss", "val_accuracy", "val_auc"} <= set(curves.columns)
            assert set(result.metrics) == {"train", "validation", "oos"} and len(result.folds) == 2
            assert sum(c.startswith("prob_") for c in result.predictions.columns) == 3
            assert set(result.predictions["split"]) == {"train", "oos"}
        else:  # a regressor on one time split
            assert {"loss", "mae", "val_loss", "val_mae"} <= set(curves.columns)
            assert set(result.metrics) == {"train", "validation"}
            assert result.predictions["prediction"].dtype == np.float64
        # the step's logs, from raw scores advanced by the new trees, equal the full evaluation's
        assert last["val_loss"] == pytest.approx(result.metric("loss", "validation"), rel=1e-9)


def test_finalize_opens_the_test_set_for_a_trees_trial(experiment: str, minute_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    opening = finalize(experiment, top=2, spec=trees_spec(), store=minute_store, out=io.StringIO())
    tested = [r for r in load_results(experiment) if r.trial_id in opening.trials]
    assert len(tested) == 2
    for result in tested:
        assert np.isfinite(result.metric("loss", "test"))
        assert (result.predictions["split"] == "test").sum() > 100


# ------------------------------------------------------------------------------------ without Ray
@pytest.fixture(scope="module")
def folds(minute_store) -> tuple[Any, ...]:  # type: ignore[no-untyped-def]
    frame = direction().build_local(START, END, minute_store)
    return tuple(direction().prepare(frame, WalkForward(folds=2, test=0.15), seed=1).folds)


def grown(folds: tuple[Any, ...], seed: int, steps: range, models: list[str] | None = None) -> TreeFolds:
    model = get_model("lightgbm")
    config = model.resolve(
        {
            "seed": seed,
            "rounds_per_step": ROUNDS,
            "num_leaves": 7,
            "bagging_fraction": 0.7,
            "feature_fraction": 0.8,
        }
    )
    first = folds[0]
    params = model.build(
        config,
        input_shape=first.train.X.shape[1:],
        task=first.task,
        n_classes=first.n_classes,
        train_X=first.train.X,
    )
    trees = TreeFolds(folds, params, seed=seed, threads=1, rounds_per_step=ROUNDS, models=models)
    for step in steps:
        trees.step(step)
    return trees


def test_a_booster_restored_from_its_checkpoint_grows_the_same_trees(folds: tuple[Any, ...]) -> None:
    uninterrupted = grown(folds, seed=5, steps=range(1, 5))
    with tempfile.TemporaryDirectory() as state:
        save_state(grown(folds, seed=5, steps=range(1, 3)), [{"epoch": 1}, {"epoch": 2}], state)
        models, curves = read_state(state)
    assert len(models) == len(folds) and len(curves) == 2
    resumed = grown(folds, seed=5, steps=range(3, 5), models=models)
    assert resumed.rounds() == [4 * ROUNDS] * len(folds)
    assert resumed.model_strings() == uninterrupted.model_strings()
    # and its per-step logs are the uninterrupted booster's
    last = folds[-1]
    output = predict_proba(resumed.boosters[-1], last.validation.X, last.task)
    assert validation_logs(last, output) == validation_logs(
        last, predict_proba(uninterrupted.boosters[-1], last.validation.X, last.task)
    )


def test_the_same_seed_gives_the_same_model_and_another_seed_another(folds: tuple[Any, ...]) -> None:
    first = grown(folds, seed=9, steps=range(1, 3)).model_strings()
    assert grown(folds, seed=9, steps=range(1, 3)).model_strings() == first
    assert grown(folds, seed=10, steps=range(1, 3)).model_strings() != first


@pytest.mark.parametrize(
    ("space", "expected"),
    [
        (
            {"num_leaves": 1},
            "parameter `num_leaves`: The value of `num_leaves` is 1, but must be `2 <= num_leaves",
        ),
        (
            {"bagging_fraction": tune.uniform(0.0, 1.0)},
            "parameter `bagging_fraction`: The value of `bagging_fraction`",
        ),
        ({"num_boost_round": 500}, "parameter `num_boost_round` is not accepted: the boosting rounds are"),
        ({"early_stopping_round": 10}, "parameter `early_stopping_round` is not accepted: ASHA decides"),
        ({"batch_size": 256}, "has no parameter `batch_size`"),
    ],
)
def test_bad_lightgbm_parameters_are_refused_in_one_line(space: dict[str, Any], expected: str) -> None:
    spec = trees_spec()
    unit = spec.units[1]
    bad = WorkSpec(
        name="bad",
        units=[
            WorkUnit(unit.name, unit.featureset, unit.start, unit.end, [ModelSpec("gbm", "lightgbm", space)])
        ],
    )
    with pytest.raises(SpecError) as error:
        validate_static(bad)
    message = str(error.value)
    assert message.startswith("unit `returns`, model `gbm`, field `space`: ") and expected in message
    assert "\n" not in message


@pytest.mark.parametrize("task", ["binary", "regression", "windowed"])
def test_each_steps_logs_equal_the_full_models_on_every_task(task: str, minute_store) -> None:  # type: ignore[no-untyped-def]
    """The per-step logs (raw scores advanced by the new trees) equal those of ``predict_proba`` on the
    whole booster, the function that writes the ResultsObject and serves, for a binary classifier, a
    regressor and a windowed input (flattened)."""
    categories = Percentiles((50.0,)) if task == "binary" else None
    fls = FeatureLabelSet(FEATURES, [LABEL], categories=categories, window=4 if task == "windowed" else None)
    prepared = fls.prepare(fls.build_local(START, END, minute_store), TimeSplit(0.7, 0.15, 0.15), seed=1)
    trees = grown((prepared,), seed=2, steps=range(1, 3))
    logs = trees.step(3)[0]
    output = predict_proba(trees.boosters[0], prepared.validation.X, prepared.task)
    assert output.shape == ((len(output), 2) if task == "binary" else (len(output),))
    for name, value in validation_logs(prepared, output).items():
        assert logs[name] == pytest.approx(value, rel=1e-9), name
