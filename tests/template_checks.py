"""PowerShell template text checked against the language: a real PowerShell grammar
(tree-sitter-powershell) and the parameters the runbooks' Python binds.

* :func:`template_problems` — what is wrong with one template text, given the names its call
  sites bind: syntax errors (with line and column), parameters bound but not declared in its
  ``param()`` block, parameters declared but bound by no call site.
* :func:`call_site_bindings` — which parameter names the Python code binds for each template,
  read from ``_template("product/name", Key=…)`` and ``invoke_template("product/name", {…})``
  calls; a call the scanner cannot read is an error, so a new way of binding cannot slip past.
* :func:`python_call_sites` — the same scanner for any family of calls (the cmdlet calls
  ``_run("Get-SPFarm", …)`` / ``_invoke(…)`` / ``invoke(…)`` too), one :class:`CallSite` per call.

PowerShell matches parameter names case-insensitively; so do these checks.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Mapping

import tree_sitter_powershell
from tree_sitter import Language, Node, Parser, Tree

__all__ = ["CallSite", "call_site_bindings", "declared_parameters", "parse", "python_call_sites", "syntax_errors",
           "template_problems"]

_CALLS = {"_template": "keywords", "invoke_template": "dict"}

# A bound value the scanner cannot see (a key of a dict built elsewhere in the function).
UNKNOWN = ast.Constant(value=Ellipsis)


@dataclass(frozen=True)
class CallSite:
    """One Python call that names a template or cmdlet and binds parameters to it."""

    name: str                           # the template or cmdlet name
    where: str                          # file:line
    parameters: Mapping[str, ast.expr]  # name → the value's expression (UNKNOWN when not visible)


@lru_cache(maxsize=1)
def _parser() -> Parser:
    return Parser(Language(tree_sitter_powershell.language()))


def parse(text: str) -> Tree:
    return _parser().parse(text.encode("utf-8"))


def syntax_errors(tree: Tree) -> list[str]:
    """Each error or missing node, as ``line L, column C: …`` (1-based)."""
    found: list[str] = []

    def visit(node: Node) -> None:
        if node.is_error or node.is_missing:
            line, column = node.start_point
            what = f"missing {node.type}" if node.is_missing else f"cannot parse {_snippet(node)!r}"
            found.append(f"line {line + 1}, column {column + 1}: {what}")
            return
        if node.has_error:
            for child in node.children:
                visit(child)

    visit(tree.root_node)
    return found


def declared_parameters(tree: Tree) -> list[str] | None:
    """The names the script's ``param()`` block declares, in order; None when it has no block."""
    block = next((n for n in tree.root_node.children if n.type == "param_block"), None)
    if block is None:
        return None
    names = []
    for parameter_list in (c for c in block.children if c.type == "parameter_list"):
        for parameter in (c for c in parameter_list.children if c.type == "script_parameter"):
            variable = next(c for c in parameter.children if c.type == "variable")
            names.append(variable.text.decode("utf-8").lstrip("$"))
    return names


def template_problems(text: str, bound: Iterable[str]) -> list[str]:
    """What is wrong with template ``text`` whose call sites bind the parameter names ``bound``."""
    tree = parse(text)
    problems = syntax_errors(tree)
    declared = declared_parameters(tree) or []
    declared_lower = {name.lower() for name in declared}
    bound = sorted(set(bound), key=str.lower)
    bound_lower = {name.lower() for name in bound}
    problems += [f"parameter {name} is bound but not declared in param()" for name in bound
                 if name.lower() not in declared_lower]
    problems += [f"parameter {name} is declared in param() but no call site binds it" for name in declared
                 if name.lower() not in bound_lower]
    return problems


def call_site_bindings(paths: Iterable[Path]) -> dict[str, set[str]]:
    """Template name → every parameter name some call site binds for it (across ``paths``)."""
    bindings: dict[str, set[str]] = {}
    for site in python_call_sites(paths, _CALLS):
        bindings.setdefault(site.name, set()).update(site.parameters)
    return bindings


