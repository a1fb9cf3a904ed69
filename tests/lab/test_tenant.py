"""The lab tenant as the unmodified clients see it: MSAL/azure-identity for sign-in, msgraph-sdk
for Graph, plain HTTPS for discovery, ACS metadata and error shapes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ssl
import time

import httpx
import pytest
from cryptography import x509

from runbooklib.lab.pki import new_signing_certificate
from runbooklib.lab.tenant import SPO_PRINCIPAL_ID, Tenant

from tenant_lab import TenantLab, fresh, tenant_lab  # noqa: F401 - fixtures


def get(lab: TenantLab, path: str, **headers: str) -> httpx.Response:
    with httpx.Client(verify=ssl.create_default_context(cafile=str(lab.ca_bundle))) as client:
        return client.get(f"{lab.url}{path}", headers=headers)


def sdk_call(lab: TenantLab, make, *, client_id: str | None = None, secret: str | None = None):
    """Run ``make(GraphServiceClient)`` with a client-secret credential, the way graph.py wires it."""
    from azure.identity import ClientSecretCredential
    from msgraph import GraphServiceClient
    from msgraph.graph_request_adapter import GraphRequestAdapter, options
    from msgraph_core import GraphClientFactory
    from msgraph_core.authentication import AzureIdentityAuthenticationProvider

    app = lab.tenant.runbook_app
    credential = ClientSecretCredential(
        lab.tenant.tenant_id, client_id or app.client_id, secret or app.secret, authority=lab.url,
        disable_instance_discovery=True, connection_verify=str(lab.ca_bundle),
    )

    async def run():
        http = httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(lab.ca_bundle)))
        http = GraphClientFactory.create_with_default_middleware(client=http, options=options)
        auth = AzureIdentityAuthenticationProvider(
            credential, scopes=["https://graph.microsoft.com/.default"], allowed_hosts=["127.0.0.1"]
        )
        adapter = GraphRequestAdapter(auth, client=http)
        adapter.base_url = f"{lab.url}/v1.0"
        try:
            return await make(GraphServiceClient(request_adapter=adapter))
        finally:
            await http.aclose()

    return asyncio.run(run())


def spo_object_id(lab: TenantLab) -> str:
    return lab.tenant.service_principal(SPO_PRINCIPAL_ID)["id"]


def select(names: list[str]):
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph.generated.service_principals.item.service_principal_item_request_builder import (
        ServicePrincipalItemRequestBuilder,
    )

    query = ServicePrincipalItemRequestBuilder.ServicePrincipalItemRequestBuilderGetQueryParameters(select=names)
    return RequestConfiguration(query_parameters=query)


def odata_error(lab: TenantLab, make):
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError

    with pytest.raises(ODataError) as caught:
        sdk_call(lab, make)
    return caught.value


# ---------------------------------------------------------------------- Entra ID and ACS documents
def test_openid_discovery_and_signing_keys(fresh: TenantLab) -> None:
    tid = fresh.tenant.tenant_id
    doc = get(fresh, f"/{tid}/v2.0/.well-known/openid-configuration").json()
    assert doc["issuer"] == f"{fresh.url}/{tid}/v2.0"
    assert doc["token_endpoint"] == f"{fresh.url}/{tid}/oauth2/v2.0/token"
    assert doc["device_authorization_endpoint"].endswith("/oauth2/v2.0/devicecode")
    jwks = get(fresh, f"/{tid}/discovery/v2.0/keys").json()
    der = base64.b64decode(jwks["keys"][0]["x5c"][0])
    assert der == fresh.tenant.entra_signing.cert_der


def test_acs_metadata_has_the_signing_certificate_and_issuance_endpoint(fresh: TenantLab) -> None:
    tid = fresh.tenant.tenant_id
    doc = get(fresh, f"/{tid}/metadata/json/1").json()
    assert doc["issuer"] == f"00000001-0000-0000-c000-000000000000@{tid}"
    (key,) = doc["keys"]
    assert key["usage"] == "signing" and key["keyValue"]["type"] == "x509Certificate"
    assert base64.b64decode(key["keyValue"]["value"]) == fresh.tenant.acs_signing.cert_der
    (endpoint,) = doc["endpoints"]
    assert endpoint == {"location": f"{fresh.url}/{tid}/tokens/OAuth/2", "protocol": "OAuth2", "usage": "issuance"}


def test_unknown_tenant_and_unknown_app_get_aadsts_errors(fresh: TenantLab) -> None:
    from azure.core.exceptions import ClientAuthenticationError
    from azure.identity import ClientSecretCredential

    def sign_in(tenant_id: str, client_id: str) -> str:
        credential = ClientSecretCredential(tenant_id, client_id, "x", authority=fresh.url,
                                            disable_instance_discovery=True, connection_verify=str(fresh.ca_bundle))
        with pytest.raises(ClientAuthenticationError) as caught:
            credential.get_token("https://graph.microsoft.com/.default")
        return caught.value.message

    assert "AADSTS700016" in sign_in(fresh.tenant.tenant_id, "11111111-2222-3333-4444-555555555555")
    unknown = "99999999-2222-3333-4444-555555555555"
    with httpx.Client(verify=ssl.create_default_context(cafile=str(fresh.ca_bundle))) as client:
        body = client.post(f"{fresh.url}/{unknown}/oauth2/v2.0/token", data={"grant_type": "client_credentials"})
    assert body.status_code == 404 or "AADSTS90002" in body.text


def test_msal_certificate_assertion_ps256_with_x5t_s256(fresh: TenantLab, tmp_path) -> None:
    """MSAL alone with a PFX signs PS256 and names the key by x5t#S256; the lab verifies that too."""
    import msal
    from cryptography.hazmat.primitives.serialization import NoEncryption, pkcs12

    app = fresh.tenant.runbook_app
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(app.key_pem.encode(), None)
    pfx = tmp_path / "app.pfx"
    pfx.write_bytes(pkcs12.serialize_key_and_certificates(b"app", key, app.certificate, None, NoEncryption()))
    import requests

    session = requests.Session()
    session.verify = str(fresh.ca_bundle)
    session.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would override session.verify
    client = msal.ConfidentialClientApplication(
        app.client_id, authority=f"{fresh.url}/{fresh.tenant.tenant_id}",
        client_credential={"private_key_pfx_path": str(pfx)}, instance_discovery=False, http_client=session,
    )
    result = client.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
    assert "access_token" in result, result
    claims = fresh.tenant.verify_access_token(result["access_token"])
    assert claims["appidacr"] == "2" and "Application.ReadWrite.All" in claims["roles"]


