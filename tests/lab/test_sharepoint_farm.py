"""The simulated SharePoint farm: handler by handler (in memory), its web endpoints over HTTPS,
and end to end through runbooklib.remote and the lab WinRM endpoint."""

from __future__ import annotations

import base64
import json
import re
import shutil
import ssl
import stat
import urllib.error
import urllib.request
from pathlib import Path

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from invocation_harness import BindingFailed, deserialize, run
from sharepoint_sessions import open_sharepoint_session
from winrm_fixtures import Target
from runbooklib import metadata
from runbooklib.errors import RemoteError
from runbooklib.lab.http import LabServer
from runbooklib.lab.pki import LabCA, new_signing_certificate
from runbooklib.lab.sharepoint import FarmDefinition, SharePointFarm, WebAppDefinition
from runbooklib.lab.sharepoint.objects import certificate_obj
from runbooklib.lab.sharepoint.templates import TEMPLATE_PARAMETERS
from runbooklib.lab.sharepoint.product import FARM_LISTENER_AUTH
from runbooklib.lab.winrm.api import DeserializedObject
from runbooklib.lab.winrm.endpoint import WinRMEndpoint

SP_ID = "00000003-0000-0ff1-ce00-000000000000"
TEMPLATES = Path(__file__).resolve().parents[2] / "runbooklib" / "templates" / "sharepoint"
ADDIN, BROKER_ADDIN = FarmDefinition.preset("sp-a").initial_issuers
FINANCE = "https://sharepoint.contoso.lab/sites/finance"
TENANT = "6c3f0b8a-4e7d-4b25-9a61-0d2e7c9b1f44"


# ------------------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> dict[str, Path]:
    """Farm state files created once per module; each test works on a copy."""
    base = tmp_path_factory.mktemp("pristine")
    paths = {}
    for name in ("sp-a", "sp-b"):
        SharePointFarm.open(base / f"{name}.json", FarmDefinition.preset(name))
        paths[name] = base / f"{name}.json"
    return paths


@pytest.fixture
def farm(pristine, tmp_path) -> SharePointFarm:
    shutil.copy(pristine["sp-a"], tmp_path / "sp-a.json")
    return SharePointFarm.open(tmp_path / "sp-a.json")


