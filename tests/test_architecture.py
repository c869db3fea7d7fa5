"""The code's structure holds: the layers and the domains' order (import-linter's contracts in
pyproject.toml), no import cycle between any two modules, and one model registry that sees
every table."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import grimp
from importlinter.cli import lint_imports

import polyclinic
import polyclinic.models as registry

SOURCE = Path(polyclinic.__file__).parent


def test_import_contracts_are_kept() -> None:
    assert lint_imports(no_cache=True) == 0


def cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each an import cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        for module in sorted(graph.modules):
            if module not in index:
                visit(module)
    finally:
        sys.setrecursionlimit(limit)
    return found


def test_no_module_imports_itself_through_others() -> None:
    graph = grimp.build_graph("polyclinic", cache_dir=None)
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for module in ("a", "b", "c"):
        graph.add_module(module)
    graph.add_import(importer="a", imported="b")
    graph.add_import(importer="b", imported="c")
    graph.add_import(importer="c", imported="a")
    assert cycles(graph) == [["a", "b", "c"]]


def test_the_model_registry_imports_every_models_module() -> None:
    registered = {module.__name__ for module in registry.MODEL_MODULES}
    on_disk = {
        "polyclinic." + ".".join(path.relative_to(SOURCE).with_suffix("").parts)
        for path in SOURCE.rglob("models.py")
        if path.parent != SOURCE  # the registry itself
    }
    assert on_disk - registered == set()
    for name in on_disk:
        importlib.import_module(name)
    clinic_tables = set(registry.tenant_metadata.tables)
    assert {"users", "appointments", "deliveries", "outbox"} <= clinic_tables
