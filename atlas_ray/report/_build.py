"""Build the report: read the experiments, compute the summaries, draw the figures, write the page.

What is drawn, per experiment: the summary table (every trial, sortable in the browser), the
heat-table of the whole spec (one per task, since classifiers and regressors have different columns)
and one per work unit when a task has several units, the ASHA picture, hyperparameters against the
metric, the backtest of the top trials, and for each of the top ``top`` trials per task its baseball
card, learning curves and (classifiers) ROC / precision-recall against threshold, probability
histograms and likelihood curves. With several experiments, a comparison table and figure come
first. Only the top trials get cards, so a report over hundreds of trials stays quick.

The output directory is built in a temporary sibling directory and moved into place at the end, so a
reader never sees a half-written report; an older report at the same place is replaced whole.
"""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from atlas_ray.experiment import ResultsObject
from atlas_ray.featurestore import Task
from atlas_ray.report import _html
from atlas_ray.report._costs import ranks_net
from atlas_ray.report._load import Experiment, asha_settings, load_experiment_for_report
from atlas_ray.report._luck import selection_luck
from atlas_ray.report._parallel import default_workers, map_in_workers
from atlas_ray.report._plots_backtest import backtest_plot
from atlas_ray.report._plots_card import shown_split
from atlas_ray.report._plots_classifier import classifier_baseball_card
from atlas_ray.report._plots_curves import (
    learning_curves,
    likelihood_curves,
    probability_histograms,
    roc_threshold_plots,
)
from atlas_ray.report._plots_heat import heat_table, sort_summary
from atlas_ray.report._plots_luck import ic_plot, pbo_plot
from atlas_ray.report._plots_regressor import regressor_baseball_card
from atlas_ray.report._plots_search import (
    asha_plot,
    experiment_comparison,
    hyperparameter_plot,
    varying_hyperparameters,
)
from atlas_ray.report._style import render_checked
from atlas_ray.report._summary import (
    DEFAULT_COST,
    ReportError,
    check_filters,
    known_metrics,
    metric_direction,
    resolve_metric,
    summary_frame,
    summary_row,
)

__all__ = ["BuiltReport", "ReportSettings", "build_report", "default_out"]


@dataclass(frozen=True)
class ReportSettings:
    """How to build a report. ``metric``: the column to rank by (default: the experiment's own metric,
    else ``loss``); ``top``: cards per experiment and task; ``heat_rows``: rows per heat-table;
    ``filters``: identity fields to keep (``unit``, ``model``, ``status``, ``task``, ``experiment``);
    ``split``: the split the cards show (default ``validation``: a walk-forward trial's joined ``oos``
    rows; ``test`` shows test figures of finalised trials only, labelled so); ``cost``: None (the
    default) charges each trial the experiment's cost model (``_costs``), a float a flat cost per unit
    of position changed (``--cost``);
    ``workers``: processes drawing figures and summarising trials (default: the usable CPUs, at most 8)."""

    out: Path
    metric: str | None = None
    top: int = 5
    heat_rows: int = 30
    filters: Mapping[str, str] = field(default_factory=dict)
    split: str = "validation"
    cost: float | None = DEFAULT_COST
    workers: int | None = None

    def __post_init__(self) -> None:
        if self.top < 1:
            raise ReportError(f"The value of `--top` is {self.top}, but must be `--top >= 1`.")
        if self.heat_rows < 1:
            raise ReportError(f"The value of `heat_rows` is {self.heat_rows}, but must be `heat_rows >= 1`.")
        if self.cost is not None and self.cost < 0:
            raise ReportError(f"The value of `--cost` is {self.cost}, but must be `--cost >= 0`.")
        if self.split not in ("train", "validation", "oos", "test"):
            raise ReportError(
                f"The value of `split` is {self.split!r}, but must be one of train, validation, oos, test."
            )
        check_filters(self.filters)


@dataclass(frozen=True)
class BuiltReport:
    """Where the report is, what it said was missing, and any text that did not fit in its figure
    (``clipped``, one ``"figure.png: what"`` line each; empty when every title fits)."""

    index: Path
    figures: int
    missing: tuple[str, ...]
    clipped: tuple[str, ...] = ()


def default_out(names: Sequence[str]) -> Path:
    """``./reports/<experiment name>`` (names joined by ``_vs_`` for several experiments)."""
    safe = ["".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in n) or "experiment" for n in names]
    return Path("reports") / "_vs_".join(safe)


@dataclass
class _Job:
    name: str
    caption: str
    make: Callable[[], Figure]


def _keep(result: ResultsObject, filters: Mapping[str, str]) -> bool:
    fields = {
        "unit": result.identity.unit, "model": result.identity.model, "status": result.status.value,
        "task": result.task.value, "experiment": result.identity.experiment,
    }
    return all(fields[key] == value for key, value in filters.items())


