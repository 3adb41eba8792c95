"""Summary metrics of a trained model on one split, in pure numpy (the names ResultsObjects store).

Classifiers (``classifier_metrics``): ``loss``, ``accuracy``, ``auc`` (macro average of the
one-vs-rest ROC AUCs; for two classes the AUC of class 1's probability), and per class ``c``, with
the predicted class the most probable one and counts taken one-vs-rest (TP, FP, TN, FN):

- ``precision[c]`` = TP / (TP + FP)           ``npv[c]`` = TN / (TN + FN)
- ``tpr[c]`` = TP / (TP + FN)                 ``tnr[c]`` = TN / (TN + FP)
- ``lr_plus[c]`` = TPR / (1 - TNR)            ``lr_minus[c]`` = (1 - TPR) / TNR

Regressors (``regressor_metrics``): ``loss``, ``mse``, ``mae``, ``sign_accuracy`` (over the rows where
reality moved, ``y_true != 0``: the share whose predicted sign is reality's; a prediction of exactly 0
counts as wrong), ``persistence_mse`` (the mse of the persistence baseline, ``persistence_forecast``:
for row ``i`` it predicts the last *realised* ``horizon``-bar return, the one known at the bar, and
leaves out the rows where that return is not in the split), ``zero_mse`` (the mse of predicting no
change, 0). ``y_true``, ``y_pred`` and ``label_value`` must share units, with 0 meaning no change.

The persistence rule (issue 26): a label looking ``h`` bars forward at bar ``t`` is the return from
``t`` to ``t + h``; the latest such return realised at ``t`` is the label of bar ``t - h`` (the return
from ``t - h`` to ``t``). The label of the row just before, ``t - 1``, is *not* known at ``t`` (it
ends at ``t + h - 1``) and overlaps the label being predicted by ``h - 1`` bars, so for ``h > 1`` it
makes persistence look far better than it is (on a random walk with ``h = 5`` its mse is 0.4 of
predicting zero; the honest one's is 2.0). Given the rows' times (``index``) and the bar length
(``bar``), the baseline takes the label of the row stamped exactly ``t - h * bar`` (rows missing from
the split, a gap or a dropped row, leave the row out); without them rows are taken as consecutive
bars and it takes row ``i - h``. Every caller passes ``horizon = label_horizon(label_name)`` and
``bar = label_bar(label_name)``.

Undefined values never raise:

- a ratio whose denominator is 0 is NaN: 0/0 for precision, npv, tpr, tnr (a class never predicted,
  never absent, ...), accuracy and the mse family on an empty split;
- a likelihood ratio with a positive numerator over a zero denominator is ``inf``, its mathematical
  value: ``lr_plus[c]`` when TNR = 1 (no row of another class predicted ``c``) and TPR > 0,
  ``lr_minus[c]`` when TNR = 0 (every row of another class predicted ``c``) and TPR < 1; 0/0 is NaN;
- ``auc`` is NaN when some class has no positive or no negative row (one-vs-rest AUC undefined);
- a ``proba`` or ``y_pred`` holding NaN or inf (a diverged model) makes every metric that depends on
  it NaN (for classifiers: all of them).

Backtests of a label that spans several bars (``held_positions``, ``held_gross``): a label looking
``horizon`` rows forward is an ``horizon``-bar return, so a position taken on every row and credited
with every row's label counts each bar's return ``horizon`` times. Instead each position is held for
its horizon: the signal is read at rows ``0, h, 2h, ...``, held for the ``h`` rows from there, and
credited once with the label value of the row it was taken on (the return over exactly the bars it
was held); the other rows earn nothing. With ``horizon=1`` that is ``position * label_value`` on every
row. Rows are taken as consecutive bars. ``label_horizon(name)`` reads the horizon from a label's
feature name.

``loss`` is the given ``loss`` (what Keras' ``evaluate`` reported) or, when ``None``, computed as Keras
does: cross-entropy with probabilities clipped to ``[1e-7, 1 - 1e-7]`` (classifiers), mse (regressors).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "REGRESSOR_METRICS",
    "classifier_metric_names",
    "classifier_metrics",
    "confusion_matrix",
    "held_gross",
    "held_positions",
    "label_bar",
    "label_horizon",
    "persistence_forecast",
    "regressor_metrics",
    "roc_auc",
]

REGRESSOR_METRICS = ("loss", "mse", "mae", "sign_accuracy", "persistence_mse", "zero_mse")
PER_CLASS_METRICS = ("precision", "npv", "tpr", "tnr", "lr_plus", "lr_minus")
EPSILON = 1e-7  # keras.config.epsilon(): probabilities are clipped to [EPSILON, 1 - EPSILON]
NAN = float("nan")


def classifier_metric_names(classes: Sequence[str]) -> tuple[str, ...]:
    """Every name ``classifier_metrics`` returns for ``classes``, in order."""
    per_class = tuple(f"{metric}[{c}]" for c in classes for metric in PER_CLASS_METRICS)
    return ("loss", "accuracy", "auc", *per_class)


def classifier_metrics(
    y_true: np.ndarray, proba: np.ndarray, classes: Sequence[str], loss: float | None = None
) -> dict[str, float]:
    """Classifier summary metrics (see the module docstring).

    ``y_true``: class ids ``0 .. len(classes) - 1``. ``proba``: ``(n, len(classes))`` probabilities,
    or for two classes the probability of class 1 as ``(n,)`` or ``(n, 1)``.
    """
    labels = np.asarray(y_true).reshape(-1).astype(np.int64)
    probabilities = _probability_matrix(proba, len(classes))
    if probabilities.shape[0] != labels.shape[0]:
        raise ValueError(f"y_true has {labels.shape[0]} rows but proba has {probabilities.shape[0]}")
    names = classifier_metric_names(classes)
    if not np.isfinite(probabilities).all():
        return dict.fromkeys(names, NAN) | ({"loss": float(loss)} if loss is not None else {})
    predicted = np.argmax(probabilities, axis=1)
    counts = confusion_matrix(labels, predicted, len(classes))
    total = int(counts.sum())
    result: dict[str, float] = {
        "loss": float(loss) if loss is not None else _cross_entropy(labels, probabilities),
        "accuracy": _ratio(float(np.trace(counts)), float(total)),
        "auc": _macro_auc(labels, probabilities),
    }
    for index, name in enumerate(classes):
        tp = float(counts[index, index])
        fn = float(counts[index, :].sum()) - tp
        fp = float(counts[:, index].sum()) - tp
        tn = float(total) - tp - fn - fp
        tpr, tnr = _ratio(tp, tp + fn), _ratio(tn, tn + fp)
        result[f"precision[{name}]"] = _ratio(tp, tp + fp)
        result[f"npv[{name}]"] = _ratio(tn, tn + fn)
        result[f"tpr[{name}]"] = tpr
        result[f"tnr[{name}]"] = tnr
        result[f"lr_plus[{name}]"] = _likelihood_ratio(tpr, 1.0 - tnr)
        result[f"lr_minus[{name}]"] = _likelihood_ratio(1.0 - tpr, tnr)
    return {name: result[name] for name in names}


def regressor_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    label_value: np.ndarray | None = None,
    horizon: int = 1,
    index: Any = None,
    bar: Any = None,
    loss: float | None = None,
) -> dict[str, float]:
    """Regressor summary metrics (see the module docstring). ``label_value`` defaults to ``y_true``;
    ``horizon``, ``index`` and ``bar`` place the persistence baseline (``persistence_forecast``)."""
    _check_horizon(horizon)
    truth = np.asarray(y_true, dtype=np.float64).reshape(-1)
    predicted = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    series = truth if label_value is None else np.asarray(label_value, dtype=np.float64).reshape(-1)
    if predicted.shape != truth.shape or series.shape != truth.shape:
        raise ValueError(
            f"y_true, y_pred and label_value must have the same length: {truth.shape[0]}, "
            f"{predicted.shape[0]}, {series.shape[0]}"
        )
    error = predicted - truth
    moved = truth != 0
    mse = _mean(error**2)
    persisted = persistence_forecast(series, horizon, index=index, bar=bar)
    known = np.isfinite(persisted)
    return {
        "loss": float(loss) if loss is not None else mse,
        "mse": mse,
        "mae": _mean(np.abs(error)),
        "sign_accuracy": _mean((np.sign(predicted[moved]) == np.sign(truth[moved])).astype(np.float64))
        if np.isfinite(predicted).all()
        else NAN,
        "persistence_mse": _mean((truth[known] - persisted[known]) ** 2),
        "zero_mse": _mean(truth**2),
    }


def persistence_forecast(
    label_value: np.ndarray,
    horizon: int,
    *,
    index: Any = None,
    bar: Any = None,
) -> np.ndarray:
    """The persistence baseline's prediction for each row: the last realised ``horizon``-bar return,
    known at the row's bar (see the module docstring), NaN where it is not in the rows given.

    With ``index`` (the rows' times, increasing) and ``bar`` (the bar length, anything
    ``np.timedelta64`` or ``pandas.Timedelta`` takes): the label of the row stamped ``t - horizon * bar``.
    Without either: ``label_value[i - horizon]`` (rows taken as consecutive bars). A time held by
    two rows gives the first one's value."""
    h = _check_horizon(horizon)
    series = np.asarray(label_value, dtype=np.float64).reshape(-1)
    out = np.full(series.shape, NAN)
    if index is None or bar is None:
        out[h:] = series[:-h] if series.size > h else out[h:]
        return out
    stamps = _nanoseconds(index)
    if stamps.shape != series.shape:
        raise ValueError(f"index has {stamps.shape[0]} rows but label_value has {series.shape[0]}")
    step = _bar_nanoseconds(bar)
    if stamps.size == 0:
        return out
    order = np.argsort(stamps, kind="stable")  # (rows in time order already, as splits are)
    ordered = stamps[order]
    wanted = stamps - h * step
    at = np.clip(np.searchsorted(ordered, wanted), 0, stamps.size - 1)
    found = ordered[at] == wanted
    out[found] = series[order[at[found]]]
    return out


