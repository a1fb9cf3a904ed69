"""Scenario 4 — on-premises server-to-server trusts between SharePoint farms and their partners.

A farm accepts S2S requests only from servers it trusts, and each trust is one-way: the farm
registers the partner's JSON metadata endpoint as a trusted token issuer (a self-issuer, not a
trust broker), trusts the root certificate the partner publishes, and grants the partner an app
principal permission. The parameters say, for each farm, whose requests it accepts (another farm,
Exchange, Skype for Business); step 0 shows the one-way trusts that implies. Every later step acts
once per trust or farm and shows one line for each.

Realms are left alone: an issuer registered from metadata is named in its *partner's* realm, so
no farm's realm has to change for these trusts.
"""

from __future__ import annotations

from functools import cached_property
from typing import Annotated, Any

from cryptography.hazmat.primitives.serialization import Encoding
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..certs import check_usable, load_certificate, short_thumbprint
from ..errors import CertificateError, InputError, MetadataError, RemoteError
from ..exchange import ExchangeServer
from ..fan_out import fan_out
from ..farm_steps import (
    app_principal_permission_step,
    metadata_issuer_step,
    metadata_root_authority_step,
    oauth_over_http_step,
)
from ..metadata import S2SMetadata, parse_metadata
from ..sharepoint import Farm
from ..steps import Check, Proof, Step, step
from ..targets import Server
from ..trust_set import Trust, TrustSet, trust_set
from .fields import web_url

__all__ = ["FarmTrustFacts", "Parameters", "STEPS", "trusts_of", "validate_against"]

class Parameters(BaseModel):
    """The farms, their partners, and whose requests each farm accepts."""

    model_config = ConfigDict(extra="forbid")

    farms: Annotated[list[str], Server("sharepoint")] = Field(
        description="inventory names of the SharePoint farms that accept or send S2S requests")
    exchange_servers: Annotated[list[str], Server("exchange")] = Field(
        default_factory=list, description="inventory names of Exchange servers that call the farms")
    skype_pools: Annotated[list[str], Server("skype")] = Field(
        default_factory=list, description="inventory names of Skype for Business pools that call the farms")
    accepts: dict[str, list[str]] = Field(
        description="for each farm, the servers whose S2S requests it must accept (one-way trusts)")
    web_applications: dict[str, str] = Field(
        description="for each farm, the URL of the web application that serves or sends S2S requests")
    metadata_urls: dict[str, str] = Field(
        default_factory=dict,
        description="a partner's metadata endpoint, when it is not its inventory web_url plus its role's path")
    issuer_names: dict[str, str] = Field(
        default_factory=dict, description="the name a farm gives a partner's issuer (default: the partner's name)")
    allow_http: bool = Field(
        False, description="let an http web application take part, with OAuth over HTTP and a warning")

    @field_validator("web_applications", "metadata_urls")
    @classmethod
    def _urls(cls, value: dict[str, str]) -> dict[str, str]:
        checked = {}
        for name, url in value.items():
            try:
                checked[name] = web_url(url, expected="a URL")
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}, not {url!r}") from None
        return checked


def validate_against(params: Parameters, inventory: Any, *, source: str) -> None:
    """Every farm that accepts is one of ``farms`` with a web application; every partner is named
    among the farms, Exchange servers or Skype pools; the trust set resolves."""
    partners = set(params.farms) | set(params.exchange_servers) | set(params.skype_pools)
    for farm, senders in params.accepts.items():
        if farm not in params.farms:
            raise InputError(f"{farm} accepts requests but is not one of farms", source=source,
                             field=f"accepts.{farm}", hint=f"Add {farm} to farms (a server of role sharepoint).")
        for i, sender in enumerate(senders):
            if sender not in partners:
                raise InputError(f"{sender} is not listed among farms, exchange_servers or skype_pools", source=source,
                                 field=f"accepts.{farm}[{i}]",
                                 hint="List every partner under its role, so the run knows it as a target.")
    for farm in params.farms:
        if farm not in params.web_applications:
            raise InputError(f"no web application for {farm}", source=source, field=f"web_applications.{farm}",
                             hint="Give the URL of the farm's web application that serves or sends S2S requests.")
    if not any(params.accepts.values()):
        raise InputError("no trust to set up: accepts lists no partner", source=source, field="accepts",
                         hint="For each farm, list the servers whose requests it must accept.")
    trusts_of(params, inventory, source=source)


def trusts_of(params: Parameters, inventory: Any, *, source: str = "parameters") -> TrustSet:
    """The one-way trusts the parameters imply (read from the parameters and inventory only)."""
    return trust_set(params.accepts, inventory, metadata_urls=params.metadata_urls, source=source)


# -- facts ---------------------------------------------------------------------------------


def _farm(ctx: Any, name: str) -> Farm:
    return Farm(ctx.remote(name), name=name)


