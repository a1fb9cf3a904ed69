"""The Exchange cmdlets the simulated server answers: one module-level handler per cmdlet.

Each handler takes the server's :class:`~.organization.Organization` and the bound invocation;
:data:`CMDLETS` lists them and :func:`register_cmdlets` puts them in the server's command table.
Exchange's endpoint offers them from the start (no snap-in, no module: its ``Microsoft.Exchange``
session configuration *is* the product's command set). Each cmdlet's parameters come from the
table of real cmdlet signatures (runbooklib/signatures/exchange.yaml); a parameter the lab does
not keep binds and changes nothing.

Identities resolve as Exchange's pipebinds do: a partner application by name, id or
ApplicationIdentifier; a user by name, UPN, alias, ``DOMAIN\\alias`` or id; a role assignment by
name or id. An identity that resolves to nothing is Exchange's non-terminating "couldn't be
found" error on a Get-, and a terminating one on a change.
"""

from __future__ import annotations

import base64
import functools
import uuid
from typing import Any, Callable, NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ..metadata_download import FetchFailed
from ..powershell import enum_value, get_by_identity, is_guid, require_confirm, signature_cmdlet
from ..winrm.api import CommandTable, DeserializedObject, ErrorSpec, Invocation, PSObj, TerminatingError
from . import texts as T
from .connectivity import test_oauth
from .organization import Organization, PartnerMetadata, thumbprint
from .state import key_pair_of, new_user, utc_text

__all__ = ["CMDLETS", "Cmdlet", "register_cmdlets"]


class Cmdlet(NamedTuple):
    """One row of the server's cmdlet table."""

    name: str
    handler: Callable[[Organization, Invocation], None]


# ------------------------------------------------------------------------------ identities
def _text(value: Any) -> str:
    if isinstance(value, (PSObj, DeserializedObject)):
        return str(value.properties.get("Identity") or value.properties.get("Name") or value.to_string or "")
    return "" if value is None else str(value)


def _not_found(state: dict[str, Any], identity: str) -> ErrorSpec:
    return ErrorSpec(T.not_found(identity, state["domain_controller"]), "ManagementObjectNotFound",
                     "NotSpecified", T.NOT_FOUND_EXCEPTION, target=identity)


_State = dict[str, Any]


def _get_by_identity(inv: Invocation, state: _State, everything: list[dict[str, Any]],
                     find: Callable[[_State, Any], dict[str, Any] | None],
                     to_object: Callable[[_State, dict[str, Any]], PSObj]) -> None:
    """An Exchange ``Get-`` cmdlet: a missing or ``$null`` -Identity lists everything [C]; one that
    resolves to nothing is Exchange's non-terminating "couldn't be found"."""
    get_by_identity(inv, everything, lambda: find(state, inv.param("Identity")), lambda o: to_object(state, o),
                    lambda identity: _not_found(state, identity), null_lists_all=True, identity_text=_text)


def _fail(spec: ErrorSpec) -> TerminatingError:
    return TerminatingError(spec)


def _find_app(state: dict[str, Any], identity: Any) -> dict[str, Any] | None:
    wanted = _text(identity).lower()
    for app in state["partner_applications"]:
        if wanted in (app["name"].lower(), app["id"]) or (is_guid(wanted) and wanted == app["application_identifier"]):
            return app
    return None


def _find_auth_server(state: dict[str, Any], identity: Any) -> dict[str, Any] | None:
    wanted = _text(identity).lower()
    return next((s for s in state["auth_servers"] if wanted in (s["name"].lower(), s["id"])), None)


def _find_user(state: dict[str, Any], identity: Any) -> dict[str, Any] | None:
    wanted = _text(identity).lower()
    domain = state["domain"].split(".")[0].lower()
    for user in state["users"]:
        names = {user["name"].lower(), user["upn"].lower(), user["sam_account_name"].lower(), user["id"],
                 f"{domain}\\{user['sam_account_name'].lower()}", _user_identity(state, user).lower()}
        if wanted in names:
            return user
    return None


def _user_identity(state: dict[str, Any], user: dict[str, Any]) -> str:
    return f"{state['domain']}/Users/{user['name']}"