def label_horizon(label: str) -> int:
    """How many rows the label named ``label`` (a feature name) looks forward; 1 when the name does not
    parse as a feature or looks no row forward."""
    from atlas_ray.featurestore import Feature

    try:
        horizon = int(Feature.from_name(label).horizon)
    except Exception:  # a name from outside the feature library: treat as a one-bar label
        return 1
    return max(horizon, 1)


def label_bar(label: str) -> np.timedelta64 | None:
    """The bar length of the label named ``label`` (its feature's resolution), None when the name does
    not parse as a feature (the persistence baseline then takes rows as consecutive bars)."""
    from atlas_ray.featurestore import Feature

    try:
        seconds = int(Feature.from_name(label).resolution.seconds)
    except Exception:  # a name from outside the feature library
        return None
    return np.timedelta64(seconds, "s")


def _nanoseconds(index: Any) -> np.ndarray:
    stamps = getattr(index, "asi8", None)  # a pandas DatetimeIndex, tz-aware or naive
    if stamps is None:
        stamps = np.asarray(index, dtype="datetime64[ns]").view("int64")
    return np.asarray(stamps, dtype=np.int64).reshape(-1)


def _bar_nanoseconds(bar: Any) -> int:
    step = int(np.timedelta64(bar, "ns").astype(np.int64))
    if step <= 0:
        raise ValueError(f"The value of `bar` is {bar!r}, but must be a positive time span.")
    return step


