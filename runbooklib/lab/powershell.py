"""PowerShell behaviour every simulated product's cmdlets share, and PowerShell's own texts.

A product's cmdlets (SharePoint today; Office Online Server, Skype for Business and Exchange
next) fail the way PowerShell makes them fail before or around the product's code:

* binding: a value that cannot become the live object a parameter wants (a deserialized object
  that came back over remoting, raw bytes) is refused with PowerShell's binding error
  (:func:`refuse_non_live`); an enum parameter accepts its names case-insensitively
  (:func:`enum_value`); a missing mandatory parameter or an unresolvable parameter set fails
  binding (:func:`missing_mandatory`, :func:`ambiguous_parameter_set`);
* prompting: a cmdlet whose ConfirmImpact makes it prompt fails in a remote host unless the
  caller passed ``-Confirm:$false`` (:func:`require_confirm`);
* get-by-identity: a ``Get-`` cmdlet lists everything without ``-Identity`` and answers an
  identity that resolves to nothing with a *non-terminating* error (:func:`get_by_identity`);
  a pipebind resolves a live object, a GUID or a name (:func:`find_by_identity`);
* script templates: ``throw``, ``[ValidateSet()]`` and empty mandatory strings (:func:`throw`,
  :func:`validate_set`, :func:`not_empty`).

* signatures: a product's cmdlet takes its parameters, aliases, positions and parameter sets
  from the table of real cmdlet signatures (``runbooklib/signatures/``, read through
  :mod:`runbooklib.cmdlet_signatures`), so the lab refuses what the product refuses
  (:func:`signature_cmdlet`, :func:`signature_parameters`).

The texts below are PowerShell's, not a product's: they are the same on every server.  [C]
"""

from __future__ import annotations

import uuid
from typing import Any, Callable, Iterable

from ..cmdlet_signatures import Signature, signature
from .winrm.api import (
    CommandTable,
    DeserializedObject,
    ErrorSpec,
    Handler,
    Invocation,
    ParamSpec,
    PSObj,
    TerminatingError,
)

__all__ = [
    "AMBIGUOUS_PARAMETER_SET",
    "ambiguous_parameter_set",
    "binding_error",
    "cannot_convert_enum",
    "cannot_convert_object",
    "confirm_refused",
    "confirmed",
    "empty_mandatory_string",
    "enum_value",
    "find_by_identity",
    "get_by_identity",
    "is_guid",
    "missing_mandatory",
    "missing_mandatory_text",
    "not_empty",
    "prompt_refused",
    "refuse_non_live",
    "require_confirm",
    "signature_cmdlet",
    "signature_parameters",
    "throw",
    "validate_set",
]

_BINDING_EXCEPTION = "System.Management.Automation.ParameterBindingException"
_VALIDATION_EXCEPTION = "System.Management.Automation.ParameterBindingValidationException"


# --------------------------------------------------------------------------------------------
# PowerShell's texts                                                                         [C]

AMBIGUOUS_PARAMETER_SET = "Parameter set cannot be resolved using the specified named parameters."


def cannot_convert_object(param: str, to_string: str, from_type: str, to_type: str) -> str:
    return (f"Cannot bind parameter '{param}'. Cannot convert the \"{to_string}\" value of type "
            f"\"{from_type}\" to type \"{to_type}\".")


def cannot_convert_enum(param: str, value: str, enum_type: str, names: tuple[str, ...]) -> str:
    return (f"Cannot bind parameter '{param}'. Cannot convert value \"{value}\" to type \"{enum_type}\". "
            f"Error: \"Unable to match the identifier name {value} to a valid enumerator name. Specify one "
            f"of the following enumerator names and try again:\r\n{', '.join(names)}\"")


def prompt_refused(prompt: str) -> str:
    """A cmdlet that asked the user ``prompt`` in a remote, non-interactive host."""
    return ("A command that prompts the user failed because the host program or the command type does "
            "not support user interaction. The host was attempting to request confirmation with the "
            f"following message: {prompt}")


