"""A simulated SharePoint farm's configuration: its definition, its initial state and the JSON
file that keeps it across lab restarts.

The state is one JSON document (``<name>.json``: ``schema``, ``initial``, ``current``) kept by
:class:`FarmStore`, the lab's :class:`~runbooklib.lab.store.StateStore`, so
:meth:`FarmStore.reset` brings back exactly the farm the estate was created with (same farm id,
same certificates).
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from ..pki import KeyPair, new_signing_certificate
from ..s2s.oracle import split_name
from ..store import StateStore
from . import texts as T

__all__ = [
    "AddinIssuerDefinition",
    "CertificateIssuerDefinition",
    "FarmDefinition",
    "FarmStore",
    "SiteCollectionDefinition",
    "WebAppDefinition",
    "WebGrantDefinition",
    "WorkflowDefinition",
    "initial_state",
    "key_pair_from_state",
]

log = logging.getLogger(__name__)

SCHEMA = 1
Version = Literal["2013", "2016", "2019", "SE"]
Authentication = Literal["ntlm", "kerberos", "classic"]


@dataclass(frozen=True)
class SiteCollectionDefinition:
    """A site collection below a web application's root, e.g. ``/sites/finance``.

    ``webs``: paths of its sub-webs below it (``ap`` → ``…/sites/finance/ap``); ``readable``
    False: the account the runbooks use cannot open it (its content database refuses them).
    """

    path: str
    title: str
    webs: tuple[str, ...] = ()
    readable: bool = True


@dataclass(frozen=True)
class WebAppDefinition:
    """A web application with one site collection at its root, plus ``site_collections``.

    ``authentication`` is what its Default zone uses: ``ntlm`` (Integrated Windows, DisableKerberos
    True), ``kerberos`` (Negotiate, DisableKerberos False) or ``classic`` (a classic-mode web app:
    no claims providers at all).
    """

    url: str
    authentication: Authentication = "ntlm"
    name: str | None = None
    site_title: str = "Home"
    site_collections: tuple[SiteCollectionDefinition, ...] = ()
    readable: bool = True  # False: Get-SPWebApplication answers the runbooks' account with access denied


@dataclass(frozen=True)
class WebGrantDefinition:
    """An add-in's right on one web (``Set-SPAppPrincipalPermission -Scope Site``): ``web_url``
    is the web's full URL, e.g. a sub-web ``https://…/sites/finance/ap``."""

    web_url: str
    right: str = "Write"


@dataclass(frozen=True)
class AddinIssuerDefinition:
    """A provider-hosted (high-trust) add-in: a certificate-based trusted issuer registered as
    ``<issuer_id>@<farm realm>`` and its app principal ``<client_id>@<farm realm>`` with
    FullControl on ``site_url``'s site collection.

    ``trust_broker``: the issuer was created with ``-IsTrustBroker`` (IsSelfIssuer False), the
    registration that lets several add-ins (client ids) share one signing certificate; otherwise
    it is a self-issuer (IsSelfIssuer True).
    """

    name: str
    issuer_id: str
    client_id: str
    site_url: str
    display_name: str = "Provider-hosted add-in"
    trust_broker: bool = False
    web_grants: tuple[WebGrantDefinition, ...] = ()


@dataclass(frozen=True)
class CertificateIssuerDefinition:
    """A certificate-based trusted issuer under a registered name of its own, whatever the farm's
    realm: Office Online Server's fixed-realm issuers, or an ``<issuer id>@*`` issuer that any
    realm matches. No app principal comes with it."""

    name: str
    registered_issuer_name: str
    trust_broker: bool = False


# The farm that also trusts Office Online Server, as OOS's own set-up registers it ([C] names).
OFFICE_ONLINE_SERVER_ISSUERS = (
    CertificateIssuerDefinition("Office Online Server", T.OOS_SHAREPOINT_ISSUER),
    CertificateIssuerDefinition("Office Online Server (SQL Server)", T.OOS_SQL_ISSUER),
)


@dataclass(frozen=True)
class WorkflowDefinition:
    """The farm is paired with Workflow Manager at ``host_uri`` (Register-SPWorkflowService -SPSite
    ``site_url``), under the realm the farm had then."""

    host_uri: str
    site_url: str


