"""Scenario 1 — SharePoint Server ↔ SharePoint in Microsoft 365 (hybrid S2S trust through Entra ID).

The farm's STS certificate becomes a key of the SharePoint Online service principal, the farm
takes the tenant id as its realm, and the farm trusts ACS (the Entra ID trust broker). Every step
checks first and changes only what is missing; each proves its end state.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..certs import LoadedCertificate, check_usable, load_certificate, short_thumbprint
from ..errors import MetadataError, RemoteError
from ..farm_steps import acs_trust_step, app_principal_step, oauth_over_http_step, realm_step
from ..graph import Principal
from ..metadata import parse_metadata
from ..principal_steps import expired_keys_step, key_upload_step, spn_step
from ..sharepoint import Farm, version_name
from ..sharepoint_trust import RealmImpact, acs_issuer_name, acs_trust, realm_impact
from ..steps import Check, Proof, step
from ..targets import Server, Tenant
from ..wellknown import SHAREPOINT_PRINCIPAL_ID
from .fields import web_url

__all__ = ["HybridFacts", "Parameters", "STEPS"]

Zone = Literal["Default", "Intranet", "Internet", "Custom", "Extranet"]
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


class Parameters(BaseModel):
    """What the administrator chooses for a hybrid trust."""

    model_config = ConfigDict(extra="forbid")

    farm: Annotated[str, Server("sharepoint")] = Field(description="inventory name of the SharePoint Server farm")
    tenant: Annotated[str, Tenant()] = Field(description="inventory name of the Microsoft 365 tenant")
    web_application: str = Field(description="URL of the web application hybrid features use, e.g. https://sharepoint.contoso.com")
    zone: Zone = "Default"
    public_root_domain: str = Field(description="public root domain the wildcard SPN covers, e.g. contoso.com")
    realm_change: Literal["block", "accept", "reregister"] = Field(
        "block", description="what to do when changing the farm realm breaks existing issuers or app principals")
    acs_name: str = Field("ACS", description="name of the ACS proxy and trusted token issuer")
    prune_expired_keys: bool = Field(
        False, description="also remove keys of the SharePoint Online principal whose end date has passed")
    app_principal_display_name: str = "SharePoint Online"

    @field_validator("web_application")
    @classmethod
    def _url(cls, value: str) -> str:
        return web_url(value, expected="the web application's URL")

    @field_validator("public_root_domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        domain = value.strip().lower()
        if domain.startswith(("*.", "http:", "https:")) or "/" in domain:
            raise ValueError("expected the domain name only (e.g. contoso.com): no protocol, no wildcard")
        if not _DOMAIN.match(domain):
            raise ValueError("expected a DNS domain name such as contoso.com")
        return domain


# -- facts ---------------------------------------------------------------------------------


def _farm(ctx: Any) -> Farm:
    return Farm(ctx.remote(ctx.params.farm), name=ctx.params.farm)


def _graph(ctx: Any) -> Any:
    return ctx.graph(ctx.params.tenant)


def _spo(ctx: Any) -> Principal:
    return _graph(ctx).principal(SHAREPOINT_PRINCIPAL_ID)


def _acs_metadata_url(ctx: Any) -> str:
    return ctx.inventory.tenant(ctx.params.tenant).acs_metadata_url


class HybridFacts:
    """What the hybrid steps need, each read once per run, on first use — whichever step asks first.

    A run holds one: ``ctx.facts_of(HybridFacts)``. A fact that could not be read is
    read again next time it is asked for.
    """

    def __init__(self, ctx: Any) -> None:
        self._ctx = ctx

    @cached_property
    def tenant_id(self) -> str:
        return _graph(self._ctx).tenant_id().lower()

    @cached_property
    def farm_build(self) -> str:
        return _farm(self._ctx).build_version()

    @cached_property
    def sts_certificate(self) -> LoadedCertificate:
        """The farm's STS signing certificate, checked usable (unexpired, key size)."""
        certificate = load_certificate(_farm(self._ctx).sts_certificate().der)
        check_usable(certificate)
        return certificate

    @cached_property
    def spo_principal_id(self) -> str:
        """The object id of the tenant's SharePoint Online principal."""
        return _spo(self._ctx).object_id()

    @property
    def spo_name_identifier(self) -> str:
        """The app principal name the farm registers for SharePoint Online: ``<object id>@<tenant id>``."""
        return f"{self.spo_principal_id}@{self.tenant_id}"


