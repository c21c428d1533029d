"""The package's import graph (every import statement, lazy ones inside functions included): no
cycle between modules or between subpackages, the core knows nothing of the command line, and
only the lifecycle and the command line depend on training."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.unit.support import REPO

PACKAGE = REPO / "mlops_gitops"
# copied into each bento, imports nothing of mlops-gitops; templates are data
SEPARATE = ("serving/runtime", "templates")


def _module(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    files = {_module(p): p for p in PACKAGE.rglob("*.py")
             if not any(part in p.relative_to(PACKAGE).as_posix() for part in SEPARATE)}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([node.module] if node.module else []))
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def _subpackage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (PACKAGE / parts[1]).is_dir() else module


def test_the_graph_sees_lazy_imports():
    graph = import_graph()
    assert "mlops_gitops.train.trainer" in graph["mlops_gitops.lifecycle"]  # inside a function
    assert "mlops_gitops.registry.open" in graph["mlops_gitops.cli.reconcile_commands"]


def test_no_module_imports_itself_back():
    assert cycles(import_graph()) == []


def test_no_two_subpackages_import_each_other():
    graph = import_graph()
    packages: dict[str, set[str]] = {}
    for module, targets in graph.items():
        for target in targets:
            if _subpackage(module) != _subpackage(target):
                packages.setdefault(_subpackage(module), set()).add(_subpackage(target))
    assert cycles(packages) == []


def test_the_core_knows_nothing_of_the_command_line():
    graph = import_graph()
    outside = {m: sorted(t for t in targets if t.startswith("mlops_gitops.cli"))
               for m, targets in graph.items() if not m.startswith("mlops_gitops.cli")}
    assert {m: t for m, t in outside.items() if t} == {"mlops_gitops.__main__": [
        "mlops_gitops.cli.app"]}


def test_only_the_lifecycle_and_the_command_line_depend_on_training():
    graph = import_graph()
    users = {m for m, targets in graph.items() if not m.startswith("mlops_gitops.train")
             and any(t.startswith("mlops_gitops.train") for t in targets)}
    assert users == {"mlops_gitops.lifecycle", "mlops_gitops.cli.app"}
