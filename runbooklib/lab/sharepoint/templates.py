"""Lab handlers for the SharePoint script templates (``runbooklib/templates/sharepoint/*.ps1``).

Each handler is a module-level function of the farm's :class:`~.operations.FarmOperations` and
the bound invocation; it does, on the farm's state, what its template's PowerShell does on a
real farm — through the same operations the cmdlets use, so a template and the cmdlets it calls
cannot disagree. :data:`TEMPLATES` maps each template to its handler. Where the PowerShell would
throw, the handler ends the pipeline with the record ``throw`` produces (``RuntimeException``).

Every template but those of :data:`PLAIN_POWERSHELL_TEMPLATES` (the loader, the metadata download)
is registered in the farm's snap-in or module: in a runspace where that is not loaded, the endpoint
fails it at the first SharePoint cmdlet its script calls, as a real farm would. The load template is
what loads it. In a runspace that cannot reach the farm (the double hop, :mod:`.access`) the load
template loads with the snap-in's warning and every other farm template fails at its first farm cmdlet.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from cryptography import x509

from ..metadata_download import FetchFailed
from ..powershell import not_empty, throw, validate_set
from ..s2s.oracle import split_name
from ..winrm.api import (
    CommandTable,
    ErrorSpec,
    Invocation,
    ParamSpec,
    PSObj,
    TerminatingError,
    load_source,
    source_loaded,
)
from . import objects as O
from . import texts as T
from .access import cannot_access_farm, farm_reachable, template_needs_farm
from .operations import FarmOperations, norm_url, sp_error

__all__ = ["LOAD_TEMPLATE", "PLAIN_POWERSHELL_TEMPLATES", "TEMPLATES", "TEMPLATE_PARAMETERS", "register_templates"]

LOAD_TEMPLATE = "sharepoint/load-sharepoint-powershell"
# Templates that call no SharePoint cmdlet, so they run whether or not the snap-in is loaded: the
# loader, and the metadata download (.NET's WebClient only).
PLAIN_POWERSHELL_TEMPLATES = frozenset({LOAD_TEMPLATE, "sharepoint/get-partner-metadata"})

M = ParamSpec(mandatory=True)
S = ParamSpec(switch=True)
O_ = ParamSpec()

# Template name → its param() block; a test checks these against the .ps1 files.
TEMPLATE_PARAMETERS: dict[str, dict[str, ParamSpec]] = {
    "sharepoint/load-sharepoint-powershell": {},
    "sharepoint/get-sts-certificate": {},
    "sharepoint/set-oauth-over-http": {"Enabled": M},
    "sharepoint/register-app-principal": {"Site": M, "NameIdentifier": M, "DisplayName": M},
    "sharepoint/set-app-principal-permission": {"Site": M, "NameIdentifier": M, "Scope": M, "Right": M,
                                                "EnableAppOnlyPolicy": S, "Web": O_},
    "sharepoint/get-app-principal-permission": {"Site": M, "NameIdentifier": M, "Web": O_},
    "sharepoint/get-all-site-app-principals": {},
    "sharepoint/get-proxy-group-membership": {},
    "sharepoint/new-trusted-issuer-from-certificate": {"Name": M, "CertificateRawData": M,
                                                       "RegisteredIssuerName": M, "IsTrustBroker": S,
                                                       "Description": O_},
    "sharepoint/new-trusted-root-authority-from-certificate": {"Name": M, "CertificateRawData": M},
    "sharepoint/get-trusted-issuers": {"Name": O_},
    "sharepoint/get-trusted-root-authorities": {},
    "sharepoint/move-issuer-to-realm": {"Name": M, "Realm": M},
    "sharepoint/get-partner-metadata": {"Url": M},
    "sharepoint/get-workflow-service": {"Site": M},
}


def _site_not_found(value: Any) -> TerminatingError:
    # Get-SPSite under $ErrorActionPreference = 'Stop': its non-terminating error becomes terminating.
    return TerminatingError(sp_error("Get-SPSite", T.site_not_found(str(value)),
                                     exception="Microsoft.SharePoint.PowerShell.SPCmdletPipeBindException"))


def _certificate_from_bytes(value: Any) -> x509.Certificate:
    if not isinstance(value, (bytes, bytearray)):
        raise throw(f'Cannot convert value "{value}" to type "System.Byte[]".')
    data = bytes(value)
    try:
        return x509.load_der_x509_certificate(data)
    except ValueError:
        try:
            return x509.load_pem_x509_certificate(data)
        except ValueError:
            # X509Certificate2's constructor on bytes that are not a certificate
            raise TerminatingError(ErrorSpec(
                'Exception calling ".ctor" with "1" argument(s): "Cannot find the requested object.\r\n"',
                "ConstructorInvokedThrowException", "InvalidOperation",
                "System.Management.Automation.MethodInvocationException")) from None


def _site_app_principals(state: dict, site: dict) -> list[dict]:
    """What ``$rootWeb.GetSiteAppPrincipals()`` lists for a site collection [U]: principals registered
    on it or granted on it or on one of its webs, and those granted at the SiteSubscription scope."""
    targets = {site["url"], "subscription", *(w["url"] for w in site.get("webs", []))}
    return [p for p in state["app_principals"]
            if p.get("web_url") == site["url"] or any(g["target"] in targets for g in p["permissions"])]


def _scan_row(principal: dict) -> dict[str, Any]:
    """One principal as the scan template lists it (its claim decoded, internal or external)."""
    claim = T.encoded_app_claim(principal["name_identifier"], internal=principal.get("internal", False))
    return {"DisplayName": principal["display_name"], "NameIdentifier": _name_identifier_of(claim),
            "External": "|ms.sp.int|" not in claim, "Error": None}


def _web_right(principal: dict, web_url: str) -> str:
    hit = next((g for g in principal.get("permissions", []) if g["scope"] == "Site" and g["target"] == web_url), None)
    return hit["right"] if hit else T.NO_PERMISSION


def _name_identifier_of(claim: str) -> str:
    """What the templates' Get-NameIdentifier returns for an app principal's encoded claim."""
    return claim.rsplit("|", 1)[-1]


def load_sharepoint_powershell(ops: FarmOperations, inv: Invocation) -> None:
    snapin = inv.commands.find_source(T.SNAPIN_NAME, "snapin")
    module = inv.commands.find_source(T.SE_MODULE_NAME, "module")
    if any(s is not None and source_loaded(inv.session, s.name) for s in (snapin, module)):
        loaded = "already"
    elif snapin is not None:  # Get-PSSnapin -Registered finds it: Add-PSSnapin
        load_source(inv.session, snapin, inv)
        loaded = "snapin"
    elif module is not None:  # Get-Module -ListAvailable finds it: Import-Module -Global
        load_source(inv.session, module, inv)
        loaded = "module"
    else:
        raise throw(T.sharepoint_powershell_missing())
    if not farm_reachable(inv):
        # Get-SPFarm's error is terminating, so -ErrorAction SilentlyContinue does not hide it and
        # $ErrorActionPreference = 'Stop' ends the script there, after the snap-in's warning. [U]
        raise cannot_access_farm("Get-SPFarm")
    with ops.store.view() as state:  # Get-SPFarm -ErrorAction SilentlyContinue
        version = state["build_version"]
    inv.write_output(O.custom({"Loaded": loaded, "Version": version}))


def _root_web_of(ops: FarmOperations, site_value: Any) -> PSObj:
    with ops.store.view() as state:
        found = ops.find_site(state, site_value)
        if found is None:
            raise _site_not_found(site_value)
        return O.web_obj(found[1])  # a live SPWeb: it never leaves the server


def get_sts_certificate(ops: FarmOperations, inv: Invocation) -> None:
    with ops.store.view() as state:
        cert = O.load_pem(state["sts"]["signing"]["cert_pem"])
    inv.write_output(O.custom({
        "Thumbprint": O.thumbprint(cert),
        "Subject": O.dotnet_name(cert.subject),
        "Issuer": O.dotnet_name(cert.issuer),
        "NotBefore": cert.not_valid_before_utc,
        "NotAfter": cert.not_valid_after_utc,
        "KeySize": cert.public_key().key_size,
        "RawData": O.cert_der(cert),
    }))


def set_oauth_over_http(ops: FarmOperations, inv: Invocation) -> None:
    enabled = inv.param("Enabled")
    if not isinstance(enabled, bool):
        raise throw(f'Cannot convert value "{enabled}" to type "System.Boolean".')
    with ops.store.change() as state:
        state["sts"]["allow_oauth_over_http"] = enabled
    inv.write_output(enabled)


def register_app_principal(ops: FarmOperations, inv: Invocation) -> None:
    web = _root_web_of(ops, inv.param("Site"))
    name_identifier = str(inv.param("NameIdentifier"))
    with ops.store.view() as state:  # Get-SPAppPrincipal -ErrorAction SilentlyContinue
        existing = ops.find_principal(state, name_identifier)
    if existing is not None:
        principal, changed = O.app_principal_obj(existing), False  # as it is, whatever its display name
    else:
        principal, changed = ops.register_app_principal(web, name_identifier, str(inv.param("DisplayName")))
    principal.properties["Changed"] = changed  # Add-Member -NotePropertyName Changed
    inv.write_output(principal)


def _web_of(ops: FarmOperations, inv: Invocation) -> PSObj:
    """``$spSite.RootWeb``, or ``$spSite.OpenWeb(<path of $Web>)`` when the template's ``Web`` is given."""
    root = _root_web_of(ops, inv.param("Site"))
    wanted = inv.param("Web", None)
    if not wanted:
        return root
    with ops.store.view() as state:
        _, site, web = ops.find_web(state, wanted)
        if norm_url(site["url"]) != norm_url(root.properties["Url"]):
            raise throw(T.web_not_found(str(wanted)))  # OpenWeb on another site collection's path
        return O.web_obj(web)


