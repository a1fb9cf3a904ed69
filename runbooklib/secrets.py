"""Secret references and the redactor.

Inventories, parameter files and notebook parameters never hold a password: they hold a
*reference* that says where to find it at the moment it is needed::

    env:SP_ADMIN_PASSWORD        an environment variable
    file:secrets/sp-a            a file (relative to the inventory's folder); one trailing
                                 newline is stripped
    keyring:s2s-runbooks/spadmin the operating system's credential store (service/name)
    prompt                       ask the person at the keyboard (JupyterLab or a terminal only)

:func:`resolve_secret` reads the value when it is used and registers it with the process-wide
:class:`Redactor`, so that :func:`redact` — and, once :func:`install_redaction` has run, log
records, tracebacks, printed output and notebook displays — show ``********`` instead.
Nothing here caches a value: resolve again next time.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import re
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO
from urllib.parse import quote, quote_plus

from .errors import InputError, SecretError

__all__ = [
    "MASK",
    "MIN_SECRET_LENGTH",
    "RedactingFilter",
    "RedactingStream",
    "Redactor",
    "SecretRef",
    "install_redaction",
    "is_secret_ref",
    "parse_secret_ref",
    "redact",
    "redact_data",
    "redactor",
    "register_secret",
    "resolve_secret",
]

log = logging.getLogger(__name__)

MASK = "********"
#: Shorter values are not redacted: scrubbing every "a" or "ok" would shred output without
#: protecting anything (a 3-character password is not a secret worth the name).
MIN_SECRET_LENGTH = 4

Scheme = Literal["env", "file", "keyring", "prompt"]

_EXPECTED = "env:NAME, file:PATH, keyring:SERVICE/NAME or prompt"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# --------------------------------------------------------------------------------------------
# References


@dataclass(frozen=True)
class SecretRef:
    """A parsed secret reference; ``str()`` gives it back as written (it is safe to show)."""

    scheme: Scheme
    #: env: the variable name; file: the path as written; keyring: "SERVICE/NAME"; prompt: "".
    target: str = ""

    @property
    def service(self) -> str:
        """keyring: the service part (everything before the last ``/``)."""
        return self.target.rpartition("/")[0]

    @property
    def username(self) -> str:
        """keyring: the name part (everything after the last ``/``)."""
        return self.target.rpartition("/")[2]

    def path(self, base_dir: str | os.PathLike[str] | None = None) -> Path:
        """file: the absolute path, a relative one taken from ``base_dir`` (default: cwd)."""
        if self.scheme != "file":
            raise ValueError(f"{self} is not a file: reference")
        p = Path(self.target).expanduser()
        if not p.is_absolute():
            p = Path(base_dir or os.getcwd()) / p
        return p.resolve()

    def __str__(self) -> str:
        return "prompt" if self.scheme == "prompt" else f"{self.scheme}:{self.target}"


def _looks_like_ref(text: str) -> bool:
    return text == "prompt" or text.split(":", 1)[0] in ("env", "file", "keyring")


def parse_secret_ref(text: object, *, source: str | None = None, field: str | None = None) -> SecretRef:
    """Parse and validate a secret reference; :class:`InputError` says what is expected.

    A value that does not start with a known scheme is not echoed: it may be a password
    pasted where a reference belongs.
    """
    if isinstance(text, SecretRef):
        return text
    if not isinstance(text, str):
        raise InputError(
            f"a secret reference must be text, got {type(text).__name__}; expected {_EXPECTED}",
            source=source,
            field=field,
        )
    stripped = text.strip()
    if stripped == "prompt":
        return SecretRef("prompt")
    scheme, sep, rest = stripped.partition(":")
    if not sep or scheme not in ("env", "file", "keyring"):
        raise InputError(
            f"this is not a secret reference (value not shown: {len(text)} characters, it may be "
            f"a password); expected {_EXPECTED}",
            hint="store the password in an environment variable, a file or the keyring and "
            "write the reference here, e.g. env:SP_ADMIN_PASSWORD",
            source=source,
            field=field,
        )
    if scheme == "env":
        if not _ENV_NAME.match(rest):
            raise InputError(
                f"{stripped!r} does not name an environment variable; expected env:NAME with "
                "NAME made of letters, digits and underscores",
                source=source,
                field=field,
            )
        return SecretRef("env", rest)
    if scheme == "file":
        if not rest.strip():
            raise InputError(f"{stripped!r} has no path; expected file:PATH", source=source, field=field)
        return SecretRef("file", rest)
    service, slash, name = rest.rpartition("/")
    if not slash or not service.strip() or not name.strip():
        raise InputError(
            f"{stripped!r} is not a keyring reference; expected keyring:SERVICE/NAME, "
            "e.g. keyring:s2s-runbooks/spadmin",
            source=source,
            field=field,
        )
    return SecretRef("keyring", rest)


def is_secret_ref(text: object) -> bool:
    """True when ``text`` is a well-formed secret reference."""
    try:
        parse_secret_ref(text)
    except InputError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# Resolution


def resolve_secret(
    ref: str | SecretRef,
    *,
    purpose: str,
    interactive: bool = False,
    base_dir: str | os.PathLike[str] | None = None,
) -> str:
    """Read the secret ``ref`` points to, now, and register it with the redactor.

    ``purpose`` names what the secret is for, in the administrator's words ("the password of
    LAB\\spadmin on sp-a"); it appears in errors. ``interactive`` allows ``prompt``.
    ``base_dir`` is where a relative ``file:`` path starts (the inventory's folder).
    Raises :class:`SecretError` (an :class:`InputError`) when the value cannot be had.
    """
    parsed = parse_secret_ref(ref)
    if parsed.scheme == "env":
        value = _from_env(parsed, purpose)
    elif parsed.scheme == "file":
        value = _from_file(parsed, purpose, base_dir)
    elif parsed.scheme == "keyring":
        value = _from_keyring(parsed, purpose)
    else:
        value = _from_prompt(purpose, interactive)
    if value == "":
        raise SecretError(
            f"the secret for {purpose} ({parsed}) is empty",
            hint="store the value there, or point the reference at the right place",
        )
    register_secret(value)
    log.debug("resolved the secret for %s from %s", purpose, parsed)
    return value


def _from_env(ref: SecretRef, purpose: str) -> str:
    value = os.environ.get(ref.target)
    if value is None:
        raise SecretError(
            f"the secret for {purpose} comes from the environment variable {ref.target}, "
            "which is not set",
            hint=f"set {ref.target} in the environment that runs the runbook (for a notebook: "
            "before starting JupyterLab), or use a file: or keyring: reference",
        )
    return value


def _from_file(ref: SecretRef, purpose: str, base_dir: str | os.PathLike[str] | None) -> str:
    path = ref.path(base_dir)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SecretError(
            f"the secret for {purpose} comes from the file {path}, which does not exist",
            hint="create it (readable only by you) or correct the file: reference; relative "
            "paths start at the inventory's folder",
        ) from None
    except IsADirectoryError:
        raise SecretError(
            f"the secret for {purpose} comes from {path}, which is a folder, not a file",
            hint="point the file: reference at the file that holds the secret",
        ) from None
    except PermissionError:
        raise SecretError(
            f"the secret for {purpose} comes from the file {path}, which this account cannot read",
            hint="give the account that runs the runbook read access to it",
        ) from None
    except UnicodeDecodeError:
        raise SecretError(
            f"the secret file {path} for {purpose} is not UTF-8 text",
            hint="save the secret as UTF-8 text",
        ) from None
    if os.name == "posix":
        try:
            if path.stat().st_mode & 0o077:
                log.warning("the secret file %s can be read by other accounts; chmod 600 it", path)
        except OSError:  # pragma: no cover - raced with a delete; reading already succeeded
            pass
    # Editors add a final newline; it is never part of the password. Only one is stripped so
    # that a secret that really ends in whitespace survives.
    if raw.endswith("\r\n"):
        raw = raw[:-2]
    elif raw.endswith("\n"):
        raw = raw[:-1]
    return raw


def _from_keyring(ref: SecretRef, purpose: str) -> str:
    import keyring
    from keyring.errors import KeyringError

    try:
        value = keyring.get_password(ref.service, ref.username)
    except KeyringError as exc:
        raise SecretError(
            f"the secret for {purpose} comes from the keyring ({ref}), but no keyring can be "
            f"used here: {type(exc).__name__}",
            hint="install or unlock a keyring backend, or use an env: or file: reference",
        ) from None
    if value is None:
        raise SecretError(
            f"the keyring has no entry for service {ref.service!r} and name {ref.username!r} "
            f"(the secret for {purpose})",
            hint=f"store it first: keyring set {ref.service} {ref.username}",
        )
    return value


def _from_prompt(purpose: str, interactive: bool) -> str:
    headless = SecretError(
        f"the secret for {purpose} is set to 'prompt', but this run cannot ask anyone",
        hint="in headless runs use env:NAME, file:PATH or keyring:SERVICE/NAME instead",
    )
    if not interactive:
        raise headless
    # In a Jupyter kernel getpass is replaced by the kernel's masked input request; in a
    # terminal it reads without echo. Both fail when nobody can answer.
    in_kernel = hasattr(_ipython_shell(), "kernel")
    if not in_kernel and not (sys.stdin is not None and sys.stdin.isatty()):
        raise headless
    try:
        return getpass.getpass(f"Secret for {purpose}: ")
    except (EOFError, KeyboardInterrupt, OSError) as exc:
        raise headless from exc
    except Exception as exc:  # ipykernel's StdinNotImplementedError when stdin is not allowed
        if type(exc).__name__ == "StdinNotImplementedError":
            raise headless from None
        raise


# --------------------------------------------------------------------------------------------
# Redaction


class Redactor:
    """Remembers secret values and replaces them with :data:`MASK` in text.

    Besides the value itself it also scrubs its ``repr``, JSON and URL-encoded forms, so a
    secret with a backslash, a quote or a ``+`` is caught when printed inside a dict, a JSON
    document or a logged request body.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def register(self, value: str) -> None:
        if not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH:
            return
        # A value made only of the mask's character would turn the mask into itself again.
        if set(value) <= set(MASK):
            return
        # The forms a value takes when shown inside a repr, a JSON document or a form/URL body.
        forms = {value, repr(value)[1:-1], json.dumps(value)[1:-1], quote(value, safe=""),
                 quote_plus(value, safe="")}
        with self._lock:
            before = len(self._values)
            self._values.update(f for f in forms if len(f) >= MIN_SECRET_LENGTH)
            if len(self._values) != before:
                # Longest first so that a secret containing another is masked whole.
                ordered = sorted(self._values, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def clear(self) -> None:
        """Forget every value (tests)."""
        with self._lock:
            self._values.clear()
            self._pattern = None

    def __len__(self) -> int:
        return len(self._values)

    def redact(self, text: str) -> str:
        pattern = self._pattern
        if pattern is None or not isinstance(text, str):
            return text
        return pattern.sub(MASK, text)

    def redact_data(self, obj: Any) -> Any:
        """A copy of ``obj`` (dicts, lists, tuples, strings) with every string redacted."""
        if self._pattern is None:
            return obj
        if isinstance(obj, str):
            return self.redact(obj)
        if isinstance(obj, dict):
            return {self.redact_data(k): self.redact_data(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self.redact_data(v) for v in obj]
        if isinstance(obj, tuple):
            return tuple(self.redact_data(v) for v in obj)
        return obj


#: The process-wide redactor every resolved secret is registered with.
redactor = Redactor()


def register_secret(value: str) -> None:
    """Register a value obtained some other way (e.g. a generated client secret) for redaction."""
    redactor.register(value)


def redact(text: str) -> str:
    """``text`` with every registered secret (of 4 characters or more) replaced by ``********``."""
    return redactor.redact(text)


def redact_data(obj: Any) -> Any:
    """Like :func:`redact`, through dicts, lists and tuples."""
    return redactor.redact_data(obj)


class RedactingFilter(logging.Filter):
    """Scrubs a log record's message (with its arguments merged in) and its exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        _scrub_record(record)
        return True


def _scrub_record(record: logging.LogRecord) -> logging.LogRecord:
    if getattr(record, "_runbook_redacted", False) or redactor._pattern is None:
        return record
    try:
        message = record.getMessage()
    except Exception:  # a malformed format string: let logging report it as usual
        return record
    scrubbed = redact(message)
    # Records without a secret keep their msg/args as logged (other code may inspect them).
    if scrubbed != message:
        record.msg = scrubbed
        record.args = None
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    record._runbook_redacted = True  # type: ignore[attr-defined]
    return record


class RedactingStream:
    """A text stream that redacts what is written before passing it on.

    Everything else (flush, fileno, ipykernel's ``set_parent`` …) goes to the wrapped stream.
    """

    _runbook_redacting = True

    def __init__(self, wrapped: TextIO) -> None:
        self.wrapped = wrapped

    def write(self, text: str) -> int:
        self.wrapped.write(redact(text) if isinstance(text, str) else text)
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)

    def __repr__(self) -> str:
        return f"RedactingStream({self.wrapped!r})"


# Hooks ---------------------------------------------------------------------------------------

_install_lock = threading.Lock()
_installed: dict[str, bool] = {}


def install_redaction(*, streams: bool = True) -> None:
    """Scrub registered secrets from everything the process shows. Safe to call repeatedly.

    Hooks: log records (all loggers, through the record factory, plus a filter on the root
    logger's handlers), every traceback the ``traceback`` module formats, ``sys.excepthook``
    and ``threading.excepthook``, ``sys.stdout``/``sys.stderr`` (unless ``streams=False``), and
    inside IPython the display formatter, the display publisher and the traceback display.
    """
    with _install_lock:
        if not _installed.get("base"):
            _install_logging()
            _install_traceback()
            _installed["base"] = True
        if streams:
            _install_streams()
        shell = _ipython_shell()
        if shell is not None and not getattr(shell, "_runbook_redaction", False):
            _install_ipython(shell)


def _install_logging() -> None:
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return _scrub_record(previous(*args, **kwargs))

    logging.setLogRecordFactory(factory)
    root = logging.getLogger()
    flt = RedactingFilter()
    root.addFilter(flt)
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(flt)


def _install_traceback() -> None:
    # Every formatter in the traceback module (format_exc, print_exception, logging's
    # formatException, papermill's …) goes through TracebackException.format.
    original_format = traceback.TracebackException.format

    def format(self: traceback.TracebackException, **kwargs: Any) -> Iterator[str]:
        for chunk in original_format(self, **kwargs):
            yield redact(chunk)

    traceback.TracebackException.format = format  # type: ignore[method-assign]

    original_only = traceback.TracebackException.format_exception_only

    def format_exception_only(self: traceback.TracebackException, **kwargs: Any) -> Iterator[str]:
        for chunk in original_only(self, **kwargs):
            yield redact(chunk)

    traceback.TracebackException.format_exception_only = format_exception_only  # type: ignore[method-assign]

    def excepthook(etype: type[BaseException], value: BaseException, tb: Any) -> None:
        text = "".join(traceback.format_exception(etype, value, tb))
        stream = sys.stderr or sys.__stderr__
        if stream is not None:
            stream.write(redact(text))
            stream.flush()

    sys.excepthook = excepthook

    def thread_excepthook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        name = args.thread.name if args.thread is not None else "<unknown>"
        text = "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback))
        stream = sys.stderr or sys.__stderr__
        if stream is not None:
            stream.write(redact(f"Exception in thread {name}:\n{text}"))
            stream.flush()

    threading.excepthook = thread_excepthook


def _install_streams() -> None:
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not getattr(stream, "_runbook_redacting", False):
            setattr(sys, name, RedactingStream(stream))


def _ipython_shell() -> Any:
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    try:
        return ipython.get_ipython()
    except Exception:  # pragma: no cover - a half-imported IPython
        return None


def _install_ipython(shell: Any) -> None:
    """Scrub what IPython sends to the notebook: results, displays and tracebacks."""
    formatter = shell.display_formatter
    original_format: Callable[..., Any] = formatter.format

    def format(obj: Any, include: Any = None, exclude: Any = None) -> Any:
        data, metadata = original_format(obj, include=include, exclude=exclude)
        return redact_data(data), metadata

    formatter.format = format

    publisher = getattr(shell, "display_pub", None)
    if publisher is not None:
        original_publish: Callable[..., Any] = publisher.publish

        def publish(data: Any, metadata: Any = None, *args: Any, **kwargs: Any) -> Any:
            return original_publish(redact_data(data), metadata, *args, **kwargs)

        publisher.publish = publish

    # ZMQInteractiveShell sends ename/evalue/traceback from here; the terminal shell prints them.
    original_show: Callable[..., Any] = shell._showtraceback

    def _showtraceback(etype: Any, evalue: Any, stb: Any) -> Any:
        safe_value = _RedactedException(redact(str(evalue)))
        return original_show(etype, safe_value, [redact(line) for line in stb])

    shell._showtraceback = _showtraceback
    shell._runbook_redaction = True


class _RedactedException(Exception):
    """Stands in for an exception value when only its (redacted) text is used."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._text = text

    def __str__(self) -> str:
        return self._text

