"""FeatureLabelSets: features and targets built into frames and prepared for models.

``_featureset`` (``FeatureLabelSet``), ``_build`` (the build, with Ray Data or in one process),
``_fs_cache`` (built frames cached in the store), ``_splits`` (time splits, walk-forward folds),
``_labels`` (categorical labels), ``_scaling`` (z-scaling), ``_rebalance`` (class rebalancing),
``_windows`` (windows for sequence models), ``_prepared`` (``PreparedSet``, the hand-off to the search),
``_folded`` (``FoldedSet``) and ``_plot`` (drawing a built set). Private: use ``atlas_ray.featurestore``.
"""