def _live_principal(ops: FarmOperations, name_identifier: str) -> PSObj:
    with ops.store.view() as state:
        principal = ops.find_principal(state, name_identifier)
    if principal is None:
        raise throw(T.app_principal_not_registered(name_identifier))
    return O.app_principal_obj(principal)


def set_app_principal_permission(ops: FarmOperations, inv: Invocation) -> None:
    scope = validate_set("Scope", inv.param("Scope"), T.PERMISSION_SCOPES)
    right = validate_set("Right", inv.param("Right"), T.PERMISSION_RIGHTS)
    web = _web_of(ops, inv)
    principal = _live_principal(ops, str(inv.param("NameIdentifier")))
    app_only = bool(inv.param("EnableAppOnlyPolicy", False))
    ops.set_permission(principal.properties["NameIdentifier"], web, scope, right, app_only)
    inv.write_output(O.custom({"NameIdentifier": principal.properties["NameIdentifier"],
                               "Site": web.properties["Url"], "Scope": scope, "Right": right,
                               "AppOnlyPolicy": app_only}))


def get_app_principal_permission(ops: FarmOperations, inv: Invocation) -> None:
    web = _web_of(ops, inv)
    principal = _live_principal(ops, str(inv.param("NameIdentifier")))
    with ops.store.view() as state:
        record = ops.find_principal(state, principal.properties["NameIdentifier"]) or {}
    grants = record.get("permissions", [])
    site_url = web.properties["Url"]

    def right(scope: str, target: str) -> str:
        hit = next((g for g in grants if g["scope"] == scope and g["target"] == target), None)
        return hit["right"] if hit else T.NO_PERMISSION

    inv.write_output(O.custom({
        "NameIdentifier": principal.properties["NameIdentifier"],
        "Site": site_url,
        "Web": right("Site", site_url),
        "SiteCollection": right("SiteCollection", site_url),
        "SiteSubscription": right("SiteSubscription", "subscription"),
        "AppOnlyPolicy": any(g["app_only"] for g in grants),
    }))


