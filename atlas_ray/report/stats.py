"""Atlas' statistics, vectorised with numpy; each one with a scikit-learn counterpart is tested against it.

Classification (``y_true``, ``y_pred``: int class ids ``0..k-1``; ``scores``/``probabilities``: the
model's per-class probabilities). Per class ``c``, one-vs-rest, with TP/FP/TN/FN counted on
"predicted c" against "is c":

- prevalence = (TP + FN) / n, how often the class happens;
- positive rate (PR) = (TP + FP) / n, how often the model predicts the class;
- predictive value (PV, precision) = TP / (TP + FP); negative predictive value = TN / (TN + FN);
- true positive rate (TPR, recall) = TP / (TP + FN); true negative rate (TNR) = TN / (TN + FP);
- likelihood ratios, the standard definition: LR+ = TPR / (1 - TNR), LR- = (1 - TPR) / TNR.
  Gryphon Atlas computed a "likelihood ratio" as PR / (1 - PV), which is not the standard quantity;
  ``atlas_likelihood_ratio`` keeps it for comparing with old Atlas reports only.

A ratio with a zero denominator is NaN (``inf`` for LR+ when TNR is 1 and TPR > 0 would read as
"perfect" on a plot of a model that predicts the class almost never; NaN keeps it off the plot).

Regression: MSE, MAE, sign accuracy (the share of rows where ``sign(prediction) == sign(reality)``),
the persistence baseline (predict the last realised h-bar return, the label of the bar h bars back,
known at the bar: ``atlas_ray.metrics.persistence_forecast``; not the previous row's label, which for
an h-bar label overlaps the one predicted by h - 1 bars) and the zero-change baseline (predict 0).

The trader's view: a signal's position is +1 for "up" (a regression prediction > 0), -1 for "down"
(< 0) and 0 for "flat"; ``backtest`` earns ``position * label_value`` (the realised log return) per
row less ``cost * |position change|``, and sums it (log returns add) into the cumulative return.

Selection luck (maths in ``atlas_ray.report._overfitting``, re-exported here): ``sharpe_ratio``,
``deflated_sharpe_ratio`` (Bailey and López de Prado 2014) with ``expected_max_sharpe`` and
``probabilistic_sharpe_ratio``, ``cscv`` (the probability of backtest overfitting, Bailey, Borwein,
López de Prado and Zhu), and ``information_coefficients`` / ``information_summary`` (IC, Rank IC per
day, ICIR).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from atlas_ray.experiment import ResultsObject
from atlas_ray.featurestore import Task
from atlas_ray.metrics import held_gross, held_positions
from atlas_ray.metrics import label_bar as label_bar
from atlas_ray.metrics import label_horizon as label_horizon
from atlas_ray.metrics import persistence_forecast as persistence_forecast
from atlas_ray.report._overfitting import (
    EULER_GAMMA,
    CSCVResult,
    cscv,
    cscv_combinations,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    information_coefficients,
    information_summary,
    probabilistic_sharpe_ratio,
    return_moments,
    sharpe_ratio,
)

__all__ = [
    "BUCKETS",
    "CSCVResult",
    "DEGENERATE_SHARE",
    "EULER_GAMMA",
    "SPLITS",
    "accuracy",
    "accuracy_over_time",
    "atlas_likelihood_ratio",
    "auc",
    "backtest",
    "backtest_summary",
    "choose_bucket",
    "class_codes",
    "class_positions",
    "class_statistics",
    "confidence_thresholds",
    "confusion_matrix",
    "hit_rate_over_time",
    "is_degenerate",
    "likelihood_ratio_curve",
    "macro_auc",
    "positions",
    "precision_recall_curve",
    "probabilities",
    "regression_statistics",
    "result_regression_statistics",
    "roc_auc",
    "roc_curve",
    "split_predictions",
    "trial_arrays",
    "TrialArrays",
    "threshold_predictions",
    "cscv",
    "cscv_combinations",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "information_coefficients",
    "information_summary",
    "probabilistic_sharpe_ratio",
    "return_moments",
    "sharpe_ratio",
]

#: A classifier that predicts one class on at least this share of rows (or a regressor whose
#: predictions have one sign on at least this share) is marked degenerate.
DEGENERATE_SHARE = 0.95

#: Bucket widths ``choose_bucket`` picks from (pandas offsets).
BUCKETS = ("1min", "5min", "15min", "30min", "1h", "2h", "4h", "6h", "12h", "1D", "7D")


# ----------------------------------------------------------------------------------------- plumbing


def split_predictions(result: ResultsObject, split: str) -> pd.DataFrame:
    """The rows of ``result.predictions`` for ``split`` (``"all"`` for every row), in time order."""
    frame = result.predictions
    if frame.empty:
        return frame
    if split != "all":
        frame = frame[frame["split"] == split]
    if "timestamp" in frame.columns and not frame["timestamp"].is_monotonic_increasing:
        frame = frame.sort_values("timestamp", kind="stable")
    return frame


def class_codes(values: pd.Series | np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """Class ids ``0..k-1`` from class names (or from ids already); ``-1`` for anything else."""
    if isinstance(values, pd.Series) and not pd.api.types.is_numeric_dtype(values):
        # strings: pyarrow's hash lookup is ten times quicker than pandas' categorical on 30k rows.
        names = pa.array([str(c) for c in classes], pa.string())
        found = pc.index_in(pa.array(values.astype("str"), from_pandas=True), value_set=names)
        return np.asarray(found.fill_null(-1).to_numpy(zero_copy_only=False), dtype="int64")
    array = np.asarray(values)
    if array.dtype.kind in "iu":
        return np.where((array >= 0) & (array < len(classes)), array, -1).astype("int64")
    if array.dtype.kind == "f":
        whole = np.isfinite(array) & (array == np.round(array)) & (array >= 0) & (array < len(classes))
        return np.where(whole, np.nan_to_num(array), -1).astype("int64")
    codes = pd.Categorical(pd.Series(array, dtype="object").astype(str), categories=list(classes)).codes
    return np.asarray(codes, dtype="int64")


def probabilities(frame: pd.DataFrame, classes: Sequence[str]) -> np.ndarray | None:
    """The ``prob_<class>`` columns as an ``(n, k)`` array, or ``None`` when any is absent."""
    columns = [f"prob_{c}" for c in classes]
    if not classes or any(c not in frame.columns for c in columns):
        return None
    return frame[columns].to_numpy("float64")


def class_positions(classes: Sequence[str]) -> np.ndarray:
    """The trading position of each class: +1 "up", -1 "down", 0 "flat".

    Classes named up/down/flat (also long/short, buy/sell, positive/negative, rise/fall, neutral,
    hold, zero; case-insensitive, or containing those words) get their meaning from the name; any
    other classes are read by order, as percentile classes are built: the first (lowest returns) is
    -1, the last (highest) is +1 and any between are 0.
    """
    words = {
        1: ("up", "long", "buy", "positive", "rise", "pos"),
        -1: ("down", "short", "sell", "negative", "fall", "neg"),
        0: ("flat", "neutral", "hold", "zero", "none"),
    }
    named: list[int | None] = []
    for name in classes:
        key = str(name).lower()
        match = [sign for sign, names in words.items() if any(w == key or w in key.split("_") for w in names)]
        named.append(match[0] if len(match) == 1 else None)
    if classes and all(n is not None for n in named):
        return np.asarray(named, dtype="float64")
    k = len(classes)
    order = np.zeros(k)
    if k >= 2:
        order[0], order[-1] = -1.0, 1.0
    return order


# ------------------------------------------------------------------------------------ classification


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts, rows the true class and columns the predicted one (as ``sklearn.metrics.confusion_matrix``
    with ``labels=range(n_classes)``); rows with an id outside ``0..k-1`` are left out."""
    y_true = np.asarray(y_true, dtype="int64")
    y_pred = np.asarray(y_pred, dtype="int64")
    keep = (y_true >= 0) & (y_true < n_classes) & (y_pred >= 0) & (y_pred < n_classes)
    flat = y_true[keep] * n_classes + y_pred[keep]
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The share of rows predicted right (NaN with no rows)."""
    y_true = np.asarray(y_true)
    if y_true.size == 0:
        return math.nan
    return float(np.mean(y_true == np.asarray(y_pred)))


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype="float64")
    den = np.asarray(den, dtype="float64")
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def class_statistics(y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[str]) -> pd.DataFrame:
    """Per class (index): ``prevalence``, ``positive_rate``, ``predictive_value``, ``npv``, ``tpr``,
    ``tnr``, ``lr_plus``, ``lr_minus`` (see the module docstring)."""
    k = len(classes)
    cm = confusion_matrix(y_true, y_pred, k).astype("float64")
    n = cm.sum()
    tp = np.diag(cm)
    fn = cm.sum(axis=1) - tp
    fp = cm.sum(axis=0) - tp
    tn = n - tp - fn - fp
    tpr = _ratio(tp, tp + fn)
    tnr = _ratio(tn, tn + fp)
    return pd.DataFrame(
        {
            "prevalence": _ratio(tp + fn, np.full(k, n)),
            "positive_rate": _ratio(tp + fp, np.full(k, n)),
            "predictive_value": _ratio(tp, tp + fp),
            "npv": _ratio(tn, tn + fn),
            "tpr": tpr,
            "tnr": tnr,
            "lr_plus": _ratio(tpr, 1.0 - tnr),
            "lr_minus": _ratio(1.0 - tpr, tnr),
        },
        index=pd.Index(list(classes), name="class"),
    )


def atlas_likelihood_ratio(positive_rate: np.ndarray, predictive_value: np.ndarray) -> np.ndarray:
    """Gryphon Atlas' non-standard "likelihood ratio", PR / (1 - PV); kept only to compare with old
    Atlas reports. Use ``class_statistics(...)["lr_plus"]`` (TPR / (1 - TNR))."""
    return _ratio(np.asarray(positive_rate), 1.0 - np.asarray(predictive_value, dtype="float64"))


def threshold_predictions(probs: np.ndarray, confidence: float) -> np.ndarray:
    """The most probable class where its probability is at least ``confidence``, else -1 (abstain)."""
    if not 0.0 <= confidence <= 1.0:
        raise ValueError(f"The value of `confidence` is {confidence}, but must be `0 <= confidence <= 1`.")
    best = probs.argmax(axis=1)
    sure = probs[np.arange(len(best)), best] >= confidence
    return np.where(sure, best, -1).astype("int64")


def confidence_thresholds(
    y_true: np.ndarray, probs: np.ndarray, classes: Sequence[str], thresholds: Sequence[float] | np.ndarray
) -> pd.DataFrame:
    """For each class and threshold t, over the rows whose probability of the class is at least t:
    ``precision`` (the share that are the class), ``frequency`` (their share of all rows) and
    ``count``. Long format: columns class, threshold, precision, frequency, count."""
    y_true = np.asarray(y_true)
    t = np.asarray(thresholds, dtype="float64")
    n = max(len(y_true), 1)
    frames = []
    for c, name in enumerate(classes):
        above = probs[:, c][:, None] >= t[None, :]
        count = above.sum(axis=0)
        hits = (above & (y_true == c)[:, None]).sum(axis=0)
        frames.append(pd.DataFrame({
            "class": name, "threshold": t, "precision": _ratio(hits, count),
            "frequency": count / n, "count": count,
        }))
    return pd.concat(frames, ignore_index=True)


def _clf_curve(positive: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False and true positives at each distinct score, highest first (as scikit-learn's
    ``confusion_matrix_at_thresholds``)."""
    positive = np.asarray(positive, dtype=bool)
    scores = np.asarray(scores, dtype="float64")
    order = np.argsort(scores, kind="mergesort")[::-1]
    scores = scores[order]
    positive = positive[order]
    distinct = np.where(np.diff(scores))[0]
    ends = np.r_[distinct, positive.size - 1]
    tps = np.cumsum(positive, dtype="float64")[ends]
    fps = 1.0 + ends - tps
    return fps, tps, scores[ends]


