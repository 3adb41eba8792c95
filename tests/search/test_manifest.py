"""The per-trial checksum manifest: what it lists, its format checks, and that settling a trial
refreshes it (the manifest always describes the trial's files as they stand)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from atlas_ray.search import TrialStatus
from atlas_ray.search._gather import settle_trial
from atlas_ray.search._manifest import (
    MANIFEST_FILE,
    FileEntry,
    ManifestError,
    parse_manifest,
    read_manifest,
    write_manifest,
)


def _trial(tmp_path: Path) -> Path:
    folder = tmp_path / "trials" / "abc_00001"
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps({"status": "running", "epochs": 2}))
    (folder / "curves.parquet").write_bytes(bytes(range(256)) * 9)
    (folder / "result.json.tmp").write_text("half")  # a write in progress
    (folder / ".predictions.parquet.0123456789abcdef.part").write_bytes(b"part")  # a harvest's part
    return folder


def _sha(path: Path) -> FileEntry:
    data = path.read_bytes()
    return FileEntry(size=len(data), sha256=hashlib.sha256(data).hexdigest())


def test_manifest_lists_the_trial_files_with_their_sha256(tmp_path: Path) -> None:
    folder = _trial(tmp_path)
    written = write_manifest(str(folder))
    assert dict(written.files) == {
        "curves.parquet": _sha(folder / "curves.parquet"),
        "result.json": _sha(folder / "result.json"),
    }
    assert read_manifest(str(folder)) == written
    assert not list(folder.glob(f"{MANIFEST_FILE}.*"))  # the temp file was moved into place
    assert read_manifest(str(tmp_path)) is None


def test_settling_a_trial_refreshes_its_manifest(tmp_path: Path) -> None:
    folder = _trial(tmp_path)
    before = write_manifest(str(folder))
    assert settle_trial(str(folder), status=TrialStatus.STOPPED)
    after = read_manifest(str(folder))
    assert after is not None and after.files["result.json"] != before.files["result.json"]
    assert after.files["result.json"] == _sha(folder / "result.json")


@pytest.mark.parametrize(
    ("files", "rule"),
    [
        ({"../../.bashrc": {"size": 1, "sha256": "0" * 64}}, "not a plain file name"),
        ({"sub/x": {"size": 1, "sha256": "0" * 64}}, "not a plain file name"),
        ({"x": {"size": -1, "sha256": "0" * 64}}, r"files\['x'\].size is -1"),
        ({"x": {"size": 1, "sha256": "abc"}}, r"files\['x'\].sha256 is 'abc'"),
        ([], "files is list"),
    ],
)
def test_a_manifest_that_breaks_the_format_is_refused(files: object, rule: str) -> None:
    data = json.dumps({"format": 1, "algorithm": "sha256", "files": files}).encode()
    with pytest.raises(ManifestError, match=rule):
        parse_manifest(data, source="trials/t/manifest.json")


def test_a_manifest_of_another_format_is_refused() -> None:
    with pytest.raises(ManifestError, match="format is 2, but must be 1"):
        parse_manifest(b'{"format": 2, "algorithm": "sha256", "files": {}}', source="m")
    with pytest.raises(ManifestError, match="not valid JSON"):
        parse_manifest(b'{"format": 1, "alg', source="m")
