"""The SharePoint hybrid runbook, end to end: `runbook run` → papermill → the lab estate."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from archived_runs import bearer_answer, last_scraps, steps_by_id
from conftest import ROOT, lab_state_bytes, runbook
from runbooklib.lab.sharepoint.addin import addin_token, call_site
from runbooklib.lab.tenant import AcsRefused
from runbooklib.tokens import build_actor_token

pytestmark = pytest.mark.slow

SPO = "00000003-0000-0ff1-ce00-000000000000"
ACS = "00000001-0000-0000-c000-000000000000"
LAB_PARAMS = ROOT / "parameters" / "lab" / "sharepoint-hybrid.yaml"


def run_hybrid(lab, archive: Path, *args: str, inventory: Path | None = None):
    result = runbook("run", "sharepoint-hybrid", "--inventory", str(inventory or lab.inventory_path),
                     "--params", str(LAB_PARAMS), "--archive", str(archive), *args)
    return result, last_scraps(archive)




def spo_accepts(lab, token: str) -> tuple[int, str]:
    """SharePoint Online's answer to an S2S token from the farm."""
    spo_url = lab.tenant.inventory_entry(lab.server("contoso").url, "ca.pem")["spo_url"]
    return bearer_answer(spo_url + "/_api/web", token, lab.ca_bundle)


def farm_token(lab) -> str:
    """An S2S actor token minted with sp-a's STS key, as the farm would send it to SharePoint Online.

    The realm is the farm's own, read from lab state: before the hybrid run that is not the
    tenant id, and SharePoint Online must refuse the farm for that reason as well."""
    farm = lab.farm("sp-a")
    pair = farm.sts_key_pair()
    return build_actor_token(certificate=pair.certificate, private_key=pair.key, issuer_id=SPO,
                             realm=farm.realm, target_principal_id=SPO, target_host=lab.tenant.spo_host)


def farm_accepts(lab, token: str) -> tuple[int, str]:
    """sp-a's /_vti_bin/client.svc answer to an inbound S2S token."""
    return bearer_answer(lab.server("sp-a").url + "/_vti_bin/client.svc", token, lab.ca_bundle)


