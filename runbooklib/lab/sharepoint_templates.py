"""Lab handlers for the SharePoint script templates (``runbooklib/templates/sharepoint/*.ps1``).

Each handler does, on the farm's state, what its template's PowerShell does on a real farm —
through the same :class:`~.sharepoint_cmdlets.FarmOperations` the cmdlets use, so a template
and the cmdlets it calls cannot disagree. Where the PowerShell would throw, the handler ends
the pipeline with the record ``throw`` produces (``RuntimeException``).

Every template but ``sharepoint/load-sharepoint-powershell`` is registered in the farm's snap-in
or module: in a runspace where that is not loaded, the endpoint fails it at the first SharePoint
cmdlet its script calls, as a real farm would. The load template is what loads it.
"""

from __future__ import annotations

from typing import Any

from cryptography import x509

from . import _sharepoint_texts as T
from . import sharepoint_objects as O
from .sharepoint_cmdlets import FarmOperations, sp_error
from .winrm.api import (
    CommandTable,
    ErrorSpec,
    Invocation,
    ParamSpec,
    PSObj,
    TerminatingError,
    load_source,
    source_loaded,
)

__all__ = ["LOAD_TEMPLATE", "TEMPLATE_PARAMETERS", "register_templates"]

LOAD_TEMPLATE = "sharepoint/load-sharepoint-powershell"

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
                                                "EnableAppOnlyPolicy": S},
    "sharepoint/get-app-principal-permission": {"Site": M, "NameIdentifier": M},
    "sharepoint/get-all-site-app-principals": {},
    "sharepoint/get-proxy-group-membership": {},
    "sharepoint/new-trusted-issuer-from-certificate": {"Name": M, "CertificateRawData": M,
                                                       "RegisteredIssuerName": M, "IsTrustBroker": S,
                                                       "Description": O_},
    "sharepoint/new-trusted-root-authority-from-certificate": {"Name": M, "CertificateRawData": M},
    "sharepoint/get-trusted-issuers": {"Name": O_},
    "sharepoint/get-trusted-root-authorities": {},
    "sharepoint/move-issuer-to-realm": {"Name": M, "Realm": M},
}


def _throw(message: str) -> TerminatingError:
    """What PowerShell's ``throw "<message>"`` produces."""
    return TerminatingError(ErrorSpec(message, message, "OperationStopped", "System.Management.Automation.RuntimeException"))


def _site_not_found(value: Any) -> TerminatingError:
    # Get-SPSite under $ErrorActionPreference = 'Stop': its non-terminating error becomes terminating.
    return TerminatingError(sp_error("Get-SPSite", T.site_not_found(str(value)),
                                     exception="Microsoft.SharePoint.PowerShell.SPCmdletPipeBindException"))


def _validate_set(param: str, value: Any, allowed: tuple[str, ...]) -> str:
    """A ``[ValidateSet(...)]`` parameter of a template (case-insensitive, as PowerShell's)."""
    for name in allowed:
        if name.lower() == str(value).lower():
            return name
    raise TerminatingError(ErrorSpec(
        f"Cannot validate argument on parameter '{param}'. The argument \"{value}\" does not belong to the set "
        f"\"{','.join(allowed)}\" specified by the ValidateSet attribute. Supply an argument that is in the set "
        "and then try the command again.",
        "ParameterArgumentValidationError", "InvalidData",
        "System.Management.Automation.ParameterBindingValidationException"))


def _certificate_from_bytes(value: Any) -> x509.Certificate:
    if not isinstance(value, (bytes, bytearray)):
        raise _throw(f'Cannot convert value "{value}" to type "System.Byte[]".')
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


def _not_empty(param: str, value: Any) -> str:
    """A mandatory ``[string]`` parameter: PowerShell refuses an empty string before the script runs."""
    text = "" if value is None else str(value)
    if not text:
        raise TerminatingError(ErrorSpec(
            T.empty_mandatory_string(param), "ParameterArgumentValidationErrorEmptyStringNotAllowed",
            "InvalidData", "System.Management.Automation.ParameterBindingValidationException"))
    return text


def _site_app_principals(state: dict, site_url: str) -> list[dict]:
    """What ``$rootWeb.GetSiteAppPrincipals()`` lists for a site collection [U]: principals registered
    on it or granted on it, and those granted at the SiteSubscription scope."""
    return [p for p in state["app_principals"]
            if p.get("web_url") == site_url or any(g["target"] in (site_url, "subscription") for g in p["permissions"])]


