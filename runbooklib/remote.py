"""PowerShell remoting to the servers of an estate, over pypsrp (WS-Management + PSRP).

One :class:`RemoteSession` is one runspace pool on one server, reused for every command of a
run. Commands are built only from a cmdlet name plus bound parameters, or from a named script
template file (``runbooklib/templates/<product>/<name>.ps1``) plus bound parameters: values are
never pasted into script text, so nothing a user types can change what runs.

Values sent::

    str, int, bool, float, bytes, uuid.UUID, list, dict   as themselves
    SecureValue("…")                                    a SecureString (key exchange first)
    RemoteCredential(user, password)                    a PSCredential (key exchange first)
    RemoteObject                                        the deserialized object it came as

Values received: primitives as they are, hashtables as ``dict``, arrays as ``list``, objects as
:class:`RemoteObject` (a ``dict`` of properties with ``.type_names`` as PowerShell shows them,
``Deserialized.`` prefix included). Remoting serialises objects to depth 1: an object inside a
property arrives as its ``ToString()`` text, as it does in a real remote session.

Session configuration: the runspace pool opens the target's ``configuration`` (default
``Microsoft.PowerShell``; Exchange's commands-only ``Microsoft.Exchange`` at its ``/PowerShell``
address, where only ``invoke`` with a cmdlet works — a template is script text).

Transport security: TLS is always verified — against the target's ``ca_bundle`` when it has one,
the system store otherwise. Basic authentication is only ever sent over HTTPS; NTLM, Kerberos
and CredSSP are handed to pypsrp as they are. The password never appears in a message, repr or
log line written here.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import urlsplit

import requests
from pypsrp.complex_objects import GenericComplexObject, PSInvocationState
from pypsrp.complex_objects import PSCredential as _PypsrpCredential
from pypsrp.exceptions import AuthenticationError, WinRMError, WinRMTransportError, WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.serializer import TaggedValue
from pypsrp.wsman import WSMan
from requests_credssp.exceptions import AuthenticationException as CredSSPRefused
from requests_credssp.exceptions import NTStatusException as CredSSPStatus

from .errors import AuthenticationFailed, ConnectionFailed, InputError, RemoteError
from .wellknown import EXCHANGE_CONFIGURATION, POWERSHELL_CONFIGURATION

__all__ = [
    "CommandResult",
    "ErrorRecordInfo",
    "RemoteConnections",
    "RemoteCredential",
    "RemoteObject",
    "RemoteSession",
    "SecureValue",
    "TEMPLATES_DIR",
    "load_template",
]

log = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

_AUTH = {"basic": "basic", "ntlm": "ntlm", "kerberos": "kerberos", "credssp": "credssp", "negotiate": "negotiate"}
_PARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TEMPLATE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_TEMPLATE_FIRST_LINE = re.compile(r"^# runbook-template: (?P<name>\S+) v(?P<version>\d+)\s*$")
_INT32 = range(-(2**31), 2**31)
_CONFIGURATION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# How WinRM's reason starts when the shell's resource URI names no registered configuration.
_UNKNOWN_CONFIGURATION = "session configuration in the WSMan: drive"
# requests-credssp's words when the request that completed the handshake was answered with neither
# 200 nor a token: the credentials were accepted (a wrong password fails an earlier step).
_CREDSSP_ANSWERED_OTHERWISE = "after step Credential exchange"

# System.Management.Automation.ErrorCategory, by value.
_ERROR_CATEGORIES = (
    "NotSpecified", "OpenError", "CloseError", "DeviceError", "DeadlockDetected", "InvalidArgument", "InvalidData",
    "InvalidOperation", "InvalidResult", "InvalidType", "MetadataError", "NotImplemented", "NotInstalled",
    "ObjectNotFound", "OperationStopped", "OperationTimeout", "SyntaxError", "ParserError", "PermissionDenied",
    "ResourceBusy", "ResourceExists", "ResourceUnavailable", "ReadError", "WriteError", "FromStdErr",
    "SecurityError", "ProtocolError", "ConnectionError", "AuthenticationError", "LimitsExceeded",
    "QuotaExceeded", "NotEnabled",
)


# --------------------------------------------------------------------------- values

class SecureValue(str):
    """A string the remote side receives as a SecureString (encrypted with the pool's session key)."""

    def __repr__(self) -> str:
        return "SecureValue('********')"


@dataclass(frozen=True)
class RemoteCredential:
    """A PSCredential parameter; the password travels as an encrypted SecureString."""

    username: str
    password: str = field(repr=False)


class RemoteObject(dict):
    """An object received from a remote command: its properties, plus ``type_names`` and ``to_string``.

    Properties are also readable as attributes (``obj.Name``), as in PowerShell.
    """

    def __init__(self, properties: dict[str, Any] | None = None, *, type_names: Iterable[str] = (),
                 to_string: str | None = None) -> None:
        super().__init__(properties or {})
        self.type_names: list[str] = list(type_names)
        self.to_string = to_string

    def is_type(self, type_name: str) -> bool:
        """True if the object is (a deserialized) ``type_name``, e.g. ``Microsoft.SharePoint.SPAppPrincipal``."""
        bare = type_name.removeprefix("Deserialized.")
        return any(t.removeprefix("Deserialized.") == bare for t in self.type_names)

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __str__(self) -> str:
        return self.to_string if self.to_string is not None else dict.__repr__(self)

    def __repr__(self) -> str:
        kind = self.type_names[0] if self.type_names else "object"
        return f"RemoteObject({kind}, {dict.__repr__(self)})"


@dataclass(frozen=True)
class ErrorRecordInfo:
    """One PowerShell error record, in plain terms.

    ``error_id`` is the FullyQualifiedErrorId without the ``,<command>`` suffix PowerShell adds
    (``fully_qualified_error_id`` keeps it); ``category`` is the ErrorCategory name.
    """

    message: str
    error_id: str
    category: str
    target: Any
    command: str | None
    fully_qualified_error_id: str = ""

    def __str__(self) -> str:
        return self.message


@dataclass
class CommandResult:
    """What a command that did not fail returned: output objects and its non-terminating records."""

    output: list[Any] = field(default_factory=list)
    errors: list[ErrorRecordInfo] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    verbose: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def _to_wire(value: Any, *, where: str) -> tuple[Any, bool]:
    """A Python value → what pypsrp serialises; the flag says a session key is needed."""
    if value is None or isinstance(value, bool):
        return value, False
    if isinstance(value, SecureValue):
        return TaggedValue("SS", str(value)), True
    if isinstance(value, RemoteCredential):
        return _PypsrpCredential(username=value.username, password=value.password), True
    if isinstance(value, RemoteObject):
        obj = GenericComplexObject()
        obj.types = list(value.type_names) or ["System.Management.Automation.PSCustomObject", "System.Object"]
        obj.to_string = value.to_string
        needs_key = False
        for key, item in value.items():
            obj.adapted_properties[str(key)], needed = _to_wire(item, where=where)
            needs_key = needs_key or needed
        return obj, needs_key
    if isinstance(value, int):
        # pypsrp picks its XML tag from the exact type: normalise subclasses (IntEnum …).
        return (int(value), False) if int(value) in _INT32 else (TaggedValue("I64", int(value)), False)
    if isinstance(value, float):
        return TaggedValue("Db", float(value)), False
    if isinstance(value, str):
        return str(value), False
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value), False
    if isinstance(value, uuid.UUID):
        return uuid.UUID(str(value)), False
    if isinstance(value, Path):
        return str(value), False
    if isinstance(value, dict):
        out, needs_key = {}, False
        for key, item in value.items():
            wire_key, k_needed = _to_wire(key, where=where)
            out[wire_key], v_needed = _to_wire(item, where=where)
            needs_key = needs_key or k_needed or v_needed
        return out, needs_key
    if isinstance(value, (list, tuple)):
        items = [_to_wire(item, where=where) for item in value]
        return [i for i, _ in items], any(n for _, n in items)
    raise InputError(
        f"cannot send a value of type {type(value).__name__} to a remote command ({where})",
        hint="Pass str, int, bool, float, bytes, list, dict, SecureValue, RemoteCredential or a RemoteObject.",
    )


