"""Scenario 1 — SharePoint Server ↔ SharePoint in Microsoft 365 (hybrid S2S trust through Entra ID).

The farm's STS certificate becomes a key of the SharePoint Online service principal, the farm
takes the tenant id as its realm, and the farm trusts ACS (the Entra ID trust broker). Every step
checks first and changes only what is missing; each proves its end state.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..certs import check_usable, load_certificate, short_thumbprint
from ..graph import wildcard_spn
from ..metadata import same_metadata_uri
from ..sharepoint import (ACS_PRINCIPAL_ID, ACS_PROXY_TYPE, SHAREPOINT_PRINCIPAL_ID, AppPrincipal, Farm,
                          TrustedIssuer, version_name)
from ..steps import Check, Proof, step
from ..targets import Server, Tenant

__all__ = ["Parameters", "STEPS"]

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
        if not re.match(r"^https?://[^/\s]+(/.*)?$", value):
            raise ValueError("expected the web application's URL, like https://sharepoint.contoso.com")
        return value.rstrip("/")

    @field_validator("public_root_domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        domain = value.strip().lower()
        if domain.startswith(("*.", "http:", "https:")) or "/" in domain:
            raise ValueError("expected the domain name only (e.g. contoso.com): no protocol, no wildcard")
        if not _DOMAIN.match(domain):
            raise ValueError("expected a DNS domain name such as contoso.com")
        return domain


# -- shared facts --------------------------------------------------------------------------


def _farm(ctx: Any) -> Farm:
    return Farm(ctx.remote(ctx.params.farm), name=ctx.params.farm)


def _graph(ctx: Any) -> Any:
    return ctx.graph(ctx.params.tenant)


def _facts(ctx: Any) -> dict[str, Any]:
    return ctx.facts


def _tenant_id(ctx: Any) -> str:
    facts = _facts(ctx)
    if "tenant_id" not in facts:
        facts["tenant_id"] = _graph(ctx).tenant_id().lower()
    return facts["tenant_id"]


def _acs_metadata_url(ctx: Any) -> str:
    return ctx.inventory.tenant(ctx.params.tenant).acs_metadata_url


# -- step 0: pre-flight --------------------------------------------------------------------


@dataclass
class RealmImpact:
    """What is registered under a realm other than the tenant id and stops working once the farm's
    realm is the tenant id (KB 4010011): certificate-based issuers (high-trust add-ins, which must be
    named in the farm's realm) and the app principals registered in the same old realms."""

    old_realms: set[str] = field(default_factory=set)
    issuers: list[TrustedIssuer] = field(default_factory=list)
    principals: list[AppPrincipal] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.issuers or self.principals)

    def describe(self) -> list[str]:
        return ([f"issuer {i.name} ({i.registered_issuer_name})" for i in self.issuers]
                + [f"app principal {p.display_name} ({p.name_identifier}) on {p.site}" for p in self.principals])


def realm_impact(farm: Farm, farm_realm: str, tenant_id: str, *, old_realms: set[str] = frozenset()) -> RealmImpact:
    """Issuers and app principals not (yet) registered under ``tenant_id``.

    Besides the farm's current realm, an old realm is any realm a certificate-based issuer is still
    named in — so an earlier run that changed the realm and stopped is finished by this one.
    """
    issuers = [i for i in farm.trusted_issuers() if i.certificate_based and i.realm != tenant_id]
    old = set(old_realms) | {i.realm for i in issuers}
    if farm_realm != tenant_id:
        old.add(farm_realm)
    principals = farm.app_principals() if old else []
    counterparts = {(p.site.rstrip("/").lower(), p.client_id): p for p in principals if p.realm == tenant_id}
    stranded = []
    for p in principals:
        if p.realm not in old:
            continue
        moved = counterparts.get((p.site.rstrip("/").lower(), p.client_id))
        # Moved means registered under the new realm *with* the old rights: a move that stopped
        # between registering and granting is not done.
        if moved is None or not _covers(farm.rights(moved), farm.rights(p)):
            stranded.append(p)
    return RealmImpact(old, issuers, stranded)


