"""Feature names (canonical, parsed back, never evaluated) and the fluent steps (immutable copies,
validated arguments, inapplicable steps refused)."""

from __future__ import annotations

import dataclasses

import pytest

from atlas_ray.errors import FeatureError
from atlas_ray.featurestore import (
    FV,
    Bid,
    BidStrength,
    Feature,
    InterExchangeSpread,
    LogReturns,
    Midpoint,
    Resolution,
    SignedArbRevenue,
    Spread,
    Volatility,
    Volume,
)

CANONICAL = [
    "LogReturns().bitstamp().one_min().lookforward(1)",
    "LogReturns().coinbase().five_min().lookback(15)",
    "BidStrength().bitstamp().one_min().slippage(0.5)",
    "InterExchangeSpread(Midpoint().coinbase().one_min(), Midpoint().kraken().one_min())",
    'LogReturns().binance().pair("btc_usd").hour()',
    'Volume().exchange("lmax").ten_min()',
    "Spread().bitstamp().one_min().depth(3)",
    "Volatility().kraken().one_min().window(30)",
    "FV(Midpoint().coinbase().one_min(), Midpoint().kraken().one_min()).weights(2.0, 1.0)",
    "FV(Midpoint().coinbase().one_min(), Midpoint().binance().one_min()).window(5)",
    'SignedArbRevenue("bitstamp", "itbit").one_min()',
    'SignedArbRevenue("bitstamp", "kraken").pair("btc_eur").hour()',
    "InterExchangeSpread(LogReturns().coinbase().one_min().lookforward(2), Volume().kraken().one_min())",
]


@pytest.mark.parametrize("name", CANONICAL)
def test_canonical_names_parse_back_to_themselves(name: str) -> None:
    feature = Feature.from_name(name)
    assert feature.name == name
    assert Feature.from_name(feature.name) == feature
    assert repr(feature) == name


def test_names_are_canonical_whatever_the_order_of_the_steps() -> None:
    a = LogReturns().lookback(3).hour().kraken()
    b = LogReturns().kraken().hour().lookback(3)
    assert a == b and hash(a) == hash(b)
    assert a.name == "LogReturns().kraken().hour().lookback(3)"
    # default pair and default values are omitted; a default pair written out is the same feature
    assert (
        LogReturns().bitstamp().pair("btc_usd").one_min().lookback(1).name
        == "LogReturns().bitstamp().one_min()"
    )
    assert BidStrength().bitstamp().slippage(0.1).name == "BidStrength().bitstamp().one_min()"
    assert Feature.from_name(" LogReturns( ) . kraken ( ).hour( ).lookback( 3 ) ") == a
    assert Feature.from_name('Volume().exchange("bitstamp").one_min()') == Volume().bitstamp()


def test_parsed_fields_equal_the_built_fields() -> None:
    built = BidStrength().bitflyer().five_min().slippage(0.25)
    parsed = Feature.from_name(built.name)
    assert dataclasses.asdict(parsed) == dataclasses.asdict(built)
    assert isinstance(parsed, BidStrength) and parsed.slippage_percent == 0.25


@pytest.mark.parametrize(
    ("name", "position", "words"),
    [
        ("LogReturns().bitstamp(", 22, "expected"),
        ("LogReturns().bitstamp().one_min() extra", 34, "'.' or the end"),
        ("LogReturns(.bitstamp()", 11, "expected"),
        ("Foo().bitstamp()", 0, "unknown feature 'Foo'"),
        ("LogReturns().nasdaq()", 13, "unknown step .nasdaq()"),
        ("LogReturns().__class__()", 13, "unknown step .__class__()"),
        ("LogReturns().bitstamp().lookback(0)", 24, "`lookback >= 1`"),
        ("LogReturns().bitstamp().slippage(0.5)", 24, "does not apply to LogReturns"),
        ("LogReturns().lookback(Volume())", 13, "literal arguments"),
        ("LogReturns(3)", 0, "takes no arguments"),
        ('InterExchangeSpread("a", "b")', 0, "two features"),
        ("LogReturns().bitstamp() $", 24, "unexpected character '$'"),
    ],
)
def test_bad_names_point_at_the_position(name: str, position: int, words: str) -> None:
    with pytest.raises(FeatureError) as caught:
        Feature.from_name(name)
    message = str(caught.value)
    assert words in message
    assert f"position {position}" in message
    assert "\n" not in message


# ------------------------------------------------------------------------------------ fluent steps
def test_steps_return_new_frozen_objects() -> None:
    base = LogReturns()
    stepped = base.bitstamp()
    assert stepped is not base and base.exchange_name is None and stepped.exchange_name == "bitstamp"
    hourly = stepped.hour()
    assert stepped.resolution is Resolution.ONE_MIN and hourly.resolution is Resolution.HOUR
    with pytest.raises(dataclasses.FrozenInstanceError):
        stepped.exchange_name = "kraken"  # type: ignore[misc]