def _config_dn(state: dict[str, Any], name: str, container: str) -> str:
    dc = ",".join(f"DC={part}" for part in state["domain"].split("."))
    return (f"CN={name},CN={container},CN=Auth Configuration,CN={state['organization']},CN=Microsoft Exchange,"
            f"CN=Services,CN=Configuration,{dc}")


# ------------------------------------------------------------------------------ objects
def _cert_string(pem: str) -> str:
    cert = x509.load_pem_x509_certificate(pem.encode())
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def _app_obj(state: dict[str, Any], app: dict[str, Any]) -> PSObj:
    linked = next((u for u in state["users"] if u["id"] == app["linked_account"]), None)
    return PSObj(list(T.T_PARTNER_APPLICATION), {
        "Enabled": app["enabled"],
        "ApplicationIdentifier": app["application_identifier"],
        "CertificateStrings": [_cert_string(p) for p in app["certificates"]],
        "AuthMetadataUrl": app["auth_metadata_url"],
        "Realm": app["realm"],
        "UseAuthServer": app["use_auth_server"],
        "AcceptSecurityIdentifierInformation": app["accept_sid"],
        "LinkedAccount": _user_identity(state, linked) if linked else None,
        "IssuerIdentifier": "",
        "AccountType": "OrganizationalAccount",
        "AdminDisplayName": "",
        "ExchangeVersion": T.EXCHANGE_VERSION,
        "Name": app["name"],
        "DistinguishedName": _config_dn(state, app["name"], "Partner Applications"),
        "Identity": app["name"],
        "Guid": uuid.UUID(app["id"]),
        "WhenChanged": app["changed"],
        "WhenCreated": app["created"],
        "IsValid": True,
        "ObjectState": "Unchanged",
    }, app["name"])


def _auth_server_obj(state: dict[str, Any], server: dict[str, Any]) -> PSObj:
    return PSObj(list(T.T_AUTH_SERVER), {
        "Name": server["name"], "IssuerIdentifier": server["issuer_identifier"], "Realm": server["realm"],
        "AuthMetadataUrl": server["auth_metadata_url"], "Type": server["type"], "Enabled": server["enabled"],
        "IsDefaultAuthorizationEndpoint": False,
        "CertificateStrings": [_cert_string(p) for p in server["certificates"]],
        "DistinguishedName": _config_dn(state, server["name"], "Auth Servers"), "Identity": server["name"],
        "Guid": uuid.UUID(server["id"]),
    }, server["name"])


def _user_obj(state: dict[str, Any], user: dict[str, Any]) -> PSObj:
    mail_user = user["recipient_type"] == "MailUser"
    props = {
        "Name": user["name"], "DisplayName": user["name"], "SamAccountName": user["sam_account_name"],
        "UserPrincipalName": user["upn"], "Sid": user["sid"],
        "RecipientType": user["recipient_type"], "RecipientTypeDetails": user["recipient_type"],
        "Identity": _user_identity(state, user), "Guid": uuid.UUID(user["id"]),
    }
    if mail_user:
        props |= {"ExternalEmailAddress": f"SMTP:{user['external_email']}",
                  "HiddenFromAddressListsEnabled": user["hidden"]}
    return PSObj(list(T.T_MAIL_USER if mail_user else T.T_USER), props, user["name"])


def _assignment_obj(state: dict[str, Any], assignment: dict[str, Any]) -> PSObj:
    user = next((u for u in state["users"] if u["id"] == assignment["user"]), None)
    return PSObj(list(T.T_ROLE_ASSIGNMENT), {
        "Name": assignment["name"], "Role": assignment["role"],
        "RoleAssignee": _user_identity(state, user) if user else None,
        "RoleAssigneeName": user["name"] if user else None, "RoleAssigneeType": "User",
        "AssignmentMethod": "Direct", "Enabled": assignment["enabled"], "Identity": assignment["name"],
        "Guid": uuid.UUID(assignment["id"]),
    }, assignment["name"])


# ------------------------------------------------------------------------------ metadata
def _download(org: Organization, url: str) -> PartnerMetadata:
    try:
        return org.download_metadata(url)
    except FetchFailed as exc:
        raise _fail(ErrorSpec(str(exc), "AuthMetadataDownloadFailed", "InvalidOperation", T.TASK_EXCEPTION,
                              target=url)) from None