def _covers(new: dict[str, str], old: dict[str, str]) -> bool:
    return all(new.get(scope) == right for scope, right in old.items())


_NTLM_REMEDY = ("Either extend this web application into a new zone that uses Integrated Windows authentication "
                "with NTLM (keeps the content database and its sites), or create a new web application with NTLM "
                "and a new content database; then set web_application (and zone) to it and run again. "
                "Nothing was changed.")


def _preflight_check(ctx: Any) -> Check:
    """Everything that can stop the trust, read before anything changes; the first problem fails it."""
    p = ctx.params
    farm = _farm(ctx)
    build = farm.build_version()
    ctx.facts["farm_build"] = build
    tenant_id = _tenant_id(ctx)
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

    certificate = load_certificate(farm.sts_certificate().der)
    check_usable(certificate)
    ctx.facts["sts_certificate"] = certificate
    evidence["sts_certificate"] = {"thumbprint": certificate.thumbprint, "subject": certificate.subject,
                                   "not_after": certificate.not_after.isoformat(), "key_size": certificate.key_size}
    found.append(f"STS certificate {short_thumbprint(certificate.thumbprint)} valid to "
                 f"{certificate.not_after:%Y-%m-%d}")

    acs = _check_acs_metadata(ctx, tenant_id)
    evidence["acs_metadata"] = acs
    if acs.get("problem"):
        return stop(f"the tenant's ACS metadata at {acs['url']} is not usable: {acs['problem']}",
                    "Check acs_metadata_url of the tenant in the inventory: it must be "
                    "https://accounts.accesscontrol.windows.net/<tenant id>/metadata/json/1.")
    conflict = _acs_conflict(acs["url"], *_acs_state(ctx))
    if conflict:
        return stop(*conflict)

    current_realm = farm.realm()
    evidence["farm_realm"] = current_realm
    found.append(f"realm {current_realm}")
    impact = realm_impact(farm, current_realm, tenant_id)
    evidence["realm_change_impact"] = impact.describe()
    warnings: list[str] = []
    if impact:
        message = _realm_impact_message(impact, current_realm, tenant_id)
        if p.realm_change == "block":
            return stop(message, "Set realm_change: reregister to move them to the new realm as part of this run, "
                                 "or realm_change: accept if you will re-register them yourself. Nothing was changed.")
        warnings.append(message + (" — they will be re-registered under the new realm"
                                   if p.realm_change == "reregister" else " — accepted: re-register them yourself"))
    if p.web_application.startswith("http://"):
        warnings.append(f"{p.web_application} uses http: OAuth over HTTP must be enabled on the farm. "
                        "SSL (https) is the default and what we recommend.")
    return Check(found="; ".join(found), wanted=wanted, evidence=evidence, warnings=warnings)


def _realm_impact_message(impact: RealmImpact, current_realm: str, tenant_id: str) -> str:
    listing = "; ".join(impact.describe())
    if current_realm != tenant_id:
        return (f"changing the farm realm from {current_realm} to {tenant_id} breaks what is registered under the "
                f"current realm (KB 4010011): {listing}")
    return (f"the farm realm is already {tenant_id}, but these are still registered under an old realm and do "
            f"not work (KB 4010011): {listing}")


def _check_acs_metadata(ctx: Any, tenant_id: str) -> dict[str, Any]:
    """Fetch the tenant's ACS metadata now, so a wrong URL fails before the realm changes."""
    from ..errors import MetadataError
    from ..metadata import fetch_metadata

    tenant = ctx.inventory.tenant(ctx.params.tenant)
    url = tenant.acs_metadata_url
    try:
        metadata = fetch_metadata(url, ca_bundle=tenant.ca_bundle)
    except MetadataError as exc:
        return {"url": url, "problem": exc.message}
    expected = f"{ACS_PRINCIPAL_ID}@{tenant_id}"
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


