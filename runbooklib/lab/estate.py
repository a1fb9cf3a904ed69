"""The simulated estate: every lab server on loopback, its inventory, its secrets, its state.

One lab directory (default ``.lab``) holds everything::

    ca.pem  ca-key.pem       the lab CA (clients verify lab servers with ca.pem)
    inventory.yaml           the inventory a runbook is run with
    secrets/<name>           secret files the inventory refers to (file:secrets/<name>)
    state/                   each server's persisted state (survives down/up; reset restores it)
    estate.json              ports, control token and pid of the running estate
    tls/                     the servers' TLS certificates

Servers keep their ports across restarts when they can, so an inventory stays valid.
"""

from __future__ import annotations

import json
import logging
import os
import secrets as _random
import socket
import string
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .http import CONTROL_HEADER, CONTROL_PATH, LabServer
from .pki import LabCA

__all__ = ["Estate", "LAB_USER", "SHAREPOINT_FARMS"]

log = logging.getLogger(__name__)

LAB_USER = "LAB\\spadmin"
SHAREPOINT_FARMS = ("sp-a", "sp-b")
TENANT = "contoso"
STATE_FILE = "estate.json"


def _password() -> str:
    alphabet = string.ascii_letters + string.digits
    return "Lab-" + "".join(_random.choice(alphabet) for _ in range(20))


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


@dataclass
class _Host:
    name: str
    server: LabServer
    component: Any


