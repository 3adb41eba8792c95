"""The one self-contained HTML page: images embedded as base64 PNGs (the same PNGs sit beside it),
tables sortable by clicking a header (a few lines of inline JavaScript, no CDN, nothing fetched)."""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from atlas_ray.report._load import Experiment
from atlas_ray.report._summary import heat_columns, integrity_facts

if TYPE_CHECKING:
    from atlas_ray.report._build import ReportSettings
    from atlas_ray.report._luck import SelectionLuck

__all__ = ["Section", "comparison_section", "experiment_section", "luck_block", "page"]

#: What each selection-luck statistic means for the reader, one sentence each (shown on the page).
MEANINGS = {
    "sharpe": "The Sharpe ratio is the mean of a trial's backtest return per row divided by its "
              "standard deviation: return per unit of risk, here per row and not annualised unless the "
              "column says so.",
    "dsr": "The deflated Sharpe ratio is the probability that this trial's true Sharpe ratio is above zero "
           "once the luck of keeping the best of all these trials, the skew and fat tails of its returns "
           "and the shortness of the record are allowed for: near 1 the edge survives the search, below "
           "0.95 it may well be luck.",
    "pbo": "The probability of backtest overfitting is how often the trial that looks best on one half of "
           "the out-of-sample rows ranks at or below the median of all trials on the other half: near 0 "
           "picking the best generalises, near 0.5 or above it is no better than picking a trial at random.",
    "ic": "IC (Pearson) and Rank IC (Spearman) are the correlation between a regressor's prediction and the "
          "realised value within each UTC day: the mean says how much the predictions order the outcomes "
          "on a typical day, and ICIR = mean / standard deviation over the days says how steadily (as qlib "
          "reports them).",
}

