"""The HTTP(S) server every lab host runs on: TLS from the lab CA, routes by path prefix,
and fault injection.

One :class:`LabServer` is one simulated host (a SharePoint farm, the tenant …). Its WinRM
endpoint (``/wsman``) and its web endpoints (S2S metadata, realm discovery, Graph …) are
routes on the same port, as they are on one real server name. A server speaks HTTPS unless
it is made with ``scheme="http"`` (a WinRM listener on port 5985 is plain HTTP, its messages
sealed by the authentication instead of TLS). A route is mounted as ``web`` or ``winrm``
(:data:`RouteKind`), so a host's second listener can carry its WinRM routes alone; two servers
of one host share one :class:`FaultPlan`.

Each request carries its :class:`Connection`: state that lives as long as the client's TCP
connection, for protocols whose security context is bound to the connection (NTLM, CredSSP).

Faults let tests and rehearsals see how the runbooks behave when a server misbehaves:
the next N requests to a server can be dropped (connection closed without an answer),
stalled (held for a while, then dropped) or answered with an error (the route decides
what an error looks like: WinRM answers with a PowerShell error record, Graph with a 429 …).
A fault may wait for its turn: with ``after=N`` the first N matching requests pass untouched
and the one after them fails ("fail the Nth request to this server"); an ``error`` fault may
ask for an HTTP ``status`` where the route has more than one kind of error (Graph: 429 or 503).
:attr:`LabServer.requests` counts the requests a server has answered, so a test can learn how
many an undisturbed run makes and then fail each in turn.
They are set in-process with :meth:`LabServer.faults` or, for an estate running in the
background, with ``POST /_lab/faults`` carrying the estate's control token.
"""

from __future__ import annotations

import hmac
import json
import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Literal
from urllib.parse import parse_qs, urlsplit

from .pki import KeyPair

__all__ = [
    "DROP",
    "STANDING_FAULTS",
    "Connection",
    "FaultPlan",
    "LabServer",
    "Request",
    "Response",
    "Route",
    "RouteKind",
    "Scheme",
]

log = logging.getLogger(__name__)

FaultKind = Literal["drop", "stall", "error", "no-outbound"]
# Faults that are a standing condition of the server rather than a per-request one: they hold
# until cleared. ``no-outbound``: the server itself cannot open outbound connections (no proxy,
# a firewall), so what *it* downloads (a partner's metadata) fails; requests to it still work.
STANDING_FAULTS = frozenset({"no-outbound"})
Scheme = Literal["https", "http"]
# What a route serves: a host's web endpoints, or its WinRM endpoint (which a plain-http listener
# of the same host carries too).
RouteKind = Literal["web", "winrm"]
CONTROL_PATH = "/_lab/faults"
CONTROL_HEADER = "X-Lab-Control-Token"


@dataclass
class Connection:
    """One client TCP connection: ``state`` lives until the client or the server closes it."""

    secure: bool                  # TLS underneath
    state: dict[str, object] = field(default_factory=dict)


@dataclass
class Request:
    """One HTTP request as a route sees it. Header lookup is case-insensitive."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    client: tuple[str, int]
    server_url: str
    connection: Connection = field(default_factory=lambda: Connection(secure=True))

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def query_value(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> object:
        return json.loads(self.body or b"null")


@dataclass
class Response:
    """An answer; a header given as a list is sent once per value (``WWW-Authenticate`` offers)."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str | list[str]] = field(default_factory=dict)

    @classmethod
    def json(cls, data: object, status: int = 200, headers: dict[str, str] | None = None) -> "Response":
        h = {"Content-Type": "application/json; charset=utf-8"}
        h.update(headers or {})
        return cls(status, json.dumps(data).encode(), h)

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain; charset=utf-8") -> "Response":
        return cls(status, text.encode(), {"Content-Type": content_type})


class _Drop:
    """Returned by a route (or a fault) to close the connection without an answer."""


DROP = _Drop()

RouteHandler = Callable[[Request], "Response | _Drop"]


@dataclass(frozen=True)
class Route:
    prefix: str  # as mounted; matched case-insensitively
    handler: RouteHandler
    # A route that reacts to "error" faults itself (WinRM, Graph) says so; others see a 500.
    handles_error_faults: bool = False
    kind: RouteKind = "web"


