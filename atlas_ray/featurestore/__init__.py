"""The market-data store, the feature library and FeatureLabelSets."""

from atlas_ray.featurestore._schema import Kind, Resolution, bars_kind
from atlas_ray.featurestore._store import MarketStore, PartitionInfo, default_root

__all__ = ["Kind", "MarketStore", "PartitionInfo", "Resolution", "bars_kind", "default_root"]