def _task_metric(metric: str, rows: pd.DataFrame) -> str:
    """``metric`` if any row of this task has it, else the task's own ``loss`` / first metric."""
    if metric in rows.columns and rows[metric].notna().any():
        return metric
    for fallback in ("loss", "accuracy", "mse"):
        if fallback in rows.columns and rows[fallback].notna().any():
            return fallback
    known = known_metrics(rows)
    return known[0] if known else metric


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text)


def build_report(experiments: Sequence[str | Experiment], settings: ReportSettings) -> BuiltReport:
    """Write the report for ``experiments`` (URIs or loaded ones) into ``settings.out``, step by step:
    load them, summarise each one's kept trials, choose the metric, draw the comparison (several
    experiments) and each experiment's section, then render the figures and write the page."""
    loaded = [e if isinstance(e, Experiment) else load_experiment_for_report(e) for e in experiments]
    if not loaded:
        raise ReportError("no experiment given; name at least one experiment directory")
    keys = _keys(loaded)
    kept = {key: [r for r in experiment.results if _keep(r, settings.filters)]
            for key, experiment in zip(keys, loaded, strict=True)}
    summaries = {key: _summaries(results, settings) for key, results in kept.items()}
    metric, ascending = _report_metric(loaded, summaries, settings)
    sections: list[_html.Section] = []
    jobs: list[_Job] = []
    if len(loaded) > 1:
        jobs.append(_Job("comparison.png", f"every trial's {metric} per experiment and unit",
                         lambda: experiment_comparison(summaries, metric)))
        sections.append(_html.comparison_section(summaries, metric, ascending, "comparison.png"))
    for key, experiment in zip(keys, loaded, strict=True):
        sections.append(_experiment_section(experiment, key, kept[key], summaries[key], metric, ascending,
                                            settings, jobs))
    return _write_page(loaded, sections, jobs, metric, ascending, settings)


def _keys(loaded: Sequence[Experiment]) -> list[str]:
    """Each experiment's key in the report: its name, ``name#i`` for a name already taken."""
    keys: list[str] = []
    for i, experiment in enumerate(loaded):
        keys.append(experiment.name if experiment.name not in keys else f"{experiment.name}#{i}")
    return keys


def _report_metric(loaded: Sequence[Experiment], summaries: Mapping[str, pd.DataFrame],
                   settings: ReportSettings) -> tuple[str, bool]:
    """The metric the tables rank by (``settings.metric``, else the first experiment's search metric,
    else ``loss``, else the first known) and whether it sorts ascending."""
    combined = pd.concat([s for s in summaries.values() if not s.empty], ignore_index=True) \
        if any(not s.empty for s in summaries.values()) else pd.DataFrame()
    requested = settings.metric or loaded[0].metric or "loss"
    if settings.metric is not None or known_metrics(combined):
        try:
            metric = resolve_metric(requested, combined)
        except ReportError:
            if settings.metric is not None:
                raise
            metric = resolve_metric("loss", combined) if "loss" in known_metrics(combined) else \
                known_metrics(combined)[0]
    else:
        metric = requested.removeprefix("val_")
    mode = loaded[0].mode if (loaded[0].metric or "").removeprefix("val_") == metric else None
    return metric, metric_direction(metric, mode)


_Table = tuple[str, pd.DataFrame, str]
_Cards = list[tuple[str, list[tuple[str, str]]]]


def _experiment_section(experiment: Experiment, key: str, results: list[ResultsObject],
                        summary: pd.DataFrame, metric: str, ascending: bool, settings: ReportSettings,
                        jobs: list[_Job]) -> _html.Section:
    """One experiment's section: a table per task with its figures and cards, then the search's own
    figures (selection luck, ASHA, hyperparameters); the figures' jobs are appended to ``jobs``."""
    prefix = _slug(key)
    tables, figures, cards = _task_tables(key, results, summary, metric, ascending, settings, jobs)
    luck_html = ""
    if results:
        luck_html = _search_figures(experiment, results, tables, prefix, settings, jobs, figures)
    return _html.experiment_section(experiment, key, tables, figures, cards, settings.filters, luck_html)