def _refuse_duplicate_issuer(state: dict[str, Any], metadata: PartnerMetadata, *, except_id: str | None) -> None:
    issuer = f"{metadata.application_identifier}@{metadata.realm}"
    for app in state["partner_applications"]:
        if app["id"] != except_id and app["auth_metadata_url"] and \
                f"{app['application_identifier']}@{app['realm']}".lower() == issuer.lower():
            raise _fail(ErrorSpec(T.partner_application_exists(issuer, app["name"]), "PartnerApplicationExists",
                                  "ResourceExists", T.TASK_EXCEPTION, target=app["name"]))


def _linked_account(state: dict[str, Any], inv: Invocation) -> str | None:
    if not inv.has("LinkedAccount") or inv.param("LinkedAccount") in (None, ""):
        return None
    user = _find_user(state, inv.param("LinkedAccount"))
    if user is None:
        raise _fail(_not_found(state, _text(inv.param("LinkedAccount"))))
    return user["id"]


# ------------------------------------------------------------------------------ auth config
def get_auth_config(org: Organization, inv: Invocation) -> None:
    with org.store.view() as state:
        config = state["auth_config"]

        def tp(which: str) -> str | None:
            return thumbprint(key_pair_of(config[which]).certificate) if config[which] else None

        inv.write_output(PSObj(list(T.T_AUTH_CONFIG), {
            "CurrentCertificateThumbprint": tp("current"), "PreviousCertificateThumbprint": tp("previous"),
            "NextCertificateThumbprint": tp("next"), "NextCertificateEffectiveDate": config["next_effective"],
            "ServiceName": config["service_name"], "Realm": config["realm"], "Name": "Auth Configuration",
            "Identity": "Auth Configuration",
        }, "Auth Configuration"))


# ------------------------------------------------------------------------------ partner applications
def get_partner_application(org: Organization, inv: Invocation) -> None:
    with org.store.view() as state:
        _get_by_identity(inv, state, state["partner_applications"], _find_app, _app_obj)


def new_partner_application(org: Organization, inv: Invocation) -> None:
    name = str(inv.param("Name"))
    url = inv.param("AuthMetadataUrl")
    metadata = _download(org, str(url)) if url else None
    with org.store.change() as state:
        if any(a["name"].lower() == name.lower() for a in state["partner_applications"]):
            raise _fail(ErrorSpec(T.already_exists(_config_dn(state, name, "Partner Applications")),
                                  "ADObjectAlreadyExists", "WriteError", T.ALREADY_EXISTS_EXCEPTION, target=name))
        if metadata is not None:
            _refuse_duplicate_issuer(state, metadata, except_id=None)
        now = utc_text()
        app = {
            "id": str(uuid.uuid4()), "name": name,
            "application_identifier": metadata.application_identifier if metadata
            else str(inv.param("ApplicationIdentifier")).lower(),
            "auth_metadata_url": str(url) if url else None,
            "realm": metadata.realm if metadata else str(inv.param("Realm") or ""),
            "use_auth_server": metadata is None,
            "accept_sid": bool(inv.param("AcceptSecurityIdentifierInformation", False)),
            "enabled": bool(inv.param("Enabled", True)),
            "linked_account": _linked_account(state, inv),
            "certificates": list(metadata.certificates) if metadata else [],
            "created": now, "changed": now,
        }
        state["partner_applications"].append(app)
        inv.write_output(_app_obj(state, app))


def set_partner_application(org: Organization, inv: Invocation) -> None:
    with org.store.view() as state:
        app = _find_app(state, inv.param("Identity"))
        if app is None:
            raise _fail(_not_found(state, _text(inv.param("Identity"))))
        url = str(inv.param("AuthMetadataUrl") or app["auth_metadata_url"] or "")
    refresh = bool(inv.param("RefreshAuthMetadata", False)) or inv.has("AuthMetadataUrl")
    metadata = _download(org, url) if refresh and url else None
    with org.store.change() as state:
        app = _find_app(state, app["id"])
        assert app is not None
        if metadata is not None:
            _refuse_duplicate_issuer(state, metadata, except_id=app["id"])
            app.update(auth_metadata_url=url, application_identifier=metadata.application_identifier,
                       realm=metadata.realm, certificates=list(metadata.certificates), use_auth_server=False)
        for param, key in (("Enabled", "enabled"), ("AcceptSecurityIdentifierInformation", "accept_sid")):
            if inv.has(param):
                app[key] = bool(inv.param(param))
        if inv.has("LinkedAccount"):
            app["linked_account"] = _linked_account(state, inv)
        if inv.has("Name"):
            app["name"] = str(inv.param("Name"))
        Organization.touch(app)


