"""Steps on a SharePoint farm: OAuth over HTTP, an app principal and its permission, the
authentication realm, the ACS trust broker, a partner's issuer and root authority from its metadata.

Each factory takes the farm it acts on, and the values it sets, as functions of the run
(``farm(ctx)``), so farm-to-farm can run one realm step on each of two farms.
"""

from __future__ import annotations

from typing import Any

from .certs import short_thumbprint
from .metadata import S2SMetadata, same_metadata_uri
from .sharepoint import AppPrincipal, Farm
from .sharepoint_trust import RealmImpact, acs_issuer_name, acs_trust, realm_impact
from .steps import Check, FromRun, Proof, Step, step

__all__ = [
    "acs_trust_step",
    "app_principal_permission_step",
    "app_principal_step",
    "metadata_issuer_step",
    "metadata_root_authority_step",
    "oauth_over_http_step",
    "realm_step",
]

FarmOf = FromRun[Farm]
ValueOf = FromRun[str]
MetadataOf = FromRun[S2SMetadata]


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
        changes = [f"register app principal {nid} as '{name}'"] if found is None else []
        # The display name is a label: a principal registered under another one (an earlier
        # "SharePoint" for "SharePoint Online") is the same registration, so it is left as it is.
        warnings = ([f"app principal {nid} is registered as '{found.display_name}', not '{name}'; the "
                     "registration is what counts, so it is kept as it is"]
                    if found is not None and found.display_name != name else [])
        return Check(found=f"registered as '{found.display_name}'" if found else f"{nid} not registered",
                     wanted=f"{nid} registered on {url}", changes=changes, warnings=warnings,
                     evidence={"name_identifier": nid})

    def apply(ctx: Any, found: Check) -> list[str]:
        nid = name_identifier(ctx)
        farm(ctx).register_app_principal(site(ctx), nid, display_name(ctx))
        return [f"registered app principal {nid}"]

    def verify(ctx: Any, found: Check) -> Proof:
        nid = name_identifier(ctx)
        principal = farm(ctx).app_principal(site(ctx), nid)
        return Proof(ok=principal is not None,
                     text=f"Get-SPAppPrincipal: {principal.display_name} ({principal.name_identifier})" if principal
                     else f"Get-SPAppPrincipal finds no {nid}",
                     hint="Register it with Register-SPAppPrincipal on the web application's root web.")

    return step(step_id, title, check=check, apply=apply, verify=verify)