@pytest.fixture(scope="module")
def lab_ca(tmp_path_factory) -> LabCA:
    return LabCA.open(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def two_farms(pristine, tmp_path, lab_ca):
    """sp-a and sp-b, each on its own HTTPS server, trusting the lab CA."""
    farms, servers = {}, []
    for name in ("sp-a", "sp-b"):
        shutil.copy(pristine[name], tmp_path / f"{name}.json")
        f = SharePointFarm.open(tmp_path / f"{name}.json", ca_bundle=lab_ca.bundle_path, metadata_timeout=3)
        server = LabServer(name, lab_ca.issue_server_certificate(["127.0.0.1"]), cert_dir=tmp_path / "tls")
        f.mount_web(server)
        server.start()
        farms[name] = (f, server)
        servers.append(server)
    yield farms
    for server in servers:
        server.stop()


def sts_thumbprint(f: SharePointFarm) -> str:
    return f.sts_key_pair().certificate.fingerprint(hashes.SHA1()).hex().upper()


# ------------------------------------------------------------------------------ farm and web apps

@pytest.mark.parametrize("preset, build", [("sp-a", "16.0.10337.12109"), ("sp-b", "16.0.18526.20508")])
def test_get_spfarm_reports_the_build_of_its_version(pristine, tmp_path, preset, build):
    shutil.copy(pristine[preset], tmp_path / "f.json")
    f = SharePointFarm.open(tmp_path / "f.json")
    obj = run(f.commands, "Get-SPFarm").one
    assert obj.type_names[0] == "Microsoft.SharePoint.Administration.SPFarm"
    assert obj.properties["BuildVersion"] == build
    assert str(obj.properties["Id"]) == f.farm_id
    assert obj.to_string == "SPFarm Name=SharePoint_Config"


def test_unknown_parameter_fails_binding(farm):
    with pytest.raises(BindingFailed, match="Realms"):
        run(farm.commands, "Set-SPAuthenticationRealm", {"Realms": "x"})


def test_web_applications_and_their_default_zone_authentication(farm):
    apps = run(farm.commands, "Get-SPWebApplication").output
    assert [a.properties["Url"] for a in apps] == [
        "https://sharepoint.contoso.lab/", "https://portal.contoso.lab/", "http://intranet.contoso.lab/"]

    def provider(url):
        return run(farm.commands, "Get-SPAuthenticationProvider", {"WebApplication": url, "Zone": "Default"}).one

    ntlm, kerberos, http = (provider(a.properties["Url"]) for a in apps)
    assert ntlm.properties["DisableKerberos"] is True and ntlm.properties["UseWindowsIntegratedAuthentication"]
    assert kerberos.properties["DisableKerberos"] is False
    assert http.properties["DisableKerberos"] is True
    assert ntlm.properties["ClaimProviderName"] == "AD"
    # The zone settings are also on the web application object.
    assert apps[1].properties["IisSettings"]["Default"].properties["DisableKerberos"] is False


def test_authentication_provider_zone_errors(farm):
    bad = run(farm.commands, "Get-SPAuthenticationProvider",
              {"WebApplication": "https://sharepoint.contoso.lab", "Zone": "Outside"})
    assert bad.terminating and "Cannot bind parameter 'Zone'" in bad.terminating.message
    assert "Default, Intranet, Internet, Custom, Extranet" in bad.terminating.message
    missing = run(farm.commands, "Get-SPAuthenticationProvider",
                  {"WebApplication": "https://sharepoint.contoso.lab/", "Zone": "internet"})
    assert missing.output == [] and missing.errors and missing.terminating is None


def test_get_spsite_finds_the_site_or_writes_a_non_terminating_error(farm):
    site = run(farm.commands, "Get-SPSite", {"Identity": "https://SharePoint.contoso.lab/"}).one
    assert site.properties["Url"] == "https://sharepoint.contoso.lab"
    assert site.properties["RootWeb"].type_names[0] == "Microsoft.SharePoint.SPWeb"
    inside = run(farm.commands, "Get-SPSite", {"Identity": "https://sharepoint.contoso.lab/Pages/x.aspx"}).one
    assert inside.properties["Id"] == site.properties["Id"]
    missing = run(farm.commands, "Get-SPSite", {"Identity": "https://nowhere.contoso.lab"})
    assert missing.output == [] and missing.terminating is None
    assert missing.errors[0].message == "Cannot find an SPSite object with Id or Url: https://nowhere.contoso.lab."


# ------------------------------------------------------------------------------ STS, realm, OAuth over HTTP

def test_sts_config_and_realm_start_from_the_farm_id(farm):
    config = run(farm.commands, "Get-SPSecurityTokenServiceConfig").one
    assert config.properties["NameIdentifier"] == f"{SP_ID}@{farm.farm_id}"
    assert config.properties["AllowOAuthOverHttp"] is False
    cert = config.properties["LocalLoginProvider"].properties["SigningCertificate"]
    assert cert.properties["Thumbprint"] == sts_thumbprint(farm)
    assert cert.properties["Subject"].startswith("CN=SharePoint Security Token Service, OU=SharePoint")
    assert run(farm.commands, "Get-SPAuthenticationRealm").one == farm.farm_id


def test_set_realm_changes_the_name_identifier_but_not_existing_issuers(farm):
    tenant = "6C3F0B8A-4E7D-4B25-9A61-0D2E7C9B1F44"
    old = farm.realm
    assert run(farm.commands, "Set-SPAuthenticationRealm", {"Realm": tenant}).terminating is None
    assert run(farm.commands, "Get-SPAuthenticationRealm").one == tenant.lower()
    config = run(farm.commands, "Get-SPSecurityTokenServiceConfig").one
    assert config.properties["NameIdentifier"] == f"{SP_ID}@{tenant.lower()}"
    # The add-in issuer stays registered under the old realm: exactly what breaks (KB 4010011).
    issuer = run(farm.commands, "Get-SPTrustedSecurityTokenIssuer", {"Identity": ADDIN.name}).one
    assert issuer.properties["RegisteredIssuerName"] == f"{ADDIN.issuer_id}@{old}"


def test_sts_certificate_template_returns_der_bytes(farm):
    out = run(farm.commands, "sharepoint/get-sts-certificate").one
    cert = x509.load_der_x509_certificate(out.properties["RawData"])
    assert cert == farm.sts_key_pair().certificate
    assert out.properties["Thumbprint"] == sts_thumbprint(farm)
    assert out.properties["KeySize"] == 2048
    assert out.properties["NotAfter"] == cert.not_valid_after_utc


def test_oauth_over_http_template_sets_and_persists(farm):
    assert run(farm.commands, "sharepoint/set-oauth-over-http", {"Enabled": True}).one is True
    reopened = SharePointFarm.open(farm.state_path)
    assert run(reopened.commands, "Get-SPSecurityTokenServiceConfig").one.properties["AllowOAuthOverHttp"] is True
    assert run(farm.commands, "sharepoint/set-oauth-over-http", {"Enabled": False}).one is False


# ------------------------------------------------------------------------------ app principals

def test_register_app_principal_refuses_a_deserialized_web(farm):
    site = run(farm.commands, "Get-SPSite", {"Identity": "https://sharepoint.contoso.lab"}).one
    web = DeserializedObject(["Deserialized.Microsoft.SharePoint.SPWeb", "Deserialized.System.Object"],
                             {"Url": "https://sharepoint.contoso.lab"}, site.properties["RootWeb"].to_string)
    result = run(farm.commands, "Register-SPAppPrincipal",
                 {"Site": web, "NameIdentifier": f"abc@{farm.realm}", "DisplayName": "x"})
    assert result.terminating.message == (
        "Cannot bind parameter 'Site'. Cannot convert the \"SPWeb Url=https://sharepoint.contoso.lab\" value of "
        "type \"Deserialized.Microsoft.SharePoint.SPWeb\" to type \"Microsoft.SharePoint.PowerShell.SPWebPipeBind\".")
    assert result.terminating.error_id == "CannotConvertArgumentNoMessage"


def test_register_app_principal_template_is_idempotent(farm):
    params = {"Site": "https://sharepoint.contoso.lab", "NameIdentifier": f"11111111-2222-3333-4444-555555555555@{farm.realm}",
              "DisplayName": "SharePoint Online"}
    first = run(farm.commands, "sharepoint/register-app-principal", params).one
    assert first.type_names[0] == "Microsoft.SharePoint.SPAppPrincipal"
    assert first.properties["Changed"] is True
    before = farm.state_path.read_bytes()
    again = run(farm.commands, "sharepoint/register-app-principal", params).one
    assert again.properties["Changed"] is False
    assert farm.state_path.read_bytes() == before
    got = run(farm.commands, "Get-SPAppPrincipal", {"Site": "https://sharepoint.contoso.lab",
                                                      "NameIdentifier": params["NameIdentifier"]}).one
    assert got.properties["DisplayName"] == "SharePoint Online"


def test_set_permission_refuses_a_deserialized_principal(farm):
    principal = run(farm.commands, "Get-SPAppPrincipal", {"Site": "https://sharepoint.contoso.lab",
                                                            "NameIdentifier": f"{ADDIN.client_id}@{farm.realm}"}).one
    result = run(farm.commands, "Set-SPAppPrincipalPermission", {
        "AppPrincipal": deserialize(principal), "Site": "https://sharepoint.contoso.lab",
        "Scope": "SiteCollection", "Right": "FullControl", "Confirm": False})
    assert result.terminating.message == (
        "Cannot bind parameter 'AppPrincipal'. Cannot convert the \"Microsoft.SharePoint.SPAppPrincipal\" value of "
        "type \"Deserialized.Microsoft.SharePoint.SPAppPrincipal\" to type \"Microsoft.SharePoint.SPAppPrincipal\".")
    # A string is no principal either.
    as_text = run(farm.commands, "Set-SPAppPrincipalPermission", {
        "AppPrincipal": principal.properties["NameIdentifier"], "Site": "https://sharepoint.contoso.lab",
        "Scope": "Site", "Right": "Read"})
    assert "Cannot bind parameter 'AppPrincipal'" in as_text.terminating.message


def test_set_permission_through_the_template_and_read_it_back(farm):
    name_id = f"{ADDIN.client_id}@{farm.realm}"
    site = "https://sharepoint.contoso.lab"
    before = run(farm.commands, "sharepoint/get-app-principal-permission", {"Site": site, "NameIdentifier": name_id}).one
    assert before.properties["SiteCollection"] == "FullControl" and before.properties["Web"] == "None"
    out = run(farm.commands, "sharepoint/set-app-principal-permission",
              {"Site": site, "NameIdentifier": name_id, "Scope": "site", "Right": "read"}).one
    assert (out.properties["Scope"], out.properties["Right"]) == ("Site", "Read")
    after = run(farm.commands, "sharepoint/get-app-principal-permission", {"Site": site, "NameIdentifier": name_id}).one
    assert after.properties["Web"] == "Read" and after.properties["SiteCollection"] == "FullControl"
    bad = run(farm.commands, "sharepoint/set-app-principal-permission",
              {"Site": site, "NameIdentifier": name_id, "Scope": "Farm", "Right": "Read"})
    assert "does not belong to the set \"Site,SiteCollection,SiteSubscription\"" in bad.terminating.message
    unknown = run(farm.commands, "sharepoint/set-app-principal-permission",
                  {"Site": site, "NameIdentifier": f"00000000-0000-0000-0000-000000000001@{farm.realm}",
                   "Scope": "Site", "Right": "Read"})
    assert "is not registered" in unknown.terminating.message


def test_live_principal_from_the_same_pipeline_binds(farm):
    name_id = f"{ADDIN.client_id}@{farm.realm}"
    live = run(farm.commands, "Get-SPAppPrincipal", {"Site": "https://sharepoint.contoso.lab", "NameIdentifier": name_id}).one
    result = run(farm.commands, "Set-SPAppPrincipalPermission",
                 {"Site": "https://sharepoint.contoso.lab", "Scope": "SiteSubscription", "Right": "Manage",
                  "EnableAppOnlyPolicy": True}, input=[live])
    assert result.terminating is None
    perm = run(farm.commands, "sharepoint/get-app-principal-permission",
               {"Site": "https://sharepoint.contoso.lab", "NameIdentifier": name_id}).one
    assert perm.properties["SiteSubscription"] == "Manage" and perm.properties["AppOnlyPolicy"] is True


def test_app_principals_are_listed_with_their_name_under_the_current_realm(farm):
    rows = run(farm.commands, "sharepoint/get-all-site-app-principals").output
    assert f"{ADDIN.client_id}@{farm.farm_id}" in [r.properties["NameIdentifier"] for r in rows]


# ------------------------------------------------------------------------------ trusted issuers

def test_initial_addin_issuer(farm):
    issuers = run(farm.commands, "Get-SPTrustedSecurityTokenIssuer").output
    assert [i.properties["Name"] for i in issuers] == [ADDIN.name, BROKER_ADDIN.name]
    props = issuers[0].properties
    assert issuers[0].type_names[0] == "Microsoft.SharePoint.Administration.Claims.SPTrustedSecurityTokenService"
    assert props["RegisteredIssuerName"] == f"{ADDIN.issuer_id}@{farm.farm_id}"
    assert props["IsSelfIssuer"] is True and props["MetadataEndPoint"] is None
    assert props["IsAutomaticallyUpdated"] is False
    cert = farm.addin_key_pair(ADDIN.name).certificate
    assert props["SigningCertificate"].properties["Thumbprint"] == cert.fingerprint(hashes.SHA1()).hex().upper()


def test_issuer_not_found_is_a_non_terminating_error(farm):
    result = run(farm.commands, "Get-SPTrustedSecurityTokenIssuer", {"Identity": "nope"})
    assert result.output == [] and result.terminating is None
    assert result.errors[0].message == "A valid object could not be read from the provided pipebind parameter."
    roots = run(farm.commands, "Get-SPTrustedRootAuthority", {"Identity": "nope"})
    assert roots.output == [] and roots.errors


def test_certificate_issuer_template_duplicates_and_remove_needs_confirm(farm):
    cert = new_signing_certificate("Partner")
    params = {"Name": "Partner", "CertificateRawData": cert.cert_der,
              "RegisteredIssuerName": f"AAAAAAAA-0000-0000-0000-000000000001@{farm.realm}"}
    issuer = run(farm.commands, "sharepoint/new-trusted-issuer-from-certificate", params).one
    assert issuer.properties["RegisteredIssuerName"] == f"aaaaaaaa-0000-0000-0000-000000000001@{farm.realm}"
    assert issuer.properties["IsSelfIssuer"] is True
    dup = run(farm.commands, "sharepoint/new-trusted-issuer-from-certificate", params)
    assert dup.terminating.message == (
        'An object of the type Microsoft.SharePoint.Administration.Claims.SPTrustedSecurityTokenService named '
        '"Partner" already exists under the parent Microsoft.SharePoint.Administration.Claims.'
        'SPSecurityTokenServiceManager named "SecurityTokenServiceManager".  Rename your object or delete the '
        'existing object.')
    prompt = run(farm.commands, "Remove-SPTrustedSecurityTokenIssuer", {"Identity": "Partner"})
    assert "does not support user interaction" in prompt.terminating.message
    assert prompt.terminating.error_id == "HostFunctionNotImplemented"
    assert len(run(farm.commands, "Get-SPTrustedSecurityTokenIssuer").output) == 3
    assert run(farm.commands, "Remove-SPTrustedSecurityTokenIssuer",
               {"Identity": "partner", "Confirm": False}).terminating is None
    assert "Partner" not in [i.properties["Name"] for i in run(farm.commands, "Get-SPTrustedSecurityTokenIssuer").output]


def test_issuer_certificate_must_be_live_and_sets_cannot_mix(farm):
    cert_obj = run(farm.commands, "Get-SPSecurityTokenServiceConfig").one.properties["LocalLoginProvider"] \
        .properties["SigningCertificate"]
    refused = run(farm.commands, "New-SPTrustedSecurityTokenIssuer",
                  {"Name": "x", "Certificate": deserialize(cert_obj), "RegisteredIssuerName": "a@b"})
    assert refused.terminating.message.startswith("Cannot bind parameter 'Certificate'. Cannot convert the \"[Subject]")
    assert "Deserialized.System.Security.Cryptography.X509Certificates.X509Certificate2" in refused.terminating.message
    both = run(farm.commands, "New-SPTrustedSecurityTokenIssuer",
               {"Name": "x", "Certificate": b"\x30", "MetadataEndPoint": "https://x/_layouts/15/metadata/json/1"})
    assert both.terminating.message == "Parameter set cannot be resolved using the specified named parameters."


def test_set_issuer_with_only_a_registered_name_cannot_resolve_a_parameter_set(farm):
    before = farm.state_path.read_bytes()
    refused = run(farm.commands, "Set-SPTrustedSecurityTokenIssuer",
                  {"Identity": ADDIN.name, "RegisteredIssuerName": f"{ADDIN.issuer_id}@{TENANT}", "Confirm": False})
    assert refused.terminating.message == "Parameter set cannot be resolved using the specified named parameters."
    assert refused.terminating.error_id == "AmbiguousParameterSet"
    assert refused.terminating.exception_type == "System.Management.Automation.ParameterBindingException"
    # -Description alone belongs to both sets as well; -Name is no parameter of Set- at all.
    assert run(farm.commands, "Set-SPTrustedSecurityTokenIssuer",
               {"Identity": ADDIN.name, "Description": "x"}).terminating.error_id == "AmbiguousParameterSet"
    with pytest.raises(BindingFailed, match="Name"):
        run(farm.commands, "Set-SPTrustedSecurityTokenIssuer", {"Identity": ADDIN.name, "Name": "x"})
    assert farm.state_path.read_bytes() == before


def test_set_issuer_with_a_live_certificate_and_an_omitted_trust_broker_switch(farm):
    # Inside one server-side block the issuer's certificate is live, so the certificate set binds.
    live = run(farm.commands, "Get-SPTrustedSecurityTokenIssuer", {"Identity": BROKER_ADDIN.name}).one
    cert = certificate_obj(farm.addin_key_pair(BROKER_ADDIN.name).certificate, nested=False)  # a live X509Certificate2
    assert run(farm.commands, "Set-SPTrustedSecurityTokenIssuer",
               {"Identity": live, "Certificate": cert, "RegisteredIssuerName": f"{BROKER_ADDIN.issuer_id}@{TENANT}"}
               ).terminating is None
    issuer = run(farm.commands, "sharepoint/get-trusted-issuers", {"Name": BROKER_ADDIN.name}).one
    assert issuer.properties["RegisteredIssuerName"] == f"{BROKER_ADDIN.issuer_id}@{TENANT}"
    # [U] an omitted -IsTrustBroker is $false: the trust broker became a self-issuer.
    assert issuer.properties["IsSelfIssuer"] is True


# ------------------------------------------------------------------------------ moving issuers to a new realm (KB 4010011)

def _issuer(f: SharePointFarm, name: str):
    return run(f.commands, "sharepoint/get-trusted-issuers", {"Name": name}).one.properties


@pytest.mark.parametrize("addin", [ADDIN, BROKER_ADDIN], ids=["self-issuer", "trust-broker"])
def test_move_issuer_to_realm_keeps_certificate_and_trust_broker_setting_and_is_idempotent(farm, addin):
    old_realm = farm.realm
    before = _issuer(farm, addin.name)
    assert before["RegisteredIssuerName"] == f"{addin.issuer_id}@{old_realm}"
    run(farm.commands, "Set-SPAuthenticationRealm", {"Realm": TENANT})

    moved = run(farm.commands, "sharepoint/move-issuer-to-realm", {"Name": addin.name, "Realm": TENANT.upper()}).one
    assert moved.type_names[0] == "System.Management.Automation.PSCustomObject"
    assert dict(moved.properties) == {"Name": addin.name, "RegisteredIssuerName": f"{addin.issuer_id}@{TENANT}",
                                      "IsSelfIssuer": not addin.trust_broker, "Changed": True}
    after = _issuer(farm, addin.name)
    assert after["RegisteredIssuerName"] == f"{addin.issuer_id}@{TENANT}"
    assert after["IsSelfIssuer"] is (not addin.trust_broker)
    assert (after["Thumbprint"], after["Id"]) == (before["Thumbprint"], before["Id"])
    assert x509.load_der_x509_certificate(after["RawData"]) == farm.addin_key_pair(addin.name).certificate
    # The other add-in's issuer was not touched.
    other = BROKER_ADDIN if addin is ADDIN else ADDIN
    assert _issuer(farm, other.name)["RegisteredIssuerName"] == f"{other.issuer_id}@{old_realm}"

    state = farm.state_path.read_bytes()
    again = run(farm.commands, "sharepoint/move-issuer-to-realm", {"Name": addin.name, "Realm": TENANT}).one
    assert again.properties["Changed"] is False
    assert again.properties["RegisteredIssuerName"] == f"{addin.issuer_id}@{TENANT}"
    assert farm.state_path.read_bytes() == state


def test_move_issuer_to_realm_refuses_a_metadata_based_issuer(two_farms):
    (a, a_server), (b, _) = two_farms["sp-a"], two_farms["sp-b"]
    url = f"{a_server.url}/_layouts/15/metadata/json/1/"
    run(b.commands, "New-SPTrustedSecurityTokenIssuer", {"Name": "sp-a", "MetadataEndPoint": url})
    before = b.state_path.read_bytes()
    refused = run(b.commands, "sharepoint/move-issuer-to-realm", {"Name": "sp-a", "Realm": TENANT}).terminating
    assert refused.message.startswith(f"The trusted security token issuer 'sp-a' is metadata-based ({url})")
    assert "partner's metadata" in refused.message
    assert refused.exception_type == "System.Management.Automation.RuntimeException"
    assert b.state_path.read_bytes() == before
    assert _issuer(b, "sp-a")["RegisteredIssuerName"] == a.name_identifier


def test_move_issuer_to_realm_input_errors(farm):
    missing = run(farm.commands, "sharepoint/move-issuer-to-realm", {"Name": "nope", "Realm": TENANT}).terminating
    assert missing.message == "A valid object could not be read from the provided pipebind parameter."
    empty = run(farm.commands, "sharepoint/move-issuer-to-realm", {"Name": ADDIN.name, "Realm": ""}).terminating
    assert empty.message == "Cannot bind argument to parameter 'Realm' because it is an empty string."
    with pytest.raises(BindingFailed, match="Realm"):
        run(farm.commands, "sharepoint/move-issuer-to-realm", {"Name": ADDIN.name})


# ------------------------------------------------------------------------------ app principals across the farm

def test_all_site_app_principals_cover_every_site_collection(farm):
    sites = [s.properties["Url"] for s in run(farm.commands, "Get-SPSite", {"Limit": "All"}).output]
    assert FINANCE in sites and "https://portal.contoso.lab" in sites
    assert [s.properties["Url"] for s in run(farm.commands, "Get-SPSite", {"Limit": "1"}).output] == [sites[0]]
    # A principal registered on a third site collection is found as well.
    portal_nid = f"0f0e0d0c-0b0a-4909-8807-060504030201@{farm.realm}"
    run(farm.commands, "sharepoint/register-app-principal",
        {"Site": "https://portal.contoso.lab", "NameIdentifier": portal_nid, "DisplayName": "Portal add-in"})

    rows = [dict(r.properties) for r in run(farm.commands, "sharepoint/get-all-site-app-principals").output]
    found = {"Web": "", "External": True, "Error": None}  # on the root web, provider-hosted, read
    assert rows == [
        {"Site": "https://sharepoint.contoso.lab", "DisplayName": ADDIN.display_name,
         "NameIdentifier": f"{ADDIN.client_id}@{farm.realm}", **found},
        {"Site": FINANCE, "DisplayName": BROKER_ADDIN.display_name,
         "NameIdentifier": f"{BROKER_ADDIN.client_id}@{farm.realm}", **found},
        {"Site": "https://portal.contoso.lab", "DisplayName": "Portal add-in", "NameIdentifier": portal_nid,
         **found},
    ]


def test_templates_mark_the_server_apis_they_cannot_confirm():
    from runbooklib.lab.sharepoint import texts as texts

    used: set[str] = set()
    for path in sorted(TEMPLATES.glob("*.ps1")):
        lines = path.read_text().splitlines()
        for api in texts.UNCONFIRMED_SERVER_APIS:
            calls = [i for i, line in enumerate(lines) if f"{api}(" in line and not line.lstrip().startswith("#")]
            for i in calls:
                used.add(api)
                # An "UNCONFIRMED (<api>)" comment on the line before the call (or before its block).
                window = "\n".join(lines[max(0, i - 3):i])
                assert f"UNCONFIRMED ({api})" in window, f"{path.name}:{i + 1} calls {api} unmarked"
            if calls:
                assert "UNCONFIRMED" in "\n".join(lines[:15]), f"{path.name}: no UNCONFIRMED note in its header"
    # Every API the texts call unconfirmed is really used by a template (no stale entries).
    assert used == set(texts.UNCONFIRMED_SERVER_APIS)


# ------------------------------------------------------------------------------ the seeded add-ins

def test_trust_broker_addin_is_seeded_on_a_second_site_collection(farm):
    issuer = run(farm.commands, "Get-SPTrustedSecurityTokenIssuer", {"Identity": BROKER_ADDIN.name}).one.properties
    assert issuer["RegisteredIssuerName"] == f"{BROKER_ADDIN.issuer_id}@{farm.farm_id}"
    assert issuer["IsSelfIssuer"] is False and issuer["MetadataEndPoint"] is None
    cert = farm.addin_key_pair(BROKER_ADDIN.name).certificate
    assert issuer["SigningCertificate"].properties["Thumbprint"] == cert.fingerprint(hashes.SHA1()).hex().upper()
    assert cert != farm.addin_key_pair(ADDIN.name).certificate
    assert BROKER_ADDIN.name in [r.properties["Name"] for r in run(farm.commands, "Get-SPTrustedRootAuthority").output]

    site = run(farm.commands, "Get-SPSite", {"Identity": FINANCE + "/Shared Documents/x.docx"}).one
    assert site.properties["Url"] == FINANCE and site.properties["ServerRelativeUrl"] == "/sites/finance"
    assert site.properties["RootWeb"].properties["Title"] == "Finance"
    nid = f"{BROKER_ADDIN.client_id}@{farm.farm_id}"
    perm = run(farm.commands, "sharepoint/get-app-principal-permission", {"Site": FINANCE, "NameIdentifier": nid}).one
    assert perm.properties["SiteCollection"] == "FullControl"
    root = run(farm.commands, "sharepoint/get-app-principal-permission",
               {"Site": "https://sharepoint.contoso.lab", "NameIdentifier": nid}).one
    assert root.properties["SiteCollection"] == "None"


def test_reset_brings_back_both_addins(farm):
    run(farm.commands, "Remove-SPTrustedSecurityTokenIssuer", {"Identity": BROKER_ADDIN.name, "Confirm": False})
    farm.reset()
    names = [i.properties["Name"] for i in run(farm.commands, "Get-SPTrustedSecurityTokenIssuer").output]
    assert names == [ADDIN.name, BROKER_ADDIN.name]


def test_a_state_file_from_an_older_preset_gains_the_new_seed(tmp_path):
    preset = FarmDefinition.preset("sp-a")
    old_root = WebAppDefinition(preset.web_apps[0].url, "ntlm", preset.web_apps[0].name)
    older = FarmDefinition(preset.name, preset.version, preset.public_host,
                           (old_root, *preset.web_apps[1:]), (ADDIN,))
    path = tmp_path / "sp-a.json"
    old = SharePointFarm.open(path, older)
    run(old.commands, "Set-SPAuthenticationRealm", {"Realm": TENANT})
    expenses = old.addin_key_pair(ADDIN.name).certificate

    upgraded = SharePointFarm.open(path, name="sp-a")
    assert upgraded.farm_id == old.farm_id and upgraded.realm == TENANT  # ids and changes kept
    assert upgraded.addin_key_pair(ADDIN.name).certificate == expenses
    broker = upgraded.addin_key_pair(BROKER_ADDIN.name).certificate
    finance_id = run(upgraded.commands, "Get-SPSite", {"Identity": FINANCE}).one.properties["Id"]
    assert _issuer(upgraded, BROKER_ADDIN.name)["RegisteredIssuerName"] == f"{BROKER_ADDIN.issuer_id}@{TENANT}"
    upgraded.reset()
    assert upgraded.realm == upgraded.farm_id
    issuer = _issuer(upgraded, BROKER_ADDIN.name)
    assert issuer["RegisteredIssuerName"] == f"{BROKER_ADDIN.issuer_id}@{upgraded.farm_id}"
    assert x509.load_der_x509_certificate(issuer["RawData"]) == broker  # one certificate in both states
    assert run(upgraded.commands, "Get-SPSite", {"Identity": FINANCE}).one.properties["Id"] == finance_id
    # Opened again, nothing more is added.
    again = SharePointFarm.open(path, name="sp-a")
    assert len(run(again.commands, "Get-SPTrustedSecurityTokenIssuer").output) == 2


# ------------------------------------------------------------------------------ proxies

def test_acs_proxy_and_default_group_membership(farm):
    url = "https://accounts.accesscontrol.windows.net/6c3f0b8a-4e7d-4b25-9a61-0d2e7c9b1f44/metadata/json/1"
    proxy = run(farm.commands, "New-SPAzureAccessControlServiceApplicationProxy",
                {"Name": "ACS", "MetadataServiceEndpointUri": url, "DefaultProxyGroup": True}).one
    assert proxy.type_names[0] == "Microsoft.SharePoint.Administration.SPAzureAccessControlServiceApplicationProxy"
    assert proxy.properties["MetadataEndpointUri"] == url
    run(farm.commands, "New-SPAzureAccessControlServiceApplicationProxy",
        {"Name": "ACS outside", "MetadataServiceEndpointUri": url})
    rows = {r.properties["Name"]: r.properties for r in
            run(farm.commands, "sharepoint/get-proxy-group-membership").output}
    assert rows["ACS"]["InDefaultGroup"] is True and rows["ACS outside"]["InDefaultGroup"] is False
    assert rows["ACS"]["Type"].endswith("SPAzureAccessControlServiceApplicationProxy")
    group = run(farm.commands, "Get-SPServiceApplicationProxyGroup", {"Default": True}).one
    assert "ACS" in [p.properties["Name"] for p in group.properties["Proxies"]]
    dup = run(farm.commands, "New-SPAzureAccessControlServiceApplicationProxy",
              {"Name": "acs", "MetadataServiceEndpointUri": url})
    assert "already exists" in dup.terminating.message
    run(farm.commands, "Add-SPServiceApplicationProxyGroupMember", {"Identity": "", "Member": "ACS outside"})
    assert all(r.properties["InDefaultGroup"] for r in run(farm.commands, "sharepoint/get-proxy-group-membership").output)
    assert run(farm.commands, "Remove-SPServiceApplicationProxy", {"Identity": "ACS outside"}).terminating
    run(farm.commands, "Remove-SPServiceApplicationProxy", {"Identity": "ACS outside", "Confirm": False})
    assert "ACS outside" not in [p.properties["Name"] for p in run(farm.commands, "Get-SPServiceApplicationProxy").output]


# ------------------------------------------------------------------------------ root authorities

def test_root_authorities_include_local_which_cannot_be_removed(farm):
    names = [r.properties["Name"] for r in run(farm.commands, "Get-SPTrustedRootAuthority").output]
    assert names[0] == "local" and ADDIN.name in names
    local = run(farm.commands, "Get-SPTrustedRootAuthority", {"Identity": "local"}).one
    assert local.properties["Certificate"].properties["Subject"].startswith("CN=SharePoint Root Authority")
    refused = run(farm.commands, "Remove-SPTrustedRootAuthority", {"Identity": "local", "Confirm": False})
    assert refused.terminating is not None
    cert = new_signing_certificate("Office Online Server")
    run(farm.commands, "sharepoint/new-trusted-root-authority-from-certificate",
        {"Name": "OOS", "CertificateRawData": cert.cert_der})
    dup = run(farm.commands, "sharepoint/new-trusted-root-authority-from-certificate",
              {"Name": "oos", "CertificateRawData": cert.cert_der})
    assert "already exists" in dup.terminating.message
    assert run(farm.commands, "Remove-SPTrustedRootAuthority", {"Identity": "OOS"}).terminating  # prompts
    assert run(farm.commands, "Remove-SPTrustedRootAuthority", {"Identity": "OOS", "Confirm": False}).terminating is None


# ------------------------------------------------------------------------------ farm to farm over HTTPS

def test_issuer_and_root_from_the_partner_farms_metadata(two_farms):
    (a, a_server), (b, _) = two_farms["sp-a"], two_farms["sp-b"]
    url = f"{a_server.url}/_layouts/15/metadata/json/1/"
    issuer = run(b.commands, "New-SPTrustedSecurityTokenIssuer",
                 {"Name": "sp-a", "MetadataEndPoint": url, "IsTrustBroker": False}).one
    assert issuer.properties["RegisteredIssuerName"] == a.name_identifier
    assert issuer.properties["IsSelfIssuer"] is True and issuer.properties["IsAutomaticallyUpdated"] is True
    assert issuer.properties["MetadataEndPoint"] == url
    assert issuer.properties["SigningCertificate"].properties["Thumbprint"] == sts_thumbprint(a)
    # A self-issuer's name resolves as an app principal without registration, so it can be granted.
    granted = run(b.commands, "sharepoint/set-app-principal-permission",
                  {"Site": "https://collab.contoso.lab", "NameIdentifier": a.name_identifier,
                   "Scope": "SiteCollection", "Right": "FullControl"})
    assert granted.terminating is None
    root = run(b.commands, "New-SPTrustedRootAuthority",
               {"Name": "sp-a root", "MetadataEndPoint": url + "rootcertificate"}).one
    assert root.properties["Certificate"].properties["Thumbprint"] == \
        a.root_key_pair().certificate.fingerprint(hashes.SHA1()).hex().upper()


def test_metadata_download_failures_are_the_products_and_change_nothing(two_farms, tmp_path):
    (_, a_server), (b, _) = two_farms["sp-a"], two_farms["sp-b"]
    before = b.state_path.read_bytes()

    def new(url):
        return run(b.commands, "New-SPTrustedSecurityTokenIssuer", {"Name": "x", "MetadataEndPoint": url}).terminating

    assert new(f"{a_server.url}/_layouts/15/metadata/json/2").message == \
        "The remote server returned an error: (404) Not Found."
    assert new("https://127.0.0.1:9/_layouts/15/metadata/json/1").message == "Unable to connect to the remote server"
    assert "AllowMetadataOverHttp" in new("http://127.0.0.1:9/_layouts/15/metadata/json/1").message
    a_server.faults.add("drop", 1)
    assert new(f"{a_server.url}/_layouts/15/metadata/json/1").message.startswith("The underlying connection was closed")
    # A farm that does not trust the lab CA refuses the TLS certificate.
    shutil.copy(b.state_path, tmp_path / "untrusting.json")
    untrusting = SharePointFarm.open(tmp_path / "untrusting.json", ca_bundle=None, metadata_timeout=3)
    refused = run(untrusting.commands, "New-SPTrustedSecurityTokenIssuer",
                  {"Name": "x", "MetadataEndPoint": f"{a_server.url}/_layouts/15/metadata/json/1"})
    assert refused.terminating.message == ("The underlying connection was closed: Could not establish trust "
                                           "relationship for the SSL/TLS secure channel.")
    assert b.state_path.read_bytes() == before


def test_metadata_endpoints_parse_with_plain_json_and_cryptography(two_farms, lab_ca):
    a, server = two_farms["sp-a"]
    context = ssl.create_default_context(cafile=str(lab_ca.bundle_path))
    for path in ("/_layouts/15/metadata/json/1", "/_layouts/15/metadata/json/1/"):
        with urllib.request.urlopen(server.url + path, context=context) as resp:
            doc = json.loads(resp.read())
            assert resp.headers["Content-Type"].startswith("application/json")
        assert doc["issuer"] == f"{SP_ID}@{a.realm}"
        assert doc["name"] == doc["serviceName"] == SP_ID
        assert list(doc) == ["issuer", "keys", "name", "serviceName"]
        key = doc["keys"][0]
        assert key["usage"] == "Signing" and key["keyValue"]["type"] == "x509certificate"
        cert = x509.load_der_x509_certificate(base64.b64decode(key["keyValue"]["value"]))
        assert cert == a.sts_key_pair().certificate
        assert cert.public_key().key_size == 2048
    with urllib.request.urlopen(server.url + "/_layouts/15/metadata/json/1/rootcertificate", context=context) as resp:
        root = json.loads(resp.read())
    assert x509.load_der_x509_certificate(base64.b64decode(root["keys"][0]["keyValue"]["value"])) == \
        a.root_key_pair().certificate


def test_metadata_endpoints_parse_with_runbooklib_metadata(two_farms, lab_ca):
    a, server = two_farms["sp-a"]
    doc = metadata.fetch_metadata(server.url + "/_layouts/15/metadata/json/1", ca_bundle=lab_ca.bundle_path)
    assert doc.realm == a.realm and doc.principal_id == SP_ID
    assert doc.thumbprints == (sts_thumbprint(a),)
    # The metadata follows the realm.
    run(a.commands, "Set-SPAuthenticationRealm", {"Realm": "6c3f0b8a-4e7d-4b25-9a61-0d2e7c9b1f44"})
    doc = metadata.fetch_metadata(server.url + "/_layouts/15/metadata/json/1/", ca_bundle=lab_ca.bundle_path)
    assert doc.realm == "6c3f0b8a-4e7d-4b25-9a61-0d2e7c9b1f44"


def test_realm_discovery_challenge(two_farms, lab_ca):
    a, server = two_farms["sp-a"]
    request = urllib.request.Request(server.url + "/_vti_bin/client.svc", headers={"Authorization": "Bearer "})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, context=ssl.create_default_context(cafile=str(lab_ca.bundle_path)))
    assert caught.value.code == 401
    header = caught.value.headers["WWW-Authenticate"]
    assert re.match(rf'Bearer realm="{a.realm}",client_id="{SP_ID}",trusted_issuers="[^"]+"$', header)
    assert metadata.discover_realm(server.url, lab_ca.bundle_path) == a.realm


