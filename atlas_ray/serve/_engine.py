"""``LiveEngine``: market events in, predictions out, with the code that built the training set.

Ray-free and redis-free (the deployment wraps it, tests call it directly). On every ``push``:

1. each event is parsed and checked (``_events``); a malformed, out-of-order or duplicate event, or one
   of a series the model does not read, is refused and counted by reason, never raised;
2. accepted rows go into the ``LiveMarket`` (the model's series, the history its features need);
3. the bars that are now *complete* are the pending rows: a bar ``t`` is complete once every series
   the model reads has data past it (a bar at ``t`` or later; a quote, trade or book snapshot stamped
   at or after ``t + resolution``), or a feed declares it complete (``through``), or the slowest series
   lags the newest by more than ``fill_limit`` bars (it is then a gap, filled or left NaN exactly as
   ``MarketData`` does when building);
4. the features of the pending rows are computed on ``MarketData(LiveMarket, ...)`` over the window
   a build over the same rows would read (``Feature.compute``, the feature library's own code), rows
   where a feature is NaN are counted as ``incomplete`` and skipped (outside a warm push such a bar
   is ``unpredictable``, counted by reason: ``no value: <feature>`` for the first feature without a
   value, ``no full window of N bars`` for a sequence model; never silent), the rest are scaled with
   the ResultsObject's training scaling (``apply_scaling``), cut into windows for sequence models
   (``window_ends``: never across a gap or midnight) and predicted with ``predict_proba``, the function
   that wrote the ResultsObject's predictions.

``warm=True`` takes events and computes features (so a window model's history is ready) but predicts
nothing: a feed replays history before the first bar it should predict.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from atlas_ray.errors import AtlasError, MissingDataError
from atlas_ray.experiment import is_booster
from atlas_ray.featurestore import (
    DataRequirement,
    MarketData,
    MarketSource,
    Task,
    bars_kind,
    check_supplied,
    cut_windows,
    decide_series,
    live_key,
    window_ends,
)
from atlas_ray.serve._events import REASONS, EventError, MarketEvent, parse_event
from atlas_ray.serve._live_market import LiveMarket, SeriesKey
from atlas_ray.serve._trial import ServedTrial

__all__ = ["LiveEngine", "Prediction", "PushOutcome", "required_series"]

log = logging.getLogger("atlas_ray.serve")

_RECENT_TRADE_IDS = 10_000
MAX_PENDING_BARS = 2**20
"""The most bars one decision lays its grid over (two years of minutes): rows a feed sends years apart
(a broken or hostile HTTP body: a bar of 1970 beside one of today) decide only the last ones, instead of
a grid the memory cannot hold."""


@dataclass(frozen=True)
class Prediction:
    """One live prediction for the bar opened at ``stamp`` (ns, UTC)."""

    stamp: int
    experiment: str
    trial: str
    version: int
    label: str | None = None
    probabilities: tuple[float, ...] | None = None
    value: float | None = None

    @property
    def time(self) -> pd.Timestamp:
        return pd.Timestamp(self.stamp, tz="UTC")


@dataclass
class PushOutcome:
    """What one push produced: predictions, refused events ``(reason, message)`` and counts."""

    predictions: list[Prediction] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    accepted: int = 0
    incomplete: int = 0
    unpredictable: dict[str, int] = field(default_factory=dict)  # bars not predicted, by reason


def required_series(
    served: ServedTrial, source: MarketSource | None = None, *, only: frozenset[str] | None = None
) -> list[SeriesKey]:
    """The series the model reads, each as the store kind a feed must supply.

    A trial with recorded sources (``served.sources``, see ``featurestore._features._sources``) reads
    exactly what its training build read: quotes where it read quotes, bars where it fell back to
    bars (whatever the store holds now), bars at the model's resolution, or trades where its bars were
    built from trades. ``source`` given (a market store a feed reads): it must hold every stored kind
    recorded; ``only`` given (e.g. ``{"bars"}`` for a feed that gives bars alone, bars from trades
    included): every recorded series must be of those kinds. Either refusal is an ``AtlasError``
    naming the series and the kind, said before anything starts.

    A trial written before sources were recorded is resolved as it was then (``_resolve``): against
    ``source`` when given, by the source rule over the whole store, else to its first choice; ``only``
    picks the first choice of those kinds.
    """
    fls = served.featureset
    requirements = [r for feature in fls.features for r in feature.requirements()]
    recorded = served.sources
    if recorded is None:
        out: list[SeriesKey] = []
        for requirement in requirements:
            chosen = _resolve(_restricted(requirement, only), source, fls.resolution)
            if chosen not in out:
                out.append(chosen)
        return out
    where = f"trial {served.trial_id} of {served.experiment}"
    used = []
    for requirement in requirements:
        found = recorded.choose(requirement)
        if found is None:
            raise AtlasError(
                f"{where}: its recorded sources ({recorded.describe()}) name no source for "
                f"{requirement.describe()}; the trial cannot be served."
            )
        if only is not None and found.kind not in only:
            raise AtlasError(
                f"{where} reads {found.kind} for {found.exchange} {found.pair} (its recorded source: "
                f"{found.describe()}), but this feed supplies {' and '.join(sorted(only))} only."
            )
        if found not in used:
            used.append(found)
    if source is not None and not isinstance(source, LiveMarket):
        # (a live market holds what its feed declared; a swapped-in model declares what it adds)
        try:
            check_supplied(source, recorded, None, used)
        except MissingDataError as error:
            raise AtlasError(f"{where}: {error}") from None
    keys = [live_key(found, fls.resolution) for found in used]
    if only is not None:  # a bars-only feed hands over bars, also where they were built from trades
        keys = [(e, p, bars_kind(fls.resolution)) if k == "trades" else (e, p, k) for e, p, k in keys]
    return list(dict.fromkeys(keys))


def _restricted(requirement: DataRequirement, only: frozenset[str] | None) -> DataRequirement:
    if only is None:
        return requirement
    option: DataRequirement | None = requirement
    while option is not None:
        if option.kind in only:
            return option
        option = option.fallback
    return requirement  # the feed cannot supply it: the first choice, refused by name when checked


def _resolve(requirement: DataRequirement, source: MarketSource | None, resolution: Any) -> SeriesKey:
    """The series of a requirement without a recorded decision: the first option of its chain that
    ``source`` holds anywhere, supplied by the source rule's stored kind (``_sources.decide_series``),
    else (no source, or none held) the first choice."""
    option: DataRequirement | None = requirement
    while option is not None and source is not None:
        found = decide_series(source, option.exchange, option.pair, option.kind, resolution, None)
        if found is not None:
            return live_key(found, resolution)
        option = option.fallback
    first = requirement
    kind = bars_kind(resolution) if first.kind == "bars" else first.kind
    return (first.exchange, first.pair, kind)


class LiveEngine:
    """Events in, predictions out (see the module docstring)."""

    def __init__(
        self,
        served: ServedTrial,
        model: Any,
        *,
        version: int = 1,
        series: Sequence[SeriesKey] | None = None,
        market: LiveMarket | None = None,
    ) -> None:
        self.served = served
        self.model = model
        # a LightGBM booster is called as it is (predict_proba flattens its rows), a Keras model traced
        self.compiled = None if model is None else model if is_booster(model) else CompiledModel(model)
        self.version = version
        fls = served.featureset
        self.features = tuple(fls.features)
        self.resolution = fls.resolution
        self.step = int(fls.resolution.offset.value)
        self.fill_limit = fls.fill_limit
        self.before = max(f.halo[0] for f in self.features)
        self.window = served.result.window
        self.series = tuple(series) if series is not None else tuple(required_series(served))
        # the trial's recorded sources as the live market holds them (a market shared with a swapped-out
        # model may hold more, e.g. quotes where this trial recorded bars: read what it recorded)
        self.sources = served.sources.live(self.series) if served.sources is not None else None
        history = (self.before + 2 * self.fill_limit + (self.window or 1) + 8) * fls.resolution.offset
        if market is None:
            market = LiveMarket(self.series, keep=history)
        else:
            for key in self.series:
                market.declare(key)
            market.keep = max(market.keep, history)
        self.market = market
        self.names = list(served.result.features or fls.feature_names)
        # in the model's input order: result.json keeps the scaling's keys sorted, and apply_scaling
        # orders its columns by the scaling's keys
        scaling = served.result.scaling
        self.scaling = {part: {n: scaling[part][n] for n in self.names} for part in ("mean", "std")}
        self._mean = np.array([self.scaling["mean"][n] for n in self.names], dtype="float64")
        self._std = np.array([self.scaling["std"][n] for n in self.names], dtype="float64")
        self.classes = tuple(served.result.classes)
        self.task = served.result.task
        self.done: int | None = None  # the newest bar whose prediction was decided
        self._tail_index: pd.DatetimeIndex = pd.DatetimeIndex([], tz="UTC")
        self._tail_values = np.zeros((0, len(self.names)), dtype="float32")
        self._trade_ids: collections.deque[str] = collections.deque(maxlen=_RECENT_TRADE_IDS)
        self._trade_id_set: set[str] = set()
        self.counts: collections.Counter[str] = collections.Counter()

    # ------------------------------------------------------------------------ swap
    def successor(self, served: ServedTrial, model: Any, version: int) -> LiveEngine:
        """An engine for another trial that takes over this one's market history and position, so the
        next bar is predicted by the new model and none is skipped."""
        series = list(self.series)
        for key in required_series(served, self.market):
            if key not in series:
                series.append(key)
        engine = LiveEngine(served, model, version=version, series=series, market=self.market)
        engine.done = self.done
        engine.counts = self.counts
        engine._trade_ids, engine._trade_id_set = self._trade_ids, self._trade_id_set
        if engine.done is not None and engine.window:
            engine._rebuild_tail()
        return engine

    def _rebuild_tail(self) -> None:
        assert self.done is not None and self.window is not None
        first = self.done - (self.window - 1) * self.step
        index, values = self._scaled_rows(first, self.done)
        self._tail_index, self._tail_values = index[-(self.window - 1) :], values[-(self.window - 1) :]

    # ------------------------------------------------------------------------ push
    def push(self, items: Iterable[object], *, through: int | None = None, warm: bool = False) -> PushOutcome:
        """Take ``items`` (decoded JSON events), then decide every bar that became complete."""
        outcome = PushOutcome()
        events: list[MarketEvent] = []
        for item in items:
            try:
                events.append(parse_event(item, self.resolution))
            except EventError as error:
                self._reject(outcome, error.reason, str(error))
        events.sort(key=lambda e: e.stamp)
        for event in events:
            reason = self._take(event)
            if reason is None:
                outcome.accepted += 1
            else:
                self._reject(outcome, reason[0], reason[1])
        self.counts["events"] += outcome.accepted
        ready = self._ready(through)
        if ready is not None and (self.done is None or ready > self.done):
            self._decide(ready, outcome, warm=warm)
        return outcome

    def _reject(self, outcome: PushOutcome, reason: str, message: str) -> None:
        assert reason in REASONS, reason
        outcome.rejected.append((reason, message))
        self.counts[f"rejected.{reason}"] += 1
        self.counts["rejected"] += 1
        log.warning("refused an event (%s): %s", reason, message)

    def _take(self, event: MarketEvent) -> tuple[str, str] | None:
        key = event.key
        if key not in self.market.series:
            wanted = ", ".join("/".join(k) for k in self.series)
            return "unknown_series", f"{'/'.join(key)} is not read by this model (it reads {wanted})"
        last = self.market.last_time(key)
        when = event.time.isoformat()
        if event.kind == "trades":
            if event.trade_id and event.trade_id in self._trade_id_set:
                return "duplicate", f"trade {event.trade_id} of {'/'.join(key)} was already taken"
            if last is not None and event.stamp < last:
                return "out_of_order", f"{'/'.join(key)} at {when} is older than the newest trade taken"
            if event.trade_id:
                if len(self._trade_ids) == self._trade_ids.maxlen:
                    self._trade_id_set.discard(self._trade_ids[0])
                self._trade_ids.append(event.trade_id)
                self._trade_id_set.add(event.trade_id)
        elif last is not None and event.stamp <= last:
            reason = "duplicate" if event.stamp == last else "out_of_order"
            return reason, f"{'/'.join(key)} at {when} is not newer than the newest row taken"
        if self.done is not None and event.kind.startswith("bars_") and event.stamp <= self.done:
            return "out_of_order", f"{'/'.join(key)} at {when} arrived after its bar was decided"
        rows = event.rows
        count = len(next(iter(rows.values())))
        if count == 1:
            self.market.append(key, event.stamp, {c: v[0] for c, v in rows.items()})
        else:
            self.market.append_many(key, [event.stamp] * count, rows)
        return None

    def _complete_through(self, key: SeriesKey) -> int | None:
        last = self.market.last_time(key)
        if last is None:
            return None
        if key[2].startswith("bars_"):
            return last
        return (last // self.step) * self.step - self.step

    def _first_bar(self, key: SeriesKey, stamp: int) -> int:
        """The first bar a row stamped ``stamp`` informs: a bar's or a trade's own bar; for a quote or
        a book snapshot the bar at whose close it is known (stamped in ``(t, t + step]``: bar ``t``), as
        the offline build reads it."""
        if key[2].startswith("bars_") or key[2] == "trades":
            return (stamp // self.step) * self.step
        return -((-stamp) // self.step) * self.step - self.step

    def _ready(self, through: int | None) -> int | None:
        marks = [self._complete_through(key) for key in self.series]
        known = [m for m in marks if m is not None]
        ready: int | None = None
        if known:
            ready = min(known) if len(known) == len(marks) else None
            newest = max(known)
            stalled = newest - self.fill_limit * self.step
            ready = stalled if ready is None else max(ready, stalled)
        if through is not None:
            through = (through // self.step) * self.step
            ready = through if ready is None else max(ready, through)
        return ready

    # ---------------------------------------------------------------------- decide
    def _decide(self, ready: int, outcome: PushOutcome, *, warm: bool) -> None:
        # the pending bars: after the last decided one, and not before the oldest row held (the market
        # holds every row since the last decision plus the history before it)
        starts = [(k, self.market.first_time(k)) for k in self.series]
        known = [self._first_bar(k, s) for k, s in starts if s is not None]
        oldest = min(known) if known else ready
        first = oldest if self.done is None else max(self.done + self.step, oldest)
        first = max(first, ready - (MAX_PENDING_BARS - 1) * self.step)
        started = time.perf_counter()
        index, values = self._scaled_rows(first, ready, outcome, warm=warm)
        self.done = ready
        self.market.trim(ready)
        if self.window:
            rows = len(index)
            index, values = self._windows(index, values)
            if not warm and rows > len(index):
                self._unpredictable(outcome, f"no full window of {self.window} bars", rows - len(index))
        if warm or len(index) == 0:
            return
        output = _predict(self.compiled, values, self.task)
        outcome.predictions.extend(self._records(index, output))
        self.counts["predictions"] += len(index)
        self.counts["compute_us"] += int((time.perf_counter() - started) * 1e6)

    def _scaled_rows(
        self, first: int, last: int, outcome: PushOutcome | None = None, *, warm: bool = False
    ) -> tuple[pd.DatetimeIndex, np.ndarray]:
        """The scaled feature rows of the bars ``first .. last`` (ns) where every feature has a value."""
        step = self.resolution.offset
        lo, hi = pd.Timestamp(first, tz="UTC"), pd.Timestamp(last, tz="UTC") + step
        data = MarketData(
            self.market,
            lo - (self.before + self.fill_limit) * step,
            hi,
            self.resolution,
            fill_limit=self.fill_limit,
            sources=self.sources,
        )
        i0 = data.grid.searchsorted(lo)
        by_name = {f.name: f.compute(data).to_numpy(dtype="float64")[i0:] for f in self.features}
        raw = np.stack([by_name[name] for name in self.names], axis=1)
        valid = ~np.isnan(raw).any(axis=1)
        if outcome is not None:
            missing = int((~valid).sum())
            outcome.incomplete += missing
            self.counts["incomplete"] += missing
            if missing and not warm:
                # each bar under the first feature (in the model's order) without a value
                columns, counts = np.unique(np.isnan(raw[~valid]).argmax(axis=1), return_counts=True)
                for column, count in zip(columns.tolist(), counts.tolist(), strict=True):
                    self._unpredictable(outcome, f"no value: {self.names[column]}", count)
        # apply_scaling's arithmetic ((x - mean) / std in float64), then float32 as the training set
        values = ((raw[valid] - self._mean) / self._std).astype("float32")
        return pd.DatetimeIndex(data.grid[i0:][valid]), values

    def _unpredictable(self, outcome: PushOutcome, reason: str, count: int) -> None:
        if not self.counts[f"unpredictable.{reason}"]:
            log.warning("a bar could not be predicted (%s); such bars are counted as unpredictable", reason)
        outcome.unpredictable[reason] = outcome.unpredictable.get(reason, 0) + count
        self.counts[f"unpredictable.{reason}"] += count
        self.counts["unpredictable"] += count

    def _windows(self, index: pd.DatetimeIndex, values: np.ndarray) -> tuple[pd.DatetimeIndex, np.ndarray]:
        assert self.window is not None
        joined_index = pd.DatetimeIndex(self._tail_index.append(index))
        joined = np.concatenate([self._tail_values, values], axis=0)
        ends = window_ends(joined_index, self.window, self.resolution.offset)
        ends = ends[ends >= len(self._tail_index)]
        keep = self.window - 1
        self._tail_index = pd.DatetimeIndex(
            joined_index[len(joined_index) - keep :] if keep else joined_index[:0]
        )
        self._tail_values = joined[len(joined) - keep :] if keep else joined[:0]
        return pd.DatetimeIndex(joined_index[ends]), cut_windows(joined, ends, self.window)

    def _records(self, index: pd.DatetimeIndex, output: np.ndarray) -> list[Prediction]:
        served = self.served
        common = {"experiment": served.experiment_name, "trial": served.trial_id, "version": self.version}
        stamps = index.asi8
        if self.task is Task.REGRESSION:
            return [
                Prediction(int(s), value=float(v), **common)  # type: ignore[arg-type]
                for s, v in zip(stamps, output, strict=True)
            ]
        labels = np.asarray(self.classes, dtype=object)[np.argmax(output, axis=1)]
        return [
            Prediction(int(s), label=str(label), probabilities=tuple(float(p) for p in row), **common)  # type: ignore[arg-type]
            for s, label, row in zip(stamps, labels, output, strict=True)
        ]


class CompiledModel:
    """A Keras model called through one traced graph (TensorFlow backend): a live bar is one row, and
    an eager call of a recurrent model costs tens of milliseconds where the graph costs one. Batch
    sizes are padded up to a power of two so the graph is traced a handful of times, not per size.
    Other backends (or a model that cannot be traced) are called eagerly, as ``predict_proba`` does."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self._graph: Any = None
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            self._graph = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    def __call__(self, X: np.ndarray, training: bool = False) -> Any:
        if self._graph is None:
            return self.model(X, training=False)
        n = len(X)
        size = 1 << max(0, (n - 1).bit_length())
        if size != n:
            X = np.concatenate([X, np.zeros((size - n, *X.shape[1:]), dtype=X.dtype)], axis=0)
        return np.asarray(self._graph(X))[:n]


def _predict(model: Any, X: np.ndarray, task: Task) -> np.ndarray:
    from atlas_ray.experiment import predict_proba  # the function that wrote the ResultsObject's

    return predict_proba(model, X, task)
