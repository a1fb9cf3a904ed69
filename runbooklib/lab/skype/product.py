"""The Skype for Business pool as a product of the estate: front ends ``skype-fe1`` and ``skype-fe2``.

Each front end is its own host with its own WinRM endpoint and web endpoints (the pool's
``/metadata/json/1`` and the inbound token check); both open the pool's one state file,
``state/skype.json``. The WinRM listeners are those of the estate's other Windows hosts:
Negotiate (NTLM) and CredSSP, Basic only when the estate is asked for it; the inventory reaches
the front ends with NTLM (the cmdlets work on the server itself and need no second hop).
"""

from __future__ import annotations

from typing import Any

from ..http import LabServer
from ..product import LAB_USER, Host
from ..winrm.endpoint import WinRMEndpoint
from .server import SkypeFrontEnd

__all__ = ["SKYPE", "SkypeProduct"]

STATE_FILE = "skype.json"
LISTENER_AUTH = ("negotiate", "credssp")
INVENTORY_AUTH = "ntlm"


class SkypeProduct:
    """Each host is a front end answering WinRM and its web endpoints; the pool's state is shared."""

    section = "servers"
    hosts = ("skype-fe1", "skype-fe2")

    def open(self, host: Host) -> SkypeFrontEnd:
        return SkypeFrontEnd.open(host.state_dir / STATE_FILE, host.name, ca_bundle=host.ca_bundle)

    def mount(self, component: SkypeFrontEnd, server: LabServer, host: Host) -> None:
        auth = LISTENER_AUTH + (("basic",) if host.basic_auth else ())
        WinRMEndpoint(server_name=host.name, commands=component.commands,
                      accounts={LAB_USER: host.password()}, auth=auth).mount(server)
        component.mount_web(server)

    def reset_offline(self, host: Host) -> None:
        if (host.state_dir / STATE_FILE).exists():
            self.open(host).reset()

    def inventory_entry(self, component: SkypeFrontEnd, url: str, host: Host) -> dict[str, Any]:
        return {
            "role": "skype",
            "winrm": f"{url}/wsman",
            "auth": INVENTORY_AUTH,
            "username": LAB_USER,
            "password": host.password_ref,
            "ca_bundle": "ca.pem",
            "web_url": url,
        }

    def secret_files(self, component: SkypeFrontEnd) -> dict[str, str]:
        return {}  # the WinRM password file is the estate's (Host.password)


SKYPE = SkypeProduct()