def test_sts_key_pair_mints_tokens_the_metadata_certificate_verifies(two_farms, lab_ca):
    a, server = two_farms["sp-a"]
    pair = a.sts_key_pair()
    token = jwt.encode({"iss": a.name_identifier, "aud": "x"}, pair.key_pem, algorithm="RS256")
    doc = metadata.fetch_metadata(server.url + "/_layouts/15/metadata/json/1", ca_bundle=lab_ca.bundle_path)
    claims = jwt.decode(token, doc.signing_certificates[0].public_key(), algorithms=["RS256"], audience="x")
    assert claims["iss"] == a.name_identifier


# ------------------------------------------------------------------------------ persistence

def test_state_survives_reopen_and_reset_restores_the_initial_farm(farm):
    initial = farm.snapshot()
    run(farm.commands, "Set-SPAuthenticationRealm", {"Realm": "6c3f0b8a-4e7d-4b25-9a61-0d2e7c9b1f44"})
    run(farm.commands, "Remove-SPTrustedSecurityTokenIssuer", {"Identity": ADDIN.name, "Confirm": False})
    reopened = SharePointFarm.open(farm.state_path)
    assert reopened.realm == "6c3f0b8a-4e7d-4b25-9a61-0d2e7c9b1f44"
    assert [i.properties["Name"] for i in run(reopened.commands, "Get-SPTrustedSecurityTokenIssuer").output] == \
        [BROKER_ADDIN.name]
    reopened.reset()
    assert reopened.snapshot() == initial
    assert SharePointFarm.open(farm.state_path).realm == farm.farm_id
    assert stat.S_IMODE(farm.state_path.stat().st_mode) == 0o600
    assert [p.name for p in farm.state_path.parent.iterdir() if p.name.startswith(".")] == []


