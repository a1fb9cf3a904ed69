"""A simulated Office Online Server farm member over the farm's state file.

::

    server = OosServer.open(lab_dir / "state" / "oos.json", "oos-1")
    WinRMEndpoint(server_name="oos-1", commands=server.commands, accounts=…).mount(http_server)
    token = server.s2s_token(site_url="https://sharepoint.contoso.lab", realm=farm.realm)

Each member has its own WinRM endpoint and command table (the ``OfficeWebApps`` module, the
certificate and IIS templates); the farm's settings are shared through the one state file.
:meth:`OosServer.s2s_token` signs an S2S token as Office Online Server would, with the
certificate its farm names in S2SCertificateName — and only when this server could: the
certificate is in its Personal store with its key, and NETWORK SERVICE may read that key.
"""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ..s2s.oracle import certificate_x5t
from ..windows import register_computer_domain
from ..winrm.api import CommandTable
from . import texts as T
from .cmdlets import register_cmdlets
from .machine import OosMachine
from .state import OosFarmDefinition, OosStore
from .templates import register_templates

__all__ = ["OosServer", "S2SUnavailable"]

log = logging.getLogger(__name__)


class S2SUnavailable(Exception):
    """This server cannot sign an S2S token now; the message says why, as its logs would."""


class OosServer:
    """One member of the simulated Office Online Server farm."""

    def __init__(self, store: OosStore, host: str) -> None:
        self._machine = OosMachine(store, host)
        self.host = host
        self.commands = CommandTable()
        register_cmdlets(self.commands, self._machine)
        register_templates(self.commands, self._machine)
        register_computer_domain(self.commands, self._computer_domain)

    @classmethod
    def open(cls, state_path: Path, host: str, definition: OosFarmDefinition | None = None) -> "OosServer":
        """Member ``host`` of the farm kept at ``state_path`` (created from ``definition`` or the preset)."""
        store = OosStore.open(Path(state_path), definition or OosFarmDefinition.preset())
        with store.view() as state:
            if host not in state["machines"]:
                raise KeyError(f"the Office Online Server farm at {state_path} has no member {host!r}")
        return cls(store, host)

    def _computer_domain(self) -> tuple[str, str, str]:
        with self._machine.store.view() as state:
            me = self._machine.machine(state)
            return me["computer"], me["domain"], me["forest"]

    # --- state -------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """A copy of the farm's current state (settings and every member)."""
        with self._machine.store.view() as state:
            return copy.deepcopy(state)

    def reset(self) -> None:
        """Restore the farm as it was first created."""
        self._machine.store.reset()
        log.info("Office Online Server farm reset (by %s)", self.host)

    def join_forest(self, forest: str, *, domain: str | None = None) -> None:
        """Lab control: move this server to another Active Directory forest."""
        with self._machine.store.change() as state:
            me = self._machine.machine(state)
            me["forest"], me["domain"] = forest, domain or forest

    # --- S2S ---------------------------------------------------------------------------------
    def s2s_token(self, *, site_url: str, realm: str, issuer: str = T.SHAREPOINT_ISSUER,
                  lifetime: int = T.TOKEN_LIFETIME, now: float | None = None) -> str:
        """The app-only S2S token this server sends to SharePoint at ``site_url`` (its public URL)
        in the farm's ``realm``, signed with the farm's S2S certificate.

        Raises :class:`S2SUnavailable` when no S2S certificate is set, it is not in this server's
        Personal store with its private key, or NETWORK SERVICE may not read the key.
        """
        with self._machine.store.view() as state:
            name = state["farm"]["S2SCertificateName"]
            candidates = [c for c in self._machine.machine(state)["stores"]["My"] if c["friendly_name"] == name]
        if not name:
            raise S2SUnavailable(f"{self.host}: the farm has no S2SCertificateName")
        if len(candidates) != 1:
            raise S2SUnavailable(f"{self.host}: {len(candidates)} certificates in LocalMachine\\My are named "
                                 f"'{name}'; exactly one must be")
        entry = candidates[0]
        if entry["key"] is None:
            raise S2SUnavailable(f"{self.host}: the S2S certificate '{name}' has no private key here")
        if T.NETWORK_SERVICE not in entry["key"]["acl"]:
            raise S2SUnavailable(f"{self.host}: NETWORK SERVICE may not read the private key of '{name}'")
        key = serialization.load_pem_private_key(entry["key"]["pem"].encode(), password=None)
        cert = x509.load_pem_x509_certificate(entry["cert_pem"].encode())
        public = urlsplit(site_url)
        host = (public.hostname or "").lower()
        if public.port and public.port != {"https": 443, "http": 80}.get(public.scheme):
            host = f"{host}:{public.port}"
        issued = int(time.time() if now is None else now)
        claims = {"aud": f"{T.SHAREPOINT_PRINCIPAL_ID}/{host}@{realm.lower()}", "iss": issuer, "nameid": issuer,
                  "nbf": issued, "exp": issued + lifetime}
        return jwt.encode(claims, key, algorithm="RS256",  # type: ignore[arg-type]
                          headers={"typ": "JWT", "x5t": certificate_x5t(cert)})
