"""WS-Management SOAP envelopes of the PowerShell remoting shell ([MS-WSMV]) as a WinRM server
sees them: parse the client's Create / Command / Send / Receive / Signal / Delete / Get requests
and build the responses and faults a Windows WinRM service sends back.

Only what PSRP over WinRM uses is modelled. Responses echo the request's ``MessageID`` in
``wsa:RelatesTo`` (pypsrp refuses an answer that does not), and faults carry the numeric
``WSManFault`` code the client acts on (2150858793 = operation timed out, re-poll).
"""

from __future__ import annotations

import base64
import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

__all__ = [
    "NS",
    "Action",
    "SoapRequest",
    "WSManFault",
    "parse_request",
    "envelope",
    "fault_envelope",
    "create_response",
    "command_response",
    "receive_response",
    "empty_response",
    "get_shell_response",
    "receive_budget",
    "FAULT_OPERATION_TIMEOUT",
    "FAULT_SHELL_NOT_FOUND",
]

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "wsa": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "wsman": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "wsmv": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "wst": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "wsmanfault": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
    "pwsh": "http://schemas.microsoft.com/powershell",
}

ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
COMMAND_STATE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/"

# WSManFault codes a Windows WinRM service uses for the situations the lab reproduces.
FAULT_OPERATION_TIMEOUT = 2150858793  # ERROR_WSMAN_OPERATION_TIMEDOUT: no output yet, the client re-polls
FAULT_SHELL_NOT_FOUND = 2150858843  # the ShellId names no shell on this server
FAULT_ACTION_NOT_SUPPORTED = 2150858758
FAULT_INVALID_BODY = 2150858817


class Action:
    """wsa:Action URIs of the shell operations."""

    CREATE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"
    DELETE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete"
    GET = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get"
    COMMAND = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command"
    SEND = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send"
    RECEIVE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive"
    SIGNAL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal"
    FAULT = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"

    @staticmethod
    def response(action: str) -> str:
        return action + "Response"


@dataclass
class SoapRequest:
    """The parts of a WS-Man request the shell needs. ``body`` is the first child of ``s:Body``."""

    action: str
    message_id: str
    resource_uri: str
    max_envelope_size: int
    operation_timeout: float
    selectors: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    body: ET.Element | None = None

    @property
    def shell_id(self) -> str | None:
        value = self.selectors.get("ShellId")
        return value.upper() if value else None


class WSManFault(Exception):
    """A WS-Management fault to answer with (HTTP 500, as WinRM does)."""

    def __init__(self, code: int, message: str, *, subcode: str = "w:InternalError",
                 value: str = "s:Receiver") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.subcode = subcode
        self.value = value

    @classmethod
    def operation_timeout(cls) -> "WSManFault":
        return cls(FAULT_OPERATION_TIMEOUT,
                   "The WS-Management service cannot complete the operation within the time specified "
                   "in OperationTimeout.", subcode="w:TimedOut")

    @classmethod
    def shell_not_found(cls, shell_id: str) -> "WSManFault":
        return cls(FAULT_SHELL_NOT_FOUND,
                   f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the shell "
                   "was not found on the server. Possible causes are: the specified ShellId is incorrect or the "
                   "shell no longer exists on the server. Provide the correct ShellId or create a new shell and "
                   "try again.", subcode="w:InvalidSelectors", value="s:Sender")

    @classmethod
    def action_not_supported(cls, action: str) -> "WSManFault":
        return cls(FAULT_ACTION_NOT_SUPPORTED,
                   f"The WS-Management service cannot process the request because the action {action} is not "
                   "supported for this resource.", subcode="a:ActionNotSupported", value="s:Sender")

    @classmethod
    def invalid(cls, message: str) -> "WSManFault":
        return cls(FAULT_INVALID_BODY, f"The WS-Management service cannot process the request. {message}",
                   subcode="w:SchemaValidationError", value="s:Sender")


