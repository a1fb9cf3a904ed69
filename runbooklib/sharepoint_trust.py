"""What a SharePoint farm's trust settings mean: inspections any runbook or doctor can ask.

Read-only: each function reads the farm through a :class:`~runbooklib.sharepoint.Farm` and
answers in the administrator's terms. The hybrid trust uses all of them; farm-to-farm, a
trust doctor and certificate rotation ask the same questions of other farms.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .metadata import same_metadata_uri
from .sharepoint import ACS_PROXY_TYPE, AppPrincipal, Farm, ServiceProxy, TrustedIssuer
from .wellknown import ACS_PRINCIPAL_ID, REALM_INDEPENDENT_ISSUER_NAMES, REALM_INDEPENDENT_REGISTERED_NAMES

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
    named in the farm's realm) and the app principals registered in the same old realms."""

    old_realms: set[str] = field(default_factory=set)
    issuers: list[TrustedIssuer] = field(default_factory=list)
    principals: list[AppPrincipal] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.issuers or self.principals)

    def describe(self) -> list[str]:
        return ([f"issuer {i.name} ({i.registered_issuer_name})" for i in self.issuers]
                + [f"app principal {p.display_name} ({p.name_identifier}) on {p.site}" for p in self.principals])


def realm_impact(farm: Farm, farm_realm: str, tenant_id: str, *,
                 old_realms: set[str] | frozenset[str] = frozenset()) -> RealmImpact:
    """Issuers and app principals not (yet) registered under ``tenant_id``.

    Besides the farm's current realm, an old realm is any realm a certificate-based issuer is still
    named in — so an earlier run that changed the realm and stopped is finished by this one.
    """
    issuers = [i for i in farm.trusted_issuers() if follows_farm_realm(i) and i.realm != tenant_id]
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
