"""The summary frame: one row per trial, its identity and its summary metrics, the heat-table's input.

Metrics are recomputed from each trial's predictions with ``atlas_ray.report.stats`` (one definition
for every trial, whatever wrote it) on the validation split (plain names, e.g. ``accuracy``; a
walk-forward trial's joined out-of-sample ``oos`` rows) and, only for a trial whose test set was opened
by ``finalize``, the test split (``test_`` prefix, and ``finalized`` names the openings, e.g.
``opening 1``; empty for every other trial, whose test part stays sealed); a metric the search
stored in ``result.json`` that the report does not
compute (``loss``) is taken from there. Besides the classifier and regressor statistics: the
net-of-cost backtest with the experiment's cost model (``_costs``: each trial's recorded one, or the flat
``--cost``): gross against net (``gross_return``, ``net_return``, ``gross_sharpe``, ``net_sharpe``,
``sharpe`` = ``net_sharpe``, per row), ``turnover``, ``cost`` (paid), ``cost_drag`` (``gross_sharpe -
net_sharpe``: the Sharpe ratio lost to costs), ``trades``, ``max_drawdown``, ``hit_rate``
(``atlas_ray.backtest.net_figures``, the search's own figures), and for regressors ``ic``,
``icir``, ``rank_ic`` and ``rank_icir`` (per UTC day, ``stats.information_coefficients``).
``degenerate`` marks models that barely discriminate (``stats.is_degenerate`` on the validation split).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from atlas_ray.errors import AtlasError
from atlas_ray.experiment import ResultsObject, is_minimised
from atlas_ray.featurestore import Task
from atlas_ray.report import stats
from atlas_ray.report._costs import trial_figures

__all__ = [
    "DEFAULT_COST",
    "IDENTITY_COLUMNS",
    "ReportError",
    "heat_columns",
    "known_metrics",
    "lower_is_better",
    "resolve_metric",
    "summary_frame",
    "summary_row",
]

#: The backtest's default cost: None, the experiment's own cost model (``_costs``); a float is a flat
#: cost per unit of position changed, in log-return units (``--cost``).
DEFAULT_COST: float | None = None

IDENTITY_COLUMNS = (
    "experiment", "unit", "model", "trial_id", "status", "task", "classes", "epochs", "hyperparameters",
    "degenerate",
)

class ReportError(AtlasError):
    """A report option is invalid (an unknown metric, a bad filter); names the option and the value."""


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of ``metric`` is better (losses, errors, drawdown):
    ``atlas_ray.experiment.is_minimised``."""
    return is_minimised(metric)


def _split_metrics(result: ResultsObject, split: str, cost: float | None) -> dict[str, float]:
    arrays = stats.trial_arrays(result)
    mask = arrays.mask(split)
    out: dict[str, float] = {}
    if not mask.any():
        return out
    y_true, y_pred = arrays.y_true[mask], arrays.y_pred[mask]
    if result.task is Task.REGRESSION:
        out.update(stats.result_regression_statistics(result, mask))
    else:
        classes = result.classes
        out["accuracy"] = stats.accuracy(y_true, y_pred)
        table = stats.class_statistics(y_true, y_pred, classes)
        out["balanced_accuracy"] = float(np.nanmean(table["tpr"])) if len(table) else math.nan
        probs = arrays.probs[mask] if arrays.probs is not None else None
        out["auc"] = stats.macro_auc(y_true, probs) if probs is not None else math.nan
        for i, name in enumerate(classes):
            out[f"precision[{name}]"] = float(table["predictive_value"].to_numpy()[i])
            out[f"positive_rate[{name}]"] = float(table["positive_rate"].to_numpy()[i])
            out[f"lr_plus[{name}]"] = float(table["lr_plus"].to_numpy()[i])
    if result.task is Task.REGRESSION:
        daily = stats.information_coefficients(arrays.timestamps[mask], y_pred, y_true)
        information = stats.information_summary(daily)
        out.update({name: information[name] for name in ("ic", "icir", "rank_ic", "rank_icir")})
    label = arrays.label_value[mask]
    if np.isfinite(label).any():
        figures = trial_figures(result, mask, cost)
        names = ("gross_return", "net_return", "gross_sharpe", "net_sharpe", "turnover", "cost", "trades",
                 "max_drawdown", "hit_rate")
        out.update({name: figures[name] for name in names})
        out["sharpe"] = figures["net_sharpe"]
        out["cost_drag"] = figures["gross_sharpe"] - figures["net_sharpe"]
    return out


def summary_row(result: ResultsObject, cost: float | None = DEFAULT_COST) -> dict[str, Any]:
    """One trial's row of the summary frame."""
    identity = result.identity
    row: dict[str, Any] = {
        "experiment": identity.experiment,
        "unit": identity.unit,
        "model": identity.model,
        "trial_id": identity.trial_id,
        "status": result.status.value,
        "task": result.task.value,
        "classes": "|".join(result.classes),
        "epochs": result.epochs,
        "hyperparameters": ", ".join(f"{k}={_short(v)}" for k, v in sorted(identity.hyperparameters.items())),
        "degenerate": _degenerate(result),
    }
    row["finalized"] = ", ".join(f"opening {item.get('opening')}" for item in result.finalized or ())
    shown = ("oos" if "oos" in result.metrics else "validation", "")
    for split, prefix in (shown, ("test", "test_")) if result.finalized else (shown,):
        computed = _split_metrics(result, split, cost)
        for name, value in result.metrics.get(split, {}).items():
            computed.setdefault(name, float(value))
        row.update({f"{prefix}{k}": v for k, v in computed.items()})
    for name, value in identity.hyperparameters.items():
        row[f"hp.{name}"] = value
    return row