def _deserialized(type_names: Iterable[str]) -> list[str]:
    return [t if t.startswith("Deserialized.") else f"Deserialized.{t}" for t in type_names]


def _to_plain(value: Any) -> Any:
    """A pypsrp output value → plain Python."""
    if value is None or isinstance(value, (bool, int, float, str, bytes, uuid.UUID)):
        return value
    if isinstance(value, GenericComplexObject):
        properties = {k: _to_plain(v) for k, v in value.adapted_properties.items()}
        properties.update({k: _to_plain(v) for k, v in value.extended_properties.items()})
        if not properties and value.property_sets:
            # a primitive wrapped in an object with extra type names: keep the value
            return _to_plain(value.property_sets[0]) if len(value.property_sets) == 1 else [
                _to_plain(v) for v in value.property_sets]
        return RemoteObject(properties, type_names=_deserialized(value.types), to_string=value.to_string)
    if isinstance(value, dict):
        return {_to_plain(k): _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    return str(value)


def _category_name(value: Any) -> str:
    try:
        return _ERROR_CATEGORIES[int(value)]
    except (TypeError, ValueError, IndexError):
        return "NotSpecified"


def _error_info(record: Any, command: str) -> ErrorRecordInfo:
    exception = getattr(record, "exception", None)
    exception_message = None
    if isinstance(exception, GenericComplexObject):
        exception_message = exception.adapted_properties.get("Message") or exception.extended_properties.get(
            "Message")
    message = getattr(record, "details_message", None) or exception_message or str(record) or "(no message)"
    fqid = getattr(record, "fq_error", None) or ""
    target = getattr(record, "target_object", None)
    if target is None:
        target = getattr(record, "target_name", None) or None
    return ErrorRecordInfo(
        message=str(message),
        error_id=fqid.split(",", 1)[0],
        category=_category_name(getattr(record, "category", 0)),
        target=_to_plain(target),
        command=getattr(record, "command_name", None) or getattr(record, "invocation_name", None) or command,
        fully_qualified_error_id=fqid,
    )


# --------------------------------------------------------------------------- templates

_template_cache: dict[tuple[Path, float], str] = {}


def load_template(name: str, templates_dir: Path | None = None) -> str:
    """The text of script template ``<product>/<name>``, checked to start with its own marker line."""
    if not _TEMPLATE_NAME.match(name):
        raise InputError(f"script template name {name!r} is not of the form <product>/<name>")
    base = Path(templates_dir) if templates_dir is not None else TEMPLATES_DIR
    path = base / f"{name}.ps1"
    try:
        stamp = path.stat().st_mtime
    except OSError:
        raise InputError(f"script template {name} does not exist (expected {path})",
                         hint="Template names are <product>/<file name without .ps1> under runbooklib/templates.")
    cached = _template_cache.get((path, stamp))
    if cached is not None:
        return cached
    text = path.read_text(encoding="utf-8-sig")
    first = text.splitlines()[0] if text else ""
    match = _TEMPLATE_FIRST_LINE.match(first)
    if not match or match["name"] != name:
        raise InputError(
            f"script template {path} must start with the line '# runbook-template: {name} v<N>'",
            hint="The first line names the template and its version; the servers recognise templates by it.",
        )
    _template_cache[(path, stamp)] = text
    return text


# --------------------------------------------------------------------------- sessions

@dataclass(frozen=True)
class _Endpoint:
    name: str
    url: str
    host: str
    port: int
    path: str
    ssl: bool
    auth: str
    username: str
    ca_bundle: Path | None
    configuration: str = POWERSHELL_CONFIGURATION


def auth_support_problem(auth: str) -> str | None:
    """Why this machine cannot use ``auth`` for PowerShell remoting, or None when it can.

    CredSSP needs requests-credssp (a dependency); Kerberos needs GSSAPI bindings and the system's
    Kerberos libraries, which only some machines have (the ``kerberos`` extra).
    """
    auth = auth.lower()
    if auth == "credssp":
        try:
            import requests_credssp  # noqa: F401
        except ImportError:
            return "CredSSP needs the requests-credssp package: reinstall s2s-runbooks with its dependencies"
    if auth == "kerberos":
        try:
            import gssapi  # noqa: F401
        except ImportError:
            return ("Kerberos needs GSSAPI: install the system's Kerberos libraries (e.g. libkrb5-dev) and "
                    "pip install 's2s-runbooks[kerberos]', or use credssp/ntlm")
    return None


def _endpoint(target: Any) -> _Endpoint:
    name = str(getattr(target, "name", "") or "server")
    url = str(getattr(target, "winrm", "") or "")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InputError(f"{name}: WinRM address {url!r} is not an http(s) URL",
                         hint="Use the form https://<server>:5986/wsman.")
    auth = str(getattr(target, "auth", "") or "").lower()
    if auth not in _AUTH:
        raise InputError(f"{name}: authentication {auth!r} is not supported for PowerShell remoting here",
                         hint="Use basic (HTTPS only), ntlm, kerberos or credssp.")
    problem = auth_support_problem(auth)
    if problem:
        raise InputError(f"{name}: {problem}", field=f"servers.{name}.auth")
    if parts.scheme == "http":
        if auth == "basic":
            raise InputError(f"{name}: Basic authentication over plain HTTP would send the password in clear",
                             hint=f"Use an https:// WinRM address for {name}, or ntlm/kerberos.")
        if not getattr(target, "allow_http", False):
            raise InputError(f"{name}: WinRM address {url} is plain HTTP",
                             hint="Use https://, or set allow_http: true for this server in the inventory.")
    ca_bundle = getattr(target, "ca_bundle", None)
    configuration = str(getattr(target, "configuration", "") or POWERSHELL_CONFIGURATION)
    if not _CONFIGURATION_NAME.match(configuration):
        raise InputError(f"{name}: {configuration!r} is not a PowerShell session configuration name",
                         hint="Use the name Get-PSSessionConfiguration shows on the server, e.g. Microsoft.PowerShell.",
                         field=f"servers.{name}.configuration")
    return _Endpoint(
        name=name, url=url, host=parts.hostname, port=parts.port or (5986 if parts.scheme == "https" else 5985),
        path=(parts.path or "/wsman").lstrip("/") or "wsman", ssl=parts.scheme == "https", auth=_AUTH[auth],
        username=str(getattr(target, "username", "") or ""), ca_bundle=Path(ca_bundle) if ca_bundle else None,
        configuration=configuration,
    )


class RemoteSession:
    """A PowerShell remoting session (one runspace pool) on one server. Use :meth:`open`."""

    def __init__(self, endpoint: _Endpoint, pool: RunspacePool, *, templates_dir: Path | None) -> None:
        self._endpoint = endpoint
        self._pool = pool
        self._templates_dir = templates_dir
        self._keys_exchanged = False
        self._closed = False
        self._broken = False
        self._lock = threading.Lock()  # one pool, one command at a time
        # What clients learned about this runspace and must not redo in it (e.g. that the product's
        # snap-in or module is loaded); a new session starts empty, as a new runspace does.
        self.state: dict[str, Any] = {}

    @classmethod
    def open(cls, target: Any, *, password: str, templates_dir: Path | None = None,
             operation_timeout: int = 20, connection_timeout: int = 10, read_timeout: int = 30) -> "RemoteSession":
        """Connect to ``target`` (anything with name, winrm, auth, username, ca_bundle; optionally
        configuration) and open a runspace pool of its session configuration."""
        endpoint = _endpoint(target)
        log.info("Opening a PowerShell remoting session to %s (%s, %s) as %s", endpoint.name, endpoint.url,
                 endpoint.configuration, endpoint.username)
        wsman = WSMan(
            endpoint.host, port=endpoint.port, path=endpoint.path, ssl=endpoint.ssl,
            username=endpoint.username or None, password=password, auth=endpoint.auth,
            # verified against the lab/enterprise CA bundle when given, else the system store; never off
            cert_validation=str(endpoint.ca_bundle) if endpoint.ca_bundle else True,
            operation_timeout=operation_timeout, connection_timeout=connection_timeout,
            read_timeout=max(read_timeout, operation_timeout + 5),
        )
        pool = RunspacePool(wsman, configuration_name=endpoint.configuration)
        try:
            pool.open()
        except Exception as exc:
            wsman.close()
            raise _translate(exc, endpoint, "opening the session") from None
        return cls(endpoint, pool, templates_dir=templates_dir)

    # ------------------------------------------------------------------ properties

    @property
    def name(self) -> str:
        return self._endpoint.name

    @property
    def url(self) -> str:
        return self._endpoint.url

    @property
    def username(self) -> str:
        return self._endpoint.username

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def broken(self) -> bool:
        """True once the connection failed; the session cannot be used again."""
        return self._broken

    def __repr__(self) -> str:
        state = "closed" if self._closed else "broken" if self._broken else "open"
        return f"<RemoteSession {self.name} {self.url} as {self.username} ({state})>"

    def __enter__(self) -> "RemoteSession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ commands

    def invoke(self, cmdlet: str, parameters: dict[str, Any] | None = None) -> CommandResult:
        """Run ``cmdlet`` with ``parameters`` (``None`` as a value = a bare switch).

        Raises :class:`RemoteError` when the command ends with a terminating error.
        """
        if not re.match(r"^[A-Za-z][A-Za-z0-9]*-[A-Za-z0-9]+$", cmdlet or ""):
            raise InputError(f"{cmdlet!r} is not a cmdlet name (Verb-Noun)")
        return self._run(cmdlet, lambda ps: ps.add_cmdlet(cmdlet), parameters)

    def invoke_template(self, name: str, parameters: dict[str, Any] | None = None) -> CommandResult:
        """Run script template ``<product>/<name>`` with ``parameters`` bound to its ``param()`` block."""
        text = load_template(name, self._templates_dir)
        return self._run(f"template {name}", lambda ps: ps.add_script(text), parameters)

    def _run(self, label: str, add_command: Callable[[PowerShell], Any],
             parameters: dict[str, Any] | None) -> CommandResult:
        if self._closed:
            raise ConnectionFailed(f"The remoting session to {self.name} is closed; cannot run {label}.",
                                   target=self.name)
        if self._broken:
            raise ConnectionFailed(f"The remoting session to {self.name} ({self.url}) was lost; cannot run {label}.",
                                   hint="Open a new session (RemoteConnections does so on the next use).",
                                   target=self.name)
        wire: list[tuple[str, Any]] = []
        needs_key = False
        for pname, value in (parameters or {}).items():
            if not _PARAMETER_NAME.match(pname):
                raise InputError(f"{pname!r} is not a PowerShell parameter name ({label} on {self.name})")
            converted, needed = _to_wire(value, where=f"-{pname} of {label}")
            wire.append((pname, converted))
            needs_key = needs_key or needed

        with self._lock:
            try:
                if needs_key and not self._keys_exchanged:
                    self._pool.exchange_keys()
                    self._keys_exchanged = True
                ps = PowerShell(self._pool)
                add_command(ps)
                for pname, converted in wire:
                    ps.add_parameter(pname, converted)
                ps.invoke()
            except (InputError, RemoteError):
                raise
            except Exception as exc:
                self._broken = True
                raise _translate(exc, self._endpoint, f"running {label}") from None

        errors = [_error_info(record, label) for record in ps.streams.error]
        if ps.state == PSInvocationState.FAILED:
            failure = errors[-1] if errors else ErrorRecordInfo(
                "the command failed without an error record", "", "NotSpecified", None, label)
            hint = None
            if failure.error_id == "CommandNotFoundException":
                hint = (f"{label} is not available in the remote session on {self.name}: check the product's "
                        "PowerShell module or snap-in is installed and loaded there.")
            raise RemoteError(
                f"{label} failed on {self.name}: {failure.message}",
                hint=hint, target=self.name, cmdlet=label, reason=failure.message,
                error_id=failure.error_id, category=failure.category,
            )
        return CommandResult(
            output=[_to_plain(o) for o in ps.output],
            errors=errors,
            warnings=[str(getattr(w, "message", w)) for w in ps.streams.warning],
            verbose=[str(getattr(v, "message", v)) for v in ps.streams.verbose],
        )

    def close(self) -> None:
        """Close the runspace pool (best effort on a lost connection)."""
        if self._closed:
            return
        self._closed = True
        try:
            if not self._broken:
                self._pool.close()
        except Exception as exc:  # closing is cleanup: report, never mask the real outcome
            log.debug("closing the session to %s failed: %s", self.name, type(exc).__name__)
        finally:
            try:
                self._pool.connection.close()
            except Exception:
                pass


def _translate(exc: BaseException, ep: _Endpoint, action: str) -> Exception:
    """A transport/protocol exception → the runbooklib error an administrator can act on."""
    where = f"{ep.name} ({ep.url})"
    if isinstance(exc, CredSSPRefused) and _CREDSSP_ANSWERED_OTHERWISE in str(exc):
        # The server took the delegated credentials, then answered the request itself with an error
        # (e.g. a WS-Man fault) that the CredSSP client does not pass on: say what it usually is.
        return ConnectionFailed(
            f"{where} accepted the CredSSP credentials of {ep.username} but refused the session request for "
            f"the PowerShell session configuration {ep.configuration} while {action}.",
            hint=(f"Check that {ep.name} serves the session configuration {ep.configuration} at {ep.url} "
                  f"(Get-PSSessionConfiguration on {ep.host}; the default is {POWERSHELL_CONFIGURATION}; Exchange's "
                  f"is {EXCHANGE_CONFIGURATION} at the /PowerShell address) and set configuration for {ep.name} in "
                  "the inventory to it. Connecting once with auth: ntlm shows the server's own reason."),
            target=ep.name,
        )
    # pypsrp raises AuthenticationError on a 401; CredSSP's handshake fails with its own exceptions.
    if isinstance(exc, (AuthenticationError, CredSSPRefused, CredSSPStatus)):
        return AuthenticationFailed(
            f"{where} refused the user name or password for {ep.username} while {action}.",
            hint=(f"Check the password the inventory's secret reference for {ep.name} resolves to, and that "
                  f"{ep.username} may use PowerShell remoting on {ep.name} (Remote Management Users or local "
                  "Administrators)."),
            target=ep.name,
        )
    if isinstance(exc, requests.exceptions.SSLError):
        trust = f"the CA bundle {ep.ca_bundle}" if ep.ca_bundle else "the system certificate store"
        return ConnectionFailed(
            f"TLS to {where} failed while {action}: the server certificate is not trusted by {trust} "
            "or does not match the host name.",
            hint=f"Set ca_bundle for {ep.name} in the inventory to the CA that issued the WinRM HTTPS certificate.",
            target=ep.name,
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return ConnectionFailed(
            f"{where} did not answer in time while {action}.",
            hint=f"Check that {ep.name} is up and its WinRM listener answers (Test-WSMan {ep.host}), then re-run.",
            target=ep.name,
        )
    if isinstance(exc, requests.exceptions.ConnectionError):
        return ConnectionFailed(
            f"The connection to {where} was refused or closed without an answer while {action}.",
            hint=(f"Check that {ep.name} is up, that WinRM listens on port {ep.port} and no firewall or proxy "
                  "drops the connection (Test-WSMan), then re-run."),
            target=ep.name,
        )
    if isinstance(exc, WSManFaultError):
        code = exc.code
        if _UNKNOWN_CONFIGURATION in (exc.reason or ""):
            return ConnectionFailed(
                f"{where} has no PowerShell session configuration {ep.configuration} (while {action}): "
                f"{exc.reason.strip()}",
                hint=(f"Set configuration for {ep.name} in the inventory to one the server serves "
                      f"(Get-PSSessionConfiguration on {ep.host} lists them; the default is "
                      f"{POWERSHELL_CONFIGURATION}; Exchange's is {EXCHANGE_CONFIGURATION} at the /PowerShell "
                      "address), or register the configuration there."),
                target=ep.name,
            )
        if code == 5:
            return AuthenticationFailed(
                f"{where} denied access to {ep.username} while {action}: {exc.reason}",
                hint=f"Give {ep.username} the right to use PowerShell remoting on {ep.name}.", target=ep.name,
            )
        return ConnectionFailed(f"{where} refused the WS-Management request while {action}: {exc.reason} "
                                f"(WSManFault {code}).", target=ep.name)
    if isinstance(exc, WinRMTransportError):
        return ConnectionFailed(f"{where} answered HTTP {exc.code} while {action}.",
                                hint="Check the WinRM address (path /wsman) and the listener's configuration.",
                                target=ep.name)
    if isinstance(exc, WinRMError):
        return ConnectionFailed(f"PowerShell remoting with {where} failed while {action}: {exc}", target=ep.name)
    return ConnectionFailed(f"PowerShell remoting with {where} failed while {action}: "
                            f"{type(exc).__name__}: {exc}", target=ep.name)


class RemoteConnections:
    """The sessions of one run: opened lazily, one per target name, all closed together.

    ``source`` is either an inventory (anything with ``server(name)`` and ``base_dir``: targets
    may then be given by name, and each server's password reference is resolved with
    :func:`runbooklib.secrets.resolve_secret` when its session opens) or a callable
    ``password_for(target) -> str``. Either way secrets are read at the moment of use.
    ``shells_opened`` counts the runspace pools opened per target name.
    """

    def __init__(self, source: Any, *, interactive: bool = False, templates_dir: Path | None = None,
                 **session_options: Any) -> None:
        if callable(source) and not hasattr(source, "server"):
            self._inventory = None
            self._password_for: Callable[[Any], str] = source
        else:
            self._inventory = source
            self._password_for = self._inventory_password
        self._interactive = interactive
        self._templates_dir = templates_dir
        self._options = session_options
        self._sessions: dict[str, RemoteSession] = {}
        self._lock = threading.Lock()
        self.shells_opened: dict[str, int] = {}

    def _inventory_password(self, target: Any) -> str:
        from .secrets import resolve_secret

        ref = getattr(target, "password", None)
        if not ref:
            raise InputError(f"server {target.name} has no password reference in the inventory",
                             hint="Add password: env:NAME | file:PATH | keyring:SERVICE/NAME | prompt.",
                             field=f"servers.{target.name}.password")
        return resolve_secret(ref, purpose=f"the password of {target.username} on {target.name}",
                              interactive=self._interactive, base_dir=getattr(self._inventory, "base_dir", None))

    def _target(self, target: Any) -> Any:
        if isinstance(target, str):
            if self._inventory is None:
                raise InputError(f"cannot look up server {target!r}: these connections were made without an "
                                 "inventory")
            return self._inventory.server(target)
        return target

    def session(self, target: Any) -> RemoteSession:
        """The open session to ``target`` (a server spec, or its inventory name); opens one — again, if the
        last one was lost — when needed."""
        target = self._target(target)
        name = str(getattr(target, "name", ""))
        with self._lock:
            existing = self._sessions.get(name)
            if existing is not None and not existing.closed and not existing.broken:
                return existing
            if existing is not None:
                existing.close()
            session = RemoteSession.open(target, password=self._password_for(target),
                                         templates_dir=self._templates_dir, **self._options)
            self._sessions[name] = session
            self.shells_opened[name] = self.shells_opened.get(name, 0) + 1
            return session

    def invoke(self, target: Any, cmdlet: str, parameters: dict[str, Any] | None = None) -> CommandResult:
        return self.session(target).invoke(cmdlet, parameters)

    def invoke_template(self, target: Any, name: str, parameters: dict[str, Any] | None = None) -> CommandResult:
        return self.session(target).invoke_template(name, parameters)

    def close(self) -> None:
        """Close every session (idempotent)."""
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            session.close()

    def __enter__(self) -> "RemoteConnections":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<RemoteConnections open={sorted(self._sessions)} shells_opened={self.shells_opened}>"
