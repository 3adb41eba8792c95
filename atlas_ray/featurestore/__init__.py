"""The market-data store, the feature library and FeatureLabelSets.

Market data in (``MarketStore.ingest``), features in plain words (``LogReturns().coinbase().one_min()``)
and FeatureLabelSets built with Ray Data into aligned frames and prepared for models.

This module is the package's one face: other packages (search, serve, report, specs) import
``atlas_ray.featurestore`` and the names in ``__all__`` only, never a module behind it. Behind it the
code lives in private rooms, one job each, so a room can be rearranged without touching a neighbour:

- ``_schema.py``: the vocabulary every room shares (kinds, columns, ``Resolution``); it imports no room.
- ``_formats/``: the source formats, one reader per vendor file format, each giving a canonical ``Source``.
- ``_store/``: the market-data store: partitions, the bars rule, ``MarketStore``, ingest (row checks,
  order books, reports) and what a store holds.
- ``_gds/``: the Gryphon Data Service database into the store (once or following it), and a MariaDB for
  trying it.
- ``_features/``: what a feature is, the library, its maths, its names, the ``MarketData`` it reads and
  the source rule (which stored series each input comes from).
- ``_featuresets/``: ``FeatureLabelSet`` built into frames (and cached), split, labelled, scaled,
  rebalanced, windowed and prepared for models (``PreparedSet``, ``FoldedSet``).

The rooms are private (a leading underscore) rather than public names with private modules: nothing
outside this package has a reason to name a room, and an import-graph check then needs one rule
(no ``atlas_ray.<package>._anything`` from another package). Rooms import each other downwards only:
``_schema`` <- ``_formats`` <- ``_store`` <- ``_gds`` and ``_features`` <- ``_featuresets``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from atlas_ray.featurestore._features._feature import DataRequirement, Feature, default_pair
from atlas_ray.featurestore._features._feature_library import (
    FV,
    VWAP,
    Ask,
    AskStrength,
    AskStrengthUSD,
    Bid,
    BidStrength,
    BidStrengthUSD,
    InterExchangeSpread,
    LogReturns,
    Midpoint,
    MidpointDiff,
    SignedArbRevenue,
    SignedArbVolumeUSD,
    SimpleReturns,
    Spread,
    Volatility,
    Volume,
)
from atlas_ray.featurestore._features._market_data import MarketData, OrderBooks
from atlas_ray.featurestore._features._sources import (
    SeriesSource,
    SourcedMarket,
    Sources,
    check_supplied,
    decide,
    decide_series,
    live_key,
)
from atlas_ray.featurestore._featuresets._featureset import FeatureLabelSet
from atlas_ray.featurestore._featuresets._folded import FoldedSet
from atlas_ray.featurestore._featuresets._fs_cache import feature_code_version
from atlas_ray.featurestore._featuresets._labels import Boundaries, Percentiles, apply_categories
from atlas_ray.featurestore._featuresets._prepared import PreparedSet, SplitPart, Task
from atlas_ray.featurestore._featuresets._rebalance import Smote
from atlas_ray.featurestore._featuresets._scaling import apply_scaling
from atlas_ray.featurestore._featuresets._splits import TimeSplit, WalkForward
from atlas_ray.featurestore._featuresets._windows import cut_windows, window_ends
from atlas_ray.featurestore._schema import BAR_COLUMNS, COLUMNS, Kind, Resolution, bars_kind
from atlas_ray.featurestore._store._bars import (
    as_resolution,
    bars_from_trades,
    bars_source,
    closed_before,
    read_bars,
    resample_bars,
)
from atlas_ray.featurestore._store._ingest import GapRange, IngestReport
from atlas_ray.featurestore._store._partitions import PartitionStore
from atlas_ray.featurestore._store._source import MarketSource
from atlas_ray.featurestore._store._store import MarketStore, PartitionInfo, default_root
from atlas_ray.featurestore._store._validate_rows import RowChecks

if TYPE_CHECKING:
    from atlas_ray.featurestore._gds._gds import follow_bars

__all__ = [
    # market data in
    "GapRange",
    "IngestReport",
    "Kind",
    "MarketStore",
    "PartitionInfo",
    "PartitionStore",
    "Resolution",
    "RowChecks",
    "as_resolution",
    "bars_from_trades",
    "bars_kind",
    "default_root",
    "resample_bars",
    # what the live side reads the store by
    "BAR_COLUMNS",
    "COLUMNS",
    "MarketSource",
    "bars_source",
    "closed_before",
    "follow_bars",
    "read_bars",
    # the feature library
    "FV",
    "VWAP",
    "Ask",
    "AskStrength",
    "AskStrengthUSD",
    "Bid",
    "BidStrength",
    "BidStrengthUSD",
    "DataRequirement",
    "Feature",
    "InterExchangeSpread",
    "LogReturns",
    "MarketData",
    "Midpoint",
    "MidpointDiff",
    "OrderBooks",
    "SeriesSource",
    "SourcedMarket",
    "SignedArbRevenue",
    "SignedArbVolumeUSD",
    "SimpleReturns",
    "Sources",
    "check_supplied",
    "decide",
    "decide_series",
    "live_key",
    "Spread",
    "Volatility",
    "Volume",
    "default_pair",
    # FeatureLabelSets
    "Boundaries",
    "FeatureLabelSet",
    "FoldedSet",
    "Percentiles",
    "PreparedSet",
    "Smote",
    "SplitPart",
    "Task",
    "TimeSplit",
    "WalkForward",
    "apply_categories",
    "apply_scaling",
    "cut_windows",
    "feature_code_version",
    "window_ends",
]


def __getattr__(name: str) -> object:
    """``follow_bars`` on first use: the GDS room (and its MySQL client) loads only when asked for."""
    if name == "follow_bars":
        from atlas_ray.featurestore._gds._gds import follow_bars

        return follow_bars
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