def _oauth_http_check(ctx: Any) -> Check:
    p = ctx.params
    if not p.web_application.startswith("http://"):
        return Check(found="web application uses https", wanted="https", skip="not needed: the web application uses https")
    allowed = _farm(ctx).allow_oauth_over_http()
    changes = [] if allowed else ["enable OAuth over HTTP on the farm (AllowOAuthOverHttp = True)"]
    return Check(found=f"AllowOAuthOverHttp = {allowed}", wanted="AllowOAuthOverHttp = True", changes=changes,
                 warnings=["OAuth over HTTP sends tokens unencrypted; move the web application to https when you can."])


def _oauth_http_apply(ctx: Any, found: Check) -> list[str]:
    _farm(ctx).set_allow_oauth_over_http(True)
    return ["enabled OAuth over HTTP (AllowOAuthOverHttp = True)"]


def _oauth_http_verify(ctx: Any, found: Check) -> Proof:
    allowed = _farm(ctx).allow_oauth_over_http()
    return Proof(ok=allowed, text=f"Get-SPSecurityTokenServiceConfig: AllowOAuthOverHttp = {allowed}",
                 evidence={"allow_oauth_over_http": allowed},
                 hint="Set AllowOAuthOverHttp on the farm's STS configuration and call Update().")


OAUTH_OVER_HTTP = step("oauth-over-http", "OAuth over HTTP (only for an http web application)",
                       check=_oauth_http_check, apply=_oauth_http_apply, verify=_oauth_http_verify)


# -- step 1: tenant ------------------------------------------------------------------------


def _tenant_check(ctx: Any) -> Check:
    graph = _graph(ctx)
    tenant_id = _tenant_id(ctx)
    principal = graph.spo_principal()
    ctx.facts["spo_principal_id"] = principal.object_id
    return Check(
        found=f"tenant {tenant_id}; SharePoint Online principal {principal.object_id} "
              f"({len(principal.key_credentials)} keys, {len(principal.service_principal_names)} SPNs)",
        wanted="the tenant id and the SharePoint Online service principal",
        evidence={"tenant_id": tenant_id, "spo_principal_id": principal.object_id, "app_id": principal.app_id,
                  "keys": [k.describe() for k in principal.key_credentials]},
    )


def _tenant_verify(ctx: Any, found: Check) -> Proof:
    return Proof(ok=bool(ctx.facts.get("spo_principal_id")),
                 text=f"Graph servicePrincipals(appId={SHAREPOINT_PRINCIPAL_ID}) → {ctx.facts.get('spo_principal_id')}")


TENANT = step("tenant", "Tenant id and the SharePoint Online service principal", check=_tenant_check,
              verify=_tenant_verify)


# -- step 2: STS certificate → keyCredentials ----------------------------------------------


def _describe_cert(cert: Any) -> str:
    return f"key {short_thumbprint(cert.thumbprint)} ({cert.subject}, valid to {cert.not_after:%Y-%m-%d})"


def _key_check(ctx: Any) -> Check:
    cert = ctx.facts["sts_certificate"]
    plan = _graph(ctx).plan_key_credential(cert.certificate)
    others = [k for k in plan.before if k.thumbprint != cert.thumbprint]
    evidence = {"sts_thumbprint": cert.thumbprint, "keys_before": [k.describe() for k in plan.before],
                "other_key_ids": [k.key_id for k in others]}
    changes = []
    if plan.action == "would_add":
        changes.append(f"add {_describe_cert(cert)}; keep {len(others)} existing key(s)")
    present = "present" if plan.action == "present" else "missing"
    return Check(found=f"{len(plan.before)} key(s); farm key {short_thumbprint(cert.thumbprint)} {present}",
                 wanted=f"farm key {short_thumbprint(cert.thumbprint)} present, every other key kept", changes=changes,
                 evidence=evidence)


