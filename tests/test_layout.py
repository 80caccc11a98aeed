"""The layout keeps its promises: no import cycle, services never import handlers, function_app only registers.

Imports are read from the source (function-level and TYPE_CHECKING ones included), so a lazy import
inside a function counts as much as one at the top of a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

SHARED = ROOT / "shared"


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    return ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)


MODULES = {_module_name(p): p for p in SHARED.rglob("*.py")}


def _imports(path: Path) -> set[str]:
    """Every shared.* module `path` imports, at any depth of the file."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: _imports(path) for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each a cycle of imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_in_shared() -> None:
    assert _cycles(GRAPH) == []


def _handler(name: str) -> bool:
    """A handler speaks the Functions host's types; a service does not."""
    return "azure.functions" in MODULES[name].read_text(encoding="utf-8")


def test_no_service_module_imports_a_handler() -> None:
    services = [name for name in GRAPH if not _handler(name) and not name.startswith("shared.cli")]
    assert services and [h for h in GRAPH if _handler(h)]
    offending = {name: sorted(d for d in GRAPH[name] if _handler(d)) for name in services}
    assert {name: deps for name, deps in offending.items() if deps} == {}


def test_every_package_of_the_layout_exists_and_holds_its_flow() -> None:
    packages = {p.name for p in SHARED.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages == {"model", "runkeeper", "strava", "storage", "live", "history", "owner", "page", "web", "cli"}
    pure = [name for name in GRAPH if name.startswith("shared.model")]
    assert pure and all(d.startswith("shared.model") for name in pure for d in GRAPH[name])


def test_function_app_only_registers_blueprints() -> None:
    tree = ast.parse((ROOT / "function_app.py").read_text(encoding="utf-8"))
    assert not [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported and all(m == "__future__" or m.endswith(".blueprint") for m in imported if m != "azure")
