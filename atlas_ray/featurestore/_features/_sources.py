"""The source rule: which stored series every input a feature reads comes from, decided once.

A feature says what it reads as ``DataRequirement`` s, each a chain of options (``Midpoint``: quotes,
else bars; ``Volume``: bars). Before a build reads anything, ``decide(store, columns, start, end,
resolution)`` resolves every chain against the store, once, by this rule:

* **holds**: the store holds a stored kind for a series over a range when it has a partition of that
  kind for that exchange and pair dated on one of the range's UTC days (the days of ``[start, end)``,
  the halos not counted). Data on other dates (quotes recorded a month later) never counts.
* **per requirement**: the first option of its fallback chain that the store holds; a feature that
  pins its option (``Midpoint().coinbase().one_min().from_bars()`` / ``.from_quotes()``) has that
  option alone.
* **per option**, which stored kind supplies it:

  - ``bars`` at resolution R: stored bars at R (``bars_R``); else the coarsest stored bars at a finer
    resolution that divides R, resampled (``_bars.resample_bars``; the store's own ``bars`` rule picks
    the same); else stored trades, aggregated (``_bars.bars_from_trades``);
  - ``quotes``: stored quotes; else level 0 of stored order-book snapshots;
  - ``book``: stored order-book snapshots.

* **nothing held**: ``MissingDataError`` naming the feature, every option, the range and what the
  store holds for the series.

The answer is a ``Sources`` (frozen, JSON both ways): per series its exchange, pair, the kind the
features read and the stored kind it is read from (for bars the stored resolution resampled from, or
``trades``). It is recorded with the build (the frame's ``attrs["sources"]``, the featureset cache
key, ``experiment.json``'s provenance), in every ResultsObject (``result.json``'s ``sources``), and
later builds (a continued search, ``finalize``) and every live feed (``serve``'s ``required_series``;
the live engine computes by ``Sources.live()``) use the recorded one instead of deciding again.
The search's data check asks ``decide`` too, so what it accepts is what the build reads. ``MarketData``
reads only through ``SourcedMarket``, the store seen through a decision, so what the build read is
what the decision says.

Without a recorded decision (a ``MarketData`` made by hand, a trial written before decisions were
recorded) ``SourcedMarket`` decides each series when first asked, by the same per-option order, over
the whole source (``has``): what every window and every older trial got before.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from atlas_ray.errors import FeatureError, MissingDataError
from atlas_ray.featurestore._schema import BAR_COLUMNS, Resolution, bars_kind
from atlas_ray.featurestore._store._bars import as_resolution, bars_from_trades, resample_bars

if TYPE_CHECKING:
    from atlas_ray.featurestore._features._feature import DataRequirement, Feature
    from atlas_ray.featurestore._store._source import MarketSource

__all__ = [
    "SOURCES_ATTR",
    "SeriesSource",
    "SourcedMarket",
    "Sources",
    "check_supplied",
    "decide",
    "decide_series",
    "live_key",
    "range_days",
]

SOURCES_ATTR = "sources"
"""The key of a built frame's ``attrs`` (and of ``result.json``) that holds the decision as JSON."""

FORMAT = 1
_KINDS = ("bars", "quotes", "book")

Days = tuple[str, str]
"""The first and last UTC day (``YYYY-MM-DD``) of a range."""


# ------------------------------------------------------------------------------------- decision
@dataclass(frozen=True, order=True)
class SeriesSource:
    """One series a featureset reads: ``kind`` is what features read (``bars``, ``quotes``, ``book``);
    ``read`` the stored kind that supplies it (``bars_1m``, ``trades``, ``quotes``, ``book``)."""

    exchange: str
    pair: str
    kind: str
    read: str

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"The value of `kind` is {self.kind!r}, but must be one of {_KINDS}.")
        if not _read_allowed(self.kind, self.read):
            raise ValueError(
                f"The value of `read` is {self.read!r}, but {self.kind} are read from "
                f"{_READ_RULE[self.kind]}."
            )

    @property
    def resampled_from(self) -> Resolution | None:
        """For bars: the stored resolution the bars are read (and, if finer, resampled) from."""
        if self.kind != "bars" or not self.read.startswith("bars_"):
            return None
        return as_resolution(self.read)

    def describe(self) -> str:
        """``"quotes for coinbase btc_usd (from book)"``."""
        via = "" if self.read == self.kind else f" (from {self.read})"
        return f"{self.kind} for {self.exchange} {self.pair}{via}"

    def to_json(self) -> dict[str, str]:
        return {"exchange": self.exchange, "pair": self.pair, "kind": self.kind, "read": self.read}


