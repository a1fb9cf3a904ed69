"""What a lab product is to the estate: the contract every product package fulfils.

A product (the SharePoint farms, the Microsoft 365 tenant; next Office Online Server, Skype for
Business and Exchange) names its hosts and, for each, opens its state, mounts its routes on the
host's HTTPS server, resets its state while the estate is down, and writes its inventory entry.
The estate does nothing product-specific: it walks :data:`runbooklib.lab.registry.PRODUCTS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from .http import LabServer

__all__ = ["LAB_USER", "Host", "Product", "ProductComponent"]

# The Windows account every lab server's WinRM endpoint accepts (its password: secrets/<host>).
LAB_USER = "LAB\\spadmin"


@dataclass(frozen=True)
class Host:
    """One host of a product, as the estate gives it to the product.

    ``state_dir`` is the estate's ``state/`` directory; ``password()`` is the host's WinRM
    password (made on first use and kept in ``secrets/<name>``); ``basic_auth``: the lab was
    asked to enable Basic on the host's WinRM listener too (real servers leave it off);
    ``resolve(name)`` is where the lab serves a public name (``sharepoint.contoso.lab`` →
    ``https://127.0.0.1:PORT``), or None: what DNS is to a server that calls another by name.
    """

    name: str
    state_dir: Path
    ca_bundle: Path
    password: Callable[[], str]
    basic_auth: bool = False
    resolve: Callable[[str], str | None] = field(default=lambda name: None, compare=False, repr=False)

    @property
    def password_ref(self) -> str:
        """How the inventory names the host's password file."""
        return f"file:secrets/{self.name}"

    def listener_auth(self, schemes: tuple[str, ...]) -> tuple[str, ...]:
        """What the host's WinRM listener accepts: the product's ``schemes``, and Basic when asked."""
        return schemes + (("basic",) if self.basic_auth else ())

    def server_entry(self, role: str, *, winrm: str, auth: str, **more: str) -> dict[str, Any]:
        """The host's inventory entry as a server reached over WinRM as :data:`LAB_USER`."""
        return {"role": role, "winrm": winrm, "auth": auth, "username": LAB_USER,
                "password": self.password_ref, "ca_bundle": "ca.pem", **more}


class ProductComponent(Protocol):
    """A running product host: its state can be put back as first created."""

    def reset(self) -> None: ...


class Product(Protocol):
    """A product of the lab estate (see the module docstring)."""

    #: the inventory section the hosts are listed in: ``servers`` or ``tenants``
    section: str
    #: the lab's hosts of this product, in start and inventory order
    hosts: tuple[str, ...]

    def open(self, host: Host) -> ProductComponent:
        """The host's component over its persisted state (created on first use)."""
        ...

    def mount(self, component: Any, server: LabServer, host: Host) -> None:
        """Serve the host's protocols (WinRM, web endpoints) on ``server``."""
        ...

    def reset_offline(self, host: Host) -> None:
        """Restore the host's initial state from its state files, if it has any (estate down)."""
        ...

    def inventory_entry(self, component: Any, url: str, host: Host) -> dict[str, Any]:
        """The host's mapping in the inventory (``url``: where its server listens)."""
        ...

    def secret_files(self, component: Any) -> dict[str, str]:
        """Files (path relative to the inventory → content) the inventory refers to."""
        ...