def _task_tables(key: str, results: list[ResultsObject], summary: pd.DataFrame, metric: str,
                 ascending: bool, settings: ReportSettings, jobs: list[_Job]
                 ) -> tuple[list[_Table], list[tuple[str, str]], _Cards]:
    """Per task: the ranked table, its heat-tables (one per unit when several), the backtest of its top
    trials and their cards."""
    by_id = {r.trial_id: r for r in results}
    prefix = _slug(key)
    figures: list[tuple[str, str]] = []
    tables: list[_Table] = []
    cards: _Cards = []
    for task in [t.value for t in Task]:
        rows = summary[summary["task"] == task] if not summary.empty else summary
        if rows.empty:
            continue
        task_metric = _task_metric(metric, rows)
        task_ascending = ascending if task_metric == metric else metric_direction(task_metric)
        ranked = sort_summary(rows, task_metric, task_ascending)
        tables.append((task, ranked, task_metric))
        name = f"{prefix}_heat_{task}.png"
        jobs.append(_Job(name, "", _heat(ranked, task_metric, settings.heat_rows, task, task_ascending,
                                         f"{key} · all {task} trials")))
        figures.append((name, f"heat-table of every {task} trial, by {task_metric}; columns on the "
                              "validation (out-of-sample) rows, test_ columns on the test rows"))
        units = sorted(rows["unit"].astype(str).unique())
        if len(units) > 1:
            for unit in units:
                name = f"{prefix}_heat_{task}_{_slug(unit)}.png"
                jobs.append(_Job(name, "", _heat(ranked[ranked["unit"] == unit], task_metric,
                                                 settings.heat_rows, task, task_ascending,
                                                 f"{key} · unit {unit}")))
                figures.append((name, f"heat-table of unit {unit}"))
        top_ids = [t for t in ranked["trial_id"].head(settings.top) if t in by_id]
        top = [by_id[t] for t in top_ids]
        name = f"{prefix}_backtest_{task}.png"
        jobs.append(_Job(name, "", _bind(backtest_plot, top, settings.split, settings.cost)))
        figures.append((name, f"backtest of the top {len(top)} {task} trials on {settings.split}"))
        for rank, result in enumerate(top):
            cards.append((result.trial_id, _card_jobs(jobs, prefix, result, settings, full=rank == 0)))
    return tables, figures, cards


def _search_figures(experiment: Experiment, results: list[ResultsObject], tables: list[_Table], prefix: str,
                    settings: ReportSettings, jobs: list[_Job], figures: list[tuple[str, str]]) -> str:
    """Selection luck (PBO, and the daily IC of the regression trials), the ASHA picture with the rungs
    the scheduler decided (the experiment record's) and the hyperparameter plots; returns the luck
    block's HTML and appends the figures."""
    best = {f"best {task} trial by {task_metric}": str(ranked["trial_id"].iloc[0])
            for task, ranked, task_metric in tables}
    luck = selection_luck(results, cost=settings.cost, best=best, net=ranks_net(experiment.metric),
                          ranked_on=experiment.metric or None)
    pbo_name = f"{prefix}_pbo.png"
    jobs.append(_Job(pbo_name, "", _bind(pbo_plot, luck)))
    ic_name: str | None = None
    regression = [t for task, ranked, _ in tables if task == Task.REGRESSION.value
                  for t in ranked["trial_id"]]
    shown = {t: luck.daily_ic[t] for t in regression if t in luck.daily_ic}
    if shown:
        ic_name = f"{prefix}_ic.png"
        top_ic = dict(list(shown.items())[: settings.top])
        jobs.append(_Job(ic_name, "", _bind(ic_plot, top_ic, luck.split)))
    luck_html = _html.luck_block(luck, pbo_name, ic_name)
    max_t, grace, factor = asha_settings(experiment.meta)
    asha_metric = experiment.metric or "val_loss"
    name = f"{prefix}_asha.png"
    jobs.append(_Job(name, "", _bind_asha(results, asha_metric, (max_t, grace, factor), experiment.rungs)))
    figures.append((name, f"ASHA: {asha_metric} per epoch as each trial reported it, where trials "
                          "stopped"))
    for task, ranked, task_metric in tables:
        hps = varying_hyperparameters(ranked)
        if hps:
            name = f"{prefix}_hyperparameters_{task}.png"
            frame = ranked.drop(columns=[c for c in ranked.columns
                                         if c.startswith("hp.") and c not in hps])
            jobs.append(_Job(name, "", _bind(hyperparameter_plot, frame, task_metric)))
            figures.append((name, f"{task} trials: each varying hyperparameter against "
                                  f"{task_metric} (validation)"))
    return luck_html


