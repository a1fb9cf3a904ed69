"""The lab's Microsoft 365 tenant: Entra ID (OpenID discovery, token endpoint, device code,
signing keys), the ACS metadata document, a Microsoft Graph v1.0 subset
(:mod:`.graph`) and a SharePoint Online endpoint that judges S2S tokens
(:mod:`.spo`).

State is JSON in a directory (``tenant.json``, kept by the lab's :class:`~runbooklib.lab.store.StateStore`,
plus PEM files under ``keys/``) so it
survives a restart; :meth:`Tenant.reset` puts the directory back as it was created while
keeping the tenant's identity (tenant id, app secrets, signing keys) that the inventory
already names.

Routes on the tenant's server (``https://127.0.0.1:PORT``):

=========================================================  =====================================
``/{tid}/v2.0/.well-known/openid-configuration``           OpenID discovery (MSAL reads this)
``/{tid}/oauth2/v2.0/token`` · ``…/devicecode``            token endpoint, device authorization
``/{tid}/discovery/v2.0/keys``                              Entra signing keys (JWKS)
``/{tid}/metadata/json/1``                                  ACS metadata (S2S trust broker)
``/v1.0/…``                                                 Graph (see :mod:`.graph`)
``/_vti_bin/client.svc`` · ``/_api/…``                      SharePoint Online (see :mod:`.spo`)
``/devicelogin``                                            where the device-code message points
=========================================================  =====================================

Lab-only choices: the device code flow is approved by the lab itself after one
``authorization_pending`` answer (interval 1 s instead of 5 s, so tests stay fast);
tokens are RS256 JWTs signed by the tenant's Entra key and checked by the lab's Graph.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import datetime as dt
import hashlib
import json
import logging
import os
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import parse_qs

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ..http import LabServer, Request, Response
from ..pki import KeyPair, load_key_pair, new_signing_certificate, save_key_pair
from ..store import StateStore
from .directory import (
    ACS_PRINCIPAL_ID,
    EXCHANGE_PRINCIPAL_ID,
    GRAPH_APP_ID,
    GRAPH_RESOURCE,
    SKYPE_PRINCIPAL_ID,
    SPO_PRINCIPAL_ID,
    b64url,
    find_service_principal,
    iso,
    key_credential_for,
    spn_covers,
    thumbprint,
)
from .graph import GraphApi
from .spo import SharePointOnline

__all__ = [
    "ACS_PRINCIPAL_ID",
    "AcsRefused",
    "AppCredentials",
    "EXCHANGE_PRINCIPAL_ID",
    "GRAPH_RESOURCE",
    "SPO_PRINCIPAL_ID",
    "Tenant",
]

log = logging.getLogger(__name__)

RUNBOOK_PERMISSIONS = ["Application.ReadWrite.All", "Organization.Read.All"]
DEFAULT_SIZE_LIMIT = 600  # keyCredentials per object before Directory_ResourceSizeExceeded
DEVICE_CODE_INTERVAL = 1
ACCESS_TOKEN_LIFETIME = 3599
ACS_TOKEN_LIFETIME = 3600

_STATE_FILE = "tenant.json"


@dataclass(frozen=True)
class AppCredentials:
    """An app registration of the lab tenant and the credentials a client signs in with."""

    client_id: str
    display_name: str
    secret: str
    certificate_pem: str
    key_pem: str
    permissions: tuple[str, ...]

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.certificate_pem.encode())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def aad_error(status: int, error: str, code: int, text: str) -> Response:
    """An Entra ID (AADSTS) error answer as the token endpoint sends it."""
    now = _now()
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    description = (
        f"AADSTS{code}: {text} Trace ID: {trace} Correlation ID: {correlation} "
        f"Timestamp: {now.strftime('%Y-%m-%d %H:%M:%SZ')}"
    )
    return Response.json(
        {
            "error": error,
            "error_description": description,
            "error_codes": [code],
            "timestamp": now.strftime("%Y-%m-%d %H:%M:%SZ"),
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"https://login.microsoftonline.com/error?code={code}",
        },
        status=status,
    )


class AcsRefused(Exception):
    """ACS will not issue the S2S token asked for; ``reason`` is machine-readable."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Tenant:
    """The simulated tenant over a state directory. Create with :meth:`open`."""

    def __init__(self, state_dir: Path, store: StateStore) -> None:
        self.state_dir = state_dir
        self._store = store
        self._lock = threading.RLock()  # the tenant's memory: throttle, device codes, refresh tokens
        self._throttle = 0
        self._device_codes: dict[str, dict] = {}
        self._refresh_tokens: dict[str, dict] = {}
        self.entra_signing = load_key_pair(*self._key_paths("entra-signing"))
        self.acs_signing = load_key_pair(*self._key_paths("acs-signing"))
        self.servers: list[LabServer] = []

    # ------------------------------------------------------------------ creation / state
    @classmethod
    def open(cls, state_dir: Path, *, name: str = "contoso", domain: str = "contoso.lab") -> "Tenant":
        """Load the tenant kept in ``state_dir``, creating its initial state on first use."""
        state_dir = Path(state_dir)
        state_dir.mkdir(parents=True, exist_ok=True)

        def create() -> dict:
            log.info("tenant %s: creating initial state in %s", name, state_dir)
            return _initial_state(state_dir, name, domain)

        store = StateStore.load(state_dir / _STATE_FILE, create, current="directory", initial="initial_directory")
        return cls(state_dir, store)

    @property
    def state_path(self) -> Path:
        return self.state_dir / _STATE_FILE

    @property
    def _data(self) -> dict:
        """The whole state document (identity, apps, users, directory), as last read."""
        with self._store.document() as data:
            assert data is not None
            return data

    @property
    def tenant_id(self) -> str:
        return self._data["tenant_id"]

    @property
    def name(self) -> str:
        return self._data["name"]

    @property
    def domain(self) -> str:
        return self._data["domain"]

    @property
    def spo_host(self) -> str:
        """The public host name of the tenant's SharePoint Online (covered by ``*.sharepoint.com``)."""
        return f"{self.name}.sharepoint.com"

    def _key_paths(self, stem: str) -> tuple[Path, Path]:
        return self.state_dir / "keys" / f"{stem}.pem", self.state_dir / "keys" / f"{stem}-key.pem"

    def _app(self, client_id: str) -> dict | None:
        return self._data["apps"].get(client_id)

    def _app_credentials(self, role: str) -> AppCredentials:
        client_id = next(cid for cid, app in self._data["apps"].items() if app["role"] == role)
        app = self._data["apps"][client_id]
        cert_path, key_path = self._key_paths(f"app-{client_id}")
        return AppCredentials(
            client_id, app["displayName"], app["secret"], cert_path.read_text(), key_path.read_text(),
            tuple(app["permissions"]),
        )

    @property
    def runbook_app(self) -> AppCredentials:
        """The runbook's app: Application.ReadWrite.All + Organization.Read.All (secret and certificate)."""
        return self._app_credentials("runbook")

    @property
    def reader_app(self) -> AppCredentials:
        """A second app granted only Organization.Read.All (for the 403 path)."""
        return self._app_credentials("reader")

    @contextlib.contextmanager
    def directory(self, *, write: bool = False) -> Iterator[dict]:
        """The directory (service principals, limits) under the store's lock; saved if ``write``
        (with whatever else of the tenant's state was changed inside)."""
        with self._store.document() as data:
            assert data is not None
            yield data["directory"]
            if write:
                self._store.save()

    _directory = directory  # the name tests written before the store use

    def reset(self) -> None:
        """Restore the directory as first created (identity, apps and keys stay)."""
        self._store.reset()
        self._throttle = 0
        self._device_codes.clear()
        self._refresh_tokens.clear()
        for server in self.servers:
            server.faults.clear()

    # ------------------------------------------------------------------ estate integration
    def mount(self, server: LabServer) -> None:
        """Mount Entra ID, ACS, Graph and SharePoint Online routes on ``server``."""
        tid = self.tenant_id
        server.mount(f"/{tid}/", self._entra)
        server.mount("/devicelogin", self._devicelogin)
        server.mount("/common/", self._unknown_tenant)
        server.mount("/organizations/", self._unknown_tenant)
        server.mount("/v1.0/", GraphApi(self).handle, handles_error_faults=True)
        spo = SharePointOnline(self)
        server.mount("/_vti_bin/", spo.handle)
        server.mount("/_api/", spo.handle)
        self.servers.append(server)

    def inventory_entry(self, server_url: str, ca_bundle: str) -> dict:
        """This tenant's mapping under ``tenants:`` in the inventory."""
        server_url = server_url.rstrip("/")
        return {
            "tenant_id": self.tenant_id,
            "domain": self.domain,
            "authority": server_url,
            "graph_url": f"{server_url}/v1.0",
            "acs_metadata_url": f"{server_url}/{self.tenant_id}/metadata/json/1",
            "spo_url": server_url,
            "ca_bundle": ca_bundle,
            "credential": {
                "type": "client_secret",
                "client_id": self.runbook_app.client_id,
                "secret": f"file:secrets/{self.name}-app",
            },
        }

    def secret_files(self) -> dict[str, str]:
        """Files (path relative to the inventory → content) the estate writes for the inventory."""
        app = self.runbook_app
        return {
            f"secrets/{self.name}-app": app.secret,
            f"secrets/{self.name}-app.pem": app.certificate_pem + app.key_pem,
        }

    # ------------------------------------------------------------------ inspection helpers
    def service_principal(self, app_id: str) -> dict | None:
        """The stored service principal of ``app_id`` (keys included), or None."""
        with self.directory() as directory:
            sp = find_service_principal(directory, app_id=app_id)
            return copy.deepcopy(sp) if sp else None

    def key_credentials(self, app_id: str) -> list[dict]:
        sp = self.service_principal(app_id)
        return sp["keyCredentials"] if sp else []

    def spns(self, app_id: str) -> list[str]:
        sp = self.service_principal(app_id)
        return sp["servicePrincipalNames"] if sp else []

    def add_spn(self, app_id: str, spn: str) -> None:
        """Give a principal an extra SPN directly (test set-up), keeping SPNs unique in the tenant."""
        with self.directory(write=True) as directory:
            if any(spn.lower() in (s.lower() for s in sp["servicePrincipalNames"]) for sp in directory["servicePrincipals"]):
                raise ValueError(f"SPN {spn} is already held by a principal")
            sp = find_service_principal(directory, app_id=app_id)
            if sp is None:
                raise KeyError(app_id)
            sp["servicePrincipalNames"].append(spn)

    def set_size_limit(self, n: int) -> None:
        """keyCredentials an object may hold before PATCH answers Directory_ResourceSizeExceeded."""
        with self.directory(write=True) as directory:
            directory["size_limit"] = int(n)

    def set_permissions(self, client_id: str, permissions: list[str]) -> None:
        """Change an app's granted application permissions (admin consent)."""
        with self.directory(write=True):
            self._data["apps"][client_id]["permissions"] = list(permissions)

    def throttle_next(self, n: int) -> None:
        """Answer the next ``n`` Graph requests with 429 and ``Retry-After: 1``."""
        with self._lock:
            self._throttle += n

    def take_throttle(self) -> bool:
        with self._lock:
            if self._throttle > 0:
                self._throttle -= 1
                return True
            return False

    # ------------------------------------------------------------------ tokens (shared by Graph)
    def sign(self, claims: dict) -> str:
        import jwt

        kid = b64url(hashlib.sha1(self.entra_signing.cert_der).digest())
        return jwt.encode(claims, self.entra_signing.key_pem, algorithm="RS256", headers={"kid": kid, "x5t": kid})

    def issue_acs_token_for(self, host: str, *, realm: str | None = None) -> str:
        """An S2S token ACS issues for SharePoint Online calling the SharePoint at ``host``.

        What a farm receives when a Microsoft 365 service (hybrid search, the app launcher …)
        calls it through the trust broker: RS256, signed with the tenant's ACS signing key
        (``x5t`` of its certificate), ``iss`` = ``00000001-0000-0000-c000-000000000000@<realm>``,
        ``aud`` = ``00000003-0000-0ff1-ce00-000000000000/<host>@<realm>`` and ``nameid`` = the
        SharePoint Online principal's object id ``@<realm>``. ``realm`` defaults to the tenant id.

        ACS issues it only for a host that an SPN of the SharePoint Online principal covers (the
        hybrid runbook's SPN step); otherwise :class:`AcsRefused` with reason
        ``host_not_covered_by_spn``.
        """
        import jwt

        host = host.lower().strip()
        with self.directory() as directory:
            sp = find_service_principal(directory, app_id=SPO_PRINCIPAL_ID)
            if sp is None:
                raise AcsRefused("no_spo_principal", "the tenant has no SharePoint Online service principal")
            object_id, spns = sp["id"], list(sp["servicePrincipalNames"])
        if not any(spn_covers(spn, host) for spn in spns):
            raise AcsRefused(
                "host_not_covered_by_spn",
                f"no SPN of the SharePoint Online principal covers {host} (SPNs: {', '.join(spns)})",
            )
        realm = (realm or self.tenant_id).lower()
        now = int(time.time())
        issuer = f"{ACS_PRINCIPAL_ID}@{realm}"
        # Claim set of an app-only ACS token (unconfirmed beyond aud/iss/nameid/nbf/exp, which
        # are what a farm checks; identityprovider names ACS as the one vouching for the caller).
        claims = {
            "aud": f"{SPO_PRINCIPAL_ID}/{host}@{realm}",
            "iss": issuer,
            "nbf": now,
            "exp": now + ACS_TOKEN_LIFETIME,
            "nameid": f"{object_id}@{realm}",
            "identityprovider": issuer,
        }
        thumb = b64url(hashlib.sha1(self.acs_signing.cert_der).digest())
        return jwt.encode(claims, self.acs_signing.key_pem, algorithm="RS256",
                          headers={"typ": "JWT", "x5t": thumb, "kid": thumb})

    def verify_access_token(self, token: str) -> dict:
        """Claims of a Graph access token this tenant issued; ValueError with Graph's wording otherwise."""
        import jwt

        try:
            claims = jwt.decode(
                token,
                self.entra_signing.certificate.public_key(),
                algorithms=["RS256"],
                audience=[GRAPH_RESOURCE, f"{GRAPH_RESOURCE}/", GRAPH_APP_ID],
                options={"require": ["exp", "aud", "tid"]},
            )
        except jwt.ExpiredSignatureError:
            raise ValueError("Lifetime validation failed, the token is expired.") from None
        except jwt.InvalidAudienceError:
            raise ValueError("Invalid audience.") from None
        except jwt.InvalidSignatureError:
            raise ValueError("Invalid signature.") from None
        except jwt.PyJWTError as exc:
            raise ValueError(f"IDX14100: JWT is not well formed ({exc}).") from None
        if claims.get("tid") != self.tenant_id:
            raise ValueError("Invalid tenant.")
        return claims

    # ------------------------------------------------------------------ Entra ID routes
    def _unknown_tenant(self, request: Request) -> Response:
        segment = request.path.strip("/").split("/")[0]
        return aad_error(
            400, "invalid_request", 90002,
            f"Tenant '{segment}' not found. The lab tenant accepts only its tenant id ({self.tenant_id}).",
        )

    def _devicelogin(self, request: Request) -> Response:
        return Response.text(
            "<html><body><h1>Enter code</h1><p>The lab approves device codes by itself.</p></body></html>",
            content_type="text/html; charset=utf-8",
        )

    def _entra(self, request: Request) -> Response:
        base = request.server_url
        tid = self.tenant_id
        rest = request.path[len(tid) + 1:].rstrip("/").lower()
        if rest in ("/v2.0/.well-known/openid-configuration", "/.well-known/openid-configuration"):
            return Response.json(self._discovery(base))
        if rest == "/discovery/v2.0/keys" or rest == "/discovery/keys":
            return Response.json(self._jwks())
        if rest == "/metadata/json/1":
            return Response.json(self._acs_metadata(base))
        if rest in ("/oauth2/v2.0/token", "/oauth2/token"):
            if request.method != "POST":
                return aad_error(405, "invalid_request", 900561, "The endpoint only accepts POST requests.")
            return token_endpoint(self, request, parse_qs(request.body.decode("utf-8", "replace")))
        if rest == "/oauth2/v2.0/devicecode":
            return device_authorization(self, request, parse_qs(request.body.decode("utf-8", "replace")))
        if rest == "/oauth2/v2.0/authorize":
            return aad_error(
                400, "invalid_request", 50011,
                "Interactive browser sign-in is not offered by the lab; use a client secret, a certificate "
                "or the device code flow.",
            )
        if rest == "/tokens/oauth/2":
            return aad_error(
                400, "unsupported_grant_type", 70003,
                "The lab's ACS issuance endpoint is listed in the metadata but does not issue tokens.",
            )
        return Response.json({"error": "not_found", "error_description": f"No endpoint {request.path}"}, 404)

    def _discovery(self, base: str) -> dict:
        tid = self.tenant_id
        root = f"{base}/{tid}"
        return {
            "token_endpoint": f"{root}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{root}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{root}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{base}/oidc/userinfo",
            "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "name", "oid", "tid", "preferred_username"],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "contoso.lab",
        }

    def _jwks(self) -> dict:
        cert = self.entra_signing.certificate
        numbers = cert.public_key().public_numbers()  # type: ignore[union-attr]
        kid = b64url(hashlib.sha1(self.entra_signing.cert_der).digest())

        def _int(n: int) -> str:
            return b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))

        return {
            "keys": [
                {
                    "kty": "RSA", "use": "sig", "kid": kid, "x5t": kid,
                    "n": _int(numbers.n), "e": _int(numbers.e),
                    "x5c": [base64.b64encode(self.entra_signing.cert_der).decode()],
                    "issuer": f"https://login.microsoftonline.com/{self.tenant_id}/v2.0",
                }
            ]
        }

    def _acs_metadata(self, base: str) -> dict:
        # The tenant form of the ACS document (exact body unconfirmed; see s2s-facts.md):
        # keys with type "x509Certificate" / usage "signing", endpoints with the OAuth2 issuer.
        tid = self.tenant_id
        return {
            "version": "1.0",
            "realm": tid,
            "name": "Microsoft Azure ACS",
            "allowedAudiences": [f"{ACS_PRINCIPAL_ID}/accounts.accesscontrol.windows.net@{tid}"],
            "issuer": f"{ACS_PRINCIPAL_ID}@{tid}",
            "keys": [
                {
                    "usage": "signing",
                    "keyValue": {
                        "type": "x509Certificate",
                        "value": base64.b64encode(self.acs_signing.cert_der).decode(),
                        "keyName": None,
                    },
                }
            ],
            "endpoints": [{"location": f"{base}/{tid}/tokens/OAuth/2", "protocol": "OAuth2", "usage": "issuance"}],
        }


