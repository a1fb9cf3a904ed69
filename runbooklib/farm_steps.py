"""Steps on a SharePoint farm: OAuth over HTTP, an app principal, the authentication realm, the
ACS trust broker.

Each factory takes the farm it acts on, and the values it sets, as functions of the run
(``farm(ctx)``), so farm-to-farm can run one realm step on each of two farms.
"""

from __future__ import annotations

from typing import Any, Callable

from .sharepoint import Farm
from .sharepoint_trust import RealmImpact, acs_issuer_name, acs_trust, realm_impact
from .steps import Check, Proof, Step, step

__all__ = ["acs_trust_step", "app_principal_step", "oauth_over_http_step", "realm_step"]

FarmOf = Callable[[Any], Farm]
ValueOf = Callable[[Any], str]


def oauth_over_http_step(step_id: str, title: str, *, farm: FarmOf, web_application: ValueOf) -> Step:
    """A step that lets ``farm`` do OAuth over http, only when ``web_application`` is an http URL."""

    def check(ctx: Any) -> Check:
        if not web_application(ctx).startswith("http://"):
            return Check(found="web application uses https", wanted="https",
                         skip="not needed: the web application uses https")
        allowed = farm(ctx).allow_oauth_over_http()
        changes = [] if allowed else ["enable OAuth over HTTP on the farm (AllowOAuthOverHttp = True)"]
        return Check(found=f"AllowOAuthOverHttp = {allowed}", wanted="AllowOAuthOverHttp = True", changes=changes,
                     warnings=["OAuth over HTTP sends tokens unencrypted; move the web application to https when "
                               "you can."])

    def apply(ctx: Any, found: Check) -> list[str]:
        farm(ctx).set_allow_oauth_over_http(True)
        return ["enabled OAuth over HTTP (AllowOAuthOverHttp = True)"]

    def verify(ctx: Any, found: Check) -> Proof:
        allowed = farm(ctx).allow_oauth_over_http()
        return Proof(ok=allowed, text=f"Get-SPSecurityTokenServiceConfig: AllowOAuthOverHttp = {allowed}",
                     evidence={"allow_oauth_over_http": allowed},
                     hint="Set AllowOAuthOverHttp on the farm's STS configuration and call Update().")

    return step(step_id, title, check=check, apply=apply, verify=verify)


def app_principal_step(step_id: str, title: str, *, farm: FarmOf, site: ValueOf, name_identifier: ValueOf,
                       display_name: ValueOf) -> Step:
    """A step that registers the app principal ``name_identifier`` as ``display_name`` on ``site``."""

    def check(ctx: Any) -> Check:
        nid, name, url = name_identifier(ctx), display_name(ctx), site(ctx)
        found = farm(ctx).app_principal(url, nid)
        if found is None:
            changes = [f"register app principal {nid} as '{name}'"]
        elif found.display_name != name:
            changes = [f"register app principal {nid} again as '{name}' (now '{found.display_name}')"]
        else:
            changes = []
        return Check(found=f"registered as '{found.display_name}'" if found else f"{nid} not registered",
                     wanted=f"{nid} registered as '{name}' on {url}", changes=changes,
                     evidence={"name_identifier": nid})

    def apply(ctx: Any, found: Check) -> list[str]:
        nid = name_identifier(ctx)
        farm(ctx).register_app_principal(site(ctx), nid, display_name(ctx))
        return [f"registered app principal {nid}"]

    def verify(ctx: Any, found: Check) -> Proof:
        nid = name_identifier(ctx)
        principal = farm(ctx).app_principal(site(ctx), nid)
        return Proof(ok=principal is not None and principal.display_name == display_name(ctx),
                     text=f"Get-SPAppPrincipal: {principal.display_name} ({principal.name_identifier})" if principal
                     else f"Get-SPAppPrincipal finds no {nid}",
                     hint="Register it with Register-SPAppPrincipal on the web application's root web.")

    return step(step_id, title, check=check, apply=apply, verify=verify)


