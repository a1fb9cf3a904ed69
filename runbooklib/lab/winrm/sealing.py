"""WinRM message encryption, server side: the ``multipart/encrypted`` bodies a WinRM listener
reads and writes over plain HTTP once NTLM (SPNEGO) or CredSSP has set up a security context.

A sealed body is MIME-like, one part pair per sealed chunk ([MS-WSMV] 2.2.9.1)::

    --Encrypted Boundary\\r\\n
    \\tContent-Type: application/HTTP-SPNEGO-session-encrypted\\r\\n
    \\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=<plain length>\\r\\n
    --Encrypted Boundary\\r\\n
    \\tContent-Type: application/octet-stream\\r\\n
    <uint32 LE header length><header><sealed data>
    --Encrypted Boundary--\\r\\n

CredSSP seals at most 16 KiB per chunk; a longer message is several chunks under
``multipart/x-multi-encrypted``. The security context (a pyspnego acceptor) does the
cryptography: ``wrap_winrm`` / ``unwrap_winrm``.
"""

from __future__ import annotations

import re
import struct
from typing import Any

__all__ = [
    "CREDSSP_PROTOCOL",
    "SPNEGO_PROTOCOL",
    "SealingError",
    "is_sealed",
    "seal",
    "unseal",
]

SPNEGO_PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"
CREDSSP_PROTOCOL = "application/HTTP-CredSSP-session-encrypted"
_BOUNDARY = "Encrypted Boundary"
_CREDSSP_CHUNK = 16 * 1024
_SEALED_TYPES = ("multipart/encrypted", "multipart/x-multi-encrypted")
_LENGTH = re.compile(rb"Length=(\d+)")
_BOUNDARY_PARAM = re.compile(r'boundary="?([^";]+)"?', re.I)
_PROTOCOL_PARAM = re.compile(r'protocol="?([^";]+)"?', re.I)


class SealingError(ValueError):
    """A sealed body that does not open: wrong framing, wrong protocol or wrong key."""


def is_sealed(content_type: str | None) -> bool:
    """Whether a request's Content-Type says its body is sealed."""
    return (content_type or "").split(";", 1)[0].strip().lower() in _SEALED_TYPES


def unseal(context: Any, content_type: str, body: bytes, *, protocol: str) -> bytes:
    """The SOAP message inside ``body``, opened with ``context``; refuses another protocol's framing."""
    sent_protocol = _PROTOCOL_PARAM.search(content_type)
    if sent_protocol is None or sent_protocol.group(1).lower() != protocol.lower():
        raise SealingError(f"the body is sealed for {sent_protocol.group(1) if sent_protocol else 'no protocol'}, "
                           f"this connection authenticated for {protocol}")
    boundary = _BOUNDARY_PARAM.search(content_type)
    marker = b"--" + (boundary.group(1) if boundary else _BOUNDARY).encode()
    parts = [part for part in body.split(marker) if part not in (b"", b"--\r\n")]
    if not parts or len(parts) % 2:
        raise SealingError("the sealed body is not a sequence of header and data parts")
    message = b""
    for meta, payload in zip(parts[::2], parts[1::2]):
        length = _LENGTH.search(meta)
        _, _, sealed = payload.partition(b"application/octet-stream\r\n")
        if length is None or len(sealed) < 4:
            raise SealingError("a sealed part lacks its length or its data")
        (header_length,) = struct.unpack("<I", sealed[:4])
        header, data = sealed[4:4 + header_length], sealed[4 + header_length:]
        try:
            plain = context.unwrap_winrm(header, data)
        except Exception as exc:  # pyspnego raises several types for a bad signature or key
            raise SealingError(f"the sealed data does not open with this connection's key: {exc}") from None
        if len(plain) != int(length.group(1)):
            raise SealingError("the opened data is not the length its part announced")
        message += plain
    return message


def seal(context: Any, message: bytes, *, protocol: str) -> tuple[str, bytes]:
    """``(content_type, body)`` carrying ``message`` sealed with ``context``, as the listener answers."""
    chunked = protocol == CREDSSP_PROTOCOL and len(message) > _CREDSSP_CHUNK
    size = _CREDSSP_CHUNK if chunked else max(len(message), 1)
    body = b""
    for start in range(0, max(len(message), 1), size):
        body += _sealed_part(context, message[start:start + size], protocol)
    body += f"--{_BOUNDARY}--\r\n".encode()
    kind = _SEALED_TYPES[1] if chunked else _SEALED_TYPES[0]
    return f'{kind};protocol="{protocol}";boundary="{_BOUNDARY}"', body


def _sealed_part(context: Any, chunk: bytes, protocol: str) -> bytes:
    result = context.wrap_winrm(chunk)
    header, data, padding = result.header, result.data, result.padding_length
    meta = (
        f"--{_BOUNDARY}\r\n"
        f"\tContent-Type: {protocol}\r\n"
        f"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length={len(chunk) + padding}\r\n"
        f"--{_BOUNDARY}\r\n"
        "\tContent-Type: application/octet-stream\r\n"
    )
    return meta.encode() + struct.pack("<I", len(header)) + header + data