def realm_step(step_id: str, title: str, *, farm: FarmOf, realm: ValueOf, realm_change: ValueOf,
               realm_named: str = "tenant id", site: ValueOf | None = None) -> Step:
    """A step that sets ``farm``'s authentication realm to ``realm``.

    With ``realm_change(ctx) == "reregister"`` it first moves the issuers and app principals the
    change would strand (:func:`~runbooklib.sharepoint_trust.realm_impact`) and, after the change,
    pairs Workflow Manager again (``Register-SPWorkflowService -Force`` with ``site(ctx)``, a site
    collection of the farm; without ``site`` the pairing is not looked at). ``realm_named`` is
    what the wanted realm is, in the texts (and, with ``_`` for spaces, its evidence key).
    """
    key = realm_named.replace(" ", "_")

    def impact_of(ctx: Any, target: Farm, current: str, wanted: str, **kwargs: Any) -> RealmImpact:
        return realm_impact(target, current, wanted, site=site(ctx) if site else None, **kwargs)

    def check(ctx: Any) -> Check:
        wanted, target = realm(ctx), farm(ctx)
        current = target.realm()
        impact = impact_of(ctx, target, current, wanted)
        changes: list[str] = []
        if realm_change(ctx) == "reregister":
            # The order apply follows: principals, then issuers, then the realm, then Workflow Manager.
            changes += [f"re-register {item} under realm {wanted}" for item in
                        RealmImpact(principals=impact.principals).describe()
                        + RealmImpact(issuers=impact.issuers).describe()]
        if current != wanted:
            changes.append(f"change the farm realm from {current} to {wanted}")
        if realm_change(ctx) == "reregister" and impact.workflow is not None:
            changes.append(f"pair Workflow Manager again: Register-SPWorkflowService -SPSite {site(ctx) if site else ''} "
                           f"-WorkflowHostUri {impact.workflow.host_uri} -Force")
        return Check(found=f"realm {current}" + (f"; {len(impact.describe())} registration(s) under an old realm"
                                                if impact else ""),
                     wanted=f"realm {wanted} (the {realm_named})", changes=changes,
                     evidence={"realm_before": current, key: wanted, "old_realms": sorted(impact.old_realms),
                               "under_old_realm": impact.describe(),
                               "workflow_host_uri": impact.workflow.host_uri if impact.workflow else None},
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
        # Workflow Manager learns the farm's realm when it is paired: pair it again after the change.
        if realm_change(ctx) == "reregister" and impact.workflow is not None and site is not None:
            target.register_workflow_service(site(ctx), impact.workflow.host_uri)
            made.append(f"ran Register-SPWorkflowService -SPSite {site(ctx)} -WorkflowHostUri "
                        f"{impact.workflow.host_uri} -Force")
        return made

    def verify(ctx: Any, found: Check) -> Proof:
        wanted, target = realm(ctx), farm(ctx)
        current = target.realm()
        ok = current == wanted
        evidence: dict[str, Any] = {"farm_realm": current}
        evidence[key] = wanted
        text = f"Get-SPAuthenticationRealm = {current}; {realm_named} = {wanted}"
        if ok and realm_change(ctx) == "reregister":
            old = set(found.evidence.get("old_realms", []))
            left = impact_of(ctx, target, current, wanted, old_realms=old)
            evidence["still_under_old_realm"] = left.describe()
            if left:
                ok = False
                text += f"; still under an old realm: {'; '.join(left.describe())}"
            elif old:
                text += ("; every issuer and app principal of the old realm is registered under the new one, "
                         "with its rights, on the web it was granted on")
            paired = found.evidence.get("workflow_host_uri")
            if ok and paired:
                text += (f"; Workflow Manager at {paired} paired again under {wanted} "
                         "(Register-SPWorkflowService -Force)")
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


def metadata_issuer_step(step_id: str, title: str, *, farm: FarmOf, name: ValueOf, metadata_url: ValueOf,
                         partner: MetadataOf) -> Step:
    """A step that makes ``farm`` trust a partner server from its metadata at ``metadata_url``: a
    trusted token issuer called ``name``, a self-issuer (not a trust broker), as SharePointDsc's
    SPRemoteFarmTrust registers one.

    ``partner(ctx)`` is the partner's metadata as the farm downloads it now; the issuer must carry
    its issuer name and one of its signing certificates, else the step reads the metadata again.
    """

    def check(ctx: Any) -> Check:
        url, wanted_name, target, live = metadata_url(ctx), name(ctx), farm(ctx), partner(ctx)
        issuers = target.trusted_issuers()
        issuer = next((i for i in issuers if same_metadata_uri(i.metadata_endpoint, url)), None)
        wanted = (f"a trusted token issuer from {url}, not a trust broker, named {live.issuer} with certificate "
                  f"{short_thumbprint(live.thumbprints[0])}")
        evidence: dict[str, Any] = {"metadata_url": url, "partner_issuer": live.issuer,
                                    "partner_thumbprints": list(live.thumbprints)}
        if issuer is None:
            named = next((i for i in issuers if i.name.lower() == wanted_name.lower()), None)
            if named is not None:
                return Check(found=f"issuer '{named.name}' is for {named.metadata_endpoint or 'a certificate'}",
                             wanted=wanted, evidence=evidence,
                             failure=f"a trusted token issuer named '{named.name}' already exists for "
                                     f"{named.metadata_endpoint or 'a certificate'} ({named.registered_issuer_name})",
                             hint=f"Remove it if it is stale (Remove-SPTrustedSecurityTokenIssuer '{named.name}' "
                                  "-Confirm:$false), or choose another name in issuer_names; then run again.")
            return Check(found=f"no trusted token issuer for {url}", wanted=wanted, evidence=evidence,
                         changes=[f"create trusted token issuer '{wanted_name}' from {url} (not a trust broker)"],
                         data=wanted_name)
        if not issuer.is_self_issuer:
            return Check(found=f"issuer '{issuer.name}' for {url} is a trust broker", wanted=wanted, evidence=evidence,
                         failure=f"the trusted token issuer '{issuer.name}' for {url} is a trust broker: it would let "
                                 "the partner speak for any app",
                         hint=f"Remove it (Remove-SPTrustedSecurityTokenIssuer '{issuer.name}' -Confirm:$false) and "
                              "run again: the runbook registers the partner as a self-issuer.")
        thumbprint = target.signing_thumbprint(issuer.name)
        evidence.update(issuer=issuer.name, registered_issuer_name=issuer.registered_issuer_name, thumbprint=thumbprint)
        found = (f"issuer '{issuer.name}': {issuer.registered_issuer_name}, certificate "
                 f"{short_thumbprint(thumbprint) if thumbprint else 'none'}")
        stale = (issuer.registered_issuer_name.lower() != live.issuer.lower() or thumbprint not in live.thumbprints)
        changes = [f"read {url} again into issuer '{issuer.name}' (the partner now publishes {live.issuer}, "
                   f"certificate {short_thumbprint(live.thumbprints[0])})"] if stale else []
        return Check(found=found, wanted=wanted, evidence=evidence, changes=changes, data=issuer.name)

    def apply(ctx: Any, found: Check) -> list[str]:
        url, target, issuer_name = metadata_url(ctx), farm(ctx), found.data
        if found.evidence.get("issuer") is None:
            target.new_metadata_issuer(issuer_name, url)
            return [f"created trusted token issuer '{issuer_name}' from {url}"]
        target.refresh_metadata_issuer(issuer_name, url)
        return [f"read {url} again into trusted token issuer '{issuer_name}'"]

    def verify(ctx: Any, found: Check) -> Proof:
        url, target, live = metadata_url(ctx), farm(ctx), partner(ctx)
        issuer = next((i for i in target.trusted_issuers() if same_metadata_uri(i.metadata_endpoint, url)), None)
        hint = "Remove the issuer for this endpoint (Remove-SPTrustedSecurityTokenIssuer) and run again."
        if issuer is None:
            return Proof(ok=False, text=f"Get-SPTrustedSecurityTokenIssuer finds no issuer for {url}", hint=hint)
        thumbprint = target.signing_thumbprint(issuer.name)
        problems = []
        if issuer.registered_issuer_name.lower() != live.issuer.lower():
            problems.append(f"RegisteredIssuerName is {issuer.registered_issuer_name}, the partner publishes {live.issuer}")
        if thumbprint not in live.thumbprints:
            problems.append(f"its certificate {thumbprint or '(none)'} is not one the partner publishes")
        if not issuer.is_self_issuer:
            problems.append("it is a trust broker")
        evidence = {"issuer": issuer.name, "registered_issuer_name": issuer.registered_issuer_name,
                    "thumbprint": thumbprint, "is_self_issuer": issuer.is_self_issuer}
        if problems:
            return Proof(ok=False, text=f"issuer '{issuer.name}': " + "; ".join(problems), evidence=evidence, hint=hint)
        return Proof(ok=True, evidence=evidence,
                     text=f"issuer '{issuer.name}': RegisteredIssuerName {issuer.registered_issuer_name} and certificate "
                          f"{short_thumbprint(thumbprint)} match the partner's metadata; IsSelfIssuer True")

    return step(step_id, title, check=check, apply=apply, verify=verify)


def metadata_root_authority_step(step_id: str, title: str, *, farm: FarmOf, name: ValueOf, root_certificate_url: ValueOf,
                                 thumbprint: ValueOf) -> Step:
    """A step that makes ``farm`` trust the root certificate a partner publishes at
    ``root_certificate_url`` (``…/metadata/json/1/rootcertificate``), whose thumbprint is
    ``thumbprint(ctx)``: a trusted root authority called ``name``, unless one holds it already."""

    def check(ctx: Any) -> Check:
        url, wanted_name, wanted_thumbprint = root_certificate_url(ctx), name(ctx), thumbprint(ctx)
        authorities = farm(ctx).root_authorities()
        wanted = f"a trusted root authority holding {short_thumbprint(wanted_thumbprint)} (from {url})"
        evidence = {"root_certificate_url": url, "partner_root_thumbprint": wanted_thumbprint}
        holding = next((a for a in authorities if a.thumbprint == wanted_thumbprint), None)
        if holding is not None:
            return Check(found=f"root authority '{holding.name}' holds {short_thumbprint(wanted_thumbprint)}",
                         wanted=wanted, evidence=evidence)
        named = next((a for a in authorities if a.name.lower() == wanted_name.lower()), None)
        if named is not None:
            return Check(found=f"root authority '{named.name}' holds {short_thumbprint(named.thumbprint)}",
                         wanted=wanted, evidence=evidence,
                         failure=f"a trusted root authority named '{named.name}' already holds another certificate",
                         hint=f"Remove it if it is stale (Remove-SPTrustedRootAuthority '{named.name}' -Confirm:$false), "
                              "or choose another name in issuer_names; then run again.")
        return Check(found=f"no root authority holds {short_thumbprint(wanted_thumbprint)}", wanted=wanted,
                     evidence=evidence, changes=[f"create trusted root authority '{wanted_name}' from {url}"])

    def apply(ctx: Any, found: Check) -> list[str]:
        url, wanted_name = root_certificate_url(ctx), name(ctx)
        farm(ctx).new_metadata_root_authority(wanted_name, url)
        return [f"created trusted root authority '{wanted_name}' from {url}"]

    def verify(ctx: Any, found: Check) -> Proof:
        wanted_thumbprint = thumbprint(ctx)
        holding = next((a for a in farm(ctx).root_authorities() if a.thumbprint == wanted_thumbprint), None)
        return Proof(ok=holding is not None,
                     text=f"Get-SPTrustedRootAuthority: '{holding.name}' holds the partner's root certificate "
                          f"{short_thumbprint(wanted_thumbprint)}" if holding
                     else f"no trusted root authority holds {short_thumbprint(wanted_thumbprint)}",
                     evidence={"root_authority": holding.name if holding else None},
                     hint="Create it with New-SPTrustedRootAuthority -MetadataEndPoint <…/rootcertificate>.")

    return step(step_id, title, check=check, apply=apply, verify=verify)


def app_principal_permission_step(step_id: str, title: str, *, farm: FarmOf, site: ValueOf, name_identifier: ValueOf,
                                  scope: str, right: str, app_only: bool = False) -> Step:
    """A step that grants the app principal ``name_identifier`` ``right`` at ``scope`` on ``site``
    (with the app-only policy when ``app_only``). A partner registered as a self-issuer is such a
    principal as soon as its issuer exists, without Register-SPAppPrincipal."""
    wanted_words = f"{right} at {scope} scope" + (" with the app-only policy" if app_only else "")

    def granted(target: Farm, url: str, nid: str) -> tuple[bool, dict[str, str]]:
        rights = target.rights(AppPrincipal(nid, "", url))
        ok = rights.get(scope) == right and (not app_only or rights.get("AppOnly") == "True")
        return ok, rights

    def check(ctx: Any) -> Check:
        nid, url, target = name_identifier(ctx), site(ctx), farm(ctx)
        wanted = f"{nid}: {wanted_words} on {url}"
        change = f"grant {nid} {wanted_words} on {url}"
        if target.app_principal(url, nid) is None:
            # Not resolvable yet: its issuer is created by an earlier step of the same run.
            return Check(found=f"{nid} is not an app principal of {url} yet", wanted=wanted, changes=[change],
                         evidence={"name_identifier": nid})
        ok, rights = granted(target, url, nid)
        return Check(found=f"rights: {_rights_words(rights)}", wanted=wanted, changes=[] if ok else [change],
                     evidence={"name_identifier": nid, "rights_before": rights})

    def apply(ctx: Any, found: Check) -> list[str]:
        nid, url = name_identifier(ctx), site(ctx)
        farm(ctx).set_app_principal_permission(url, nid, scope=scope, right=right, app_only=app_only)
        return [f"granted {nid} {wanted_words} on {url}"]

    def verify(ctx: Any, found: Check) -> Proof:
        nid, url = name_identifier(ctx), site(ctx)
        ok, rights = granted(farm(ctx), url, nid)
        return Proof(ok=ok, text=f"app principal permission of {nid}: {_rights_words(rights)}",
                     evidence={"rights": rights},
                     hint=f"Grant it: Set-SPAppPrincipalPermission -Site {url} -Scope {scope} -Right {right}.")

    return step(step_id, title, check=check, apply=apply, verify=verify)


def _rights_words(rights: dict[str, str]) -> str:
    granted = [f"{r} at {scope}" for scope, r in rights.items() if scope != "AppOnly"]
    if not granted:
        return "none"
    return ", ".join(granted) + (" (app-only allowed)" if rights.get("AppOnly") == "True" else "")
