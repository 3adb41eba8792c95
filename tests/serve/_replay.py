"""Helpers shared by the live tests: replay real bars through an engine, compare with the offline series."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from atlas_ray.featurestore import MarketStore
from atlas_ray.search import load_model
from atlas_ray.serve import LiveEngine, Prediction, find_trial, required_series
from atlas_ray.serve._feeds import history_events, paced, replay_ticks

REPLAY_START = pd.Timestamp("2023-03-02T06:00Z")  # inside the validation part of the served search
REPLAY_END = pd.Timestamp("2023-03-02T10:00Z")


def trial_of(experiment: Path, model: str) -> str:
    for directory in sorted((experiment / "trials").iterdir()):
        if f'"model": "{model}"' in (directory / "result.json").read_text():
            return directory.name
    raise LookupError(model)


def engine_for(experiment: Path, trial: str, store: MarketStore) -> LiveEngine:
    served = find_trial(str(experiment), trial=trial)
    return LiveEngine(served, load_model(served.result), series=required_series(served, store))


def replay(
    engine: LiveEngine, store: MarketStore, start: pd.Timestamp, end: pd.Timestamp
) -> list[Prediction]:
    """Warm the engine with the history before ``start``, then push bar by bar up to ``end``."""
    resolution = engine.resolution
    warm = history_events(store, engine.series, resolution, start - pd.Timedelta("3h"), start)
    engine.push(warm, through=(start - resolution.offset).value, warm=True)
    out: list[Prediction] = []
    for push, _ in paced(replay_ticks(store, engine.series, resolution, start, end), 0, chunk=1):
        outcome = engine.push(push["events"], through=push["through"])  # type: ignore[arg-type]
        assert outcome.rejected == [], outcome.rejected
        out.extend(outcome.predictions)
    return out


def compare(predictions: list[Prediction], offline: pd.DataFrame, classes: tuple[str, ...]) -> pd.DataFrame:
    """Live probabilities beside the ResultsObject's at the same timestamps."""
    live = pd.DataFrame(
        {
            "timestamp": [p.time for p in predictions],
            "live_class": [p.label for p in predictions],
            **{f"live_{c}": [p.probabilities[k] for p in predictions] for k, c in enumerate(classes)},  # type: ignore[index]
        }
    )
    joined = offline.merge(live, on="timestamp", how="inner")
    joined["max_diff"] = np.max(
        np.abs(np.stack([joined[f"prob_{c}"] - joined[f"live_{c}"] for c in classes], axis=1)), axis=1
    )
    return joined


def check_entries(
    entries: list[dict[str, str]],
    offline: pd.DataFrame,
    classes: tuple[str, ...],
    since: pd.Timestamp | None = None,
) -> int:
    """Check redis entries (stream fields) against the ResultsObject's predictions at the same bars (from
    ``since``): the same class and probabilities within 1e-5. Returns how many bars were compared."""
    import json

    by_time = offline.set_index("timestamp")
    compared = 0
    for entry in entries:
        stamp = pd.Timestamp(entry["ts"])
        if stamp not in by_time.index or (since is not None and stamp < since):
            continue
        row = by_time.loc[stamp]
        probabilities = json.loads(entry["probabilities"])
        assert entry["class"] == row["prediction"], stamp
        assert max(abs(p - row[f"prob_{c}"]) for p, c in zip(probabilities, classes, strict=True)) < 1e-5, (
            stamp
        )
        compared += 1
    return compared
