"""The objects the simulated farm's cmdlets write: its JSON state rendered as the typed objects
(type names, properties, ToString) a real farm sends over PowerShell remoting."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from ..winrm.api import PSObj
from . import texts as T

_SHORT = {
    NameOID.COMMON_NAME: "CN", NameOID.ORGANIZATIONAL_UNIT_NAME: "OU", NameOID.ORGANIZATION_NAME: "O",
    NameOID.COUNTRY_NAME: "C", NameOID.LOCALITY_NAME: "L", NameOID.STATE_OR_PROVINCE_NAME: "S",
}


def dotnet_name(name: x509.Name) -> str:
    """A distinguished name as .NET's ``X509Certificate2.Subject`` shows it: ``CN=…, OU=…, O=…, C=…``."""
    parts = [f"{_SHORT.get(a.oid, a.oid.dotted_string)}={a.value}" for a in name]
    return ", ".join(reversed(parts))


def thumbprint(cert: x509.Certificate) -> str:
    """SHA-1 of the DER certificate, upper-case hex, as Windows shows it."""
    return cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - the thumbprint is SHA-1 by definition


def cert_der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def load_pem(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def _cert_to_string(cert: x509.Certificate) -> str:
    # X509Certificate2.ToString(): labelled sections separated by blank lines.
    def when(d: dt.datetime) -> str:
        return d.strftime("%m/%d/%Y %I:%M:%S %p")
    return (
        f"[Subject]\r\n  {dotnet_name(cert.subject)}\r\n\r\n[Issuer]\r\n  {dotnet_name(cert.issuer)}\r\n\r\n"
        f"[Serial Number]\r\n  {cert.serial_number:X}\r\n\r\n[Not Before]\r\n  {when(cert.not_valid_before_utc)}\r\n\r\n"
        f"[Not After]\r\n  {when(cert.not_valid_after_utc)}\r\n\r\n[Thumbprint]\r\n  {thumbprint(cert)}\r\n"
    )


def certificate_obj(cert: x509.Certificate, *, nested: bool = True) -> PSObj:
    """An X509Certificate2. Nested in another object, remoting keeps no RawData (see texts)."""
    props: dict[str, Any] = {
        "Thumbprint": thumbprint(cert),
        "Subject": dotnet_name(cert.subject),
        "Issuer": dotnet_name(cert.issuer),
        "NotBefore": cert.not_valid_before_utc,
        "NotAfter": cert.not_valid_after_utc,
        "SerialNumber": f"{cert.serial_number:X}",
        "HasPrivateKey": False,
        "FriendlyName": "",
    }
    if not nested or T.NESTED_CERTIFICATE_HAS_RAWDATA:
        props["RawData"] = cert_der(cert)
    return PSObj(list(T.T_CERTIFICATE), props, _cert_to_string(cert))


def guid(value: str) -> uuid.UUID:
    return uuid.UUID(value)


def farm_obj(state: dict) -> PSObj:
    return PSObj(list(T.T_FARM), {
        "Name": T.CONFIG_DB_NAME,
        "DisplayName": T.CONFIG_DB_NAME,
        "Id": guid(state["farm_id"]),
        "BuildVersion": state["build_version"],
        "Status": "Online",
    }, T.persisted_to_string(T.T_FARM[0], T.CONFIG_DB_NAME))


def iis_settings_obj(zone: dict) -> PSObj:
    auth = zone["authentication"]
    claims = auth != "classic"
    return PSObj(list(T.T_IIS_SETTINGS), {
        "DisableKerberos": auth != "kerberos",
        "UseWindowsIntegratedAuthentication": True,
        "UseBasicAuthentication": False,
        "UseClaimsAuthentication": claims,
        "AllowAnonymous": False,
        "EnableClientIntegration": True,
        "ClientObjectModelRequiresUseRemoteAPIsPermission": True,
        "ClaimsAuthenticationRedirectionUrl": None,
        "Path": f"C:\\inetpub\\wwwroot\\wss\\VirtualDirectories\\{zone['url'].split('//', 1)[1].strip('/')}",
    }, T.persisted_to_string(T.T_IIS_SETTINGS[0], ""))


def web_app_obj(state: dict, wa: dict) -> PSObj:
    zones = wa["zones"]
    alternate = [
        PSObj(list(T.T_ALTERNATE_URL), {"IncomingUrl": z["url"].rstrip("/"), "Zone": name,
                                          "PublicUrl": z["url"].rstrip("/"), "UrlZone": name},
              z["url"].rstrip("/"))
        for name, z in zones.items()
    ]
    return PSObj(list(T.T_WEB_APP), {
        "Name": wa["name"],
        "DisplayName": wa["name"],
        "Id": guid(wa["id"]),
        "Url": wa["url"],
        "UseClaimsAuthentication": zones["Default"]["authentication"] != "classic",
        "Status": "Online",
        "AlternateUrls": alternate,
        "IisSettings": {name: iis_settings_obj(z) for name, z in zones.items()},
    }, T.persisted_to_string(T.T_WEB_APP[0], wa["name"]))


def windows_provider_obj(zone: dict) -> PSObj:
    return PSObj(list(T.T_WINDOWS_PROVIDER), {
        "DisplayName": "Windows Authentication",
        "ClaimProviderName": "AD",
        "DisableKerberos": zone["authentication"] != "kerberos",
        "UseBasicAuthentication": False,
        "UseWindowsIntegratedAuthentication": True,
        "AllowAnonymous": False,
    }, T.persisted_to_string(T.T_WINDOWS_PROVIDER[0], "Windows"))


def server_relative_url(url: str) -> str:
    """``/`` for a root site collection, ``/sites/finance`` for one below it."""
    return urlsplit(url).path.rstrip("/") or "/"


def web_obj(site: dict) -> PSObj:
    return PSObj(list(T.T_WEB), {
        "Url": site["url"],
        "Title": site["title"],
        "ServerRelativeUrl": server_relative_url(site["url"]),
        "Id": guid(site.get("root_web_id") or site["id"]),  # a site collection's root web, or a sub-web
    }, T.web_to_string(site["url"]))


def site_obj(wa: dict, site: dict) -> PSObj:
    return PSObj(list(T.T_SITE), {
        "Url": site["url"],
        "Id": guid(site["id"]),
        "ServerRelativeUrl": server_relative_url(site["url"]),
        "WebApplication": T.persisted_to_string(T.T_WEB_APP[0], wa["name"]),
        "RootWeb": web_obj(site),
    }, T.site_to_string(site["url"]))


def name_identifier(state: dict) -> str:
    return f"{T.SHAREPOINT_PRINCIPAL_ID}@{state['realm']}"


def sts_config_obj(state: dict) -> PSObj:
    sts = state["sts"]
    signing = load_pem(sts["signing"]["cert_pem"])
    provider = PSObj(list(T.T_LOCAL_LOGIN_PROVIDER), {
        "Name": "LocalLoginProvider",
        "SigningCertificate": certificate_obj(signing),
    }, T.persisted_to_string(T.T_LOCAL_LOGIN_PROVIDER[0], "LocalLoginProvider"))
    return PSObj(list(T.T_STS_CONFIG), {
        "Name": T.STS_MANAGER_NAME,
        "DisplayName": T.STS_MANAGER_NAME,
        "Id": guid(state["farm_id"][:-12] + "5e55a0c1f1c0"),  # a fixed id per farm
        "NameIdentifier": name_identifier(state),
        "AllowOAuthOverHttp": sts["allow_oauth_over_http"],
        "AllowMetadataOverHttp": sts["allow_metadata_over_http"],
        "UseSessionCookies": False,
        "LocalLoginProvider": provider,
        "Status": "Online",
    }, T.persisted_to_string(T.T_STS_CONFIG[0], T.STS_MANAGER_NAME))


def app_principal_obj(principal: dict) -> PSObj:
    return PSObj(list(T.T_APP_PRINCIPAL), {
        "DisplayName": principal["display_name"],
        "NameIdentifier": principal["name_identifier"],
        "EncodedNameIdentifier": T.encoded_app_claim(principal["name_identifier"]),
    }, T.T_APP_PRINCIPAL[0])  # SPAppPrincipal does not override ToString()


def issuer_obj(issuer: dict) -> PSObj:
    cert = load_pem(issuer["signing_cert_pem"])
    return PSObj(list(T.T_TRUSTED_STS), {
        "Name": issuer["name"],
        "DisplayName": issuer["name"],
        "Id": guid(issuer["id"]),
        "Description": issuer["description"] or "",
        "RegisteredIssuerName": issuer["registered_issuer_name"],
        "NameId": issuer["registered_issuer_name"],  # [U] NameId = the issuer's registered name
        "IsSelfIssuer": issuer["is_self_issuer"],
        "MetadataEndPoint": issuer["metadata_endpoint"],
        "IsAutomaticallyUpdated": issuer["metadata_endpoint"] is not None,
        "SigningCertificate": certificate_obj(cert),
        "Status": "Online",
    }, T.persisted_to_string(T.T_TRUSTED_STS[0], issuer["name"]))


def root_authority_obj(entry: dict) -> PSObj:
    cert = load_pem(entry["cert_pem"])
    return PSObj(list(T.T_ROOT_AUTHORITY), {
        "Name": entry["name"],
        "DisplayName": entry["name"],
        "Id": guid(entry["id"]),
        "Certificate": certificate_obj(cert),
        "MetadataEndPoint": entry.get("metadata_endpoint"),
        "Status": "Online",
    }, T.persisted_to_string(T.T_ROOT_AUTHORITY[0], entry["name"]))


def proxy_obj(proxy: dict) -> PSObj:
    type_names = [proxy["type"], *T.T_PROXY_BASE] if proxy["type"] != T.T_ACS_PROXY[0] else list(T.T_ACS_PROXY)
    props: dict[str, Any] = {
        "Name": proxy["name"],
        "DisplayName": proxy["name"],
        "TypeName": proxy["type_name"],
        "Id": guid(proxy["id"]),
        "Status": "Online",
    }
    if proxy["type"] == T.T_ACS_PROXY[0]:
        props["MetadataEndpointUri"] = proxy["metadata_endpoint_uri"]
    return PSObj(type_names, props, T.persisted_to_string(proxy["type"], proxy["name"]))


def proxy_group_obj(state: dict) -> PSObj:
    members = [proxy_obj(p) for p in state["proxies"] if p["in_default_group"]]
    return PSObj(list(T.T_PROXY_GROUP), {
        "Name": "",
        "FriendlyName": T.DEFAULT_PROXY_GROUP_FRIENDLY_NAME,
        "Id": guid(state["proxy_group_id"]),
        "DefaultProxies": members,
        "Proxies": members,
        "Status": "Online",
    }, T.persisted_to_string(T.T_PROXY_GROUP[0], ""))


def service_application_obj(application: dict) -> PSObj:
    """A service application as Get-SPServiceApplication lists it."""
    type_names = [application["type"], *T.T_SERVICE_APPLICATION_BASE]
    return PSObj(type_names, {
        "DisplayName": application["name"], "Name": application["name"], "Id": guid(application["id"]),
        "TypeName": application["type_name"], "Status": "Online",
    }, application["name"])


def custom(properties: dict[str, Any]) -> PSObj:
    """A ``[pscustomobject]@{…}`` a template writes."""
    return PSObj(list(T.T_PSCUSTOMOBJECT), properties, None)


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()
