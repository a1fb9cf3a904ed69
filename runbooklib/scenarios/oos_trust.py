"""Scenario 2 — Office Online Server ↔ SharePoint Server (the S2S trust Excel Online's ODC
refresh and the Power Pivot IT Management Dashboard need).

Every OOS server holds the same certificate, with its key readable by NETWORK SERVICE; the OOS
farm signs with it (S2SCertificateName); the SharePoint farm trusts it twice — as Office Online
Server's SharePoint issuer and as its SQL Server issuer, each under its own name — and lets each
act app-only with full control at site-subscription scope. Every step checks first and changes
only what is missing; each proves its end state.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .._kernel import in_kernel
from ..certs import LoadedCertificate, check_usable, from_pfx, load_certificate, new_self_signed, short_thumbprint, to_pfx
from ..errors import CertificateError, InputError
from ..farm_trust_steps import (
    IssuerWanted,
    app_only_rights_step,
    certificate_issuers_step,
    issuer_conflicts,
    root_authority_step,
)
from ..oos import OosServer, StoreCertificate
from ..secrets import parse_secret_ref, register_secret, resolve_secret
from ..sharepoint import Farm, version_name
from ..steps import Check, Proof, step
from ..targets import Server
from ..wellknown import OOS_SHAREPOINT_ISSUER, OOS_SQL_ISSUER
from ..windows import computer_domain
from .fields import clean_thumbprint, web_url

__all__ = ["CertificateMaterial", "OosFacts", "Parameters", "STEPS", "validate_against"]

CertificateSource = Literal["pfx", "thumbprint", "self-signed"]
USER_PROFILE_SERVICE = "User Profile Service Application"


class Parameters(BaseModel):
    """What the administrator chooses for the Office Online Server trust."""

    model_config = ConfigDict(extra="forbid")

    oos_servers: Annotated[list[str], Server("oos")] = Field(
        min_length=1, description="inventory names of every server of the Office Online Server farm")
    farm: Annotated[str, Server("sharepoint")] = Field(description="inventory name of the SharePoint Server farm")
    site_url: str = Field(description="URL of the farm's top-level site collection, e.g. https://sharepoint.contoso.com")
    certificate: CertificateSource = Field(
        "pfx", description="pfx: a file with its password reference · thumbprint: already on every OOS server · "
                           "self-signed: made by the runbook (test estates only)")
    pfx_path: str | None = Field(None, description="the PFX file (relative paths start at the inventory's folder)")
    pfx_password: str | None = Field(None, description="secret reference to the PFX password (env:, file:, keyring:, prompt)")
    thumbprint: str | None = Field(None, description="thumbprint of the certificate installed on every OOS server")
    friendly_name: str = Field("OOS S2S", description="the certificate's friendly name: S2SCertificateName names it")
    self_signed_subject: str = Field("oos-s2s.contoso.lab", description="common name of a generated certificate")
    allow_outbound_http: bool = Field(False, description="let OOS call SharePoint over http (an http farm only)")
    allow_http_secure_store: bool = Field(
        False, description="allow Secure Store connections over http (ODC connection data then travels in clear text)")
    sharepoint_issuer_name: str = "Office Online Server (SharePoint)"
    sql_issuer_name: str = "Office Online Server (SQL Server)"
    root_authority_name: str = "Office Online Server S2S"

    @field_validator("site_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return web_url(value, expected="the site collection's URL")

    @field_validator("thumbprint")
    @classmethod
    def _thumbprint(cls, value: str | None) -> str | None:
        return None if value is None else clean_thumbprint(value)

    @field_validator("pfx_password")
    @classmethod
    def _reference(cls, value: str | None) -> str | None:
        if value is not None:
            parse_secret_ref(value, field="pfx_password")  # a literal password is refused here
        return value

    @model_validator(mode="after")
    def _source(self) -> "Parameters":
        if len({s.lower() for s in self.oos_servers}) != len(self.oos_servers):
            raise ValueError("oos_servers names a server twice")
        if self.sharepoint_issuer_name.strip().lower() == self.sql_issuer_name.strip().lower():
            raise ValueError("sharepoint_issuer_name and sql_issuer_name must differ: SharePoint refuses a second "
                             "trusted issuer with the same name")
        if self.certificate == "pfx" and not (self.pfx_path and self.pfx_password):
            raise ValueError("certificate: pfx needs pfx_path and pfx_password (a secret reference)")
        if self.certificate == "thumbprint" and not self.thumbprint:
            raise ValueError("certificate: thumbprint needs thumbprint")
        return self


def validate_against(params: Parameters, inventory: Any, *, source: str) -> None:
    """Resolve the PFX password now, so a missing one stops the run before anything is contacted."""
    if params.certificate != "pfx" or params.pfx_password is None:
        return
    if params.pfx_password.strip() == "prompt" and not in_kernel():
        raise InputError("'prompt' cannot be answered in a headless run", source=source, field="pfx_password",
                         hint="Use env:NAME, file:PATH or keyring:SERVICE/NAME, or run the notebook in JupyterLab.")
    resolve_secret(params.pfx_password, purpose=f"the password of {params.pfx_path}", interactive=in_kernel(),
                   base_dir=inventory.base_dir)


# -- facts ---------------------------------------------------------------------------------


def _farm(ctx: Any) -> Farm:
    return Farm(ctx.remote(ctx.params.farm), name=ctx.params.farm)


def _oos(ctx: Any, name: str) -> OosServer:
    return OosServer(ctx.remote(name), name=name)


@dataclass(frozen=True)
class CertificateMaterial:
    """The S2S certificate of this run: its public part, and what installs it on a server that lacks
    it (PFX bytes and their password; None when it is only to be found installed)."""

    certificate: LoadedCertificate
    pfx: bytes | None
    password: str | None
    self_signed: bool
    origin: str


class OosFacts:
    """What the OOS trust steps need, each read once per run on first use (``ctx.facts_of(OosFacts)``)."""

    def __init__(self, ctx: Any) -> None:
        self._ctx = ctx

    @cached_property
    def material(self) -> CertificateMaterial:
        """The certificate, loaded (PFX), found (thumbprint, or an earlier self-signed one) or made."""
        p, ctx = self._ctx.params, self._ctx
        if p.certificate == "pfx":
            base = ctx.inventory.base_dir
            cert = load_certificate(p.pfx_path, password_ref=p.pfx_password, base_dir=base)
            # Sent on under a one-time password: the file's own password never leaves this machine.
            password = _one_time_password()
            return CertificateMaterial(cert, to_pfx(cert, password), password, cert.is_self_signed,
                                       f"the PFX file {cert.source}")
        if p.certificate == "thumbprint":
            holder = next((s for s in p.oos_servers if _oos(ctx, s).certificate(p.thumbprint)), None)
            if holder is None:
                raise CertificateError(f"no OOS server has the certificate {p.thumbprint} in LocalMachine\\My",
                                       hint="Install it on every OOS server first, or use certificate: pfx.")
            cert = load_certificate(_oos(ctx, holder).export_certificate(p.thumbprint))
            return CertificateMaterial(cert, None, None, cert.is_self_signed, f"installed on {holder}")
        return self._self_signed()

    def _self_signed(self) -> CertificateMaterial:
        p, ctx = self._ctx.params, self._ctx
        password = _one_time_password()
        for name in p.oos_servers:  # one made by an earlier run: every server must get the same
            server = _oos(ctx, name)
            found = next((c for c in server.certificates() if c.friendly_name == p.friendly_name
                          and c.has_private_key and c.subject == c.issuer), None)
            if found is not None:
                pfx = server.export_pfx(found.thumbprint, password)
                return CertificateMaterial(from_pfx(pfx, password, source=f"{name}: {found.thumbprint}"), pfx,
                                           password, True, f"self-signed, made by an earlier run, found on {name}")
        made = new_self_signed(p.self_signed_subject)
        note = getattr(ctx, "minted", None)
        if callable(note):  # a new one on every run: no departure from the plan that named another
            note(made.thumbprint, short_thumbprint(made.thumbprint))
        return CertificateMaterial(made, to_pfx(made, password), password, True, "self-signed, made by this run")

    @cached_property
    def exported(self) -> LoadedCertificate:
        """The public certificate exported from the first OOS server (DER, no key) — what SharePoint trusts."""
        p = self._ctx.params
        thumbprint = self.material.certificate.thumbprint
        server = _oos(self._ctx, p.oos_servers[0])
        if server.certificate(thumbprint) is None:  # plan mode before step 1: the same public part
            return load_certificate(self.material.certificate.der)
        return load_certificate(server.export_certificate(thumbprint))

    def issuers(self) -> list[IssuerWanted]:
        p = self._ctx.params
        return [IssuerWanted(p.sharepoint_issuer_name, OOS_SHAREPOINT_ISSUER),
                IssuerWanted(p.sql_issuer_name, OOS_SQL_ISSUER)]


def _one_time_password() -> str:
    """A password for PFX bytes this run sends to a server, registered with the redactor."""
    password = secrets.token_urlsafe(24)
    register_secret(password)
    return password


def _facts(ctx: Any) -> OosFacts:
    return ctx.facts_of(OosFacts)


# -- step 0: pre-flight --------------------------------------------------------------------


def _preflight_check(ctx: Any) -> Check:
    """Everything that can stop the trust, read before anything changes; the first problem fails it."""
    p = ctx.params
    farm = _farm(ctx)
    found: list[str] = []
    evidence: dict[str, Any] = {}
    wanted = ("both farms answering, in one forest, a User Profile service application, a usable certificate "
              "the same on every OOS server")

    def stop(problem: str, hint: str) -> Check:
        return Check(found="; ".join(found), wanted=wanted, evidence=evidence, failure=problem, hint=hint)

    for name in p.oos_servers:
        settings = _oos(ctx, name).farm_settings()
        found.append(f"{name}: OOS farm of {', '.join(settings.machines)}")
    build = farm.build_version()
    found.append(f"{p.farm}: {version_name(build)} ({build})")
    evidence["farm_build"] = build

    forests = {name: computer_domain(ctx.remote(name), name=name).forest for name in [p.farm, *p.oos_servers]}
    evidence["forests"] = forests
    if len(set(forests.values())) > 1:
        listing = ", ".join(f"{n} in {f}" for n, f in forests.items())
        return stop(f"the servers are not in one Active Directory forest: {listing}",
                    "Office Online Server and SharePoint must be in the same forest: users' identities in the "
                    "S2S tokens must resolve in SharePoint's User Profile service. Use an OOS farm of that forest.")
    found.append(f"forest {next(iter(forests.values()))}")

    applications = [a.name for a in farm.service_applications() if a.type_name == USER_PROFILE_SERVICE]
    evidence["user_profile_service_applications"] = applications
    if not applications:
        return stop(f"{p.farm} has no User Profile service application",
                    "Create and start a User Profile service application on the farm (SharePoint rebuilds the "
                    "user of each OOS request from it), then run again. Nothing was changed.")
    if not farm.web_application_exists(p.site_url):
        return stop(f"{p.farm} has no web application at {p.site_url}",
                    "Set site_url to the farm's top-level site collection (Get-SPSite).")

    try:
        material = _facts(ctx).material
        check_usable(material.certificate, need_private_key=p.certificate != "thumbprint")
    except CertificateError as exc:
        return stop(exc.message, exc.hint or "Use another certificate.")
    cert = material.certificate
    evidence["certificate"] = {"thumbprint": cert.thumbprint, "subject": cert.subject, "key_size": cert.key_size,
                               "not_after": cert.not_after.isoformat(), "self_signed": material.self_signed,
                               "origin": material.origin}
    found.append(f"certificate {short_thumbprint(cert.thumbprint)} ({cert.key_size} bits, valid to "
                 f"{cert.not_after:%Y-%m-%d}, {material.origin})")

    for name in p.oos_servers:
        problem = _store_problem(name, _oos(ctx, name).certificates(), cert.thumbprint, p)
        if problem:
            return stop(*problem)
    conflicts = issuer_conflicts(farm.certificate_issuers(), _facts(ctx).issuers(), cert.thumbprint)
    if conflicts:
        return stop("; ".join(conflicts), "Remove the old issuer (Remove-SPTrustedSecurityTokenIssuer '<name>' "
                                          "-Confirm:$false) if it holds a retired certificate, or choose other "
                                          "issuer names; then run again.")
    warnings = []
    if material.self_signed:
        warnings.append("the certificate is self-signed: fit for a test estate only; use one from your CA in production")
    return Check(found="; ".join(found), wanted=wanted, evidence=evidence, warnings=warnings)


def _store_problem(name: str, installed: list[StoreCertificate], thumbprint: str,
                   p: Parameters) -> tuple[str, str] | None:
    """What on one OOS server's Personal store stands in the way, and the fix."""
    ours = next((c for c in installed if c.thumbprint == thumbprint), None)
    if p.certificate == "thumbprint":
        if ours is None or not ours.has_private_key:
            return (f"{name} does not have the certificate {thumbprint} with its private key in LocalMachine\\My",
                    "Install the same certificate (with its key) on every OOS server, or use certificate: pfx.")
        if ours.friendly_name != p.friendly_name:
            return (f"on {name} the certificate {short_thumbprint(thumbprint)} is named '{ours.friendly_name}', "
                    f"not '{p.friendly_name}'",
                    f"Set friendly_name to '{ours.friendly_name}' if every server uses that name, or rename it: "
                    f"(Get-Item Cert:\\LocalMachine\\My\\{thumbprint}).FriendlyName = '{p.friendly_name}'.")
    others = [c for c in installed if c.friendly_name == p.friendly_name and c.thumbprint != thumbprint]
    if others:
        return (f"on {name} another certificate ({short_thumbprint(others[0].thumbprint)}) already has the friendly "
                f"name '{p.friendly_name}'; Office Online Server could not tell which one to sign with",
                "Remove or rename the old certificate on that server, or choose another friendly_name.")
    return None


