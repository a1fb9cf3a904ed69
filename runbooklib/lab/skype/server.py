"""A simulated Skype for Business front end over the pool's state file.

::

    fe = SkypeFrontEnd.open(lab_dir / "state" / "skype.json", "skype-fe1", ca_bundle=lab_dir / "ca.pem")
    WinRMEndpoint(server_name="skype-fe1", commands=fe.commands, accounts=…).mount(http_server)
    fe.mount_web(http_server)

Each front end has its own WinRM endpoint and command table (the ``SkypeForBusiness`` module and
the certificate template) and its own certificate store; the pool's replicated settings —
OAuth configuration, OAuthTokenIssuer, partner applications — are shared through the one state file.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from ..http import LabServer
from ..pki import KeyPair
from ..windows import register_computer_domain
from ..winrm.api import CommandTable
from .cmdlets import register_cmdlets
from .frontend import FrontEnd
from .state import PoolDefinition, SkypeStore, certificate_entry
from .templates import register_templates
from .web import FrontEndWeb

__all__ = ["SkypeFrontEnd"]

log = logging.getLogger(__name__)


class SkypeFrontEnd:
    """One front end of the simulated pool: its command table, web routes and lab controls."""

    def __init__(self, store: SkypeStore, host: str, *, ca_bundle: Path | None) -> None:
        self.frontend = FrontEnd(store, host, ca_bundle=ca_bundle)
        self.host = host
        self.commands = CommandTable()
        register_cmdlets(self.commands, self.frontend)
        register_templates(self.commands, self.frontend)
        register_computer_domain(self.commands, self._computer_domain)

    @classmethod
    def open(cls, state_path: Path, host: str, *, ca_bundle: Path | None = None,
             definition: PoolDefinition | None = None) -> "SkypeFrontEnd":
        """Front end ``host`` of the pool kept at ``state_path`` (created from ``definition`` or the preset)."""
        store = SkypeStore.open(Path(state_path), definition or PoolDefinition.preset())
        with store.view() as state:
            if host not in state["machines"]:
                raise KeyError(f"the Skype for Business pool at {state_path} has no front end {host!r}")
        return cls(store, host, ca_bundle=ca_bundle)

    def _computer_domain(self) -> tuple[str, str, str]:
        with self.frontend.store.view() as state:
            fqdn = self.frontend.machine(state)["fqdn"]
        computer, _, domain = fqdn.partition(".")
        return computer.upper(), domain, domain

    # --- serving -------------------------------------------------------------------------------
    def mount_web(self, server: LabServer) -> None:
        FrontEndWeb(self.frontend).mount(server)
        self.frontend.outbound_blocked = lambda: server.faults.holds("no-outbound")

    # --- state ---------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """A copy of the pool's current state."""
        with self.frontend.store.view() as state:
            return copy.deepcopy(state)

    def reset(self) -> None:
        self.frontend.store.reset()
        log.info("Skype for Business pool reset (by %s)", self.host)

    @property
    def realm(self) -> str:
        with self.frontend.store.view() as state:
            return self.frontend.realm(state)

    @property
    def pool_fqdn(self) -> str:
        with self.frontend.store.view() as state:
            return state["pool"]["fqdn"]

    # --- lab controls (tests) ------------------------------------------------------------------
    def install_certificate(self, pair: KeyPair, *, friendly_name: str = "", assign: tuple[str, ...] = ()) -> str:
        """Put a certificate with its key in this front end's Personal store (and assign it to the
        local uses ``assign``); its thumbprint. An entry with the same friendly name is replaced."""
        assert isinstance(pair.key, rsa.RSAPrivateKey)
        entry = certificate_entry(pair, friendly_name)
        with self.frontend.store.change() as state:
            me = self.frontend.machine(state)
            me["store"] = [c for c in me["store"] if not (friendly_name and c["friendly_name"] == friendly_name)
                           and c["thumbprint"] != entry["thumbprint"]] + [entry]
            for use in assign:
                me["assigned"][use] = entry["thumbprint"]
        return entry["thumbprint"]

    def s2s_token(self, *, principal: str, host: str, realm: str, user_smtp: str | None = None) -> str:
        """The token this front end signs for ``principal`` at ``host`` in ``realm`` (see :meth:`FrontEnd.s2s_token`)."""
        return self.frontend.s2s_token(principal=principal, host=host, realm=realm, user_smtp=user_smtp)