_READ_RULE = {
    "bars": "'bars_<resolution>' or 'trades'",
    "quotes": "'quotes' or 'book'",
    "book": "'book'",
}


def _read_allowed(kind: str, read: str) -> bool:
    """Whether the stored kind ``read`` can supply ``kind`` (see ``_READ_RULE``)."""
    if kind == "bars":
        return read == "trades" or (read.startswith("bars_") and _is_bars_kind(read))
    if kind == "quotes":
        return read in ("quotes", "book")
    return read == "book"


def _is_bars_kind(read: str) -> bool:
    try:
        as_resolution(read)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Sources:
    """The decided sources of a featureset: ``series`` sorted, one per exchange / pair / kind.

    ``days``: the first and last UTC day of the range it was decided over (what it was decided from,
    for a reader; ``None`` when decided over the whole store)."""

    resolution: Resolution
    series: tuple[SeriesSource, ...]
    days: Days | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.resolution, Resolution):
            raise ValueError(f"The value of `resolution` is {self.resolution!r}, but must be a Resolution.")
        ordered = tuple(sorted(set(self.series)))
        keys = [(s.exchange, s.pair, s.kind) for s in ordered]
        if len(set(keys)) != len(keys):
            raise ValueError(f"The sources {[s.to_json() for s in ordered]} decide a series twice.")
        object.__setattr__(self, "series", ordered)

    def get(self, exchange: str, pair: str, kind: str) -> SeriesSource | None:
        """The decided source of a series, or None when the decision has none for it."""
        for item in self.series:
            if (item.exchange, item.pair, item.kind) == (exchange, pair, kind):
                return item
        return None

    def choose(self, requirement: DataRequirement) -> SeriesSource | None:
        """The first option of ``requirement``'s chain the decision holds, or None."""
        for option in _chain(requirement):
            found = self.get(option.exchange, option.pair, option.kind)
            if found is not None:
                return found
        return None

    def live(self, held: Iterable[tuple[str, str, str]] | None = None) -> Sources:
        """The decision as a live market holds it: each series read from what a live feed supplies for
        it (``live_key``: bars at the decision's resolution unless built from trades). ``held``: the
        series the live market declares; bars recorded as built from trades are read as bars where
        the feed supplies bars and no trades (a GDS feed builds them from the trades it reads)."""
        declared = set(held) if held is not None else None
        series = []
        for item in self.series:
            read = live_key(item, self.resolution)[2]
            as_bars = (item.exchange, item.pair, bars_kind(self.resolution))
            if (
                declared is not None
                and read == "trades"
                and (item.exchange, item.pair, "trades") not in declared
                and as_bars in declared
            ):
                read = as_bars[2]
            series.append(SeriesSource(item.exchange, item.pair, item.kind, read))
        return Sources(self.resolution, tuple(series), self.days)

    def describe(self) -> str:
        """One line: ``bars for coinbase btc_usd (from bars_1m), quotes for kraken btc_usd``."""
        return ", ".join(s.describe() for s in self.series) or "nothing"

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (``from_json`` reads it back)."""
        return {
            "format": FORMAT,
            "resolution": self.resolution.value,
            "days": list(self.days) if self.days is not None else None,
            "series": [s.to_json() for s in self.series],
        }

    def key(self) -> str:
        """The canonical text of what was decided (resolution and series, not the days): what the
        featureset cache key covers."""
        document = {"resolution": self.resolution.value, "series": [s.to_json() for s in self.series]}
        return json.dumps(document, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, document: object) -> Sources:
        """The ``Sources`` that ``to_json`` wrote; ``ValueError`` naming the field otherwise."""
        if not isinstance(document, dict):
            raise ValueError(f"recorded sources must be a JSON object, not {type(document).__name__}.")
        unknown = sorted(set(document) - {"format", "resolution", "days", "series"})
        if unknown:
            raise ValueError(f"recorded sources have unknown field(s) {unknown}.")
        if document.get("format") != FORMAT:
            raise ValueError(f"recorded sources are of format {document.get('format')!r}, not {FORMAT}.")
        resolution = Resolution(document.get("resolution"))
        days = document.get("days")
        if days is not None and (
            not isinstance(days, list) or len(days) != 2 or not all(isinstance(d, str) for d in days)
        ):
            raise ValueError(f"the `days` of recorded sources are {days!r}, but must be [first, last].")
        series = document.get("series")
        if not isinstance(series, list):
            raise ValueError(f"the `series` of recorded sources are {series!r}, but must be a list.")
        items = []
        for item in series:
            if not isinstance(item, dict) or set(item) != {"exchange", "pair", "kind", "read"}:
                raise ValueError(
                    f"a recorded series is {item!r}, but must hold exchange, pair, kind and read."
                )
            items.append(SeriesSource(*(str(item[f]) for f in ("exchange", "pair", "kind", "read"))))
        return cls(resolution, tuple(items), (days[0], days[1]) if days is not None else None)


def live_key(chosen: SeriesSource, resolution: Resolution) -> tuple[str, str, str]:
    """The series a live feed supplies for ``chosen``: ``(exchange, pair, stored kind)``, bars at
    ``resolution``'s kind unless they are built from trades."""
    if chosen.kind == "bars":
        read = "trades" if chosen.read == "trades" else bars_kind(resolution)
        return (chosen.exchange, chosen.pair, read)
    return (chosen.exchange, chosen.pair, chosen.read)


