"""A tiny real search end to end on a real local Ray cluster and real minute bars: every trial becomes a
ResultsObject with all its parts; failing trials (a build that raises, a NaN loss) are recorded FAILED
with their error while the others finish; a keras-tuner HyperModel runs unchanged."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from atlas_ray.featurestore import TimeSplit
from atlas_ray.search import (
    ModelSpec,
    TrialStatus,
    load_experiment,
    load_model,
    load_results,
    run,
)
from tests.search import search_specs

pytestmark = pytest.mark.slow

MAX_T = 2


@pytest.fixture(scope="module")
def searched(ray_cluster: None, minute_store, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    spec = search_specs.spec(
        "tiny",
        [
            search_specs.small_dnn(num_samples=2),
            ModelSpec("broken", search_specs.broken_build),
            ModelSpec("nan", search_specs.nan_build),
            ModelSpec("hyper", search_specs.TinyHyperModel()),
        ],
        max_t=MAX_T,
    )
    out = io.StringIO()
    experiment = run(
        spec,
        storage=str(tmp_path_factory.mktemp("experiments")),
        store=minute_store,
        spec_path="tiny.py",
        out=out,
    )
    unit = spec.units[0]
    frame = unit.featureset.build_local(unit.start, unit.end, minute_store)
    prepared = unit.featureset.prepare(frame, TimeSplit(0.7, 0.15, 0.15), seed=spec.seed)
    return spec, experiment, load_results(experiment), prepared, out.getvalue()


def by_model(results, model):  # type: ignore[no-untyped-def]
    return [r for r in results if r.identity.model == model]


def test_every_trial_is_gathered_once(searched) -> None:  # type: ignore[no-untyped-def]
    _, experiment, results, _, printed = searched
    record = load_experiment(experiment)
    assert record.status == "finished" and record.finished is not None
    assert sorted(record.trial_ids) == sorted(r.trial_id for r in results)
    assert sorted(r.identity.model for r in results) == ["broken", "dnn", "dnn", "hyper", "nan"]
    assert record.scheduler["max_t"] == MAX_T and record.scheduler["milestones"] == [1, 2]
    assert record.metric == "val_loss" and record.mode == "min"
    assert len({r.identity.seed for r in results}) == 5
    assert "best trials by validation loss" in printed and experiment in printed
    table = printed.split("best trials by")[1].split("experiment:")[0]
    assert "test" not in table  # no test figure: the test part is sealed
    assert "test (sealed)" in printed
    assert record.test_openings == ()


def test_trained_trials_have_every_part(searched) -> None:  # type: ignore[no-untyped-def]
    _, _, results, prepared, _ = searched
    trained = by_model(results, "dnn") + by_model(results, "hyper")
    assert len(trained) == 3
    for result in trained:
        assert result.status in (TrialStatus.COMPLETED, TrialStatus.STOPPED), result.error
        assert result.error is None
        assert result.classes == ("down", "flat", "up")
        assert result.features == prepared.feature_names and result.label == prepared.label_name
        assert set(result.metrics) == {"train", "validation"}  # never test during the search
        assert result.finalized is None
        for split in ("train", "validation"):
            metrics = result.metrics[split]
            for name in ("loss", "accuracy", "auc", "precision[up]", "npv[down]", "tpr[flat]", "lr_plus[up]"):
                assert name in metrics
            assert 0.0 <= metrics["accuracy"] <= 1.0
        predictions = result.predictions
        assert str(predictions["timestamp"].dtype) == "datetime64[ns, UTC]"
        assert set(predictions["split"]) == {"train", "validation"}
        for split in ("train", "validation"):
            part = getattr(prepared, split)
            rows = predictions[predictions["split"] == split]
            assert len(rows) == len(part)
            assert (pd.DatetimeIndex(rows["timestamp"]) == part.index).all()
            np.testing.assert_allclose(rows["label_value"].to_numpy(), part.label_value)
            assert list(rows["reality"]) == [result.classes[k] for k in part.y]
        probabilities = predictions[[f"prob_{c}" for c in result.classes]].to_numpy()
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
        curves = result.curves
        assert list(curves["epoch"]) == list(range(1, result.epochs + 1))
        assert {"loss", "val_loss", "accuracy", "val_accuracy"} <= set(curves.columns)
        assert result.scaling and result.categories is not None and result.categories["boundaries"]
        assert result.featureset["features"] == list(prepared.feature_names)
        assert result.window is None


def test_the_saved_model_made_the_predictions(searched) -> None:  # type: ignore[no-untyped-def]
    _, _, results, prepared, _ = searched
    result = by_model(results, "dnn")[0]
    assert result.model_path is not None and Path(result.model_path).is_file()
    model = load_model(result)
    validation = result.predictions[result.predictions["split"] == "validation"]
    stored = validation[[f"prob_{c}" for c in result.classes]].to_numpy()
    np.testing.assert_allclose(
        model.predict(prepared.validation.X, verbose=0), stored, rtol=1e-4, atol=1e-5
    )


def test_status_follows_asha(searched) -> None:  # type: ignore[no-untyped-def]
    _, _, results, _, _ = searched
    for result in results:
        if result.status is TrialStatus.COMPLETED:
            assert result.epochs == MAX_T
        elif result.status is TrialStatus.STOPPED:
            assert result.epochs < MAX_T and result.epochs in (1,)


def test_failing_trials_are_recorded_with_their_error(searched) -> None:  # type: ignore[no-untyped-def]
    _, _, results, _, _ = searched
    (broken,) = by_model(results, "broken")
    assert broken.status is TrialStatus.FAILED
    assert broken.error is not None and "ValueError" in broken.error and "cannot be built" in broken.error
    assert broken.model_file is None and broken.metrics == {}
    (nan,) = by_model(results, "nan")
    assert nan.status is TrialStatus.FAILED
    assert nan.error is not None and nan.error.startswith("NaNLossError") and "nan" in nan.error.lower()
    assert "\n" not in nan.error


def test_hypermodel_runs_unchanged(searched) -> None:  # type: ignore[no-untyped-def]
    _, _, results, _, _ = searched
    (hyper,) = by_model(results, "hyper")
    values = hyper.identity.hyperparameters
    assert values["units"] in (2, 4, 6, 8)
    assert 1e-3 <= values["lr"] <= 1e-2
    assert values["activation"] in ("relu", "tanh")
    assert not math.isnan(hyper.metric("loss", "validation"))


def test_tensorboard_reads_every_finished_trials_validation_loss_per_epoch(searched) -> None:  # type: ignore[no-untyped-def]
    """What `tensorboard --logdir EXPERIMENT` shows (the README), read by TensorBoard's own reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, experiment, results, _, _ = searched
    events = sorted(Path(experiment).glob("*/events.out.tfevents.*"))
    assert len(events) >= 3
    curves = {}
    for path in events:
        accumulator = EventAccumulator(str(path.parent))
        accumulator.Reload()
        tag = next((t for t in accumulator.Tags()["scalars"] if t.endswith("/val_loss")), None)
        if tag is not None:
            curves[path.parent.name] = [event.value for event in accumulator.Scalars(tag)]
    finished = [r for r in results if r.status is TrialStatus.COMPLETED]
    assert len(curves) >= len(finished) > 0
    for result in finished:
        shown = next(c for name, c in curves.items() if result.trial_id in name)
        logged = result.curves["val_loss"].dropna().to_numpy()
        np.testing.assert_allclose(shown, logged, rtol=1e-6)


def test_console_is_one_progress_line_and_loud_failures(searched) -> None:  # type: ignore[no-untyped-def]
    _, _, results, _, printed = searched
    assert "Trial status" not in printed and "Current time" not in printed  # no Ray Tune table
    final = [line for line in printed.splitlines() if line.startswith(f"{len(results)}/{len(results)} done")]
    assert final, printed
    assert "2 failed" in final[-1] and "best val_loss" in final[-1] and "elapsed" in final[-1]
    for result in results:
        if result.status is TrialStatus.FAILED:
            line = f"trial {result.trial_id} ({result.identity.model}) failed: "
            assert line in printed, printed
            assert result.error is not None and result.error.split(":")[0] in printed.split(line)[1]
