"""How a simulated Windows server downloads a partner's JSON metadata over .NET.

A SharePoint farm does it for New-SPTrustedSecurityTokenIssuer and New-SPTrustedRootAuthority
``-MetadataEndPoint``; Exchange (New-PartnerApplication / New-AuthServer) and Skype for Business
(New-CsPartnerApplication) download metadata the same way. Failures are reported with the .NET
``WebException`` texts the cmdlets pass on.

This is the *servers'* client, deliberately separate from :mod:`runbooklib.metadata` (the runbooks'
client): if both shared one parser, a parsing bug would hide itself in every test.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from cryptography import x509

__all__ = [
    "FetchFailed",
    "METADATA_INVALID",
    "WEB_CONNECT_FAILED",
    "fetch_body",
    "fetch_json",
    "issuer_of",
    "signing_certificates",
]

log = logging.getLogger(__name__)

# The .NET WebException texts a cmdlet passes on.   [C] texts; [U] wrapping
WEB_NAME_NOT_RESOLVED = "The remote name could not be resolved: '{host}'"
WEB_CONNECT_FAILED = "Unable to connect to the remote server"
WEB_TRUST_FAILED = ("The underlying connection was closed: Could not establish trust relationship for the "
                    "SSL/TLS secure channel.")
WEB_RECEIVE_FAILED = "The underlying connection was closed: An unexpected error occurred on a receive."
WEB_TIMEOUT = "The operation has timed out"
WEB_HTTP_STATUS = "The remote server returned an error: ({status}) {reason}."
METADATA_INVALID = "The metadata document retrieved from '{url}' is not a valid JSON metadata document."  # [U]


class FetchFailed(Exception):
    """The farm could not obtain a usable metadata document; ``str()`` is the product's text."""

    def __init__(self, message: str, exception_type: str = "System.Net.WebException") -> None:
        super().__init__(message)
        self.exception_type = exception_type


def _ci(d: dict[str, Any], key: str) -> Any:
    for k, v in d.items():
        if k.lower() == key:
            return v
    return None


def fetch_json(url: str, *, ca_bundle: Path | None, timeout: float, user_agent: str) -> dict[str, Any]:
    """The JSON object at ``url``, or :class:`FetchFailed` with the text the server would report.

    ``ca_bundle`` is what the server trusts (a real one uses the Windows certificate store);
    ``None`` means the system's defaults.
    """
    body = fetch_body(url, ca_bundle=ca_bundle, timeout=timeout, user_agent=user_agent)
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise FetchFailed(METADATA_INVALID.format(url=url), "System.InvalidOperationException") from exc
    if not isinstance(doc, dict):
        raise FetchFailed(METADATA_INVALID.format(url=url), "System.InvalidOperationException")
    return doc


def fetch_body(url: str, *, ca_bundle: Path | None, timeout: float, user_agent: str) -> bytes:
    """The body at ``url`` as .NET's WebClient downloads it, or :class:`FetchFailed` with its text."""
    context = ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
    request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": user_agent})
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as resp:  # noqa: S310 - https/http only
            body = resp.read()
    except urllib.error.HTTPError as exc:
        raise FetchFailed(WEB_HTTP_STATUS.format(status=exc.code, reason=_reason(exc.code, exc.reason))) from exc
    except urllib.error.URLError as exc:
        raise FetchFailed(_url_error_text(url, exc.reason)) from exc
    except (TimeoutError, socket.timeout) as exc:
        raise FetchFailed(WEB_TIMEOUT) from exc
    except (http.client.HTTPException, ConnectionError, OSError) as exc:
        raise FetchFailed(WEB_RECEIVE_FAILED) from exc
    return body


def _reason(status: int, reason: object) -> str:
    return {404: "Not Found", 401: "Unauthorized", 403: "Forbidden", 500: "Internal Server Error",
            503: "Server Unavailable"}.get(status, str(reason or ""))


def _url_error_text(url: str, reason: object) -> str:
    if isinstance(reason, ssl.SSLError):
        return WEB_TRUST_FAILED
    if isinstance(reason, socket.gaierror):
        host = urllib.parse.urlsplit(url).hostname or url
        return WEB_NAME_NOT_RESOLVED.format(host=host)
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return WEB_TIMEOUT
    if isinstance(reason, ConnectionRefusedError):
        return WEB_CONNECT_FAILED
    if isinstance(reason, (ConnectionResetError, http.client.RemoteDisconnected)):
        return WEB_RECEIVE_FAILED
    return WEB_CONNECT_FAILED


def signing_certificates(doc: dict[str, Any], url: str) -> list[x509.Certificate]:
    """The x509 certificates of ``keys[]`` (any casing), signing keys first."""
    keys = _ci(doc, "keys")
    if not isinstance(keys, list):
        raise FetchFailed(METADATA_INVALID.format(url=url), "System.InvalidOperationException")
    certs: list[tuple[int, x509.Certificate]] = []
    for key in keys:
        if not isinstance(key, dict):
            continue
        value = _ci(key, "keyvalue")
        if not isinstance(value, dict) or str(_ci(value, "type") or "").lower() != "x509certificate":
            continue
        try:
            cert = x509.load_der_x509_certificate(base64.b64decode(_ci(value, "value") or ""))
        except ValueError as exc:
            raise FetchFailed(METADATA_INVALID.format(url=url), "System.InvalidOperationException") from exc
        usage = str(_ci(key, "usage") or "").lower()
        certs.append((0 if usage == "signing" else 1, cert))
    if not certs:
        raise FetchFailed(METADATA_INVALID.format(url=url), "System.InvalidOperationException")
    return [c for _, c in sorted(certs, key=lambda t: t[0])]


def issuer_of(doc: dict[str, Any], url: str) -> str:
    issuer = _ci(doc, "issuer")
    if not isinstance(issuer, str) or "@" not in issuer:
        raise FetchFailed(METADATA_INVALID.format(url=url), "System.InvalidOperationException")
    return issuer.lower()  # the servers store issuer names in lower case

