"""The lab's Microsoft Graph v1.0: the part the runbooks use, with Graph's behaviour and errors.

* ``GET /v1.0/organization``
* ``GET /v1.0/servicePrincipals`` with ``$filter`` (``appId eq '…'``, ``displayName eq '…'``,
  ``servicePrincipalNames/any(x:x eq '…')``) and ``$select``
* ``GET /v1.0/servicePrincipals/{id}`` and ``/servicePrincipals(appId='…')``; the certificate in
  ``keyCredentials[].key`` is filled only on a single-object read with ``$select=keyCredentials``
* ``PATCH /v1.0/servicePrincipals/{id}`` → 204 for ``keyCredentials`` (the whole collection is
  replaced; an existing ``keyId`` sent with a null ``key`` keeps its key) and
  ``servicePrincipalNames`` (unique across the tenant)

Permissions come from the access token (``roles`` app-only, ``scp`` delegated). Throttling
(:meth:`Tenant.throttle_next` or an estate ``error`` fault) answers 429 with ``Retry-After: 1``.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import json
import logging
import re
import uuid

from cryptography import x509

from ..http import Request, Response
from .directory import TenantView, find_service_principal, iso, thumbprint

__all__ = ["GraphApi"]

log = logging.getLogger(__name__)

_READ_ORG = {"Organization.Read.All", "Organization.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
_READ_APPS = {"Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
_WRITE_APPS = {"Application.ReadWrite.All", "Directory.ReadWrite.All"}
_KEY_TYPES = {"AsymmetricX509Cert", "X509CertAndPassword"}
_KEY_USAGES = {"Verify", "Sign"}
_DEFAULT_SP_PROPS = [
    "id", "accountEnabled", "appDisplayName", "appId", "appOwnerOrganizationId", "displayName",
    "servicePrincipalNames", "servicePrincipalType", "keyCredentials",
]
_SP_PATH = re.compile(r"^/v1\.0/serviceprincipals(?:/(?P<id>[^/]+)|\(appid='(?P<appid>[^']*)'\))?/?$", re.I)
_FILTER_APPID = re.compile(r"^\s*appId\s+eq\s+'(?P<v>[^']*)'\s*$", re.I)
_FILTER_NAME = re.compile(r"^\s*displayName\s+eq\s+'(?P<v>[^']*)'\s*$", re.I)
_FILTER_SPN = re.compile(r"^\s*servicePrincipalNames/any\((?P<x>\w+):\s*(?P=x)\s+eq\s+'(?P<v>[^']*)'\)\s*$", re.I)


class GraphError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


class GraphApi:
    """Route handler for ``/v1.0/`` over a :class:`Tenant`."""

    def __init__(self, tenant: TenantView) -> None:
        self.tenant = tenant

    def handle(self, request: Request) -> Response:
        try:
            fault = request.header("x-lab-fault")
            if fault or self.tenant.take_throttle():
                raise _busy(json.loads(fault) if fault else {})
            claims = self._authenticate(request)
            return self._route(request, claims)
        except GraphError as exc:
            return _error(request, exc)

    # ------------------------------------------------------------------ plumbing
    def _authenticate(self, request: Request) -> dict:
        auth = request.header("authorization") or ""
        if not auth.lower().startswith("bearer ") or not auth[7:].strip():
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.",
                             {"WWW-Authenticate": 'Bearer realm="", authorization_uri="", client_id=""'})
        try:
            return self.tenant.verify_access_token(auth[7:].strip())
        except ValueError as exc:
            raise GraphError(401, "InvalidAuthenticationToken", str(exc)) from None

    @staticmethod
    def _require(claims: dict, allowed: set[str]) -> None:
        granted = set(claims.get("roles") or []) | set((claims.get("scp") or "").split())
        if not granted & allowed:
            raise GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")

    def _route(self, request: Request, claims: dict) -> Response:
        path = request.path
        if re.match(r"^/v1\.0/organization/?$", path, re.I):
            if request.method != "GET":
                raise GraphError(405, "Request_BadRequest", "The HTTP method is not allowed for organization.")
            self._require(claims, _READ_ORG)
            return Response.json({
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#organization",
                "value": [self._organization()],
            })
        match = _SP_PATH.match(path)
        if match is None:
            raise GraphError(400, "BadRequest", f"Resource not found for the segment '{path.rsplit('/', 1)[-1]}'.")
        object_id, app_id = match.group("id"), match.group("appid")
        if object_id is None and app_id is None:
            if request.method != "GET":
                raise GraphError(405, "Request_BadRequest", "Creating service principals is not offered by the lab.")
            self._require(claims, _READ_APPS)
            return self._list(request)
        if request.method == "GET":
            self._require(claims, _READ_APPS)
            return self._get(request, object_id, app_id)
        if request.method == "PATCH":
            self._require(claims, _WRITE_APPS)
            return self._patch(request, object_id, app_id)
        raise GraphError(405, "Request_BadRequest", f"The HTTP method '{request.method}' is not allowed.")

    def _organization(self) -> dict:
        t = self.tenant
        return {
            "id": t.tenant_id,
            "displayName": f"{t.name.capitalize()} (lab)",
            "tenantType": "AAD",
            "countryLetterCode": "CH",
            "createdDateTime": t._data.get("created"),
            "verifiedDomains": [
                {"capabilities": "Email, OfficeCommunicationsOnline", "isDefault": True, "isInitial": False,
                 "name": t.domain, "type": "Managed"},
                {"capabilities": "Email, OfficeCommunicationsOnline", "isDefault": False, "isInitial": True,
                 "name": f"{t.name}.onmicrosoft.com", "type": "Managed"},
            ],
        }

    # ------------------------------------------------------------------ reads
    def _list(self, request: Request) -> Response:
        flt = request.query_value("$filter")
        select = _select(request)
        with self.tenant.directory() as directory:
            items = directory["servicePrincipals"]
            if flt:
                items = [sp for sp in items if _matches(sp, flt)]
            value = [_render(sp, select, with_key=False) for sp in items]
        return Response.json({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#servicePrincipals"
            + (f"({','.join(select)})" if select else ""),
            "value": value,
        })

    def _get(self, request: Request, object_id: str | None, app_id: str | None) -> Response:
        select = _select(request)
        with self.tenant.directory() as directory:
            sp = self._find(directory, object_id, app_id)
            # The certificate bytes come back only when asked for by name on one object.
            body = _render(sp, select, with_key=bool(select) and "keyCredentials" in select)
        body["@odata.context"] = "https://graph.microsoft.com/v1.0/$metadata#servicePrincipals/$entity"
        return Response.json(body)

    @staticmethod
    def _find(directory: dict, object_id: str | None, app_id: str | None) -> dict:
        sp = find_service_principal(directory, object_id=object_id) if object_id else find_service_principal(directory, app_id=app_id)
        if sp is None:
            ident = object_id or app_id
            raise GraphError(404, "Request_ResourceNotFound",
                             f"Resource '{ident}' does not exist or one of its queried reference-property objects are not present.")
        return sp

    # ------------------------------------------------------------------ writes
    def _patch(self, request: Request, object_id: str | None, app_id: str | None) -> Response:
        try:
            body = request.json()
        except ValueError:
            raise GraphError(400, "BadRequest", "Unable to read JSON request payload.") from None
        if not isinstance(body, dict):
            raise GraphError(400, "BadRequest", "Unable to read JSON request payload.")
        with self.tenant.directory(write=True) as directory:
            sp = self._find(directory, object_id, app_id)
            updated = copy.deepcopy(sp)
            for name, value in body.items():
                if name.startswith("@odata."):
                    continue
                if name == "keyCredentials":
                    updated["keyCredentials"] = _merge_keys(sp["keyCredentials"], value, directory["size_limit"])
                elif name == "servicePrincipalNames":
                    updated["servicePrincipalNames"] = _check_spns(directory, sp, value)
                elif name in ("displayName", "notes", "tags"):
                    updated[name] = value
                else:
                    raise GraphError(400, "Request_BadRequest",
                                     f"Property '{name}' is read-only or not supported by the lab and cannot be set.")
            sp.clear()
            sp.update(updated)
        log.info("graph: PATCH servicePrincipals/%s (%s)", sp["id"], ", ".join(k for k in body if not k.startswith("@")))
        return Response(204)


def _select(request: Request) -> list[str]:
    raw = request.query_value("$select")
    return [s.strip() for s in raw.split(",") if s.strip()] if raw else []


def _matches(sp: dict, flt: str) -> bool:
    if m := _FILTER_APPID.match(flt):
        return sp["appId"].lower() == m.group("v").lower()
    if m := _FILTER_NAME.match(flt):
        return sp["displayName"].lower() == m.group("v").lower()
    if m := _FILTER_SPN.match(flt):
        return m.group("v").lower() in (s.lower() for s in sp["servicePrincipalNames"])
    raise GraphError(400, "Request_UnsupportedQuery", "Unsupported query.")


def _render(sp: dict, select: list[str], *, with_key: bool) -> dict:
    names = select or _DEFAULT_SP_PROPS
    lookup = {k.lower(): k for k in sp}
    out: dict = {"id": sp["id"]}
    for name in names:
        key = lookup.get(name.lower())
        if key is None:
            if name.lower() == "appdisplayname":
                out[name] = sp["displayName"]
                continue
            raise GraphError(400, "Request_BadRequest",
                             f"Could not find a property named '{name}' on type 'microsoft.graph.servicePrincipal'.")
        value = copy.deepcopy(sp[key])
        if key == "keyCredentials" and not with_key:
            for cred in value:
                cred["key"] = None
        out[key] = value
    return out


def _parse_time(text: object, what: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise GraphError(400, "Request_BadRequest", f"Invalid value specified for property '{what}' of resource 'KeyCredential'.") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _merge_keys(existing: list[dict], sent: object, size_limit: int) -> list[dict]:
    """The new keyCredentials collection: exactly what was sent, with null keys of known keyIds kept."""
    if not isinstance(sent, list):
        raise GraphError(400, "Request_BadRequest", "Invalid value specified for property 'keyCredentials' of resource 'ServicePrincipal'.")
    by_id = {k["keyId"].lower(): k for k in existing}
    result: list[dict] = []
    seen: set[str] = set()
    for item in sent:
        if not isinstance(item, dict):
            raise GraphError(400, "Request_BadRequest", "Invalid value specified for property 'keyCredentials' of resource 'ServicePrincipal'.")
        key_id = str(item.get("keyId") or uuid.uuid4())
        if key_id.lower() in seen:
            raise GraphError(400, "Request_BadRequest", f"Duplicate keyId '{key_id}' in keyCredentials.")
        seen.add(key_id.lower())
        raw_key = item.get("key")
        if not raw_key:
            prior = by_id.get(key_id.lower())
            if prior is None:
                raise GraphError(400, "Request_BadRequest",
                                 f"Key credential with keyId '{key_id}' does not exist; a new key credential needs its key.")
            kept = copy.deepcopy(prior)
            if item.get("displayName"):
                kept["displayName"] = item["displayName"]
            result.append(kept)
            continue
        try:
            der = base64.b64decode(str(raw_key), validate=True)
            cert = x509.load_der_x509_certificate(der)
        except (binascii.Error, ValueError):
            raise GraphError(400, "Request_BadRequest",
                             "Invalid value specified for property 'key' of resource 'KeyCredential'.") from None
        ktype, usage = item.get("type"), item.get("usage")
        if ktype not in _KEY_TYPES:
            raise GraphError(400, "Request_BadRequest", "Invalid value specified for property 'type' of resource 'KeyCredential'.")
        if usage not in _KEY_USAGES:
            raise GraphError(400, "Request_BadRequest", "Invalid value specified for property 'usage' of resource 'KeyCredential'.")
        start = _parse_time(item["startDateTime"], "startDateTime") if item.get("startDateTime") else cert.not_valid_before_utc
        end = _parse_time(item["endDateTime"], "endDateTime") if item.get("endDateTime") else cert.not_valid_after_utc
        if end > cert.not_valid_after_utc + dt.timedelta(minutes=1) or start < cert.not_valid_before_utc - dt.timedelta(minutes=1):
            raise GraphError(400, "Request_BadRequest", "Key credential end date is invalid: it lies outside the certificate's validity.")
        result.append({
            "customKeyIdentifier": item.get("customKeyIdentifier") or thumbprint(cert),
            "displayName": item.get("displayName") or cert.subject.rfc4514_string(),
            "endDateTime": iso(end),
            "key": base64.b64encode(der).decode(),
            "keyId": key_id,
            "startDateTime": iso(start),
            "type": ktype,
            "usage": usage,
        })
    if len(result) > size_limit:
        raise GraphError(400, "Directory_ResourceSizeExceeded",
                         "The size of the object has exceeded its limit. Please reduce the number of values and retry your request.")
    return result


def _check_spns(directory: dict, sp: dict, sent: object) -> list[str]:
    if not isinstance(sent, list) or not all(isinstance(s, str) and s for s in sent):
        raise GraphError(400, "Request_BadRequest", "Invalid value specified for property 'servicePrincipalNames' of resource 'ServicePrincipal'.")
    lowered = [s.lower() for s in sent]
    if len(set(lowered)) != len(lowered):
        raise GraphError(400, "Request_BadRequest", "Duplicate values in servicePrincipalNames.")
    for other in directory["servicePrincipals"]:
        if other is sp:
            continue
        taken = {s.lower() for s in other["servicePrincipalNames"]}
        if taken & set(lowered):
            raise GraphError(400, "Request_MultipleObjectsWithSameKeyValue",
                             "Another object with the same value for property servicePrincipalNames already exists.")
    return list(sent)


def _error(request: Request, exc: GraphError) -> Response:
    now = dt.datetime.now(dt.timezone.utc)
    request_id = str(uuid.uuid4())
    body = {
        "error": {
            "code": exc.code,
            "message": exc.message,
            "innerError": {
                "date": now.strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id,
                "client-request-id": request.header("client-request-id") or request_id,
            },
        }
    }
    headers = {"request-id": request_id, "client-request-id": request.header("client-request-id") or request_id}
    headers.update(exc.headers)
    return Response.json(body, status=exc.status, headers=headers)


def _busy(fault: dict) -> GraphError:
    """The answer of a throttled (429) or overloaded (503) Graph, each with its Retry-After."""
    if fault.get("status") == 503:
        # [U] the code Graph's error reference lists for 503; the message text is the lab's own.
        return GraphError(503, "serviceNotAvailable",
                          "The service is temporarily unavailable. Please retry after a delay.", {"Retry-After": "1"})
    return GraphError(429, "TooManyRequests",
                      "Too many requests have been made to the directory. Please wait and retry.",
                      {"Retry-After": "1"})
