"""The hybrid runbook on farms shaped like real ones (the field review, KB 4010011), end to end:
`runbook run` → papermill → a lab estate whose ``sp-a`` has what a production farm has besides
its add-ins — Office Online Server, Workflow Manager, grants on sub-webs, places the runbooks'
account may not read, no outbound internet access."""

from __future__ import annotations

import dataclasses

import pytest

from conftest import lab_state_bytes
from test_sharepoint_hybrid import run_hybrid, steps_by_id

pytestmark = pytest.mark.slow

FINANCE = "https://sharepoint.contoso.lab/sites/finance"
PAYABLES = FINANCE + "/ap"
INVOICES_CLIENT = "b3a91f54-7e2d-4c08-a6f1-9d5e0c7b2a63"
ANY_REALM_ISSUER = "9a7e41c2-3d58-4b6f-8e20-5c1d7f3a9b64@*"
WORKFLOW_HOST = "https://workflow.contoso.lab:12290/"
WORKFLOW_PRINCIPAL = "00000005-0000-0000-c000-000000000000"


def _sp_a(**changes):
    """sp-a's preset, changed as a test needs: ``finance=`` replaces the finance site collection's
    definition, other keywords are FarmDefinition fields."""
    from runbooklib.lab.sharepoint.state import FarmDefinition

    preset = FarmDefinition.preset("sp-a")
    finance = changes.pop("finance", None)
    readable = changes.pop("readable", True)
    main, *others = preset.web_apps
    if finance is not None or not readable:
        main = dataclasses.replace(main, readable=readable,
                                   site_collections=(finance,) if finance is not None else main.site_collections)
    return dataclasses.replace(preset, web_apps=(main, *others), **changes)


@pytest.fixture
def estate_of(tmp_path):
    """An estate whose sp-a is the given FarmDefinition (its state file written before the start)."""
    from estate_template import new_estate
    from runbooklib.lab.sharepoint.state import FarmStore

    started = []

    def make(definition):
        estate = new_estate(tmp_path / "lab")
        # sp-a's state is made from the definition: the seeded initial farm must not be found first.
        (estate.state_dir / "sp-a.json").unlink()
        FarmStore.open(estate.state_dir / "sp-a.json", definition)
        started.append(estate.start())
        return estate

    yield make
    for estate in started:
        estate.stop()


def _issuers(lab) -> dict[str, dict]:
    return {i["name"]: i for i in lab.farm("sp-a").snapshot()["trusted_issuers"]}


def test_office_online_server_and_any_realm_issuers_are_neither_listed_nor_touched(estate_of, tmp_path):
    from runbooklib.lab.sharepoint.state import OFFICE_ONLINE_SERVER_ISSUERS, CertificateIssuerDefinition

    lab = estate_of(_sp_a(certificate_issuers=(
        *OFFICE_ONLINE_SERVER_ISSUERS, CertificateIssuerDefinition("Contoso any-realm add-in", ANY_REALM_ISSUER))))
    fixed = {name: i for name, i in _issuers(lab).items()
             if name.startswith("Office Online Server") or name == "Contoso any-realm add-in"}
    assert len(fixed) == 3

    planned, scraps = run_hybrid(lab, tmp_path / "records", "-p", "realm_change=block")
    preflight = steps_by_id(scraps)["preflight"]
    assert preflight["status"] == "failed"  # the provider-hosted add-ins do depend on the realm
    assert "Contoso Expenses add-in" in preflight["error"]
    for name, issuer in fixed.items():
        assert name not in preflight["error"] and issuer["registered_issuer_name"] not in preflight["error"]

    result, scraps = run_hybrid(lab, tmp_path / "records")
    assert result.returncode == 0, result.stdout + result.stderr
    realm = steps_by_id(scraps)["realm"]
    assert not any("Office Online Server" in c or "any-realm" in c for c in realm["changes"])
    after = _issuers(lab)
    assert {name: after[name] for name in fixed} == fixed
    assert lab.farm("sp-a").realm == lab.tenant.tenant_id


def test_workflow_manager_is_named_in_preflight_and_paired_again_under_reregister(estate_of, tmp_path):
    from runbooklib.lab.sharepoint.state import WorkflowDefinition

    lab = estate_of(_sp_a(workflow=WorkflowDefinition(WORKFLOW_HOST, "https://sharepoint.contoso.lab")))
    old_realm = lab.farm("sp-a").realm

    blocked, scraps = run_hybrid(lab, tmp_path / "records", "-p", "realm_change=block")
    preflight = steps_by_id(scraps)["preflight"]
    assert preflight["status"] == "failed"
    assert "Workflow Manager" in preflight["error"] and "Register-SPWorkflowService" in preflight["error"]
    assert f"-WorkflowHostUri {WORKFLOW_HOST} -Force" in preflight["error"]

    result, scraps = run_hybrid(lab, tmp_path / "records")
    assert result.returncode == 0, result.stdout + result.stderr
    realm = steps_by_id(scraps)["realm"]
    assert any("Register-SPWorkflowService" in c and WORKFLOW_HOST in c for c in realm["changes"])
    assert "Workflow Manager" in realm["proof"] and "Register-SPWorkflowService -Force" in realm["proof"]
    tenant_id = lab.tenant.tenant_id
    snapshot = lab.farm("sp-a").snapshot()
    assert snapshot["workflow"]["realm"] == tenant_id != old_realm
    assert f"{WORKFLOW_PRINCIPAL}@{tenant_id}" in {p["name_identifier"] for p in snapshot["app_principals"]}

    again, scraps = run_hybrid(lab, tmp_path / "records")
    assert again.returncode == 0 and scraps["changes"] == 0, again.stdout + again.stderr


