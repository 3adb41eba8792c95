"""The zoo's dependency runs one way: the rules and ``ZooModel`` (``_zoo_model``) import no model
module, the model modules and the keras-tuner adapter import the rules and never the registry
(``_zoo``), at module level or inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SEARCH = Path(__file__).resolve().parents[2] / "atlas_ray" / "search"


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports anywhere (module level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize(
    "path",
    [SEARCH / "_hypermodel.py", *sorted((SEARCH / "_models").glob("*.py"))],
    ids=lambda p: p.name,
)
def test_models_never_import_the_registry(path: Path) -> None:
    imports = imported_modules(path)
    assert "atlas_ray.search._zoo" not in imports
    if path.name != "__init__.py":
        assert "atlas_ray.search._zoo_model" in imports


def test_the_rules_import_no_model_and_no_registry() -> None:
    imports = imported_modules(SEARCH / "_zoo_model.py")
    ours = {name for name in imports if name.startswith("atlas_ray.search")}
    assert ours == set(), ours


def test_the_registry_gives_the_same_definitions() -> None:
    from atlas_ray.search import _zoo, _zoo_model

    assert _zoo.ZooModel is _zoo_model.ZooModel
    assert _zoo.validate_config is _zoo_model.validate_config
    assert isinstance(_zoo.get_model("dnn"), _zoo_model.ZooModel)
