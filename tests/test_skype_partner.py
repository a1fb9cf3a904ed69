"""The Skype for Business partner runbook, end to end: `runbook run` → papermill → the lab estate
(the pool, Exchange and sp-a), and its pre-flight stops run in process against the same estate."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Iterator

import pytest
import scrapbook

from conftest import ROOT, lab_state_bytes, runbook
from estate_template import new_estate
from runbooklib.errors import StepFailed
from runbooklib.exchange import ExchangeServer
from runbooklib.inventory import load_inventory
from runbooklib.lab.estate import Estate
from runbooklib.lab.pki import new_signing_certificate
from runbooklib.lab.sharepoint.addin import call_site
from runbooklib.lab.tenant.directory import find_service_principal, key_credential_for
from runbooklib.remote import RemoteConnections
from runbooklib.runner import start
from runbooklib.scenarios import skype_partner as skype
from runbooklib.skype import SkypePool
from runbooklib.wellknown import EXCHANGE_PRINCIPAL_ID, SHAREPOINT_PRINCIPAL_ID, SKYPE_PRINCIPAL_ID

pytestmark = pytest.mark.slow

LAB_PARAMS = ROOT / "parameters" / "lab" / "skype-partner.yaml"
CROSS_PREMISES_PARAMS = ROOT / "parameters" / "lab" / "skype-partner-cross-premises.yaml"
SITE = "https://sharepoint.contoso.lab"
USER = "sip:alice@contoso.lab"


@pytest.fixture(scope="module")
def estate(tmp_path_factory) -> Iterator[Estate]:
    lab = new_estate(tmp_path_factory.mktemp("skype-estate")).start()
    try:
        yield lab
    finally:
        lab.stop()


@pytest.fixture
def lab(estate: Estate) -> Iterator[Estate]:
    """The module's estate, back to its initial state (and without faults) after each test."""
    yield estate
    for name in estate.hosts:
        estate.server(name).faults.clear()
    estate.reset()


def run_skype(lab: Estate, archive: Path, *args: str, params: Path = LAB_PARAMS):
    result = runbook("run", "skype-partner", "--inventory", str(lab.inventory_path), "--params", str(params),
                     "--archive", str(archive), *args)
    index = archive / "index.jsonl"
    entries = [json.loads(line) for line in index.read_text().splitlines()] if index.exists() else []
    scraps = scrapbook.read_notebook(str(archive / entries[-1]["path"])).scraps.data_dict if entries else {}
    return result, scraps


def proofs(lab: Estate) -> tuple[bool, bool]:
    """(Skype → Exchange, Exchange → Skype): what the products' own tests say now."""
    with RemoteConnections(load_inventory(lab.inventory_path)) as conns:
        storage = SkypePool(conns.session("skype-fe2"), name="skype-fe2").test_exchange_storage(USER)
        oauth = ExchangeServer(conns.session("exchange"), name="exchange").test_oauth(
            lab.server("skype-fe1").url + skype.SKYPE_OAUTH_TEST_PATH)
    return storage.passed, oauth.passed


def sharepoint_answer(lab: Estate) -> int:
    """sp-a's answer to a call the pool signs for a user, at the farm's root site."""
    token = lab.component("skype-fe1").s2s_token(principal=SHAREPOINT_PRINCIPAL_ID, host="sharepoint.contoso.lab",
                                                 realm=lab.farm("sp-a").realm, user_smtp="alice@contoso.lab")
    return call_site(lab.server("sp-a").url, SITE, token, ca_bundle=lab.ca_bundle).status