def get_all_site_app_principals(ops: FarmOperations, inv: Invocation) -> None:
    # Get-SPSite -Limit All: every site collection of every content web application, in order.
    rows: list[dict[str, Any]] = []
    with ops.store.view() as state:
        for wa in state["web_apps"]:
            for site in wa["sites"]:
                if site.get("unreadable"):  # the catch block: one row with the error, and on
                    rows.append({"Site": site["url"], "Web": "", "DisplayName": None, "NameIdentifier": None,
                                 "External": None, "Error": T.site_unreadable(site["url"])})
                    continue
                principals = _site_app_principals(state, site)
                for p in principals:
                    rows.append({"Site": site["url"], "Web": "", **_scan_row(p)})
                for web in site.get("webs", []):  # $spSite.AllWebs, the root web skipped
                    for p in principals:
                        if _web_right(p, web["url"]) != T.NO_PERMISSION:
                            rows.append({"Site": site["url"], "Web": web["url"], **_scan_row(p)})
    for row in rows:
        inv.write_output(O.custom(row))


def get_proxy_group_membership(ops: FarmOperations, inv: Invocation) -> None:
    with ops.store.view() as state:
        proxies = [dict(p) for p in state["proxies"]]
    for proxy in proxies:
        inv.write_output(O.custom({
            "Name": proxy["name"],
            "Id": O.guid(proxy["id"]),
            "TypeName": proxy["type_name"],
            "Type": proxy["type"],
            "MetadataEndpointUri": proxy["metadata_endpoint_uri"],
            "InDefaultGroup": proxy["in_default_group"],
        }))


