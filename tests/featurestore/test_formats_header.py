"""The header read the CSV format readers share (``_formats/_header.py``): fields matched by name under
any of their names, and a refusal naming the file, the missing fields and what the format needs."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from atlas_ray.errors import IngestError
from atlas_ray.featurestore._formats._bitstamp_orders import HEADER as BITSTAMP
from atlas_ray.featurestore._formats._columns import Field
from atlas_ray.featurestore._formats._header import Header, read_header_csv

TICKS = Header(
    format="ticks",
    fields=(Field("time", ("timestamp",)), Field("price", ("px",)), Field("venue", required=False)),
    needs="ticks need",
)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "t.csv"
    path.write_text(text)
    return path


def test_fields_are_read_under_their_canonical_names_in_any_order(tmp_path: Path) -> None:
    path = _write(tmp_path, "PX,extra,Timestamp\n1.5,x,2024-01-01T00:00:00Z\n2,y,2024-01-01T00:01:00Z\n")
    table, found = read_header_csv(path, "t.csv", TICKS, {"price": pa.float64()})
    assert found == {"time": "Timestamp", "price": "PX"}
    assert sorted(table.column_names) == ["price", "time"]
    assert table.column("price").to_pylist() == [1.5, 2.0]
    assert TICKS.accepts(["timestamp", "px"]) and not TICKS.accepts(["timestamp"])


def test_a_missing_column_names_the_file_the_fields_and_what_the_format_needs(tmp_path: Path) -> None:
    path = _write(tmp_path, "timestamp,venue\n2024-01-01T00:00:00Z,a\n")
    with pytest.raises(IngestError) as raised:
        read_header_csv(path, "t.csv", TICKS, {})
    assert str(raised.value) == (
        "ingest: t.csv: lacks the columns price (or px); ticks need time, price (it has timestamp, venue)"
    )


def test_listed_columns_replace_the_required_ones_in_the_message(tmp_path: Path) -> None:
    path = _write(tmp_path, "id,timestamp,price\n1,2,3\n")
    with pytest.raises(IngestError, match=r"order events need id, timestamp, exchange\.timestamp, price"):
        read_header_csv(path, "o.csv", BITSTAMP, {})


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "the file is empty"), ("  \n\n", "the file is empty"), ("time,price\n", "the file holds no rows")],
)
def test_an_empty_file_or_one_without_rows_refuses(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(IngestError, match=f"^ingest: t.csv: {message}$"):
        read_header_csv(_write(tmp_path, text), "t.csv", TICKS, {})


def test_a_header_must_declare_a_field() -> None:
    with pytest.raises(ValueError, match="declares no fields, but must declare at least one"):
        Header(format="none", fields=(), needs="nothing needs")