def _check_horizon(horizon: object) -> int:
    if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
        raise ValueError(f"The value of `horizon` is {horizon!r}, but must be an integer `horizon >= 1`.")
    return int(horizon)


def held_positions(position: np.ndarray, horizon: int) -> np.ndarray:
    """The position held on each row when the signal at rows ``0, h, 2h, ...`` is held for ``h`` rows."""
    h = _check_horizon(horizon)
    p = np.asarray(position, dtype=np.float64).reshape(-1)
    return p[(np.arange(p.size) // h) * h]


def held_gross(position: np.ndarray, label_value: np.ndarray, horizon: int) -> np.ndarray:
    """Per-row gross return of positions held for ``horizon`` rows (see the module docstring): the
    held position times the label value on the rows where it was taken, 0 on the others."""
    h = _check_horizon(horizon)
    p = np.asarray(position, dtype=np.float64).reshape(-1)
    value = np.asarray(label_value, dtype=np.float64).reshape(-1)
    if p.shape != value.shape:
        raise ValueError(f"position and label_value must have the same length: {p.size}, {value.size}")
    taken = (np.arange(p.size) % h) == 0
    return np.where(taken, held_positions(p, h) * value, 0.0)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """``counts[i, j]``: rows of class ``i`` predicted as class ``j``."""
    truth = np.asarray(y_true).reshape(-1).astype(np.int64)
    predicted = np.asarray(y_pred).reshape(-1).astype(np.int64)
    for name, ids in (("y_true", truth), ("y_pred", predicted)):
        if ids.size and (ids.min() < 0 or ids.max() >= n_classes):
            raise ValueError(f"{name} holds class ids outside 0 .. {n_classes - 1}")
    flat = np.bincount(truth * n_classes + predicted, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)


def roc_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC of ``score`` for the boolean ``positive``: the Mann-Whitney statistic with tied scores
    given their average rank; NaN without both positive and negative rows."""
    is_positive = np.asarray(positive, dtype=bool).reshape(-1)
    values = np.asarray(score, dtype=np.float64).reshape(-1)
    n_positive = int(is_positive.sum())
    n_negative = int(is_positive.size - n_positive)
    if n_positive == 0 or n_negative == 0 or not np.isfinite(values).all():
        return NAN
    ranks = _average_ranks(values)
    statistic = float(ranks[is_positive].sum()) - n_positive * (n_positive + 1) / 2.0
    return statistic / (n_positive * n_negative)


def _probability_matrix(proba: np.ndarray, n_classes: int) -> np.ndarray:
    values = np.asarray(proba, dtype=np.float64)
    if values.ndim == 1 or (values.ndim == 2 and values.shape[1] == 1 and n_classes == 2):
        if n_classes != 2:
            raise ValueError(f"a single probability column needs 2 classes, not {n_classes}")
        positive = values.reshape(-1)
        return np.column_stack([1.0 - positive, positive])
    if values.ndim != 2 or values.shape[1] != n_classes:
        raise ValueError(f"proba has shape {values.shape}, but {n_classes} classes need (n, {n_classes})")
    return values


def _macro_auc(labels: np.ndarray, probabilities: np.ndarray) -> float:
    n_classes = probabilities.shape[1]
    if n_classes == 2:
        return roc_auc(labels == 1, probabilities[:, 1])
    scores = [roc_auc(labels == c, probabilities[:, c]) for c in range(n_classes)]
    return float(np.mean(scores)) if all(np.isfinite(scores)) else NAN


def _cross_entropy(labels: np.ndarray, probabilities: np.ndarray) -> float:
    if labels.size == 0:
        return NAN
    chosen = np.clip(probabilities[np.arange(labels.size), labels], EPSILON, 1.0 - EPSILON)
    return float(-np.mean(np.log(chosen)))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], ordered.size]
    average = (starts + ends + 1) / 2.0  # mean of the 1-based ranks starts+1 .. ends
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.repeat(average, ends - starts)
    return ranks


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else NAN


def _likelihood_ratio(numerator: float, denominator: float) -> float:
    if not (np.isfinite(numerator) and np.isfinite(denominator)):
        return NAN
    if denominator > 0:
        return numerator / denominator
    return float("inf") if numerator > 0 else NAN


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values)) if values.size else NAN