def _facts(ctx: Any) -> HybridFacts:
    return ctx.facts_of(HybridFacts)


# -- step 0: pre-flight --------------------------------------------------------------------

_NTLM_REMEDY = ("Either extend this web application into a new zone that uses Integrated Windows authentication "
                "with NTLM (keeps the content database and its sites), or create a new web application with NTLM "
                "and a new content database; then set web_application (and zone) to it and run again. "
                "Nothing was changed.")


def _preflight_check(ctx: Any) -> Check:
    """Everything that can stop the trust, read before anything changes; the first problem fails it."""
    p = ctx.params
    farm = _farm(ctx)
    known = _facts(ctx)
    build = known.farm_build
    tenant_id = known.tenant_id
    evidence: dict[str, Any] = {"farm_build": build, "farm_version": version_name(build), "tenant_id": tenant_id}
    wanted = "a reachable farm and tenant, an NTLM zone, a usable STS certificate, a safe realm change"
    found = [f"{version_name(build)} ({build})", f"tenant {tenant_id}"]

    def stop(problem: str, hint: str) -> Check:
        return Check(found="; ".join(found), wanted=wanted, evidence=evidence, failure=problem, hint=hint)

    if not farm.web_application_exists(p.web_application):
        found.append(f"no web application at {p.web_application}")
        return stop(f"{p.farm} has no web application at {p.web_application}",
                    "Set web_application to the URL of an existing web application (Get-SPWebApplication).")
    auth = farm.windows_authentication(p.web_application, p.zone)
    evidence["authentication"] = auth.kind if auth else "no Windows authentication provider"
    found.append(f"{p.zone} zone: {evidence['authentication']}")
    if auth is None or not (auth.integrated and auth.ntlm):
        return stop(f"the {p.zone} zone of {p.web_application} uses {evidence['authentication']}; hybrid needs "
                    "Integrated Windows authentication with NTLM", _NTLM_REMEDY)

    certificate = known.sts_certificate
    evidence["sts_certificate"] = {"thumbprint": certificate.thumbprint, "subject": certificate.subject,
                                   "not_after": certificate.not_after.isoformat(), "key_size": certificate.key_size}
    found.append(f"STS certificate {short_thumbprint(certificate.thumbprint)} valid to "
                 f"{certificate.not_after:%Y-%m-%d}")

    acs = _check_acs_metadata(ctx, farm, tenant_id)
    evidence["acs_metadata"] = acs
    if acs.get("unreachable"):
        return stop(f"{p.farm} cannot download the tenant's ACS metadata at {acs['url']}: {acs['unreachable']}",
                    f"The farm itself downloads it when it creates the ACS proxy and trust broker, through its own "
                    f"proxy and TLS settings. Give the servers of {p.farm} outbound https access to "
                    "accounts.accesscontrol.windows.net (a proxy in the machine configuration or web.config "
                    "defaultProxy, TLS 1.2 enabled for .NET with SchUseStrongCrypto), then run again. Nothing was "
                    "changed.")
    if acs.get("problem"):
        return stop(f"the tenant's ACS metadata at {acs['url']} is not usable: {acs['problem']}",
                    "Check acs_metadata_url of the tenant in the inventory: it must be "
                    "https://accounts.accesscontrol.windows.net/<tenant id>/metadata/json/1.")
    conflict = acs_trust(farm, acs["url"], name=p.acs_name).conflict()
    if conflict:
        return stop(*conflict)

    current_realm = farm.realm()
    evidence["farm_realm"] = current_realm
    found.append(f"realm {current_realm}")
    impact = realm_impact(farm, current_realm, tenant_id, site=p.web_application)
    evidence["realm_change_impact"] = impact.describe()
    warnings: list[str] = []
    if impact:
        message = _realm_impact_message(impact, current_realm, tenant_id)
        if p.realm_change == "block":
            return stop(message, "Set realm_change: reregister to move them to the new realm as part of this run, "
                                 "or realm_change: accept if you will re-register them yourself. Nothing was changed.")
        if impact.unreadable and p.realm_change == "reregister":
            sites = ", ".join(u.site for u in impact.unreadable)
            return stop(message, f"What {sites} holds cannot be re-registered unseen. Give the runbook's account "
                                 "access to those site collections (or bring their content databases online) and run "
                                 "again, or set realm_change: accept if you will check them yourself. Nothing was "
                                 "changed.")
        warnings.append(message + (" — they will be re-registered under the new realm"
                                   if p.realm_change == "reregister" else " — accepted: re-register them yourself"))
    if p.web_application.startswith("http://"):
        warnings.append(f"{p.web_application} uses http: OAuth over HTTP must be enabled on the farm. "
                        "SSL (https) is the default and what we recommend.")
    return Check(found="; ".join(found), wanted=wanted, evidence=evidence, warnings=warnings)