def confirm_refused(cmdlet: str, target: str) -> str:
    """A prompting cmdlet (ShouldProcess) in a remote, non-interactive host."""
    return prompt_refused("Are you sure you want to perform this action?\r\n"
                          f'Performing the operation "{cmdlet}" on target "{target}".')


def empty_mandatory_string(param: str) -> str:
    """A mandatory [string] parameter given ''."""
    return f"Cannot bind argument to parameter '{param}' because it is an empty string."


def missing_mandatory_text(names: list[str]) -> str:
    return f"Cannot process command because of one or more missing mandatory parameters: {' '.join(names)}."


def _validate_set_text(param: str, value: Any, allowed: tuple[str, ...]) -> str:
    return (f"Cannot validate argument on parameter '{param}'. The argument \"{value}\" does not belong to the "
            f"set \"{','.join(allowed)}\" specified by the ValidateSet attribute. Supply an argument that is in "
            "the set and then try the command again.")


# --------------------------------------------------------------------------------------------
# Binding

def binding_error(message: str, error_id: str = "CannotConvertArgumentNoMessage", *,
                  target: Any = None) -> TerminatingError:
    return TerminatingError(ErrorSpec(message, error_id, "InvalidArgument", _BINDING_EXCEPTION, target=target))


def missing_mandatory(names: list[str]) -> TerminatingError:
    return TerminatingError(ErrorSpec(missing_mandatory_text(names), "MissingMandatoryParameter",
                                      "InvalidArgument", _BINDING_EXCEPTION))


def ambiguous_parameter_set(message: str = AMBIGUOUS_PARAMETER_SET) -> TerminatingError:
    return binding_error(message, "AmbiguousParameterSet")


def refuse_non_live(param: str, value: Any, to_type: str) -> TerminatingError:
    """The binding error PowerShell gives when a value cannot become the live object ``to_type``."""
    if isinstance(value, DeserializedObject):
        shown = value.to_string or (value.type_names[0].removeprefix("Deserialized.") if value.type_names else "")
        from_type = value.type_names[0] if value.type_names else "System.Management.Automation.PSObject"
        return binding_error(cannot_convert_object(param, shown, from_type, to_type))
    if isinstance(value, (bytes, bytearray)):
        return binding_error(cannot_convert_object(param, "System.Byte[]", "System.Byte[]", to_type))
    return binding_error(cannot_convert_object(param, str(value), type(value).__name__, to_type))


def enum_value(param: str, value: Any, names: tuple[str, ...], enum_type: str) -> str:
    """The enum name ``value`` binds to (case-insensitive), or PowerShell's binding error."""
    text = str(value)
    for name in names:
        if name.lower() == text.lower():
            return name
    raise binding_error(cannot_convert_enum(param, text, enum_type, names))


# --------------------------------------------------------------------------------------------
# Signatures

def signature_parameters(row: Signature) -> dict[str, ParamSpec]:
    """The lab binder's view of a real cmdlet's parameters. ``mandatory`` only where every set
    makes a parameter mandatory and the pipeline cannot fill it; the sets decide the rest."""
    specs = {}
    for name, parameter in row.parameters.items():
        mandatory = all(name in s.mandatory for s in row.sets) and not parameter.pipeline
        specs[name] = ParamSpec(mandatory=mandatory, position=parameter.position, switch=parameter.switch,
                                aliases=parameter.aliases)
    return specs


def signature_cmdlet(table: CommandTable, name: str, *, source: str | None = None) -> Callable[[Handler], Handler]:
    """Register cmdlet ``name`` in ``table`` with its real signature; the table must have its row."""
    row = signature(name)
    if row is None:
        raise LookupError(f"{name} has no row in the table of cmdlet signatures (runbooklib/signatures/): "
                          "add it, read from the cmdlet's help, before the lab answers it")
    return table.cmdlet(row.name, signature_parameters(row), source=source, signature=row)