def test_plan_changes_nothing_first_run_builds_both_trusts_second_changes_nothing(lab, tmp_path):
    archive = tmp_path / "records"
    assert proofs(lab) == (False, False)
    before = lab_state_bytes(lab)
    plan, scraps = run_skype(lab, archive, "--plan")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert scraps["run"]["status"] == "planned" and scraps["changes"] == 0
    assert lab_state_bytes(lab) == before, "a plan must change nothing"
    assert {s["id"]: s["status"] for s in scraps["steps"]}["proof"] == "skipped"

    first, scraps = run_skype(lab, archive)
    assert first.returncode == 0, first.stdout + first.stderr
    steps = {s["id"]: s for s in scraps["steps"]}
    for step_id in ("oauth-certificate", "oauth-configuration", "partner-applications", "sharepoint-issuer",
                    "sharepoint-permission", "exchange-partner-application"):
        assert steps[step_id]["status"] == "changed", steps[step_id]
    assert steps["proof"]["status"] == "ok"
    assert proofs(lab) == (True, True)
    assert sharepoint_answer(lab) == 200
    pool = lab.component("skype-fe1").snapshot()["global"]
    assert sorted(a["Identity"] for a in pool["partner_applications"]) == ["microsoft.exchange", "microsoft.sharepoint"]
    exchange_apps = [a for a in lab.component("exchange").snapshot()["partner_applications"] if a["auth_metadata_url"]]
    assert len(exchange_apps) == 1 and exchange_apps[0]["name"].startswith("LyncEnterprise-")

    second, scraps = run_skype(lab, archive)
    assert second.returncode == 0, second.stdout + second.stderr
    statuses = {s["id"]: s["status"] for s in scraps["steps"]}
    assert scraps["changes"] == 0 and statuses.pop("cross-premises") == "skipped"  # on premises: not this topology
    assert set(statuses.values()) == {"ok"}, statuses
    again = [a for a in lab.component("exchange").snapshot()["partner_applications"] if a["auth_metadata_url"]]
    assert again == exchange_apps  # found by its metadata URL: no second GUID-named application


def _params(**overrides) -> dict:
    params = {"front_ends": ["skype-fe1", "skype-fe2"], "partners": "both", "exchange": "exchange", "farm": "sp-a",
              "site_url": SITE, "certificate_subject": "CN=contoso.lab", "test_sip_uri": USER}
    params.update(overrides)
    return params


def _preflight_stops(lab: Estate, params: dict) -> str:
    before = lab_state_bytes(lab)
    run = start("skype-partner", mode="apply", inventory=lab.inventory_path, params=params)
    with pytest.raises(StepFailed):
        run.step(skype.PREFLIGHT)
    assert lab_state_bytes(lab) == before, "pre-flight must change nothing"
    result = run.results[-1]
    assert result.hint and "Nothing was changed" in result.hint
    return f"{result.error} {result.hint}"


def _certificate(lab: Estate, host: str, *, key_size: int = 2048, days: int = 700) -> str:
    now = dt.datetime.now(dt.timezone.utc)
    pair = new_signing_certificate("contoso.lab", key_size=key_size, not_before=now - dt.timedelta(days=1),
                                   not_after=now + dt.timedelta(days=days))
    return lab.component(host).install_certificate(pair, friendly_name="OAuth")


@pytest.mark.parametrize("case", ["other certificate on fe2", "1024-bit", "expires within the roll window",
                                  "unreachable partner metadata", "malformed partner metadata"])
def test_preflight_stops_with_a_clear_message_and_nothing_changed(lab, case):
    overrides: dict = {}
    if case == "other certificate on fe2":
        _certificate(lab, "skype-fe2")
        expected = "skype-fe2 does not hold the certificate"
    elif case == "1024-bit":
        _certificate(lab, "skype-fe1", key_size=1024)
        expected = "1024-bit key"
    elif case == "expires within the roll window":
        _certificate(lab, "skype-fe1", days=10)
        expected = "within the roll window of 30 days"
    elif case == "unreachable partner metadata":
        overrides["exchange_metadata_url"] = "https://127.0.0.1:9/autodiscover/metadata/json/1"
        expected = "Exchange's metadata at https://127.0.0.1:9/autodiscover/metadata/json/1 is not usable"
    else:
        overrides["sharepoint_metadata_url"] = lab.server("sp-a").url + "/_vti_bin/client.svc"
        expected = "SharePoint's metadata at"
    message = _preflight_stops(lab, _params(**overrides))
    assert expected in message, message


def test_without_a_certificate_named_or_assigned_preflight_says_which_to_name(lab):
    message = _preflight_stops(lab, _params(certificate_subject=None))
    assert "no OAuthTokenIssuer certificate" in message and "thumbprint" in message


@pytest.mark.parametrize("override, expected", [
    ("exchange=null", "needs exchange"),
    ("topology=hybrid", "topology"),
    ("topology=cross-premises", "needs tenant"),
])
def test_invalid_input_exits_2_before_anything_is_contacted(lab, tmp_path, override, expected):
    before = lab_state_bytes(lab)
    result, _ = run_skype(lab, tmp_path / "records", "-p", override)
    assert result.returncode == 2, result.stdout + result.stderr
    assert expected in result.stdout + result.stderr
    assert not (tmp_path / "records" / "index.jsonl").exists(), "no notebook may run on invalid input"
    assert lab_state_bytes(lab) == before


