"""Running a WorkSpec on Ray Tune with ASHA: ``run(spec, storage=...)``.

Order of work: validate the spec (no Ray yet), start or join Ray, build each unit's featureset once
(the featureset cache makes a second run read it back), prepare it (rebalancing draws from the spec's
seed; a ``WalkForward`` split gives a FoldedSet, one PreparedSet per fold) and ``ray.put`` it once;
every trial gets the ObjectRef through ``tune.with_parameters`` and reads the arrays in place.

Research integrity: no trial is evaluated on the test part during the search, and nothing the search
prints holds a test figure (``finalize`` opens the test set once the search is done, see
``_finalize``). ``experiment.json`` records the provenance (``_provenance``): the spec's text and hash,
its seed, atlas_ray's git commit, the library versions and the store state each featureset was built
from. Rows whose label spans a filled bar are counted and printed per unit.

All trials of all units and models run in one Tune experiment named after the spec under
``storage`` (a local directory or a URI): ``param_space = {"variant": tune.grid_search(variants)}``
where each variant is one planned trial (unit, model, sample, seed and the model's space with its grid
points expanded), so Tune's variant generator draws each variant's domains once, from a random state
seeded with the spec's ``seed``: the same spec draws the same hyperparameters every time. One ASHA scheduler
sees every trial (they share the metric); ``tune.with_resources`` gives each trial the CPUs, GPU
fraction and TPU chips (custom resource ``"TPU"``) of its model. Actors are reused between trials of
equal resources (TensorFlow imports once per worker, not once per trial).

A Tune callback settles each trial's ResultsObject as the trial ends (STOPPED / FAILED, see
``_gather``), so an interrupted experiment keeps everything finished. ``resume=True`` restores the
experiment (``Tuner.restore``): unfinished trials continue from their last checkpoint, finished and
errored ones are not run again. The experiment state is saved at least every second
(``TUNE_GLOBAL_CHECKPOINT_S``) so that a driver killed at any time loses at most that much
bookkeeping, and a trial that had finished in that window recognises its settled result on restore
and trains nothing.

Failures: a trial that raised, or whose node went away (its actor died), is retried up to the spec's
``max_failures`` times (Tune's ``FailureConfig``; Tune does not count a node drained for preemption) on
any node with its resources, from its latest checkpoint (its last ASHA rung); a search on several nodes
with ``max_failures=0`` says so in one line. Each attempt's node and the epoch it went on from are in
the trial's attempt log (``_attempts``, ``ResultsObject.attempts``). A cluster that went away as a whole
is continued by ``--resume`` on a new one (the storage must be the same).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import pandas as pd

from atlas_ray import _storage
from atlas_ray.backtest import Costs
from atlas_ray.errors import AtlasError, SpecError
from atlas_ray.experiment import (
    Experiment,
    ResultsObject,
    TrialIdentity,
    TrialStatus,
    has_experiment,
    load_experiment,
    load_results,
    now,
    trial_directory,
    trial_ids_on_disk,
    trial_score,
    write_experiment,
)
from atlas_ray.featurestore import FoldedSet, PreparedSet
from atlas_ray.search._gather import failed_result, fold_sets, settle_trial, unit_info
from atlas_ray.search._progress import Progress, ProgressCallback, ProgressDisplay
from atlas_ray.search._provenance import provenance, spec_source
from atlas_ray.search._searcher import check_space, plan_searcher
from atlas_ray.search._spec import PlannedTrial, Resources, WorkSpec, WorkUnit, trial_plan
from atlas_ray.search._spread import quoted_market, resolve_costs
from atlas_ray.search._trainable import TrialContext, train_trial, variant_key
from atlas_ray.search._validate import check_prepared, validate
from atlas_ray.search._zoo import full_space

__all__ = ["DEFAULT_STORAGE", "PreparedUnit", "experiment_uri", "prepare_units", "run"]

DEFAULT_STORAGE = "./experiments"
_WORKER_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "RAY_USAGE_STATS_ENABLED": "0"}


@dataclass(frozen=True, eq=False)
class PreparedUnit:
    """A unit's built frame summary and its PreparedSet."""

    unit: WorkUnit
    prepared: PreparedSet | FoldedSet
    rows: int
    start: Any
    end: Any
    label_gaps: Mapping[str, int] = field(default_factory=dict)
    data_state: Mapping[str, Any] = field(default_factory=dict)
    #: the unit's cost model as trials charge it: a quoted spread resolved (``_spread.resolve_costs``)
    costs: Costs = field(default_factory=Costs)