def get_workflow_service(ops: FarmOperations, inv: Invocation) -> None:
    with ops.store.view() as state:
        proxy = next((dict(p) for p in state["proxies"] if p["type_name"] == T.WORKFLOW_PROXY_TYPE_NAME), None)
    if proxy is None:
        return
    _root_web_of(ops, inv.param("Site"))  # Get-SPSite -Identity $Site
    inv.write_output(O.custom({"Name": proxy["name"], "WorkflowHostUri": proxy.get("workflow_host_uri") or ""}))


def new_trusted_issuer_from_certificate(ops: FarmOperations, inv: Invocation) -> None:
    cert = _certificate_from_bytes(inv.param("CertificateRawData"))
    inv.write_output(ops.new_issuer(
        "New-SPTrustedSecurityTokenIssuer", name=str(inv.param("Name")), certificate=cert, metadata_url=None,
        registered_issuer_name=str(inv.param("RegisteredIssuerName")),
        is_trust_broker=bool(inv.param("IsTrustBroker", False)),
        description=str(inv.param("Description", "") or "")))


def new_trusted_root_authority_from_certificate(ops: FarmOperations, inv: Invocation) -> None:
    cert = _certificate_from_bytes(inv.param("CertificateRawData"))
    inv.write_output(ops.new_root_authority("New-SPTrustedRootAuthority", name=str(inv.param("Name")),
                                            certificate=cert, metadata_url=None))


def get_trusted_issuers(ops: FarmOperations, inv: Invocation) -> None:
    name = inv.param("Name")
    with ops.store.view() as state:
        if name:
            issuer = ops.find_issuer(state, name)
            if issuer is None:  # Get-SPTrustedSecurityTokenIssuer under ErrorActionPreference Stop
                raise TerminatingError(sp_error("Get-SPTrustedSecurityTokenIssuer", T.PIPEBIND_NOT_FOUND,
                                                category="ObjectNotFound", target=str(name)))
            issuers = [dict(issuer)]
        else:
            issuers = [dict(i) for i in state["trusted_issuers"]]
    for issuer in issuers:
        cert = O.load_pem(issuer["signing_cert_pem"])
        inv.write_output(O.custom({
            "Name": issuer["name"],
            "Id": O.guid(issuer["id"]),
            "RegisteredIssuerName": issuer["registered_issuer_name"],
            "NameId": issuer["registered_issuer_name"],
            "IsSelfIssuer": issuer["is_self_issuer"],
            "MetadataEndPoint": issuer["metadata_endpoint"],
            "IsAutomaticallyUpdated": issuer["metadata_endpoint"] is not None,
            "Description": issuer["description"] or "",
            "Thumbprint": O.thumbprint(cert),
            "Subject": O.dotnet_name(cert.subject),
            "NotBefore": cert.not_valid_before_utc,
            "NotAfter": cert.not_valid_after_utc,
            "RawData": O.cert_der(cert),
        }))