@dataclass(frozen=True)
class FarmDefinition:
    name: str
    version: Version
    public_host: str
    web_apps: tuple[WebAppDefinition, ...]
    initial_issuers: tuple[AddinIssuerDefinition, ...] = ()
    #: a User Profile service application exists (Office Online Server's S2S trust needs one)
    user_profile_service: bool = True
    #: the Active Directory domain and forest the farm's servers are joined to
    forest: str = "contoso.lab"
    certificate_issuers: tuple[CertificateIssuerDefinition, ...] = ()
    workflow: WorkflowDefinition | None = None

    @classmethod
    def preset(cls, name: str) -> "FarmDefinition":
        """The lab's standard farms: ``sp-a`` (2019, three web apps, a second site collection
        ``/sites/finance``, two provider-hosted add-ins: a self-issuer on the root site collection and
        a trust broker on the finance one) and ``sp-b`` (SE)."""
        if name == "sp-a":
            return cls(
                name="sp-a",
                version="2019",
                public_host="sharepoint.contoso.lab",
                web_apps=(
                    WebAppDefinition("https://sharepoint.contoso.lab/", "ntlm", "SharePoint - sharepoint443",
                                     site_collections=(SiteCollectionDefinition("/sites/finance", "Finance"),)),
                    WebAppDefinition("https://portal.contoso.lab/", "kerberos", "SharePoint - portal443"),
                    WebAppDefinition("http://intranet.contoso.lab/", "ntlm", "SharePoint - intranet80"),
                ),
                initial_issuers=(
                    # A self-issuer: its issuer id is its client id ([U], see texts.py).
                    AddinIssuerDefinition(
                        name="Contoso Expenses add-in",
                        issuer_id="8c1e6d2a-5b3f-4e7a-9d10-6f2b4a8c3e57",
                        client_id="8c1e6d2a-5b3f-4e7a-9d10-6f2b4a8c3e57",
                        site_url="https://sharepoint.contoso.lab",
                        display_name="Contoso Expenses",
                    ),
                    AddinIssuerDefinition(
                        name="Contoso Invoices add-in",
                        issuer_id="5d7c2e9a-0b4f-4f61-8c3e-1a9b6d2f4e08",
                        client_id="b3a91f54-7e2d-4c08-a6f1-9d5e0c7b2a63",
                        site_url="https://sharepoint.contoso.lab/sites/finance",
                        display_name="Contoso Invoices",
                        trust_broker=True,
                    ),
                ),
            )
        if name == "sp-b":
            return cls(
                name="sp-b",
                version="SE",
                public_host="collab.contoso.lab",
                web_apps=(WebAppDefinition("https://collab.contoso.lab/", "ntlm", "SharePoint - collab443"),),
            )
        raise KeyError(f"no preset SharePoint farm named {name!r} (known: sp-a, sp-b)")


# --------------------------------------------------------------------------------------------
# Certificates

def _name(parts: dict[str, str]) -> x509.Name:
    oids = {"C": NameOID.COUNTRY_NAME, "O": NameOID.ORGANIZATION_NAME,
            "OU": NameOID.ORGANIZATIONAL_UNIT_NAME, "CN": NameOID.COMMON_NAME}
    # Stored most-general first, as Windows does, so .NET shows "CN=…, OU=…, O=…, C=…".
    return x509.Name([x509.NameAttribute(oids[k], parts[k]) for k in ("C", "O", "OU", "CN") if k in parts])


def _farm_certificates() -> tuple[KeyPair, KeyPair]:
    """The farm's root authority and the STS signing certificate it issues (RSA 2048)."""
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root_name = _name(T.ROOT_SUBJECT)
    root = (
        x509.CertificateBuilder().subject_name(root_name).issuer_name(root_name)
        .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=365 * 20))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    sts_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sts = (
        x509.CertificateBuilder().subject_name(_name(T.STS_SUBJECT)).issuer_name(root_name)
        .public_key(sts_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=365 * 15))
        .sign(root_key, hashes.SHA256())
    )
    return KeyPair(root, root_key), KeyPair(sts, sts_key)


