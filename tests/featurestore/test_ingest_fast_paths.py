"""The ingest's fast paths give what the plain pandas / general paths give."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from atlas_ray.errors import IngestError
from atlas_ray.featurestore import MarketStore
from atlas_ray.featurestore._formats._common import timestamps_from_strings
from atlas_ray.featurestore._store._ingest import duplicated

TEXTS = [
    ["x", "y", None, "x", None, "y"],
    ["1", "2", "3", "1", "01", "2"],  # a leading zero: not the number path
    ["1", "2", "3", "1", "+1", "2"],
    ["12", "2", "3", "12", "-0", "0"],
    ["118745850", "118745848", "118745850"],
    ["1", "2", "", "2", ""],
]


@pytest.mark.parametrize("texts", TEXTS)
@pytest.mark.parametrize("keep", ["first", False])
def test_duplicated_matches_pandas(texts: list[str | None], keep: str | bool) -> None:
    frame = pd.DataFrame(
        {
            "id": pd.array(texts, dtype="str"),
            "n": np.arange(len(texts)) % 2,
            "t": pd.to_datetime(np.arange(len(texts)) % 3, unit="s", utc=True),
        }
    )
    for subset in (["id"], ["id", "n"], ["id", "t"], ["t"]):
        expected = frame.duplicated(subset=subset, keep=keep).to_numpy()  # type: ignore[arg-type]
        assert (duplicated(frame, subset, keep) == expected).all(), subset  # type: ignore[arg-type]


def test_one_offset_fast_path_equals_general_path() -> None:
    texts = ["2018-01-21T00:00:11.173+09:00", "2018-01-21T00:00:10.097+09:00", None]
    lines = np.arange(2, 5)
    fast = timestamps_from_strings(pa.array(texts), name="f", column="exec_date", lines=lines)
    padded = [f" {t} " if t else "" for t in texts]  # whitespace and an empty value: the general path
    general = timestamps_from_strings(pa.array(padded), name="f", column="exec_date", lines=lines)
    assert fast.equals(general)
    assert str(fast[0]) == "2018-01-20 15:00:11.173000+00:00"
    assert fast.isna().tolist() == [False, False, True]


def test_mixed_offsets_still_refuse_on_the_fast_path() -> None:
    texts = ["2018-01-21T00:00:11+09:00", "2018-01-21T00:00:12+00:00"]
    with pytest.raises(IngestError, match=r"f row 3 field 'exec_date'.*mixed time zones"):
        timestamps_from_strings(pa.array(texts), name="f", column="exec_date", lines=np.arange(2, 4))


HEADER = (
    '"domain","product_code","loaded","id","exec_date","side","price","size",'
    '"buy_child_order_acceptance_id","sell_child_order_acceptance_id"\n'
)


def _execution(trade_id: str, time: str, side: str, price: str) -> str:
    return (
        f'"bitflyer.jp","BTC_JPY","2018-01-21T00:00:12.289+09:00","{trade_id}","{time}","{side}",'
        f'"{price}","0.01","JRF1","JRF2"\n'
    )


def test_executions_with_text_ids_are_read_sorted_and_deduplicated(tmp_path: Path) -> None:
    """Ids that are no whole numbers break ties as text (they once stopped the reader with an Arrow
    error) and repeat as text."""
    path = tmp_path / "executions.csv"
    path.write_text(
        HEADER
        + _execution("x12", "2018-01-21T00:00:11+09:00", "BUY", "1406502.0")
        + _execution("x10", "2018-01-21T00:00:10+09:00", "SELL", "1406500.0")
        + _execution("x12", "2018-01-21T00:00:11+09:00", "BUY", "1406502.0")
        + _execution("x09", "2018-01-21T00:00:10+09:00", "BUY", "1406501.0")
    )
    store = MarketStore(tmp_path / "store")
    report = store.ingest(path, exchange="bitflyer", pair="btc_jpy", format="bitflyer_executions")
    assert (report.rows_read, report.rows_written, report.rejected["duplicate"]) == (4, 3, 1)
    trades = store.read("bitflyer", "btc_jpy", "trades")
    assert trades["trade_id"].tolist() == ["x09", "x10", "x12"]
    assert trades["price"].tolist() == [1406501.0, 1406500.0, 1406502.0]


def test_files_written_together_in_arrow_equal_files_written_one_by_one(
    data_dir: Path, tmp_path: Path
) -> None:
    """Two slices of a real executions file that overlap (the later repeats 1,000 of the earlier's
    trades) and cross a UTC midnight: ``ingest_many`` writes them in Arrow as one table
    (``_write_trades_together``), ingesting them one by one merges the second into the first's days;
    both stores hold the same rows, the reports the same counts, kept in the files' order."""
    import gzip

    lines = gzip.decompress(
        (data_dir / "bitflyer_2018-01" / "bitflyer.execution.20180122.BTC_JPY.csv.gz").read_bytes()
    )
    header, *rows = lines.decode().splitlines(keepends=True)
    late = [i for i, row in enumerate(rows) if "T09:0" in row.split(",")[4]]
    middle = late[0]  # rows about 09:00+09:00, midnight UTC (the file's rows are not sorted)
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text(header + "".join(rows[middle - 3000 : middle + 1000]))
    second.write_text(header + "".join(rows[middle : middle + 3000]))
    together = MarketStore(tmp_path / "together")
    reports = together.ingest_many([first, second], exchange="bitflyer", pair="btc_jpy")
    alone = MarketStore(tmp_path / "alone")
    one_by_one = [alone.ingest(path, exchange="bitflyer", pair="btc_jpy") for path in (first, second)]
    assert reports[1].rejected["duplicate"] > 900  # (a few of the 1,000 rows have no time)
    for mine, theirs in zip(reports, one_by_one, strict=True):
        assert (mine.rows_read, mine.rows_written, dict(mine.rejected)) == (
            theirs.rows_read,
            theirs.rows_written,
            dict(theirs.rejected),
        )
    assert len(together.dates("bitflyer", "btc_jpy", "trades")) == 2
    pd.testing.assert_frame_equal(
        together.read("bitflyer", "btc_jpy", "trades"), alone.read("bitflyer", "btc_jpy", "trades")
    )
    assert [Path(str(r.report_path)).name for r in reports] == sorted(
        Path(str(r.report_path)).name for r in reports
    )