def _preflight_verify(ctx: Any, found: Check) -> Proof:
    return Proof(ok=True, text="all prerequisites met")


PREFLIGHT = step("preflight", "Pre-flight: both farms, one forest, User Profile service, the certificate",
                 check=_preflight_check, verify=_preflight_verify)


# -- step 1: the certificate on every OOS server -------------------------------------------


def _server_gaps(ctx: Any, name: str) -> list[str]:
    """What server ``name`` lacks of the certificate, in words ([] when it has everything)."""
    material, p = _facts(ctx).material, ctx.params
    server = _oos(ctx, name)
    thumbprint = material.certificate.thumbprint
    ours = server.certificate(thumbprint)
    gaps = []
    if ours is None or not ours.has_private_key or ours.friendly_name != p.friendly_name:
        gaps.append(f"import the certificate into LocalMachine\\My on {name} as '{p.friendly_name}'")
    if material.self_signed and server.certificate(thumbprint, "Root") is None:
        gaps.append(f"trust it in LocalMachine\\Root on {name} (self-signed)")
    if ours is None or not ours.network_service_can_read:
        gaps.append(f"let NETWORK SERVICE read its private key on {name}")
    return gaps


def _import_check(ctx: Any) -> Check:
    p = ctx.params
    thumbprint = _facts(ctx).material.certificate.thumbprint
    changes = [gap for name in p.oos_servers for gap in _server_gaps(ctx, name)]
    return Check(found="; ".join(f"{n}: {'missing parts' if _server_gaps(ctx, n) else 'complete'}"
                                 for n in p.oos_servers),
                 wanted=f"{short_thumbprint(thumbprint)} in Personal with its key readable by NETWORK SERVICE on "
                        "every OOS server", changes=changes, evidence={"thumbprint": thumbprint})


