"""The Bitstamp order book rebuilt from the real order events, against an independent replay."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from atlas_ray.errors import MissingDataError
from atlas_ray.featurestore import MarketStore


@pytest.fixture(scope="module")
def events(data_dir: Path) -> pd.DataFrame:
    return pd.read_csv(data_dir / "bitstamp_orders_2015-05-01" / "orders.csv.xz").drop_duplicates()


def _replay(events: pd.DataFrame, boundary: pd.Timestamp, depth: int = 50) -> pd.DataFrame:
    """The book at ``boundary``: each order's last event before it, unless the order was ever deleted."""
    cut = int(boundary.value // 1_000_000)
    before = events.loc[events["timestamp"] < cut]
    deleted = set(before.loc[before["action"] == "deleted", "id"])
    last = before.groupby("id").tail(1)
    live = last.loc[~last["id"].isin(deleted) & (last["volume"] > 0)]
    sides = []
    for side, ascending in (("bid", False), ("ask", True)):
        levels = live.loc[live["direction"] == side].groupby("price")["volume"].sum()
        levels = levels.sort_index(ascending=ascending).iloc[:depth]
        sides.append(
            pd.DataFrame(
                {
                    "side": side,
                    "level": range(len(levels)),
                    "price": levels.index,
                    "size": levels.to_numpy() / 1e8,
                }
            )
        )
    return pd.concat(sides, ignore_index=True)


@pytest.mark.parametrize(
    "boundary", ["2015-05-01 00:01", "2015-05-01 00:30", "2015-05-01 02:17", "2015-05-01 05:04"]
)
def test_book_matches_an_independent_replay(
    book_store: MarketStore, events: pd.DataFrame, boundary: str
) -> None:
    at = pd.Timestamp(boundary, tz="UTC")
    book = book_store.book("bitstamp", "btc_usd", at, at + pd.Timedelta(seconds=1)).reset_index()
    expected = _replay(events, at)
    assert (book["timestamp"] == at).all()
    assert book["side"].tolist() == expected["side"].tolist()
    assert book["level"].tolist() == expected["level"].tolist()
    np.testing.assert_array_equal(book["price"].to_numpy(), expected["price"].to_numpy())
    np.testing.assert_allclose(book["size"].to_numpy(), expected["size"].to_numpy(), rtol=1e-12)


def test_snapshot_every_minute_with_at_most_50_levels(book_store: MarketStore) -> None:
    book = book_store.book("bitstamp", "btc_usd")
    times = book.index.unique()
    assert times[0] == pd.Timestamp("2015-05-01 00:01", tz="UTC")
    assert times[-1] == pd.Timestamp("2015-05-01 05:04", tz="UTC")
    assert len(times) == 304
    per_side = book.groupby([book.index, "side"]).size()
    assert per_side.max() == 50
    bids = book.loc[book["side"] == "bid"]
    assert (bids.groupby(level=0)["price"].apply(lambda p: p.is_monotonic_decreasing)).all()


def test_quotes_are_the_best_levels(book_store: MarketStore) -> None:
    book = book_store.book("bitstamp", "btc_usd")
    quotes = book_store.quotes("bitstamp", "btc_usd")
    best = book.loc[book["level"] == 0]
    bids = best.loc[best["side"] == "bid"]
    asks = best.loc[best["side"] == "ask"]
    assert quotes.index.equals(bids.index)
    np.testing.assert_array_equal(quotes["bid_price"].to_numpy(), bids["price"].to_numpy())
    np.testing.assert_array_equal(quotes["ask_size"].to_numpy(), asks["size"].to_numpy())
    assert (quotes["ask_price"] > quotes["bid_price"]).mean() > 0.95


def test_book_absent_is_a_missing_data_error(minute_store: MarketStore) -> None:
    with pytest.raises(MissingDataError, match=r"no order-book snapshots for coinbase/btc_usd.*bars_1m"):
        minute_store.book("coinbase", "btc_usd")
    with pytest.raises(MissingDataError, match=r"no quotes \(top of book\) for kraken/btc_usd"):
        minute_store.quotes("kraken", "btc_usd")
