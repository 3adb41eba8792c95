"""featurestore's rooms: one public face, private rooms behind it that import downwards only."""

from __future__ import annotations

import ast
from pathlib import Path

import atlas_ray.featurestore as featurestore

PACKAGE = Path(__file__).resolve().parents[2] / "atlas_ray"
FACE = "atlas_ray.featurestore"

#: What each room may import from the others (the face and ``__main__`` may import every room).
ALLOWED = {
    "_schema": set(),
    "_formats": {"_schema"},
    "_store": {"_schema", "_formats"},
    "_gds": {"_schema", "_formats", "_store"},
    "_features": {"_schema", "_store"},
    "_featuresets": {"_schema", "_store", "_features"},
}

#: Every name ``from atlas_ray.featurestore import ...`` gave before the rooms: none may go.
EXPORTED_BEFORE_THE_ROOMS = {
    "GapRange", "IngestReport", "Kind", "MarketStore", "PartitionInfo", "PartitionStore", "Resolution",
    "RowChecks", "as_resolution", "bars_from_trades", "bars_kind", "default_root", "resample_bars", "FV",
    "VWAP", "Ask", "AskStrength", "AskStrengthUSD", "Bid", "BidStrength", "BidStrengthUSD",
    "DataRequirement", "Feature", "InterExchangeSpread", "LogReturns", "MarketData", "Midpoint",
    "MidpointDiff", "OrderBooks", "SeriesSource", "SourcedMarket", "SignedArbRevenue", "SignedArbVolumeUSD",
    "SimpleReturns", "Sources", "check_supplied", "decide", "decide_series", "live_key", "Spread",
    "Volatility", "Volume", "Boundaries", "FeatureLabelSet", "FoldedSet", "Percentiles", "PreparedSet",
    "SplitPart", "Task", "TimeSplit", "WalkForward", "apply_categories", "apply_scaling",
}  # fmt: skip


def _imported(path: Path) -> set[str]:
    """Every ``atlas_ray...`` module ``path`` imports (``from X import name`` counts ``X.name`` too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("atlas_ray"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("atlas_ray"))
    return found


def _room(module: str) -> str | None:
    """The featurestore room ``module`` lies in (None: the face itself, or not featurestore)."""
    parts = module.split(".")
    if parts[:2] != ["atlas_ray", "featurestore"] or len(parts) < 3 or not parts[2].startswith("_"):
        return None
    return parts[2]


def test_other_packages_import_the_face_only() -> None:
    reaching = [
        f"{path.relative_to(PACKAGE.parent)}: {module}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if "featurestore" not in path.relative_to(PACKAGE).parts
        for module in sorted(_imported(path))
        if _room(module) is not None
    ]
    assert reaching == [], (
        "import these from atlas_ray.featurestore (add them to its __all__):\n" + "\n".join(reaching)
    )


def test_rooms_import_downwards_only() -> None:
    root = PACKAGE / "featurestore"
    wrong = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if len(parts) == 1 and parts[0] in ("__init__.py", "__main__.py"):
            continue
        here = parts[0].removesuffix(".py")
        assert here in ALLOWED, f"{path}: {here!r} is a room this test does not know; add it to ALLOWED"
        for module in sorted(_imported(path)):
            if module == FACE:
                wrong.append(f"{path.relative_to(root)} imports the face {FACE}")
            room = _room(module)
            if room is not None and room != here and room not in ALLOWED[here]:
                wrong.append(f"{path.relative_to(root)} ({here}) imports {module} ({room})")
    assert wrong == [], "\n".join(wrong)


def test_every_room_says_what_lives_there() -> None:
    for room in ALLOWED:
        init = PACKAGE / "featurestore" / room / "__init__.py"
        if room == "_schema":
            assert (PACKAGE / "featurestore" / "_schema.py").is_file()
            continue
        assert ast.get_docstring(ast.parse(init.read_text())), f"{init} has no docstring"


def test_the_public_face_keeps_every_name() -> None:
    missing = EXPORTED_BEFORE_THE_ROOMS - set(featurestore.__all__)
    assert missing == set(), sorted(missing)
    for name in featurestore.__all__:
        assert getattr(featurestore, name) is not None, name