def _write_page(loaded: Sequence[Experiment], sections: list[_html.Section], jobs: list[_Job], metric: str,
                ascending: bool, settings: ReportSettings) -> BuiltReport:
    """Render the figures, then write them and ``index.html`` into a temporary folder that replaces
    ``settings.out`` whole."""
    images, clipped = _render(jobs, _workers(settings))
    out = Path(settings.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        for name, data in images.items():
            (temp / name).write_bytes(data)
        encoded = {name: base64.b64encode(data).decode("ascii") for name, data in images.items()}
        missing = tuple(f"{e.name}: {line}" for e in loaded for line in e.missing)
        page = _html.page(loaded, sections, encoded, metric, ascending, settings, missing)
        (temp / "index.html").write_text(page, encoding="utf-8")
        _replace_directory(temp, out)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return BuiltReport(index=out / "index.html", figures=len(images), missing=missing, clipped=clipped)


def _heat(ranked: pd.DataFrame, metric: str, rows: int, task: str, ascending: bool,
          title: str) -> Callable[[], Figure]:
    return lambda: heat_table(ranked, metric, rows, task=task, ascending=ascending, title=title)


def _bind(function: Callable[..., Figure], *args: object) -> Callable[[], Figure]:
    return lambda: function(*args)


def _bind_asha(results: list[ResultsObject], metric: str,
               settings: tuple[int | None, int | None, int | None], milestones: Sequence[int]
               ) -> Callable[[], Figure]:
    """The ASHA picture with the rungs the experiment record holds (as the scheduler decided them)."""
    max_t, grace, factor = settings
    return lambda: asha_plot(results, metric, max_t=max_t, grace_period=grace, reduction_factor=factor,
                             milestones=milestones)


def _card_jobs(jobs: list[_Job], prefix: str, result: ResultsObject, settings: ReportSettings,
               full: bool) -> list[tuple[str, str]]:
    """A top trial's figures: its card, learning curves and ROC / threshold plots; the best trial of
    each task (``full``) also gets probability histograms and likelihood curves."""
    base = f"{prefix}_{_slug(result.trial_id)}"
    settings = replace(settings, split=shown_split(result, settings.split))
    made: list[tuple[str, Callable[[], Figure], str]] = []
    if result.task is Task.REGRESSION:
        made.append((f"{base}_card.png",
                     lambda: regressor_baseball_card(result, settings.split, cost=settings.cost),
                     "regressor baseball card"))
    else:
        made.append((f"{base}_card.png",
                     lambda: classifier_baseball_card(result, settings.split, cost=settings.cost),
                     "classifier baseball card"))
    if not result.curves.empty:
        made.append((f"{base}_curves.png", _bind(learning_curves, result), "learning curves"))
    if result.task is not Task.REGRESSION:
        made.append((f"{base}_roc.png", _bind(roc_threshold_plots, result, settings.split),
                     "ROC and precision / recall against threshold"))
    if result.task is not Task.REGRESSION and full:
        made.append((f"{base}_probabilities.png", _bind(probability_histograms, result, settings.split),
                     "probability histograms"))
        made.append((f"{base}_likelihood.png", _bind(likelihood_curves, result, settings.split),
                     "likelihood curves"))
    for name, make, caption in made:
        jobs.append(_Job(name, caption, make))
    return [(name, caption) for name, _, caption in made]


def _workers(settings: ReportSettings) -> int:
    return settings.workers if settings.workers is not None else default_workers()


def _summaries(results: list[ResultsObject], settings: ReportSettings) -> pd.DataFrame:
    """``summary_frame`` with the rows computed in worker processes, a block of trials each."""
    workers = _workers(settings)
    if workers <= 1 or len(results) < 50:
        return summary_frame(results, settings.cost)
    blocks = [results[i::workers] for i in range(workers)]
    parts = map_in_workers([_bind_rows(block, settings.cost) for block in blocks], workers)
    order = {r.trial_id: i for i, r in enumerate(results)}
    rows = sorted((row for part in parts for row in part), key=lambda row: order[row["trial_id"]])
    return pd.DataFrame(rows).reset_index(drop=True)


def _bind_rows(block: list[ResultsObject], cost: float | None) -> Callable[[], list[dict[str, object]]]:
    return lambda: [summary_row(r, cost) for r in block]


def _render(jobs: list[_Job], workers: int) -> tuple[dict[str, bytes], tuple[str, ...]]:
    """Draw and encode every figure, in worker processes; and every text that does not fit in its
    figure (``_style.overflowing_texts``), as ``"NAME: what"``."""
    tasks = [_bind_png(job) for job in jobs]
    drawn = map_in_workers(tasks, workers)
    images = {job.name: png for job, (png, _) in zip(jobs, drawn, strict=True)}
    clipped = tuple(f"{job.name}: {line}"
                    for job, (_, lines) in zip(jobs, drawn, strict=True) for line in lines)
    return images, clipped


def _bind_png(job: _Job) -> Callable[[], tuple[bytes, list[str]]]:
    return lambda: render_checked(job.make())


def _replace_directory(temp: Path, out: Path) -> None:
    """Move the finished ``temp`` to ``out``; an existing ``out`` is moved aside first, then removed."""
    old: Path | None = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.replace(out, old / out.name)
    os.replace(temp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