def remove_partner_application(org: Organization, inv: Invocation) -> None:
    with org.store.view() as state:
        app = _find_app(state, inv.param("Identity"))
        if app is None:
            raise _fail(_not_found(state, _text(inv.param("Identity"))))
    # [C] Remove- cmdlets pause for confirmation: a remote session must pass -Confirm:$false.
    require_confirm(inv, "Remove-PartnerApplication", app["name"])
    with org.store.change() as state:
        state["partner_applications"] = [a for a in state["partner_applications"] if a["id"] != app["id"]]


# ------------------------------------------------------------------------------ auth servers
def get_auth_server(org: Organization, inv: Invocation) -> None:
    with org.store.view() as state:
        _get_by_identity(inv, state, state["auth_servers"], _find_auth_server, _auth_server_obj)


def new_auth_server(org: Organization, inv: Invocation) -> None:
    name = str(inv.param("Name"))
    url = inv.param("AuthMetadataUrl")
    metadata = _download(org, str(url)) if url else None
    kind = enum_value("Type", inv.param("Type"), ("ADFS", "AzureAD", "Facebook", "LinkedIn", "MicrosoftACS"),
                      "Microsoft.Exchange.Data.Directory.SystemConfiguration.AuthServerType") \
        if inv.has("Type") else "MicrosoftACS"
    with org.store.change() as state:
        if any(s["name"].lower() == name.lower() for s in state["auth_servers"]):
            raise _fail(ErrorSpec(T.already_exists(_config_dn(state, name, "Auth Servers")), "ADObjectAlreadyExists",
                                  "WriteError", T.ALREADY_EXISTS_EXCEPTION, target=name))
        server = {"id": str(uuid.uuid4()), "name": name, "auth_metadata_url": str(url) if url else None,
                  "issuer_identifier": metadata.application_identifier if metadata else "",
                  "realm": metadata.realm if metadata else "", "type": kind,
                  "enabled": bool(inv.param("Enabled", True)),
                  "certificates": list(metadata.certificates) if metadata else []}
        state["auth_servers"].append(server)
        inv.write_output(_auth_server_obj(state, server))


# ------------------------------------------------------------------------------ users and roles
def get_user(org: Organization, inv: Invocation) -> None:
    with org.store.view() as state:
        _get_by_identity(inv, state, state["users"], _find_user, _user_obj)


def new_mail_user(org: Organization, inv: Invocation) -> None:
    name = str(inv.param("Name"))
    external = str(inv.param("ExternalEmailAddress")).removeprefix("SMTP:").removeprefix("smtp:")
    with org.store.change() as state:
        if _find_user(state, name) is not None:
            dc = ",".join(f"DC={part}" for part in state["domain"].split("."))
            raise _fail(ErrorSpec(T.already_exists(f"CN={name},CN=Users,{dc}"), "ADObjectAlreadyExists", "WriteError",
                                  T.ALREADY_EXISTS_EXCEPTION, target=name))
        user = new_user(state["domain"], name, recipient_type="MailUser", external_email=external)
        state["users"].append(user)
        inv.write_output(_user_obj(state, user))


def _role(state: dict[str, Any], value: Any) -> str:
    wanted = _text(value)
    role = next((r for r in T.ROLES if r.lower() == wanted.lower()), None)
    if role is None:
        raise _fail(_not_found(state, wanted))
    return role


def get_management_role_assignment(org: Organization, inv: Invocation) -> None:
    with org.store.view() as state:
        assignments = list(state["role_assignments"])
        if inv.param("Identity") not in (None, ""):
            wanted = _text(inv.param("Identity")).lower()
            assignments = [a for a in assignments if wanted in (a["name"].lower(), a["id"])]
            if not assignments:
                inv.write_error(_not_found(state, wanted))
                return
        if inv.has("RoleAssignee"):
            user = _find_user(state, inv.param("RoleAssignee"))
            if user is None:
                inv.write_error(_not_found(state, _text(inv.param("RoleAssignee"))))
                return
            assignments = [a for a in assignments if a["user"] == user["id"]]
        if inv.has("Role"):
            role = _role(state, inv.param("Role"))
            assignments = [a for a in assignments if a["role"] == role]
        if inv.has("Enabled"):
            assignments = [a for a in assignments if a["enabled"] == bool(inv.param("Enabled"))]
        for assignment in assignments:
            inv.write_output(_assignment_obj(state, assignment))


