"""Raw exchange event logs: the real Bitstamp order events written as a recorder of the exchange's
websocket writes them (one ``timestamp, event, JSON body`` a line, gzipped) rebuild the very book the
processed order-event CSV does."""

from __future__ import annotations

import gzip
import io
import json
import lzma
from pathlib import Path

import pandas as pd

from atlas_ray.featurestore import MarketStore

ORDERS = "bitstamp_orders_2015-05-01/orders.csv.xz"


def _log_lines(data_dir: Path) -> list[str]:
    raw = pd.read_csv(io.BytesIO(lzma.decompress((data_dir / ORDERS).read_bytes())))
    lines = []
    for row in raw.itertuples(index=False):
        seen = pd.Timestamp(int(row.timestamp), unit="ms", tz="UTC")
        body = {
            "id": int(row.id),
            "price": float(row.price),
            "amount": float(row.volume) * 1e-8,
            "order_type": 0 if row.direction == "bid" else 1,
            "microtimestamp": str(int(row.timestamp) * 1000),
        }
        lines.append(f"{seen:%Y-%m-%dT%H:%M:%S.%f}Z\torder_{row.action}\t{json.dumps(body)}")
    return lines


def test_event_log_rebuilds_the_book_of_the_order_csv(
    book_store: MarketStore, data_dir: Path, tmp_path: Path
) -> None:
    lines = _log_lines(data_dir)
    extra = [
        '2015-05-01T00:00:00.000000Z\tbts:subscription_succeeded\t{"channel": "live_orders_btcusd"}',
        '2015-05-01T00:00:05.000000Z\torder_created\t{"id": 1, "price": 236.0, "amount": ',  # cut short
        '2015-05-01T00:00:06.500000Z\ttrade\t{"id": 8740001, "price": 235.81, "amount": 0.5, "type": 0}',
        '2015-05-01T00:00:07.250000Z\ttrade\t{"id": 8740002, "price": 235.8, "amount": 1.25, "type": 1}',
    ]
    path = tmp_path / "bitstamp_events.log.gz"
    path.write_bytes(gzip.compress(("\n".join([*extra, *lines]) + "\n").encode()))
    store = MarketStore(tmp_path / "store")
    report = store.ingest(path, exchange="bitstamp", pair="btc_usd")
    assert report.format == "event_log"
    assert report.kinds == ("book", "quotes", "trades")
    assert report.rows_read == len(lines) + len(extra)
    assert report.rejected["unparseable"] == 1
    assert report.rejected["duplicate"] == 1  # the real file's one repeated event
    pd.testing.assert_frame_equal(store.book("bitstamp", "btc_usd"), book_store.book("bitstamp", "btc_usd"))
    pd.testing.assert_frame_equal(
        store.quotes("bitstamp", "btc_usd"), book_store.quotes("bitstamp", "btc_usd")
    )
    trades = store.read("bitstamp", "btc_usd", "trades")
    assert trades["trade_id"].tolist() == ["8740001", "8740002"]
    assert trades["side"].tolist() == ["buy", "sell"]
    assert trades["size"].tolist() == [0.5, 1.25]
