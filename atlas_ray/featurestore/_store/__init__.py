"""The market-data store: what is stored, how it is written and how it is read.

``_partitions`` (the partitioned parquet files), ``_bars`` (bars from trades, resampled, the store's bars
read rule), ``_store`` (``MarketStore``, what callers use), ``_source`` (``MarketSource``, what features
read from), ``_inventory`` (what a store holds), and the ingest: ``_ingest`` (file -> validated rows ->
the store, atomically), ``_validate_rows`` and ``_stored_neighbours`` (the row checks and their context),
``_file_market`` (which market a file holds), ``_orderbook`` (books and quotes from order events) and
``_ingest_reports`` (reports kept beside the data). Private: use ``atlas_ray.featurestore``.
"""
