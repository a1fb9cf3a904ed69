"""The engine built-ins every lab endpoint answers, on a server that offers no snap-in or module
(the fictional "Lab" product of winrm_fixtures): what a plain Windows PowerShell runspace says."""

from __future__ import annotations

import pytest

from runbooklib.remote import RemoteSession

from winrm_fixtures import PASSWORD, _clear_faults, winrm_lab  # noqa: F401 - fixtures


@pytest.fixture(scope="module")
def session(winrm_lab):
    with RemoteSession.open(winrm_lab.target(), password=PASSWORD) as s:
        yield s


def test_a_runspace_starts_with_the_core_snapin_only(session):
    [core] = session.invoke("Get-PSSnapin").output
    assert core.is_type("System.Management.Automation.PSSnapInInfo")
    assert (core.Name, core.IsDefault, str(core)) == ("Microsoft.PowerShell.Core", True, "Microsoft.PowerShell.Core")
    registered = session.invoke("Get-PSSnapin", {"Registered": True})
    assert registered.output == [] and registered.errors == []  # the core snap-in is not "registered"
    assert session.invoke("Get-PSSnapin", {"Name": "Contoso.*"}).errors == []  # a wildcard miss is silent


def test_unknown_snapins_and_modules_are_the_engines_non_terminating_errors(session):
    result = session.invoke("Add-PSSnapin", {"Name": ["Contoso.One", "Contoso.Two"]})
    assert [e.message for e in result.errors] == [
        "The Windows PowerShell snap-in 'Contoso.One' is not installed on this computer.",
        "The Windows PowerShell snap-in 'Contoso.Two' is not installed on this computer.",
    ]
    core = session.invoke("Add-PSSnapin", {"Name": "microsoft.powershell.core"})
    assert [e.message for e in core.errors] == [
        ("Cannot add Windows PowerShell snap-in Microsoft.PowerShell.Core because it is already added. Verify the "
         "name of the snap-in and try again.")]
    module = session.invoke("Import-Module", {"Name": "Contoso.Tools"})
    [error] = module.errors
    assert error.message == ("The specified module 'Contoso.Tools' was not loaded because no valid module file was "
                             "found in any module directory.")
    assert error.error_id == "Modules_ModuleNotFound"
    assert session.invoke("Get-Module", {"ListAvailable": True}).output == []


def test_get_command_reports_what_this_runspace_can_run(session):
    [widget] = session.invoke("Get-Command", {"Name": "Get-LabWidget"}).output
    assert widget.is_type("System.Management.Automation.CommandInfo")
    assert (widget.Name, widget.CommandType, widget.Source) == ("Get-LabWidget", "Cmdlet", "")
    [builtin] = session.invoke("Get-Command", {"Name": "Add-PSSnapin"}).output
    assert builtin.Source == "Microsoft.PowerShell.Core"
    matching = session.invoke("Get-Command", {"Name": "Get-Lab*"})
    assert [c.Name for c in matching.output] == ["Get-LabBlob", "Get-LabThing", "Get-LabWidget"]
    assert session.invoke("Get-Command", {"Name": "Get-Nothing*"}).output == []
    unknown = session.invoke("Get-Command", {"Name": ["Get-LabWidget", "Get-Nothing"]})
    assert [c.Name for c in unknown.output] == ["Get-LabWidget"]
    assert [e.target for e in unknown.errors] == ["Get-Nothing"]
    core = {c.Name for c in session.invoke("Get-Command", {"Module": "Microsoft.PowerShell.Core"}).output}
    assert core == {"Add-PSSnapin", "Get-Command", "Get-Module", "Get-PSSnapin", "Import-Module"}
