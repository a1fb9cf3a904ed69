"""The SharePoint cmdlets the simulated farm answers: one module-level handler per cmdlet.

A handler takes the farm's :class:`~.operations.FarmOperations` and the bound invocation; the
table :data:`CMDLETS` lists them (their parameters are the real cmdlets', from the table of cmdlet
signatures), and :func:`register_cmdlets` puts them in a
:class:`~runbooklib.lab.winrm.api.CommandTable` inside the farm's snap-in or module. Each handler
behaves as the product does where the runbooks can tell the difference: unknown parameters fail
binding, objects that must be live refuse a deserialized one, prompting cmdlets fail without
``-Confirm:$false``, "not found" is a non-terminating error on Get- (PowerShell's part of this is
:mod:`runbooklib.lab.powershell`), duplicate names, and metadata endpoints that are really
downloaded.
"""

from __future__ import annotations

import functools
import uuid
from typing import Any, Callable, NamedTuple

from cryptography import x509

from ..powershell import (
    ambiguous_parameter_set,
    enum_value,
    find_by_identity,
    get_by_identity,
    missing_mandatory,
    refuse_non_live,
    signature_cmdlet,
)
from ..winrm.api import (
    CommandTable,
    DeserializedObject,
    ErrorSpec,
    Invocation,
    PSObj,
    TerminatingError,
)
from . import objects as O
from . import texts as T
from .access import needs_farm, warn_if_farm_unreachable
from .operations import FarmOperations, confirm_if_prompting, sp_error
from .state import FarmStore, pair_workflow

__all__ = ["CMDLETS", "Cmdlet", "declare_powershell_source", "register_cmdlets"]

class Cmdlet(NamedTuple):
    """One row of the farm's cmdlet table: its parameters are the real cmdlet's (see :data:`CMDLETS`)."""

    name: str
    handler: Callable[[FarmOperations, Invocation], None]


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
        table.module(name, version=T.BUILD_VERSIONS[version], description=T.SE_MODULE_DESCRIPTION,
                     on_load=warn_if_farm_unreachable)
    else:
        table.snapin(name, version=T.BUILD_VERSIONS[version], description=T.SNAPIN_DESCRIPTION,
                     on_load=warn_if_farm_unreachable)
    return name


def _get_by_identity(inv: Invocation, cmdlet: str, everything: list[dict], find: Callable[[], dict | None],
                     to_object: Callable[[dict], PSObj]) -> None:
    """A Get-SP* cmdlet: PowerShell's get-by-identity with the pipebind's "not found" error."""
    get_by_identity(inv, everything, find, to_object,
                    lambda identity: sp_error(cmdlet, T.PIPEBIND_NOT_FOUND, category="ObjectNotFound", target=identity))


def _certificate_or_metadata(inv: Invocation) -> tuple[Any, str | None]:
    """The two parameter sets of the New-SPTrusted* cmdlets: a live certificate or a metadata endpoint."""
    has_metadata, has_cert = inv.has("MetadataEndPoint"), inv.has("Certificate")
    if has_metadata and has_cert:
        raise ambiguous_parameter_set()
    if not has_metadata and not has_cert:
        # [U] the certificate set is taken as the default parameter set
        raise missing_mandatory(["Certificate"])
    cert = _certificate_param("Certificate", inv.param("Certificate")) if has_cert else None
    return cert, (str(inv.param("MetadataEndPoint")) if has_metadata else None)



def get_farm(ops: FarmOperations, inv: Invocation) -> None:
    with ops.store.view() as state:
        inv.write_output(O.farm_obj(state))


def get_web_application(ops: FarmOperations, inv: Invocation) -> None:
    with ops.store.view() as state:
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
        if not wa.get("readable", True):
            inv.write_error(sp_error("Get-SPWebApplication", T.ACCESS_IS_DENIED, category="PermissionDenied",
                                     exception=T.ACCESS_DENIED_EXCEPTION, target=str(value)))
            return
        inv.write_output(O.web_app_obj(state, wa))


def get_authentication_provider(ops: FarmOperations, inv: Invocation) -> None:
    zone = enum_value("Zone", inv.param("Zone"), T.ZONES, T.T_ZONE_ENUM)
    value = inv.param("WebApplication")
    if isinstance(value, DeserializedObject):
        raise refuse_non_live("WebApplication", value, "Microsoft.SharePoint.PowerShell.SPWebApplicationPipeBind")
    with ops.store.view() as state:
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


