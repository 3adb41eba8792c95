"""Shared by the feature tests: one example of every feature class on the real data, the windows they
are checked on, the arbitrage store (two real books) and truncated copies of a store."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from atlas_ray.featurestore import (
    FV,
    VWAP,
    Ask,
    AskStrength,
    AskStrengthUSD,
    Bid,
    BidStrength,
    BidStrengthUSD,
    Feature,
    InterExchangeSpread,
    LogReturns,
    MarketStore,
    Midpoint,
    MidpointDiff,
    SignedArbRevenue,
    SignedArbVolumeUSD,
    SimpleReturns,
    Spread,
    Volatility,
    Volume,
)

UTC = "UTC"
MINUTE_WINDOW = (pd.Timestamp("2023-03-04 15:00", tz=UTC), pd.Timestamp("2023-03-04 23:00", tz=UTC))
"""Holds Coinbase's 4h38m gap (no bars 17:00..21:36) and several one-bar gaps."""
MINUTE_TIMES = tuple(
    pd.Timestamp(f"2023-03-04 {hm}", tz=UTC) for hm in ("16:30", "16:59", "17:02", "17:10", "21:37", "21:45")
)
"""Before the gap, its last bar, filled, past the fill limit, the first bar after it, after it."""
BOOK_WINDOW = (pd.Timestamp("2015-05-01 00:00", tz=UTC), pd.Timestamp("2015-05-01 05:00", tz=UTC))
BOOK_TIMES = tuple(pd.Timestamp(f"2015-05-01 {hm}", tz=UTC) for hm in ("00:20", "01:03", "02:31", "04:30"))
ARB_SHIFT = pd.Timedelta(minutes=7)
"""The "itbit" book of the arbitrage store is Bitstamp's real book 7 minutes later: prices moved, so
the two books cross now and then."""


@dataclass(frozen=True)
class Case:
    """A feature, the store it is checked on and the series it must declare (exchange, pair, kind)."""

    feature: Feature
    store: str  # "minute", "book" or "arb"
    reads: frozenset[tuple[str, str, str]]
    missing: Feature | None = None  # a variant whose data the store lacks (default: on gemini)

    @property
    def id(self) -> str:
        return self.feature.name


def _reads(*items: tuple[str, str, str]) -> frozenset[tuple[str, str, str]]:
    return frozenset(items)


CB, KR, BN = ("coinbase", "btc_usd"), ("kraken", "btc_usd"), ("binance", "btc_usdt")
BS, IT = ("bitstamp", "btc_usd"), ("itbit", "btc_usd")

