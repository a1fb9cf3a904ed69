"""S2S JSON metadata documents and realm discovery, as the runbooks read them.

A partner that issues S2S tokens publishes who it is and which certificate signs its tokens in a
JSON metadata document: SharePoint at ``https://HOST/_layouts/15/metadata/json/1``, ACS at
``https://accounts.accesscontrol.windows.net/<tenant>/metadata/json/1``, Exchange and Skype at
their own paths. The products disagree on casing (``x509certificate`` / ``x509Certificate``,
``Signing`` / ``signing``), so everything here is read case-insensitively.

TLS is always verified, against the CA bundle the inventory names (or the system's trust
store when it names none); there is no switch to turn verification off.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import json
import logging
import re
import socket
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from .errors import MetadataError
from .principal_names import split_principal_name

__all__ = [
    "BearerChallenge",
    "S2SEndpoint",
    "S2SMetadata",
    "bearer_challenge",
    "discover_realm",
    "fetch_metadata",
    "parse_bearer_challenge",
    "parse_metadata",
    "same_metadata_uri",
]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 15.0
_MAX_DOCUMENT = 1024 * 1024  # a metadata document is a few KiB; refuse anything absurd


@dataclass(frozen=True)
class S2SEndpoint:
    location: str
    protocol: str
    usage: str


@dataclass(frozen=True)
class S2SMetadata:
    """One parsed metadata document.

    ``issuer`` is ``<principal id>@<realm>`` as published; ``realm`` is the part after ``@``
    (lower case, as SharePoint stores realms).
    """

    url: str
    issuer: str
    principal_id: str
    realm: str
    name: str | None
    service_name: str | None
    signing_certificates: tuple[x509.Certificate, ...]
    endpoints: tuple[S2SEndpoint, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def thumbprints(self) -> tuple[str, ...]:
        """SHA-1 thumbprints (upper-case hex, as Windows shows them) of the signing certificates."""
        return tuple(c.fingerprint(hashes.SHA1()).hex().upper() for c in self.signing_certificates)  # noqa: S303

    def endpoint(self, usage: str) -> S2SEndpoint | None:
        """The first endpoint with this usage (e.g. ``issuance``), case-insensitively."""
        return next((e for e in self.endpoints if e.usage.lower() == usage.lower()), None)


def _ci(mapping: dict[str, Any], key: str) -> Any:
    key = key.lower()
    for k, v in mapping.items():
        if isinstance(k, str) and k.lower() == key:
            return v
    return None


def parse_metadata(document: bytes | str | dict[str, Any], *, url: str = "the metadata document") -> S2SMetadata:
    """Parse a metadata document (raw JSON or already decoded)."""
    hint = f"Open {url} in a browser on the server and check that it returns the partner's JSON metadata."
    if isinstance(document, (bytes, str)):
        try:
            document = json.loads(document)
        except ValueError as exc:
            raise MetadataError(f"{url} did not return JSON ({exc}).", hint=hint) from exc
    if not isinstance(document, dict):
        raise MetadataError(f"{url} returned JSON that is not an object.", hint=hint)

    issuer = _ci(document, "issuer")
    if not isinstance(issuer, str) or not issuer.strip():
        raise MetadataError(f"The metadata document at {url} has no issuer.", hint=hint)
    issuer = issuer.strip()
    principal_id, realm = split_principal_name(issuer)
    if not realm:
        explicit = _ci(document, "realm")
        if not isinstance(explicit, str) or not explicit:
            raise MetadataError(f"The issuer {issuer!r} in {url} has no realm (expected <id>@<realm>).", hint=hint)
        realm = explicit

    keys = _ci(document, "keys")
    if not isinstance(keys, list):
        raise MetadataError(f"The metadata document at {url} has no keys.", hint=hint)
    signing: list[x509.Certificate] = []
    for index, key in enumerate(keys):
        if not isinstance(key, dict):
            continue
        usage = str(_ci(key, "usage") or "").lower()
        value = _ci(key, "keyValue")
        if usage != "signing" or not isinstance(value, dict):
            continue
        if str(_ci(value, "type") or "").lower() != "x509certificate":
            continue
        try:
            der = base64.b64decode(str(_ci(value, "value") or ""), validate=True)
            signing.append(x509.load_der_x509_certificate(der))
        except (binascii.Error, ValueError) as exc:
            raise MetadataError(f"Key {index} in {url} is not a valid base64 DER certificate ({exc}).",
                                hint=hint) from exc
    if not signing:
        raise MetadataError(f"The metadata document at {url} publishes no x509 signing certificate.", hint=hint)

    endpoints = []
    for entry in _ci(document, "endpoints") or []:
        if isinstance(entry, dict):
            endpoints.append(S2SEndpoint(str(_ci(entry, "location") or ""), str(_ci(entry, "protocol") or ""),
                                         str(_ci(entry, "usage") or "")))

    def text(key: str) -> str | None:
        value = _ci(document, key)
        return value if isinstance(value, str) else None

    return S2SMetadata(
        url=url, issuer=issuer, principal_id=principal_id.lower(), realm=realm.lower(),
        name=text("name"), service_name=text("serviceName"), signing_certificates=tuple(signing),
        endpoints=tuple(endpoints), raw=document,
    )


def _context(ca_bundle: Path | str | None) -> ssl.SSLContext:
    if ca_bundle is not None and not Path(ca_bundle).is_file():
        raise MetadataError(f"The CA bundle {ca_bundle} does not exist.",
                            hint="Fix ca_bundle in the inventory (paths are relative to the inventory file).")
    return ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)


def _failure(url: str, exc: BaseException, ca_bundle: Path | str | None) -> MetadataError:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, ssl.SSLCertVerificationError) or isinstance(reason, ssl.SSLError):
        trust = f"the CA bundle {ca_bundle}" if ca_bundle else "the system's trusted CAs"
        return MetadataError(
            f"TLS verification of {url} failed: {getattr(reason, 'verify_message', None) or reason}.",
            hint=f"Make sure the server's certificate chains to {trust} and names the host in the URL.")
    if isinstance(reason, socket.gaierror):
        return MetadataError(f"The host of {url} could not be resolved.",
                             hint="Check the URL and this machine's DNS.")
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return MetadataError(f"{url} did not answer in time.",
                             hint="Check that the server is up and that no firewall or proxy holds the request.")
    return MetadataError(f"Could not fetch {url}: {reason}.",
                         hint="Check that the server is up and reachable from this machine over HTTPS.")


def _get(url: str, *, ca_bundle: Path | str | None, timeout: float,
         headers: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("https", "http"):
        raise MetadataError(f"{url} is not an http(s) URL.", hint="Use the https:// URL of the metadata endpoint.")
    request = urllib.request.Request(url, headers={"Accept": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=_context(ca_bundle)) as resp:  # noqa: S310
            return resp.status, resp.headers, resp.read(_MAX_DOCUMENT + 1)
    except urllib.error.HTTPError as exc:
        try:
            body = exc.read(_MAX_DOCUMENT + 1)
        except (OSError, http.client.HTTPException):
            body = b""
        return exc.code, exc.headers, body
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise _failure(url, exc, ca_bundle) from exc


def fetch_metadata(url: str, *, ca_bundle: Path | str | None, timeout: float = DEFAULT_TIMEOUT) -> S2SMetadata:
    """Download and parse the metadata document at ``url`` (TLS verified against ``ca_bundle``)."""
    status, _, body = _get(url, ca_bundle=ca_bundle, timeout=timeout)
    if status != 200:
        raise MetadataError(f"{url} answered HTTP {status}.",
                            hint="Check the URL (…/metadata/json/1) and that the partner publishes its metadata.")
    if len(body) > _MAX_DOCUMENT:
        raise MetadataError(f"{url} returned more than {_MAX_DOCUMENT} bytes; that is not a metadata document.",
                            hint="Check the URL.")
    log.debug("fetched metadata %s (%d bytes)", url, len(body))
    return parse_metadata(body, url=url)


def _normal_uri(uri: str) -> tuple[str, str, int | None, str, str]:
    parts = urlsplit(uri.strip())
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    if port == {"https": 443, "http": 80}.get(scheme):
        port = None
    # IIS and ACS paths are case-insensitive; tenant ids and hosts too.
    return scheme, (parts.hostname or "").lower(), port, parts.path.rstrip("/").lower(), parts.query


def same_metadata_uri(a: str | None, b: str | None) -> bool:
    """True when two metadata URIs name the same document: with or without a trailing slash,
    in any letter case, with or without the scheme's default port."""
    if not a or not b:
        return False
    return _normal_uri(a) == _normal_uri(b)


