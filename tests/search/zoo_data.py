"""A small real dataset for the zoo, hypermodel and metrics tests: Coinbase BTC-USD minute bars of
March 2023 (../shared/data/minute_bars_2023-03), log-return features and the next minute's log return.

Features per row t: log returns over 1, 5 and 15 minutes, log volume and the 15-minute volatility of
1-minute returns, z-scaled with training statistics. Label: the log return of the next minute, in
basis points (regression), in 3 classes by training terciles (multi-class) or 2 by the training
median (binary). Split by time 60/20/20; windowed parts hold the 20 rows ending at each row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from atlas_ray.featurestore._featuresets._prepared import Task

ROWS = 2400
WINDOW = 20


@dataclass(frozen=True)
class Part:
    X: np.ndarray
    y: np.ndarray
    label_value: np.ndarray


@dataclass(frozen=True)
class MinuteData:
    flat: dict[str, dict[str, Part]]  # task -> split -> part, rows (n, features)
    windows: dict[str, dict[str, Part]]  # the same, (n, WINDOW, features)
    classes: dict[str, tuple[str, ...]]

    def parts(self, task: Task, windowed: bool) -> dict[str, Part]:
        return (self.windows if windowed else self.flat)[task.value]


def load_minute_data(data_dir: Path) -> MinuteData:
    bars = pd.read_parquet(data_dir / "minute_bars_2023-03" / "coinbase_btcusd.parquet")
    bars = bars.sort_index()
    close = bars["close"].astype("float64")
    returns = np.log(close).diff()
    frame = pd.DataFrame(
        {
            "log_return_1": returns,
            "log_return_5": returns.rolling(5).sum(),
            "log_return_15": returns.rolling(15).sum(),
            "log_volume": np.log1p(bars["volume"].astype("float64")),
            "volatility_15": returns.rolling(15).std(),
            "label": returns.shift(-1) * 1e4,
        }
    ).dropna().iloc[:ROWS]
    features = frame.drop(columns="label").to_numpy()
    label = frame["label"].to_numpy()
    n_train, n_validation = int(ROWS * 0.6), int(ROWS * 0.2)
    bounds = {"train": (0, n_train), "validation": (n_train, n_train + n_validation),
              "test": (n_train + n_validation, ROWS)}
    mean, std = features[:n_train].mean(axis=0), features[:n_train].std(axis=0)
    scaled = ((features - mean) / std).astype("float32")
    terciles = np.percentile(label[:n_train], [100 / 3, 200 / 3])
    median = np.median(label[:n_train])
    targets = {
        Task.REGRESSION.value: label.astype("float32"),
        Task.MULTICLASS.value: np.digitize(label, terciles).astype("int64"),
        Task.BINARY.value: (label > median).astype("int64"),
    }
    windows = np.lib.stride_tricks.sliding_window_view(scaled, WINDOW, axis=0).transpose(0, 2, 1)
    flat: dict[str, dict[str, Part]] = {}
    windowed: dict[str, dict[str, Part]] = {}
    for task, y in targets.items():
        flat[task], windowed[task] = {}, {}
        for split, (start, stop) in bounds.items():
            flat[task][split] = Part(scaled[start:stop], y[start:stop], label[start:stop])
            first = max(start, WINDOW - 1)  # a window needs WINDOW - 1 earlier rows
            windowed[task][split] = Part(
                np.ascontiguousarray(windows[first - WINDOW + 1 : stop - WINDOW + 1]),
                y[first:stop],
                label[first:stop],
            )
    classes = {
        Task.REGRESSION.value: (),
        Task.MULTICLASS.value: ("down", "flat", "up"),
        Task.BINARY.value: ("not_up", "up"),
    }
    return MinuteData(flat=flat, windows=windowed, classes=classes)
