"""Run the commands of one PSRP pipeline against a :class:`~runbooklib.lab.winrm.api.CommandTable`.

This is where the lab behaves like a PowerShell host with a fixed command set:

* a cmdlet name resolves case-insensitively to its handler; an unknown name — or a cmdlet whose
  snap-in or module is not loaded in this runspace pool's session — is the terminating
  ``CommandNotFoundException`` PowerShell gives;
* a template registered with a source fails the same way while that source is not loaded,
  naming the first of the source's cmdlets its script text uses (as the script would fail there);
* ``add_script`` text runs only if its first line is the template marker
  ``# runbook-template: <name> v<N>`` naming a registered template — anything else is refused
  the way a no-language endpoint refuses script text; in a commands-only session configuration
  (:mod:`.configurations`) every script is refused so, templates too;
* parameters are bound as PowerShell binds them when the handler declared its
  :class:`~runbooklib.lab.winrm.api.ParamSpec` s (unknown, ambiguous, duplicate, missing mandatory
  and surplus positional arguments all fail with the real ``ParameterBindingException`` texts);
  common parameters are always accepted and ``-ErrorAction`` / ``-WarningAction`` / ``-Verbose``
  are applied here, not by handlers;
* values crossing the wire are converted both ways: incoming psrpcore values to the plain types
  listed in ``api.py``, outgoing values to psrpcore objects serialised the way remoting
  serialises them (depth 1: an object nested in a property travels as its ``ToString()``).

Non-terminating errors go to the error stream and the pipeline still completes; a
:class:`~runbooklib.lab.winrm.api.TerminatingError` (or ``-ErrorAction Stop``) ends it Failed.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import logging
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from psrpcore.types import (
    CommandTypes,
    ErrorCategory,
    ErrorCategoryInfo,
    ErrorRecord,
    InvocationInfo,
    NETException,
    PSCredential,
    PSNoteProperty,
    PSObject,
    PSSecureString,
    SessionStateEntryVisibility,
    add_note_property,
)

from ...cmdlet_signatures import BindingRefused, Signature
from ..powershell import binding_error, missing_mandatory_text
from . import _powershell_texts as texts
from .api import (
    COMMON_PARAMETERS,
    TEMPLATE_MARKER,
    CommandTable,
    Credential,
    DeserializedObject,
    ErrorSpec,
    ParamSpec,
    PSObj,
    Secret,
    TerminatingError,
    scripts_allowed,
    source_loaded,
)

__all__ = [
    "CommandSpec",
    "PipelineOutcome",
    "PipelineSink",
    "command_not_found",
    "error_record",
    "first_command_of",
    "parse_template_marker",
    "run_pipeline",
    "to_plain",
    "to_psrp",
]

log = logging.getLogger(__name__)

_TEMPLATE_LINE = re.compile(r"^#\s*runbook-template:\s*(?P<name>\S+)\s+v(?P<version>\d+)\s*$")

# Canonical spelling of the common parameters (the api keeps them lower-cased for lookups).
_COMMON_CANONICAL = {
    name.lower(): name
    for name in (
        "Verbose", "Debug", "ErrorAction", "WarningAction", "InformationAction", "ErrorVariable",
        "WarningVariable", "InformationVariable", "OutVariable", "OutBuffer", "PipelineVariable",
        "WhatIf", "Confirm", "AssignmentCollection",
    )
}
# System.Management.Automation.ActionPreference values, as they arrive when sent as an enum.
_ACTION_PREFERENCE = {0: "silentlycontinue", 1: "stop", 2: "continue", 3: "inquire", 4: "ignore", 5: "suspend"}

_HRESULT_COR_E_EXCEPTION = -2146233087


class _CategoryInfo(ErrorCategoryInfo):
    """ErrorCategoryInfo whose message reads as PowerShell writes it: ``Category: (target:type) [activity], reason``."""

    def __str__(self) -> str:
        return (
            f"{self.Category.name}: ({self.TargetName or ''}:{self.TargetType or ''}) "
            f"[{self.Activity or ''}], {self.Reason or ''}"
        )


class PipelineSink(Protocol):
    """Where a running pipeline's streams go (the adapter, which owns the psrpcore pipeline)."""

    def output(self, value: Any) -> None: ...
    def error(self, record: ErrorRecord) -> None: ...
    def warning(self, message: str) -> None: ...
    def verbose(self, message: str) -> None: ...
    @property
    def stopping(self) -> bool: ...


