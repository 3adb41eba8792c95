"""The live engine on real bars and real trained models: no train/serve skew, refusals, swaps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from atlas_ray.featurestore import MarketStore
from atlas_ray.featurestore._featuresets._scaling import apply_scaling
from atlas_ray.search import load_model
from atlas_ray.serve import find_trial
from tests.serve._replay import REPLAY_END, REPLAY_START, compare, engine_for, replay, trial_of

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("model", ["logistic", "dnn", "gru", "lightgbm"])
def test_replayed_predictions_equal_the_offline_series(
    served_experiment: Path, minute_store: MarketStore, model: str
) -> None:
    trial = trial_of(served_experiment, model)
    engine = engine_for(served_experiment, trial, minute_store)
    predictions = replay(engine, minute_store, REPLAY_START, REPLAY_END)
    offline = engine.served.result.predictions
    offline = offline[(offline.timestamp >= REPLAY_START) & (offline.timestamp < REPLAY_END)]
    joined = compare(predictions, offline, engine.served.result.classes)
    # every bar the search predicted in the range is predicted live, with the same probabilities
    assert len(offline) > 150 and len(joined) == len(offline)
    assert joined["max_diff"].max() < 1e-5
    assert (joined["live_class"] == joined["prediction"]).all()
    # and nothing is predicted twice
    stamps = [p.stamp for p in predictions]
    assert len(stamps) == len(set(stamps)) and stamps == sorted(stamps)


def test_live_features_equal_the_built_frame(served_experiment: Path, minute_store: MarketStore) -> None:
    engine = engine_for(served_experiment, trial_of(served_experiment, "dnn"), minute_store)
    replay(engine, minute_store, REPLAY_START, REPLAY_START + pd.Timedelta("30min"))
    last = engine.done
    assert last is not None
    index, values = engine._scaled_rows(last - 10 * engine.step, last)
    fls = engine.served.featureset
    built = fls.build_local(REPLAY_START, REPLAY_START + pd.Timedelta("30min"), minute_store)
    scaled = apply_scaling(
        built, {p: {n: engine.scaling[p][n] for n in engine.names} for p in ("mean", "std")}
    )
    expected = scaled.loc[index].to_numpy(dtype="float32")
    assert len(index) == 11
    np.testing.assert_array_equal(values, expected)


def test_bad_events_are_refused_and_counted_and_the_bars_after_them_still_predicted(
    served_experiment: Path, minute_store: MarketStore
) -> None:
    engine = engine_for(served_experiment, trial_of(served_experiment, "logistic"), minute_store)
    replay(engine, minute_store, REPLAY_START, REPLAY_START + pd.Timedelta("20min"))
    t = pd.Timestamp(engine.done, tz="UTC") + pd.Timedelta("1min")
    bars = minute_store.bars("coinbase", "btc_usd", "1m", t - pd.Timedelta("1min"), t + pd.Timedelta("2min"))
    good = {
        "exchange": "coinbase",
        "ts": t.isoformat(),
        **{c: float(bars.loc[t, c]) for c in ("open", "high", "low", "close", "volume")},
    }
    kraken = minute_store.bars("kraken", "btc_usd", "1m", t, t + pd.Timedelta("1min"))
    kraken_event = {
        "exchange": "kraken",
        "ts": t.isoformat(),
        **{c: float(kraken.loc[t, c]) for c in ("open", "high", "low", "close", "volume")},
    }
    before = dict(engine.counts)
    outcome = engine.push(
        [
            {**good, "close": float("nan")},
            {**good, "volume": None},
            {**good, "ts": (t - pd.Timedelta("5min")).isoformat()},
            {
                "exchange": "binance",
                "ts": t.isoformat(),
                "open": 1.0,
                "high": 1.0,
                "low": 1.0,
                "close": 1.0,
                "volume": 0.0,
            },
            good,
            dict(good),
            kraken_event,
        ]
    )
    reasons = sorted(reason for reason, _ in outcome.rejected)
    assert reasons == ["duplicate", "missing_field", "not_a_number", "out_of_order", "unknown_series"]
    assert outcome.accepted == 2 and len(outcome.predictions) == 1 and outcome.predictions[0].time == t
    assert engine.counts["rejected"] - before.get("rejected", 0) == 5


def test_a_swap_takes_over_at_the_next_bar_without_a_gap(
    served_experiment: Path, minute_store: MarketStore
) -> None:
    engine = engine_for(served_experiment, trial_of(served_experiment, "logistic"), minute_store)
    first = replay(engine, minute_store, REPLAY_START, REPLAY_START + pd.Timedelta("15min"))
    served = find_trial(str(served_experiment), trial=trial_of(served_experiment, "gru"))
    engine = engine.successor(served, load_model(served.result), version=2)
    second = replay_continue(
        engine, minute_store, REPLAY_START + pd.Timedelta("15min"), REPLAY_START + pd.Timedelta("30min")
    )
    stamps = [p.stamp for p in first + second]
    assert np.all(np.diff(stamps) == engine.step)  # no bar skipped, none twice
    assert {p.version for p in first} == {1} and {p.version for p in second} == {2}
    assert {p.trial for p in second} == {served.trial_id}
    # the GRU's first live windows use the history the logistic engine kept: equal to the offline ones
    offline = served.result.predictions
    joined = compare(second, offline, served.result.classes)
    assert len(joined) >= 10 and joined["max_diff"].max() < 1e-5


def replay_continue(engine, store, start, end):  # type: ignore[no-untyped-def]
    from atlas_ray.serve._feeds import paced, replay_ticks

    out = []
    for push, _ in paced(replay_ticks(store, engine.series, engine.resolution, start, end), 0, chunk=1):
        out.extend(engine.push(push["events"], through=push["through"]).predictions)
    return out