def experiment_uri(storage: str, name: str) -> str:
    """``storage/name``: an absolute local path (resolved here, on the driver), or the URI as given
    (its query kept at the end; see ``atlas_ray._storage``)."""
    return _storage.join(_storage.resolve(str(storage)), name)


def run(
    spec: WorkSpec,
    *,
    storage: str = DEFAULT_STORAGE,
    store: Any = None,
    resume: bool | None = None,
    address: str | None = None,
    max_concurrent: int | None = None,
    dry_run: bool = False,
    spec_path: str = "",
    out: IO[str] | None = None,
    verbose: bool = False,
    every: float = 15.0,
) -> str:
    """Run (or with ``dry_run`` only plan) the search; returns the experiment's path or URI.

    ``resume``: None (the default) starts a new experiment, continues an unfinished one, and for a
    finished one says so and prints its best trials (safe to run again); True requires the experiment
    to exist, False requires it not to. An existing experiment must have been run from the same spec
    text. ``verbose`` shows Ray Tune's own status table instead of the progress line (printed every
    ``every`` seconds where ``out`` is not a terminal, see ``_progress``).
    """
    from atlas_ray.featurestore import MarketStore

    out = out if out is not None else sys.stdout
    store = store if store is not None else MarketStore()
    if max_concurrent is not None and (isinstance(max_concurrent, bool) or max_concurrent < 1):
        raise SpecError(
            f"The value of `max_concurrent` is {max_concurrent!r}, but must be `max_concurrent >= 1`."
        )
    validate(spec, store)
    experiment = experiment_uri(storage, spec.name)
    exists = has_experiment(experiment)
    if resume is True and not exists:
        raise SpecError(f"--resume: there is no experiment `{spec.name}` at {experiment} to resume.")
    if resume is False and exists and not dry_run:
        raise SpecError(
            f"spec `{spec.name}`: the experiment {experiment} already exists; pass resume=True to continue "
            "it, or change the storage or the spec's name."
        )
    plan = trial_plan(spec, full_space)
    for planned in plan:
        check_space(spec.searcher, planned.space, f"unit `{planned.unit}`, model `{planned.model}`")
    if dry_run:
        units = prepare_units(spec, store, use_ray=False)
        print_plan(spec, units, plan, experiment, store, out)
        return experiment
    if exists:
        record = load_experiment(experiment)
        check_same_spec(spec, record, spec_path)
        if record.status == "finished":
            print(
                f"the experiment {experiment} is already finished ({len(record.trial_ids)} trials, "
                f"{record.finished}): nothing to run. To search again, change --storage or the spec's name.",
                file=out,
            )
            print_best(load_results(experiment), spec, experiment, out)
            return experiment
    # an experiment continued reads its units by the sources it recorded when it started (never by a
    # decision made again from a store that changed since: featurestore.decide)
    earlier = load_experiment(experiment) if exists else None
    recorded = recorded_sources(earlier) if earlier is not None else {}
    charged = recorded_costs(earlier) if earlier is not None else {}
    started = _ensure_ray(address, verbose)
    try:
        _print_dashboard(out)
        with _quiet_loggers(not verbose):
            units = prepare_units(spec, store, use_ray=True, sources=recorded, costs=charged)
            display = Display(out=out, verbose=verbose, every=every)
            return _run_tune(spec, units, plan, experiment, exists, max_concurrent, spec_path, display)
    finally:
        if started:
            import ray

            ray.shutdown()


def check_same_spec(spec: WorkSpec, record: Experiment, spec_path: str) -> None:
    """Refuse to continue an experiment that was run from another text of the spec (its SHA-256 in the
    provenance differs from the spec file's now); a spec without a file or a record is not checked."""
    recorded = (record.provenance or {}).get("spec_sha256")
    _, digest = spec_source(spec_path)
    if recorded and digest and recorded != digest:
        raise SpecError(
            f"spec `{spec.name}`: {spec_path} changed since the experiment {record.directory} was run "
            f"from it (sha256 {recorded[:12]} then, {digest[:12]} now); change --storage or the spec's "
            "name to run it as a new experiment."
        )


QUIET_LOGGERS = {
    # a failed trial's traceback: the progress display prints its one line, error.txt keeps the rest
    "ray.tune.execution.tune_controller": logging.CRITICAL,
    # "Trials did not complete: [...]" at the end: the summary line counts the failed trials
    "ray.tune.tune": logging.CRITICAL,
    # Ray Data's per-build notices (progress bars disabled, dataset finished) during the featureset build
    "ray.data": logging.ERROR,
}


