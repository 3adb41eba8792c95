"""The columns in which a file names its own market (exchange, pair), read as they are written.

Formats that carry them: bitFlyer executions and ticker (``domain`` bitflyer.jp, ``product_code``
BTC_JPY), CryptoDataDownload (``Symbol`` BTCUSD), and bar files with a symbol / pair / exchange column.
LEAN (the market is in the folder names), Bitstamp order CSVs and event logs name none.

A reader puts the labels in its parsed frame as ``market_exchange`` / ``market_pair`` (categorical
text, one value a row, in the frame's row order) and names the file's columns in
``Source.market_columns``; ``atlas_ray.featurestore._store._file_market`` checks them against ``--exchange``
/ ``--pair``. Nothing of them is stored.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import pyarrow as pa

from atlas_ray.featurestore._formats._columns import MARKET_FIELDS

__all__ = ["FRAME_COLUMNS", "LABEL_TYPE", "MARKET_FIELDS", "market_labels"]

FRAME_COLUMNS = {"exchange": "market_exchange", "pair": "market_pair"}
"""Where a parsed frame carries each market label."""

LABEL_TYPE = pa.dictionary(pa.int32(), pa.string())
"""How a label column is read: a few distinct texts over many rows."""


def market_labels(table: pa.Table, parts: Mapping[str, str]) -> dict[str, pd.Series]:
    """Each market label of ``table`` as a categorical column for the parsed frame (``FRAME_COLUMNS``),
    in the table's row order; ``parts`` maps ``exchange`` / ``pair`` to the table column holding it."""
    columns: dict[str, pd.Series] = {}
    for part, column in parts.items():
        if part not in FRAME_COLUMNS or column not in table.column_names:
            continue
        values = table.column(column)
        if not pa.types.is_dictionary(values.type):
            values = pa.chunked_array(values).cast(pa.string()).dictionary_encode()
        columns[FRAME_COLUMNS[part]] = pd.Series(values.to_pandas(), name=FRAME_COLUMNS[part])
    return columns