@dataclass(frozen=True)
class BearerChallenge:
    """The ``WWW-Authenticate: Bearer …`` parameters a SharePoint site answers an anonymous probe with."""

    realm: str
    client_id: str | None
    trusted_issuers: tuple[str, ...]
    parameters: dict[str, str]


_PARAM = re.compile(r'([A-Za-z_][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def parse_bearer_challenge(header: str) -> BearerChallenge | None:
    """Parse one ``WWW-Authenticate`` value; ``None`` unless it is a Bearer challenge with a realm."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    params = {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3)) for m in _PARAM.finditer(rest)}
    realm = params.get("realm")
    if not realm:
        return None
    issuers = tuple(i.strip() for i in params.get("trusted_issuers", "").split(",") if i.strip())
    return BearerChallenge(realm=realm.lower(), client_id=params.get("client_id"), trusted_issuers=issuers,
                           parameters=params)


def bearer_challenge(site_url: str, *, ca_bundle: Path | str | None,
                     timeout: float = DEFAULT_TIMEOUT) -> BearerChallenge:
    """Probe ``<site>/_vti_bin/client.svc`` anonymously and return its Bearer challenge."""
    probe = site_url.rstrip("/") + "/_vti_bin/client.svc"
    status, headers, _ = _get(probe, ca_bundle=ca_bundle, timeout=timeout, headers={"Authorization": "Bearer "})
    values = headers.get_all("WWW-Authenticate") if headers is not None else None
    for value in values or []:
        # Several challenges may also share one header line: split before each scheme keyword.
        for part in re.split(r",\s*(?=(?:Bearer|NTLM|Negotiate|Basic)\b)", value):
            challenge = parse_bearer_challenge(part)
            if challenge:
                return challenge
    raise MetadataError(
        f"{probe} answered HTTP {status} without a Bearer realm challenge.",
        hint="Check that the URL is a SharePoint site (web application URL) and that OAuth is enabled on it; "
             "an http:// site also needs AllowOAuthOverHttp.")


def discover_realm(site_url: str, ca_bundle: Path | str | None, *, timeout: float = DEFAULT_TIMEOUT) -> str:
    """The authentication realm a SharePoint site announces (lower case)."""
    return bearer_challenge(site_url, ca_bundle=ca_bundle, timeout=timeout).realm
