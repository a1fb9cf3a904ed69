"""The real signatures of the cmdlets the runbooks call: one table, read by the checks and the lab.

The table is package data, one YAML file per product under ``runbooklib/signatures/`` (each row
says where it was read, or why it is unconfirmed). :func:`signature` gives one cmdlet's
:class:`Signature`; :meth:`Signature.parameter` and :meth:`Signature.parameter_set` decide, as
PowerShell's parameter binder does, whether a set of named parameters can bind, and fail with
:class:`BindingRefused` carrying PowerShell's own text otherwise:

* a name binds when it is a parameter's name, one of its aliases or (with ``prefixes=True``, as
  PowerShell allows) an unambiguous prefix of one; names compare case-insensitively;
* the parameter set is the one set holding every given parameter with none of its mandatory
  parameters missing; when several are complete the default set wins; when none is, the default
  set's (or the only candidate's) missing parameters are named, as PowerShell does in a
  non-interactive host where it cannot prompt for them.

This module depends on nothing else in ``runbooklib`` but :mod:`runbooklib.errors`, so the lab
(``runbooklib.lab``) can read the same table without reaching into the code it stands in for.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Iterable, Mapping

import yaml

from .errors import RunbookError

__all__ = [
    "ALL_PARAMETER_SETS",
    "AMBIGUOUS_PARAMETER_SET",
    "COMMON_PARAMETERS",
    "BindingRefused",
    "Parameter",
    "ParameterSet",
    "Signature",
    "all_signatures",
    "signature",
]

ALL_PARAMETER_SETS = "__AllParameterSets"

# PowerShell's common parameters: every cmdlet takes them, so no row lists them. -WhatIf and
# -Confirm are not among them: only a cmdlet that supports ShouldProcess has them, and its row says so.
COMMON_PARAMETERS: tuple[str, ...] = (
    "Debug", "ErrorAction", "ErrorVariable", "InformationAction", "InformationVariable", "OutBuffer",
    "OutVariable", "PipelineVariable", "Verbose", "WarningAction", "WarningVariable",
)
_COMMON_ALIASES = {"db": "Debug", "ea": "ErrorAction", "ev": "ErrorVariable", "infa": "InformationAction",
                   "iv": "InformationVariable", "ob": "OutBuffer", "ov": "OutVariable", "pv": "PipelineVariable",
                   "vb": "Verbose", "wa": "WarningAction", "wv": "WarningVariable"}

# PowerShell's binding texts.                                                                   [C]
AMBIGUOUS_PARAMETER_SET = "Parameter set cannot be resolved using the specified named parameters."


def _not_found_text(name: str) -> str:
    return f"A parameter cannot be found that matches parameter name '{name}'."


def _ambiguous_name_text(name: str, matches: Iterable[str]) -> str:
    return (f"Parameter cannot be processed because the parameter name '{name}' is ambiguous. "
            f"Possible matches include: {' '.join('-' + m for m in matches)}.")


def _missing_text(names: Iterable[str]) -> str:
    return f"Cannot process command because of one or more missing mandatory parameters: {' '.join(names)}."


class BindingRefused(RunbookError):
    """PowerShell would refuse to bind these parameters; ``message`` is its text, ``error_id`` its id."""

    def __init__(self, message: str, error_id: str, *, cmdlet: str) -> None:
        super().__init__(message, hint=f"Check the call against the signature of {cmdlet} "
                                       "(runbooklib/signatures/).")
        self.error_id = error_id
        self.cmdlet = cmdlet


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    switch: bool = False
    position: int | None = None   # 0 = the first positional argument
    pipeline: bool = False        # binds from pipeline input (by value or by property name)
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParameterSet:
    name: str
    mandatory: tuple[str, ...]
    optional: tuple[str, ...]

    @property
    def members(self) -> tuple[str, ...]:
        return self.mandatory + self.optional


@dataclass(frozen=True)
class Signature:
    """One cmdlet's parameters and parameter sets, as its help documents them."""

    name: str
    product: str
    parameters: Mapping[str, Parameter]
    sets: tuple[ParameterSet, ...]
    default_set: str | None = None
    source: str | None = None       # where the row was read
    unconfirmed: str | None = None  # why (part of) the row is not confirmed

    def parameter(self, given: str, *, prefixes: bool = True) -> str:
        """The parameter (or common parameter) name ``given`` binds to; :class:`BindingRefused` if none."""
        lowered = given.lower()
        names = dict(_COMMON_ALIASES)
        names.update((c.lower(), c) for c in COMMON_PARAMETERS)
        for parameter in self.parameters.values():
            names[parameter.name.lower()] = parameter.name
            names.update({alias.lower(): parameter.name for alias in parameter.aliases})
        if lowered in names:
            return names[lowered]
        matches = sorted({canonical for key, canonical in names.items() if key.startswith(lowered)}) if prefixes else []
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise BindingRefused(_ambiguous_name_text(given, matches), "AmbiguousParameter", cmdlet=self.name)
        raise BindingRefused(_not_found_text(given), "NamedParameterNotFound", cmdlet=self.name)

    def parameter_set(self, bound: Iterable[str], *, piped: bool = False) -> ParameterSet:
        """The set PowerShell binds for the parameters ``bound`` (canonical names, as :meth:`parameter`
        gives them). ``piped``: the command has pipeline input, which can fill a mandatory
        parameter that binds from the pipeline."""
        given = {name.lower() for name in bound} - {c.lower() for c in COMMON_PARAMETERS}
        candidates = [s for s in self.sets if given <= {m.lower() for m in s.members}]
        if not candidates:
            raise BindingRefused(AMBIGUOUS_PARAMETER_SET, "AmbiguousParameterSet", cmdlet=self.name)
        missing = {s.name: [m for m in s.mandatory if m.lower() not in given
                            and not (piped and self.parameters[m].pipeline)] for s in candidates}
        complete = [s for s in candidates if not missing[s.name]]
        default = next((s for s in candidates if s.name == self.default_set), None)
        if len(complete) == 1:
            return complete[0]
        if complete:
            if default in complete:
                return default
            raise BindingRefused(AMBIGUOUS_PARAMETER_SET, "AmbiguousParameterSet", cmdlet=self.name)
        if default is None and len(candidates) > 1:
            raise BindingRefused(AMBIGUOUS_PARAMETER_SET, "AmbiguousParameterSet", cmdlet=self.name)
        unfilled = missing[(default or candidates[0]).name]
        raise BindingRefused(_missing_text(unfilled), "MissingMandatoryParameter", cmdlet=self.name)