def roc_curve(positive: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)`` at every distinct score, starting at (0, 0) with threshold ``inf``
    (``sklearn.metrics.roc_curve(..., drop_intermediate=False)``). NaN rates when a side is empty."""
    if len(positive) == 0:
        return np.array([0.0]), np.array([0.0]), np.array([np.inf])
    fps, tps, thresholds = _clf_curve(positive, scores)
    fps = np.r_[0.0, fps]
    tps = np.r_[0.0, tps]
    fpr = fps / fps[-1] if fps[-1] > 0 else np.full(fps.shape, np.nan)
    tpr = tps / tps[-1] if tps[-1] > 0 else np.full(tps.shape, np.nan)
    return fpr, tpr, np.r_[np.inf, thresholds]


def auc(x: np.ndarray, y: np.ndarray) -> float:
    """Area under a curve by the trapezoidal rule (``sklearn.metrics.auc`` for monotonic x)."""
    x = np.asarray(x, dtype="float64")
    y = np.asarray(y, dtype="float64")
    if x.size < 2 or np.isnan(x).any() or np.isnan(y).any():
        return math.nan
    area = float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))
    return -area if x[-1] < x[0] else area


def roc_auc(positive: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (``sklearn.metrics.roc_auc_score``); NaN when one side is empty."""
    fpr, tpr, _ = roc_curve(positive, scores)
    return auc(fpr, tpr)


