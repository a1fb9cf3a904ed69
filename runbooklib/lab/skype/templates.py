"""Lab handlers for the Skype for Business script templates (``runbooklib/templates/skype/*.ps1``).

Each handler is a module-level function of the front end's :class:`~.frontend.FrontEnd` and the
bound invocation, doing on the front end's state what its template's PowerShell does on a real
server. :data:`TEMPLATES` maps each template to its handler and :data:`TEMPLATE_PARAMETERS` to
its param() block. Only the load template needs no module: the certificate template reads the
Cert: provider, which every server has.
"""

from __future__ import annotations

import functools
from typing import Callable

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ..powershell import throw
from ..winrm.api import CommandTable, Invocation, ParamSpec, PSObj, load_source, source_loaded
from . import texts as T
from .frontend import FrontEnd, dns_names

__all__ = ["LOAD_TEMPLATE", "TEMPLATES", "TEMPLATE_PARAMETERS", "register_templates"]

LOAD_TEMPLATE = "skype/load-skypeforbusiness"

# Template name → its param() block; a test checks these against the .ps1 files.
TEMPLATE_PARAMETERS: dict[str, dict[str, ParamSpec]] = {
    LOAD_TEMPLATE: {},
    "skype/get-certificates": {},
}


def _custom(properties: dict) -> PSObj:
    return PSObj(list(T.T_PSCUSTOMOBJECT), properties, None)


def load_skypeforbusiness(fe: FrontEnd, inv: Invocation) -> None:
    module = inv.commands.find_source(T.MODULE_NAME, "module")
    if module is None:
        raise throw(f"Skype for Business Server is not installed on this server: the module {T.MODULE_NAME} was "
                    "not found. Run this on a Front End Server of the pool.")
    loaded = "already" if source_loaded(inv.session, module.name) else "module"
    load_source(inv.session, module)
    inv.write_output(_custom({"Loaded": loaded, "Version": module.version}))


def _dotnet_name(name: x509.Name) -> str:
    return ", ".join(reversed([rdn.rfc4514_string() for rdn in name.rdns]))


def get_certificates(fe: FrontEnd, inv: Invocation) -> None:
    with fe.store.view() as state:
        entries = [dict(c) for c in fe.machine(state)["store"]]
    for entry in entries:
        cert = x509.load_pem_x509_certificate(entry["cert_pem"].encode())
        inv.write_output(_custom({
            "Thumbprint": entry["thumbprint"], "Subject": _dotnet_name(cert.subject),
            "Issuer": _dotnet_name(cert.issuer), "FriendlyName": entry["friendly_name"],
            "NotBefore": cert.not_valid_before_utc, "NotAfter": cert.not_valid_after_utc,
            "HasPrivateKey": bool(entry.get("key_pem")), "KeySize": cert.public_key().key_size,
            "DnsNames": dns_names(cert), "RawData": cert.public_bytes(serialization.Encoding.DER)}))


# Template name → its handler (parameters: :data:`TEMPLATE_PARAMETERS`).
TEMPLATES: dict[str, Callable[[FrontEnd, Invocation], None]] = {
    LOAD_TEMPLATE: load_skypeforbusiness,
    "skype/get-certificates": get_certificates,
}


def register_templates(table: CommandTable, fe: FrontEnd) -> None:
    """Register :data:`TEMPLATES` over ``fe``."""
    for name, handler in TEMPLATES.items():
        table.template(name, 1, TEMPLATE_PARAMETERS[name])(functools.partial(handler, fe))
