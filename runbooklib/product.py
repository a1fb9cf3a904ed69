"""The base of every product client: one server's remote PowerShell session, typed.

A remote session starts without a product's cmdlets (no profile runs in it). A product whose
cmdlets come in a snap-in or module names a :class:`ShellLoader`: its load template runs once per
session, before the session's first command, and the result is remembered on the session — so
every client of that session shares it. A product whose endpoint already offers its commands
(Exchange) names none.

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
            rows = list(session.invoke_template(self.template).output)
        except RemoteError as exc:
            if not (exc.reason or "").startswith(self.refusal):
                raise
            raise RemoteError(
                f"{server}: the {self.product} cmdlets could not be loaded: {exc.reason or exc.message}",
                hint=self.fix.format(server=server),
                target=server, cmdlet=exc.cmdlet, reason=exc.reason, error_id=exc.error_id, category=exc.category,
            ) from exc
        row = rows[-1] if rows else {}
        shell = LoadedShell(loaded=as_text(row.get("Loaded")) or "already", version=as_text(row.get("Version")) or None)
        log.info("%s: %s %s", server, self.product, _LOADED_WORDS.get(shell.loaded, "already loaded"))
        state[self._state_key] = shell
        return shell

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
        return self.session.invoke(cmdlet, parameters)

    def _run(self, cmdlet: str, **parameters: Any) -> list[Any]:
        return list(self._invoke(cmdlet, parameters or None).output)

    def _template(self, name: str, **parameters: Any) -> list[Any]:
        self.shell()
        return list(self.session.invoke_template(name, parameters or None).output)
