"""Broken files made from slices of the real data: each refuses with one clear line naming the file
(and row / field where known) and leaves the store byte for byte as it was, or is ingested with the
right rejection count."""

from __future__ import annotations

import gzip
import lzma
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from atlas_ray.errors import IngestError
from atlas_ray.featurestore import MarketStore

FLYER = "bitflyer_2018-01"


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def store(tmp_path: Path, data_dir: Path) -> MarketStore:
    """A store that already holds data (so "unchanged" means something)."""
    store = MarketStore(tmp_path / "store")
    store.ingest(
        data_dir / "lean_coinbase_btcusd" / "20170903_trade.zip", exchange="coinbase", pair="btc_usd"
    )
    return store


def _bars_csv(data_dir: Path, rows: int = 40) -> pd.DataFrame:
    raw = pd.read_parquet(data_dir / "minute_bars_2023-03" / "kraken_btcusd.parquet").iloc[:rows]
    frame = raw.reset_index()
    frame["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    return frame


def _write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def _ticker_lines(data_dir: Path, count: int = 30) -> list[str]:
    text = gzip.decompress(
        (data_dir / FLYER / "bitflyer.ticker.20180121.BTC_JPY.csv.gz").read_bytes()
    ).decode()
    return text.splitlines()[: count + 1]


# ---- files that are refused: (maker, expected fragments of the one error line)
def truncated_gzip(data_dir: Path, tmp: Path) -> Path:
    raw = (data_dir / FLYER / "bitflyer.ticker.20180121.BTC_JPY.csv.gz").read_bytes()
    path = tmp / "ticker_truncated.csv.gz"
    path.write_bytes(raw[: len(raw) // 2])
    return path


def truncated_xz(data_dir: Path, tmp: Path) -> Path:
    raw = (data_dir / "bitstamp_orders_2015-05-01" / "orders.csv.xz").read_bytes()
    path = tmp / "orders_truncated.csv.xz"
    path.write_bytes(raw[: len(raw) // 3])
    return path


def truncated_parquet(data_dir: Path, tmp: Path) -> Path:
    raw = (data_dir / "minute_bars_2023-03" / "kraken_btcusd.parquet").read_bytes()
    path = tmp / "kraken_cut.parquet"
    path.write_bytes(raw[: len(raw) // 2])
    return path


def wrong_columns(data_dir: Path, tmp: Path) -> Path:
    return _write(_bars_csv(data_dir).drop(columns=["close"]), tmp / "kraken_no_close.csv")


def mixed_time_zones(data_dir: Path, tmp: Path) -> Path:
    lines = _ticker_lines(data_dir)
    lines[7] = lines[7].replace("+09:00", "+00:00")
    path = tmp / "ticker_mixed.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def empty_file(data_dir: Path, tmp: Path) -> Path:
    path = tmp / "empty.csv"
    path.write_bytes(b"")
    return path


def header_only(data_dir: Path, tmp: Path) -> Path:
    path = tmp / "header_only.csv"
    path.write_text(_ticker_lines(data_dir)[0] + "\n")
    return path


def non_numeric(data_dir: Path, tmp: Path) -> Path:
    frame = _bars_csv(data_dir).astype({"close": object})
    frame.loc[15, "close"] = "abc"  # data row 16 = line 17 of the file
    return _write(frame, tmp / "coinbase_btcusd.csv")


def unknown_content(data_dir: Path, tmp: Path) -> Path:
    path = tmp / "notes.csv"
    path.write_text("hello,world\n1,2\n")
    return path


def ragged_row(data_dir: Path, tmp: Path) -> Path:
    path = _write(_bars_csv(data_dir), tmp / "ragged.csv")
    lines = path.read_text().splitlines()
    lines[5] = ",".join(lines[5].split(",")[:3])
    path.write_text("\n".join(lines) + "\n")
    return path


def bad_action(data_dir: Path, tmp: Path) -> Path:
    text = lzma.decompress((data_dir / "bitstamp_orders_2015-05-01" / "orders.csv.xz").read_bytes()).decode()
    lines = text.splitlines()[:50]
    lines[10] = lines[10].replace(",created,", ",opened,")
    path = tmp / "orders_bad_action.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def two_member_zip(data_dir: Path, tmp: Path) -> Path:
    path = tmp / "20170903_trade.zip"
    with zipfile.ZipFile(data_dir / "lean_coinbase_btcusd" / "20170903_trade.zip") as source:
        member = source.read(source.namelist()[0])
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.csv", member)
        archive.writestr("b.csv", member)
    return path


def lean_time_outside_day(data_dir: Path, tmp: Path) -> Path:
    with zipfile.ZipFile(data_dir / "lean_coinbase_btcusd" / "20170903_trade.zip") as source:
        lines = source.read(source.namelist()[0]).decode().splitlines()[:20]
    fields = lines[11].split(",")
    lines[11] = ",".join(["90000000", *fields[1:]])
    path = tmp / "20170903_trade.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("20170903_btcusd_minute_trade.csv", "\n".join(lines) + "\n")
    return path


REFUSED: list[tuple[Callable[[Path, Path], Path], str | None, tuple[str, ...]]] = [
    (truncated_gzip, None, ("ticker_truncated.csv.gz", "truncated or corrupt")),
    (truncated_xz, None, ("orders_truncated.csv.xz", "truncated or corrupt")),
    (truncated_parquet, None, ("kraken_cut.parquet", "parquet")),
    (wrong_columns, None, ("kraken_no_close.csv", "lacks the columns close")),
    (
        mixed_time_zones,
        None,
        ("ticker_mixed.csv row 8 field 'timestamp'", "+00:00", "+09:00", "mixed time zones"),
    ),
    (empty_file, None, ("empty.csv", "empty")),
    (header_only, None, ("header_only.csv", "no rows")),
    (non_numeric, None, ("coinbase_btcusd.csv row 17 field 'close': 'abc' is not a number",)),
    (unknown_content, None, ("notes.csv", "format cannot be told")),
    (lambda d, t: _write(_bars_csv(d), t / "bars.csv"), "klines", ("bars.csv", "'klines' is unknown")),
    (ragged_row, None, ("ragged.csv", "not a readable CSV", "Expected")),
    (bad_action, None, ("orders_bad_action.csv row 11 field 'action'", "'opened' is not one of")),
    (two_member_zip, None, ("20170903_trade.zip", "holds 2 files")),
    (lean_time_outside_day, "lean_trade", ("20170903_trade.zip row 12 field 'time'", "90000000")),
]


@pytest.mark.parametrize(
    ("maker", "format", "fragments"),
    REFUSED,
    ids=[getattr(m, "__name__", "unknown_format") for m, _, _ in REFUSED],
)
def test_broken_file_is_refused_and_the_store_unchanged(
    store: MarketStore,
    data_dir: Path,
    tmp_path: Path,
    maker: Callable[[Path, Path], Path],
    format: str | None,
    fragments: tuple[str, ...],
) -> None:
    path = maker(data_dir, tmp_path)
    before = _snapshot(Path(store.root))
    with pytest.raises(IngestError) as caught:
        store.ingest(path, exchange="coinbase", pair="btc_usd", format=format)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("ingest: ")
    for fragment in fragments:
        assert fragment in message, message
    assert _snapshot(Path(store.root)) == before


def test_a_broken_file_in_a_batch_refuses_the_whole_batch(
    store: MarketStore, data_dir: Path, tmp_path: Path
) -> None:
    good = data_dir / "lean_coinbase_btcusd" / "20170904_trade.zip"
    before = _snapshot(Path(store.root))
    with pytest.raises(IngestError, match=r"empty\.csv"):
        store.ingest_many([good, empty_file(data_dir, tmp_path)], exchange="coinbase", pair="btc_usd")
    assert _snapshot(Path(store.root)) == before


# ---- files that are ingested with rows rejected and counted
def test_nan_and_non_positive_prices_are_rejected(store: MarketStore, data_dir: Path, tmp_path: Path) -> None:
    frame = _bars_csv(data_dir).astype({"close": object, "low": object, "open": object})
    frame.loc[3, "close"] = "nan"
    frame.loc[8, "low"] = ""
    frame.loc[12, "open"] = "0"
    frame.loc[20, "close"] = "-5"
    report = store.ingest(_write(frame, tmp_path / "prices.csv"), exchange="kraken", pair="btc_usd")
    assert {reason: count for reason, count in report.rejected.items() if count} == {"bad_price": 4}
    assert report.rows_written == len(frame) - 4
    assert "bad_price 4" in str(report)


def test_duplicates_are_rejected(store: MarketStore, data_dir: Path, tmp_path: Path) -> None:
    frame = _bars_csv(data_dir)
    repeated = pd.concat([frame, frame.iloc[[2, 5, 9]]], ignore_index=True).sort_values(
        "timestamp", kind="stable"
    )
    report = store.ingest(_write(repeated, tmp_path / "dups.csv"), exchange="kraken", pair="btc_usd")
    assert report.rejected["duplicate"] == 3
    assert report.rows_written == len(frame)


def test_out_of_order_rows_are_rejected(store: MarketStore, data_dir: Path, tmp_path: Path) -> None:
    frame = _bars_csv(data_dir)
    order = list(range(len(frame)))
    order[10], order[11] = order[11], order[10]  # one row late
    order.insert(30, order.pop(3))  # an early bar moved later
    shuffled = frame.iloc[order]
    times = pd.to_datetime(shuffled["timestamp"]).to_numpy()
    late = int((times[1:] < np.maximum.accumulate(times)[:-1]).sum())
    report = store.ingest(_write(shuffled, tmp_path / "shuffled.csv"), exchange="kraken", pair="btc_usd")
    assert late == 2
    assert report.rejected["out_of_order"] == late
    assert report.rows_written == len(frame) - late


def test_missing_times_are_unparseable(store: MarketStore, data_dir: Path, tmp_path: Path) -> None:
    frame = _bars_csv(data_dir)
    frame.loc[[4, 7], "timestamp"] = ""
    report = store.ingest(_write(frame, tmp_path / "no_time.csv"), exchange="kraken", pair="btc_usd")
    assert report.rejected["unparseable"] == 2
    assert report.rows_written == len(frame) - 2


def test_bad_names_are_refused(store: MarketStore, data_dir: Path) -> None:
    with pytest.raises(IngestError, match=r"`exchange` is 'coin/base'"):
        store.ingest(
            data_dir / "lean_coinbase_btcusd" / "20170903_trade.zip", exchange="coin/base", pair="btc_usd"
        )
    with pytest.raises(IngestError, match="no such file"):
        store.ingest(data_dir / "nothing_here.csv", exchange="coinbase", pair="btc_usd")
