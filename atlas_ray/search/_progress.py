"""The search's progress display: one calm line instead of Ray Tune's status table.

``Progress`` is the Ray-free bookkeeping (tested by calling it directly): it is given each trial's
state (``TrialView``: running, pending, done at some epoch, failed) and renders one line::

    [#######.............] 12/40 done (3 stopped by ASHA, 1 failed), 2 running | best val_loss 0.8123
    (trial 3f2a1_00007, dnn, last epoch) | 1m12s elapsed, ~2m40s left

The best figure is the trial's score (``atlas_ray.experiment.trial_score``): its validation metric at
the last epoch it wrote results for, read from its ``result.json`` (``read_score``) when it writes one
(at each ASHA rung and at ``max_t``) and when it ends; the table of best trials printed at the end
shows the same number. A failed trial has no score.

A trial that ended before ``max_t`` epochs was stopped by ASHA. The estimate of what is left counts
each running trial by the share of its ``max_t`` epochs it has trained, and divides the work still to
do by the pace since the display started (a resumed experiment's earlier trials do not count as pace).

``ProgressDisplay`` draws it: on a terminal a bar redrawn in place (at most every ``redraw`` seconds),
elsewhere (a log file, CI) one line every ``every`` seconds, and a final line at the end. A failed
trial prints one line with its id and error as it happens (``failure``), above the bar, and so does a
trial whose devices fell back (it asked for a GPU or TPU chips that are not there, ``_devices``).

``ProgressCallback`` feeds it from Ray Tune (driver side); Ray's own table stays available with
``--verbose``.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import IO, Any

from atlas_ray.experiment import read_score, trial_directory

__all__ = [
    "Progress",
    "ProgressCallback",
    "ProgressDisplay",
    "TrialState",
    "TrialView",
    "format_duration",
]

BAR_WIDTH = 20


class TrialState(Enum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class TrialView:
    """What the display needs of one trial: its id, a short label (the model), its state, the epochs
    it reported and its score (``atlas_ray.experiment.trial_score``: the scheduler's metric on validation
    at the last epoch it wrote results for; NaN when none)."""

    trial_id: str
    label: str
    state: TrialState
    epochs: int = 0
    score: float = math.nan


@dataclass
class Progress:
    """Counts, best trial and time estimate of a search of ``total`` trials (see the module docstring).

    ``sign`` is the metric's direction (+1 to maximise, -1 to minimise: ``Mode.sign``).
    """

    total: int
    max_t: int
    metric: str
    sign: float
    started: float = field(default_factory=time.monotonic)
    trials: dict[str, TrialView] = field(default_factory=dict)
    baseline: float | None = None

    def __post_init__(self) -> None:
        if self.total < 0:
            raise ValueError(f"The value of `total` is {self.total}, but must be `total >= 0`.")
        if self.max_t < 1:
            raise ValueError(f"The value of `max_t` is {self.max_t}, but must be `max_t >= 1`.")

    def update(self, views: Iterable[TrialView]) -> None:
        """Take the latest state of these trials (others keep theirs)."""
        for view in views:
            self.trials[view.trial_id] = view
        if self.baseline is None:
            self.baseline = self.fraction()

    def counts(self) -> dict[str, int]:
        """done (stopped and failed included), stopped (by ASHA, before ``max_t``), failed, running."""
        views = self.trials.values()
        done = [v for v in views if v.state in (TrialState.DONE, TrialState.FAILED)]
        return {
            "done": len(done),
            "stopped": sum(v.state is TrialState.DONE and v.epochs < self.max_t for v in views),
            "failed": sum(v.state is TrialState.FAILED for v in views),
            "running": sum(v.state is TrialState.RUNNING for v in views),
        }

    def best(self) -> TrialView | None:
        """The trial with the best score so far (a failed trial has none)."""
        scored = [v for v in self.trials.values() if not math.isnan(v.score)]
        return max(scored, key=lambda v: self.sign * v.score) if scored else None

    def fraction(self) -> float:
        """The share of the search done: ended trials count 1, running ones their epochs over ``max_t``."""
        if self.total == 0:
            return 1.0
        work = 0.0
        for view in self.trials.values():
            if view.state in (TrialState.DONE, TrialState.FAILED):
                work += 1.0
            elif view.state is TrialState.RUNNING:
                work += min(view.epochs, self.max_t) / self.max_t
        return min(1.0, work / self.total)

    def remaining(self, now: float) -> float | None:
        """Seconds left at the pace since the display started, or None before any progress."""
        fraction, baseline = self.fraction(), self.baseline or 0.0
        if fraction >= 1.0:
            return 0.0
        if fraction <= baseline:
            return None
        return (now - self.started) * (1.0 - fraction) / (fraction - baseline)

    def line(self, now: float, *, bar: bool = False) -> str:
        """The one progress line (with a ``[###...]`` bar in front when ``bar``)."""
        counts = self.counts()
        extra = [f"{counts['stopped']} stopped by ASHA"] if counts["stopped"] else []
        extra += [f"{counts['failed']} failed"] if counts["failed"] else []
        text = f"{counts['done']}/{self.total} done"
        text += f" ({', '.join(extra)})" if extra else ""
        text += f", {counts['running']} running"
        best = self.best()
        if best is not None:
            text += f" | best {self.metric} {best.score:.6g}"
            text += f" (trial {best.trial_id}, {best.label}, last epoch)"
        text += f" | {format_duration(now - self.started)} elapsed"
        left = self.remaining(now)
        text += f", ~{format_duration(left)} left" if left is not None else ", estimating"
        if bar:
            filled = round(self.fraction() * BAR_WIDTH)
            text = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {text}"
        return text


def format_duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``1h02m``."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


class ProgressDisplay:
    """Draws a ``Progress``: a bar redrawn in place on a terminal, else one line every ``every`` s.
    ``show=False`` (``--verbose``, Ray's table instead) prints only the failure lines."""

    def __init__(
        self,
        progress: Progress,
        out: IO[str] | None = None,
        *,
        every: float = 15.0,
        redraw: float = 0.5,
        tty: bool | None = None,
        show: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if every <= 0:
            raise ValueError(f"The value of `every` is {every}, but must be `every > 0`.")
        self.progress = progress
        self.out = out if out is not None else sys.stdout
        self.tty = bool(tty if tty is not None else getattr(self.out, "isatty", lambda: False)())
        self.every = redraw if self.tty else every
        self.show = show
        self.clock = clock
        self.last: float | None = None
        self.drawn = 0  # width of the bar line on screen (terminal only)

    def tick(self, *, force: bool = False) -> None:
        """Draw the line if it is due (or ``force``); never when not ``show`` (failures still print)."""
        if not self.show:
            return
        now = self.clock()
        if not force and self.last is not None and now - self.last < self.every:
            return
        self.last = now
        text = self.progress.line(now, bar=self.tty)
        if self.tty:
            self.out.write("\r" + text.ljust(self.drawn))
            self.drawn = len(text)
        else:
            self.out.write(text + "\n")
        self.out.flush()

    def say(self, text: str) -> None:
        """Print a line of its own (above the bar on a terminal, which is then drawn again)."""
        if self.tty and self.drawn:
            self.out.write("\r" + " " * self.drawn + "\r")
            self.drawn = 0
        self.out.write(text + "\n")
        self.out.flush()
        if self.tty:
            self.tick(force=True)

    def failure(self, trial_id: str, label: str, error: str, *, retry: str = "") -> None:
        """The one line of a failed trial: its id, model and error (``retry``: e.g. "retrying, 1 of 2")."""
        state = f"failed ({retry})" if retry else "failed"
        self.say(f"trial {trial_id} ({label}) {state}: {error}")

    def fallback(self, trial_id: str, label: str, reason: str) -> None:
        """The one line of a trial that trains on other devices than it asked for (``_devices``)."""
        self.say(f"trial {trial_id} ({label}) devices: {reason}")

    def close(self) -> None:
        """The final line, ending the bar's line on a terminal."""
        self.tick(force=True)
        if self.tty:
            self.out.write("\n")
            self.out.flush()
            self.drawn = 0


def _callback_base() -> type:
    from ray.tune import Callback

    return Callback


_TUNE_STATES = {
    "RUNNING": TrialState.RUNNING,
    "TERMINATED": TrialState.DONE,
    "ERROR": TrialState.FAILED,
}


class ProgressCallback(_callback_base()):  # type: ignore[misc]
    """Feeds a ``ProgressDisplay`` from Ray Tune on the driver; prints each failure as it happens.

    ``error_text`` turns a trial's error into its one line; ``max_failures`` names retries. Each trial's
    score is read from its ``result.json`` under ``experiment`` when it reports one of the
    ``checkpoints`` epochs (where it writes its results first) and when it ends.
    """

    def __init__(
        self,
        display: ProgressDisplay,
        *,
        error_text: Callable[[Any], str],
        max_failures: int = 0,
        experiment: str = "",
        checkpoints: Iterable[int] = (),
    ) -> None:
        self.display = display
        self.error_text = error_text
        self.max_failures = max_failures
        self.experiment = experiment
        self.checkpoints = frozenset(checkpoints)
        self.scores: dict[str, float] = {}
        self.failures: dict[str, int] = {}
        self.fallbacks: set[str] = set()

    def __getstate__(self) -> dict[str, Any]:  # Tune pickles its run config; the stream stays here
        return {"max_failures": self.max_failures}

    def __setstate__(self, state: Mapping[str, Any]) -> None:  # a restored one is replaced (_runner)
        self.max_failures = int(state["max_failures"])
        self.experiment = ""
        self.checkpoints = frozenset()
        self.scores = {}
        self.failures = {}
        self.fallbacks = set()

    def read_score(self, trial_id: str) -> None:
        """Take the trial's score from its ``result.json`` (NaN when it has none or failed)."""
        if self.experiment:
            metric = self.display.progress.metric
            self.scores[trial_id] = read_score(trial_directory(self.experiment, trial_id), metric)

    def view(self, trial: Any, state: TrialState | None = None) -> TrialView:
        """A Tune trial as the display sees it, with the score last read for it."""
        trial_id = str(trial.trial_id)
        if trial_id not in self.scores and str(trial.status) == "TERMINATED":
            self.read_score(trial_id)  # ended in an earlier run of a resumed experiment
        return _view(trial, self.scores.get(trial_id, math.nan), state)

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        self.display.progress.update(self.view(trial) for trial in trials)
        self.display.tick()

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: Mapping[str, Any], **info: Any
    ) -> None:
        """A report at a checkpoint epoch reads the trial's score; a trial's first report that says it fell
        back to other devices prints that, once."""
        if int(result.get("training_iteration", 0) or 0) in self.checkpoints:
            self.read_score(str(trial.trial_id))
        reason = result.get("device_fallback")
        if reason and trial.trial_id not in self.fallbacks:
            self.fallbacks.add(trial.trial_id)
            self.display.fallback(trial.trial_id, _label(trial), str(reason))

    def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        count = self.failures[trial.trial_id] = self.failures.get(trial.trial_id, 0) + 1
        retry = f"retrying, {count} of {self.max_failures}"
        self.display.failure(trial.trial_id, _label(trial), self.error_text(trial), retry=retry)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.read_score(str(trial.trial_id))

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.scores[str(trial.trial_id)] = math.nan  # a failed trial has no score
        self.display.progress.update([self.view(trial, TrialState.FAILED)])
        self.display.failure(trial.trial_id, _label(trial), self.error_text(trial))

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        for trial in trials:
            if str(trial.status) == "TERMINATED":
                self.read_score(str(trial.trial_id))
        self.display.progress.update(self.view(trial) for trial in trials)
        self.display.close()


def _label(trial: Any) -> str:
    variant = (trial.config or {}).get("variant") or {}
    return str(variant.get("model", "?"))


def _view(trial: Any, score: float, state: TrialState | None = None) -> TrialView:
    """A Tune trial as the display sees it, with its ``score``."""
    last = trial.last_result or {}
    return TrialView(
        trial_id=str(trial.trial_id),
        label=_label(trial),
        state=state or _TUNE_STATES.get(str(trial.status), TrialState.PENDING),
        epochs=int(last.get("training_iteration", 0) or 0),
        score=float(score),
    )