def test_device_code_answer_carries_the_code_and_message(fresh: TenantLab) -> None:
    tid = fresh.tenant.tenant_id
    with httpx.Client(verify=ssl.create_default_context(cafile=str(fresh.ca_bundle))) as client:
        flow = client.post(f"{fresh.url}/{tid}/oauth2/v2.0/devicecode",
                           data={"client_id": fresh.tenant.runbook_app.client_id, "scope": "openid offline_access"}).json()
        assert flow["user_code"] in flow["message"] and flow["verification_uri"] in flow["message"]
        poll = {"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": flow["device_code"],
                "client_id": fresh.tenant.runbook_app.client_id}
        pending = client.post(f"{fresh.url}/{tid}/oauth2/v2.0/token", data=poll)
        assert pending.status_code == 400 and pending.json()["error"] == "authorization_pending"
        done = client.post(f"{fresh.url}/{tid}/oauth2/v2.0/token", data=poll).json()
    assert {"access_token", "refresh_token", "id_token", "client_info"} <= set(done)
    claims = fresh.tenant.verify_access_token(done["access_token"])
    assert claims["upn"] == f"admin@{fresh.tenant.domain}" and "Application.ReadWrite.All" in claims["scp"].split()


# ---------------------------------------------------------------------- Graph behaviour
def test_key_is_null_on_lists_and_filled_on_a_selected_single_read(fresh: TenantLab) -> None:
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph.generated.service_principals.service_principals_request_builder import ServicePrincipalsRequestBuilder

    query = ServicePrincipalsRequestBuilder.ServicePrincipalsRequestBuilderGetQueryParameters(
        filter=f"appId eq '{SPO_PRINCIPAL_ID}'", select=["id", "keyCredentials"])
    listed = sdk_call(fresh, lambda g: g.service_principals.get(
        request_configuration=RequestConfiguration(query_parameters=query)))
    (sp,) = listed.value
    assert len(sp.key_credentials) == 2 and all(k.key is None for k in sp.key_credentials)
    plain = sdk_call(fresh, lambda g: g.service_principals.by_service_principal_id(sp.id).get())
    assert all(k.key is None for k in plain.key_credentials)
    single = sdk_call(fresh, lambda g: g.service_principals.by_service_principal_id(sp.id).get(
        request_configuration=select(["keyCredentials"])))
    stored = {k["keyId"]: k for k in fresh.tenant.key_credentials(SPO_PRINCIPAL_ID)}
    for cred in single.key_credentials:
        assert base64.b64encode(cred.key).decode() == stored[str(cred.key_id)]["key"]
        # The SDK base64-decodes customKeyIdentifier; encoding it again gives Graph's hex thumbprint.
        assert base64.b64encode(cred.custom_key_identifier).decode() == hashlib.sha1(cred.key).hexdigest().upper()


