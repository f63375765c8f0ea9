"""The shape of the code, checked: no import cycles (TYPE_CHECKING imports included) and no
product function longer than 40 lines."""

from __future__ import annotations

import ast

import grimp

from tests.support import ROOT

PACKAGES = ("server", "rooms", "stories")
MAX_FUNCTION_LINES = 40


def import_cycles() -> list[list[str]]:
    """Strongly connected groups of modules (Tarjan), each one a cycle of imports."""
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=False)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in edges.get(module, []):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return cycles


def long_functions() -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    lines = (node.end_lineno or node.lineno) - node.lineno + 1
                    if lines > MAX_FUNCTION_LINES:
                        found.append(f"{path.relative_to(ROOT)}:{node.name}")
    return found


def test_no_import_cycles() -> None:
    assert import_cycles() == []


def test_no_long_functions() -> None:
    assert long_functions() == []