@contextlib.contextmanager
def _quiet_loggers(quiet: bool) -> Iterator[None]:
    """Raise the levels of ``QUIET_LOGGERS`` while the search runs (not with ``--verbose``)."""
    if not quiet:
        yield
        return
    loggers = {name: logging.getLogger(name) for name in QUIET_LOGGERS}
    levels = {name: logger.level for name, logger in loggers.items()}
    for name, logger in loggers.items():
        logger.setLevel(max(QUIET_LOGGERS[name], logger.getEffectiveLevel()))
    try:
        yield
    finally:
        for name, logger in loggers.items():
            logger.setLevel(levels[name])


def _ensure_ray(address: str | None, verbose: bool = False) -> bool:
    """Join ``address`` or start a local Ray on 127.0.0.1 (``atlas_ray._ray_runtime``); whether it
    started one. The workers' output reaches this console only with ``verbose``."""
    from atlas_ray import _ray_runtime

    return _ray_runtime.connect(address, verbose=verbose, worker_env=_WORKER_ENV)


def _print_dashboard(out: IO[str]) -> None:
    """Where Ray's dashboard is and how to get the token it asks for (never the token itself)."""
    from atlas_ray import _ray_runtime

    for line in _ray_runtime.dashboard_lines():
        print(line, file=out, flush=True)


def recorded_sources(record: Any) -> dict[str, Mapping[str, Any]]:
    """Per unit, the sources its build recorded in ``experiment.json``'s provenance (none for an
    experiment started before sources were recorded)."""
    states = (getattr(record, "provenance", None) or {}).get("store") or {}
    return {
        unit: state["sources"]
        for unit, state in states.items()
        if isinstance(state, Mapping) and state.get("sources") is not None
    }


def recorded_costs(record: Any) -> dict[str, Costs]:
    """Per unit, the cost model its trials were charged with, as ``experiment.json``'s provenance
    records it (none for an experiment started before costs were recorded)."""
    recorded = (getattr(record, "provenance", None) or {}).get("costs") or {}
    return {unit: Costs.from_dict(values) for unit, values in recorded.items() if isinstance(values, Mapping)}


def prepare_units(
    spec: WorkSpec,
    store: Any,
    *,
    use_ray: bool,
    sources: Mapping[str, Mapping[str, Any]] | None = None,
    costs: Mapping[str, Costs] | None = None,
) -> list[PreparedUnit]:
    """Build (or read from the cache) and prepare every unit's featureset, once each, and resolve its
    cost model (``_spread.resolve_costs``: a quoted spread measured before the test block).

    ``use_ray=False`` (dry runs) reads the cache or builds in this process without starting Ray.
    ``sources``: per unit, a recorded decision to build by (``featurestore.decide``);
    a unit without one is decided from the store. ``costs``: per unit, the resolved cost model a
    continued experiment recorded: a quoted spread is charged as recorded, not measured again.
    """
    units = []
    for unit in spec.units:
        featureset = unit.featureset
        kwargs = {"sources": sources[unit.name]} if sources and unit.name in sources else {}
        try:
            if use_ray or _cached(featureset, unit, store, **kwargs):
                frame = featureset.build(unit.start, unit.end, store, **kwargs)
            else:
                frame = featureset.build_local(unit.start, unit.end, store, **kwargs)
            prepared = featureset.prepare(frame, unit.split, seed=spec.seed)
            state = _data_state(featureset, unit, store, **kwargs)
        except SpecError:
            raise
        except AtlasError as error:
            raise SpecError(
                f"unit `{unit.name}`, field `featureset`: {' '.join(str(error).split())}"
            ) from None
        for fold in fold_sets(prepared):
            check_prepared(spec, unit, fold)
        start = frame.index[0] if len(frame) else pd.NaT
        end = frame.index[-1] if len(frame) else pd.NaT
        counts = getattr(featureset, "label_gap_counts", None)
        gaps = counts(frame) if counts is not None else {}
        charged = (costs or {}).get(unit.name)
        if charged is None or charged.quoted or not unit.costs.quoted:
            charged = resolve_costs(unit, prepared, store)
        units.append(PreparedUnit(unit, prepared, len(frame), start, end, gaps, state, charged))
    return units


def _data_state(featureset: Any, unit: WorkUnit, store: Any, **kwargs: Any) -> dict[str, Any]:
    state = getattr(featureset, "data_state", None)
    return dict(state(unit.start, unit.end, store, **kwargs)) if state is not None else {}


