"""A quoted spread (``Costs(spread_bps=QUOTED)``) measured from the store's real quotes, per unit.

On the LEAN Coinbase btc_usd minute data of 2017-09-03/04 (trade bars and top-of-book quotes): the
resolved figure is a brute-force median over the quotes before the sealed test block, the test block's
quotes never move it, and a store without quotes refuses the unit in one line before anything is built.
No Ray: the units are built in this process (``prepare_units(use_ray=False)``, as a dry run does).
"""

from __future__ import annotations

import statistics
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from atlas_ray.backtest import QUOTED, Costs
from atlas_ray.errors import SpecError
from atlas_ray.experiment import Experiment, load_results
from atlas_ray.featurestore import FeatureLabelSet, LogReturns, MarketStore, Percentiles
from atlas_ray.search import WorkSpec, WorkUnit, validate
from atlas_ray.search._finalize import charged_costs
from atlas_ray.search._runner import describe_unit, prepare_units, recorded_costs
from atlas_ray.search._spread import check_quotes, resolve_costs, sealed_start
from tests.search import search_specs

DAYS = ("20170903", "20170904")
EXCHANGE, PAIR = "coinbase", "btc_usd"
UNIT_END = "2017-09-05 00:00+00:00"


def _store(root: Path, data_dir: Path, kinds: tuple[str, ...]) -> MarketStore:
    store = MarketStore(root)
    folder = data_dir / "lean_coinbase_btcusd"
    store.ingest_many([folder / f"{day}_{kind}.zip" for day in DAYS for kind in kinds], exchange=EXCHANGE,
                      pair=PAIR)
    return store


@pytest.fixture(scope="module")
def quoted(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> MarketStore:
    return _store(tmp_path_factory.mktemp("quoted"), data_dir, ("trade", "quote"))


QUOTED_COSTS = Costs(fee_bps=4.0, spread_bps=QUOTED)


def _spec(costs: Costs = QUOTED_COSTS) -> WorkSpec:
    label = LogReturns().coinbase().one_min().lookforward(1)
    featureset = FeatureLabelSet(
        [LogReturns().coinbase().one_min(), LogReturns().coinbase().one_min().lookback(5)], [label],
        categories=Percentiles((50.0,)),
    )
    models = [search_specs.small_dnn(1)]
    unit = WorkUnit("spread", featureset, "2017-09-03", "2017-09-05", models, costs=costs)
    return WorkSpec("spread", [unit])


def _brute_force(store: MarketStore, end: pd.Timestamp) -> float:
    quotes = store.read(EXCHANGE, PAIR, "quotes", "2017-09-03", end)
    halves = [
        (ask - bid) / ((ask + bid) / 2) * 1e4 / 2
        for bid, ask in zip(quotes["bid_price"], quotes["ask_price"], strict=True)
        if bid > 0 and ask >= bid
    ]
    return statistics.median(halves)


def test_the_quoted_spread_is_half_the_median_before_the_test_block(quoted: MarketStore) -> None:
    spec = _spec()
    validate(spec, quoted)
    [item] = prepare_units(spec, quoted, use_ray=False)
    end = sealed_start(item.prepared)
    assert end is not None and pd.Timestamp("2017-09-04", tz="UTC") < end < pd.Timestamp(UNIT_END)
    expected = _brute_force(quoted, end)
    assert (item.costs.fee_bps, item.costs.minimum_bps) == (4.0, 0.0) and expected > 0
    assert item.costs.spread_bps == pytest.approx(expected, rel=1e-12)
    assert item.costs.rate == pytest.approx((4.0 + expected) * 1e-4)
    assert f"{expected:g} bps spread" in "\n".join(describe_unit(item))
    print(f"coinbase btc_usd 2017-09-03/04: half the median quoted spread {expected:.4f} bps")
    # a continued experiment charges the figure its experiment.json recorded, never one measured again
    costs = {"spread": {**item.costs.as_dict(), "spread_bps": 0.5}}
    record = Experiment("spread", "", "val_loss", "min", "", provenance={"costs": costs})
    [again] = prepare_units(spec, quoted, use_ray=False, costs=recorded_costs(record))
    assert again.costs == Costs(fee_bps=4.0, spread_bps=0.5)
    # a stated spread is kept as stated
    stated = _spec(Costs(spread_bps=0.5))
    assert resolve_costs(stated.units[0], item.prepared, quoted) == Costs(spread_bps=0.5)


def test_the_test_blocks_quotes_never_move_it(quoted: MarketStore, tmp_path: Path) -> None:
    spec = _spec()
    [item] = prepare_units(spec, quoted, use_ray=False)
    end = sealed_start(item.prepared)
    assert end is not None
    quotes = quoted.read(EXCHANGE, PAIR, "quotes")
    tested = quotes.index >= end

    def resolved_with(frame: pd.DataFrame, name: str) -> float:
        store = MarketStore(tmp_path / name)
        store.write(frame, exchange=EXCHANGE, pair=PAIR, kind="quotes")
        return float(resolve_costs(spec.units[0], item.prepared, store).spread_bps)

    wider = quotes.copy()
    wider.loc[tested, "ask_price"] = wider.loc[tested, "ask_price"] * 1.01  # 100 bps wider in the test
    assert resolved_with(wider, "test_wider") == item.costs.spread_bps
    wider = quotes.copy()
    wider.loc[~tested, "ask_price"] = wider.loc[~tested, "ask_price"] * 1.01  # and before it: it moves
    assert resolved_with(wider, "research_wider") > item.costs.spread_bps + 40
    with pytest.raises(SpecError) as refused:  # quotes in the test block only: none to measure
        resolved_with(quotes[tested], "test_only")
    message = str(refused.value)
    assert "unit `spread`, field `costs.spread_bps`" in message and "coinbase btc_usd" in message
    assert "test block" in message and "\n" not in message


def test_a_store_without_quotes_refuses_the_unit_in_one_line(data_dir: Path, tmp_path: Path) -> None:
    bars_only = _store(tmp_path / "bars", data_dir, ("trade",))
    with pytest.raises(SpecError) as refused:
        validate(_spec(), bars_only)
    message = str(refused.value)
    assert message.startswith("unit `spread`, field `costs.spread_bps`: the value is 'quoted', but the store")
    assert "no quotes for coinbase btc_usd" in message and "\n" not in message
    validate(_spec(Costs(spread_bps=0.5)), bars_only)  # a stated spread needs no quotes

def test_quotes_on_other_days_are_no_quotes(quoted: MarketStore) -> None:
    unit = replace(_spec().units[0], start="2017-09-05", end="2017-09-06")
    with pytest.raises(SpecError, match=r"no quotes for coinbase btc_usd in \[2017-09-05, 2017-09-06\)"):
        check_quotes(unit, quoted)
    check_quotes(replace(unit, start="2017-09-04 23:00"), quoted)  # one quoted day in range is enough


def test_finalize_charges_the_figure_the_result_records() -> None:
    fixture = Path(__file__).parents[1] / "experiment" / "fixtures" / "old_experiment"
    trial = load_results(str(fixture))[1]
    unit = _spec().units[0]
    measured = Costs(fee_bps=4.0, spread_bps=0.011)
    recorded = replace(trial, backtest={"costs": measured.as_dict(), "position": {}})
    assert charged_costs(recorded, unit) == measured
    with pytest.raises(SpecError, match=r"`costs.spread_bps`: .* records no resolved spread"):
        charged_costs(replace(trial, backtest=None), unit)
    stated = replace(unit, costs=Costs(spread_bps=0.5))
    assert charged_costs(replace(trial, backtest=None), stated) == Costs(spread_bps=0.5)