def _key_apply(ctx: Any, found: Check) -> list[str]:
    cert = ctx.facts["sts_certificate"]
    change = _graph(ctx).ensure_key_credential(cert.certificate, display_name=f"{ctx.params.farm} STS")
    kept = len([k for k in change.before if k.thumbprint != cert.thumbprint])
    return [f"added {_describe_cert(cert)}; kept {kept} existing key(s)"] if change.changed else []


def _key_verify(ctx: Any, found: Check) -> Proof:
    cert = ctx.facts["sts_certificate"]
    keys = _graph(ctx).spo_principal().key_credentials
    ids = {k.key_id for k in keys}
    thumbprints = {k.thumbprint for k in keys}
    lost = [kid for kid in found.evidence.get("other_key_ids", []) if kid not in ids]
    ok = cert.thumbprint in thumbprints and not lost
    text = (f"re-read {len(keys)} key(s): farm key {short_thumbprint(cert.thumbprint)} "
            f"{'present' if cert.thumbprint in thumbprints else 'MISSING'}; "
            + (f"LOST {', '.join(lost)}" if lost else f"all {len(found.evidence.get('other_key_ids', []))} other key(s) kept"))
    return Proof(ok=ok, text=text, evidence={"keys_after": [k.describe() for k in keys]},
                 hint="Restore any lost key from the record's evidence (keys_before) and upload the farm key again.")


STS_KEY = step("sts-certificate", "Upload the farm's STS certificate to SharePoint in Microsoft 365",
               check=_key_check, apply=_key_apply, verify=_key_verify)


# -- step 2b: expired keys (only on request) -----------------------------------------------


def _expired_check(ctx: Any) -> Check:
    plan = _graph(ctx).plan_prune_expired_key_credentials()
    found = f"{len(plan.removed)} expired key(s) of {len(plan.before)}"
    if not ctx.params.prune_expired_keys:
        return Check(found=found, wanted="expired keys left alone (prune_expired_keys is off)",
                     skip="not asked for: set prune_expired_keys to remove expired keys",
                     evidence={"expired": [k.describe() for k in plan.removed]})
    return Check(found=found, wanted="no expired key on the SharePoint Online principal",
                 changes=[f"remove expired key {k.describe()}" for k in plan.removed],
                 evidence={"expired": [k.describe() for k in plan.removed],
                           "kept_key_ids": [k.key_id for k in plan.after]})


def _expired_apply(ctx: Any, found: Check) -> list[str]:
    change = _graph(ctx).prune_expired_key_credentials()
    return [f"removed expired key {k.describe()}" for k in change.removed]


def _expired_verify(ctx: Any, found: Check) -> Proof:
    keys = _graph(ctx).spo_principal().key_credentials
    expired = [k.describe() for k in keys if k.expired()]
    ids = {k.key_id for k in keys}
    lost = [kid for kid in found.evidence.get("kept_key_ids", []) if kid not in ids]
    ok = not expired and not lost
    text = (f"re-read {len(keys)} key(s): " + ("no expired key" if not expired else f"still expired: {expired}")
            + (f"; LOST {lost}" if lost else "; every current key kept"))
    return Proof(ok=ok, text=text, evidence={"keys_after": [k.describe() for k in keys]},
                 hint="Compare the principal's keys with the record's evidence and restore any lost key.")


EXPIRED_KEYS = step("expired-keys", "Remove expired keys of the SharePoint Online principal (only on request)",
                    check=_expired_check, apply=_expired_apply, verify=_expired_verify)


# -- step 3: SPN ---------------------------------------------------------------------------


def _spn_check(ctx: Any) -> Check:
    plan = _graph(ctx).plan_spn(ctx.params.public_root_domain)
    changes = [f"add SPN {plan.spn}"] if plan.action == "would_add" else []
    return Check(found=f"{len(plan.before)} SPN(s); {plan.spn} {'present' if plan.action == 'present' else 'missing'}",
                 wanted=f"{plan.spn} present", changes=changes, warnings=list(plan.warnings),
                 evidence={"spns_before": plan.before})


