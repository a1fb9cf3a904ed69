"""What a SharePoint farm's trust settings mean: inspections any runbook or doctor can ask.

Read-only: each function reads the farm through a :class:`~runbooklib.sharepoint.Farm` and
answers in the administrator's terms. The hybrid trust uses all of them; farm-to-farm, a
trust doctor and certificate rotation ask the same questions of other farms.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .metadata import same_metadata_uri
from .sharepoint import (
    ACS_PROXY_TYPE,
    AppPrincipal,
    Farm,
    ServiceProxy,
    TrustedIssuer,
    UnreadableSite,
    WorkflowService,
)
from .wellknown import (
    ACS_PRINCIPAL_ID,
    REALM_INDEPENDENT_ISSUER_NAMES,
    REALM_INDEPENDENT_REGISTERED_NAMES,
    WORKFLOW_PRINCIPAL_ID,
)

__all__ = [
    "AcsTrust",
    "RealmImpact",
    "acs_issuer_name",
    "acs_trust",
    "follows_farm_realm",
    "realm_impact",
]


def acs_issuer_name(tenant_id: str) -> str:
    """The RegisteredIssuerName of a farm's ACS trust broker for ``tenant_id``."""
    return f"{ACS_PRINCIPAL_ID}@{tenant_id.lower()}"


def follows_farm_realm(issuer: TrustedIssuer) -> bool:
    """Whether ``issuer`` stops working when the farm's realm changes.

    Only a certificate-based issuer (a high-trust add-in) is named in the farm's own realm.
    Microsoft's realm-change script (KB 4010011) leaves EvoSTS-Trust, ACS_STS, issuers of any
    realm (``…@*``) and Office Online Server's fixed-realm issuers alone: so do we.
    """
    if not issuer.certificate_based:
        return False
    if issuer.name.lower() in REALM_INDEPENDENT_ISSUER_NAMES or issuer.realm == "*":
        return False
    return issuer.registered_issuer_name.lower() not in REALM_INDEPENDENT_REGISTERED_NAMES


@dataclass
class RealmImpact:
    """What is registered under a realm other than the tenant id and stops working once the farm's
    realm is the tenant id (KB 4010011): certificate-based issuers (high-trust add-ins, which must be
    named in the farm's realm), the app principals registered in the same old realms — each on the
    web it holds its rights on — and the farm's pairing with Workflow Manager.

    ``unreadable``: site collections the scan could not read; what they hold is unknown, so they
    count as an impact nobody can re-register for the administrator (only ``accept`` lets it pass).
    """

    old_realms: set[str] = field(default_factory=set)
    issuers: list[TrustedIssuer] = field(default_factory=list)
    principals: list[AppPrincipal] = field(default_factory=list)
    workflow: WorkflowService | None = None
    unreadable: list[UnreadableSite] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.issuers or self.principals or self.workflow or self.unreadable)

    def describe(self) -> list[str]:
        """Each item, in the administrator's words, in the order a move handles them."""
        return ([f"app principal {p.display_name} ({p.name_identifier}) on {p.web or p.site}" for p in self.principals]
                + [f"issuer {i.name} ({i.registered_issuer_name})" for i in self.issuers]
                + ([f"Workflow Manager at {self.workflow.host_uri} (fix: Register-SPWorkflowService -SPSite <site> "
                    f"-WorkflowHostUri {self.workflow.host_uri} -Force after the realm change)"]
                   if self.workflow else [])
                + [f"site collection {u.site} could not be read ({u.message}): its app principals are unknown"
                   for u in self.unreadable])


def realm_impact(farm: Farm, farm_realm: str, tenant_id: str, *,
                 old_realms: set[str] | frozenset[str] = frozenset(), site: str | None = None) -> RealmImpact:
    """Issuers, app principals and the Workflow Manager pairing not (yet) under ``tenant_id``.

    Besides the farm's current realm, an old realm is any realm a certificate-based issuer is still
    named in — so an earlier run that changed the realm and stopped is finished by this one.
    ``site`` (a site collection URL) is where the Workflow Manager pairing is looked up; without
    it the pairing is not looked at.
    """
    issuers = [i for i in farm.trusted_issuers() if follows_farm_realm(i) and i.realm != tenant_id]
    old = set(old_realms) | {i.realm for i in issuers}
    if farm_realm != tenant_id:
        old.add(farm_realm)
    workflow = farm.workflow_service(site) if site else None
    scan = farm.app_principals() if old or workflow else None
    # Workflow Manager's principal is renewed by re-pairing (Register-SPWorkflowService), not moved.
    principals = [p for p in scan.principals if p.client_id != WORKFLOW_PRINCIPAL_ID] if scan else []
    if workflow is not None and farm_realm == tenant_id and scan is not None and any(
            p.client_id == WORKFLOW_PRINCIPAL_ID and p.realm == tenant_id for p in scan.principals):
        workflow = None  # already paired under the tenant id
    counterparts = {_where(p): p for p in principals if p.realm == tenant_id}
    stranded = []
    for p in principals:
        if p.realm not in old:
            continue
        moved = counterparts.get(_where(p))
        # Moved means registered under the new realm *with* the old rights: a move that stopped
        # between registering and granting is not done.
        if moved is None or not _covers(farm.rights(moved), farm.rights(p)):
            stranded.append(p)
    return RealmImpact(old, issuers, stranded, workflow, scan.unreadable if scan and old else [])


def _where(principal: AppPrincipal) -> tuple[str, str, str]:
    """One principal on one web: its site, web and client id, compared as SharePoint does."""
    return principal.site.rstrip("/").lower(), principal.web.rstrip("/").lower(), principal.client_id


def _covers(new: dict[str, str], old: dict[str, str]) -> bool:
    return all(new.get(scope) == right for scope, right in old.items())


@dataclass(frozen=True)
class AcsTrust:
    """A farm's trust in ACS for one metadata endpoint, as it stands.

    ``proxy``: the farm's ACS proxy (a farm holds one); ``issuer``: the trusted token issuer for
    ``metadata_url``; ``named``: any issuer already holding the name the trust is to have.
    """

    metadata_url: str
    proxy: ServiceProxy | None
    issuer: TrustedIssuer | None
    named: TrustedIssuer | None

    def conflict(self) -> tuple[str, str] | None:
        """What on the farm stands in the way of the trust, and how to clear it — or None.

        Ask before the realm changes: a run must stop before it, not after.
        """
        proxy, issuer, named, url = self.proxy, self.issuer, self.named, self.metadata_url
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

    def problems(self, tenant_id: str) -> list[str]:
        """Why this is not a working ACS trust for ``tenant_id``; empty when it is one."""
        proxy, issuer = self.proxy, self.issuer
        expected = acs_issuer_name(tenant_id)
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
        return problems


def acs_trust(farm: Farm, metadata_url: str, *, name: str) -> AcsTrust:
    """The farm's ACS proxy, its issuer for ``metadata_url``, and any issuer already called ``name``."""
    proxy = next((x for x in farm.proxies() if x.type == ACS_PROXY_TYPE), None)
    issuers = farm.trusted_issuers()
    issuer = next((i for i in issuers if same_metadata_uri(i.metadata_endpoint, metadata_url)), None)
    named = next((i for i in issuers if i.name.lower() == name.lower()), None)
    return AcsTrust(metadata_url, proxy, issuer, named)