def python_call_sites(paths: Iterable[Path], calls: Mapping[str, str],
                      only: Callable[[ast.Call], bool] | None = None) -> list[CallSite]:
    """Every call in ``paths`` to a function named in ``calls`` (name → ``"keywords"`` when it takes
    ``name, **parameters``, ``"dict"`` when it takes ``name, {parameters}``) and, when given,
    accepted by ``only``. The bodies of those functions themselves are skipped: they only
    forward their arguments."""
    sites: list[CallSite] = []
    for path in paths:
        module = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        constants = {t.id: n.value.value for n in module.body if isinstance(n, ast.Assign)
                     and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)
                     for t in n.targets if isinstance(t, ast.Name)}
        for function in (n for n in ast.walk(module) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
            dicts = _dict_keys_by_name(function)
            for call in (n for n in ast.walk(function) if isinstance(n, ast.Call)):
                kind = calls.get(_called_name(call))
                if kind is None or function.name in calls or _forwards_own_field(call) or (only and not only(call)):
                    continue
                where = f"{path.name}:{call.lineno}"
                name = _string(call.args[0] if call.args else None, constants, where)
                values = _keyword_values(call, dicts, where) if kind == "keywords" else _dict_values(call, dicts, where)
                sites.append(CallSite(name, where, values))
        if calls is _CALLS:
            sites += _loader_declarations(module, constants, path)
    return sites


def _forwards_own_field(call: ast.Call) -> bool:
    """``invoke_template(self.template)``: a loader running the template it was declared with
    (see :func:`_loader_declarations`), binding nothing."""
    first = call.args[0] if call.args else None
    return (isinstance(first, ast.Attribute) and isinstance(first.value, ast.Name) and first.value.id == "self"
            and len(call.args) == 1 and not call.keywords)


def _loader_declarations(module: ast.Module, constants: dict[str, str], path: Path) -> list[CallSite]:
    """``X = Loader(template=NAME, …)`` at module level: the template runs with no parameters."""
    found = []
    for node in (n for n in module.body if isinstance(n, ast.Assign) and isinstance(n.value, ast.Call)):
        for keyword in (k for k in node.value.keywords if k.arg == "template"):
            where = f"{path.name}:{node.lineno}"
            found.append(CallSite(_string(keyword.value, constants, where), where, {}))
    return found


# ---------------------------------------------------------------------------- scanning helpers

def _snippet(node: Node) -> str:
    return node.text.decode("utf-8", "replace").splitlines()[0][:40] if node.text else node.type


def _called_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _string(node: ast.AST | None, constants: dict[str, str], where: str) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id]
    raise ValueError(f"{where}: the template name is not a string the check can read")


def _dict_keys_by_name(function: ast.AST) -> dict[str, set[str]]:
    """``name = {"Key": …}`` and ``name["Key"] = …`` in one function: the keys each name may hold."""
    keys: dict[str, set[str]] = {}
    unreadable: set[str] = set()
    for node in ast.walk(function):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and isinstance(node.value, ast.Dict):
                    if _readable_keys(node.value):
                        keys.setdefault(target.id, set()).update(_literal_keys(node.value))
                    else:
                        unreadable.add(target.id)
                elif (isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name)
                      and isinstance(target.slice, ast.Constant) and isinstance(target.slice.value, str)):
                    keys.setdefault(target.value.id, set()).add(target.slice.value)
    # A dict whose keys are not all literal strings is no parameter dict the check can read:
    # it is refused only if a call binds it (its name is then missing from the result).
    return {name: found for name, found in keys.items() if name not in unreadable}


def _readable_keys(node: ast.Dict) -> bool:
    return all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in node.keys)


def _literal_keys(node: ast.Dict) -> set[str]:
    if not all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in node.keys):
        raise ValueError(f"line {node.lineno}: a parameter dict with keys the check cannot read")
    return {k.value for k in node.keys}  # type: ignore[union-attr]


def _keyword_values(call: ast.Call, dicts: dict[str, set[str]], where: str) -> dict[str, ast.expr]:
    values: dict[str, ast.expr] = {}
    for keyword in call.keywords:
        if keyword.arg is not None:
            values[keyword.arg] = keyword.value
        elif isinstance(keyword.value, ast.Name) and keyword.value.id in dicts:
            values.update(dict.fromkeys(dicts[keyword.value.id], UNKNOWN))
        else:
            raise ValueError(f"{where}: **parameters the check cannot read")
    return values


def _dict_values(call: ast.Call, dicts: dict[str, set[str]], where: str) -> dict[str, ast.expr]:
    value = call.args[1] if len(call.args) > 1 else None
    if value is None or (isinstance(value, ast.Constant) and value.value is None):
        return {}
    if isinstance(value, ast.Dict):
        _literal_keys(value)  # refuses keys the check cannot read
        return {k.value: v for k, v in zip(value.keys, value.values)}  # type: ignore[union-attr]
    if isinstance(value, ast.Name) and value.id in dicts:
        return dict.fromkeys(dicts[value.id], UNKNOWN)
    raise ValueError(f"{where}: parameters the check cannot read")