def _degenerate(result: ResultsObject) -> bool:
    """``stats.is_degenerate`` on the validation split (all rows when it has none), from the arrays."""
    arrays = stats.trial_arrays(result)
    mask = arrays.mask("validation")
    if not mask.any():
        mask = np.ones(arrays.split.shape, bool)
    if not mask.any():
        return False
    if result.task is Task.REGRESSION:
        p = arrays.y_pred[mask]
        if np.nanstd(p) == 0:
            return True
        return bool(max(np.mean(p > 0), np.mean(p < 0)) >= stats.DEGENERATE_SHARE)
    codes = arrays.y_pred[mask]
    share = np.bincount(codes[codes >= 0], minlength=max(len(result.classes), 1)) / max(codes.size, 1)
    return bool(share.max() >= stats.DEGENERATE_SHARE)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def summary_frame(results: Sequence[ResultsObject], cost: float | None = DEFAULT_COST) -> pd.DataFrame:
    """One row per trial (see the module docstring); columns the identity, then the metrics."""
    rows = [summary_row(r, cost) for r in results]
    frame = pd.DataFrame(rows, columns=None if rows else list(IDENTITY_COLUMNS))
    if frame.empty:
        return frame
    return frame.reset_index(drop=True)


def known_metrics(summary: pd.DataFrame) -> list[str]:
    """The numeric metric columns of ``summary`` (what ``--metric`` accepts, also with ``val_``)."""
    skip = set(IDENTITY_COLUMNS)
    return [
        c for c in summary.columns
        if c not in skip and not c.startswith("hp.") and pd.api.types.is_numeric_dtype(summary[c])
    ]


def resolve_metric(name: str, summary: pd.DataFrame) -> str:
    """The summary column ``name`` means: itself, or ``val_X`` -> ``X`` (validation is unprefixed).
    Raises ``ReportError`` naming the metric and the known ones."""
    known = known_metrics(summary)
    for candidate in (name, name.removeprefix("val_"), name.removeprefix("validation_")):
        if candidate in known:
            return candidate
    shown = ", ".join(known) if known else "none: no trial has predictions or metrics"
    raise ReportError(f"unknown --metric {name!r}; known metrics: {shown}")


def integrity_facts(meta: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The experiment's test-set openings and provenance as (label, text) facts for its page: the test
    set sealed, or each opening (a second one flagged: its figures are no longer untouched)."""
    openings = list(meta.get("test_openings") or ())
    if not openings:
        test = "sealed: never opened (python -m atlas_ray.search finalize EXPERIMENT --top K)"
    else:
        test = "; ".join(
            f"opening {o.get('opening')} at {o.get('at')}: {len(o.get('trials') or ())} trial(s) by "
            f"validation {o.get('metric')}, after {o.get('trials_tried')} tried"
            + (" (a repeated look: no longer untouched)" if int(o.get("opening") or 1) > 1 else "")
            for o in openings
        )
    facts = [("test set", test)]
    provenance = meta.get("provenance") or {}
    if provenance:
        commit = provenance.get("git_commit") or "unknown"
        dirty = " (uncommitted changes)" if provenance.get("git_dirty") else ""
        digest = (provenance.get("spec_sha256") or "unknown")[:12]
        facts.append(("provenance", f"seed {provenance.get('seed')}, atlas_ray {commit[:12]}{dirty}, "
                                    f"spec sha256 {digest}"))
    return facts


def heat_columns(summary: pd.DataFrame, task: str, classes: Sequence[str] = ()) -> list[str]:
    """The heat-table's columns for a task: the headline validation metrics, per class precision and
    positive rate (a degenerate model shows as one positive rate near 1), the backtest's net return
    and the test split's headline metric."""
    if task == Task.REGRESSION.value:
        wanted = ["loss", "mse", "mae", "sign_accuracy", "skill", "ic", "rank_ic", "net_return", "sharpe",
                  "hit_rate", "test_mse", "test_sign_accuracy", "test_net_return"]
    else:
        wanted = ["loss", "accuracy", "balanced_accuracy", "auc"]
        wanted += [f"precision[{c}]" for c in classes] + [f"positive_rate[{c}]" for c in classes]
        wanted += ["net_return", "sharpe", "test_accuracy", "test_auc", "test_net_return"]
    return [c for c in wanted if c in summary.columns and summary[c].notna().any()]


def metric_direction(metric: str, mode: str | None = None) -> bool:
    """True when ``metric`` sorts ascending (lower is better); ``mode`` ("min"/"max") wins if given."""
    if mode in ("min", "max"):
        return mode == "min"
    return lower_is_better(metric)


def check_filters(filters: Mapping[str, str]) -> None:
    allowed = {"unit", "model", "status", "task", "experiment"}
    for key, value in filters.items():
        if key not in allowed:
            raise ReportError(
                f"unknown --filter key {key!r} (in {key}={value}); known keys: {', '.join(sorted(allowed))}"
            )