def test_patch_replaces_the_whole_collection_and_null_key_keeps_a_key(fresh: TenantLab) -> None:
    from msgraph.generated.models.key_credential import KeyCredential
    from msgraph.generated.models.service_principal import ServicePrincipal

    object_id = spo_object_id(fresh)
    first, second = fresh.tenant.key_credentials(SPO_PRINCIPAL_ID)
    import uuid

    body = ServicePrincipal(key_credentials=[KeyCredential(key_id=uuid.UUID(first["keyId"]), type="AsymmetricX509Cert",
                                                           usage="Verify", key=None)])
    assert sdk_call(fresh, lambda g: g.service_principals.by_service_principal_id(object_id).patch(body)) is None
    (kept,) = fresh.tenant.key_credentials(SPO_PRINCIPAL_ID)
    assert kept["keyId"] == first["keyId"] and kept["key"] == first["key"]  # second is gone: replaced


def test_invalid_certificate_is_request_bad_request(fresh: TenantLab) -> None:
    from msgraph.generated.models.key_credential import KeyCredential
    from msgraph.generated.models.service_principal import ServicePrincipal

    object_id = spo_object_id(fresh)
    body = ServicePrincipal(key_credentials=[KeyCredential(type="AsymmetricX509Cert", usage="Verify",
                                                           key=b"this is not a certificate")])
    err = odata_error(fresh, lambda g: g.service_principals.by_service_principal_id(object_id).patch(body))
    assert err.response_status_code == 400 and err.error.code == "Request_BadRequest"
    assert len(fresh.tenant.key_credentials(SPO_PRINCIPAL_ID)) == 2


def test_size_limit_is_directory_resource_size_exceeded(fresh: TenantLab) -> None:
    from msgraph.generated.models.key_credential import KeyCredential
    from msgraph.generated.models.service_principal import ServicePrincipal

    import uuid

    fresh.tenant.set_size_limit(2)
    cert = new_signing_certificate("one too many")
    existing = [KeyCredential(key_id=uuid.UUID(k["keyId"]), type=k["type"], usage=k["usage"])
                for k in fresh.tenant.key_credentials(SPO_PRINCIPAL_ID)]
    body = ServicePrincipal(key_credentials=existing + [KeyCredential(type="AsymmetricX509Cert", usage="Verify",
                                                                      key=cert.cert_der)])
    err = odata_error(fresh, lambda g: g.service_principals.by_service_principal_id(spo_object_id(fresh)).patch(body))
    assert err.error.code == "Directory_ResourceSizeExceeded"
    assert len(fresh.tenant.key_credentials(SPO_PRINCIPAL_ID)) == 2


def test_duplicate_spn_across_principals_is_refused(fresh: TenantLab) -> None:
    from msgraph.generated.models.service_principal import ServicePrincipal

    taken = "00000002-0000-0ff1-ce00-000000000000/*.outlook.com"
    spns = fresh.tenant.spns(SPO_PRINCIPAL_ID) + [taken]
    body = ServicePrincipal(service_principal_names=spns)
    err = odata_error(fresh, lambda g: g.service_principals.by_service_principal_id(spo_object_id(fresh)).patch(body))
    assert err.error.code == "Request_MultipleObjectsWithSameKeyValue"
    assert taken not in fresh.tenant.spns(SPO_PRINCIPAL_ID)


def test_missing_permission_is_403_authorization_request_denied(fresh: TenantLab) -> None:
    from msgraph.generated.models.service_principal import ServicePrincipal
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError

    fresh.tenant.set_permissions(fresh.tenant.runbook_app.client_id, ["Application.Read.All", "Organization.Read.All"])
    body = ServicePrincipal(service_principal_names=fresh.tenant.spns(SPO_PRINCIPAL_ID))
    with pytest.raises(ODataError) as caught:
        sdk_call(fresh, lambda g: g.service_principals.by_service_principal_id(spo_object_id(fresh)).patch(body))
    assert caught.value.response_status_code == 403 and caught.value.error.code == "Authorization_RequestDenied"
    fresh.tenant.set_permissions(fresh.tenant.runbook_app.client_id, ["Application.ReadWrite.All", "Organization.Read.All"])


