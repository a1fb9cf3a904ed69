"""runbooklib.metadata: parsing S2S metadata documents, fetching them over verified TLS,
comparing metadata URIs, realm discovery."""

from __future__ import annotations

import base64
import json

import pytest

from runbooklib.errors import MetadataError
from runbooklib.lab.http import LabServer, Response
from runbooklib.lab.pki import LabCA, new_signing_certificate
from runbooklib.metadata import (
    discover_realm,
    fetch_metadata,
    parse_bearer_challenge,
    parse_metadata,
    same_metadata_uri,
)

TENANT = "6c3f0b8a-4e7d-4b25-9a61-0d2e7c9b1f44"


@pytest.fixture(scope="module")
def certs():
    return new_signing_certificate("ACS signing 1"), new_signing_certificate("ACS signing 2")


def b64(pair) -> str:
    return base64.b64encode(pair.cert_der).decode()


def acs_document(certs) -> dict:
    # ACS casing: x509Certificate / signing, plus endpoints.
    return {
        "version": "1.0",
        "realm": TENANT,
        "issuer": f"00000001-0000-0000-c000-000000000000@{TENANT.upper()}",
        "allowedAudiences": [f"00000001-0000-0000-c000-000000000000@{TENANT}"],
        "keys": [
            {"keyValue": {"type": "x509Certificate", "value": b64(certs[0])}, "usage": "signing", "keyInfo": {}},
            {"keyValue": {"type": "x509Certificate", "value": b64(certs[1])}, "usage": "signing"},
            {"keyValue": {"type": "x509Certificate", "value": b64(certs[1])}, "usage": "encryption"},
        ],
        "endpoints": [{"location": f"https://accounts.accesscontrol.windows.net/{TENANT}/tokens/OAuth/2",
                       "protocol": "OAuth2", "usage": "issuance"}],
    }


def test_parse_acs_shape_case_insensitively(certs):
    doc = parse_metadata(json.dumps(acs_document(certs)), url="https://acs/metadata/json/1")
    assert doc.realm == TENANT and doc.principal_id == "00000001-0000-0000-c000-000000000000"
    assert doc.signing_certificates == (certs[0].certificate, certs[1].certificate)
    assert doc.endpoint("ISSUANCE").protocol == "OAuth2"
    assert len(doc.thumbprints[0]) == 40 and doc.thumbprints[0].isupper()


def test_parse_sharepoint_shape_and_odd_key_casing(certs):
    raw = {"ISSUER": "00000003-0000-0ff1-ce00-000000000000@" + TENANT,
           "Keys": [{"KeyValue": {"Type": "X509CERTIFICATE", "Value": b64(certs[0])}, "Usage": "Signing"}],
           "Name": "00000003-0000-0ff1-ce00-000000000000", "ServiceName": "00000003-0000-0ff1-ce00-000000000000"}
    doc = parse_metadata(raw)
    assert doc.realm == TENANT and doc.service_name == "00000003-0000-0ff1-ce00-000000000000"
    assert doc.endpoints == ()


@pytest.mark.parametrize("broken, message", [
    ({"keys": []}, "has no issuer"),
    ({"issuer": "x@y", "keys": "nope"}, "has no keys"),
    ({"issuer": "x@y", "keys": [{"keyValue": {"type": "x509certificate", "value": "!!"}, "usage": "signing"}]},
     "not a valid base64 DER certificate"),
    ({"issuer": "x@y", "keys": [{"keyValue": {"type": "x509certificate", "value": "QUJD"}, "usage": "encryption"}]},
     "no x509 signing certificate"),
    ({"issuer": "noat", "keys": []}, "has no realm"),
])
def test_malformed_documents_name_the_url(broken, message):
    with pytest.raises(MetadataError, match=message) as caught:
        parse_metadata(broken, url="https://partner/metadata/json/1")
    assert "https://partner/metadata/json/1" in str(caught.value)
    assert caught.value.hint


def test_not_json():
    with pytest.raises(MetadataError, match="did not return JSON"):
        parse_metadata(b"<html>sign in</html>", url="https://x")


