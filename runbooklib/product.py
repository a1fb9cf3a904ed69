"""The base of every product client: one server's remote PowerShell session, typed.

A remote session starts without a product's cmdlets (no profile runs in it). A product whose
cmdlets come in a snap-in or module names a :class:`ShellLoader`: its load template runs once per
session, before the session's first command, and the result is remembered on the session — so
every client of that session shares it. A product whose endpoint already offers its commands
(Exchange) names none.

A loader may also name :class:`ShellCondition` s: states of the server in which the cmdlets load
but cannot work (SharePoint reached without delegated credentials: the double hop). Each is
recognised by the warning the load writes or by the error the cmdlets then fail with, and turned
into one error that names the server, the cause and the fix — at the load, or at the first
command if the load did not show it.

:class:`ProductClient` runs cmdlets (``_run``/``_invoke``) and named script templates
(``_template``) with bound parameters; :func:`as_text` and :func:`as_bool` read the values
that come back, whatever shape PowerShell gave them.
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass
from typing import Any, ClassVar

from .errors import RemoteError

__all__ = [
    "LoadedShell",
    "ProductClient",
    "ShellCondition",
    "ShellLoader",
    "as_bool",
    "as_text",
]

log = logging.getLogger(__name__)

# Sessions without a ``state`` dict (test doubles) remember their loads here instead.
_fallback_state: "weakref.WeakKeyDictionary[Any, dict[str, Any]]" = weakref.WeakKeyDictionary()

# What a load template reports in ``Loaded``, in words for the log.
_LOADED_WORDS = {"snapin": "snap-in added", "module": "module imported"}


def as_text(value: Any) -> str:
    """A PowerShell value as text; ``$null`` is the empty string."""
    return "" if value is None else str(value)


def as_bool(value: Any) -> bool:
    """A PowerShell boolean, which may arrive as a bool or as the text ``True``/``False``."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


@dataclass(frozen=True)
class LoadedShell:
    """How a product's cmdlets came to be available in a session.

    ``loaded``: what the load template did — ``snapin``, ``module``, or ``already`` (loaded
    before); ``version``: the product build the template read while it was there, if any.
    """

    loaded: str
    version: str | None


@dataclass(frozen=True)
class ShellCondition:
    """A server state in which the product's cmdlets load but cannot work, as the product reports it.

    ``load_warning``: how the warning the load writes starts; ``command_error``: how the message
    of the error the cmdlets then fail with starts; ``problem`` and ``fix``: what the runbook says
    and what to change, each with ``{server}`` in it.
    """

    load_warning: str
    command_error: str
    problem: str
    fix: str

    def shown_by_warnings(self, warnings: Any) -> bool:
        return any(str(w).strip().startswith(self.load_warning) for w in warnings or ())

    def shown_by_error(self, exc: RemoteError) -> bool:
        return (exc.reason or exc.message or "").strip().startswith(self.command_error)

    def error(self, server: str, said: str, cause: RemoteError | None = None) -> RemoteError:
        """The error to raise: the runbook's words, then what the product said."""
        return RemoteError(
            f"{self.problem.format(server=server)} {server} said: {said}",
            hint=self.fix.format(server=server), target=server,
            cmdlet=cause.cmdlet if cause else None, reason=cause.reason if cause else said,
            error_id=cause.error_id if cause else None, category=cause.category if cause else None,
        )


@dataclass(frozen=True)
class ShellLoader:
    """How one product's cmdlets are loaded into a session.

    ``template``: the named load template; ``product``: what it loads, in the administrator's
    words (``SharePoint PowerShell``); ``refusal``: how the template's throw text starts on a
    server without the product; ``fix``: the hint for that case, with ``{server}`` in it.
    """

    template: str
    product: str
    refusal: str
    fix: str
    conditions: tuple[ShellCondition, ...] = ()

    def ensure(self, session: Any, *, name: str | None = None) -> LoadedShell:
        """Load the cmdlets into ``session`` unless this session already did; idempotent.

        Raises :class:`RemoteError` naming the server and the fix when the server does not have
        the product; a transport or server fault is raised as it came.
        """
        state = _session_state(session)
        known = state.get(self._state_key)
        if isinstance(known, LoadedShell):
            return known
        server = name or str(getattr(session, "name", "") or "the server")
        try:
            result = session.invoke_template(self.template)
        except RemoteError as exc:
            explained = self.explain(exc, server)
            if explained is not None:
                raise explained from exc
            if not (exc.reason or "").startswith(self.refusal):
                raise
            raise RemoteError(
                f"{server}: the {self.product} cmdlets could not be loaded: {exc.reason or exc.message}",
                hint=self.fix.format(server=server),
                target=server, cmdlet=exc.cmdlet, reason=exc.reason, error_id=exc.error_id, category=exc.category,
            ) from exc
        warnings = list(getattr(result, "warnings", None) or ())
        for condition in self.conditions:
            if condition.shown_by_warnings(warnings):
                said = next(str(w) for w in warnings if str(w).strip().startswith(condition.load_warning))
                raise condition.error(server, said)
        rows = list(result.output)
        row = rows[-1] if rows else {}
        shell = LoadedShell(loaded=as_text(row.get("Loaded")) or "already", version=as_text(row.get("Version")) or None)
        log.info("%s: %s %s", server, self.product, _LOADED_WORDS.get(shell.loaded, "already loaded"))
        state[self._state_key] = shell
        return shell

    def explain(self, exc: RemoteError, server: str) -> RemoteError | None:
        """The condition's error when ``exc`` is how one of :attr:`conditions` shows; else None."""
        for condition in self.conditions:
            if condition.shown_by_error(exc):
                return condition.error(server, exc.reason or exc.message, exc)
        return None

    @property
    def _state_key(self) -> str:
        return f"shell:{self.template}"


def _session_state(session: Any) -> dict[str, Any]:
    state = getattr(session, "state", None)
    if isinstance(state, dict):
        return state
    return _fallback_state.setdefault(session, {})


class ProductClient:
    """Typed operations on one product server through its remote session.

    Subclasses set :attr:`loader` to the product's :class:`ShellLoader`, or leave it None when
    the endpoint offers the product's commands from the start.
    """

    loader: ClassVar[ShellLoader | None] = None

    def __init__(self, session: Any, *, name: str) -> None:
        self.session = session
        self.name = name

    def shell(self) -> LoadedShell | None:
        """The product's cmdlets, loaded once per session before its first command."""
        if self.loader is None:
            return None
        return self.loader.ensure(self.session, name=self.name)

    def _invoke(self, cmdlet: str, parameters: dict[str, Any] | None) -> Any:
        """One cmdlet with bound parameters; the whole result (output and error records)."""
        self.shell()
        try:
            return self.session.invoke(cmdlet, parameters)
        except RemoteError as exc:
            explained = self._explained(exc)
            if explained is None:
                raise
            raise explained from exc

    def _run(self, cmdlet: str, **parameters: Any) -> list[Any]:
        return list(self._invoke(cmdlet, parameters or None).output)

    def _template(self, name: str, **parameters: Any) -> list[Any]:
        self.shell()
        try:
            return list(self.session.invoke_template(name, parameters or None).output)
        except RemoteError as exc:
            explained = self._explained(exc)
            if explained is None:
                raise
            raise explained from exc

    def _explained(self, exc: RemoteError) -> RemoteError | None:
        """The loader's error for the server state ``exc`` shows (e.g. the double hop), if any."""
        return self.loader.explain(exc, self.name) if self.loader is not None else None