def test_failed_change_leaves_no_partial_state(farm):
    before = farm.state_path.read_bytes()
    result = run(farm.commands, "Register-SPAppPrincipal",
                 {"Site": "https://nowhere.contoso.lab", "NameIdentifier": "a@b", "DisplayName": "x"})
    assert result.terminating is not None
    assert farm.state_path.read_bytes() == before


def test_each_farm_has_its_own_sts_certificate(pristine):
    a = SharePointFarm.open(pristine["sp-a"])
    b = SharePointFarm.open(pristine["sp-b"])
    assert sts_thumbprint(a) != sts_thumbprint(b)
    assert a.farm_id != b.farm_id


def test_replaced_sts_certificate_is_served(two_farms, lab_ca):
    a, server = two_farms["sp-a"]
    old = sts_thumbprint(a)
    a.replace_sts_certificate()
    doc = metadata.fetch_metadata(server.url + "/_layouts/15/metadata/json/1", ca_bundle=lab_ca.bundle_path)
    assert doc.thumbprints == (sts_thumbprint(a),) != (old,)


# ------------------------------------------------------------------------------ templates on disk

def test_every_template_file_matches_its_lab_handler(farm):
    files = sorted(TEMPLATES.glob("*.ps1"))
    assert {f"sharepoint/{f.stem}" for f in files} == set(TEMPLATE_PARAMETERS)
    for path in files:
        lines = path.read_text().splitlines()
        assert lines[0] == f"# runbook-template: sharepoint/{path.stem} v1"
        assert lines[1].startswith("param(")
        block = path.read_text().split("param(", 1)[1]
        block = block[: block.index("\n)") if not lines[1].startswith("param()") else 0]
        declared = set(re.findall(r"\$(\w+)\s*(?:=[^,\n]*)?\s*,?\s*$", block, flags=re.M))
        assert declared == set(TEMPLATE_PARAMETERS[f"sharepoint/{path.stem}"]), path.name
        assert farm.commands.find_template(f"sharepoint/{path.stem}", "1") is not None