def get_site(ops: FarmOperations, inv: Invocation) -> None:
    with ops.store.view() as state:
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


def get_sts_config(ops: FarmOperations, inv: Invocation) -> None:
    with ops.store.view() as state:
        inv.write_output(O.sts_config_obj(state))


def get_realm(ops: FarmOperations, inv: Invocation) -> None:
    with ops.store.view() as state:
        inv.write_output(state["realm"])


def set_realm(ops: FarmOperations, inv: Invocation) -> None:
    realm = inv.param("Realm")
    if realm is None or not str(realm).strip():
        raise missing_mandatory(["Realm"])
    with ops.store.change() as state:
        state["realm"] = str(realm).strip().lower()  # SharePoint keeps realms in lower case


def register_app_principal(ops: FarmOperations, inv: Invocation) -> None:
    principal, _ = ops.register_app_principal(inv.param("Site"), str(inv.param("NameIdentifier")),
                                              str(inv.param("DisplayName")))
    inv.write_output(principal)


def get_app_principal(ops: FarmOperations, inv: Invocation) -> None:
    with ops.store.view() as state:
        ops.resolve_web(state, inv.param("Site"))
        name_identifier = str(inv.param("NameIdentifier"))
        principal = ops.find_principal(state, name_identifier)
        if principal is not None:
            inv.write_output(O.app_principal_obj(principal))
        elif T.GET_APP_PRINCIPAL_UNKNOWN_WRITES_ERROR:
            inv.write_error(sp_error("Get-SPAppPrincipal", T.app_principal_not_registered(name_identifier),
                                     category="ObjectNotFound", target=name_identifier))


def set_app_principal_permission(ops: FarmOperations, inv: Invocation) -> None:
    # -AppPrincipal also binds from the pipeline (ByValue), where the object is still live.
    value = inv.param("AppPrincipal") if inv.has("AppPrincipal") else next(iter(inv.input), None)
    if value is None:
        raise missing_mandatory(["AppPrincipal"])
    if not (isinstance(value, PSObj) and value.type_names and value.type_names[0] == T.T_APP_PRINCIPAL[0]):
        raise refuse_non_live("AppPrincipal", value, T.T_APP_PRINCIPAL[0])
    scope = enum_value("Scope", inv.param("Scope"), T.PERMISSION_SCOPES, T.T_SCOPE_ENUM)
    right = enum_value("Right", inv.param("Right"), T.PERMISSION_RIGHTS, T.T_RIGHT_ENUM)
    ops.set_permission(value.properties["NameIdentifier"], inv.param("Site"), scope, right,
                       bool(inv.param("EnableAppOnlyPolicy", False)))


def get_service_application(ops: FarmOperations, inv: Invocation) -> None:
    with ops.store.view() as state:
        applications = [dict(a) for a in state["service_applications"]]
    _get_by_identity(inv, "Get-SPServiceApplication", applications,
                     lambda: find_by_identity(applications, inv.param("Identity")), O.service_application_obj)


def register_workflow_service(ops: FarmOperations, inv: Invocation) -> None:
    cmd = "Register-SPWorkflowService"
    host_uri = str(inv.param("WorkflowHostUri"))
    site_value = inv.param("SPSite")
    if isinstance(site_value, DeserializedObject):
        raise refuse_non_live("SPSite", site_value, "Microsoft.SharePoint.PowerShell.SPSitePipeBind")

    def fail(message: str, category: str = "InvalidData") -> TerminatingError:
        return TerminatingError(ErrorSpec(message, f"{T.WORKFLOW_FQID_PREFIX}.{T.CMDLET_CLASSES[cmd]}", category,
                                          "System.InvalidOperationException", host_uri))

    if host_uri.lower().startswith("http://") and not inv.param("AllowOAuthHttp", False):
        raise fail(T.workflow_http_without_allow(host_uri))
    with ops.store.change() as state:
        found = ops.find_site(state, site_value, exact=True)
        if found is None:
            raise TerminatingError(sp_error("Get-SPSite", T.site_not_found(str(site_value)),
                                            exception="Microsoft.SharePoint.PowerShell.SPCmdletPipeBindException"))
        if state.get("workflow") and not inv.param("Force", False):
            raise fail(T.workflow_already_registered(state["workflow"]["host_uri"]))
        pair_workflow(state, host_uri, found[1]["url"])  # under the farm's realm as it is now