def new_management_role_assignment(org: Organization, inv: Invocation) -> None:
    if not inv.has("User"):
        # [U] the lab's organization has no role groups or assignment policies to assign to.
        raise _fail(ErrorSpec("The lab's Exchange organization assigns roles to users only (-User).",
                              "NotSupportedInLab", "NotImplemented", T.TASK_EXCEPTION))
    with org.store.change() as state:
        role = _role(state, inv.param("Role"))
        user = _find_user(state, inv.param("User"))
        if user is None:
            raise _fail(_not_found(state, _text(inv.param("User"))))
        name = str(inv.param("Name") or f"{role}-{user['name']}")[:64]  # [C] automatic names are <role>-<assignee>
        if any(a["name"].lower() == name.lower() for a in state["role_assignments"]):
            dc = ",".join(f"DC={part}" for part in state["domain"].split("."))
            raise _fail(ErrorSpec(T.already_exists(f"CN={name},CN=Role Assignments,CN=RBAC,CN={state['organization']},"
                                                   f"CN=Microsoft Exchange,CN=Services,CN=Configuration,{dc}"),
                                  "ADObjectAlreadyExists", "WriteError", T.ALREADY_EXISTS_EXCEPTION, target=name))
        assignment = {"id": str(uuid.uuid4()), "name": name, "role": role, "user": user["id"], "enabled": True}
        state["role_assignments"].append(assignment)
        inv.write_output(_assignment_obj(state, assignment))


# ------------------------------------------------------------------------------ Test-OAuthConnectivity
def test_oauth_connectivity(org: Organization, inv: Invocation) -> None:
    service = enum_value("Service", inv.param("Service"), T.SERVICES, T.SERVICE_ENUM)
    user_sid = None
    mailbox_note = []
    if inv.has("Mailbox") and not inv.param("AppOnly", False):
        with org.store.view() as state:
            user = _find_user(state, inv.param("Mailbox"))
        if user is None or user["recipient_type"] != "UserMailbox":
            # [C] EX-HYB: this error can be ignored; the test goes on app-only [U].
            mailbox_note.append("The SMTP address has no mailbox associated with it.")
        else:
            user_sid = user["sid"]
    outcome = test_oauth(org, service=service, target_uri=str(inv.param("TargetUri")), user_sid=user_sid)
    detail = "\r\n".join([*mailbox_note, *outcome.log])
    inv.write_output(PSObj(list(T.T_VALIDATION_RESULT), {
        "Task": T.TEST_TASKS[service.lower()], "Detail": detail, "ResultType": outcome.result,
        "Identity": T.VALIDATION_RESULT_ID, "IsValid": True, "ObjectState": "New",
    }, T.VALIDATION_RESULT_ID))


CMDLETS: tuple[Cmdlet, ...] = (
    Cmdlet("Get-AuthConfig", get_auth_config),
    Cmdlet("Get-PartnerApplication", get_partner_application),
    Cmdlet("New-PartnerApplication", new_partner_application),
    Cmdlet("Set-PartnerApplication", set_partner_application),
    Cmdlet("Remove-PartnerApplication", remove_partner_application),
    Cmdlet("Get-AuthServer", get_auth_server),
    Cmdlet("New-AuthServer", new_auth_server),
    Cmdlet("Get-User", get_user),
    Cmdlet("New-MailUser", new_mail_user),
    Cmdlet("Get-ManagementRoleAssignment", get_management_role_assignment),
    Cmdlet("New-ManagementRoleAssignment", new_management_role_assignment),
    Cmdlet("Test-OAuthConnectivity", test_oauth_connectivity),
)


def register_cmdlets(table: CommandTable, org: Organization) -> None:
    """Register :data:`CMDLETS` over ``org``; they need no snap-in or module."""
    for row in CMDLETS:
        signature_cmdlet(table, row.name)(functools.partial(row.handler, org))
