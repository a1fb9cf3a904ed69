"""The SkypeForBusiness cmdlets the simulated front end answers: one module-level handler per cmdlet.

Each handler takes the front end's :class:`~.frontend.FrontEnd` and the bound invocation;
:data:`CMDLETS` lists them and :func:`register_cmdlets` puts them in the server's command table
inside the ``SkypeForBusiness`` module, so they exist in a session only after
``Import-Module SkypeForBusiness`` (the load template) ran there. Parameters come from the table
of real cmdlet signatures (runbooklib/signatures/skype.yaml).

``Get-Cs*`` with an Identity that resolves to nothing writes nothing at all [C]; a ``Set-`` or
``Remove-`` of one ends with an error [U].
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import uuid
from typing import Any, Callable, NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ..metadata_download import FetchFailed, fetch_json, signing_certificates
from ..powershell import binding_error, enum_value, missing_mandatory, signature_cmdlet, throw
from ..winrm.api import CommandTable, ErrorSpec, Invocation, PSObj, TerminatingError
from . import texts as T
from .frontend import FrontEnd, PartnerMetadata, StorageFailed, UnknownIdentity, dns_names

__all__ = ["CMDLETS", "Cmdlet", "register_cmdlets"]


class Cmdlet(NamedTuple):
    """One row of the front end's cmdlet table."""

    name: str
    handler: Callable[[FrontEnd, Invocation], None]


def _error(message: str, error_id: str, category: str = "InvalidOperation", target: Any = None) -> TerminatingError:
    return TerminatingError(ErrorSpec(message, error_id, category, T.CMDLET_EXCEPTION, target))


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [part.strip() for part in str(value).split(",") if part.strip()]


def _identity(value: Any) -> str:
    """An XdsGlobalRelativeIdentity as the cmdlets print it (a leading ``global/`` is dropped)."""
    text = str(value or "").strip()
    return text[len("global/"):] if text.lower().startswith("global/") else text