def _name_identifier_of(claim: str) -> str:
    """What the templates' Get-NameIdentifier returns for an app principal's encoded claim."""
    return claim.rsplit("|", 1)[-1]


def register_templates(table: CommandTable, ops: FarmOperations) -> None:
    store = ops.store
    with store.view() as state:
        _, source = T.powershell_source(state["version"])

    def template(name: str):
        return table.template(name, 1, TEMPLATE_PARAMETERS[name], source=source)

    @table.template(LOAD_TEMPLATE, 1, TEMPLATE_PARAMETERS[LOAD_TEMPLATE])  # no source: it loads it
    def load_sharepoint_powershell(inv: Invocation) -> None:
        snapin = inv.commands.find_source(T.SNAPIN_NAME, "snapin")
        module = inv.commands.find_source(T.SE_MODULE_NAME, "module")
        if any(s is not None and source_loaded(inv.session, s.name) for s in (snapin, module)):
            loaded = "already"
        elif snapin is not None:  # Get-PSSnapin -Registered finds it: Add-PSSnapin
            load_source(inv.session, snapin)
            loaded = "snapin"
        elif module is not None:  # Get-Module -ListAvailable finds it: Import-Module -Global
            load_source(inv.session, module)
            loaded = "module"
        else:
            raise _throw(T.sharepoint_powershell_missing())
        with store.view() as state:  # Get-SPFarm -ErrorAction SilentlyContinue
            version = state["build_version"]
        inv.write_output(O.custom({"Loaded": loaded, "Version": version}))

    def root_web_of(site_value: Any) -> PSObj:
        with store.view() as state:
            found = ops.find_site(state, site_value)
            if found is None:
                raise _site_not_found(site_value)
            return O.web_obj(found[1])  # a live SPWeb: it never leaves the server

    @template("sharepoint/get-sts-certificate")
    def get_sts_certificate(inv: Invocation) -> None:
        with store.view() as state:
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

    @template("sharepoint/set-oauth-over-http")
    def set_oauth_over_http(inv: Invocation) -> None:
        enabled = inv.param("Enabled")
        if not isinstance(enabled, bool):
            raise _throw(f'Cannot convert value "{enabled}" to type "System.Boolean".')
        with store.change() as state:
            state["sts"]["allow_oauth_over_http"] = enabled
        inv.write_output(enabled)

    @template("sharepoint/register-app-principal")
    def register_app_principal(inv: Invocation) -> None:
        web = root_web_of(inv.param("Site"))
        principal, changed = ops.register_app_principal(web, str(inv.param("NameIdentifier")),
                                                        str(inv.param("DisplayName")))
        principal.properties["Changed"] = changed  # Add-Member -NotePropertyName Changed
        inv.write_output(principal)

    def live_principal(web: PSObj, name_identifier: str) -> PSObj:
        with store.view() as state:
            principal = ops.find_principal(state, name_identifier)
        if principal is None:
            raise _throw(T.app_principal_not_registered(name_identifier))
        return O.app_principal_obj(principal)

    @template("sharepoint/set-app-principal-permission")
    def set_app_principal_permission(inv: Invocation) -> None:
        scope = _validate_set("Scope", inv.param("Scope"), T.PERMISSION_SCOPES)
        right = _validate_set("Right", inv.param("Right"), T.PERMISSION_RIGHTS)
        web = root_web_of(inv.param("Site"))
        principal = live_principal(web, str(inv.param("NameIdentifier")))
        app_only = bool(inv.param("EnableAppOnlyPolicy", False))
        ops.set_permission(principal.properties["NameIdentifier"], web, scope, right, app_only)
        inv.write_output(O.custom({"NameIdentifier": principal.properties["NameIdentifier"],
                                   "Site": web.properties["Url"], "Scope": scope, "Right": right,
                                   "AppOnlyPolicy": app_only}))

    @template("sharepoint/get-app-principal-permission")
    def get_app_principal_permission(inv: Invocation) -> None:
        web = root_web_of(inv.param("Site"))
        principal = live_principal(web, str(inv.param("NameIdentifier")))
        with store.view() as state:
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

    @template("sharepoint/get-all-site-app-principals")
    def get_all_site_app_principals(inv: Invocation) -> None:
        # Get-SPSite -Limit All: every site collection of every content web application, in order.
        with store.view() as state:
            rows = [(site["url"], dict(p)) for wa in state["web_apps"] for site in wa["sites"]
                    for p in _site_app_principals(state, site["url"])]
        for site_url, principal in rows:
            claim = T.encoded_app_claim(principal["name_identifier"])
            inv.write_output(O.custom({"Site": site_url, "DisplayName": principal["display_name"],
                                       "NameIdentifier": _name_identifier_of(claim)}))

    @template("sharepoint/get-proxy-group-membership")
    def get_proxy_group_membership(inv: Invocation) -> None:
        with store.view() as state:
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

    @template("sharepoint/new-trusted-issuer-from-certificate")
    def new_trusted_issuer_from_certificate(inv: Invocation) -> None:
        cert = _certificate_from_bytes(inv.param("CertificateRawData"))
        inv.write_output(ops.new_issuer(
            "New-SPTrustedSecurityTokenIssuer", name=str(inv.param("Name")), certificate=cert, metadata_url=None,
            registered_issuer_name=str(inv.param("RegisteredIssuerName")),
            is_trust_broker=bool(inv.param("IsTrustBroker", False)),
            description=str(inv.param("Description", "") or "")))

    @template("sharepoint/new-trusted-root-authority-from-certificate")
    def new_trusted_root_authority_from_certificate(inv: Invocation) -> None:
        cert = _certificate_from_bytes(inv.param("CertificateRawData"))
        inv.write_output(ops.new_root_authority("New-SPTrustedRootAuthority", name=str(inv.param("Name")),
                                                certificate=cert, metadata_url=None))

    @template("sharepoint/get-trusted-issuers")
    def get_trusted_issuers(inv: Invocation) -> None:
        name = inv.param("Name")
        with store.view() as state:
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

    @template("sharepoint/move-issuer-to-realm")
    def move_issuer_to_realm(inv: Invocation) -> None:
        name = _not_empty("Name", inv.param("Name"))
        realm = _not_empty("Realm", inv.param("Realm")).strip().lower()
        with store.view() as state:
            issuer = ops.find_issuer(state, name)
            if issuer is None:  # Get-SPTrustedSecurityTokenIssuer under ErrorActionPreference Stop
                raise TerminatingError(sp_error("Get-SPTrustedSecurityTokenIssuer", T.PIPEBIND_NOT_FOUND,
                                                category="ObjectNotFound", target=name))
            issuer = dict(issuer)
        if issuer["metadata_endpoint"]:
            raise _throw(T.metadata_issuer_not_movable(issuer["name"], issuer["metadata_endpoint"]))
        registered = issuer["registered_issuer_name"]
        if "@" not in registered:
            raise _throw(T.issuer_name_without_realm(issuer["name"], registered))
        wanted = f"{registered.split('@', 1)[0]}@{realm}"
        changed = registered.lower() != wanted.lower()  # PowerShell's -ne ignores case
        if changed:
            # Set-SPTrustedSecurityTokenIssuer -Identity $issuer -Certificate $issuer.SigningCertificate
            #   -RegisteredIssuerName $wanted -IsTrustBroker:(-not $issuer.IsSelfIssuer) -Confirm:$false
            ops.set_issuer("Set-SPTrustedSecurityTokenIssuer", O.issuer_obj(issuer),
                           certificate=O.load_pem(issuer["signing_cert_pem"]), registered_issuer_name=wanted,
                           is_trust_broker=not issuer["is_self_issuer"])
            with store.view() as state:
                issuer = dict(ops.find_issuer(state, issuer["id"]) or issuer)
        inv.write_output(O.custom({
            "Name": issuer["name"],
            "RegisteredIssuerName": issuer["registered_issuer_name"],
            "IsSelfIssuer": issuer["is_self_issuer"],
            "Changed": changed,
        }))

    @template("sharepoint/get-trusted-root-authorities")
    def get_trusted_root_authorities(inv: Invocation) -> None:
        with store.view() as state:
            entries = [dict(e) for e in ops.root_authorities(state)]
        for entry in entries:
            cert = O.load_pem(entry["cert_pem"])
            inv.write_output(O.custom({
                "Name": entry["name"], "Id": O.guid(entry["id"]), "Thumbprint": O.thumbprint(cert),
                "Subject": O.dotnet_name(cert.subject), "NotAfter": cert.not_valid_after_utc,
                "RawData": O.cert_der(cert),
            }))
