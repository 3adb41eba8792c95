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

import pandas as pd

from atlas_ray.report._load import Experiment
from atlas_ray.report._summary import heat_columns

if TYPE_CHECKING:
    from atlas_ray.report._build import ReportSettings

__all__ = ["Section", "comparison_section", "experiment_section", "page"]

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
.scroll { max-height: 32em; overflow: auto; display: inline-block; }
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
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        if math.isnan(number):
            return ("-", "")
        shown = f"{number:.4g}" if abs(number) >= 1e-3 or number == 0 else f"{number:.3e}"
        return (shown, repr(number))
    return (str(value), str(value))


def _table(frame: pd.DataFrame, columns: Sequence[str], text_columns: set[str], links: set[str],
           kind: str = "trials") -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    lines = []
    for _, row in frame.iterrows():
        cells = []
        for column in columns:
            value = row.get(column)
            shown, key = _fmt(value)
            css = ' class="text"' if column in text_columns else ""
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
) -> Section:
    meta = experiment.meta or {}
    facts = [("directory", experiment.uri), ("spec", meta.get("spec", "-")),
             ("created", meta.get("created", "-")), ("finished", meta.get("finished") or "not finished"),
             ("search metric", f"{meta.get('metric', '-')} ({meta.get('mode', '-')})"),
             ("trials read", len(experiment.results))]
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
    for trial, images in cards:
        parts.append(f'<h3 id="trial-{_e(trial)}">Trial {_e(trial)}</h3>')
        parts.append("".join(_figure(n, c) for n, c in images))
    return Section(f"Experiment {key}", "\n".join(parts))


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
            f"task on the {_e(settings.split)} split; backtest cost {settings.cost:g} per unit of position "
            f"changed. Written {stamp}.</p>")
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