def new_sts_certificate(root: KeyPair) -> KeyPair:
    """A replacement STS certificate issued by the same root (lab control: certificate rotation)."""
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder().subject_name(_name(T.STS_SUBJECT)).issuer_name(root.certificate.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=365 * 15))
        .sign(root.key, hashes.SHA256())
    )
    return KeyPair(cert, key)


def _pair_to_state(pair: KeyPair) -> dict[str, str]:
    return {"cert_pem": pair.cert_pem.decode(), "key_pem": pair.key_pem.decode()}


def key_pair_from_state(entry: dict[str, str]) -> KeyPair:
    return KeyPair.from_pem(entry["cert_pem"], entry["key_pem"])


# --------------------------------------------------------------------------------------------
# Initial state

def _new_id() -> str:
    return str(uuid.uuid4())


def site_url_of(web_app_url: str) -> str:
    """A root site collection's URL: the web application URL without the trailing slash."""
    return web_app_url.rstrip("/")


def initial_state(definition: FarmDefinition) -> dict[str, Any]:
    """A fresh farm as :class:`FarmDefinition` describes it (new ids, new certificates)."""
    if definition.version not in T.BUILD_VERSIONS:
        raise ValueError(f"unknown SharePoint version {definition.version!r}: use 2013, 2016, 2019 or SE")
    farm_id = _new_id()
    root, sts = _farm_certificates()
    web_apps = []
    for i, wa in enumerate(definition.web_apps):
        parts = urlsplit(wa.url)
        url = f"{parts.scheme}://{parts.netloc.lower()}/"
        port = parts.port or (443 if parts.scheme == "https" else 80)
        web_apps.append({
            "id": _new_id(),
            "name": wa.name or f"SharePoint - {port}" + (f" ({i})" if i else ""),
            "url": url,
            "zones": {"Default": {"url": url, "authentication": wa.authentication}},
            "readable": wa.readable,
            "sites": [_new_site(site_url_of(url), wa.site_title),
                      *(_new_site(site_url_of(url) + "/" + sc.path.strip("/"), sc.title, sc.webs, sc.readable)
                        for sc in wa.site_collections)],
        })
    proxies = [
        {"id": _new_id(), "name": p["name"], "type": p["type"], "type_name": p["type_name"],
         "metadata_endpoint_uri": None, "in_default_group": True}
        for p in T.INITIAL_PROXIES
    ]
    state: dict[str, Any] = {
        "schema": SCHEMA,
        "name": definition.name,
        "version": definition.version,
        "build_version": T.BUILD_VERSIONS[definition.version],
        "farm_id": farm_id,
        "public_host": definition.public_host,
        "realm": farm_id,  # a new farm's realm is its id until Set-SPAuthenticationRealm
        "sts": {
            "allow_oauth_over_http": False,
            "allow_metadata_over_http": False,
            "signing": _pair_to_state(sts),
            "root": _pair_to_state(root),
        },
        "web_apps": web_apps,
        "trusted_issuers": [],
        "root_authorities": [],
        "app_principals": [],
        "proxies": proxies,
        "proxy_group_id": _new_id(),
        "addin_keys": {},
        "service_applications": _service_applications(definition),
        "forest": definition.forest,
    }
    for addin in definition.initial_issuers:
        _add_addin(state, addin, new_signing_certificate(addin.name))
    for issuer in definition.certificate_issuers:
        _add_certificate_issuer(state, issuer, new_signing_certificate(issuer.name))
    if definition.workflow is not None:
        pair_workflow(state, definition.workflow.host_uri, site_url_of(definition.workflow.site_url))
    return state


def _service_applications(definition: FarmDefinition) -> list[dict[str, Any]]:
    if not definition.user_profile_service:
        return []
    return [{"id": _new_id(), **T.USER_PROFILE_SERVICE}]


def _new_site(url: str, title: str, webs: tuple[str, ...] = (), readable: bool = True) -> dict[str, Any]:
    site: dict[str, Any] = {"id": _new_id(), "url": url, "root_web_id": _new_id(), "title": title,
                            "webs": [{"id": _new_id(), "url": f"{url}/{w.strip('/')}", "title": w.strip("/")}
                                     for w in webs]}
    if not readable:
        site["unreadable"] = True
    return site


