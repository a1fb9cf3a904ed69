"""The lab farm binds a cmdlet's parameters from the table of real cmdlet signatures: what the table
says the product refuses, the lab refuses with PowerShell's binding error. Real pypsrp against
the lab estate."""

from __future__ import annotations

import pytest

from estate_fixtures import connections, estate, lab_inventory  # noqa: F401 - fixtures
from runbooklib.cmdlet_signatures import BindingRefused, signature
from runbooklib.errors import RemoteError


def _refusal(connections, cmdlet: str, parameters: dict) -> RemoteError:
    with pytest.raises(RemoteError) as info:
        connections.invoke("sp-a", cmdlet, parameters)
    return info.value


def _table_refusal(cmdlet: str, names: list[str]) -> BindingRefused:
    row = signature(cmdlet)
    with pytest.raises(BindingRefused) as info:
        for name in names:
            row.parameter(name)
        row.parameter_set(names)
    return info.value


def test_a_parameter_the_signature_lacks_is_refused(connections):
    # Get-SPTrustedRootAuthority has no -Name, though older help showed one (office-docs-powershell#6829).
    refused = _refusal(connections, "Get-SPTrustedRootAuthority", {"Name": "local"})
    assert refused.reason == "A parameter cannot be found that matches parameter name 'Name'."
    assert refused.error_id == "NamedParameterNotFound"
    assert refused.reason == _table_refusal("Get-SPTrustedRootAuthority", ["Name"]).message


def test_a_missing_mandatory_parameter_is_refused_as_a_remote_host_refuses_it(connections):
    refused = _refusal(connections, "Get-SPAuthenticationProvider", {"WebApplication": "https://sharepoint.contoso.lab"})
    assert refused.reason == "Cannot process command because of one or more missing mandatory parameters: Zone."
    assert refused.error_id == "MissingMandatoryParameter"
    assert refused.reason == _table_refusal("Get-SPAuthenticationProvider", ["WebApplication"]).message


def test_names_that_fit_no_single_parameter_set_are_refused_and_change_nothing(connections):
    before = len(connections.invoke("sp-a", "Get-SPTrustedRootAuthority").output)
    # -Name alone: the certificate set and the metadata set both lack their mandatory parameter.
    refused = _refusal(connections, "New-SPTrustedRootAuthority", {"Name": "Partner"})
    assert refused.reason == "Parameter set cannot be resolved using the specified named parameters."
    assert refused.error_id == "AmbiguousParameterSet"
    assert len(connections.invoke("sp-a", "Get-SPTrustedRootAuthority").output) == before


def test_an_alias_the_signature_documents_binds(connections):
    # Get-Command's -Type is the documented alias of -CommandType.
    found = connections.invoke("sp-a", "Get-Command", {"Name": "Get-SPFarm", "Type": "Cmdlet"}).output
    assert [c.get("Name") for c in found] == ["Get-SPFarm"]
