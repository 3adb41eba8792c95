"""The source rule (``featurestore._features._sources``): every input's source decided once, over the
build's range, recorded with the build and read back by later builds.

The reported failure first: a featureset built on a store of real minute bars alone (Coinbase and
Kraken, March 2023), then real Coinbase quotes ingested for another date (LEAN's quote bars of
2018-04-04). Deciding "quotes if the store holds any quotes on any date" makes the Coinbase midpoint
read quotes in March, where there are none: not a single row is left. By the rule (held on a day of
the range) the rebuild reads bars, as the first build did, and equals it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from atlas_ray.errors import AtlasError, FeatureError, MissingDataError
from atlas_ray.featurestore import (
    Feature,
    FeatureLabelSet,
    InterExchangeSpread,
    LogReturns,
    MarketData,
    MarketStore,
    Midpoint,
    MidpointDiff,
    Percentiles,
    Resolution,
    Volume,
)
from atlas_ray.featurestore._features._sources import (
    SOURCES_ATTR,
    SeriesSource,
    SourcedMarket,
    Sources,
    decide,
    decide_series,
)
from atlas_ray.featurestore._featuresets._build import build_local

START, END = "2023-03-01", "2023-03-03"
QUOTES_DAY = "20180404"  # real Coinbase BTC-USD quote bars (LEAN), years away from the bars


def _featureset(*extra: Feature) -> FeatureLabelSet:
    return FeatureLabelSet(
        [
            LogReturns().coinbase().one_min().lookback(5),
            Volume().kraken().one_min(),
            InterExchangeSpread(Midpoint().coinbase().one_min(), Midpoint().kraken().one_min()),
            *extra,
        ],
        [LogReturns().coinbase().one_min().lookforward(1)],
        categories=Percentiles((33.3, 66.7)),
    )


@pytest.fixture
def bars_store(data_dir: Path, tmp_path: Path) -> MarketStore:
    """Real Coinbase and Kraken minute bars of March 2023, nothing else (a store of the test's own)."""
    store = MarketStore(tmp_path / "store")
    for name, exchange in (("coinbase_btcusd.parquet", "coinbase"), ("kraken_btcusd.parquet", "kraken")):
        store.ingest(data_dir / "minute_bars_2023-03" / name, exchange=exchange, pair="btc_usd")
    return store


def _add_quotes(store: MarketStore, data_dir: Path) -> None:
    store.ingest(
        data_dir / "lean_coinbase_btcusd" / f"{QUOTES_DAY}_quote.zip", exchange="coinbase", pair="btc_usd"
    )
    assert store.dates("coinbase", "btc_usd", "quotes")  # quotes, on another date than the range


# ------------------------------------------------------------------------------- the reported failure
def test_quotes_on_another_date_change_nothing_the_build_reads(
    bars_store: MarketStore, data_dir: Path
) -> None:
    fls = _featureset()
    before = fls.build(START, END, bars_store)
    recorded = before.attrs[SOURCES_ATTR]
    midpoint = Sources.from_json(recorded).get("coinbase", "btc_usd", "quotes")
    assert midpoint is None and Sources.from_json(recorded).get("coinbase", "btc_usd", "bars") is not None

    _add_quotes(bars_store, data_dir)
    lo, hi = pd.Timestamp(START, tz="UTC"), pd.Timestamp(END, tz="UTC")
    # the failure as reported: decided from "any quotes on any date" (each series decided over the
    # whole store when first read), the Coinbase midpoint reads quotes where there are none
    assert SourcedMarket(bars_store, Resolution.ONE_MIN).provides("coinbase", "btc_usd", "quotes") is not None
    assert len(build_local(fls, bars_store, lo, hi)) == 0

    # by the rule: decided over the range's days, the same sources, an uncached rebuild equal to the first
    assert fls.sources(START, END, bars_store).to_json() == recorded
    again = fls.build(START, END, bars_store, cache=False)
    pd.testing.assert_frame_equal(again, before)
    assert again.attrs == before.attrs
    # and built by the recorded decision (as a trial's later builds are), equal too
    pd.testing.assert_frame_equal(fls.build_local(START, END, bars_store, sources=recorded), before)


def test_quotes_held_in_the_range_are_read(bars_store: MarketStore, data_dir: Path) -> None:
    _add_quotes(bars_store, data_dir)
    day = pd.Timestamp(QUOTES_DAY, tz="UTC")
    following = day + pd.Timedelta(days=1)
    columns = [Midpoint().coinbase().one_min()]
    on_the_day = decide(bars_store, columns, day, following, Resolution.ONE_MIN)
    assert on_the_day.series == (SeriesSource("coinbase", "btc_usd", "quotes", "quotes"),)
    lo, hi = pd.Timestamp(START, tz="UTC"), pd.Timestamp(END, tz="UTC")
    march = decide(bars_store, columns, lo, hi, Resolution.ONE_MIN)
    assert march.series == (SeriesSource("coinbase", "btc_usd", "bars", "bars_1m"),)
    assert march.days == ("2023-03-01", "2023-03-02")
    # the label reads bars, and there are none on the quotes' day: refused, naming the range
    fls = FeatureLabelSet(columns, [LogReturns().coinbase().one_min().lookforward(1)])
    with pytest.raises(
        MissingDataError, match=r"bars for coinbase btc_usd on a day of \[2018-04-04, 2018-04-04\]"
    ):
        fls.sources(day, following, bars_store)


# ------------------------------------------------------------------------------------ the rule itself
def test_bars_stored_else_resampled_from_finer_else_trades(minute_store: MarketStore) -> None:
    days = ("2023-03-01", "2023-03-07")
    for resolution, read in (
        (Resolution.ONE_MIN, "bars_1m"),
        (Resolution.FIVE_MIN, "bars_1m"),
        (Resolution.HOUR, "bars_1m"),
    ):
        found = decide_series(minute_store, "coinbase", "btc_usd", "bars", resolution, days)
        assert found == SeriesSource("coinbase", "btc_usd", "bars", read)
        assert found.resampled_from is Resolution.ONE_MIN
    assert decide_series(minute_store, "coinbase", "btc_usd", "quotes", Resolution.ONE_MIN, days) is None
    assert (
        decide_series(
            minute_store, "coinbase", "btc_usd", "bars", Resolution.ONE_MIN, ("2024-01-01", "2024-01-31")
        )
        is None
    )


def test_a_pinned_source_and_its_name(bars_store: MarketStore, data_dir: Path) -> None:
    pinned = Midpoint().coinbase().one_min().from_bars()
    assert pinned.name == "Midpoint().coinbase().one_min().from_bars()"
    assert Feature.from_name(pinned.name) == pinned != Midpoint().coinbase().one_min()
    diff = MidpointDiff().kraken().five_min().from_quotes().lookback(3)
    assert diff.name == "MidpointDiff().kraken().five_min().from_quotes().lookback(3)"
    assert Feature.from_name(diff.name) == diff
    with pytest.raises(FeatureError, match=r"\.from_bars\(\) does not apply to Volume"):
        Volume().coinbase().one_min().from_bars()
    # pinned quotes on a store without quotes in the range: refused by name, never bars instead
    fls = _featureset(Midpoint().kraken().one_min().from_quotes())
    with pytest.raises(
        MissingDataError, match=r"Midpoint\(\)\.kraken\(\)\.one_min\(\)\.from_quotes\(\) needs quotes"
    ):
        fls.sources(START, END, bars_store)
    # pinned bars on a day that holds quotes and no bars: refused, never quotes instead
    _add_quotes(bars_store, data_dir)
    day = pd.Timestamp(QUOTES_DAY, tz="UTC")
    following = day + pd.Timedelta(days=1)
    with pytest.raises(MissingDataError, match=r"from_bars\(\) needs one_min bars"):
        decide(bars_store, [pinned], day, following, Resolution.ONE_MIN)
    unpinned = decide(bars_store, [Midpoint().coinbase().one_min()], day, following, Resolution.ONE_MIN)
    assert unpinned.series == (SeriesSource("coinbase", "btc_usd", "quotes", "quotes"),)


def test_sources_round_trip_json_and_refuse_malformed() -> None:
    sources = Sources(
        Resolution.FIVE_MIN,
        (
            SeriesSource("kraken", "btc_usd", "quotes", "book"),
            SeriesSource("coinbase", "btc_usd", "bars", "bars_1m"),
        ),
        ("2023-03-01", "2023-03-07"),
    )
    text = json.dumps(sources.to_json())
    assert Sources.from_json(json.loads(text)) == sources
    assert [s.exchange for s in sources.series] == ["coinbase", "kraken"]  # sorted: one canonical form
    with pytest.raises(ValueError, match="read"):
        SeriesSource("coinbase", "btc_usd", "bars", "quotes")
    with pytest.raises(ValueError, match="unknown field"):
        Sources.from_json({**sources.to_json(), "extra": 1})
    with pytest.raises(ValueError, match="decide a series twice"):
        Sources(
            Resolution.ONE_MIN,
            (SeriesSource("a", "b_c", "bars", "bars_1m"), SeriesSource("a", "b_c", "bars", "trades")),
        )


def test_market_data_reads_by_the_recorded_decision(bars_store: MarketStore, data_dir: Path) -> None:
    _add_quotes(bars_store, data_dir)
    day = pd.Timestamp(QUOTES_DAY, tz="UTC")
    recorded = Sources(Resolution.ONE_MIN, (SeriesSource("coinbase", "btc_usd", "bars", "bars_1m"),))
    data = MarketData(bars_store, day, day + pd.Timedelta(hours=1), Resolution.ONE_MIN, sources=recorded)
    assert not data.has("coinbase", "btc_usd", "quotes")  # quotes are stored that day, but not recorded
    with pytest.raises(MissingDataError, match="no quotes for coinbase/btc_usd"):
        data.quotes("coinbase", "btc_usd")
    free = MarketData(bars_store, day, day + pd.Timedelta(hours=1), Resolution.ONE_MIN)
    values = Midpoint().coinbase().one_min().compute(free).to_numpy()
    assert np.isfinite(values).sum() > 50  # without a decision: quotes, decided over the whole store


def test_a_recorded_decision_the_store_cannot_supply_is_refused(bars_store: MarketStore) -> None:
    fls = _featureset()
    recorded = fls.sources(START, END, bars_store).to_json()
    quotes = dict(recorded)
    quotes["series"] = [
        {**s, "kind": "quotes", "read": "quotes"}
        if s["exchange"] == "coinbase" and s["kind"] == "bars"
        else s
        for s in recorded["series"]
    ]
    quotes["series"].append({"exchange": "coinbase", "pair": "btc_usd", "kind": "bars", "read": "bars_1m"})
    with pytest.raises(
        AtlasError, match=r"holds no quotes for coinbase btc_usd on a day of \[2023-03-01, 2023-03-02\]"
    ):
        fls.build(START, END, bars_store, sources=quotes)
    key = fls.cache_path(START, END, bars_store)
    pinned = FeatureLabelSet(
        [
            *fls.features[:2],
            InterExchangeSpread(Midpoint().coinbase().one_min().from_bars(), Midpoint().kraken().one_min()),
        ],
        list(fls.labels),
        categories=fls.categories,
    )
    assert (
        pinned.cache_path(START, END, bars_store) != key
    )  # another definition, another decision: another key


def test_the_decision_as_a_live_market_holds_it() -> None:
    """Live, bars come at the model's resolution (a 5-minute model's feed sends 5-minute bars, the
    build resampled them from 1-minute ones); bars built from trades stay trades unless the feed sends
    bars and no trades (a GDS feed builds them itself)."""
    five = Sources(Resolution.FIVE_MIN, (SeriesSource("coinbase", "btc_usd", "bars", "bars_1m"),))
    assert five.live().series == (SeriesSource("coinbase", "btc_usd", "bars", "bars_5m"),)
    trades = Sources(Resolution.ONE_MIN, (SeriesSource("bitflyer", "btc_jpy", "bars", "trades"),))
    assert trades.live().series[0].read == "trades"
    assert trades.live([("bitflyer", "btc_jpy", "trades")]).series[0].read == "trades"
    assert trades.live([("bitflyer", "btc_jpy", "bars_1m")]).series[0].read == "bars_1m"
    quotes = SeriesSource("kraken", "btc_usd", "quotes", "book")
    assert Sources(Resolution.ONE_MIN, (quotes,)).live().series == (quotes,)