class Estate:
    """The lab's servers, started in this process (``runbook lab up`` runs one in the background)."""

    def __init__(self, directory: Path | str) -> None:
        self.dir = Path(directory).resolve()
        self.hosts: dict[str, _Host] = {}
        self._record: dict[str, Any] = {}

    # -- paths ------------------------------------------------------------------------------
    @property
    def inventory_path(self) -> Path:
        return self.dir / "inventory.yaml"

    @property
    def ca_bundle(self) -> Path:
        return self.dir / "ca.pem"

    @property
    def state_dir(self) -> Path:
        return self.dir / "state"

    def _load_record(self) -> dict[str, Any]:
        path = self.dir / STATE_FILE
        if path.exists():
            try:
                return json.loads(path.read_text())
            except ValueError:
                log.warning("%s is unreadable; starting with new ports", path)
        return {}

    def _save_record(self) -> None:
        _write_private(self.dir / STATE_FILE, json.dumps(self._record, indent=2))

    # -- components -------------------------------------------------------------------------
    def farm(self, name: str):
        """The SharePoint farm simulation named ``name``."""
        return self.hosts[name].component

    @property
    def tenant(self):
        return self.hosts[TENANT].component

    def server(self, name: str) -> LabServer:
        return self.hosts[name].server

    def password(self, server: str) -> str:
        return (self.dir / "secrets" / server).read_text().strip()

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> "Estate":
        from .sharepoint import SharePointFarm
        from .tenant import Tenant
        from .winrm.endpoint import WinRMEndpoint

        self.dir.mkdir(parents=True, exist_ok=True)
        ca = LabCA.open(self.dir)
        self._record = self._load_record()
        token = self._record.get("control_token") or _random.token_urlsafe(24)
        ports: dict[str, int] = dict(self._record.get("ports") or {})
        tls = ca.issue_server_certificate(["127.0.0.1", "localhost"])

        def new_server(name: str) -> LabServer:
            wanted = ports.get(name, 0)
            port = wanted if wanted and _port_free(wanted) else 0
            return LabServer(name, tls, port=port, control_token=token, cert_dir=self.dir / "tls")

        try:
            for name in SHAREPOINT_FARMS:
                password_file = self.dir / "secrets" / name
                if not password_file.exists():
                    _write_private(password_file, _password() + "\n")
                farm = SharePointFarm.open(self.state_dir / f"{name}.json", name=name, ca_bundle=self.ca_bundle)
                server = new_server(name)
                WinRMEndpoint(server_name=name, commands=farm.commands,
                              accounts={LAB_USER: self.password(name)}).mount(server)
                farm.mount_web(server)
                self.hosts[name] = _Host(name, server, farm)
            tenant = Tenant.open(self.state_dir / "tenant", name=TENANT)
            server = new_server(TENANT)
            tenant.mount(server)
            self.hosts[TENANT] = _Host(TENANT, server, tenant)
            for host in self.hosts.values():
                host.server.start()
        except BaseException:
            self.stop()
            raise
        self._record.update(
            control_token=token,
            ports={name: host.server.port for name, host in self.hosts.items()},
            pid=os.getpid(),
            started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )
        self._save_record()
        self.write_inventory()
        log.info("lab estate up in %s: %s", self.dir, self._record["ports"])
        return self

    def stop(self) -> None:
        for host in self.hosts.values():
            try:
                host.server.stop()
            except Exception:  # stopping must go on for the other servers
                log.exception("stopping %s", host.name)
        self.hosts.clear()
        record = self._load_record()
        if record.get("pid") == os.getpid():
            record.pop("pid", None)
            self._record = record
            self._save_record()

    def reset(self) -> None:
        """Restore every server's initial state (same ids, same certificates, same ports)."""
        for host in self.hosts.values():
            host.component.reset()
            host.server.faults.clear()

    def reset_offline(self) -> None:
        """Restore the initial state of a stopped estate's servers, from their state files."""
        from .sharepoint import SharePointFarm
        from .tenant import Tenant

        for name in SHAREPOINT_FARMS:
            path = self.state_dir / f"{name}.json"
            if path.exists():
                SharePointFarm.open(path, name=name, ca_bundle=self.ca_bundle).reset()
        if (self.state_dir / "tenant").exists():
            Tenant.open(self.state_dir / "tenant", name=TENANT).reset()

    def __enter__(self) -> "Estate":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- inventory --------------------------------------------------------------------------
    def inventory(self) -> dict[str, Any]:
        servers = {}
        for name in SHAREPOINT_FARMS:
            url = self.hosts[name].server.url
            servers[name] = {
                "role": "sharepoint",
                "winrm": f"{url}/wsman",
                "auth": "basic",
                "username": LAB_USER,
                "password": f"file:secrets/{name}",
                "ca_bundle": "ca.pem",
                "web_url": url,
            }
        tenant = self.hosts[TENANT]
        tenants = {TENANT: tenant.component.inventory_entry(tenant.server.url, "ca.pem")}
        return {"servers": servers, "tenants": tenants}

    def write_inventory(self) -> Path:
        for relative, content in self.tenant.secret_files().items():
            _write_private(self.dir / relative, content if content.endswith("\n") else content + "\n")
        header = (
            "# The lab estate's inventory, written by `runbook lab up`. Servers listen on loopback;\n"
            "# secrets are files next to this one, referenced with file:.\n"
        )
        self.inventory_path.write_text(header + yaml.safe_dump(self.inventory(), sort_keys=False))
        return self.inventory_path

    # -- faults over the wire (for an estate in another process) ---------------------------
    def control_token(self) -> str:
        return self._record.get("control_token") or self._load_record().get("control_token", "")


def inject_fault(lab_dir: Path, server: str, kind: str, count: int = 1, **options: Any) -> dict[str, Any]:
    """Ask a running estate (possibly in another process) to fail the next ``count`` requests to ``server``."""
    import ssl
    import urllib.request

    record = json.loads((Path(lab_dir) / STATE_FILE).read_text())
    port = record["ports"][server]
    body = json.dumps({"kind": kind, "count": count, **options}).encode()
    request = urllib.request.Request(
        f"https://127.0.0.1:{port}{CONTROL_PATH}", data=body, method="POST",
        headers={CONTROL_HEADER: record["control_token"], "Content-Type": "application/json"},
    )
    context = ssl.create_default_context(cafile=str(Path(lab_dir) / "ca.pem"))
    with urllib.request.urlopen(request, context=context, timeout=10) as response:
        return json.loads(response.read())
