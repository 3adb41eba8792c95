"""``python -m atlas_ray.featurestore``: ingest market-data files and show what a store holds.

    python -m atlas_ray.featurestore ingest PATH [PATH ...] --exchange NAME --pair PAIR [--format F]
                                           [--store ROOT]
    python -m atlas_ray.featurestore show [--store ROOT]

The store defaults to ``$ATLAS_STORE``, else ``./atlas_store``. ``ingest`` prints one report line per
file; a broken file is one ``error:`` line on stderr and exit status 2, with the store unchanged (all
files are parsed before any is written).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from atlas_ray._cli import run_cli
from atlas_ray.errors import IngestError
from atlas_ray.featurestore._formats import FORMATS
from atlas_ray.featurestore._inventory import format_inventory, inventory
from atlas_ray.featurestore._store import MarketStore, default_root

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake as one ``IngestError`` line (exit 2 via ``run_cli``)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise IngestError(f"{self.prog}: {message}")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m atlas_ray.featurestore", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    ingest = commands.add_parser("ingest", help="ingest market-data files into the store")
    ingest.add_argument("paths", nargs="+", metavar="PATH")
    ingest.add_argument("--exchange", required=True)
    ingest.add_argument("--pair", required=True)
    ingest.add_argument("--format", choices=sorted(FORMATS), default=None)
    ingest.add_argument("--store", default=None, help=f"store root (default {default_root()})")
    show = commands.add_parser("show", help="list exchanges, pairs, kinds, ranges, coverage and gaps")
    show.add_argument("--store", default=None, help=f"store root (default {default_root()})")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    store = MarketStore(args.store)
    if args.command == "ingest":
        for report in store.ingest_many(
            args.paths, exchange=args.exchange, pair=args.pair, format=args.format
        ):
            print(report)
        return 0
    print(format_inventory(store, inventory(store)))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