# ---------------------------------------------------------------------- helpers
def _service_principal(app_id: str, display_name: str, spns: list[str], *, sp_type: str = "Application",
                       owner: str | None = None, keys: list[dict] | None = None) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "appId": app_id,
        "displayName": display_name,
        "accountEnabled": True,
        "appOwnerOrganizationId": owner,
        "servicePrincipalType": sp_type,
        "servicePrincipalNames": spns,
        "keyCredentials": keys or [],
    }


def _initial_state(state_dir: Path, name: str, domain: str) -> dict:
    tenant_id = str(uuid.uuid4())
    keys = state_dir / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    save_key_pair(new_signing_certificate(f"{name} Entra ID token signing"), keys / "entra-signing.pem",
                  keys / "entra-signing-key.pem")
    save_key_pair(new_signing_certificate("accounts.accesscontrol.windows.net"), keys / "acs-signing.pem",
                  keys / "acs-signing-key.pem")
    apps: dict[str, dict] = {}
    sps: list[dict] = []
    for role, display, perms in (
        ("runbook", "s2s-runbooks", RUNBOOK_PERMISSIONS),
        ("reader", "s2s-runbooks (read organization only)", ["Organization.Read.All"]),
    ):
        client_id = str(uuid.uuid4())
        pair: KeyPair = new_signing_certificate(f"{display} app credential")
        save_key_pair(pair, keys / f"app-{client_id}.pem", keys / f"app-{client_id}-key.pem")
        apps[client_id] = {
            "role": role,
            "displayName": display,
            "secret": secrets.token_urlsafe(30),
            "permissions": list(perms),
            # Delegated permissions an administrator consented to (device code sign-in).
            "delegated": list(perms),
            "publicClient": True,
            "certificates": [thumbprint(pair.certificate)],
        }
        sps.append(_service_principal(client_id, display, [client_id], owner=tenant_id))
    # Two STS certificates of other farms already trusted by SharePoint Online: one current,
    # one long expired (what a tenant that went through a certificate renewal looks like).
    now = _now()
    fabrikam = new_signing_certificate("SharePoint Security Token Service (fabrikam farm)")
    northwind = new_signing_certificate(
        "SharePoint Security Token Service (northwind farm)",
        not_before=now - dt.timedelta(days=800), not_after=now - dt.timedelta(days=70),
    )
    spo_keys = [
        key_credential_for(fabrikam.certificate, "CN=SharePoint Security Token Service (fabrikam farm)"),
        key_credential_for(northwind.certificate, "CN=SharePoint Security Token Service (northwind farm)"),
    ]
    sps.append(
        _service_principal(
            SPO_PRINCIPAL_ID, "Office 365 SharePoint Online",
            [f"{SPO_PRINCIPAL_ID}/*.sharepoint.com", SPO_PRINCIPAL_ID, "https://microsoft.sharepoint-df.com"],
            owner="f8cdef31-a31e-4b4a-93e4-5f571e91255a", keys=spo_keys,
        )
    )
    sps.append(
        _service_principal(
            EXCHANGE_PRINCIPAL_ID, "Office 365 Exchange Online",
            [f"{EXCHANGE_PRINCIPAL_ID}/*.outlook.com", f"{EXCHANGE_PRINCIPAL_ID}/outlook.office365.com",
             EXCHANGE_PRINCIPAL_ID],
            owner="f8cdef31-a31e-4b4a-93e4-5f571e91255a",
        )
    )
    # Skype for Business Online: a cross-premises pool's OAuth certificate becomes one of its keys
    # and the pool's external web services FQDN one of its SPNs.
    sps.append(
        _service_principal(
            SKYPE_PRINCIPAL_ID, "Skype for Business Online", [f"{SKYPE_PRINCIPAL_ID}/*.lync.com", SKYPE_PRINCIPAL_ID],
            owner="f8cdef31-a31e-4b4a-93e4-5f571e91255a",
        )
    )
    sps.append(
        _service_principal(GRAPH_APP_ID, "Microsoft Graph", [GRAPH_APP_ID, GRAPH_RESOURCE],
                           owner="f8cdef31-a31e-4b4a-93e4-5f571e91255a")
    )
    directory = {"servicePrincipals": sps, "size_limit": DEFAULT_SIZE_LIMIT}
    return {
        "tenant_id": tenant_id,
        "name": name,
        "domain": domain,
        "created": iso(now),
        "apps": apps,
        "users": [{"id": str(uuid.uuid4()), "userPrincipalName": f"admin@{domain}", "displayName": "Lab Administrator"}],
        "directory": directory,
        "initial_directory": copy.deepcopy(directory),
    }


