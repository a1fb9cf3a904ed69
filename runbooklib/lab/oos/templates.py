"""Lab handlers for the Office Online Server script templates (``runbooklib/templates/oos/*.ps1``).

Each handler is a module-level function of the server's :class:`~.machine.OosMachine` and the
bound invocation, doing on the server's state what its template's PowerShell does on a real
server. :data:`TEMPLATES` maps each template to its handler and :data:`TEMPLATE_PARAMETERS` to
its param() block. Where the PowerShell would throw, the handler ends the pipeline with the
record ``throw`` (or the failing cmdlet under ``$ErrorActionPreference = 'Stop'``) produces.
Only the load template needs no module: the others use the PKI module and IIS, which every
server has.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any, Callable

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from ..powershell import throw, validate_set
from ..winrm.api import (
    CommandTable,
    ErrorSpec,
    Invocation,
    ParamSpec,
    Secret,
    TerminatingError,
    load_source,
    source_loaded,
)
from . import texts as T
from .machine import OosMachine, certificate_row, custom, key_file

__all__ = ["LOAD_TEMPLATE", "TEMPLATES", "TEMPLATE_PARAMETERS", "register_templates"]

LOAD_TEMPLATE = "oos/load-officewebapps"
M = ParamSpec(mandatory=True)

# Template name → its param() block; a test checks these against the .ps1 files.
TEMPLATE_PARAMETERS: dict[str, dict[str, ParamSpec]] = {
    LOAD_TEMPLATE: {},
    "oos/get-certificates": {"Store": M},
    "oos/import-pfx-certificate": {"PfxBytes": M, "Password": M, "FriendlyName": M},
    "oos/import-root-certificate": {"CertificateRawData": M},
    "oos/grant-network-service-key-read": {"Thumbprint": M},
    "oos/export-certificate": {"Thumbprint": M},
    "oos/export-pfx-certificate": {"Thumbprint": M, "Password": M},
    "oos/get-restart-state": {},
    "oos/restart-iis": {},
}


def _bytes(param: str, value: object) -> bytes:
    if not isinstance(value, (bytes, bytearray)):
        raise throw(f'Cannot convert value "{value}" to type "System.Byte[]".')
    return bytes(value)


def _secure(param: str, value: object) -> str:
    if not isinstance(value, Secret):
        # [C] PowerShell will not turn a plain string into a [securestring] parameter.
        raise TerminatingError(ErrorSpec(
            f"Cannot process argument transformation on parameter '{param}'. Cannot convert the \"{value}\" "
            "value of type \"System.String\" to type \"System.Security.SecureString\".",
            "ParameterArgumentTransformationError", "InvalidData",
            "System.Management.Automation.ParameterBindingArgumentTransformationException"))
    return value.value


def _not_found(thumbprint: str, store: str = "My") -> TerminatingError:
    return TerminatingError(ErrorSpec(T.certificate_not_found(thumbprint, store), "PathNotFound,"
                                      "Microsoft.PowerShell.Commands.GetItemCommand", "ObjectNotFound",
                                      "System.Management.Automation.ItemNotFoundException"))


def load_officewebapps(machine: OosMachine, inv: Invocation) -> None:
    module = inv.commands.find_source(T.MODULE_NAME, "module")
    if module is None:
        raise throw(f"Office Online Server is not installed on this server: the module {T.MODULE_NAME} was not "
                    "found. Run this on a server of the Office Online Server farm.")
    loaded = "already" if source_loaded(inv.session, module.name) else "module"
    load_source(inv.session, module)
    inv.write_output(custom({"Loaded": loaded, "Version": module.version}))


def get_certificates(machine: OosMachine, inv: Invocation) -> None:
    store = validate_set("Store", inv.param("Store"), T.STORES)
    with machine.store.view() as state:
        entries = [dict(c) for c in machine.machine(state)["stores"][store]]
    for entry in entries:
        inv.write_output(certificate_row(entry))


def import_pfx_certificate(machine: OosMachine, inv: Invocation) -> None:
    data = _bytes("PfxBytes", inv.param("PfxBytes"))
    password = _secure("Password", inv.param("Password"))
    name = str(inv.param("FriendlyName") or "")
    wrong_password = TerminatingError(ErrorSpec(T.PFX_WRONG_PASSWORD, T.PFX_ERROR_ID, "NotSpecified", T.PFX_EXCEPTION))
    try:
        key, cert, _ = pkcs12.load_key_and_certificates(data, password.encode("utf-8"))
    except ValueError:
        raise wrong_password from None
    if cert is None:
        raise wrong_password
    entry = machine.add_certificate("My", cert, key if isinstance(key, rsa.RSAPrivateKey) else None,
                                    friendly_name=name, exportable=True)
    inv.write_output(custom({"Thumbprint": entry["thumbprint"], "FriendlyName": entry["friendly_name"]}))


def import_root_certificate(machine: OosMachine, inv: Invocation) -> None:
    data = _bytes("CertificateRawData", inv.param("CertificateRawData"))
    try:
        cert = x509.load_der_x509_certificate(data)
    except ValueError:
        raise throw("Cannot find the requested object.") from None  # [U] Import-Certificate on bad bytes
    entry = machine.add_certificate("Root", cert, None)
    inv.write_output(custom({"Thumbprint": entry["thumbprint"]}))


def _my_certificate(machine: OosMachine, inv: Invocation) -> dict[str, Any]:
    """The LocalMachine\\My certificate ``-Thumbprint`` names, or the error ``Get-Item Cert:\\…`` gives."""
    thumb = str(inv.param("Thumbprint"))
    with machine.store.view() as state:
        entry = machine.find(state, "My", thumb)
    if entry is None:
        raise _not_found(thumb)
    return entry


def grant_network_service_key_read(machine: OosMachine, inv: Invocation) -> None:
    entry = _my_certificate(machine, inv)
    if entry["key"] is None:
        raise throw(T.no_private_key(entry["thumbprint"]))
    entry, changed = machine.grant_key_read(entry["thumbprint"], T.NETWORK_SERVICE)
    inv.write_output(custom({"Thumbprint": entry["thumbprint"],
                             "KeyProvider": entry["key"]["provider"].upper(), "KeyFile": key_file(entry),
                             "Changed": changed}))


def export_certificate(machine: OosMachine, inv: Invocation) -> None:
    entry = _my_certificate(machine, inv)
    cert = x509.load_pem_x509_certificate(entry["cert_pem"].encode())
    inv.write_output(custom({"Thumbprint": entry["thumbprint"],
                             "RawData": cert.public_bytes(serialization.Encoding.DER)}))


def export_pfx_certificate(machine: OosMachine, inv: Invocation) -> None:
    password = _secure("Password", inv.param("Password"))
    entry = _my_certificate(machine, inv)
    if entry["key"] is None or not entry["key"]["exportable"]:
        # [C] Export-PfxCertificate on a key imported without -Exportable
        raise throw("Cannot export non-exportable private key.")
    cert = x509.load_pem_x509_certificate(entry["cert_pem"].encode())
    key = serialization.load_pem_private_key(entry["key"]["pem"].encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    data = pkcs12.serialize_key_and_certificates(
        None, key, cert, None, serialization.BestAvailableEncryption(password.encode("utf-8")))
    inv.write_output(custom({"Thumbprint": entry["thumbprint"], "PfxBytes": data}))


def get_restart_state(machine: OosMachine, inv: Invocation) -> None:
    with machine.store.view() as state:
        written = dt.datetime.fromisoformat(state["farm"]["settings_written"])
        started = dt.datetime.fromisoformat(machine.machine(state)["iis_started"])
    inv.write_output(custom({"SettingsWrittenUtc": written, "IisStartedUtc": started,
                             "RestartPending": started < written}))


def restart_iis(machine: OosMachine, inv: Invocation) -> None:
    machine.iisreset()
    inv.write_output(custom({"Output": list(T.IISRESET_OUTPUT)}))


# Template name → its handler (parameters: :data:`TEMPLATE_PARAMETERS`).
TEMPLATES: dict[str, Callable[[OosMachine, Invocation], None]] = {
    LOAD_TEMPLATE: load_officewebapps,
    "oos/get-certificates": get_certificates,
    "oos/import-pfx-certificate": import_pfx_certificate,
    "oos/import-root-certificate": import_root_certificate,
    "oos/grant-network-service-key-read": grant_network_service_key_read,
    "oos/export-certificate": export_certificate,
    "oos/export-pfx-certificate": export_pfx_certificate,
    "oos/get-restart-state": get_restart_state,
    "oos/restart-iis": restart_iis,
}


def register_templates(table: CommandTable, machine: OosMachine) -> None:
    """Register :data:`TEMPLATES` over ``machine``."""
    for name, handler in TEMPLATES.items():
        table.template(name, 1, TEMPLATE_PARAMETERS[name])(functools.partial(handler, machine))