def _spn_apply(ctx: Any, found: Check) -> list[str]:
    change = _graph(ctx).ensure_spn(ctx.params.public_root_domain)
    return [f"added SPN {change.spn}"] if change.changed else []


def _spn_verify(ctx: Any, found: Check) -> Proof:
    spns = _graph(ctx).spo_principal().service_principal_names
    wanted = wildcard_spn(ctx.params.public_root_domain)
    return Proof(ok=wanted in spns, text=f"servicePrincipalNames {'contains' if wanted in spns else 'LACKS'} {wanted}",
                 evidence={"spns": spns},
                 hint="Add the wildcard SPN to the SharePoint Online principal (Graph PATCH servicePrincipalNames).")


SPN = step("spn", "Wildcard SPN for the public root domain", check=_spn_check, apply=_spn_apply, verify=_spn_verify)


# -- step 4: SharePoint Online app principal on the farm -----------------------------------


def _spo_name_identifier(ctx: Any) -> str:
    return f"{ctx.facts['spo_principal_id']}@{_tenant_id(ctx)}"


def _principal_check(ctx: Any) -> Check:
    nid = _spo_name_identifier(ctx)
    name = ctx.params.app_principal_display_name
    found = _farm(ctx).app_principal(ctx.params.web_application, nid)
    if found is None:
        changes = [f"register app principal {nid} as '{name}'"]
    elif found.display_name != name:
        changes = [f"register app principal {nid} again as '{name}' (now '{found.display_name}')"]
    else:
        changes = []
    return Check(found=f"registered as '{found.display_name}'" if found else f"{nid} not registered",
                 wanted=f"{nid} registered as '{name}' on {ctx.params.web_application}", changes=changes,
                 evidence={"name_identifier": nid})


def _principal_apply(ctx: Any, found: Check) -> list[str]:
    nid = _spo_name_identifier(ctx)
    _farm(ctx).register_app_principal(ctx.params.web_application, nid, ctx.params.app_principal_display_name)
    return [f"registered app principal {nid}"]


def _principal_verify(ctx: Any, found: Check) -> Proof:
    nid = _spo_name_identifier(ctx)
    principal = _farm(ctx).app_principal(ctx.params.web_application, nid)
    return Proof(ok=principal is not None and principal.display_name == ctx.params.app_principal_display_name,
                 text=f"Get-SPAppPrincipal: {principal.display_name} ({principal.name_identifier})" if principal
                 else f"Get-SPAppPrincipal finds no {nid}",
                 hint="Register it with Register-SPAppPrincipal on the web application's root web.")


APP_PRINCIPAL = step("spo-app-principal", "Register the SharePoint Online app principal on the farm",
                     check=_principal_check, apply=_principal_apply, verify=_principal_verify)


# -- step 5: realm -------------------------------------------------------------------------


def _realm_check(ctx: Any) -> Check:
    tenant_id = _tenant_id(ctx)
    farm = _farm(ctx)
    current = farm.realm()
    impact = realm_impact(farm, current, tenant_id)
    changes: list[str] = []
    if ctx.params.realm_change == "reregister":
        # The order apply follows: principals, then issuers, then the realm.
        changes += [f"re-register {item} under realm {tenant_id}" for item in
                    RealmImpact(principals=impact.principals).describe() + RealmImpact(issuers=impact.issuers).describe()]
    if current != tenant_id:
        changes.append(f"change the farm realm from {current} to {tenant_id}")
    return Check(found=f"realm {current}" + (f"; {len(impact.describe())} registration(s) under an old realm"
                                            if impact else ""),
                 wanted=f"realm {tenant_id} (the tenant id)", changes=changes,
                 evidence={"realm_before": current, "tenant_id": tenant_id, "old_realms": sorted(impact.old_realms),
                           "under_old_realm": impact.describe()},
                 data=impact)


