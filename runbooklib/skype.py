"""A Skype for Business Server front end as the runbooks see it: typed reads and changes over remote PowerShell.

:class:`SkypePool` is a :class:`~runbooklib.product.ProductClient`: before its first command on a
session it imports the ``SkypeForBusiness`` module once (template ``skype/load-skypeforbusiness``).
OAuth settings, the OAuthTokenIssuer assignment, partner applications and OAuth servers are the
pool's, replicated to every front end, and are read and changed with the module's cmdlets; the
front end's own certificate store with the template ``skype/get-certificates``, which projects
on the server what remoting would lose (whether a certificate has its private key, its key size).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from .errors import RemoteError
from .product import ProductClient, ShellLoader, as_bool, as_text

__all__ = [
    "AssignedCertificate",
    "LOAD_TEMPLATE",
    "OAuthConfiguration",
    "OAuthServer",
    "PartnerApplication",
    "SKYPE_SHELL",
    "SkypePool",
    "StorageTest",
    "StoreCertificate",
]

LOAD_TEMPLATE = "skype/load-skypeforbusiness"
SKYPE_SHELL = ShellLoader(
    template=LOAD_TEMPLATE,
    product="Skype for Business Server PowerShell",
    refusal="Skype for Business Server is not installed on this server",
    fix=("Check that {server} is a Front End Server of the pool (Skype for Business Server installed and its "
         "management tools present), and that the inventory names the right server."),
)
OAUTH_TOKEN_ISSUER = "OAuthTokenIssuer"


def _moment(value: Any) -> dt.datetime | None:
    """A date as PowerShell sent it (a datetime, or text once deserialized), in UTC."""
    if isinstance(value, dt.datetime):
        moment = value
    else:
        text = as_text(value).strip()
        if not text:
            return None
        try:
            moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def _names(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(as_text(v) for v in value)
    return (as_text(value),)


@dataclass(frozen=True)
class StoreCertificate:
    """A certificate in the front end's LocalMachine\\My store."""

    thumbprint: str
    subject: str
    issuer: str
    friendly_name: str
    not_before: dt.datetime | None
    not_after: dt.datetime | None
    has_private_key: bool
    key_size: int
    dns_names: tuple[str, ...]
    der: bytes = b""


@dataclass(frozen=True)
class AssignedCertificate:
    """A certificate Get-CsCertificate shows as assigned to ``use``."""

    use: str
    thumbprint: str
    not_after: dt.datetime | None
    effective_date: dt.datetime | None
    scope: str


@dataclass(frozen=True)
class OAuthConfiguration:
    """Get-CsOAuthConfiguration: what the pool's S2S trusts depend on."""

    realm: str
    service_name: str
    exchange_autodiscover_url: str


@dataclass(frozen=True)
class PartnerApplication:
    """A partner application of the pool (Get-CsPartnerApplication)."""

    identity: str
    application_identifier: str
    realm: str
    trust_level: str
    enabled: bool
    metadata_url: str
    use_oauth_server: bool


@dataclass(frozen=True)
class OAuthServer:
    """An OAuth server the pool trusts (Get-CsOAuthServer)."""

    identity: str
    metadata_url: str
    realm: str


@dataclass(frozen=True)
class StorageTest:
    """What Test-CsExStorageConnectivity said: passed or not, and its words."""

    passed: bool
    detail: str


def _partner(row: Any) -> PartnerApplication:
    return PartnerApplication(
        identity=as_text(row.get("Identity")), application_identifier=as_text(row.get("ApplicationIdentifier")).lower(),
        realm=as_text(row.get("Realm")).lower(), trust_level=as_text(row.get("ApplicationTrustLevel")),
        enabled=as_bool(row.get("Enabled")), metadata_url=as_text(row.get("MetadataUrl")),
        use_oauth_server=as_bool(row.get("UseOAuthServer")))