def _realm_impact_message(impact: RealmImpact, current_realm: str, tenant_id: str) -> str:
    # Only what depends on the farm realm is listed: issuers with a fixed realm of their own
    # (Office Online Server's, any <id>@*) and metadata-based ones are untouched by the change.
    listing = "; ".join(impact.describe())
    if current_realm != tenant_id:
        return (f"changing the farm realm from {current_realm} to {tenant_id} breaks what is registered under the "
                f"current realm (KB 4010011): {listing}")
    return (f"the farm realm is already {tenant_id}, but these are still registered under an old realm and do "
            f"not work (KB 4010011): {listing}")


def _check_acs_metadata(ctx: Any, farm: Farm, tenant_id: str) -> dict[str, Any]:
    """Have the farm fetch the tenant's ACS metadata now, as it will for the ACS proxy and trust
    broker (its network, its proxy, its TLS settings), so a farm without outbound access or a
    wrong URL fails before the realm changes."""
    url = _acs_metadata_url(ctx)
    try:
        document = farm.partner_metadata(url)
    except RemoteError as exc:
        return {"url": url, "unreachable": exc.reason or exc.message}
    try:
        metadata = parse_metadata(document, url=url)
    except MetadataError as exc:
        return {"url": url, "problem": exc.message}
    expected = acs_issuer_name(tenant_id)
    result: dict[str, Any] = {"url": url, "issuer": metadata.issuer,
                              "signing_certificates": list(metadata.thumbprints)}
    if metadata.issuer.lower() != expected:
        result["problem"] = f"it names issuer {metadata.issuer}, expected {expected}"
    elif not metadata.signing_certificates:
        result["problem"] = "it publishes no signing certificate"
    return result


def _preflight_verify(ctx: Any, found: Check) -> Proof:
    return Proof(ok=True, text="all prerequisites met", evidence={})


PREFLIGHT = step("preflight", "Pre-flight: farm, tenant, authentication, certificate, realm impact",
                 check=_preflight_check, verify=_preflight_verify)


# -- step 0b: OAuth over HTTP --------------------------------------------------------------

OAUTH_OVER_HTTP = oauth_over_http_step("oauth-over-http", "OAuth over HTTP (only for an http web application)",
                                       farm=_farm, web_application=lambda ctx: ctx.params.web_application)


# -- step 1: tenant ------------------------------------------------------------------------


def _tenant_check(ctx: Any) -> Check:
    known = _facts(ctx)
    tenant_id = known.tenant_id
    principal = _spo(ctx).read()
    return Check(
        found=f"tenant {tenant_id}; SharePoint Online principal {principal.object_id} "
              f"({len(principal.key_credentials)} keys, {len(principal.service_principal_names)} SPNs)",
        wanted="the tenant id and the SharePoint Online service principal",
        evidence={"tenant_id": tenant_id, "spo_principal_id": principal.object_id, "app_id": principal.app_id,
                  "keys": [k.describe() for k in principal.key_credentials]},
    )


def _tenant_verify(ctx: Any, found: Check) -> Proof:
    principal_id = _facts(ctx).spo_principal_id
    return Proof(ok=bool(principal_id),
                 text=f"Graph servicePrincipals(appId={SHAREPOINT_PRINCIPAL_ID}) → {principal_id}")