class FaultPlan:
    """Pending faults of one server: each is consumed by one request; standing ones
    (:data:`STANDING_FAULTS`) hold until :meth:`clear`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[dict] = []
        self._standing: set[str] = set()

    def add(self, kind: FaultKind, count: int = 1, *, seconds: float = 5.0, message: str | None = None,
            path_prefix: str | None = None, after: int = 0, status: int | None = None) -> None:
        """Make the next ``count`` requests (optionally only under ``path_prefix``) fail as ``kind``,
        once ``after`` matching requests have passed; a standing ``kind`` holds from now until
        cleared (``count``, ``after`` and ``status`` do not apply)."""
        if kind not in ("drop", "stall", "error", *STANDING_FAULTS):
            raise ValueError(f"unknown fault kind {kind!r}: use drop, stall, error or no-outbound")
        _check_turn(after, status)
        with self._lock:
            if kind in STANDING_FAULTS:
                self._standing.add(kind)
                return
            for i in range(count):
                self._pending.append({"kind": kind, "seconds": seconds, "message": message,
                                      "path_prefix": path_prefix, "after": after if i == 0 else 0,
                                      "status": status})

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()
            self._standing.clear()

    def holds(self, kind: str) -> bool:
        """Whether the standing fault ``kind`` is in force."""
        with self._lock:
            return kind in self._standing

    def standing(self) -> list[str]:
        with self._lock:
            return sorted(self._standing)

    def take(self, path: str) -> dict | None:
        with self._lock:
            for i, fault in enumerate(self._pending):
                prefix = fault["path_prefix"]
                if prefix is None or path.startswith(prefix):
                    if _waits_its_turn(fault):
                        return None
                    return self._pending.pop(i)
        return None

    def pending(self) -> list[dict]:
        with self._lock:
            return list(self._pending)


def _check_turn(after: int, status: int | None) -> None:
    if not isinstance(after, int) or after < 0:
        raise ValueError(f"after must be a number of requests (0 or more), not {after!r}")
    if status is not None and not 400 <= int(status) <= 599:
        raise ValueError(f"status must be an HTTP error status (400-599), not {status!r}")


def _waits_its_turn(fault: dict) -> bool:
    """Let one more request pass a fault set ``after`` N requests; True while it does."""
    if fault.get("after", 0) > 0:
        fault["after"] -= 1
        return True
    return False


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_LabHTTPServer"

    def setup(self) -> None:
        super().setup()
        self.lab_connection = Connection(secure=self.server.context is not None)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.server.lab.name, format % args)

    def _dispatch(self) -> None:
        lab = self.server.lab
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            client=self.client_address,
            server_url=lab.url,
            connection=self.lab_connection,
        )
        result = lab.handle(request)
        if isinstance(result, _Drop):
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.send_response(result.status)
        for name, value in result.headers.items():
            for one in ([value] if isinstance(value, str) else value):
                self.send_header(name, one)
        self.send_header("Content-Length", str(len(result.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(result.body)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _dispatch


class _LabHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], context: ssl.SSLContext | None, lab: "LabServer") -> None:
        self.context = context
        self.lab = lab
        super().__init__(address, _Handler)

    def finish_request(self, request, client_address) -> None:  # type: ignore[override]
        # The TLS handshake runs here, in the request's own thread, so a slow client never
        # holds up the accept loop.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.context is None:
            super().finish_request(request, client_address)
            return
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.debug("%s: TLS handshake failed: %s", self.lab.name, exc)
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            try:
                tls.close()
            except OSError:
                pass


class LabServer:
    """One simulated host: an HTTPS (or, with ``scheme="http"``, plain HTTP) server on loopback
    with routes mounted by path prefix.

    ``faults``: the fault plan to obey — another server's, when this one is a second listener of
    the same host (faults set on the host then apply to both); a new one by default.
    """

    def __init__(self, name: str, tls: KeyPair | None, *, scheme: Scheme = "https", host: str = "127.0.0.1",
                 port: int = 0, control_token: str | None = None, cert_dir=None,
                 faults: FaultPlan | None = None) -> None:
        if scheme not in ("https", "http"):
            raise ValueError(f"unknown scheme {scheme!r}: use https or http")
        if scheme == "https" and tls is None:
            raise ValueError(f"{name}: an https lab server needs its TLS key pair")
        self.name = name
        self.scheme = scheme
        self.faults = faults if faults is not None else FaultPlan()
        #: Requests answered (or dropped) so far, control requests left out.
        self.requests = 0
        self._count_lock = threading.Lock()
        self._routes: list[Route] = []
        self._control_token = control_token
        context = None
        if scheme == "https":
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            _load_chain(context, tls, cert_dir, name)
        self._server = _LabHTTPServer((host, port), context, self)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        host = self._server.server_address[0]
        return f"{self.scheme}://{host}:{self.port}"

    def mount(self, prefix: str, handler: RouteHandler, *, handles_error_faults: bool = False,
              kind: RouteKind = "web") -> None:
        """Serve every path that starts with ``prefix`` (longest prefix wins; case-insensitive)."""
        self.add_route(Route(prefix, handler, handles_error_faults, kind))

    def add_route(self, route: Route) -> None:
        """Serve ``route`` here too (e.g. one another server of the same host serves)."""
        self._routes.append(route)
        self._routes.sort(key=lambda r: len(r.prefix), reverse=True)

    def routes(self, kind: RouteKind | None = None) -> tuple[Route, ...]:
        """The mounted routes (of ``kind`` only, when given), longest prefix first."""
        return tuple(r for r in self._routes if kind is None or r.kind == kind)

    def start(self) -> "LabServer":
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"lab-{self.name}", daemon=True, kwargs={"poll_interval": 0.2}
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread:  # shutdown() waits for serve_forever, which a server never started is not in
            self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def route_for(self, path: str) -> Route | None:
        lowered = path.lower()
        for route in self._routes:
            if lowered.startswith(route.prefix.lower()):
                return route
        return None

    def handle(self, request: Request) -> "Response | _Drop":
        if request.path == CONTROL_PATH:
            return self._control(request)
        with self._count_lock:
            self.requests += 1
        route = self.route_for(request.path)
        fault = self.faults.take(request.path)
        if fault is not None:
            if fault["kind"] == "drop":
                log.info("%s: fault: dropping %s %s", self.name, request.method, request.path)
                return DROP
            if fault["kind"] == "stall":
                log.info("%s: fault: stalling %s for %.1fs", self.name, request.path, fault["seconds"])
                time.sleep(fault["seconds"])
                return DROP
            if route is not None and route.handles_error_faults:
                request.headers["x-lab-fault"] = json.dumps(fault)
            else:
                return Response.text(fault["message"] or "Internal Server Error (lab fault)", status=500)
        if route is None:
            return Response.text("404 NOT FOUND", status=404, content_type="text/html; charset=utf-8")
        try:
            return route.handler(request)
        except Exception:  # a lab bug must show as a server error, not a hung client
            log.exception("%s: route %s failed", self.name, route.prefix)
            return Response.text("Internal Server Error", status=500)

    def _control(self, request: Request) -> Response:
        token = request.header(CONTROL_HEADER) or ""
        if not self._control_token or not hmac.compare_digest(token, self._control_token):
            return Response.text("forbidden", status=403)
        if request.method == "GET":
            return Response.json({"server": self.name, "faults": self.faults.pending(),
                                  "standing": self.faults.standing()})
        spec = request.json() or {}
        if not isinstance(spec, dict):
            return Response.text("expected a JSON object", status=400)
        if spec.get("clear"):
            self.faults.clear()
            return Response.json({"cleared": True})
        try:
            self.faults.add(
                spec.get("kind", ""),
                int(spec.get("count", 1)),
                seconds=float(spec.get("seconds", 5.0)),
                message=spec.get("message"),
                path_prefix=spec.get("path_prefix"),
                after=int(spec.get("after", 0)),
                status=int(spec["status"]) if spec.get("status") is not None else None,
            )
        except (TypeError, ValueError) as exc:
            return Response.text(str(exc), status=400)
        return Response.json({"server": self.name, "faults": self.faults.pending(),
                              "standing": self.faults.standing()})


def _load_chain(context: ssl.SSLContext, tls: KeyPair, cert_dir, name: str) -> None:
    # ssl can only load a certificate chain from files: keep them in the lab's private dir.
    import tempfile
    from pathlib import Path

    base = Path(cert_dir) if cert_dir else Path(tempfile.mkdtemp(prefix="lab-tls-"))
    base.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = base / f"{name}-tls.pem", base / f"{name}-tls-key.pem"
    from .pki import save_key_pair

    save_key_pair(tls, cert_path, key_path)
    context.load_cert_chain(cert_path, key_path)
