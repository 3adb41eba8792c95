"""The market-data store, the feature library and FeatureLabelSets."""

from atlas_ray.featurestore._schema import Kind, Resolution, bars_kind
from atlas_ray.featurestore._store import MarketStore, PartitionInfo, default_root

__all__ = ["Kind", "MarketStore", "PartitionInfo", "Resolution", "bars_kind", "default_root"]

# Market data in: ingest reports, bars helpers.
from atlas_ray.featurestore._bars import as_resolution, bars_from_trades, resample_bars
from atlas_ray.featurestore._ingest import GapRange, IngestReport

__all__ += ["GapRange", "IngestReport", "as_resolution", "bars_from_trades", "resample_bars"]

# The feature library: features, their names and the market-data window they compute on.
from atlas_ray.featurestore._feature import DataRequirement, Feature  # noqa: E402
from atlas_ray.featurestore._feature_library import (  # noqa: E402
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
from atlas_ray.featurestore._market_data import MarketData, OrderBooks  # noqa: E402

__all__ += [
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
    "SignedArbRevenue",
    "SignedArbVolumeUSD",
    "SimpleReturns",
    "Spread",
    "Volatility",
    "Volume",
]

# FeatureLabelSets: building featuresets with Ray Data and preparing them for models.
from atlas_ray.featurestore._featureset import FeatureLabelSet  # noqa: E402
from atlas_ray.featurestore._labels import Boundaries, Percentiles, apply_categories  # noqa: E402
from atlas_ray.featurestore._prepared import PreparedSet, SplitPart, Task  # noqa: E402
from atlas_ray.featurestore._scaling import apply_scaling  # noqa: E402
from atlas_ray.featurestore._splits import TimeSplit  # noqa: E402

__all__ += [
    "Boundaries",
    "FeatureLabelSet",
    "Percentiles",
    "PreparedSet",
    "SplitPart",
    "Task",
    "TimeSplit",
    "apply_categories",
    "apply_scaling",
]
