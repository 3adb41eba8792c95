"""A search's later builds read by the sources it recorded, even when the store gains quotes inside
the very range it was built on.

Real Coinbase BTC-USD minute trade bars of 4-5 April 2018 (LEAN), then LEAN's real quote bars of the
same days ingested after the search started: decided again, the midpoint would now read quotes; the
continued search (``prepare_units`` with the sources recorded in ``experiment.json``) reads bars, as
the search began (``finalize`` reads a trial's ``result.json`` the same way: tests/serve/test_sources_live).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from atlas_ray.featurestore import (
    FeatureLabelSet,
    LogReturns,
    MarketStore,
    Midpoint,
    MidpointDiff,
    Percentiles,
    SeriesSource,
    Sources,
    TimeSplit,
)
from atlas_ray.search import ModelSpec, WorkSpec, WorkUnit
from atlas_ray.search._runner import prepare_units, recorded_sources

DAYS = ("20180404", "20180405")
START, END = "2018-04-04", "2018-04-06"


@pytest.fixture
def lean_store(data_dir: Path, tmp_path: Path) -> MarketStore:
    store = MarketStore(tmp_path / "store")
    for day in DAYS:
        store.ingest(
            data_dir / "lean_coinbase_btcusd" / f"{day}_trade.zip", exchange="coinbase", pair="btc_usd"
        )
    return store


def _spec() -> WorkSpec:
    fls = FeatureLabelSet(
        [
            Midpoint().coinbase().one_min(),
            MidpointDiff().coinbase().one_min().lookback(5),
            LogReturns().coinbase().one_min().lookback(5),
        ],
        [LogReturns().coinbase().one_min().lookforward(1)],
        categories=Percentiles((50.0,)),
    )
    model = ModelSpec("logistic", "logistic", {"learning_rate": 3e-3, "batch_size": 256}, num_samples=1)
    unit = WorkUnit("mid", featureset=fls, start=START, end=END, split=TimeSplit(), models=[model])
    return WorkSpec(name="recorded", units=[unit])


def test_a_continued_search_builds_by_its_recorded_sources(lean_store: MarketStore, data_dir: Path) -> None:
    spec = _spec()
    (first,) = prepare_units(spec, lean_store, use_ray=False)
    recorded = first.data_state["sources"]
    assert first.prepared.sources == recorded
    bars = SeriesSource("coinbase", "btc_usd", "bars", "bars_1m")
    assert Sources.from_json(recorded).series == (bars,)

    for day in DAYS:  # quotes of the same days arrive after the search started
        lean_store.ingest(
            data_dir / "lean_coinbase_btcusd" / f"{day}_quote.zip", exchange="coinbase", pair="btc_usd"
        )
    quotes = SeriesSource("coinbase", "btc_usd", "quotes", "quotes")
    assert set(spec.units[0].featureset.sources(START, END, lean_store).series) == {bars, quotes}

    record = SimpleNamespace(provenance={"store": {"mid": first.data_state}})
    (again,) = prepare_units(spec, lean_store, use_ray=False, sources=recorded_sources(record))
    assert again.prepared.sources == recorded
    assert again.data_state["sources"] == recorded
    assert again.rows == first.rows
    for part in ("train", "validation", "test"):
        assert (getattr(again.prepared, part).X == getattr(first.prepared, part).X).all()
    # decided again instead: the midpoints read quotes, another frame
    (decided,) = prepare_units(spec, lean_store, use_ray=False)
    assert Sources.from_json(decided.prepared.sources).get("coinbase", "btc_usd", "quotes") == quotes
    assert decided.data_state["cache_key"] != first.data_state["cache_key"]
