"""The OfficeWebApps cmdlets the simulated server answers: one module-level handler per cmdlet.

Each handler takes the server's :class:`~.machine.OosMachine` and the bound invocation;
:data:`CMDLETS` lists them and :func:`register_cmdlets` puts them in the server's command table
inside the ``OfficeWebApps`` module, so they exist in a session only after
``Import-Module OfficeWebApps`` (the load template) ran there. Each cmdlet's parameters come from
the table of real cmdlet signatures (runbooklib/signatures/officewebapps.yaml): the lab binds
what the product binds, and a parameter the lab does not keep binds and changes nothing.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

from ..powershell import signature_cmdlet
from ..winrm.api import CommandTable, ErrorSpec, Invocation, PSObj, TerminatingError
from . import texts as T
from .machine import OosMachine

__all__ = ["CMDLETS", "Cmdlet", "register_cmdlets"]

# Set-OfficeWebAppsFarm parameters the lab keeps ([C] names and kinds, SETFARM-REF).
_STRING_SETTINGS = ("InternalURL", "ExternalURL", "CertificateName", "S2SCertificateName")
_SWITCH_SETTINGS = ("AllowHttp", "AllowOutboundHttp", "SSLOffloaded", "EditingEnabled",
                    "AllowHttpSecureStoreConnections")
_STATE_NAMES = {"AllowHttp": "AllowHTTP"}


class Cmdlet(NamedTuple):
    """One row of the server's cmdlet table."""

    name: str
    handler: Callable[[OosMachine, Invocation], None]


def _farm_obj(state: dict[str, Any]) -> PSObj:
    farm = state["farm"]
    props: dict[str, Any] = {k: v for k, v in farm.items() if k not in ("master", "settings_written")}
    # [C] Over remoting Machines arrives as the machines' names (depth 1).
    props["Machines"] = [m["computer"] for m in state["machines"].values()]
    return PSObj(list(T.T_FARM), props, T.T_FARM[0])


def get_farm(machine: OosMachine, inv: Invocation) -> None:
    with machine.store.view() as state:
        inv.write_output(_farm_obj(state))


def get_machine(machine: OosMachine, inv: Invocation) -> None:
    with machine.store.view() as state:
        me = machine.machine(state)
        inv.write_output(PSObj(list(T.T_MACHINE), {
            "MachineName": me["computer"], "MasterMachineName": state["farm"]["master"],
            "Roles": ["All"], "HealthStatus": "Healthy"}, me["computer"]))


def set_farm(machine: OosMachine, inv: Invocation) -> None:
    settings: dict[str, Any] = {}
    for name in _STRING_SETTINGS:
        if inv.has(name):
            settings[name] = str(inv.param(name) or "")
    for name in _SWITCH_SETTINGS:
        if inv.has(name):
            settings[_STATE_NAMES.get(name, name)] = bool(inv.param(name))
    if not inv.param("Force", False):
        # [U] Without -Force the change asks ShouldContinue, which a remote host cannot show.
        first = next(iter(settings), "the farm settings")
        raise TerminatingError(ErrorSpec(T.force_needed(first), "HostFunctionNotImplemented", "NotImplemented",
                                         "System.Management.Automation.Host.HostException"))
    changed = machine.set_farm(settings)
    restart = [name for name in changed if name in T.RESTART_SETTINGS]
    if restart:
        inv.write_warning(T.settings_changed_warning(restart))


CMDLETS: tuple[Cmdlet, ...] = (
    Cmdlet("Get-OfficeWebAppsFarm", get_farm),
    Cmdlet("Get-OfficeWebAppsMachine", get_machine),
    Cmdlet("Set-OfficeWebAppsFarm", set_farm),
)


def register_cmdlets(table: CommandTable, machine: OosMachine) -> None:
    """Register :data:`CMDLETS` over ``machine``, each in the ``OfficeWebApps`` module."""
    table.module(T.MODULE_NAME, version=T.MODULE_VERSION, description="Office Online Server")
    for row in CMDLETS:
        signature_cmdlet(table, row.name, source=T.MODULE_NAME)(functools.partial(row.handler, machine))