@dataclass
class CommandSpec:
    """One command of the pipeline as the client sent it (psrpcore's ``Command``, decoupled)."""

    text: str
    is_script: bool
    parameters: list[tuple[str | None, Any]]
    end_of_statement: bool = False


@dataclass
class PipelineOutcome:
    """``failure`` is the record a Failed pipeline ends with; ``None`` means Completed."""

    failure: ErrorRecord | None = None


class _Stop(Exception):
    """Unwinds a handler: the pipeline ends Failed with ``record``."""

    def __init__(self, record: ErrorRecord) -> None:
        super().__init__(str(record))
        self.record = record


# --------------------------------------------------------------------------- error records

def _exception_type_names(exception_type: str) -> list[str]:
    names = [exception_type]
    if exception_type.startswith("System.Management.Automation.") and not exception_type.endswith(
        ".RuntimeException"
    ):
        names.append("System.Management.Automation.RuntimeException")
    for base in ("System.SystemException", "System.Exception", "System.Object"):
        if base not in names:
            names.append(base)
    return names


def _target_type(target: Any) -> str:
    if target is None:
        return ""
    if isinstance(target, (PSObj, DeserializedObject)):
        return target.type_names[0].rsplit(".", 1)[-1] if target.type_names else "Object"
    return {str: "String", int: "Int32", bool: "Boolean", bytes: "Byte[]", dict: "Hashtable",
            list: "Object[]"}.get(type(target), type(target).__name__)


def _target_name(target: Any) -> str:
    if target is None:
        return ""
    if isinstance(target, (PSObj, DeserializedObject)):
        return target.to_string or (target.type_names[0] if target.type_names else "")
    return str(target)


def error_record(spec: ErrorSpec, command: str | None, *, activity: str | None = None,
                 append_command_to_id: bool = True) -> ErrorRecord:
    """A psrpcore ErrorRecord shaped like the one PowerShell sends for ``spec`` raised in ``command``.

    The FullyQualifiedErrorId gets ``,<command>`` appended, as PowerShell appends the cmdlet
    (the real suffix is the cmdlet's .NET class name, which the lab does not model).
    """
    exception = NETException(Message=spec.message, HResult=_HRESULT_COR_E_EXCEPTION)
    exception.PSObject.type_names = _exception_type_names(spec.exception_type)
    exception.PSObject.to_string = f"{spec.exception_type}: {spec.message}"
    try:
        category = ErrorCategory[spec.category]
    except KeyError:
        category = ErrorCategory.NotSpecified
    reason = spec.exception_type.rsplit(".", 1)[-1]
    category_info = _CategoryInfo(
        Category=category,
        Activity=activity if activity is not None else (command or ""),
        Reason=reason,
        TargetName=_target_name(spec.target),
        TargetType=_target_type(spec.target),
    )
    fqid = spec.error_id
    if command and append_command_to_id and "," not in fqid:
        fqid = f"{fqid},{command}"
    invocation = None
    if command:
        my_command = PSObject()
        add_note_property(my_command, "CommandType", CommandTypes.Cmdlet)
        add_note_property(my_command, "Definition", command)
        add_note_property(my_command, "Name", command)
        add_note_property(my_command, "Visibility", SessionStateEntryVisibility.Public)
        invocation = InvocationInfo(
            InvocationName=command,
            MyCommand=my_command,
            Line="",
            HistoryId=1,
            OffsetInLine=0,
            PipelineLength=1,
            PipelinePosition=1,
            ScriptLineNumber=0,
            ScriptName="",
            PositionMessage="",
            PSCommandPath="",
            PSScriptRoot="",
            ExpectingInput=False,
        )
    record = ErrorRecord(
        Exception=exception,
        CategoryInfo=category_info,
        TargetObject=to_psrp(spec.target, depth=1) if spec.target is not None else None,
        FullyQualifiedErrorId=fqid,
        InvocationInfo=invocation,
    )
    record.serialize_extended_info = invocation is not None
    return record