# --------------------------------------------------------------------------------------------
# Prompting

def confirmed(inv: Invocation) -> bool:
    """True when the caller passed ``-Confirm:$false`` (the only way a remote host avoids a prompt)."""
    for key, value in inv.parameters.items():
        if key.lower() == "confirm":
            return value is False
    return False


def require_confirm(inv: Invocation, cmdlet: str, target: str) -> None:
    """Fail a prompting cmdlet as a remote host does, unless the caller passed ``-Confirm:$false``."""
    if not confirmed(inv):
        raise TerminatingError(ErrorSpec(
            confirm_refused(cmdlet, target), "HostFunctionNotImplemented", "NotImplemented",
            "System.Management.Automation.Host.HostException"))


# --------------------------------------------------------------------------------------------
# Get-by-identity

def is_guid(value: Any) -> bool:
    if isinstance(value, uuid.UUID):
        return True
    try:
        uuid.UUID(str(value))
        return True
    except ValueError:
        return False


def find_by_identity(entries: Iterable[dict], value: Any) -> dict | None:
    """What a pipebind resolves: the live object itself, an id (GUID) or a name (case-insensitive).

    ``entries`` are state records with ``id`` and ``name``.
    """
    entries = list(entries)
    if isinstance(value, PSObj):
        value = value.properties.get("Id") or value.properties.get("Name")
    if is_guid(value):
        wanted = str(uuid.UUID(str(value)))
        hit = next((e for e in entries if e["id"] == wanted), None)
        if hit:
            return hit
    return next((e for e in entries if e["name"].lower() == str(value).lower()), None)


def get_by_identity(inv: Invocation, everything: Iterable[dict], find: Callable[[], dict | None],
                    to_object: Callable[[dict], PSObj], not_found: Callable[[str], ErrorSpec], *,
                    null_lists_all: bool = False, identity_text: Callable[[Any], str] = str) -> None:
    """What a ``Get-`` cmdlet does: every object without ``-Identity``; with it, the one object or
    the product's non-terminating "not found" error (``not_found(identity_text(identity))``).

    ``null_lists_all``: an ``-Identity`` of ``$null`` or ``''`` lists everything too, as
    Exchange's cmdlets do.
    """
    identity = inv.param("Identity") if inv.has("Identity") else None
    if not inv.has("Identity") or (null_lists_all and identity in (None, "")):
        for entry in everything:
            inv.write_output(to_object(entry))
        return
    found = find()
    if found is None:
        inv.write_error(not_found(identity_text(identity)))
        return
    inv.write_output(to_object(found))


# --------------------------------------------------------------------------------------------
# Script templates

def throw(message: str) -> TerminatingError:
    """What PowerShell's ``throw "<message>"`` produces."""
    return TerminatingError(ErrorSpec(message, message, "OperationStopped",
                                      "System.Management.Automation.RuntimeException"))


def validate_set(param: str, value: Any, allowed: tuple[str, ...]) -> str:
    """A ``[ValidateSet(...)]`` parameter of a template (case-insensitive, as PowerShell's)."""
    for name in allowed:
        if name.lower() == str(value).lower():
            return name
    raise TerminatingError(ErrorSpec(_validate_set_text(param, value, allowed), "ParameterArgumentValidationError",
                                     "InvalidData", _VALIDATION_EXCEPTION))


def not_empty(param: str, value: Any) -> str:
    """A mandatory ``[string]`` parameter: PowerShell refuses an empty string before the script runs."""
    text = "" if value is None else str(value)
    if not text:
        raise TerminatingError(ErrorSpec(empty_mandatory_string(param),
                                         "ParameterArgumentValidationErrorEmptyStringNotAllowed", "InvalidData",
                                         _VALIDATION_EXCEPTION))
    return text
