"""Opening the sealed test set: ``python -m atlas_ray.search finalize EXPERIMENT --top K [--metric NAME]``.

During the search no trial is evaluated on the test part. ``finalize`` chooses the ``top`` trials by
their *validation* metric (``--metric``, default the scheduler's metric with its ``val_`` prefix
dropped; for a walk-forward trial the mean over its folds), and evaluates each once on the test part:
the test block after the last fold for a ``WalkForward`` unit (the last fold's model, scaling and
categories), the test split of a ``TimeSplit`` unit.

The test part is prepared again from the spec the search ran (the spec text recorded in
``experiment.json``'s provenance, else the spec file), with the same seed, from the featureset cache,
reading every series from the source the trials recorded (``result.json``'s ``sources``, see
``featurestore.decide``; trials written before sources were recorded: decided from the
store as before), so data ingested since (quotes for a later month) never changes what a trial reads;
a trial whose stored scaling differs from the one prepared now (the data or the code changed since
the search) is refused rather than tested on other data.

What it records, before any test figure is computed:

* ``experiment.json``'s ``test_openings`` gains ``{"opening": n, "at", "trials", "top", "metric",
  "mode", "trials_tried"}`` (``trials_tried``: how many trials the experiment held then), so a
  reader knows how many looks at the test set there were and how much was tried before each;
* each chosen trial's ``result.json`` gets ``metrics["test"]`` (the net-of-cost figures ``net_sharpe``,
  ``turnover``, ... among them, with the unit's cost model and position rule), its ``finalized`` list gains
  ``{"opening": n, "at"}``, and ``predictions.parquet`` its ``test`` rows (replacing any from an
  earlier opening).

A second opening works the same and is printed and recorded as such: its figures are no longer an
untouched estimate.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import IO, Any

import pandas as pd

from atlas_ray import _storage
from atlas_ray._stderr import held_stderr
from atlas_ray.backtest import Costs
from atlas_ray.errors import AtlasError, SpecError
from atlas_ray.experiment import (
    Experiment,
    Mode,
    ResultsObject,
    best_trials,
    is_minimised,
    load_experiment,
    load_results,
    now,
    predict_proba,
    write_experiment,
    write_result,
)
from atlas_ray.featurestore import FoldedSet, PreparedSet
from atlas_ray.search._gather import fold_sets, split_metrics, split_predictions, unit_info
from atlas_ray.search._spec import WorkSpec, WorkUnit

__all__ = ["Opening", "finalize", "main"]

@dataclass(frozen=True)
class Opening:
    """One opening of the test set: its number, when, the trials evaluated and what was tried by then."""

    opening: int
    at: str
    trials: tuple[str, ...]
    top: int
    metric: str
    mode: str
    trials_tried: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "opening": self.opening,
            "at": self.at,
            "trials": list(self.trials),
            "top": self.top,
            "metric": self.metric,
            "mode": self.mode,
            "trials_tried": self.trials_tried,
        }


def metric_mode(metric: str, experiment: Experiment) -> str:
    """``"min"`` or ``"max"``: the scheduler's mode for its own metric, else by the metric's name
    (``atlas_ray.experiment.is_minimised``)."""
    if metric == experiment.metric.removeprefix("val_"):
        return experiment.mode
    return "min" if is_minimised(metric) else "max"


def choose(results: Sequence[ResultsObject], top: int, metric: str, mode: str) -> list[ResultsObject]:
    """The ``top`` trials with a model, best score first (``atlas_ray.experiment.best_trials``: the
    validation ``metric`` at each trial's last epoch; a NaN score is never chosen)."""
    return best_trials(results, metric, Mode(mode), with_model=True)[:top]


def finalize(
    experiment: str,
    *,
    top: int,
    metric: str | None = None,
    mode: str | None = None,
    spec: WorkSpec | None = None,
    store: Any = None,
    out: IO[str] | None = None,
) -> Opening:
    """Open the test set for the ``top`` best trials by validation ``metric`` (see the module docstring).

    ``spec``: the WorkSpec the search ran (default: the spec text recorded in ``experiment.json``, else
    its spec file); ``store``: the market store (default ``MarketStore()``).
    """
    from atlas_ray.featurestore import MarketStore

    out = out if out is not None else sys.stdout
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise SpecError(f"The value of `--top` is {top!r}, but must be an integer `top >= 1`.")
    if mode is not None and mode not in ("min", "max"):
        raise SpecError(f"The value of `--mode` is {mode!r}, but must be 'min' or 'max'.")
    record = load_experiment(experiment)
    results = load_results(experiment)
    name = (metric or record.metric).removeprefix("val_")
    known = sorted({key for r in results for key in r.metrics.get("validation", {})})
    if name not in known:
        raise SpecError(
            f"experiment {experiment}, field `--metric`: the value is {name!r}, but the trials' validation "
            f"metrics are {', '.join(known) or 'none (no trial has been evaluated)'}."
        )
    direction = mode or metric_mode(name, record)
    chosen = choose(results, top, name, direction)
    if not chosen:
        raise SpecError(f"experiment {experiment}: no trial has a model and a validation {name} to test.")
    spec = spec if spec is not None else _recorded_spec(record)
    store = store if store is not None else MarketStore()
    from atlas_ray.search._runner import recorded_sources

    recorded: dict[str, Mapping[str, Any]] = dict(recorded_sources(record))  # as the search started
    for result in chosen:
        if result.sources is not None:  # as the trial itself recorded it
            recorded[result.identity.unit] = result.sources
    tests = _test_parts(spec, {r.identity.unit for r in chosen}, store, recorded)
    for result in chosen:
        _check_same_data(result, tests[result.identity.unit])
    opening = Opening(
        opening=len(record.test_openings) + 1,
        at=now(),
        trials=tuple(r.trial_id for r in chosen),
        top=top,
        metric=name,
        mode=direction,
        trials_tried=len(results),
    )
    # The opening is on record before any test figure exists.
    write_experiment(
        replace(record, test_openings=(*record.test_openings, opening.as_dict())), experiment
    )
    tested = [
        _evaluate_on_test(result, tests[result.identity.unit], opening, spec.unit(result.identity.unit))
        for result in chosen
    ]
    _print_opening(opening, record, tested, out)
    return opening


def _recorded_spec(record: Experiment) -> WorkSpec:
    from atlas_ray.search._spec_loader import load_spec

    source = record.provenance.get("spec_source")
    if source:
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, os.path.basename(record.spec) or "spec.py")
            with open(path, "w") as stream:
                stream.write(source)
            return load_spec(path)
    if record.spec and os.path.isfile(record.spec):
        return load_spec(record.spec)
    raise SpecError(
        f"experiment {record.directory}: it records no spec text and its spec file {record.spec!r} is not "
        "here; run finalize from the directory the search ran in."
    )