def test_first_run_builds_the_trust_and_a_second_run_changes_nothing(lab, tmp_path):
    archive = tmp_path / "records"
    foreign_before = lab.tenant.key_credentials(SPO)
    status, reason = spo_accepts(lab, farm_token(lab))
    assert status == 401, "the lab must refuse the farm before the trust exists"
    with pytest.raises(AcsRefused):  # no SPN covers the farm's name yet
        lab.tenant.issue_acs_token_for("sharepoint.contoso.lab")

    first, scraps = run_hybrid(lab, archive)
    assert first.returncode == 0, first.stdout + first.stderr
    assert scraps["run"]["status"] == "succeeded"
    assert scraps["changes"] > 0
    steps = steps_by_id(scraps)
    assert steps["preflight"]["status"] == "ok"
    for step_id in ("sts-certificate", "spn", "spo-app-principal", "realm", "acs-trust"):
        assert steps[step_id]["status"] == "changed", steps[step_id]
    assert steps["federated-search"]["status"] == "skipped" and "-HybridWebApp" in steps["federated-search"]["hint"]
    assert steps["sp2013-search-permission"]["status"] == "skipped"

    # End state, read from the lab itself.
    tenant_id = lab.tenant.tenant_id
    farm = lab.farm("sp-a")
    assert farm.realm == tenant_id
    keys_after = lab.tenant.key_credentials(SPO)
    kept = {k["keyId"] for k in foreign_before} - {k["keyId"] for k in keys_after}
    assert not kept, f"foreign keys were lost: {kept}"
    assert len(keys_after) == len(foreign_before) + 1
    assert f"{SPO}/*.contoso.lab" in lab.tenant.spns(SPO)
    snapshot = farm.snapshot()
    issuers = {i["name"]: i for i in snapshot["trusted_issuers"]}
    assert issuers["ACS"]["registered_issuer_name"] == f"{ACS}@{tenant_id}"
    assert issuers["ACS"]["is_self_issuer"] is False
    # The pre-registered add-in moved with the realm (parameters/lab asks for reregister).
    assert issuers["Contoso Expenses add-in"]["registered_issuer_name"].endswith(f"@{tenant_id}")
    # Both kinds of high-trust add-in move, trust broker included, with principals on any site.
    invoices = issuers["Contoso Invoices add-in"]
    assert invoices["registered_issuer_name"].endswith(f"@{tenant_id}") and invoices["is_self_issuer"] is False
    principals = {p["name_identifier"].lower() for p in snapshot["app_principals"]}
    assert f"b3a91f54-7e2d-4c08-a6f1-9d5e0c7b2a63@{tenant_id}" in principals
    assert f"8c1e6d2a-5b3f-4e7a-9d10-6f2b4a8c3e57@{tenant_id}" in principals

    # The oracle: SharePoint Online now accepts a token signed with the farm's STS key.
    assert spo_accepts(lab, farm_token(lab)) == (200, "")
    # And the other direction: the farm accepts what ACS issues for SharePoint Online calling it.
    assert farm_accepts(lab, lab.tenant.issue_acs_token_for("sharepoint.contoso.lab")) == (200, "")
    # The provider-hosted add-ins still work (KB 4010011): each one, discovering the farm's new realm
    # as it does at run time, is accepted on its own site collection for a signed-in user.
    for addin, site in (("Contoso Expenses add-in", "https://sharepoint.contoso.lab"),
                        ("Contoso Invoices add-in", "https://sharepoint.contoso.lab/sites/finance")):
        addin_call = call_site(lab.server("sp-a").url, site, addin_token(
            farm, addin, site_url=site, web_url=lab.server("sp-a").url, ca_bundle=lab.ca_bundle,
            user="S-1-5-21-2127521184-1604012920-1887927527-1105"), ca_bundle=lab.ca_bundle)
        assert (addin_call.status, addin_call.reason) == (200, ""), (addin, addin_call)
        assert addin_call.body["Url"] == site and addin_call.body["Realm"] == tenant_id

    second, scraps = run_hybrid(lab, archive)
    assert second.returncode == 0, second.stdout + second.stderr
    assert scraps["run"]["status"] == "succeeded"
    assert scraps["changes"] == 0
    assert {s["status"] for s in scraps["steps"]} <= {"ok", "skipped"}
    assert lab.tenant.key_credentials(SPO) == keys_after

    blob = b"".join(p.read_bytes() for p in archive.rglob("*") if p.is_file())
    for secret in (lab.password("sp-a"), lab.tenant.runbook_app.secret):
        assert secret.encode() not in blob


def test_plan_mode_lists_every_change_and_leaves_the_lab_untouched(lab, tmp_path):
    before = lab_state_bytes(lab)
    result, scraps = run_hybrid(lab, tmp_path / "records", "--plan")
    assert result.returncode == 0, result.stdout + result.stderr
    assert scraps["run"]["status"] == "planned" and scraps["run"]["mode"] == "plan"
    assert scraps["changes"] == 0
    steps = steps_by_id(scraps)
    for step_id in ("sts-certificate", "spn", "spo-app-principal", "realm", "acs-trust"):
        assert steps[step_id]["status"] == "planned" and steps[step_id]["changes"], step_id
    assert any("re-register issuer Contoso Expenses add-in" in c for c in steps["realm"]["changes"])
    assert lab_state_bytes(lab) == before


def test_kerberos_only_web_application_fails_preflight_with_the_remedies(lab, tmp_path):
    before = lab_state_bytes(lab)
    result, scraps = run_hybrid(lab, tmp_path / "records", "-p", "web_application=https://portal.contoso.lab")
    assert result.returncode == 1
    assert scraps["run"]["status"] == "failed"
    preflight = steps_by_id(scraps)["preflight"]
    assert preflight["status"] == "failed"
    assert "NTLM" in preflight["error"]
    assert "extend this web application" in preflight["hint"] and "new web application" in preflight["hint"]
    assert [s["status"] for s in scraps["steps"]] == ["failed"]
    assert lab_state_bytes(lab) == before


