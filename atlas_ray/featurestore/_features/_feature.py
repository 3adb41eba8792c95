"""``Feature``: the base of every feature, its fluent steps, its name and ``DataRequirement``.

A feature is a frozen dataclass built with fluent steps, each returning a ``dataclasses.replace`` copy
after checking its argument::

    LogReturns().bitstamp().one_min().lookforward(1)
    BidStrength().bitstamp().one_min().slippage(0.5)
    InterExchangeSpread(Midpoint().coinbase().one_min(), Midpoint().kraken().one_min())

Steps: exchanges as methods (``bitstamp()``, ``itbit()``, ``coinbase()``, ``kraken()``, ``binance()``,
``bitfinex()``, ``bitflyer()``, ``gemini()``, ``okcoin()``) or ``exchange(name)``; ``pair("btc_jpy")``
(each exchange has a default pair, used unless a pair was given: binance ``btc_usdt``, bitflyer
``btc_jpy``, the others ``btc_usd``); resolutions ``one_min()`` (the default), ``five_min()``,
``ten_min()``, ``hour()``; and, only on the features they apply to, ``lookback(n)``,
``lookforward(n)``, ``window(n)``, ``slippage(x)``, ``depth(n)``, ``weights(...)``. A step that does
not apply raises ``FeatureError`` naming the feature and the step.

Source: a feature with a fallback (``Midpoint`` and ``MidpointDiff`` read quotes, else bars) has its
source decided by the source rule (``_sources``: the first option the store holds over the build's
range, recorded with the build and the trial). ``from_quotes()`` / ``from_bars()`` pin it instead:
the feature then reads that option alone, whatever the store holds, and the step is part of the name
(``Midpoint().coinbase().one_min().from_bars()``).

``name`` is the canonical fluent expression: class and constructor arguments, then the exchange, the
pair only when it is not the exchange's default, the resolution (always written), then a pinned source
(``from_quotes()`` / ``from_bars()``), then parameters that differ from their defaults, in a fixed
order. ``Feature.from_name(name)`` parses it back (see
``_feature_names``) and ``Feature.from_name(f.name) == f``. Two features are equal exactly when their
names are equal (the name says everything the feature computes).
"""

from __future__ import annotations

import dataclasses
import math
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
import pandas as pd

from atlas_ray.errors import FeatureError, MissingDataError
from atlas_ray.featurestore._features._feature_names import (
    Call,
    Expression,
    Literal,
    format_literal,
    parse_name,
)
from atlas_ray.featurestore._schema import Resolution

if TYPE_CHECKING:
    from atlas_ray.featurestore._features._market_data import MarketData

__all__ = ["DEFAULT_PAIRS", "EXCHANGE_RULE", "DataRequirement", "Feature", "default_pair", "feature_classes"]

DEFAULT_PAIRS: dict[str, str] = {
    "bitstamp": "btc_usd",
    "itbit": "btc_usd",
    "coinbase": "btc_usd",
    "kraken": "btc_usd",
    "binance": "btc_usdt",
    "bitfinex": "btc_usd",
    "bitflyer": "btc_jpy",
    "gemini": "btc_usd",
    "okcoin": "btc_usd",
}
"""The exchanges with a fluent method, and the pair each uses unless ``.pair(...)`` says otherwise."""

FALLBACK_PAIR = "btc_usd"
"""The default pair of an exchange named with ``.exchange(name)`` that has no entry above."""

EXCHANGE_RULE = re.compile(r"[a-z][a-z0-9_]*")
_PAIR_RULE = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)+")

KINDS = ("bars", "quotes", "book")

STEP_NAMES: frozenset[str] = frozenset(
    {
        *DEFAULT_PAIRS,
        "exchange",
        "pair",
        *(resolution.value for resolution in Resolution),
        "lookback",
        "lookforward",
        "window",
        "slippage",
        "depth",
        "weights",
        "from_quotes",
        "from_bars",
    }
)
"""Every fluent step a name may contain; nothing else is ever called while parsing a name."""

_REGISTRY: dict[str, type[Feature]] = {}


def default_pair(exchange: str) -> str:
    """The pair an exchange uses unless one is given."""
    return DEFAULT_PAIRS.get(exchange, FALLBACK_PAIR)


def feature_classes() -> dict[str, type[Feature]]:
    """Every concrete (public) feature class by name: what ``from_name`` may build."""
    import atlas_ray.featurestore._features._feature_library  # noqa: F401  (registers the library)

    return dict(_REGISTRY)