def test_each_exchange_has_its_default_pair_unless_a_pair_was_given() -> None:
    assert LogReturns().binance().requirements()[0].pair == "btc_usdt"
    assert LogReturns().bitflyer().requirements()[0].pair == "btc_jpy"
    assert LogReturns().itbit().requirements()[0].pair == "btc_usd"
    assert LogReturns().pair("btc_eur").kraken().requirements()[0].pair == "btc_eur"
    assert LogReturns().bitflyer().pair("fx_btc_jpy").requirements()[0].pair == "fx_btc_jpy"
    for method in (
        "bitstamp",
        "itbit",
        "coinbase",
        "kraken",
        "binance",
        "bitfinex",
        "bitflyer",
        "gemini",
        "okcoin",
    ):
        assert getattr(Volume(), method)() == Volume().exchange(method)


@pytest.mark.parametrize(
    ("build", "rule"),
    [
        (lambda: LogReturns().lookback(0), "the value of `lookback` is 0, but must be `lookback >= 1`."),
        (lambda: LogReturns().lookforward(-2), "`lookforward >= 1`"),
        (lambda: LogReturns().lookback(2.5), "the value of `lookback` is 2.5, but must be an integer"),
        (lambda: LogReturns().lookback(True), "the value of `lookback` is True"),
        (lambda: Volatility().window(1), "the value of `window` is 1, but must be `window >= 2`."),
        (lambda: BidStrength().slippage(0), "the value of `slippage` is 0, but must be `0 < slippage < 100"),
        (lambda: BidStrength().slippage(float("nan")), "the value of `slippage` is nan"),
        (lambda: BidStrength().slippage("0.5"), "but must be a number"),
        (lambda: Bid().depth(-1), "the value of `depth` is -1, but must be `depth >= 0`."),
        (lambda: Volume().exchange("Bit Stamp"), "the value of `exchange` is 'Bit Stamp'"),
        (lambda: Volume().pair("BTCUSD"), "the value of `pair` is 'BTCUSD'"),
        (lambda: LogReturns().lookback(3).lookforward(1), "looks back or forward, not both"),
        (lambda: LogReturns().lookforward(1).lookback(3), "looks back or forward, not both"),
        (lambda: _fv().weights(1.0), "must get one per part"),
        (lambda: _fv().weights(1.0, -1.0), "but must be `weight >= 0`"),
        (lambda: _fv().weights(0, 0), "must `sum > 0`"),
    ],
)
def test_steps_validate_their_argument(build, rule: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FeatureError) as caught:
        build()
    assert rule in str(caught.value)
    assert isinstance(caught.value, FeatureError)


def _fv() -> FV:
    return FV(Midpoint().coinbase(), Midpoint().kraken())


@pytest.mark.parametrize(
    ("build", "step"),
    [
        (lambda: Volume().bitstamp().lookback(2), "lookback"),
        (lambda: Volume().bitstamp().slippage(0.5), "slippage"),
        (lambda: LogReturns().window(5), "window"),
        (lambda: Volatility().lookforward(1), "lookforward"),
        (lambda: Midpoint().depth(2), "depth"),
        (lambda: Bid().slippage(0.5), "slippage"),
        (lambda: BidStrength().depth(1), "depth"),
        (lambda: _spread().hour(), "hour"),
        (lambda: _spread().bitstamp(), "exchange"),
        (lambda: _fv().lookback(2), "lookback"),
        (lambda: SignedArbRevenue("bitstamp", "itbit").kraken(), "exchange"),
        (lambda: Spread().weights(1.0), "weights"),
    ],
)
def test_inapplicable_steps_are_refused_naming_feature_and_step(build, step: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FeatureError) as caught:
        build()
    message = str(caught.value)
    assert f"the step .{step}() does not apply to" in message
    assert message.split(":")[0].endswith(")")  # starts with the feature's name


def _spread() -> InterExchangeSpread:
    return InterExchangeSpread(Midpoint().coinbase(), Midpoint().kraken())


def test_composites_check_their_parts() -> None:
    with pytest.raises(FeatureError, match="must share one resolution"):
        InterExchangeSpread(Midpoint().coinbase().one_min(), Midpoint().kraken().hour())
    with pytest.raises(FeatureError, match="must be a Midpoint"):
        FV(Midpoint().coinbase(), Volume().kraken())
    with pytest.raises(FeatureError, match="`parts >= 2`"):
        FV(Midpoint().coinbase())
    with pytest.raises(FeatureError, match="has no exchange"):
        FV(Midpoint().coinbase(), Midpoint())
    with pytest.raises(FeatureError, match="must differ"):
        SignedArbRevenue("bitstamp", "bitstamp")
    with pytest.raises(FeatureError, match="lower-case exchange name"):
        SignedArbRevenue("bitstamp", "It Bit")
    with pytest.raises(FeatureError, match="has no exchange"):
        LogReturns().one_min().requirements()


def test_horizon_and_halo() -> None:
    assert LogReturns().bitstamp().horizon == 0 and LogReturns().bitstamp().halo == (1, 0)
    assert LogReturns().bitstamp().lookforward(3).horizon == 3
    assert LogReturns().bitstamp().lookforward(3).halo == (0, 3)
    assert Volatility().bitstamp().window(20).halo == (20, 0)
    assert Volume().bitstamp().halo == (0, 0)
    spread = InterExchangeSpread(LogReturns().coinbase().lookback(4), LogReturns().kraken().lookforward(2))
    assert spread.halo == (4, 2) and spread.horizon == 2
    assert _fv().window(5).halo == (4, 0)
