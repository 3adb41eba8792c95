"""``atlas_ray._atomic`` on a local disk: a reader sees the old whole file or the new whole file; a
write that fails half way leaves the old file and nothing else."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from atlas_ray import _atomic

LOCAL = pafs.LocalFileSystem()


def test_write_bytes_replaces_the_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "folder" / "file.json"
    _atomic.write_text(LOCAL, str(target), "first")
    assert target.read_text() == "first"
    _atomic.write_bytes(LOCAL, str(target), b"second, longer")
    assert target.read_bytes() == b"second, longer"
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.json"]


def test_a_reader_during_the_write_sees_the_old_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "data.bin"
    target.write_bytes(b"old" * 1000)
    seen: list[bytes] = []

    def writer(stream: pa.NativeFile) -> None:
        stream.write(b"new" * 500)
        stream.flush()
        seen.append(target.read_bytes())  # half of the new file is written by now
        stream.write(b"new" * 500)

    _atomic.write_with(LOCAL, str(target), writer)
    assert seen == [b"old" * 1000]
    assert target.read_bytes() == b"new" * 1000


class HalfWayError(Exception):
    pass


def test_a_failure_mid_write_leaves_the_old_file_and_no_half_file(tmp_path: Path) -> None:
    target = tmp_path / "result.json"
    target.write_text('{"old": true}')

    def writer(stream: pa.NativeFile) -> None:
        stream.write(b'{"new": ')
        raise HalfWayError("the process was interrupted half way")

    with pytest.raises(HalfWayError):
        _atomic.write_with(LOCAL, str(target), writer)
    assert target.read_text() == '{"old": true}'
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_a_failure_mid_write_of_a_new_file_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "new.parquet"
    table = pa.table({"x": list(range(1000))})

    def writer(stream: pa.NativeFile) -> None:
        pq.write_table(table, stream)
        raise HalfWayError("disk full")

    with pytest.raises(HalfWayError):
        _atomic.write_with(LOCAL, str(target), writer)
    assert list(tmp_path.iterdir()) == []


def test_staged_files_appear_only_when_committed(tmp_path: Path) -> None:
    first, second = tmp_path / "a" / "data.parquet", tmp_path / "b" / "data.parquet"
    first.parent.mkdir()
    first.write_bytes(b"old a")
    staged = [
        _atomic.stage(LOCAL, str(p), lambda out, p=p: out.write(f"new {p.parent.name}".encode()))
        for p in (first, second)
    ]
    assert first.read_bytes() == b"old a" and not second.exists()
    for item in staged:
        item.commit()
    assert first.read_bytes() == b"new a" and second.read_bytes() == b"new b"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["data.parquet", "data.parquet"]


def test_a_discarded_stage_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "data.parquet"
    target.write_bytes(b"old")
    _atomic.stage(LOCAL, str(target), lambda out: out.write(b"new")).discard()
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["data.parquet"]


def test_upload_file_copies_a_local_file_whole(tmp_path: Path) -> None:
    source = tmp_path / "model.keras.local"
    source.write_bytes(bytes(range(256)) * 50_000)
    target = tmp_path / "trial" / "model.keras"
    _atomic.upload_file(str(source), LOCAL, str(target))
    assert target.read_bytes() == source.read_bytes()


def test_the_folder_is_flushed_after_the_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rename is an entry of the folder: flushed too, so it survives a power loss."""
    flushed: list[str] = []
    real_fsync = os.fsync

    def spy(descriptor: int) -> None:
        flushed.append(os.readlink(f"/proc/self/fd/{descriptor}"))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", spy)
    folder = tmp_path / "exchange=x" / "date=2018-01-21"
    _atomic.write_text(LOCAL, str(folder / "data.json"), "whole")
    assert len(flushed) == 2
    assert flushed[0].startswith(str(folder / "data.json.")) and flushed[0].endswith(".tmp")  # the file
    assert flushed[1] == str(folder)  # then the folder, after the rename


def test_two_writers_of_one_file_never_share_a_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "data.bin"
    both_half_way = threading.Barrier(2, timeout=30)
    temps: list[str | None] = []

    def writer(byte: bytes) -> None:
        def write(stream: pa.NativeFile) -> None:
            stream.write(byte * 50_000)
            stream.flush()
            both_half_way.wait()  # each has written half of its file before either finishes
            stream.write(byte * 50_000)

        staged = _atomic.stage(LOCAL, str(target), write)
        temps.append(staged.temp)
        staged.commit()

    threads = [threading.Thread(target=writer, args=(b,)) for b in (b"a", b"b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(set(temps)) == 2  # private names
    assert target.read_bytes() in (b"a" * 100_000, b"b" * 100_000)  # one writer's whole file
    assert [p.name for p in tmp_path.iterdir()] == ["data.bin"]


def test_read_parquet_while_the_file_is_replaced_reads_one_whole_version(tmp_path: Path) -> None:
    """A reader beside a writer that keeps replacing one parquet file (as a partition or the featureset
    cache is replaced) always gets one whole version, never a mix or an error."""
    fs, path = pafs.LocalFileSystem(), str(tmp_path / "part.parquet")
    sizes = (2000, 2300, 2600)
    versions = [
        pa.table({"timestamp": pa.array(range(k * 1000, k * 1000 + n)), "v": [float(k)] * n})
        for k, n in enumerate(sizes)
    ]
    _atomic.write_with(fs, path, lambda out: pq.write_table(versions[0], out))
    stop = threading.Event()

    def replace() -> None:
        k = 0
        while not stop.is_set():
            k = (k + 1) % len(versions)
            _atomic.write_with(fs, path, lambda out, k=k: pq.write_table(versions[k], out))

    writer = threading.Thread(target=replace)
    writer.start()
    try:
        for _ in range(300):
            table = _atomic.read_parquet(fs, path)
            assert any(table.equals(v) for v in versions)
            assert _atomic.read_parquet(fs, path, ["v", "absent"]).column_names == ["v"]
    finally:
        stop.set()
        writer.join()