@dataclass(frozen=True)
class DataRequirement:
    """One series a feature reads: ``kind`` is ``"bars"``, ``"quotes"`` or ``"book"``.

    ``quotes`` (top of book) is satisfied by stored quotes or, failing those, by the level 0 of stored
    order-book snapshots. ``fallback``, when set, is the series used instead if this one is absent
    (``Midpoint`` reads quotes, else bars).
    """

    exchange: str
    pair: str
    kind: str
    resolution: Resolution
    fallback: DataRequirement | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"The value of `kind` is {self.kind!r}, but must be one of {KINDS}.")

    def describe(self) -> str:
        """``"book for coinbase btc_usd"`` (bars also name their resolution)."""
        what = f"{self.resolution.value} bars" if self.kind == "bars" else self.kind
        return f"{what} for {self.exchange} {self.pair}"


# ---------------------------------------------------------------------------------- argument checks
def check_int(feature: Feature, step: str, value: object, minimum: int) -> int:
    """``value`` as an ``int >= minimum``, else ``FeatureError`` with the value and the rule."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise FeatureError(
            f"{feature.name}.{step}(...): the value of `{step}` is {value!r}, but must be an integer "
            f"(`{step} >= {minimum}`)."
        )
    if value < minimum:
        raise FeatureError(
            f"{feature.name}.{step}({value}): the value of `{step}` is {value}, but must be "
            f"`{step} >= {minimum}`."
        )
    return int(value)


def check_float(feature: Feature, step: str, value: object, rule: str, low: float, high: float) -> float:
    """``value`` as a finite float with ``low < value < high``, else ``FeatureError``."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise FeatureError(
            f"{feature.name}.{step}(...): the value of `{step}` is {value!r}, but must be a number "
            f"(`{rule}`)."
        )
    number = float(value)
    if not (math.isfinite(number) and low < number < high):
        raise FeatureError(
            f"{feature.name}.{step}({value!r}): the value of `{step}` is {value!r}, but must be `{rule}`."
        )
    return number


def check_exchange(feature: Feature, value: object) -> str:
    if not isinstance(value, str) or not EXCHANGE_RULE.fullmatch(value):
        raise FeatureError(
            f"{feature.name}.exchange({value!r}): the value of `exchange` is {value!r}, but must be a "
            "lower-case name of letters, digits and '_' starting with a letter (e.g. 'bitstamp')."
        )
    return value


def check_pair(feature: Feature, value: object) -> str:
    if not isinstance(value, str) or not _PAIR_RULE.fullmatch(value):
        raise FeatureError(
            f"{feature.name}.pair({value!r}): the value of `pair` is {value!r}, but must be "
            "'<base>_<quote>' in lower case (e.g. 'btc_usd', 'btc_jpy')."
        )
    return value


