"""The tenant's directory: well-known principal ids, service principals and their keys.

Pure functions over the directory document (``tenant.json``'s ``directory``) that the tenant,
its Graph and its SharePoint Online share, and :class:`TenantView`, what Graph and SharePoint
Online need of the tenant they serve.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import uuid
from contextlib import AbstractContextManager
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization

__all__ = [
    "ACS_PRINCIPAL_ID",
    "EXCHANGE_PRINCIPAL_ID",
    "GRAPH_APP_ID",
    "GRAPH_RESOURCE",
    "SKYPE_PRINCIPAL_ID",
    "SPO_PRINCIPAL_ID",
    "TenantView",
    "b64url",
    "find_service_principal",
    "iso",
    "key_credential_for",
    "spn_covers",
    "thumbprint",
]

SPO_PRINCIPAL_ID = "00000003-0000-0ff1-ce00-000000000000"
EXCHANGE_PRINCIPAL_ID = "00000002-0000-0ff1-ce00-000000000000"
SKYPE_PRINCIPAL_ID = "00000004-0000-0ff1-ce00-000000000000"
ACS_PRINCIPAL_ID = "00000001-0000-0000-c000-000000000000"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_RESOURCE = "https://graph.microsoft.com"


class TenantView(Protocol):
    """What the tenant's Graph and SharePoint Online read of the tenant (:class:`~.tenant.Tenant`)."""

    @property
    def tenant_id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def spo_host(self) -> str: ...

    def directory(self, *, write: bool = False) -> AbstractContextManager[dict]: ...

    def take_throttle(self) -> bool: ...

    def verify_access_token(self, token: str) -> dict: ...


def iso(value: dt.datetime) -> str:
    """Graph's DateTimeOffset form: UTC with a ``Z``."""
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def thumbprint(cert: x509.Certificate) -> str:
    """SHA-1 thumbprint in the upper-case hex Windows shows."""
    return hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()


def key_credential_for(cert: x509.Certificate, display_name: str) -> dict:
    """A keyCredential as Graph stores it when a certificate is uploaded (key filled)."""
    return {
        "customKeyIdentifier": thumbprint(cert),
        "displayName": display_name,
        "endDateTime": iso(cert.not_valid_after_utc),
        "key": base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode(),
        "keyId": str(uuid.uuid4()),
        "startDateTime": iso(cert.not_valid_before_utc),
        "type": "AsymmetricX509Cert",
        "usage": "Verify",
    }


def find_service_principal(directory: dict, *, app_id: str | None = None, object_id: str | None = None) -> dict | None:
    for sp in directory["servicePrincipals"]:
        if app_id is not None and sp["appId"].lower() == app_id.lower():
            return sp
        if object_id is not None and sp["id"].lower() == object_id.lower():
            return sp
    return None


def spn_covers(spn: str, host: str) -> bool:
    """Whether a SharePoint SPN (``<principal>/<host or *.domain>``) covers ``host``."""
    prefix = f"{SPO_PRINCIPAL_ID}/"
    if not spn.lower().startswith(prefix):
        return False
    pattern = spn[len(prefix):].lower().rstrip("/")
    host = host.lower().split(":")[0]
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern
