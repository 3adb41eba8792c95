"""``python -m atlas_ray.featurestore``: ingest market-data files and show what a store holds.

    python -m atlas_ray.featurestore ingest PATH [PATH ...] [--exchange NAME] [--pair PAIR] [--format F]
                                           [--strict] [--max-jump X] [--store ROOT]
    python -m atlas_ray.featurestore ingest [mysql://USER:PASS@HOST[:PORT]/DB] --gds [--exchange A,B]
                                           [--pair PAIR] [--gds-option-file FILE] [--follow]
                                           [--interval S] [--store ROOT]
    python -m atlas_ray.featurestore show [--store ROOT]

The store defaults to ``$ATLAS_STORE``, else ``./atlas_store``. ``ingest`` prints one report line per
file (what it read, wrote, refused and fixed, by reason; the full report is kept beside the data and
``show`` lists it); a broken file is one ``error:`` line on stderr and exit status 2, with the store
unchanged (all files are parsed before any is written). ``--strict`` refuses a file on its first
defective row instead of refusing (or fixing) the row; ``--max-jump`` sets how many times the rolling
median a price may be before it is refused (default 5). A file whose own columns name its market
(bitFlyer's ``product_code``, CryptoDataDownload's ``Symbol``) is checked against ``--exchange`` /
``--pair`` (another market refuses the file), and where one is left out the file's own is taken.
With ``--gds`` it reads a Gryphon Data Service database
instead (the URL, else ``$ATLAS_GDS_URL``; see ``atlas_ray.featurestore._gds._gds``), only rows past the
watermark kept in the store, and prints one report line per table and exchange / pair; ``--follow``
keeps reading every ``--interval`` seconds until Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from atlas_ray._cli import run_cli
from atlas_ray.errors import IngestError
from atlas_ray.featurestore._formats import FORMATS
from atlas_ray.featurestore._store._ingest_reports import kept_reports
from atlas_ray.featurestore._store._inventory import format_inventory, inventory
from atlas_ray.featurestore._store._store import MarketStore, default_root
from atlas_ray.featurestore._store._validate_rows import RowChecks

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake as one ``IngestError`` line (exit 2 via ``run_cli``)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise IngestError(f"{self.prog}: {message}")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m atlas_ray.featurestore", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    ingest = commands.add_parser("ingest", help="ingest market-data files into the store")
    ingest.add_argument("paths", nargs="*", metavar="PATH")
    ingest.add_argument(
        "--exchange",
        help="the exchange (default: the file's own, if it names one; with --gds: only these, a,b,...)",
    )
    ingest.add_argument(
        "--pair",
        help="the pair (default: the file's own, if it names one; with --gds: of order books whose exchange "
        "names none)",
    )
    _add_gds_options(ingest)
    ingest.add_argument("--format", choices=sorted(FORMATS), default=None)
    ingest.add_argument("--strict", action="store_true", help="refuse a file on its first defective row")
    ingest.add_argument(
        "--max-jump",
        type=float,
        default=None,
        help="refuse prices more than this many times off the rolling median (default 5)",
    )
    ingest.add_argument("--store", default=None, help=f"store root (default {default_root()})")
    show = commands.add_parser("show", help="list exchanges, pairs, kinds, ranges, coverage and gaps")
    show.add_argument("--store", default=None, help=f"store root (default {default_root()})")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    store = MarketStore(args.store)
    if args.command == "ingest" and args.gds:
        return _ingest_gds(store, args)
    if args.command == "ingest":
        _require_file_options(args)
        checks = _checks(args.max_jump)
        reports = store.ingest_many(
            args.paths,
            exchange=args.exchange,
            pair=args.pair,
            format=args.format,
            checks=checks,
            strict=args.strict,
        )
        for report in reports:
            print(report)
        return 0
    print(format_inventory(store, inventory(store)))
    kept = kept_reports(store.root)
    if kept:
        # where the reports are, once; then one line a report
        print(f"ingest reports ({len(kept)}), kept in {store.root}/exchange=E/pair=P/_reports/:")
        for item in kept:
            print(f"  {item.summary}")
    return 0


def _checks(max_jump: float | None) -> RowChecks:
    if max_jump is None:
        return RowChecks()
    try:
        return RowChecks(max_jump=max_jump)
    except ValueError as error:
        raise IngestError(f"python -m atlas_ray.featurestore ingest: --max-jump: {error}") from None


def _add_gds_options(ingest: argparse.ArgumentParser) -> None:
    ingest.add_argument("--gds", action="store_true", help="PATH is a GDS database URL (mysql://...)")
    ingest.add_argument("--gds-option-file", default=None, help="MySQL option file ([client] password=...)")
    ingest.add_argument(
        "--follow", action="store_true", help="with --gds: keep reading as the database fills"
    )
    ingest.add_argument("--interval", type=float, default=5.0, help="with --follow: seconds between reads")


def _require_file_options(args: argparse.Namespace) -> None:
    # --exchange / --pair may be left out for a file that names its market (checked by the ingest).
    missing = ["PATH"] if not args.paths else []
    if missing:
        raise IngestError(
            f"python -m atlas_ray.featurestore ingest: the following arguments are required: "
            f"{', '.join(missing)}"
        )
    for flag, used in (("--follow", args.follow), ("--gds-option-file", args.gds_option_file)):
        if used:
            raise IngestError(f"python -m atlas_ray.featurestore ingest: {flag} needs --gds")


def _ingest_gds(store: MarketStore, args: argparse.Namespace) -> int:
    from atlas_ray.featurestore._gds._gds import follow, ingest_gds, parse_gds_url

    if len(args.paths) > 1:
        raise IngestError(f"ingest --gds: give one database URL, not {len(args.paths)} arguments")
    for flag, used in (("--strict", args.strict), ("--max-jump", args.max_jump is not None)):
        if used:
            raise IngestError(f"ingest --gds: {flag} is for files; the GDS ingest uses the default checks")
    if args.interval <= 0:
        raise IngestError(f"ingest --gds: the value of --interval is {args.interval}, but must be > 0")
    url = parse_gds_url(args.paths[0] if args.paths else None, option_file=args.gds_option_file)
    exchanges = [e for e in (args.exchange or "").split(",") if e.strip()] or None
    if not args.follow:
        done = ingest_gds(store, url, exchanges=exchanges, pair=args.pair)
        for report in done.reports:
            print(report)
        if not done.reports:
            print(f"gds {url.masked}: nothing new past the watermark")
        return 0
    try:
        for round in follow(store, url, interval=args.interval, exchanges=exchanges, pair=args.pair):
            for report in round.reports:
                print(report, flush=True)
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