# ----------------------------------------------------------------------------------------- Feature
@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class Feature(ABC):
    """The base of every feature (abstract).

    Subclasses implement ``resolution``, ``horizon``, ``halo``, ``requirements``, ``_values`` and the
    name parts; steps that apply are overridden by the classes (or private bases) that hold the field.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            _REGISTRY[cls.__name__] = cls

    # ------------------------------------------------------------------------ identity and name
    @cached_property
    def name(self) -> str:
        """The canonical fluent expression (see the module docstring)."""
        head = f"{type(self).__name__}({', '.join(self._name_arguments())})"
        return head + "".join(f".{step}" for step in self._name_steps())

    def _name_arguments(self) -> list[str]:
        """The constructor arguments as written in the name."""
        return []

    def _name_steps(self) -> list[str]:
        """The fluent steps as written in the name, without the leading dot."""
        return []

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Feature) and type(other) is type(self) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return self.name

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def from_name(name: str) -> Feature:
        """Parse a feature's name back into the feature; ``FeatureError`` points at the position."""
        expression = parse_name(name)
        return _build(expression, name)

    @classmethod
    def _from_arguments(cls, arguments: list[Feature | Literal], where: str) -> Feature:
        """Build from the constructor arguments of a name (none, unless a subclass says otherwise)."""
        if arguments:
            raise FeatureError(f"{where}: {cls.__name__}() takes no arguments, got {len(arguments)}.")
        return cls()

    # ------------------------------------------------------------------------------- contract
    @property
    @abstractmethod
    def resolution(self) -> Resolution:
        """The bar resolution the feature is computed at."""

    @property
    @abstractmethod
    def horizon(self) -> int:
        """Rows of look-forward: 0 for an input, > 0 for a label."""

    @property
    @abstractmethod
    def halo(self) -> tuple[int, int]:
        """Rows needed before and after a row to compute it."""

    @abstractmethod
    def requirements(self) -> tuple[DataRequirement, ...]:
        """The series the feature reads."""

    @abstractmethod
    def _values(self, data: MarketData) -> np.ndarray:
        """The values on ``data.grid`` (float64, one per row)."""

    def compute(self, data: MarketData) -> pd.Series:
        """The feature on ``data.grid``: float64, named ``self.name``.

        Row ``t`` uses only what is known at the close of bar ``t`` (bars opened at or before ``t``,
        quotes and book snapshots stamped at or before ``t + resolution``), except that a feature with
        ``lookforward(n)`` uses rows ``t+1 .. t+n`` (which is what makes it a label).
        """
        if data.resolution != self.resolution:
            raise FeatureError(
                f"{self.name} is at resolution {self.resolution.value}, but the market data is at "
                f"{data.resolution.value}; a feature must be computed on data of its own resolution."
            )
        try:
            values = np.asarray(self._values(data), dtype=np.float64)
        except MissingDataError as error:
            raise MissingDataError(f"{self.name}: {error}") from None
        return pd.Series(values, index=data.grid, name=self.name, dtype=np.float64)

    # ------------------------------------------------------------------ fluent steps (refusing)
    def _refuse(self, step: str) -> FeatureError:
        applicable = sorted(self._applicable_steps())
        takes = ", ".join(f".{s}()" for s in applicable) if applicable else "no parameter steps"
        return FeatureError(
            f"{self.name}: the step .{step}() does not apply to {type(self).__name__} (it takes {takes})."
        )

    def _applicable_steps(self) -> set[str]:
        """The parameter steps this class overrides (for error messages)."""
        steps = {"exchange", "pair", "lookback", "lookforward", "window", "slippage", "depth", "weights"}
        return (
            {s for s in steps if getattr(type(self), s) is not getattr(Feature, s)}
            | ({"one_min"} if type(self)._with_resolution is not Feature._with_resolution else set())
            | {f"from_{kind}" for kind in self._source_options()}
        )

    def _source_options(self) -> tuple[str, ...]:
        """The kinds ``from_<kind>()`` may pin (those of the feature's fallback chain; none here)."""
        return ()

    def from_quotes(self) -> Self:
        """Read quotes (stored quotes, else level 0 of the book), never the fallback."""
        raise self._refuse("from_quotes")

    def from_bars(self) -> Self:
        """Read bars, never quotes."""
        raise self._refuse("from_bars")

    def exchange(self, name: str) -> Self:
        """The exchange whose data the feature reads."""
        raise self._refuse("exchange")

    def pair(self, pair: str) -> Self:
        """The traded pair, ``"<base>_<quote>"`` (default: the exchange's default pair)."""
        raise self._refuse("pair")

    def _with_resolution(self, resolution: Resolution) -> Self:
        raise self._refuse(resolution.value)

    def lookback(self, n: int) -> Self:
        raise self._refuse("lookback")

    def lookforward(self, n: int) -> Self:
        raise self._refuse("lookforward")

    def window(self, n: int) -> Self:
        raise self._refuse("window")

    def slippage(self, percent: float) -> Self:
        raise self._refuse("slippage")

    def depth(self, level: int) -> Self:
        raise self._refuse("depth")

    def weights(self, *weights: float) -> Self:
        raise self._refuse("weights")

    # resolutions
    def one_min(self) -> Self:
        return self._with_resolution(Resolution.ONE_MIN)

    def five_min(self) -> Self:
        return self._with_resolution(Resolution.FIVE_MIN)

    def ten_min(self) -> Self:
        return self._with_resolution(Resolution.TEN_MIN)

    def hour(self) -> Self:
        return self._with_resolution(Resolution.HOUR)

    # exchanges
    def bitstamp(self) -> Self:
        return self.exchange("bitstamp")

    def itbit(self) -> Self:
        return self.exchange("itbit")

    def coinbase(self) -> Self:
        return self.exchange("coinbase")

    def kraken(self) -> Self:
        return self.exchange("kraken")

    def binance(self) -> Self:
        return self.exchange("binance")

    def bitfinex(self) -> Self:
        return self.exchange("bitfinex")

    def bitflyer(self) -> Self:
        return self.exchange("bitflyer")

    def gemini(self) -> Self:
        return self.exchange("gemini")

    def okcoin(self) -> Self:
        return self.exchange("okcoin")


