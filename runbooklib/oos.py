"""An Office Online Server as the runbooks see it: typed reads and changes over remote PowerShell.

:class:`OosServer` is a :class:`~runbooklib.product.ProductClient`: before its first command on
a session it imports the ``OfficeWebApps`` module once (template ``oos/load-officewebapps``).
Farm settings are read and changed with the module's cmdlets; certificate stores, key ACLs and
IIS with the named templates in ``runbooklib/templates/oos``, which project on the server what
remoting would lose (a certificate's friendly name, whether it has a key, who may read the key).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from .errors import RemoteError
from .product import ProductClient, ShellLoader, as_bool, as_text
from .remote import SecureValue

__all__ = [
    "KeyGrant",
    "LOAD_TEMPLATE",
    "OOS_SHELL",
    "OosFarmSettings",
    "OosServer",
    "RestartState",
    "StoreCertificate",
]

LOAD_TEMPLATE = "oos/load-officewebapps"
OOS_SHELL = ShellLoader(
    template=LOAD_TEMPLATE,
    product="Office Online Server PowerShell",
    # How the load template's refusal starts (its throw text) on a server without OOS.
    refusal="Office Online Server is not installed on this server",
    fix=("Check that {server} is a server of the Office Online Server farm (Office Online Server installed "
         "and joined with New-OfficeWebAppsFarm or New-OfficeWebAppsMachine), and that the inventory names "
         "the right server."),
)

Store = Literal["My", "Root"]


@dataclass(frozen=True)
class StoreCertificate:
    """A certificate in one of the server's LocalMachine stores, with what only the server knows."""

    thumbprint: str
    subject: str
    issuer: str
    friendly_name: str
    not_after: str
    has_private_key: bool
    key_size: int
    key_provider: str | None
    key_file: str | None
    network_service_can_read: bool


@dataclass(frozen=True)
class OosFarmSettings:
    """The farm settings the S2S trust depends on (Get-OfficeWebAppsFarm)."""

    s2s_certificate_name: str
    allow_outbound_http: bool
    allow_http_secure_store_connections: bool
    internal_url: str
    machines: tuple[str, ...]


@dataclass(frozen=True)
class KeyGrant:
    """Where a certificate's private key lives and whether NETWORK SERVICE was given read now."""

    key_provider: str
    key_file: str
    changed: bool


@dataclass(frozen=True)
class RestartState:
    """Whether IIS on the server still runs with settings older than the farm's."""

    pending: bool
    settings_written: str
    iis_started: str


def _moment(value: Any) -> str:
    return value.isoformat() if isinstance(value, dt.datetime) else as_text(value)