def test_a_farm_reached_with_ntlm_stops_at_preflight_naming_the_double_hop_and_the_fix(lab, tmp_path):
    # The lab inventory reaches the farms with CredSSP (every other run here uses it); the same
    # inventory with sp-a reached over NTLM must stop before anything changes.
    inventory = yaml.safe_load(lab.inventory_path.read_text())
    inventory["servers"]["sp-a"]["auth"] = "ntlm"
    ntlm_inventory = lab.dir / "inventory-ntlm.yaml"
    ntlm_inventory.write_text(yaml.safe_dump(inventory, sort_keys=False))
    before = lab_state_bytes(lab)
    result, scraps = run_hybrid(lab, tmp_path / "records", inventory=ntlm_inventory)
    assert result.returncode == 1, result.stdout + result.stderr
    preflight = steps_by_id(scraps)["preflight"]
    assert [s["status"] for s in scraps["steps"]] == ["failed"]
    assert "sp-a" in preflight["error"] and "double hop" in preflight["error"]
    assert "auth: credssp for sp-a in the inventory" in preflight["hint"]
    assert "Enable-WSManCredSSP -Role Server" in preflight["hint"]
    assert scraps["changes"] == 0
    assert lab_state_bytes(lab) == before


def test_http_web_application_enables_oauth_over_http_with_a_warning(lab, tmp_path):
    http = "web_application=http://intranet.contoso.lab"
    planned, scraps = run_hybrid(lab, tmp_path / "records", "-p", http, "--plan")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    step = steps_by_id(scraps)["oauth-over-http"]
    assert step["status"] == "planned" and "AllowOAuthOverHttp" in step["changes"][0]
    assert any("OAuth over HTTP" in w for w in scraps["run"]["warnings"])
    assert lab.farm("sp-a").snapshot()["sts"]["allow_oauth_over_http"] is False

    result, scraps = run_hybrid(lab, tmp_path / "records", "-p", http)
    assert result.returncode == 0, result.stdout + result.stderr
    step = steps_by_id(scraps)["oauth-over-http"]
    assert step["status"] == "changed"
    assert "AllowOAuthOverHttp" in step["changes"][0]
    assert any("https" in w for w in step["warnings"])
    assert any("OAuth over HTTP" in w for w in scraps["run"]["warnings"])
    assert lab.farm("sp-a").snapshot()["sts"]["allow_oauth_over_http"] is True


def test_realm_change_is_blocked_by_default_naming_the_add_in(lab, tmp_path):
    before = lab_state_bytes(lab)
    result, scraps = run_hybrid(lab, tmp_path / "records", "-p", "realm_change=block")
    assert result.returncode == 1
    preflight = steps_by_id(scraps)["preflight"]
    assert preflight["status"] == "failed"
    assert "Contoso Expenses add-in" in preflight["error"] and "KB 4010011" in preflight["error"]
    assert "realm_change: reregister" in preflight["hint"]
    assert lab_state_bytes(lab) == before