# -- cross-premises: Exchange Online and Skype for Business Online through the tenant ------------------


def _foreign_skype_online_key(lab: Estate) -> dict:
    """A key another pool already gave the Skype for Business Online principal."""
    key = key_credential_for(new_signing_certificate("fabrikam.lab").certificate, "CN=fabrikam.lab pool")
    with lab.tenant.directory(write=True) as directory:
        find_service_principal(directory, app_id=SKYPE_PRINCIPAL_ID)["keyCredentials"].append(key)
    return key


def test_cross_premises_preflight_stops_when_the_tenant_lacks_skype_for_business_online(lab):
    with lab.tenant.directory(write=True) as directory:
        directory["servicePrincipals"].remove(find_service_principal(directory, app_id=SKYPE_PRINCIPAL_ID))
    message = _preflight_stops(lab, _params(topology="cross-premises", tenant="contoso", exchange=None,
                                            external_web_fqdn="webext.contoso.lab"))
    assert f"the tenant has no Skype for Business Online service principal (appId {SKYPE_PRINCIPAL_ID})" in message


def test_cross_premises_plan_changes_nothing_first_run_trusts_the_tenant_keeping_other_keys_second_changes_nothing(
        lab, tmp_path):
    archive = tmp_path / "records"
    foreign = _foreign_skype_online_key(lab)
    before = lab_state_bytes(lab)
    plan, scraps = run_skype(lab, archive, "--plan", params=CROSS_PREMISES_PARAMS)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert scraps["run"]["status"] == "planned" and scraps["changes"] == 0
    assert lab_state_bytes(lab) == before, "a plan must change nothing"
    planned = {s["id"]: s for s in scraps["steps"]}["cross-premises"]
    assert "create the OAuth server 'microsoft.sts'" in json.dumps(planned)

    first, scraps = run_skype(lab, archive, params=CROSS_PREMISES_PARAMS)
    assert first.returncode == 0, first.stdout + first.stderr
    steps = {s["id"]: s for s in scraps["steps"]}
    assert steps["cross-premises"]["status"] == "changed", steps["cross-premises"]
    assert steps["exchange-partner-application"]["status"] == "skipped"
    pool = lab.component("skype-fe1").snapshot()["global"]
    assert [(s["Identity"], s["MetadataUrl"], s["Realm"]) for s in pool["oauth_servers"]] == [
        ("microsoft.sts", load_inventory(lab.inventory_path).tenant("contoso").acs_metadata_url, lab.tenant.tenant_id)]
    apps = {a["Identity"]: a for a in pool["partner_applications"]}
    assert sorted(apps) == ["microsoft.exchange", "microsoft.sharepoint"]
    assert apps["microsoft.exchange"]["ApplicationIdentifier"] == EXCHANGE_PRINCIPAL_ID
    assert apps["microsoft.exchange"]["UseOAuthServer"] is True and apps["microsoft.exchange"]["MetadataUrl"] is None
    assert pool["oauth"]["ExchangeAutodiscoverUrl"] == skype.EXCHANGE_ONLINE_AUTODISCOVER_URL
    keys = {k["keyId"]: k for k in lab.tenant.key_credentials(SKYPE_PRINCIPAL_ID)}
    pool_thumbprint = steps["preflight"]["evidence"]["certificate"]["thumbprint"]
    assert foreign["keyId"] in keys, "a key another pool put there must be kept"
    assert sorted(k["customKeyIdentifier"] for k in keys.values()) == sorted(
        [foreign["customKeyIdentifier"], pool_thumbprint])
    assert f"{SKYPE_PRINCIPAL_ID}/webext.contoso.lab" in lab.tenant.spns(SKYPE_PRINCIPAL_ID)

    second, scraps = run_skype(lab, archive, params=CROSS_PREMISES_PARAMS)
    assert second.returncode == 0, second.stdout + second.stderr
    assert scraps["changes"] == 0
    assert {s["id"]: s["status"] for s in scraps["steps"]}["cross-premises"] == "ok"