def test_bad_and_expired_tokens_are_401_in_graphs_error_shape(fresh: TenantLab) -> None:
    now = int(time.time())
    expired = fresh.tenant.sign({"aud": "https://graph.microsoft.com", "tid": fresh.tenant.tenant_id,
                                 "exp": now - 600, "roles": ["Organization.Read.All"]})
    response = get(fresh, "/v1.0/organization", Authorization=f"Bearer {expired}")
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "InvalidAuthenticationToken" and "expired" in error["message"]
    assert {"date", "request-id", "client-request-id"} <= set(error["innerError"])
    import jwt

    foreign = jwt.encode({"aud": "https://graph.microsoft.com", "tid": fresh.tenant.tenant_id, "exp": now + 600},
                         new_signing_certificate("attacker").key_pem, algorithm="RS256")
    assert get(fresh, "/v1.0/organization", Authorization=f"Bearer {foreign}").json()["error"]["code"] == \
        "InvalidAuthenticationToken"


def test_throttling_is_429_with_retry_after_one_second(fresh: TenantLab) -> None:
    fresh.tenant.throttle_next(1)
    response = get(fresh, "/v1.0/organization")
    assert response.status_code == 429 and response.headers["Retry-After"] == "1"
    assert response.json()["error"]["code"] == "TooManyRequests"
    # The estate's generic "error" fault looks the same on Graph routes.
    fresh.server.faults.add("error", 1, path_prefix="/v1.0")
    assert get(fresh, "/v1.0/organization").status_code == 429
    assert get(fresh, "/v1.0/organization").status_code == 401  # no token: the fault was consumed


# ---------------------------------------------------------------------- state, reset, inventory
def test_state_survives_a_restart_and_reset_restores_it(fresh: TenantLab) -> None:
    fresh.tenant.add_spn(SPO_PRINCIPAL_ID, f"{SPO_PRINCIPAL_ID}/*.example.lab")
    again = Tenant.open(fresh.tenant.state_dir)
    assert again.tenant_id == fresh.tenant.tenant_id
    assert f"{SPO_PRINCIPAL_ID}/*.example.lab" in again.spns(SPO_PRINCIPAL_ID)
    assert again.runbook_app.secret == fresh.tenant.runbook_app.secret
    again.reset()
    assert f"{SPO_PRINCIPAL_ID}/*.example.lab" not in fresh.tenant.spns(SPO_PRINCIPAL_ID)
    assert again.tenant_id == fresh.tenant.tenant_id and len(fresh.tenant.key_credentials(SPO_PRINCIPAL_ID)) == 2


def test_initial_spo_principal_holds_two_foreign_keys(fresh: TenantLab) -> None:
    sp = fresh.tenant.service_principal(SPO_PRINCIPAL_ID)
    assert sp["displayName"] == "Office 365 SharePoint Online"
    assert len(sp["keyCredentials"]) == 2
    for key in sp["keyCredentials"]:
        cert = x509.load_der_x509_certificate(base64.b64decode(key["key"]))
        assert key["customKeyIdentifier"] == hashlib.sha1(cert.public_bytes(
            __import__("cryptography.hazmat.primitives.serialization", fromlist=["Encoding"]).Encoding.DER)).hexdigest().upper()
    assert f"{SPO_PRINCIPAL_ID}/*.sharepoint.com" in sp["servicePrincipalNames"]


def test_inventory_entry_loads_and_names_the_secret_file(fresh: TenantLab) -> None:
    from runbooklib.inventory import load_inventory

    entry = fresh.tenant.inventory_entry(fresh.url, "ca.pem")
    assert entry["credential"] == {"type": "client_secret", "client_id": fresh.tenant.runbook_app.client_id,
                                   "secret": "file:secrets/contoso-app"}
    assert fresh.tenant.secret_files()["secrets/contoso-app"] == fresh.tenant.runbook_app.secret
    spec = load_inventory(fresh.write_inventory()).tenant("contoso")
    assert spec.tenant_id == fresh.tenant.tenant_id
    assert spec.acs_metadata_url == f"{fresh.url}/{fresh.tenant.tenant_id}/metadata/json/1"
    assert spec.graph_url == f"{fresh.url}/v1.0" and spec.spo_url == fresh.url
