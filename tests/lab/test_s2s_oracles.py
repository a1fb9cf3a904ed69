"""The lab's S2S oracles: the lab's own verifier, and both directions of the hybrid trust.

Outbound (a farm → SharePoint Online) is judged by the tenant's SharePoint Online; inbound
(SharePoint Online → a farm, through ACS) by the farm's ``/_vti_bin/client.svc``. The trust
is built by running the hybrid runbook's steps from Python against an in-process estate.
Tokens are made here with pyjwt directly, never with runbooklib.tokens (the code under test).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterable

import jwt
import pytest
import yaml

from runbooklib.lab.estate import Estate
from runbooklib.lab.pki import KeyPair, new_signing_certificate
from runbooklib.lab.s2s import oracle as s2s_oracle
from runbooklib.lab.tenant import AcsRefused

from estate_fixtures import clean_estate, estate  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parents[2]
SPO = "00000003-0000-0ff1-ce00-000000000000"
ACS = "00000001-0000-0000-c000-000000000000"
HOST = "sharepoint.contoso.lab"  # sp-a's public name
LAB_PARAMS = yaml.safe_load((ROOT / "parameters" / "lab" / "sharepoint-hybrid.yaml").read_text())


# ------------------------------------------------------------------------------------- helpers
def x5t(pair: KeyPair) -> str:
    return base64.urlsafe_b64encode(hashlib.sha1(pair.cert_der).digest()).rstrip(b"=").decode()


def sign(claims: dict, *, key: KeyPair, named: KeyPair | None = None) -> str:
    """RS256 with ``key``'s private key; ``x5t`` names ``named`` (default: the same certificate)."""
    return jwt.encode(claims, key.key_pem, algorithm="RS256", headers={"typ": "JWT", "x5t": x5t(named or key)})


def unsigned(claims: dict) -> str:
    part = lambda obj: base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()  # noqa: E731
    return f"{part({'typ': 'JWT', 'alg': 'none'})}.{part(claims)}."


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def call_farm(lab: Estate, token: str | None, *, farm: str = "sp-a", path: str = "/_vti_bin/client.svc"):
    """(status, X-Lab-S2S-Reason, headers, body) of a call to a farm's web endpoint."""
    request = urllib.request.Request(lab.server(farm).url + path, headers={"Authorization": f"Bearer {token or ''}"})
    context = ssl.create_default_context(cafile=str(lab.ca_bundle))
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return response.status, "", response.headers, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("X-Lab-S2S-Reason", ""), exc.headers, None


def build_hybrid(lab: Estate, lock_dir: Path, *, skip: Iterable[str] = ()) -> None:
    """The hybrid runbook's steps from Python (apply mode), leaving out the step ids in ``skip``."""
    from runbooklib.runner import start
    from runbooklib.scenarios import sharepoint_hybrid as hybrid

    run = start("sharepoint-hybrid", mode="apply", inventory=lab.inventory_path, params=dict(LAB_PARAMS),
                run_context={"lock_dir": str(lock_dir)})
    for step in hybrid.STEPS:
        if step.id not in skip:
            run.step(step)
    run.finish()
    assert run.status == "succeeded"


def spo_nameid(lab: Estate) -> str:
    return f"{lab.tenant.service_principal(SPO)['id']}@{lab.tenant.tenant_id}"


# ------------------------------------------------------------------------------ the verifier
@pytest.fixture(scope="module")
def sts() -> KeyPair:
    return new_signing_certificate("SharePoint Security Token Service")


@pytest.fixture(scope="module")
def stranger() -> KeyPair:
    return new_signing_certificate("SharePoint Security Token Service")


REALM = "6c3f3a8e-1f0e-4d3c-9a53-3a2b1c0d9e8f"


def actor_claims(**overrides) -> dict:
    now = int(time.time())
    claims = {"aud": f"{SPO}/{HOST}@{REALM}", "iss": f"{SPO}@{REALM}", "nameid": f"{SPO}@{REALM}",
              "nbf": now, "exp": now + 600}
    claims.update(overrides)
    return claims