def _date(param: str, value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        moment = value
    else:
        try:
            moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise binding_error(f"Cannot bind parameter '{param}'. Cannot convert value \"{value}\" to type "
                                "\"System.DateTime\".") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


# ---------------------------------------------------------------------------------- certificates
def _certificate_obj(fe: FrontEnd, state: dict[str, Any], use: str, thumbprint: str, *,
                     scope: str, effective: str | None = None, previous: str | None = None,
                     updated: str | None = None) -> PSObj:
    entry = fe.find(state, thumbprint)
    props: dict[str, Any] = {"Use": use, "Thumbprint": thumbprint, "Subject": None, "Issuer": None,
                             "NotBefore": None, "NotAfter": None, "SerialNumber": None, "AlternativeNames": [],
                             "EffectiveDate": dt.datetime.fromisoformat(effective) if effective else None,
                             "PreviousThumbprint": previous, "UpdateTime": dt.datetime.fromisoformat(updated)
                             if updated else None, "SourceScope": scope}
    if entry is not None:  # [U] what a front end shows for a global certificate it does not hold
        cert = x509.load_pem_x509_certificate(entry["cert_pem"].encode())
        props.update(Subject=cert.subject.rfc4514_string().replace(",", ", "),
                     Issuer=cert.issuer.rfc4514_string().replace(",", ", "),
                     NotBefore=cert.not_valid_before_utc, NotAfter=cert.not_valid_after_utc,
                     SerialNumber=format(cert.serial_number, "X"), AlternativeNames=dns_names(cert))
    return PSObj(list(T.T_CERTIFICATE), props, thumbprint)


def get_certificate(fe: FrontEnd, inv: Invocation) -> None:
    wanted = [enum_value("Type", t, T.CERT_TYPES, T.CERT_TYPE_ENUM) for t in _as_list(inv.param("Type"))]
    with fe.store.view() as state:
        rows = [(use, tp, "Local") for use, tp in fe.machine(state)["assigned"].items()]
        assignment = fe.oauth_assignment(state)
        out = []
        for use, thumbprint, scope in rows:
            if not wanted or use in wanted:
                out.append(_certificate_obj(fe, state, use, thumbprint, scope=scope))
        if not wanted or "OAuthTokenIssuer" in wanted:
            previous = assignment["previous"]["thumbprint"] if assignment.get("previous") else None
            for role in ("current", "next"):  # [C] a rolled certificate waits beside the current one
                row = assignment.get(role)
                if row:
                    out.append(_certificate_obj(fe, state, "OAuthTokenIssuer", row["thumbprint"], scope="Global",
                                                effective=row["effective"], updated=row.get("updated"),
                                                previous=previous if role == "current" else
                                                assignment["current"]["thumbprint"]))
    for obj in out:
        inv.write_output(obj)


def set_certificate(fe: FrontEnd, inv: Invocation) -> None:
    uses = [enum_value("Type", t, T.CERT_TYPES, T.CERT_TYPE_ENUM) for t in _as_list(inv.param("Type"))]
    if not inv.has("Thumbprint"):
        raise throw("The lab's Set-CsCertificate takes -Thumbprint only (no -Reference or -Path).")
    thumbprint = str(inv.param("Thumbprint") or "")
    roll = bool(inv.param("Roll", False))
    effective = _date("EffectiveDate", inv.param("EffectiveDate")) if inv.has("EffectiveDate") else None
    if roll and effective is None:
        raise _error(T.ROLL_NEEDS_EFFECTIVE_DATE, "RollNeedsEffectiveDate", "InvalidArgument")
    if roll and effective is not None and effective <= dt.datetime.now(dt.timezone.utc):
        raise _error(T.EFFECTIVE_DATE_PAST, "EffectiveDateInPast", "InvalidArgument")
    if any(u in T.GLOBAL_CERT_TYPES for u in uses) and _identity(inv.param("Identity")).lower() not in ("", "global"):
        raise _error(T.OAUTH_NOT_GLOBAL, "OAuthCertificateNotGlobal", "InvalidArgument")
    if any(u in T.GLOBAL_CERT_TYPES for u in uses) and not inv.has("Identity"):
        raise _error(T.OAUTH_NOT_GLOBAL, "OAuthCertificateNotGlobal", "InvalidArgument")
    try:
        fe.assign(uses, thumbprint, roll=roll, effective=effective)
    except UnknownIdentity:
        raise _error(T.certificate_not_in_store(thumbprint.upper()), "CertificateNotFound", "ObjectNotFound",
                     thumbprint) from None


# ---------------------------------------------------------------------------------- SIP domains
def get_sip_domain(fe: FrontEnd, inv: Invocation) -> None:
    with fe.store.view() as state:
        domains = [state["pool"]["sip_domain"], *state["pool"].get("other_sip_domains", [])]
    wanted = _identity(inv.param("Identity")).lower() if inv.has("Identity") else None
    for i, name in enumerate(domains):
        if wanted is None or name.lower() == wanted:
            inv.write_output(PSObj(list(T.T_SIP_DOMAIN), {"Identity": name, "Name": name, "IsDefault": i == 0},
                                   name))


# ---------------------------------------------------------------------------------- OAuth configuration
def get_oauth_configuration(fe: FrontEnd, inv: Invocation) -> None:
    with fe.store.view() as state:
        settings = dict(state["global"]["oauth"])
        partners = [a["Identity"] for a in state["global"]["partner_applications"]]
        servers = [s["Identity"] for s in state["global"]["oauth_servers"]]
    if inv.has("Identity") and _identity(inv.param("Identity")).lower() != "global":
        return  # [C] the only instance on-premises is global
    inv.write_output(PSObj(list(T.T_OAUTH_SETTINGS),
                           {"Identity": "Global", **settings, "PartnerApplications": partners, "OAuthServers": servers},
                           "Global"))


def set_oauth_configuration(fe: FrontEnd, inv: Invocation) -> None:
    if inv.has("Identity") and _identity(inv.param("Identity")).lower() != "global":
        raise _error(T.not_found(_identity(inv.param("Identity"))), "ItemNotFound", "ObjectNotFound")
    changes = {name: str(inv.param(name) or "") for name in T.OAUTH_SETTINGS if inv.has(name)}
    with fe.store.change() as state:
        state["global"]["oauth"].update(changes)


# ---------------------------------------------------------------------------------- partner applications
_PARTNER_PROPERTIES = ("Identity", "ApplicationIdentifier", "Realm", "ApplicationTrustLevel",
                       "AcceptSecurityIdentifierInformation", "Enabled", "MetadataUrl", "UseOAuthServer")


def _partner_obj(app: dict[str, Any]) -> PSObj:
    props = {name: app[name] for name in _PARTNER_PROPERTIES}
    props["CertificateRawData"] = None  # [U] only a certificate-based application shows its data
    return PSObj(list(T.T_PARTNER_APPLICATION), props, app["Identity"])


def _find(apps: list[dict[str, Any]], identity: str) -> dict[str, Any] | None:
    return next((a for a in apps if a["Identity"].lower() == identity.lower()), None)


def _download(fe: FrontEnd, url: str) -> PartnerMetadata:
    try:
        return fe.download_metadata(url)
    except FetchFailed:
        raise TerminatingError(ErrorSpec(T.METADATA_BINDING, "ParameterBindingFailed", "WriteError",
                                         T.BINDING_EXCEPTION, url)) from None


def _trust_level(inv: Invocation) -> str:
    return enum_value("ApplicationTrustLevel", inv.param("ApplicationTrustLevel"), T.TRUST_LEVELS,
                      T.TRUST_LEVEL_ENUM)


def _certificate_data(inv: Invocation) -> list[str]:
    raw = inv.param("CertificateRawData")
    try:
        cert = x509.load_der_x509_certificate(base64.b64decode(str(raw)))
    except ValueError:
        raise binding_error("Cannot bind parameter 'CertificateRawData': the data is not a Base64 certificate.") from None
    return [cert.public_bytes(serialization.Encoding.PEM).decode()]


def new_partner_application(fe: FrontEnd, inv: Invocation) -> None:
    if not inv.has("Identity"):
        raise missing_mandatory(["Identity"])  # [U] the lab wants a name: the doc scripts always give one
    identity = _identity(inv.param("Identity"))
    level = _trust_level(inv)
    with fe.store.view() as state:
        if _find(state["global"]["partner_applications"], identity):
            raise _error(T.already_exists(identity), "ItemAlreadyExists", "ResourceExists", identity)
        realm = fe.realm(state)
    app: dict[str, Any] = {"Identity": identity, "ApplicationTrustLevel": level, "MetadataUrl": None,
                           "UseOAuthServer": False, "Enabled": bool(inv.param("Enabled", True)),
                           "AcceptSecurityIdentifierInformation": bool(inv.param("AcceptSecurityIdentifierInformation",
                                                                                 False)),
                           "ApplicationIdentifier": "", "Realm": "", "certificates": []}
    if inv.has("MetadataUrl"):
        url = str(inv.param("MetadataUrl"))
        partner = _download(fe, url)
        app.update(MetadataUrl=url, ApplicationIdentifier=partner.application_identifier, Realm=partner.realm,
                   certificates=list(partner.certificates_pem))
    else:
        app.update(ApplicationIdentifier=str(inv.param("ApplicationIdentifier")).lower(),
                   Realm=str(inv.param("Realm") or realm).lower(), UseOAuthServer=bool(inv.param("UseOAuthServer")))
        if inv.has("CertificateRawData"):
            app["certificates"] = _certificate_data(inv)
    with fe.store.change() as state:
        apps = state["global"]["partner_applications"]
        if _find(apps, identity):
            raise _error(T.already_exists(identity), "ItemAlreadyExists", "ResourceExists", identity)
        apps.append(app)
    inv.write_output(_partner_obj(app))


def _get_global(fe: FrontEnd, inv: Invocation, collection: str, to_object: Callable[[dict[str, Any]], PSObj]) -> None:
    """``Get-Cs*``: every object, or the one ``-Identity`` names — nothing at all for an unknown one [C]."""
    with fe.store.view() as state:
        found = [dict(o) for o in state["global"][collection]]
    if inv.has("Identity"):
        found = [o for o in found if o["Identity"].lower() == _identity(inv.param("Identity")).lower()]
    for obj in found:
        inv.write_output(to_object(obj))


def _remove_global(fe: FrontEnd, inv: Invocation, collection: str) -> None:
    """``Remove-Cs*``: the object ``-Identity`` names, or an error."""
    identity = _identity(inv.param("Identity"))
    with fe.store.change() as state:
        objects = state["global"][collection]
        found = _find(objects, identity)
        if found is None:
            raise _error(T.not_found(identity), "ItemNotFound", "ObjectNotFound", identity)
        objects.remove(found)


def get_partner_application(fe: FrontEnd, inv: Invocation) -> None:
    _get_global(fe, inv, "partner_applications", _partner_obj)


def set_partner_application(fe: FrontEnd, inv: Invocation) -> None:
    identity = _identity(inv.param("Identity"))
    partner = _download(fe, str(inv.param("MetadataUrl"))) if inv.has("MetadataUrl") else None
    with fe.store.change() as state:
        app = _find(state["global"]["partner_applications"], identity)
        if app is None:
            raise _error(T.not_found(identity), "ItemNotFound", "ObjectNotFound", identity)
        if inv.has("ApplicationTrustLevel"):
            app["ApplicationTrustLevel"] = _trust_level(inv)
        for name in ("Enabled", "AcceptSecurityIdentifierInformation"):
            if inv.has(name):
                app[name] = bool(inv.param(name))
        if partner is not None:
            app.update(MetadataUrl=str(inv.param("MetadataUrl")), ApplicationIdentifier=partner.application_identifier,
                       Realm=partner.realm, certificates=list(partner.certificates_pem), UseOAuthServer=False)
        if inv.param("UseOAuthServer", False):
            app.update(UseOAuthServer=True, MetadataUrl=None, certificates=[])


def remove_partner_application(fe: FrontEnd, inv: Invocation) -> None:
    _remove_global(fe, inv, "partner_applications")


# ---------------------------------------------------------------------------------- OAuth servers
def _server_obj(server: dict[str, Any]) -> PSObj:
    props = {k: server[k] for k in ("Identity", "MetadataUrl", "Realm", "Type", "AuthorizationUriOverride",
                                    "AcceptSecurityIdentifierInformation")}
    return PSObj(list(T.T_OAUTH_SERVER), props, server["Identity"])


def new_oauth_server(fe: FrontEnd, inv: Invocation) -> None:
    identity = _identity(inv.param("Identity") or f"oauthserver-{uuid.uuid4().hex[:8]}")
    url = str(inv.param("MetadataUrl"))
    if fe.outbound_blocked():
        raise TerminatingError(ErrorSpec(T.OAUTH_SERVER_METADATA, "ParameterBindingFailed", "WriteError",
                                         T.BINDING_EXCEPTION, url))
    try:
        doc = fetch_json(url, ca_bundle=fe.ca_bundle, timeout=fe.timeout, user_agent="Skype for Business Server")
        certificates = signing_certificates(doc, url)
    except FetchFailed:
        raise TerminatingError(ErrorSpec(T.OAUTH_SERVER_METADATA, "ParameterBindingFailed", "WriteError",
                                         T.BINDING_EXCEPTION, url)) from None
    issuer = str(next((v for k, v in doc.items() if k.lower() == "issuer"), "") or "")
    server = {"Identity": identity, "MetadataUrl": url, "Realm": str(inv.param("Realm") or issuer.partition("@")[2]),
              "Type": str(inv.param("Type") or ""), "AuthorizationUriOverride": inv.param("AuthorizationUriOverride"),
              "AcceptSecurityIdentifierInformation": bool(inv.param("AcceptSecurityIdentifierInformation", False)),
              "issuer": issuer,
              "certificates": [c.public_bytes(serialization.Encoding.PEM).decode() for c in certificates]}
    with fe.store.change() as state:
        servers = state["global"]["oauth_servers"]
        if _find(servers, identity):
            raise _error(T.already_exists(identity), "ItemAlreadyExists", "ResourceExists", identity)
        servers.append(server)
    inv.write_output(_server_obj(server))


def get_oauth_server(fe: FrontEnd, inv: Invocation) -> None:
    _get_global(fe, inv, "oauth_servers", _server_obj)


def remove_oauth_server(fe: FrontEnd, inv: Invocation) -> None:
    _remove_global(fe, inv, "oauth_servers")


# ---------------------------------------------------------------------------------- Exchange storage
def test_ex_storage_connectivity(fe: FrontEnd, inv: Invocation) -> None:
    sip_uri = str(inv.param("SipUri") or "")
    try:
        lines = fe.store_to_exchange(sip_uri)
    except UnknownIdentity:
        raise _error(T.invalid_sip_uri(sip_uri), "UserNotFound", "ObjectNotFound", sip_uri) from None
    except StorageFailed as exc:
        raise _error(str(exc), "ExchangeStorageFailed", "InvalidOperation", sip_uri) from None
    for line in lines[:-1]:
        inv.write_verbose(line)
    inv.write_output(PSObj(list(T.T_RESOURCE_DATA), {"Result": "Success", "Detail": "\n".join(lines)}, lines[-1]))


CMDLETS: tuple[Cmdlet, ...] = (
    Cmdlet("Get-CsCertificate", get_certificate),
    Cmdlet("Set-CsCertificate", set_certificate),
    Cmdlet("Get-CsSipDomain", get_sip_domain),
    Cmdlet("Get-CsOAuthConfiguration", get_oauth_configuration),
    Cmdlet("Set-CsOAuthConfiguration", set_oauth_configuration),
    Cmdlet("New-CsPartnerApplication", new_partner_application),
    Cmdlet("Get-CsPartnerApplication", get_partner_application),
    Cmdlet("Set-CsPartnerApplication", set_partner_application),
    Cmdlet("Remove-CsPartnerApplication", remove_partner_application),
    Cmdlet("New-CsOAuthServer", new_oauth_server),
    Cmdlet("Get-CsOAuthServer", get_oauth_server),
    Cmdlet("Remove-CsOAuthServer", remove_oauth_server),
    Cmdlet("Test-CsExStorageConnectivity", test_ex_storage_connectivity),
)


def register_cmdlets(table: CommandTable, fe: FrontEnd) -> None:
    """Register :data:`CMDLETS` over ``fe``, each in the ``SkypeForBusiness`` module."""
    table.module(T.MODULE_NAME, version=T.MODULE_VERSION, description="Skype for Business Server")
    for row in CMDLETS:
        signature_cmdlet(table, row.name, source=T.MODULE_NAME)(functools.partial(row.handler, fe))
