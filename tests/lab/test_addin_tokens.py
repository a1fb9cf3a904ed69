"""Provider-hosted (high-trust) add-ins calling the lab farm, before and after the hybrid realm change.

sp-a seeds two add-ins: "Contoso Expenses add-in" (a self-issuer: issuer id = client id) with
FullControl on the root site collection, and "Contoso Invoices add-in" (a certificate-based trust
broker) with FullControl on /sites/finance. Their tokens are minted by the lab helper
:func:`runbooklib.lab.sharepoint.addin.addin_token` (realm discovered from the farm, as the add-in
does at run time) and judged by the farm's /_api/ endpoint. The hybrid steps run from Python on an
in-process estate (KB 4010011: the realm change must take the add-ins along, or they break).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
import yaml

from runbooklib.lab.estate import Estate
from runbooklib.lab.pki import new_signing_certificate
from runbooklib.lab.s2s import oracle as s2s_oracle
from runbooklib.lab.sharepoint import FarmDefinition, SharePointFarm
from runbooklib.lab.sharepoint.addin import SiteAnswer, addin_token, call_site, discover_realm
from runbooklib.lab.sharepoint.state import AddinIssuerDefinition

from estate_fixtures import clean_estate, estate  # noqa: F401 - fixtures
from invocation_harness import run as run_cmdlet

ROOT = Path(__file__).resolve().parents[2]
LAB_PARAMS = yaml.safe_load((ROOT / "parameters" / "lab" / "sharepoint-hybrid.yaml").read_text())
EXPENSES, INVOICES = FarmDefinition.preset("sp-a").initial_issuers
ROOT_SITE = "https://sharepoint.contoso.lab"
FINANCE = "https://sharepoint.contoso.lab/sites/finance"
SITE_OF = {EXPENSES.name: ROOT_SITE, INVOICES.name: FINANCE}
USER = "S-1-5-21-2127521184-1604012920-1887927527-1105"  # the signed-in user the add-in acts for
OLD_EXPENSES_ISSUER_ID = "2f5b0c7e-4d0a-4c36-9a8e-3a1d7c5e9b21"


def token(lab: Estate, addin: str | AddinIssuerDefinition, *, site: str, user: str | None = USER,
          realm: str | None = None) -> str:
    """The add-in's token for ``site``; the realm is discovered from the farm unless given."""
    return addin_token(lab.farm("sp-a"), addin, site_url=site, web_url=lab.server("sp-a").url,
                       ca_bundle=lab.ca_bundle, realm=realm, user=user)


def call(lab: Estate, site: str, bearer: str | None, endpoint: str = "/_api/web") -> SiteAnswer:
    return call_site(lab.server("sp-a").url, site, bearer, ca_bundle=lab.ca_bundle, endpoint=endpoint)


def run_hybrid(lab: Estate, lock_dir: Path, **overrides: Any) -> dict[str, Any]:
    """The hybrid runbook's steps from Python (apply mode); returns the step results by id."""
    from runbooklib.runner import start
    from runbooklib.scenarios import sharepoint_hybrid as hybrid

    run = start("sharepoint-hybrid", mode="apply", inventory=lab.inventory_path,
                params={**LAB_PARAMS, **overrides}, run_context={"lock_dir": str(lock_dir)})
    for step in hybrid.STEPS:
        run.step(step)
    run.finish()
    assert run.status == "succeeded", [(r.id, r.status, getattr(r, "error", None)) for r in run.results]
    return {r.id: r for r in run.results}


def assert_accepted(answer: SiteAnswer, *, site: str, nameid: str, user: str | None = USER.lower()) -> None:
    assert (answer.status, answer.reason) == (200, ""), answer
    assert answer.body is not None
    assert answer.body["Url"] == site and answer.body["AppPrincipal"] == nameid and answer.body["User"] == user