# ---------------------------------------------------------------------------- the table

# Every lab server process and runbook kernel reads the whole table once; libyaml's safe loader
# (same results as yaml.safe_load) does it several times faster where PyYAML was built with it.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def signature(name: str) -> Signature | None:
    """The signature of cmdlet ``name`` (case-insensitive), or None when the table has no row for it."""
    return all_signatures().get(name.lower())


@lru_cache(maxsize=1)
def all_signatures() -> dict[str, Signature]:
    """Every row of the table, keyed by lower-case cmdlet name."""
    table: dict[str, Signature] = {}
    folder = resources.files(__package__).joinpath("signatures")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        product = entry.name.removesuffix(".yaml")
        rows = yaml.load(entry.read_text(encoding="utf-8"), Loader=_SAFE_LOADER) or {}  # noqa: S506 - a safe loader
        for name, row in rows.items():
            if name.lower() in table:
                raise ValueError(f"signatures/{entry.name}: {name} is already in signatures/"
                                 f"{table[name.lower()].product}.yaml")
            table[name.lower()] = _row(product, name, row, where=f"signatures/{entry.name}: {name}")
    return table


def _row(product: str, name: str, row: Mapping[str, Any], *, where: str) -> Signature:
    if not (row.get("source") or row.get("unconfirmed")):
        raise ValueError(f"{where}: a row needs source: (where it was read) or unconfirmed: (why not)")
    parameters = {p: Parameter(name=p, type="SwitchParameter" if spec["type"] == "switch" else str(spec["type"]),
                               switch=spec["type"] == "switch", position=spec.get("position"),
                               pipeline=bool(spec.get("pipeline", False)),
                               aliases=tuple(spec.get("aliases", ())))
                  for p, spec in (row.get("parameters") or {}).items()}
    sets = tuple(ParameterSet(s, tuple(spec.get("mandatory") or ()), tuple(spec.get("optional") or ()))
                 for s, spec in (row.get("sets") or {ALL_PARAMETER_SETS: {}}).items())
    for s in sets:
        unknown = [m for m in s.members if m not in parameters]
        if unknown:
            raise ValueError(f"{where}: set {s.name} names parameters the row does not declare: {unknown}")
    default = row.get("default_set")
    if default is not None and default not in {s.name for s in sets}:
        raise ValueError(f"{where}: default_set {default} is not one of its sets")
    return Signature(name=name, product=product, parameters=parameters, sets=sets, default_set=default,
                     source=row.get("source"), unconfirmed=row.get("unconfirmed"))
