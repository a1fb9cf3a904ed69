"""The double hop, with the real client against the lab estate's farms.

A farm reached with NTLM holds no credentials it can pass on to SQL Server: the SharePoint
snap-in (sp-a, 2019) or module (sp-b, SE) loads with the product's warning and every farm cmdlet
then fails with "Cannot access the local farm". Reached with CredSSP — as the lab inventory
reaches them — the same commands work. The runbooks' farm client turns either sign into one
error naming the server, the double hop and what to change.
"""

from __future__ import annotations

import pytest

from runbooklib.errors import AuthenticationFailed, RemoteError
from runbooklib.inventory import load_inventory
from runbooklib.lab.estate import Estate
from runbooklib.remote import RemoteSession
from runbooklib.sharepoint import Farm

from estate_fixtures import estate, lab_inventory  # noqa: F401 - fixtures

NOT_ACCESSIBLE = "The local farm is not accessible. Cmdlets with FeatureDependencyId are not registered."
CANNOT_ACCESS = ("Cannot access the local farm. Verify that the local farm is properly configured, currently "
                 "available, and that you have the appropriate permissions to access the database before trying "
                 "again.")
LOADS = {"sp-a": ("Add-PSSnapin", "Microsoft.SharePoint.PowerShell"), "sp-b": ("Import-Module", "SharePointServer")}


def _session(estate: Estate, lab_inventory, name: str, auth: str) -> RemoteSession:
    target = lab_inventory.server(name).model_copy(update={"auth": auth})
    return RemoteSession.open(target, password=estate.password(name))


@pytest.mark.parametrize("name", sorted(LOADS))
def test_over_ntlm_the_snapin_or_module_warns_and_farm_cmdlets_fail(estate, lab_inventory, name):
    load, source = LOADS[name]
    with _session(estate, lab_inventory, name, "ntlm") as session:
        loaded = session.invoke(load, {"Name": source})
        assert loaded.warnings == [NOT_ACCESSIBLE]
        with pytest.raises(RemoteError) as failure:
            session.invoke("Get-SPFarm")
        assert failure.value.reason == CANNOT_ACCESS
        assert failure.value.error_id == "Microsoft.SharePoint.PowerShell.SPCmdletGetFarm"
        assert failure.value.category == "InvalidData"
        # -ErrorAction SilentlyContinue does not hide it: the error is terminating
        with pytest.raises(RemoteError, match="Cannot access the local farm"):
            session.invoke("Get-SPWebApplication", {"Identity": "https://x", "ErrorAction": "SilentlyContinue"})


@pytest.mark.parametrize("name", sorted(LOADS))
def test_over_credssp_the_same_commands_work_without_a_warning(estate, lab_inventory, name):
    load, source = LOADS[name]
    assert lab_inventory.server(name).auth == "credssp"
    with _session(estate, lab_inventory, name, "credssp") as session:
        assert session.invoke(load, {"Name": source}).warnings == []
        [farm] = session.invoke("Get-SPFarm").output
        assert farm.BuildVersion


def _assert_names_the_double_hop(error: RemoteError, name: str) -> None:
    assert error.message.startswith(f"{name}: the SharePoint cmdlets cannot reach the farm's databases")
    assert "double hop" in error.message and "Nothing was changed" in error.message
    assert "The local farm is not accessible" in error.message or "Cannot access the local farm" in error.message
    assert f"auth: credssp for {name} in the inventory" in error.hint
    assert "Enable-WSManCredSSP -Role Server" in error.hint and "-Role Client" in error.hint
    assert error.target == name


@pytest.mark.parametrize("name", sorted(LOADS))
def test_the_farm_client_names_the_double_hop_at_the_load(estate, lab_inventory, name):
    with _session(estate, lab_inventory, name, "ntlm") as session:
        with pytest.raises(RemoteError) as failure:
            Farm(session, name=name).build_version()
    _assert_names_the_double_hop(failure.value, name)


def test_the_farm_client_names_it_at_the_first_farm_cmdlet_when_the_load_did_not_show_it(estate, lab_inventory):
    with _session(estate, lab_inventory, "sp-a", "ntlm") as session:
        session.invoke("Add-PSSnapin", {"Name": "Microsoft.SharePoint.PowerShell"})  # by hand: warning unread
        farm = Farm(session, name="sp-a")
        with pytest.raises(RemoteError) as failure:
            farm.realm()
        _assert_names_the_double_hop(failure.value, "sp-a")
        assert failure.value.reason == CANNOT_ACCESS
        with pytest.raises(RemoteError) as failure:
            farm.sts_certificate()  # a template fails at its first farm cmdlet, named the same way
        _assert_names_the_double_hop(failure.value, "sp-a")


def test_basic_is_refused_by_the_farms_unless_the_lab_is_asked_for_it(tmp_path, estate, lab_inventory):
    with pytest.raises(AuthenticationFailed):
        _session(estate, lab_inventory, "sp-a", "basic")
    with Estate(tmp_path / "basic-lab", basic_auth=True) as lab:
        inventory = load_inventory(lab.inventory_path)
        assert inventory.server("sp-a").auth == "credssp"  # the inventory still names the usual scheme
        with _session(lab, inventory, "sp-a", "basic") as session:
            assert session.invoke("Get-PSSnapin").output  # reached; without delegation, as over NTLM
