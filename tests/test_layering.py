"""The package's shape: no import cycles, and no module reaching for another module's private names.

Imports are read from the source (``ast``), wherever they stand — at module level or inside a
function — because an import deferred into a function to dodge a cycle is still a cycle: the two
modules still need each other. Only imports under ``if TYPE_CHECKING:`` are left out, since they
never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import runbooklib

PACKAGE_DIR = Path(runbooklib.__file__).resolve().parent
PACKAGE = "runbooklib"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(PACKAGE_DIR.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []

    def walk(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    walk(other)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append(child)
            walk(child)

    walk(tree)
    return found


def _base(module: str, node: ast.ImportFrom) -> str:
    """The absolute module a ``from … import`` names (relative levels resolved)."""
    if node.level == 0:
        return node.module or ""
    is_package = MODULES[module].name == "__init__.py"
    parts = module.split(".")
    keep = len(parts) - node.level + (1 if is_package else 0)
    base = ".".join(parts[:keep])
    return f"{base}.{node.module}" if node.module else base


def _targets(module: str) -> list[tuple[str, str | None, int]]:
    """(imported runbooklib module, imported name or None, line) for each import in ``module``."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    out: list[tuple[str, str | None, int]] = []
    for node in _imports(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, None, node.lineno) for alias in node.names if alias.name in MODULES]
            continue
        base = _base(module, node)
        if base.split(".")[0] != PACKAGE:
            continue
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            if sub in MODULES:  # `from . import module`
                out.append((sub, None, node.lineno))
            elif base in MODULES:
                out.append((base, alias.name, node.lineno))
    return out


def _graph() -> dict[str, set[str]]:
    return {m: {t for t, _, _ in _targets(m) if t != m} for m in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_package_has_no_import_cycle():
    cycles = _cycles(_graph())
    assert not cycles, "import cycles inside runbooklib:\n" + "\n".join(" ↔ ".join(c) for c in cycles)


def test_no_module_imports_another_modules_private_names():
    offences = []
    for module in MODULES:
        for target, name, line in _targets(module):
            if name and name.startswith("_") and not name.startswith("__"):
                offences.append(f"{module}:{line} imports {name} from {target}")
    assert not offences, "\n".join(offences)


def test_private_modules_are_used_only_inside_their_own_package():
    offences = []
    for module in MODULES:
        for target, _, line in _targets(module):
            leaf = target.rpartition(".")[2]
            if leaf.startswith("_") and not leaf.startswith("__"):
                owner = target.rpartition(".")[0]
                if not (module == owner or module.startswith(owner + ".")):
                    offences.append(f"{module}:{line} imports {target}, private to {owner}")
    assert not offences, "\n".join(offences)


@pytest.mark.parametrize("source, expected", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": set(), "c": {"b"}}, []),
])
def test_the_cycle_finder_finds_exactly_the_cycles(source, expected):
    assert _cycles(source) == expected


def test_imports_inside_functions_and_relative_levels_are_read(tmp_path):
    # The reader this test file relies on: it must see a deferred import, resolve `..`, and skip
    # TYPE_CHECKING blocks — or the cycle test above would pass on code that has cycles.
    assert "runbooklib.errors" in _graph()["runbooklib.steps"]
    module = next(m for m in MODULES if m.startswith("runbooklib.scenarios."))
    assert any(t.startswith("runbooklib.") for t, _, _ in _targets(module))
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import runbooklib.cli\n"
                     "def f():\n    import runbooklib.errors\n")
    names = [a.name for n in _imports(tree) for a in n.names]
    assert names == ["TYPE_CHECKING", "runbooklib.errors"]