def _issuer_name(ctx: Any, trust: Trust) -> str:
    return ctx.params.issuer_names.get(trust.sender, trust.sender)


class FarmTrustFacts:
    """What the steps read once per run: the trust set, each trust's partner metadata as the
    receiving farm downloads it, and the trusts that need nothing because both ends are in the
    same Microsoft 365 tenant. A fact that could not be read is read again when next asked for."""

    def __init__(self, ctx: Any) -> None:
        self._ctx = ctx
        self._metadata: dict[tuple[str, str], S2SMetadata] = {}

    @cached_property
    def trusts(self) -> TrustSet:
        return trusts_of(self._ctx.params, self._ctx.inventory)

    def metadata(self, trust: Trust, url: str | None = None) -> S2SMetadata:
        """The document at ``url`` (default: the partner's metadata) as the receiving farm gets it.

        Raises :class:`MetadataError` naming the farm, the URL and the server's own words.
        """
        url = url or trust.metadata_url
        key = (trust.receiver, url)
        if key not in self._metadata:
            try:
                text = _farm(self._ctx, trust.receiver).partner_metadata(url)
            except RemoteError as exc:
                raise MetadataError(
                    f"{trust.receiver} could not download {url}: {exc.reason or exc.message}",
                    hint=f"From a server of {trust.receiver}, check that {url} answers: DNS, firewall and proxy, and "
                         f"that the farm's servers trust the certificate of {trust.sender}. Or set "
                         f"metadata_urls.{trust.sender} to its right address. Nothing was changed.") from exc
            try:
                self._metadata[key] = parse_metadata(text, url=url)
            except MetadataError as exc:
                raise MetadataError(
                    f"what {trust.receiver} downloaded from {url} is not S2S metadata: {exc.message}",
                    hint=f"Open {url} on a server of {trust.receiver}: it must return {trust.sender}'s JSON metadata "
                         f"(an issuer and an x509 signing certificate). Fix the address (metadata_urls."
                         f"{trust.sender}) or the partner. Nothing was changed.") from exc
        return self._metadata[key]

    def root_thumbprint(self, trust: Trust) -> str:
        url = trust.root_certificate_url
        assert url is not None
        return self.metadata(trust, url).thumbprints[0]

    @cached_property
    def realms(self) -> dict[str, str]:
        """The authentication realm of every farm of the run."""
        return {name: _farm(self._ctx, name).realm() for name in self._ctx.params.farms}

    @cached_property
    def in_one_tenant(self) -> dict[str, str]:
        """Trust label → tenant id, for trusts whose two ends share a Microsoft 365 tenant's realm.

        A farm joined to a tenant (the hybrid runbook) has the tenant id as its realm; a partner's
        realm is the one its metadata names. Unreadable metadata counts as "not in one tenant":
        the pre-flight reports it.
        """
        tenant_ids = {t.tenant_id.lower() for t in self._ctx.inventory.tenants.values()}
        found = {}
        for trust in self.trusts:
            realm = self.realms.get(trust.receiver)
            if realm not in tenant_ids:
                continue
            try:
                partner_realm = self.metadata(trust).realm
            except MetadataError:
                continue
            if partner_realm == realm:
                found[trust.label] = realm
        return found

    @property
    def active(self) -> list[Trust]:
        """The trusts this run sets up: all but those within one tenant."""
        return [t for t in self.trusts if t.label not in self.in_one_tenant]

    def farms_involved(self) -> list[str]:
        """Farms at either end of an active trust: they serve or send S2S requests."""
        names = [t.receiver for t in self.active] + [t.sender for t in self.active if t.kind.role == "sharepoint"]
        return list(dict.fromkeys(names))


def _facts(ctx: Any) -> FarmTrustFacts:
    return ctx.facts_of(FarmTrustFacts)


# -- step 0: the trust set -----------------------------------------------------------------


def trust_table(ctx: Any) -> TrustSet:
    """The one-way trusts of this run, as a table (from the parameters; nothing is contacted)."""
    return _facts(ctx).trusts


def _trust_set_check(ctx: Any) -> Check:
    known = _facts(ctx)
    lines, skipped = [], known.in_one_tenant
    for trust in known.trusts:
        line = f"{trust.label}: {trust.receiver} accepts requests from {trust.sender} ({trust.kind.title})"
        if trust.label in skipped:
            line += f" — both in Microsoft 365 tenant {skipped[trust.label]}: nothing to configure"
        lines.append(line)
    evidence = {"trusts": [t.describe() for t in known.trusts], "in_one_tenant": skipped,
                "farm_realms": known.realms}
    wanted = "each one-way trust the parameters list, set up on the farm that accepts"
    if not known.active:
        return Check(found="\n".join(lines), wanted=wanted, evidence=evidence,
                     skip="every partner shares its farm's Microsoft 365 tenant: no trust to configure")
    return Check(found="\n".join(lines), wanted=wanted, evidence=evidence)