_SORT_JS = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  var headers = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(headers, function (th, col) {
    th.addEventListener('click', function () {
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var ascending = th.getAttribute('data-dir') !== 'asc';
      Array.prototype.forEach.call(headers, function (h) { h.removeAttribute('data-dir'); });
      th.setAttribute('data-dir', ascending ? 'asc' : 'desc');
      function key(row) {
        var v = row.cells[col].getAttribute('data-v');
        var n = (v === null || v === '') ? NaN : Number(v);
        return {n: n, s: v === null ? row.cells[col].textContent : v};
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        var xn = !isNaN(x.n), yn = !isNaN(y.n);
        if (xn && yn) { return ascending ? x.n - y.n : y.n - x.n; }
        if (xn !== yn) { return xn ? -1 : 1; }
        var c = x.s.localeCompare(y.s);
        return ascending ? c : -c;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""

_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.5em; } h2 { border-bottom: 2px solid #446; padding-bottom: .2em; margin-top: 2em; }
h3 { margin-top: 1.5em; }
table.sortable, table.plain { border-collapse: collapse; font-size: 12px; margin: .5em 0; }
table.sortable th, table.sortable td, table.plain th, table.plain td {
  border: 1px solid #ccd; padding: 2px 6px; text-align: right; }
table.sortable th { background: #dde6f0; cursor: pointer; user-select: none; position: sticky; top: 0; }
table.sortable th[data-dir=asc]::after { content: " \\25B2"; }
table.sortable th[data-dir=desc]::after { content: " \\25BC"; }
td.text { text-align: left; } tr.degenerate td { background: #fbe3e3; }
.missing { background: #fff4d6; border: 1px solid #e0b84a; padding: .5em 1em; }
figure { margin: 1em 0; } figcaption { font-size: 12px; color: #555; }
img { max-width: 100%; border: 1px solid #eee; }
.scroll { max-height: 32em; max-width: 100%; overflow: auto; display: inline-block; }
.scroll table.sortable th:first-child, .scroll table.sortable td:first-child {
  position: sticky; left: 0; background: #fff; z-index: 1; }
.scroll table.sortable th:first-child { background: #dde6f0; z-index: 2; }
table.sortable td { white-space: nowrap; }
table.sortable td.text, table.plain td.text { text-align: left; }
table.sortable td.wrap { text-align: left; white-space: normal; min-width: 14em; max-width: 22em; }
p.data { font-size: 13px; background: #eef3f8; border-left: 4px solid #446; padding: .4em .8em; }
p.means { font-size: 13px; color: #333; max-width: 60em; }
.side { display: flex; gap: 1em; flex-wrap: wrap; }
"""


@dataclass(frozen=True)
class Section:
    """A block of the page: its HTML, with ``{{img:NAME}}`` where figure NAME goes."""

    title: str
    body: str


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _fmt(value: Any) -> tuple[str, str]:
    """(shown text, sort key) of a cell."""
    if isinstance(value, bool):
        return ("yes" if value else "", "1" if value else "0")
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return (f"{int(value)}", repr(float(value)))
    if isinstance(value, float | np.floating):
        number = float(value)
        if math.isnan(number):
            return ("-", "")
        shown = f"{number:.4g}" if abs(number) >= 1e-3 or number == 0 else f"{number:.3e}"
        return (shown, repr(number))
    return (str(value), str(value))


#: Text columns whose long values wrap instead of widening the table.
_WRAPPED = {"hyperparameters"}


def _table(frame: pd.DataFrame, columns: Sequence[str], text_columns: set[str], links: set[str],
           kind: str = "trials") -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    lines = []
    for _, row in frame.iterrows():
        cells = []
        for column in columns:
            value = row.get(column)
            shown, key = _fmt(value)
            css = ""
            if column in text_columns:
                css = ' class="wrap"' if column in _WRAPPED else ' class="text"'
            inner = _e(shown)
            if column == "trial_id" and str(value) in links:
                inner = f'<a href="#trial-{_e(value)}">{inner}</a>'
            cells.append(f'<td{css} data-v="{_e(key)}">{inner}</td>')
        degenerate = ' class="degenerate"' if bool(row.get("degenerate", False)) else ""
        lines.append(f"<tr{degenerate}>{''.join(cells)}</tr>")
    return (f'<div class="scroll"><table class="sortable {kind}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(lines)}</tbody></table></div>")


def _figure(name: str, caption: str) -> str:
    return (f'<figure><a href="{_e(name)}">{{{{img:{name}}}}}</a>'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def comparison_section(summaries: Mapping[str, pd.DataFrame], metric: str, ascending: bool,
                       figure: str) -> Section:
    rows = []
    for name, summary in summaries.items():
        counts = summary["status"].value_counts() if not summary.empty else pd.Series(dtype="int64")
        best_id, best = "-", math.nan
        if not summary.empty and metric in summary.columns and summary[metric].notna().any():
            ranked = summary.sort_values(metric, ascending=ascending, na_position="last")
            best_id, best = str(ranked["trial_id"].iloc[0]), float(ranked[metric].iloc[0])
        rows.append({
            "experiment": name, "trials": len(summary), "completed": int(counts.get("completed", 0)),
            "stopped": int(counts.get("stopped", 0)), "failed": int(counts.get("failed", 0)),
            "units": summary["unit"].nunique() if not summary.empty else 0,
            "best trial": best_id, f"best {metric}": best,
        })
    frame = pd.DataFrame(rows)
    body = _table(frame, list(frame.columns), {"experiment", "best trial"}, set(), kind="experiments")
    body += _figure(figure, f"every trial's {metric} per experiment and work unit; star = best")
    return Section("Experiments side by side", body)


def experiment_section(
    experiment: Experiment,
    key: str,
    tables: Sequence[tuple[str, pd.DataFrame, str]],
    figures: Sequence[tuple[str, str]],
    cards: Sequence[tuple[str, Sequence[tuple[str, str]]]],
    filters: Mapping[str, str],
    luck: str = "",
) -> Section:
    meta = experiment.meta or {}
    facts = [("directory", experiment.uri), ("spec", meta.get("spec", "-")),
             ("created", meta.get("created", "-")), ("finished", meta.get("finished") or "not finished"),
             ("search metric", f"{meta.get('metric', '-')} ({meta.get('mode', '-')})"),
             ("trials read", len(experiment.results)), *integrity_facts(meta)]
    if filters:
        facts.append(("filter", ", ".join(f"{k}={v}" for k, v in filters.items())))
    parts = ['<table class="plain">' + "".join(
        f'<tr><th>{_e(k)}</th><td class="text">{_e(v)}</td></tr>' for k, v in facts) + "</table>"]
    if experiment.missing:
        items = "".join(f"<li>{_e(line)}</li>" for line in experiment.missing)
        parts.append(f'<div class="missing"><b>Missing or incomplete</b><ul>{items}</ul></div>')
    linked = {trial for trial, _ in cards}
    for task, frame, metric in tables:
        classes = [c for value in frame["classes"].dropna().unique() for c in str(value).split("|") if c]
        classes = list(dict.fromkeys(classes))
        columns = ["trial_id", "unit", "model", "status", "epochs", "hyperparameters", "degenerate",
                   *heat_columns(frame, task, classes)]
        parts.append(f"<h3>{_e(task)} trials ({len(frame)}), best first by {_e(metric)}; click a header "
                     "to sort</h3>")
        parts.append(_table(frame, columns, {"trial_id", "unit", "model", "status", "hyperparameters"},
                            linked))
    parts.append('<div class="side">' + "".join(_figure(n, c) for n, c in figures) + "</div>")
    if luck:
        parts.append(luck)
    for trial, images in cards:
        parts.append(f'<h3 id="trial-{_e(trial)}">Trial {_e(trial)}</h3>')
        parts.append("".join(_figure(n, c) for n, c in images))
    return Section(f"Experiment {key}", "\n".join(parts))


def _when(stamp: object) -> str:
    if stamp is None or (isinstance(stamp, float) and math.isnan(stamp)):
        return "-"
    return pd.Timestamp(stamp).strftime("%Y-%m-%d %H:%M UTC")  # type: ignore[arg-type]


def _charged(cost: float | None) -> str:
    if cost is None:
        return "each experiment's cost model (its spec's, recorded with each trial; see the figures)"
    return f"a flat {cost:g} per unit of position changed (--cost)"


def luck_block(luck: SelectionLuck, pbo_figure: str | None, ic_figure: str | None) -> str:
    """The "how much of the best is luck" part of an experiment's section: which data, the deflated
    Sharpe ratios beside the plain ones, the PBO with its logit histogram, and the regressors' IC; one
    sentence per statistic saying what it means."""
    used = len(luck.sharpes)
    if used:
        span = f"from {_when(luck.sharpes['start'].min())} to {_when(luck.sharpes['end'].max())}"
    else:
        span = "none"
    parts = ['<h3 id="selection-luck">How much of the best result is selection luck</h3>',
             f'<p class="data">Data: the <b>{_e(luck.split)}</b> rows of each trial\'s predictions '
             f"({'walk-forward out-of-sample predictions' if luck.split == 'oos' else 'the validation part'}"
             f"), {used} of {luck.tried} trials with a backtest there, rows {span}; every figure in this "
             f"part is computed on them (backtest: log return per row, {_e(luck.returns)}). "
             "The test rows are never used here.</p>"]
    if luck.deflated:
        frame = pd.DataFrame([{
            "trial": d.trial_id, "shown as": d.role, "Sharpe (per row)": d.sharpe,
            "Sharpe (annualised)": d.annualised, "rows": d.rows, "skewness": d.skew, "kurtosis": d.kurtosis,
            "trials N": d.trials, "variance of the trials' Sharpe": d.sharpe_variance,
            "expected best Sharpe of N skill-less trials": d.expected_max, "deflated Sharpe ratio": d.dsr,
        } for d in luck.deflated])
        parts.append("<h4>Deflated Sharpe ratio (Bailey and López de Prado, 2014)</h4>")
        parts.append(_table(frame, list(frame.columns), {"trial", "shown as"}, set(), kind="deflated"))
        parts.append(f'<p class="means">{_e(MEANINGS["sharpe"])} {_e(MEANINGS["dsr"])}</p>')
    parts.append("<h4>Probability of backtest overfitting (CSCV; Bailey, Borwein, López de Prado and Zhu, "
                 "2015)</h4>")
    if luck.pbo is not None:
        result = luck.pbo
        parts.append(f'<p class="data">PBO = <b>{result.pbo:.3f}</b> over {result.combinations:,} splits of '
                     f"{result.rows} rows ({_when(luck.pbo_start)} to {_when(luck.pbo_end)}) in "
                     f"{result.partitions} blocks, {result.trials} trials, performance = Sharpe ratio of "
                     f"the backtest return ({_e(luck.returns)}).</p>")
    else:
        parts.append('<p class="data">not computed: see the notes below.</p>')
    parts.append(f'<p class="means">{_e(MEANINGS["pbo"])}</p>')
    if pbo_figure:
        parts.append(_figure(pbo_figure, f"CSCV logits over the {luck.split} rows; red: the in-sample winner "
                                         "at or below the out-of-sample median"))
    if not luck.information.empty:
        parts.append("<h4>Information coefficient of the regressors</h4>")
        info = luck.information
        parts.append(_table(info, list(info.columns), {"trial_id", "unit", "model"}, set(),
                            kind="information"))
        parts.append(f'<p class="means">{_e(MEANINGS["ic"])}</p>')
        if ic_figure:
            parts.append(_figure(ic_figure, f"IC and Rank IC per UTC day on the {luck.split} rows, top "
                                            "regressors"))
    if luck.notes:
        items = "".join(f"<li>{_e(note)}</li>" for note in luck.notes)
        parts.append(f'<div class="missing"><b>Notes</b><ul>{items}</ul></div>')
    return "\n".join(parts)


def page(
    experiments: Sequence[Experiment],
    sections: Sequence[Section],
    images: Mapping[str, str],
    metric: str,
    ascending: bool,
    settings: ReportSettings,
    missing: Sequence[str],
) -> str:
    """The whole page; ``{{img:NAME}}`` placeholders become embedded base64 images."""
    names = ", ".join(e.name for e in experiments)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    head = (f"<h1>atlas_ray report: {_e(names)}</h1><p>Ranked by <b>{_e(metric)}</b> "
            f"({'lower' if ascending else 'higher'} is better); cards for the top {settings.top} trials per "
            f"task on the {_e(settings.split)} split; backtests charge "
            f"{_e(_charged(settings.cost))}. Written {stamp}.</p>")
    if missing:
        head += (f'<p class="missing">{len(missing)} things are missing or incomplete; '
                 "see each experiment.</p>")
    body = "\n".join(f"<h2>{_e(s.title)}</h2>\n{s.body}" for s in sections)

    def embed(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in images:
            return f"<p>figure {_e(name)} was not drawn</p>"
        return f'<img alt="{_e(name)}" src="data:image/png;base64,{images[name]}">'

    body = re.sub(r"\{\{img:([^}]+)\}\}", embed, body)
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>atlas_ray report: {_e(names)}</title><style>{_CSS}</style></head>"
            f"<body>{head}\n{body}\n<script>{_SORT_JS}</script>"
            "</body></html>\n")