def get_proxy(ops: FarmOperations, inv: Invocation) -> None:
    with ops.store.view() as state:
        _get_by_identity(inv, "Get-SPServiceApplicationProxy", state["proxies"],
                         lambda: ops.find_proxy(state, inv.param("Identity")), O.proxy_obj)


def remove_proxy(ops: FarmOperations, inv: Invocation) -> None:
    with ops.store.change() as state:
        proxy = ops.find_proxy(state, inv.param("Identity"))
        if proxy is None:
            raise TerminatingError(sp_error("Remove-SPServiceApplicationProxy", T.PIPEBIND_NOT_FOUND))
        confirm_if_prompting(inv, "Remove-SPServiceApplicationProxy", proxy["name"])
        state["proxies"].remove(proxy)


def get_proxy_group(ops: FarmOperations, inv: Invocation) -> None:
    with ops.store.view() as state:
        if inv.has("Identity") and str(inv.param("Identity")) not in ("", state["proxy_group_id"],
                                                                     T.DEFAULT_PROXY_GROUP_FRIENDLY_NAME):
            inv.write_error(sp_error("Get-SPServiceApplicationProxyGroup", T.PIPEBIND_NOT_FOUND,
                                     category="ObjectNotFound"))
            return
        inv.write_output(O.proxy_group_obj(state))  # the lab farm has only the default group


def add_proxy_group_member(ops: FarmOperations, inv: Invocation) -> None:
    members = inv.param("Member")
    with ops.store.change() as state:
        for member in members if isinstance(members, list) else [members]:
            proxy = ops.find_proxy(state, member)
            if proxy is None:
                raise TerminatingError(sp_error("Add-SPServiceApplicationProxyGroupMember", T.PIPEBIND_NOT_FOUND))
            proxy["in_default_group"] = True


def new_acs_proxy(ops: FarmOperations, inv: Invocation) -> None:
    name = str(inv.param("Name"))
    with ops.store.change() as state:
        if any(p["name"].lower() == name.lower() for p in state["proxies"]):
            raise TerminatingError(sp_error("New-SPAzureAccessControlServiceApplicationProxy", T.duplicate_object(
                T.T_ACS_PROXY[0], name, T.T_FARM[0], T.CONFIG_DB_NAME),  # [U] parent
                exception="Microsoft.SharePoint.Administration.SPDuplicateObjectException"))
        proxy = {"id": str(uuid.uuid4()), "name": name, "type": T.T_ACS_PROXY[0], "type_name": T.ACS_PROXY_TYPE_NAME,
                 "metadata_endpoint_uri": str(inv.param("MetadataServiceEndpointUri")),
                 "in_default_group": bool(inv.param("DefaultProxyGroup", False))}
        state["proxies"].append(proxy)
        inv.write_output(O.proxy_obj(proxy))


def new_issuer(ops: FarmOperations, inv: Invocation) -> None:
    cert, metadata_url = _certificate_or_metadata(inv)
    inv.write_output(ops.new_issuer(
        "New-SPTrustedSecurityTokenIssuer", name=str(inv.param("Name")), certificate=cert,
        metadata_url=metadata_url,
        registered_issuer_name=inv.param("RegisteredIssuerName"),
        is_trust_broker=bool(inv.param("IsTrustBroker", False)), description=str(inv.param("Description", "") or "")))


def get_issuer(ops: FarmOperations, inv: Invocation) -> None:
    with ops.store.view() as state:
        _get_by_identity(inv, "Get-SPTrustedSecurityTokenIssuer", state["trusted_issuers"],
                         lambda: ops.find_issuer(state, inv.param("Identity")), O.issuer_obj)


def set_issuer(ops: FarmOperations, inv: Invocation) -> None:
    has_metadata, has_cert = inv.has("MetadataEndPoint"), inv.has("Certificate")
    if has_metadata and has_cert:
        raise ambiguous_parameter_set()
    if not has_metadata and not has_cert and T.SET_ISSUER_WITHOUT_PARAMETER_SET is not None:
        # Only parameters both sets share: PowerShell cannot pick one (see the texts).
        raise ambiguous_parameter_set(T.SET_ISSUER_WITHOUT_PARAMETER_SET)
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


