"""A simulated Exchange server over its organization's state file.

::

    server = ExchangeServer.open(lab_dir / "state" / "exchange.json", ca_bundle=lab_dir / "ca.pem")
    WinRMEndpoint(server_name="exchange", commands=server.commands, accounts=…, path="/PowerShell",
                  configurations=(commands_only("Microsoft.Exchange"),)).mount(http_server)
    server.mount_web(http_server)     # /autodiscover/metadata/json/1, /ews/exchange.asmx

``s2s_token`` mints what Exchange sends a partner (signed with its current Auth certificate);
``judge`` is what EWS believes of a token a partner sends (see the package docstring).
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any, Callable

from ..http import LabServer
from ..pki import KeyPair
from ..s2s import oracle
from ..windows import register_computer_domain
from ..winrm.api import CommandTable
from . import texts as T
from .cmdlets import register_cmdlets
from .organization import Organization
from .state import ExchangeDefinition, ExchangeStore
from .web import ExchangeWeb

__all__ = ["ExchangeServer"]

log = logging.getLogger(__name__)


class ExchangeServer:
    """The lab's Exchange server ``exchange`` (Mailbox role) and its organization."""

    def __init__(self, store: ExchangeStore, *, ca_bundle: Path | None, metadata_timeout: float = 10.0) -> None:
        self._org = Organization(store, ca_bundle=ca_bundle, metadata_timeout=metadata_timeout)
        self.commands = CommandTable()
        register_cmdlets(self.commands, self._org)
        register_computer_domain(self.commands, self._computer_domain)

    @classmethod
    def open(cls, state_path: Path, definition: ExchangeDefinition | None = None, *,
             ca_bundle: Path | None = None, metadata_timeout: float = 10.0) -> "ExchangeServer":
        """The server kept at ``state_path`` (created from ``definition`` or the lab's preset)."""
        store = ExchangeStore.open(Path(state_path), definition or ExchangeDefinition())
        return cls(store, ca_bundle=Path(ca_bundle) if ca_bundle else None, metadata_timeout=metadata_timeout)

    def _computer_domain(self) -> tuple[str, str, str]:
        with self._org.store.view() as state:
            return state["computer"], state["domain"], state["domain"]

    # --- identity ----------------------------------------------------------------------------
    @property
    def issuer(self) -> str:
        """``00000002-0000-0ff1-ce00-000000000000@<realm>``: who Exchange's tokens say they are from."""
        with self._org.store.view() as state:
            return self._org.issuer(state)

    @property
    def realm(self) -> str:
        with self._org.store.view() as state:
            return self._org.realm(state)

    def public_names(self) -> set[str]:
        """The names Exchange answers for (``mail.contoso.lab``, ``autodiscover.contoso.lab``)."""
        with self._org.store.view() as state:
            return {n.lower() for n in state["public_names"]}

    def auth_key_pair(self) -> KeyPair:
        """The current Auth certificate and its key (lab only: tests mint as Exchange would)."""
        return self._org.auth_key_pair()

    def metadata_document(self, location: str = f"https://autodiscover.contoso.lab{T.METADATA_PATH}") -> dict[str, Any]:
        return self._org.metadata_document(location)

    # --- S2S ---------------------------------------------------------------------------------
    def s2s_token(self, *, audience: str, user_sid: str | None = None, lifetime: int = T.TOKEN_LIFETIME,
                  now: float | None = None) -> str:
        """The token Exchange sends to ``audience`` (``<principal>/<host>@<realm>``); app-only
        without ``user_sid``, for that user with it."""
        return self._org.s2s_token(audience=audience, user_sid=user_sid, lifetime=lifetime, now=now)

    def judge(self, token: str, *, host: str | None = None) -> oracle.Accepted:
        """What EWS believes of ``token``, or :class:`~runbooklib.lab.s2s.oracle.Rejected`."""
        return self._org.judge(token, host=host)

    # --- state -------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        with self._org.store.view() as state:
            return copy.deepcopy(state)

    def reset(self) -> None:
        self._org.store.reset()
        log.info("Exchange organization reset")

    # --- wiring ------------------------------------------------------------------------------
    def mount_web(self, server: LabServer) -> None:
        ExchangeWeb(self._org, server.name).mount(server)

    def reach_out_through(self, server: LabServer, resolve: Callable[[str], str | None]) -> None:
        """Download and call from ``server``'s network: its standing ``no-outbound`` fault leaves
        Exchange unable to connect; ``resolve`` maps a public name to where the lab serves it."""
        self._org.outbound_blocked = lambda: server.faults.holds("no-outbound")
        self._org.resolve = resolve
