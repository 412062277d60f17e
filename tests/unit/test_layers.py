"""The package layers of mpigroup import downward only (docs/architecture.md, "Layers").

Every import is counted, at module level and inside functions alike: an
import deferred into a function is still a dependency.
"""
import ast
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "mpigroup"

# bottom to top; a unit may import the units of earlier rows (and its own), never later ones
LAYERS = [
    {"errors"},
    {"base"},
    {"topology"},
    {"runtime"},
    {"policy"},
    {"sync"},
    {"group"},
    {"system"},
    {"pool", "ddict", "telemetry"},
    {"mp"},
    {"worker", "launcher"},
    {"__init__", "__main__"},
]
RANK = {unit: i for i, row in enumerate(LAYERS) for unit in row}


def _unit(module: str) -> str:
    """mpigroup.sync.queues -> sync; mpigroup.errors -> errors; mpigroup -> __init__."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports() -> dict:
    """{(importing unit, imported unit): [where, ...]} over every module of the package."""
    found = defaultdict(list)
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC.parent).with_suffix("")
        parts = list(rel.parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        module = ".".join(parts)
        here = _unit(module) if len(parts) > 1 or not is_pkg else "__init__"
        if module == "mpigroup.__main__":
            here = "__main__"
        package = parts if is_pkg else parts[:-1]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package[:len(package) - (node.level - 1)]
                    stem = ".".join(base + ([node.module] if node.module else []))
                    targets = [stem] if node.module else [f"{stem}.{a.name}" for a in node.names]
                else:
                    targets = [node.module or ""]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for target in targets:
                if target in ("mpigroup", "mpigroup.__version__"):
                    continue  # the package's own metadata (its version): every import runs __init__ anyway
                if target.startswith("mpigroup."):
                    there = _unit(target)
                    if there != here:
                        found[(here, there)].append(f"{path.relative_to(SRC.parent)}:{node.lineno}")
    return found


def test_every_unit_has_a_layer():
    units = {p.stem if p.is_file() else p.name for p in SRC.iterdir()
             if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))}
    assert units - set(RANK) == set(), "add the new package or module to LAYERS (and to the docs' diagram)"


def test_imports_go_downward_only():
    upward = {f"{a} -> {b}": where for (a, b), where in _imports().items() if RANK[b] >= RANK[a]
              and (a, b) != ("__main__", "__init__")}
    assert upward == {}


def test_no_import_cycle_between_packages():
    graph = defaultdict(set)
    for a, b in _imports():
        graph[a].add(b)
    state: dict = {}

    def visit(node, trail):
        state[node] = "open"
        for nxt in graph[node]:
            if state.get(nxt) == "open":
                pytest.fail("import cycle: " + " -> ".join(trail + [node, nxt]))
            if nxt not in state:
                visit(nxt, trail + [node])
        state[node] = "done"

    for unit in list(graph):
        if unit not in state:
            visit(unit, [])


def test_no_private_name_imported_from_another_package():
    private = []
    for path in SRC.rglob("*.py"):
        own = path.relative_to(SRC).parts[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module:
                mod = node.module
                other = (node.level >= 2 or (node.level == 0 and mod.startswith("mpigroup.")
                                             and mod.split(".")[1] != own))
                if node.level == 1 and path.parent == SRC:
                    other = True  # a top-level module importing from a package
                if other:
                    private += [f"{path.relative_to(SRC)}:{node.lineno} {a.name}" for a in node.names
                                if a.name.startswith("_") and not a.name.startswith("__")]
    assert private == [], private


def test_the_leaf_layer_imports_only_errors():
    leaf = {b for (a, b) in _imports() if a == "base"}
    assert leaf <= {"errors"}