def _trust_set_verify(ctx: Any, found: Check) -> Proof:
    known = _facts(ctx)
    return Proof(ok=True, text=f"{len(known.active)} one-way trust(s) to set up, "
                               f"{len(known.in_one_tenant)} within one Microsoft 365 tenant")


TRUST_SET = step("trust-set", "The trust set: which server accepts whose requests",
                 check=_trust_set_check, verify=_trust_set_verify)


# -- step 1: pre-flight --------------------------------------------------------------------

_HTTP_REMEDY = ("Bind the web application to https (an SSL certificate and an https alternate access mapping) — "
                "S2S tokens travel in clear over http. Only where you accept that, set allow_http: true; OAuth over "
                "HTTP is then enabled with a warning. Nothing was changed.")


def _preflight_check(ctx: Any) -> Check:
    """Everything that can stop a trust, read before anything changes; the first problem fails it."""
    p, known = ctx.params, _facts(ctx)
    found: list[str] = []
    evidence: dict[str, Any] = {"farms": {}, "trusts": {}}
    warnings: list[str] = []
    wanted = "https web applications; each partner's metadata and root certificate readable by the farm that trusts it"

    def stop(problem: str, hint: str) -> Check:
        return Check(found="\n".join(found), wanted=wanted, evidence=evidence, warnings=warnings,
                     failure=problem, hint=hint)

    for name in known.farms_involved():
        url = p.web_applications[name]
        farm = _farm(ctx, name)
        if not farm.web_application_exists(url):
            found.append(f"{name}: no web application at {url}")
            return stop(f"{name} has no web application at {url}",
                        f"Set web_applications.{name} to the URL of an existing web application (Get-SPWebApplication).")
        evidence["farms"][name] = {"web_application": url, "realm": known.realms[name]}
        found.append(f"{name}: {url}, realm {known.realms[name]}")
        if url.startswith("http://"):
            if not p.allow_http:
                return stop(f"the web application {url} of {name} uses http; S2S endpoints and requests need https",
                            _HTTP_REMEDY)
            warnings.append(f"{url} of {name} uses http: OAuth over HTTP will be enabled on {name}. SSL (https) is "
                            "the default and what we recommend.")

    for trust in known.active:
        if trust.metadata_url.startswith("http://") and not p.allow_http:
            return stop(f"{trust.sender}'s metadata endpoint {trust.metadata_url} uses http", _HTTP_REMEDY)
        try:
            metadata = known.metadata(trust)
            problem = _metadata_problem(trust, metadata)
            root = known.root_thumbprint(trust) if trust.root_certificate_url else None
        except MetadataError as exc:
            found.append(f"{trust.label}: metadata not usable")
            return stop(exc.message, exc.hint or "")
        if problem:
            found.append(f"{trust.label}: metadata names {metadata.issuer}")
            return stop(problem, f"Check that metadata_urls.{trust.sender} (or its inventory web_url) points at "
                                 f"{trust.sender} itself. Nothing was changed.")
        evidence["trusts"][trust.label] = {"metadata_url": trust.metadata_url, "issuer": metadata.issuer,
                                           "signing_certificates": list(metadata.thumbprints),
                                           "root_certificate": root}
        line = (f"{trust.label}: {trust.receiver} reads {metadata.issuer}, certificate "
                f"{short_thumbprint(metadata.thumbprints[0])}"
                + (f", root {short_thumbprint(root)}" if root else ", no root certificate published"))
        if trust.kind.role == "exchange":
            signs_with = ExchangeServer(ctx.remote(trust.sender), name=trust.sender).auth_config().current_thumbprint
            evidence["trusts"][trust.label]["exchange_auth_certificate"] = signs_with
            if signs_with not in metadata.thumbprints:
                found.append(line)
                return stop(f"the metadata at {trust.metadata_url} does not publish the certificate {trust.sender} "
                            f"signs with ({short_thumbprint(signs_with)}, Get-AuthConfig CurrentCertificateThumbprint)",
                            _EXCHANGE_CERTIFICATE_REMEDY.format(sender=trust.sender))
            line += f"; {trust.sender} signs with it (Get-AuthConfig)"
        found.append(line)
    return Check(found="\n".join(found), wanted=wanted, evidence=evidence, warnings=warnings)


_EXCHANGE_CERTIFICATE_REMEDY = (
    "The URL reaches another Exchange organization, or {sender}'s metadata is stale. Point metadata_urls.{sender} at "
    "{sender}'s own https://<autodiscover or server>/autodiscover/metadata/json/1; after a new Auth certificate "
    "(Set-AuthConfig), publish it (Set-AuthConfig -PublishCertificate) and restart IIS on {sender}, then run again. "
    "Nothing was changed.")