def describe_unit(item: PreparedUnit) -> list[str]:
    """Lines describing a prepared unit: rows, range, task, classes, part shapes and label gaps."""
    unit, prepared = item.unit, item.prepared
    lines = [
        f"unit {unit.name}: {item.rows} rows x {prepared.n_features} features "
        f"[{item.start} .. {item.end}], task {prepared.task.value}, classes {list(prepared.classes)}"
    ]
    if isinstance(prepared, FoldedSet):
        for k, fold in enumerate(prepared.folds, start=1):
            lines.append(
                f"  fold {k}: train {fold.train.X.shape} [{_span(fold.train.index)}], "
                f"validation {fold.validation.X.shape} [{_span(fold.validation.index)}]"
            )
        lines.append(f"  test (sealed): {prepared.test.X.shape} [{_span(prepared.test.index)}]")
    else:
        shape = " ".join(
            f"{name}={part.X.shape}" for name, part in prepared.parts().items() if name != "test"
        )
        lines.append(f"  X shapes {shape}; test (sealed) {prepared.test.X.shape}")
    if unit.costs.quoted:
        exchange, pair = quoted_market(unit)
        lines.append(
            f"  costs: {item.costs.describe()} (the spread: half the median quoted spread of {exchange} "
            f"{pair} before the test block)"
        )
    policy = getattr(unit.featureset, "label_gaps", "keep")
    for label, count in item.label_gaps.items():
        if count:
            action = "dropped" if policy == "drop" else "kept (label_gaps='drop' leaves them out)"
            lines.append(f"  label gaps: {count} rows of {label} span a filled bar; {action}")
    return lines


def _span(index: pd.DatetimeIndex) -> str:
    return f"{index[0]} .. {index[-1]}" if len(index) else "empty"


def _cached(featureset: Any, unit: WorkUnit, store: Any, **kwargs: Any) -> bool:
    try:
        path = featureset.cache_path(unit.start, unit.end, store, **kwargs)
    except (AttributeError, AtlasError):
        return False
    import pyarrow.fs as pafs

    # ``cache_path`` is a path on the store's filesystem (in a bucket "bucket/key", not a URI).
    fs, _ = _storage.filesystem(str(getattr(store, "root", path)))
    return bool(fs.get_file_info(path).type != pafs.FileType.NotFound)


def print_plan(
    spec: WorkSpec,
    units: Sequence[PreparedUnit],
    plan: Sequence[PlannedTrial],
    experiment: str,
    store: Any,
    out: IO[str],
) -> None:
    """The dry run's report: featureset shapes and coverage, then the trial plan with resources."""
    print(
        f"spec {spec.name}: {len(plan)} trials, searcher {spec.searcher.value}, "
        f"ASHA {spec.scheduler.as_dict()}",
        file=out,
    )
    for item in units:
        unit = item.unit
        print("\n".join(describe_unit(item)), file=out)
        coverage = _coverage(unit, store)
        if coverage is not None:
            print(coverage.to_string(), file=out)
    print("trial plan:", file=out)
    rows: dict[tuple[str, str, str], int] = {}
    for trial in plan:
        key = (trial.unit, trial.model, trial.resources.describe())
        rows[key] = rows.get(key, 0) + 1
    folds = {item.unit.name: len(fold_sets(item.prepared)) for item in units}
    for (unit_name, model, resources), count in rows.items():
        per_trial = f", {folds[unit_name]} folds per trial" if folds.get(unit_name, 1) > 1 else ""
        print(
            f"  {unit_name} / {model}: {count} trials x {spec.scheduler.max_t} epochs max, {resources} each"
            f"{per_trial}",
            file=out,
        )
    cpus = sum(t.resources.cpu for t in plan)
    print(
        f"total: {len(plan)} trials, {cpus:g} CPU-trials; experiment {experiment} (dry run: nothing trained)",
        file=out,
    )


def _coverage(unit: WorkUnit, store: Any) -> pd.DataFrame | None:
    coverage = getattr(unit.featureset, "coverage", None)
    if coverage is None:
        return None
    try:
        frame: pd.DataFrame = coverage(unit.start, unit.end, store)
    except AtlasError:
        return None
    return frame


def _variants(spec: WorkSpec, plan: Sequence[PlannedTrial]) -> list[dict[str, Any]]:
    return [
        {"unit": t.unit, "model": t.model, "sample": t.sample, "seed": t.seed, "hp": dict(t.space)}
        for t in plan
    ]


@dataclass(frozen=True)
class Display:
    """Where and how the search reports: the progress line (``_progress``) on ``out`` every ``every``
    seconds, or with ``verbose`` Ray Tune's own status table and the workers' output."""

    out: IO[str]
    verbose: bool = False
    every: float = 15.0


