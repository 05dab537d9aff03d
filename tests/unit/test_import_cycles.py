"""No import circle in harness/: dependencies point down (cli/plugin -> ... -> stack -> topology).

Every import counts, wherever it stands: at module level, inside a function (a lazy import
that only hides a circle is still one) and under ``if TYPE_CHECKING:`` (a type that needs the
module above it is a circle in the design). The source is parsed, never imported, so a circle
is found even where Python would happen to resolve it at run time.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Edge:
    """`source` imports `target`, at these `lines` of `path`."""

    source: str
    target: str
    path: str
    lines: tuple[int, ...]

    def __str__(self) -> str:
        return f"{self.source} -> {self.target} ({self.path}:{','.join(map(str, self.lines))})"


def modules(root: Path, package: str) -> dict[str, Path]:
    """Every module of the package under `root`, by dotted name (a package by its __init__)."""
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _absolute(module: str | None, level: int, importer: str, is_package: bool) -> str:
    """The dotted name a (possibly relative) `from` import names."""
    if level == 0:
        return module or ""
    base = importer.split(".")
    base = base[: len(base) - level + (1 if is_package else 0)]
    return ".".join(base + ([module] if module else []))


def imports(name: str, path: Path, known: dict[str, Path], root: Path) -> Iterator[tuple[str, int]]:
    """(module, line) for each import of a module of the package in one file, wherever it
    stands in the file. ``from a import b`` names the module a.b when there is one, else a."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node.module, node.level, name, path.name == "__init__.py")
            targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module
                       for alias in node.names]
        for target in targets:
            if target in known and target != name:
                yield target, node.lineno


def graph(root: Path, package: str) -> dict[str, list[Edge]]:
    """Each module's imports of the package's modules, one edge per module imported."""
    known = modules(root, package)
    edges = {}
    for name, path in known.items():
        lines: dict[str, set[int]] = {}
        for target, line in imports(name, path, known, root):
            lines.setdefault(target, set()).add(line)
        edges[name] = [Edge(name, target, str(path.relative_to(root)), tuple(sorted(found)))
                       for target, found in sorted(lines.items())]
    return edges


def cycles(edges: dict[str, list[Edge]]) -> list[list[Edge]]:
    """The circles among the modules, each as the imports that close it: per strongly connected
    group (Tarjan), the shortest circle through each import inside the group, so every import
    line that takes part in a circle is named; each circle once, from its first module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(node: str) -> None:  # bounded: each module is visited once
        index[node] = low[node] = len(index)
        stack.append(node)
        for edge in edges.get(node, []):
            if edge.target not in index:
                visit(edge.target)
                low[node] = min(low[node], low[edge.target])
            elif edge.target in stack:
                low[node] = min(low[node], index[edge.target])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(edges):
        if node not in index:
            visit(node)
    found: dict[frozenset[Edge], list[Edge]] = {}
    for group in groups:
        for source in sorted(group):
            for edge in edges[source]:
                if edge.target in group:
                    circle = [edge] + _shortest_path(edge.target, source, group, edges)
                    first = min(range(len(circle)), key=lambda i: circle[i].source)
                    found.setdefault(frozenset(circle), circle[first:] + circle[:first])
    return sorted(found.values(), key=lambda circle: (len(circle), [e.source for e in circle]))


def _shortest_path(start: str, goal: str, members: set[str], edges: dict[str, list[Edge]]) -> list[Edge]:
    """The fewest imports from `start` to `goal` inside a strongly connected group (breadth-first)."""
    paths: dict[str, list[Edge]] = {start: []}
    frontier = [start]
    while frontier and goal not in paths:  # bounded: each member enters the frontier once
        following = []
        for node in frontier:
            for edge in edges.get(node, []):
                if edge.target in members and edge.target not in paths:
                    paths[edge.target] = paths[node] + [edge]
                    following.append(edge.target)
        frontier = following
    return paths[goal]  # in a strongly connected group every member reaches every other


def describe(circle: list[Edge]) -> str:
    return " -> ".join([circle[0].source] + [e.target for e in circle]) + "\n      " + \
        "\n      ".join(str(e) for e in circle)


def test_harness_has_no_import_circle():
    """Catches any import circle among harness/'s modules, lazy and TYPE_CHECKING imports
    included (e.g. stack -> faults.registry -> faults.attach -> stack): the failure names each
    circle and the lines that close it."""
    found = cycles(graph(ROOT, "harness"))
    assert not found, "import circles in harness/:\n  " + "\n  ".join(describe(c) for c in found)


def test_a_circle_through_a_function_level_import_is_found(tmp_path):
    """Catches the check seeing only module-level imports (a lazy import hiding a circle would
    pass), or missing one hidden under TYPE_CHECKING or spelled as a relative import."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "low.py").write_text("import os\n\ndef later():\n    from pkg.sub import high\n")
    (package / "sub" / "high.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                             "    from .. import low\n")
    (package / "alone.py").write_text("from pkg import low\n")
    (circle,) = cycles(graph(tmp_path, "pkg"))
    assert [(e.source, e.target, e.lines) for e in circle] == [("pkg.low", "pkg.sub.high", (4,)),
                                                               ("pkg.sub.high", "pkg.low", (3,))]
