"""Watching a running search: its first lines say where Ray's dashboard is and how to get the token
(never the token), its trials are visible through Ray's state API while it runs, and the dashboard
opened in a real headless chromium asks for the token and, given it, lists the trial actors.

One real search (``python -m atlas_ray.search``, its own local Ray on 127.0.0.1 with token
authentication) runs for the whole module; its trials train until the module is done."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import pytest

pytestmark = pytest.mark.slow  # starts Ray's dashboard and a search: not in scripts/test.sh --quick

if TYPE_CHECKING:
    from atlas_ray.featurestore import MarketStore
    from tests.report._browser import Page

ROOT = Path(__file__).resolve().parents[2]
TRIAL_ACTOR = "ImplicitFunc"  # Ray Tune's actor class for a function trainable
TOKEN_FIELD = "Enter your authentication token"  # the dashboard's token dialog's input

SPEC = """
    from tests.search import search_specs
    # two trials that train until the test stops the search
    SPEC = search_specs.spec("watched", [search_specs.small_dnn(num_samples=2)], max_t=100_000,
                             grace_period=100_000)
    """


@dataclass
class RunningSearch:
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def wait_for(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if line.startswith(prefix):
                    return line
            if self.process.poll() is not None:
                break
            time.sleep(0.5)
        raise AssertionError(f"no line starting {prefix!r}; the search printed:\n" + "\n".join(self.lines))

    @property
    def dashboard(self) -> str:
        return self.wait_for("Ray dashboard: ", 5).split(": ", 1)[1].strip()


def _token() -> str:
    if os.environ.get("RAY_AUTH_TOKEN"):
        return os.environ["RAY_AUTH_TOKEN"]
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token"
    return Path(path).read_text().strip()


@pytest.fixture(scope="module")
def running_search(
    tmp_path_factory: pytest.TempPathFactory, minute_store: MarketStore
) -> Iterator[RunningSearch]:
    folder = tmp_path_factory.mktemp("watched")
    spec = folder / "watched.py"
    spec.write_text(textwrap.dedent(SPEC))
    process = subprocess.Popen(
        [sys.executable, "-m", "atlas_ray.search", str(spec), "--storage", str(folder / "experiments"),
         "--store", str(minute_store.root), "--progress-every", "5"],
        cwd=ROOT,
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    search = RunningSearch(process)
    assert process.stdout is not None
    stdout = process.stdout

    def read() -> None:
        search.lines.extend(line.rstrip() for line in stdout)

    threading.Thread(target=read, daemon=True).start()
    try:
        search.wait_for("Ray dashboard: ", 180)
        yield search
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[str]) -> None:
    """Stop the search (Ctrl-C, as a user would) and anything of its Ray still running after it."""
    try:
        descendants = psutil.Process(process.pid).children(recursive=True)
    except psutil.Error:
        descendants = []
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)
    _, alive = psutil.wait_procs(descendants, timeout=20)
    for leftover in alive:
        leftover.kill()


def test_first_lines_say_where_the_dashboard_is_and_how_to_get_the_token(
    running_search: RunningSearch,
) -> None:
    dashboard = running_search.dashboard
    assert dashboard.startswith("http://127.0.0.1:"), dashboard
    hint = running_search.lines[running_search.lines.index(f"Ray dashboard: {dashboard}") + 1]
    assert "`ray get-auth-token`" in hint and "~/.ray/auth_token" in hint, hint
    assert _token() not in "\n".join(running_search.lines)


LIST_TRIALS = """
import json, sys, time
from ray.util.state import list_actors
deadline = time.monotonic() + 150
while True:
    actors = list_actors(address=sys.argv[1], filters=[("class_name", "=", sys.argv[2])], limit=100)
    alive = [a.actor_id for a in actors if a.state == "ALIVE"]
    if len(alive) >= 2 or time.monotonic() > deadline:
        print(json.dumps(alive))
        break
    time.sleep(2)
"""


@pytest.mark.timeout(300)
def test_trials_are_visible_through_the_state_api_while_it_runs(running_search: RunningSearch) -> None:
    done = subprocess.run(
        [sys.executable, "-c", LIST_TRIALS, running_search.dashboard, TRIAL_ACTOR],
        env={**os.environ, "RAY_AUTH_MODE": "token"},
        capture_output=True,
        text=True,
        timeout=200,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    alive = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(alive) == 2, (alive, running_search.lines[-5:])
    assert running_search.process.poll() is None  # still searching


@pytest.mark.timeout(400)
def test_dashboard_asks_for_the_token_and_then_lists_the_trial_actors(running_search: RunningSearch) -> None:
    from tests.report._browser import chromium_page

    with chromium_page() as page:
        page.send("Page.navigate", url=f"{running_search.dashboard}/#/actors")
        text = _wait_text(page, "Authentication Token Required", 60)
        assert TRIAL_ACTOR not in text  # nothing is shown before the token is given
        page.evaluate(f"document.querySelector('input[placeholder=\"{TOKEN_FIELD}\"]').focus()")
        page.send("Input.insertText", text=_token())
        page.evaluate(
            "[...document.querySelectorAll('button')]"
            ".find(b => b.innerText.trim().toUpperCase() === 'SUBMIT').click()"
        )
        text = _wait_text(page, TRIAL_ACTOR, 180, times=2)  # both trials
        assert "Authentication Token Required" not in text
    assert running_search.process.poll() is None


def _wait_text(page: Page, wanted: str, timeout: float, times: int = 1) -> str:
    """The page's text once ``wanted`` shows in it ``times`` times."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        try:
            text = str(page.evaluate("document.body ? document.body.innerText : ''"))
        except RuntimeError:  # the page is still loading (or navigating to the route)
            text = ""
        if text.count(wanted) >= times:
            return text
        time.sleep(1)
    raise AssertionError(f"{wanted!r} never appeared on the page; it shows:\n{text[:3000]}")
