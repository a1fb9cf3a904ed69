"""Run lab command handlers in memory, without WinRM: a minimal ``api.Invocation``.

Binding is deliberately simple (names case-insensitive, unknown and missing mandatory
parameters refused, bare switches True); :func:`deserialize` turns a handler's output into what
the client would send back after a round trip (``Deserialized.`` type names, depth 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runbooklib.lab.winrm.api import (
    COMMON_PARAMETERS,
    CommandTable,
    DeserializedObject,
    ErrorSpec,
    PSObj,
    TerminatingError,
    new_session,
)


class BindingFailed(Exception):
    pass


@dataclass
class Result:
    output: list[Any] = field(default_factory=list)
    errors: list[ErrorSpec] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    terminating: ErrorSpec | None = None

    @property
    def one(self) -> Any:
        assert len(self.output) == 1, f"expected one output object, got {self.output!r} / {self.errors!r}"
        return self.output[0]


class MemoryInvocation:
    def __init__(self, command: str, parameters: dict[str, Any], input: list[Any] | None = None, *,
                 session: dict[str, Any] | None = None, commands: CommandTable | None = None) -> None:
        self.command = command
        self.parameters = parameters
        self.input = input or []
        self.user = "LAB\\spadmin"
        self.server = "sp-test"
        # By default the runspace of an administrator on the farm's own console: it reaches the farm.
        self.session = session if session is not None else new_session(delegated=True)
        self.commands = commands if commands is not None else CommandTable()
        self.script: str | None = None
        self.result = Result()

    def param(self, name: str, default: Any = None) -> Any:
        for key, value in self.parameters.items():
            if key.lower() == name.lower():
                return value
        return default

    def has(self, name: str) -> bool:
        return any(key.lower() == name.lower() for key in self.parameters)

    def write_output(self, value: Any) -> None:
        self.result.output.append(value)

    def write_error(self, spec: ErrorSpec) -> None:
        self.result.errors.append(spec)

    def write_warning(self, message: str) -> None:
        self.result.warnings.append(message)

    def write_verbose(self, message: str) -> None:
        pass

    @property
    def stopping(self) -> bool:
        return False


def _bind(specs: dict | None, given: dict[str, Any]) -> dict[str, Any]:
    if specs is None:
        return dict(given)
    lookup = {name.lower(): name for name in specs}
    bound: dict[str, Any] = {}
    for key, value in given.items():
        if key.lower() in lookup:
            name = lookup[key.lower()]
            bound[name] = True if (specs[name].switch and value is None) else value
        elif key.lower() in COMMON_PARAMETERS:
            bound[key] = value
        else:
            raise BindingFailed(f"A parameter cannot be found that matches parameter name '{key}'.")
    missing = [n for n, s in specs.items() if s.mandatory and n not in bound]
    if missing:
        raise BindingFailed(f"missing mandatory parameters: {' '.join(missing)}")
    return bound


def run(table: CommandTable, command: str, parameters: dict[str, Any] | None = None, *,
        input: list[Any] | None = None, session: dict[str, Any] | None = None) -> Result:
    """Invoke a cmdlet (``Get-SPFarm``) or a template (``sharepoint/get-sts-certificate``).

    The handler is called directly: whether its snap-in or module is loaded is the endpoint's
    business (tested through WinRM), not this harness's. ``session`` is the runspace state the
    handler sees (a fresh one by default).
    """
    if "/" in command:
        entry = table.find_template(command, "1")
    else:
        entry = table.find_cmdlet(command)
    assert entry is not None, f"{command} is not registered"
    inv = MemoryInvocation(entry.name, _bind(entry.parameters, parameters or {}), input, session=session,
                           commands=table)
    try:
        entry.handler(inv)
    except TerminatingError as exc:
        inv.result.terminating = exc.spec
    return inv.result


def deserialize(value: Any, depth: int = 0) -> Any:
    """What the client holds after receiving ``value`` and what it sends when passing it back."""
    if isinstance(value, PSObj):
        if depth >= 1:
            return value.to_string if value.to_string is not None else value.type_names[0]
        return DeserializedObject([f"Deserialized.{t}" for t in value.type_names],
                                  {k: deserialize(v, depth + 1) for k, v in value.properties.items()},
                                  value.to_string)
    if isinstance(value, list):
        return [deserialize(v, depth) for v in value]
    if isinstance(value, dict):
        return {k: deserialize(v, depth) for k, v in value.items()}
    return value
