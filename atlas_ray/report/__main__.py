"""``python -m atlas_ray.report EXPERIMENT [EXPERIMENT ...] [--out DIR] [--metric NAME] [--top K]
[--filter unit=NAME] [--split validation] [--cost 0.0001]`` (``--cost``: a flat cost instead of the
experiment's cost model)

Writes the PNGs and one self-contained ``index.html`` into ``--out`` (default
``./reports/<experiment name>``) and prints where it is. EXPERIMENT is a directory or a pyarrow
filesystem URI. What is missing from a half-finished experiment is printed and shown on the page. A
missing experiment, an unknown metric or a bad option is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from atlas_ray._cli import run_cli
from atlas_ray.report._build import ReportSettings, build_report, default_out
from atlas_ray.report._load import load_experiment_for_report
from atlas_ray.report._summary import DEFAULT_COST, ReportError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m atlas_ray.report", description=__doc__.split("\n\n")[1])
    parser.add_argument("experiments", nargs="+", metavar="EXPERIMENT", help="experiment directory or URI")
    parser.add_argument("--out", type=Path, default=None, help="output directory (default ./reports/<name>)")
    parser.add_argument("--metric", default=None, help="metric to rank by (default: the search's metric)")
    parser.add_argument("--top", type=int, default=5, help="baseball cards per experiment and task")
    parser.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                        help="keep trials whose unit, model, status, task or experiment matches")
    parser.add_argument("--split", default="validation",
                        help="split the cards show (default validation: oos rows of walk-forward trials; "
                             "test: finalised trials only)")
    parser.add_argument("--cost", type=float, default=DEFAULT_COST,
                        help="a flat backtest cost per unit of position changed, in log return (default: "
                             "each experiment's cost model, from its spec)")
    return parser


def _filters(items: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise ReportError(
                f"The value of `--filter` is {item!r}, but must be `KEY=VALUE`, e.g. unit=NAME."
            )
        out[key.strip()] = value.strip()
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    filters = _filters(args.filter)
    experiments = [load_experiment_for_report(uri) for uri in args.experiments]
    out = args.out if args.out is not None else default_out([e.name for e in experiments])
    settings = ReportSettings(out=out, metric=args.metric, top=args.top, filters=filters, split=args.split,
                              cost=args.cost)
    for experiment in experiments:
        trials = len(experiment.results)
        print(f"{experiment.name}: {trials} trial{'s' if trials != 1 else ''} read from {experiment.uri}")
        for line in experiment.missing:
            print(f"  missing: {line}")
    built = build_report(experiments, settings)
    print(f"report: {built.index.resolve()} ({built.figures} figures)")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