def macro_auc(y_true: np.ndarray, probs: np.ndarray) -> float:
    """One-vs-rest AUC averaged over classes (``roc_auc_score(multi_class="ovr", average="macro")``); a
    binary model's AUC of its second class (``roc_auc_score(y, probs[:, 1])``)."""
    y_true = np.asarray(y_true)
    k = probs.shape[1]
    if k == 2:
        return roc_auc(y_true == 1, probs[:, 1])
    values = [roc_auc(y_true == c, probs[:, c]) for c in range(k)]
    return float(np.mean(values)) if values else math.nan


def precision_recall_curve(
    positive: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(precision, recall, thresholds)`` with thresholds increasing and a last point (1, 0)
    (``sklearn.metrics.precision_recall_curve``)."""
    if len(positive) == 0:
        return np.array([1.0]), np.array([0.0]), np.array([])
    fps, tps, thresholds = _clf_curve(positive, scores)
    predicted = tps + fps
    precision = np.where(predicted != 0, _ratio(tps, predicted), 0.0)
    recall = tps / tps[-1] if tps[-1] > 0 else np.ones_like(tps)
    return np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0], thresholds[::-1]


def likelihood_ratio_curve(positive: np.ndarray, scores: np.ndarray, points: int = 200) -> pd.DataFrame:
    """LR+ = TPR / FPR of "predict the class when its score >= threshold", at up to ``points``
    thresholds (score quantiles), with ``frequency``, the share of rows predicted as the class.
    Columns threshold, frequency, tpr, fpr, lr_plus; the high-frequency end tends to LR+ = 1."""
    fpr, tpr, thresholds = roc_curve(positive, scores)
    n = len(positive)
    fps, tps, _ = _clf_curve(positive, scores) if n else (np.array([]), np.array([]), np.array([]))
    frequency = np.r_[0.0, (fps + tps) / max(n, 1)]
    frame = pd.DataFrame({
        "threshold": thresholds, "frequency": frequency, "tpr": tpr, "fpr": fpr,
        "lr_plus": _ratio(tpr, fpr),
    }).iloc[1:]
    if len(frame) > points:
        pick = np.unique(np.linspace(0, len(frame) - 1, points).round().astype(int))
        frame = frame.iloc[pick]
    return frame.reset_index(drop=True)


def choose_bucket(timestamps: pd.Series | pd.DatetimeIndex, target: int = 48) -> str:
    """The narrowest bucket of ``BUCKETS`` that cuts the time span into at most ``target`` buckets."""
    times = pd.DatetimeIndex(timestamps)
    if len(times) < 2:
        return BUCKETS[-1]
    span = times.max() - times.min()
    for bucket in BUCKETS:
        if span / pd.Timedelta(bucket) <= target:
            return bucket
    return BUCKETS[-1]


def accuracy_over_time(
    timestamps: pd.Series | pd.DatetimeIndex, correct: np.ndarray, bucket: str | None = None
) -> pd.DataFrame:
    """Share of ``correct`` rows per time bucket (index: the bucket's start); columns accuracy and
    count. Empty buckets are left out. ``bucket`` defaults to ``choose_bucket``."""
    times = pd.DatetimeIndex(timestamps)
    bucket = bucket or choose_bucket(times)
    values = pd.Series(np.asarray(correct, dtype="float64"), index=times)
    grouped = values.groupby(times.floor(bucket))
    frame = pd.DataFrame({"accuracy": grouped.mean(), "count": grouped.size()})
    return frame[frame["count"] > 0]


def hit_rate_over_time(
    timestamps: pd.Series | pd.DatetimeIndex,
    position: np.ndarray,
    label_value: np.ndarray,
    bucket: str | None = None,
) -> pd.DataFrame:
    """Per time bucket, over the rows where the signal takes a position: the share whose realised
    return has the position's sign (``hit_rate``) and their number (``trades``)."""
    position = np.asarray(position, dtype="float64")
    active = position != 0
    hits = np.sign(position[active]) == np.sign(np.asarray(label_value, dtype="float64")[active])
    times = pd.DatetimeIndex(timestamps)[active]
    frame = accuracy_over_time(times, hits, bucket or choose_bucket(pd.DatetimeIndex(timestamps)))
    return frame.rename(columns={"accuracy": "hit_rate", "count": "trades"})


# ---------------------------------------------------------------------------------------- regression


def regression_statistics(
    prediction: np.ndarray,
    reality: np.ndarray,
    *,
    label_value: np.ndarray | None = None,
    horizon: int = 1,
    timestamps: pd.DatetimeIndex | None = None,
    bar: object = None,
) -> dict[str, float]:
    """``mse``, ``mae``, ``sign_accuracy``, ``persistence_mse`` (predicting the last realised
    ``horizon``-bar return, known at the bar: ``persistence_forecast``, placed by ``timestamps`` and the
    label's ``bar`` when given, else rows taken as consecutive bars; rows with no realised return in
    the split left out), ``zero_mse`` (predicting no change) and ``skill`` = 1 - mse / zero_mse (> 0
    beats predicting zero). ``label_value`` defaults to ``reality``."""
    p = np.asarray(prediction, dtype="float64")
    r = np.asarray(reality, dtype="float64")
    if p.size == 0:
        keys = ("mse", "mae", "sign_accuracy", "persistence_mse", "zero_mse", "skill")
        return dict.fromkeys(keys, math.nan)
    error = p - r
    mse = float(np.mean(error**2))
    zero = float(np.mean(r**2))
    series = r if label_value is None else np.asarray(label_value, dtype="float64")
    persisted = persistence_forecast(series, horizon, index=timestamps, bar=bar)
    known = np.isfinite(persisted)
    return {
        "mse": mse,
        "mae": float(np.mean(np.abs(error))),
        "sign_accuracy": float(np.mean(np.sign(p) == np.sign(r))),
        "persistence_mse": float(np.mean((r[known] - persisted[known]) ** 2)) if known.any() else math.nan,
        "zero_mse": zero,
        "skill": 1.0 - mse / zero if zero > 0 else math.nan,
    }


def result_regression_statistics(result: ResultsObject, mask: np.ndarray) -> dict[str, float]:
    """``regression_statistics`` of ``result``'s prediction rows under ``mask`` (``trial_arrays``), the
    persistence baseline placed by the result's label (``label_horizon``, ``label_bar``) and the rows'
    times: recomputed from the stored predictions, so a report of an experiment written before the
    persistence rule was fixed (issue 26) shows the honest baseline too."""
    arrays = trial_arrays(result)
    label = arrays.label_value[mask]
    return regression_statistics(
        arrays.y_pred[mask],
        arrays.y_true[mask],
        label_value=label if np.isfinite(label).all() else None,
        horizon=label_horizon(result.label),
        timestamps=arrays.timestamps[mask],
        bar=label_bar(result.label),
    )


# ----------------------------------------------------------------------------------- trading signal


def positions(result: ResultsObject, frame: pd.DataFrame) -> np.ndarray:
    """The signal's position per row of ``frame`` (rows of ``result.predictions``): +1 / -1 / 0 by the
    predicted class (``class_positions``), or the sign of a regression prediction."""
    if frame.empty:
        return np.zeros(0)
    if result.task is Task.REGRESSION:
        return np.sign(frame["prediction"].to_numpy("float64"))
    codes = class_codes(frame["prediction"], result.classes)
    table = np.r_[class_positions(result.classes), 0.0]
    return table[np.where(codes >= 0, codes, len(result.classes))]


def backtest(
    timestamps: pd.Series | pd.DatetimeIndex,
    position: np.ndarray,
    label_value: np.ndarray,
    cost: float = 0.0,
    horizon: int = 1,
) -> pd.DataFrame:
    """The plain long/short backtest: per row ``gross = position * label_value``, ``cost = cost *
    |position - previous position|`` (flat before the first row), ``net = gross - cost``; and the
    cumulative sums ``cumulative`` (net) and ``cumulative_gross`` (log returns add). ``cost`` is per
    unit of position changed, in log-return units (5e-4 = 5 basis points). A label spanning
    ``horizon`` rows (``label_horizon(result.label)``): each position is held for its horizon and
    credited once (``atlas_ray.metrics.held_gross``), so no bar's return counts twice."""
    if cost < 0:
        raise ValueError(f"The value of `cost` is {cost}, but must be `cost >= 0`.")
    p = held_positions(np.asarray(position, dtype="float64"), horizon)
    lv = np.nan_to_num(np.asarray(label_value, dtype="float64"))
    gross = held_gross(p, lv, horizon)
    turnover = np.abs(np.diff(np.r_[0.0, p]))
    net = gross - cost * turnover
    return pd.DataFrame(
        {
            "position": p, "gross": gross, "cost": cost * turnover, "net": net,
            "cumulative": np.cumsum(net), "cumulative_gross": np.cumsum(gross),
        },
        index=pd.DatetimeIndex(timestamps),
    )


def backtest_summary(curve: pd.DataFrame) -> dict[str, float]:
    """``net_return``, ``gross_return``, ``turnover`` (sum of |position changes|), ``hit_rate`` (share
    of rows in a position whose return has its sign), ``exposure`` (share of rows in a position) and
    ``max_drawdown`` of the net cumulative return."""
    if curve.empty:
        keys = ("net_return", "gross_return", "turnover", "hit_rate", "exposure", "max_drawdown")
        return dict.fromkeys(keys, math.nan)
    p = curve["position"].to_numpy()
    active = p != 0
    gross = curve["gross"].to_numpy()
    cumulative = curve["cumulative"].to_numpy()
    return {
        "net_return": float(cumulative[-1]),
        "gross_return": float(curve["cumulative_gross"].to_numpy()[-1]),
        "turnover": float(np.abs(np.diff(np.r_[0.0, p])).sum()),
        "hit_rate": float(np.mean(gross[active] > 0)) if active.any() else math.nan,
        "exposure": float(active.mean()),
        "max_drawdown": float(np.max(np.maximum.accumulate(np.r_[0.0, cumulative]) - np.r_[0.0, cumulative])),
    }


def is_degenerate(result: ResultsObject, frame: pd.DataFrame) -> bool:
    """True for a model that barely discriminates: a classifier predicting one class on at least
    ``DEGENERATE_SHARE`` of ``frame``'s rows, a regressor whose predictions are constant or have one
    sign on that share of rows."""
    if frame.empty:
        return False
    if result.task is Task.REGRESSION:
        p = frame["prediction"].to_numpy("float64")
        if np.nanstd(p) == 0:
            return True
        signs = np.sign(p)
        return bool(max(np.mean(signs > 0), np.mean(signs < 0)) >= DEGENERATE_SHARE)
    codes = class_codes(frame["prediction"], result.classes)
    share = np.bincount(codes[codes >= 0], minlength=max(len(result.classes), 1)) / max(len(codes), 1)
    return bool(share.max() >= DEGENERATE_SHARE)


# ------------------------------------------------------------------------- per-trial arrays, cached

#: The ``split`` values a trial's predictions carry; ``"oos"`` marks walk-forward out-of-sample rows.
SPLITS = ("train", "validation", "test", "oos")


@dataclass(frozen=True, eq=False)
class TrialArrays:
    """A trial's predictions as numpy arrays in time order, computed once (``trial_arrays``).

    ``split``: 0 train, 1 validation, 2 test, 3 oos, -1 other; ``y_true`` / ``y_pred``: class ids (-1 unknown)
    for classifiers, values for regressors; ``probs``: ``(n, k)`` or ``None``; ``position``: the
    signal (``positions``); ``label_value``: the realised value (NaN when absent)."""

    split: np.ndarray
    timestamps: pd.DatetimeIndex
    y_true: np.ndarray
    y_pred: np.ndarray
    probs: np.ndarray | None
    position: np.ndarray
    label_value: np.ndarray

    def mask(self, split: str) -> np.ndarray:
        return self.split == SPLITS.index(split) if split in SPLITS else np.ones(self.split.shape, bool)


_ARRAYS: weakref.WeakKeyDictionary[ResultsObject, TrialArrays] = weakref.WeakKeyDictionary()


def trial_arrays(result: ResultsObject) -> TrialArrays:
    """``result``'s predictions as ``TrialArrays`` (cached per ResultsObject)."""
    cached = _ARRAYS.get(result)
    if cached is not None:
        return cached
    frame = result.predictions
    if not frame.empty and "timestamp" in frame.columns and not frame["timestamp"].is_monotonic_increasing:
        frame = frame.sort_values("timestamp", kind="stable")
    n = len(frame)
    if frame.empty:
        empty = np.zeros(0)
        arrays = TrialArrays(np.zeros(0, "int64"), pd.DatetimeIndex([], tz="UTC"), empty, empty, None, empty,
                             empty)
    else:
        split = class_codes(frame["split"].astype("str"), SPLITS) if "split" in frame else np.full(n, -1)
        if result.task is Task.REGRESSION:
            y_true = frame["reality"].to_numpy("float64")
            y_pred = frame["prediction"].to_numpy("float64")
        else:
            y_true = class_codes(frame["reality"], result.classes)
            y_pred = class_codes(frame["prediction"], result.classes)
        label = frame["label_value"].to_numpy("float64") if "label_value" in frame else np.full(n, np.nan)
        arrays = TrialArrays(
            split=split, timestamps=pd.DatetimeIndex(frame["timestamp"]), y_true=y_true, y_pred=y_pred,
            probs=probabilities(frame, result.classes), position=positions(result, frame), label_value=label,
        )
    _ARRAYS[result] = arrays
    return arrays
