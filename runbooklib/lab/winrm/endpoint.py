"""The lab's WinRM endpoint: ``/wsman`` on a :class:`~runbooklib.lab.http.LabServer`, speaking
WS-Management + PSRP to the unmodified pypsrp client.

Authentication is what the endpoint's ``auth`` enables, as a listener's service configuration
does (:mod:`.auth`): Basic over HTTPS (the default), Negotiate (NTLM) and CredSSP, both bound to
the TCP connection. On a plain-HTTP server the latter two seal every message (:mod:`.sealing`)
and a body that arrives unsealed is refused with 401, as a listener with ``AllowUnencrypted=false``
refuses it [U: the status for an unsealed body on an authenticated connection]. Wrong
credentials → 401, nothing else said. Each shell belongs to the account that created it and
remembers whether that account's credentials were delegated to it (CredSSP:
:func:`~runbooklib.lab.winrm.api.credentials_delegated`).

Every endpoint also answers the engine built-ins (``Add-PSSnapin``, ``Get-PSSnapin``,
``Import-Module``, ``Get-Module``, ``Get-Command``; :mod:`.builtins`), merged under the product's
table; each shell keeps its own session state, so what one runspace pool loaded another does not see.

Session configurations: a shell request names its configuration in its resource URI
(:mod:`.configurations`); the endpoint serves those it is given — ``Microsoft.PowerShell`` by
default — and refuses any other name with the WS-Management fault Windows gives. A
commands-only configuration (``commands_only("Microsoft.Exchange")``, mounted with
``path="/PowerShell"`` as Exchange serves it) runs cmdlets with parameters and refuses every
script, templates included, with PowerShell's no-language parse error.

One endpoint may be served by several listeners of its host (the estate adds a plain-http one
to each HTTPS server with a WinRM route): shells and session state are the endpoint's, and a
Create answer names the address the client reached.

An ``error`` fault from the server's fault plan (delivered in the ``x-lab-fault`` request
header by :class:`LabServer`) makes the next pipeline on this endpoint fail with an error record
carrying the fault's message; ``drop`` and ``stall`` faults never reach the endpoint.

Usage::

    endpoint = WinRMEndpoint(server_name="sp-a", commands=table, accounts={"LAB\\\\spadmin": "…"},
                             auth=("negotiate", "credssp"))
    endpoint.mount(server)

    exchange = WinRMEndpoint(server_name="exchange", commands=table, accounts=…, path="/PowerShell",
                             configurations=(commands_only("Microsoft.Exchange"),))
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import uuid
from collections import deque
from typing import Any, Iterable

from psrpcore import PSRPCoreError

from ..http import LabServer, Request, Response
from . import soap
from .adapter import Shell
from .api import CommandTable
from .auth import BASIC_REALM, DEFAULT_AUTH, Authenticator, Challenge, Principal
from .builtins import builtin_commands
from .configurations import SessionConfiguration, full_language, unknown_configuration
from .dispatch import CommandSpec, PipelineOutcome, PipelineSink, run_pipeline
from .sealing import SealingError, is_sealed, seal, unseal

__all__ = ["BASIC_REALM", "WSMAN_PATH", "WinRMEndpoint"]

log = logging.getLogger(__name__)

WSMAN_PATH = "/wsman"
_SOAP_CONTENT_TYPE = "application/soap+xml;charset=UTF-8"
# The PowerShell plugin's streams, as a WinRM server reports them for a PSRP shell.
_INPUT_STREAMS = "stdin pr"
_OUTPUT_STREAMS = "stdout"


class WinRMEndpoint:
    """PowerShell remoting for one simulated server, answering ``commands`` for ``accounts``.

    ``accounts`` maps a user name as clients send it (``LAB\\spadmin``; matched
    case-insensitively, as Windows does) to its password. ``auth`` lists the schemes the
    listener accepts (``basic``, ``negotiate``, ``credssp``). ``path`` is where it is mounted
    (``/wsman``; Exchange's is ``/PowerShell``); ``configurations`` the session configurations
    it serves (default ``Microsoft.PowerShell`` with the full language).
    """

    def __init__(self, *, server_name: str, commands: CommandTable, accounts: dict[str, str],
                 auth: Iterable[str] = DEFAULT_AUTH, path: str = WSMAN_PATH,
                 configurations: Iterable[SessionConfiguration] = (full_language(),)) -> None:
        if not path.startswith("/"):
            raise ValueError(f"a WinRM endpoint path starts with '/': {path!r}")
        self.server_name = server_name
        self.commands = commands
        # What pipelines resolve against: the product's table over the engine built-ins.
        self._table = builtin_commands().merge(commands)
        self._auth = Authenticator(server_name=server_name, schemes=auth, accounts=accounts)
        self._account_names = sorted(accounts)
        self._shells: dict[str, Shell] = {}
        self._lock = threading.Lock()
        self._injected_failures: deque[str] = deque()
        self._path = path
        self._configurations = {c.resource_uri.lower(): c for c in configurations}
        if not self._configurations:
            raise ValueError(f"{server_name}: a WinRM endpoint serves at least one session configuration")
        self.shells_created = 0
        self.requests_handled = 0  # WS-Man requests answered (benchmarks and tests count round trips)

    def __repr__(self) -> str:
        return (f"<WinRMEndpoint {self.server_name} auth={','.join(self._auth.schemes)} "
                f"accounts={self._account_names}>")

    # ------------------------------------------------------------------ wiring

    def mount(self, server: LabServer) -> None:
        """Serve the endpoint's path on ``server`` (which handles drop/stall faults; this route handles ``error``).

        The route is of kind ``winrm``: the estate serves it on the host's plain-http listener too.
        """
        server.mount(self._path, self.handle, handles_error_faults=True, kind="winrm")

    @property
    def path(self) -> str:
        return self._path

    @property
    def configurations(self) -> tuple[SessionConfiguration, ...]:
        """The session configurations this endpoint serves."""
        return tuple(self._configurations.values())

    def set_accounts(self, accounts: dict[str, str]) -> None:
        """Replace the accepted accounts (e.g. after a lab password rotation)."""
        self._auth.set_accounts(accounts)
        self._account_names = sorted(accounts)

    @property
    def auth(self) -> tuple[str, ...]:
        """The authentication schemes this listener accepts."""
        return self._auth.schemes

    def inject_failure(self, message: str) -> None:
        """Make the next pipeline on this endpoint fail with ``message`` (what an ``error`` fault does)."""
        self._injected_failures.append(message)

    @property
    def open_shells(self) -> int:
        with self._lock:
            return len(self._shells)

    # ------------------------------------------------------------------ HTTP

    def handle(self, request: Request) -> Response:
        """The ``/wsman`` route."""
        self.requests_handled += 1
        fault_header = request.header("x-lab-fault")
        if fault_header:
            # Taken on arrival: the request that carries it may be only a step of an authentication
            # handshake (NTLM, CredSSP), and the fault is for the next command all the same.
            self._take_fault(fault_header)
        outcome = self._auth.authenticate(request)
        if isinstance(outcome, Challenge):
            return outcome.response
        principal = outcome.principal
        if request.method != "POST":
            return Response(405, b"", {"Allow": "POST"})
        try:
            message = self._open(request, principal)
        except SealingError as exc:
            log.info("%s: WinRM request refused: %s", self.server_name, exc)
            return self._auth.challenge()
        if not message and principal.sealing:
            # The empty request a client sends to set up message encryption: authenticated, nothing to do.
            response = Response(200, b"", {})
        else:
            response = self._answer(request, message, principal)
            if is_sealed(request.header("content-type")):
                content_type, sealed = seal(principal.context, response.body, protocol=principal.sealing or "")
                response = Response(response.status, sealed, {**response.headers, "Content-Type": content_type})
        if outcome.www_authenticate:
            response.headers["WWW-Authenticate"] = outcome.www_authenticate
        return response

    def _open(self, request: Request, principal: Principal) -> bytes:
        """The SOAP message a request carries, unsealed; refuses what must be sealed and is not."""
        content_type = request.header("content-type") or ""
        if is_sealed(content_type):
            if principal.context is None:
                raise SealingError(f"a sealed body on a connection authenticated with {principal.scheme}")
            return unseal(principal.context, content_type, request.body, protocol=principal.sealing or "")
        if request.body and principal.sealing and not request.connection.secure:
            raise SealingError(f"an unencrypted body over plain HTTP from {principal.user} "
                               "(unencrypted traffic is not allowed)")
        return request.body

    def _answer(self, request: Request, message: bytes, principal: Principal) -> Response:
        relates_to = ""
        try:
            soap_request = soap.parse_request(message)
            relates_to = soap_request.message_id
            try:
                body = self._dispatch(soap_request, principal, request)
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

    def _dispatch(self, req: soap.SoapRequest, principal: Principal, request: Request) -> bytes:
        action, user = req.action, principal.user
        if action == soap.Action.CREATE:
            return self._create(req, principal, request)
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

    def _create(self, req: soap.SoapRequest, principal: Principal, request: Request) -> bytes:
        user = principal.user
        body = req.body
        if body is None or body.tag != f"{{{soap.NS['rsp']}}}Shell":
            raise soap.WSManFault.invalid("The Create request has no rsp:Shell body.")
        creation = body.find("pwsh:creationXml", soap.NS)
        if creation is None or not (creation.text or "").strip():
            raise soap.WSManFault.invalid("The Create request carries no PowerShell creationXml.")
        configuration = self._configurations.get(req.resource_uri.strip().lower())
        if configuration is None:
            raise unknown_configuration(req.resource_uri, self.server_name)
        shell = Shell(owner=user, client_ip=request.client[0], runner=self._runner_for(user),
                      delegated=principal.delegated, no_language=not configuration.language)
        shell_id = shell.open(base64.b64decode(creation.text), body.attrib.get("ShellId"))
        with self._lock:
            self._shells[shell_id] = shell
            self.shells_created += 1
        log.debug("%s: shell %s (%s) opened for %s (%s%s)", self.server_name, shell_id, configuration.name, user,
                  principal.scheme, ", credentials delegated" if principal.delegated else "")
        return soap.create_response(
            req, shell_id=shell_id, address=f"{request.server_url}{self._path}", owner=user, client_ip=shell.client_ip,
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
