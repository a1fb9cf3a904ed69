"""The Exchange server as a product of the estate: ``exchange``.

Its remote PowerShell is Exchange's own: the ``Microsoft.Exchange`` session configuration at
``/PowerShell``, commands with parameters only (no script text, no templates). The listener
accepts Negotiate (NTLM) — Exchange's PowerShell virtual directory takes Kerberos, which the lab
speaks as Negotiate — and Basic only when the estate is asked for it; the inventory reaches it
with NTLM. The server also serves its auth metadata and EWS over HTTPS (:mod:`.web`), and what
it downloads or calls (partners' metadata, Test-OAuthConnectivity) goes out through the lab's
names and obeys the host's ``no-outbound`` fault.
"""

from __future__ import annotations

from typing import Any

from ..http import LabServer
from ..product import LAB_USER, Host
from ..winrm.configurations import commands_only
from ..winrm.endpoint import WinRMEndpoint
from . import texts as T
from .server import ExchangeServer

__all__ = ["EXCHANGE", "ExchangeProduct"]

STATE_FILE = "exchange.json"
LISTENER_AUTH = ("negotiate",)
INVENTORY_AUTH = "ntlm"


class ExchangeProduct:
    """One host, ``exchange``, over ``state/exchange.json``."""

    section = "servers"
    hosts = ("exchange",)

    def open(self, host: Host) -> ExchangeServer:
        return ExchangeServer.open(host.state_dir / STATE_FILE, ca_bundle=host.ca_bundle)

    def mount(self, component: ExchangeServer, server: LabServer, host: Host) -> None:
        WinRMEndpoint(server_name=host.name, commands=component.commands, accounts={LAB_USER: host.password()},
                      auth=host.listener_auth(LISTENER_AUTH), path=T.POWERSHELL_PATH,
                      configurations=(commands_only(T.SESSION_CONFIGURATION),)).mount(server)
        component.mount_web(server)
        component.reach_out_through(server, host.resolve)

    def reset_offline(self, host: Host) -> None:
        if (host.state_dir / STATE_FILE).exists():
            self.open(host).reset()

    def inventory_entry(self, component: ExchangeServer, url: str, host: Host) -> dict[str, Any]:
        return host.server_entry("exchange", winrm=f"{url}{T.POWERSHELL_PATH}", auth=INVENTORY_AUTH,
                                 configuration=T.SESSION_CONFIGURATION, web_url=url)

    def secret_files(self, component: ExchangeServer) -> dict[str, str]:
        return {}  # the WinRM password file is the estate's (Host.password)


EXCHANGE = ExchangeProduct()
