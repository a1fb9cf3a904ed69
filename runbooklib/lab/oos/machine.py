"""What one simulated Office Online Server does, independent of how it was asked.

:class:`OosMachine` is one farm member over the farm's shared :class:`~.state.OosStore`: its
certificate stores, key files and their ACLs, IIS, and the farm settings it shares with the
other members. The cmdlets (:mod:`.cmdlets`) and script templates (:mod:`.templates`) both
call it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..winrm.api import PSObj
from . import texts as T
from .state import OosStore, utc_text

__all__ = ["OosMachine", "certificate_row", "custom", "key_file", "thumbprint"]


def thumbprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - Windows' thumbprint is SHA-1


def custom(properties: dict[str, Any]) -> PSObj:
    """A ``[pscustomobject]@{…}`` a template writes."""
    return PSObj(list(T.T_PSCUSTOMOBJECT), properties, None)


def _dotnet_name(name: x509.Name) -> str:
    return ", ".join(reversed([rdn.rfc4514_string() for rdn in name.rdns]))


def key_file(entry: dict[str, Any]) -> str:
    """Where the certificate's private key lives: the CNG or the legacy CSP machine key folder."""
    key = entry["key"]
    return f"{T.KEY_FOLDERS[key['provider']]}\\{key['unique_name']}"


def certificate_row(entry: dict[str, Any]) -> PSObj:
    """What the get-certificates template projects on the server (FriendlyName and the key's
    facts do not survive remoting on a certificate object, so they are read there)."""
    cert = x509.load_pem_x509_certificate(entry["cert_pem"].encode())
    key = entry.get("key")
    return custom({
        "Thumbprint": entry["thumbprint"],
        "Subject": _dotnet_name(cert.subject),
        "Issuer": _dotnet_name(cert.issuer),
        "FriendlyName": entry["friendly_name"],
        "NotBefore": cert.not_valid_before_utc,
        "NotAfter": cert.not_valid_after_utc,
        "HasPrivateKey": key is not None,
        "KeySize": cert.public_key().key_size,
        "KeyProvider": {"cng": "CNG", "csp": "CSP"}[key["provider"]] if key else None,
        "KeyFile": key_file(entry) if key else None,
        "NetworkServiceCanRead": bool(key) and T.NETWORK_SERVICE in key["acl"],
    })


class OosMachine:
    """One member of the simulated farm (``host``) over the farm's state file."""

    def __init__(self, store: OosStore, host: str) -> None:
        self.store = store
        self.host = host

    # --- reads (inside store.view()/change()) -------------------------------------------------
    def machine(self, state: dict[str, Any]) -> dict[str, Any]:
        return state["machines"][self.host]

    def find(self, state: dict[str, Any], store: str, thumb: str) -> dict[str, Any] | None:
        wanted = thumb.replace(" ", "").upper()
        return next((c for c in self.machine(state)["stores"][store] if c["thumbprint"] == wanted), None)

    # --- changes -------------------------------------------------------------------------------
    def add_certificate(self, store: str, cert: x509.Certificate, key: rsa.RSAPrivateKey | None, *,
                        friendly_name: str = "", exportable: bool = False) -> dict[str, Any]:
        """Put a certificate (and its key) in ``LocalMachine\\<store>``; an import of one already
        there keeps the entry and takes the new friendly name, as the certificate store does."""
        thumb = thumbprint(cert)
        with self.store.change() as state:
            machine = self.machine(state)
            entry = self.find(state, store, thumb)
            if entry is None:
                entry = {"thumbprint": thumb, "friendly_name": friendly_name,
                         "cert_pem": cert.public_bytes(serialization.Encoding.PEM).decode(), "key": None}
                machine["stores"][store].append(entry)
            elif friendly_name:
                entry["friendly_name"] = friendly_name
            if key is not None and entry["key"] is None:
                entry["key"] = {
                    "pem": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()).decode(),
                    "provider": machine["key_provider"],
                    # [U] the shape of a key container's file name
                    "unique_name": hashlib.sha1(f"{self.host}:{thumb}".encode()).hexdigest()  # noqa: S324
                    + "_" + machine["computer"].lower(),
                    "acl": list(T.DEFAULT_KEY_ACL),
                    "exportable": exportable,
                }
            return dict(entry)

    def grant_key_read(self, thumb: str, account: str) -> tuple[dict[str, Any], bool]:
        with self.store.change() as state:
            entry = self.find(state, "My", thumb)
            if entry is None or entry["key"] is None:
                raise LookupError(thumb)
            if account in entry["key"]["acl"]:
                return dict(entry), False
            entry["key"]["acl"].append(account)
            return dict(entry), True

    def set_farm(self, settings: dict[str, Any]) -> list[str]:
        """Change farm settings (pushed to every member); returns the names that changed."""
        with self.store.change() as state:
            farm = state["farm"]
            changed = [name for name, value in settings.items() if farm.get(name) != value]
            for name in changed:
                farm[name] = settings[name]
            if changed:
                farm["settings_written"] = utc_text(dt.datetime.now(dt.timezone.utc))
            return changed

    def iisreset(self) -> str:
        with self.store.change() as state:
            started = utc_text(dt.datetime.now(dt.timezone.utc) + dt.timedelta(microseconds=1))
            self.machine(state)["iis_started"] = started
            return started