CASES: tuple[Case, ...] = (
    Case(Volume().coinbase().one_min(), "minute", _reads((*CB, "bars"))),
    Case(VWAP().binance().one_min(), "minute", _reads((*BN, "bars"))),
    Case(Midpoint().kraken().one_min(), "minute", _reads((*KR, "quotes"))),
    Case(Midpoint().bitstamp().one_min(), "book", _reads((*BS, "quotes"))),
    Case(Midpoint().kraken().one_min().from_bars(), "minute", _reads((*KR, "bars"))),  # pinned
    Case(Midpoint().bitstamp().one_min().from_quotes(), "book", _reads((*BS, "quotes"))),  # pinned
    Case(MidpointDiff().coinbase().one_min().lookback(3), "minute", _reads((*CB, "quotes"))),
    Case(MidpointDiff().coinbase().one_min().from_bars().lookback(3), "minute", _reads((*CB, "bars"))),
    Case(MidpointDiff().bitstamp().one_min().lookforward(2), "book", _reads((*BS, "quotes"))),
    Case(SimpleReturns().coinbase().one_min().lookback(4), "minute", _reads((*CB, "bars"))),
    Case(LogReturns().coinbase().one_min().lookback(5), "minute", _reads((*CB, "bars"))),
    Case(LogReturns().coinbase().one_min().lookforward(1), "minute", _reads((*CB, "bars"))),
    Case(Volatility().coinbase().one_min().window(10), "minute", _reads((*CB, "bars"))),
    Case(BidStrength().bitstamp().one_min().slippage(0.5), "book", _reads((*BS, "book"))),
    Case(AskStrength().bitstamp().one_min().slippage(0.3), "book", _reads((*BS, "book"))),
    Case(BidStrengthUSD().bitstamp().one_min(), "book", _reads((*BS, "book"))),
    Case(AskStrengthUSD().bitstamp().one_min().slippage(1.0), "book", _reads((*BS, "book"))),
    Case(Bid().bitstamp().one_min(), "book", _reads((*BS, "quotes"))),
    Case(Ask().bitstamp().one_min().depth(3), "book", _reads((*BS, "book"))),
    Case(Spread().bitstamp().one_min().depth(1), "book", _reads((*BS, "book"))),
    Case(
        InterExchangeSpread(Midpoint().coinbase().one_min(), Midpoint().kraken().one_min()),
        "minute",
        _reads((*CB, "quotes"), (*KR, "quotes")),
        missing=InterExchangeSpread(Midpoint().coinbase().one_min(), Midpoint().gemini().one_min()),
    ),
    Case(
        FV(Midpoint().coinbase().one_min(), Midpoint().kraken().one_min(), Midpoint().binance().one_min()),
        "minute",
        _reads(
            (*CB, "quotes"), (*KR, "quotes"), (*BN, "quotes"), (*CB, "bars"), (*KR, "bars"), (*BN, "bars")
        ),
        missing=FV(Midpoint().coinbase().one_min(), Midpoint().gemini().one_min()),
    ),
    Case(
        FV(Midpoint().coinbase().one_min(), Midpoint().kraken().one_min()).weights(1.0, 3.0),
        "minute",
        _reads((*CB, "quotes"), (*KR, "quotes")),
        missing=FV(Midpoint().okcoin().one_min(), Midpoint().kraken().one_min()).weights(1.0, 3.0),
    ),
    Case(
        SignedArbRevenue("bitstamp", "itbit").one_min(),
        "arb",
        _reads((*BS, "book"), (*IT, "book")),
        missing=SignedArbRevenue("bitstamp", "gemini").one_min(),
    ),
    Case(
        SignedArbVolumeUSD("itbit", "bitstamp").one_min(),
        "arb",
        _reads((*BS, "book"), (*IT, "book")),
        missing=SignedArbVolumeUSD("okcoin", "bitstamp").one_min(),
    ),
)


def window_of(case: Case) -> tuple[pd.Timestamp, pd.Timestamp]:
    return MINUTE_WINDOW if case.store == "minute" else BOOK_WINDOW


def times_of(case: Case) -> tuple[pd.Timestamp, ...]:
    return MINUTE_TIMES if case.store == "minute" else BOOK_TIMES


def make_arb_store(book_store: MarketStore, root: str) -> MarketStore:
    """Bitstamp's real book and quotes, plus the same book 7 minutes later filed as "itbit"."""
    store = MarketStore(root)
    for kind in ("book", "quotes"):
        frame = book_store.read("bitstamp", "btc_usd", kind)
        store.write(frame, exchange="bitstamp", pair="btc_usd", kind=kind)
        later = frame.copy()
        later.index = later.index - ARB_SHIFT
        store.write(later, exchange="itbit", pair="btc_usd", kind=kind)
    return store


def truncated_copy(store: MarketStore, root: str, cutoff: pd.Timestamp, step: pd.Timedelta) -> MarketStore:
    """A real store holding what ``store`` held at the close of bar ``cutoff``: bars opened at or
    before ``cutoff`` (and trades before its close), quotes and book snapshots stamped at or before
    ``cutoff + step``. Only the days up to the cutoff's are copied."""
    out = MarketStore(root)
    one_ns = pd.Timedelta(1, "ns")
    for exchange in store.exchanges():
        for pair in store.pairs(exchange):
            for kind in store.kinds(exchange, pair):
                last = cutoff + one_ns if kind.startswith("bars") else cutoff + step + one_ns
                if kind == "trades":
                    last = cutoff + step
                start = cutoff.floor("D") - pd.Timedelta(days=1)
                frame = store.read(exchange, pair, kind, start=start, end=last)
                if len(frame):
                    out.write(frame, exchange=exchange, pair=pair, kind=kind)
    return out
