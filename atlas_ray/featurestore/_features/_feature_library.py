"""Atlas' feature library: the concrete features, each a frozen dataclass whose maths lives in
``_feature_math`` (formulas in the docstrings there).

One-exchange features take an exchange, a pair and a resolution; the parameters each accepts are
listed in its docstring (every other parameter step raises ``FeatureError``). Composite features
(``InterExchangeSpread``, ``FV``, ``SignedArbRevenue``, ``SignedArbVolumeUSD``) take their parts as
constructor arguments, which appear in the name.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Self, cast

import numpy as np

from atlas_ray.errors import FeatureError
from atlas_ray.featurestore._features import _feature_math as fm
from atlas_ray.featurestore._features._feature import (
    EXCHANGE_RULE,
    DataRequirement,
    Feature,
    _MarketFeature,
    check_exchange,
    check_float,
    check_int,
    check_pair,
    default_pair,
)
from atlas_ray.featurestore._features._feature_names import Literal, format_literal
from atlas_ray.featurestore._schema import Resolution

if TYPE_CHECKING:
    from atlas_ray.featurestore._features._market_data import MarketData

__all__ = [
    "FV",
    "Ask",
    "AskStrength",
    "AskStrengthUSD",
    "Bid",
    "BidStrength",
    "BidStrengthUSD",
    "InterExchangeSpread",
    "LogReturns",
    "Midpoint",
    "MidpointDiff",
    "SignedArbRevenue",
    "SignedArbVolumeUSD",
    "SimpleReturns",
    "Spread",
    "Volatility",
    "Volume",
    "VWAP",
]


# ------------------------------------------------------------------------------------- from bars
@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class Volume(_MarketFeature):
    """Traded base volume of the bar (``volume[t]``; 0 for a filled bar). Reads bars."""

    def requirements(self) -> tuple[DataRequirement, ...]:
        return (self._requirement("bars"),)

    def _values(self, data: MarketData) -> np.ndarray:
        return data.bars(*self.market)["volume"].to_numpy(dtype=np.float64)


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class VWAP(_MarketFeature):
    """Volume-weighted average price of the bar (``_feature_math.vwap``). Reads bars.

    Where the source gave no VWAP but the bar traded, the typical price (high + low + close) / 3 stands
    in; a bar without volume has no VWAP (NaN).
    """

    def requirements(self) -> tuple[DataRequirement, ...]:
        return (self._requirement("bars"),)

    def _values(self, data: MarketData) -> np.ndarray:
        bars = data.bars(*self.market)
        return fm.vwap(
            bars["vwap"].to_numpy(), bars["volume"].to_numpy(), bars["high"].to_numpy(),
            bars["low"].to_numpy(), bars["close"].to_numpy(),
        )  # fmt: skip


def _midpoint(feature: _MarketFeature, data: MarketData) -> np.ndarray:
    """Quotes' or bars' midpoint, whichever option of the feature's chain the window's sources chose
    (``_sources``: pinned by the feature, recorded with the build, or decided from the store)."""
    exchange, pair = feature.market
    (requirement,) = feature.requirements()
    chosen = data.satisfies(requirement) or requirement  # (none held: reading the first says so)
    if chosen.kind == "quotes":
        quotes = data.quotes(exchange, pair)
        return fm.midpoint(quotes["bid_price"].to_numpy(), quotes["ask_price"].to_numpy())
    bars = data.bars(exchange, pair)
    return fm.bar_midpoint(bars["high"].to_numpy(), bars["low"].to_numpy())


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class Midpoint(_MarketFeature):
    """The mid price, ``(bid + ask) / 2`` of the top of book known at the close of the bar.

    Reads quotes (stored quotes, else level 0 of stored book snapshots) when the store holds either for
    the exchange and pair over the build's range. **When it holds only bars there** (the March 2023
    Coinbase / Kraken / Binance minute bars have no quotes) it falls back to the bar's middle price
    ``(high + low) / 2``. The choice is the source rule's (``_sources``): made once per build, recorded
    with it and with every trial, and used again by later builds of the trial and its live feeds.
    ``from_quotes()`` / ``from_bars()`` pin it.
    """

    fallback_chain: ClassVar[tuple[str, ...]] = ("quotes", "bars")

    def requirements(self) -> tuple[DataRequirement, ...]:
        return (self._requirement("quotes", fallback="bars"),)

    def _values(self, data: MarketData) -> np.ndarray:
        return _midpoint(self, data)


# --------------------------------------------------------------------------- lookback / lookforward
@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class _Looking(_MarketFeature):
    """A feature over ``lookback(n)`` past bars (default 1) or, as a label, ``lookforward(n)`` next
    bars; one or the other."""

    lookback_rows: int = 1
    lookforward_rows: int = 0

    def lookback(self, n: int) -> Self:
        rows = check_int(self, "lookback", n, 1)
        if self.lookforward_rows:
            raise FeatureError(
                f"{self.name}.lookback({n}): a feature looks back or forward, not both; it already has "
                f"`lookforward = {self.lookforward_rows}`."
            )
        return dataclasses.replace(self, lookback_rows=rows)

    def lookforward(self, n: int) -> Self:
        rows = check_int(self, "lookforward", n, 1)
        if self.lookback_rows != 1:
            raise FeatureError(
                f"{self.name}.lookforward({n}): a feature looks back or forward, not both; it already "
                f"has `lookback = {self.lookback_rows}`."
            )
        return dataclasses.replace(self, lookforward_rows=rows)

    def _name_steps(self) -> list[str]:
        steps = super()._name_steps()
        if self.lookforward_rows:
            steps.append(f"lookforward({self.lookforward_rows})")
        elif self.lookback_rows != 1:
            steps.append(f"lookback({self.lookback_rows})")
        return steps

    @property
    def horizon(self) -> int:
        return self.lookforward_rows

    @property
    def halo(self) -> tuple[int, int]:
        return (0, self.lookforward_rows) if self.lookforward_rows else (self.lookback_rows, 0)


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class LogReturns(_Looking):
    """Log return of the close: lookback n ``log(c[t] / c[t-n])`` (the sum of the last n one-bar log
    returns); lookforward n ``log(c[t+n] / c[t])`` (the sum of the next n). ``_feature_math.log_returns``.
    Reads bars."""

    def requirements(self) -> tuple[DataRequirement, ...]:
        return (self._requirement("bars"),)

    def _values(self, data: MarketData) -> np.ndarray:
        close = data.bars(*self.market)["close"].to_numpy()
        return fm.log_returns(close, self.lookback_rows, self.lookforward_rows)


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class SimpleReturns(_Looking):
    """Simple return of the close: lookback n ``c[t] / c[t-n] - 1``; lookforward n ``c[t+n] / c[t] - 1``.
    ``_feature_math.simple_returns``. Reads bars."""

    def requirements(self) -> tuple[DataRequirement, ...]:
        return (self._requirement("bars"),)

    def _values(self, data: MarketData) -> np.ndarray:
        close = data.bars(*self.market)["close"].to_numpy()
        return fm.simple_returns(close, self.lookback_rows, self.lookforward_rows)


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class MidpointDiff(_Looking):
    """Change of the ``Midpoint`` (quote currency): lookback n ``m[t] - m[t-n]``; lookforward n
    ``m[t+n] - m[t]``. ``_feature_math.difference``. Reads what ``Midpoint`` reads (``from_quotes()`` /
    ``from_bars()`` pin it)."""

    fallback_chain: ClassVar[tuple[str, ...]] = ("quotes", "bars")

    def requirements(self) -> tuple[DataRequirement, ...]:
        return (self._requirement("quotes", fallback="bars"),)

    def _values(self, data: MarketData) -> np.ndarray:
        return fm.difference(_midpoint(self, data), self.lookback_rows, self.lookforward_rows)


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class Volatility(_MarketFeature):
    """Rolling standard deviation (ddof=1) of the one-bar log returns of the close over ``window(n)``
    bars (default 60, ``n >= 2``); needs ``n`` bars before the row. ``_feature_math.volatility``.
    Reads bars."""

    window_rows: int = 60

    def window(self, n: int) -> Self:
        return dataclasses.replace(self, window_rows=check_int(self, "window", n, 2))

    def _name_steps(self) -> list[str]:
        steps = super()._name_steps()
        if self.window_rows != 60:
            steps.append(f"window({self.window_rows})")
        return steps

    @property
    def halo(self) -> tuple[int, int]:
        return (self.window_rows, 0)

    def requirements(self) -> tuple[DataRequirement, ...]:
        return (self._requirement("bars"),)

    def _values(self, data: MarketData) -> np.ndarray:
        return fm.volatility(data.bars(*self.market)["close"].to_numpy(), self.window_rows)


# -------------------------------------------------------------------------------------- from book
@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class _Strength(_MarketFeature):
    """Volume resting within ``slippage(x)`` of the best price, from the order book.

    ``x`` is in **percent**, as Atlas wrote it: ``slippage(0.5)`` counts the levels within 0.5 % of the
    best price. Default 0.1, rule ``0 < slippage < 100``. ``_feature_math.book_strength``.
    """

    side: ClassVar[str] = "bid"
    quote_currency: ClassVar[bool] = False
    slippage_percent: float = 0.1

    def slippage(self, percent: float) -> Self:
        value = check_float(self, "slippage", percent, "0 < slippage < 100 (percent)", 0.0, 100.0)
        return dataclasses.replace(self, slippage_percent=value)

    def _name_steps(self) -> list[str]:
        steps = super()._name_steps()
        if self.slippage_percent != 0.1:
            steps.append(f"slippage({format_literal(self.slippage_percent)})")
        return steps

    def requirements(self) -> tuple[DataRequirement, ...]:
        return (self._requirement("book"),)

    def _values(self, data: MarketData) -> np.ndarray:
        books = data.book(*self.market)
        if self.side == "bid":
            prices, sizes = books.bid_price, books.bid_size
        else:
            prices, sizes = books.ask_price, books.ask_size
        strength = fm.book_strength(
            prices, sizes, self.slippage_percent / 100.0, self.side, quote_currency=self.quote_currency
        )
        return books.on_grid(strength)


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class BidStrength(_Strength):
    """Base volume of the bids within ``slippage`` percent below the best bid (see ``_Strength``)."""

    side: ClassVar[str] = "bid"


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class AskStrength(_Strength):
    """Base volume of the asks within ``slippage`` percent above the best ask (see ``_Strength``)."""

    side: ClassVar[str] = "ask"


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class BidStrengthUSD(_Strength):
    """``BidStrength`` in quote currency: sum of price * size over the same levels."""

    side: ClassVar[str] = "bid"
    quote_currency: ClassVar[bool] = True


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class AskStrengthUSD(_Strength):
    """``AskStrength`` in quote currency: sum of price * size over the same levels."""

    side: ClassVar[str] = "ask"
    quote_currency: ClassVar[bool] = True


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class _AtDepth(_MarketFeature):
    """A price at book level ``depth(n)`` (default 0, the top of book, read from quotes; ``n >= 1``
    reads the order-book snapshots; NaN where the book is shallower)."""

    depth_level: int = 0

    def depth(self, level: int) -> Self:
        return dataclasses.replace(self, depth_level=check_int(self, "depth", level, 0))

    def _name_steps(self) -> list[str]:
        steps = super()._name_steps()
        if self.depth_level:
            steps.append(f"depth({self.depth_level})")
        return steps

    def requirements(self) -> tuple[DataRequirement, ...]:
        return (self._requirement("book" if self.depth_level else "quotes"),)

    def _price(self, data: MarketData, side: str) -> np.ndarray:
        if self.depth_level == 0:
            return data.quotes(*self.market)[f"{side}_price"].to_numpy(dtype=np.float64)
        return data.book(*self.market).level(side, self.depth_level)[0]


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class Bid(_AtDepth):
    """The bid price at book level ``depth`` (see ``_AtDepth``)."""

    def _values(self, data: MarketData) -> np.ndarray:
        return self._price(data, "bid")


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class Ask(_AtDepth):
    """The ask price at book level ``depth`` (see ``_AtDepth``)."""

    def _values(self, data: MarketData) -> np.ndarray:
        return self._price(data, "ask")


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class Spread(_AtDepth):
    """``ask - bid`` at book level ``depth`` (quote currency; see ``_AtDepth``)."""

    def _values(self, data: MarketData) -> np.ndarray:
        return self._price(data, "ask") - self._price(data, "bid")


# ------------------------------------------------------------------------------------- composites
def _merge_halos(parts: tuple[Feature, ...]) -> tuple[int, int]:
    return max(p.halo[0] for p in parts), max(p.halo[1] for p in parts)


def _check_same_resolution(owner: str, parts: tuple[Feature, ...]) -> None:
    resolutions = {p.resolution for p in parts}
    if len(resolutions) > 1:
        listed = ", ".join(f"{p.name} ({p.resolution.value})" for p in parts)
        raise FeatureError(f"{owner}: its parts must share one resolution, but they are {listed}.")


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class InterExchangeSpread(Feature):
    """``a - b``: the **absolute** difference of two features (quote currency for prices), e.g.
    ``InterExchangeSpread(Midpoint().coinbase().one_min(), Midpoint().kraken().one_min())``.

    Absolute, not relative, as Atlas named it a spread; divide by a price yourself for a relative one.
    Both parts must share a resolution (``FeatureError`` otherwise). Takes no steps.
    """

    a: Feature = field(kw_only=False)
    b: Feature = field(kw_only=False)

    def __post_init__(self) -> None:
        for label, part in (("a", self.a), ("b", self.b)):
            if not isinstance(part, Feature):
                raise FeatureError(
                    f"InterExchangeSpread: the value of `{label}` is {part!r}, but must be a feature."
                )
        _check_same_resolution(f"InterExchangeSpread({self.a.name}, {self.b.name})", (self.a, self.b))

    @classmethod
    def _from_arguments(cls, arguments: list[Feature | Literal], where: str) -> Feature:
        if len(arguments) != 2 or not all(isinstance(a, Feature) for a in arguments):
            raise FeatureError(f"{where}: InterExchangeSpread takes two features, got {arguments!r}.")
        return cls(cast(Feature, arguments[0]), cast(Feature, arguments[1]))

    def _name_arguments(self) -> list[str]:
        return [self.a.name, self.b.name]

    @property
    def resolution(self) -> Resolution:
        return self.a.resolution

    @property
    def horizon(self) -> int:
        return max(self.a.horizon, self.b.horizon)

    @property
    def halo(self) -> tuple[int, int]:
        return _merge_halos((self.a, self.b))

    def requirements(self) -> tuple[DataRequirement, ...]:
        return _unique(self.a.requirements() + self.b.requirements())

    def _values(self, data: MarketData) -> np.ndarray:
        return self.a._values(data) - self.b._values(data)


def _check_weight(feature: Feature, weight: object) -> float:
    if isinstance(weight, bool) or not isinstance(weight, int | float | np.integer | np.floating):
        raise FeatureError(
            f"{feature.name}.weights(...): the value of a weight is {weight!r}, but must be a number "
            "(`weight >= 0`)."
        )
    value = float(weight)
    if not (np.isfinite(value) and value >= 0.0):
        raise FeatureError(
            f"{feature.name}.weights(...): the value of a weight is {weight!r}, but must be `weight >= 0`."
        )
    return value


def _unique(requirements: tuple[DataRequirement, ...]) -> tuple[DataRequirement, ...]:
    return tuple(dict.fromkeys(requirements))


@dataclass(frozen=True, kw_only=True, eq=False, repr=False, init=False)
class FV(Feature):
    """Fair value: the weighted mean of several exchanges' ``Midpoint`` s (``_feature_math.fair_value``).

    ``FV(Midpoint().coinbase().one_min(), Midpoint().kraken().one_min())``. Weights, by default, are each
    exchange's traded base volume over the last ``window(n)`` bars (default 1; the bar itself); with
    ``.weights(w1, w2, ...)`` (one per part, each ``>= 0``, summing to more than 0) they are fixed. NaN
    when a midpoint or a volume is unknown, or when no exchange traded. Parts: at least two
    ``Midpoint`` s of distinct exchange / pair, sharing a resolution.
    """

    parts: tuple[Feature, ...]
    weight_values: tuple[float, ...] | None = None
    window_rows: int = 1

    def __init__(
        self,
        *features: Feature,
        parts: tuple[Feature, ...] = (),
        weight_values: tuple[float, ...] | None = None,
        window_rows: int = 1,
    ) -> None:
        object.__setattr__(self, "parts", tuple(features) + tuple(parts))
        object.__setattr__(self, "weight_values", weight_values)
        object.__setattr__(self, "window_rows", window_rows)
        self._validate()

    def _validate(self) -> None:
        parts = self.parts
        for part in parts:
            if not isinstance(part, Midpoint):
                raise FeatureError(f"FV: the value of a part is {part!r}, but every part must be a Midpoint.")
            _ = part.market  # an exchange must be chosen
        if len(parts) < 2:
            raise FeatureError(f"FV: it has {len(parts)} part(s), but must have `parts >= 2`.")
        markets = [p.market for p in parts if isinstance(p, Midpoint)]
        if len(set(markets)) != len(markets):
            raise FeatureError(f"FV: its parts {[p.name for p in parts]} repeat an exchange / pair.")
        _check_same_resolution(f"FV({', '.join(p.name for p in parts)})", parts)

    @classmethod
    def _from_arguments(cls, arguments: list[Feature | Literal], where: str) -> Feature:
        features = [a for a in arguments if isinstance(a, Feature)]
        if len(features) != len(arguments):
            raise FeatureError(f"{where}: FV takes Midpoint features only, got {arguments!r}.")
        return cls(*features)

    def _name_arguments(self) -> list[str]:
        return [p.name for p in self.parts]

    def _name_steps(self) -> list[str]:
        if self.weight_values is not None:
            return [f"weights({', '.join(format_literal(w) for w in self.weight_values)})"]
        return [f"window({self.window_rows})"] if self.window_rows != 1 else []

    def weights(self, *weights: float) -> Self:
        if len(weights) != len(self.parts):
            raise FeatureError(
                f"{self.name}.weights(...): it got {len(weights)} weight(s), but must get one per part "
                f"(`len(weights) == {len(self.parts)}`)."
            )
        values = tuple(_check_weight(self, w) for w in weights)
        if sum(values) <= 0:
            raise FeatureError(f"{self.name}.weights{weights}: the weights sum to 0, but must `sum > 0`.")
        if self.window_rows != 1:
            raise FeatureError(
                f"{self.name}.weights(...): fixed weights and a volume window exclude each other."
            )
        return dataclasses.replace(self, weight_values=values)

    def window(self, n: int) -> Self:
        rows = check_int(self, "window", n, 1)
        if self.weight_values is not None:
            raise FeatureError(
                f"{self.name}.window({n}): a volume window and fixed weights exclude each other."
            )
        return dataclasses.replace(self, window_rows=rows)

    @property
    def resolution(self) -> Resolution:
        return self.parts[0].resolution

    @property
    def horizon(self) -> int:
        return 0

    @property
    def halo(self) -> tuple[int, int]:
        return (self.window_rows - 1, 0) if self.weight_values is None else (0, 0)

    def _midpoints(self) -> list[Midpoint]:
        return [p for p in self.parts if isinstance(p, Midpoint)]

    def requirements(self) -> tuple[DataRequirement, ...]:
        found: tuple[DataRequirement, ...] = ()
        for part in self._midpoints():
            found += part.requirements()
            if self.weight_values is None:
                found += (part._requirement("bars"),)
        return _unique(found)

    def _values(self, data: MarketData) -> np.ndarray:
        prices = [part._values(data) for part in self._midpoints()]
        n = len(data.grid)
        if self.weight_values is not None:
            weights = [np.full(n, w) for w in self.weight_values]
        else:
            weights = [
                fm.window_sum(data.bars(*part.market)["volume"].to_numpy(), self.window_rows)
                for part in self._midpoints()
            ]
        return fm.fair_value(prices, weights)


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class _Arbitrage(Feature):
    """Two-exchange arbitrage between the order books of ``exchange_a`` and ``exchange_b``
    (``_feature_math.signed_arbitrage``): positive when a's bids cross b's asks (buy on b, sell on a),
    negative the other way, 0 when the books do not cross, NaN without a fresh snapshot on both sides.

    Each exchange uses its default pair unless ``.pair(p)`` sets one pair for both (the pairs should
    share a quote currency; btc_usd against btc_usdt is accepted as Atlas did). Steps: ``pair`` and the
    resolutions. Reads both exchanges' books.
    """

    output: ClassVar[int] = 0
    exchange_a: str = field(kw_only=False)
    exchange_b: str = field(kw_only=False)
    pair_name: str | None = None
    bar_resolution: Resolution = Resolution.ONE_MIN

    def __post_init__(self) -> None:
        for value in (self.exchange_a, self.exchange_b):
            if not isinstance(value, str) or not EXCHANGE_RULE.fullmatch(value):
                raise FeatureError(
                    f"{type(self).__name__}: the value of an exchange is {value!r}, but must be a "
                    "lower-case exchange name such as 'bitstamp'."
                )
        if self.exchange_a == self.exchange_b:
            raise FeatureError(
                f"{type(self).__name__}: both exchanges are {self.exchange_a!r}, but must differ."
            )

    @classmethod
    def _from_arguments(cls, arguments: list[Feature | Literal], where: str) -> Feature:
        if len(arguments) != 2 or not all(isinstance(a, str) for a in arguments):
            raise FeatureError(f"{where}: {cls.__name__} takes two exchange names, got {arguments!r}.")
        return cls(str(arguments[0]), str(arguments[1]))

    def _markets(self) -> tuple[tuple[str, str], tuple[str, str]]:
        return (
            (self.exchange_a, self.pair_name or default_pair(self.exchange_a)),
            (self.exchange_b, self.pair_name or default_pair(self.exchange_b)),
        )

    def _name_arguments(self) -> list[str]:
        check_exchange(self, self.exchange_a)
        check_exchange(self, self.exchange_b)
        return [format_literal(self.exchange_a), format_literal(self.exchange_b)]

    def _name_steps(self) -> list[str]:
        steps = []
        defaults = {default_pair(self.exchange_a), default_pair(self.exchange_b)}
        if self.pair_name is not None and defaults != {self.pair_name}:
            steps.append(f"pair({format_literal(self.pair_name)})")
        steps.append(f"{self.bar_resolution.value}()")
        return steps

    def pair(self, pair: str) -> Self:
        return dataclasses.replace(self, pair_name=check_pair(self, pair))

    def _with_resolution(self, resolution: Resolution) -> Self:
        return dataclasses.replace(self, bar_resolution=resolution)

    @property
    def resolution(self) -> Resolution:
        return self.bar_resolution

    @property
    def horizon(self) -> int:
        return 0

    @property
    def halo(self) -> tuple[int, int]:
        return (0, 0)

    def requirements(self) -> tuple[DataRequirement, ...]:
        return tuple(DataRequirement(ex, pair, "book", self.resolution) for ex, pair in self._markets())

    def _values(self, data: MarketData) -> np.ndarray:
        (ex_a, pair_a), (ex_b, pair_b) = self._markets()
        book_a, book_b = data.book(ex_a, pair_a), data.book(ex_b, pair_b)
        both = (book_a.row >= 0) & (book_b.row >= 0)
        out = np.full(len(data.grid), np.nan)
        if not both.any():
            return out
        pairs = np.stack([book_a.row[both], book_b.row[both]], axis=1)
        unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
        ia, ib = unique[:, 0], unique[:, 1]
        side_a = (book_a.bid_price[ia], book_a.bid_size[ia], book_a.ask_price[ia], book_a.ask_size[ia])
        side_b = (book_b.bid_price[ib], book_b.bid_size[ib], book_b.ask_price[ib], book_b.ask_size[ib])
        result = fm.signed_arbitrage(side_a, side_b)[self.output]
        out[both] = result[np.ravel(inverse)]
        return out


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class SignedArbRevenue(_Arbitrage):
    """Signed revenue (quote currency) of the arbitrage between two books: ``sum q * (bid - ask)`` over
    the crossed levels, + when a's bids cross b's asks, - the other way (see ``_Arbitrage``)."""

    output: ClassVar[int] = 0


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class SignedArbVolumeUSD(_Arbitrage):
    """Signed crossed volume in quote currency, ``sum q * ask`` (the cost of the buy leg) over the
    crossed levels; signed as ``SignedArbRevenue`` (see ``_Arbitrage``)."""

    output: ClassVar[int] = 1
