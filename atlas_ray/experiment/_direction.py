"""The one place that says whether a metric is minimised: ``Mode`` and ``is_minimised``.

``Mode`` is what the scheduler is given (``ASHA(mode=...)``, compiled to Ray Tune's ``mode="min"`` /
``"max"``); it flips the direction once (``sign``) so that everything else maximises ``sign * value``.
``is_minimised(name)`` decides by the metric's name, for a metric the user names without a mode (the
report's columns, ``serve --best --metric``, ``finalize --metric``): losses and errors are minimised,
every other figure (accuracy, auc, precision, returns, ...) is maximised. A name may carry a split
prefix (``val_``, ``test_``, ``train_``, ``oos_``) and a class suffix (``precision[up]``).
"""

from __future__ import annotations

import enum
import math

__all__ = ["MINIMISED", "Mode", "direction", "is_minimised"]

#: The metrics where a smaller value is better (by their name without split prefix and class suffix);
#: besides these, every name ending in ``_loss`` or starting with ``loss``, ``mse`` or ``mae``.
MINIMISED = frozenset(
    {"loss", "mse", "mae", "persistence_mse", "zero_mse", "max_drawdown", "turnover", "cost", "cost_drag",
     "lr_minus"}
)

_SPLIT_PREFIXES = ("val_", "test_", "train_", "oos_")


class Mode(enum.Enum):
    """Whether a smaller or a larger metric is better."""

    MIN = "min"
    MAX = "max"

    @property
    def sign(self) -> float:
        """``+1`` for MAX and ``-1`` for MIN: ``sign * value`` is always to be maximised."""
        return 1.0 if self is Mode.MAX else -1.0

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b`` (NaN is never better)."""
        if math.isnan(a):
            return False
        if math.isnan(b):
            return True
        return self.sign * a > self.sign * b


def base_name(metric: str) -> str:
    """``metric`` without its split prefix and class suffix: ``val_precision[up]`` -> ``precision``."""
    for prefix in _SPLIT_PREFIXES:
        if metric.startswith(prefix):
            metric = metric[len(prefix) :]
            break
    return metric.split("[")[0]


def is_minimised(metric: str) -> bool:
    """Whether a smaller value of ``metric`` is better (see the module docstring)."""
    base = base_name(metric)
    return base in MINIMISED or base.endswith("_loss") or base.startswith(("loss", "mse", "mae"))


def direction(metric: str) -> Mode:
    """``Mode.MIN`` for a minimised metric (``is_minimised``), else ``Mode.MAX``."""
    return Mode.MIN if is_minimised(metric) else Mode.MAX