# ------------------------------------------------------------------------------ end to end: runbooklib.remote → WinRM → farm

USER, PASSWORD = "LAB\\spadmin", "sp-a lab password 1!"


def _serve(f: SharePointFarm, lab_ca: LabCA, tls_dir: Path) -> LabServer:
    server = LabServer(f.name, lab_ca.issue_server_certificate(["127.0.0.1"]), cert_dir=tls_dir)
    WinRMEndpoint(server_name=f.name, commands=f.commands, accounts={USER: PASSWORD},
                  auth=FARM_LISTENER_AUTH).mount(server)
    f.mount_web(server)
    return server.start()


@pytest.fixture
def remote_farm(pristine, tmp_path, lab_ca):
    shutil.copy(pristine["sp-a"], tmp_path / "sp-a.json")
    f = SharePointFarm.open(tmp_path / "sp-a.json", ca_bundle=lab_ca.bundle_path, metadata_timeout=3)
    server = _serve(f, lab_ca, tmp_path / "tls")
    target = Target("sp-a", f"{server.url}/wsman", "credssp", USER, lab_ca.bundle_path)
    session = open_sharepoint_session(target, password=PASSWORD)
    yield f, server, session
    session.close()
    server.stop()


def test_remote_cmdlets_arrive_deserialized(remote_farm):
    f, _, session = remote_farm
    [farm_obj] = session.invoke("Get-SPFarm").output
    assert farm_obj.type_names[0] == "Deserialized.Microsoft.SharePoint.Administration.SPFarm"
    assert farm_obj["BuildVersion"] == "16.0.10337.12109"
    issuer, _broker = session.invoke("Get-SPTrustedSecurityTokenIssuer").output
    assert issuer.is_type("Microsoft.SharePoint.Administration.Claims.SPTrustedSecurityTokenService")
    assert issuer["RegisteredIssuerName"] == f"{ADDIN.issuer_id}@{f.realm}"
    # depth 1: the nested certificate is its ToString() text, thumbprint included, no bytes
    assert isinstance(issuer["SigningCertificate"], str) and "[Thumbprint]" in issuer["SigningCertificate"]
    [provider] = session.invoke("Get-SPAuthenticationProvider",
                                {"WebApplication": "https://portal.contoso.lab/", "Zone": "Default"}).output
    assert provider["DisableKerberos"] is False


