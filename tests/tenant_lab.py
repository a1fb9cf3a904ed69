"""A lab tenant on a loopback HTTPS server, with an inventory written the way the estate writes it.

Import the ``tenant_lab`` fixture into a test module (``from tenant_lab import tenant_lab``);
each module gets its own tenant; tests reset it with ``tenant_lab.tenant.reset()``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from runbooklib.lab.http import LabServer
from runbooklib.lab.pki import LabCA
from runbooklib.lab.tenant import Tenant


@dataclass
class TenantLab:
    base: Path
    ca: LabCA
    tenant: Tenant
    server: LabServer

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def ca_bundle(self) -> Path:
        return self.base / "inventory" / "ca.pem"

    def write_inventory(self, name: str = "inventory.yaml", credential: dict | None = None) -> Path:
        """An inventory with the tenant as ``contoso``; ``credential`` replaces the default one."""
        folder = self.base / "inventory"
        entry = self.tenant.inventory_entry(self.url, "ca.pem")
        if credential is not None:
            entry["credential"] = credential
        path = folder / name
        path.write_text(yaml.safe_dump({"servers": {}, "tenants": {self.tenant.name: entry}}))
        return path

    def spec(self, credential: dict | None = None, name: str = "inventory.yaml"):
        from runbooklib.inventory import load_inventory

        return load_inventory(self.write_inventory(name, credential)).tenant(self.tenant.name)

    def graph(self, credential: dict | None = None, **options):
        from runbooklib.graph import GraphClient

        options.setdefault("lock_dir", self.base / "locks")
        return GraphClient(self.spec(credential, name=f"inv-{id(credential)}.yaml"), **options)


def start_tenant_lab(base: Path) -> TenantLab:
    ca = LabCA.open(base / "ca")
    tenant = Tenant.open(base / "tenant")
    server = LabServer("contoso", ca.issue_server_certificate(["127.0.0.1", "localhost"]), cert_dir=base / "tls")
    tenant.mount(server)
    server.start()
    folder = base / "inventory"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(ca.bundle_path, folder / "ca.pem")
    for rel, content in tenant.secret_files().items():
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    reader = tenant.reader_app
    (folder / "secrets" / "reader").write_text(reader.secret)
    return TenantLab(base, ca, tenant, server)


@pytest.fixture(scope="module")
def tenant_lab(tmp_path_factory: pytest.TempPathFactory):
    lab = start_tenant_lab(tmp_path_factory.mktemp("tenant"))
    yield lab
    lab.server.stop()


@pytest.fixture
def fresh(tenant_lab: TenantLab) -> TenantLab:
    """The module's tenant, reset to its initial state."""
    tenant_lab.tenant.reset()
    return tenant_lab