def _realm_apply(ctx: Any, found: Check) -> list[str]:
    tenant_id = _tenant_id(ctx)
    farm = _farm(ctx)
    impact: RealmImpact = found.data
    made = []
    # App principals first: registering them under the new realm breaks nothing. Then the issuers
    # and the realm, back to back, because an issuer renamed to the new realm stops working until
    # the farm's realm follows. A run that stops half-way is finished by the next one.
    if ctx.params.realm_change == "reregister":
        for principal in impact.principals:
            granted = farm.move_app_principal_to_realm(principal, tenant_id)
            made.append(f"re-registered app principal {principal.display_name} as {principal.client_id}@{tenant_id}"
                        f" on {principal.site}" + (f" with {', '.join(granted)}" if granted else ""))
        for issuer in impact.issuers:
            moved = farm.move_issuer_to_realm(issuer.name, tenant_id)
            made.append(f"re-registered issuer {issuer.name} as {moved.registered_issuer_name}")
    before = found.evidence["realm_before"]
    if before != tenant_id:
        farm.set_realm(tenant_id)
        made.append(f"changed the farm realm from {before} to {tenant_id}")
    return made


def _realm_verify(ctx: Any, found: Check) -> Proof:
    tenant_id = _tenant_id(ctx)
    farm = _farm(ctx)
    realm = farm.realm()
    ok = realm == tenant_id
    evidence: dict[str, Any] = {"farm_realm": realm, "tenant_id": tenant_id}
    text = f"Get-SPAuthenticationRealm = {realm}; tenant id = {tenant_id}"
    if ok and ctx.params.realm_change == "reregister":
        old = set(found.evidence.get("old_realms", []))
        left = realm_impact(farm, realm, tenant_id, old_realms=old)
        evidence["still_under_old_realm"] = left.describe()
        if left:
            ok = False
            text += f"; still under an old realm: {'; '.join(left.describe())}"
        elif old:
            text += "; every issuer and app principal of the old realm is registered under the new one, with its rights"
    return Proof(ok=ok, text=text, evidence=evidence,
                 hint="Set-SPAuthenticationRealm -Realm <tenant id>, then re-register what the old realm held "
                      "(run again with realm_change: reregister).")


REALM = step("realm", "Set the farm's authentication realm to the tenant id", check=_realm_check,
             apply=_realm_apply, verify=_realm_verify)


# -- step 6: ACS proxy and trust broker ----------------------------------------------------


def _acs_state(ctx: Any) -> tuple[Any, Any, Any]:
    """The ACS proxy, the issuer for the tenant's ACS metadata, and any issuer holding the wanted name."""
    url = _acs_metadata_url(ctx)
    farm = _farm(ctx)
    proxy = next((x for x in farm.proxies() if x.type == ACS_PROXY_TYPE), None)
    issuers = farm.trusted_issuers()
    issuer = next((i for i in issuers if same_metadata_uri(i.metadata_endpoint, url)), None)
    named = next((i for i in issuers if i.name.lower() == ctx.params.acs_name.lower()), None)
    return proxy, issuer, named


def _acs_conflict(url: str, proxy: Any, issuer: Any, named: Any) -> tuple[str, str] | None:
    """What on the farm stands in the way of the ACS trust, and how to clear it — or None.

    Pre-flight asks this too: the run must stop before the realm changes, not after.
    """
    if proxy is not None and not same_metadata_uri(proxy.metadata_endpoint_uri, url):
        return (f"the farm already has an ACS proxy '{proxy.name}' for another endpoint: "
                f"{proxy.metadata_endpoint_uri}",
                "A farm holds one ACS proxy. Remove it (Remove-SPServiceApplicationProxy) if it belongs to an "
                "old tenant, or point this run at that tenant; then run again.")
    if proxy is not None and not proxy.in_default_group:
        return (f"the ACS proxy '{proxy.name}' is not in the default proxy group",
                "Add it: Add-SPServiceApplicationProxyGroupMember -Identity (Get-SPServiceApplicationProxyGroup "
                f"-Default) -Member (Get-SPServiceApplicationProxy | ? Name -eq '{proxy.name}'); then run again.")
    if issuer is None and named is not None:
        return (f"a trusted token issuer named '{named.name}' already exists for "
                f"{named.metadata_endpoint or 'a certificate'} ({named.registered_issuer_name})",
                f"Remove it if it belongs to an old tenant (Remove-SPTrustedSecurityTokenIssuer '{named.name}' "
                "-Confirm:$false), or set acs_name to another name; then run again.")
    return None


