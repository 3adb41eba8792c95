"""atlas_ray: find, compare and run forecasting models on high-frequency market data, on Ray."""

from atlas_ray.errors import AtlasError

__all__ = ["AtlasError", "__version__"]
__version__ = "0.1.0"
