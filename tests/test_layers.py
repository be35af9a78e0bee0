"""The package is a house of floors: a module imports only from its own floor or those below,
and no modules import each other in a circle. Lazy imports (inside functions) count too.

LAYERS is the one place that defines the floors, from the ground up.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
LAYERS: tuple[tuple[str, ...], ...] = (
    # Plain building blocks; the params definition and the stage contract, which the
    # Snakefile imports, sit here.
    # The CPU-kernel pins (numerics) and the machine record load before torch does.
    (
        "sswp",
        "sswp.errors",
        "sswp.yaml12",
        "sswp.config",
        "sswp.paths",
        "sswp.atomic",
        "sswp.contract",
        "sswp.numerics",
        "sswp.machine",
    ),
    # The provenance records that digest the params and the code.
    ("sswp.provenance",),
    # Data, the search space and the self-supervised objectives.
    ("sswp.data", "sswp.nas", "sswp.ssl"),
    # Child networks built from a genotype.
    ("sswp.models",),
    # Training loops, checkpoints and the runtime.
    ("sswp.engine",),
    # The stages, the report with its statistics, fairness checks and learning curves,
    # comparisons, the dvc.yaml generator and the rerun check.
    (
        "sswp.stages",
        "sswp.report",
        "sswp.stats",
        "sswp.fairness",
        "sswp.curves",
        "sswp.compare",
        "sswp.dvc_yaml",
        "sswp.verify",
    ),
    # The command line.
    ("sswp.cli",),
)


def modules(src: Path = SRC) -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its name)."""
    found = {}
    for path in sorted(src.rglob("*.py")):
        name = ".".join(path.relative_to(src).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The package modules that a file imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            # `from sswp import atomic` imports a module; `from sswp.x import f` imports sswp.x.
            submodules = [f"{node.module}.{alias.name}" for alias in node.names]
            names = [n for n in submodules if n in known] or [node.module]
        else:
            continue
        found.update(name for name in names if name in known)
    return found


def graph(src: Path = SRC) -> dict[str, set[str]]:
    known = modules(src)
    return {name: imports(path, known) - {name} for name, path in known.items()}


def layer(module: str) -> int:
    """The floor of a module: that of the longest listed name it starts with."""
    best, floor = -1, -1
    for index, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(f"{name}.")) and len(name) > best:
                best, floor = len(name), index
    return floor


def upward_imports(edges: dict[str, set[str]]) -> list[tuple[str, str]]:
    return sorted((a, b) for a, targets in edges.items() for b in targets if layer(b) > layer(a))


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that reach each other through imports (strongly connected)."""

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for target in edges.get(todo.pop(), ()):
                if target not in seen:
                    seen.add(target)
                    todo.append(target)
        return seen

    reached = {node: reach(node) for node in edges}
    groups = {tuple(sorted(n for n in reached[node] if node in reached[n])) for node in edges}
    return sorted(list(group) for group in groups if len(group) > 1)


def test_every_module_has_a_floor():
    assert [m for m in modules() if layer(m) < 0] == []


def test_no_module_imports_one_from_a_floor_above():
    assert upward_imports(graph()) == []


def test_no_modules_import_each_other_in_a_circle():
    assert circles(graph()) == []


def test_the_checks_find_a_circle_and_an_upward_import():
    edges = {"sswp.paths": {"sswp.cli"}, "sswp.cli": {"sswp.paths"}}
    assert circles(edges) == [["sswp.cli", "sswp.paths"]]
    assert upward_imports(edges) == [("sswp.paths", "sswp.cli")]
