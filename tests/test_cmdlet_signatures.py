"""Every cmdlet the templates call and the runbooks build binds against its real signature."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import ROOT
from runbooklib.cmdlet_signatures import BindingRefused, all_signatures, signature
from signature_checks import CmdletCall, call_problems, python_calls, template_calls

TEMPLATES = ROOT / "runbooklib" / "templates"
BROKEN = ROOT / "tests" / "data" / "templates"
TEMPLATE_FILES = sorted(TEMPLATES.glob("*/*.ps1"))


def _name(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def _problems_of(path: Path) -> list[str]:
    return [p for call in template_calls(path.read_text(encoding="utf-8"), path.stem) for p in call_problems(call)]


@pytest.mark.parametrize("path", TEMPLATE_FILES, ids=_name)
def test_every_cmdlet_a_template_calls_binds_against_its_signature(path):
    assert _problems_of(path) == []


def test_every_cmdlet_the_runbooks_build_binds_against_its_signature():
    calls = python_calls(sorted((ROOT / "runbooklib").glob("*.py")))
    assert {"Get-SPFarm", "Set-SPAuthenticationRealm", "New-SPTrustedSecurityTokenIssuer"} <= {c.cmdlet for c in calls}
    assert [p for call in calls for p in call_problems(call)] == []


def test_every_row_says_where_it_was_read_or_why_not():
    rows = all_signatures().values()
    assert rows and all(row.source or row.unconfirmed for row in rows)
    assert all(row.source is None or row.source.startswith("https://learn.microsoft.com/") for row in rows)


def test_the_table_is_package_data():
    import tomllib
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "signatures/*.yaml" in package_data["runbooklib"]


# ---------------------------------------------------------------------------- seeded mistakes

def test_an_unknown_cmdlet_is_reported():
    assert _problems_of(BROKEN / "unknown-cmdlet.ps1") == [
        "unknown-cmdlet:6: Get-SPTrustedIssuer is not in the table of cmdlet signatures (runbooklib/signatures/)"]


def test_a_native_program_is_outside_the_table():
    text = 'iisreset.exe /noforce\n& "$env:SystemRoot\\System32\\iisreset.exe" /noforce\nC:\\Windows\\System32\\iisreset.exe /stop\n'
    assert template_calls(text, "native") == []


def test_an_unknown_parameter_is_reported_in_powershells_words():
    assert _problems_of(BROKEN / "unknown-parameter.ps1") == [
        "unknown-parameter:6: Get-SPTrustedRootAuthority: A parameter cannot be found that matches parameter "
        "name 'Name'."]


def test_a_missing_mandatory_parameter_is_reported():
    problems = _problems_of(BROKEN / "missing-mandatory.ps1")
    assert problems == ["missing-mandatory:9: Register-SPAppPrincipal: Cannot process command because of one or "
                        "more missing mandatory parameters: DisplayName."]


def test_a_switch_given_a_separate_value_is_reported():
    assert _problems_of(BROKEN / "switch-with-value.ps1") == [
        "switch-with-value:8: New-SPTrustedSecurityTokenIssuer -IsTrustBroker is a switch and takes no separate "
        "value (write -IsTrustBroker:$value)"]


def test_names_from_two_parameter_sets_are_reported():
    call = CmdletCall("New-SPTrustedSecurityTokenIssuer", "here",
                      (("Name", "value"), ("Certificate", "value"), ("MetadataEndPoint", "value")))
    assert call_problems(call) == ["here: New-SPTrustedSecurityTokenIssuer: Parameter set cannot be resolved "
                                   "using the specified named parameters."]


def test_a_prefix_is_refused_in_our_text_though_powershell_would_bind_it():
    call = CmdletCall("Get-SPTrustedSecurityTokenIssuer", "here", (("Ident", "value"),))
    assert call_problems(call) == ["here: Get-SPTrustedSecurityTokenIssuer -Ident is only a prefix of -Identity: "
                                   "write the full name"]
    assert signature("Get-SPTrustedSecurityTokenIssuer").parameter("Ident") == "Identity"


def test_pipeline_input_fills_a_mandatory_parameter_that_binds_from_the_pipeline():
    add_member = CmdletCall("Add-Member", "here", (("NotePropertyName", "value"), ("NotePropertyValue", "value")))
    assert call_problems(add_member) == [
        "here: Add-Member: Cannot process command because of one or more missing mandatory parameters: InputObject."]
    assert call_problems(CmdletCall(add_member.cmdlet, "here", add_member.named, piped=True)) == []


def test_a_python_switch_given_a_string_is_reported():
    call = CmdletCall("New-SPAzureAccessControlServiceApplicationProxy", "farm.py:1",
                      (("Name", "python:expression"), ("MetadataServiceEndpointUri", "python:expression"),
                       ("DefaultProxyGroup", "python:literal")))
    assert call_problems(call) == ["farm.py:1: New-SPAzureAccessControlServiceApplicationProxy -DefaultProxyGroup is "
                                   "a switch and takes no separate value (write -DefaultProxyGroup:$value)"]


def test_the_default_set_decides_between_complete_sets():
    assert signature("Get-SPServiceApplicationProxyGroup").parameter_set([]).name == "Identity"
    with pytest.raises(BindingRefused, match="Parameter set cannot be resolved"):
        signature("Set-SPTrustedSecurityTokenIssuer").parameter_set(["Identity", "RegisteredIssuerName"])
