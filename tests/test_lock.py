"""requirements/lock.txt: what scripts/setup.sh installs, so the main job and CI run what was tested.

The lock is compiled from pyproject.toml (the README's "Dependencies and the lock" names the command);
these tests fail when pyproject.toml changed and the lock was not compiled again.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "lock.txt"
COMPILE = (
    "uv pip compile pyproject.toml --all-extras --python-version 3.11 "
    "--python-platform x86_64-manylinux_2_28 -o requirements/lock.txt"
)


def _pins() -> dict[str, Version]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        if match:
            pins[canonicalize_name(match.group(1))] = Version(match.group(2))
    return pins


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [Requirement(text) for text in project["dependencies"]]
    for extra in project.get("optional-dependencies", {}).values():
        declared += [Requirement(text) for text in extra]
    return declared


def test_every_declared_dependency_is_pinned_in_the_lock_within_its_range() -> None:
    pins = _pins()
    problems = []
    for requirement in _declared():
        name = canonicalize_name(requirement.name)
        if name not in pins:
            problems.append(f"{requirement} is not in {LOCK.name}")
        elif not requirement.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{requirement} but {LOCK.name} pins {name}=={pins[name]}")
    assert not problems, "compile the lock again (README: Dependencies and the lock): " + "; ".join(problems)


def test_the_lock_pins_every_package_exactly_and_says_how_it_was_compiled() -> None:
    text = LOCK.read_text()
    assert COMPILE in text
    packages = [line for line in text.splitlines() if line and not line.startswith((" ", "#"))]
    assert packages and all("==" in line for line in packages), [p for p in packages if "==" not in p]
    # the installer that setup.sh bootstraps is itself pinned
    assert "uv" in _pins()
