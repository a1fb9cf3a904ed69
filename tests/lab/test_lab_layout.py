"""The lab's shape: products in packages, handlers callable alone, one state store, one registry.

Handlers are called here directly with a minimal invocation (no WinRM endpoint, no server):
what an administrator would see from the cmdlet is what the handler writes.
"""

from __future__ import annotations

import ast
import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from runbooklib.lab import powershell
from runbooklib.lab.estate import Estate
from runbooklib.lab.registry import PRODUCTS, product_of
from runbooklib.lab.sharepoint import cmdlets, templates
from runbooklib.lab.sharepoint.operations import FarmOperations
from runbooklib.lab.sharepoint.state import FarmDefinition, FarmStore
from runbooklib.lab.store import StateStore
from runbooklib.lab.winrm.api import CommandTable, TerminatingError

from invocation_harness import MemoryInvocation

LAB = Path(__file__).resolve().parents[2] / "runbooklib" / "lab"
ORACLE_MODULES = ("s2s/oracle.py",)


def _module_name(path: Path) -> str:
    parts = path.relative_to(LAB.parent.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every import in ``path``, wherever it is (top level, function, TYPE_CHECKING)."""
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            module = (f"{base}.{node.module}" if node.module else base) if node.level else node.module or ""
            names = [alias.name for alias in node.names]
            # `from . import texts` imports a module, not a name
            submodules = [n for n in names if (LAB.parent.parent / (module.replace(".", "/") + f"/{n}.py")).exists()]
            found.extend((f"{module}.{n}", []) for n in submodules)
            rest = [n for n in names if n not in submodules]
            if rest:
                found.append((module, rest))
    return found


def _lab_modules() -> dict[str, Path]:
    return {_module_name(p): p for p in LAB.rglob("*.py")}


def _run(handler, ops: FarmOperations, parameters: dict) -> MemoryInvocation:
    inv = MemoryInvocation("handler", parameters)
    handler(ops, inv)
    return inv


@pytest.fixture
def ops(tmp_path: Path) -> FarmOperations:
    store = FarmStore.open(tmp_path / "sp-a.json", FarmDefinition.preset("sp-a"))
    return FarmOperations(store, ca_bundle=None, metadata_timeout=2.0)


# ------------------------------------------------------------------------------------ layout

def test_the_lab_has_no_import_cycle_and_imports_no_private_name_across_modules():
    modules = _lab_modules()
    graph: dict[str, set[str]] = {}
    private = []
    for name, path in modules.items():
        for module, names in _imports(path):
            if module in modules and module != name:
                graph.setdefault(name, set()).add(module)
                private += [f"{name}: from {module} import {n}" for n in names if n.startswith("_")]
    assert private == []

    # A package's __init__ importing its own modules is how a package exports: not an edge of a cycle.
    edges = {m: {n for n in targets if not n.startswith(m + ".")} for m, targets in graph.items()}
    cycles = []

    def visit(node: str, path: tuple[str, ...]) -> None:
        for nxt in sorted(edges.get(node, ())):
            if nxt in path:
                cycles.append(path[path.index(nxt):] + (nxt,))
            elif nxt not in done:
                visit(nxt, (*path, nxt))
        done.add(node)

    done: set[str] = set()
    for module in sorted(edges):
        visit(module, (module,))
    assert cycles == []


def test_the_oracle_never_imports_runbooklib_outside_the_lab():
    for relative in ORACLE_MODULES:
        for module, _ in _imports(LAB / relative):
            assert not module.startswith("runbooklib.") or module.startswith("runbooklib.lab."), module


def test_the_estate_names_no_product_in_its_start_reset_and_inventory_code():
    tree = ast.parse((LAB / "estate.py").read_text())
    estate = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Estate")
    for method in ("start", "reset", "reset_offline", "inventory", "write_inventory"):
        source = ast.unparse(next(n for n in estate.body if isinstance(n, ast.FunctionDef) and n.name == method))
        for word in ("SharePoint", "Tenant", "TENANT", "SHAREPOINT", "sp-a", "contoso", "WinRM"):
            assert word not in source, f"Estate.{method} names {word}"


def test_every_registered_host_is_in_the_inventory_of_its_section(tmp_path: Path):
    with Estate(tmp_path / "lab") as estate:
        inventory = estate.inventory()
    for product in PRODUCTS:
        for host in product.hosts:
            assert host in inventory[product.section]
            assert product_of(host) is product
    with pytest.raises(KeyError):
        product_of("no-such-host")


# ------------------------------------------------------------------------------------ handlers alone

def test_a_get_cmdlet_handler_answers_an_unknown_identity_with_a_non_terminating_error(ops):
    everything = _run(cmdlets.get_issuer, ops, {})
    assert [o.properties["Name"] for o in everything.result.output] == \
        ["Contoso Expenses add-in", "Contoso Invoices add-in"]
    missing = _run(cmdlets.get_issuer, ops, {"Identity": "No such issuer"})
    assert missing.result.output == []
    (error,) = missing.result.errors
    assert error.category == "ObjectNotFound" and error.target == "No such issuer"


def test_a_prompting_cmdlet_handler_needs_confirm_false_and_changes_nothing_without_it(ops):
    with pytest.raises(TerminatingError) as refused:
        _run(cmdlets.remove_issuer, ops, {"Identity": "Contoso Expenses add-in"})
    assert refused.value.spec.message == powershell.confirm_refused("Remove-SPTrustedSecurityTokenIssuer",
                                                                     "Contoso Expenses add-in")
    assert len(_run(cmdlets.get_issuer, ops, {}).result.output) == 2
    _run(cmdlets.remove_issuer, ops, {"Identity": "Contoso Expenses add-in", "Confirm": False})
    assert [o.properties["Name"] for o in _run(cmdlets.get_issuer, ops, {}).result.output] == \
        ["Contoso Invoices add-in"]


def test_a_template_handler_validates_its_set_as_powershell_does(ops):
    with pytest.raises(TerminatingError) as refused:
        _run(templates.set_app_principal_permission, ops, {
            "Site": "https://sharepoint.contoso.lab", "NameIdentifier": "x@y", "Scope": "Everywhere",
            "Right": "Read"})
    assert refused.value.spec.error_id == "ParameterArgumentValidationError"
    assert '"Site,SiteCollection,SiteSubscription"' in refused.value.spec.message


def test_every_cmdlet_and_template_is_registered_from_its_table(ops):
    table = CommandTable()
    cmdlets.register_cmdlets(table, ops)
    templates.register_templates(table, ops)
    assert sorted(table.cmdlet_names()) == sorted(row.name for row in cmdlets.CMDLETS)
    assert set(templates.TEMPLATES) == set(templates.TEMPLATE_PARAMETERS)


# ------------------------------------------------------------------------------------ the state store

def _document() -> dict:
    return {"initial": {"n": 0}, "current": {"n": 0}}


def test_the_store_writes_0600_atomically_and_resets_to_the_initial_state(tmp_path: Path):
    store = StateStore.load(tmp_path / "s.json", _document)
    with store.change() as state:
        state["n"] = 1
    assert json.loads((tmp_path / "s.json").read_text())["current"] == {"n": 1}
    assert stat.S_IMODE((tmp_path / "s.json").stat().st_mode) == 0o600
    with pytest.raises(RuntimeError), store.change() as state:
        state["n"] = 2
        raise RuntimeError("half a change")
    with store.view() as state:
        assert state == {"n": 1}
    store.reset()
    with StateStore.load(tmp_path / "s.json", None).view() as state:
        assert state == {"n": 0}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json", "s.lock"]  # no temporary file left


def test_the_store_sees_a_change_another_process_wrote(tmp_path: Path):
    store = StateStore.load(tmp_path / "s.json", _document)
    with store.view() as state:
        assert state == {"n": 0}
    script = ("import sys; from pathlib import Path; from runbooklib.lab.store import StateStore\n"
              "s = StateStore.load(Path(sys.argv[1]), None)\n"
              "with s.change() as state: state['n'] = 7\n")
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "s.json")], check=True,
                   cwd=LAB.parent.parent)
    with store.view() as state:
        assert state == {"n": 7}


def test_a_store_without_a_file_and_nothing_to_create_it_from_is_refused(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        StateStore.load(tmp_path / "missing.json", None)
