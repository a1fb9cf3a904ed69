"""The lab's WinRM endpoint: ``/wsman`` on a :class:`~runbooklib.lab.http.LabServer`, speaking
WS-Management + PSRP to the unmodified pypsrp client.

Authentication is HTTP Basic over the server's TLS, as a WinRM listener with ``Basic`` enabled
accepts it (``WWW-Authenticate: Basic realm="WSMAN"``; wrong credentials → 401, nothing else
said). Each shell belongs to the account that created it.

Every endpoint also answers the engine built-ins (``Add-PSSnapin``, ``Get-PSSnapin``,
``Import-Module``, ``Get-Module``, ``Get-Command``; :mod:`.builtins`), merged under the product's
table; each shell keeps its own session state, so what one runspace pool loaded another does not see.

An ``error`` fault from the server's fault plan (delivered in the ``x-lab-fault`` request
header by :class:`LabServer`) makes the next pipeline on this endpoint fail with an error record
carrying the fault's message; ``drop`` and ``stall`` faults never reach the endpoint.

Usage::

    endpoint = WinRMEndpoint(server_name="sp-a", commands=table, accounts={"LAB\\\\spadmin": "…"})
    endpoint.mount(server)
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import threading
import uuid
from collections import deque
from typing import Any

from psrpcore import PSRPCoreError

from ..http import LabServer, Request, Response
from . import soap
from .adapter import Shell
from .api import CommandTable
from .builtins import builtin_commands
from .dispatch import CommandSpec, PipelineOutcome, PipelineSink, run_pipeline

__all__ = ["WinRMEndpoint", "WSMAN_PATH", "BASIC_REALM"]

log = logging.getLogger(__name__)

WSMAN_PATH = "/wsman"
BASIC_REALM = "WSMAN"
_SOAP_CONTENT_TYPE = "application/soap+xml;charset=UTF-8"
# The PowerShell plugin's streams, as a WinRM server reports them for a PSRP shell.
_INPUT_STREAMS = "stdin pr"
_OUTPUT_STREAMS = "stdout"


class WinRMEndpoint:
    """PowerShell remoting for one simulated server, answering ``commands`` for ``accounts``.

    ``accounts`` maps a user name as clients send it (``LAB\\spadmin``; matched
    case-insensitively, as Windows does) to its password.
    """

    def __init__(self, *, server_name: str, commands: CommandTable, accounts: dict[str, str]) -> None:
        self.server_name = server_name
        self.commands = commands
        # What pipelines resolve against: the product's table over the engine built-ins.
        self._table = builtin_commands().merge(commands)
        self._accounts = {name.lower(): (name, password) for name, password in accounts.items()}
        self._shells: dict[str, Shell] = {}
        self._lock = threading.Lock()
        self._injected_failures: deque[str] = deque()
        self._address = WSMAN_PATH
        self.shells_created = 0
        self.requests_handled = 0  # WS-Man requests answered (benchmarks and tests count round trips)

    def __repr__(self) -> str:
        return f"<WinRMEndpoint {self.server_name} accounts={sorted(n for n, _ in self._accounts.values())}>"

    # ------------------------------------------------------------------ wiring

    def mount(self, server: LabServer) -> None:
        """Serve ``/wsman`` on ``server`` (which handles drop/stall faults; this route handles ``error``)."""
        self._address = f"{server.url}{WSMAN_PATH}"
        server.mount(WSMAN_PATH, self.handle, handles_error_faults=True)

    def set_accounts(self, accounts: dict[str, str]) -> None:
        """Replace the accepted accounts (e.g. after a lab password rotation)."""
        self._accounts = {name.lower(): (name, password) for name, password in accounts.items()}

    def inject_failure(self, message: str) -> None:
        """Make the next pipeline on this endpoint fail with ``message`` (what an ``error`` fault does)."""
        self._injected_failures.append(message)

    @property
    def open_shells(self) -> int:
        with self._lock:
            return len(self._shells)

    # ------------------------------------------------------------------ HTTP

    def _authenticate(self, request: Request) -> str | None:
        header = request.header("authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic" or not token:
            return None
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, sep, password = decoded.partition(":")
        if not sep:
            return None
        account = self._accounts.get(user.lower())
        if account is None:
            hmac.compare_digest(password.encode(), b"x" * max(len(password), 1))  # same work either way
            return None
        name, expected = account
        if not hmac.compare_digest(password.encode("utf-8"), expected.encode("utf-8")):
            return None
        return name

    def handle(self, request: Request) -> Response:
        """The ``/wsman`` route."""
        self.requests_handled += 1
        user = self._authenticate(request)
        if user is None:
            log.info("%s: WinRM request refused: bad or missing Basic credentials", self.server_name)
            return Response(401, b"", {"WWW-Authenticate": f'Basic realm="{BASIC_REALM}"'})
        if request.method != "POST":
            return Response(405, b"", {"Allow": "POST"})

        fault_header = request.header("x-lab-fault")
        if fault_header:
            self._take_fault(fault_header)

        relates_to = ""
        try:
            soap_request = soap.parse_request(request.body)
            relates_to = soap_request.message_id
            try:
                body = self._dispatch(soap_request, user, request)
            except (PSRPCoreError, binascii.Error, ValueError) as exc:
                # malformed PSRP data: answer as WinRM does, with a fault, not a 500 page
                log.warning("%s: cannot process %s: %s", self.server_name, soap_request.action, exc)
                raise soap.WSManFault.invalid(f"The PowerShell data could not be processed: {exc}") from None
            return Response(200, body, {"Content-Type": _SOAP_CONTENT_TYPE})
        except soap.WSManFault as fault:
            if fault.code != soap.FAULT_OPERATION_TIMEOUT:
                log.info("%s: WS-Man fault %s: %s", self.server_name, fault.code, fault.message)
            return Response(500, soap.fault_envelope(fault, relates_to, self.server_name),
                            {"Content-Type": _SOAP_CONTENT_TYPE})

    def _take_fault(self, raw: str) -> None:
        try:
            fault = json.loads(raw)
        except ValueError:
            return
        if fault.get("kind") == "error":
            message = fault.get("message") or (
                f"The lab injected an error on {self.server_name}: the remote command failed."
            )
            self.inject_failure(message)

    # ------------------------------------------------------------------ WS-Man operations

    def _shell(self, req: soap.SoapRequest, user: str) -> Shell:
        shell_id = req.shell_id
        with self._lock:
            shell = self._shells.get(shell_id or "")
        if shell is None or shell.owner != user:
            raise soap.WSManFault.shell_not_found(shell_id or "")
        return shell

    def _dispatch(self, req: soap.SoapRequest, user: str, request: Request) -> bytes:
        action = req.action
        if action == soap.Action.CREATE:
            return self._create(req, user, request)
        if action == soap.Action.COMMAND:
            return self._command(req, user)
        if action == soap.Action.SEND:
            return self._send(req, user)
        if action == soap.Action.RECEIVE:
            return self._receive(req, user)
        if action == soap.Action.SIGNAL:
            return self._signal(req, user)
        if action == soap.Action.DELETE:
            shell = self._shell(req, user)
            shell.close()
            with self._lock:
                self._shells.pop(shell.shell_id, None)
            return soap.empty_response(req)
        if action == soap.Action.GET and req.shell_id:
            shell = self._shell(req, user)
            return soap.get_shell_response(req, shell_id=shell.shell_id, owner=user)
        raise soap.WSManFault.action_not_supported(action)

    def _create(self, req: soap.SoapRequest, user: str, request: Request) -> bytes:
        body = req.body
        if body is None or body.tag != f"{{{soap.NS['rsp']}}}Shell":
            raise soap.WSManFault.invalid("The Create request has no rsp:Shell body.")
        creation = body.find("pwsh:creationXml", soap.NS)
        if creation is None or not (creation.text or "").strip():
            raise soap.WSManFault.invalid("The Create request carries no PowerShell creationXml.")
        shell = Shell(owner=user, client_ip=request.client[0], runner=self._runner_for(user))
        shell_id = shell.open(base64.b64decode(creation.text), body.attrib.get("ShellId"))
        with self._lock:
            self._shells[shell_id] = shell
            self.shells_created += 1
        log.debug("%s: shell %s opened for %s", self.server_name, shell_id, user)
        return soap.create_response(
            req, shell_id=shell_id, address=self._address, owner=user, client_ip=shell.client_ip,
            input_streams=_INPUT_STREAMS, output_streams=_OUTPUT_STREAMS,
        )

    def _command(self, req: soap.SoapRequest, user: str) -> bytes:
        shell = self._shell(req, user)
        body = req.body
        if body is None:
            raise soap.WSManFault.invalid("The Command request has no rsp:CommandLine body.")
        command_id = body.attrib.get("CommandId") or str(uuid.uuid4())
        arguments = body.find("rsp:Arguments", soap.NS)
        fragment = base64.b64decode(arguments.text or "") if arguments is not None else b""
        command_id = shell.command(command_id, fragment)
        return soap.command_response(req, command_id)

    def _send(self, req: soap.SoapRequest, user: str) -> bytes:
        shell = self._shell(req, user)
        body = req.body
        if body is not None:
            for stream in body.findall("rsp:Stream", soap.NS):
                if stream.text:
                    # "pr" carries host-call responses; the lab never makes host calls.
                    if stream.attrib.get("Name", "stdin") == "stdin":
                        shell.send(base64.b64decode(stream.text))
        return soap.empty_response(req, "SendResponse")

    def _receive(self, req: soap.SoapRequest, user: str) -> bytes:
        shell = self._shell(req, user)
        desired = req.body.find("rsp:DesiredStream", soap.NS) if req.body is not None else None
        command_id = desired.attrib.get("CommandId") if desired is not None else None
        # Answer about a second before the client gives up on the operation (it then polls again).
        timeout = max(req.operation_timeout - 1.0, 0.5)
        chunks, done = shell.receive(command_id, max_envelope_size=req.max_envelope_size, timeout=timeout)
        return soap.receive_response(req, chunks, command_id=command_id.upper() if command_id else None,
                                     done=done)

    def _signal(self, req: soap.SoapRequest, user: str) -> bytes:
        shell = self._shell(req, user)
        body = req.body
        command_id = body.attrib.get("CommandId") if body is not None else None
        code_el = body.find("rsp:Code", soap.NS) if body is not None else None
        if command_id:
            shell.signal(command_id, (code_el.text or "") if code_el is not None else "")
        return soap.empty_response(req, "SignalResponse")

    # ------------------------------------------------------------------ pipelines

    def _runner_for(self, user: str):
        def run(commands: list[CommandSpec], pipeline_input: list[Any], sink: PipelineSink,
                session: dict[str, Any]) -> PipelineOutcome:
            injected = None
            try:
                injected = self._injected_failures.popleft()
            except IndexError:
                pass
            return run_pipeline(self._table, commands, pipeline_input, sink=sink, user=user,
                                server=self.server_name, injected_failure=injected, session=session)

        return run