def _metadata_problem(trust: Trust, metadata: S2SMetadata) -> str | None:
    """Why ``metadata`` cannot be the partner's, or None."""
    if metadata.principal_id != trust.kind.principal_id:
        return (f"the metadata at {trust.metadata_url} is issued by {metadata.issuer}, not by a "
                f"{trust.kind.title} ({trust.kind.principal_id}@<realm>)")
    try:
        check_usable(load_certificate(metadata.signing_certificates[0].public_bytes(Encoding.DER)))
    except CertificateError as exc:
        return f"{trust.sender}'s signing certificate in {trust.metadata_url} is not usable: {exc.message}"
    return None


def _preflight_verify(ctx: Any, found: Check) -> Proof:
    return Proof(ok=True, text="all prerequisites met")


PREFLIGHT = step("preflight", "Pre-flight: https web applications, each partner's metadata as its farm reads it",
                 check=_preflight_check, verify=_preflight_verify)


# -- step 1b: OAuth over HTTP --------------------------------------------------------------


def _oauth_parts(ctx: Any) -> list[tuple[str, Step]]:
    return [(name, oauth_over_http_step(f"oauth-over-http:{name}", name, farm=lambda c, n=name: _farm(c, n),
                                        web_application=lambda c, n=name: c.params.web_applications[n]))
            for name in _facts(ctx).farms_involved()]


OAUTH_OVER_HTTP = fan_out("oauth-over-http", "OAuth over HTTP (only for an http web application)",
                          parts=_oauth_parts, wanted="https", nothing="no farm to configure")


# -- step 2: trusted token issuers from the partners' metadata ----------------------------


def _issuer_parts(ctx: Any) -> list[tuple[str, Step]]:
    known = _facts(ctx)
    return [(t.label, metadata_issuer_step(
        f"issuer:{t.label}", t.label, farm=lambda c, t=t: _farm(c, t.receiver),
        name=lambda c, t=t: _issuer_name(c, t), metadata_url=lambda c, t=t: t.metadata_url,
        partner=lambda c, t=t: known.metadata(t))) for t in known.active]


TRUSTED_ISSUERS = fan_out("trusted-issuers", "Trust each partner's token issuer, from its metadata",
                          parts=_issuer_parts, wanted="an issuer per trust", nothing="no trust to set up")


# -- step 3: trusted root authorities ------------------------------------------------------


def _root_parts(ctx: Any) -> list[tuple[str, Step]]:
    known = _facts(ctx)
    parts: list[tuple[str, Step]] = []
    for t in known.active:
        if t.root_certificate_url is None:
            parts.append((t.label, _no_root_certificate(t)))
            continue
        parts.append((t.label, metadata_root_authority_step(
            f"root:{t.label}", t.label, farm=lambda c, t=t: _farm(c, t.receiver), name=lambda c, t=t: _issuer_name(c, t),
            root_certificate_url=lambda c, t=t: t.root_certificate_url,
            thumbprint=lambda c, t=t: known.root_thumbprint(t))))
    return parts


def _no_root_certificate(trust: Trust) -> Step:
    def check(ctx: Any) -> Check:
        return Check(found=f"a {trust.kind.title} publishes no root certificate endpoint",
                     wanted="a root authority where the partner publishes one",
                     skip="not needed: the partner publishes no …/rootcertificate")
    return step(f"root:{trust.label}", trust.label, check=check)


ROOT_AUTHORITIES = fan_out("root-authorities", "Trust each partner's root certificate, where it publishes one",
                           parts=_root_parts, wanted="a root authority per trust", nothing="no trust to set up")


# -- step 4: the partners' app principal permissions ---------------------------------------


def _permission_parts(ctx: Any) -> list[tuple[str, Step]]:
    known = _facts(ctx)
    return [(t.label, app_principal_permission_step(
        f"permission:{t.label}", t.label, farm=lambda c, t=t: _farm(c, t.receiver),
        site=lambda c, t=t: c.params.web_applications[t.receiver],
        # A self-issuer's app principal is the partner itself: the issuer name its metadata publishes.
        name_identifier=lambda c, t=t: known.metadata(t).issuer.lower(),
        scope=t.kind.scope, right=t.kind.right, app_only=t.kind.app_only)) for t in known.active]


APP_PRINCIPAL_PERMISSIONS = fan_out("app-principal-permissions", "Grant each partner its app principal permission",
                                    parts=_permission_parts, wanted="a permission per trust",
                                    nothing="no trust to set up")


STEPS = [TRUST_SET, PREFLIGHT, OAUTH_OVER_HTTP, TRUSTED_ISSUERS, ROOT_AUTHORITIES, APP_PRINCIPAL_PERMISSIONS]