def command_not_found(name: str) -> ErrorRecord:
    """The record PowerShell ends a pipeline with when ``name`` is no command in this runspace."""
    spec = ErrorSpec(
        message=texts.command_not_found(name),
        error_id=texts.COMMAND_NOT_FOUND_ID,
        category="ObjectNotFound",
        exception_type=texts.COMMAND_NOT_FOUND_EXCEPTION,
        target=name,
    )
    return error_record(spec, None, activity="")


_BLOCK_COMMENT = re.compile(r"<#.*?#>", re.DOTALL)
_LINE_COMMENT = re.compile(r"(?m)(^|\s)#.*$")
_COMMAND_WORD = re.compile(r"(?<![\w$.\-])([A-Za-z]+-[A-Za-z0-9]+)(?![\w\-])")


def first_command_of(script: str, names: set[str]) -> str | None:
    """The first word of ``script`` (comments skipped) that is one of ``names`` (lower-case), as written."""
    body = _LINE_COMMENT.sub(r"\1", _BLOCK_COMMENT.sub("", script))
    for match in _COMMAND_WORD.finditer(body):
        if match.group(1).lower() in names:
            return match.group(1)
    return None


# --------------------------------------------------------------------------- value conversion

def _normalise_deserialized(type_names: list[str]) -> list[str]:
    # psrpcore prefixes "Deserialized." to every type it cannot rehydrate; a client that sends
    # back an object it received already carries one. PowerShell never stacks the prefix.
    out = []
    for name in type_names:
        while name.startswith("Deserialized.Deserialized."):
            name = name[len("Deserialized."):]
        out.append(name)
    return out


def to_plain(value: Any) -> Any:
    """A value psrpcore deserialised → the plain types handlers receive (see ``api.py``)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, PSSecureString):
        return Secret(str(value.decrypt()))
    if isinstance(value, PSCredential):
        password = value.Password
        if isinstance(password, PSSecureString):
            password = password.decrypt()
        return Credential(str(value.UserName), str(password) if password is not None else "")
    if isinstance(value, bytes):
        return bytes(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value if not isinstance(value.value, enum.Enum) else str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, decimal.Decimal):
        return decimal.Decimal(value)
    if isinstance(value, datetime.datetime):
        return datetime.datetime(value.year, value.month, value.day, value.hour, value.minute, value.second,
                                 value.microsecond, value.tzinfo)
    if isinstance(value, uuid.UUID):
        return uuid.UUID(str(value))
    if isinstance(value, dict):
        return {to_plain(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, PSObject):
        meta = value.PSObject
        properties: dict[str, Any] = {}
        for prop in list(meta.adapted_properties) + list(meta.extended_properties):
            properties[prop.name] = to_plain(prop.get_value(value))
        type_names = _normalise_deserialized(list(meta.type_names))
        if not any(t.startswith("Deserialized.") for t in type_names):
            type_names = [f"Deserialized.{t}" for t in type_names]
        return DeserializedObject(type_names, properties, meta.to_string)
    return value


def _ps_object(type_names: list[str], properties: dict[str, Any], to_string: str | None, depth: int) -> PSObject:
    obj = PSObject()
    obj.PSObject.type_names = list(type_names) or ["System.Object"]
    for name, prop_value in properties.items():
        # Properties of a .NET object travel as adapted properties (<Props>), as remoting sends them.
        obj.PSObject.adapted_properties.append(PSNoteProperty(name, to_psrp(prop_value, depth=depth + 1)))
    if to_string is not None:
        obj.PSObject.to_string = to_string
    return obj


def to_psrp(value: Any, *, depth: int = 0) -> Any:
    """A handler's value → what psrpcore serialises. ``depth`` counts object nesting: remoting
    serialises objects to depth 1, so an object found inside a property becomes its ToString()."""
    if value is None or isinstance(value, (bool, int, float, str, bytes, decimal.Decimal, uuid.UUID,
                                           datetime.datetime, datetime.timedelta)):
        return value
    if isinstance(value, (PSObj, DeserializedObject)):
        if depth >= 1:
            return value.to_string if value.to_string is not None else (value.type_names[0] if value.type_names
                                                                         else "")
        return _ps_object(value.type_names, value.properties, value.to_string, depth)
    if isinstance(value, dict):
        return {to_psrp(k, depth=depth): to_psrp(v, depth=depth) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_psrp(v, depth=depth) for v in value]
    if isinstance(value, Credential):
        return "System.Management.Automation.PSCredential"
    if isinstance(value, Secret):
        return "System.Security.SecureString"
    if isinstance(value, PSObject):
        return value
    return str(value)


# --------------------------------------------------------------------------- binding

def parse_template_marker(script: str) -> tuple[str, str] | None:
    """``(name, version)`` from a template's first line, or ``None`` if it is not a template."""
    first = script.lstrip("\ufeff").splitlines()[0] if script.strip() else ""
    if not first.startswith(TEMPLATE_MARKER):
        return None
    match = _TEMPLATE_LINE.match(first.strip())
    return (match["name"], match["version"]) if match else None


