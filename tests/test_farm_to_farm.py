"""The farm-to-farm runbook, end to end: `runbook run` → papermill → the lab estate.

One estate serves the module; each test starts from its initial state. The lab's farms are the
judges: a token minted with a farm's STS key — or with Exchange's Auth certificate — is accepted
by a farm only through an issuer registered from that partner's metadata, with the permission
the runbook grants; Exchange's EWS judges the direction no one configured.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path

import jwt
import pytest
import yaml

from archived_runs import last_scraps, steps_by_id
from conftest import ROOT, lab_state_bytes, runbook
from estate_template import new_estate
from runbooklib.lab.exchange import texts as EX
from runbooklib.lab.http import Response
from runbooklib.lab.pki import new_signing_certificate
from runbooklib.lab.s2s.oracle import Rejected, certificate_x5t
from runbooklib.lab.sharepoint.addin import call_site, discover_realm, farm_token

pytestmark = pytest.mark.slow

LAB_PARAMS = yaml.safe_load((ROOT / "parameters" / "lab" / "farm-to-farm.yaml").read_text())
SITES = {"sp-a": "https://sharepoint.contoso.lab", "sp-b": "https://collab.contoso.lab"}
USER = "s-1-5-21-2127521184-1604012920-1887927527-1001"


@pytest.fixture(scope="module")
def estate(tmp_path_factory):
    lab = new_estate(tmp_path_factory.mktemp("farm-to-farm") / "lab").start()
    try:
        yield lab
    finally:
        lab.stop()


@pytest.fixture
def lab(estate):
    estate.reset()
    yield estate


def run_ftf(lab, tmp_path: Path, *args: str, **changes):
    """One headless run with the lab parameters (``changes`` replace some); (result, scraps)."""
    params = tmp_path / f"params-{len(list(tmp_path.glob('params-*')))}.yaml"
    params.write_text(yaml.safe_dump({**LAB_PARAMS, **changes}))
    archive = tmp_path / "records"
    result = runbook("run", "farm-to-farm", "--inventory", str(lab.inventory_path), "--params", str(params),
                     "--archive", str(archive), *args)
    return result, last_scraps(archive)


def calls(lab, sender: str, receiver: str):
    """What ``receiver`` answers a user's request that ``sender`` makes with its own STS key."""
    token = farm_token(lab.farm(sender), site_url=SITES[receiver], web_url=lab.server(receiver).url,
                       ca_bundle=lab.ca_bundle, user=USER)
    return call_site(lab.server(receiver).url, SITES[receiver], token, ca_bundle=lab.ca_bundle)


def exchange_calls(lab, receiver: str):
    """What ``receiver`` answers a user's request that Exchange makes with its own Auth certificate."""
    realm = discover_realm(lab.server(receiver).url, ca_bundle=lab.ca_bundle)
    host = SITES[receiver].split("://", 1)[1]
    token = lab.component("exchange").s2s_token(audience=f"{EX.SHAREPOINT_PRINCIPAL_ID}/{host}@{realm}", user_sid=USER)
    return call_site(lab.server(receiver).url, SITES[receiver], token, ca_bundle=lab.ca_bundle)


def ews_status(lab, farm: str) -> tuple[int, str]:
    """(status, reason) of EWS for a token ``farm`` signs for Exchange: no one set that direction up."""
    exchange = lab.component("exchange")
    own = lab.farm(farm).name_identifier.lower()
    pair = lab.farm(farm).sts_key_pair()
    now = int(time.time())
    token = jwt.encode({"aud": f"{EX.EXCHANGE_PRINCIPAL_ID}/mail.contoso.lab@{exchange.realm}", "iss": own,
                        "nameid": own, "nbf": now, "exp": now + 600}, pair.key_pem, algorithm="RS256",
                       headers={"x5t": certificate_x5t(pair.certificate)})
    try:
        exchange.judge(token)
    except Rejected as exc:
        return 401, exc.reason
    return 200, ""


