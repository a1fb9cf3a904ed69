"""Microsoft Graph and Entra ID for the runbooks: the tenant and the first-party service
principals a trust changes (SharePoint Online, Exchange Online, Skype for Business Online), their
certificate keys and their SPNs — through msgraph-sdk and azure-identity, unmodified.

The app the runbooks sign in with needs only two Microsoft Graph permissions
(:data:`REQUIRED_PERMISSIONS`): Application.ReadWrite.All to change a principal's
``keyCredentials`` and SPNs, Organization.Read.All to read the tenant. Nothing broader.

:meth:`GraphClient.principal` gives one :class:`Principal` per appId; the SharePoint Online
shortcuts (:meth:`GraphClient.ensure_key_credential` …) are that principal's methods.
Graph's ``PATCH servicePrincipals/{id}`` replaces the whole ``keyCredentials`` collection, so
:meth:`Principal.ensure_key_credential` resends every existing key (by ``keyId`` with a null
``key``, which keeps it), holds a lock file while it reads, merges and writes (two runs
against one tenant cannot lose each other's key), re-reads afterwards and fails loudly if
any key that was there before is gone.

The runbooks are synchronous; the SDK is asynchronous. :class:`GraphClient` owns a private
event loop in a daemon thread and runs each SDK coroutine there. That works the same in a
script and in a Jupyter kernel (whose own loop is already running, so ``asyncio.run`` would
refuse), and keeps one httpx connection pool — which is bound to one loop — for the
client's life. azure-identity's synchronous credentials run on that thread too.

msgraph-sdk takes seconds to import: it is imported on first use, not with this module.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import fcntl
import hashlib
import logging
import os
import re
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Coroutine, Iterator, Literal, Protocol, TypeVar
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .errors import CertificateError, ConnectionFailed, GraphError, InputError
from .wellknown import SHAREPOINT_PRINCIPAL_ID, online_service_name

if TYPE_CHECKING:
    from pathlib import PurePath

__all__ = [
    "GRAPH_SCOPE",
    "GraphClient",
    "KeyChange",
    "KeyInfo",
    "OrganizationInfo",
    "Principal",
    "PrincipalInfo",
    "REQUIRED_PERMISSIONS",
    "SpnChange",
    "certificate_key",
    "expired_keys",
    "host_spn",
    "principal_label",
    "show_device_code",
    "wildcard_spn",
]

log = logging.getLogger(__name__)

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
REQUIRED_PERMISSIONS = ("Application.ReadWrite.All", "Organization.Read.All")
WRITE_PERMISSION = "Application.ReadWrite.All"
READ_ORG_PERMISSION = "Organization.Read.All"
# Graph hosts of the national clouds; their token scope is their own host.
_NATIONAL_GRAPH_HOSTS = {"graph.microsoft.us", "dod-graph.microsoft.us", "microsoftgraph.chinacloudapi.cn"}
_MICROSOFT_AUTHORITY_HOSTS = {
    "login.microsoftonline.com", "login.microsoftonline.us", "login.chinacloudapi.cn", "login.microsoft.com",
}
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")
_HEX40 = re.compile(r"^[0-9A-F]{40}$")
DEFAULT_TIMEOUT = 120.0
DEFAULT_LOCK_TIMEOUT = 120.0

T = TypeVar("T")


# ---------------------------------------------------------------------- what callers pass in
class _CredentialLike(Protocol):
    type: str
    client_id: str | None
    secret: str | None
    certificate: str | None
    certificate_password: str | None


class _TenantLike(Protocol):
    """What :class:`GraphClient` reads from a ``runbooklib.inventory.TenantSpec``."""

    name: str
    tenant_id: str
    authority: str
    graph_url: str
    ca_bundle: "PurePath | None"
    credential: _CredentialLike


Resolver = Callable[[str], str]
CertificateInput = Any  # x509.Certificate, or anything with .certificate (LoadedCertificate, KeyPair), or PEM/DER bytes


# ---------------------------------------------------------------------- results
@dataclass(frozen=True)
class KeyInfo:
    """One keyCredential of a principal, in the administrator's terms."""

    key_id: str
    thumbprint: str | None
    display_name: str | None
    type: str | None
    usage: str | None
    start: dt.datetime | None
    end: dt.datetime | None

    def expired(self, now: dt.datetime | None = None) -> bool:
        return self.end is not None and self.end < (now or dt.datetime.now(dt.timezone.utc))

    def describe(self) -> str:
        end = f", expires {self.end:%Y-%m-%d}" if self.end else ""
        return f"{self.display_name or '(no name)'} [{self.thumbprint or 'thumbprint unknown'}{end}]"


@dataclass(frozen=True)
class OrganizationInfo:
    tenant_id: str
    display_name: str | None
    verified_domains: list[str]
    default_domain: str | None


def principal_label(app_id: str) -> str:
    """How texts name a principal: ``the SharePoint Online principal``, or by appId for any other app."""
    service = online_service_name(app_id)
    return f"the {service} principal" if service else f"the service principal {app_id}"


