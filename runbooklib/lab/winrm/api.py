"""What a simulated product sees of PowerShell remoting: the contract between the lab's WinRM
endpoint (transport, WS-Man, psrpcore) and the products' cmdlet handlers
(``runbooklib.lab.sharepoint`` and friends).

A product registers handlers in a :class:`CommandTable`: one per cmdlet name (case-insensitive,
as PowerShell resolves them) and one per named script template. The endpoint turns each command
of a pipeline into an :class:`Invocation` and calls the handler; the handler writes output,
errors, warnings and verbose messages, or raises :class:`TerminatingError` to end the pipeline
Failed, as a real cmdlet's ThrowTerminatingError does.

Script templates are recognised by their first line only::

    # runbook-template: <name> v<version>

Anything else sent with ``add_script`` is not a template; the endpoint refuses it with the error a
locked-down endpoint would give, so a runbook can never depend on free-form script text.

Values handlers receive (parameters and pipeline input) are plain Python: ``str``, ``int``,
``bool``, ``float``, ``None``, ``bytes`` (byte[]), ``list``, ``dict`` (hashtable),
``uuid.UUID``, ``datetime``, :class:`Credential` (PSCredential), :class:`Secret`
(SecureString), or :class:`DeserializedObject` for an object that made a round trip through
the client — which, like the product, a handler must refuse where it needs a live object.

Values handlers return: the same plain types, or :class:`PSObj` for a typed object (its type
names are sent as a real server would send them, e.g. ``Microsoft.SharePoint.SPAppPrincipal``;
the client sees ``Deserialized.`` prepended).

Session state: each runspace pool (one WS-Man shell) has one ``Invocation.session`` dict that
lives as long as the shell and is shared by every pipeline run in it, and by nothing else: a
second pool on the same server starts empty, as a new runspace does. The lab keeps in it what
a real runspace remembers between commands — which snap-ins and modules are loaded
(:func:`loaded_sources`) and whether the client delegated its credentials to it
(:func:`credentials_delegated`: CredSSP does, NTLM and Basic do not, so only a CredSSP runspace
can reach a second server as the user) and whether its session configuration runs script text
(:func:`scripts_allowed`); products may keep their own keys (prefix them with the product name).
A snap-in or module may act while it loads (``Source.on_load``, e.g. a product's warning).

Snap-ins and modules: a product declares what it offers (``table.snapin(name)`` /
``table.module(name)``) and registers its cmdlets and templates with ``source=<that name>``.
Such a command exists in a runspace only after ``Add-PSSnapin`` / ``Import-Module`` loaded its
source there; before that the endpoint answers it as PowerShell answers an unknown command
(``CommandNotFoundException``), and a template with a source fails the same way, naming the
first of the source's cmdlets its script uses. ``Add-PSSnapin``, ``Get-PSSnapin``,
``Import-Module``, ``Get-Module`` and ``Get-Command`` are answered by every lab endpoint
(:mod:`runbooklib.lab.winrm.builtins`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Protocol

if TYPE_CHECKING:
    from ...cmdlet_signatures import Signature

__all__ = [
    "COMMON_PARAMETERS",
    "CORE_SNAPIN",
    "TEMPLATE_MARKER",
    "CommandTable",
    "Credential",
    "DeserializedObject",
    "ErrorSpec",
    "Handler",
    "Invocation",
    "PSObj",
    "ParamSpec",
    "Secret",
    "Source",
    "TerminatingError",
    "credentials_delegated",
    "load_source",
    "loaded_sources",
    "new_session",
    "scripts_allowed",
    "source_loaded",
]

TEMPLATE_MARKER = "# runbook-template:"

# Accepted by every cmdlet; the endpoint applies ErrorAction/WarningAction itself.
COMMON_PARAMETERS = frozenset(
    name.lower()
    for name in (
        "Verbose", "Debug", "ErrorAction", "WarningAction", "InformationAction", "ErrorVariable",
        "WarningVariable", "InformationVariable", "OutVariable", "OutBuffer", "PipelineVariable",
        "WhatIf", "Confirm", "AssignmentCollection",
    )
)


@dataclass
class PSObj:
    """A typed object a handler writes to the output (or nests in another object's property).

    ``type_names`` most-derived first, e.g. ``["Microsoft.SharePoint.SPAppPrincipal", "System.Object"]``.
    ``to_string`` is what ``ToString()`` gives on the server (pypsrp's ``str(obj)`` shows it).
    """

    type_names: list[str]
    properties: dict[str, Any]
    to_string: str | None = None


@dataclass
class DeserializedObject:
    """An object the client sent back after receiving it: a property bag with ``Deserialized.`` type names."""

    type_names: list[str]
    properties: dict[str, Any]
    to_string: str | None = None


@dataclass(frozen=True)
class Credential:
    """A PSCredential parameter."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Secret:
    """A SecureString parameter, already decrypted."""

    value: str = field(repr=False)


@dataclass
class ErrorSpec:
    """An ErrorRecord as the product writes it.

    ``error_id`` is the FullyQualifiedErrorId *without* the ``,<command>`` suffix PowerShell appends;
    ``category`` an ``ErrorCategory`` member name (``InvalidData``, ``ObjectNotFound`` …).
    """

    message: str
    error_id: str
    category: str = "InvalidOperation"
    exception_type: str = "System.InvalidOperationException"
    target: Any = None


class TerminatingError(Exception):
    """Raised by a handler to end the pipeline Failed with this error record."""

    def __init__(self, spec: ErrorSpec) -> None:
        super().__init__(spec.message)
        self.spec = spec


@dataclass(frozen=True)
class ParamSpec:
    """A cmdlet parameter the endpoint binds before calling the handler."""

    mandatory: bool = False
    position: int | None = None
    switch: bool = False
    aliases: tuple[str, ...] = ()


class Invocation(Protocol):
    """One command of a pipeline, as its handler sees it."""

    command: str                 # the cmdlet or template name as registered
    parameters: dict[str, Any]   # bound by canonical (registered) name; a switch present = True
    input: list[Any]             # pipeline input from the previous command
    user: str                    # the authenticated account, e.g. ``LAB\\spadmin``
    server: str                  # the lab server name, e.g. ``sp-a``
    session: dict[str, Any]      # this runspace pool's state: one dict per shell, as long as it lives
    commands: "CommandTable"     # everything this server answers (built-ins included)
    script: str | None           # the script text a template came as; None for a cmdlet

    def param(self, name: str, default: Any = None) -> Any: ...
    def has(self, name: str) -> bool: ...
    def write_output(self, value: Any) -> None: ...
    def write_error(self, spec: ErrorSpec) -> None: ...
    def write_warning(self, message: str) -> None: ...
    def write_verbose(self, message: str) -> None: ...
    @property
    def stopping(self) -> bool: ...


Handler = Callable[[Invocation], None]


@dataclass
class _Entry:
    name: str
    handler: Handler
    parameters: dict[str, ParamSpec] | None
    source: str | None = None   # the snap-in or module that brings this command, if any
    signature: "Signature | None" = None  # the real cmdlet's parameter sets, when the table has its row


@dataclass(frozen=True)
class Source:
    """A snap-in or module a server offers: what ``Add-PSSnapin`` / ``Import-Module`` can load.

    ``on_load`` runs in the invocation that loaded it, once per runspace: what the product's
    snap-in or module itself does while it loads (e.g. write a warning).
    """

    name: str
    kind: str                    # "snapin" | "module"
    version: str = ""
    description: str = ""
    on_load: "Handler | None" = field(default=None, compare=False, repr=False)


# The snap-in every runspace starts with (it holds Add-PSSnapin, Import-Module, Get-Command …).
CORE_SNAPIN = "Microsoft.PowerShell.Core"
_LOADED = "lab.loaded_sources"   # session key: {lower-case name: Source}, in load order
_DELEGATED = "lab.credentials_delegated"
_NO_LANGUAGE = "lab.no_language"


def new_session(*, delegated: bool = False, no_language: bool = False) -> dict[str, Any]:
    """The session state of a new runspace; ``delegated`` when its client delegated its credentials,
    ``no_language`` when its session configuration runs commands only (no script text)."""
    return {_DELEGATED: delegated, _NO_LANGUAGE: no_language}


def scripts_allowed(session: dict[str, Any]) -> bool:
    """Whether this runspace runs script text (its session configuration has the language)."""
    return not session.get(_NO_LANGUAGE, False)


def credentials_delegated(session: dict[str, Any]) -> bool:
    """Whether this runspace holds its user's delegated credentials (reached with CredSSP)."""
    return bool(session.get(_DELEGATED, False))


def loaded_sources(session: dict[str, Any]) -> list[Source]:
    """The snap-ins and modules loaded into this runspace, in load order (the core snap-in excluded)."""
    return list(session.get(_LOADED, {}).values())


def source_loaded(session: dict[str, Any], name: str) -> bool:
    """Whether snap-in or module ``name`` is loaded in this runspace (the core snap-in always is)."""
    return name.lower() == CORE_SNAPIN.lower() or name.lower() in session.get(_LOADED, {})


def load_source(session: dict[str, Any], source: Source, inv: "Invocation | None" = None) -> bool:
    """Load ``source`` into this runspace; ``False`` if it already was.

    ``inv`` is the invocation that loads it: the source's ``on_load`` runs in it.
    """
    loaded = session.setdefault(_LOADED, {})
    if source.name.lower() in loaded:
        return False
    loaded[source.name.lower()] = source
    if source.on_load is not None and inv is not None:
        source.on_load(inv)
    return True


class CommandTable:
    """The cmdlets and script templates one simulated server answers."""

    def __init__(self) -> None:
        self._cmdlets: dict[str, _Entry] = {}
        self._templates: dict[tuple[str, str], _Entry] = {}
        self._sources: dict[str, Source] = {}

    def cmdlet(self, name: str, parameters: dict[str, ParamSpec] | None = None, *,
               source: str | None = None, signature: "Signature | None" = None) -> Callable[[Handler], Handler]:
        """Decorator: register ``name``. With ``parameters``, unknown or missing mandatory ones fail binding.

        ``source`` names the snap-in or module the cmdlet comes in: until that is loaded in a
        runspace, the cmdlet does not exist there. With ``signature`` (the real cmdlet's row in
        the table of cmdlet signatures) binding also resolves its parameter set as PowerShell
        does; :func:`runbooklib.lab.powershell.signature_cmdlet` registers a cmdlet that way.
        """

        def register(fn: Handler) -> Handler:
            self._cmdlets[name.lower()] = _Entry(name, fn, parameters, source, signature)
            return fn

        return register

    def template(self, name: str, version: int, parameters: dict[str, ParamSpec] | None = None, *,
                 source: str | None = None) -> Callable[[Handler], Handler]:
        """Decorator: register script template ``name`` at ``version``.

        With ``source``, the template fails like its script would in a runspace where that
        snap-in or module is not loaded: at the first of the source's cmdlets it uses.
        """

        def register(fn: Handler) -> Handler:
            self._templates[(name.lower(), str(version))] = _Entry(name, fn, parameters, source)
            return fn

        return register

    def snapin(self, name: str, *, version: str = "", description: str = "",
               on_load: Handler | None = None) -> Source:
        """Declare a registered snap-in this server offers (``Add-PSSnapin -Name <name>`` loads it)."""
        self._sources[name.lower()] = Source(name, "snapin", version, description, on_load)
        return self._sources[name.lower()]

    def module(self, name: str, *, version: str = "", description: str = "",
               on_load: Handler | None = None) -> Source:
        """Declare a module this server offers (``Import-Module -Name <name>`` loads it)."""
        self._sources[name.lower()] = Source(name, "module", version, description, on_load)
        return self._sources[name.lower()]

    def find_source(self, name: str, kind: str | None = None) -> Source | None:
        """The offered snap-in or module ``name`` (of ``kind`` when given)."""
        found = self._sources.get(name.lower())
        return found if found is not None and (kind is None or found.kind == kind) else None

    def sources(self, kind: str | None = None) -> list[Source]:
        """Every snap-in and module this server offers (of ``kind`` when given)."""
        return [s for s in self._sources.values() if kind is None or s.kind == kind]

    def available_cmdlet(self, name: str, session: dict[str, Any]) -> _Entry | None:
        """The cmdlet ``name`` as this runspace sees it: ``None`` if unknown or its source is not loaded."""
        entry = self.find_cmdlet(name)
        if entry is None or (entry.source is not None and not source_loaded(session, entry.source)):
            return None
        return entry

    def cmdlets(self) -> Iterable[_Entry]:
        """Every registered cmdlet, loaded or not."""
        return iter(list(self._cmdlets.values()))

    def find_cmdlet(self, name: str) -> _Entry | None:
        return self._cmdlets.get(name.lower())

    def find_template(self, name: str, version: str) -> _Entry | None:
        return self._templates.get((name.lower(), str(version)))

    def cmdlet_names(self) -> Iterable[str]:
        return (e.name for e in self._cmdlets.values())

    def merge(self, other: "CommandTable") -> "CommandTable":
        """A table answering both (``other`` wins on a clash); used for shared helpers."""
        merged = CommandTable()
        merged._cmdlets = {**self._cmdlets, **other._cmdlets}
        merged._templates = {**self._templates, **other._templates}
        merged._sources = {**self._sources, **other._sources}
        return merged