def _chain(requirement: DataRequirement) -> list[DataRequirement]:
    out: list[DataRequirement] = []
    option: DataRequirement | None = requirement
    while option is not None:
        out.append(option)
        option = option.fallback
    return out


# ------------------------------------------------------------------------------------ the rule
def range_days(start: pd.Timestamp, end: pd.Timestamp) -> Days:
    """The first and last UTC day of ``[start, end)`` (``start < end``)."""
    last = end - pd.Timedelta(1, "ns")
    return start.tz_convert("UTC").strftime("%Y-%m-%d"), last.tz_convert("UTC").strftime("%Y-%m-%d")


def _holds(store: MarketSource, exchange: str, pair: str, kind: str, days: Days | None) -> bool:
    """Whether ``store`` holds the stored ``kind`` for the series on a day of ``days`` (anywhere when
    ``days`` is None, or when the source keeps no dated partitions: a live market)."""
    dates = getattr(store, "dates", None)
    if days is None or dates is None:
        return bool(store.has(exchange, pair, kind))
    first, last = days
    return any(first <= date <= last for date in dates(exchange, pair, kind))


def _candidates(kind: str, resolution: Resolution) -> list[str]:
    """The stored kinds that can supply ``kind`` at ``resolution``, in the rule's order."""
    if kind == "bars":
        finer = sorted(
            (r for r in Resolution if r.seconds < resolution.seconds and resolution.seconds % r.seconds == 0),
            key=lambda r: -r.seconds,
        )
        return [bars_kind(resolution), *(bars_kind(r) for r in finer), "trades"]
    if kind == "quotes":
        return ["quotes", "book"]
    return ["book"]


def decide_series(
    store: MarketSource, exchange: str, pair: str, kind: str, resolution: Resolution, days: Days | None
) -> SeriesSource | None:
    """The source of one series by the rule (see the module docstring), or None when not held."""
    for read in _candidates(kind, resolution):
        if _holds(store, exchange, pair, read, days):
            return SeriesSource(exchange, pair, kind, read)
    return None