def access_token_claims(tenant: Tenant, *, app: dict, client_id: str, sp_id: str, user: dict | None,
                        acr: str) -> dict:
    """Claims of a v1 Graph access token (app-only: ``roles``; delegated: ``scp``)."""
    now = int(time.time())
    claims: dict = {
        "aud": GRAPH_RESOURCE,
        "iss": f"https://sts.windows.net/{tenant.tenant_id}/",
        "iat": now, "nbf": now, "exp": now + ACCESS_TOKEN_LIFETIME,
        "appid": client_id, "appidacr": acr, "app_displayname": app["displayName"],
        "tid": tenant.tenant_id, "ver": "1.0", "uti": b64url(os.urandom(16)),
    }
    if user is None:
        claims.update({"idtyp": "app", "oid": sp_id, "sub": sp_id, "roles": list(app["permissions"])})
    else:
        claims.update({
            "idtyp": "user", "oid": user["id"], "sub": b64url(hashlib.sha256(user["id"].encode()).digest()),
            "upn": user["userPrincipalName"], "name": user["displayName"], "amr": ["pwd"],
            "scp": " ".join(app["delegated"]),
        })
    return claims


# ---------------------------------------------------------------------- token endpoint
_DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_OIDC_SCOPES = {"openid", "profile", "offline_access", "email"}