def certificate_key(keys: list[KeyInfo], thumbprint: str) -> KeyInfo | None:
    """The key among ``keys`` that holds the certificate with ``thumbprint``, or None."""
    wanted = thumbprint.upper()
    return next((k for k in keys if k.thumbprint == wanted), None)


def expired_keys(keys: list[KeyInfo], now: dt.datetime | None = None) -> list[KeyInfo]:
    """The keys among ``keys`` whose end date has passed (at ``now``, default: this moment)."""
    return [k for k in keys if k.expired(now)]


@dataclass(frozen=True)
class PrincipalInfo:
    """A service principal of the tenant as read: its ids, SPNs and certificate keys."""

    object_id: str
    app_id: str
    display_name: str | None
    service_principal_names: list[str]
    key_credentials: list[KeyInfo]

    def name_identifier(self, tenant_id: str) -> str:
        """The app principal name SharePoint Server registers for SPO: ``<object id>@<tenant id>``."""
        return f"{self.object_id}@{tenant_id.lower()}"

    def key_for(self, thumbprint: str) -> KeyInfo | None:
        return certificate_key(self.key_credentials, thumbprint)

    def expired_keys(self, now: dt.datetime | None = None) -> list[KeyInfo]:
        return expired_keys(self.key_credentials, now)


@dataclass(frozen=True)
class KeyChange:
    """What :meth:`GraphClient.ensure_key_credential` (or pruning) did or would do.

    ``action``: ``added`` · ``present`` (nothing to do) · ``would_add`` (plan) · ``pruned`` ·
    ``would_prune`` (plan) · ``none`` (nothing expired).
    """

    action: Literal["added", "present", "would_add", "pruned", "would_prune", "none"]
    thumbprint: str | None
    key_id: str | None
    before: list[KeyInfo]
    after: list[KeyInfo]
    removed: list[KeyInfo] = field(default_factory=list)
    principal: str = "the service principal"  # as texts name it: principal_label()

    @property
    def changed(self) -> bool:
        return self.action in ("added", "pruned")

    @property
    def changes(self) -> list[str]:
        """Human-readable lines for a step's ``changes`` list."""
        if self.action == "added":
            return [f"added the certificate {self.thumbprint} to {self.principal} "
                    f"({len(self.before)} existing key(s) kept)"]
        if self.action == "would_add":
            return [f"would add the certificate {self.thumbprint} to {self.principal} "
                    f"(keeping its {len(self.before)} key(s))"]
        verb = {"pruned": "removed", "would_prune": "would remove"}.get(self.action)
        if verb:
            return [f"{verb} expired key {k.describe()}" for k in self.removed]
        return []


@dataclass(frozen=True)
class SpnChange:
    """What :meth:`GraphClient.ensure_spn` did or would do: ``added``, ``present`` or ``would_add``."""

    action: Literal["added", "present", "would_add"]
    spn: str
    before: list[str]
    after: list[str]
    warnings: list[str] = field(default_factory=list)
    principal: str = "the service principal"  # as texts name it: principal_label()

    @property
    def changed(self) -> bool:
        return self.action == "added"

    @property
    def changes(self) -> list[str]:
        if self.action == "added":
            return [f"added the SPN {self.spn} to {self.principal}"]
        if self.action == "would_add":
            return [f"would add the SPN {self.spn} to {self.principal}"]
        return []


def wildcard_spn(root_domain: str, *, principal_id: str = SHAREPOINT_PRINCIPAL_ID) -> str:
    """``<principal id>/*.<root domain>`` after checking the domain; the SharePoint principal by default."""
    domain = root_domain.strip().lower().rstrip(".")
    if domain.startswith("*."):
        domain = domain[2:]
    if "://" in domain or "/" in domain or not _DOMAIN.match(domain):
        raise InputError(
            f"{root_domain!r} is not a DNS domain name",
            hint="give the public root domain of the farm's URLs, e.g. contoso.com for https://sharepoint.contoso.com",
        )
    return f"{principal_id}/*.{domain}"


def host_spn(host: str, *, principal_id: str) -> str:
    """``<principal id>/<host>`` after checking ``host`` is one DNS name (no scheme, path, port or wildcard)."""
    name = host.strip().lower().rstrip(".")
    if "://" in name or "/" in name or name.startswith("*.") or not _DOMAIN.match(name):
        raise InputError(
            f"{host!r} is not a host name",
            hint="give the fully qualified host name only, e.g. webext.contoso.com for https://webext.contoso.com/",
        )
    return f"{principal_id}/{name}"


def _as_certificate(cert: CertificateInput) -> x509.Certificate:
    if isinstance(cert, x509.Certificate):
        return cert
    inner = getattr(cert, "certificate", None)
    if isinstance(inner, x509.Certificate):
        return inner
    if isinstance(cert, (bytes, bytearray)):
        data = bytes(cert)
        try:
            if data.lstrip().startswith(b"-----BEGIN"):
                return x509.load_pem_x509_certificate(data)
            return x509.load_der_x509_certificate(data)
        except ValueError as exc:
            raise CertificateError(f"the certificate cannot be read ({exc})") from None
    raise CertificateError(f"expected a certificate, got {type(cert).__name__}")


