"""The one definition of a trial's score, and of the best trials.

A trial's score is its validation metric at the LAST epoch it reported: the figure of the weights that
are saved (``model.keras``), evaluated into ``result.json``, finalized and served. It is never the
best epoch's figure (those weights are not kept). ``trial_score`` reads it from the trial's
ResultsObject (``metrics["validation"][name]``, for a walk-forward trial the mean over its folds, what
ASHA decided on); the search's progress line, its table of best trials, the report, ``finalize`` and
``serve --best`` all rank trials with it.

A metric is named as the scheduler names it (``val_loss``) or by its plain name (``loss``): the
``val_`` prefix says the split, which is always validation here (a test or train figure is never a
score; asking for one is a ``ValueError``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from atlas_ray.experiment._direction import Mode, direction
from atlas_ray.experiment._results import ResultsObject, TrialStatus, _read_document

__all__ = ["SCORE_SPLIT", "best_trials", "read_score", "score_name", "trial_score"]

#: The split a score is read from: never test (sealed until ``finalize``), never train.
SCORE_SPLIT = "validation"


def score_name(metric: str) -> str:
    """The name a metric has in ``result.json``'s validation metrics: ``val_loss`` -> ``loss``.
    A ``test_`` or ``train_`` figure is refused with a ``ValueError``."""
    if metric.startswith(("test_", "train_")):
        raise ValueError(
            f"The value of `metric` is {metric!r}, but a trial's score is a validation figure only "
            "(a name such as val_loss or accuracy)."
        )
    return metric.removeprefix("val_")


def trial_score(result: ResultsObject, metric: str) -> float:
    """The trial's score for ``metric``: its validation figure at the last epoch it reported (see the
    module docstring); NaN when the trial has none (it failed before any evaluation)."""
    return result.metric(score_name(metric), SCORE_SPLIT)


def read_score(directory: str, metric: str) -> float:
    """``trial_score`` of the trial in ``directory`` read from its ``result.json`` alone (not its
    predictions): what the search's progress line shows while it runs. NaN when the trial has no result
    yet or failed (a failed trial has no score in the tables either)."""
    document = _read_document(directory)
    if document is None or document.get("status") == TrialStatus.FAILED.value:
        return math.nan
    value = (document.get("metrics") or {}).get(SCORE_SPLIT, {}).get(score_name(metric))
    return math.nan if value is None else float(value)


def best_trials(
    results: Iterable[ResultsObject],
    metric: str,
    mode: Mode | None = None,
    *,
    with_model: bool = False,
) -> list[ResultsObject]:
    """The trials that have a score, best first by ``trial_score`` (``mode``: the metric's direction,
    by default ``direction(metric)``). Failed trials and scores that are not finite are left out;
    ``with_model`` also leaves out trials without a ``model.keras``. Ties keep the order given."""
    mode = mode if mode is not None else direction(metric)
    scored = [
        (trial_score(r, metric), r)
        for r in results
        if r.status is not TrialStatus.FAILED and (r.model_file or not with_model)
    ]
    kept = [(value, r) for value, r in scored if math.isfinite(value)]
    kept.sort(key=lambda item: -mode.sign * item[0])
    return [r for _, r in kept]
