"""The lab's Exchange server through the real client (pypsrp), as an administrator's session sees it.

One estate serves the module; each test starts from its initial state. Exchange's remote
PowerShell is its ``Microsoft.Exchange`` runspace at ``/PowerShell``: cmdlets with parameters
only. Its metadata downloads and Test-OAuthConnectivity really reach the other lab servers, and
its EWS endpoint is the judge of the S2S tokens partners send it.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from estate_fixtures import clean_estate, estate, lab_inventory  # noqa: F401 - fixtures
from runbooklib.lab.estate import LAB_USER
from runbooklib.lab.exchange import texts as T
from runbooklib.lab.pki import KeyPair, new_signing_certificate
from runbooklib.lab.s2s.oracle import certificate_x5t
from runbooklib.lab.sharepoint.web import METADATA_PATH as SP_METADATA
from runbooklib.remote import RemoteConnections
from runbooklib.sharepoint import Farm

SCRIPTS_NOT_ALLOWED = ("The syntax is not supported by this runspace. This might be because it is in "
                       "no-language mode.")
SP_A_SITE = "https://sharepoint.contoso.lab"


class Shell:
    """One runspace pool on the Exchange server, opened as pypsrp opens Exchange's endpoint."""

    def __init__(self, estate) -> None:
        server = estate.server("exchange")
        self._wsman = WSMan("127.0.0.1", port=server.port, path="PowerShell", username=LAB_USER,
                            password=estate.password("exchange"), auth="ntlm", cert_validation=str(estate.ca_bundle))
        self.pool = RunspacePool(self._wsman, configuration_name="Microsoft.Exchange")
        self.pool.open()

    def run(self, cmdlet: str, **parameters: Any) -> PowerShell:
        ps = PowerShell(self.pool)
        ps.add_cmdlet(cmdlet)
        for name, value in parameters.items():
            ps.add_parameter(name, value)
        ps.invoke()
        ps.rows = [Row(o) for o in ps.output]  # type: ignore[attr-defined]
        return ps

    def close(self) -> None:
        self.pool.close()
        self._wsman.close()


@pytest.fixture(scope="module")
def shell(estate):  # noqa: F811 - the fixture imported above
    opened = Shell(estate)
    yield opened
    opened.close()


class Row:
    """An object that came back: its properties by name (pypsrp keeps them apart by kind)."""

    def __init__(self, obj: Any) -> None:
        self._props = {**getattr(obj, "adapted_properties", {}), **getattr(obj, "extended_properties", {})}

    def __getattr__(self, name: str) -> Any:
        try:
            return self._props[name]
        except KeyError:
            raise AttributeError(name) from None


def _errors(ps: PowerShell) -> list[str]:
    return [str(e) for e in ps.streams.error]


def _ews(estate, token: str | None) -> tuple[int, str, str]:
    """(status, X-Lab-S2S-Reason, x-ms-diagnostics) of an EWS call with ``token``."""
    request = urllib.request.Request(estate.server("exchange").url + T.EWS_PATH,
                                     headers={"Authorization": f"Bearer {token or ''}"})
    context = ssl.create_default_context(cafile=str(estate.ca_bundle))
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return response.status, "", json.loads(response.read())["Issuer"]
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("X-Lab-S2S-Reason", ""), exc.headers.get("x-ms-diagnostics", "")


def _farm_token_to_exchange(estate, pair: KeyPair, farm: str = "sp-a") -> str:
    """What a farm sends EWS: signed with ``pair``, issued as the farm, for Exchange at its name."""
    issuer = estate.farm(farm).name_identifier.lower()
    exchange = estate.component("exchange")
    now = int(time.time())
    claims = {"aud": f"{T.EXCHANGE_PRINCIPAL_ID}/mail.contoso.lab@{exchange.realm}", "iss": issuer, "nameid": issuer,
              "nbf": now, "exp": now + 600}
    return jwt.encode(claims, pair.key_pem, algorithm="RS256",
                      headers={"typ": "JWT", "x5t": certificate_x5t(pair.certificate)})