def _form_value(form: dict[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None


def device_authorization(tenant: Tenant, request: Request, form: dict[str, list[str]]) -> Response:
    """``POST /{tid}/oauth2/v2.0/devicecode``: a device code and the message the user reads."""
    client_id = _form_value(form, "client_id") or ""
    app = tenant._app(client_id)
    if app is None:
        return _unknown_app(tenant, client_id)
    if not app.get("publicClient"):
        return aad_error(401, "invalid_client", 7000218,
                         "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
    alphabet = "BCDFGHJKLMNPQRSTVWXZ23456789"
    user_code = "".join(secrets.choice(alphabet) for _ in range(9))
    device_code = secrets.token_urlsafe(48)
    scopes = (_form_value(form, "scope") or "").split()
    with tenant._lock:
        tenant._device_codes[device_code] = {
            "client_id": client_id, "scopes": scopes, "polls": 0, "user_code": user_code,
            "expires": time.time() + 900,
        }
    uri = f"{request.server_url}/devicelogin"
    return Response.json({
        "user_code": user_code,
        "device_code": device_code,
        "verification_uri": uri,
        "expires_in": 900,
        "interval": DEVICE_CODE_INTERVAL,
        "message": f"To sign in, use a web browser to open the page {uri} and enter the code {user_code} to authenticate.",
    })


def _unknown_app(tenant: Tenant, client_id: str) -> Response:
    return aad_error(
        400, "unauthorized_client", 700016,
        f"Application with identifier '{client_id}' was not found in the directory '{tenant.name}'. This can "
        "happen if the application has not been installed by the administrator of the tenant or consented to "
        "by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
    )


def token_endpoint(tenant: Tenant, request: Request, form: dict[str, list[str]]) -> Response:
    """``POST /{tid}/oauth2/v2.0/token``: client credentials, device code and refresh token grants."""
    grant = _form_value(form, "grant_type")
    client_id = _form_value(form, "client_id")
    if not client_id:
        basic = request.header("authorization") or ""
        if basic.lower().startswith("basic "):
            try:
                client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
                form = {**form, "client_secret": [secret]}
            except ValueError:
                client_id = None
    if not client_id:
        return aad_error(400, "invalid_request", 900144,
                         "The request body must contain the following parameter: 'client_id'.")
    app = tenant._app(client_id)
    if app is None:
        return _unknown_app(tenant, client_id)
    if grant == "client_credentials":
        return _client_credentials(tenant, request, form, client_id, app)
    if grant == _DEVICE_GRANT:
        return _device_code_grant(tenant, request, form, client_id, app)
    if grant == "refresh_token":
        token = _form_value(form, "refresh_token") or ""
        with tenant._lock:
            entry = tenant._refresh_tokens.pop(token, None)
        if entry is None or entry["client_id"] != client_id:
            return aad_error(400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
        return _user_tokens(tenant, request, client_id, app, entry["user"], entry["scopes"])
    return aad_error(400, "unsupported_grant_type", 70003,
                     f"The app requested an unsupported grant type '{grant}'.")


def _client_credentials(tenant: Tenant, request: Request, form: dict, client_id: str, app: dict) -> Response:
    secret = _form_value(form, "client_secret")
    assertion = _form_value(form, "client_assertion")
    if secret is not None:
        import hmac

        if not hmac.compare_digest(secret.encode(), app["secret"].encode()):
            return aad_error(
                401, "invalid_client", 7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client "
                f"secret value, not the client secret ID, for a secret added to app '{client_id}'.",
            )
        acr = "1"
    elif assertion is not None:
        if _form_value(form, "client_assertion_type") != _ASSERTION_TYPE:
            return aad_error(400, "invalid_request", 50027, "The client_assertion_type is not supported.")
        problem = _check_assertion(tenant, request, client_id, assertion)
        if problem is not None:
            code, text = problem
            return aad_error(401, "invalid_client", code, text)
        acr = "2"
    else:
        return aad_error(401, "invalid_client", 7000218,
                         "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
    scopes = (_form_value(form, "scope") or "").split()
    resource_scopes = [s for s in scopes if s not in _OIDC_SCOPES]
    if len(resource_scopes) != 1 or not resource_scopes[0].endswith("/.default"):
        return aad_error(
            400, "invalid_scope", 1002012,
            f"The provided value for scope {' '.join(scopes)} is not valid. Client credential flows must have a "
            "scope value with /.default suffixed to the resource identifier (application ID URI).",
        )
    resource = resource_scopes[0][: -len("/.default")]
    if resource.rstrip("/") not in (GRAPH_RESOURCE, GRAPH_APP_ID):
        return aad_error(400, "invalid_resource", 500011,
                         f"The resource principal named {resource} was not found in the tenant named {tenant.name}.")
    with tenant.directory() as directory:
        sp = find_service_principal(directory, app_id=client_id)
        sp_id = sp["id"] if sp else client_id
        app = tenant._data["apps"][client_id]
    claims = access_token_claims(tenant, app=app, client_id=client_id, sp_id=sp_id, user=None, acr=acr)
    return Response.json({
        "token_type": "Bearer", "expires_in": ACCESS_TOKEN_LIFETIME, "ext_expires_in": ACCESS_TOKEN_LIFETIME,
        "access_token": tenant.sign(claims),
    })


def _check_assertion(tenant: Tenant, request: Request, client_id: str, assertion: str) -> tuple[int, str] | None:
    """None if the client assertion is good, else (AADSTS code, text)."""
    import jwt

    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        return 50027, "JWT token is invalid or malformed."
    cert_path, _ = tenant._key_paths(f"app-{client_id}")
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    der = cert.public_bytes(serialization.Encoding.DER)
    # azure-identity sends x5t (SHA-1, RS256); MSAL with a PFX sends x5t#S256 (PS256): accept both.
    # MSAL writes x5t in standard base64 with padding, other clients base64url: compare digests.
    known = {("x5t", hashlib.sha1(der).digest()), ("x5t#S256", hashlib.sha256(der).digest())}
    presented = {(k, str(header[k])) for k in ("x5t", "x5t#S256") if k in header}
    if not {(k, _b64_any(v)) for k, v in presented} & known:
        return 700027, ("Client assertion failed signature validation. [Reason - The key was not found., "
                        f"Thumbprint of key used by client: '{next(iter(dict(presented).values()), '')}'. "
                        "Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see "
                        f"configured keys for app Id '{client_id}'.]")
    root = f"{request.server_url}/{tenant.tenant_id}"
    try:
        claims = jwt.decode(
            assertion, cert.public_key(), algorithms=["RS256", "PS256"],
            audience=[f"{root}/oauth2/v2.0/token", f"{root}/oauth2/token", f"{root}/v2.0"],
            options={"require": ["exp", "aud", "iss", "sub"]}, leeway=300,
        )
    except jwt.InvalidSignatureError:
        return 700027, "Client assertion failed signature validation."
    except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError):
        return 700024, "Client assertion is not within its valid time range."
    except jwt.InvalidAudienceError:
        return 700212, "No matching federated identity record found for presented assertion audience."
    except jwt.PyJWTError as exc:
        return 50027, f"JWT token is invalid or malformed ({exc})."
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        return 700021, "Client assertion application identifier doesn't match 'client_id' parameter."
    return None


def _b64_any(text: str) -> bytes:
    """Bytes of base64 or base64url text, padded or not (b'' if it is neither)."""
    cleaned = text.replace("-", "+").replace("_", "/").rstrip("=")
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except ValueError:
        return b""


def _device_code_grant(tenant: Tenant, request: Request, form: dict, client_id: str, app: dict) -> Response:
    code = _form_value(form, "device_code") or ""
    with tenant._lock:
        entry = tenant._device_codes.get(code)
        if entry is None or entry["client_id"] != client_id:
            return aad_error(400, "invalid_grant", 70000, "Provided grant is invalid or malformed.")
        if entry["expires"] < time.time():
            tenant._device_codes.pop(code, None)
            return aad_error(400, "expired_token", 70020, "The provided value for the input parameter 'device_code' is not valid. This device code has expired.")
        entry["polls"] += 1
        if entry["polls"] <= 1:
            # The first poll finds the user still signing in, as with a real user.
            response = aad_error(400, "authorization_pending", 70016,
                                 "OAuth 2.0 device flow error. Authorization is pending. Continue polling.")
            return response
        tenant._device_codes.pop(code, None)
    user = tenant._data["users"][0]
    log.info("tenant %s: device code %s approved for %s", tenant.name, entry["user_code"], user["userPrincipalName"])
    return _user_tokens(tenant, request, client_id, app, user, entry["scopes"])


def _user_tokens(tenant: Tenant, request: Request, client_id: str, app: dict, user: dict, scopes: list[str]) -> Response:
    resource_scopes = [s for s in scopes if s not in _OIDC_SCOPES]
    for scope in resource_scopes:
        resource, _, permission = scope.rpartition("/")
        if resource.rstrip("/") not in (GRAPH_RESOURCE, GRAPH_APP_ID):
            return aad_error(400, "invalid_resource", 500011,
                             f"The resource principal named {resource} was not found in the tenant named {tenant.name}.")
        if permission != ".default" and permission not in app["delegated"]:
            return aad_error(400, "invalid_grant", 65001,
                             f"The user or administrator has not consented to use the application with ID "
                             f"'{client_id}' named '{app['displayName']}'. Send an interactive authorization "
                             "request for this user and resource.")
    claims = access_token_claims(tenant, app=app, client_id=client_id, sp_id="", user=user, acr="0")
    now = int(time.time())
    id_token = tenant.sign({
        "aud": client_id, "iss": f"{request.server_url}/{tenant.tenant_id}/v2.0",
        "iat": now, "nbf": now, "exp": now + 3600, "name": user["displayName"], "oid": user["id"],
        "preferred_username": user["userPrincipalName"], "sub": claims["sub"], "tid": tenant.tenant_id,
        "ver": "2.0",
    })
    refresh = secrets.token_urlsafe(64)
    with tenant._lock:
        tenant._refresh_tokens[refresh] = {"client_id": client_id, "user": user, "scopes": scopes}
    granted = [f"{GRAPH_RESOURCE}/{p}" for p in app["delegated"]] + [f"{GRAPH_RESOURCE}/.default"]
    granted += [s for s in scopes if s in _OIDC_SCOPES]
    client_info = b64url(json.dumps({"uid": user["id"], "utid": tenant.tenant_id}).encode())
    return Response.json({
        "token_type": "Bearer", "scope": " ".join(granted), "expires_in": ACCESS_TOKEN_LIFETIME,
        "ext_expires_in": ACCESS_TOKEN_LIFETIME, "access_token": tenant.sign(claims),
        "refresh_token": refresh, "id_token": id_token, "client_info": client_info,
    })
