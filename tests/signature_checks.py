"""Every cmdlet call the runbooks make, checked against the table of real cmdlet signatures
(:mod:`runbooklib.cmdlet_signatures`).

* :func:`template_calls` — the cmdlet calls in a template's text (tree-sitter ``command``
  nodes; functions the script defines itself are not cmdlets and are left out, and so are
  native programs, a command name ending in ``.exe`` such as ``iisreset.exe``: PowerShell runs
  an application with its arguments as they are, so no signature applies);
* :func:`python_calls` — the calls the runbooks build with cmdlet + bound parameters
  (``_run("Get-SPFarm", …)``, ``_invoke("…", {…})``, ``session.invoke("…", {…})``);
* :func:`call_problems` — what PowerShell would refuse in one call: a cmdlet the table does not
  know, a parameter the cmdlet does not have, names that bind no complete parameter set, a
  switch given a separate value.

Parameter names are checked strictly: the full name or a documented alias. PowerShell also
accepts an unambiguous prefix, but a prefix that binds today can become ambiguous when a later
version adds a parameter, so our own text never relies on one.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from tree_sitter import Node

from runbooklib.cmdlet_signatures import BindingRefused, Signature, signature
from template_checks import UNKNOWN, parse, python_call_sites

__all__ = ["CmdletCall", "call_problems", "python_calls", "template_calls"]

# The runbooks' ways of calling one cmdlet with bound parameters (see runbooklib/product.py, remote.py).
_CMDLET_CALLS = {"_run": "keywords", "_invoke": "dict", "invoke": "dict"}
_VERB_NOUN = re.compile(r"^[A-Za-z]+-[A-Za-z0-9]+$")


def _names_a_cmdlet(call: ast.Call) -> bool:
    """Other methods share these names (a step runner's ``_run(step)``, a session's ``_run(label, …)``):
    a cmdlet call is one whose first argument is a Verb-Noun string."""
    first = call.args[0] if call.args else None
    return isinstance(first, ast.Constant) and isinstance(first.value, str) and bool(_VERB_NOUN.match(first.value))


@dataclass(frozen=True)
class CmdletCall:
    cmdlet: str
    where: str
    named: tuple[tuple[str, str], ...]  # (name as written, how: "value" | "colon" | "bare" | "python:<kind>")
    positional: int = 0
    piped: bool = False


# ---------------------------------------------------------------------------- templates

def template_calls(text: str, where: str) -> list[CmdletCall]:
    """Every cmdlet call in template ``text`` (``where`` names the template in the results)."""
    root = parse(text).root_node
    own_functions = {_function_name(n) for n in _walk(root) if n.type == "function_statement"}
    calls = []
    for node in (n for n in _walk(root) if n.type == "command"):
        name_node = next((c for c in node.children if c.type == "command_name"), None)
        if name_node is None or name_node.text.decode().lower() in own_functions \
                or name_node.text.decode().lower().endswith(".exe"):
            continue
        named, positional = _elements(next((c for c in node.children if c.type == "command_elements"), None))
        piped = node.prev_sibling is not None and node.prev_sibling.type == "|"
        calls.append(CmdletCall(name_node.text.decode(), f"{where}:{node.start_point[0] + 1}",
                                tuple(named), positional, piped))
    return calls


def _walk(node: Node) -> Iterable[Node]:
    yield node
    for child in node.children:
        yield from _walk(child)


def _function_name(node: Node) -> str:
    named = next((c for c in node.children if c.type == "function_name"), None)
    return named.text.decode().lower() if named is not None else ""


def _elements(elements: Node | None) -> tuple[list[tuple[str, str]], int]:
    """Named parameters (with how each got its value) and the count of positional arguments."""
    named: list[tuple[str, str]] = []
    positional = 0
    children = list(elements.children) if elements is not None else []
    i = 0
    while i < len(children):
        child = children[i]
        if child.type == "command_parameter":
            name = child.text.decode().lstrip("-").rstrip(":")
            following = children[i + 1:i + 3]
            separator = following[0] if following and following[0].type == "command_argument_sep" else None
            argument = following[1] if separator is not None and len(following) > 1 else None
            if separator is not None and any(c.type == ":" for c in separator.children):
                named.append((name, "colon"))
                i += 3
                continue
            if argument is not None and argument.type not in ("command_parameter", "command_argument_sep"):
                named.append((name, "value"))
                i += 3
                continue
            named.append((name, "bare"))
        elif child.type != "command_argument_sep":
            positional += 1
        i += 1
    return named, positional


# ---------------------------------------------------------------------------- Python call sites

def python_calls(paths: Iterable[Path]) -> list[CmdletCall]:
    """Every cmdlet call the runbooks build with cmdlet + bound parameters in ``paths``."""
    return [CmdletCall(site.name, site.where, tuple((name, f"python:{_value_kind(value)}")
                                                    for name, value in site.parameters.items()))
            for site in python_call_sites(paths, _CMDLET_CALLS, _names_a_cmdlet)]


def _value_kind(value: ast.expr) -> str:
    if value is UNKNOWN:
        return "unknown"
    if isinstance(value, ast.Constant):
        return "none" if value.value is None else "bool" if isinstance(value.value, bool) else "literal"
    return "expression"


# ---------------------------------------------------------------------------- the checks

def call_problems(call: CmdletCall) -> list[str]:
    """What PowerShell would refuse in ``call``; empty when it binds."""
    found = signature(call.cmdlet)
    if found is None:
        return [f"{call.where}: {call.cmdlet} is not in the table of cmdlet signatures (runbooklib/signatures/)"]
    problems: list[str] = []
    bound: list[str] = []
    for name, how in call.named:
        canonical = _parameter(found, name, call, problems)
        if canonical is None:
            continue
        bound.append(canonical)
        parameter = found.parameters.get(canonical)
        if parameter is None:
            continue  # a common parameter
        if parameter.switch and how in ("value", "python:literal"):
            problems.append(f"{call.where}: {call.cmdlet} -{canonical} is a switch and takes no separate value "
                            f"(write -{canonical}:$value)")
        if not parameter.switch and how in ("bare", "python:none"):
            problems.append(f"{call.where}: {call.cmdlet} -{canonical} needs a value")
    if not problems:
        problem = _set_problem(found, bound, call)
        if problem:
            problems.append(f"{call.where}: {call.cmdlet}: {problem}")
    return problems


def _parameter(found: Signature, name: str, call: CmdletCall, problems: list[str]) -> str | None:
    try:
        return found.parameter(name, prefixes=False)
    except BindingRefused:
        pass
    try:
        full = found.parameter(name, prefixes=True)
        problems.append(f"{call.where}: {call.cmdlet} -{name} is only a prefix of -{full}: write the full name")
    except BindingRefused as exc:
        problems.append(f"{call.where}: {call.cmdlet}: {exc.message}")
    return None


def _set_problem(found: Signature, bound: list[str], call: CmdletCall) -> str | None:
    """None when some parameter set binds ``bound`` plus the call's positional arguments."""
    first_refusal: BindingRefused | None = None
    for candidate in _with_positionals(found, bound, call.positional):
        try:
            found.parameter_set(candidate, piped=call.piped)
            return None
        except BindingRefused as exc:
            first_refusal = first_refusal or exc
    if first_refusal is None:
        return f"no parameter set takes {call.positional} positional argument(s)"
    return first_refusal.message


def _with_positionals(found: Signature, bound: list[str], count: int) -> list[list[str]]:
    """Per parameter set, the names bound once the positional arguments fill its open positions."""
    if count == 0:
        return [bound]
    options = []
    taken = {b.lower() for b in bound}
    for parameter_set in found.sets:
        positional = sorted((p for p in (found.parameters[m] for m in parameter_set.members)
                             if p.position is not None and p.name.lower() not in taken), key=lambda p: p.position)
        if len(positional) >= count:
            options.append(bound + [p.name for p in positional[:count]])
    return options