def _run_tune(
    spec: WorkSpec,
    units: Sequence[PreparedUnit],
    plan: Sequence[PlannedTrial],
    experiment: str,
    exists: bool,
    max_concurrent: int | None,
    spec_path: str,
    display: Display,
) -> str:
    """The search on Ray Tune, step by step: the environment, the cluster cut (models asking for more
    accelerators than the cluster has), the trainable with its resources, the callbacks, the tuner
    (restored, or new with its experiment record), the fit, then settling every ended trial and
    finishing the record."""
    out = display.out
    _set_environment(spec, out)
    cuts = _cluster_cuts(spec, out)
    trainable = _trainable(spec, units, experiment, spec_path, cuts)
    callbacks = [
        _settler(experiment, spec, spec_path, units),
        ProgressCallback(
            _progress_display(spec, plan, display),
            error_text=_error_line,
            max_failures=spec.max_failures,
            experiment=experiment,
            checkpoints=spec.scheduler.checkpoints(),
        ),
    ]
    console = _Console(_reporter(spec) if display.verbose else None, 1 if display.verbose else 0)
    tune_storage = _tune_storage(_storage.parent(experiment))
    tuner = _restored_tuner(spec, experiment, exists, trainable, tune_storage, callbacks, console, out)
    if tuner is None:
        scheduler = spec.scheduler.to_scheduler()
        _write_record(spec, units, experiment, spec_path, scheduler, out)
        tuner = _new_tuner(spec, plan, trainable, scheduler, max_concurrent, tune_storage, callbacks, console)
    grid = tuner.fit()
    trial_ids = _settle_ended(grid, _settler(experiment, spec, spec_path, units))
    if len(trial_ids) < len(plan):
        # Tune returns from an interrupted run (Ctrl-C / SIGINT) as from a finished one: the experiment
        # stays unfinished, its trials' checkpoints kept, and running the command again goes on.
        print(
            f"interrupted: {len(trial_ids)} of {len(plan)} trials ended; the experiment {experiment} is "
            "kept unfinished: run the same command again to go on from the trials' last checkpoints.",
            file=out,
        )
        raise KeyboardInterrupt
    record = replace(load_experiment(experiment), directory="")
    write_experiment(record.finish(sorted(trial_ids)), experiment)
    print_best(load_results(experiment), spec, experiment, out)
    return experiment


@dataclass(frozen=True)
class _Console:
    """What Tune prints: its own status table (``reporter``, with ``--verbose``) and its verbosity."""

    reporter: Any
    verbosity: int


def _set_environment(spec: WorkSpec, out: IO[str]) -> None:
    """The note on node loss without retries, and Tune's settings for this search (saving the
    experiment state every second, the classic console output)."""
    import ray

    note = _node_loss_note(spec.max_failures, sum(1 for node in ray.nodes() if node.get("Alive")))
    if note:
        print(note, file=out)
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")


def _trainable(
    spec: WorkSpec,
    units: Sequence[PreparedUnit],
    experiment: str,
    spec_path: str,
    cuts: Mapping[str, tuple[Resources, str]],
) -> Any:
    """``train_trial`` with its context (every unit's data put once in the object store) and each
    model's resources (CPUs only for a model the cluster cut)."""
    import ray
    from ray import tune

    context = TrialContext(
        experiment=experiment,
        spec_name=spec.name,
        spec_path=spec_path,
        datasets={item.unit.name: ray.put(item.prepared) for item in units},
        models={variant_key(u.name, m.name): m.model for u in spec.units for m in u.models},
        cpus={variant_key(u.name, m.name): spec.resources_for(m).cpu for u in spec.units for m in u.models},
        scheduler=spec.scheduler,
        cuts=dict(cuts),
        backtests={item.unit.name: (item.costs, item.unit.position) for item in units},
    )
    resources = {
        variant_key(u.name, m.name): spec.resources_for(m).as_tune() for u in spec.units for m in u.models
    }
    for key, (asked, _) in cuts.items():
        resources[key] = Resources(cpu=asked.cpu).as_tune()
    return tune.with_resources(
        tune.with_parameters(train_trial, context=context), resources=_resources_of(resources)
    )


def _progress_display(spec: WorkSpec, plan: Sequence[PlannedTrial], display: Display) -> ProgressDisplay:
    return ProgressDisplay(
        Progress(
            total=len(plan),
            max_t=spec.scheduler.max_t,
            metric=spec.scheduler.metric,
            sign=spec.scheduler.mode.sign,
        ),
        display.out,
        every=display.every,
        show=not display.verbose,
    )


