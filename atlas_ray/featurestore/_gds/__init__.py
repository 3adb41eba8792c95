"""The Gryphon Data Service (GDS) database into the store.

``_gds`` (ingest once, or follow as it fills; ``follow_bars`` for the live side), ``_gds_url`` (where the
database is), ``_gds_watermark`` (how far a table has been read), ``_gds_schema`` (the GDS tables and
writers that fill them) and ``_gds_testing`` (a real MariaDB to try it on). Private: use
``atlas_ray.featurestore``.
"""