@pytest.mark.parametrize("override, field", [
    ("farm=sp-z", "farm"),
    ("public_root_domain=https://contoso.lab", "public_root_domain"),
    ("zone=Everywhere", "zone"),
    ("realm_chnage=accept", "realm_chnage"),
])
def test_bad_parameters_exit_2_naming_the_field_and_contact_nothing(lab, tmp_path, override, field):
    before = lab_state_bytes(lab)
    # A tripwire on every server: any request would consume its pending fault.
    for name in lab.hosts:
        lab.server(name).faults.add("drop")
    result = runbook("run", "sharepoint-hybrid", "--inventory", str(lab.inventory_path), "--params",
                     str(LAB_PARAMS), "-p", override, "--archive", str(tmp_path / "records"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert field in result.stderr
    assert not (tmp_path / "records").exists()
    assert lab_state_bytes(lab) == before
    assert all(len(lab.server(name).faults.pending()) == 1 for name in lab.hosts), "a server was contacted"


def _steps_in_process(lab, **overrides):
    """The hybrid steps called from Python (no notebook): quicker for cases about step logic."""
    import yaml

    from runbooklib.runner import start
    from runbooklib.scenarios import sharepoint_hybrid as hybrid

    params = {**yaml.safe_load(LAB_PARAMS.read_text()), **overrides}
    run = start("sharepoint-hybrid", mode="apply", inventory=lab.inventory_path, params=params)
    for step in hybrid.STEPS:
        run.step(step)
    run.finish()
    return {r.id: r for r in run.results}


def test_a_realm_changed_earlier_by_hand_still_gets_its_add_ins_moved(lab):
    from runbooklib.inventory import load_inventory
    from runbooklib.remote import RemoteConnections
    from runbooklib.sharepoint import Farm

    # As if an earlier run (or an administrator) changed the realm and stopped before moving anything.
    with RemoteConnections(load_inventory(lab.inventory_path)) as connections:
        Farm(connections.session("sp-a"), name="sp-a").set_realm(lab.tenant.tenant_id)
    results = _steps_in_process(lab)
    realm = results["realm"]
    assert realm.status.value == "changed"
    assert any("Contoso Invoices add-in" in c for c in realm.changes)
    assert not any("change the farm realm" in c or "changed the farm realm" in c for c in realm.changes)
    issuers = {i["name"]: i for i in lab.farm("sp-a").snapshot()["trusted_issuers"]}
    assert all(i["registered_issuer_name"].endswith(lab.tenant.tenant_id)
               for name, i in issuers.items() if not i["metadata_endpoint"])


def _farm_client(lab):
    from runbooklib.inventory import load_inventory
    from runbooklib.remote import RemoteConnections
    from runbooklib.sharepoint import Farm

    connections = RemoteConnections(load_inventory(lab.inventory_path))
    return connections, Farm(connections.session("sp-a"), name="sp-a")


def test_a_move_that_stopped_before_granting_rights_is_finished_with_the_rights(lab):
    tenant_id = lab.tenant.tenant_id
    connections, farm = _farm_client(lab)
    with connections:
        # As if an earlier run registered the add-in under the new realm and stopped before granting.
        farm.register_app_principal("https://sharepoint.contoso.lab", f"8c1e6d2a-5b3f-4e7a-9d10-6f2b4a8c3e57@{tenant_id}",
                                    "Contoso Expenses")
    results = _steps_in_process(lab)
    assert any("Contoso Expenses" in c and "FullControl at SiteCollection" in c for c in results["realm"].changes)
    connections, farm = _farm_client(lab)
    with connections:
        from runbooklib.sharepoint import AppPrincipal

        moved = AppPrincipal(f"8c1e6d2a-5b3f-4e7a-9d10-6f2b4a8c3e57@{tenant_id}", "Contoso Expenses",
                             "https://sharepoint.contoso.lab")
        assert farm.rights(moved).get("SiteCollection") == "FullControl"


def test_an_acs_name_taken_by_another_issuer_stops_the_run_before_the_realm_changes(lab):
    from runbooklib.errors import StepFailed

    connections, farm = _farm_client(lab)
    with connections:
        from runbooklib.sharepoint import ensure_sharepoint_shell

        pair = lab.farm("sp-b").sts_key_pair()
        ensure_sharepoint_shell(farm.session)
        farm.session.invoke_template("sharepoint/new-trusted-issuer-from-certificate", {
            "Name": "ACS", "CertificateRawData": pair.cert_der,
            "RegisteredIssuerName": f"11111111-2222-3333-4444-555555555555@{lab.farm('sp-a').realm}"})
    realm_before = lab.farm("sp-a").realm
    with pytest.raises(StepFailed) as failed:
        _steps_in_process(lab)
    assert "preflight" in str(failed.value) and "'ACS' already exists" in str(failed.value)
    assert lab.farm("sp-a").realm == realm_before


def test_expired_keys_are_removed_only_when_asked_and_current_keys_stay(lab):
    before = lab.tenant.key_credentials(SPO)
    results = _steps_in_process(lab)
    assert results["expired-keys"].status.value == "skipped"
    assert len(results["expired-keys"].evidence["expired"]) == 1, "the lab seeds one expired foreign key"
    assert len(lab.tenant.key_credentials(SPO)) == len(before) + 1

    results = _steps_in_process(lab, prune_expired_keys=True)
    pruned = results["expired-keys"]
    assert pruned.status.value == "changed" and len(pruned.changes) == 1
    after = lab.tenant.key_credentials(SPO)
    assert len(after) == len(before)  # the farm's key added, the expired one gone
    assert results["sts-certificate"].status.value == "ok"


def _start_in_process(lab, mode: str = "apply"):
    import yaml

    from runbooklib.runner import start

    return start("sharepoint-hybrid", mode=mode, inventory=lab.inventory_path,
                 params=yaml.safe_load(LAB_PARAMS.read_text()))


def test_a_step_cell_run_before_the_cells_above_it_reads_the_facts_it_needs(lab):
    import hashlib

    from runbooklib.scenarios import sharepoint_hybrid as hybrid

    # A guided user who runs step 4's and step 2's cells first: no pre-flight, no tenant step before them.
    run = _start_in_process(lab)
    for step in (hybrid.APP_PRINCIPAL, hybrid.STS_KEY, hybrid.SP2013_SEARCH_BOT):
        run.step(step)
    run.finish()
    results = {r.id: r for r in run.results}
    assert results["spo-app-principal"].status.value == "changed"
    assert results["sts-certificate"].status.value == "changed"
    assert results["sp2013-search-permission"].status.value == "skipped"

    tenant_id = lab.tenant.tenant_id
    spo_object_id = lab.tenant.service_principal(SPO)["id"]
    principals = {p["name_identifier"].lower() for p in lab.farm("sp-a").snapshot()["app_principals"]}
    assert f"{spo_object_id}@{tenant_id}".lower() in principals
    farm_thumbprint = hashlib.sha1(lab.farm("sp-a").sts_key_pair().cert_der).hexdigest().upper()
    assert farm_thumbprint in {k["customKeyIdentifier"] for k in lab.tenant.key_credentials(SPO)}


def test_the_realm_step_factory_acts_on_whichever_farm_it_is_given(lab):
    from runbooklib.farm_steps import realm_step
    from runbooklib.sharepoint import Farm

    # Farm-to-farm's shape: sp-b takes sp-a's realm; sp-a is not touched.
    wanted, sp_a_before, sp_b_before = lab.farm("sp-a").realm, lab.farm("sp-a").realm, lab.farm("sp-b").realm
    assert wanted != sp_b_before
    sp_b_realm = realm_step("realm-sp-b", "Set sp-b's realm to sp-a's",
                            farm=lambda ctx: Farm(ctx.remote("sp-b"), name="sp-b"), realm=lambda ctx: wanted,
                            realm_change=lambda ctx: "reregister", realm_named="realm of sp-a")

    planned = _start_in_process(lab, mode="plan")
    planned.step(sp_b_realm)
    planned.finish()
    (plan,) = planned.results
    assert plan.status.value == "planned"
    assert f"change the farm realm from {sp_b_before} to {wanted}" in plan.changes
    assert lab.farm("sp-b").realm == sp_b_before

    applied = _start_in_process(lab)
    applied.step(sp_b_realm)
    applied.step(sp_b_realm)  # and again: nothing left to do, the end state still proven
    applied.finish()
    first, again = applied.results
    assert first.status.value == "changed" and again.status.value == "ok"
    assert again.proof == f"Get-SPAuthenticationRealm = {wanted}; realm of sp-a = {wanted}"
    assert lab.farm("sp-b").realm == wanted and lab.farm("sp-a").realm == sp_a_before