def _trust_sp_a_on_exchange(estate, shell: Shell) -> str:
    url = estate.server("sp-a").url + SP_METADATA
    created = shell.run("New-MailUser", Name="SharePointEnterprise-ApplicationAccount",
                        ExternalEmailAddress="SharePointEnterprise-ApplicationAccount@contoso.lab")
    assert not created.had_errors, _errors(created)
    shell.run("New-PartnerApplication", Name="SharePointEnterprise-1", AuthMetadataUrl=url,
              LinkedAccount="SharePointEnterprise-ApplicationAccount", AcceptSecurityIdentifierInformation=True)
    return url


def test_a_script_is_refused_in_the_microsoft_exchange_runspace(clean_estate, shell):
    ps = PowerShell(shell.pool)
    ps.add_script("Get-PartnerApplication | Where-Object { $_.Enabled }")
    ps.invoke()
    assert ps.had_errors and _errors(ps) == [SCRIPTS_NOT_ALLOWED]
    assert ps.streams.error[0].fq_error == "ScriptsNotAllowed"

    # The same runspace runs a cmdlet with parameters: Get-AuthConfig names the certificate the
    # published metadata carries, and the service name Setup gave it.
    [config] = shell.run("Get-AuthConfig").rows
    assert config.ServiceName == T.EXCHANGE_PRINCIPAL_ID and config.Realm in ("", None)
    document = clean_estate.component("exchange").metadata_document()
    assert document["issuer"] == f"{T.EXCHANGE_PRINCIPAL_ID}@contoso.lab"
    assert document["keys"][0]["keyinfo"]["x5t"] == certificate_x5t(clean_estate.component("exchange")
                                                                    .auth_key_pair().certificate)
    certificate = clean_estate.component("exchange").auth_key_pair().certificate
    assert config.CurrentCertificateThumbprint == certificate.fingerprint(hashes.SHA1()).hex().upper()


def test_a_partner_application_created_from_metadata_is_found_by_its_url(clean_estate, shell):
    url = _trust_sp_a_on_exchange(clean_estate, shell)
    farm = clean_estate.farm("sp-a")
    found = [a for a in shell.run("Get-PartnerApplication").rows if a.AuthMetadataUrl == url]
    assert [a.Name for a in found] == ["SharePointEnterprise-1"]
    app = found[0]
    assert app.ApplicationIdentifier == "00000003-0000-0ff1-ce00-000000000000"
    assert app.Realm == farm.realm and app.Enabled is True and app.UseAuthServer is False
    assert app.LinkedAccount == "contoso.lab/Users/SharePointEnterprise-ApplicationAccount"
    assert app.AcceptSecurityIdentifierInformation is True

    # The roles the linked account needs, assigned and read back.
    for role in ("UserApplication", "LegalHoldApplication"):
        shell.run("New-ManagementRoleAssignment", Role=role, User="SharePointEnterprise-ApplicationAccount")
    roles = shell.run("Get-ManagementRoleAssignment", RoleAssignee="SharePointEnterprise-ApplicationAccount").rows
    assert sorted(r.Role for r in roles) == ["LegalHoldApplication", "UserApplication"]

    # A second application for the same partner is refused; a missing one is Exchange's "not found".
    again = shell.run("New-PartnerApplication", Name="SharePointEnterprise-2", AuthMetadataUrl=url)
    assert again.had_errors and "already exists: 'SharePointEnterprise-1'" in _errors(again)[0]
    missing = shell.run("Get-PartnerApplication", Identity="nobody")
    assert _errors(missing) == ["The operation couldn't be performed because object 'nobody' couldn't be found on "
                                "'DC01.contoso.lab'."]


def test_metadata_the_server_cannot_reach_creates_nothing(clean_estate, shell):
    clean_estate.server("exchange").faults.add("no-outbound")
    url = clean_estate.server("sp-a").url + SP_METADATA
    ps = shell.run("New-PartnerApplication", Name="SharePointEnterprise-1", AuthMetadataUrl=url)
    assert ps.had_errors
    assert _errors(ps) == [f"The metadata document couldn't be downloaded from '{url}'. Unable to connect to the "
                           "remote server"]
    clean_estate.server("exchange").faults.clear()
    assert [a.Name for a in shell.run("Get-PartnerApplication").rows] == [T.EXCHANGE_ONLINE_APP]


