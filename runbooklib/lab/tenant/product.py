"""The Microsoft 365 tenant as a product of the estate: ``contoso``."""

from __future__ import annotations

from typing import Any

from ..http import LabServer
from ..product import Host
from .tenant import Tenant

__all__ = ["TENANT", "TenantProduct"]


class TenantProduct:
    """The tenant over ``state/tenant/``, serving Entra ID, ACS, Graph and SharePoint Online."""

    section = "tenants"
    hosts = ("contoso",)

    @staticmethod
    def _state_dir(host: Host):
        return host.state_dir / "tenant"

    def open(self, host: Host) -> Tenant:
        return Tenant.open(self._state_dir(host), name=host.name)

    def mount(self, component: Tenant, server: LabServer, host: Host) -> None:
        component.mount(server)

    def reset_offline(self, host: Host) -> None:
        if self._state_dir(host).exists():
            self.open(host).reset()

    def inventory_entry(self, component: Tenant, url: str, host: Host) -> dict[str, Any]:
        return component.inventory_entry(url, "ca.pem")

    def secret_files(self, component: Tenant) -> dict[str, str]:
        return component.secret_files()


TENANT = TenantProduct()
