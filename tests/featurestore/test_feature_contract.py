"""The contract every feature keeps, checked over every feature class on the real data: no look-ahead
(the value at t is identical when everything after the close of bar t is removed from the store),
independence from where the window starts (what makes partitioned builds exact), name round trip,
float64 on the grid, the declared requirements, and a clear error when the store lacks the data."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import atlas_ray.featurestore as featurestore
from atlas_ray.errors import MissingDataError
from atlas_ray.featurestore import BidStrength, Feature, MarketData, MarketStore, Resolution
from atlas_ray.featurestore._feature import _MarketFeature, feature_classes
from tests.featurestore._feature_cases import (
    CASES,
    Case,
    make_arb_store,
    times_of,
    truncated_copy,
    window_of,
)

STEP = Resolution.ONE_MIN.offset


@pytest.fixture(scope="module")
def stores(
    minute_store: MarketStore, book_store: MarketStore, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, MarketStore]:
    arb = make_arb_store(book_store, str(tmp_path_factory.mktemp("arb_store")))
    return {"minute": minute_store, "book": book_store, "arb": arb}


@pytest.fixture(scope="module")
def truncated(
    stores: dict[str, MarketStore], tmp_path_factory: pytest.TempPathFactory
) -> dict[tuple[str, pd.Timestamp], MarketStore]:
    """Truncated copies, made on first use and shared by every case."""
    return {}


def _truncated(
    cache: dict[tuple[str, pd.Timestamp], MarketStore],
    stores: dict[str, MarketStore],
    which: str,
    cutoff: pd.Timestamp,
    tmp: Path,
) -> MarketStore:
    key = (which, cutoff)
    if key not in cache:
        root = tmp / f"{which}-{cutoff.strftime('%Y%m%dT%H%M')}"
        cache[key] = truncated_copy(stores[which], str(root), cutoff, STEP)
    return cache[key]


@pytest.fixture(scope="module")
def full_values(stores: dict[str, MarketStore]) -> dict[str, pd.Series]:
    """Each case's feature over its whole window, computed once."""
    out = {}
    for case in CASES:
        start, end = window_of(case)
        data = MarketData(stores[case.store], start, end, Resolution.ONE_MIN)
        data.check([case.feature])
        out[case.id] = case.feature.compute(data)
    return out


def test_every_exported_feature_class_is_in_the_contract_suite() -> None:
    exported = {
        obj
        for name in featurestore.__all__
        if isinstance(obj := getattr(featurestore, name), type)
        and issubclass(obj, Feature)
        and not inspect.isabstract(obj)
    }
    registered = set(feature_classes().values())
    covered = {type(case.feature) for case in CASES}
    assert exported == registered  # every public feature class is exported
    assert exported - covered == set(), f"add a Case for {sorted(c.__name__ for c in exported - covered)}"
    assert len(exported) >= 18


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_name_round_trip(case: Case) -> None:
    assert Feature.from_name(case.feature.name) == case.feature
    assert Feature.from_name(case.feature.name).name == case.feature.name


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_values_are_float64_on_the_grid(case: Case, full_values: dict[str, pd.Series]) -> None:
    values = full_values[case.id]
    start, end = window_of(case)
    grid = pd.date_range(start, end, freq="1min", inclusive="left", tz="UTC")
    assert values.dtype == np.float64
    assert values.index.equals(grid)
    assert values.name == case.feature.name
    assert values.notna().sum() > len(grid) / 3  # real values, not an empty shell
    assert np.isfinite(values.dropna()).all()


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_requirements_declare_what_it_reads(case: Case) -> None:
    requirements = case.feature.requirements()
    declared = {(r.exchange, r.pair, r.kind) for r in requirements}
    assert declared == case.reads
    assert all(r.resolution is case.feature.resolution for r in requirements)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_no_look_ahead(
    case: Case,
    stores: dict[str, MarketStore],
    truncated: dict[tuple[str, pd.Timestamp], MarketStore],
    full_values: dict[str, pd.Series],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Remove everything after the close of bar ``t`` (after bar ``t + horizon`` for a label) from the
    store: the value at ``t`` does not change."""
    start, _ = window_of(case)
    tmp = tmp_path_factory.getbasetemp() / "truncated"
    finite = 0
    for t in times_of(case):
        cutoff = t + case.feature.horizon * STEP
        store = _truncated(truncated, stores, case.store, cutoff, tmp)
        data = MarketData(store, start, cutoff + STEP, Resolution.ONE_MIN)
        short = case.feature.compute(data)
        expected = full_values[case.id][t]
        np.testing.assert_equal(short[t], expected, err_msg=f"{case.id} at {t}")
        finite += bool(np.isfinite(expected))
    assert finite >= 2


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_value_does_not_depend_on_where_the_window_starts(
    case: Case, stores: dict[str, MarketStore], full_values: dict[str, pd.Series]
) -> None:
    """A window starting ``halo`` rows before ``t`` gives the value at ``t`` bit for bit (so a build
    split into partitions, each widened by the halo, equals a single-process build)."""
    before, after = case.feature.halo
    finite = 0
    for t in times_of(case):
        data = MarketData(stores[case.store], t - before * STEP, t + (after + 1) * STEP, Resolution.ONE_MIN)
        expected = full_values[case.id][t]
        np.testing.assert_equal(case.feature.compute(data)[t], expected, err_msg=f"{case.id} at {t}")
        finite += bool(np.isfinite(expected))
    assert finite >= 2


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_missing_data_is_named(case: Case, stores: dict[str, MarketStore]) -> None:
    variant = case.missing
    if variant is None:
        assert isinstance(case.feature, _MarketFeature)
        variant = case.feature.gemini()
    start, end = window_of(case)
    data = MarketData(stores[case.store], start, end, Resolution.ONE_MIN)
    lacking = next(r for r in variant.requirements() if data.satisfies(r) is None)
    with pytest.raises(MissingDataError) as caught:
        data.check([case.feature, variant])
    message = str(caught.value)
    assert message.startswith(variant.name)
    assert lacking.describe() in message and "\n" not in message
    with pytest.raises(MissingDataError) as computed:  # compute without check names it too
        variant.compute(data)
    assert str(computed.value).startswith(variant.name)


def test_book_features_on_an_exchange_with_only_bars(minute_store: MarketStore) -> None:
    data = MarketData(minute_store, *window_of(CASES[0]), Resolution.ONE_MIN)
    feature = BidStrength().coinbase().one_min().slippage(0.5)
    with pytest.raises(MissingDataError) as caught:
        data.check([feature])
    assert str(caught.value) == (
        "BidStrength().coinbase().one_min().slippage(0.5) needs book for coinbase btc_usd, but the store "
        f"at {minute_store.root} holds none (for coinbase btc_usd it holds: bars_1m)."
    )