class SkypePool(ProductClient):
    """Typed operations on one front end of a Skype for Business pool through its remote session."""

    loader = SKYPE_SHELL

    # -- certificates -------------------------------------------------------------------------
    def certificates(self) -> list[StoreCertificate]:
        """Every certificate in this front end's Personal store."""
        return [
            StoreCertificate(
                thumbprint=as_text(c.get("Thumbprint")).upper(), subject=as_text(c.get("Subject")),
                issuer=as_text(c.get("Issuer")), friendly_name=as_text(c.get("FriendlyName")),
                not_before=_moment(c.get("NotBefore")), not_after=_moment(c.get("NotAfter")),
                has_private_key=as_bool(c.get("HasPrivateKey")), key_size=int(c.get("KeySize") or 0),
                dns_names=_names(c.get("DnsNames")), der=bytes(c.get("RawData") or b""))
            for c in self._template("skype/get-certificates")
        ]

    def assigned(self, use: str) -> list[AssignedCertificate]:
        """Get-CsCertificate -Type ``use``: nothing when none is assigned [C]."""
        return [AssignedCertificate(use=as_text(r.get("Use")), thumbprint=as_text(r.get("Thumbprint")).upper(),
                                    not_after=_moment(r.get("NotAfter")), effective_date=_moment(r.get("EffectiveDate")),
                                    scope=as_text(r.get("SourceScope")))
                for r in self._run("Get-CsCertificate", Type=use)]

    def oauth_token_issuer(self, *, now: dt.datetime | None = None) -> AssignedCertificate | None:
        """The OAuthTokenIssuer certificate in effect now (a rolled one waiting for its date is not)."""
        moment = now or dt.datetime.now(dt.timezone.utc)
        current = [c for c in self.assigned(OAUTH_TOKEN_ISSUER) if c.effective_date is None or c.effective_date <= moment]
        return max(current, key=lambda c: c.effective_date or moment, default=None)

    def assign_oauth_certificate(self, thumbprint: str, *, roll_at: dt.datetime | None = None) -> None:
        """Set-CsCertificate -Identity global -Type OAuthTokenIssuer: at once, or ``-Roll`` to take
        effect at ``roll_at`` (the current certificate stays in use until then)."""
        parameters: dict[str, Any] = {"Identity": "global", "Type": OAUTH_TOKEN_ISSUER, "Thumbprint": thumbprint}
        if roll_at is not None:
            parameters.update(Roll=True, EffectiveDate=roll_at.astimezone(dt.timezone.utc).isoformat())
        self._invoke("Set-CsCertificate", parameters)

    def certificate(self, thumbprint: str) -> StoreCertificate | None:
        wanted = thumbprint.upper()
        return next((c for c in self.certificates() if c.thumbprint == wanted), None)

    # -- SIP domains and OAuth configuration --------------------------------------------------
    def default_sip_domain(self) -> str:
        """The pool's default SIP domain (Get-CsSipDomain, IsDefault): the default OAuth realm [C]."""
        domains = self._run("Get-CsSipDomain")
        default = next((d for d in domains if as_bool(d.get("IsDefault"))), domains[0] if domains else None)
        if default is None:
            raise RemoteError(f"{self.name}: Get-CsSipDomain returned no SIP domain",
                              hint=f"Check the topology of the pool {self.name} belongs to.", target=self.name,
                              cmdlet="Get-CsSipDomain")
        return as_text(default.get("Name")).lower()

    def oauth_configuration(self) -> OAuthConfiguration:
        found = self._run("Get-CsOAuthConfiguration")
        if not found:
            raise RemoteError(f"{self.name}: Get-CsOAuthConfiguration returned nothing",
                              hint=f"Check that {self.name} is a Front End Server of the pool.", target=self.name,
                              cmdlet="Get-CsOAuthConfiguration")
        row = found[0]
        return OAuthConfiguration(realm=as_text(row.get("Realm")), service_name=as_text(row.get("ServiceName")),
                                  exchange_autodiscover_url=as_text(row.get("ExchangeAutodiscoverUrl")))

    def set_oauth_configuration(self, *, realm: str | None = None, service_name: str | None = None,
                                exchange_autodiscover_url: str | None = None) -> None:
        """Set-CsOAuthConfiguration with only the given settings."""
        parameters: dict[str, Any] = {}
        for name, value in (("Realm", realm), ("ServiceName", service_name),
                            ("ExchangeAutodiscoverUrl", exchange_autodiscover_url)):
            if value is not None:
                parameters[name] = value
        if parameters:
            self._invoke("Set-CsOAuthConfiguration", parameters)

    # -- partner applications -----------------------------------------------------------------
    def partner_applications(self) -> list[PartnerApplication]:
        return [_partner(r) for r in self._run("Get-CsPartnerApplication")]

    def partner_application(self, identity: str) -> PartnerApplication | None:
        """The application called ``identity``; None when there is none (the cmdlet writes nothing)."""
        return next((_partner(r) for r in self._run("Get-CsPartnerApplication", Identity=identity)), None)

    def new_partner_application(self, identity: str, metadata_url: str, *, trust_level: str = "Full") -> None:
        """New-CsPartnerApplication from the partner's metadata (the pool downloads it now)."""
        self._invoke("New-CsPartnerApplication", {"Identity": identity, "MetadataUrl": metadata_url,
                                                  "ApplicationTrustLevel": trust_level})

    def new_oauth_partner_application(self, identity: str, application_identifier: str, *,
                                      trust_level: str = "Full") -> None:
        """New-CsPartnerApplication -UseOAuthServer: the application's tokens come from the pool's
        OAuth server (Exchange Online through the tenant), so no metadata is read."""
        self._invoke("New-CsPartnerApplication", {"Identity": identity, "ApplicationIdentifier": application_identifier,
                                                  "ApplicationTrustLevel": trust_level, "UseOAuthServer": True})

    def set_partner_application(self, identity: str, *, metadata_url: str | None = None,
                                trust_level: str | None = None, enabled: bool | None = None) -> None:
        """Set-CsPartnerApplication; with ``metadata_url`` the pool reads the metadata again."""
        parameters: dict[str, Any] = {"Identity": identity}
        if metadata_url is not None:
            parameters["MetadataUrl"] = metadata_url
        if trust_level is not None:
            parameters["ApplicationTrustLevel"] = trust_level
        if enabled is not None:
            parameters["Enabled"] = enabled
        self._invoke("Set-CsPartnerApplication", parameters)

    def remove_partner_application(self, identity: str) -> None:
        self._invoke("Remove-CsPartnerApplication", {"Identity": identity})

    # -- OAuth servers ------------------------------------------------------------------------
    def oauth_servers(self) -> list[OAuthServer]:
        return [OAuthServer(as_text(r.get("Identity")), as_text(r.get("MetadataUrl")), as_text(r.get("Realm")))
                for r in self._run("Get-CsOAuthServer")]

    def new_oauth_server(self, identity: str, metadata_url: str) -> None:
        self._invoke("New-CsOAuthServer", {"Identity": identity, "MetadataUrl": metadata_url})

    def remove_oauth_server(self, identity: str) -> None:
        self._invoke("Remove-CsOAuthServer", {"Identity": identity})

    # -- proof --------------------------------------------------------------------------------
    def test_exchange_storage(self, sip_uri: str) -> StorageTest:
        """Test-CsExStorageConnectivity for ``sip_uri``: the Storage Service writes an item to the
        user's mailbox through Exchange Web Services with the pool's OAuth token, then deletes it."""
        try:
            result = self._invoke("Test-CsExStorageConnectivity", {"SipUri": sip_uri, "DeleteItem": None})
        except RemoteError as exc:  # the test's own failure: what it said is the finding
            return StorageTest(False, exc.reason or exc.message)
        rows = list(result.output)
        detail = as_text(rows[-1].get("Detail")) if rows and hasattr(rows[-1], "get") else as_text(rows[-1] if rows else "")
        return StorageTest(True, detail)