def decide(
    store: MarketSource,
    columns: Sequence[Feature],
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    resolution: Resolution,
) -> Sources:
    """Decide every requirement of ``columns`` (features and labels) over ``[start, end)`` (the
    whole store when both are None). ``MissingDataError`` names the first feature whose requirement
    the store cannot supply; ``FeatureError`` a feature at another resolution."""
    days = range_days(start, end) if start is not None and end is not None else None
    decided: dict[tuple[str, str, str], SeriesSource | None] = {}
    chosen: set[SeriesSource] = set()
    for feature in columns:
        if feature.resolution != resolution:
            raise FeatureError(
                f"{feature.name} is at resolution {feature.resolution.value}, but the featureset is at "
                f"{resolution.value}; every feature of a set must share one resolution."
            )
        for requirement in feature.requirements():
            found: SeriesSource | None = None
            for option in _chain(requirement):
                key = (option.exchange, option.pair, option.kind)
                if key not in decided:
                    decided[key] = decide_series(store, *key, resolution, days)
                found = decided[key]
                if found is not None:
                    break
            if found is None:
                raise MissingDataError(_missing_message(store, feature, requirement, days))
            chosen.add(found)
    return Sources(resolution, tuple(chosen), days)


def check_supplied(
    store: MarketSource,
    sources: Sources,
    days: Days | None,
    series: Iterable[SeriesSource] | None = None,
) -> None:
    """Refuse a store that cannot supply a recorded decision: ``MissingDataError`` naming the first
    series (of ``series``, default all) whose stored kind the store does not hold on a day of
    ``days`` (anywhere when None)."""
    for item in sources.series if series is None else series:
        if not _holds(store, item.exchange, item.pair, item.read, days):
            where = f" on a day of [{days[0]}, {days[1]}]" if days is not None else ""
            raise MissingDataError(
                f"the recorded sources read {item.describe()}, but the store at {store.root} holds no "
                f"{item.read} for {item.exchange} {item.pair}{where} "
                f"(it holds: {_holdings(store, item.exchange, item.pair)})."
            )


def _missing_message(
    store: MarketSource, feature: Feature, requirement: DataRequirement, days: Days | None
) -> str:
    needs = " or ".join(o.describe() for o in _chain(requirement))
    where = f" on a day of [{days[0]}, {days[1]}]" if days is not None else ""
    held = _holdings(store, requirement.exchange, requirement.pair)
    return (
        f"{feature.name} needs {needs}{where}, but the store at {store.root} holds none there "
        f"(for {requirement.exchange} {requirement.pair} it holds: {held})."
    )


def _holdings(store: MarketSource, exchange: str, pair: str) -> str:
    dates = getattr(store, "dates", None)
    parts = []
    for kind in store.kinds(exchange, pair):
        held = dates(exchange, pair, kind) if dates is not None else []
        parts.append(f"{kind} {held[0]} .. {held[-1]}" if held else kind)
    return ", ".join(parts) or "nothing"