def _add_certificate_issuer(state: dict[str, Any], issuer: CertificateIssuerDefinition, pair: KeyPair) -> None:
    state["trusted_issuers"].append({
        "id": _new_id(), "name": issuer.name, "description": "",
        "registered_issuer_name": issuer.registered_issuer_name.lower(),
        "is_self_issuer": not issuer.trust_broker, "metadata_endpoint": None,
        "signing_cert_pem": pair.cert_pem.decode(),
    })


def pair_workflow(state: dict[str, Any], host_uri: str, site_url: str) -> None:
    """Register-SPWorkflowService on ``state``: the Workflow Service Application Proxy, and the
    workflow app principal under the farm's *current* realm on ``site_url`` ([U], see texts)."""
    proxy = next((p for p in state["proxies"] if p["type"] == T.WORKFLOW_PROXY_TYPE), None)
    if proxy is None:
        proxy = {"id": _new_id(), "name": T.WORKFLOW_PROXY_NAME, "type": T.WORKFLOW_PROXY_TYPE,
                 "type_name": T.WORKFLOW_PROXY_TYPE_NAME, "metadata_endpoint_uri": None, "in_default_group": True}
        state["proxies"].append(proxy)
    proxy["workflow_host_uri"] = host_uri
    state["workflow"] = {"host_uri": host_uri, "site_url": site_url, "realm": state["realm"]}
    name_identifier = f"{T.WORKFLOW_PRINCIPAL_ID}@{state['realm']}"
    if not any(p["name_identifier"].lower() == name_identifier for p in state["app_principals"]):
        state["app_principals"].append({"name_identifier": name_identifier,
                                        "display_name": T.WORKFLOW_APP_PRINCIPAL_NAME,
                                        "web_url": site_url, "permissions": []})


def _add_addin(state: dict[str, Any], addin: AddinIssuerDefinition, pair: KeyPair) -> None:
    realm = state["realm"]
    state["addin_keys"][addin.name] = _pair_to_state(pair)
    issuer_name = f"{addin.issuer_id.lower()}@{realm}"
    state["trusted_issuers"].append({
        "id": _new_id(),
        "name": addin.name,
        "description": addin.display_name,
        "registered_issuer_name": issuer_name,
        "is_self_issuer": not addin.trust_broker,
        "metadata_endpoint": None,
        "signing_cert_pem": pair.cert_pem.decode(),
    })
    # High-trust add-ins are conventionally also trusted as root authorities.
    state["root_authorities"].append({
        "id": _new_id(), "name": addin.name, "cert_pem": pair.cert_pem.decode(), "metadata_endpoint": None,
    })
    site_url = site_url_of(addin.site_url)
    state["app_principals"].append({
        "name_identifier": f"{addin.client_id.lower()}@{realm}",
        "display_name": addin.display_name,
        "web_url": site_url,
        "permissions": [{"scope": "SiteCollection", "target": site_url, "right": "FullControl",
                         "app_only": False},
                        *({"scope": "Site", "target": site_url_of(g.web_url), "right": g.right, "app_only": False}
                          for g in addin.web_grants)],
    })


def _missing_seed(state: dict[str, Any], definition: FarmDefinition) -> tuple[list[tuple[str, str]], list[AddinIssuerDefinition]]:
    """Site collections (url, title) and add-ins the definition has and ``state`` lacks."""
    site_urls = {s["url"].lower() for wa in state["web_apps"] for s in wa["sites"]}
    sites = []
    for wa in definition.web_apps:
        root = site_url_of(wa.url).lower()
        for sc in wa.site_collections:
            url = root + "/" + sc.path.strip("/")
            if url.lower() not in site_urls:
                sites.append((url, sc.title))
    addins = [a for a in definition.initial_issuers if a.name not in state["addin_keys"]]
    return sites, addins


# Issuer ids seeded add-ins had in older presets. The Expenses add-in is a self-issuer, whose
# issuer id must be its client id; presets before that registered it under a separate id.
_FORMER_ISSUER_IDS: dict[str, tuple[str, ...]] = {
    "Contoso Expenses add-in": ("2f5b0c7e-4d0a-4c36-9a8e-3a1d7c5e9b21",),
}