def _restored_tuner(
    spec: WorkSpec,
    experiment: str,
    exists: bool,
    trainable: Any,
    tune_storage: tuple[str, Any],
    callbacks: list[Any],
    console: _Console,
    out: IO[str],
) -> Any:
    """The tuner of the unfinished experiment Tune can restore, with this run's callbacks and console;
    None for a new experiment (or one that ended before any trial started: it starts again)."""
    from ray import tune

    tune_parent, tune_fs = tune_storage
    tune_experiment = _storage.join(tune_parent, spec.name)
    resume = exists and tune.Tuner.can_restore(tune_experiment, storage_filesystem=tune_fs)
    if exists and not resume:
        print(f"the experiment {experiment} ended before any trial started: starting it again",
              file=out)
    if not resume:
        return None
    settled = len(trial_ids_on_disk(experiment))
    print(f"continuing the unfinished experiment {experiment} ({settled} trials with results)", file=out)
    tuner = tune.Tuner.restore(
        tune_experiment,
        trainable=trainable,
        storage_filesystem=tune_fs,
        resume_unfinished=True,
        resume_errored=False,
        restart_errored=False,
    )
    # Tune restores the run config it pickled; this run's callbacks and console replace its own.
    run_config = tuner._local_tuner.get_run_config()
    run_config.callbacks = callbacks
    run_config.progress_reporter = console.reporter
    run_config.verbose = console.verbosity
    return tuner


def _write_record(
    spec: WorkSpec,
    units: Sequence[PreparedUnit],
    experiment: str,
    spec_path: str,
    scheduler: Any,
    out: IO[str],
) -> None:
    """Describe each unit and write the new experiment's record, with the rungs as ``scheduler`` (the
    Ray Tune scheduler the search runs with) decided them (``scheduler_rungs``)."""
    record = Experiment(
        name=spec.name,
        spec=spec_path,
        metric=spec.scheduler.metric,
        mode=spec.scheduler.mode.value,
        created=now(),
        units={u.name: [m.name for m in u.models] for u in spec.units},
        scheduler=spec.scheduler.as_dict(scheduler),
        searcher=spec.searcher.value,
        provenance=provenance(
            spec_path,
            spec.seed,
            {item.unit.name: item.data_state for item in units},
            {item.unit.name: item.costs.as_dict() for item in units},
        ),
    )
    for item in units:
        print("\n".join(describe_unit(item)), file=out)
    write_experiment(record, experiment)