def test_sub_web_grants_are_granted_again_on_the_same_web_with_their_rights(estate_of, tmp_path):
    from runbooklib.lab.sharepoint.state import SiteCollectionDefinition, WebGrantDefinition

    preset = _sp_a()
    addins = tuple(dataclasses.replace(a, web_grants=(WebGrantDefinition(PAYABLES, "Write"),))
                   if a.client_id == INVOICES_CLIENT else a for a in preset.initial_issuers)
    lab = estate_of(dataclasses.replace(
        _sp_a(finance=SiteCollectionDefinition("/sites/finance", "Finance", webs=("ap",))), initial_issuers=addins))

    result, scraps = run_hybrid(lab, tmp_path / "records")
    assert result.returncode == 0, result.stdout + result.stderr
    assert any(PAYABLES in c and "Write at Site" in c for c in steps_by_id(scraps)["realm"]["changes"])
    tenant_id = lab.tenant.tenant_id
    moved = next(p for p in lab.farm("sp-a").snapshot()["app_principals"]
                 if p["name_identifier"] == f"{INVOICES_CLIENT}@{tenant_id}")
    grants = {(g["scope"], g["target"]): g["right"] for g in moved["permissions"]}
    assert grants[("Site", PAYABLES)] == "Write"
    assert grants[("SiteCollection", FINANCE)] == "FullControl"
    assert ("Site", FINANCE) not in grants, "the sub-web's right must not land on the root web"


def test_a_farm_without_outbound_access_stops_at_preflight_and_nothing_changes(lab, tmp_path):
    lab.server("sp-a").faults.add("no-outbound")
    before = lab_state_bytes(lab)
    realm_before = lab.farm("sp-a").realm
    result, scraps = run_hybrid(lab, tmp_path / "records")
    assert result.returncode == 1
    preflight = steps_by_id(scraps)["preflight"]
    assert preflight["status"] == "failed"
    assert "sp-a cannot download the tenant's ACS metadata" in preflight["error"]
    assert "Unable to connect to the remote server" in preflight["error"]
    assert "outbound https access" in preflight["hint"]
    assert [s["status"] for s in scraps["steps"]] == ["failed"]
    assert lab.farm("sp-a").realm == realm_before
    assert lab_state_bytes(lab) == before

    lab.server("sp-a").faults.clear()  # the standing fault holds until cleared, then the run goes through
    result, scraps = run_hybrid(lab, tmp_path / "records")
    assert result.returncode == 0, result.stdout + result.stderr


def test_access_denied_on_the_web_application_is_not_reported_as_no_web_application(estate_of, tmp_path):
    lab = estate_of(_sp_a(readable=False))
    before = lab_state_bytes(lab)
    result, scraps = run_hybrid(lab, tmp_path / "records")
    assert result.returncode == 1
    preflight = steps_by_id(scraps)["preflight"]
    assert preflight["status"] == "failed"
    assert "access to the web application https://sharepoint.contoso.lab was denied" in preflight["error"]
    assert "Access is denied" in preflight["error"]
    assert "no web application" not in preflight["error"]
    assert "Add-SPShellAdmin" in preflight["hint"] and "CredSSP" in preflight["hint"]
    assert lab_state_bytes(lab) == before


def test_a_site_collection_that_cannot_be_read_is_reported_and_blocks_unless_accepted(estate_of, tmp_path):
    from runbooklib.lab.sharepoint.state import SiteCollectionDefinition

    lab = estate_of(_sp_a(finance=SiteCollectionDefinition("/sites/finance", "Finance", readable=False)))
    before = lab_state_bytes(lab)
    result, scraps = run_hybrid(lab, tmp_path / "records")  # reregister cannot move what it cannot see
    assert result.returncode == 1
    preflight = steps_by_id(scraps)["preflight"]
    assert f"site collection {FINANCE} could not be read" in preflight["error"]
    assert "Access is denied" in preflight["error"]
    assert "realm_change: accept" in preflight["hint"]
    assert lab_state_bytes(lab) == before

    accepted, scraps = run_hybrid(lab, tmp_path / "records", "-p", "realm_change=accept")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert any(f"{FINANCE} could not be read" in w for w in scraps["run"]["warnings"])


def test_an_app_principal_registered_under_another_display_name_is_accepted_as_done(lab, tmp_path):
    from runbooklib.inventory import load_inventory
    from runbooklib.remote import RemoteConnections
    from runbooklib.sharepoint import Farm

    spo = lab.tenant.service_principal("00000003-0000-0ff1-ce00-000000000000")["id"]
    name_identifier = f"{spo}@{lab.tenant.tenant_id}"
    with RemoteConnections(load_inventory(lab.inventory_path)) as connections:
        farm = Farm(connections.session("sp-a"), name="sp-a")
        farm.register_app_principal("https://sharepoint.contoso.lab", name_identifier, "SharePoint")
        # Register-SPAppPrincipal again with another display name leaves the registration as it is,
        # and Get-SPAppPrincipal finds nothing for an identifier the farm does not know.
        again = farm.register_app_principal("https://sharepoint.contoso.lab", name_identifier, "SharePoint Online")
        assert again.display_name == "SharePoint"
        assert farm.app_principal("https://sharepoint.contoso.lab", f"{spo}@{lab.farm('sp-a').farm_id}x") is None

    result, scraps = run_hybrid(lab, tmp_path / "records")
    assert result.returncode == 0, result.stdout + result.stderr
    step = steps_by_id(scraps)["spo-app-principal"]
    assert step["status"] == "ok" and not step["changes"]
    assert any("registered as 'SharePoint'" in w for w in scraps["run"]["warnings"])
    principals = [p for p in lab.farm("sp-a").snapshot()["app_principals"]
                  if p["name_identifier"].lower() == name_identifier.lower()]
    assert [p["display_name"] for p in principals] == ["SharePoint"]
