"""Row checks on ingest: the real files pass untouched; copies of them with each defect introduced
have every defect caught and counted, every fix correct, and the clean rows stored as before."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from atlas_ray.errors import IngestError
from atlas_ray.featurestore import MarketStore
from atlas_ray.featurestore._store._ingest import FIX_REASONS, REJECT_REASONS
from atlas_ray.featurestore._store._validate_rows import RowChecks

CDD = "hourly_cdd/Bitstamp_BTCUSD_1h.csv"
MINUTE = "minute_bars_2023-03"
FLYER = "bitflyer_2018-01"
_CROSS_CHECKS = (
    "bad_time",
    "bad_volume",
    "misaligned",
    "ohlc",
    "volume_mismatch",
    "price_outlier",
    "conflict",
)


def _counts(report: object) -> dict[str, int]:
    rejected = {r: c for r, c in report.rejected.items() if c}  # type: ignore[attr-defined]
    fixed = {r: c for r, c in report.fixed.items() if c}  # type: ignore[attr-defined]
    return {**rejected, **fixed}


@pytest.mark.parametrize(
    "relative",
    [
        CDD,
        "hourly_cdd/Bitfinex_BTCUSD_1h.csv",
        f"{MINUTE}/binance_btcusdt.parquet",
        f"{MINUTE}/kraken_btcusd.parquet",
        f"{MINUTE}/coinbase_btcusd.parquet",
        f"{FLYER}/bitflyer.execution.20180121.BTC_JPY.csv.gz",
        f"{FLYER}/bitflyer.ticker.20180123.BTC_JPY.csv.gz",
        "lean_coinbase_btcusd/20180404_trade.zip",
        "bitstamp_orders_2015-05-01/orders.csv.xz",
    ],
)
def test_real_files_pass_every_cross_check(data_dir: Path, tmp_path: Path, relative: str) -> None:
    # bitFlyer's files name their market (domain, product_code): theirs is given, or they are refused.
    market = ("bitflyer", "btc_jpy") if relative.startswith(FLYER) else ("x", "btc_usd")
    report = MarketStore(tmp_path / "store").ingest(data_dir / relative, exchange=market[0], pair=market[1])
    assert report.rows_written > 0
    assert {r: report.rejected[r] for r in _CROSS_CHECKS} == dict.fromkeys(_CROSS_CHECKS, 0)
    assert report.fixed == dict.fromkeys(FIX_REASONS, 0)
    assert set(report.rejected) == set(REJECT_REASONS)


def _cdd_lines(data_dir: Path) -> list[bytes]:
    return (data_dir / CDD).read_bytes().split(b"\n")


def _write_lines(lines: list[bytes], path: Path) -> Path:
    path.write_bytes(b"\n".join(lines))
    return path


def _with_fields(line: bytes, change: dict[int, bytes]) -> bytes:
    fields = line.split(b";")
    for index, value in change.items():
        fields[index] = value
    return b";".join(fields)


def test_swapped_volume_columns_are_fixed_to_the_consistent_reading(data_dir: Path, tmp_path: Path) -> None:
    clean = MarketStore(tmp_path / "clean")
    clean.ingest(data_dir / CDD, exchange="bitstamp", pair="btc_usd")
    lines = _cdd_lines(data_dir)
    # A vendor's history with the two volume columns swapped for 300 rows (CDD: field 6 base, 7 quote),
    # rows with a volume (a bar with none reads the same either way) and a time of their own.
    dates = [line.split(b";")[0] for line in lines]
    swapped = [
        i
        for i in range(1000, 1400)
        if _utf8(lines[i]) and float(lines[i].split(b";")[6]) > 0 and dates.count(dates[i]) == 1
    ][:300]
    for index in swapped:
        fields = lines[index].split(b";")
        lines[index] = _with_fields(lines[index], {6: fields[7], 7: fields[6]})
    store = MarketStore(tmp_path / "store")
    report = store.ingest(_write_lines(lines, tmp_path / "swapped.csv"), exchange="bitstamp", pair="btc_usd")
    reference = MarketStore(tmp_path / "ref").ingest(data_dir / CDD, exchange="bitstamp", pair="btc_usd")
    assert report.fixed["swapped_volume"] == 300
    assert _counts(report) == {**_counts(reference), "swapped_volume": 300}
    assert "swapped_volume 300" in str(report)
    pd.testing.assert_frame_equal(
        store.read("bitstamp", "btc_usd", "bars_1h"), clean.read("bitstamp", "btc_usd", "bars_1h")
    )
    lines_listed = [d.line for d in report.examples["swapped_volume"]]
    assert lines_listed == [i + 1 for i in swapped[: len(lines_listed)]]


def test_volume_that_fits_no_reading_is_refused(data_dir: Path, tmp_path: Path) -> None:
    lines = _cdd_lines(data_dir)
    broken = [2000, 2001, 2002]
    for index in broken:
        fields = lines[index].split(b";")
        quote = float(fields[7]) * 3 + 1  # a quote volume no price inside the bar explains
        lines[index] = _with_fields(lines[index], {7: str(quote).encode()})
    store = MarketStore(tmp_path / "store")
    report = store.ingest(_write_lines(lines, tmp_path / "mismatch.csv"), exchange="b", pair="btc_usd")
    assert report.rejected["volume_mismatch"] == 3
    refused = {
        pd.Timestamp(lines[i].split(b";")[0].decode().replace("-AM", " AM").replace("-PM", " PM"))
        for i in broken
    }
    stored = store.read("b", "btc_usd", "bars_1h").index.tz_localize(None)
    assert not refused & set(stored)


def _minute_frame(data_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(data_dir / MINUTE / "kraken_btcusd.parquet")


def test_contradicting_ohlc_and_absurd_prices_are_refused(data_dir: Path, tmp_path: Path) -> None:
    frame = _minute_frame(data_dir)
    clean = MarketStore(tmp_path / "clean")
    clean.ingest(data_dir / MINUTE / "kraken_btcusd.parquet", exchange="k", pair="btc_usd")
    ohlc = [100, 200, 300, 400]
    frame.iloc[ohlc[0], frame.columns.get_loc("low")] = frame["high"].iloc[ohlc[0]] + 10  # low above all
    frame.iloc[ohlc[1], frame.columns.get_loc("high")] = frame["low"].iloc[ohlc[1]] - 10  # high below all
    frame.iloc[ohlc[2], frame.columns.get_loc("low")] = frame["open"].iloc[ohlc[2]] + 1
    frame.iloc[ohlc[3], frame.columns.get_loc("high")] = frame["close"].iloc[ohlc[3]] - 1
    frame.iloc[ohlc[3], frame.columns.get_loc("low")] = min(
        frame["low"].iloc[ohlc[3]], frame["high"].iloc[ohlc[3]]
    )
    jumps = [1000, 5000, 9000]
    for row, factor in zip(jumps, (100.0, 8.0, 1 / 50), strict=True):
        for column in ("open", "high", "low", "close"):
            frame.iloc[row, frame.columns.get_loc(column)] *= factor
    path = tmp_path / "kraken_defects.parquet"
    frame.to_parquet(path)
    store = MarketStore(tmp_path / "store")
    report = store.ingest(path, exchange="k", pair="btc_usd")
    assert _counts(report) == {"ohlc": 4, "price_outlier": 3}
    assert {d.line for d in report.examples["ohlc"]} == {i + 1 for i in ohlc}
    assert {d.line for d in report.examples["price_outlier"]} == {i + 1 for i in jumps}
    kept = store.read("k", "btc_usd", "bars_1m")
    expected = clean.read("k", "btc_usd", "bars_1m").drop(frame.index[ohlc + jumps])
    pd.testing.assert_frame_equal(kept, expected)
    # The multiple is a setting: 200x lets the 100x and 8x jumps through, never the 50x drop.
    loose = MarketStore(tmp_path / "loose").ingest(
        path, exchange="k", pair="btc_usd", checks=RowChecks(max_jump=200)
    )
    assert loose.rejected["price_outlier"] == 0
    assert loose.rejected["ohlc"] == 4


def test_times_in_the_future_or_far_past_are_refused(data_dir: Path, tmp_path: Path) -> None:
    frame = _minute_frame(data_dir).iloc[:3000]
    times = frame.index.to_series()
    times.iloc[2990:] = times.iloc[2990:] + pd.Timedelta(days=365 * 40)  # 2063
    frame.index = pd.DatetimeIndex(times, name=frame.index.name)
    path = tmp_path / "future.parquet"
    frame.to_parquet(path)
    checks = RowChecks(now=pd.Timestamp("2026-01-01", tz="UTC"))
    report = MarketStore(tmp_path / "store").ingest(path, exchange="k", pair="btc_usd", checks=checks)
    assert _counts(report).get("bad_time") == 10
    early = RowChecks(
        now=pd.Timestamp("2026-01-01", tz="UTC"), earliest=pd.Timestamp("2023-03-01 01:00", tz="UTC")
    )
    again = MarketStore(tmp_path / "again").ingest(path, exchange="k", pair="btc_usd", checks=early)
    assert again.rejected["bad_time"] == 10 + 60


def test_repeated_times_with_other_values_are_conflicts(data_dir: Path, tmp_path: Path) -> None:
    source = data_dir / FLYER / "bitflyer.execution.20180121.BTC_JPY.csv.gz"
    raw = pd.read_csv(source, dtype=str, keep_default_na=False)
    head = raw.iloc[:20000]
    clean_path = tmp_path / "clean.csv.gz"
    head.to_csv(clean_path, index=False)
    altered = head.iloc[[10, 20, 30]].copy()
    altered["price"] = (altered["price"].astype(float) + 500).astype(str)  # same ids, other prices
    same = head.iloc[[40, 50]]  # exact repeats
    defect_path = tmp_path / "conflicts.csv.gz"
    pd.concat([head, altered, same]).to_csv(defect_path, index=False)
    clean = MarketStore(tmp_path / "clean")
    clean_report = clean.ingest(clean_path, exchange="bitflyer", pair="btc_jpy")
    store = MarketStore(tmp_path / "store")
    report = store.ingest(defect_path, exchange="bitflyer", pair="btc_jpy")
    assert report.rejected["conflict"] == 6  # both readings of each of the 3 ids
    assert report.rejected["duplicate"] == clean_report.rejected["duplicate"] + 2
    kept = store.read("bitflyer", "btc_jpy", "trades")
    expected = clean.read("bitflyer", "btc_jpy", "trades")
    expected = expected.loc[~expected["trade_id"].isin(altered["id"])]
    pd.testing.assert_frame_equal(kept, expected)


def test_strict_refuses_the_file_on_its_first_defect(data_dir: Path, tmp_path: Path) -> None:
    lines = _cdd_lines(data_dir)
    fields = lines[500].split(b";")
    lines[500] = _with_fields(lines[500], {6: fields[7], 7: fields[6]})
    path = _write_lines(lines, tmp_path / "one_swap.csv")
    store = MarketStore(tmp_path / "store")
    # The real file has non-UTF-8 lines: strict refuses it for those before anything else.
    with pytest.raises(IngestError, match="unparseable"):
        store.ingest(path, exchange="b", pair="btc_usd", strict=True)
    readable = [line for line in lines if _utf8(line)]
    index = readable.index(lines[500])
    path = _write_lines(readable, tmp_path / "readable.csv")
    with pytest.raises(IngestError) as caught:
        store.ingest(path, exchange="b", pair="btc_usd", strict=True)
    message = str(caught.value)
    assert f"readable.csv row {index + 1} field 'volume'" in message and "swapped_volume" in message
    assert store.exchanges() == []
    report = store.ingest(path, exchange="b", pair="btc_usd")
    assert report.fixed["swapped_volume"] == 1


def _utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_full_report_is_kept_beside_the_data(data_dir: Path, tmp_path: Path) -> None:
    import json

    from atlas_ray.featurestore._store._ingest_reports import kept_reports

    lines = _cdd_lines(data_dir)
    fields = lines[500].split(b";")
    lines[500] = _with_fields(lines[500], {6: fields[7], 7: fields[6]})
    store = MarketStore(tmp_path / "store")
    report = store.ingest(_write_lines(lines, tmp_path / "one.csv"), exchange="bitstamp", pair="btc_usd")
    assert report.report_path is not None
    kept = json.loads(Path(report.report_path).read_text())
    assert kept["summary"] == str(report)
    assert kept["rejected"]["unparseable"] == report.rejected["unparseable"] > 0
    assert kept["fixed"]["swapped_volume"] == 1
    example = kept["examples"]["swapped_volume"][0]
    assert (example["line"], example["field"], example["value"]) == (501, "volume", fields[7].decode())
    assert kept["checks"]["max_jump"] == RowChecks().max_jump
    listed = kept_reports(store.root)
    assert [(k.exchange, k.pair, k.summary) for k in listed] == [("bitstamp", "btc_usd", str(report))]
    assert store.kinds("bitstamp", "btc_usd") == ["bars_1h"]


def test_row_checks_refuse_bad_settings() -> None:
    with pytest.raises(ValueError, match="max_jump` is 1"):
        RowChecks(max_jump=1)
    with pytest.raises(ValueError, match="median_window` is 2"):
        RowChecks(median_window=2)
    assert np.isclose(RowChecks().volume_tolerance, 0.02)


def test_rows_conflicting_with_the_store_are_counted_not_written(data_dir: Path, tmp_path: Path) -> None:
    frame = _minute_frame(data_dir).iloc[:2000]
    first = tmp_path / "first.parquet"
    frame.to_parquet(first)
    changed = frame.copy()
    rows = [10, 500, 1500]
    changed.iloc[rows, changed.columns.get_loc("close")] = changed["low"].iloc[rows] + 0.5
    second = tmp_path / "second.parquet"
    changed.to_parquet(second)
    store = MarketStore(tmp_path / "store")
    store.ingest(first, exchange="k", pair="btc_usd")
    before = store.read("k", "btc_usd", "bars_1m")
    report = store.ingest(second, exchange="k", pair="btc_usd")
    assert report.rows_written == 0
    assert report.rejected["conflict"] == 3 and report.rejected["duplicate"] == 2000 - 3
    pd.testing.assert_frame_equal(store.read("k", "btc_usd", "bars_1m"), before)
    with pytest.raises(IngestError, match="3 rows conflict with rows already in the store"):
        store.ingest(second, exchange="k", pair="btc_usd", strict=True)