def _thumbprint(cert: x509.Certificate) -> str:
    from .certs import thumbprint_of

    return thumbprint_of(cert.public_bytes(serialization.Encoding.DER))


def _key_info(cred: Any) -> KeyInfo:
    """KeyInfo from an SDK KeyCredential. The thumbprint comes from the certificate when Graph
    returned it, else from customKeyIdentifier — which the SDK base64-decoded although Graph
    stores the hex thumbprint there: encoding it again gives the thumbprint back."""
    thumb = None
    if cred.key:
        thumb = hashlib.sha1(bytes(cred.key)).hexdigest().upper()
    elif cred.custom_key_identifier:
        text = base64.b64encode(bytes(cred.custom_key_identifier)).decode().upper()
        thumb = text if _HEX40.match(text) else None
    return KeyInfo(
        key_id=str(cred.key_id) if cred.key_id else "",
        thumbprint=thumb,
        display_name=cred.display_name,
        type=cred.type,
        usage=cred.usage,
        start=cred.start_date_time,
        end=cred.end_date_time,
    )


# ---------------------------------------------------------------------- loop thread
class _LoopThread:
    """A private asyncio loop in a daemon thread; :meth:`run` blocks the caller until done."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


def show_device_code(verification_uri: str, user_code: str, expires_on: dt.datetime) -> str:
    """Show the device-code sign-in instruction: as Markdown in a notebook, else on stderr."""
    message = (
        f"To sign in to Microsoft Entra ID for this runbook, open {verification_uri} in a browser and "
        f"enter the code {user_code}. The code is valid until {expires_on:%H:%M} UTC."
    )
    try:
        from IPython import get_ipython  # type: ignore[import-not-found]

        shell = get_ipython()
    except ImportError:
        shell = None
    if shell is not None and getattr(shell, "kernel", None) is not None:
        from IPython.display import Markdown, display  # type: ignore[import-not-found]

        display(Markdown(f"**Sign-in needed.** Open <{verification_uri}> and enter the code **`{user_code}`** "
                         f"(valid until {expires_on:%H:%M} UTC)."))
    else:
        print(message, file=sys.stderr, flush=True)
    return message


# ---------------------------------------------------------------------- the client
class GraphClient:
    """Synchronous facade over msgraph-sdk for one tenant of the inventory.

    ``tenant`` is a ``TenantSpec``; ``resolve`` turns a secret reference into its value
    (default: :func:`runbooklib.secrets.resolve_secret`); ``lock_dir`` holds the per-tenant
    lock file that serializes keyCredentials writes across processes (default: a folder in
    the system temp dir); ``prompt`` receives the device-code instruction (default: shown in
    the notebook, or on stderr); ``credential`` overrides the one built from the inventory.
    """

    def __init__(
        self,
        tenant: _TenantLike,
        *,
        resolve: Resolver | None = None,
        lock_dir: Path | None = None,
        prompt: Callable[[str], None] | None = None,
        credential: Any = None,
        timeout: float = DEFAULT_TIMEOUT,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> None:
        self.spec = tenant
        self._resolve = resolve
        self._prompt = prompt
        self._credential = credential
        self.timeout = timeout
        self.lock_timeout = lock_timeout
        self.lock_dir = Path(lock_dir) if lock_dir else Path(tempfile.gettempdir()) / "runbook-locks"
        self._loop: _LoopThread | None = None
        self._client: Any = None
        self._http: Any = None
        self._principals: dict[str, Principal] = {}

    # -------------------------------------------------------------- lifecycle
    def __enter__(self) -> "GraphClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._loop is not None:
            if self._http is not None:
                with contextlib.suppress(Exception):
                    self._loop.run(self._http.aclose(), 10)
            self._loop.close()
            self._loop = None
        close = getattr(self._credential, "close", None)
        if callable(close):
            with contextlib.suppress(Exception):
                close()

    @property
    def client_id(self) -> str | None:
        return self.spec.credential.client_id

    # -------------------------------------------------------------- set-up
    def _secret(self, ref: str, purpose: str) -> str:
        if self._resolve is not None:
            return self._resolve(ref)
        from .secrets import resolve_secret

        return resolve_secret(ref, purpose=purpose)

    def _identity_options(self) -> dict[str, Any]:
        spec = self.spec
        options: dict[str, Any] = {"authority": spec.authority}
        # MSAL's instance discovery asks the public cloud about the authority; for a host that
        # is not Microsoft's (the lab, a private cloud) that fails after a long timeout.
        if (urlsplit(spec.authority).hostname or "").lower() not in _MICROSOFT_AUTHORITY_HOSTS:
            options["disable_instance_discovery"] = True
        if spec.ca_bundle:
            options["connection_verify"] = str(spec.ca_bundle)
        return options

    def _build_credential(self) -> Any:
        if self._credential is not None:
            return self._credential
        from azure import identity

        spec, cred = self.spec, self.spec.credential
        options = self._identity_options()
        if cred.type == "client_secret":
            if not cred.secret or not cred.client_id:
                raise InputError("credential type client_secret needs client_id and secret",
                                 field=f"tenants.{spec.name}.credential")
            secret = self._secret(cred.secret, f"the client secret of app {cred.client_id} in tenant {spec.name}")
            self._credential = identity.ClientSecretCredential(spec.tenant_id, cred.client_id, secret, **options)
        elif cred.type == "certificate":
            if not cred.certificate or not cred.client_id:
                raise InputError("credential type certificate needs client_id and certificate",
                                 field=f"tenants.{spec.name}.credential")
            pem = self._certificate_pem(cred)
            self._credential = identity.CertificateCredential(
                spec.tenant_id, cred.client_id, certificate_data=pem, **options
            )
        elif cred.type == "device_code":
            if not cred.client_id:
                raise InputError("credential type device_code needs client_id", field=f"tenants.{spec.name}.credential")
            self._credential = identity.DeviceCodeCredential(
                client_id=cred.client_id, tenant_id=spec.tenant_id, prompt_callback=self._device_prompt,
                timeout=int(self.timeout), **options,
            )
        elif cred.type == "azure_cli":
            self._credential = identity.AzureCliCredential(tenant_id=spec.tenant_id)
        else:
            raise InputError(f"unknown credential type {cred.type!r}",
                             hint="use client_secret, certificate, device_code or azure_cli",
                             field=f"tenants.{spec.name}.credential.type")
        return self._credential

    def _certificate_pem(self, cred: _CredentialLike) -> bytes:
        """The certificate and its private key as unencrypted PEM (what CertificateCredential reads)."""
        from .certs import load_certificate

        password_ref = cred.certificate_password
        loaded = load_certificate(str(cred.certificate), password_ref=password_ref)
        if loaded.private_key is None:
            raise CertificateError(
                f"the certificate file {loaded.source} holds no private key",
                hint="export the app's certificate with its private key (PFX or PEM with key)",
            )
        key_pem = loaded.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        # The unencrypted key is as secret as the PFX password: keep it out of every output too.
        from .secrets import register_secret

        for line in key_pem.decode().splitlines():
            if not line.startswith("-----"):
                register_secret(line)
        return loaded.certificate.public_bytes(serialization.Encoding.PEM) + key_pem

    def _device_prompt(self, verification_uri: str, user_code: str, expires_on: dt.datetime) -> None:
        message = (
            f"To sign in, open {verification_uri} and enter the code {user_code} "
            f"(valid until {expires_on:%H:%M} UTC)."
        )
        if self._prompt is not None:
            self._prompt(message)
        else:
            show_device_code(verification_uri, user_code, expires_on)

    def _graph_scope(self) -> str:
        host = (urlsplit(self.spec.graph_url).hostname or "").lower()
        return f"https://{host}/.default" if host in _NATIONAL_GRAPH_HOSTS else GRAPH_SCOPE

    def _graph(self) -> Any:
        """The GraphServiceClient, built on first use (the SDK import is slow)."""
        if self._client is not None:
            return self._client
        import ssl

        import httpx
        from msgraph import GraphServiceClient
        from msgraph.graph_request_adapter import GraphRequestAdapter, options
        from msgraph_core import GraphClientFactory
        from msgraph_core.authentication import AzureIdentityAuthenticationProvider

        credential = self._build_credential()
        graph_url = self.spec.graph_url.rstrip("/")
        host = urlsplit(graph_url).hostname or ""
        verify: Any = ssl.create_default_context(cafile=str(self.spec.ca_bundle)) if self.spec.ca_bundle else True
        http = httpx.AsyncClient(verify=verify, timeout=httpx.Timeout(60.0, connect=15.0))
        http = GraphClientFactory.create_with_default_middleware(client=http, options=options)
        auth = AzureIdentityAuthenticationProvider(credential, scopes=[self._graph_scope()], allowed_hosts=[host])
        adapter = GraphRequestAdapter(auth, client=http)
        # Without an explicit base URL the SDK builds …/v1.0//organization.
        adapter.base_url = graph_url
        self._http = http
        self._client = GraphServiceClient(request_adapter=adapter)
        self._loop = _LoopThread(f"graph-{self.spec.name}")
        return self._client

    def _call(self, make: Callable[[Any], Coroutine[Any, Any, T]], *, action: str, needs: str,
              principal: str | None = None) -> T:
        """Run one SDK call on the private loop; translate its failures into GraphError."""
        graph = self._graph()
        assert self._loop is not None
        try:
            return self._loop.run(make(graph), self.timeout)
        except TimeoutError:
            raise ConnectionFailed(
                f"Microsoft Graph did not answer within {self.timeout:.0f} s while trying to {action}",
                hint="check the network path to the Graph and sign-in endpoints (proxy, firewall), then run again",
                target=self.spec.graph_url,
            ) from None
        except Exception as exc:  # noqa: BLE001 - classified below, re-raised if unknown
            raise self._translate(exc, action=action, needs=needs, principal=principal) from exc

    def _translate(self, exc: Exception, *, action: str, needs: str, principal: str | None) -> Exception:
        from azure.core.exceptions import ClientAuthenticationError
        from kiota_abstractions.api_error import APIError

        if isinstance(exc, ClientAuthenticationError):
            if self.spec.credential.type == "azure_cli":
                return GraphError(
                    f"the Azure CLI has no usable sign-in for tenant {self.spec.tenant_id}: "
                    f"{getattr(exc, 'message', None) or exc}",
                    hint=f"run 'az login --tenant {self.spec.tenant_id}' as the account that runs the runbook "
                    "(or use another credential type in the inventory)",
                    code="AzureCliUnavailable", status=401,
                )
            return self._sign_in_error(exc)
        if isinstance(exc, APIError):
            err = getattr(exc, "error", None)
            code = getattr(err, "code", None) or "UnknownError"
            message = getattr(err, "message", None) or str(exc)
            status = getattr(exc, "response_status_code", None)
            return GraphError(
                f"Microsoft Graph refused to {action}: {code}: {message}",
                hint=self._hint(code, needs, principal or "the service principal"), code=code, status=status,
            )
        import httpx

        if isinstance(exc, httpx.TransportError):
            return ConnectionFailed(
                f"cannot reach Microsoft Graph at {self.spec.graph_url} to {action}: {exc}",
                hint="check the URL, the network and the CA bundle of the tenant in the inventory",
                target=self.spec.graph_url,
            )
        return exc

    def _hint(self, code: str, needs: str, principal: str) -> str | None:
        app = self.client_id or "the signed-in account"
        hints = {
            "Authorization_RequestDenied": (
                f"the app {app} lacks the Microsoft Graph permission {needs}: in Entra ID, App registrations "
                f"→ {app} → API permissions, add the application permission {needs}, grant admin consent, "
                "then run again"
            ),
            "InvalidAuthenticationToken": (
                "Graph did not accept the access token: check the tenant id in the inventory and this "
                "machine's clock, then run again"
            ),
            "Request_ResourceNotFound": "the object does not exist in this tenant: check the tenant id in the inventory",
            "Directory_ResourceSizeExceeded": (
                f"{principal} holds too many keys: plan and run "
                "prune_expired_key_credentials(), then run again"
            ),
            "Request_MultipleObjectsWithSameKeyValue": (
                "another principal already holds that SPN: remove it there (or use another root domain), then run again"
            ),
            "TooManyRequests": "Graph kept throttling after the SDK's retries: wait a few minutes and run again",
            "Request_BadRequest": "Graph rejected the values sent: check the certificate (a valid X.509 certificate, not expired)",
        }
        return hints.get(code)

    def _sign_in_error(self, exc: Exception) -> GraphError:
        text = getattr(exc, "message", None) or str(exc)
        match = re.search(r"AADSTS(\d+)", text)
        code = f"AADSTS{match.group(1)}" if match else "SignInFailed"
        detail = text
        if match:
            detail = text[match.start():]
            detail = re.split(r"\s*Trace ID:", detail)[0].strip()
        app, tenant = self.client_id, self.spec.tenant_id
        hints = {
            "AADSTS7000215": f"the client secret of app {app} is wrong or expired: create a new one and update the secret reference",
            "AADSTS700016": f"no app {app} in tenant {tenant}: check client_id and tenant_id in the inventory",
            "AADSTS90002": f"tenant {tenant} does not exist at {self.spec.authority}: check tenant_id and authority",
            "AADSTS700027": f"the certificate is not registered on app {app}: upload its public part to the app registration",
            "AADSTS700024": "the client assertion's time is off: check this machine's clock",
            "AADSTS65001": f"the app {app} has no admin consent for {', '.join(REQUIRED_PERMISSIONS)}: grant it",
        }
        hint = hints.get(code, f"check the credential of tenant {self.spec.name} in the inventory")
        return GraphError(f"sign-in to Entra ID failed: {detail}", hint=hint, code=code, status=401)

    # -------------------------------------------------------------- lock
    @contextlib.contextmanager
    def _write_lock(self) -> Iterator[None]:
        """Exclusive per-tenant lock across processes for keyCredentials/SPN read-modify-write."""
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        path = self.lock_dir / f"graph-{self.spec.tenant_id}.lock"
        with open(path, "a+") as fh:
            deadline = time.monotonic() + self.lock_timeout
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise GraphError(
                            f"another run holds the lock {path} on tenant {self.spec.name} "
                            f"for more than {self.lock_timeout:.0f} s",
                            hint="wait for the other run to finish; if none is running, delete the lock file",
                            code="LockTimeout",
                        ) from None
                    time.sleep(0.05)
            try:
                fh.seek(0)
                fh.truncate()
                fh.write(f"pid {os.getpid()} since {dt.datetime.now(dt.timezone.utc).isoformat()}\n")
                fh.flush()
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # -------------------------------------------------------------- reads
    def organization(self) -> OrganizationInfo:
        result = self._call(lambda g: g.organization.get(), action="read the organization", needs=READ_ORG_PERMISSION)
        orgs = list(result.value or []) if result else []
        if not orgs:
            raise GraphError("Graph returned no organization for this tenant", code="Request_ResourceNotFound")
        org = orgs[0]
        domains = [d.name for d in (org.verified_domains or []) if d.name]
        default = next((d.name for d in (org.verified_domains or []) if d.is_default), None)
        return OrganizationInfo(str(org.id), org.display_name, domains, default)

    def tenant_id(self) -> str:
        """The tenant id as Graph reports it; GraphError if it is not the inventory's."""
        tid = self.organization().tenant_id.lower()
        if tid != self.spec.tenant_id.lower():
            raise GraphError(
                f"signed in to tenant {tid}, but the inventory names {self.spec.tenant_id}",
                hint="correct tenant_id of this tenant in the inventory", code="TenantMismatch",
            )
        return tid

    def principal(self, app_id: str) -> "Principal":
        """The tenant's service principal of ``app_id`` (SharePoint, Exchange, Skype …), one handle per app."""
        key = app_id.lower()
        if key not in self._principals:
            self._principals[key] = Principal(self, key)
        return self._principals[key]

    # The SharePoint Online principal, which the hybrid trust changes: the same rules as any principal.
    def spo_principal(self) -> PrincipalInfo:
        return self.principal(SHAREPOINT_PRINCIPAL_ID).read()

    def plan_key_credential(self, cert: CertificateInput) -> KeyChange:
        return self.principal(SHAREPOINT_PRINCIPAL_ID).plan_key_credential(cert)

    def ensure_key_credential(self, cert: CertificateInput, *, display_name: str | None = None) -> KeyChange:
        return self.principal(SHAREPOINT_PRINCIPAL_ID).ensure_key_credential(cert, display_name=display_name)

    def plan_prune_expired_key_credentials(self, *, now: dt.datetime | None = None) -> KeyChange:
        return self.principal(SHAREPOINT_PRINCIPAL_ID).plan_prune_expired_key_credentials(now=now)

    def prune_expired_key_credentials(self, *, now: dt.datetime | None = None) -> KeyChange:
        return self.principal(SHAREPOINT_PRINCIPAL_ID).prune_expired_key_credentials(now=now)

    def plan_spn(self, root_domain: str) -> SpnChange:
        return self.principal(SHAREPOINT_PRINCIPAL_ID).plan_spn(root_domain)

    def ensure_spn(self, root_domain: str) -> SpnChange:
        return self.principal(SHAREPOINT_PRINCIPAL_ID).ensure_spn(root_domain)

    def _service_principals(self, filter: str, select: list[str], *, action: str,  # noqa: A002 - OData's word
                            principal: str | None = None) -> list[Any]:
        """``GET servicePrincipals?$filter=…&$select=…``: the principals that match, maybe none."""
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.service_principals.service_principals_request_builder import (
            ServicePrincipalsRequestBuilder,
        )

        query = ServicePrincipalsRequestBuilder.ServicePrincipalsRequestBuilderGetQueryParameters(
            filter=filter, select=select)
        result = self._call(
            lambda g: g.service_principals.get(request_configuration=RequestConfiguration(query_parameters=query)),
            action=action, needs=WRITE_PERMISSION, principal=principal,
        )
        return list(result.value or []) if result else []

    def _spn_holder(self, spn: str) -> str | None:
        try:
            items = self._service_principals(f"servicePrincipalNames/any(x:x eq '{spn}')",
                                             ["id", "appId", "displayName"], action="find the holder of an SPN")
        except GraphError:
            return None
        if not items:
            return None
        return f"the service principal '{items[0].display_name}' (appId {items[0].app_id})"


