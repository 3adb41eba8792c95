"""A search that ranks on what a desk keeps: ``ASHA(metric="val_net_sharpe", mode=Mode.MAX)`` over a
walk-forward unit with a stated cost model and a searched ``position_threshold`` (DNNs and a LightGBM
trial, whose per-step logs carry the same figures), on a real local Ray
cluster and real minute bars. Every epoch reports the validation net figures (the mean over the
folds); the ResultsObject keeps them per fold, as the mean and on the joined out-of-sample rows, each
equal to the backtest of the predictions it stored; ``finalize`` adds them on the test rows. A bad
cost field is refused before Ray starts, in one line naming it."""

from __future__ import annotations

import io
import math
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from atlas_ray.backtest import NET_METRICS, Costs, PositionRule, net_figures
from atlas_ray.errors import SpecError
from atlas_ray.experiment import ResultsObject, best_trials
from atlas_ray.report._summary import summary_row
from atlas_ray.search import TrialStatus, load_experiment, load_results, run, validate
from atlas_ray.search._finalize import finalize
from atlas_ray.search._spec_loader import load_spec
from tests.search import search_specs

pytestmark = pytest.mark.slow

SPEC_TEXT = """
from dataclasses import replace

from ray import tune

from atlas_ray.backtest import Costs
from atlas_ray.featurestore import WalkForward
from atlas_ray.search import ASHA, Mode, ModelSpec
from tests.search import search_specs

dnn = search_specs.small_dnn(num_samples=2)
dnn = replace(dnn, space={{**dnn.space, "position_threshold": tune.choice([0.0, 0.4])}})
gbm = ModelSpec("gbm", "lightgbm", {{"rounds_per_step": 5, "position_threshold": 0.4}})
base = search_specs.spec("net", [dnn, gbm], split=WalkForward(folds=2, test=0.15, embargo=2), seed=3)
SPEC = replace(
    base,
    units=[replace(base.units[0], costs=Costs(fee_bps={fee}, spread_bps=1.0))],
    scheduler=ASHA(max_t=2, grace_period=1, reduction_factor=2, metric="val_net_sharpe", mode=Mode.MAX),
)
"""
COSTS = Costs(fee_bps=5.0, spread_bps=1.0)


@pytest.fixture(scope="module")
def searched(ray_cluster: None, minute_store, tmp_path_factory: pytest.TempPathFactory) -> str:  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("net_search")
    path = tmp / "net.py"
    path.write_text(textwrap.dedent(SPEC_TEXT.format(fee=5.0)))
    spec = load_spec(path)
    storage = str(tmp / "experiments")
    return run(spec, storage=storage, store=minute_store, spec_path=str(path), out=io.StringIO())


def stored_figures(result: ResultsObject, rows: np.ndarray) -> dict[str, float]:
    """The backtest of the predictions the ResultsObject stored on ``rows``, with the spec's costs and
    the trial's own threshold."""
    frame = result.predictions[rows].sort_values("timestamp")
    probs = frame[[f"prob_{c}" for c in result.classes]].to_numpy("float64")
    rule = PositionRule().for_trial(result.identity.hyperparameters)
    per_year = 365.25 * 24 * 60  # one-minute bars
    label = frame["label_value"].to_numpy()
    return net_figures(result.task, label, probs, COSTS, rule, bars_per_year=per_year)


def test_every_epoch_reports_the_net_figures_asha_ranks_on(searched: str) -> None:
    record = load_experiment(searched)
    assert (record.metric, record.mode) == ("val_net_sharpe", "max")
    results = load_results(searched)
    assert len(results) == 3
    assert {r.identity.model for r in results} == {"dnn", "gbm"}  # both families rank on it
    for result in results:
        assert result.status in (TrialStatus.COMPLETED, TrialStatus.STOPPED), result.error
        for name in NET_METRICS:
            assert np.isfinite(result.curves[f"val_{name}"].to_numpy()).all(), name
        last = result.curves.iloc[-1]
        assert last["val_net_sharpe"] == pytest.approx(result.metric("net_sharpe", "validation"), rel=1e-6)
        assert last["val_trades"] == pytest.approx(result.metric("trades", "validation"))
    ranked = best_trials(results, "val_net_sharpe")
    best = max(r.metric("net_sharpe", "validation") for r in results)
    assert ranked[0].metric("net_sharpe", "validation") == best


def test_the_results_keep_them_per_fold_as_the_mean_and_out_of_sample(searched: str) -> None:
    for result in load_results(searched):
        oos = (result.predictions["split"] == "oos").to_numpy()
        for fold in result.folds:
            rows = oos & (result.predictions["fold"] == fold["fold"]).to_numpy()
            expected = stored_figures(result, rows)
            for name in NET_METRICS:
                assert fold["validation"][name] == pytest.approx(expected[name], rel=1e-6, abs=1e-12), name
        for name in NET_METRICS:
            mean = float(np.mean([fold["validation"][name] for fold in result.folds]))
            assert result.metric(name, "validation") == pytest.approx(mean)
            joined = stored_figures(result, oos)[name]
            assert result.metric(name, "oos") == pytest.approx(joined, rel=1e-6, abs=1e-12), name
        assert result.metric("cost", "oos") > 0 or result.metric("trades", "oos") == 0
        row = summary_row(result)  # the report recomputes the same figures with the recorded cost model
        for name in ("net_sharpe", "gross_return", "turnover", "cost"):
            assert row[name] == pytest.approx(result.metric(name, "oos"), rel=1e-6, abs=1e-12), name


def test_finalize_computes_them_on_the_test_rows(searched: str, minute_store) -> None:  # type: ignore[no-untyped-def]
    opening = finalize(searched, top=1, store=minute_store, out=io.StringIO())
    chosen = {r.trial_id: r for r in load_results(searched)}[opening.trials[0]]
    assert chosen.trial_id == best_trials(load_results(searched), "val_net_sharpe")[0].trial_id
    test = (chosen.predictions["split"] == "test").to_numpy()
    expected = stored_figures(chosen, test)
    for name in NET_METRICS:
        assert math.isfinite(chosen.metric(name, "test"))
        assert chosen.metric(name, "test") == pytest.approx(expected[name], rel=1e-6, abs=1e-12), name


def test_a_bad_cost_field_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.py"
    path.write_text(textwrap.dedent(SPEC_TEXT.format(fee=-2.0)))
    with pytest.raises(SpecError) as refused:
        load_spec(path)
    message = str(refused.value)
    assert "`fee_bps`" in message and "is -2.0," in message and "line" in message and "\n" not in message
    spec = search_specs.spec("net", [search_specs.small_dnn()])
    unit = replace(spec.units[0], costs={"fee_bps": 5})
    with pytest.raises(SpecError, match=r"unit `direction`, field `costs`: .* is not a Costs"):
        validate(replace(spec, units=[unit]))
    threshold = replace(spec.units[0].models[0], space={"position_threshold": 1.5})
    with pytest.raises(SpecError, match=r"parameter `position_threshold`: The value .* is 1.5"):
        validate(replace(spec, units=[replace(spec.units[0], models=[threshold])]))
