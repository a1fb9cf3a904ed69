"""S2S tokens: build, verify with reasons, and the lab's SharePoint Online as the oracle."""

from __future__ import annotations

import base64
import datetime as dt
import json
import ssl
import time

import httpx
import pytest

from runbooklib.errors import TokenError
from runbooklib.wellknown import SHAREPOINT_PRINCIPAL_ID as SPO_PRINCIPAL_ID
from runbooklib.lab.pki import KeyPair, new_signing_certificate
from runbooklib.tokens import (
    audience,
    build_actor_token,
    build_outer_token,
    decode_token,
    verify_token,
    x5t,
)

from tenant_lab import TenantLab, fresh, tenant_lab  # noqa: F401 - fixtures

REALM = "6c3f3a8e-1f0e-4d3c-9a53-3a2b1c0d9e8f"
HOST = "sharepoint.contoso.lab"


@pytest.fixture(scope="module")
def farm() -> KeyPair:
    return new_signing_certificate("SharePoint Security Token Service")


@pytest.fixture(scope="module")
def stranger() -> KeyPair:
    return new_signing_certificate("SharePoint Security Token Service")


def actor(pair: KeyPair, *, realm: str = REALM, host: str = HOST, signer: KeyPair | None = None, **kw) -> str:
    return build_actor_token(
        certificate=pair.certificate, private_key=(signer or pair).key, issuer_id=SPO_PRINCIPAL_ID,
        realm=realm, target_principal_id=SPO_PRINCIPAL_ID, target_host=host, **kw,
    )


def reason(token: str, trusted: list, **kw) -> str:
    with pytest.raises(TokenError) as caught:
        verify_token(token, trusted_certificates=trusted, **kw)
    return caught.value.reason or ""


def test_actor_token_has_the_documented_shape(farm: KeyPair) -> None:
    token = actor(farm, realm=REALM.upper())
    decoded = decode_token(token)
    assert decoded.header == {"typ": "JWT", "alg": "RS256", "x5t": x5t(farm.certificate)}
    assert decoded.claims["aud"] == f"{SPO_PRINCIPAL_ID}/{HOST}@{REALM}"
    assert decoded.claims["iss"] == decoded.claims["nameid"] == f"{SPO_PRINCIPAL_ID}@{REALM}"
    assert decoded.claims["exp"] > decoded.claims["nbf"] >= int(time.time()) - 5
    digest = base64.urlsafe_b64decode(decoded.header["x5t"] + "=")
    import hashlib

    assert digest == hashlib.sha1(farm.cert_der).digest()


def test_verify_accepts_a_good_actor_and_outer_token(farm: KeyPair) -> None:
    aud = audience(SPO_PRINCIPAL_ID, HOST, REALM)
    ok = verify_token(actor(farm), trusted_certificates=[farm.certificate], audience=aud,
                      issuer=f"{SPO_PRINCIPAL_ID}@{REALM}")
    assert ok.audience == aud and ok.user_nameid is None
    outer = build_outer_token(actor(farm, trusted_for_delegation=True), user_id="S-1-5-21-1-2-3-1104")
    header = json.loads(base64.urlsafe_b64decode(outer.split(".")[0] + "=="))
    assert header == {"typ": "JWT", "alg": "none"} and outer.endswith(".")
    wrapped = verify_token(outer, trusted_certificates=[farm.certificate], audience=aud)
    assert wrapped.user_nameid == "s-1-5-21-1-2-3-1104"
    assert wrapped.actor_nameid == f"{SPO_PRINCIPAL_ID}@{REALM}"


def test_each_rejection_has_its_reason(farm: KeyPair, stranger: KeyPair) -> None:
    trusted = [farm.certificate]
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
    assert reason(actor(stranger), trusted) == "unknown_x5t"
    assert reason(actor(farm, signer=stranger), trusted) == "bad_signature"
    assert reason(actor(farm, not_before=past, lifetime=dt.timedelta(hours=1)), trusted) == "expired"
    assert reason(actor(farm, not_before=future), trusted) == "not_yet_valid"
    assert reason(actor(farm), trusted, audience=audience(SPO_PRINCIPAL_ID, "other.lab", REALM)) == "wrong_audience"
    assert reason(actor(farm), trusted, issuer=f"{SPO_PRINCIPAL_ID}@{'0' * 8}-0000-0000-0000-{'0' * 12}") == "wrong_issuer"
    assert reason("not-a-token", trusted) == "malformed"
    assert reason(actor(farm), trusted, nameid=f"someone-else@{REALM}") == "wrong_nameid"
    app_only = build_outer_token(actor(farm), user_id="S-1-5-21-1-2-3-1104")
    assert reason(app_only, trusted) == "not_trusted_for_delegation"
    assert reason("eyJhbGciOiJub25lIn0.e30.", trusted) == "unsigned_without_actor"
    # An unsigned outer token whose actor does not verify is worth nothing either.
    forged = build_outer_token(actor(farm, signer=stranger), user_id="S-1-5-21-9")
    err_reason = reason(forged, trusted)
    assert err_reason == "unsigned_without_actor"
    # A signed token that only claims alg none in its actor is refused as unsupported.
    head, body, _ = actor(farm).split(".")
    assert reason(f"{head}.{body}.", trusted) == "bad_signature"


