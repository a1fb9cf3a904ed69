"""The SharePoint cmdlets the simulated farm answers, over :class:`~.sharepoint_state.FarmStore`.

Each handler behaves as the product does where the runbooks can tell the difference: parameter
tables (unknown parameters fail binding), objects that must be live (a deserialized object is
refused with PowerShell's binding error), prompting cmdlets that fail without ``-Confirm:$false``,
"not found" as a non-terminating error on Get-, duplicate names, and metadata endpoints that are
really downloaded. The farm operations are plain methods of :class:`FarmOperations` so that the
script templates (:mod:`.sharepoint_templates`) run the same code a cmdlet does.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from cryptography import x509

from . import _sharepoint_texts as T
from . import sharepoint_objects as O
from .sharepoint_fetch import FetchFailed, fetch_json, issuer_of, signing_certificates
from .sharepoint_state import FarmStore
from .winrm.api import (
    CommandTable,
    DeserializedObject,
    ErrorSpec,
    Invocation,
    ParamSpec,
    PSObj,
    TerminatingError,
)

__all__ = ["FarmOperations", "declare_powershell_source", "register_cmdlets"]

log = logging.getLogger(__name__)

P = ParamSpec
MANDATORY = ParamSpec(mandatory=True)
SWITCH = ParamSpec(switch=True)


# --------------------------------------------------------------------------------------------
# Error records

def sp_error(cmdlet: str, message: str, *, category: str = "InvalidData",
             exception: str = "System.InvalidOperationException", target: Any = None) -> ErrorSpec:
    return ErrorSpec(message, T.fqid(T.CMDLET_CLASSES[cmdlet]), category, exception, target)


def binding_error(message: str, error_id: str = "CannotConvertArgumentNoMessage") -> TerminatingError:
    return TerminatingError(ErrorSpec(message, error_id, "InvalidArgument",
                                      "System.Management.Automation.ParameterBindingException"))


def refuse_non_live(param: str, value: Any, to_type: str) -> TerminatingError:
    """The binding error PowerShell gives when a value cannot become the live object ``to_type``."""
    if isinstance(value, DeserializedObject):
        shown = value.to_string or (value.type_names[0].removeprefix("Deserialized.") if value.type_names else "")
        from_type = value.type_names[0] if value.type_names else "System.Management.Automation.PSObject"
        return binding_error(T.cannot_convert_object(param, shown, from_type, to_type))
    if isinstance(value, (bytes, bytearray)):
        return binding_error(T.cannot_convert_object(param, "System.Byte[]", "System.Byte[]", to_type))
    return binding_error(T.cannot_convert_object(param, str(value), type(value).__name__, to_type))


def confirmed(inv: Invocation) -> bool:
    """True when the caller passed ``-Confirm:$false`` (the only way a remote host avoids a prompt)."""
    for key, value in inv.parameters.items():
        if key.lower() == "confirm":
            return value is False
    return False


def require_confirm(inv: Invocation, cmdlet: str, target: str) -> None:
    if cmdlet in T.PROMPTING_CMDLETS and not confirmed(inv):
        raise TerminatingError(ErrorSpec(
            T.confirm_refused(cmdlet, target), "HostFunctionNotImplemented", "NotImplemented",
            "System.Management.Automation.Host.HostException"))


def enum_value(param: str, value: Any, names: tuple[str, ...], enum_type: str) -> str:
    text = str(value)
    for name in names:
        if name.lower() == text.lower():
            return name
    raise binding_error(T.cannot_convert_enum(param, text, enum_type, names))


def _is_guid(value: Any) -> bool:
    if isinstance(value, uuid.UUID):
        return True
    try:
        uuid.UUID(str(value))
        return True
    except ValueError:
        return False


def _find_by_identity(entries: list[dict], value: Any) -> dict | None:
    """What a pipebind resolves: the live object itself, an id (GUID) or a name (case-insensitive)."""
    if isinstance(value, PSObj):
        value = value.properties.get("Id") or value.properties.get("Name")
    if _is_guid(value):
        wanted = str(uuid.UUID(str(value)))
        hit = next((e for e in entries if e["id"] == wanted), None)
        if hit:
            return hit
    return next((e for e in entries if e["name"].lower() == str(value).lower()), None)


def _norm_url(url: str) -> str:
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

    # --- lookups (call inside store.view()/change()) -----------------------------------------
    @staticmethod
    def find_web_app(state: dict, value: Any) -> dict | None:
        if isinstance(value, PSObj):
            value = value.properties.get("Url") or value.properties.get("Id")
        if _is_guid(value):
            return next((w for w in state["web_apps"] if w["id"] == str(uuid.UUID(str(value)))), None)
        text = str(value)
        if "://" in text:
            key = _norm_url(text)
            for wa in state["web_apps"]:
                if any(_norm_url(z["url"]) == key for z in wa["zones"].values()):
                    return wa
            return None
        return next((w for w in state["web_apps"] if w["name"].lower() == text.lower()), None)

    @staticmethod
    def find_site(state: dict, value: Any, *, exact: bool = False) -> tuple[dict, dict] | None:
        """The site collection with this id or URL (or, unless ``exact``, the one containing the URL)."""
        if isinstance(value, PSObj):
            value = value.properties.get("Url")
        if _is_guid(value):
            wanted = str(uuid.UUID(str(value)))
            for wa in state["web_apps"]:
                for site in wa["sites"]:
                    if site["id"] == wanted:
                        return wa, site
            return None
        key = _norm_url(str(value))
        best: tuple[int, tuple[dict, dict]] | None = None
        for wa in state["web_apps"]:
            for site in wa["sites"]:
                site_key = _norm_url(site["url"])
                if key == site_key:
                    return wa, site
                if not exact and key.startswith(site_key + "/") and (best is None or len(site_key) > best[0]):
                    best = (len(site_key), (wa, site))
        return best[1] if best else None

    def resolve_web(self, state: dict, value: Any) -> tuple[dict, dict]:
        """``-Site <SPWebPipeBind>``: a URL string or a live SPWeb; a deserialized one is refused."""
        if isinstance(value, DeserializedObject) or isinstance(value, (bytes, bytearray)):
            raise refuse_non_live("Site", value, "Microsoft.SharePoint.PowerShell.SPWebPipeBind")
        if isinstance(value, PSObj) and value.type_names and value.type_names[0] != T.T_WEB[0]:
            raise refuse_non_live("Site", value, "Microsoft.SharePoint.PowerShell.SPWebPipeBind")
        found = self.find_site(state, value, exact=True)
        if found is None:
            raise TerminatingError(ErrorSpec(T.web_not_found(str(value)), "Microsoft.SharePoint.PowerShell.SPCmdletPipeBindException",
                                             "InvalidData", "Microsoft.SharePoint.PowerShell.SPCmdletPipeBindException"))
        return found

    @staticmethod
    def find_issuer(state: dict, value: Any) -> dict | None:
        return _find_by_identity(state["trusted_issuers"], value)

    def root_authorities(self, state: dict) -> list[dict]:
        local = {"id": state["farm_id"][:-12] + "000000000001", "name": T.LOCAL_ROOT_AUTHORITY,
                 "cert_pem": state["sts"]["root"]["cert_pem"], "metadata_endpoint": None}
        return [local, *state["root_authorities"]]

    def find_root_authority(self, state: dict, value: Any) -> dict | None:
        return _find_by_identity(self.root_authorities(state), value)

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
        return _find_by_identity(state["proxies"], value)

    # --- changes ------------------------------------------------------------------------------
    def register_app_principal(self, site_value: Any, name_identifier: str, display_name: str) -> tuple[PSObj, bool]:
        """Register (or update) an app principal; returns it and whether anything changed."""
        with self.store.change() as state:
            _, site = self.resolve_web(state, site_value)
            existing = next((p for p in state["app_principals"]
                             if p["name_identifier"].lower() == name_identifier.lower()), None)
            if existing is None:
                existing = {"name_identifier": name_identifier, "display_name": display_name,
                            "web_url": site["url"], "permissions": []}
                state["app_principals"].append(existing)
                return O.app_principal_obj(existing), True
            changed = existing["display_name"] != display_name
            existing["display_name"] = display_name
            return O.app_principal_obj(existing), changed

    def set_permission(self, principal_id: str, site_value: Any, scope: str, right: str, app_only: bool) -> bool:
        with self.store.change() as state:
            _, site = self.resolve_web(state, site_value)
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

    def download(self, cmdlet: str, url: str) -> dict[str, Any]:
        """The partner's metadata document, or the product's failure."""
        with self.store.view() as state:
            over_http_ok = state["sts"]["allow_metadata_over_http"]
        scheme = urlsplit(url).scheme.lower()
        if scheme == "http" and not over_http_ok:
            raise TerminatingError(sp_error(cmdlet, T.METADATA_OVER_HTTP.format(url=url)))
        if scheme not in ("http", "https"):
            raise TerminatingError(sp_error(cmdlet, T.WEB_CONNECT_FAILED, exception="System.Net.WebException"))
        try:
            return fetch_json(url, ca_bundle=self.ca_bundle, timeout=self.metadata_timeout)
        except FetchFailed as exc:
            log.info("%s: metadata %s: %s", cmdlet, url, exc)
            raise TerminatingError(sp_error(cmdlet, str(exc), exception=exc.exception_type, target=url)) from exc

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


# --------------------------------------------------------------------------------------------
# The cmdlets

def _certificate_param(param: str, value: Any) -> x509.Certificate:
    """``-Certificate <X509Certificate2>``: only a live certificate (made inside a template) binds."""
    if isinstance(value, PSObj) and value.type_names and value.type_names[0] == T.T_CERTIFICATE[0] \
            and isinstance(value.properties.get("RawData"), (bytes, bytearray)):
        return x509.load_der_x509_certificate(bytes(value.properties["RawData"]))
    raise refuse_non_live(param, value, T.T_CERTIFICATE[0])


def _site_limit(value: Any) -> int | None:
    """``-Limit``: ``All`` (None) or a non-negative number, as Get-SPSite's help describes."""
    text = str(value).strip()
    if text.lower() == "all":
        return None
    if text.isdigit():
        return int(text)
    raise TerminatingError(sp_error("Get-SPSite", f"Cannot convert \"{text}\" to a valid limit: specify a "
                                    "non-negative number or ALL.", category="InvalidArgument",  # [U] text
                                    exception="System.ArgumentException"))


