"""The lab's Skype for Business pool through pypsrp: the module per session, certificates per
front end, the OAuth settings every front end shares, partner applications from metadata the
pool really downloads, and the pool's judgement of a partner's token."""

from __future__ import annotations

import datetime as dt
import json
import ssl
import urllib.error
import urllib.request
from typing import Iterator

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from runbooklib.errors import RemoteError
from runbooklib.inventory import load_inventory
from runbooklib.lab.estate import Estate
from runbooklib.lab.pki import new_signing_certificate
from runbooklib.lab.s2s.oracle import certificate_x5t
from runbooklib.remote import RemoteConnections
from runbooklib.skype import SkypePool
from runbooklib.wellknown import SHAREPOINT_METADATA_PATH, SHAREPOINT_PRINCIPAL_ID, SKYPE_PRINCIPAL_ID

from estate_fixtures import clean_estate, estate  # noqa: F401 - fixtures

POOL = "pool01.contoso.lab"


@pytest.fixture
def pools(clean_estate: Estate) -> Iterator[dict[str, SkypePool]]:
    """Both front ends, each in a session of its own."""
    with RemoteConnections(load_inventory(clean_estate.inventory_path)) as conns:
        yield {name: SkypePool(conns.session(name), name=name) for name in ("skype-fe1", "skype-fe2")}


def _oauth_thumbprint(pool: SkypePool) -> str:
    return next(c.thumbprint for c in pool.certificates() if c.friendly_name == "OAuth")


def _get(lab: Estate, host: str, path: str, token: str | None = None) -> tuple[int, dict, str]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    request = urllib.request.Request(lab.server(host).url + path, headers=headers)
    context = ssl.create_default_context(cafile=str(lab.ca_bundle))
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return response.status, json.loads(response.read()), ""
    except urllib.error.HTTPError as exc:
        return exc.code, {}, exc.headers.get("X-Lab-S2S-Reason", "")


def _farm_token(lab: Estate, *, key: rsa.RSAPrivateKey | None = None, realm: str = "contoso.lab") -> str:
    """What sp-a sends the pool: signed with its STS key, issued by 00000003-…@<farm realm>."""
    farm = lab.farm("sp-a")
    pair = farm.sts_key_pair()
    now = int(dt.datetime.now(dt.timezone.utc).timestamp())
    claims = {"aud": f"{SKYPE_PRINCIPAL_ID}/{POOL}@{realm}", "iss": farm.name_identifier.lower(),
              "nameid": farm.name_identifier.lower(), "nbf": now, "exp": now + 600}
    return jwt.encode(claims, key or pair.key, algorithm="RS256",
                      headers={"x5t": certificate_x5t(pair.certificate)})


def test_a_session_knows_no_skype_cmdlet_until_the_module_is_imported(clean_estate):
    with RemoteConnections(load_inventory(clean_estate.inventory_path)) as conns:
        session = conns.session("skype-fe1")
        with pytest.raises(RemoteError) as refused:
            session.invoke("Get-CsOAuthConfiguration")
        assert refused.value.error_id == "CommandNotFoundException"
        pool = SkypePool(session, name="skype-fe1")
        assert pool.shell().loaded == "module" and pool.oauth_configuration().realm == ""


def test_the_oauth_certificate_is_assigned_once_and_every_front_end_publishes_it(clean_estate, pools):
    fe1, fe2 = pools["skype-fe1"], pools["skype-fe2"]
    assert fe1.assigned("OAuthTokenIssuer") == []  # [C] no output: none assigned
    status, doc, _ = _get(clean_estate, "skype-fe2", "/metadata/json/1")
    assert status == 200 and doc["keys"] == [] and doc["issuer"] == f"{SKYPE_PRINCIPAL_ID}@contoso.lab"
    thumbprint = _oauth_thumbprint(fe1)
    fe1.assign_oauth_certificate(thumbprint)
    assert fe2.oauth_token_issuer().thumbprint == thumbprint  # replicated, not set per front end
    for host in ("skype-fe1", "skype-fe2"):
        _, doc, _ = _get(clean_estate, host, "/metadata/json/1")
        (key,) = doc["keys"]
        assert key["usage"] == "signing" and key["keyvalue"]["type"] == "x509Certificate"


def test_a_roll_needs_an_effective_date_and_waits_for_it(clean_estate, pools):
    fe1 = pools["skype-fe1"]
    current = _oauth_thumbprint(fe1)
    fe1.assign_oauth_certificate(current)
    nxt = clean_estate.component("skype-fe1").install_certificate(new_signing_certificate("contoso.lab"),
                                                                   friendly_name="OAuth 2027")
    with pytest.raises(RemoteError, match="EffectiveDate"):
        fe1._invoke("Set-CsCertificate", {"Identity": "global", "Type": "OAuthTokenIssuer", "Thumbprint": nxt,
                                          "Roll": True})
    fe1.assign_oauth_certificate(nxt, roll_at=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2))
    assert fe1.oauth_token_issuer().thumbprint == current
    assert {c.thumbprint for c in fe1.assigned("OAuthTokenIssuer")} == {current, nxt}
    _, doc, _ = _get(clean_estate, "skype-fe1", "/metadata/json/1")
    assert len(doc["keys"]) == 2  # partners learn the next certificate before it signs