@pytest.mark.parametrize("a, b, same", [
    ("https://accounts.accesscontrol.windows.net/metadata/json/1",
     "https://accounts.accesscontrol.windows.net/metadata/json/1/", True),
    (f"https://ACCOUNTS.accesscontrol.windows.net:443/{TENANT.upper()}/metadata/json/1/",
     f"https://accounts.accesscontrol.windows.net/{TENANT}/metadata/json/1", True),
    ("https://accounts.accesscontrol.windows.net/metadata/json/1",
     f"https://accounts.accesscontrol.windows.net/{TENANT}/metadata/json/1", False),
    ("http://sp/_layouts/15/metadata/json/1", "https://sp/_layouts/15/metadata/json/1", False),
    ("https://sp:8443/_layouts/15/metadata/json/1", "https://sp/_layouts/15/metadata/json/1", False),
    (None, "https://sp/_layouts/15/metadata/json/1", False),
])
def test_same_metadata_uri(a, b, same):
    assert same_metadata_uri(a, b) is same
    assert same_metadata_uri(b, a) is same


def test_parse_bearer_challenge():
    c = parse_bearer_challenge(f'Bearer realm="{TENANT.upper()}",client_id="00000003-0000-0ff1-ce00-000000000000",'
                               'trusted_issuers="a@b,c@d"')
    assert c.realm == TENANT and c.trusted_issuers == ("a@b", "c@d")
    assert parse_bearer_challenge("NTLM") is None
    assert parse_bearer_challenge('Bearer error="invalid_token"') is None


# ------------------------------------------------------------------------------ over HTTPS

@pytest.fixture(scope="module")
def server(tmp_path_factory, certs):
    directory = tmp_path_factory.mktemp("metadata")
    ca = LabCA.open(directory / "ca")
    srv = LabServer("partner", ca.issue_server_certificate(["127.0.0.1"]), cert_dir=directory / "tls")
    srv.mount("/acs/metadata/json/1", lambda r: Response.json(acs_document(certs)))
    srv.mount("/html", lambda r: Response.text("<html/>", content_type="text/html"))

    def client_svc(request):
        response = Response.text("401 UNAUTHORIZED", status=401)
        response.headers["WWW-Authenticate"] = f'Bearer realm="{TENANT}",client_id="00000003-0000-0ff1-ce00-000000000000"'
        return response

    srv.mount("/site/_vti_bin/client.svc", client_svc)
    srv.start()
    srv.ca_bundle = ca.bundle_path
    srv.other_ca = LabCA.open(directory / "other").bundle_path
    yield srv
    srv.stop()


def test_fetch_verifies_tls_against_the_bundle(server, certs):
    doc = fetch_metadata(server.url + "/acs/metadata/json/1", ca_bundle=server.ca_bundle)
    assert doc.realm == TENANT and doc.signing_certificates[0] == certs[0].certificate
    with pytest.raises(MetadataError, match="TLS verification") as caught:
        fetch_metadata(server.url + "/acs/metadata/json/1", ca_bundle=server.other_ca)
    assert server.url in str(caught.value) and str(server.other_ca) in caught.value.hint


def test_fetch_failures_say_what_to_check(server, tmp_path):
    with pytest.raises(MetadataError, match="answered HTTP 404"):
        fetch_metadata(server.url + "/nothing/here", ca_bundle=server.ca_bundle)
    with pytest.raises(MetadataError, match="did not return JSON"):
        fetch_metadata(server.url + "/html", ca_bundle=server.ca_bundle)
    with pytest.raises(MetadataError, match="does not exist"):
        fetch_metadata(server.url + "/acs/metadata/json/1", ca_bundle=tmp_path / "missing.pem")
    with pytest.raises(MetadataError, match="Could not fetch https://127.0.0.1:9/"):
        fetch_metadata("https://127.0.0.1:9/metadata/json/1", ca_bundle=server.ca_bundle, timeout=2)
    server.faults.add("drop", 1)
    with pytest.raises(MetadataError, match="Could not fetch"):
        fetch_metadata(server.url + "/acs/metadata/json/1", ca_bundle=server.ca_bundle)


def test_discover_realm(server):
    assert discover_realm(server.url + "/site/", server.ca_bundle) == TENANT
    with pytest.raises(MetadataError, match="without a Bearer realm challenge"):
        discover_realm(server.url + "/acs", server.ca_bundle)