# ---------------------------------------------------------------------- one service principal
class Principal:
    """One service principal of the tenant, by appId: its keys and SPNs under the tenant's rules.

    Graph's ``PATCH servicePrincipals/{id}`` replaces the whole ``keyCredentials`` collection:
    every change resends each key it keeps (matched by thumbprint), writes under the tenant's
    lock, re-reads, and fails loudly if a key that was there before is gone. Expired keys go only
    when asked (:meth:`prune_expired_key_credentials`). Obtain one with :meth:`GraphClient.principal`.
    """

    def __init__(self, graph: GraphClient, app_id: str) -> None:
        self.graph = graph
        self.app_id = app_id
        self.label = principal_label(app_id)
        self._object_id: str | None = None

    def __repr__(self) -> str:
        return f"<Principal {self.app_id} of tenant {self.graph.spec.name}>"

    def _call(self, make: Callable[[Any], Coroutine[Any, Any, T]], *, action: str) -> T:
        return self.graph._call(make, action=action, needs=WRITE_PERMISSION, principal=self.label)

    # -------------------------------------------------------------- reads
    def object_id(self) -> str:
        """The principal's object id in this tenant (looked up once)."""
        if self._object_id:
            return self._object_id
        items = self.graph._service_principals(f"appId eq '{self.app_id}'",
                                               ["id", "appId", "displayName", "servicePrincipalNames"],
                                               action=f"find {self.label}", principal=self.label)
        if not items:
            service = online_service_name(self.app_id) or f"app {self.app_id}"
            raise GraphError(
                f"the tenant has no {service} service principal (appId {self.app_id})",
                hint=f"{service} must be provisioned in the tenant before a hybrid trust can be set up",
                code="Request_ResourceNotFound",
            )
        self._object_id = str(items[0].id)
        return self._object_id

    def _read(self, select: list[str]) -> Any:
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.service_principals.item.service_principal_item_request_builder import (
            ServicePrincipalItemRequestBuilder,
        )

        object_id = self.object_id()
        query = ServicePrincipalItemRequestBuilder.ServicePrincipalItemRequestBuilderGetQueryParameters(select=select)
        return self._call(
            lambda g: g.service_principals.by_service_principal_id(object_id).get(
                request_configuration=RequestConfiguration(query_parameters=query)
            ),
            action=f"read {self.label}",
        )

    def _raw_keys(self) -> list[Any]:
        # Only a single-object read with $select=keyCredentials returns the certificates.
        return list(self._read(["keyCredentials"]).key_credentials or [])

    def read(self) -> PrincipalInfo:
        sp = self._read(["id", "appId", "displayName", "servicePrincipalNames", "keyCredentials"])
        return PrincipalInfo(
            object_id=str(sp.id),
            app_id=str(sp.app_id),
            display_name=sp.display_name,
            service_principal_names=list(sp.service_principal_names or []),
            key_credentials=[_key_info(k) for k in (sp.key_credentials or [])],
        )

    def key_credentials(self) -> list[KeyInfo]:
        return [_key_info(k) for k in self._raw_keys()]

    # -------------------------------------------------------------- keyCredentials
    def _patch_keys(self, creds: list[Any], action: str) -> None:
        from msgraph.generated.models.service_principal import ServicePrincipal

        object_id = self.object_id()
        body = ServicePrincipal(key_credentials=creds)
        self._call(lambda g: g.service_principals.by_service_principal_id(object_id).patch(body), action=action)

    @staticmethod
    def _resend(cred: Any) -> Any:
        """An existing key as it must be sent back: same keyId, no key bytes (Graph keeps them)."""
        from msgraph.generated.models.key_credential import KeyCredential

        return KeyCredential(
            key_id=cred.key_id, type=cred.type, usage=cred.usage, display_name=cred.display_name,
            custom_key_identifier=cred.custom_key_identifier, start_date_time=cred.start_date_time,
            end_date_time=cred.end_date_time, key=None,
        )

    def plan_key_credential(self, cert: CertificateInput) -> KeyChange:
        """What :meth:`ensure_key_credential` would do, without writing."""
        certificate = _as_certificate(cert)
        before = self.key_credentials()
        thumb = _thumbprint(certificate)
        found = certificate_key(before, thumb)
        if found:
            return KeyChange("present", thumb, found.key_id, before, before, principal=self.label)
        return KeyChange("would_add", thumb, None, before, before, principal=self.label)

    def ensure_key_credential(self, cert: CertificateInput, *, display_name: str | None = None) -> KeyChange:
        """Make the principal trust ``cert`` (for SharePoint Online: the farm's STS certificate).

        Idempotent by thumbprint; every existing key is kept; the result is re-read and a
        :class:`GraphError` names any key that was there before and is gone.
        """
        from msgraph.generated.models.key_credential import KeyCredential

        certificate = _as_certificate(cert)
        thumb = _thumbprint(certificate)
        now = dt.datetime.now(dt.timezone.utc)
        if certificate.not_valid_after_utc < now:
            raise CertificateError(
                f"the certificate {thumb} expired on {certificate.not_valid_after_utc:%Y-%m-%d}",
                hint="renew the farm's STS certificate first, then upload the new one",
            )
        with self.graph._write_lock():
            raw = self._raw_keys()
            before = [_key_info(k) for k in raw]
            found = certificate_key(before, thumb)
            if found:
                log.info("%s already trusts %s", self.label, thumb)
                return KeyChange("present", thumb, found.key_id, before, before, principal=self.label)
            key_id = uuid.uuid4()
            name = display_name or certificate.subject.rfc4514_string()
            new = KeyCredential(
                key_id=key_id, type="AsymmetricX509Cert", usage="Verify", display_name=name,
                key=certificate.public_bytes(serialization.Encoding.DER),
                # Graph keeps the hex thumbprint here; the SDK base64-encodes these bytes on the
                # way out, so decoding the hex text as base64 puts exactly that text on the wire.
                custom_key_identifier=base64.b64decode(thumb),
                start_date_time=certificate.not_valid_before_utc, end_date_time=certificate.not_valid_after_utc,
            )
            self._patch_keys([self._resend(k) for k in raw] + [new], f"add the certificate to {self.label}")
            after = self.key_credentials()
        self._check_kept(before, after, expect_removed=[])
        added = certificate_key(after, thumb)
        if added is None:
            raise GraphError(
                f"Graph accepted the new key but the certificate {thumb} is not on the principal when read back",
                hint="read the principal's keyCredentials in Graph Explorer and run again", code="KeyNotStored",
            )
        log.info("added the certificate %s to %s (%d keys kept)", thumb, self.label, len(before))
        return KeyChange("added", thumb, added.key_id, before, after, principal=self.label)

    def _check_kept(self, before: list[KeyInfo], after: list[KeyInfo], *, expect_removed: list[KeyInfo]) -> None:
        removed_ids = {k.key_id.lower() for k in expect_removed}
        present = {k.key_id.lower() for k in after}
        lost = [k for k in before if k.key_id.lower() not in present and k.key_id.lower() not in removed_ids]
        if lost:
            raise GraphError(
                f"keys that {self.label} held before this change are gone: "
                + "; ".join(f"{k.describe()} keyId {k.key_id}" for k in lost),
                hint="another tool changed the keys at the same time, or Graph dropped them: re-upload each "
                "listed certificate from the farm that owns it (its STS certificate) before anything else",
                code="KeyCredentialLost",
            )

    def plan_prune_expired_key_credentials(self, *, now: dt.datetime | None = None) -> KeyChange:
        before = self.key_credentials()
        expired = expired_keys(before, now)
        remaining = [k for k in before if not k.expired(now)]
        return KeyChange("would_prune" if expired else "none", None, None, before, remaining, expired,
                         principal=self.label)

    def prune_expired_key_credentials(self, *, now: dt.datetime | None = None) -> KeyChange:
        """Remove only keys whose end date has passed; every other key is kept and checked."""
        with self.graph._write_lock():
            raw = self._raw_keys()
            before = [_key_info(k) for k in raw]
            expired = expired_keys(before, now)
            if not expired:
                return KeyChange("none", None, None, before, before, principal=self.label)
            keep = [self._resend(k) for k, info in zip(raw, before) if not info.expired(now)]
            self._patch_keys(keep, f"remove expired keys from {self.label}")
            after = self.key_credentials()
        self._check_kept(before, after, expect_removed=expired)
        log.info("removed %d expired key(s) from %s", len(expired), self.label)
        return KeyChange("pruned", None, None, before, after, expired, principal=self.label)

    # -------------------------------------------------------------- SPNs
    def service_principal_names(self) -> list[str]:
        return list(self._read(["servicePrincipalNames"]).service_principal_names or [])

    def _spn_state(self, root_domain: str) -> tuple[str, list[str], list[str]]:
        spn = wildcard_spn(root_domain, principal_id=self.app_id)
        domain = spn.split("/*.", 1)[1]
        current = self.service_principal_names()
        others = [s for s in current if s.lower() != spn.lower() and domain in s.lower()]
        warnings = [
            f"{self.label} also has the SPN {s}, which contains {domain}: the wildcard "
            f"SPN should be the only one for that domain; remove {s} unless you know what needs it"
            for s in others
        ]
        for text in warnings:
            log.warning(text)
        return spn, current, warnings

    def _host_spn_state(self, host: str) -> tuple[str, list[str], list[str]]:
        return host_spn(host, principal_id=self.app_id), self.service_principal_names(), []

    def plan_spn(self, root_domain: str) -> SpnChange:
        return self._plan_spn(*self._spn_state(root_domain))

    def plan_host_spn(self, host: str) -> SpnChange:
        """What :meth:`ensure_host_spn` would do, without writing."""
        return self._plan_spn(*self._host_spn_state(host))

    def _plan_spn(self, spn: str, current: list[str], warnings: list[str]) -> SpnChange:
        present = any(s.lower() == spn.lower() for s in current)
        return SpnChange("present" if present else "would_add", spn, current, current, warnings, principal=self.label)

    def ensure_spn(self, root_domain: str) -> SpnChange:
        """Give the principal the wildcard SPN for ``root_domain``."""
        return self._add_spn(lambda: self._spn_state(root_domain))

    def ensure_host_spn(self, host: str) -> SpnChange:
        """Give the principal the SPN ``<appId>/<host>`` (Skype for Business: the pool's external web FQDN)."""
        return self._add_spn(lambda: self._host_spn_state(host))

    def _add_spn(self, state: Callable[[], tuple[str, list[str], list[str]]]) -> SpnChange:
        """Append the SPN ``state()`` names to the principal's SPNs, under the tenant's write lock."""
        from msgraph.generated.models.service_principal import ServicePrincipal

        with self.graph._write_lock():
            spn, current, warnings = state()
            if any(s.lower() == spn.lower() for s in current):
                return SpnChange("present", spn, current, current, warnings, principal=self.label)
            object_id = self.object_id()
            body = ServicePrincipal(service_principal_names=current + [spn])
            try:
                self._call(lambda g: g.service_principals.by_service_principal_id(object_id).patch(body),
                           action=f"add the SPN {spn}")
            except GraphError as exc:
                if exc.code == "Request_MultipleObjectsWithSameKeyValue":
                    holder = self.graph._spn_holder(spn)
                    raise GraphError(
                        f"the SPN {spn} is already held by {holder or 'another object'} in the tenant",
                        hint="remove it from that principal (or application identifier URIs), then run again",
                        code=exc.code, status=exc.status,
                    ) from exc
                raise
            after = self.service_principal_names()
        lost = [s for s in current if s not in after]
        if spn not in after or lost:
            raise GraphError(
                f"after adding {spn} the principal's SPNs read back as {after}",
                hint="check the principal's servicePrincipalNames in Graph Explorer", code="SpnNotStored",
            )
        return SpnChange("added", spn, current, after, warnings, principal=self.label)