def declare_powershell_source(table: CommandTable, store: FarmStore) -> str:
    """Declare the snap-in (2013–2019) or module (SE) the farm's cmdlets come in; returns its name."""
    with store.view() as state:
        version = state["version"]
    kind, name = T.powershell_source(version)
    if kind == "module":
        table.module(name, version=T.BUILD_VERSIONS[version], description=T.SE_MODULE_DESCRIPTION)
    else:
        table.snapin(name, version=T.BUILD_VERSIONS[version], description=T.SNAPIN_DESCRIPTION)
    return name


def _get_by_identity(inv: Invocation, cmdlet: str, everything: list[dict], find: Callable[[], dict | None],
                     to_object: Callable[[dict], PSObj]) -> None:
    """What the Get-SP* cmdlets do: all objects without -Identity; with it, the one object or the
    pipebind's non-terminating "not found" error."""
    if not inv.has("Identity"):
        for entry in everything:
            inv.write_output(to_object(entry))
        return
    found = find()
    if found is None:
        inv.write_error(sp_error(cmdlet, T.PIPEBIND_NOT_FOUND, category="ObjectNotFound",
                                 target=str(inv.param("Identity"))))
        return
    inv.write_output(to_object(found))


def _certificate_or_metadata(inv: Invocation) -> tuple[Any, str | None]:
    """The two parameter sets of the New-SPTrusted* cmdlets: a live certificate or a metadata endpoint."""
    has_metadata, has_cert = inv.has("MetadataEndPoint"), inv.has("Certificate")
    if has_metadata and has_cert:
        raise binding_error(T.AMBIGUOUS_PARAMETER_SET, "AmbiguousParameterSet")
    if not has_metadata and not has_cert:
        # [U] the certificate set is taken as the default parameter set
        raise TerminatingError(ErrorSpec(T.missing_mandatory(["Certificate"]), "MissingMandatoryParameter",
                                         "InvalidArgument", "System.Management.Automation.ParameterBindingException"))
    cert = _certificate_param("Certificate", inv.param("Certificate")) if has_cert else None
    return cert, (str(inv.param("MetadataEndPoint")) if has_metadata else None)