def _migrate_issuer_ids(doc: dict[str, Any], definition: FarmDefinition) -> bool:
    """Rename a seeded add-in's issuer registered under a former issuer id to the preset's id,
    keeping its realm (whatever realm it has moved to), certificate and everything else."""
    changed = False
    for addin in definition.initial_issuers:
        former = {i.lower() for i in _FORMER_ISSUER_IDS.get(addin.name, ())}
        for state in (doc["initial"], doc["current"]):
            for issuer in state["trusted_issuers"]:
                issuer_id, realm = split_name(issuer["registered_issuer_name"])
                if (issuer["name"] == addin.name and issuer["metadata_endpoint"] is None and realm
                        and issuer_id.lower() in former):
                    issuer["registered_issuer_name"] = f"{addin.issuer_id.lower()}@{realm}"
                    changed = True
    if changed:
        log.info("farm %s: seeded add-in issuers renamed to their current issuer ids", definition.name)
    return changed


def upgrade_seed(doc: dict[str, Any], definition: FarmDefinition) -> bool:
    """Bring a state file up to what a newer preset seeds (site collections, add-ins, add-in issuer
    ids), in both the initial and the current state, so ``reset()`` and a running lab have them.
    What the file already holds (ids, certificates, changes) stays, except a seeded add-in's former
    issuer id (:data:`_FORMER_ISSUER_IDS`). Returns whether anything changed."""
    migrated = _migrate_issuer_ids(doc, definition)
    if "service_applications" not in doc["initial"]:  # a state file from before the farm had them
        applications = _service_applications(definition)
        for state in (doc["initial"], doc["current"]):
            state["service_applications"] = copy.deepcopy(applications)
            state["forest"] = definition.forest
        migrated = True
    sites, addins = _missing_seed(doc["initial"], definition)
    if not sites and not addins:
        return migrated
    # Made once, so the initial and the current state hold the same ids and certificates.
    pairs = {a.name: new_signing_certificate(a.name) for a in addins}
    new_sites = {url.lower(): _new_site(url, title) for url, title in sites}
    for state in (doc["initial"], doc["current"]):
        state_sites, state_addins = _missing_seed(state, definition)
        for url, _ in state_sites:
            wa = next((w for w in state["web_apps"]
                       if url.lower().startswith(w["url"].rstrip("/").lower() + "/")), None)
            if wa is None or url.lower() not in new_sites:
                log.warning("farm %s: no web application for seeded site collection %s", state["name"], url)
                continue
            wa["sites"].append(copy.deepcopy(new_sites[url.lower()]))
        for addin in state_addins:
            if addin.name in pairs:
                _add_addin(state, addin, pairs[addin.name])
    log.info("farm %s: added seeded site collections %s and add-ins %s to the state file",
             definition.name, [u for u, _ in sites], [a.name for a in addins])
    return True


# --------------------------------------------------------------------------------------------
# Persistence

class FarmStore(StateStore):
    """The farm's state file (:class:`~runbooklib.lab.store.StateStore`: its lock rule, atomic
    0600 writes, the initial state kept for reset)."""

    @classmethod
    def open(cls, path: Path, definition: FarmDefinition | None) -> "FarmStore":
        """Load ``path``; create it from ``definition`` when it does not exist yet."""
        path = Path(path)

        def create() -> dict[str, Any]:
            assert definition is not None
            first = initial_state(definition)
            log.info("created SharePoint farm %s state at %s", definition.name, path)
            return {"schema": SCHEMA, "initial": first, "current": copy.deepcopy(first)}

        def upgrade(doc: dict[str, Any]) -> bool:
            if doc.get("schema") != SCHEMA:
                raise ValueError(f"{path}: unsupported lab state schema {doc.get('schema')!r}; "
                                 "delete the lab directory or run `runbook lab reset`")
            if definition is None:
                return False
            if doc["current"]["name"] != definition.name:
                raise ValueError(f"{path} holds farm {doc['current']['name']!r}, not {definition.name!r}")
            return upgrade_seed(doc, definition)  # a state file from before the preset grew

        store = cls.load(path, create if definition is not None else None, upgrade=upgrade)
        assert isinstance(store, FarmStore)
        return store