def _import_apply(ctx: Any, found: Check) -> list[str]:
    material, p = _facts(ctx).material, ctx.params
    thumbprint = material.certificate.thumbprint
    made = []
    for name in p.oos_servers:
        server = _oos(ctx, name)
        ours = server.certificate(thumbprint)
        if ours is None or not ours.has_private_key or ours.friendly_name != p.friendly_name:
            if material.pfx is None or material.password is None:
                raise CertificateError(f"{name} lacks the certificate {thumbprint} and the runbook has no PFX of it",
                                       hint="Install it there with its key, or use certificate: pfx.")
            server.import_pfx(material.pfx, material.password, p.friendly_name)
            made.append(f"imported {short_thumbprint(thumbprint)} into LocalMachine\\My on {name}")
        if material.self_signed and server.certificate(thumbprint, "Root") is None:
            server.import_root(material.certificate.der)
            made.append(f"trusted it in LocalMachine\\Root on {name}")
        grant = server.grant_network_service_key_read(thumbprint)
        if grant.changed:
            made.append(f"let NETWORK SERVICE read {grant.key_file} ({grant.key_provider}) on {name}")
    return made


def _import_verify(ctx: Any, found: Check) -> Proof:
    p = ctx.params
    gaps = {name: _server_gaps(ctx, name) for name in p.oos_servers}
    missing = [g for g in gaps.values() for g in g]
    return Proof(ok=not missing, text="; ".join(missing) or
                 f"every OOS server holds {short_thumbprint(_facts(ctx).material.certificate.thumbprint)} as "
                 f"'{p.friendly_name}' with its key readable by NETWORK SERVICE",
                 evidence={"missing": gaps},
                 hint="Check the server that still lacks it (is it reachable?), then run again: what is there is kept.")