def register_cmdlets(table: CommandTable, ops: FarmOperations) -> None:  # noqa: C901 - one handler per cmdlet
    """Register the farm's cmdlets, each in the farm's snap-in or module (see ``declare_powershell_source``)."""
    store = ops.store
    source = declare_powershell_source(table, store)

    def cmdlet(name: str, parameters: dict[str, ParamSpec]) -> Callable:
        return table.cmdlet(name, parameters, source=source)

    @cmdlet("Get-SPFarm", {})
    def get_farm(inv: Invocation) -> None:
        with store.view() as state:
            inv.write_output(O.farm_obj(state))

    @cmdlet("Get-SPWebApplication", {"Identity": P(position=0), "IncludeCentralAdministration": SWITCH})
    def get_web_application(inv: Invocation) -> None:
        with store.view() as state:
            if not inv.has("Identity"):
                for wa in state["web_apps"]:
                    inv.write_output(O.web_app_obj(state, wa))
                return
            value = inv.param("Identity")
            if isinstance(value, DeserializedObject):
                raise refuse_non_live("Identity", value, "Microsoft.SharePoint.PowerShell.SPWebApplicationPipeBind")
            wa = ops.find_web_app(state, value)
            if wa is None:
                inv.write_error(sp_error("Get-SPWebApplication", T.web_application_not_found(str(value)),
                                         category="ObjectNotFound", target=str(value)))
                return
            inv.write_output(O.web_app_obj(state, wa))

    @cmdlet("Get-SPAuthenticationProvider", {"Identity": P(position=0), "WebApplication": P(mandatory=True, position=1),
                                             "Zone": P(mandatory=True, position=2)})
    def get_authentication_provider(inv: Invocation) -> None:
        zone = enum_value("Zone", inv.param("Zone"), T.ZONES, T.T_ZONE_ENUM)
        value = inv.param("WebApplication")
        if isinstance(value, DeserializedObject):
            raise refuse_non_live("WebApplication", value, "Microsoft.SharePoint.PowerShell.SPWebApplicationPipeBind")
        with store.view() as state:
            wa = ops.find_web_app(state, value)
            if wa is None:
                raise TerminatingError(sp_error("Get-SPAuthenticationProvider", T.web_application_not_found(str(value))))
            settings = wa["zones"].get(zone)
            if settings is None:
                inv.write_error(sp_error("Get-SPAuthenticationProvider", T.zone_not_found(wa["url"], zone),
                                         category="ObjectNotFound"))
                return
            if settings["authentication"] == "classic":
                return  # a classic-mode web application has no claims providers
            provider = O.windows_provider_obj(settings)
            if inv.has("Identity") and str(inv.param("Identity")).lower() not in ("windows", "ntlm", "windows authentication"):
                inv.write_error(sp_error("Get-SPAuthenticationProvider", T.PIPEBIND_NOT_FOUND, category="ObjectNotFound"))
                return
            inv.write_output(provider)

    @cmdlet("Get-SPSite", {"Identity": P(position=0), "WebApplication": P(), "Limit": P(), "Filter": P(),
                           "Regex": SWITCH, "CompatibilityLevel": P()})
    def get_site(inv: Invocation) -> None:
        with store.view() as state:
            if inv.has("Identity"):
                value = inv.param("Identity")
                if isinstance(value, DeserializedObject):
                    raise refuse_non_live("Identity", value, "Microsoft.SharePoint.PowerShell.SPSitePipeBind")
                found = ops.find_site(state, value)
                if found is None:
                    inv.write_error(sp_error("Get-SPSite", T.site_not_found(str(value)), category="InvalidData",
                                             exception="Microsoft.SharePoint.PowerShell.SPCmdletPipeBindException",
                                             target=str(value)))
                    return
                inv.write_output(O.site_obj(*found))
                return
            limit = _site_limit(inv.param("Limit")) if inv.has("Limit") else T.SITE_LIMIT_DEFAULT
            apps = state["web_apps"]
            if inv.has("WebApplication"):
                wa = ops.find_web_app(state, inv.param("WebApplication"))
                apps = [wa] if wa else []
            sites = [(wa, site) for wa in apps for site in wa["sites"]]
            for wa, site in sites if limit is None else sites[:limit]:
                inv.write_output(O.site_obj(wa, site))

    @cmdlet("Get-SPSecurityTokenServiceConfig", {})
    def get_sts_config(inv: Invocation) -> None:
        with store.view() as state:
            inv.write_output(O.sts_config_obj(state))

    @cmdlet("Get-SPAuthenticationRealm", {"ServiceContext": P(position=0)})
    def get_realm(inv: Invocation) -> None:
        with store.view() as state:
            inv.write_output(state["realm"])

    @cmdlet("Set-SPAuthenticationRealm", {"Realm": P(position=0), "ServiceContext": P()})
    def set_realm(inv: Invocation) -> None:
        realm = inv.param("Realm")
        if realm is None or not str(realm).strip():
            raise TerminatingError(ErrorSpec(T.missing_mandatory(["Realm"]), "MissingMandatoryParameter",
                                             "InvalidArgument", "System.Management.Automation.ParameterBindingException"))
        with store.change() as state:
            state["realm"] = str(realm).strip().lower()  # SharePoint keeps realms in lower case

    @cmdlet("Register-SPAppPrincipal", {"Site": MANDATORY, "NameIdentifier": MANDATORY, "DisplayName": MANDATORY})
    def register_app_principal(inv: Invocation) -> None:
        principal, _ = ops.register_app_principal(inv.param("Site"), str(inv.param("NameIdentifier")),
                                                  str(inv.param("DisplayName")))
        inv.write_output(principal)

    @cmdlet("Get-SPAppPrincipal", {"Site": MANDATORY, "NameIdentifier": MANDATORY})
    def get_app_principal(inv: Invocation) -> None:
        with store.view() as state:
            ops.resolve_web(state, inv.param("Site"))
            principal = ops.find_principal(state, str(inv.param("NameIdentifier")))
            if principal is not None:  # [U] an unknown NameIdentifier returns nothing
                inv.write_output(O.app_principal_obj(principal))

    @cmdlet("Set-SPAppPrincipalPermission", {"AppPrincipal": P(), "Site": MANDATORY, "Scope": MANDATORY,
                                             "Right": MANDATORY, "EnableAppOnlyPolicy": SWITCH})
    def set_app_principal_permission(inv: Invocation) -> None:
        # -AppPrincipal also binds from the pipeline (ByValue), where the object is still live.
        value = inv.param("AppPrincipal") if inv.has("AppPrincipal") else next(iter(inv.input), None)
        if value is None:
            raise TerminatingError(ErrorSpec(T.missing_mandatory(["AppPrincipal"]), "MissingMandatoryParameter",
                                             "InvalidArgument", "System.Management.Automation.ParameterBindingException"))
        if not (isinstance(value, PSObj) and value.type_names and value.type_names[0] == T.T_APP_PRINCIPAL[0]):
            raise refuse_non_live("AppPrincipal", value, T.T_APP_PRINCIPAL[0])
        scope = enum_value("Scope", inv.param("Scope"), T.PERMISSION_SCOPES, T.T_SCOPE_ENUM)
        right = enum_value("Right", inv.param("Right"), T.PERMISSION_RIGHTS, T.T_RIGHT_ENUM)
        ops.set_permission(value.properties["NameIdentifier"], inv.param("Site"), scope, right,
                           bool(inv.param("EnableAppOnlyPolicy", False)))

    @cmdlet("Get-SPServiceApplicationProxy", {"Identity": P(position=0)})
    def get_proxy(inv: Invocation) -> None:
        with store.view() as state:
            _get_by_identity(inv, "Get-SPServiceApplicationProxy", state["proxies"],
                             lambda: ops.find_proxy(state, inv.param("Identity")), O.proxy_obj)

    @cmdlet("Remove-SPServiceApplicationProxy", {"Identity": P(mandatory=True, position=0), "RemoveData": SWITCH})
    def remove_proxy(inv: Invocation) -> None:
        with store.change() as state:
            proxy = ops.find_proxy(state, inv.param("Identity"))
            if proxy is None:
                raise TerminatingError(sp_error("Remove-SPServiceApplicationProxy", T.PIPEBIND_NOT_FOUND))
            require_confirm(inv, "Remove-SPServiceApplicationProxy", proxy["name"])
            state["proxies"].remove(proxy)

    @cmdlet("Get-SPServiceApplicationProxyGroup", {"Identity": P(position=0), "Default": SWITCH})
    def get_proxy_group(inv: Invocation) -> None:
        with store.view() as state:
            if inv.has("Identity") and str(inv.param("Identity")) not in ("", state["proxy_group_id"],
                                                                         T.DEFAULT_PROXY_GROUP_FRIENDLY_NAME):
                inv.write_error(sp_error("Get-SPServiceApplicationProxyGroup", T.PIPEBIND_NOT_FOUND,
                                         category="ObjectNotFound"))
                return
            inv.write_output(O.proxy_group_obj(state))  # the lab farm has only the default group

    @cmdlet("Add-SPServiceApplicationProxyGroupMember", {"Identity": P(mandatory=True, position=0), "Member": MANDATORY})
    def add_proxy_group_member(inv: Invocation) -> None:
        members = inv.param("Member")
        with store.change() as state:
            for member in members if isinstance(members, list) else [members]:
                proxy = ops.find_proxy(state, member)
                if proxy is None:
                    raise TerminatingError(sp_error("Add-SPServiceApplicationProxyGroupMember", T.PIPEBIND_NOT_FOUND))
                proxy["in_default_group"] = True

    @cmdlet("New-SPAzureAccessControlServiceApplicationProxy",
            {"Name": MANDATORY, "MetadataServiceEndpointUri": MANDATORY, "DefaultProxyGroup": SWITCH})
    def new_acs_proxy(inv: Invocation) -> None:
        name = str(inv.param("Name"))
        with store.change() as state:
            if any(p["name"].lower() == name.lower() for p in state["proxies"]):
                raise TerminatingError(sp_error("New-SPAzureAccessControlServiceApplicationProxy", T.duplicate_object(
                    T.T_ACS_PROXY[0], name, T.T_FARM[0], T.CONFIG_DB_NAME),  # [U] parent
                    exception="Microsoft.SharePoint.Administration.SPDuplicateObjectException"))
            proxy = {"id": str(uuid.uuid4()), "name": name, "type": T.T_ACS_PROXY[0], "type_name": T.ACS_PROXY_TYPE_NAME,
                     "metadata_endpoint_uri": str(inv.param("MetadataServiceEndpointUri")),
                     "in_default_group": bool(inv.param("DefaultProxyGroup", False))}
            state["proxies"].append(proxy)
            inv.write_output(O.proxy_obj(proxy))

    issuer_params = {"Name": P(mandatory=True, position=0), "MetadataEndPoint": P(), "Certificate": P(),
                     "RegisteredIssuerName": P(), "IsTrustBroker": SWITCH, "Description": P()}

    @cmdlet("New-SPTrustedSecurityTokenIssuer", issuer_params)
    def new_issuer(inv: Invocation) -> None:
        cert, metadata_url = _certificate_or_metadata(inv)
        inv.write_output(ops.new_issuer(
            "New-SPTrustedSecurityTokenIssuer", name=str(inv.param("Name")), certificate=cert,
            metadata_url=metadata_url,
            registered_issuer_name=inv.param("RegisteredIssuerName"),
            is_trust_broker=bool(inv.param("IsTrustBroker", False)), description=str(inv.param("Description", "") or "")))

    @cmdlet("Get-SPTrustedSecurityTokenIssuer", {"Identity": P(position=0)})
    def get_issuer(inv: Invocation) -> None:
        with store.view() as state:
            _get_by_identity(inv, "Get-SPTrustedSecurityTokenIssuer", state["trusted_issuers"],
                             lambda: ops.find_issuer(state, inv.param("Identity")), O.issuer_obj)

    @cmdlet("Set-SPTrustedSecurityTokenIssuer", {
        "Identity": P(mandatory=True, position=0), "MetadataEndPoint": P(), "Certificate": P(),
        "RegisteredIssuerName": P(), "IsTrustBroker": SWITCH, "Description": P()})
    def set_issuer(inv: Invocation) -> None:
        has_metadata, has_cert = inv.has("MetadataEndPoint"), inv.has("Certificate")
        if has_metadata and has_cert:
            raise binding_error(T.AMBIGUOUS_PARAMETER_SET, "AmbiguousParameterSet")
        if not has_metadata and not has_cert and T.SET_ISSUER_WITHOUT_PARAMETER_SET is not None:
            # Only parameters both sets share: PowerShell cannot pick one (see the texts).
            raise binding_error(T.SET_ISSUER_WITHOUT_PARAMETER_SET, "AmbiguousParameterSet")
        if inv.has("IsTrustBroker"):
            trust_broker: bool | None = bool(inv.param("IsTrustBroker"))
        else:
            trust_broker = False if T.SET_ISSUER_OMITTED_TRUST_BROKER_RESETS else None
        ops.set_issuer(
            "Set-SPTrustedSecurityTokenIssuer", inv.param("Identity"),
            certificate=_certificate_param("Certificate", inv.param("Certificate")) if has_cert else None,
            metadata_url=str(inv.param("MetadataEndPoint")) if has_metadata else None,
            registered_issuer_name=str(inv.param("RegisteredIssuerName")) if inv.has("RegisteredIssuerName") else None,
            is_trust_broker=trust_broker,
            description=str(inv.param("Description") or "") if inv.has("Description") else None)

    @cmdlet("Remove-SPTrustedSecurityTokenIssuer", {"Identity": P(mandatory=True, position=0)})
    def remove_issuer(inv: Invocation) -> None:
        cmd = "Remove-SPTrustedSecurityTokenIssuer"
        with store.change() as state:
            issuer = ops.find_issuer(state, inv.param("Identity"))
            if issuer is None:
                raise TerminatingError(sp_error(cmd, T.PIPEBIND_NOT_FOUND, category="ObjectNotFound"))
            require_confirm(inv, cmd, issuer["name"])
            state["trusted_issuers"].remove(issuer)

    @cmdlet("New-SPTrustedRootAuthority", {"Name": P(mandatory=True, position=0), "Certificate": P(),
                                           "MetadataEndPoint": P()})
    def new_root(inv: Invocation) -> None:
        cert, metadata_url = _certificate_or_metadata(inv)
        inv.write_output(ops.new_root_authority(
            "New-SPTrustedRootAuthority", name=str(inv.param("Name")), certificate=cert, metadata_url=metadata_url))

    @cmdlet("Get-SPTrustedRootAuthority", {"Identity": P(position=0)})
    def get_root(inv: Invocation) -> None:
        with store.view() as state:
            _get_by_identity(inv, "Get-SPTrustedRootAuthority", ops.root_authorities(state),
                             lambda: ops.find_root_authority(state, inv.param("Identity")), O.root_authority_obj)

    @cmdlet("Remove-SPTrustedRootAuthority", {"Identity": P(mandatory=True, position=0)})
    def remove_root(inv: Invocation) -> None:
        cmd = "Remove-SPTrustedRootAuthority"
        with store.change() as state:
            entry = ops.find_root_authority(state, inv.param("Identity"))
            if entry is None:
                raise TerminatingError(sp_error(cmd, T.PIPEBIND_NOT_FOUND, category="ObjectNotFound"))
            if entry["name"] == T.LOCAL_ROOT_AUTHORITY:
                raise TerminatingError(sp_error(cmd, T.local_root_not_removable()))
            require_confirm(inv, cmd, entry["name"])
            state["root_authorities"] = [e for e in state["root_authorities"] if e["id"] != entry["id"]]
