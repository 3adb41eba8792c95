"""The contract every feature keeps, checked over every feature class on the real data: no look-ahead
(the value at t is identical when everything after the close of bar t is removed from the store),
events exactly on both boundaries of a bar seen exactly as the convention says (a synthetic store),
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
from atlas_ray.featurestore._features._feature import _MarketFeature, feature_classes
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


# ------------------------------------------------------------------------------- bar boundaries
BOUNDARY_DAY = pd.Timestamp("2023-03-01", tz="UTC")
BOUNDARY_WINDOW = (BOUNDARY_DAY + pd.Timedelta(hours=9), BOUNDARY_DAY + pd.Timedelta(hours=10))
BOUNDARY_BAR = BOUNDARY_DAY + pd.Timedelta(hours=9, minutes=30)
ONE_NS = pd.Timedelta(1, "ns")
LEVELS = {"coinbase": 100.0, "kraken": 100.2, "binance": 99.9, "bitstamp": 100.0, "itbit": 101.0}
"""Price level per exchange: different midpoints, and itbit's book crosses bitstamp's (arbitrage)."""


def _boundary_store(root: str, changed: frozenset[tuple[str, pd.Timestamp]]) -> MarketStore:
    """A synthetic store around ``BOUNDARY_BAR``, its events exactly on bar boundaries.

    Every minute ``m`` of the window: one trade stamped exactly ``m`` on coinbase, kraken and binance
    (the first instant of bar ``m``, the last instant after bar ``m - 1``); a quote and a 5-level book
    snapshot stamped exactly ``m`` and another at ``m + 1 ns`` on every exchange. ``changed``: the
    (kind, stamp) events whose prices move up 0.01% and whose sizes double.
    """
    store = MarketStore(root)
    start, end = BOUNDARY_WINDOW
    minutes = pd.date_range(start - 10 * STEP, end + 5 * STEP, freq="1min")
    rng = np.random.default_rng(0)
    wiggle = rng.normal(0, 0.05, len(minutes))
    for exchange, level in LEVELS.items():
        trades, quotes, books = [], [], []
        for k, m in enumerate(minutes):
            price, size = level + wiggle[k], 1.0 + k % 3
            if ("trades", m) in changed:
                price, size = price * 1.0001, size * 2
            trades.append({"timestamp": m, "price": price, "size": size, "side": "buy", "trade_id": f"{k}"})
            for stamp in (m, m + ONE_NS):
                bump, scale = (1.0001, 2.0) if ("quotes", stamp) in changed else (1.0, 1.0)
                mid = (level + wiggle[k] + (0.01 if stamp != m else 0.0)) * bump
                quotes.append({"timestamp": stamp, "bid_price": mid - 0.05, "bid_size": 2.0 * scale,
                               "ask_price": mid + 0.05, "ask_size": 3.0 * scale})
                bump, scale = (1.0001, 2.0) if ("book", stamp) in changed else (1.0, 1.0)
                for lvl in range(5):
                    books.append({"timestamp": stamp, "side": "bid", "level": lvl,
                                  "price": (mid - 0.05 - 0.1 * lvl) * bump, "size": (1.0 + lvl) * scale})
                    books.append({"timestamp": stamp, "side": "ask", "level": lvl,
                                  "price": (mid + 0.05 + 0.1 * lvl) * bump, "size": (1.5 + lvl) * scale})
        pair = "btc_usdt" if exchange == "binance" else "btc_usd"
        if exchange in ("coinbase", "kraken", "binance"):
            store.write(pd.DataFrame(trades), exchange=exchange, pair=pair, kind="trades")
        store.write(pd.DataFrame(quotes), exchange=exchange, pair=pair, kind="quotes")
        if exchange in ("bitstamp", "itbit"):
            store.write(pd.DataFrame(books), exchange=exchange, pair=pair, kind="book")
    return store


@pytest.fixture(scope="module")
def boundary_stores() -> dict[frozenset[tuple[str, pd.Timestamp]], MarketStore]:
    """Synthetic stores by the events changed in them, made on first use."""
    return {}


def _boundary_value(
    cache: dict[frozenset[tuple[str, pd.Timestamp]], MarketStore],
    tmp: Path,
    feature: Feature,
    changed: frozenset[tuple[str, pd.Timestamp]],
) -> float:
    if changed not in cache:
        cache[changed] = _boundary_store(str(tmp / f"boundary-{len(cache)}"), changed)
    data = MarketData(cache[changed], *BOUNDARY_WINDOW, Resolution.ONE_MIN)
    return float(feature.compute(data)[BOUNDARY_BAR])


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_events_exactly_on_the_bar_boundaries(
    case: Case,
    boundary_stores: dict[frozenset[tuple[str, pd.Timestamp]], MarketStore],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The bar at ``t`` covers ``[t, t + 1 min)``: a trade stamped exactly ``t`` is in it and one stamped
    exactly ``t + 1 min`` is not; quotes and book snapshots stamped at or before ``t + 1 min`` are known
    at its close and one stamped 1 ns later is not (for a label looking ``h`` bars forward, the close
    is that of bar ``t + h``). Changing an event the feature may see changes its value at ``t``;
    changing one it may not see changes nothing."""
    feature = case.feature
    tmp = tmp_path_factory.getbasetemp() / "boundary"
    tmp.mkdir(exist_ok=True)
    close = BOUNDARY_BAR + (1 + feature.horizon) * STEP
    kinds = {"trades" if kind == "bars" else kind for _, _, kind in case.reads}
    if "quotes" in kinds or "book" in kinds:
        kinds -= {"trades"}  # FV reads bars only where quotes are missing: here they are not
    base = _boundary_value(boundary_stores, tmp, feature, frozenset())
    assert np.isfinite(base), f"{case.id}: no value at {BOUNDARY_BAR} in the synthetic store"
    for kind in sorted(kinds):
        seen, unseen = (BOUNDARY_BAR, close) if kind == "trades" else (close, close + ONE_NS)
        may = _boundary_value(boundary_stores, tmp, feature, frozenset({(kind, seen)}))
        may_not = _boundary_value(boundary_stores, tmp, feature, frozenset({(kind, unseen)}))
        assert may != base, f"{case.id} does not see the {kind} event at {seen}, which it may"
        assert may_not == base, f"{case.id} sees the {kind} event at {unseen}, after the bar's close"