def realm_step(step_id: str, title: str, *, farm: FarmOf, realm: ValueOf, realm_change: ValueOf,
               realm_named: str = "tenant id") -> Step:
    """A step that sets ``farm``'s authentication realm to ``realm``.

    With ``realm_change(ctx) == "reregister"`` it first moves the issuers and app principals the
    change would strand (:func:`~runbooklib.sharepoint_trust.realm_impact`). ``realm_named`` is
    what the wanted realm is, in the texts (and, with ``_`` for spaces, its evidence key).
    """
    key = realm_named.replace(" ", "_")

    def check(ctx: Any) -> Check:
        wanted, target = realm(ctx), farm(ctx)
        current = target.realm()
        impact = realm_impact(target, current, wanted)
        changes: list[str] = []
        if realm_change(ctx) == "reregister":
            # The order apply follows: principals, then issuers, then the realm.
            changes += [f"re-register {item} under realm {wanted}" for item in
                        RealmImpact(principals=impact.principals).describe()
                        + RealmImpact(issuers=impact.issuers).describe()]
        if current != wanted:
            changes.append(f"change the farm realm from {current} to {wanted}")
        return Check(found=f"realm {current}" + (f"; {len(impact.describe())} registration(s) under an old realm"
                                                if impact else ""),
                     wanted=f"realm {wanted} (the {realm_named})", changes=changes,
                     evidence={"realm_before": current, key: wanted, "old_realms": sorted(impact.old_realms),
                               "under_old_realm": impact.describe()},
                     data=impact)

    def apply(ctx: Any, found: Check) -> list[str]:
        wanted, target = realm(ctx), farm(ctx)
        impact: RealmImpact = found.data
        made = []
        # App principals first: registering them under the new realm breaks nothing. Then the issuers
        # and the realm, back to back, because an issuer renamed to the new realm stops working until
        # the farm's realm follows. A run that stops half-way is finished by the next one.
        if realm_change(ctx) == "reregister":
            for principal in impact.principals:
                granted = target.move_app_principal_to_realm(principal, wanted)
                made.append(f"re-registered app principal {principal.display_name} as {principal.client_id}@{wanted}"
                            f" on {principal.site}" + (f" with {', '.join(granted)}" if granted else ""))
            for issuer in impact.issuers:
                moved = target.move_issuer_to_realm(issuer.name, wanted)
                made.append(f"re-registered issuer {issuer.name} as {moved.registered_issuer_name}")
        before = found.evidence["realm_before"]
        if before != wanted:
            target.set_realm(wanted)
            made.append(f"changed the farm realm from {before} to {wanted}")
        return made

    def verify(ctx: Any, found: Check) -> Proof:
        wanted, target = realm(ctx), farm(ctx)
        current = target.realm()
        ok = current == wanted
        evidence: dict[str, Any] = {"farm_realm": current}
        evidence[key] = wanted  # a computed key: set apart, so the template-call scanner reads the literal
        text = f"Get-SPAuthenticationRealm = {current}; {realm_named} = {wanted}"
        if ok and realm_change(ctx) == "reregister":
            old = set(found.evidence.get("old_realms", []))
            left = realm_impact(target, current, wanted, old_realms=old)
            evidence["still_under_old_realm"] = left.describe()
            if left:
                ok = False
                text += f"; still under an old realm: {'; '.join(left.describe())}"
            elif old:
                text += ("; every issuer and app principal of the old realm is registered under the new one, "
                         "with its rights")
        return Proof(ok=ok, text=text, evidence=evidence,
                     hint=f"Set-SPAuthenticationRealm -Realm <{realm_named}>, then re-register what the old realm "
                          "held (run again with realm_change: reregister).")

    return step(step_id, title, check=check, apply=apply, verify=verify)


def acs_trust_step(step_id: str, title: str, *, farm: FarmOf, metadata_url: ValueOf, name: ValueOf,
                   tenant_id: ValueOf) -> Step:
    """A step that makes ``farm`` trust ACS for ``tenant_id`` as its token broker: an ACS proxy in
    the default proxy group and a trust-broker issuer from ``metadata_url``, both called ``name``."""

    def check(ctx: Any) -> Check:
        url, wanted_name = metadata_url(ctx), name(ctx)
        trust = acs_trust(farm(ctx), url, name=wanted_name)
        proxy, issuer = trust.proxy, trust.issuer
        found = [f"proxy '{proxy.name}'{'' if proxy.in_default_group else ' (not in the default group)'}"
                 if proxy else "no ACS proxy",
                 f"issuer '{issuer.name}' ({issuer.registered_issuer_name})" if issuer else "no ACS issuer"]
        wanted = f"ACS proxy in the default group and a trust-broker issuer for {url}"
        evidence = {"metadata_url": url}
        conflict = trust.conflict()
        if conflict:
            return Check(found="; ".join(found), wanted=wanted, evidence=evidence, failure=conflict[0],
                         hint=conflict[1])
        changes: list[str] = []
        if proxy is None:
            changes.append(f"create the ACS proxy '{wanted_name}' for {url} in the default proxy group")
        if issuer is None:
            changes.append(f"create the trusted token issuer '{wanted_name}' (trust broker) from {url}")
        return Check(found="; ".join(found), wanted=wanted, changes=changes, evidence=evidence)

    def apply(ctx: Any, found: Check) -> list[str]:
        url, wanted_name, target = metadata_url(ctx), name(ctx), farm(ctx)
        trust = acs_trust(target, url, name=wanted_name)
        made = []
        if trust.proxy is None:
            target.new_acs_proxy(wanted_name, url)
            made.append(f"created ACS proxy '{wanted_name}' in the default proxy group")
        if trust.issuer is None:
            target.new_trust_broker(wanted_name, url)
            made.append(f"created trusted token issuer '{wanted_name}' (trust broker)")
        return made

    def verify(ctx: Any, found: Check) -> Proof:
        tid = tenant_id(ctx)
        trust = acs_trust(farm(ctx), metadata_url(ctx), name=name(ctx))
        proxy, issuer = trust.proxy, trust.issuer
        evidence = {
            "proxy": proxy.__dict__ if proxy else None,
            "issuer": issuer.__dict__ if issuer else None,
            "expected_registered_issuer_name": acs_issuer_name(tid),
        }
        problems = trust.problems(tid)
        if problems or proxy is None or issuer is None:
            return Proof(ok=False, text="; ".join(problems), evidence=evidence,
                         hint="Remove the wrong proxy or issuer and run again: the runbook re-creates them correctly.")
        return Proof(ok=True, text=f"RegisteredIssuerName = {issuer.registered_issuer_name}; IsSelfIssuer = False; "
                                   f"proxy '{proxy.name}' in the default proxy group", evidence=evidence)

    return step(step_id, title, check=check, apply=apply, verify=verify)
