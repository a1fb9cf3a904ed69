"""Steps on a SharePoint farm that trust a partner by its certificate: trusted token issuers
registered from the certificate, app-only rights for the app principals they stand for, and a
trusted root authority.

Like :mod:`runbooklib.farm_steps`, each factory takes the farm and the values as functions of
the run, so Office Online Server, Workflow Manager or another farm can use the same steps.
:func:`issuer_conflicts` is the read-only question pre-flight asks first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .certs import LoadedCertificate, short_thumbprint
from .sharepoint import AppPrincipal, Farm, TrustedIssuer
from .farm_steps import FarmOf, ValueOf
from .steps import Check, FromRun, Proof, Step, step

__all__ = [
    "IssuerWanted",
    "app_only_rights_step",
    "certificate_issuers_step",
    "issuer_conflicts",
    "root_authority_step",
]

CertificateOf = FromRun[LoadedCertificate]


@dataclass(frozen=True)
class IssuerWanted:
    """A trusted token issuer to have: its name on the farm and its registered issuer name."""

    name: str
    registered_issuer_name: str


IssuersOf = FromRun[list[IssuerWanted]]


def _registered(issuers: list[TrustedIssuer], wanted: IssuerWanted) -> TrustedIssuer | None:
    key = wanted.registered_issuer_name.lower()
    return next((i for i in issuers if i.registered_issuer_name.lower() == key), None)


def issuer_conflicts(issuers: list[TrustedIssuer], wanted: list[IssuerWanted], thumbprint: str) -> list[str]:
    """Why the wanted issuers cannot be created or kept as they are: an issuer with the registered
    name but another certificate, or the wanted name taken by an issuer for something else."""
    problems = []
    for want in wanted:
        present = _registered(issuers, want)
        if present is not None and present.thumbprint and present.thumbprint != thumbprint:
            problems.append(f"the trusted issuer '{present.name}' ({present.registered_issuer_name}) has the "
                            f"certificate {short_thumbprint(present.thumbprint)}, not {short_thumbprint(thumbprint)}")
        named = next((i for i in issuers if i.name.lower() == want.name.lower()), None)
        if present is None and named is not None:
            problems.append(f"a trusted issuer named '{named.name}' already exists for {named.registered_issuer_name}")
    return problems


_CONFLICT_HINT = ("Remove the old issuer (Remove-SPTrustedSecurityTokenIssuer '<name>' -Confirm:$false) if it holds a "
                  "retired certificate, or choose other issuer names in the parameters; then run again.")


def certificate_issuers_step(step_id: str, title: str, *, farm: FarmOf, issuers: IssuersOf,
                             certificate: CertificateOf) -> Step:
    """A step that registers ``certificate`` on ``farm`` once per wanted issuer, each under its own name."""

    def check(ctx: Any) -> Check:
        cert, wanted, present = certificate(ctx), issuers(ctx), farm(ctx).certificate_issuers()
        found = []
        changes = []
        for want in wanted:
            hit = _registered(present, want)
            if hit is None:
                found.append(f"no issuer for {want.registered_issuer_name}")
                changes.append(f"create the trusted token issuer '{want.name}' for {want.registered_issuer_name} "
                               f"from certificate {short_thumbprint(cert.thumbprint)}")
            else:
                found.append(f"'{hit.name}' for {hit.registered_issuer_name} "
                             f"({short_thumbprint(hit.thumbprint or '')})")
        evidence = {"thumbprint": cert.thumbprint, "issuers": [w.__dict__ for w in wanted]}
        conflicts = issuer_conflicts(present, wanted, cert.thumbprint)
        if conflicts:
            return Check(found="; ".join(found), wanted="", evidence=evidence, failure="; ".join(conflicts),
                         hint=_CONFLICT_HINT)
        return Check(found="; ".join(found),
                     wanted=f"{len(wanted)} issuers with certificate {short_thumbprint(cert.thumbprint)}",
                     changes=changes, evidence=evidence)

    def apply(ctx: Any, found: Check) -> list[str]:
        cert, target = certificate(ctx), farm(ctx)
        present = target.certificate_issuers()
        made = []
        for want in issuers(ctx):
            if _registered(present, want) is None:
                target.new_certificate_issuer(want.name, cert.der, want.registered_issuer_name,
                                              description="Office Online Server S2S")
                made.append(f"created trusted token issuer '{want.name}' ({want.registered_issuer_name})")
        return made

    def verify(ctx: Any, found: Check) -> Proof:
        cert, present = certificate(ctx), farm(ctx).certificate_issuers()
        lines, ok = [], True
        for want in issuers(ctx):
            hit = _registered(present, want)
            if hit is None or hit.thumbprint != cert.thumbprint:
                ok = False
                lines.append(f"{want.registered_issuer_name}: " + ("missing" if hit is None else
                                                                 f"certificate {hit.thumbprint}"))
            else:
                lines.append(f"'{hit.name}': RegisteredIssuerName {hit.registered_issuer_name}, "
                             f"certificate {hit.thumbprint}")
        return Proof(ok=ok, text="; ".join(lines), evidence={"issuers": lines},
                     hint="Check the issuers with Get-SPTrustedSecurityTokenIssuer; remove a wrong one and run again.")

    return step(step_id, title, check=check, apply=apply, verify=verify)


def app_only_rights_step(step_id: str, title: str, *, farm: FarmOf, site: ValueOf, issuers: IssuersOf,
                         scope: str = "SiteSubscription", right: str = "FullControl") -> Step:
    """A step that lets each wanted issuer's app principal (its NameId) act app-only with ``right``
    at ``scope`` — for an issuer that speaks for itself, the principal needs no registration."""

    def wanted_rights() -> dict[str, str]:
        return {scope: right, "AppOnly": "True"}

    def rights_of(target: Farm, url: str, nid: str, known: set[str]) -> dict[str, str]:
        if nid.lower() not in known:
            return {}  # its issuer comes in the step before: nothing to read yet (plan mode)
        return target.rights(AppPrincipal(nid, "", url))

    def check(ctx: Any) -> Check:
        target, url = farm(ctx), site(ctx)
        known = {i.registered_issuer_name.lower() for i in target.certificate_issuers()}
        found, changes = [], []
        for want in issuers(ctx):
            have = rights_of(target, url, want.registered_issuer_name, known)
            found.append(f"{want.registered_issuer_name}: {_words(have)}")
            if any(have.get(k) != v for k, v in wanted_rights().items()):
                changes.append(f"grant {want.registered_issuer_name} {right} at {scope} scope, app-only, on {url}")
        return Check(found="; ".join(found), wanted=f"{right} at {scope} scope with the app-only policy",
                     changes=changes)

    def apply(ctx: Any, found: Check) -> list[str]:
        target, url = farm(ctx), site(ctx)
        made = []
        for want in issuers(ctx):
            if any(target.rights(AppPrincipal(want.registered_issuer_name, "", url)).get(k) != v
                   for k, v in wanted_rights().items()):
                target.set_app_principal_permission(url, want.registered_issuer_name, scope=scope, right=right,
                                                    app_only=True)
                made.append(f"granted {want.registered_issuer_name} {right} at {scope} scope, app-only")
        return made

    def verify(ctx: Any, found: Check) -> Proof:
        target, url = farm(ctx), site(ctx)
        lines, ok = [], True
        for want in issuers(ctx):
            have = target.rights(AppPrincipal(want.registered_issuer_name, "", url))
            ok = ok and all(have.get(k) == v for k, v in wanted_rights().items())
            lines.append(f"{want.registered_issuer_name}: {_words(have)}")
        return Proof(ok=ok, text="; ".join(lines), evidence={"rights": lines},
                     hint=f"Grant it with Set-SPAppPrincipalPermission -Scope {scope} -Right {right} "
                          "-EnableAppOnlyPolicy on the site's root web.")

    return step(step_id, title, check=check, apply=apply, verify=verify)


def _words(rights: dict[str, str]) -> str:
    if not rights:
        return "no rights"
    scopes = ", ".join(f"{v} at {k}" for k, v in rights.items() if k != "AppOnly")
    return scopes + (" (app-only)" if rights.get("AppOnly") == "True" else "")


def root_authority_step(step_id: str, title: str, *, farm: FarmOf, name: ValueOf, certificate: CertificateOf,
                        needed: FromRun[bool], skip_reason: str) -> Step:
    """A step that makes ``farm`` trust ``certificate`` as a root authority, when ``needed(ctx)``."""

    def check(ctx: Any) -> Check:
        if not needed(ctx):
            return Check(found="not needed", wanted="no trusted root authority", skip=skip_reason)
        cert, wanted_name = certificate(ctx), name(ctx)
        roots = farm(ctx).root_authorities()
        hit = next((r for r in roots if r.thumbprint == cert.thumbprint), None)
        if hit is not None:
            return Check(found=f"'{hit.name}' trusts {short_thumbprint(cert.thumbprint)}",
                         wanted=f"a root authority for {short_thumbprint(cert.thumbprint)}")
        named = next((r for r in roots if r.name.lower() == wanted_name.lower()), None)
        if named is not None:
            return Check(found=f"'{named.name}' holds {short_thumbprint(named.thumbprint)}", wanted="",
                         failure=f"a trusted root authority named '{named.name}' already holds another certificate",
                         hint="Remove it (Remove-SPTrustedRootAuthority) if it is retired, or set "
                              "root_authority_name to another name; then run again.")
        return Check(found=f"no root authority for {short_thumbprint(cert.thumbprint)}",
                     wanted=f"a root authority for {short_thumbprint(cert.thumbprint)}",
                     changes=[f"create the trusted root authority '{wanted_name}' from the certificate"])

    def apply(ctx: Any, found: Check) -> list[str]:
        farm(ctx).new_trusted_root_authority(name(ctx), certificate(ctx).der)
        return [f"created trusted root authority '{name(ctx)}'"]

    def verify(ctx: Any, found: Check) -> Proof:
        cert = certificate(ctx)
        hit = next((r for r in farm(ctx).root_authorities() if r.thumbprint == cert.thumbprint), None)
        return Proof(ok=hit is not None,
                     text=f"Get-SPTrustedRootAuthority: '{hit.name}' = {cert.thumbprint}" if hit
                     else f"no trusted root authority holds {cert.thumbprint}",
                     hint="Create it with New-SPTrustedRootAuthority -Certificate <the exported .cer>.")

    return step(step_id, title, check=check, apply=apply, verify=verify)