def move_issuer_to_realm(ops: FarmOperations, inv: Invocation) -> None:
    name = not_empty("Name", inv.param("Name"))
    realm = not_empty("Realm", inv.param("Realm")).strip().lower()
    with ops.store.view() as state:
        issuer = ops.find_issuer(state, name)
        if issuer is None:  # Get-SPTrustedSecurityTokenIssuer under ErrorActionPreference Stop
            raise TerminatingError(sp_error("Get-SPTrustedSecurityTokenIssuer", T.PIPEBIND_NOT_FOUND,
                                            category="ObjectNotFound", target=name))
        issuer = dict(issuer)
    if issuer["metadata_endpoint"]:
        raise throw(T.metadata_issuer_not_movable(issuer["name"], issuer["metadata_endpoint"]))
    registered = issuer["registered_issuer_name"]
    if "@" not in registered:
        raise throw(T.issuer_name_without_realm(issuer["name"], registered))
    wanted = f"{split_name(registered)[0]}@{realm}"
    changed = registered.lower() != wanted.lower()  # PowerShell's -ne ignores case
    if changed:
        # Set-SPTrustedSecurityTokenIssuer -Identity $issuer -Certificate $issuer.SigningCertificate
        #   -RegisteredIssuerName $wanted -IsTrustBroker:(-not $issuer.IsSelfIssuer) -Confirm:$false
        ops.set_issuer("Set-SPTrustedSecurityTokenIssuer", O.issuer_obj(issuer),
                       certificate=O.load_pem(issuer["signing_cert_pem"]), registered_issuer_name=wanted,
                       is_trust_broker=not issuer["is_self_issuer"])
        with ops.store.view() as state:
            issuer = dict(ops.find_issuer(state, issuer["id"]) or issuer)
    inv.write_output(O.custom({
        "Name": issuer["name"],
        "RegisteredIssuerName": issuer["registered_issuer_name"],
        "IsSelfIssuer": issuer["is_self_issuer"],
        "Changed": changed,
    }))


def get_trusted_root_authorities(ops: FarmOperations, inv: Invocation) -> None:
    with ops.store.view() as state:
        entries = [dict(e) for e in ops.root_authorities(state)]
    for entry in entries:
        cert = O.load_pem(entry["cert_pem"])
        inv.write_output(O.custom({
            "Name": entry["name"], "Id": O.guid(entry["id"]), "Thumbprint": O.thumbprint(cert),
            "Subject": O.dotnet_name(cert.subject), "NotAfter": cert.not_valid_after_utc,
            "RawData": O.cert_der(cert),
        }))


def get_partner_metadata(ops: FarmOperations, inv: Invocation) -> None:
    # WebClient.DownloadString: any body comes back as text; only the transfer can fail.
    url = not_empty("Url", inv.param("Url"))
    try:
        body = ops.download_body(url)
    except FetchFailed as exc:
        # A .NET method's exception, as PowerShell wraps it (standard PowerShell text).
        raise TerminatingError(ErrorSpec(f'Exception calling "DownloadString" with "1" argument(s): "{exc}"',
                                         "WebException", "NotSpecified",
                                         "System.Management.Automation.MethodInvocationException", url)) from exc
    inv.write_output(O.custom({"Url": url, "Content": body.decode("utf-8", errors="replace")}))


# Template name → its handler (parameters: :data:`TEMPLATE_PARAMETERS`).
TEMPLATES: dict[str, Callable[[FarmOperations, Invocation], None]] = {
    LOAD_TEMPLATE: load_sharepoint_powershell,
    "sharepoint/get-sts-certificate": get_sts_certificate,
    "sharepoint/set-oauth-over-http": set_oauth_over_http,
    "sharepoint/register-app-principal": register_app_principal,
    "sharepoint/set-app-principal-permission": set_app_principal_permission,
    "sharepoint/get-app-principal-permission": get_app_principal_permission,
    "sharepoint/get-all-site-app-principals": get_all_site_app_principals,
    "sharepoint/get-proxy-group-membership": get_proxy_group_membership,
    "sharepoint/new-trusted-issuer-from-certificate": new_trusted_issuer_from_certificate,
    "sharepoint/new-trusted-root-authority-from-certificate": new_trusted_root_authority_from_certificate,
    "sharepoint/get-trusted-issuers": get_trusted_issuers,
    "sharepoint/move-issuer-to-realm": move_issuer_to_realm,
    "sharepoint/get-trusted-root-authorities": get_trusted_root_authorities,
    "sharepoint/get-partner-metadata": get_partner_metadata,
    "sharepoint/get-workflow-service": get_workflow_service,
}


def register_templates(table: CommandTable, ops: FarmOperations) -> None:
    """Register :data:`TEMPLATES` over ``ops``; all but :data:`PLAIN_POWERSHELL_TEMPLATES` in the
    farm's snap-in or module."""
    with ops.store.view() as state:
        _, source = T.powershell_source(state["version"])
    for name, handler in TEMPLATES.items():
        bound = functools.partial(handler, ops)
        if name in PLAIN_POWERSHELL_TEMPLATES:  # no source: the loader loads it; the download needs none
            table.template(name, 1, TEMPLATE_PARAMETERS[name])(bound)
        else:
            table.template(name, 1, TEMPLATE_PARAMETERS[name], source=source)(template_needs_farm(bound))
