"""Whether a runspace on the farm can reach the farm's databases: the double hop.

A farm's cmdlets read and write the configuration database on SQL Server *as the user*. A remote
session reached with NTLM (or Kerberos without delegation) holds no credentials it could pass on
to that second server; one reached with CredSSP holds the user's (the WinRM endpoint records it:
:func:`~runbooklib.lab.winrm.api.credentials_delegated`). Without them, the snap-in or module
still loads but warns that the local farm is not accessible, and every farm cmdlet — and so every
template that calls one — fails with SharePoint's "Cannot access the local farm" error
(texts and what is confirmed: :mod:`.texts`).
"""

from __future__ import annotations

import functools

from ..winrm.api import ErrorSpec, Handler, Invocation, TerminatingError, credentials_delegated
from ..winrm.dispatch import first_command_of
from . import texts as T

__all__ = ["cannot_access_farm", "farm_reachable", "needs_farm", "template_needs_farm", "warn_if_farm_unreachable"]


def farm_reachable(inv: Invocation) -> bool:
    """Whether this runspace can reach the farm's databases as its user (credentials delegated)."""
    return credentials_delegated(inv.session)


def warn_if_farm_unreachable(inv: Invocation) -> None:
    """What the snap-in (or SE's module) writes while it loads in a runspace without the farm."""
    if not farm_reachable(inv):
        inv.write_warning(T.LOCAL_FARM_NOT_ACCESSIBLE)


def cannot_access_farm(cmdlet: str) -> TerminatingError:
    """The error farm cmdlet ``cmdlet`` ends with where the farm is out of reach."""
    return TerminatingError(ErrorSpec(
        T.CANNOT_ACCESS_LOCAL_FARM, T.fqid(T.CMDLET_CLASSES[cmdlet]), T.CANNOT_ACCESS_LOCAL_FARM_CATEGORY,
        T.SP_CMDLET_EXCEPTION,
    ))


def needs_farm(cmdlet: str, handler: Handler) -> Handler:
    """``handler`` of farm cmdlet ``cmdlet``, failing as the product does where the farm is out of reach."""

    @functools.wraps(handler)
    def run(inv: Invocation) -> None:
        if not farm_reachable(inv):
            raise cannot_access_farm(cmdlet)
        handler(inv)

    return run


def template_needs_farm(handler: Handler) -> Handler:
    """A template's handler that, where the farm is out of reach, fails at the first farm cmdlet its
    script calls (the templates stop at the first error: ``$ErrorActionPreference = 'Stop'``)."""
    farm_cmdlets: dict[str, str] = {name.lower(): name for name in T.CMDLET_CLASSES}

    @functools.wraps(handler)
    def run(inv: Invocation) -> None:
        if not farm_reachable(inv):
            first = first_command_of(inv.script or "", set(farm_cmdlets))
            if first is not None:
                raise cannot_access_farm(farm_cmdlets[first.lower()])
        handler(inv)

    return run