# ------------------------------------------------------------------------------ before the hybrid run
def test_before_the_hybrid_run_both_addins_are_accepted_on_their_sites(clean_estate: Estate) -> None:
    lab = clean_estate
    farm = lab.farm("sp-a")
    realm = farm.realm
    assert realm == farm.farm_id  # a farm that never had its realm set
    # The add-in learns the realm from the site's own client.svc challenge.
    assert discover_realm(lab.server("sp-a").url + "/sites/finance", ca_bundle=lab.ca_bundle) == realm
    for addin in (EXPENSES, INVOICES):
        site = SITE_OF[addin.name]
        answer = call(lab, site, token(lab, addin.name, site=site))
        assert_accepted(answer, site=site, nameid=f"{addin.client_id}@{realm}")
        assert answer.body["AppPrincipalDisplayName"] == addin.display_name
        assert answer.body["Issuer"] == f"{addin.issuer_id}@{realm}"
        # client.svc judges the same way as /_api/.
        assert call(lab, site, token(lab, addin.name, site=site), endpoint="/_vti_bin/client.svc").status == 200


def test_the_self_issuer_is_registered_under_its_client_id(clean_estate: Estate) -> None:
    issuers = {i["name"]: i for i in clean_estate.farm("sp-a").snapshot()["trusted_issuers"]}
    realm = clean_estate.farm("sp-a").realm
    assert EXPENSES.issuer_id == EXPENSES.client_id
    assert issuers[EXPENSES.name]["registered_issuer_name"] == f"{EXPENSES.client_id}@{realm}"
    assert issuers[EXPENSES.name]["is_self_issuer"] is True
    assert issuers[INVOICES.name]["is_self_issuer"] is False and INVOICES.issuer_id != INVOICES.client_id


def test_an_addin_without_rights_on_a_site_is_refused_there(clean_estate: Estate) -> None:
    lab = clean_estate
    for addin, other_site in ((EXPENSES, FINANCE), (INVOICES, ROOT_SITE)):
        answer = call(lab, other_site, token(lab, addin.name, site=other_site))
        assert (answer.status, answer.reason) == (403, "no_rights_on_site"), answer
        assert answer.body["odata.error"]["message"]["value"].startswith("Access denied.")
    # A site collection that does not exist is a 404, not the root site's answer.
    missing = "https://sharepoint.contoso.lab/sites/nope"
    assert call(lab, missing, token(lab, INVOICES.name, site=missing)).status == 404


def test_app_only_calls_need_the_app_only_policy(clean_estate: Estate) -> None:
    lab = clean_estate
    farm = lab.farm("sp-a")
    app_only = token(lab, INVOICES.name, site=FINANCE, user=None)
    assert jwt.get_unverified_header(app_only)["alg"] == "RS256"  # an actor token alone
    answer = call(lab, FINANCE, app_only)
    assert (answer.status, answer.reason) == (403, "app_only_not_allowed")
    nameid = f"{INVOICES.client_id}@{farm.realm}"
    live = run_cmdlet(farm.commands, "Get-SPAppPrincipal", {"Site": FINANCE, "NameIdentifier": nameid}).one
    granted = run_cmdlet(farm.commands, "Set-SPAppPrincipalPermission",
                         {"Site": FINANCE, "Scope": "SiteCollection", "Right": "Read", "EnableAppOnlyPolicy": True},
                         input=[live])
    assert granted.terminating is None
    assert_accepted(call(lab, FINANCE, app_only), site=FINANCE, nameid=nameid, user=None)


def test_a_self_issuer_speaks_only_for_itself_a_trust_broker_for_any_registered_client(clean_estate: Estate) -> None:
    lab = clean_estate
    realm = lab.farm("sp-a").realm
    # The Expenses key claiming to be the Invoices add-in: a self-issuer cannot broker.
    posing = AddinIssuerDefinition(EXPENSES.name, EXPENSES.issuer_id, INVOICES.client_id, FINANCE)
    assert call(lab, FINANCE, token(lab, posing, site=FINANCE)).reason == "issuer_not_trust_broker"
    # The Invoices broker may sign for the Expenses client id, which has rights on the root site.
    brokered = AddinIssuerDefinition(INVOICES.name, INVOICES.issuer_id, EXPENSES.client_id, ROOT_SITE)
    assert_accepted(call(lab, ROOT_SITE, token(lab, brokered, site=ROOT_SITE)), site=ROOT_SITE,
                    nameid=f"{EXPENSES.client_id}@{realm}")
    # ... but not for a client id nobody registered.
    stranger = AddinIssuerDefinition(INVOICES.name, INVOICES.issuer_id, "0e9d7c3b-1111-4a2b-8c3d-4e5f6a7b8c9d", FINANCE)
    assert call(lab, FINANCE, token(lab, stranger, site=FINANCE)).reason == "principal_not_registered"


