"""The market-data store, the feature library and FeatureLabelSets.

Market data in (``MarketStore.ingest``), features in plain words (``LogReturns().coinbase().one_min()``)
and FeatureLabelSets built with Ray Data into aligned frames and prepared for models.
"""

from atlas_ray.featurestore._bars import as_resolution, bars_from_trades, resample_bars
from atlas_ray.featurestore._feature import DataRequirement, Feature
from atlas_ray.featurestore._feature_library import (
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
from atlas_ray.featurestore._featureset import FeatureLabelSet
from atlas_ray.featurestore._folded import FoldedSet
from atlas_ray.featurestore._ingest import GapRange, IngestReport
from atlas_ray.featurestore._labels import Boundaries, Percentiles, apply_categories
from atlas_ray.featurestore._market_data import MarketData, OrderBooks
from atlas_ray.featurestore._partitions import PartitionStore
from atlas_ray.featurestore._prepared import PreparedSet, SplitPart, Task
from atlas_ray.featurestore._scaling import apply_scaling
from atlas_ray.featurestore._schema import Kind, Resolution, bars_kind
from atlas_ray.featurestore._sources import (
    SeriesSource,
    SourcedMarket,
    Sources,
    check_supplied,
    decide,
    decide_series,
    live_key,
)
from atlas_ray.featurestore._splits import TimeSplit, WalkForward
from atlas_ray.featurestore._store import MarketStore, PartitionInfo, default_root
from atlas_ray.featurestore._validate_rows import RowChecks

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
    # FeatureLabelSets
    "Boundaries",
    "FeatureLabelSet",
    "FoldedSet",
    "Percentiles",
    "PreparedSet",
    "SplitPart",
    "Task",
    "TimeSplit",
    "WalkForward",
    "apply_categories",
    "apply_scaling",
]