IMPORT = step("oos-certificate", "Import the certificate on every Office Online Server", check=_import_check,
              apply=_import_apply, verify=_import_verify)


# -- step 2: export the public certificate -------------------------------------------------


def _export_check(ctx: Any) -> Check:
    exported = _facts(ctx).exported
    return Check(found=f"{exported.describe()}, DER, no private key",
                 wanted="the public certificate SharePoint will trust",
                 evidence={"thumbprint": exported.thumbprint, "has_private_key": exported.has_private_key})


def _export_verify(ctx: Any, found: Check) -> Proof:
    exported, material = _facts(ctx).exported, _facts(ctx).material
    same = exported.thumbprint == material.certificate.thumbprint
    return Proof(ok=same and not exported.has_private_key,
                 text=f"exported {exported.thumbprint} (DER, public key only)" if same
                 else f"exported {exported.thumbprint}, expected {material.certificate.thumbprint}",
                 hint="The OOS servers hold another certificate than this run's: run step 1 again.")


EXPORT = step("export-certificate", "Export the public certificate for SharePoint", check=_export_check,
              verify=_export_verify)


# -- step 3: the OOS farm signs with it ----------------------------------------------------


def _wanted_settings(ctx: Any) -> dict[str, Any]:
    p = ctx.params
    wanted: dict[str, Any] = {"s2s_certificate_name": p.friendly_name}
    if p.allow_outbound_http:
        wanted["allow_outbound_http"] = True
    if p.allow_http_secure_store:
        wanted["allow_http_secure_store_connections"] = True
    return wanted


