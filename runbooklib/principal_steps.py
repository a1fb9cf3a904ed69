"""Steps on a tenant's service principal: upload a certificate key, remove expired keys, add an
SPN (a wildcard for a domain, or one host).

Each factory takes the principal it acts on as a function of the run (``principal(ctx)``), so
one step shape serves the SharePoint Online, Exchange Online and Skype for Business Online
principals — the hybrid trust uploads the farm's STS key with it, certificate rotation the next one.
"""

from __future__ import annotations

from typing import Any

from .certs import LoadedCertificate, short_thumbprint
from .graph import Principal, SpnChange, certificate_key, expired_keys, host_spn, wildcard_spn
from .steps import Check, FromRun, Proof, Step, step

__all__ = ["expired_keys_step", "key_upload_step", "spn_step"]

PrincipalOf = FromRun[Principal]


def _describe_certificate(cert: LoadedCertificate) -> str:
    return f"key {short_thumbprint(cert.thumbprint)} ({cert.subject}, valid to {cert.not_after:%Y-%m-%d})"


def key_upload_step(step_id: str, title: str, *, principal: PrincipalOf,
                    certificate: FromRun[LoadedCertificate], display_name: FromRun[str]) -> Step:
    """A step that makes ``principal`` trust ``certificate`` as a key, keeping every other key."""

    def check(ctx: Any) -> Check:
        cert = certificate(ctx)
        plan = principal(ctx).plan_key_credential(cert.certificate)
        others = [k for k in plan.before if k.thumbprint != cert.thumbprint]
        evidence = {"sts_thumbprint": cert.thumbprint, "keys_before": [k.describe() for k in plan.before],
                    "other_key_ids": [k.key_id for k in others]}
        changes = []
        if plan.action == "would_add":
            changes.append(f"add {_describe_certificate(cert)}; keep {len(others)} existing key(s)")
        present = "present" if plan.action == "present" else "missing"
        return Check(found=f"{len(plan.before)} key(s); key {short_thumbprint(cert.thumbprint)} {present}",
                     wanted=f"key {short_thumbprint(cert.thumbprint)} present, every other key kept",
                     changes=changes, evidence=evidence)

    def apply(ctx: Any, found: Check) -> list[str]:
        cert = certificate(ctx)
        change = principal(ctx).ensure_key_credential(cert.certificate, display_name=display_name(ctx))
        kept = len([k for k in change.before if k.thumbprint != cert.thumbprint])
        return [f"added {_describe_certificate(cert)}; kept {kept} existing key(s)"] if change.changed else []

    def verify(ctx: Any, found: Check) -> Proof:
        cert = certificate(ctx)
        keys = principal(ctx).key_credentials()
        ids = {k.key_id for k in keys}
        present = certificate_key(keys, cert.thumbprint) is not None
        others = found.evidence.get("other_key_ids", [])
        lost = [kid for kid in others if kid not in ids]
        text = (f"re-read {len(keys)} key(s): key {short_thumbprint(cert.thumbprint)} "
                f"{'present' if present else 'MISSING'}; "
                + (f"LOST {', '.join(lost)}" if lost else f"all {len(others)} other key(s) kept"))
        return Proof(ok=present and not lost, text=text, evidence={"keys_after": [k.describe() for k in keys]},
                     hint="Restore any lost key from the record's evidence (keys_before) and upload the certificate again.")

    return step(step_id, title, check=check, apply=apply, verify=verify)


def expired_keys_step(step_id: str, title: str, *, principal: PrincipalOf,
                      prune_field: str = "prune_expired_keys") -> Step:
    """A step that removes ``principal``'s expired keys, only when the parameter ``prune_field`` asks."""

    def check(ctx: Any) -> Check:
        target = principal(ctx)
        plan = target.plan_prune_expired_key_credentials()
        found = f"{len(plan.removed)} expired key(s) of {len(plan.before)}"
        expired = [k.describe() for k in plan.removed]
        if not getattr(ctx.params, prune_field):
            return Check(found=found, wanted=f"expired keys left alone ({prune_field} is off)",
                         skip=f"not asked for: set {prune_field} to remove expired keys",
                         evidence={"expired": expired})
        return Check(found=found, wanted=f"no expired key on {target.label}",
                     changes=[f"remove expired key {k.describe()}" for k in plan.removed],
                     evidence={"expired": expired, "kept_key_ids": [k.key_id for k in plan.after]})

    def apply(ctx: Any, found: Check) -> list[str]:
        change = principal(ctx).prune_expired_key_credentials()
        return [f"removed expired key {k.describe()}" for k in change.removed]

    def verify(ctx: Any, found: Check) -> Proof:
        keys = principal(ctx).key_credentials()
        expired = [k.describe() for k in expired_keys(keys)]
        ids = {k.key_id for k in keys}
        lost = [kid for kid in found.evidence.get("kept_key_ids", []) if kid not in ids]
        text = (f"re-read {len(keys)} key(s): " + ("no expired key" if not expired else f"still expired: {expired}")
                + (f"; LOST {lost}" if lost else "; every current key kept"))
        return Proof(ok=not expired and not lost, text=text, evidence={"keys_after": [k.describe() for k in keys]},
                     hint="Compare the principal's keys with the record's evidence and restore any lost key.")

    return step(step_id, title, check=check, apply=apply, verify=verify)


def spn_step(step_id: str, title: str, *, principal: PrincipalOf, root_domain: FromRun[str] | None = None,
             host: FromRun[str] | None = None) -> Step:
    """A step that gives ``principal`` an SPN: the wildcard ``<appId>/*.<root domain>``, or with
    ``host`` instead the SPN of that one host, ``<appId>/<host>``."""
    if (root_domain is None) == (host is None):
        raise TypeError("spn_step takes root_domain or host, not both or neither")

    def plan(ctx: Any) -> SpnChange:
        target = principal(ctx)
        return target.plan_spn(root_domain(ctx)) if root_domain else target.plan_host_spn(host(ctx))  # type: ignore[misc]

    def ensure(ctx: Any) -> SpnChange:
        target = principal(ctx)
        return target.ensure_spn(root_domain(ctx)) if root_domain else target.ensure_host_spn(host(ctx))  # type: ignore[misc]

    def wanted_spn(ctx: Any, target: Principal) -> str:
        if root_domain:
            return wildcard_spn(root_domain(ctx), principal_id=target.app_id)
        return host_spn(host(ctx), principal_id=target.app_id)  # type: ignore[misc]

    def check(ctx: Any) -> Check:
        change = plan(ctx)
        changes = [f"add SPN {change.spn}"] if change.action == "would_add" else []
        present = "present" if change.action == "present" else "missing"
        return Check(found=f"{len(change.before)} SPN(s); {change.spn} {present}", wanted=f"{change.spn} present",
                     changes=changes, warnings=list(change.warnings), evidence={"spns_before": change.before})

    def apply(ctx: Any, found: Check) -> list[str]:
        change = ensure(ctx)
        return [f"added SPN {change.spn}"] if change.changed else []

    def verify(ctx: Any, found: Check) -> Proof:
        target = principal(ctx)
        spns = target.service_principal_names()
        wanted = wanted_spn(ctx, target)
        present = any(s.lower() == wanted.lower() for s in spns)
        return Proof(ok=present, text=f"servicePrincipalNames {'contains' if present else 'LACKS'} {wanted}",
                     evidence={"spns": spns},
                     hint=f"Add the SPN {wanted} to {target.label} (Graph PATCH servicePrincipalNames).")

    return step(step_id, title, check=check, apply=apply, verify=verify)
