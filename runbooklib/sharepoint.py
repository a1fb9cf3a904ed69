"""A SharePoint Server farm as the runbooks see it: typed reads and changes over remote PowerShell.

Every call goes through one :class:`~runbooklib.remote.RemoteSession` (one runspace pool per farm
per run). Reads use cmdlets; work that needs a live server object (an SPWeb, the STS
configuration, a certificate) uses the named script templates in ``runbooklib/templates/sharepoint``.

:class:`Farm` is a :class:`~runbooklib.product.ProductClient`: before its first command on a
session it loads the SharePoint cmdlets once with the template
``sharepoint/load-sharepoint-powershell`` — the snap-in on 2013/2016/2019, the module on
Subscription Edition — and remembers that on the session (:func:`ensure_sharepoint_shell`).
A farm reached without delegated credentials stops there, or at its first farm cmdlet, with
:data:`DOUBLE_HOP`'s error naming the server and the fix (``auth: credssp``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import RemoteError, TrustError
from .principal_names import split_principal_name
from .product import LoadedShell, ProductClient, ShellCondition, ShellLoader, as_bool, as_text

__all__ = [
    "ACS_PROXY_TYPE",
    "AppPrincipal",
    "DOUBLE_HOP",
    "Farm",
    "LOAD_TEMPLATE",
    "RootAuthority",
    "SHAREPOINT_SHELL",
    "ServiceApplication",
    "ServiceProxy",
    "SharePointShell",
    "SiteScan",
    "StsCertificate",
    "TrustedIssuer",
    "UnreadableSite",
    "WindowsAuthentication",
    "WorkflowService",
    "ensure_sharepoint_shell",
    "version_name",
]

LOAD_TEMPLATE = "sharepoint/load-sharepoint-powershell"
# The double hop: a session that holds no delegated credentials (NTLM; Kerberos without
# delegation) cannot reach SQL Server as the user. The snap-in (or SE's module) loads with this
# warning and every farm cmdlet then fails with that error.
DOUBLE_HOP = ShellCondition(
    load_warning="The local farm is not accessible.",
    command_error="Cannot access the local farm.",
    problem=("{server}: the SharePoint cmdlets cannot reach the farm's databases: the remote session holds no "
             "credentials it can pass on to SQL Server (the double hop: NTLM, or Kerberos without delegation, "
             "stops at the first server). Nothing was changed."),
    fix=("Reach {server} with CredSSP: set auth: credssp for {server} in the inventory; enable CredSSP as a server "
         "on {server} (Enable-WSManCredSSP -Role Server, as an administrator there) and, when the runbook runs on "
         "Windows, as a client here (Enable-WSManCredSSP -Role Client -DelegateComputer <{server}'s host name>). "
         "Kerberos with delegation to SQL Server works too."),
)
SHAREPOINT_SHELL = ShellLoader(
    template=LOAD_TEMPLATE,
    product="SharePoint PowerShell",
    # How the load template's refusal starts (its throw text) on a server with no SharePoint PowerShell.
    refusal="SharePoint PowerShell is not installed on this server",
    fix=("Check that {server} is a server of the SharePoint farm (SharePoint Server installed and "
         "joined), and that the inventory names the right server."),
    conditions=(DOUBLE_HOP,),
)
# How the SharePoint cmdlets came into a session: ``snapin`` (Add-PSSnapin
# Microsoft.SharePoint.PowerShell, 2013–2019), ``module`` (Import-Module SharePointServer,
# Subscription Edition) or ``already``; ``version`` is the farm build Get-SPFarm reported then.
SharePointShell = LoadedShell

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
    """The Windows provider of a web application's zone."""

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
    """The farm's STS signing certificate, public part."""

    thumbprint: str
    subject: str
    not_before: str
    not_after: str
    der: bytes


@dataclass(frozen=True)
class TrustedIssuer:
    """A trusted security token issuer (Get-SPTrustedSecurityTokenIssuer)."""

    name: str
    registered_issuer_name: str
    is_self_issuer: bool
    metadata_endpoint: str | None
    #: the signing certificate's thumbprint, when it was read (:meth:`Farm.certificate_issuers`)
    thumbprint: str | None = None

    @property
    def realm(self) -> str:
        return split_principal_name(self.registered_issuer_name, lower=True).realm

    @property
    def issuer_id(self) -> str:
        return split_principal_name(self.registered_issuer_name, lower=True).id

    @property
    def certificate_based(self) -> bool:
        """Registered from a certificate (high-trust add-ins): named in *this* farm's realm.

        A metadata-based issuer takes its name from its partner's metadata, in the partner's realm.
        """
        return not self.metadata_endpoint


