"""Run independent report work (drawing figures, summarising trials) in forked worker processes.

matplotlib is not thread-safe and drawing is CPU-bound Python, so threads do not help; forked
processes inherit the loaded trials and the job list without pickling them, and send back only the
results (PNG bytes, summary rows). Where ``fork`` is not available, or one worker is asked for, the
work runs in this process.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["default_workers", "map_in_workers"]

_TASKS: Sequence[Callable[[], Any]] = ()


def default_workers() -> int:
    """The CPUs this process may use, at most 8."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        count = os.cpu_count() or 1
    return max(1, min(8, count))


def _run(index: int) -> Any:
    return _TASKS[index]()


def map_in_workers(tasks: Sequence[Callable[[], Any]], workers: int) -> list[Any]:
    """``[task() for task in tasks]``, spread over ``workers`` forked processes, in order."""
    global _TASKS
    if workers <= 1 or len(tasks) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return [task() for task in tasks]
    _TASKS = tasks
    try:
        context = multiprocessing.get_context("fork")
        with context.Pool(processes=min(workers, len(tasks))) as pool:
            return pool.map(_run, range(len(tasks)), chunksize=1)
    finally:
        _TASKS = ()
