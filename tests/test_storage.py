"""``atlas_ray._storage``: a local path or a URI, resolved once and joined with its query kept."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from atlas_ray import _storage
from atlas_ray.featurestore import MarketStore


def test_a_relative_path_is_made_absolute_against_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert _storage.resolve("experiments") == str(tmp_path / "experiments")
    assert _storage.resolve("./a/../b") == str(tmp_path / "b")
    assert _storage.resolve(Path("x")) == str(tmp_path / "x")


def test_a_uri_is_kept_as_given() -> None:
    uri = "s3://bucket/exp?endpoint_override=127.0.0.1:9000&scheme=http"
    assert _storage.resolve(uri) == uri
    assert _storage.is_uri(uri) and not _storage.is_local(uri)
    assert _storage.is_uri("file:///tmp/x") and _storage.is_local("file:///tmp/x")
    assert not _storage.is_uri("relative/path") and _storage.is_local("/abs/path")


def test_join_keeps_the_query_at_the_end() -> None:
    base = "s3://bucket/experiments/?endpoint_override=host:9000&scheme=http"
    assert _storage.join(base, "june", "trials", "t1") == (
        "s3://bucket/experiments/june/trials/t1?endpoint_override=host:9000&scheme=http"
    )
    assert _storage.join("/data/exp/", "june/", "/trials") == "/data/exp/june/trials"
    assert _storage.join("gs://b", "x") == "gs://b/x"
    assert _storage.join("/", "x") == "/x"


def test_parent_keeps_the_query() -> None:
    assert _storage.parent("s3://b/x/june?region=us-east-1") == "s3://b/x?region=us-east-1"
    assert _storage.parent("/data/exp/june/") == "/data/exp"


def test_filesystem_of_a_local_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "a.txt").write_text("x")
    fs, path = _storage.filesystem("store/")
    assert isinstance(fs, pafs.LocalFileSystem)
    assert path == str(tmp_path / "store")
    assert _storage.is_dir("store") and _storage.is_file("store/a.txt") and not _storage.exists("nothing")
    assert [info.base_name for info in _storage.list_dir("store")] == ["a.txt"]
    assert _storage.list_dir("nothing") == []


def test_a_location_that_cannot_be_opened_is_one_line_naming_it() -> None:
    with pytest.raises(_storage.StorageError) as error:
        _storage.filesystem("nosuchscheme://bucket/x")
    message = str(error.value)
    assert "'nosuchscheme://bucket/x'" in message and "\n" not in message
    with pytest.raises(_storage.StorageError, match=r"'s3:///x'.*names no bucket; write s3://BUCKET/PATH"):
        _storage.filesystem("s3:///x")
    with pytest.raises(_storage.StorageError, match="it is empty"):
        _storage.resolve("")
    copy = pickle.loads(pickle.dumps(error.value))  # as it comes back from a Ray worker
    assert str(copy) == message and copy.reason == error.value.reason


def test_a_store_made_with_a_relative_root_means_the_same_directory_anywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store travels to Ray workers by its root: resolved where it was made, not where it lands."""
    monkeypatch.chdir(tmp_path)
    store = MarketStore("atlas_store")
    assert store.root == str(tmp_path / "atlas_store")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    copy = pickle.loads(pickle.dumps(store))
    assert copy.root == store.root and copy == store
    monkeypatch.setenv("ATLAS_STORE", "relative_store")
    assert MarketStore().root == os.path.join(str(elsewhere), "relative_store")
