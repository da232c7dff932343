"""The shared layers point one way: shared_core <- shared_events <- shared_runtime <- services."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# A package may import only the packages below it.
BELOW = {
    "shared_core": set(),
    "shared_events": {"shared_core"},
    "shared_runtime": {"shared_core", "shared_events"},
}
OURS = {"shared_core", "shared_events", "shared_runtime"}


def imported_packages(package: str) -> dict[str, set[str]]:
    """Module path -> our top-level packages it imports (other than itself)."""
    found = {}
    for path in (ROOT / package).rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names - {package}
    return found


@pytest.mark.parametrize("package", list(BELOW))
def test_a_shared_package_imports_only_the_layers_below_it(package):
    services = {p.name for p in ROOT.glob("*_service") if p.is_dir()}
    wrong = {
        module: sorted(names & ((OURS | services) - BELOW[package]))
        for module, names in imported_packages(package).items()
        if names & ((OURS | services) - BELOW[package])
    }
    assert wrong == {}
