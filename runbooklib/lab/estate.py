"""The simulated estate: every lab server on loopback, its inventory, its secrets, its state.

One lab directory (default ``.lab``) holds everything::

    ca.pem  ca-key.pem       the lab CA (clients verify lab servers with ca.pem)
    inventory.yaml           the inventory a runbook is run with
    secrets/<name>           secret files the inventory refers to (file:secrets/<name>), mode 0600
    state/                   each server's persisted state (survives down/up; reset restores it)
    estate.json              ports, control token, pid and owner of the running estate (0600)
    tls/                     the servers' TLS certificates
    lab.log  lab.log.1       the background estate's log (this run, the run before)

Servers keep their ports across restarts so an inventory — and farm state that names a
partner's address, such as a trusted issuer's metadata endpoint — stays valid. When a port is
taken by another program the server moves to a free one and the inventory is rewritten;
:attr:`Estate.moved_ports` (and ``runbook lab up`` on the terminal) says so.

WinRM over plain http
---------------------
Every host whose server serves WinRM also listens on plain http, on a port of its own, as a
Windows server's default WinRM listener does (5985 beside 5986). That listener carries only the
host's WinRM routes — the same endpoint objects, so shells and state are the one server's — and
obeys the host's fault plan. NTLM and CredSSP seal every message there; Basic is refused over
http even where enabled (``AllowUnencrypted=false``). Its port persists in ``estate.json``
(``winrm_http_ports``) like the https ones; :meth:`Estate.winrm_http_url` gives its address.
The inventory keeps naming the https listener.

Fault injection
---------------
Any server can be told to misbehave for its next N requests, to rehearse what a runbook does
when a server fails half-way:

``drop``
    close the connection without an answer (a crashed service, a firewall reset). The
    runbooks see :class:`~runbooklib.errors.ConnectionFailed`; the request was not processed.
``stall``
    hold the request ``seconds`` (default 5), then drop it (a hung server; client timeouts).
``error``
    answer with the product's kind of error: on WinRM the next PowerShell command ends with a
    terminating error record carrying ``message`` (:class:`~runbooklib.errors.RemoteError`),
    on Graph a 429 with ``Retry-After``; other routes answer HTTP 500.
``no-outbound``
    a standing condition, not a per-request one: the server cannot reach anything outside
    (no proxy, a firewall), so what it downloads itself — a SharePoint farm fetching a
    partner's metadata — fails with .NET's "Unable to connect to the remote server" until the
    server's faults are cleared. Requests *to* the server still work.

Options: ``count`` (default 1), ``seconds`` (stall), ``message`` (error), ``path_prefix``
(only requests under it, e.g. ``/wsman`` or ``/v1.0/``). A fault is used up by one request;
note that one PowerShell command is several WinRM requests, and opening a session is one too.

In the same process (tests)::

    estate.server("sp-a").faults.add("drop", count=1)
    estate.server("sp-a").faults.clear()

For an estate running in the background (``runbook lab up``), over HTTPS with the control
token from ``estate.json`` — only someone who can read the lab directory can do this::

    from runbooklib.lab.estate import inject_fault, clear_faults
    inject_fault(".lab", "sp-a", "error", message="The SharePoint farm is unavailable.")
    clear_faults(".lab", "sp-a")

``Estate.reset()`` (and ``runbook lab reset``) clears every pending fault.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import secrets as _random
import shutil
import ssl
import string
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit, urlunsplit

import yaml

from ..errors import InputError, RunbookError
from .http import CONTROL_HEADER, CONTROL_PATH, LabServer
from .pki import LabCA
from .product import LAB_USER, Host, Product
from .registry import PRODUCTS, product_of
from .sharepoint.product import SHAREPOINT
from .tenant.product import TENANT as TENANT_PRODUCT

__all__ = [
    "Estate",
    "EstateStatus",
    "FAULT_KINDS",
    "IN_PROCESS",
    "LAB_USER",
    "LOG_FILE",
    "SERVED_BY_COMMAND",
    "SHAREPOINT_FARMS",
    "STATE_FILE",
    "TENANT",
    "clear_faults",
    "forget_pid",
    "inject_fault",
    "pending_faults",
    "pid_alive",
    "probe_estate",
    "process_command",
]

log = logging.getLogger(__name__)

SHAREPOINT_FARMS = SHAREPOINT.hosts
TENANT = TENANT_PRODUCT.hosts[0]
STATE_FILE = "estate.json"
LOG_FILE = "lab.log"
FAULT_KINDS = ("drop", "stall", "error", "no-outbound")
# Who serves an estate (estate.json "served_by"): `runbook lab up` may stop only its own.
SERVED_BY_COMMAND = "runbook lab"
IN_PROCESS = "in-process"


def _password() -> str:
    alphabet = string.ascii_letters + string.digits
    return "Lab-" + "".join(_random.choice(alphabet) for _ in range(20))


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600, atomically (readers never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.chmod(path, 0o600)  # an existing file keeps its old mode through os.replace on some systems


def _read_record(lab_dir: Path) -> dict[str, Any]:
    path = Path(lab_dir) / STATE_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        log.warning("%s is unreadable; treating the estate as never started", path)
        return {}
    return record if isinstance(record, dict) else {}


# --------------------------------------------------------------------------- processes


def pid_alive(pid: int) -> bool:
    """True if a process with ``pid`` exists and has not exited (POSIX)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, but belongs to someone else
        return True
    except OSError:
        return False
    # An exited process nobody has reaped yet (a container without an init) still takes signals.
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat_line.rpartition(")")[2].split()[:1] != ["Z"]


