"""``python -m atlas_ray.search SPEC [--dry-run] [--resume] [--address ADDR] [--storage DIR_OR_URI]
[--store ROOT] [--max-concurrent N] [--verbose] [--progress-every S]``: run a WorkSpec on Ray Tune with
ASHA. Safe to run again: an unfinished experiment is continued, a finished one is said to be finished
(its best trials printed) and nothing runs. The console shows one progress line (``_progress``);
``--verbose`` shows Ray Tune's own status table instead.

``python -m atlas_ray.search finalize EXPERIMENT --top K [--metric NAME]`` opens the sealed test set
once for the K best trials by validation metric and records it (``_finalize``).

A user mistake (a bad spec, missing data, nothing to resume) prints one ``error:`` line and exits 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from atlas_ray._cli import run_cli
from atlas_ray.errors import SpecError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m atlas_ray.search",
        description="Run a WorkSpec (a Python file defining SPEC = WorkSpec(...)) on Ray Tune with ASHA.",
        epilog="other commands: `python -m atlas_ray.search finalize EXPERIMENT --top K` opens the sealed "
        "test set once for the K best trials; `python -m atlas_ray.search harvest ssh://USER@HOST/PATH` "
        "copies an experiment's results from a head node with no shared storage (each has --help)",
    )
    parser.add_argument("spec", help="the spec module, e.g. specs/june.py")
    parser.add_argument(
        "--dry-run", action="store_true", help="validate, show featuresets and the trial plan"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="require an existing experiment (without it an unfinished one is continued anyway)",
    )
    parser.add_argument("--address", default=None, help="join a running Ray cluster ('auto' or host:port)")
    parser.add_argument(
        "--storage", default=None, help="experiments directory or URI (default ./experiments)"
    )
    parser.add_argument(
        "--store", default=None, help="market-data store root (default $ATLAS_STORE or ./atlas_store)"
    )
    parser.add_argument("--max-concurrent", type=int, default=None, help="at most N trials at once")
    parser.add_argument(
        "--verbose", action="store_true", help="Ray Tune's own status table and the workers' output"
    )
    parser.add_argument(
        "--progress-every",
        type=float,
        default=15.0,
        metavar="S",
        help="seconds between progress lines when the output is not a terminal (default 15)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # every sub-command as quiet as the search: no usage reports, no TensorFlow C++ notices
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if argv[:1] == ["harvest"]:
        from atlas_ray.search._harvest_cli import main as harvest_main

        return harvest_main(argv[1:])
    if argv[:1] == ["finalize"]:
        from atlas_ray.search._finalize import main as finalize_main

        return finalize_main(argv[1:])
    args = _parser().parse_args(argv)
    if not args.progress_every > 0:
        raise SpecError(
            f"The value of `--progress-every` is {args.progress_every}, but must be `--progress-every > 0`."
        )
    from atlas_ray.featurestore import MarketStore
    from atlas_ray.search._runner import DEFAULT_STORAGE, run
    from atlas_ray.search._spec_loader import load_spec

    spec = load_spec(args.spec)
    run(
        spec,
        storage=args.storage or DEFAULT_STORAGE,
        store=MarketStore(args.store),
        resume=True if args.resume else None,
        address=args.address,
        max_concurrent=args.max_concurrent,
        dry_run=args.dry_run,
        spec_path=args.spec,
        verbose=args.verbose,
        every=args.progress_every,
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