def test_both_ways_first_run_changes_then_nothing_and_plan_changes_nothing(lab, tmp_path):
    assert calls(lab, "sp-a", "sp-b").reason == "unknown_issuer", "no farm may trust another before the run"
    assert exchange_calls(lab, "sp-a").reason == "unknown_issuer", "sp-a may not trust Exchange before the run"
    before = lab_state_bytes(lab)
    plan, scraps = run_ftf(lab, tmp_path, "--plan")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert {s["status"] for s in scraps["steps"]} <= {"ok", "planned", "skipped"}
    assert steps_by_id(scraps)["trusted-issuers"]["status"] == "planned"
    assert lab_state_bytes(lab) == before, "a plan changed the lab"

    first, scraps = run_ftf(lab, tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    steps = steps_by_id(scraps)
    assert scraps["run"]["status"] == "succeeded" and scraps["changes"] == 8
    for step_id, count in (("trusted-issuers", 3), ("root-authorities", 2), ("app-principal-permissions", 3)):
        assert steps[step_id]["status"] == "changed", steps[step_id]
        assert len(steps[step_id]["changes"]) == count, "one change per one-way trust (Exchange publishes no root)"
    # Step 0's table is the trust set, one row per one-way trust.
    assert [t["incoming_to"] + "←" + t["outgoing_from"] for t in steps["trust-set"]["evidence"]["trusts"]] \
        == ["sp-a←sp-b", "sp-a←exchange", "sp-b←sp-a"]

    # Proof by the lab: each issuer carries the partner's live name and certificate, and each farm
    # now accepts a user's request signed by the other.
    for receiver, sender in (("sp-a", "sp-b"), ("sp-b", "sp-a")):
        issuer = next(i for i in lab.farm(receiver).snapshot()["trusted_issuers"] if i["name"] == sender)
        document = lab.farm(sender).metadata_document()
        assert issuer["registered_issuer_name"] == document["issuer"] and issuer["is_self_issuer"]
        answer = calls(lab, sender, receiver)
        assert answer.status == 200, answer
        assert answer.body["AppPrincipal"] == lab.farm(sender).name_identifier
    # sp-a trusts Exchange under the name and certificate its live metadata publishes, and accepts
    # a user's request Exchange signs; sp-b, which was not asked to, still refuses it, and Exchange
    # refuses a farm's token (no one made it trust the farms).
    exchange = lab.component("exchange")
    issuer = next(i for i in lab.farm("sp-a").snapshot()["trusted_issuers"] if i["name"] == "exchange")
    assert issuer["registered_issuer_name"] == exchange.issuer and issuer["is_self_issuer"]
    assert issuer["metadata_endpoint"] == lab.server("exchange").url + EX.METADATA_PATH
    answer = exchange_calls(lab, "sp-a")
    assert answer.status == 200 and answer.body["AppPrincipal"] == exchange.issuer, answer
    assert exchange_calls(lab, "sp-b").reason == "unknown_issuer"
    assert ews_status(lab, "sp-a") == (401, "unknown_issuer")

    again, scraps = run_ftf(lab, tmp_path)
    assert again.returncode == 0 and scraps["changes"] == 0, again.stdout
    settled = lab_state_bytes(lab)
    plan, scraps = run_ftf(lab, tmp_path, "--plan")
    assert plan.returncode == 0 and not [s for s in scraps["steps"] if s["status"] == "planned"]
    assert lab_state_bytes(lab) == settled


def test_a_one_way_trust_is_proven_one_way(lab, tmp_path):
    result, scraps = run_ftf(lab, tmp_path, accepts={"sp-b": ["sp-a"]})
    assert result.returncode == 0, result.stdout + result.stderr
    assert scraps["changes"] == 3
    assert calls(lab, "sp-a", "sp-b").status == 200
    refused = calls(lab, "sp-b", "sp-a")
    assert (refused.status, refused.reason) == (401, "unknown_issuer"), refused


def test_issuer_without_permission_authenticates_but_is_refused_access(lab, tmp_path):
    # The permission is what lets the partner in: stop the run before it, and the farm refuses.
    result, _ = run_ftf(lab, tmp_path, accepts={"sp-b": ["sp-a"]})
    assert result.returncode == 0
    with lab.farm("sp-b")._store.change() as state:  # the lab's control, as an administrator's revoke
        for principal in state["app_principals"]:
            if principal["name_identifier"] == lab.farm("sp-a").name_identifier:
                principal["permissions"] = []
    assert calls(lab, "sp-a", "sp-b").reason == "no_rights_on_site"


def _stops_before_any_change(lab, tmp_path, *, expect: list[str], **changes) -> dict:
    before = lab_state_bytes(lab)
    result, scraps = run_ftf(lab, tmp_path, **changes)
    assert result.returncode == 1, result.stdout + result.stderr
    preflight = steps_by_id(scraps)["preflight"]
    assert preflight["status"] == "failed"
    text = preflight["error"] + " " + preflight["hint"]
    for words in expect:
        assert words in text, text
    assert "Nothing was changed" in preflight["hint"]
    assert lab_state_bytes(lab) == before
    return preflight


def test_unreachable_metadata_stops_with_the_farms_own_words(lab, tmp_path):
    _stops_before_any_change(lab, tmp_path, metadata_urls={"sp-a": "https://127.0.0.1:9/_layouts/15/metadata/json/1"},
                             expect=["sp-b could not download https://127.0.0.1:9/", "Unable to connect to the remote server",
                                     "metadata_urls.sp-a"])


def test_malformed_metadata_stops_naming_what_is_wrong(lab, tmp_path):
    lab.server("sp-a").mount("/not-metadata/", lambda request: Response.text("<html>Sign in</html>",
                                                                             content_type="text/html"))
    url = lab.server("sp-a").url + "/not-metadata/json/1"
    _stops_before_any_change(lab, tmp_path, metadata_urls={"sp-a": url},
                             expect=[f"what sp-b downloaded from {url} is not S2S metadata", "did not return JSON"])


def test_exchange_metadata_without_the_certificate_exchange_signs_with_stops(lab, tmp_path):
    # A URL that answers with another organization's Exchange metadata: right issuer, wrong certificate.
    other = new_signing_certificate("Microsoft Exchange Server Auth Certificate")
    document = {**lab.component("exchange").metadata_document(),
                "keys": [{"usage": "signing", "keyvalue": {"type": "x509Certificate",
                                                           "value": base64.b64encode(other.cert_der).decode()}}]}
    lab.server("exchange").mount("/elsewhere/", lambda request: Response.json(document))
    url = lab.server("exchange").url + "/elsewhere/autodiscover/metadata/json/1"
    preflight = _stops_before_any_change(lab, tmp_path, metadata_urls={"exchange": url},
                                         expect=[f"the metadata at {url} does not publish the certificate exchange "
                                                 "signs with", "Set-AuthConfig -PublishCertificate"])
    assert "exchange_auth_certificate" in preflight["evidence"]["trusts"]["sp-a ← exchange"]


def test_http_only_web_application_stops_unless_allowed(lab, tmp_path):
    _stops_before_any_change(lab, tmp_path,
                             web_applications={"sp-a": "http://intranet.contoso.lab", "sp-b": SITES["sp-b"]},
                             expect=["http://intranet.contoso.lab of sp-a uses http", "allow_http: true"])


def test_runbook_demo_runs_it_and_shows_it_succeeded(monkeypatch, tmp_path, capsys):
    from runbooklib import scenarios
    from runbooklib.demo import run_demo
    from runbooklib.lab.commands import lab_command

    monkeypatch.setattr(scenarios, "SCENARIOS", {"farm-to-farm": scenarios.SCENARIOS["farm-to-farm"]})
    try:
        code = run_demo(archive=tmp_path / "records", lab_dir=tmp_path / "lab")
    finally:
        lab_command("down", tmp_path / "lab")
    out = capsys.readouterr().out
    assert code == 0, out
    row = next(line for line in out.splitlines() if line.startswith("farm-to-farm "))
    assert row.split()[1:3] == ["succeeded", "8"], row