def _test_parts(
    spec: WorkSpec, units: set[str], store: Any, recorded: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, PreparedSet | FoldedSet]:
    """Each unit built again (by its trials' recorded sources where ``recorded`` has them) and
    prepared as the search prepared it."""
    from atlas_ray.search._runner import _cached

    prepared: dict[str, PreparedSet | FoldedSet] = {}
    for unit in spec.units:
        if unit.name not in units:
            continue
        featureset = unit.featureset
        sources = (recorded or {}).get(unit.name)
        try:
            if _cached(featureset, unit, store, sources=sources):
                frame = featureset.build(unit.start, unit.end, store, sources=sources)
            else:
                frame = featureset.build_local(unit.start, unit.end, store, sources=sources)
            prepared[unit.name] = featureset.prepare(frame, unit.split, seed=spec.seed)
        except AtlasError as error:
            raise SpecError(f"unit `{unit.name}`: {' '.join(str(error).split())}") from None
    missing = sorted(units - set(prepared))
    if missing:
        raise SpecError(f"the spec {spec.name} has no unit(s) {missing} that the chosen trials ran on.")
    return prepared


def _check_same_data(result: ResultsObject, prepared: PreparedSet | FoldedSet) -> None:
    """The test part is prepared as the trial's model expects: same scaling as the search stored."""
    scaling = unit_info(prepared)["scaling"]
    if _rounded(scaling) != _rounded(dict(result.scaling)):
        raise AtlasError(
            f"trial {result.trial_id}: the scaling prepared now differs from the one the search stored, "
            "so the data or the featureset changed since the search; the test set was not opened."
        )