@dataclass(frozen=True)
class RootAuthority:
    """A trusted root authority (Get-SPTrustedRootAuthority) and its certificate's thumbprint."""

    name: str
    thumbprint: str


@dataclass(frozen=True)
class AppPrincipal:
    """An app principal registered on a site (``<client id>@<realm>``).

    ``web``: a sub-web of ``site`` (its full URL) the principal holds a right of its own on;
    empty for the site collection's root web.
    """

    name_identifier: str
    display_name: str
    site: str = ""
    web: str = ""

    @property
    def realm(self) -> str:
        return split_principal_name(self.name_identifier, lower=True).realm

    @property
    def client_id(self) -> str:
        return split_principal_name(self.name_identifier, lower=True).id


@dataclass(frozen=True)
class UnreadableSite:
    """A site collection the app-principal scan could not read, and the product's message."""

    site: str
    message: str


@dataclass(frozen=True)
class SiteScan:
    """Every site collection's app principals (one entry per web holding a right of its own),
    and the site collections that could not be read."""

    principals: list[AppPrincipal]
    unreadable: list[UnreadableSite]


@dataclass(frozen=True)
class WorkflowService:
    """The farm's pairing with Workflow Manager (its Workflow Service Application Proxy)."""

    proxy: str
    host_uri: str


@dataclass(frozen=True)
class ServiceProxy:
    """A service application proxy and whether the default proxy group holds it."""

    name: str
    type: str
    metadata_endpoint_uri: str | None
    in_default_group: bool


@dataclass(frozen=True)
class ServiceApplication:
    """A service application of the farm (Get-SPServiceApplication)."""

    name: str
    type_name: str


def ensure_sharepoint_shell(session: Any, *, name: str | None = None) -> SharePointShell:
    """Load the SharePoint cmdlets into ``session`` unless this session already did; idempotent.

    Raises :class:`RemoteError` (with what to check) when the server has neither the snap-in nor
    the module, i.e. it is not a SharePoint server.
    """
    return SHAREPOINT_SHELL.ensure(session, name=name)


# Scopes of an app principal's rights, and the key the permission template reports each under.
_RIGHT_SCOPES = (("Site", "Web"), ("SiteCollection", "SiteCollection"), ("SiteSubscription", "SiteSubscription"))


def _is_access_denied(error: Any) -> bool:
    """An error record that means "you may not", not "there is none": PermissionDenied,
    .NET's access-denied text, or SharePoint's "Cannot access the local farm" (the double hop)."""
    text = as_text(getattr(error, "message", "")).lower()
    return (as_text(getattr(error, "category", "")) == "PermissionDenied" or "access is denied" in text
            or "access denied" in text or "cannot access the local farm" in text)


