"""An Exchange server as the runbooks see it: typed reads and changes over Exchange's remote PowerShell.

:class:`ExchangeServer` is a :class:`~runbooklib.product.ProductClient` without a loader: the
``Microsoft.Exchange`` session configuration offers the cmdlets from the start and runs
*commands only* — no script text, so no named templates either. Everything here is one cmdlet
with bound parameters; whatever needs logic (is the application there, which roles are missing)
happens on this side.

A partner application is found by its metadata URL, never by a name pattern: Exchange's own
Configure-EnterprisePartnerApplication.ps1 adds a new GUID-named application on every run, so a
runbook that re-runs must recognise the one it made. :data:`APPLICATION_TYPES` holds what that
script gives each kind of partner (linked account, roles, SID flag), for a runbook that does the
same work with cmdlets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from .errors import RemoteError
from .product import ProductClient, as_bool, as_text

__all__ = [
    "APPLICATION_TYPES",
    "ApplicationType",
    "AuthConfig",
    "ExchangeServer",
    "OAuthTest",
    "PartnerApplication",
    "same_url",
]


@dataclass(frozen=True)
class ApplicationType:
    """What Exchange's enterprise partner-application script sets up for one kind of partner."""

    account: str
    roles: tuple[str, ...]
    accept_security_identifier_information: bool


# [C] Configure-EnterprisePartnerApplication.ps1 (skype-exchange-cmdlets.md §2).
APPLICATION_TYPES: dict[str, ApplicationType] = {
    "Lync": ApplicationType("LyncEnterprise-ApplicationAccount",
                            ("UserApplication", "ArchiveApplication", "MeetingGraphApplication"), True),
    "SharePoint": ApplicationType("SharePointEnterprise-ApplicationAccount",
                                  ("UserApplication", "LegalHoldApplication", "Mailbox Search",
                                   "TeamMailboxLifecycleApplication", "Legal Hold"), True),
    "Generic": ApplicationType("GenericEnterprise-ApplicationAccount", ("UserApplication",), False),
}


@dataclass(frozen=True)
class AuthConfig:
    """Get-AuthConfig: the certificate Exchange signs its S2S tokens with, its service name and realm."""

    current_thumbprint: str
    previous_thumbprint: str
    service_name: str
    realm: str  # '' : the metadata names the default accepted domain


@dataclass(frozen=True)
class PartnerApplication:
    """A partner application as Get-PartnerApplication shows it (certificates: base64 DER)."""

    name: str
    application_identifier: str
    realm: str
    auth_metadata_url: str
    enabled: bool
    linked_account: str
    accept_security_identifier_information: bool
    use_auth_server: bool
    certificates: tuple[str, ...]

    @property
    def issuer(self) -> str:
        """``<ApplicationIdentifier>@<Realm>``: the issuer Exchange accepts this application's tokens from."""
        return f"{self.application_identifier}@{self.realm}".lower()


@dataclass(frozen=True)
class OAuthTest:
    """Test-OAuthConnectivity's verdict: only ``result`` (Success | Warning | Error) decides."""

    result: str
    task: str
    detail: str

    @property
    def passed(self) -> bool:
        return self.result.lower() == "success"


def same_url(a: str, b: str) -> bool:
    """Whether two metadata URLs name the same endpoint (case and a trailing slash aside)."""
    return a.strip().rstrip("/").lower() == b.strip().rstrip("/").lower()


