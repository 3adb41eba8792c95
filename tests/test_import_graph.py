"""The house's import rules, read from the package's own source (every import statement, also those
inside functions and ``TYPE_CHECKING`` blocks):

- packages use each other through their public faces: no module of one sub-package (``featurestore``,
  ``experiment``, ``search``, ``report``, ``serve``) imports a private module (``_name``) of another;
- floors: data flows one way, no package imports one on a floor above it (``FLOORS``); the shared
  top-level modules (``atlas_ray._storage``, ``_atomic``, ``errors``, ...) are the ground floor.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import atlas_ray

PACKAGE = Path(atlas_ray.__file__).parent

# a package may import packages on lower floors only (the same floor: not at all)
FLOORS = {
    "featurestore": 1,
    "metrics": 2,
    "experiment": 2,
    "backtest": 3,
    "search": 4,
    "report": 5,
    "serve": 5,
}


def owner(path: Path) -> str:
    """The sub-package (or top-level module) a source file belongs to."""
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def imported(path: Path) -> Iterator[tuple[int, str]]:
    """(line, dotted name) of every ``atlas_ray`` module or name ``path`` imports."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:  # `from atlas_ray.search import _gather` names a module too
                yield node.lineno, f"{node.module}.{alias.name}"


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_the_rules_read_every_package() -> None:
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    top_level = {"metrics", "backtest"}
    assert packages | top_level == set(FLOORS), "every sub-package (and metrics.py, backtest.py) has a floor"
    assert len(modules()) > 100


def private_crossings() -> list[str]:
    found = []
    for path in modules():
        here = owner(path)
        for line, name in imported(path):
            parts = name.split(".")
            if parts[0] != "atlas_ray" or len(parts) < 3 or parts[1] not in FLOORS or parts[1] == here:
                continue
            if any(part.startswith("_") for part in parts[2:]):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}")
    return found


def test_packages_use_each_other_through_their_public_faces() -> None:
    assert private_crossings() == []


def test_no_package_imports_one_on_its_floor_or_above() -> None:
    found = []
    for path in modules():
        here = owner(path)
        if here not in FLOORS:  # the ground floor imports no package at all
            for line, name in imported(path):
                parts = name.split(".")
                if parts[0] == "atlas_ray" and len(parts) > 1 and parts[1] in FLOORS:
                    found.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}")
            continue
        for line, name in imported(path):
            parts = name.split(".")
            if parts[0] != "atlas_ray" or len(parts) < 2 or parts[1] not in FLOORS or parts[1] == here:
                continue
            if FLOORS[parts[1]] >= FLOORS[here]:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({here}) imports {name}")
    assert found == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from atlas_ray.search._gather import load_model\n", "atlas_ray.search._gather.load_model"),
        ("from atlas_ray.search import _gather\n", "atlas_ray.search._gather"),
        ("import atlas_ray.featurestore._store._bars\n", "atlas_ray.featurestore._store._bars"),
        ("def f():\n    from atlas_ray.search._runner import run\n", "atlas_ray.search._runner.run"),
    ],
)
def test_the_reader_sees_every_form_of_import(tmp_path: Path, source: str, expected: str) -> None:
    path = tmp_path / "module.py"
    path.write_text(source)
    assert [name for _, name in imported(path)] == [expected]
