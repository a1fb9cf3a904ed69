"""A SharePoint Server farm as the runbooks see it: typed reads and changes over remote PowerShell.

Every call goes through one :class:`~runbooklib.remote.RemoteSession` (one runspace pool per farm
per run). Reads use cmdlets; work that needs a live server object (an SPWeb, the STS
configuration, a certificate) uses the named script templates in ``runbooklib/templates/sharepoint``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from .errors import RemoteError, TrustError

__all__ = [
    "AppPrincipal",
    "Farm",
    "ServiceProxy",
    "StsCertificate",
    "TrustedIssuer",
    "WindowsAuthentication",
    "version_name",
]

log = logging.getLogger(__name__)

SHAREPOINT_PRINCIPAL_ID = "00000003-0000-0ff1-ce00-000000000000"
ACS_PRINCIPAL_ID = "00000001-0000-0000-c000-000000000000"
ACS_PROXY_TYPE = "Microsoft.SharePoint.Administration.SPAzureAccessControlServiceApplicationProxy"


def version_name(build: str) -> str:
    """The product release for a farm build number (Get-SPFarm BuildVersion)."""
    parts = [int(p) for p in str(build).split(".")[:3] if p.isdigit()]
    major, build_no = (parts + [0, 0, 0])[0], (parts + [0, 0, 0])[2]
    if major == 15:
        return "SharePoint Server 2013"
    if major == 16:
        if build_no >= 14000:
            return "SharePoint Server Subscription Edition"
        if build_no >= 10000:
            return "SharePoint Server 2019"
        return "SharePoint Server 2016"
    return f"SharePoint build {build}"


@dataclass(frozen=True)
class WindowsAuthentication:
    zone: str
    integrated: bool
    ntlm: bool  # DisableKerberos: NTLM only

    @property
    def kind(self) -> str:
        if not self.integrated:
            return "not Integrated Windows authentication"
        return "Integrated Windows authentication with NTLM" if self.ntlm else "Integrated Windows authentication with Negotiate (Kerberos)"


@dataclass(frozen=True)
class StsCertificate:
    thumbprint: str
    subject: str
    not_before: str
    not_after: str
    der: bytes


@dataclass(frozen=True)
class TrustedIssuer:
    name: str
    registered_issuer_name: str
    is_self_issuer: bool
    metadata_endpoint: str | None

    @property
    def realm(self) -> str:
        return self.registered_issuer_name.rpartition("@")[2].lower()


@dataclass(frozen=True)
class AppPrincipal:
    name_identifier: str
    display_name: str

    @property
    def realm(self) -> str:
        return self.name_identifier.rpartition("@")[2].lower()


@dataclass(frozen=True)
class ServiceProxy:
    name: str
    type: str
    metadata_endpoint_uri: str | None
    in_default_group: bool


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


class Farm:
    """Typed operations on one farm through its remote session."""

    def __init__(self, session: Any, *, name: str) -> None:
        self.session = session
        self.name = name

    # -- low level ---------------------------------------------------------------------------
    def _run(self, cmdlet: str, **parameters: Any) -> list[Any]:
        return list(self.session.invoke(cmdlet, parameters or None).output)

    def _template(self, name: str, **parameters: Any) -> list[Any]:
        return list(self.session.invoke_template(name, parameters or None).output)

    # -- reads -------------------------------------------------------------------------------
    def build_version(self) -> str:
        farm = self._run("Get-SPFarm")
        if not farm:
            raise RemoteError(f"{self.name}: Get-SPFarm returned nothing",
                              hint="Run the runbook as a farm administrator on a server joined to the farm.",
                              target=self.name, cmdlet="Get-SPFarm")
        return _text(farm[0].get("BuildVersion"))

    def web_application_exists(self, url: str) -> bool:
        result = self.session.invoke("Get-SPWebApplication", {"Identity": url, "ErrorAction": "SilentlyContinue"})
        return bool(result.output)

    def windows_authentication(self, url: str, zone: str) -> WindowsAuthentication | None:
        """The zone's Windows provider, or None for a zone without one (forms, SAML or classic mode)."""
        for provider in self._run("Get-SPAuthenticationProvider", WebApplication=url, Zone=zone):
            if _text(provider.get("ClaimProviderName")).upper() == "AD" or "Windows" in _text(provider.get("DisplayName")):
                return WindowsAuthentication(
                    zone=zone,
                    integrated=_bool(provider.get("UseWindowsIntegratedAuthentication")),
                    ntlm=_bool(provider.get("DisableKerberos")),
                )
        return None

    def allow_oauth_over_http(self) -> bool:
        config = self._run("Get-SPSecurityTokenServiceConfig")
        return bool(config) and _bool(config[0].get("AllowOAuthOverHttp"))

    def set_allow_oauth_over_http(self, enabled: bool) -> bool:
        values = self._template("sharepoint/set-oauth-over-http", Enabled=enabled)
        return bool(values) and _bool(values[-1])

    def sts_certificate(self) -> StsCertificate:
        found = self._template("sharepoint/get-sts-certificate")
        if not found:
            raise TrustError(f"{self.name}: the farm's STS signing certificate could not be read",
                             hint="Check Get-SPSecurityTokenServiceConfig on the farm.")
        cert = found[0]
        raw = cert.get("RawData")
        if not isinstance(raw, (bytes, bytearray)):
            raise TrustError(f"{self.name}: the STS certificate came back without its raw data",
                             hint="This is a runbook defect: report it with the record.")
        return StsCertificate(
            thumbprint=_text(cert.get("Thumbprint")).upper(),
            subject=_text(cert.get("Subject")),
            not_before=_text(cert.get("NotBefore")),
            not_after=_text(cert.get("NotAfter")),
            der=bytes(raw),
        )

    def realm(self) -> str:
        found = self._run("Get-SPAuthenticationRealm")
        return _text(found[0]).strip().lower() if found else ""

    def set_realm(self, realm: str) -> None:
        self._run("Set-SPAuthenticationRealm", Realm=realm, Confirm=False)

    def trusted_issuers(self) -> list[TrustedIssuer]:
        return [
            TrustedIssuer(
                name=_text(i.get("Name")),
                registered_issuer_name=_text(i.get("RegisteredIssuerName")),
                is_self_issuer=_bool(i.get("IsSelfIssuer")),
                metadata_endpoint=_text(i.get("MetadataEndPoint")) or None,
            )
            for i in self._run("Get-SPTrustedSecurityTokenIssuer")
        ]

    def app_principal(self, site: str, name_identifier: str) -> AppPrincipal | None:
        result = self.session.invoke("Get-SPAppPrincipal", {"Site": site, "NameIdentifier": name_identifier,
                                                              "ErrorAction": "SilentlyContinue"})
        for p in result.output:
            return AppPrincipal(_text(p.get("NameIdentifier")), _text(p.get("DisplayName")))
        return None

    def site_app_principals(self, site: str) -> list[AppPrincipal]:
        return [AppPrincipal(_text(p.get("NameIdentifier")), _text(p.get("DisplayName")))
                for p in self._template("sharepoint/get-site-app-principals", Site=site)]

    def proxies(self) -> list[ServiceProxy]:
        return [
            ServiceProxy(
                name=_text(p.get("Name")),
                type=_text(p.get("Type")),
                metadata_endpoint_uri=_text(p.get("MetadataEndpointUri")) or None,
                in_default_group=_bool(p.get("InDefaultGroup")),
            )
            for p in self._template("sharepoint/get-proxy-group-membership")
        ]

    # -- changes -----------------------------------------------------------------------------
    def register_app_principal(self, site: str, name_identifier: str, display_name: str) -> AppPrincipal:
        found = self._template("sharepoint/register-app-principal", Site=site, NameIdentifier=name_identifier,
                               DisplayName=display_name)
        p = found[-1]
        return AppPrincipal(_text(p.get("NameIdentifier")), _text(p.get("DisplayName")))

    def app_principal_permissions(self, site: str, name_identifier: str) -> dict[str, Any]:
        found = self._template("sharepoint/get-app-principal-permission", Site=site, NameIdentifier=name_identifier)
        return dict(found[0]) if found else {}

    def set_app_principal_permission(self, site: str, name_identifier: str, *, scope: str, right: str,
                                     app_only: bool = False) -> None:
        params: dict[str, Any] = {"Site": site, "NameIdentifier": name_identifier, "Scope": scope, "Right": right}
        if app_only:
            params["EnableAppOnlyPolicy"] = True
        self._template("sharepoint/set-app-principal-permission", **params)

    def move_to_realm(self, site: str, old_realm: str, new_realm: str) -> list[str]:
        """Re-register what the old realm held under the new one (KB 4010011), keeping rights.

        Certificate-based issuers registered as ``<id>@<old realm>`` get ``<id>@<new realm>``; app
        principals ``<client id>@<old realm>`` on ``site`` are registered again as ``<client id>@<new
        realm>`` with the same display name and the same rights at each scope.
        """
        made: list[str] = []
        for issuer in self.trusted_issuers():
            if issuer.is_self_issuer and issuer.realm == old_realm:
                issuer_id = issuer.registered_issuer_name.rpartition("@")[0]
                new_name = f"{issuer_id}@{new_realm}"
                self._run("Set-SPTrustedSecurityTokenIssuer", Identity=issuer.name, RegisteredIssuerName=new_name)
                made.append(f"re-registered issuer {issuer.name} as {new_name}")
        for principal in self.site_app_principals(site):
            if principal.realm != old_realm:
                continue
            client_id = principal.name_identifier.rpartition("@")[0]
            new_nid = f"{client_id}@{new_realm}"
            rights = self.app_principal_permissions(site, principal.name_identifier)
            self.register_app_principal(site, new_nid, principal.display_name)
            granted = []
            for scope in ("Site", "SiteCollection", "SiteSubscription"):
                right = rights.get("Web" if scope == "Site" else scope)
                if right and str(right).lower() not in ("none", ""):
                    self.set_app_principal_permission(site, new_nid, scope=scope, right=str(right),
                                                      app_only=_bool(rights.get("AppOnlyPolicy")))
                    granted.append(f"{right} at {scope}")
            made.append(f"re-registered app principal {principal.display_name} as {new_nid}"
                        + (f" with {', '.join(granted)}" if granted else ""))
        return made

    def new_acs_proxy(self, name: str, metadata_url: str) -> None:
        self._run("New-SPAzureAccessControlServiceApplicationProxy", Name=name,
                  MetadataServiceEndpointUri=metadata_url, DefaultProxyGroup=True)

    def new_trust_broker(self, name: str, metadata_url: str) -> None:
        self._run("New-SPTrustedSecurityTokenIssuer", Name=name, MetadataEndPoint=metadata_url, IsTrustBroker=True)