class OosServer(ProductClient):
    """Typed operations on one Office Online Server through its remote session."""

    loader = OOS_SHELL

    # -- the farm -----------------------------------------------------------------------------
    def farm_settings(self) -> OosFarmSettings:
        found = self._run("Get-OfficeWebAppsFarm")
        if not found:
            raise RemoteError(f"{self.name}: Get-OfficeWebAppsFarm returned nothing",
                              hint=f"Check that {self.name} is a member of an Office Online Server farm.",
                              target=self.name, cmdlet="Get-OfficeWebAppsFarm")
        farm = found[0]
        machines = farm.get("Machines") or []
        return OosFarmSettings(
            s2s_certificate_name=as_text(farm.get("S2SCertificateName")),
            allow_outbound_http=as_bool(farm.get("AllowOutboundHttp")),
            allow_http_secure_store_connections=as_bool(farm.get("AllowHttpSecureStoreConnections")),
            internal_url=as_text(farm.get("InternalURL")),
            machines=tuple(as_text(m) for m in machines) if isinstance(machines, (list, tuple)) else (as_text(machines),),
        )

    def set_farm(self, *, s2s_certificate_name: str | None = None, allow_outbound_http: bool | None = None,
                 allow_http_secure_store_connections: bool | None = None) -> None:
        """Set-OfficeWebAppsFarm with only the given settings; ``-Force -Confirm:$false`` because a
        remote session cannot answer the cmdlet's prompt."""
        parameters: dict[str, Any] = {"Force": True, "Confirm": False}
        if s2s_certificate_name is not None:
            parameters["S2SCertificateName"] = s2s_certificate_name
        if allow_outbound_http is not None:
            parameters["AllowOutboundHttp"] = allow_outbound_http
        if allow_http_secure_store_connections is not None:
            parameters["AllowHttpSecureStoreConnections"] = allow_http_secure_store_connections
        self._invoke("Set-OfficeWebAppsFarm", parameters)

    def restart_state(self) -> RestartState:
        row = self._template("oos/get-restart-state")[-1]
        return RestartState(as_bool(row.get("RestartPending")), _moment(row.get("SettingsWrittenUtc")),
                            _moment(row.get("IisStartedUtc")))

    def restart_iis(self) -> list[str]:
        """iisreset; its output lines."""
        rows = self._template("oos/restart-iis")
        output = rows[-1].get("Output") if rows else None
        return [as_text(line) for line in (output or [])]

    # -- certificates -------------------------------------------------------------------------
    def certificates(self, store: Store = "My") -> list[StoreCertificate]:
        return [
            StoreCertificate(
                thumbprint=as_text(c.get("Thumbprint")).upper(),
                subject=as_text(c.get("Subject")),
                issuer=as_text(c.get("Issuer")),
                friendly_name=as_text(c.get("FriendlyName")),
                not_after=_moment(c.get("NotAfter")),
                has_private_key=as_bool(c.get("HasPrivateKey")),
                key_size=int(c.get("KeySize") or 0),
                key_provider=as_text(c.get("KeyProvider")) or None,
                key_file=as_text(c.get("KeyFile")) or None,
                network_service_can_read=as_bool(c.get("NetworkServiceCanRead")),
            )
            for c in self._template("oos/get-certificates", Store=store)
        ]

    def certificate(self, thumbprint: str, store: Store = "My") -> StoreCertificate | None:
        wanted = thumbprint.upper()
        return next((c for c in self.certificates(store) if c.thumbprint == wanted), None)

    def import_pfx(self, pfx: bytes, password: str, friendly_name: str) -> str:
        """Import a PFX into LocalMachine\\My under ``friendly_name``; its thumbprint. The password
        travels as a SecureString, encrypted with the session key."""
        rows = self._template("oos/import-pfx-certificate", PfxBytes=pfx, Password=SecureValue(password),
                              FriendlyName=friendly_name)
        return as_text(rows[-1].get("Thumbprint")).upper()

    def import_root(self, der: bytes) -> str:
        """Trust a (self-signed) certificate: its public part into LocalMachine\\Root."""
        rows = self._template("oos/import-root-certificate", CertificateRawData=der)
        return as_text(rows[-1].get("Thumbprint")).upper()

    def grant_network_service_key_read(self, thumbprint: str) -> KeyGrant:
        row = self._template("oos/grant-network-service-key-read", Thumbprint=thumbprint)[-1]
        return KeyGrant(as_text(row.get("KeyProvider")), as_text(row.get("KeyFile")), as_bool(row.get("Changed")))

    def export_certificate(self, thumbprint: str) -> bytes:
        """The certificate's public part as DER (a .cer; never the private key)."""
        row = self._template("oos/export-certificate", Thumbprint=thumbprint)[-1]
        raw = row.get("RawData")
        if not isinstance(raw, (bytes, bytearray)):
            raise RemoteError(f"{self.name}: the exported certificate {thumbprint} came back without its bytes",
                              hint="This is a runbook defect: report it with the record.", target=self.name)
        return bytes(raw)

    def export_pfx(self, thumbprint: str, password: str) -> bytes:
        """The certificate with its private key, protected by ``password`` (to copy it to a member)."""
        row = self._template("oos/export-pfx-certificate", Thumbprint=thumbprint, Password=SecureValue(password))[-1]
        raw = row.get("PfxBytes")
        if not isinstance(raw, (bytes, bytearray)):
            raise RemoteError(f"{self.name}: the exported PFX of {thumbprint} came back without its bytes",
                              hint="This is a runbook defect: report it with the record.", target=self.name)
        return bytes(raw)