def test_oauth_connectivity_to_a_farm_fails_before_the_farm_trusts_exchange_and_passes_after(
        clean_estate, shell, lab_inventory):
    target = f"{SP_A_SITE}/_api/web"
    [before] = shell.run("Test-OAuthConnectivity", Service="Generic", TargetUri=target, Mailbox="Administrator").rows
    assert before.ResultType == "Error"
    assert "(401) Unauthorized" in before.Detail and "x-ms-diagnostics" in before.Detail

    # sp-a trusts Exchange: an issuer from Exchange's metadata and a permission for its principal.
    exchange_issuer = clean_estate.component("exchange").issuer
    with RemoteConnections(lab_inventory) as connections:
        farm = Farm(connections.session("sp-a"), name="sp-a")
        farm.new_metadata_issuer("exchange", clean_estate.server("exchange").url + T.METADATA_PATH)
        farm.register_app_principal(SP_A_SITE, exchange_issuer, "Exchange")
        farm.set_app_principal_permission(SP_A_SITE, exchange_issuer, scope="SiteSubscription", right="FullControl",
                                          app_only=True)
    [after] = shell.run("Test-OAuthConnectivity", Service="Generic", TargetUri=target, Mailbox="Administrator").rows
    assert after.ResultType == "Success", after.Detail
    assert after.Task == "Checking Generic API Call Under Oauth"


def test_ews_accepts_a_partner_token_only_with_the_certificate_its_metadata_published(clean_estate, shell):
    farm = clean_estate.farm("sp-a")
    assert _ews(clean_estate, _farm_token_to_exchange(clean_estate, farm.sts_key_pair()))[:2] == (401, "unknown_issuer")
    _trust_sp_a_on_exchange(clean_estate, shell)
    status, _, issuer = _ews(clean_estate, _farm_token_to_exchange(clean_estate, farm.sts_key_pair()))
    assert (status, issuer) == (200, farm.name_identifier.lower())

    # Another key claiming to be sp-a: refused with EWS's diagnostics.
    impostor = new_signing_certificate("not sp-a")
    status, reason, diagnostics = _ews(clean_estate, _farm_token_to_exchange(clean_estate, impostor))
    assert (status, reason) == (401, "unknown_x5t")
    assert diagnostics.startswith("2000002;reason=") and 'error_category="invalid_token"' in diagnostics

    # sp-a rolls its certificate: Exchange still holds the old one until it refreshes the metadata.
    rolled = farm.replace_sts_certificate()
    assert _ews(clean_estate, _farm_token_to_exchange(clean_estate, rolled))[:2] == (401, "unknown_x5t")
    refreshed = shell.run("Set-PartnerApplication", Identity="SharePointEnterprise-1", RefreshAuthMetadata=True)
    assert not refreshed.had_errors, _errors(refreshed)
    assert _ews(clean_estate, _farm_token_to_exchange(clean_estate, rolled))[0] == 200


def test_an_auth_server_from_the_tenants_metadata_and_a_removal_that_must_be_confirmed(clean_estate, shell,
                                                                                       lab_inventory):
    acs = lab_inventory.tenants["contoso"].acs_metadata_url
    created = shell.run("New-AuthServer", Name="WindowsAzureACS", AuthMetadataUrl=acs)
    assert not created.had_errors, _errors(created)
    [server] = shell.run("Get-AuthServer", Identity="WindowsAzureACS").rows
    tenant_id = lab_inventory.tenants["contoso"].tenant_id
    assert (server.IssuerIdentifier, server.Realm) == ("00000001-0000-0000-c000-000000000000", tenant_id.lower())

    url = _trust_sp_a_on_exchange(clean_estate, shell)
    refused = shell.run("Remove-PartnerApplication", Identity="SharePointEnterprise-1")
    assert refused.had_errors and "does not support user interaction" in _errors(refused)[0]
    ps = PowerShell(shell.pool)
    ps.add_cmdlet("Remove-PartnerApplication").add_parameter("Identity", "SharePointEnterprise-1")
    ps.add_parameter("Confirm", False)
    ps.invoke()
    assert not ps.had_errors, ps.streams.error
    assert not [a for a in shell.run("Get-PartnerApplication").rows if a.AuthMetadataUrl == url]
