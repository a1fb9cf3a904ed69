"""The SharePoint farms as a product of the estate: ``sp-a`` (2019) and ``sp-b`` (SE).

Each farm's WinRM listener is HTTPS (the farm's server also serves its web endpoints over HTTPS,
one port per host) and accepts Negotiate (NTLM) and CredSSP, as a farm server prepared for remote
administration does (``Enable-WSManCredSSP -Role Server``); Basic only when the estate is asked
for it. The inventory reaches each farm with ``auth: credssp``: farm cmdlets need the user's
credentials on the farm for the second hop to SQL Server. NTLM stays enabled so a run with
``auth: ntlm`` shows the double hop (:mod:`.access`).
"""

from __future__ import annotations

from typing import Any

from ..http import LabServer
from ..product import LAB_USER, Host
from ..winrm.endpoint import WinRMEndpoint
from .farm import SharePointFarm

__all__ = ["FARM_LISTENER_AUTH", "INVENTORY_AUTH", "SHAREPOINT", "SharePointProduct"]

# The schemes a farm's WinRM listener accepts, and the one the inventory reaches it with.
FARM_LISTENER_AUTH = ("negotiate", "credssp")
INVENTORY_AUTH = "credssp"


class SharePointProduct:
    """Each host is a farm over ``state/<name>.json``, answering WinRM and its web endpoints."""

    section = "servers"
    hosts = ("sp-a", "sp-b")

    @staticmethod
    def _state_path(host: Host):
        return host.state_dir / f"{host.name}.json"

    def open(self, host: Host) -> SharePointFarm:
        return SharePointFarm.open(self._state_path(host), name=host.name, ca_bundle=host.ca_bundle)

    def mount(self, component: SharePointFarm, server: LabServer, host: Host) -> None:
        WinRMEndpoint(server_name=host.name, commands=component.commands, accounts={LAB_USER: host.password()},
                      auth=host.listener_auth(FARM_LISTENER_AUTH)).mount(server)
        component.mount_web(server)
        component.reach_out_through(server)

    def reset_offline(self, host: Host) -> None:
        if self._state_path(host).exists():
            self.open(host).reset()

    def inventory_entry(self, component: SharePointFarm, url: str, host: Host) -> dict[str, Any]:
        return host.server_entry("sharepoint", winrm=f"{url}/wsman", auth=INVENTORY_AUTH, web_url=url)

    def secret_files(self, component: SharePointFarm) -> dict[str, str]:
        return {}  # the WinRM password file is the estate's (Host.password)


SHAREPOINT = SharePointProduct()
