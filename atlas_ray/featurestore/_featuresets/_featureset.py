"""``FeatureLabelSet``: features and prediction targets, built together and prepared for models.

A FeatureLabelSet is a frozen definition (no work in ``__init__`` beyond checking it):

* ``build(start, end, store=None)`` computes it into one frame, cached in the store (see
  ``_fs_cache``): in this process below ``LOCAL_BUILD_ROWS`` bars, with Ray Data in parallel over
  time chunks from there on (see ``_build``); both give the same frame;
* ``prepare(frame, split)`` and ``walk_forward(frame, folds)`` make ``PreparedSet``s for models: split
  by time with purge gaps (``_splits``), z-scaled with training statistics (``_scaling``), the label
  categorised with boundaries fitted on training data (``_labels``), the training classes rebalanced
  (``_rebalance``, its draws from ``seed``) and rows cut into windows (``_windows``); with a
  ``WalkForward`` split, ``prepare`` gives a ``FoldedSet`` (one PreparedSet per fold, see ``_folded``);
* label gaps: ``build`` marks the rows whose label spans a bar that was missing and filled (its value
  rests on an invented price): ``label_gap_counts(frame)`` counts them per label, and
  ``label_gaps="drop"`` leaves them out of every part when preparing (the default ``"keep"`` keeps
  them, as before, and the count is printed by the search);
* ``plot_data`` and ``coverage`` show what a range holds (``_plot``).

Decisions: when several labels are given, ``prepare`` uses the first unless told ``label=``; the
purge defaults to that label's horizon; ``rebalance`` needs ``categories`` (a regression target has no
classes to balance); ``scaling=None`` stores the identity scaling (mean 0, std 1) so serving has one
path; rows whose label falls on a boundary under ``boundary="drop"`` are dropped from every part, as
serving would drop them too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
import pandas as pd

from atlas_ray.errors import AtlasError, FeatureError
from atlas_ray.featurestore._features._feature import DataRequirement, Feature
from atlas_ray.featurestore._features._market_data import MarketData
from atlas_ray.featurestore._features._sources import (
    SOURCES_ATTR,
    Sources,
    check_supplied,
    decide,
    range_days,
)
from atlas_ray.featurestore._featuresets._build import (
    build_local,
    build_ray,
    compute_span,
    frame_to_table,
    parse_range,
    table_to_frame,
)
from atlas_ray.featurestore._featuresets._folded import FoldedSet
from atlas_ray.featurestore._featuresets._fs_cache import (
    cache_key,
    cache_path,
    data_version,
    read_cached,
    write_cached,
)
from atlas_ray.featurestore._featuresets._labels import (
    Boundaries,
    Percentiles,
    apply_categories,
    categories_from_definition,
    fit_categories,
)
from atlas_ray.featurestore._featuresets._prepared import PreparedSet, SplitPart, Task
from atlas_ray.featurestore._featuresets._rebalance import (
    Smote,
    as_rebalance,
    rebalance_definition,
    rebalance_from_definition,
    rebalance_positions,
    smote_rows,
)
from atlas_ray.featurestore._featuresets._scaling import (
    SCALINGS,
    apply_scaling,
    fit_scaling,
    identity_scaling,
)
from atlas_ray.featurestore._featuresets._splits import (
    PartSlices,
    TimeSplit,
    WalkForward,
    split_positions,
    walk_forward_positions,
    walk_forward_split,
)
from atlas_ray.featurestore._featuresets._windows import check_window, cut_windows, window_ends
from atlas_ray.featurestore._schema import Resolution, bars_kind
from atlas_ray.featurestore._store._store import MarketStore

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["LOCAL_BUILD_ROWS", "FeatureLabelSet"]

LOCAL_BUILD_ROWS = 1_048_576
"""``build`` computes a range of fewer bars than this (2**20, about two years of minutes) in this
process (``build_local``), without starting or using Ray; from this many bars on, with Ray Data over
time chunks. Decided from measurements (issue 12) of ``benchmarks/bench_featurestore.py``'s 23 features
+ 2 labels on the 2-core machine, Ray already started and warmed, three runs while other work loaded
the machine: the in-process build won at every size measured, from 1 day (1,379 rows: 0.08 s against
0.28 s for Ray Data) over 4 weeks (39,403 rows: 0.11 s against 0.29 s) and 24 weeks (238,124 rows:
0.58 s against 0.73 s) to two years (1,058,400 bars, 1,041,995 rows: 1.75 s against 3.28 s). Ray Data
costs a fixed 0.2 to 0.3 s a build (seconds more to start Ray when it is not running), and each chunk
re-reads its partitions and ships its columns through the object store, more CPU than two cores win
back. The threshold sits just below the largest size measured; above it Ray Data is what spreads a
build over a cluster's CPUs and keeps one process's memory bounded. ``build(..., parallel=...)``
chooses either path for any size."""

_DEFINITION_FIELDS = (
    "features",
    "labels",
    "fill_limit",
    "scaling",
    "categories",
    "rebalance",
    "window",
    "label_gaps",
)
LABEL_GAPS: tuple[str, ...] = ("keep", "drop")
#: ``frame.attrs`` key under which ``build`` records, per label name, the times (int ns since the epoch,
#: UTC; a list, so that pyarrow can keep attrs as JSON) of the rows whose label spans a filled bar.
LABEL_GAPS_ATTR = "label_gaps"


@dataclass(frozen=True)
class FeatureLabelSet:
    """Features (inputs) and labels (targets) at one resolution, and how to prepare them for models.

    ``features`` and ``labels`` are given as lists and stored as tuples. ``fill_limit``: bars missing
    up to this many in a row are filled causally (longer gaps leave rows out). ``scaling``: ``"zscore"``
    or ``None``. ``categories``: ``Percentiles``/``Boundaries`` for a classification label, ``None`` for
    regression. ``rebalance``: ``"undersample"``/``"oversample"``/``Smote(k_neighbors=5)`` (``"smote"``
    for the default ``k``)/``None``: the training part only, classifiers only, SMOTE not with ``window``
    (``_rebalance``).
    ``window``: rows per window for sequence models, ``None`` for flat rows. ``label_gaps``:
    ``"keep"`` or ``"drop"`` the rows whose label spans a filled (missing) bar.
    """

    features: Sequence[Feature]
    labels: Sequence[Feature]
    _: KW_ONLY
    fill_limit: int = 5
    scaling: Literal["zscore"] | None = "zscore"
    categories: Percentiles | Boundaries | None = None
    rebalance: Literal["undersample", "oversample", "smote"] | Smote | None = None
    window: int | None = None
    label_gaps: Literal["keep", "drop"] = "keep"

    def __post_init__(self) -> None:
        features = _as_tuple("features", self.features)
        labels = _as_tuple("labels", self.labels)
        object.__setattr__(self, "features", features)
        object.__setattr__(self, "labels", labels)
        if not features:
            raise FeatureError(
                "The value of `features` is [], but a FeatureLabelSet needs at least one feature."
            )
        if not labels:
            raise FeatureError("The value of `labels` is [], but a FeatureLabelSet needs at least one label.")
        for feature in features:
            if feature.horizon > 0:
                raise FeatureError(
                    f"The feature {feature.name} looks {feature.horizon} row(s) forward: a label leaking "
                    "into the inputs; features must have `horizon == 0` (put it among the labels)."
                )
        first = features[0]
        for item in (*features, *labels):
            if item.resolution != first.resolution:
                raise FeatureError(
                    f"The feature {item.name} is at resolution {item.resolution.value}, but {first.name} "
                    f"is at {first.resolution.value}: every feature and label of a FeatureLabelSet must "
                    "share one."
                )
        names = [item.name for item in (*features, *labels)]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise FeatureError(f"The feature(s) {duplicates} appear twice; every column must be unique.")
        if isinstance(self.fill_limit, bool) or not isinstance(self.fill_limit, int) or self.fill_limit < 0:
            raise FeatureError(
                f"The value of `fill_limit` is {self.fill_limit!r}, but must be an integer `fill_limit >= 0`."
            )
        if self.scaling is not None and self.scaling not in SCALINGS:
            raise FeatureError(
                f"The value of `scaling` is {self.scaling!r}, but must be None or one of {list(SCALINGS)}."
            )
        if self.categories is not None and not isinstance(self.categories, (Percentiles, Boundaries)):
            raise FeatureError(
                f"The value of `categories` is {self.categories!r}, "
                "but must be None, Percentiles or Boundaries."
            )
        object.__setattr__(self, "rebalance", as_rebalance(self.rebalance))  # "smote" -> Smote()
        if self.rebalance is not None and self.categories is None:
            raise FeatureError(
                f"The value of `rebalance` is {self.rebalance!r}, but rebalancing needs `categories` "
                "(a regression label has no classes to balance)."
            )
        check_window(self.window)
        if isinstance(self.rebalance, Smote) and self.window is not None:
            raise FeatureError(
                f"The value of `rebalance` is {self.rebalance!r}, but SMOTE is refused with `window` "
                f"({self.window}): use rebalance='oversample' for windows (see featurestore's Smote)."
            )
        if self.label_gaps not in LABEL_GAPS:
            raise FeatureError(
                f"The value of `label_gaps` is {self.label_gaps!r}, but must be one of {list(LABEL_GAPS)}."
            )

    # ------------------------------------------------------------------ description
    @property
    def resolution(self) -> Resolution:
        return self.features[0].resolution

    @property
    def columns(self) -> tuple[Feature, ...]:
        """Features then labels: the built frame's columns in order."""
        return (*self.features, *self.labels)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def label_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.labels)

    @property
    def halo(self) -> tuple[int, int]:
        """The widest ``(rows_before, rows_after)`` any feature or label needs around a row."""
        halos = [item.halo for item in self.columns]
        return max(h[0] for h in halos), max(h[1] for h in halos)

    def definition(self) -> dict[str, Any]:
        """The JSON-able definition: feature and label names and the preparation parameters."""
        return {
            "features": list(self.feature_names),
            "labels": list(self.label_names),
            "fill_limit": self.fill_limit,
            "scaling": self.scaling,
            "categories": self.categories.definition() if self.categories is not None else None,
            "rebalance": rebalance_definition(self.rebalance),
            "window": self.window,
            **({"label_gaps": self.label_gaps} if self.label_gaps != "keep" else {}),
        }

    @classmethod
    def from_definition(cls, definition: dict[str, Any]) -> FeatureLabelSet:
        """The FeatureLabelSet that ``definition()`` describes (unknown fields are refused)."""
        if not isinstance(definition, dict):
            raise FeatureError(
                f"A FeatureLabelSet definition must be a dict, not {type(definition).__name__}."
            )
        unknown = sorted(set(definition) - set(_DEFINITION_FIELDS))
        if unknown:
            raise FeatureError(
                f"The field(s) {unknown} of a FeatureLabelSet definition are unknown; "
                f"the fields are {', '.join(_DEFINITION_FIELDS)}."
            )
        for field in ("features", "labels"):
            names = definition.get(field)
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise FeatureError(
                    f"The value of `{field}` is {names!r}, but must be a list of feature names."
                )
        return cls(
            [Feature.from_name(name) for name in definition["features"]],
            [Feature.from_name(name) for name in definition["labels"]],
            fill_limit=definition.get("fill_limit", 5),
            scaling=definition.get("scaling", "zscore"),
            categories=categories_from_definition(definition.get("categories")),
            rebalance=rebalance_from_definition(definition.get("rebalance")),
            window=definition.get("window"),
            label_gaps=definition.get("label_gaps", "keep"),
        )

    # ------------------------------------------------------------------ building
    def sources(self, start: Any, end: Any, store: MarketStore | None = None) -> Sources:
        """Where every series the features and labels read comes from over ``[start, end)``: the
        source rule's decision (``_sources``), what ``build`` reads by and records. Missing data raises
        ``MissingDataError`` naming the feature and the series."""
        store = store if store is not None else MarketStore()
        lo, hi = parse_range(start, end, self.resolution)
        return self._decide(store, lo, hi)

    def _decide(self, store: MarketStore, lo: pd.Timestamp, hi: pd.Timestamp) -> Sources:
        return decide(store, self.columns, lo, hi, self.resolution)

    def _sources_for(
        self,
        store: MarketStore,
        lo: pd.Timestamp,
        hi: pd.Timestamp,
        sources: Sources | Mapping[str, Any] | None,
    ) -> Sources:
        """``sources`` (a recorded decision, as ``Sources`` or its JSON) checked against the store and
        the featureset, or the decision made now."""
        if sources is None:
            return self._decide(store, lo, hi)
        if not isinstance(sources, Sources):
            try:
                sources = Sources.from_json(dict(sources))
            except (TypeError, ValueError) as error:
                raise AtlasError(f"The recorded sources cannot be read: {error}") from None
        if sources.resolution != self.resolution:
            raise AtlasError(
                f"The recorded sources are at {sources.resolution.value}, but the featureset is at "
                f"{self.resolution.value}."
            )
        for item in self.columns:
            for requirement in item.requirements():
                if sources.choose(requirement) is None:
                    raise AtlasError(
                        f"The recorded sources ({sources.describe()}) name no source for "
                        f"{requirement.describe()}, which {item.name} reads."
                    )
        check_supplied(store, sources, range_days(lo, hi))
        return sources

    def _missing_check(self, store: MarketStore, lo: pd.Timestamp, hi: pd.Timestamp) -> Sources:
        """The decision over ``[lo, hi)`` (raising ``MissingDataError`` for missing data)."""
        return self._decide(store, lo, hi)

    def _load_range(self, lo: pd.Timestamp, hi: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
        before, after = self.halo
        step = self.resolution.offset
        return lo - (before + self.fill_limit) * step, hi + after * step

    def _cache_key(self, store: MarketStore, lo: pd.Timestamp, hi: pd.Timestamp, sources: Sources) -> str:
        markets = {(r.exchange, r.pair) for item in self.columns for r in _all_requirements(item)}
        version = data_version(store, *self._load_range(lo, hi), markets=markets)
        return cache_key(self.definition(), lo, hi, version, sources.key())

    def cache_path(
        self, start: Any, end: Any, store: MarketStore | None = None, *, sources: Any = None
    ) -> str:
        """Where ``build(start, end, store, sources=sources)`` caches its frame (it may not exist yet)."""
        store = store if store is not None else MarketStore()
        lo, hi = parse_range(start, end, self.resolution)
        return cache_path(store, self._cache_key(store, lo, hi, self._sources_for(store, lo, hi, sources)))

    def build(
        self,
        start: Any,
        end: Any,
        store: MarketStore | None = None,
        *,
        chunk_rows: int | None = None,
        cache: bool = True,
        parallel: bool | None = None,
        sources: Sources | Mapping[str, Any] | None = None,
    ) -> pd.DataFrame:
        """The frame of the bars in ``[start, end)`` (UTC): features then labels, float64, valid rows only.

        ``parallel`` None (the default): a range of fewer than ``LOCAL_BUILD_ROWS`` bars is computed in
        this process (``build_local``, Ray is neither started nor used), a longer one with Ray Data in
        parallel over time chunks; True: Ray Data whatever the size (as does giving ``chunk_rows``,
        bars per chunk, by default a few large chunks); False: in this process whatever the size. Every
        way gives exactly the same frame. Missing data raises ``MissingDataError`` before any work; an
        empty range, or one without a single valid row, raises ``AtlasError`` naming it. With
        ``cache`` the frame is read from / written to the store's featureset cache.

        Sources: every series is read from the source the source rule decides over the range
        (``sources(start, end)``), or from ``sources`` when given (a trial's recorded decision, which a
        store that cannot supply it refuses). The decision is part of the cache key and is recorded
        in the frame's ``attrs["sources"]`` (JSON), which ``prepare`` hands on to the trials.
        """
        store = store if store is not None else MarketStore()
        lo, hi = parse_range(start, end, self.resolution)
        decided = self._sources_for(store, lo, hi, sources)
        key = self._cache_key(store, lo, hi, decided) if cache else ""
        if cache:
            cached = read_cached(store, key)
            if cached is not None:
                return self._mark_label_gaps(table_to_frame(cached), store, sources=decided)
        if parallel is None:
            rows = int((hi - lo) // self.resolution.offset)
            parallel = chunk_rows is not None or rows >= LOCAL_BUILD_ROWS
        seen: list[MarketData] = []
        masks: dict[str, np.ndarray] | None = None
        if parallel:
            frame, masks = build_ray(self, store, lo, hi, chunk_rows=chunk_rows, sources=decided)
        else:
            frame = build_local(self, store, lo, hi, seen=seen, sources=decided)
        self._check_not_empty(len(frame), lo, hi)
        if cache:
            write_cached(store, key, frame_to_table(frame))
        return self._mark_label_gaps(frame, store, seen[0] if seen else None, masks, sources=decided)

    def build_local(
        self,
        start: Any,
        end: Any,
        store: MarketStore | None = None,
        *,
        sources: Sources | Mapping[str, Any] | None = None,
    ) -> pd.DataFrame:
        """``build`` computed in this process in one piece, without Ray and without the cache."""
        store = store if store is not None else MarketStore()
        lo, hi = parse_range(start, end, self.resolution)
        decided = self._sources_for(store, lo, hi, sources)
        seen: list[MarketData] = []
        frame = build_local(self, store, lo, hi, seen=seen, sources=decided)
        self._check_not_empty(len(frame), lo, hi)
        return self._mark_label_gaps(frame, store, seen[0] if seen else None, sources=decided)

    def data_state(
        self, start: Any, end: Any, store: MarketStore | None = None, *, sources: Any = None
    ) -> dict[str, Any]:
        """What ``build(start, end, store)`` reads: its cache key, its sources (``_sources``) and the
        store partitions (path, size, modification time) it depends on, for an experiment's
        provenance."""
        store = store if store is not None else MarketStore()
        lo, hi = parse_range(start, end, self.resolution)
        markets = {(r.exchange, r.pair) for item in self.columns for r in _all_requirements(item)}
        decided = self._sources_for(store, lo, hi, sources)
        return {
            "store": str(store.root),
            "cache_key": self._cache_key(store, lo, hi, decided),
            "sources": decided.to_json(),
            "partitions": data_version(store, *self._load_range(lo, hi), markets=markets),
        }

    # ------------------------------------------------------------------ label gaps
    def _mark_label_gaps(
        self,
        frame: pd.DataFrame,
        store: MarketStore,
        built: MarketData | None = None,
        masks: dict[str, np.ndarray] | None = None,
        *,
        sources: Sources | None = None,
    ) -> pd.DataFrame:
        """``frame`` with ``attrs["sources"]`` (the decision it was built by, as JSON) and
        ``attrs["label_gaps"]``: per label, the times of rows whose label looks across
        a bar the store lacks (filled causally when built), i.e. a missing bar in ``(t, t + horizon]``.
        ``built``: the market data an in-process build read; where it covers every label's window
        and market, its record of the stored bars is used instead of reading them again. ``masks``:
        the rows already found per label (the Ray Data build finds them in each chunk)."""
        index = pd.DatetimeIndex(frame.index)
        if masks is None:
            masks = self.label_gap_masks(index, store, built, sources=sources)
        if sources is not None:
            frame.attrs[SOURCES_ATTR] = sources.to_json()
        # plain ints: attrs stay JSON-able
        frame.attrs[LABEL_GAPS_ATTR] = {name: index.asi8[mask].tolist() for name, mask in masks.items()}
        return frame

    def label_gap_masks(
        self,
        index: pd.DatetimeIndex,
        store: MarketStore,
        built: MarketData | None = None,
        *,
        sources: Sources | None = None,
    ) -> dict[str, np.ndarray]:
        """Per label, which rows of ``index`` look across a bar the store lacks (see
        ``_mark_label_gaps``); a row's answer depends on that row alone, so chunks can be asked apart."""
        if not len(index):
            return {label.name: np.zeros(0, dtype=bool) for label in self.labels}
        # One window for every label (the longest horizon): each market's bars are read once.
        longest = max((label.horizon for label in self.labels), default=0)
        end = index[-1] + (longest + 1) * self.resolution.offset
        cache: dict[tuple[str, str], np.ndarray] = {}
        data = _reuse(built, self.labels, index[0], end, cache)
        if data is None:
            cache.clear()
            data = MarketData(store, index[0], end, self.resolution, fill_limit=0, sources=sources)
        return {label.name: _label_gap_mask(label, index, data, cache) for label in self.labels}

    def label_gap_counts(self, frame: pd.DataFrame) -> dict[str, int]:
        """Per label, how many rows of ``frame`` (as ``build`` returned it) hold a label that spans a
        filled bar; empty when the frame does not come from ``build``."""
        gaps = frame.attrs.get(LABEL_GAPS_ATTR) or {}
        index = pd.DatetimeIndex(frame.index).asi8
        return {name: int(np.isin(index, stamps).sum()) for name, stamps in gaps.items()}

    def _check_not_empty(self, rows: int, lo: pd.Timestamp, hi: pd.Timestamp) -> None:
        if rows == 0:
            raise AtlasError(
                f"The range [{lo.isoformat()}, {hi.isoformat()}) has no row where every feature and label "
                f"has a value ({len(self.columns)} columns, fill_limit={self.fill_limit})."
            )

    def plot_data(
        self, start: Any, end: Any, subplots: bool = True, store: MarketStore | None = None
    ) -> Figure:
        """A matplotlib figure of the built range: one panel per column, or all z-scored on one axis."""
        from atlas_ray.featurestore._featuresets._plot import plot_frame  # matplotlib loads only when drawing

        return plot_frame(self.build(start, end, store), subplots=subplots)

    def coverage(self, start: Any, end: Any, store: MarketStore | None = None) -> pd.DataFrame:
        """Per feature and label: first / last valid time, share of NaN before dropping, gaps count."""
        from atlas_ray.featurestore._featuresets._plot import coverage_of

        store = store if store is not None else MarketStore()
        lo, hi = parse_range(start, end, self.resolution)
        return coverage_of(compute_span(self, store, lo, hi, self._decide(store, lo, hi)))

    # ------------------------------------------------------------------ preparing
    def _label(self, label: str | None) -> Feature:
        if label is None:
            return self.labels[0]
        for item in self.labels:
            if item.name == label:
                return item
        raise FeatureError(f"The value of `label` is {label!r}, but must be one of {list(self.label_names)}.")

    def _check_frame(self, frame: pd.DataFrame, label: str) -> None:
        if not isinstance(frame, pd.DataFrame) or not isinstance(frame.index, pd.DatetimeIndex):
            raise FeatureError(
                "The frame to prepare must be a DataFrame indexed by time (what build returns)."
            )
        missing = [name for name in (*self.feature_names, label) if name not in frame.columns]
        if missing:
            raise FeatureError(f"The frame lacks the column(s) {missing} of this FeatureLabelSet.")
        if not frame.index.is_monotonic_increasing or frame.index.has_duplicates:
            raise FeatureError("The frame's index must be strictly increasing times (what build returns).")
        values = frame.loc[:, list(self.feature_names)].to_numpy(dtype="float64")
        bad = ~np.isfinite(values)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise FeatureError(
                f"The feature {self.feature_names[col]} is {values[row, col]} at "
                f"{frame.index[row].isoformat()}, but features must be finite to prepare."
            )

    @overload
    def prepare(
        self, frame: pd.DataFrame, split: TimeSplit | None = None, *, label: str | None = None, seed: int = 0
    ) -> PreparedSet: ...

    @overload
    def prepare(
        self, frame: pd.DataFrame, split: WalkForward, *, label: str | None = None, seed: int = 0
    ) -> FoldedSet: ...

    def prepare(
        self,
        frame: pd.DataFrame,
        split: TimeSplit | WalkForward | None = None,
        *,
        label: str | None = None,
        seed: int = 0,
    ) -> PreparedSet | FoldedSet:
        """Train / validation / test parts of ``frame`` (a built frame), fitted on train only.

        ``split`` defaults to ``TimeSplit(0.7, 0.15, 0.15, purge=None)``; ``purge=None`` leaves the
        label's horizon in rows between parts. A ``WalkForward`` split gives a ``FoldedSet``: one
        PreparedSet per fold, each fitted on its own training window, each holding the sealed test
        block as its ``test`` part. ``seed``: the random state of rebalancing draws.
        """
        split = split if split is not None else TimeSplit()
        target = self._label(label)
        self._check_frame(frame, target.name)
        frame = self._drop_label_gaps(frame, target)
        purge = split.purge if split.purge is not None else target.horizon
        if isinstance(split, WalkForward):
            folds, _ = walk_forward_split(len(frame), split, purge)
            return FoldedSet(
                folds=tuple(self._prepare_parts(frame, parts, target, seed) for parts in folds),
                split={
                    "kind": "walk_forward",
                    "folds": split.folds,
                    "test": split.test,
                    "purge": purge,
                    "embargo": split.embargo,
                    "window": split.window,
                },
            )
        if not isinstance(split, TimeSplit):
            raise FeatureError(
                f"The value of `split` is {split!r}, but must be a TimeSplit or a WalkForward."
            )
        return self._prepare_parts(frame, split_positions(len(frame), split, purge), target, seed)

    def _drop_label_gaps(self, frame: pd.DataFrame, target: Feature) -> pd.DataFrame:
        if self.label_gaps != "drop":
            return frame
        stamps = (frame.attrs.get(LABEL_GAPS_ATTR) or {}).get(target.name)
        if stamps is None or len(stamps) == 0:
            return frame
        kept = frame.loc[~np.isin(pd.DatetimeIndex(frame.index).asi8, stamps)]
        kept.attrs = dict(frame.attrs)  # (the recorded sources travel on to the PreparedSet)
        return kept

    def walk_forward(
        self,
        frame: pd.DataFrame,
        folds: int,
        purge: int | None = None,
        validation: float = 0.15,
        *,
        label: str | None = None,
    ) -> list[PreparedSet]:
        """Walk-forward folds (expanding train, then validation and test), each fitted on its own train."""
        target = self._label(label)
        self._check_frame(frame, target.name)
        gap = purge if purge is not None else target.horizon
        slices = walk_forward_positions(len(frame), folds, gap, validation)
        return [self._prepare_parts(frame, parts, target, 0) for parts in slices]

    def _prepare_parts(
        self, frame: pd.DataFrame, parts: PartSlices, target: Feature, seed: int
    ) -> PreparedSet:
        names = list(self.feature_names)
        train = frame.iloc[parts.train]
        scaling = fit_scaling(train, names) if self.scaling == "zscore" else identity_scaling(names)
        categories = (
            fit_categories(train[target.name].to_numpy(dtype="float64"), self.categories, label=target.name)
            if self.categories is not None
            else None
        )
        made = {
            part: self._make_part(
                frame.iloc[rows], scaling, categories, target, train=(part == "train"), seed=seed
            )
            for part, rows in (("train", parts.train), ("validation", parts.validation), ("test", parts.test))
        }
        if categories is None:
            task, classes = Task.REGRESSION, ()
        else:
            classes = tuple(categories["classes"])
            task = Task.BINARY if len(classes) == 2 else Task.MULTICLASS
        return PreparedSet(
            train=made["train"],
            validation=made["validation"],
            test=made["test"],
            feature_names=tuple(names),
            label_name=target.name,
            task=task,
            classes=classes,
            scaling=scaling,
            categories=categories,
            window=self.window,
            featureset=self.definition(),
            sources=frame.attrs.get(SOURCES_ATTR),
        )

    def _make_part(
        self,
        part: pd.DataFrame,
        scaling: dict[str, Any],
        categories: dict[str, Any] | None,
        target: Feature,
        *,
        train: bool,
        seed: int = 0,
    ) -> SplitPart:
        values = apply_scaling(part, scaling).to_numpy(dtype="float32")
        label_value = part[target.name].to_numpy(dtype="float64")
        if categories is not None:
            ids = apply_categories(label_value, categories)
            keep = ids >= 0
        else:
            ids = label_value
            keep = np.isfinite(label_value)
        if self.window is not None:
            ends = window_ends(pd.DatetimeIndex(part.index), self.window, self.resolution.offset)
            rows = ends[keep[ends]]
        else:
            rows = np.flatnonzero(keep)
        synthetic: tuple[np.ndarray, np.ndarray] | None = None
        if train and isinstance(self.rebalance, Smote) and categories is not None:
            X_made, y_made, source = smote_rows(
                values[rows], ids[rows], self.rebalance, seed=seed, classes=categories["classes"]
            )
            rows, synthetic = rows[source], (X_made, y_made)  # a synthetic row: its nearest real row's time
        elif train and self.rebalance is not None:
            rows = rows[rebalance_positions(ids[rows], str(self.rebalance), seed=seed)]
        if synthetic is not None:
            X, y = synthetic
        else:
            X = cut_windows(values, rows, self.window) if self.window is not None else values[rows]
            y = ids[rows].astype("int64") if categories is not None else ids[rows].astype("float32")
        return SplitPart(
            X=X,
            y=y,
            index=pd.DatetimeIndex(part.index[rows]),
            label_value=label_value[rows],
        )


def _as_tuple(field: str, items: Sequence[Feature]) -> tuple[Feature, ...]:
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise FeatureError(f"The value of `{field}` is {items!r}, but must be a list of features.")
    out = tuple(items)
    for item in out:
        if not all(hasattr(item, attr) for attr in ("name", "resolution", "horizon", "halo", "compute")):
            raise FeatureError(
                f"The value {item!r} in `{field}` is not a feature (LogReturns(), Volume(), ...)."
            )
    return out


def _all_requirements(feature: Feature) -> list[DataRequirement]:
    out: list[DataRequirement] = []
    for requirement in feature.requirements():
        option: DataRequirement | None = requirement
        while option is not None:
            out.append(option)
            option = option.fallback
    return out


def _reuse(
    built: MarketData | None,
    labels: Sequence[Feature],
    start: pd.Timestamp,
    end: pd.Timestamp,
    cache: dict[tuple[str, str], np.ndarray],
) -> MarketData | None:
    """``built`` when it spans ``[start, end)`` and recorded the stored bars of every market the
    labels read bars of (``cache`` filled with their missing bars on its grid), else None."""
    if built is None or built.start > start or built.end < end:
        return None
    for label in labels:
        for requirement in _all_requirements(label):
            if requirement.kind != "bars" or label.horizon <= 0:
                continue
            market = (requirement.exchange, requirement.pair)
            if not built.has(*market, "bars"):
                continue
            stored = built.stored_bars(*market)
            if stored is None:
                return None
            cache[market] = ~stored
    return built


def _missing_bars(data: MarketData, exchange: str, pair: str) -> np.ndarray:
    """Which bars of ``data.grid`` the store lacks for the market (or holds without a close). Where the
    store holds bars at this resolution only their close column is read (a third less work than the
    bars); otherwise the bars rule's bars (``data`` has ``fill_limit=0``: nothing is filled)."""
    kind = bars_kind(data.resolution)
    source = data.store.provides(exchange, pair, "bars")
    store = data.store.store
    if not (isinstance(store, MarketStore) and source is not None and source.read == kind):
        return np.asarray(data.bars(exchange, pair)["close"].isna().to_numpy())
    closes = store.read(exchange, pair, kind, data.start, data.end, columns=["close"])
    grid = data.grid.asi8
    present = np.zeros(len(grid), dtype=bool)
    if len(closes) and len(grid):
        step = data.resolution.offset.value
        offset = pd.DatetimeIndex(closes.index).as_unit("ns").asi8 - grid[0]
        known = closes["close"].notna().to_numpy()
        where = known & (offset >= 0) & (offset % step == 0) & (offset // step < len(grid))
        present[offset[where] // step] = True
    return ~present


def _label_gap_mask(
    label: Feature, index: pd.DatetimeIndex, data: MarketData, cache: dict[tuple[str, str], np.ndarray]
) -> np.ndarray:
    """Rows of ``index`` whose ``label`` looks across a bar missing from the store (a bar of one of
    its markets, in ``(t, t + horizon]``); all False for a label without bars or horizon. ``data``:
    the unfilled bars (``fill_limit=0``) from ``index[0]`` to at least ``horizon + 1`` bars past
    ``index[-1]``; ``cache``: each market's missing bars, shared by the labels."""
    horizon = label.horizon
    mask = np.zeros(len(index), dtype=bool)
    bars = {(r.exchange, r.pair) for r in _all_requirements(label) if r.kind == "bars"}
    if horizon <= 0 or not bars or not len(index):
        return mask
    grid = data.grid.asi8
    positions = np.searchsorted(grid, index.asi8)
    for exchange, pair in sorted(bars):
        if not data.has(exchange, pair, "bars"):
            continue
        if (exchange, pair) not in cache:
            cache[(exchange, pair)] = _missing_bars(data, exchange, pair)
        missing = cache[(exchange, pair)]
        before = np.concatenate([[0], np.cumsum(missing)])
        # missing bars among positions p + 1 .. p + horizon
        upper = np.minimum(positions + horizon + 1, len(missing))
        mask |= (before[upper] - before[np.minimum(positions + 1, len(missing))]) > 0
    return mask