def process_command(pid: int) -> str | None:
    """The command line of process ``pid``, or None when it cannot be read on this system."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        return raw.replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        pass
    if shutil.which("ps"):
        try:
            out = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True,
                                 timeout=5, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() or None
    return None


def forget_pid(lab_dir: Path | str, pid: int) -> None:
    """Remove ``pid`` from ``estate.json`` (the estate it named is gone)."""
    lab_dir = Path(lab_dir).resolve()
    record = _read_record(lab_dir)
    if record.get("pid") == pid:
        record.pop("pid", None)
        _write_private(lab_dir / STATE_FILE, json.dumps(record, indent=2) + "\n")


# --------------------------------------------------------------------------- status


@dataclass(frozen=True)
class EstateStatus:
    """What ``estate.json`` says about a lab directory, checked against the live processes.

    ``answering[name]`` is True when that server's control endpoint answered with this lab
    directory's token — proof that the estate serving that port is this one, not another program.
    """

    lab_dir: Path
    pid: int | None = None
    pid_alive: bool = False
    served_by: str | None = None
    ports: dict[str, int] = field(default_factory=dict)
    answering: dict[str, bool] = field(default_factory=dict)
    command: str | None = None
    winrm_http_ports: dict[str, int] = field(default_factory=dict)  # the hosts' plain-http WinRM listeners

    @property
    def serving(self) -> bool:
        """Some server of this estate answers: an estate owns the directory."""
        return any(self.answering.values())

    @property
    def running(self) -> bool:
        """The recorded process is alive and every server answers."""
        return self.pid_alive and bool(self.answering) and all(self.answering.values())

    @property
    def stale(self) -> bool:
        """``estate.json`` names a pid, but no estate of this directory answers."""
        return self.pid is not None and not self.serving


def _control_request(port: int, token: str, ca_bundle: Path, *, method: str = "GET",
                     body: dict[str, Any] | None = None, timeout: float = 10.0) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"https://127.0.0.1:{port}{CONTROL_PATH}", data=data, method=method,
        headers={CONTROL_HEADER: token, "Content-Type": "application/json"},
    )
    context = ssl.create_default_context(cafile=str(ca_bundle))
    with urllib.request.urlopen(request, context=context, timeout=timeout) as response:
        return json.loads(response.read())


def _answers_as(name: str, port: int, token: str, ca_bundle: Path, timeout: float) -> bool:
    try:
        return _control_request(port, token, ca_bundle, timeout=timeout).get("server") == name
    except (OSError, ValueError, ssl.SSLError):  # refused, timed out, 403, not TLS, not JSON
        return False


def probe_estate(lab_dir: Path | str, *, timeout: float = 2.0) -> EstateStatus:
    """The state of the estate in ``lab_dir``: recorded pid, whether it lives, which servers answer."""
    lab_dir = Path(lab_dir).resolve()
    record = _read_record(lab_dir)
    pid = record.get("pid") if isinstance(record.get("pid"), int) else None
    ports = _port_map(record.get("ports"))
    token = record.get("control_token") or ""
    alive = pid is not None and pid_alive(pid)
    answering: dict[str, bool] = {}
    if alive and token and (lab_dir / "ca.pem").exists():
        answering = {name: _answers_as(name, port, token, lab_dir / "ca.pem", timeout)
                     for name, port in ports.items()}
    return EstateStatus(
        lab_dir=lab_dir, pid=pid, pid_alive=alive, served_by=record.get("served_by"), ports=ports,
        answering=answering, command=process_command(pid) if alive else None,
        winrm_http_ports=_port_map(record.get("winrm_http_ports")),
    )


def _port_map(value: Any) -> dict[str, int]:
    return {str(k): int(v) for k, v in (value or {}).items()} if isinstance(value, dict) else {}


# --------------------------------------------------------------------------- the estate


@dataclass
class _Host:
    name: str
    server: LabServer
    component: Any
    product: Product
    host: Host
    winrm_http: LabServer | None = None  # the plain-http listener carrying the server's WinRM routes


def _bind(wanted: int, make: Callable[[int], LabServer]) -> LabServer:
    """``make(wanted)``; on a free port instead when another program holds ``wanted`` (0: any port)."""
    if wanted:
        try:
            return make(wanted)
        except OSError as exc:
            if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                raise
    return make(0)


def _winrm_http_listener(server: LabServer, wanted: int) -> LabServer | None:
    """A plain-http listener serving ``server``'s WinRM routes under its fault plan, or None if it has none.

    No control token: faults are set through the host's https server only, so the token never
    travels over plain http.
    """
    routes = server.routes("winrm")
    if not routes:
        return None
    listener = _bind(wanted, lambda port: LabServer(server.name, None, scheme="http", port=port,
                                                    faults=server.faults))
    if wanted and listener.port != wanted:
        log.warning("%s: port %d (WinRM over http) is taken by another program; listening on %d instead",
                    server.name, wanted, listener.port)
    for route in routes:
        listener.add_route(route)
    return listener


def _stop_server(name: str, server: LabServer) -> None:
    try:
        server.stop()
    except Exception:  # stopping must go on for the other servers
        log.exception("stopping %s (%s)", name, server.scheme)


class Estate:
    """The lab's servers, started in this process (``runbook lab up`` runs one in the background).

    ``served_by`` is recorded in ``estate.json``: ``runbook lab down`` stops only an estate that
    ``runbook lab up`` started, never the process of a test or notebook that started one itself.
    ``basic_auth`` also enables Basic on every WinRM listener (for a test that needs it; the
    inventory still names each product's usual scheme).
    """

    def __init__(self, directory: Path | str, *, served_by: str = IN_PROCESS, basic_auth: bool = False) -> None:
        self.dir = Path(directory).resolve()
        self.served_by = served_by
        self.basic_auth = basic_auth
        self.hosts: dict[str, _Host] = {}
        # server → (port in estate.json, port now) for servers whose port was taken by another program
        self.moved_ports: dict[str, tuple[int, int]] = {}
        self._record: dict[str, Any] = {}

    def __repr__(self) -> str:
        state = "running" if self.hosts else "stopped"
        return f"<Estate {self.dir} {state}>"

    # -- paths ------------------------------------------------------------------------------
    @property
    def inventory_path(self) -> Path:
        return self.dir / "inventory.yaml"

    @property
    def ca_bundle(self) -> Path:
        return self.dir / "ca.pem"

    @property
    def state_dir(self) -> Path:
        return self.dir / "state"

    @property
    def ports(self) -> dict[str, int]:
        """The port of every running server."""
        return {name: host.server.port for name, host in self.hosts.items()}

    @property
    def winrm_http_ports(self) -> dict[str, int]:
        """The plain-http WinRM port of every running host that serves WinRM."""
        return {name: host.winrm_http.port for name, host in self.hosts.items() if host.winrm_http}

    def _load_record(self) -> dict[str, Any]:
        return _read_record(self.dir)

    def _save_record(self) -> None:
        _write_private(self.dir / STATE_FILE, json.dumps(self._record, indent=2) + "\n")

    # -- components -------------------------------------------------------------------------
    def farm(self, name: str):
        """The SharePoint farm simulation named ``name``."""
        return self.component(name)

    def component(self, name: str) -> Any:
        """The running simulation of lab host ``name`` (a farm, the tenant, …)."""
        product_of(name)  # KeyError for a name no product has
        return self.hosts[name].component

    @property
    def tenant(self):
        """The Microsoft 365 tenant simulation."""
        return self.component(TENANT)

    def server(self, name: str) -> LabServer:
        """The HTTPS server of lab host ``name`` (``.faults`` injects faults, ``.url`` is its address)."""
        try:
            return self.hosts[name].server
        except KeyError:
            raise InputError(f"the lab has no server {name!r}",
                             hint=f"Lab servers: {', '.join(self.hosts) or '(estate not started)'}.") from None

    def winrm_http_url(self, name: str) -> str:
        """Host ``name``'s WinRM endpoint on its plain-http listener: the inventory's ``winrm``
        address with that listener's scheme and port (``http://127.0.0.1:PORT/wsman``)."""
        self.server(name)  # InputError for a host the estate does not run
        host = self.hosts[name]
        listener = host.winrm_http
        if listener is None:
            raise InputError(f"lab server {name} serves no WinRM",
                             hint=f"Lab servers with WinRM: {', '.join(self.winrm_http_ports) or '(none)'}.")
        entry = host.product.inventory_entry(host.component, host.server.url, host.host)
        path = urlsplit(str(entry.get("winrm") or "")).path or listener.routes()[-1].prefix
        return urlunsplit(("http", urlsplit(listener.url).netloc, path, "", ""))

    def password(self, server: str) -> str:
        return (self.dir / "secrets" / server).read_text().strip()

    def _host(self, name: str) -> Host:
        """What a product gets to open and serve host ``name`` of this estate."""

        def password() -> str:
            path = self.dir / "secrets" / name
            if not path.exists():
                _write_private(path, _password() + "\n")
            return self.password(name)

        return Host(name=name, state_dir=self.state_dir, ca_bundle=self.ca_bundle, password=password,
                    basic_auth=self.basic_auth, resolve=self.resolve)

    def resolve(self, name: str) -> str | None:
        """Where the running estate serves public name ``name`` (a host's ``public_names()``), or None."""
        wanted = name.lower()
        for host in list(self.hosts.values()):
            names = getattr(host.component, "public_names", None)
            if callable(names) and wanted in names():
                return host.server.url
        return None

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> "Estate":
        """Start every server; refuses when another estate already serves this directory."""
        if self.hosts:
            return self
        self.dir.mkdir(parents=True, exist_ok=True)
        status = probe_estate(self.dir)
        if status.serving:
            # Two estates over one state directory would overwrite each other's state.
            raise RunbookError(
                f"a lab estate already serves {self.dir} (pid {status.pid}, {status.served_by or 'unknown owner'})",
                hint=f"Use it as it is, or stop it first ('runbook lab down --dir {self.dir}').",
            )
        ca = LabCA.open(self.dir)
        self._record = self._load_record()
        token = self._record.get("control_token") or _random.token_urlsafe(24)
        ports = _port_map(self._record.get("ports"))
        http_ports = _port_map(self._record.get("winrm_http_ports"))
        tls = ca.issue_server_certificate(["127.0.0.1", "localhost"])
        self.moved_ports = {}

        def new_server(name: str) -> LabServer:
            wanted = ports.get(name, 0)
            server = _bind(wanted, lambda port: LabServer(name, tls, port=port, control_token=token,
                                                          cert_dir=self.dir / "tls"))
            if wanted and server.port != wanted:
                self.moved_ports[name] = (wanted, server.port)
                log.warning("%s: port %d is taken by another program; serving on %d instead and rewriting %s",
                            name, wanted, server.port, self.inventory_path)
            return server

        try:
            for product in PRODUCTS:
                for name in product.hosts:
                    host = self._host(name)
                    component = product.open(host)
                    server = new_server(name)
                    self.hosts[name] = _Host(name, server, component, product, host)
                    product.mount(component, server, host)
                    self.hosts[name].winrm_http = _winrm_http_listener(server, http_ports.get(name, 0))
            for host in self.hosts.values():
                host.server.start()
                if host.winrm_http:
                    host.winrm_http.start()
            # The inventory first, then the record: a pid in estate.json means "ready to use".
            self.write_inventory()
        except BaseException:
            self._stop_servers()
            raise
        self._record.update(
            control_token=token,
            ports=self.ports,
            winrm_http_ports=self.winrm_http_ports,
            pid=os.getpid(),
            served_by=self.served_by,
            started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )
        self._save_record()
        log.info("lab estate up in %s: %s", self.dir, self._record["ports"])
        return self

    def _stop_servers(self) -> None:
        # Each server's accept loop notices a stop only at its next poll, so stopping them one
        # after another would wait one poll interval per server; all at once waits about one.
        servers = [(host.name, server) for host in self.hosts.values()
                   for server in (host.server, host.winrm_http) if server is not None]
        stoppers = [threading.Thread(target=_stop_server, args=pair, name=f"lab-stop-{pair[0]}", daemon=True)
                    for pair in servers]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join()
        self.hosts.clear()

    def stop(self) -> None:
        """Stop every server; the state, ports and inventory stay for the next start."""
        was_running = bool(self.hosts)
        self._stop_servers()
        record = self._load_record()
        if was_running and record.get("pid") == os.getpid():
            record.pop("pid", None)
            record["stopped"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            self._record = record
            self._save_record()
        log.info("lab estate in %s stopped", self.dir)

    def reset(self) -> None:
        """Restore every server's initial state (same ids, same certificates, same ports) and
        clear pending faults."""
        for host in self.hosts.values():
            host.component.reset()
            host.server.faults.clear()

    def reset_offline(self) -> None:
        """Restore the initial state of a stopped estate's servers, from their state files."""
        for product in PRODUCTS:
            for name in product.hosts:
                product.reset_offline(self._host(name))

    def __enter__(self) -> "Estate":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- inventory --------------------------------------------------------------------------
    def inventory(self) -> dict[str, Any]:
        """The inventory of the running estate, as written to ``inventory.yaml``."""
        inventory: dict[str, dict[str, Any]] = {}
        for host in self.hosts.values():
            entry = host.product.inventory_entry(host.component, host.server.url, host.host)
            inventory.setdefault(host.product.section, {})[host.name] = entry
        return inventory

    def write_inventory(self) -> Path:
        for host in self.hosts.values():
            for relative, content in host.product.secret_files(host.component).items():
                _write_private(self.dir / relative, content if content.endswith("\n") else content + "\n")
        header = (
            "# The lab estate's inventory, written by `runbook lab up`. Servers listen on loopback;\n"
            "# secrets are files next to this one, referenced with file:.\n"
        )
        text = header + yaml.safe_dump(self.inventory(), sort_keys=False)
        tmp = self.inventory_path.with_name(f".{self.inventory_path.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, self.inventory_path)  # `runbook run` may be reading it right now
        return self.inventory_path

    # -- faults over the wire (for an estate in another process) ---------------------------
    def control_token(self) -> str:
        return self._record.get("control_token") or self._load_record().get("control_token", "")


def _control(lab_dir: Path | str, server: str, *, method: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    lab_dir = Path(lab_dir).resolve()
    record = _read_record(lab_dir)
    ports = record.get("ports") or {}
    if not ports or not record.get("control_token"):
        raise RunbookError(f"there is no lab estate in {lab_dir}",
                           hint=f"Start one with 'runbook lab up --dir {lab_dir}'.")
    if server not in ports:
        raise InputError(f"the lab in {lab_dir} has no server {server!r}",
                         hint=f"Lab servers: {', '.join(sorted(ports))}.")
    try:
        return _control_request(int(ports[server]), record["control_token"], lab_dir / "ca.pem",
                                method=method, body=body)
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace").strip()
        if exc.code == 403:
            raise RunbookError(
                f"lab server {server} refused the control token of {lab_dir / STATE_FILE} (HTTP 403)",
                hint="Another estate answers on that port: restart the lab with 'runbook lab down' and 'up'.",
            ) from None
        raise InputError(f"lab server {server} refused the fault request (HTTP {exc.code}): {detail}",
                         hint=f"Fault kinds: {', '.join(FAULT_KINDS)}; count ≥ 1.") from None
    except (OSError, ssl.SSLError) as exc:
        raise RunbookError(f"lab server {server} (port {ports[server]}) does not answer: {exc}",
                           hint=f"Is the lab running? 'runbook lab status --dir {lab_dir}'.") from None


def inject_fault(lab_dir: Path | str, server: str, kind: str, count: int = 1, **options: Any) -> dict[str, Any]:
    """Make the next ``count`` requests to ``server`` of the estate in ``lab_dir`` fail as ``kind``.

    Works for an estate in any process (over HTTPS, with the control token in ``estate.json``).
    ``options``: ``seconds`` (stall), ``message`` (error), ``path_prefix``. Returns the server's
    pending faults.
    """
    if kind not in FAULT_KINDS:
        raise InputError(f"unknown fault kind {kind!r}", hint=f"Use one of {', '.join(FAULT_KINDS)}.")
    unknown = set(options) - {"seconds", "message", "path_prefix"}
    if unknown:
        raise InputError(f"unknown fault option(s): {', '.join(sorted(unknown))}",
                         hint="Options are seconds, message and path_prefix.")
    return _control(lab_dir, server, method="POST", body={"kind": kind, "count": count, **options})


def clear_faults(lab_dir: Path | str, server: str) -> None:
    """Drop every pending fault of ``server`` in the estate in ``lab_dir``."""
    _control(lab_dir, server, method="POST", body={"clear": True})


def pending_faults(lab_dir: Path | str, server: str) -> list[dict[str, Any]]:
    """The faults still waiting for a request on ``server``."""
    return list(_control(lab_dir, server, method="GET").get("faults") or [])