def judge(token: str, trusted: list, **kw) -> s2s_oracle.Accepted:
    options = {"issuer": f"{SPO}@{REALM}", "principal": SPO, "realm": REALM, "host_ok": lambda h: h == HOST,
               "nameid": f"{SPO}@{REALM}"}
    options.update(kw)
    return s2s_oracle.verify(token, certificates=trusted, **options)


def rejection(token: str, trusted: list, **kw) -> str:
    with pytest.raises(s2s_oracle.Rejected) as caught:
        judge(token, trusted, **kw)
    assert caught.value.detail  # every refusal says why in words too
    return caught.value.reason


def test_verifier_accepts_an_actor_and_a_delegated_outer_token(sts: KeyPair) -> None:
    trusted = [sts.certificate]
    ok = judge(sign(actor_claims(), key=sts), trusted)
    assert ok.audience == s2s_oracle.Audience(SPO, HOST, REALM) and ok.user is None
    actor = sign(actor_claims(trustedfordelegation="true"), key=sts)
    now = int(time.time())
    outer = unsigned({"aud": f"{SPO}/{HOST}@{REALM}", "iss": f"{SPO}@{REALM}", "nameid": "S-1-5-21-1-2-3-500",
                      "nii": "urn:office:idp:activedirectory", "actortoken": actor, "nbf": now, "exp": now + 600})
    wrapped = judge(outer, trusted)
    assert wrapped.user == "s-1-5-21-1-2-3-500" and wrapped.nameid == f"{SPO}@{REALM}"


def test_verifier_names_each_reason(sts: KeyPair, stranger: KeyPair) -> None:
    trusted = [sts.certificate]
    day = 86400
    now = int(time.time())
    assert rejection("", trusted) == "no_token"
    assert rejection("not.a-token", trusted) == "malformed"
    assert rejection(sign(actor_claims(), key=stranger), trusted) == "unknown_x5t"
    assert rejection(sign(actor_claims(), key=stranger, named=sts), trusted) == "bad_signature"
    assert rejection(sign(actor_claims(nbf=now - day, exp=now - day + 3600), key=sts), trusted) == "expired"
    assert rejection(sign(actor_claims(nbf=now + day, exp=now + 2 * day), key=sts), trusted) == "not_yet_valid"
    assert rejection(sign(actor_claims(iss=f"{SPO}@{'0' * 8}-0000-0000-0000-{'0' * 12}"), key=sts), trusted) == "wrong_issuer"
    assert rejection(sign(actor_claims(aud=f"{SPO}/other.contoso.lab@{REALM}"), key=sts), trusted) == "wrong_audience"
    assert rejection(sign(actor_claims(aud=f"{ACS}/{HOST}@{REALM}"), key=sts), trusted) == "wrong_audience"
    assert rejection(sign(actor_claims(aud=f"{SPO}/{HOST}@{'1' * 8}-0000-0000-0000-{'0' * 12}"), key=sts),
                     trusted) == "realm_mismatch"
    assert rejection(sign(actor_claims(nameid=f"{ACS}@{REALM}"), key=sts), trusted) == "wrong_nameid"
    # HS256 with the public certificate as the "secret" is the classic confusion attack.
    hs = jwt.encode(actor_claims(), "not-the-key-" * 4, algorithm="HS256", headers={"x5t": x5t(sts)})
    assert rejection(hs, trusted) == "unsupported_alg"


def test_unsigned_tokens_count_only_around_a_valid_delegated_actor(sts: KeyPair, stranger: KeyPair) -> None:
    trusted = [sts.certificate]
    now = int(time.time())
    outer = lambda actor: unsigned({"aud": f"{SPO}/{HOST}@{REALM}", "iss": f"{SPO}@{REALM}",  # noqa: E731
                                    "nameid": "s-1-5-21-9", "actortoken": actor, "nbf": now, "exp": now + 600})
    assert rejection(unsigned(actor_claims()), trusted) == "unsigned_without_actor"
    forged_actor = sign(actor_claims(trustedfordelegation="true"), key=stranger, named=sts)
    assert rejection(outer(forged_actor), trusted) == "unsigned_without_actor"
    assert rejection(outer(unsigned(actor_claims(trustedfordelegation="true"))), trusted) == "unsigned_without_actor"
    assert rejection(outer(sign(actor_claims(), key=sts)), trusted) == "not_trusted_for_delegation"
    assert rejection(outer(sign(actor_claims(trustedfordelegation="false"), key=sts)), trusted) == "not_trusted_for_delegation"