TENANT = step("tenant", "Tenant id and the SharePoint Online service principal", check=_tenant_check,
              verify=_tenant_verify)


# -- steps 2, 2b, 3: the SharePoint Online principal's keys and SPN -----------------------

STS_KEY = key_upload_step("sts-certificate", "Upload the farm's STS certificate to SharePoint in Microsoft 365",
                          principal=_spo, certificate=lambda ctx: _facts(ctx).sts_certificate,
                          display_name=lambda ctx: f"{ctx.params.farm} STS")

EXPIRED_KEYS = expired_keys_step("expired-keys",
                                 "Remove expired keys of the SharePoint Online principal (only on request)",
                                 principal=_spo, prune_field="prune_expired_keys")

SPN = spn_step("spn", "Wildcard SPN for the public root domain", principal=_spo,
               root_domain=lambda ctx: ctx.params.public_root_domain)


# -- step 4: SharePoint Online app principal on the farm -----------------------------------

APP_PRINCIPAL = app_principal_step("spo-app-principal", "Register the SharePoint Online app principal on the farm",
                                   farm=_farm, site=lambda ctx: ctx.params.web_application,
                                   name_identifier=lambda ctx: _facts(ctx).spo_name_identifier,
                                   display_name=lambda ctx: ctx.params.app_principal_display_name)


# -- step 5: realm -------------------------------------------------------------------------

REALM = realm_step("realm", "Set the farm's authentication realm to the tenant id", farm=_farm,
                   realm=lambda ctx: _facts(ctx).tenant_id, realm_change=lambda ctx: ctx.params.realm_change,
                   site=lambda ctx: ctx.params.web_application)


# -- step 6: ACS proxy and trust broker ----------------------------------------------------

ACS_TRUST = acs_trust_step("acs-trust", "Trust Entra ID (ACS) as the farm's token broker", farm=_farm,
                           metadata_url=_acs_metadata_url, name=lambda ctx: ctx.params.acs_name,
                           tenant_id=lambda ctx: _facts(ctx).tenant_id)


# -- step 7: federated search update (by hand) ---------------------------------------------


def _federated_check(ctx: Any) -> Check:
    return Check(
        found="cannot be automated: Microsoft ships it as a separate download",
        wanted="federated hybrid search updated for the Microsoft 365 search engine",
        skip="run by hand: the update script is downloaded from Microsoft",
        hint="Download the hybrid federated search update script from Microsoft's download center (Update-"
             "FederatedHybridSearchForM365.ps1), then on a farm server, as a farm administrator, run it with "
             f"-HybridWebApp {ctx.params.web_application} -Force and sign in as a Microsoft 365 global administrator.",
    )


FEDERATED_SEARCH = step("federated-search", "Update federated hybrid search (manual)", check=_federated_check)


# -- step 8: SharePoint 2013 search bot permission -----------------------------------------

SEARCH_BOT_APP_ID = "c3959f3a-5ad4-4d2b-b1f0-bc70f9a5d0a1"


def _sp2013_check(ctx: Any) -> Check:
    build = _facts(ctx).farm_build
    if not str(build).startswith("15."):
        return Check(found=version_name(build), wanted="SharePoint Server 2013 only",
                     skip=f"not needed on {version_name(build)}: only SharePoint Server 2013 needs it")
    return Check(
        found=version_name(build), wanted="QueryAsUserIgnoreAppPrincipal for the federated search bot",
        skip="grant it by hand on SharePoint Server 2013",
        hint=f"In Central Administration open /_layouts/appinv.aspx, look up app {SEARCH_BOT_APP_ID} "
             "(Greenland Federated Search Bot Skill), keep its app domain (or use localhost), set the redirect URL "
             "to https://localhost and request Right=QueryAsUserIgnoreAppPrincipal on scope "
             "http://sharepoint/search.",
    )


SP2013_SEARCH_BOT = step("sp2013-search-permission", "SharePoint 2013 only: search bot permission",
                         check=_sp2013_check)


STEPS = [PREFLIGHT, OAUTH_OVER_HTTP, TENANT, STS_KEY, EXPIRED_KEYS, SPN, APP_PRINCIPAL, REALM, ACS_TRUST, FEDERATED_SEARCH,
         SP2013_SEARCH_BOT]