def test_forged_and_misdirected_addin_tokens_are_refused(clean_estate: Estate) -> None:
    lab = clean_estate
    good = token(lab, EXPENSES.name, site=ROOT_SITE, user=None)
    claims = jwt.decode(good, options={"verify_signature": False})
    genuine = lab.farm("sp-a").addin_key_pair(EXPENSES.name)
    forger = new_signing_certificate("Contoso Expenses add-in")
    named = s2s_oracle.certificate_x5t(genuine.certificate)
    forged = jwt.encode(claims, forger.key_pem, algorithm="RS256", headers={"typ": "JWT", "x5t": named})
    assert call(lab, ROOT_SITE, forged).reason == "bad_signature"
    own = jwt.encode(claims, forger.key_pem, algorithm="RS256",
                     headers={"typ": "JWT", "x5t": s2s_oracle.certificate_x5t(forger.certificate)})
    assert call(lab, ROOT_SITE, own).reason == "unknown_x5t"
    now = int(time.time())
    stale = jwt.encode({**claims, "nbf": now - 7200, "exp": now - 3600}, genuine.key_pem, algorithm="RS256",
                       headers={"typ": "JWT", "x5t": named})
    assert call(lab, ROOT_SITE, stale).reason == "expired"
    unknown = AddinIssuerDefinition(EXPENSES.name, "7a6b5c4d-0000-4e3f-9a8b-1c2d3e4f5a6b",
                                    "7a6b5c4d-0000-4e3f-9a8b-1c2d3e4f5a6b", ROOT_SITE)
    assert call(lab, ROOT_SITE, token(lab, unknown, site=ROOT_SITE)).reason == "unknown_issuer"
    # An add-in token for another farm's name (app-only: a user token would hide the actor's reason).
    elsewhere = token(lab, EXPENSES.name, site="https://collab.contoso.lab", user=None)
    assert call(lab, ROOT_SITE, elsewhere).reason == "wrong_audience"
    assert call(lab, ROOT_SITE, token(lab, EXPENSES.name, site="https://collab.contoso.lab")).reason == \
        "unsigned_without_actor"


# ------------------------------------------------------------------------------ the hybrid realm change
def test_after_the_realm_moves_with_reregister_both_addins_still_work(clean_estate: Estate, tmp_path: Path) -> None:
    lab = clean_estate
    farm = lab.farm("sp-a")
    old_realm = farm.realm
    old_tokens = {a.name: token(lab, a.name, site=SITE_OF[a.name], user=None) for a in (EXPENSES, INVOICES)}
    results = run_hybrid(lab, tmp_path / "locks")  # realm_change: reregister (parameters/lab)
    assert results["realm"].status.value == "changed"
    tenant_id = lab.tenant.tenant_id
    assert farm.realm == tenant_id != old_realm
    for addin in (EXPENSES, INVOICES):
        site = SITE_OF[addin.name]
        fresh = token(lab, addin.name, site=site)  # realm discovered again: the tenant id now
        assert jwt.decode(fresh, options={"verify_signature": False})["aud"].endswith(f"@{tenant_id}")
        answer = call(lab, site, fresh)
        assert_accepted(answer, site=site, nameid=f"{addin.client_id}@{tenant_id}")
        assert answer.body["Issuer"] == f"{addin.issuer_id}@{tenant_id}" and answer.body["Realm"] == tenant_id
        # A token still minted in the old realm (a cached one, or an add-in with the realm configured);
        # around a user token the farm names the refused actor's reason in its diagnostics.
        assert call(lab, site, old_tokens[addin.name]).reason == "realm_mismatch"
        wrapped = call(lab, site, token(lab, addin.name, site=site, realm=old_realm))
        assert (wrapped.status, wrapped.reason) == (401, "unsigned_without_actor")
        assert "(realm_mismatch)" in wrapped.detail and f"realm {old_realm}" in wrapped.detail
    # The ACS half of the trust works beside them.
    acs = call_site(lab.server("sp-a").url, ROOT_SITE, lab.tenant.issue_acs_token_for("sharepoint.contoso.lab"),
                    ca_bundle=lab.ca_bundle)
    assert acs.status == 200