def _acs_check(ctx: Any) -> Check:
    url = _acs_metadata_url(ctx)
    proxy, issuer, named = _acs_state(ctx)
    name = ctx.params.acs_name
    found = [f"proxy '{proxy.name}'{'' if proxy.in_default_group else ' (not in the default group)'}"
             if proxy else "no ACS proxy",
             f"issuer '{issuer.name}' ({issuer.registered_issuer_name})" if issuer else "no ACS issuer"]
    wanted = f"ACS proxy in the default group and a trust-broker issuer for {url}"
    evidence = {"metadata_url": url}

    conflict = _acs_conflict(url, proxy, issuer, named)
    if conflict:
        return Check(found="; ".join(found), wanted=wanted, evidence=evidence, failure=conflict[0], hint=conflict[1])
    changes: list[str] = []
    if proxy is None:
        changes.append(f"create the ACS proxy '{name}' for {url} in the default proxy group")
    if issuer is None:
        changes.append(f"create the trusted token issuer '{name}' (trust broker) from {url}")
    return Check(found="; ".join(found), wanted=wanted, changes=changes, evidence=evidence)


def _acs_apply(ctx: Any, found: Check) -> list[str]:
    url = _acs_metadata_url(ctx)
    farm = _farm(ctx)
    proxy, issuer, _ = _acs_state(ctx)
    made = []
    if proxy is None:
        farm.new_acs_proxy(ctx.params.acs_name, url)
        made.append(f"created ACS proxy '{ctx.params.acs_name}' in the default proxy group")
    if issuer is None:
        farm.new_trust_broker(ctx.params.acs_name, url)
        made.append(f"created trusted token issuer '{ctx.params.acs_name}' (trust broker)")
    return made


def _acs_verify(ctx: Any, found: Check) -> Proof:
    tenant_id = _tenant_id(ctx)
    proxy, issuer, _ = _acs_state(ctx)
    expected = f"{ACS_PRINCIPAL_ID}@{tenant_id}"
    problems = []
    if proxy is None:
        problems.append("no ACS proxy")
    elif not proxy.in_default_group:
        problems.append(f"proxy '{proxy.name}' is not in the default proxy group")
    if issuer is None:
        problems.append("no trusted token issuer for the ACS metadata endpoint")
    else:
        if issuer.registered_issuer_name.lower() != expected:
            problems.append(f"RegisteredIssuerName is {issuer.registered_issuer_name}, expected {expected}")
        if issuer.is_self_issuer:
            problems.append(f"issuer '{issuer.name}' is a self-issuer; it must be a trust broker")
    evidence = {
        "proxy": proxy.__dict__ if proxy else None,
        "issuer": issuer.__dict__ if issuer else None,
        "expected_registered_issuer_name": expected,
    }
    if problems:
        return Proof(ok=False, text="; ".join(problems), evidence=evidence,
                     hint="Remove the wrong proxy or issuer and run again: the runbook re-creates them correctly.")
    return Proof(ok=True, text=f"RegisteredIssuerName = {issuer.registered_issuer_name}; IsSelfIssuer = False; "
                               f"proxy '{proxy.name}' in the default proxy group", evidence=evidence)


ACS_TRUST = step("acs-trust", "Trust Entra ID (ACS) as the farm's token broker", check=_acs_check,
                 apply=_acs_apply, verify=_acs_verify)


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
    build = ctx.facts.get("farm_build") or _farm(ctx).build_version()
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
