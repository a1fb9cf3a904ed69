"""The one exception tree of runbooklib.

Every message is written for the administrator running the runbook: it says what
went wrong in their terms and what to do next. No message ever contains a secret
value (the redactor in :mod:`runbooklib.secrets` scrubs them as a second line of
defence, but messages are built without them in the first place).

::

    RunbookError                 base; ``hint`` says what to do next
    ├── InputError               bad parameters, inventory or secret reference
    │                            (exit 2, nothing contacted, nothing changed)
    │   └── SecretError          a secret reference that cannot be resolved
    ├── CertificateError         a certificate that cannot be loaded or used
    ├── StepFailed               a step's check, apply or verify failed (exit 1)
    ├── PlanDeparted             with --require-plan: a step would change what its approved
    │                            plan did not list (exit 1, nothing changed by that step)
    ├── ConnectionFailed         a target did not answer, or TLS/authentication failed
    │   └── AuthenticationFailed wrong user name or password, or the account lacks rights
    ├── RemoteError              a remote PowerShell command wrote an error record
    ├── GraphError               Microsoft Graph or Entra ID refused a request
    ├── MetadataError            an S2S metadata document is unreachable or malformed
    ├── TrustError               a trust is configured in a way that cannot work
    ├── TokenError               an S2S token is malformed or fails validation
    ├── TargetBusy               another run holds a target this run would change (exit 1, nothing changed)
    ├── RunInterrupted           the operator stopped the run at a step boundary (Ctrl-C)
    └── ArchiveError             the audit archive is inconsistent or cannot be written

Exit codes of the ``runbook`` command: :class:`InputError` → 2, any other
:class:`RunbookError` raised by a run → 1.
"""

from __future__ import annotations

__all__ = [
    "ArchiveError",
    "AuthenticationFailed",
    "CertificateError",
    "ConnectionFailed",
    "GraphError",
    "InputError",
    "MetadataError",
    "PlanDeparted",
    "RemoteError",
    "RunInterrupted",
    "RunbookError",
    "SecretError",
    "StepFailed",
    "TargetBusy",
    "TokenError",
    "TrustError",
]


class RunbookError(Exception):
    """Base of every error runbooklib raises on purpose.

    ``message`` says what went wrong; ``hint`` says what the administrator should do.
    """

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  → {self.hint}"
        return self.message

    def _render_traceback_(self) -> list[str]:
        """How IPython shows this error in a notebook: what happened and what to do, without the
        Python stack — these are the runbook's expected failures, not defects."""
        lines = [f"\x1b[1;31m{type(self).__name__}\x1b[0m: {self.message}"]
        if self.hint:
            lines.append(f"\x1b[1mWhat to do:\x1b[0m {self.hint}")
        return lines


class InputError(RunbookError):
    """Invalid parameters, inventory or secret reference, caught before anything is contacted.

    ``source`` is the file (or ``-p`` option) and ``field`` the dotted key path.
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        source: str | None = None,
        field: str | None = None,
    ) -> None:
        where = ": ".join(p for p in (source, field) if p)
        super().__init__(f"{where}: {message}" if where else message, hint=hint)
        self.source = source
        self.field = field


class SecretError(InputError):
    """A secret reference that cannot be resolved (unset variable, missing file, no keyring entry)."""


class CertificateError(RunbookError):
    """A certificate that cannot be loaded or is not fit for its purpose."""


class StepFailed(RunbookError):
    """A step failed; the run stops and is archived as failed."""

    def __init__(self, message: str, *, hint: str | None = None, step: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.step = step


class PlanDeparted(RunbookError):
    """An apply held to its approved plan found steps that would change what the plan did not list.

    The message starts with the (first) departing step's id; ``departures`` holds every one found
    (:class:`runbooklib.approved_plan.Departure`).
    """

    def __init__(self, message: str, *, hint: str | None = None, departures: list[object] | None = None) -> None:
        super().__init__(message, hint=hint)
        self.departures = list(departures or [])
        self.step = getattr(self.departures[0], "step", None) if self.departures else None


class ConnectionFailed(RunbookError):
    """A target did not answer, the connection dropped, or TLS could not be established."""

    def __init__(self, message: str, *, hint: str | None = None, target: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.target = target


class AuthenticationFailed(ConnectionFailed):
    """The target refused the credentials."""


class RemoteError(RunbookError):
    """A remote PowerShell command failed with an error record.

    ``cmdlet`` is the command (or template) that failed, ``reason`` the product's own message,
    ``error_id`` its FullyQualifiedErrorId and ``category`` its CategoryInfo category.
    """

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        target: str | None = None,
        cmdlet: str | None = None,
        reason: str | None = None,
        error_id: str | None = None,
        category: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.target = target
        self.cmdlet = cmdlet
        self.reason = reason
        self.error_id = error_id
        self.category = category


class GraphError(RunbookError):
    """Microsoft Graph or Entra ID refused a request; ``code`` is Graph's error code."""

    def __init__(
        self, message: str, *, hint: str | None = None, code: str | None = None, status: int | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.code = code
        self.status = status


class MetadataError(RunbookError):
    """An S2S JSON metadata document could not be fetched or does not have the expected shape."""


class TrustError(RunbookError):
    """A trust is configured in a way that cannot work (wrong issuer, realm, certificate …)."""


class TokenError(RunbookError):
    """An S2S token is malformed or fails validation; ``reason`` is a short machine-readable cause."""

    def __init__(self, message: str, *, hint: str | None = None, reason: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason


class TargetBusy(RunbookError):
    """Another run holds the lock of a server or tenant this run would change, for longer than
    this run would wait; ``target`` is its inventory name, ``holder`` what the lock says of that run."""

    def __init__(self, message: str, *, hint: str | None = None, target: str | None = None,
                 holder: dict[str, object] | None = None) -> None:
        super().__init__(message, hint=hint)
        self.target = target
        self.holder = dict(holder or {})


class RunInterrupted(RunbookError):
    """The operator asked the run to stop (Ctrl-C); it stopped between two steps, never inside one."""


class ArchiveError(RunbookError):
    """The audit archive cannot be written, or a record or the index chain does not verify."""
