"""The package's architecture holds: no import circles, geometry imports no other layer,
the NumPy SchNet path needs no torch."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "ase_au20"


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> package modules it imports anywhere (module level or inside functions)."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    targets.append(full if full in modules else node.module)
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (as a path), or None."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_no_import_circles() -> None:
    cycle = _cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


def test_cycle_finder_finds_a_circle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_geometry_imports_no_other_layer() -> None:
    graph = import_graph()
    for name, targets in graph.items():
        if name.startswith("ase_au20.geometry"):
            others = {t for t in targets if not t.startswith("ase_au20.geometry")}
            assert others <= {"ase_au20.validation"}, (name, others)


def test_numpy_schnet_path_does_not_import_torch() -> None:
    code = (
        "import ase_au20.models.schnet.numpy_path, sys, json; "
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "torch" not in json.loads(out.stdout.splitlines()[-1])


# The layers, lowest first: a module imports its own layer and the ones below, never above.
# Base modules (version, paths, plotting, settings fields, built-in structures) sit under
# everything;
# validation and the structure pictures (viz) read geometry conventions only.
LAYERS = (
    (
        "ase_au20._version",
        "ase_au20.paths",
        "ase_au20.plotting",
        "ase_au20.settings",
        "ase_au20.structures",
    ),
    ("ase_au20.geometry", "ase_au20.validation", "ase_au20.viz"),
    ("ase_au20.database",),
    ("ase_au20.compute",),
    ("ase_au20.models",),
    ("ase_au20.calculators",),
    ("ase_au20.workflows",),
    ("ase_au20.cli", "ase_au20.__main__"),
)


def layer_of(module: str) -> int | None:
    """The layer index of a package module (None: the package's lazy ``__init__``)."""
    for level, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return level
    return None


def upward_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Every (module, imported module) pair whose import runs up the layers."""
    found = []
    for name, targets in graph.items():
        level = layer_of(name)
        for target in targets:
            above = layer_of(target)
            if level is not None and above is not None and above > level:
                found.append((name, target))
    return sorted(found)


def test_every_module_belongs_to_a_layer() -> None:
    unplaced = [m for m in _modules() if m != "ase_au20" and layer_of(m) is None]
    assert not unplaced


def test_no_import_runs_up_the_layers() -> None:
    assert upward_imports(import_graph()) == []


def test_the_layer_check_sees_an_upward_arrow() -> None:
    """The arrows this test was written against: a model importing the workflows' engine
    and the database's web view drawing with a workflow module."""
    graph = {
        "ase_au20.models.xtb_delta.cache": {"ase_au20.workflows.engine"},
        "ase_au20.database.web": {"ase_au20.workflows.viz", "ase_au20.geometry.metrics"},
    }
    assert upward_imports(graph) == [
        ("ase_au20.database.web", "ase_au20.workflows.viz"),
        ("ase_au20.models.xtb_delta.cache", "ase_au20.workflows.engine"),
    ]
