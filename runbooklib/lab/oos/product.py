"""The Office Online Server farm as a product of the estate: ``oos-1`` and ``oos-2``.

Each member is its own host with its own WinRM endpoint; both open the farm's one state file,
``state/oos.json``. Its listeners accept Negotiate (NTLM) and CredSSP, Basic only when the estate
is asked for it; the inventory reaches the servers with NTLM, as administrators usually do: the
OfficeWebApps cmdlets work on the server itself and need no second hop.
"""

from __future__ import annotations

from typing import Any

from ..http import LabServer
from ..product import LAB_USER, Host
from ..winrm.endpoint import WinRMEndpoint
from .server import OosServer

__all__ = ["OOS", "OosProduct"]

STATE_FILE = "oos.json"
# The schemes an OOS server's WinRM listener accepts, and the one the inventory reaches it with.
LISTENER_AUTH = ("negotiate", "credssp")
INVENTORY_AUTH = "ntlm"


class OosProduct:
    """Each host is a farm member answering WinRM; the farm's state is shared."""

    section = "servers"
    hosts = ("oos-1", "oos-2")

    def open(self, host: Host) -> OosServer:
        return OosServer.open(host.state_dir / STATE_FILE, host.name)

    def mount(self, component: OosServer, server: LabServer, host: Host) -> None:
        WinRMEndpoint(server_name=host.name, commands=component.commands, accounts={LAB_USER: host.password()},
                      auth=host.listener_auth(LISTENER_AUTH)).mount(server)

    def reset_offline(self, host: Host) -> None:
        if (host.state_dir / STATE_FILE).exists():
            self.open(host).reset()

    def inventory_entry(self, component: OosServer, url: str, host: Host) -> dict[str, Any]:
        return host.server_entry("oos", winrm=f"{url}/wsman", auth=INVENTORY_AUTH)

    def secret_files(self, component: OosServer) -> dict[str, str]:
        return {}  # the WinRM password file is the estate's (Host.password)


OOS = OosProduct()
