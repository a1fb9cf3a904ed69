"""What a simulated SharePoint farm does, independent of how it was asked.

:class:`FarmOperations` holds the farm's lookups and changes over its
:class:`~.state.FarmStore`; the cmdlets (:mod:`.cmdlets`) and the script templates
(:mod:`.templates`) both call it, so a template and the cmdlets it uses cannot disagree.
:func:`sp_error` makes the error record a SharePoint cmdlet writes.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from cryptography import x509

from ..metadata_download import (
    WEB_CONNECT_FAILED,
    FetchFailed,
    fetch_body,
    fetch_json,
    issuer_of,
    signing_certificates,
)
from ..powershell import find_by_identity, is_guid, refuse_non_live, require_confirm
from ..winrm.api import (
    DeserializedObject,
    ErrorSpec,
    Invocation,
    PSObj,
    TerminatingError,
)
from . import objects as O
from . import texts as T
from .state import FarmStore

__all__ = ["USER_AGENT", "FarmOperations", "confirm_if_prompting", "norm_url", "sp_error"]

log = logging.getLogger(__name__)

USER_AGENT = "SharePoint"  # what the farm sends when it downloads a partner's metadata


def sp_error(cmdlet: str, message: str, *, category: str = "InvalidData",
             exception: str = "System.InvalidOperationException", target: Any = None) -> ErrorSpec:
    """The error record SharePoint cmdlet ``cmdlet`` writes (FullyQualifiedErrorId of its class)."""
    return ErrorSpec(message, T.fqid(T.CMDLET_CLASSES[cmdlet]), category, exception, target)



def confirm_if_prompting(inv: Invocation, cmdlet: str, target: str) -> None:
    """Fail ``cmdlet`` without ``-Confirm:$false`` when it is one that prompts (:data:`.texts.PROMPTING_CMDLETS`)."""
    if cmdlet in T.PROMPTING_CMDLETS:
        require_confirm(inv, cmdlet, target)


def norm_url(url: str) -> str:
    parts = urlsplit(str(url).strip())
    path = parts.path.rstrip("/")
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{path.lower()}"


# --------------------------------------------------------------------------------------------
# Farm operations (shared by cmdlets and templates)

class FarmOperations:
    """What the farm does, independent of how it was asked."""

    def __init__(self, store: FarmStore, *, ca_bundle: Path | None, metadata_timeout: float) -> None:
        self.store = store
        self.ca_bundle = ca_bundle
        self.metadata_timeout = metadata_timeout
        # Whether the server has no outbound access (the lab's standing ``no-outbound`` fault);
        # the estate wires it to the farm's server when it mounts the farm.
        self.outbound_blocked: Callable[[], bool] = lambda: False

    # --- lookups (call inside store.view()/change()) -----------------------------------------
    @staticmethod
    def find_web_app(state: dict, value: Any) -> dict | None:
        if isinstance(value, PSObj):
            value = value.properties.get("Url") or value.properties.get("Id")
        if is_guid(value):
            return next((w for w in state["web_apps"] if w["id"] == str(uuid.UUID(str(value)))), None)
        text = str(value)
        if "://" in text:
            key = norm_url(text)
            for wa in state["web_apps"]:
                if any(norm_url(z["url"]) == key for z in wa["zones"].values()):
                    return wa
            return None
        return next((w for w in state["web_apps"] if w["name"].lower() == text.lower()), None)

    @staticmethod
    def find_site(state: dict, value: Any, *, exact: bool = False) -> tuple[dict, dict] | None:
        """The site collection with this id or URL (or, unless ``exact``, the one containing the URL)."""
        if isinstance(value, PSObj):
            value = value.properties.get("Url")
        if is_guid(value):
            wanted = str(uuid.UUID(str(value)))
            for wa in state["web_apps"]:
                for site in wa["sites"]:
                    if site["id"] == wanted:
                        return wa, site
            return None
        key = norm_url(str(value))
        best: tuple[int, tuple[dict, dict]] | None = None
        for wa in state["web_apps"]:
            for site in wa["sites"]:
                site_key = norm_url(site["url"])
                if key == site_key:
                    return wa, site
                if not exact and key.startswith(site_key + "/") and (best is None or len(site_key) > best[0]):
                    best = (len(site_key), (wa, site))
        return best[1] if best else None

    def resolve_web(self, state: dict, value: Any) -> tuple[dict, dict]:
        """``-Site <SPWebPipeBind>``: a URL string or a live SPWeb; a deserialized one is refused."""
        self.refuse_non_live_web(value)
        found = self.find_site(state, value, exact=True)
        if found is None:
            raise TerminatingError(ErrorSpec(T.web_not_found(str(value)), "Microsoft.SharePoint.PowerShell.SPCmdletPipeBindException",
                                             "InvalidData", "Microsoft.SharePoint.PowerShell.SPCmdletPipeBindException"))
        return found

    @staticmethod
    def refuse_non_live_web(value: Any) -> None:
        """``-Site <SPWebPipeBind>`` binds a URL string or a live SPWeb, never a deserialized one."""
        if isinstance(value, DeserializedObject) or isinstance(value, (bytes, bytearray)):
            raise refuse_non_live("Site", value, "Microsoft.SharePoint.PowerShell.SPWebPipeBind")
        if isinstance(value, PSObj) and value.type_names and value.type_names[0] != T.T_WEB[0]:
            raise refuse_non_live("Site", value, "Microsoft.SharePoint.PowerShell.SPWebPipeBind")

    def find_web(self, state: dict, value: Any) -> tuple[dict, dict, dict]:
        """``(web app, site collection, web)`` for a web's URL: a root web (the site collection's
        own entry) or one of its sub-webs."""
        key = norm_url(str(value))
        found = self.find_site(state, value)
        if found is not None:
            wa, site = found
            if norm_url(site["url"]) == key:
                return wa, site, site
            for web in site.get("webs", []):
                if norm_url(web["url"]) == key:
                    return wa, site, web
        raise TerminatingError(ErrorSpec(T.web_not_found(str(value)), "Microsoft.SharePoint.PowerShell.SPCmdletPipeBindException",
                                         "InvalidData", "Microsoft.SharePoint.PowerShell.SPCmdletPipeBindException"))

    @staticmethod
    def find_issuer(state: dict, value: Any) -> dict | None:
        return find_by_identity(state["trusted_issuers"], value)

    def root_authorities(self, state: dict) -> list[dict]:
        local = {"id": state["farm_id"][:-12] + "000000000001", "name": T.LOCAL_ROOT_AUTHORITY,
                 "cert_pem": state["sts"]["root"]["cert_pem"], "metadata_endpoint": None}
        return [local, *state["root_authorities"]]

    def find_root_authority(self, state: dict, value: Any) -> dict | None:
        return find_by_identity(self.root_authorities(state), value)

    @staticmethod
    def find_principal(state: dict, name_identifier: str) -> dict | None:
        """A registered app principal, or one backed by a trusted self-issuer (resolvable without
        registration, as Exchange's site mailbox script relies on)."""
        key = name_identifier.lower()
        hit = next((p for p in state["app_principals"] if p["name_identifier"].lower() == key), None)
        if hit:
            return hit
        issuer = next((i for i in state["trusted_issuers"]
                       if i["is_self_issuer"] and i["registered_issuer_name"].lower() == key), None)
        if issuer:
            return {"name_identifier": issuer["registered_issuer_name"], "display_name": issuer["name"],
                    "web_url": None, "permissions": []}
        return None

    @staticmethod
    def find_proxy(state: dict, value: Any) -> dict | None:
        return find_by_identity(state["proxies"], value)

    # --- changes ------------------------------------------------------------------------------
    def register_app_principal(self, site_value: Any, name_identifier: str, display_name: str) -> tuple[PSObj, bool]:
        """Register an app principal; returns it and whether anything changed. One already
        registered keeps its display name unless :data:`.texts.REGISTER_APP_PRINCIPAL_RENAMES`."""
        with self.store.change() as state:
            _, site = self.resolve_web(state, site_value)
            existing = next((p for p in state["app_principals"]
                             if p["name_identifier"].lower() == name_identifier.lower()), None)
            if existing is None:
                existing = {"name_identifier": name_identifier, "display_name": display_name,
                            "web_url": site["url"], "permissions": []}
                state["app_principals"].append(existing)
                return O.app_principal_obj(existing), True
            if not T.REGISTER_APP_PRINCIPAL_RENAMES or existing["display_name"] == display_name:
                return O.app_principal_obj(existing), False
            existing["display_name"] = display_name
            return O.app_principal_obj(existing), True

    def set_permission(self, principal_id: str, site_value: Any, scope: str, right: str, app_only: bool) -> bool:
        """Grant at ``scope`` on the web ``site_value`` (a root web or a sub-web)."""
        self.refuse_non_live_web(site_value)
        if isinstance(site_value, PSObj):
            site_value = site_value.properties.get("Url")
        with self.store.change() as state:
            _, _, site = self.find_web(state, site_value)
            principal = self.find_principal(state, principal_id)
            if principal is None:
                raise TerminatingError(sp_error("Set-SPAppPrincipalPermission",
                                                T.app_principal_not_registered(principal_id)))
            if principal not in state["app_principals"]:
                state["app_principals"].append(principal)  # a self-issuer gets a record on first grant
            target = "subscription" if scope == "SiteSubscription" else site["url"]
            grant = {"scope": scope, "target": target, "right": right, "app_only": app_only}
            for i, existing in enumerate(principal["permissions"]):
                if existing["scope"] == scope and existing["target"] == target:
                    if existing == grant:
                        return False
                    principal["permissions"][i] = grant
                    return True
            principal["permissions"].append(grant)
            return True

    def fetch_document(self, url: str) -> dict[str, Any]:
        """A JSON document at ``url`` as this server downloads it, or :class:`FetchFailed` with
        .NET's text — from the server's own network: with no outbound access it cannot connect."""
        if self.outbound_blocked():
            log.info("metadata %s: the server has no outbound access (lab fault)", url)
            raise FetchFailed(WEB_CONNECT_FAILED)
        if urlsplit(url).scheme.lower() not in ("http", "https"):
            raise FetchFailed(WEB_CONNECT_FAILED)
        return fetch_json(url, ca_bundle=self.ca_bundle, timeout=self.metadata_timeout, user_agent=USER_AGENT)

    def download(self, cmdlet: str, url: str) -> dict[str, Any]:
        """The partner's metadata document, or the product's failure."""
        with self.store.view() as state:
            over_http_ok = state["sts"]["allow_metadata_over_http"]
        if urlsplit(url).scheme.lower() == "http" and not over_http_ok:
            raise TerminatingError(sp_error(cmdlet, T.METADATA_OVER_HTTP.format(url=url)))
        try:
            return self.fetch_document(url)
        except FetchFailed as exc:
            log.info("%s: metadata %s: %s", cmdlet, url, exc)
            raise TerminatingError(sp_error(cmdlet, str(exc), exception=exc.exception_type, target=url)) from exc

    def download_body(self, url: str) -> bytes:
        """What .NET's WebClient on the farm gets from ``url`` (any body), or :class:`FetchFailed` —
        from the server's own network: with no outbound access it cannot connect."""
        if self.outbound_blocked():
            log.info("download %s: the server has no outbound access (lab fault)", url)
            raise FetchFailed(WEB_CONNECT_FAILED)
        if urlsplit(url).scheme.lower() not in ("http", "https"):
            raise FetchFailed(WEB_CONNECT_FAILED)
        return fetch_body(url, ca_bundle=self.ca_bundle, timeout=self.metadata_timeout, user_agent=USER_AGENT)

    def new_issuer(self, cmdlet: str, *, name: str, certificate: x509.Certificate | None, metadata_url: str | None,
                   registered_issuer_name: str | None, is_trust_broker: bool, description: str) -> PSObj:
        with self.store.view() as state:
            self._check_duplicate_issuer(state, cmdlet, name)
        if metadata_url is not None:
            doc = self.download(cmdlet, metadata_url)
            try:
                certificate = signing_certificates(doc, metadata_url)[0]
                issuer_name = registered_issuer_name or issuer_of(doc, metadata_url)
            except FetchFailed as exc:
                raise TerminatingError(sp_error(cmdlet, str(exc), exception=exc.exception_type)) from exc
        assert certificate is not None
        new_id = str(uuid.uuid4())
        with self.store.change() as state:
            self._check_duplicate_issuer(state, cmdlet, name)
            if metadata_url is None:
                # [U] without -RegisteredIssuerName a certificate issuer is named after its own id.
                issuer_name = registered_issuer_name or f"{new_id}@{state['realm']}"
            entry = {
                "id": new_id, "name": name, "description": description,
                "registered_issuer_name": issuer_name.lower() if "@" in issuer_name else issuer_name,
                "is_self_issuer": not is_trust_broker, "metadata_endpoint": metadata_url,
                "signing_cert_pem": O.pem(certificate),
            }
            state["trusted_issuers"].append(entry)
            return O.issuer_obj(entry)

    def set_issuer(self, cmdlet: str, identity: Any, *, certificate: x509.Certificate | None = None,
                   metadata_url: str | None = None, registered_issuer_name: str | None = None,
                   is_trust_broker: bool | None = None, description: str | None = None) -> None:
        """Change a trusted issuer; ``None`` leaves that part as it is. ``metadata_url`` re-reads the
        partner's metadata (its certificate and issuer name), as the cmdlet does."""
        doc_cert, doc_issuer = None, None
        if metadata_url is not None:
            doc = self.download(cmdlet, metadata_url)
            try:
                doc_cert, doc_issuer = signing_certificates(doc, metadata_url)[0], issuer_of(doc, metadata_url)
            except FetchFailed as exc:
                raise TerminatingError(sp_error(cmdlet, str(exc), exception=exc.exception_type)) from exc
        with self.store.change() as state:
            issuer = self.find_issuer(state, identity)
            if issuer is None:
                raise TerminatingError(sp_error(cmdlet, T.PIPEBIND_NOT_FOUND, category="ObjectNotFound"))
            if certificate is not None:
                issuer["signing_cert_pem"], issuer["metadata_endpoint"] = O.pem(certificate), None
            if metadata_url is not None:
                issuer["signing_cert_pem"], issuer["metadata_endpoint"] = O.pem(doc_cert), metadata_url
                issuer["registered_issuer_name"] = doc_issuer
            if registered_issuer_name is not None:
                issuer["registered_issuer_name"] = registered_issuer_name.lower()
            if is_trust_broker is not None:
                issuer["is_self_issuer"] = not is_trust_broker
            if description is not None:
                issuer["description"] = description

    @staticmethod
    def _check_duplicate_issuer(state: dict, cmdlet: str, name: str) -> None:
        if any(i["name"].lower() == name.lower() for i in state["trusted_issuers"]):
            raise TerminatingError(sp_error(cmdlet, T.duplicate_object(
                T.T_TRUSTED_STS[0], name, T.T_STS_CONFIG[0], T.STS_MANAGER_NAME),
                category="InvalidData", exception="Microsoft.SharePoint.Administration.SPDuplicateObjectException"))

    def new_root_authority(self, cmdlet: str, *, name: str, certificate: x509.Certificate | None,
                           metadata_url: str | None) -> PSObj:
        with self.store.view() as state:
            self._check_duplicate_root(state, cmdlet, name)
        if metadata_url is not None:
            doc = self.download(cmdlet, metadata_url)
            try:
                certificate = signing_certificates(doc, metadata_url)[0]
            except FetchFailed as exc:
                raise TerminatingError(sp_error(cmdlet, str(exc), exception=exc.exception_type)) from exc
        assert certificate is not None
        with self.store.change() as state:
            self._check_duplicate_root(state, cmdlet, name)
            entry = {"id": str(uuid.uuid4()), "name": name, "cert_pem": O.pem(certificate),
                     "metadata_endpoint": metadata_url}
            state["root_authorities"].append(entry)
            return O.root_authority_obj(entry)

    def _check_duplicate_root(self, state: dict, cmdlet: str, name: str) -> None:
        if any(e["name"].lower() == name.lower() for e in self.root_authorities(state)):
            raise TerminatingError(sp_error(cmdlet, T.duplicate_object(
                T.T_ROOT_AUTHORITY[0], name, T.T_ROOT_AUTHORITY_MANAGER, ""),
                exception="Microsoft.SharePoint.Administration.SPDuplicateObjectException"))

