"""The package is a house of floors: a module imports only from its own floor or those below,
and no modules import each other in a circle. Lazy imports (inside functions) count too.

LAYERS is the one place that defines the floors, from the ground up.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
LAYERS: tuple[tuple[str, ...], ...] = (
    # The params (their dataclasses, schema and loading) and the one exception type.
    ("sswp", "sswp.errors", "sswp.config"),
    # The pipeline's plumbing, which the science stands on: the stage contract and run plan,
    # the artifact layout, atomic writes, the CPU-kernel pins (loaded before torch is),
    # the machine record, provenance, the guard around a run, and dvc.yaml generation.
    ("sswp.pipeline",),
    # The science: data, the search space and the self-supervised objectives,
    ("sswp.data", "sswp.nas", "sswp.ssl"),
    # child networks built from a genotype,
    ("sswp.models",),
    # and the training loops, checkpoints and the runtime.
    ("sswp.engine",),
    # The report wing: gather, tables, figures, verdicts; comparisons and the rerun check.
    ("sswp.report",),
    # One short module per `sswp <stage>`.
    ("sswp.stages",),
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
    edges = {"sswp.pipeline.paths": {"sswp.cli"}, "sswp.cli": {"sswp.pipeline.paths"}}
    assert circles(edges) == [["sswp.cli", "sswp.pipeline.paths"]]
    assert upward_imports(edges) == [("sswp.pipeline.paths", "sswp.cli")]
