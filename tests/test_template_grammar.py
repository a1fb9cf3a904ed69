"""Every script template parses as PowerShell and declares exactly what the runbooks bind."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import ROOT
from template_checks import call_site_bindings, declared_parameters, parse, template_problems

TEMPLATES = ROOT / "runbooklib" / "templates"
BROKEN = ROOT / "tests" / "data" / "templates"
TEMPLATE_FILES = sorted(TEMPLATES.glob("*/*.ps1"))


@pytest.fixture(scope="module")
def bindings() -> dict[str, set[str]]:
    return call_site_bindings(sorted((ROOT / "runbooklib").glob("*.py")))


def _name(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


@pytest.mark.parametrize("path", TEMPLATE_FILES, ids=_name)
def test_template_parses_and_declares_what_its_call_sites_bind(path, bindings):
    text = path.read_text(encoding="utf-8")
    if _name(path) not in bindings:
        assert not template_problems(text, declared_parameters(parse(text)) or [])  # the grammar, at least
        pytest.skip(f"no call site in runbooklib/*.py invokes {_name(path)}")
    assert template_problems(text, bindings[_name(path)]) == []


def test_the_scanner_reads_keyword_dict_and_constant_call_sites(bindings):
    assert bindings["sharepoint/set-app-principal-permission"] == {
        "Site", "NameIdentifier", "Scope", "Right", "EnableAppOnlyPolicy", "Web"}  # keys bound only when asked
    assert bindings["sharepoint/load-sharepoint-powershell"] == set()  # named by a module constant


def test_a_syntax_error_is_reported_with_its_place():
    problems = template_problems((BROKEN / "syntax-error.ps1").read_text(), {"Name"})
    assert problems and all(p.startswith("line ") for p in problems)
    assert any("missing }" in p for p in problems)


def test_a_parameter_bound_but_not_declared_is_reported():
    problems = template_problems((BROKEN / "undeclared-parameter.ps1").read_text(), {"Name", "Realm"})
    assert problems == ["parameter Realm is bound but not declared in param()"]


def test_a_declared_parameter_no_call_site_binds_is_reported():
    problems = template_problems((BROKEN / "undeclared-parameter.ps1").read_text(), set())
    assert problems == ["parameter Name is declared in param() but no call site binds it"]


def test_names_match_case_insensitively_as_powershell_binds_them():
    assert template_problems((BROKEN / "undeclared-parameter.ps1").read_text(), {"name"}) == []