# --------------------------------------------------------------------------- one-exchange features
@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class _MarketFeature(Feature):
    """A feature of one exchange's series: exchange, pair (``None`` = the exchange's default) and
    resolution."""

    exchange_name: str | None = None
    pair_name: str | None = None
    bar_resolution: Resolution = Resolution.ONE_MIN
    source_kind: str | None = None
    """The option pinned by ``from_quotes()`` / ``from_bars()`` (None: decided by the source rule)."""
    fallback_chain: ClassVar[tuple[str, ...]] = ()
    """The options of the feature's fallback chain, first choice first (empty: no fallback)."""

    @property
    def resolution(self) -> Resolution:
        return self.bar_resolution

    @property
    def market(self) -> tuple[str, str]:
        """``(exchange, pair)``; ``FeatureError`` if no exchange was chosen."""
        if self.exchange_name is None:
            raise FeatureError(
                f"{self.name} has no exchange; choose one with a step such as .bitstamp() or .exchange(name)."
            )
        return self.exchange_name, self.pair_name or default_pair(self.exchange_name)

    def exchange(self, name: str) -> Self:
        return dataclasses.replace(self, exchange_name=check_exchange(self, name))

    def pair(self, pair: str) -> Self:
        return dataclasses.replace(self, pair_name=check_pair(self, pair))

    def _with_resolution(self, resolution: Resolution) -> Self:
        return dataclasses.replace(self, bar_resolution=resolution)

    def _source_options(self) -> tuple[str, ...]:
        return self.fallback_chain

    def _pin(self, kind: str) -> Self:
        if kind not in self.fallback_chain:
            raise self._refuse(f"from_{kind}")
        return dataclasses.replace(self, source_kind=kind)

    def from_quotes(self) -> Self:
        return self._pin("quotes")

    def from_bars(self) -> Self:
        return self._pin("bars")

    def _name_steps(self) -> list[str]:
        steps: list[str] = []
        if self.exchange_name is not None:
            if self.exchange_name in DEFAULT_PAIRS:
                steps.append(f"{self.exchange_name}()")
            else:
                steps.append(f"exchange({format_literal(self.exchange_name)})")
        default = default_pair(self.exchange_name) if self.exchange_name is not None else None
        if self.pair_name is not None and self.pair_name != default:
            steps.append(f"pair({format_literal(self.pair_name)})")
        steps.append(f"{self.bar_resolution.value}()")
        if self.source_kind is not None:
            steps.append(f"from_{self.source_kind}()")
        return steps

    def _requirement(self, kind: str, fallback: str | None = None) -> DataRequirement:
        """One series; with ``fallback``, the chain ``kind`` else ``fallback``, unless a source is
        pinned: then the pinned option alone."""
        exchange, pair = self.market
        if fallback is not None and self.source_kind is not None:
            return DataRequirement(exchange, pair, self.source_kind, self.resolution)
        other = DataRequirement(exchange, pair, fallback, self.resolution) if fallback else None
        return DataRequirement(exchange, pair, kind, self.resolution, other)

    @property
    def horizon(self) -> int:
        return 0

    @property
    def halo(self) -> tuple[int, int]:
        return (0, 0)


# ------------------------------------------------------------------------------------ name builder
def _build(expression: Expression, text: str) -> Feature:
    classes = feature_classes()
    head = expression.head
    where = f"The feature name {text!r} at position {head.position}"
    cls = classes.get(head.name)
    if cls is None:
        known = ", ".join(sorted(classes))
        raise FeatureError(f"{where}: unknown feature {head.name!r}; known features: {known}.")
    arguments = [_build(a, text) if isinstance(a, Expression) else a for a in head.arguments]
    feature = cls._from_arguments(arguments, where)
    for step in expression.steps:
        feature = _apply_step(feature, step, text)
    return feature


def _apply_step(feature: Feature, step: Call, text: str) -> Feature:
    where = f"The feature name {text!r} at position {step.position}"
    if step.name not in STEP_NAMES:
        steps = ", ".join(sorted(STEP_NAMES))
        raise FeatureError(f"{where}: unknown step .{step.name}(); steps are {steps}.")
    if any(isinstance(a, Expression) for a in step.arguments):
        raise FeatureError(f"{where}: the step .{step.name}() takes literal arguments, not features.")
    method = getattr(feature, step.name)
    try:
        result = method(*step.arguments)
    except TypeError as error:
        raise FeatureError(f"{where}: wrong arguments for .{step.name}(): {error}.") from None
    except FeatureError as error:
        raise FeatureError(f"{where}: {error}") from None
    if not isinstance(result, Feature):  # pragma: no cover - every step returns a feature
        raise FeatureError(f"{where}: .{step.name}() did not return a feature.")
    return result