def _farm_check(ctx: Any) -> Check:
    p = ctx.params
    settings = _oos(ctx, p.oos_servers[0]).farm_settings()
    wanted = _wanted_settings(ctx)
    differ = {k: v for k, v in wanted.items() if getattr(settings, k) != v}
    changes = [f"set {k.replace('_', ' ')} to {v!r}" for k, v in differ.items()]
    pending = [n for n in p.oos_servers if _oos(ctx, n).restart_state().pending]
    restart = list(p.oos_servers) if differ else pending
    changes += [f"restart IIS (iisreset) on {n}" for n in restart]
    warnings = []
    if p.allow_http_secure_store:
        warnings.append("Secure Store connections over http: ODC files' connection data (and any passwords in it) "
                        "travel in clear text")
    if p.allow_outbound_http:
        warnings.append("outbound http: Office Online Server calls SharePoint unencrypted")
    return Check(found=f"S2SCertificateName '{settings.s2s_certificate_name}', AllowOutboundHttp "
                       f"{settings.allow_outbound_http}, AllowHttpSecureStoreConnections "
                       f"{settings.allow_http_secure_store_connections}"
                       + (f"; restart pending on {', '.join(pending)}" if pending else ""),
                 wanted=f"S2SCertificateName '{p.friendly_name}', every server restarted since", changes=changes,
                 warnings=warnings, evidence={"restart_pending": pending}, data=differ)