def test_token_error_says_what_to_do(farm: KeyPair, stranger: KeyPair) -> None:
    with pytest.raises(TokenError) as caught:
        verify_token(actor(stranger), trusted_certificates=[farm.certificate])
    assert "ensure_key_credential" in str(caught.value)


# ---------------------------------------------------------------------- the lab's SharePoint Online
def spo_get(lab: TenantLab, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}" if token else "Bearer"}  # httpx refuses the trailing space .NET sends
    with httpx.Client(verify=ssl.create_default_context(cafile=str(lab.ca_bundle))) as client:
        return client.get(f"{lab.url}/_api/web", headers=headers)


def test_realm_discovery_answers_with_the_tenant_id(fresh: TenantLab) -> None:
    response = spo_get(fresh, None)
    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith(f'Bearer realm="{fresh.tenant.tenant_id}",client_id="{SPO_PRINCIPAL_ID}"')
    assert "trusted_issuers=" in challenge and "00000001-0000-0000-c000-000000000000@*" in challenge


def test_farm_token_rejected_before_upload_and_accepted_after(fresh: TenantLab, farm: KeyPair, stranger: KeyPair) -> None:
    tid = fresh.tenant.tenant_id
    token = actor(farm, realm=tid, host=fresh.tenant.spo_host)
    before = spo_get(fresh, token)
    assert before.status_code == 401 and before.headers["X-Lab-S2S-Reason"] == "unknown_x5t"
    assert "x-ms-diagnostics" in before.headers

    with fresh.graph() as graph:
        graph.ensure_key_credential(farm)
        after = spo_get(fresh, token)
        assert after.status_code == 200, after.headers.get("x-ms-diagnostics")
        assert after.json()["Actor"] == f"{SPO_PRINCIPAL_ID}@{tid}"

        # An on-premises host is served only once the wildcard SPN covers it.
        onprem = actor(farm, realm=tid, host="sharepoint.contoso.lab")
        assert spo_get(fresh, onprem).headers["X-Lab-S2S-Reason"] == "wrong_audience"
        graph.ensure_spn("contoso.lab")
        assert spo_get(fresh, onprem).status_code == 200

    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
    expired = actor(farm, realm=tid, host=fresh.tenant.spo_host, not_before=past, lifetime=dt.timedelta(hours=1))
    assert spo_get(fresh, expired).headers["X-Lab-S2S-Reason"] == "expired"
    forged = actor(farm, realm=tid, host=fresh.tenant.spo_host, signer=stranger)
    assert spo_get(fresh, forged).headers["X-Lab-S2S-Reason"] == "bad_signature"
    wrong_realm = actor(farm, realm=REALM, host=fresh.tenant.spo_host)
    assert spo_get(fresh, wrong_realm).status_code == 401

    unsigned = build_outer_token(forged, user_id="S-1-5-21-1-2-3-500")
    response = spo_get(fresh, unsigned)
    assert response.status_code == 401 and response.headers["X-Lab-S2S-Reason"] == "unsigned_without_actor"
    bare = "eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0." + base64.urlsafe_b64encode(
        json.dumps({"aud": f"{SPO_PRINCIPAL_ID}/{fresh.tenant.spo_host}@{tid}", "nameid": "s-1-5-21-1",
                    "exp": int(time.time()) + 600}).encode()).decode().rstrip("=") + "."
    assert spo_get(fresh, bare).headers["X-Lab-S2S-Reason"] == "unsigned_without_actor"
    # Only an actor marked trustedfordelegation may speak for a user.
    undelegated = build_outer_token(token, user_id="S-1-5-21-1-2-3-500")
    assert spo_get(fresh, undelegated).headers["X-Lab-S2S-Reason"] == "not_trusted_for_delegation"
    delegated = actor(farm, realm=tid, host=fresh.tenant.spo_host, trusted_for_delegation=True)
    good_outer = build_outer_token(delegated, user_id="S-1-5-21-1-2-3-500")
    assert spo_get(fresh, good_outer).json()["User"] == "s-1-5-21-1-2-3-500"


def test_an_expired_key_on_the_principal_is_not_trusted(fresh: TenantLab) -> None:
    # The lab's initial tenant holds an expired key of another farm: tokens it signs are refused.
    keys = fresh.tenant.key_credentials(SPO_PRINCIPAL_ID)
    now = dt.datetime.now(dt.timezone.utc)
    expired = [k for k in keys if dt.datetime.fromisoformat(k["endDateTime"].replace("Z", "+00:00")) < now]
    assert expired
    from cryptography import x509

    cert = x509.load_der_x509_certificate(base64.b64decode(expired[0]["key"]))
    other = new_signing_certificate("x")
    token = build_actor_token(certificate=cert, private_key=other.key, issuer_id=SPO_PRINCIPAL_ID,
                              realm=fresh.tenant.tenant_id, target_principal_id=SPO_PRINCIPAL_ID,
                              target_host=fresh.tenant.spo_host)
    assert spo_get(fresh, token).headers["X-Lab-S2S-Reason"] == "unknown_x5t"
