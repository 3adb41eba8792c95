"""MarketStore: partitioned writes and reads, atomic multi-partition writes, inventory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from atlas_ray.featurestore import MarketStore, default_root
from atlas_ray.featurestore._store._inventory import format_inventory, inventory


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_minute_store_holds_the_three_exchanges(minute_store: MarketStore) -> None:
    assert minute_store.exchanges() == ["binance", "coinbase", "kraken"]
    assert minute_store.kinds("kraken", "btc_usd") == ["bars_1m"]
    assert minute_store.dates("kraken", "btc_usd", "bars_1m")[0] == "2023-03-01"
    assert len(minute_store.dates("kraken", "btc_usd", "bars_1m")) == 21
    first, last = minute_store.time_range("binance", "btc_usdt", "bars_1m")
    assert (first, last) == (pd.Timestamp("2023-03-01", tz="UTC"), pd.Timestamp("2023-03-21 23:59", tz="UTC"))


def test_read_filters_the_range_across_partitions(minute_store: MarketStore) -> None:
    part = minute_store.read("kraken", "btc_usd", "bars_1m", "2023-03-05 23:50", "2023-03-06 00:10")
    raw = minute_store.read("kraken", "btc_usd", "bars_1m")
    expected = raw.loc[(raw.index >= "2023-03-05 23:50") & (raw.index < "2023-03-06 00:10")]
    pd.testing.assert_frame_equal(part, expected)
    assert part.index.tz is not None and str(part.index.dtype) == "datetime64[ns, UTC]"


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2023-03-06 00:00", "2023-03-07 00:00"),  # one whole day, to midnight
        ("2023-03-05 12:00", "2023-03-06 00:00:00.000000001"),  # half a day and one nanosecond
        ("2023-03-05 23:59", "2023-03-06 00:01"),  # across midnight
        ("2023-03-06 00:00", "2023-03-06 00:00"),  # empty
        (pd.Timestamp.min, pd.Timestamp.max),  # every row: no overflow at the ends of time
        (pd.Timestamp.min, pd.Timestamp.min),  # nothing before the start of time
    ],
)
def test_read_opens_the_partitions_the_range_overlaps(minute_store: MarketStore, start, end) -> None:  # type: ignore[no-untyped-def]
    raw = minute_store.read("kraken", "btc_usd", "bars_1m")
    lo, hi = pd.Timestamp(start).tz_localize("UTC"), pd.Timestamp(end).tz_localize("UTC")
    part = minute_store.read("kraken", "btc_usd", "bars_1m", lo, hi)
    expected = raw.loc[(raw.index >= lo) & (raw.index < hi)]
    if expected.empty:  # no partition opened: the kind's columns, no rows
        assert part.empty and list(part.columns) == list(raw.columns)
    else:
        pd.testing.assert_frame_equal(part, expected)


def test_write_merges_and_counts_new_rows(minute_store: MarketStore, tmp_path: Path) -> None:
    bars = minute_store.read("kraken", "btc_usd", "bars_1m", "2023-03-01 23:00", "2023-03-02 01:00")
    store = MarketStore(tmp_path / "s")
    assert store.write(bars.iloc[:70], exchange="kraken", pair="btc_usd", kind="bars_1m") == 70
    assert store.write(bars, exchange="kraken", pair="btc_usd", kind="bars_1m") == len(bars) - 70
    assert store.write(bars, exchange="kraken", pair="btc_usd", kind="bars_1m") == 0
    pd.testing.assert_frame_equal(store.read("kraken", "btc_usd", "bars_1m"), bars)
    assert store.dates("kraken", "btc_usd", "bars_1m") == ["2023-03-01", "2023-03-02"]


def test_write_many_is_atomic(minute_store: MarketStore, tmp_path: Path) -> None:
    bars = minute_store.read("kraken", "btc_usd", "bars_1m", "2023-03-01", "2023-03-03")
    store = MarketStore(tmp_path / "s")
    store.write(bars.iloc[:10], exchange="kraken", pair="btc_usd", kind="bars_1m")
    before = _snapshot(tmp_path / "s")
    broken = bars.drop(columns=["close"])
    with pytest.raises(ValueError, match="lacks the columns"):
        store.write_many([(bars, "kraken", "btc_usd", "bars_1m"), (broken, "kraken", "btc_usd", "bars_5m")])
    assert _snapshot(tmp_path / "s") == before


def test_timestamps_reads_only_times(book_store: MarketStore) -> None:
    times = book_store.timestamps("bitstamp", "btc_usd", "quotes")
    assert len(times) == 304 and times.is_monotonic_increasing
    assert times.equals(book_store.quotes("bitstamp", "btc_usd").index)


def test_inventory_coverage_and_gaps(minute_store: MarketStore) -> None:
    summaries = {(s.exchange, s.kind): s for s in inventory(minute_store)}
    coinbase = summaries[("coinbase", "bars_1m")]
    raw = minute_store.read("coinbase", "btc_usd", "bars_1m")
    expected = int((raw.index[-1] - raw.index[0]) / pd.Timedelta(minutes=1)) + 1
    assert coinbase.rows == len(raw)
    assert coinbase.expected == expected
    assert coinbase.coverage == pytest.approx(100 * len(raw) / expected)
    steps = np.diff(raw.index.as_unit("ns").asi8) // 60_000_000_000
    assert coinbase.gaps == int((steps > 1).sum())
    assert coinbase.missing == int((steps[steps > 1] - 1).sum())
    assert summaries[("binance", "bars_1m")].coverage == 100.0
    text = format_inventory(minute_store, inventory(minute_store))
    assert "coinbase" in text and "kraken" in text and "% of" in text


def test_default_root_reads_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ATLAS_STORE", str(tmp_path / "x"))
    assert default_root() == str(tmp_path / "x")
    assert MarketStore().root == str(tmp_path / "x")
    monkeypatch.delenv("ATLAS_STORE")
    assert default_root() == "./atlas_store"


def _imports(module: str) -> set[str]:
    """Every module ``atlas_ray/featurestore/<module>.py`` imports, at the top or inside functions."""
    import ast

    source = Path(__file__).resolve().parents[2] / "atlas_ray" / "featurestore" / f"{module}.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_store_ingest_and_bars_depend_one_way() -> None:
    prefix = "atlas_ray.featurestore."
    partitions = {m.removeprefix(prefix) for m in _imports("_store/_partitions") if m.startswith(prefix)}
    assert partitions <= {"_schema"}, partitions  # partitions only: no formats, ingest or bars
    room = f"{prefix}_store."
    for module in ("_ingest", "_bars", "_validate_rows", "_ingest_reports", "_inventory"):
        assert f"{room}_store" not in _imports(f"_store/{module}"), module
    assert f"{room}_ingest" not in _imports("_store/_bars")
    assert f"{room}_bars" not in _imports("_store/_ingest")


def test_bars_off_their_grid_are_never_written(minute_store: MarketStore, tmp_path: Path) -> None:
    bars = minute_store.read("kraken", "btc_usd", "bars_1m", "2023-03-01", "2023-03-02")
    store = MarketStore(tmp_path / "s")
    with pytest.raises(ValueError, match=r"bars_1h frame has \d+ rows off the 1h grid"):
        store.write(bars, exchange="kraken", pair="btc_usd", kind="bars_1h")
    shifted = bars.copy()
    shifted.index = shifted.index + pd.Timedelta(seconds=30)
    with pytest.raises(ValueError, match="first at 2023-03-01 00:00:30"):
        store.write(shifted, exchange="kraken", pair="btc_usd", kind="bars_1m")
    assert store.exchanges() == []


def test_a_failing_partition_puts_none_of_a_write_in_place(minute_store: MarketStore, tmp_path: Path) -> None:
    """Partitions are staged side by side; one that cannot be written discards the others."""
    bars = minute_store.read("kraken", "btc_usd", "bars_1m", "2023-03-01", "2023-03-04")
    root = tmp_path / "s"
    blocked = root / "exchange=kraken" / "pair=btc_usd" / "kind=bars_1m" / "date=2023-03-02"
    blocked.parent.mkdir(parents=True)
    blocked.write_text("a file where the day's folder must go")
    store = MarketStore(root)
    with pytest.raises(OSError):
        store.write(bars, exchange="kraken", pair="btc_usd", kind="bars_1m")
    assert sorted(p.name for p in blocked.parent.rglob("*") if p.is_file()) == ["date=2023-03-02"]
    assert store.dates("kraken", "btc_usd", "bars_1m") == []


def test_a_day_folder_without_its_data_file_is_not_listed(minute_store: MarketStore, tmp_path: Path) -> None:
    bars = minute_store.read("kraken", "btc_usd", "bars_1m", "2023-03-01", "2023-03-02")
    store = MarketStore(tmp_path / "s")
    store.write(bars, exchange="kraken", pair="btc_usd", kind="bars_1m")
    kind = tmp_path / "s" / "exchange=kraken" / "pair=btc_usd" / "kind=bars_1m"
    (kind / "date=2023-03-05").mkdir()  # an interrupted first write leaves a folder, or a temp file
    (kind / "date=2023-03-05" / "data.parquet.0123.tmp").write_bytes(b"half")
    (kind / "notes").mkdir()
    assert store.dates("kraken", "btc_usd", "bars_1m") == ["2023-03-01"]


def test_a_store_written_out_of_order_is_still_read_by_its_range(
    minute_store: MarketStore, tmp_path: Path
) -> None:
    """Partitions written by another tool need not be sorted: the range then is masked row by row."""
    bars = minute_store.read("kraken", "btc_usd", "bars_1m", "2023-03-01", "2023-03-02")
    store = MarketStore(tmp_path / "s")
    store.write(bars, exchange="kraken", pair="btc_usd", kind="bars_1m")
    path = tmp_path / "s" / "exchange=kraken" / "pair=btc_usd" / "kind=bars_1m" / "date=2023-03-01"
    table = pq.read_table(path / "data.parquet")
    pq.write_table(table.take(np.random.default_rng(7).permutation(table.num_rows)), path / "data.parquet")
    part = store.read("kraken", "btc_usd", "bars_1m", "2023-03-01 06:00", "2023-03-01 07:00")
    expected = bars.loc["2023-03-01 06:00":"2023-03-01 06:59"]
    pd.testing.assert_frame_equal(part.sort_index(), expected)
    assert len(part) == 60