def _preference(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return _ACTION_PREFERENCE.get(value)
    return str(value).strip().lower()


@dataclass
class _Bound:
    parameters: dict[str, Any] = field(default_factory=dict)
    arguments: list[Any] = field(default_factory=list)


def _bind(command: str, specs: dict[str, ParamSpec] | None,
          raw: list[tuple[str | None, Any]], *, signature: Signature | None = None, piped: bool = False) -> _Bound:
    bound = _Bound()
    positional: list[Any] = []
    lookup: dict[str, str] = {}
    if specs is not None:
        for name, spec in specs.items():
            lookup[name.lower()] = name
            for alias in spec.aliases:
                lookup[alias.lower()] = name

    for name, value in raw:
        if name is None:
            positional.append(to_plain(value))
            continue
        key = name.lstrip("-").rstrip(":")
        lowered = key.lower()
        if specs is None:
            canonical = _COMMON_CANONICAL.get(lowered, key)
        elif lowered in lookup:
            canonical = lookup[lowered]
        elif lowered in COMMON_PARAMETERS:
            canonical = _COMMON_CANONICAL[lowered]
        else:
            # PowerShell accepts any unambiguous prefix of a parameter name.
            candidates = sorted({lookup[k] for k in lookup if k.startswith(lowered)}
                                | {_COMMON_CANONICAL[k] for k in COMMON_PARAMETERS if k.startswith(lowered)})
            if len(candidates) > 1:
                raise binding_error(
                    f"Parameter cannot be processed because the parameter name '{key}' is ambiguous. "
                    f"Possible matches include: {' '.join('-' + c for c in candidates)}.",
                    "AmbiguousParameter",
                )
            if not candidates:
                raise binding_error(f"A parameter cannot be found that matches parameter name '{key}'.",
                                    "NamedParameterNotFound")
            canonical = candidates[0]
        if canonical in bound.parameters:
            raise binding_error(
                f"Cannot bind parameter because parameter '{canonical}' is specified more than once. To provide "
                "multiple values to parameters that can accept multiple values, use the array syntax. For "
                'example, "-parameter value1,value2,value3".',
                "ParameterAlreadyBound",
            )
        spec = specs.get(canonical) if specs is not None else None
        is_switch = (spec is not None and spec.switch) or canonical.lower() in ("verbose", "debug", "whatif",
                                                                               "confirm")
        plain = to_plain(value)
        if is_switch and plain is None:
            plain = True  # pypsrp sends a bare switch (add_parameter(name)) with a Nil value
        bound.parameters[canonical] = plain

    if specs is None:
        bound.arguments = positional
        return bound

    open_positions = sorted(
        ((spec.position, name) for name, spec in specs.items()
         if spec.position is not None and name not in bound.parameters),
    )
    for arg in positional:
        if not open_positions:
            raise binding_error(f"A positional parameter cannot be found that accepts argument '{arg}'.",
                                "PositionalParameterNotFound", target=str(arg))
        _, name = open_positions.pop(0)
        bound.parameters[name] = arg

    if signature is not None:
        _resolve_parameter_set(command, signature, [n for n in bound.parameters if n in specs], piped=piped)
        return bound
    missing = [name for name, spec in specs.items() if spec.mandatory and name not in bound.parameters]
    if missing:
        raise binding_error(missing_mandatory_text(missing), "MissingMandatoryParameter")
    return bound


def _resolve_parameter_set(command: str, signature: Signature, names: list[str], *, piped: bool) -> None:
    """The real cmdlet's parameter sets decide: PowerShell's binding error when no set binds ``names``."""
    try:
        signature.parameter_set(names, piped=piped)
    except BindingRefused as refused:
        raise binding_error(refused.message, refused.error_id) from None


# --------------------------------------------------------------------------- invocation

class _Invocation:
    """What a handler sees of one command (implements ``api.Invocation``)."""

    def __init__(self, *, command: str, bound: _Bound, input: list[Any], user: str, server: str,
                 sink: PipelineSink, emit: Callable[[Any], None], session: dict[str, Any],
                 commands: CommandTable, script: str | None = None) -> None:
        self.command = command
        self.script = script
        self.parameters = bound.parameters
        self.arguments = bound.arguments
        self.input = input
        self.user = user
        self.server = server
        self.session = session
        self.commands = commands
        self._sink = sink
        self._emit = emit
        self._lower = {k.lower(): k for k in bound.parameters}
        self._error_action = _preference(self.param("ErrorAction"))
        self._warning_action = _preference(self.param("WarningAction"))
        self._verbose = bool(self.param("Verbose", False))

    def __repr__(self) -> str:
        return f"<Invocation {self.command} on {self.server} as {self.user} params={sorted(self.parameters)}>"

    def param(self, name: str, default: Any = None) -> Any:
        key = self._lower.get(name.lower())
        return self.parameters[key] if key is not None else default

    def has(self, name: str) -> bool:
        return name.lower() in self._lower

    def write_output(self, value: Any) -> None:
        self._emit(value)

    def write_error(self, spec: ErrorSpec) -> None:
        if self._error_action in ("silentlycontinue", "ignore"):
            return
        record = error_record(spec, self.command)
        if self._error_action == "stop":
            raise _Stop(record)
        self._sink.error(record)

    def write_warning(self, message: str) -> None:
        if self._warning_action in ("silentlycontinue", "ignore"):
            return
        self._sink.warning(message)

    def write_verbose(self, message: str) -> None:
        if self._verbose:
            self._sink.verbose(message)

    @property
    def stopping(self) -> bool:
        return self._sink.stopping


def _resolve(table: CommandTable, cmd: CommandSpec, server: str, session: dict[str, Any]):
    """(entry, display name) for a command; raises _Stop with PowerShell's refusal otherwise."""
    if not cmd.is_script:
        entry = table.available_cmdlet(cmd.text.strip(), session)
        if entry is None:
            raise _Stop(command_not_found(cmd.text.strip()))
        return entry, entry.name
    if not scripts_allowed(session):
        # A commands-only session configuration (Exchange's): no script text at all, template or not.
        raise _Stop(_scripts_not_allowed(texts.SCRIPTS_NOT_ALLOWED, cmd.text))
    marker = parse_template_marker(cmd.text)
    if marker is None:
        raise _Stop(_scripts_not_allowed(
            f"{texts.SCRIPTS_NOT_ALLOWED} (The lab server {server} runs cmdlets and registered script templates "
            f"only: a script must start with the line '{TEMPLATE_MARKER} <name> v<N>'.)", cmd.text))
    name, version = marker
    entry = table.find_template(name, version)
    if entry is None:
        raise _Stop(error_record(ErrorSpec(
            message=(
                f"Script template '{name}' version {version} is not available on {server}: this server does not "
                "run that template."
            ),
            error_id="TemplateNotRegistered",
            category="ObjectNotFound",
            exception_type="System.Management.Automation.ParseException",
            target=f"{name} v{version}",
        ), None, activity=""))
    return entry, entry.name


def _scripts_not_allowed(message: str, script: str) -> ErrorRecord:
    """The parse error a runspace without the script language answers script text with."""
    return error_record(ErrorSpec(
        message=message, error_id=texts.SCRIPTS_NOT_ALLOWED_ID, category=texts.SCRIPTS_NOT_ALLOWED_CATEGORY,
        exception_type=texts.PARSE_EXCEPTION, target=script,
    ), None, activity="")


def _refuse_unloaded_template(table: CommandTable, entry: Any, script: str, server: str) -> None:
    """A template whose snap-in or module is not loaded fails where its script would: at the first
    cmdlet of that source it calls (templates set ``$ErrorActionPreference = 'Stop'``)."""
    source = entry.source.lower()
    names = {e.name.lower() for e in table.cmdlets() if (e.source or "").lower() == source}
    first = first_command_of(script, names)
    if first is None:  # a template that calls none of its source's cmdlets: a registration mistake
        log.warning("%s: template %s names source %s but calls none of its cmdlets", server, entry.name,
                    entry.source)
        first = entry.name
    raise _Stop(command_not_found(first))


def _statements(commands: list[CommandSpec]) -> list[list[CommandSpec]]:
    statements: list[list[CommandSpec]] = [[]]
    for cmd in commands:
        statements[-1].append(cmd)
        if cmd.end_of_statement:
            statements.append([])
    return [s for s in statements if s]


def run_pipeline(table: CommandTable, commands: list[CommandSpec], pipeline_input: list[Any], *,
                 sink: PipelineSink, user: str, server: str,
                 injected_failure: str | None = None,
                 session: dict[str, Any] | None = None) -> PipelineOutcome:
    """Run every statement of the pipeline; the outcome says whether it ends Completed or Failed.

    ``session`` is the runspace pool's state (one dict per shell); ``None`` runs in a fresh one.
    """
    if session is None:
        session = {}
    if injected_failure is not None:
        first = commands[0].text if commands and not commands[0].is_script else None
        return PipelineOutcome(error_record(ErrorSpec(
            message=injected_failure,
            error_id="LabInjectedFault",
            category="ConnectionError",
            exception_type="System.InvalidOperationException",
        ), first))
    try:
        first_statement = True
        for statement in _statements(commands):
            current_input = [to_plain(v) for v in pipeline_input] if first_statement else []
            first_statement = False
            for position, cmd in enumerate(statement):
                last = position == len(statement) - 1
                entry, name = _resolve(table, cmd, server, session)
                try:
                    # A command later in a pipeline may take a mandatory parameter from its input.
                    bound = _bind(name, entry.parameters, cmd.parameters, signature=entry.signature,
                                  piped=position > 0 or bool(current_input))
                except TerminatingError as exc:
                    raise _Stop(error_record(exc.spec, name)) from None
                if cmd.is_script and entry.source is not None and not source_loaded(session, entry.source):
                    _refuse_unloaded_template(table, entry, cmd.text, server)
                produced: list[Any] = []
                emit = (lambda v: sink.output(to_psrp(v))) if last else produced.append
                invocation = _Invocation(command=name, bound=bound, input=current_input, user=user,
                                         server=server, sink=sink, emit=emit, session=session, commands=table,
                                         script=cmd.text if cmd.is_script else None)
                try:
                    entry.handler(invocation)
                except TerminatingError as exc:
                    raise _Stop(error_record(exc.spec, name)) from None
                current_input = produced
                if sink.stopping:
                    return PipelineOutcome()
    except _Stop as stop:
        return PipelineOutcome(stop.record)
    except Exception as exc:  # a handler bug must reach the client as a failed pipeline, not a hang
        log.exception("%s: handler failed", server)
        return PipelineOutcome(error_record(ErrorSpec(
            message=f"The lab handler failed: {type(exc).__name__}: {exc}",
            error_id="LabHandlerFailed",
            category="NotSpecified",
            exception_type="System.InvalidOperationException",
        ), None))
    return PipelineOutcome()
