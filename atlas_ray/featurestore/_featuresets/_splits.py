"""Time splits (train / validation / test) and walk-forward folds, with purge gaps.

Rows are split by time, in order, never shuffled. Between two consecutive parts ``purge`` rows are
left out, so that no label of an earlier part (which looks ``horizon`` rows ahead) overlaps the rows
of a later part. ``FeatureLabelSet.prepare`` uses the label's horizon as the default purge.

Positions are computed on the built frame's rows (``0 .. n-1``); as the frame holds only valid rows
in time order, ``purge`` rows left out mean at least ``purge + 1`` bars between the last row of one
part and the first row of the next.

``split_positions``: ``train`` takes the first ``floor(n * train)`` rows, validation the next
``floor(n * (train + validation)) - floor(n * train)`` less the purge at its start, test the rest less
the purge at its start.

``walk_forward_positions``: the rows are cut into ``folds + 1`` equal blocks; fold ``i`` (1-based)
tests on block ``i`` and trains on every row before it (an expanding window), the last
``validation`` share of those rows being its validation part; purge gaps sit before the validation
part and before the test block. Test blocks of the folds are disjoint and in time order.

``WalkForward`` (the search's walk-forward split) and ``walk_forward_split``: the last ``test`` share
of the rows is a sealed test block; the rows before it less ``purge`` rows (the research range) are
cut into ``folds + 1`` equal blocks at ``e_0 .. e_{folds+1}``. Fold
``i`` (1-based) validates on block ``i``: rows ``[e_i + purge, e_{i+1} - embargo)`` (``purge`` rows
after its training window, ``embargo`` rows left out at the block's end, so the next fold's
validation never starts where this one ended and the test block starts ``embargo + purge`` rows after
the last validation row). Its training window ends at ``e_i``; it starts at row 0 (``expanding``) or
at ``e_{i-1}`` (``rolling``: one block, as long as fold 1's window). Every fold's validation rows come
after all its training rows, and the test block after every fold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from atlas_ray.errors import FeatureError

__all__ = [
    "PartSlices",
    "TimeSplit",
    "WalkForward",
    "split_positions",
    "walk_forward_positions",
    "walk_forward_split",
]

WINDOWS: tuple[str, ...] = ("expanding", "rolling")


def _check_share(field: str, value: float, *, allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    low_ok = ok and (value >= 0.0 if allow_zero else value > 0.0)
    if not (low_ok and value < 1.0):
        rule = "0 <= " if allow_zero else "0 < "
        raise FeatureError(f"The value of `{field}` is {value!r}, but must satisfy `{rule}{field} < 1`.")


def _check_purge(purge: int | None) -> None:
    if purge is not None and (isinstance(purge, bool) or not isinstance(purge, int) or purge < 0):
        raise FeatureError(
            f"The value of `purge` is {purge!r}, but must be `None` or an integer `purge >= 0`."
        )


@dataclass(frozen=True)
class TimeSplit:
    """Shares of the rows for train, validation and test (summing to 1); ``purge`` rows between parts.

    ``purge=None`` means the label's horizon (rows of look-forward).
    """

    train: float = 0.7
    validation: float = 0.15
    test: float = 0.15
    purge: int | None = None

    def __post_init__(self) -> None:
        _check_share("train", self.train)
        _check_share("validation", self.validation)
        _check_share("test", self.test)
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-9:
            raise FeatureError(
                f"The shares train={self.train}, validation={self.validation}, test={self.test} sum to "
                f"{total:g}, but must sum to 1."
            )
        _check_purge(self.purge)


@dataclass(frozen=True)
class WalkForward:
    """Walk-forward folds and a sealed test block after them (see the module docstring).

    ``folds``: how many train / validation folds (each trial trains on every one); ``test``: the share
    of the rows in the final test block; ``purge``: rows left out after each training window and
    before the test block (``None``: the label's horizon); ``embargo``: rows left out after each
    validation block; ``window``: ``"expanding"`` (train from the first row) or ``"rolling"`` (train
    on the one block before the validation block).
    """

    folds: int = 3
    test: float = 0.15
    purge: int | None = None
    embargo: int = 0
    window: Literal["expanding", "rolling"] = "expanding"

    def __post_init__(self) -> None:
        if isinstance(self.folds, bool) or not isinstance(self.folds, int) or self.folds < 1:
            raise FeatureError(
                f"The value of `folds` is {self.folds!r}, but must be an integer `folds >= 1`."
            )
        _check_share("test", self.test)
        _check_purge(self.purge)
        if isinstance(self.embargo, bool) or not isinstance(self.embargo, int) or self.embargo < 0:
            raise FeatureError(
                f"The value of `embargo` is {self.embargo!r}, but must be an integer `embargo >= 0`."
            )
        if self.window not in WINDOWS:
            raise FeatureError(
                f"The value of `window` is {self.window!r}, but must be one of {list(WINDOWS)}."
            )


@dataclass(frozen=True)
class PartSlices:
    """Row positions (half-open ``slice``) of the three parts of one split or fold."""

    train: slice
    validation: slice
    test: slice

    def sizes(self) -> tuple[int, int, int]:
        return tuple(s.stop - s.start for s in (self.train, self.validation, self.test))  # type: ignore[return-value]


def _checked(parts: PartSlices, n: int, purge: int, what: str) -> PartSlices:
    sizes = parts.sizes()
    if min(sizes) <= 0:
        raise FeatureError(
            f"The {what} of {n} rows with a purge of {purge} rows leaves parts of {list(sizes)} rows "
            "(train, validation, test), but every part needs at least one row: build a longer range."
        )
    return parts


def split_positions(n: int, split: TimeSplit, purge: int) -> PartSlices:
    """The train / validation / test row slices of ``n`` rows (``purge`` rows left out between parts)."""
    _check_purge(purge)
    a = math.floor(n * split.train)
    b = math.floor(n * (split.train + split.validation))
    parts = PartSlices(slice(0, a), slice(min(a + purge, b), b), slice(min(b + purge, n), n))
    return _checked(parts, n, purge, "time split")


def walk_forward_positions(n: int, folds: int, purge: int, validation: float) -> list[PartSlices]:
    """Expanding-window folds: fold ``i`` tests on block ``i`` of ``folds + 1`` equal blocks."""
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 1:
        raise FeatureError(f"The value of `folds` is {folds!r}, but must be an integer `folds >= 1`.")
    _check_share("validation", validation)
    _check_purge(purge)
    edges = [math.floor(n * k / (folds + 1)) for k in range(folds + 2)]
    out = []
    for i in range(1, folds + 1):
        before, test_end = edges[i], edges[i + 1]
        v = before - math.floor(before * validation)
        parts = PartSlices(
            slice(0, v), slice(min(v + purge, before), before), slice(min(before + purge, test_end), test_end)
        )
        out.append(_checked(parts, n, purge, f"walk-forward fold {i} of {folds}"))
    return out


def walk_forward_split(n: int, split: WalkForward, purge: int) -> tuple[list[PartSlices], slice]:
    """The folds of ``split`` over ``n`` rows (each fold's ``test`` slice is the sealed test block)
    and the test block itself; ``purge`` is the purge in rows (``split.purge`` resolved)."""
    _check_purge(purge)
    test_rows = math.floor(n * split.test)
    test = slice(n - test_rows, n)
    research = max(0, n - test_rows - purge)
    k = split.folds
    edges = [math.floor(research * j / (k + 1)) for j in range(k + 2)]
    folds = []
    for i in range(1, k + 1):
        start = 0 if split.window == "expanding" else edges[i - 1]
        first = min(edges[i] + purge, edges[i + 1])
        validation = slice(first, max(first, edges[i + 1] - split.embargo))
        parts = PartSlices(slice(start, edges[i]), validation, test)
        folds.append(_checked(parts, n, purge, f"walk-forward fold {i} of {k}"))
    return folds, test
