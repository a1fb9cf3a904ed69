"""Commands every lab endpoint answers, whatever product it simulates: the few engine cmdlets
that load snap-ins and modules into a runspace and tell what it can run.

``Add-PSSnapin``, ``Get-PSSnapin``, ``Import-Module``, ``Get-Module`` and ``Get-Command`` work on
the runspace pool's session (``Invocation.session``) and on the snap-ins and modules the server's
:class:`~runbooklib.lab.winrm.api.CommandTable` declares. Their texts and the unconfirmed choices
are in :mod:`._powershell_texts`.

The endpoint merges :func:`builtin_commands` into each server's table (the product's own entries
win a clash).
"""

from __future__ import annotations

import fnmatch
import logging
from typing import Any, Iterable

from ..powershell import signature_cmdlet
from . import _powershell_texts as T
from .api import (
    CORE_SNAPIN,
    CommandTable,
    ErrorSpec,
    Invocation,
    PSObj,
    Source,
    load_source,
    loaded_sources,
)

__all__ = ["builtin_commands", "cmdlet_info"]

log = logging.getLogger(__name__)

_CORE = Source(CORE_SNAPIN, "snapin", "", T.CORE_SNAPIN_DESCRIPTION)


def _names(value: Any) -> list[str]:
    """A ``[string[]]`` parameter: one name or several."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


def _is_pattern(name: str) -> bool:
    return any(c in name for c in "*?[")


def _matches(pattern: str, name: str) -> bool:
    return fnmatch.fnmatchcase(name.lower(), pattern.lower())


def snapin_info(source: Source, *, default: bool = False) -> PSObj:
    return PSObj(list(T.T_SNAPIN_INFO), {
        "Name": source.name,
        "IsDefault": default,
        "Version": source.version,
        "Description": source.description,
    }, to_string=source.name)


def module_info(source: Source) -> PSObj:
    return PSObj(list(T.T_MODULE_INFO), {
        "Name": source.name,
        "ModuleType": T.MODULE_TYPE,
        "Version": source.version,
        "Description": source.description,
    }, to_string=source.name)


def cmdlet_info(name: str, source: Source | None) -> PSObj:
    """What ``Get-Command <name>`` returns for a cmdlet (a CommandInfo)."""
    source_name = source.name if source is not None else ""
    return PSObj(list(T.T_CMDLET_INFO), {
        "Name": name,
        "CommandType": "Cmdlet",
        "Source": source_name,
        "ModuleName": source_name,
        "Version": source.version if source is not None else "",
        "Visibility": "Public",
    }, to_string=name)


def _source_of(inv: Invocation, name: str | None) -> Source | None:
    if name is None:
        return None
    if name.lower() == CORE_SNAPIN.lower():
        return _CORE
    return inv.commands.find_source(name)


def _argument_error(message: str, error_id: str, target: str, *, category: str = "InvalidArgument",
                    exception: str = T.PS_ARGUMENT_EXCEPTION) -> ErrorSpec:
    return ErrorSpec(message=message, error_id=error_id, category=category, exception_type=exception,
                     target=target)


def builtin_commands() -> CommandTable:
    """A fresh table of the lab's engine built-ins (stateless handlers: state is in the session)."""
    table = CommandTable()

    def builtin(name: str):
        # Parameters and sets are Windows PowerShell 5.1's (runbooklib/signatures/powershell.yaml).
        return signature_cmdlet(table, name, source=CORE_SNAPIN)

    @builtin("Add-PSSnapin")
    def add_pssnapin(inv: Invocation) -> None:
        for given in _names(inv.param("Name")):
            if _is_pattern(given):
                for source in inv.commands.sources("snapin"):
                    if _matches(given, source.name) and load_source(inv.session, source, inv) \
                            and inv.param("PassThru"):
                        inv.write_output(snapin_info(source))
                continue
            if given.lower() == CORE_SNAPIN.lower():
                inv.write_error(_argument_error(T.snapin_already_added(CORE_SNAPIN), T.ADD_SNAPIN_ERROR_ID, given))
                continue
            source = inv.commands.find_source(given, "snapin")
            if source is None:
                inv.write_error(_argument_error(T.snapin_not_installed(given), T.ADD_SNAPIN_ERROR_ID, given))
            elif not load_source(inv.session, source, inv):
                inv.write_error(_argument_error(T.snapin_already_added(source.name), T.ADD_SNAPIN_ERROR_ID, given))
            else:
                log.debug("%s: snap-in %s added to the session", inv.server, source.name)
                if inv.param("PassThru"):
                    inv.write_output(snapin_info(source))

    @builtin("Get-PSSnapin")
    def get_pssnapin(inv: Invocation) -> None:
        if inv.param("Registered"):
            # The core snap-ins ship with PowerShell and are not listed as registered.
            candidates = [(s, False) for s in inv.commands.sources("snapin")]
        else:
            candidates = [(_CORE, True)] + [(s, False) for s in loaded_sources(inv.session) if s.kind == "snapin"]
        patterns = _names(inv.param("Name")) or ["*"]
        for pattern in patterns:
            hits = [(s, default) for s, default in candidates if _matches(pattern, s.name)]
            if not hits and not (_is_pattern(pattern) and T.GET_SNAPIN_WILDCARD_MISS_IS_SILENT):
                inv.write_error(_argument_error(T.no_snapins_matching(pattern), T.GET_SNAPIN_ERROR_ID, pattern))
            for source, default in hits:
                inv.write_output(snapin_info(source, default=default))

    @builtin("Import-Module")
    def import_module(inv: Invocation) -> None:
        for given in _names(inv.param("Name")):
            source = inv.commands.find_source(given, "module")
            if source is None:
                inv.write_error(_argument_error(T.module_not_found(given), T.IMPORT_MODULE_ERROR_ID, given,
                                                category="ResourceUnavailable",
                                                exception=T.FILE_NOT_FOUND_EXCEPTION))
                continue
            if load_source(inv.session, source, inv):
                log.debug("%s: module %s imported into the session", inv.server, source.name)
            if inv.param("PassThru"):
                inv.write_output(module_info(source))

    @builtin("Get-Module")
    def get_module(inv: Invocation) -> None:
        if inv.param("ListAvailable"):
            candidates: Iterable[Source] = inv.commands.sources("module")
        else:
            candidates = [s for s in loaded_sources(inv.session) if s.kind == "module"]
        patterns = _names(inv.param("Name")) or ["*"]
        for source in candidates:
            if any(_matches(p, source.name) for p in patterns):
                inv.write_output(module_info(source))  # an unmatched name is not an error

    @builtin("Get-Command")
    def get_command(inv: Invocation) -> None:
        modules = [m.lower() for m in _names(inv.param("Module"))]

        def visible() -> list[tuple[str, str | None]]:
            out = []
            for entry in inv.commands.cmdlets():
                if inv.commands.available_cmdlet(entry.name, inv.session) is None:
                    continue
                if modules and (entry.source or "").lower() not in modules:
                    continue
                out.append((entry.name, entry.source))
            return sorted(out, key=lambda e: e[0].lower())

        names = _names(inv.param("Name"))
        if not names:
            for name, source in visible():
                inv.write_output(cmdlet_info(name, _source_of(inv, source)))
            return
        available = visible()
        for given in names:
            hits = [(n, s) for n, s in available if _matches(given, n)] if _is_pattern(given) else \
                [(n, s) for n, s in available if n.lower() == given.lower()]
            if not hits and not _is_pattern(given):
                inv.write_error(ErrorSpec(T.command_not_found(given), T.GET_COMMAND_NOT_FOUND_ID, "ObjectNotFound",
                                          T.COMMAND_NOT_FOUND_EXCEPTION, given))
            for name, source in hits:
                inv.write_output(cmdlet_info(name, _source_of(inv, source)))

    return table