def _new_tuner(
    spec: WorkSpec,
    plan: Sequence[PlannedTrial],
    trainable: Any,
    scheduler: Any,
    max_concurrent: int | None,
    tune_storage: tuple[str, Any],
    callbacks: list[Any],
    console: _Console,
) -> Any:
    """A new Tune experiment: the searcher (or the grid of planned variants), the one ASHA
    ``scheduler``, the storage, retries and checkpoints."""
    from ray import tune
    from ray.tune.search.basic_variant import BasicVariantGenerator

    tune_parent, tune_fs = tune_storage
    search = plan_searcher(
        spec.searcher,
        _variants(spec, plan),
        metric=spec.scheduler.metric,
        mode=spec.scheduler.mode.value,
        seed=spec.seed,
    )
    if search is not None and max_concurrent:
        from ray.tune.search import ConcurrencyLimiter

        search = ConcurrencyLimiter(search, max_concurrent=max_concurrent)
    return tune.Tuner(
        trainable,
        param_space={} if search is not None else {"variant": tune.grid_search(_variants(spec, plan))},
        tune_config=tune.TuneConfig(
            search_alg=search
            or BasicVariantGenerator(max_concurrent=max_concurrent or 0, random_state=spec.seed),
            scheduler=scheduler,
            num_samples=1 if search is None else len(plan),
            reuse_actors=True,
            trial_dirname_creator=_trial_dirname,
        ),
        run_config=tune.RunConfig(
            name=spec.name,
            storage_path=tune_parent,
            storage_filesystem=tune_fs,
            failure_config=tune.FailureConfig(max_failures=spec.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            progress_reporter=console.reporter,
            callbacks=callbacks,
            verbose=console.verbosity,
        ),
    )


def _settle_ended(grid: Any, settler: SettleCallback) -> list[str]:
    """The ids of the trials Tune ended, each settled once more: a safety net, as some trial endings
    reach no callback (a failed actor reuse ends a trial in ERROR without ``on_trial_error``); settling
    again is a no-op for trials already settled."""
    ended = _ended_trials(grid)
    trial_ids = []
    for result in grid:
        trial_id = (result.metrics or {}).get("trial_id") or _trial_id_from_path(result.path)
        if not trial_id or (ended is not None and str(trial_id) not in ended):
            continue
        trial_ids.append(str(trial_id))
        epochs = int((result.metrics or {}).get("training_iteration", 0))
        error = _error_text(result.error) if result.error is not None else None
        settler.settle(str(trial_id), result.config or {}, epochs=epochs, error=error)
    return trial_ids


def _ended_trials(grid: Any) -> set[str] | None:
    """The ids of the trials Tune ended (finished, stopped by the scheduler or failed for good); None
    where the result grid does not say (every trial is then taken as ended)."""
    analysis = getattr(grid, "_experiment_analysis", None)
    trials = getattr(analysis, "trials", None)
    if trials is None:
        return None
    return {str(t.trial_id) for t in trials if str(t.status) in ("TERMINATED", "ERROR")}


def _tune_storage(location: str) -> tuple[str, Any]:
    """Ray Tune's ``storage_path`` and ``storage_filesystem`` for ``location``: a local path as it is
    (Tune's own local filesystem); a URI as its pyarrow filesystem (with the endpoint, region, ... of
    its query) and the path inside it, which Tune hands to every worker with the filesystem."""
    if not _storage.is_uri(location):
        return location, None
    fs, path = _storage.filesystem(location)
    return path, fs


def _node_loss_note(max_failures: int, nodes: int) -> str | None:
    """One line when a search on ``nodes`` nodes allows no retry: Ray Tune counts a trial whose node
    went away as a failure (unless the node was drained for preemption), so it would fail for good."""
    if max_failures != 0 or nodes < 2:
        return None
    return (
        f"note: {nodes} nodes and max_failures=0: a trial on a node that goes away fails for good; "
        "max_failures >= 1 retries it from its last checkpoint on another node"
    )


def _cluster_cuts(spec: WorkSpec, out: IO[str]) -> dict[str, tuple[Resources, str]]:
    """``"unit/model"`` -> (what its trials asked for, why they get CPUs only) for every model asking for
    more GPU or TPU than the whole Ray cluster has, on a cluster that does not autoscale
    (``_devices.fit_to_cluster``: its trials train on the CPU rather than wait for ever); one line each
    on ``out``."""
    import ray

    from atlas_ray.search._devices import fit_to_cluster

    try:
        from ray.tune.execution.cluster_info import _is_ray_cluster

        autoscaling = bool(_is_ray_cluster())
    except ImportError:  # another Ray layout: assume it can grow, as Tune itself would wait
        autoscaling = True
    cluster = ray.cluster_resources()
    cuts: dict[str, tuple[Resources, str]] = {}
    for unit in spec.units:
        for model in unit.models:
            wanted = spec.resources_for(model)
            _, reason = fit_to_cluster(wanted, cluster, autoscaling=autoscaling)
            if reason is not None:
                cuts[variant_key(unit.name, model.name)] = (wanted, reason)
                print(f"unit `{unit.name}`, model `{model.name}`: {reason}", file=out)
    return cuts


def _trial_id_from_path(path: str | None) -> str | None:
    """The trial id at the end of a trial directory named by ``_trial_dirname``."""
    return Path(path).name.rsplit("-", 1)[-1] if path else None


def _trial_dirname(trial: Any) -> str:
    variant = trial.config.get("variant", {})
    return f"{variant.get('unit', 'unit')}-{variant.get('model', 'model')}-{trial.trial_id}"


def _resources_of(resources: Mapping[str, Mapping[str, float]]) -> Any:
    from ray.tune import PlacementGroupFactory

    def of(config: Mapping[str, Any]) -> Any:
        variant = config["variant"]
        wanted = resources[variant_key(variant["unit"], variant["model"])]
        bundle = {"CPU": wanted["cpu"]}
        if wanted.get("gpu"):
            bundle["GPU"] = wanted["gpu"]
        if wanted.get("TPU"):
            bundle["TPU"] = wanted["TPU"]
        return PlacementGroupFactory([bundle])

    return of


def _reporter(spec: WorkSpec) -> Any:
    from ray.tune import CLIReporter

    return CLIReporter(
        metric_columns={spec.scheduler.metric: spec.scheduler.metric, "training_iteration": "epochs"},
        parameter_columns={"variant/unit": "unit", "variant/model": "model"},
        max_progress_rows=12,
        max_error_rows=5,
        max_report_frequency=15,
        sort_by_metric=True,
        metric=spec.scheduler.metric,
        mode=spec.scheduler.mode.value,
    )


def print_best(
    results: Sequence[ResultsObject], spec: WorkSpec, experiment: str, out: IO[str], top: int = 5
) -> None:
    """The best trials by their score (``atlas_ray.experiment.trial_score``: the scheduler's metric on
    validation at the last epoch each reported, the ``val_`` prefix dropped; for a walk-forward trial
    the mean over its folds, with the joined out-of-sample figure beside it). No test figure: the test
    part is sealed until ``finalize``."""
    metric = spec.scheduler.metric.removeprefix("val_")
    sign = spec.scheduler.mode.sign
    scored = [r for r in results if r.status is not TrialStatus.FAILED]
    scored.sort(key=lambda r: _sort_key(trial_score(r, metric), sign))
    counts = {status: sum(r.status is status for r in results) for status in TrialStatus}
    print(
        "trials: " + ", ".join(f"{n} {s.value}" for s, n in counts.items() if n),
        file=out,
    )
    if scored:
        rows = [
            {
                "trial": r.trial_id,
                "unit": r.identity.unit,
                "model": r.identity.model,
                "status": r.status.value,
                "epochs": r.epochs,
                f"validation {metric}": trial_score(r, metric),
                **({f"oos {metric}": r.metric(metric, "oos")} if "oos" in r.metrics else {}),
                "hyperparameters": _short(r.identity.hyperparameters),
            }
            for r in scored[:top]
        ]
        mode = spec.scheduler.mode.value
        print(f"best trials by validation {metric} at their last epoch ({mode}):", file=out)
        print(pd.DataFrame(rows).to_string(index=False), file=out)
    print(f"experiment: {experiment}", file=out)


def _sort_key(value: float, sign: float) -> tuple[int, float]:
    import math

    return (1, 0.0) if math.isnan(value) else (0, -sign * value)


def _short(hyperparameters: Mapping[str, Any]) -> str:
    text = ", ".join(f"{k}={v}" for k, v in sorted(hyperparameters.items()))
    return text if len(text) <= 60 else text[:57] + "..."


def _callback_base() -> type:
    from ray.tune import Callback

    return Callback


class SettleCallback(_callback_base()):  # type: ignore[misc]
    """Settles each trial's ResultsObject as it ends (driver side; see ``_gather``)."""

    def __init__(
        self,
        experiment: str,
        spec_name: str,
        spec_path: str,
        infos: Mapping[str, Mapping[str, Any]],
        max_t: int,
    ) -> None:
        self.experiment = experiment
        self.spec_name = spec_name
        self.spec_path = spec_path
        self.infos = dict(infos)
        self.max_t = max_t

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        epochs = int((trial.last_result or {}).get("training_iteration", 0))
        self.settle(trial.trial_id, trial.config, epochs=epochs, error=None)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.settle(trial.trial_id, trial.config, epochs=0, error=_error_line(trial))

    def settle(self, trial_id: str, config: Mapping[str, Any], *, epochs: int, error: str | None) -> None:
        """FAILED with ``error``, else COMPLETED at ``max_t`` epochs and STOPPED below (idempotent)."""
        directory = trial_directory(self.experiment, trial_id)
        if error is None:
            status = TrialStatus.COMPLETED if epochs >= self.max_t else TrialStatus.STOPPED
            settle_trial(directory, status=status)
            return
        variant = config.get("variant")
        if variant is None:  # Tune lost the trial's config (its actor never started): nothing to name
            return
        identity = TrialIdentity(
            experiment=self.spec_name,
            spec=self.spec_path,
            unit=variant["unit"],
            model=variant["model"],
            trial_id=trial_id,
            hyperparameters=dict(variant["hp"]),
            seed=int(variant["seed"]),
        )
        fallback = failed_result(self.infos[variant["unit"]], identity=identity, error=error)
        settle_trial(directory, status=TrialStatus.FAILED, error=error, fallback=fallback)


def _settler(experiment: str, spec: WorkSpec, spec_path: str, units: Sequence[PreparedUnit]) -> Any:
    return SettleCallback(
        experiment,
        spec.name,
        spec_path,
        {item.unit.name: unit_info(item.prepared) for item in units},
        spec.scheduler.max_t,
    )


def _error_line(trial: Any) -> str:
    """The last meaningful line of a trial's error (the exception and its message): from the driver's
    own error file, written as the error arrives (the copy in storage follows at the next sync)."""
    error: object = None
    try:
        local = trial.error_file
        error = Path(local).read_text() if local and os.path.isfile(local) else trial.get_error()
    except Exception:  # the error file may be gone; the status is what matters
        error = None
    return _error_text(error)


def _error_text(error: object) -> str:
    """The last line of ``error`` that names an exception, else its last line."""
    text = str(error) if error is not None else "the trial failed (no error recorded)"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if "Error" in line.split(":", 1)[0] or "Exception" in line.split(":", 1)[0]:
            return line[:500]
    return lines[-1][:500] if lines else text