def test_trusted_keys_are_current_verify_keys_only(sts: KeyPair, stranger: KeyPair) -> None:
    now = dt.datetime.now(dt.timezone.utc)

    def cred(pair: KeyPair, usage: str, start: dt.datetime, end: dt.datetime) -> dict:
        return {"keyId": usage + str(end), "type": "AsymmetricX509Cert", "usage": usage,
                "key": base64.b64encode(pair.cert_der).decode(),
                "startDateTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "endDateTime": end.strftime("%Y-%m-%dT%H:%M:%SZ")}

    old = new_signing_certificate("old farm", not_before=now - dt.timedelta(days=400), not_after=now - dt.timedelta(days=1))
    creds = [
        cred(sts, "Verify", now - dt.timedelta(days=1), now + dt.timedelta(days=30)),
        cred(stranger, "Sign", now - dt.timedelta(days=1), now + dt.timedelta(days=30)),
        cred(old, "Verify", now - dt.timedelta(days=400), now - dt.timedelta(days=1)),
        cred(stranger, "Verify", now + dt.timedelta(days=1), now + dt.timedelta(days=30)),  # not yet valid
        {**cred(stranger, "Verify", now - dt.timedelta(days=1), now + dt.timedelta(days=30)), "key": None},
    ]
    trusted = s2s_oracle.certificates_from_key_credentials(creds)
    assert [c.fingerprint(c.signature_hash_algorithm) for c in trusted] == \
        [sts.certificate.fingerprint(sts.certificate.signature_hash_algorithm)]
    assert rejection(sign(actor_claims(), key=stranger), trusted) == "unknown_x5t"


# ------------------------------------------------------------------ inbound: SharePoint Online → farm
def test_acs_issues_only_for_hosts_an_spn_covers(clean_estate: Estate) -> None:
    tenant = clean_estate.tenant
    with pytest.raises(AcsRefused) as caught:
        tenant.issue_acs_token_for(HOST)
    assert caught.value.reason == "host_not_covered_by_spn" and HOST in caught.value.detail
    token = tenant.issue_acs_token_for(tenant.spo_host)  # *.sharepoint.com is covered from the start
    claims, header = claims_of(token), jwt.get_unverified_header(token)
    tid = tenant.tenant_id
    assert header["alg"] == "RS256" and header["x5t"] == x5t(tenant.acs_signing)
    assert claims["iss"] == f"{ACS}@{tid}" and claims["aud"] == f"{SPO}/{tenant.spo_host}@{tid}"
    assert claims["nameid"] == spo_nameid(clean_estate)
    jwt.decode(token, tenant.acs_signing.certificate.public_key(), algorithms=["RS256"],
               options={"verify_aud": False})


def test_a_fresh_farm_answers_only_with_its_realm_challenge(clean_estate: Estate) -> None:
    farm = clean_estate.farm("sp-a")
    status, reason, headers, _ = call_farm(clean_estate, None)
    assert (status, reason) == (401, "no_token")
    assert headers["WWW-Authenticate"].startswith(f'Bearer realm="{farm.realm}"')
    status, reason, headers, _ = call_farm(clean_estate, clean_estate.tenant.issue_acs_token_for(
        clean_estate.tenant.spo_host))
    assert (status, reason) == (401, "no_trusted_broker")
    assert ACS in headers["x-ms-diagnostics"] and headers["WWW-Authenticate"].startswith("Bearer realm=")


@pytest.mark.parametrize("missing_step, reason", [
    ("acs-trust", "no_trusted_broker"),
    ("realm", "realm_mismatch"),
    ("spo-app-principal", "principal_not_registered"),
])
def test_the_farm_refuses_while_a_hybrid_step_is_missing_and_names_it(clean_estate: Estate, tmp_path: Path,
                                                                       missing_step: str, reason: str) -> None:
    build_hybrid(clean_estate, tmp_path / "locks", skip={missing_step})
    status, got, headers, _ = call_farm(clean_estate, clean_estate.tenant.issue_acs_token_for(HOST))
    assert (status, got) == (401, reason)
    assert headers["x-ms-diagnostics"]
    # The realm challenge stays the answer, so realm discovery keeps working while refusing.
    assert headers["WWW-Authenticate"].startswith(f'Bearer realm="{clean_estate.farm("sp-a").realm}"')


def test_without_the_spn_step_acs_issues_no_token_for_the_farm(clean_estate: Estate, tmp_path: Path) -> None:
    build_hybrid(clean_estate, tmp_path / "locks", skip={"spn"})
    with pytest.raises(AcsRefused) as caught:
        clean_estate.tenant.issue_acs_token_for(HOST)
    assert caught.value.reason == "host_not_covered_by_spn"


def test_after_the_hybrid_steps_the_farm_accepts_acs_and_nothing_forged(clean_estate: Estate, tmp_path: Path,
                                                                          stranger: KeyPair) -> None:
    lab = clean_estate
    build_hybrid(lab, tmp_path / "locks")
    tenant, tid = lab.tenant, lab.tenant.tenant_id
    good = tenant.issue_acs_token_for(HOST)
    status, reason, _, body = call_farm(lab, good)
    assert (status, reason) == (200, ""), reason
    assert body["AppPrincipal"] == spo_nameid(lab) and body["Realm"] == tid and body["Issuer"] == f"{ACS}@{tid}"
    assert body["Url"] == "https://sharepoint.contoso.lab"
    assert call_farm(lab, good, path="/_api/web")[0] == 200

    acs = tenant.acs_signing
    now = int(time.time())
    claims = claims_of(good)
    assert call_farm(lab, sign(claims, key=stranger, named=acs))[1] == "bad_signature"
    assert call_farm(lab, sign(claims, key=stranger))[1] == "unknown_x5t"
    assert call_farm(lab, sign({**claims, "nbf": now - 86400, "exp": now - 82800}, key=acs))[1] == "expired"
    assert call_farm(lab, unsigned(claims))[1] == "unsigned_without_actor"
    outer = unsigned({"aud": claims["aud"], "iss": claims["nameid"], "nameid": "s-1-5-21-1-2-3-500",
                      "actortoken": good, "nbf": now, "exp": now + 600})
    assert call_farm(lab, outer)[1] == "not_trusted_for_delegation"
    # A host the wildcard SPN covers but that is another farm's name.
    assert call_farm(lab, tenant.issue_acs_token_for("collab.contoso.lab"))[1] == "wrong_audience"
    # Signed by the trusted ACS key, but meant for a farm in another realm.
    other_realm = lab.farm("sp-b").realm
    assert call_farm(lab, sign({**claims, "aud": f"{SPO}/{HOST}@{other_realm}"}, key=acs))[1] == "realm_mismatch"
    # ACS answering for another realm is not the broker this farm trusts.
    assert call_farm(lab, tenant.issue_acs_token_for(HOST, realm=other_realm))[1] == "no_trusted_broker"
    # A provider-hosted add-in's issuer is trusted, but as a self-issuer it cannot broker for others.
    farm = lab.farm("sp-a")
    addin = next(i for i in farm.snapshot()["trusted_issuers"] if i["is_self_issuer"])
    addin_key = farm.addin_key_pair(addin["name"])
    forged_broker = sign({**claims, "iss": addin["registered_issuer_name"]}, key=addin_key)
    assert call_farm(lab, forged_broker)[1] == "issuer_not_trust_broker"