class Farm(ProductClient):
    """Typed operations on one farm through its remote session."""

    loader = SHAREPOINT_SHELL

    # -- reads -------------------------------------------------------------------------------
    def build_version(self) -> str:
        shell = self.shell()
        if shell is not None and shell.version:  # read by the load template: saves a round trip
            return shell.version
        farm = self._run("Get-SPFarm")
        if not farm:
            raise RemoteError(f"{self.name}: Get-SPFarm returned nothing",
                              hint="Run the runbook as a farm administrator on a server joined to the farm.",
                              target=self.name, cmdlet="Get-SPFarm")
        return as_text(farm[0].get("BuildVersion"))

    def web_application_exists(self, url: str) -> bool:
        """Whether the farm has a web application at ``url``.

        Not found is the only "no": the error records are read rather than silenced, because
        ``-ErrorAction SilentlyContinue`` would turn access denied (a missing grant, or the second
        hop to SQL Server) into "no web application". Those raise :class:`RemoteError` with their fix.
        """
        result = self._invoke("Get-SPWebApplication", {"Identity": url})
        if result.output:
            return True
        for error in result.errors:
            if _is_access_denied(error):
                raise RemoteError(
                    f"{self.name}: access to the web application {url} was denied: {error.message}",
                    hint=("The runbook's account can reach the farm but may not read this web application. Make "
                          "it a farm administrator with SharePoint_Shell_Access on the configuration and content "
                          "databases (Add-SPShellAdmin), and connect with CredSSP or Kerberos delegation so the "
                          "second hop to SQL Server carries its credentials; then run again. Nothing was changed."),
                    target=self.name, cmdlet="Get-SPWebApplication", reason=error.message,
                    error_id=error.error_id, category=error.category)
            if error.category != "ObjectNotFound":
                raise RemoteError(f"{self.name}: Get-SPWebApplication {url} failed: {error.message}",
                                  hint="Run Get-SPWebApplication on the farm to see why; then run again.",
                                  target=self.name, cmdlet="Get-SPWebApplication", reason=error.message,
                                  error_id=error.error_id, category=error.category)
        return False

    def windows_authentication(self, url: str, zone: str) -> WindowsAuthentication | None:
        """The zone's Windows provider, or None for a zone without one (forms, SAML or classic mode)."""
        for provider in self._run("Get-SPAuthenticationProvider", WebApplication=url, Zone=zone):
            if as_text(provider.get("ClaimProviderName")).upper() == "AD" or "Windows" in as_text(provider.get("DisplayName")):
                return WindowsAuthentication(
                    zone=zone,
                    integrated=as_bool(provider.get("UseWindowsIntegratedAuthentication")),
                    ntlm=as_bool(provider.get("DisableKerberos")),
                )
        return None

    def allow_oauth_over_http(self) -> bool:
        config = self._run("Get-SPSecurityTokenServiceConfig")
        return bool(config) and as_bool(config[0].get("AllowOAuthOverHttp"))

    def set_allow_oauth_over_http(self, enabled: bool) -> bool:
        values = self._template("sharepoint/set-oauth-over-http", Enabled=enabled)
        return bool(values) and as_bool(values[-1])

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
            thumbprint=as_text(cert.get("Thumbprint")).upper(),
            subject=as_text(cert.get("Subject")),
            not_before=as_text(cert.get("NotBefore")),
            not_after=as_text(cert.get("NotAfter")),
            der=bytes(raw),
        )

    def realm(self) -> str:
        found = self._run("Get-SPAuthenticationRealm")
        return as_text(found[0]).strip().lower() if found else ""

    def set_realm(self, realm: str) -> None:
        self._run("Set-SPAuthenticationRealm", Realm=realm, Confirm=False)

    def trusted_issuers(self) -> list[TrustedIssuer]:
        return [
            TrustedIssuer(
                name=as_text(i.get("Name")),
                registered_issuer_name=as_text(i.get("RegisteredIssuerName")),
                is_self_issuer=as_bool(i.get("IsSelfIssuer")),
                metadata_endpoint=as_text(i.get("MetadataEndPoint")) or None,
            )
            for i in self._run("Get-SPTrustedSecurityTokenIssuer")
        ]

    def certificate_issuers(self, name: str = "") -> list[TrustedIssuer]:
        """Every trusted issuer (or the one called ``name``) with its signing certificate's thumbprint,
        read on the server."""
        return [
            TrustedIssuer(
                name=as_text(i.get("Name")),
                registered_issuer_name=as_text(i.get("RegisteredIssuerName")),
                is_self_issuer=as_bool(i.get("IsSelfIssuer")),
                metadata_endpoint=as_text(i.get("MetadataEndPoint")) or None,
                thumbprint=as_text(i.get("Thumbprint")).upper() or None,
            )
            for i in self._template("sharepoint/get-trusted-issuers", Name=name)
        ]

    def service_applications(self) -> list[ServiceApplication]:
        return [ServiceApplication(as_text(a.get("DisplayName") or a.get("Name")), as_text(a.get("TypeName")))
                for a in self._run("Get-SPServiceApplication")]

    def signing_thumbprint(self, issuer_name: str) -> str:
        """The thumbprint of the signing certificate the trusted issuer ``issuer_name`` holds now."""
        found = self._template("sharepoint/get-trusted-issuers", Name=issuer_name)
        return as_text(found[0].get("Thumbprint")).upper() if found else ""

    def root_authorities(self) -> list[RootAuthority]:
        """Every trusted root authority, ``local`` (the farm's own root) included."""
        return [RootAuthority(as_text(r.get("Name")), as_text(r.get("Thumbprint")).upper())
                for r in self._template("sharepoint/get-trusted-root-authorities")]

    def partner_metadata(self, url: str) -> str:
        """The document at ``url`` as this farm downloads it (its network path, its trusted CAs).

        Raises :class:`RemoteError` with the server's own words when the download fails.
        """
        found = self._template("sharepoint/get-partner-metadata", Url=url)
        return as_text(found[-1].get("Content")) if found else ""

    def app_principal(self, site: str, name_identifier: str) -> AppPrincipal | None:
        result = self._invoke("Get-SPAppPrincipal", {"Site": site, "NameIdentifier": name_identifier,
                                                              "ErrorAction": "SilentlyContinue"})
        for p in result.output:
            return AppPrincipal(as_text(p.get("NameIdentifier")), as_text(p.get("DisplayName")))
        return None

    def app_principals(self) -> SiteScan:
        """Every app principal known to any site collection of the farm, one entry per web it holds
        a right of its own on; a site collection that cannot be read is reported, not fatal."""
        principals, unreadable = [], []
        for row in self._template("sharepoint/get-all-site-app-principals"):
            if as_text(row.get("Error")):
                unreadable.append(UnreadableSite(as_text(row.get("Site")), as_text(row.get("Error"))))
            elif row.get("External") is None or as_bool(row.get("External")):
                # A SharePoint-hosted add-in (internal) trusts no issuer: a realm change leaves it working.
                principals.append(AppPrincipal(as_text(row.get("NameIdentifier")), as_text(row.get("DisplayName")),
                                               as_text(row.get("Site")), as_text(row.get("Web"))))
        return SiteScan(principals, unreadable)

    def workflow_service(self, site: str) -> WorkflowService | None:
        """The farm's Workflow Manager pairing, or None when it has none."""
        for row in self._template("sharepoint/get-workflow-service", Site=site):
            return WorkflowService(as_text(row.get("Name")), as_text(row.get("WorkflowHostUri")))
        return None

    def register_workflow_service(self, site: str, host_uri: str) -> None:
        """Pair the farm with Workflow Manager again under its current realm (KB 4010011)."""
        params: dict[str, Any] = {"SPSite": site, "WorkflowHostUri": host_uri, "Force": True}
        if host_uri.lower().startswith("http://"):
            params["AllowOAuthHttp"] = True
        self._run("Register-SPWorkflowService", **params)

    def proxies(self) -> list[ServiceProxy]:
        return [
            ServiceProxy(
                name=as_text(p.get("Name")),
                type=as_text(p.get("Type")),
                metadata_endpoint_uri=as_text(p.get("MetadataEndpointUri")) or None,
                in_default_group=as_bool(p.get("InDefaultGroup")),
            )
            for p in self._template("sharepoint/get-proxy-group-membership")
        ]

    # -- changes -----------------------------------------------------------------------------
    def register_app_principal(self, site: str, name_identifier: str, display_name: str) -> AppPrincipal:
        found = self._template("sharepoint/register-app-principal", Site=site, NameIdentifier=name_identifier,
                               DisplayName=display_name)
        p = found[-1]
        return AppPrincipal(as_text(p.get("NameIdentifier")), as_text(p.get("DisplayName")))

    def app_principal_permissions(self, site: str, name_identifier: str, *, web: str = "") -> dict[str, Any]:
        """The principal's rights read on ``site``'s root web, or on its sub-web ``web``."""
        params: dict[str, Any] = {"Site": site, "NameIdentifier": name_identifier}
        if web:
            params["Web"] = web
        found = self._template("sharepoint/get-app-principal-permission", **params)
        return dict(found[0]) if found else {}

    def set_app_principal_permission(self, site: str, name_identifier: str, *, scope: str, right: str,
                                     app_only: bool = False, web: str = "") -> None:
        """Grant ``right`` at ``scope`` on ``site``'s root web, or on its sub-web ``web``."""
        params: dict[str, Any] = {"Site": site, "NameIdentifier": name_identifier, "Scope": scope, "Right": right}
        if app_only:
            params["EnableAppOnlyPolicy"] = True
        if web:
            params["Web"] = web
        self._template("sharepoint/set-app-principal-permission", **params)

    def move_issuer_to_realm(self, name: str, realm: str) -> TrustedIssuer:
        """Re-register a certificate-based issuer as ``<issuer id>@<realm>``, keeping its certificate."""
        found = self._template("sharepoint/move-issuer-to-realm", Name=name, Realm=realm)
        i = found[-1]
        return TrustedIssuer(as_text(i.get("Name")), as_text(i.get("RegisteredIssuerName")),
                             as_bool(i.get("IsSelfIssuer")), None)

    def rights(self, principal: AppPrincipal) -> dict[str, str]:
        """What ``principal`` may do on its site: right per scope (Site, SiteCollection,
        SiteSubscription) and ``AppOnly`` ('True'/'False'); scopes without a right are left out."""
        found = self.app_principal_permissions(principal.site, principal.name_identifier, web=principal.web)
        rights = {scope: as_text(found.get(key)) for scope, key in _RIGHT_SCOPES
                  if as_text(found.get(key)) and as_text(found.get(key)).lower() != "none"}
        if rights:
            rights["AppOnly"] = str(as_bool(found.get("AppOnlyPolicy")))
        return rights

    def move_app_principal_to_realm(self, principal: AppPrincipal, realm: str) -> list[str]:
        """Register ``<client id>@<realm>`` beside ``principal`` with the same name and rights, on the
        same web (a sub-web grant is granted again on that sub-web, not on the root web).

        Registering and granting again is harmless, so a move that stopped half-way is simply
        done again. Returns the rights granted, in words.
        """
        rights = self.rights(principal)
        moved = AppPrincipal(f"{principal.client_id}@{realm}", principal.display_name, principal.site, principal.web)
        self.register_app_principal(moved.site, moved.name_identifier, moved.display_name)
        granted = []
        for scope, _ in _RIGHT_SCOPES:
            if scope in rights:
                self.set_app_principal_permission(moved.site, moved.name_identifier, scope=scope,
                                                  right=rights[scope], app_only=rights.get("AppOnly") == "True",
                                                  web=moved.web)
                granted.append(f"{rights[scope]} at {scope}" + (f" on {moved.web}" if moved.web else ""))
        return granted

    def new_certificate_issuer(self, name: str, certificate_der: bytes, registered_issuer_name: str, *,
                               is_trust_broker: bool = False, description: str = "") -> None:
        """A trusted token issuer from a certificate (public part, DER), registered as ``registered_issuer_name``."""
        self._template("sharepoint/new-trusted-issuer-from-certificate", Name=name, CertificateRawData=certificate_der,
                       RegisteredIssuerName=registered_issuer_name, IsTrustBroker=is_trust_broker,
                       Description=description)

    def new_trusted_root_authority(self, name: str, certificate_der: bytes) -> None:
        self._template("sharepoint/new-trusted-root-authority-from-certificate", Name=name,
                       CertificateRawData=certificate_der)

    def new_acs_proxy(self, name: str, metadata_url: str) -> None:
        self._run("New-SPAzureAccessControlServiceApplicationProxy", Name=name,
                  MetadataServiceEndpointUri=metadata_url, DefaultProxyGroup=True)

    def new_metadata_issuer(self, name: str, metadata_url: str) -> None:
        """Trust a partner server from its metadata: a self-issuer, not a trust broker."""
        self._run("New-SPTrustedSecurityTokenIssuer", Name=name, MetadataEndPoint=metadata_url, IsTrustBroker=False)

    def refresh_metadata_issuer(self, name: str, metadata_url: str) -> None:
        """Read the partner's metadata again into issuer ``name`` (its issuer name and certificate)."""
        self._run("Set-SPTrustedSecurityTokenIssuer", Identity=name, MetadataEndPoint=metadata_url,
                  IsTrustBroker=False)

    def new_metadata_root_authority(self, name: str, metadata_url: str) -> None:
        """Trust the root certificate a partner publishes at ``metadata_url`` (``…/rootcertificate``)."""
        self._run("New-SPTrustedRootAuthority", Name=name, MetadataEndPoint=metadata_url)

    def new_trust_broker(self, name: str, metadata_url: str) -> None:
        self._run("New-SPTrustedSecurityTokenIssuer", Name=name, MetadataEndPoint=metadata_url, IsTrustBroker=True)