def test_remote_templates_run_from_the_real_files(remote_farm):
    f, _, session = remote_farm
    [cert] = session.invoke_template("sharepoint/get-sts-certificate").output
    assert x509.load_der_x509_certificate(cert["RawData"]) == f.sts_key_pair().certificate
    assert session.invoke_template("sharepoint/set-oauth-over-http", {"Enabled": True}).output == [True]
    params = {"Site": "https://sharepoint.contoso.lab", "DisplayName": "SharePoint Online",
              "NameIdentifier": f"0d1f1f7a-2b5c-4b0e-8d5e-0b7a9d9e2f10@{f.realm}"}
    [first] = session.invoke_template("sharepoint/register-app-principal", params).output
    [second] = session.invoke_template("sharepoint/register-app-principal", params).output
    assert first.is_type("Microsoft.SharePoint.SPAppPrincipal")
    assert (first["Changed"], second["Changed"]) == (True, False)
    rows = session.invoke_template("sharepoint/get-proxy-group-membership").output
    assert all(r["InDefaultGroup"] for r in rows) and len(rows) == 3


def test_remote_live_object_refusal_and_error_records(remote_farm):
    f, _, session = remote_farm
    [principal] = session.invoke("Get-SPAppPrincipal", {"Site": "https://sharepoint.contoso.lab",
                                                         "NameIdentifier": f"{ADDIN.client_id}@{f.realm}"}).output
    with pytest.raises(RemoteError) as caught:
        session.invoke("Set-SPAppPrincipalPermission", {"AppPrincipal": principal, "Site": "https://sharepoint.contoso.lab",
                                                        "Scope": "SiteCollection", "Right": "FullControl"})
    assert "Deserialized.Microsoft.SharePoint.SPAppPrincipal" in caught.value.reason
    assert caught.value.error_id.startswith("CannotConvertArgumentNoMessage")
    missing = session.invoke("Get-SPTrustedSecurityTokenIssuer", {"Identity": "nope"})
    assert missing.output == [] and "pipebind" in missing.errors[0].message
    with pytest.raises(RemoteError, match="does not support user interaction"):
        session.invoke("Remove-SPTrustedSecurityTokenIssuer", {"Identity": ADDIN.name})
    session.invoke("Remove-SPTrustedSecurityTokenIssuer", {"Identity": ADDIN.name, "Confirm": False})
    assert [i["Name"] for i in session.invoke("Get-SPTrustedSecurityTokenIssuer").output] == [BROKER_ADDIN.name]


