"""``atlas_ray._locks``: one writer at a time, by an fcntl lock on a disk and a lease on an object store."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from atlas_ray import _locks
from atlas_ray.errors import StoreBusyError

LOCAL = pafs.LocalFileSystem()

_HOLDER = """
import sys, time, pyarrow.fs as pafs
from atlas_ray import _locks
with _locks.hold(pafs.LocalFileSystem(), [sys.argv[1]]):
    print("held", flush=True)
    sys.stdin.readline()  # until the test says go
"""


def test_a_second_process_waits_for_the_lock_and_is_told_who_holds_it(tmp_path: Path) -> None:
    name = str(tmp_path / "_locks" / "series")
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, name], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with (
            pytest.raises(StoreBusyError) as refused,
            _locks.hold(LOCAL, [name], what="bitflyer/btc_jpy trades", timeout=0.2),
        ):
            pass
        message = str(refused.value)
        assert "\n" not in message
        assert message.startswith("bitflyer/btc_jpy trades: another writer (pid ")
        assert f"pid {holder.pid} on " in message and "series.lock" in message
    finally:
        assert holder.stdin is not None
        holder.stdin.write("go\n")
        holder.stdin.close()
        holder.wait(timeout=30)
    with _locks.hold(LOCAL, [name], timeout=5):  # released when the holder let go
        pass


def test_a_dead_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    name = str(tmp_path / "series")
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, name], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait(timeout=30)
    with _locks.hold(LOCAL, [name], timeout=5):
        pass


def test_the_holding_thread_may_take_it_again_other_threads_wait(tmp_path: Path) -> None:
    name = str(tmp_path / "series")
    order: list[str] = []
    inside = threading.Event()

    def other() -> None:
        inside.wait()
        with _locks.hold(LOCAL, [name]):
            order.append("other")

    thread = threading.Thread(target=other)
    thread.start()
    with _locks.hold(LOCAL, [name]):
        with _locks.hold(LOCAL, [name]):  # re-entrant: ingest locks, then write_counted locks again
            inside.set()
            time.sleep(0.05)
            order.append("first")
        time.sleep(0.05)
        order.append("still first")
    thread.join(timeout=30)
    assert order == ["first", "still first", "other"]


def test_a_negative_timeout_is_refused(tmp_path: Path) -> None:
    with (
        pytest.raises(ValueError, match=r"`timeout` is -1, but must be `timeout >= 0`"),
        _locks.hold(LOCAL, [str(tmp_path / "x")], timeout=-1),
    ):
        pass


def _bucket(tmp_path: Path) -> pafs.FileSystem:
    """A filesystem that is not a local disk to ``_locks`` (as s3:// and gs:// are): leases."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    return pafs.SubTreeFileSystem(str(tmp_path), LOCAL)


def test_on_an_object_store_a_live_lease_of_another_writer_is_refused_in_one_line(tmp_path: Path) -> None:
    fs = _bucket(tmp_path)
    now = time.time()
    lease = {"owner": "another", "host": "node-7", "pid": 4242, "since": now, "expires": now + 60}
    (tmp_path / "series.lease").write_text(json.dumps(lease))
    with (
        pytest.raises(StoreBusyError) as refused,
        _locks.hold(fs, ["series"], what="s3://bucket/store: bitflyer/btc_jpy trades"),
    ):
        pass
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(
        "s3://bucket/store: bitflyer/btc_jpy trades: another writer (pid 4242 on node-7 "
    )
    assert "holds its lease series.lease until" in message and "one writer at a time" in message
    assert json.loads((tmp_path / "series.lease").read_text())["owner"] == "another"  # left alone


def test_on_an_object_store_a_lease_is_put_then_removed_and_an_expired_one_taken(tmp_path: Path) -> None:
    fs = _bucket(tmp_path)
    dead = {"owner": "crashed", "host": "node-7", "pid": 1, "since": 0.0, "expires": time.time() - 1}
    (tmp_path / "series.lease").write_text(json.dumps(dead))
    with _locks.hold(fs, ["series"]):
        mine = json.loads((tmp_path / "series.lease").read_text())
        assert mine["owner"] != "crashed" and mine["expires"] > time.time()
        with _locks.hold(fs, ["series"]):  # the same thread again: no second lease
            pass
        assert (tmp_path / "series.lease").exists()
    assert not (tmp_path / "series.lease").exists()
    assert not any(p.suffix == ".lock" for p in tmp_path.rglob("*"))