_DURATION = re.compile(r"^PT(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?$")


def parse_duration(text: str | None, default: float) -> float:
    """``PT20S`` / ``PT20.000S`` / ``PT1M`` → seconds."""
    match = _DURATION.match((text or "").strip())
    if not match or not any(match.groups()):
        return default
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def parse_request(data: bytes) -> SoapRequest:
    """Parse a WS-Man envelope; :class:`WSManFault` if it is not one."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise WSManFault.invalid(f"The request is not well-formed XML: {exc}.") from None
    header = root.find("s:Header", NS)
    if header is None:
        raise WSManFault.invalid("The SOAP envelope has no header.")

    def text(path: str) -> str:
        el = header.find(path, NS)
        return (el.text or "").strip() if el is not None else ""

    try:
        max_env = int(text("wsman:MaxEnvelopeSize") or 153600)
    except ValueError:
        max_env = 153600
    selectors = {
        el.attrib.get("Name", ""): (el.text or "")
        for el in header.findall("wsman:SelectorSet/wsman:Selector", NS)
    }
    options = {
        el.attrib.get("Name", ""): (el.text or "")
        for el in header.findall("wsman:OptionSet/wsman:Option", NS)
    }
    body = root.find("s:Body", NS)
    return SoapRequest(
        action=text("wsa:Action"),
        message_id=text("wsa:MessageID"),
        resource_uri=text("wsman:ResourceURI"),
        max_envelope_size=max_env,
        operation_timeout=parse_duration(text("wsman:OperationTimeout"), 60.0),
        selectors=selectors,
        options=options,
        body=body[0] if body is not None and len(body) else None,
    )


_ENVELOPE_OPEN = (
    '<s:Envelope xml:lang="en-US" xmlns:s="{s}" xmlns:a="{wsa}" xmlns:x="{wst}" xmlns:w="{wsman}" '
    'xmlns:rsp="{rsp}" xmlns:p="{wsmv}">'
).format(**NS)


def envelope(action: str, relates_to: str, body: str, *, header_extra: str = "") -> bytes:
    """A response envelope: ``body`` is already-serialised XML of the ``s:Body`` content."""
    return (
        f"{_ENVELOPE_OPEN}<s:Header><a:Action>{escape(action)}</a:Action>"
        f"<a:MessageID>uuid:{str(uuid.uuid4()).upper()}</a:MessageID>"
        f"<a:To>{ANONYMOUS}</a:To><a:RelatesTo>{escape(relates_to)}</a:RelatesTo>{header_extra}"
        f"</s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode("utf-8")


def fault_envelope(fault: WSManFault, relates_to: str, machine: str) -> bytes:
    body = (
        f"<s:Fault><s:Code><s:Value>{fault.value}</s:Value><s:Subcode><s:Value>{fault.subcode}</s:Value>"
        f"</s:Subcode></s:Code><s:Reason><s:Text xml:lang=\"en-US\">{escape(fault.message)} </s:Text></s:Reason>"
        f"<s:Detail><f:WSManFault xmlns:f=\"{NS['wsmanfault']}\" Code=\"{fault.code}\" "
        f"Machine={quoteattr(machine)}><f:Message>{escape(fault.message)} </f:Message></f:WSManFault>"
        f"</s:Detail></s:Fault>"
    )
    return envelope(Action.FAULT, relates_to, body)


def create_response(request: SoapRequest, *, shell_id: str, address: str, owner: str, client_ip: str,
                    input_streams: str, output_streams: str) -> bytes:
    resource = escape(request.resource_uri)
    body = (
        f"<x:ResourceCreated><a:Address>{escape(address)}</a:Address><a:ReferenceParameters>"
        f"<w:ResourceURI>{resource}</w:ResourceURI><w:SelectorSet>"
        f"<w:Selector Name=\"ShellId\">{shell_id}</w:Selector></w:SelectorSet>"
        f"</a:ReferenceParameters></x:ResourceCreated>"
        f"<rsp:Shell><rsp:ShellId>{shell_id}</rsp:ShellId><rsp:Name>Runspace1</rsp:Name>"
        f"<rsp:ResourceUri>{resource}</rsp:ResourceUri><rsp:Owner>{escape(owner)}</rsp:Owner>"
        f"<rsp:ClientIP>{escape(client_ip)}</rsp:ClientIP><rsp:IdleTimeOut>PT7200.000S</rsp:IdleTimeOut>"
        f"<rsp:InputStreams>{escape(input_streams)}</rsp:InputStreams>"
        f"<rsp:OutputStreams>{escape(output_streams)}</rsp:OutputStreams>"
        f"<rsp:MaxIdleTimeOut>PT2147483.647S</rsp:MaxIdleTimeOut><rsp:Locale>en-US</rsp:Locale>"
        f"<rsp:DataLocale>en-US</rsp:DataLocale><rsp:CompressionMode>NoCompression</rsp:CompressionMode>"
        f"<rsp:ProfileLoaded>Yes</rsp:ProfileLoaded><rsp:Encoding>UTF8</rsp:Encoding>"
        f"<rsp:BufferMode>Block</rsp:BufferMode><rsp:State>Connected</rsp:State>"
        f"<rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime><rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity>"
        f"</rsp:Shell>"
    )
    return envelope(Action.response(Action.CREATE), request.message_id, body)


def get_shell_response(request: SoapRequest, *, shell_id: str, owner: str, state: str = "Connected") -> bytes:
    body = (
        f"<rsp:Shell><rsp:ShellId>{shell_id}</rsp:ShellId><rsp:ResourceUri>{escape(request.resource_uri)}"
        f"</rsp:ResourceUri><rsp:Owner>{escape(owner)}</rsp:Owner><rsp:State>{state}</rsp:State></rsp:Shell>"
    )
    return envelope("http://schemas.xmlsoap.org/ws/2004/09/transfer/GetResponse", request.message_id, body)


def command_response(request: SoapRequest, command_id: str) -> bytes:
    body = f"<rsp:CommandResponse><rsp:CommandId>{command_id}</rsp:CommandId></rsp:CommandResponse>"
    return envelope(Action.response(Action.COMMAND), request.message_id, body)


def receive_response(request: SoapRequest, chunks: list[bytes], *, command_id: str | None,
                     done: bool) -> bytes:
    """``chunks`` are PSRP payloads (one ``rsp:Stream`` each). With a ``command_id`` the command state
    is reported: Done once the pipeline has ended and every byte of its output was handed out."""
    cid = f' CommandId="{command_id}"' if command_id else ""
    streams = "".join(
        f'<rsp:Stream Name="stdout"{cid}>{base64.b64encode(chunk).decode()}</rsp:Stream>' for chunk in chunks
    )
    state = ""
    if command_id:
        state = f'<rsp:CommandState{cid} State="{COMMAND_STATE}{"Done" if done else "Running"}"/>'
    body = f"<rsp:ReceiveResponse>{streams}{state}</rsp:ReceiveResponse>"
    return envelope(Action.response(Action.RECEIVE), request.message_id, body)


def empty_response(request: SoapRequest, element: str | None = None) -> bytes:
    """Send / Signal / Delete answers: an empty ``rsp:<element>`` (or an empty body)."""
    body = f"<rsp:{element}/>" if element else ""
    return envelope(Action.response(request.action), request.message_id, body)


# Bytes of a Receive answer that are not payload (envelope, headers, Stream/CommandState markup),
# rounded up generously: the answer must never exceed the client's MaxEnvelopeSize.
_RECEIVE_OVERHEAD = 2048


def receive_budget(max_envelope_size: int) -> int:
    """How many raw PSRP bytes fit in one Receive answer (they travel base64-encoded)."""
    return max(1024, (max_envelope_size - _RECEIVE_OVERHEAD) * 3 // 4)