def test_remote_realm_move_through_the_template_files(remote_farm):
    f, _, session = remote_farm
    old_realm = f.realm
    rows = session.invoke_template("sharepoint/get-all-site-app-principals").output
    assert {(r["Site"], r["NameIdentifier"]) for r in rows} == {
        ("https://sharepoint.contoso.lab", f"{ADDIN.client_id}@{old_realm}"),
        (FINANCE, f"{BROKER_ADDIN.client_id}@{old_realm}")}
    session.invoke("Set-SPAuthenticationRealm", {"Realm": TENANT})
    with pytest.raises(RemoteError, match="Parameter set cannot be resolved"):
        session.invoke("Set-SPTrustedSecurityTokenIssuer",
                       {"Identity": BROKER_ADDIN.name, "RegisteredIssuerName": f"{BROKER_ADDIN.issuer_id}@{TENANT}"})
    [moved] = session.invoke_template("sharepoint/move-issuer-to-realm",
                                      {"Name": BROKER_ADDIN.name, "Realm": TENANT}).output
    assert (moved["RegisteredIssuerName"], moved["IsSelfIssuer"], moved["Changed"]) == \
        (f"{BROKER_ADDIN.issuer_id}@{TENANT}", False, True)
    [again] = session.invoke_template("sharepoint/move-issuer-to-realm", {"Name": BROKER_ADDIN.name, "Realm": TENANT}).output
    assert again["Changed"] is False


