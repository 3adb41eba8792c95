"""Features: what a feature is, the library of them, their maths and the market data they read.

``_feature`` (the ``Feature`` base, its fluent steps, ``DataRequirement``), ``_feature_library`` (the
concrete features), ``_feature_math`` (their maths, plain numpy), ``_feature_names`` (names that parse
back), ``_market_data`` (``MarketData``, the aligned window features compute on) and ``_sources`` (the
source rule: which stored series each input comes from). Private: use ``atlas_ray.featurestore``.
"""