def test_with_realm_change_accept_the_addins_break_as_kb_4010011_says(clean_estate: Estate, tmp_path: Path) -> None:
    lab = clean_estate
    farm = lab.farm("sp-a")
    old_realm = farm.realm
    run_hybrid(lab, tmp_path / "locks", realm_change="accept")
    assert farm.realm == lab.tenant.tenant_id
    for addin in (EXPENSES, INVOICES):
        site = SITE_OF[addin.name]
        # The add-in discovers the new realm, but its issuer is still registered under the old one.
        answer = call(lab, site, token(lab, addin.name, site=site))
        assert (answer.status, answer.reason) == (401, "unknown_issuer"), answer
        assert f"@{old_realm}" in answer.detail and "KB 4010011" in answer.detail
        # Minted in the old realm, its issuer is known but the audience is in a realm the farm left.
        stale = call(lab, site, token(lab, addin.name, site=site, realm=old_realm, user=None))
        assert (stale.status, stale.reason) == (401, "realm_mismatch")
        # Audience in the new realm, issuer as still registered (old realm): the issuer's realm is stale.
        claims = jwt.decode(token(lab, addin.name, site=site, user=None), options={"verify_signature": False})
        pair = farm.addin_key_pair(addin.name)
        mixed = jwt.encode({**claims, "iss": f"{addin.issuer_id}@{old_realm}"}, pair.key_pem, algorithm="RS256",
                           headers={"typ": "JWT", "x5t": s2s_oracle.certificate_x5t(pair.certificate)})
        answer = call(lab, site, mixed)
        assert answer.reason == "realm_mismatch" and "KB 4010011" in answer.detail


# ------------------------------------------------------------------------------ lab state files
def test_a_state_file_with_the_old_expenses_issuer_id_still_opens_and_is_migrated(tmp_path: Path) -> None:
    preset = FarmDefinition.preset("sp-a")
    old_expenses = AddinIssuerDefinition(EXPENSES.name, OLD_EXPENSES_ISSUER_ID, EXPENSES.client_id,
                                         EXPENSES.site_url, EXPENSES.display_name)
    older = FarmDefinition(preset.name, preset.version, preset.public_host, preset.web_apps,
                           (old_expenses, INVOICES))
    path = tmp_path / "sp-a.json"
    old = SharePointFarm.open(path, older)
    tenant = "6c3f0b8a-4e7d-4b25-9a61-0d2e7c9b1f44"
    run_cmdlet(old.commands, "Set-SPAuthenticationRealm", {"Realm": tenant})
    # As an earlier hybrid run moved it: <old id>@<tenant>.
    moved = run_cmdlet(old.commands, "sharepoint/move-issuer-to-realm", {"Name": EXPENSES.name, "Realm": tenant}).one
    assert moved.properties["RegisteredIssuerName"] == f"{OLD_EXPENSES_ISSUER_ID}@{tenant}"
    assert OLD_EXPENSES_ISSUER_ID in path.read_text()
    key = old.addin_key_pair(EXPENSES.name).certificate

    upgraded = SharePointFarm.open(path, name="sp-a")
    assert upgraded.farm_id == old.farm_id and upgraded.realm == tenant
    names = {i["name"]: i["registered_issuer_name"] for i in upgraded.snapshot()["trusted_issuers"]}
    assert names[EXPENSES.name] == f"{EXPENSES.client_id}@{tenant}"  # realm kept, id migrated
    assert names[INVOICES.name].startswith(INVOICES.issuer_id)
    assert upgraded.addin_key_pair(EXPENSES.name).certificate == key
    assert OLD_EXPENSES_ISSUER_ID not in path.read_text()  # the initial state too
    upgraded.reset()
    initial = {i["name"]: i["registered_issuer_name"] for i in upgraded.snapshot()["trusted_issuers"]}
    assert initial[EXPENSES.name] == f"{EXPENSES.client_id}@{upgraded.farm_id}"
    before = path.read_bytes()
    SharePointFarm.open(path, name="sp-a")  # nothing left to migrate: the file is not rewritten
    assert path.read_bytes() == before
    assert json.loads(before)["schema"] == 1
