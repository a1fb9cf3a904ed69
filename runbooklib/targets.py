"""A run's targets: the parameters a scenario declares to name inventory servers or tenants.

A scenario's parameter model marks such fields where it declares them, one name or a list::

    class Parameters(BaseModel):
        farm: Annotated[str, Server("sharepoint")]
        front_ends: Annotated[list[str], Server("skype")]
        tenant: Annotated[str, Tenant()]
        display_name: str  # not a target, even when it reads like a server's name

:func:`run_targets` reads those marks from a validated model and looks every name up in the
inventory. What must know a run's targets asks it and nothing else: parameter validation, the
secrets resolved before anything is contacted, the run header, and the scrubbing of an archived
record. A value that equals a server's name but sits in an unmarked field is never a target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from .errors import InputError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from .inventory import Inventory, Role, ServerSpec, TenantSpec

__all__ = ["Server", "TargetSecret", "Targets", "Tenant", "declared_targets", "run_targets"]

# How an administrator calls a server of each role, in messages.
_ROLE_TITLES = {
    "sharepoint": "SharePoint farm",
    "oos": "Office Online Server farm",
    "skype": "Skype for Business pool",
    "exchange": "Exchange server",
}


@dataclass(frozen=True)
class Server:
    """Marks a parameter naming inventory server(s) that must have ``role``."""

    role: Role


@dataclass(frozen=True)
class Tenant:
    """Marks a parameter naming inventory tenant(s)."""


class TargetSecret(NamedTuple):
    """A secret reference a run needs, and where the inventory holds it (``servers.sp-a.password``)."""

    where: str
    reference: str


@dataclass(frozen=True)
class Targets:
    """The inventory servers and tenants one run may contact, each once, in declaration order."""

    servers: tuple[ServerSpec, ...] = ()
    tenants: tuple[TenantSpec, ...] = ()

    @classmethod
    def whole(cls, inventory: Inventory) -> Targets:
        """Every entry of ``inventory``: the targets of a notebook that declares none."""
        return cls(tuple(inventory.servers.values()), tuple(inventory.tenants.values()))

    def secrets(self) -> list[TargetSecret]:
        """The secret references of these targets (passwords, client secrets, PFX passwords)."""
        found = [TargetSecret(f"servers.{s.name}.password", s.password) for s in self.servers if s.password]
        for tenant in self.tenants:
            for attr in ("secret", "certificate_password"):
                reference = getattr(tenant.credential, attr)
                if reference:
                    found.append(TargetSecret(f"tenants.{tenant.name}.credential.{attr}", reference))
        return found

    def lines(self) -> list[str]:
        """One line per target, saying where and how it is reached (the run header shows them)."""
        return ([f"{s.name}: {s.role} at {s.winrm} ({s.auth} as {s.username})" for s in self.servers]
                + [f"{t.name}: tenant {t.tenant_id} ({t.domain}) via {t.graph_url}" for t in self.tenants])


def declared_targets(model: type[BaseModel]) -> dict[str, Server | Tenant]:
    """The fields of a parameter model that name targets, with their marks."""
    found: dict[str, Server | Tenant] = {}
    for name, info in model.model_fields.items():
        for mark in info.metadata:
            if isinstance(mark, (Server, Tenant)):
                found[name] = mark
    return found


def run_targets(params: BaseModel, inventory: Inventory, *, source: str = "parameters") -> Targets:
    """The targets ``params`` declare, looked up in ``inventory``.

    Raises :class:`InputError` naming the parameter (``front_ends[1]`` for a list's element) when
    a name is not in the inventory or a server has another role than its parameter asks for.
    """
    servers: dict[str, ServerSpec] = {}
    tenants: dict[str, TenantSpec] = {}
    for field, mark in declared_targets(type(params)).items():
        for where, name in _named(field, getattr(params, field)):
            if isinstance(mark, Server):
                servers.setdefault(name, _server(inventory, name, mark.role, source=source, field=where))
            else:
                tenants.setdefault(name, _tenant(inventory, name, source=source, field=where))
    return Targets(tuple(servers.values()), tuple(tenants.values()))


def _named(field: str, value: object) -> list[tuple[str, str]]:
    """(where, name) for a declared field's value: one name, a list of names, or None (unset)."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [(f"{field}[{i}]", str(v)) for i, v in enumerate(value)]
    return [(field, str(value))]


def _server(inventory: Inventory, name: str, role: Role, *, source: str, field: str) -> ServerSpec:
    server = inventory.servers.get(name)
    if server is None:
        raise InputError(f"no server named {name!r} in the inventory", source=source, field=field,
                         hint=f"Known servers: {', '.join(sorted(inventory.servers)) or 'none'}.")
    if server.role != role:
        fitting = sorted(s.name for s in inventory.servers_with_role(role))
        raise InputError(f"{name} is {_a(server.role)} server, not {_a(_ROLE_TITLES[role])} (role {role})",
                         source=source, field=field,
                         hint=f"Name a server with role {role}: {', '.join(fitting) or 'the inventory has none'}.")
    return server


def _a(words: str) -> str:
    return f"{'an' if words[0] in 'aeiouAEIOU' else 'a'} {words}"


def _tenant(inventory: Inventory, name: str, *, source: str, field: str) -> TenantSpec:
    tenant = inventory.tenants.get(name)
    if tenant is None:
        raise InputError(f"no tenant named {name!r} in the inventory", source=source, field=field,
                         hint=f"Known tenants: {', '.join(sorted(inventory.tenants)) or 'none'}.")
    return tenant