def _rounded(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    if isinstance(value, float):
        return round(value, 9)
    return value


def charged_costs(result: ResultsObject, unit: WorkUnit) -> Costs:
    """The cost model the trial's validation figures were charged with, as its result records it (a
    quoted spread resolved once before the search: the test figures charge the same figure, never one
    measured again); the unit's own where the result records none (results from before costs)."""
    recorded = (result.backtest or {}).get("costs")
    costs = Costs.from_dict(recorded) if isinstance(recorded, Mapping) else unit.costs
    if costs.quoted:
        raise SpecError(
            f"unit `{unit.name}`, field `costs.spread_bps`: the value is 'quoted', but the result of trial "
            f"{result.identity.trial_id} records no resolved spread to charge the test rows with."
        )
    return costs


def _evaluate_on_test(
    result: ResultsObject, prepared: PreparedSet | FoldedSet, opening: Opening, unit: WorkUnit
) -> ResultsObject:
    """The test metrics, net-of-cost figures included (the unit's ``costs``, its ``position`` rule with
    the trial's ``position_threshold``), and predictions of one chosen trial, written to its result."""
    from atlas_ray.search._gather import load_model
    from atlas_ray.search._manifest import write_manifest

    last = fold_sets(prepared)[-1]
    test = last.test
    model = load_model(result)
    output = predict_proba(model, test.X, last.task)
    rows = split_predictions(last, "test", test, output)
    if isinstance(prepared, FoldedSet):
        rows["fold"] = len(prepared.folds)
    kept = result.predictions
    if "split" in kept.columns:
        kept = kept[kept["split"] != "test"]
    updated = replace(
        result,
        metrics={
            **result.metrics,
            "test": split_metrics(
                last, test, output, charged_costs(result, unit),
                unit.position.for_trial(result.identity.hyperparameters),
            ),
        },
        predictions=pd.concat([kept, rows], ignore_index=True),
        finalized=(*(result.finalized or ()), {"opening": opening.opening, "at": opening.at}),
    )
    write_result(updated, result.directory)
    write_manifest(result.directory)
    return updated


def _print_opening(
    opening: Opening, record: Experiment, tested: Sequence[ResultsObject], out: IO[str]
) -> None:
    if opening.opening == 1:
        print(
            f"test set opened for the first time at {opening.at}, for {len(tested)} trial(s) chosen by "
            f"validation {opening.metric} ({opening.mode}) among {opening.trials_tried} tried:",
            file=out,
        )
    else:
        print(
            f"warning: the test set was opened {opening.opening - 1} time(s) before; this is opening "
            f"#{opening.opening} ({opening.at}), after {opening.trials_tried} trials: its figures are no "
            "longer an untouched estimate.",
            file=out,
        )
    rows = [
        {
            "trial": r.trial_id,
            "unit": r.identity.unit,
            "model": r.identity.model,
            f"validation {opening.metric}": r.metric(opening.metric, "validation"),
            f"test {opening.metric}": r.metric(opening.metric, "test"),
        }
        for r in tested
    ]
    print(pd.DataFrame(rows).to_string(index=False), file=out)
    print(f"recorded in {_storage.join(record.directory, 'experiment.json')} (test_openings)", file=out)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m atlas_ray.search finalize",
        description="Open the sealed test set once for the best trials by validation metric, and record it.",
    )
    parser.add_argument("experiment", help="the experiment directory or URI, e.g. experiments/june")
    parser.add_argument("--top", type=int, required=True, help="how many of the best trials to test")
    parser.add_argument(
        "--metric", default=None, help="validation metric to rank by (default: the scheduler's metric)"
    )
    parser.add_argument("--mode", choices=("min", "max"), default=None, help="the metric's direction")
    parser.add_argument(
        "--store", default=None, help="market-data store root (default $ATLAS_STORE or ./atlas_store)"
    )
    return parser


def main(argv: Sequence[str]) -> int:
    """``finalize EXPERIMENT --top K [--metric NAME] [--mode min|max] [--store ROOT]``."""
    args = _parser().parse_args(list(argv))
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from atlas_ray.featurestore import MarketStore

    with held_stderr():  # as quiet as the search: TensorFlow's C++ start-up notices are dropped
        finalize(
            args.experiment,
            top=args.top,
            metric=args.metric,
            mode=args.mode,
            store=MarketStore(args.store),
        )
    return 0