def remove_issuer(ops: FarmOperations, inv: Invocation) -> None:
    cmd = "Remove-SPTrustedSecurityTokenIssuer"
    with ops.store.change() as state:
        issuer = ops.find_issuer(state, inv.param("Identity"))
        if issuer is None:
            raise TerminatingError(sp_error(cmd, T.PIPEBIND_NOT_FOUND, category="ObjectNotFound"))
        confirm_if_prompting(inv, cmd, issuer["name"])
        state["trusted_issuers"].remove(issuer)


def new_root(ops: FarmOperations, inv: Invocation) -> None:
    cert, metadata_url = _certificate_or_metadata(inv)
    inv.write_output(ops.new_root_authority(
        "New-SPTrustedRootAuthority", name=str(inv.param("Name")), certificate=cert, metadata_url=metadata_url))


def get_root(ops: FarmOperations, inv: Invocation) -> None:
    with ops.store.view() as state:
        _get_by_identity(inv, "Get-SPTrustedRootAuthority", ops.root_authorities(state),
                         lambda: ops.find_root_authority(state, inv.param("Identity")), O.root_authority_obj)


def remove_root(ops: FarmOperations, inv: Invocation) -> None:
    cmd = "Remove-SPTrustedRootAuthority"
    with ops.store.change() as state:
        entry = ops.find_root_authority(state, inv.param("Identity"))
        if entry is None:
            raise TerminatingError(sp_error(cmd, T.PIPEBIND_NOT_FOUND, category="ObjectNotFound"))
        if entry["name"] == T.LOCAL_ROOT_AUTHORITY:
            raise TerminatingError(sp_error(cmd, T.local_root_not_removable()))
        confirm_if_prompting(inv, cmd, entry["name"])
        state["root_authorities"] = [e for e in state["root_authorities"] if e["id"] != entry["id"]]


# Each cmdlet's parameters and parameter sets come from the table of real cmdlet signatures
# (runbooklib/signatures/sharepoint.yaml): the lab binds what the product binds.
CMDLETS: tuple[Cmdlet, ...] = (
    Cmdlet("Get-SPFarm", get_farm),
    Cmdlet("Get-SPWebApplication", get_web_application),
    Cmdlet("Get-SPAuthenticationProvider", get_authentication_provider),
    Cmdlet("Get-SPSite", get_site),
    Cmdlet("Get-SPSecurityTokenServiceConfig", get_sts_config),
    Cmdlet("Get-SPAuthenticationRealm", get_realm),
    Cmdlet("Set-SPAuthenticationRealm", set_realm),
    Cmdlet("Register-SPAppPrincipal", register_app_principal),
    Cmdlet("Get-SPAppPrincipal", get_app_principal),
    Cmdlet("Set-SPAppPrincipalPermission", set_app_principal_permission),
    Cmdlet("Register-SPWorkflowService", register_workflow_service),
    Cmdlet("Get-SPServiceApplication", get_service_application),
    Cmdlet("Get-SPServiceApplicationProxy", get_proxy),
    Cmdlet("Remove-SPServiceApplicationProxy", remove_proxy),
    Cmdlet("Get-SPServiceApplicationProxyGroup", get_proxy_group),
    Cmdlet("Add-SPServiceApplicationProxyGroupMember", add_proxy_group_member),
    Cmdlet("New-SPAzureAccessControlServiceApplicationProxy", new_acs_proxy),
    Cmdlet("New-SPTrustedSecurityTokenIssuer", new_issuer),
    Cmdlet("Get-SPTrustedSecurityTokenIssuer", get_issuer),
    Cmdlet("Set-SPTrustedSecurityTokenIssuer", set_issuer),
    Cmdlet("Remove-SPTrustedSecurityTokenIssuer", remove_issuer),
    Cmdlet("New-SPTrustedRootAuthority", new_root),
    Cmdlet("Get-SPTrustedRootAuthority", get_root),
    Cmdlet("Remove-SPTrustedRootAuthority", remove_root),
)


def register_cmdlets(table: CommandTable, ops: FarmOperations) -> None:
    """Register :data:`CMDLETS` over ``ops``, each in the farm's snap-in or module and each failing
    where the runspace cannot reach the farm (:mod:`.access`)."""
    source = declare_powershell_source(table, ops.store)
    for row in CMDLETS:
        handler = needs_farm(row.name, functools.partial(row.handler, ops))
        signature_cmdlet(table, row.name, source=source)(handler)
