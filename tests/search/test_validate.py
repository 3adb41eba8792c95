"""A bad spec fails before Ray starts, with one line naming the unit, model and field, the value and the
rule. Real featuresets over the real minute bars; no training."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from ray import tune

from atlas_ray.errors import SpecError
from atlas_ray.featurestore import FeatureLabelSet, LogReturns, MarketStore, Percentiles
from atlas_ray.search import ASHA, ModelSpec, Resources, WorkSpec, load_spec, validate
from tests.search import search_specs


def one_line_error(spec: WorkSpec, store: MarketStore | None = None) -> str:
    with pytest.raises(SpecError) as error:
        validate(spec, store)
    message = str(error.value)
    assert "\n" not in message
    return message


def test_a_good_spec_passes(minute_store: MarketStore) -> None:
    validate(search_specs.spec("good", [search_specs.small_dnn()]), minute_store)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (
            ModelSpec("m", "transformer"),
            ["unit `direction`", "model `m`", "field `model`", "`transformer`", "dnn"],
        ),
        (ModelSpec("m", "dnn", {"hiden_units": [3]}), ["model `m`", "field `space`", "`hiden_units`"]),
        (
            ModelSpec("m", "dnn", {"dropout": tune.choice([0.0, 1.5])}),
            ["unit `direction`", "model `m`", "field `space`", "`dropout` is 1.5", "dropout < 1"],
        ),
        (
            ModelSpec("m", "dnn", {"learning_rate": tune.loguniform(1e-4, 2.0)}),
            ["field `space`", "learning_rate"],
        ),
        (ModelSpec("m", "dnn", {"epochs": 10}), ["field `space`", "max_t"]),
        (ModelSpec("m", "lstm"), ["model `m`", "field `featureset.window`", "window"]),
        (ModelSpec("m", "dnn", num_samples=0), ["model `m`", "field `num_samples`", "num_samples >= 1"]),
        (
            ModelSpec("m", "dnn", resources=Resources(cpu=0)),
            ["model `m`", "field `resources.cpu`", "cpu > 0"],
        ),
    ],
)
def test_bad_models_name_unit_model_and_field(model: ModelSpec, expected: list[str]) -> None:
    message = one_line_error(search_specs.spec("bad", [model]))
    for part in expected:
        assert part in message, message


def test_empty_date_range() -> None:
    message = one_line_error(
        search_specs.spec("bad", [search_specs.small_dnn()], start="2023-03-05", end="2023-03-05")
    )
    assert "unit `direction`" in message and "field `end`" in message and "start < end" in message


def test_metric_the_models_do_not_report() -> None:
    spec = search_specs.spec("bad", [search_specs.small_dnn()])
    spec = WorkSpec(spec.name, spec.units, scheduler=ASHA(max_t=2, metric="val_mae"))
    message = one_line_error(spec)
    assert "field `scheduler.metric`" in message and "'val_mae'" in message and "val_accuracy" in message


def test_task_the_model_does_not_support() -> None:
    regression = FeatureLabelSet(search_specs.FEATURES, [search_specs.LABEL], categories=None)
    message = one_line_error(search_specs.spec("bad", [ModelSpec("m", "logistic")], featureset=regression))
    assert "model `m`" in message and "field `model`" in message and "regression" in message


def test_duplicate_model_names() -> None:
    message = one_line_error(search_specs.spec("bad", [search_specs.small_dnn(), search_specs.small_dnn()]))
    assert "model `dnn`" in message and "field `name`" in message


def test_bad_spec_name() -> None:
    message = one_line_error(WorkSpec("has space", units=[]))
    assert "field `name`" in message and "'has space'" in message


def test_missing_data_names_unit_and_series(tmp_path: Path, data_dir: Path) -> None:
    store = MarketStore(tmp_path / "store")
    store.ingest(
        data_dir / "minute_bars_2023-03" / "coinbase_btcusd.parquet", exchange="coinbase", pair="btc_usd"
    )
    message = one_line_error(search_specs.spec("bad", [search_specs.small_dnn()]), store)
    assert "unit `direction`" in message and "field `featureset`" in message and "kraken" in message


def test_data_outside_the_store_range(minute_store: MarketStore) -> None:
    spec = search_specs.spec("bad", [search_specs.small_dnn()], start="2021-01-01", end="2021-01-02")
    message = one_line_error(spec, minute_store)
    assert (
        "unit `direction`" in message and "field `start`" in message and "2023-03-01 .. 2023-03-21" in message
    )


def write_spec(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "bad_spec.py"
    path.write_text(textwrap.dedent(body))
    return path


def test_label_among_features_in_a_spec_file(tmp_path: Path) -> None:
    path = write_spec(
        tmp_path,
        """
        from atlas_ray.featurestore import FeatureLabelSet, LogReturns
        LABEL = LogReturns().coinbase().one_min().lookforward(1)
        FLS = FeatureLabelSet([LogReturns().coinbase().one_min(), LABEL], [LABEL])
        """,
    )
    with pytest.raises(SpecError) as error:
        load_spec(path)
    message = str(error.value)
    assert (
        str(path) in message and "line 4" in message and "lookforward(1)" in message and "\n" not in message
    )


def test_mismatched_resolutions_in_a_spec_file(tmp_path: Path) -> None:
    path = write_spec(
        tmp_path,
        """
        from atlas_ray.featurestore import FeatureLabelSet, LogReturns
        FLS = FeatureLabelSet(
            [LogReturns().coinbase().one_min(), LogReturns().kraken().hour()],
            [LogReturns().coinbase().one_min().lookforward(1)],
        )
        """,
    )
    with pytest.raises(SpecError) as error:
        load_spec(path)
    message = str(error.value)
    assert str(path) in message and "resolution" in message and "\n" not in message


def test_a_spec_file_without_spec(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="field `SPEC`: it is not defined"):
        load_spec(write_spec(tmp_path, "X = 1\n"))
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(tmp_path / "absent.py")


def test_percentile_labels_make_a_classifier_task() -> None:
    from atlas_ray.featurestore._featuresets._prepared import Task
    from atlas_ray.search._validate import expected_task

    binary = FeatureLabelSet(search_specs.FEATURES, [search_specs.LABEL], categories=Percentiles((50.0,)))
    assert expected_task(binary) is Task.BINARY
    assert expected_task(search_specs.direction()) is Task.MULTICLASS
    assert (
        expected_task(FeatureLabelSet([LogReturns().coinbase().one_min()], [search_specs.LABEL]))
        is Task.REGRESSION
    )