def _farm_apply(ctx: Any, found: Check) -> list[str]:
    p = ctx.params
    differ: dict[str, Any] = found.data
    made = []
    if differ:
        _oos(ctx, p.oos_servers[0]).set_farm(**differ)
        made += [f"set {k.replace('_', ' ')} to {v!r}" for k, v in differ.items()]
    for name in p.oos_servers:  # only where the settings are newer than IIS
        server = _oos(ctx, name)
        if server.restart_state().pending:
            server.restart_iis()
            made.append(f"restarted IIS on {name}")
    return made


def _farm_verify(ctx: Any, found: Check) -> Proof:
    p = ctx.params
    settings = _oos(ctx, p.oos_servers[0]).farm_settings()
    differ = [k for k, v in _wanted_settings(ctx).items() if getattr(settings, k) != v]
    pending = [n for n in p.oos_servers if _oos(ctx, n).restart_state().pending]
    text = f"Get-OfficeWebAppsFarm: S2SCertificateName = '{settings.s2s_certificate_name}'"
    if differ:
        text += f"; still different: {', '.join(differ)}"
    if pending:
        text += f"; IIS not restarted since on {', '.join(pending)}"
    return Proof(ok=not differ and not pending, text=text,
                 evidence={"s2s_certificate_name": settings.s2s_certificate_name, "restart_pending": pending},
                 hint="Run iisreset on the servers named (check they are reachable), then run again.")


OOS_FARM = step("oos-farm", "Point the Office Online Server farm at the certificate", check=_farm_check,
                apply=_farm_apply, verify=_farm_verify)


# -- step 4: SharePoint trusts it ----------------------------------------------------------

ISSUERS = certificate_issuers_step("sharepoint-issuers", "Register Office Online Server's issuers on SharePoint",
                                   farm=_farm, issuers=lambda ctx: _facts(ctx).issuers(),
                                   certificate=lambda ctx: _facts(ctx).exported)

APP_RIGHTS = app_only_rights_step("app-permissions", "App-only full control for Office Online Server's principals",
                                  farm=_farm, site=lambda ctx: ctx.params.site_url,
                                  issuers=lambda ctx: _facts(ctx).issuers())

ROOT_AUTHORITY = root_authority_step("root-authority", "Trust the self-signed certificate as a root authority",
                                     farm=_farm, name=lambda ctx: ctx.params.root_authority_name,
                                     certificate=lambda ctx: _facts(ctx).exported,
                                     needed=lambda ctx: _facts(ctx).material.self_signed,
                                     skip_reason="not needed: the certificate is issued by a CA the farm trusts")

STEPS = [PREFLIGHT, IMPORT, EXPORT, OOS_FARM, ISSUERS, APP_RIGHTS, ROOT_AUTHORITY]
