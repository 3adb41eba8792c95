"""Two ``python -m atlas_ray.featurestore ingest`` commands into one store at once: every trade of
both kept (measured before the writer lock: 39,303 of 78,606)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from atlas_ray.featurestore import MarketStore

pytestmark = pytest.mark.slow  # two ingest processes: not in scripts/test.sh --quick

ROUNDS = 2
FILES = 20
ROWS = 400


def _small_files(data_dir: Path, folder: Path) -> tuple[list[Path], list[Path], set[str]]:
    """40 small real bitFlyer execution files of one day (as the exchange's API writes them), dealt out
    in turn to two ingests so that both write the same day's partition; and every trade id."""
    source = data_dir / "bitflyer_2018-01" / "bitflyer.execution.20180122.BTC_JPY.csv.gz"
    raw = pd.read_csv(source, dtype=str, keep_default_na=False, nrows=2 * FILES * ROWS)
    folder.mkdir()
    paths = []
    for index in range(2 * FILES):
        path = folder / f"executions_{index:02d}.csv.gz"
        raw.iloc[index * ROWS : (index + 1) * ROWS].to_csv(path, index=False)
        paths.append(path)
    return paths[0::2], paths[1::2], set(raw["id"])


def _ingest(paths: list[Path], store: Path) -> subprocess.Popen[str]:
    command = [
        sys.executable,
        "-m",
        "atlas_ray.featurestore",
        "ingest",
        *map(str, paths),
        "--store",
        str(store),
    ]
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


def test_two_ingest_commands_side_by_side_keep_every_trade(data_dir: Path, tmp_path: Path) -> None:
    first, second, ids = _small_files(data_dir, tmp_path / "files")
    # What one ingest of all 40 files keeps (a few rows of the real data are refused by the checks).
    alone = MarketStore(tmp_path / "alone")
    alone.ingest_many([*first, *second])
    ids = set(alone.read("bitflyer", "btc_jpy", "trades")["trade_id"])
    assert len(ids) > 0.99 * 2 * FILES * ROWS
    for round in range(ROUNDS):
        store = tmp_path / f"store{round}"
        runs = [_ingest(first, store), _ingest(second, store)]
        outputs = [run.communicate(timeout=300) for run in runs]
        for run, (out, err) in zip(runs, outputs, strict=True):
            assert run.returncode == 0, err
            # No --exchange / --pair: each file's domain and product_code name it, and the summary says so.
            assert (
                out.count(
                    "-> bitflyer/btc_jpy (exchange from domain bitflyer.jp, pair from product_code BTC_JPY)"
                )
                == FILES
            )
        stored = MarketStore(store).read("bitflyer", "btc_jpy", "trades")
        assert set(stored["trade_id"]) == ids and stored["trade_id"].is_unique, round
        written = sum(
            int(line.split("written ")[1].split(",")[0]) for out, _ in outputs for line in out.splitlines()
        )
        assert written == len(ids)  # each trade counted once, by the ingest that added it