def _texts(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(as_text(v) for v in value)
    return (as_text(value),)


def _application(row: Any) -> PartnerApplication:
    return PartnerApplication(
        name=as_text(row.get("Name")),
        application_identifier=as_text(row.get("ApplicationIdentifier")).lower(),
        realm=as_text(row.get("Realm")),
        auth_metadata_url=as_text(row.get("AuthMetadataUrl")),
        enabled=as_bool(row.get("Enabled")),
        linked_account=as_text(row.get("LinkedAccount")),
        accept_security_identifier_information=as_bool(row.get("AcceptSecurityIdentifierInformation")),
        use_auth_server=as_bool(row.get("UseAuthServer")),
        certificates=_texts(row.get("CertificateStrings")),
    )


class ExchangeServer(ProductClient):
    """Typed operations on one Exchange server through its ``Microsoft.Exchange`` session."""

    loader = None  # the endpoint offers the Exchange cmdlets from the start

    # -- auth configuration -------------------------------------------------------------------
    def auth_config(self) -> AuthConfig:
        rows = self._run("Get-AuthConfig")
        if not rows:
            raise RemoteError(f"{self.name}: Get-AuthConfig returned nothing",
                              hint=f"Check that {self.name} is an Exchange server (Mailbox role) and that the account "
                                   "may read the organization's configuration.", target=self.name,
                              cmdlet="Get-AuthConfig")
        row = rows[0]
        return AuthConfig(as_text(row.get("CurrentCertificateThumbprint")).upper(),
                          as_text(row.get("PreviousCertificateThumbprint")).upper(),
                          as_text(row.get("ServiceName")), as_text(row.get("Realm")))

    # -- partner applications -----------------------------------------------------------------
    def partner_applications(self) -> list[PartnerApplication]:
        return [_application(row) for row in self._run("Get-PartnerApplication")]

    def partner_application_for(self, metadata_url: str) -> PartnerApplication | None:
        """The application created from ``metadata_url``; :class:`RemoteError` when several are,
        because Exchange would then trust the partner twice and a runbook cannot tell which to keep."""
        found = [a for a in self.partner_applications() if a.auth_metadata_url and same_url(a.auth_metadata_url,
                                                                                           metadata_url)]
        if len(found) > 1:
            names = ", ".join(a.name for a in found)
            raise RemoteError(f"{self.name} has {len(found)} partner applications for {metadata_url}: {names}",
                              hint="Keep one (Remove-PartnerApplication -Identity <name> -Confirm:$false on the "
                                   "others), then run again.", target=self.name, cmdlet="Get-PartnerApplication")
        return found[0] if found else None

    def new_partner_application(self, name: str, metadata_url: str, *, linked_account: str,
                                accept_security_identifier_information: bool) -> PartnerApplication:
        """New-PartnerApplication from the partner's metadata (Exchange downloads it now), enabled."""
        rows = self._run("New-PartnerApplication", Name=name, AuthMetadataUrl=metadata_url, Enabled=True,
                         LinkedAccount=linked_account,
                         AcceptSecurityIdentifierInformation=accept_security_identifier_information)
        return _application(rows[-1])

    def set_partner_application(self, identity: str, *, enabled: bool | None = None, linked_account: str | None = None,
                                accept_security_identifier_information: bool | None = None) -> None:
        parameters: dict[str, Any] = {"Identity": identity}
        if enabled is not None:
            parameters["Enabled"] = enabled
        if linked_account is not None:
            parameters["LinkedAccount"] = linked_account
        if accept_security_identifier_information is not None:
            parameters["AcceptSecurityIdentifierInformation"] = accept_security_identifier_information
        self._invoke("Set-PartnerApplication", parameters)

    def refresh_partner_application(self, identity: str) -> None:
        """Download the application's metadata again (after the partner rolled its certificate)."""
        self._invoke("Set-PartnerApplication", {"Identity": identity, "RefreshAuthMetadata": None})

    # -- the linked account and its roles -----------------------------------------------------
    def user(self, identity: str) -> str | None:
        """The directory identity (``contoso.com/Users/<name>``) of user ``identity``, or None."""
        result = self._invoke("Get-User", {"Identity": identity, "ErrorAction": "SilentlyContinue"})
        return as_text(result.output[0].get("Identity")) if result.output else None

    def new_application_account(self, name: str, domain: str) -> str:
        """A mail user for an application, as Exchange's script makes one; its identity."""
        rows = self._run("New-MailUser", Name=name, ExternalEmailAddress=f"{name}@{domain}")
        return as_text(rows[-1].get("Identity"))

    def roles_of(self, account: str) -> set[str]:
        rows = self._run("Get-ManagementRoleAssignment", RoleAssignee=account)
        return {as_text(r.get("Role")) for r in rows if as_bool(r.get("Enabled", True))}

    def missing_roles(self, account: str, roles: Iterable[str]) -> list[str]:
        have = {r.lower() for r in self.roles_of(account)}
        return [r for r in roles if r.lower() not in have]

    def assign_role(self, role: str, account: str) -> None:
        self._run("New-ManagementRoleAssignment", Role=role, User=account)

    # -- proof --------------------------------------------------------------------------------
    def test_oauth(self, target_uri: str, *, service: str = "Generic", mailbox: str | None = None) -> OAuthTest:
        """Test-OAuthConnectivity to ``target_uri``: Exchange mints its token and calls the target."""
        parameters: dict[str, Any] = {"Service": service, "TargetUri": target_uri}
        if mailbox:
            parameters["Mailbox"] = mailbox
        else:
            parameters["AppOnly"] = None
        rows = self._invoke("Test-OAuthConnectivity", parameters).output
        if not rows:
            raise RemoteError(f"{self.name}: Test-OAuthConnectivity returned no result", target=self.name,
                              cmdlet="Test-OAuthConnectivity")
        row = rows[-1]
        return OAuthTest(as_text(row.get("ResultType")), as_text(row.get("Task")), as_text(row.get("Detail")))