def test_remote_issuer_from_metadata_over_verified_https(remote_farm):
    f, server, session = remote_farm
    [issuer] = session.invoke("New-SPTrustedSecurityTokenIssuer", {
        "Name": "self", "MetadataEndPoint": f"{server.url}/_layouts/15/metadata/json/1/", "IsTrustBroker": False}).output
    assert issuer["RegisteredIssuerName"] == f.name_identifier
    with pytest.raises(RemoteError, match=r"\(404\) Not Found"):
        session.invoke("New-SPTrustedSecurityTokenIssuer", {"Name": "x", "MetadataEndPoint": f"{server.url}/nope"})


def test_remote_state_persists_across_restart_and_resets(pristine, tmp_path, lab_ca):
    shutil.copy(pristine["sp-a"], tmp_path / "sp-a.json")
    f = SharePointFarm.open(tmp_path / "sp-a.json")
    server = _serve(f, lab_ca, tmp_path / "tls")
    target = Target("sp-a", f"{server.url}/wsman", "credssp", USER, lab_ca.bundle_path)
    with open_sharepoint_session(target, password=PASSWORD) as session:
        session.invoke("Set-SPAuthenticationRealm", {"Realm": "6c3f0b8a-4e7d-4b25-9a61-0d2e7c9b1f44"})
    server.stop()

    again = SharePointFarm.open(tmp_path / "sp-a.json")
    server = _serve(again, lab_ca, tmp_path / "tls")
    target = Target("sp-a", f"{server.url}/wsman", "credssp", USER, lab_ca.bundle_path)
    try:
        with open_sharepoint_session(target, password=PASSWORD) as session:
            assert session.invoke("Get-SPAuthenticationRealm").output == ["6c3f0b8a-4e7d-4b25-9a61-0d2e7c9b1f44"]
            again.reset()
            assert session.invoke("Get-SPAuthenticationRealm").output == [again.farm_id]
    finally:
        server.stop()


def test_open_by_keywords(tmp_path):
    preset = SharePointFarm.open(tmp_path / "a.json", name="sp-b")
    assert preset.version == "SE" and preset.public_host == "collab.contoso.lab"
    custom = SharePointFarm.open(tmp_path / "c.json", name="sp-c", version="2013", public_host="old.contoso.lab",
                                 web_apps=[WebAppDefinition("https://old.contoso.lab", "classic")])
    assert run(custom.commands, "Get-SPFarm").one.properties["BuildVersion"].startswith("15.")
    assert run(custom.commands, "Get-SPAuthenticationProvider",
               {"WebApplication": "https://old.contoso.lab/", "Zone": "Default"}).output == []  # classic mode
    assert SharePointFarm.open(tmp_path / "c.json").name == "sp-c"
    with pytest.raises(ValueError, match="holds farm 'sp-c'"):
        SharePointFarm.open(tmp_path / "c.json", name="sp-a")