# --------------------------------------------------------------------- the store through a decision
class SourcedMarket:
    """A ``MarketSource`` over ``store`` that reads each series from its decided source.

    ``sources`` given: exactly the recorded decision (a series it does not name is not held).
    ``sources`` None: each series is decided by the rule when first asked, over the whole store.
    ``provides(exchange, pair, kind)`` answers the semantic question (which stored kind supplies the
    bars, quotes or book); ``has`` / ``kinds`` answer in stored kinds: the decided ones, and bars at
    the decision's resolution wherever bars are decided.
    """

    def __init__(self, store: MarketSource, resolution: Resolution, sources: Sources | None = None) -> None:
        if sources is not None and sources.resolution != resolution:
            raise FeatureError(
                f"The sources were decided at {sources.resolution.value}, but the market data is at "
                f"{resolution.value}."
            )
        self.store = store
        self.resolution = resolution
        self.sources = sources
        self._decided: dict[tuple[str, str, str], SeriesSource | None] = {}

    def __repr__(self) -> str:
        return f"SourcedMarket({self.store!r}, {self.resolution.value}, {self.sources!r})"

    @property
    def root(self) -> str:
        return self.store.root

    def provides(self, exchange: str, pair: str, kind: str) -> SeriesSource | None:
        """The source of ``kind`` (``bars``, ``quotes``, ``book``) for the series, or None."""
        if self.sources is not None:
            return self.sources.get(exchange, pair, kind)
        key = (exchange, pair, kind)
        if key not in self._decided:
            self._decided[key] = decide_series(self.store, exchange, pair, kind, self.resolution, None)
        return self._decided[key]

    def _stored_kinds(self, exchange: str, pair: str) -> set[str]:
        out = set()
        for kind in _KINDS:
            found = self.provides(exchange, pair, kind)
            if found is not None:
                out.add(found.read)
                if kind == "bars":
                    out.add(bars_kind(self.resolution))
        return out

    def has(self, exchange: str, pair: str, kind: str) -> bool:
        return kind in self._stored_kinds(exchange, pair)

    def kinds(self, exchange: str, pair: str) -> list[str]:
        return sorted(self._stored_kinds(exchange, pair))

    def read(
        self,
        exchange: str,
        pair: str,
        kind: str,
        start: pd.Timestamp | str | None = None,
        end: pd.Timestamp | str | None = None,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        if kind.startswith("bars_") and as_resolution(kind) == self.resolution:
            frame = self.bars(exchange, pair, self.resolution, start, end)
            return frame if columns is None else frame[list(columns)]
        self._require(exchange, pair, kind)
        return self.store.read(exchange, pair, kind, start, end, columns)

    def bars(
        self,
        exchange: str,
        pair: str,
        resolution: Resolution | str,
        start: pd.Timestamp | str | None = None,
        end: pd.Timestamp | str | None = None,
    ) -> pd.DataFrame:
        """Bars at the decision's resolution from the decided stored kind (stored, resampled from a
        finer stored resolution, or built from trades)."""
        res = as_resolution(resolution)
        found = self.provides(exchange, pair, "bars")
        if res != self.resolution or found is None:
            self._require(exchange, pair, bars_kind(res))
        assert found is not None
        if found.read == bars_kind(res):
            return self.store.read(exchange, pair, found.read, start, end, columns=BAR_COLUMNS)
        lo, hi = _ceil(start, res), _ceil(end, res)
        if found.read == "trades":
            trades = self.store.read(exchange, pair, "trades", lo, hi, columns=["price", "size"])
            return bars_from_trades(trades, res)
        fine = self.store.read(exchange, pair, found.read, lo, hi, columns=BAR_COLUMNS)
        return resample_bars(fine, res)

    def quotes(
        self,
        exchange: str,
        pair: str,
        start: pd.Timestamp | str | None = None,
        end: pd.Timestamp | str | None = None,
    ) -> pd.DataFrame:
        self._require(exchange, pair, "quotes")
        return self.store.quotes(exchange, pair, start, end)

    def book(
        self,
        exchange: str,
        pair: str,
        start: pd.Timestamp | str | None = None,
        end: pd.Timestamp | str | None = None,
    ) -> pd.DataFrame:
        self._require(exchange, pair, "book")
        return self.store.book(exchange, pair, start, end)

    def _require(self, exchange: str, pair: str, kind: str) -> None:
        if not self.has(exchange, pair, kind):
            decided = self.sources.describe() if self.sources is not None else "decided from the store"
            raise MissingDataError(
                f"no {kind} for {exchange}/{pair} in the sources of this featureset ({decided}) "
                f"at {self.store.root}"
            )


def _ceil(value: pd.Timestamp | str | None, res: Resolution) -> pd.Timestamp | None:
    """``value`` (UTC) rounded up to ``res`` (whole coarse bars); None for None or past the last time
    pandas holds (an open end)."""
    if value is None:
        return None
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    try:
        return stamp.ceil(res.freq)
    except (ValueError, OverflowError):
        return None