def test_each_front_end_has_its_own_store(clean_estate, pools):
    other = clean_estate.component("skype-fe2").install_certificate(new_signing_certificate("contoso.lab"),
                                                                     friendly_name="OAuth")
    fe1, fe2 = pools["skype-fe1"], pools["skype-fe2"]
    assert _oauth_thumbprint(fe1) != _oauth_thumbprint(fe2) == other
    fe1.assign_oauth_certificate(_oauth_thumbprint(fe1))
    _, doc, _ = _get(clean_estate, "skype-fe2", "/metadata/json/1")
    assert doc["keys"] == []  # fe2 does not hold the pool's OAuth certificate
    with pytest.raises(RemoteError, match="not found in the local computer's certificate store"):
        fe1.assign_oauth_certificate(other)


def test_a_partner_application_reads_the_partner_metadata_the_pool_downloads(clean_estate, pools):
    fe1 = pools["skype-fe1"]
    url = clean_estate.server("sp-a").url + SHAREPOINT_METADATA_PATH
    fe1.new_partner_application("microsoft.sharepoint", url)
    app = pools["skype-fe2"].partner_application("microsoft.sharepoint")
    assert (app.application_identifier, app.realm, app.trust_level, app.enabled) == (
        SHAREPOINT_PRINCIPAL_ID, clean_estate.farm("sp-a").realm, "Full", True)
    assert fe1.partner_application("microsoft.exchange") is None  # [C] nothing, not an error
    with pytest.raises(RemoteError, match="ApplicationIdentifier|Parameter set cannot be resolved"):
        fe1._invoke("New-CsPartnerApplication", {"Identity": "x", "MetadataUrl": url, "ApplicationTrustLevel": "Full",
                                                 "ApplicationIdentifier": SHAREPOINT_PRINCIPAL_ID})


@pytest.mark.parametrize("case", ["unreachable", "not metadata", "no outbound access"])
def test_a_partner_application_needs_metadata_the_pool_can_download(clean_estate, pools, case):
    sp = clean_estate.server("sp-a").url
    url = {"unreachable": "https://127.0.0.1:9/metadata/json/1", "not metadata": sp + "/_vti_bin/client.svc",
           "no outbound access": sp + SHAREPOINT_METADATA_PATH}[case]
    if case == "no outbound access":
        clean_estate.server("skype-fe1").faults.add("no-outbound")
    with pytest.raises(RemoteError) as refused:
        pools["skype-fe1"].new_partner_application("microsoft.sharepoint", url)
    assert refused.value.reason.startswith("Cannot bind parameter 'MetadataUrl' to the target.")
    assert pools["skype-fe1"].partner_applications() == []


def test_the_pool_accepts_a_partner_token_only_through_its_partner_application(clean_estate, pools):
    realm = clean_estate.component("skype-fe1").realm
    assert _get(clean_estate, "skype-fe1", "/ucwa/oauth/v1/applications", _farm_token(clean_estate, realm=realm))[2] \
        == "unknown_issuer"
    pools["skype-fe1"].new_partner_application("microsoft.sharepoint",
                                               clean_estate.server("sp-a").url + SHAREPOINT_METADATA_PATH)
    status, body, _ = _get(clean_estate, "skype-fe2", "/ucwa/oauth/v1/applications", _farm_token(clean_estate))
    assert status == 200 and body["issuer"] == clean_estate.farm("sp-a").name_identifier.lower()
    forged = _farm_token(clean_estate, key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    assert _get(clean_estate, "skype-fe1", "/ucwa/oauth/v1/applications", forged)[:3:2] == (401, "bad_signature")
    other_realm = _farm_token(clean_estate, realm="fabrikam.lab")
    assert _get(clean_estate, "skype-fe1", "/ucwa/oauth/v1/applications", other_realm)[2] == "realm_mismatch"
    pools["skype-fe1"].set_partner_application("microsoft.sharepoint", enabled=False)
    assert _get(clean_estate, "skype-fe1", "/ucwa/oauth/v1/applications", _farm_token(clean_estate))[2] \
        == "unknown_issuer"


def test_storage_connectivity_fails_until_exchange_is_configured(clean_estate, pools):
    fe1 = pools["skype-fe1"]
    result = fe1.test_exchange_storage("sip:alice@contoso.lab")
    assert not result.passed and "574" in result.detail and "Autodiscover" in result.detail
    with pytest.raises(RemoteError, match="sip:nobody@contoso.lab"):
        fe1._invoke("Test-CsExStorageConnectivity", {"SipUri": "sip:nobody@contoso.lab"})


def test_storage_connectivity_is_refused_with_401_until_exchange_trusts_the_pool(clean_estate, pools):
    from runbooklib.exchange import APPLICATION_TYPES, ExchangeServer

    fe1 = pools["skype-fe1"]
    exchange_url = clean_estate.server("exchange").url
    fe1.assign_oauth_certificate(_oauth_thumbprint(fe1))
    fe1.set_oauth_configuration(exchange_autodiscover_url=exchange_url + "/autodiscover/autodiscover.svc")
    fe1.new_partner_application("microsoft.exchange", exchange_url + "/autodiscover/metadata/json/1")
    refused = fe1.test_exchange_storage("sip:alice@contoso.lab")
    assert not refused.passed and "HTTP status 401" in refused.detail

    with RemoteConnections(load_inventory(clean_estate.inventory_path)) as conns:
        exchange = ExchangeServer(conns.session("exchange"), name="exchange")
        lync = APPLICATION_TYPES["Lync"]
        account = exchange.new_application_account(lync.account, "contoso.lab")
        exchange.new_partner_application("LyncEnterprise-lab", clean_estate.server("skype-fe2").url + "/metadata/json/1",
                                         linked_account=account, accept_security_identifier_information=True)
    assert fe1.test_exchange_storage("sip:alice@contoso.lab").passed
    assert pools["skype-fe2"].test_exchange_storage("sip:alice@contoso.lab").passed  # the same certificate on fe2
