"""The progress display's bookkeeping and drawing, called directly with a hand-held clock (no Ray): counts
of done / stopped by ASHA / failed / running, the best trial, the estimate of what is left, a bar redrawn
in place on a terminal and one line every N seconds elsewhere, failures printed as they happen."""

from __future__ import annotations

import io
import math

import pytest

from atlas_ray.search._progress import (
    Progress,
    ProgressDisplay,
    TrialState,
    TrialView,
    format_duration,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def views() -> list[TrialView]:
    return [
        TrialView("t1", "dnn", TrialState.DONE, epochs=4, score=0.91),
        TrialView("t2", "dnn", TrialState.DONE, epochs=1, score=0.95),  # stopped by ASHA
        TrialView("t3", "broken", TrialState.FAILED),
        TrialView("t4", "lstm", TrialState.RUNNING, epochs=2, score=0.88),
        TrialView("t5", "lstm", TrialState.PENDING),
    ]


def test_counts_best_and_fraction() -> None:
    progress = Progress(total=6, max_t=4, metric="val_loss", sign=-1.0, started=0.0)
    progress.update([])
    progress.update(views())
    assert progress.counts() == {"done": 3, "stopped": 1, "failed": 1, "running": 1}
    best = progress.best()
    assert best is not None and best.trial_id == "t4"
    assert progress.fraction() == pytest.approx((3 + 0.5) / 6)
    line = progress.line(10.0)
    assert line.startswith("3/6 done (1 stopped by ASHA, 1 failed), 1 running")
    assert "best val_loss 0.88 (trial t4, lstm, last epoch)" in line
    assert "10s elapsed" in line


def test_maximised_metric_picks_the_largest() -> None:
    progress = Progress(total=5, max_t=4, metric="val_accuracy", sign=1.0)
    progress.update(views())
    best = progress.best()
    assert best is not None and best.trial_id == "t2"


def test_estimate_follows_the_pace_since_the_start_only() -> None:
    progress = Progress(total=4, max_t=2, metric="val_loss", sign=-1.0, started=0.0)
    # a resumed search: two trials were done before this display started
    progress.update([TrialView(f"t{i}", "dnn", TrialState.DONE, epochs=2, score=1.0) for i in (1, 2)])
    assert progress.remaining(5.0) is None
    assert "estimating" in progress.line(5.0)
    progress.update([TrialView("t3", "dnn", TrialState.DONE, epochs=2, score=1.0)])
    assert progress.remaining(30.0) == pytest.approx(30.0)  # one trial in 30 s, one left
    assert "~30s left" in progress.line(30.0)
    progress.update([TrialView("t4", "dnn", TrialState.DONE, epochs=2, score=1.0)])
    assert progress.remaining(40.0) == 0.0


def test_a_search_without_a_figure_yet_shows_no_best() -> None:
    progress = Progress(total=2, max_t=3, metric="val_loss", sign=-1.0, started=0.0)
    progress.update([TrialView("t1", "dnn", TrialState.RUNNING)])
    assert progress.best() is None
    assert "best" not in progress.line(1.0)
    assert math.isclose(progress.fraction(), 0.0)


def test_bad_settings_say_value_and_rule() -> None:
    with pytest.raises(ValueError, match=r"`max_t` is 0, but must be `max_t >= 1`"):
        Progress(total=2, max_t=0, metric="val_loss", sign=-1.0)
    with pytest.raises(ValueError, match=r"`every` is 0, but must be `every > 0`"):
        ProgressDisplay(Progress(total=1, max_t=1, metric="m", sign=1.0), io.StringIO(), every=0)


def test_one_line_every_n_seconds_when_not_a_terminal() -> None:
    clock, out = Clock(), io.StringIO()
    progress = Progress(total=5, max_t=4, metric="val_loss", sign=-1.0, started=0.0)
    display = ProgressDisplay(progress, out, every=15.0, clock=clock)
    progress.update(views())
    for now in (0.0, 5.0, 14.0, 15.0, 20.0, 31.0):
        clock.now = now
        display.tick()
    display.failure("t3", "broken", "ValueError: cannot be built")
    display.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 5  # at 0, 15 and 31 s, the failure, the final line
    assert "\r" not in out.getvalue() and "[" not in lines[0].split("done")[0]
    assert lines[3] == "trial t3 (broken) failed: ValueError: cannot be built"
    assert lines[-1].startswith("3/5 done")


def test_a_bar_redrawn_in_place_on_a_terminal() -> None:
    clock, out = Clock(), Terminal()
    progress = Progress(total=4, max_t=2, metric="val_loss", sign=-1.0, started=0.0)
    display = ProgressDisplay(progress, out, clock=clock)
    progress.update([TrialView("t1", "dnn", TrialState.DONE, epochs=2, score=0.5)])
    display.tick()
    clock.now = 1.0
    display.failure("t2", "dnn", "NaNLossError: the training loss is nan", retry="retrying, 1 of 1")
    display.close()
    text = out.getvalue()
    assert text.startswith("\r[#####...............] 1/4 done")
    # the bar is wiped, the failure gets a line of its own, the bar is drawn again below it
    assert "\rtrial t2 (dnn) failed (retrying, 1 of 1): NaNLossError: the training loss is nan\n\r[" in text
    assert text.endswith("\n") and text.count("\n") == 2


def test_verbose_shows_failures_only() -> None:
    out = io.StringIO()
    display = ProgressDisplay(Progress(total=1, max_t=1, metric="m", sign=1.0), out, show=False)
    display.tick(force=True)
    display.failure("t1", "dnn", "ValueError: no")
    display.close()
    assert out.getvalue() == "trial t1 (dnn) failed: ValueError: no\n"


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.4, "0s"), (42, "42s"), (185, "3m05s"), (3720, "1h02m"), (-3, "0s")]
)
def test_durations(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
