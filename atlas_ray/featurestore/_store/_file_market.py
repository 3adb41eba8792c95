"""Which market a file holds: its own market columns against ``--exchange`` / ``--pair``.

A file that names its market (``_formats/_market_columns``: bitFlyer's ``domain`` and
``product_code``, CryptoDataDownload's ``Symbol``, a bar file's symbol / pair / exchange column) is
checked against the names given for it; the rules, decided here once:

* **A name given, the file says another market in every row**: the file is refused (``IngestError``,
  one line naming the file, the column, the file's market and the given one); nothing is written.
* **A name given, the file holds several markets**: the rows of another market are refused and
  counted as ``other_market`` (the rule names both markets); the rest are ingested.
* **No name given**: the file's market is taken when every row names the same one (the ingest
  summary says so: ``(pair from product_code BTC_JPY)``); a file naming several markets, or none, is
  refused, asking for the name.

Names are compared without case or separators (``BTC_JPY``, ``btc-jpy`` and ``BTCJPY`` are all
``btc_jpy``; ``XBT`` is ``BTC``); an exchange written as a web domain compares by its first label
(``bitflyer.jp`` is ``bitflyer``). A futures code (``FX_BTC_JPY``, ``BTCJPY28SEP2018``) is another market.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from atlas_ray.errors import IngestError
from atlas_ray.featurestore._formats import Source
from atlas_ray.featurestore._formats._market_columns import FRAME_COLUMNS

__all__ = ["FileMarket", "other_market_rows", "resolve_market"]

_QUOTES = (
    "usdt",
    "usdc",
    "busd",
    "usd",
    "eur",
    "jpy",
    "gbp",
    "krw",
    "aud",
    "cad",
    "chf",
    "try",
    "btc",
    "eth",
)
"""Quote currencies, for splitting a pair written without a separator (``BTCUSD`` -> ``btc_usd``)."""
_SEPARATORS = re.compile(r"[^a-z0-9]+")
_PARTS = ("exchange", "pair")
_FLAGS = {"exchange": "--exchange", "pair": "--pair"}


@dataclass(frozen=True)
class FileMarket:
    """The market a file goes into, and what of it was taken from the file (``taken``: for the ingest
    summary, ``pair from product_code BTC_JPY``; empty when the names given were used)."""

    exchange: str
    pair: str
    taken: tuple[str, ...] = ()

    @property
    def note(self) -> str:
        return f"({', '.join(self.taken)})" if self.taken else ""


def market_key(part: str, text: str) -> str:
    """The name ``text`` compares as: lower case, no separators, ``xbt`` as ``btc``; an exchange's web
    domain by its first label."""
    value = str(text).strip().lower()
    if part == "exchange":
        value = value.removeprefix("www.").split(".", 1)[0] if "." in value else value
    value = _SEPARATORS.sub("", value)
    return value.replace("xbt", "btc") if part == "pair" else value


def _store_name(part: str, text: str) -> str | None:
    """The store's name for the file's ``text`` (``BTC_JPY`` -> ``btc_jpy``, ``BTCUSD`` -> ``btc_usd``,
    ``bitflyer.jp`` -> ``bitflyer``); None when a pair cannot be split into two currencies."""
    value = str(text).strip().lower()
    if part == "exchange":
        key = market_key(part, value)
        return key or None
    pieces = [p for p in _SEPARATORS.split(value) if p]
    if len(pieces) == 2:
        return "_".join(pieces).replace("xbt", "btc")
    if len(pieces) == 1:
        joined = pieces[0].replace("xbt", "btc")
        for quote in _QUOTES:
            if joined.endswith(quote) and len(joined) > len(quote) + 1:
                return f"{joined[: -len(quote)]}_{quote}"
    return None


def _labels(source: Source, part: str) -> pd.Series | None:
    column = FRAME_COLUMNS[part]
    if part not in source.market_columns or column not in source.frame.columns:
        return None
    return source.frame[column]


def _counts(labels: pd.Series) -> dict[str, int]:
    """How many rows say each label (nulls and empty labels say nothing)."""
    counts: dict[str, int] = {}
    for label, n in labels.value_counts(dropna=True).items():  # (per category: no text per row)
        text = str(label).strip()
        if text and n:
            counts[text] = counts.get(text, 0) + int(n)
    return counts


def resolve_market(source: Source, name: str, exchange: str | None, pair: str | None) -> FileMarket:
    """The market the file ``name`` goes into (see the module docstring); ``exchange`` / ``pair`` are the
    names given (already store names), or None. Raises ``IngestError`` for a file of another market,
    or when a name is neither given nor told by the file."""
    given = {"exchange": exchange, "pair": pair}
    chosen: dict[str, str] = {}
    taken: list[str] = []
    for part in _PARTS:
        labels = _labels(source, part)
        counts = _counts(labels) if labels is not None else {}
        column = source.market_columns.get(part, "")
        wanted = given[part]
        if wanted is not None:
            if counts and not any(market_key(part, label) == market_key(part, wanted) for label in counts):
                said = ", ".join(sorted(counts))
                raise IngestError(
                    f"ingest: {name}: the file's {column} says {said}, but {_FLAGS[part]} says {wanted}: a "
                    f"file of another market is not stored as {wanted} (give {_FLAGS[part]} "
                    f"{_store_name(part, next(iter(counts))) or '...'} or leave it out to take the file's)"
                )
            chosen[part] = wanted
            continue
        if not counts:
            raise IngestError(
                f"ingest: {name}: {_FLAGS[part]} is needed: the file names no {part}"
                + (f" (its {column} is empty)" if column else "")
            )
        keys = {market_key(part, label) for label in counts}
        if len(keys) > 1:
            held = ", ".join(f"{label} ({n} rows)" for label, n in sorted(counts.items()))
            raise IngestError(
                f"ingest: {name}: the file's {column} names several markets ({held}); give {_FLAGS[part]} "
                "to choose one (the rows of the others are then refused as other_market)"
            )
        label = next(iter(counts))
        store_name = _store_name(part, label)
        if store_name is None:
            raise IngestError(
                f"ingest: {name}: {_FLAGS[part]} is needed: the file's {column} says {label}, which is no "
                f"{part} name atlas_ray can split (like BTC_JPY or BTCUSD)"
            )
        chosen[part] = store_name
        taken.append(f"{part} from {column} {label}")
    return FileMarket(chosen["exchange"], chosen["pair"], tuple(taken))


def other_market_rows(
    source: Source, frame: pd.DataFrame, market: FileMarket
) -> list[tuple[np.ndarray, str, str]]:
    """``(mask, column, rule)`` for each market column of ``source``: the rows of ``frame`` (the
    source's frame, maybe fixed) whose label names another market than ``market``. A null or empty
    label names none and is kept."""
    found = []
    for part in _PARTS:
        column = FRAME_COLUMNS[part]
        if part not in source.market_columns or column not in frame.columns:
            continue
        wanted = market.exchange if part == "exchange" else market.pair
        labels = frame[column]
        categorical = labels if isinstance(labels.dtype, pd.CategoricalDtype) else labels.astype("category")
        categories = [str(c) for c in categorical.cat.categories]
        other = np.array(
            [bool(c.strip()) and market_key(part, c) != market_key(part, wanted) for c in categories],
            dtype=bool,
        )
        codes = categorical.cat.codes.to_numpy()
        mask = np.zeros(len(frame), dtype=bool)
        present = codes >= 0
        mask[present] = other[codes[present]]
        if mask.any():
            said = ", ".join(sorted({categories[i] for i in np.unique(codes[mask])}))
            rule = f"the row's {source.market_columns[part]} says {said}, not {wanted} (the {part} ingested)"
            found.append((mask, column, rule))
    return found
