"""Test-OAuthConnectivity as the simulated Exchange server runs it: a real call to the target.

Exchange finds where the target is (the lab's names, as DNS would), asks it anonymously for its
Bearer challenge to learn the realm and the principal it answers as, mints its own S2S token for
that audience (for the mailbox's user, or app-only) and calls the target with it. The result is
what the cmdlet reports: ``Success`` when the target accepts, ``Error`` with the target's answer
(status, ``x-ms-diagnostics``) in the log otherwise.
"""

from __future__ import annotations

import re
import ssl
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from ..metadata_download import WEB_CONNECT_FAILED, WEB_NAME_NOT_RESOLVED
from . import texts as T
from .organization import Organization

__all__ = ["Outcome", "test_oauth"]

_CHALLENGE_PART = re.compile(r'(\w+)="([^"]*)"')
_REASONS = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 500: "Internal Server Error"}


@dataclass(frozen=True)
class Outcome:
    """``result``: Success | Error; ``log``: the lines of the result's Detail."""

    result: str
    log: tuple[str, ...]


def _host_of(url: str) -> str:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.port and parts.port != {"https": 443, "http": 80}.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


def _call(url: str, token: str, ca_bundle, timeout: float) -> tuple[int, dict[str, str]]:
    context = ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json",
                                                   "User-Agent": "Exchange/15.02 (OAuth test)"})
    try:
        with urllib.request.urlopen(request, context=context, timeout=timeout) as response:  # noqa: S310
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


def test_oauth(org: Organization, *, service: str, target_uri: str, user_sid: str | None) -> Outcome:
    """What Test-OAuthConnectivity finds calling ``target_uri`` as Exchange."""
    request_id = str(uuid.uuid4())
    log = [f"Client request ID: {request_id}", "Exchange Outbound Oauth Log:",
           f"Calling {service} at {target_uri} {'as the mailbox user' if user_sid else 'app-only'}."]
    public = urlsplit(target_uri)
    host = _host_of(target_uri)
    address = org.resolve(host) or org.resolve(public.hostname or "")
    if address is None and (public.hostname or "") in ("127.0.0.1", "localhost"):
        address = f"{public.scheme}://{public.netloc}"
    if address is None:
        return Outcome("Error", (*log, "Exception: " + WEB_NAME_NOT_RESOLVED.format(host=public.hostname or host)))
    if org.outbound_blocked():
        return Outcome("Error", (*log, f"Exception: {WEB_CONNECT_FAILED}"))
    reached = urlsplit(address)
    url = urlunsplit((reached.scheme, reached.netloc, public.path or "/", public.query, ""))
    try:
        status, headers = _call(url, "", org.ca_bundle, org.metadata_timeout)
        challenge = next((v for k, v in headers.items() if k.lower() == "www-authenticate"), "")
        parts = {k.lower(): v for k, v in _CHALLENGE_PART.findall(challenge)}
        realm, principal = parts.get("realm"), parts.get("client_id")
        if not realm or not principal:
            return Outcome("Error", (*log, f"The target answered {status} without a Bearer challenge naming its "
                                           "realm and client_id; it does not accept S2S tokens there."))
        audience = f"{principal}/{host}@{realm}"
        log.append(f"Audience: {audience}")
        token = org.s2s_token(audience=audience, user_sid=user_sid)
        status, headers = _call(url, token, org.ca_bundle, org.metadata_timeout)
    except (urllib.error.URLError, OSError) as exc:
        return Outcome("Error", (*log, f"Exception: {WEB_CONNECT_FAILED} ({exc})"))
    log.append("Exchange Response Details:")
    log.append(f"HTTP response status code: {status}")
    diagnostics = next((v for k, v in headers.items() if k.lower() == "x-ms-diagnostics"), "")
    if diagnostics:
        log.append(f"x-ms-diagnostics: {diagnostics}")
    if 200 <= status < 300:
        return Outcome("Success", (*log, "The OAuth call succeeded."))
    return Outcome("Error", (*log, "Exception: " + T.web_status(status, _REASONS.get(status, ""))))
