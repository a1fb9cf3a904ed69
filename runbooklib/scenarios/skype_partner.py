"""Scenario 3 — Skype for Business Server ↔ its partner applications (Exchange, SharePoint), on
premises or cross-premises with Exchange Online.

Skype for Business signs its own S2S tokens with the pool's OAuthTokenIssuer certificate and
publishes that certificate in its metadata (``https://<pool>/metadata/json/1``). A trust is two
one-way trusts: the pool trusts each partner through a *partner application* made from the
partner's metadata, and each partner trusts the pool from the pool's metadata — Exchange with a
partner application of its own (linked account and roles), SharePoint with a trusted token
issuer and an app principal permission. Cross-premises, Exchange is Exchange Online: the pool
trusts the tenant as its OAuth server and Exchange Online through it, and the tenant trusts the
pool because its certificate is a key of the Skype for Business Online principal (whose SPN
names the pool's external web services). Every step checks first and changes only what is
missing; each proves its end state.
"""

from __future__ import annotations

import datetime as dt
import base64
import dataclasses
import re
import uuid
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..certs import check_usable, load_certificate, short_thumbprint, thumbprint_of
from ..errors import CertificateError, GraphError, InputError, MetadataError
from ..exchange import APPLICATION_TYPES, ExchangeServer
from ..fan_out import fan_out
from ..farm_steps import app_principal_permission_step, metadata_issuer_step
from ..metadata import S2SMetadata, fetch_metadata, parse_metadata, same_metadata_uri
from ..sharepoint import Farm
from ..skype import OAuthServer, SkypePool, StoreCertificate
from ..steps import Check, Proof, Step, step
from ..graph import Principal, host_spn
from ..principal_steps import key_upload_step, spn_step
from ..targets import Server, Tenant
from ..trust_set import PARTNER_KINDS
from ..wellknown import (
    EXCHANGE_METADATA_PATH,
    EXCHANGE_PRINCIPAL_ID,
    SHAREPOINT_METADATA_PATH,
    SHAREPOINT_PRINCIPAL_ID,
    SKYPE_METADATA_PATH,
    SKYPE_PRINCIPAL_ID,
)

__all__ = ["Parameters", "PartnerSpec", "SkypeFacts", "STEPS", "validate_against"]

PartnerChoice = Literal["exchange", "sharepoint", "both"]
Topology = Literal["on-premises", "cross-premises"]
_THUMBPRINT = re.compile(r"^[0-9A-F]{40}$")
_URL = re.compile(r"^https?://[^/\s]+(/.*)?$")
TRUST_LEVEL = "Full"  # Exchange and SharePoint speak for users of the realm (SFB-CFGPA)
AUTODISCOVER_PATH = "/autodiscover/autodiscover.svc"  # not autodiscover.xml (SFB-PLAN)
# Where a partner's OAuth call reaches the pool's web services (unconfirmed; override per estate).
SKYPE_OAUTH_TEST_PATH = "/ucwa/oauth/v1/applications"
LYNC = APPLICATION_TYPES["Lync"]  # what Exchange's own script gives a Skype for Business pool
# Where a pool finds Exchange Online's services (SFB-HMA).
EXCHANGE_ONLINE_AUTODISCOVER_URL = "https://autodiscover-s.outlook.com/autodiscover/autodiscover.svc"


class Parameters(BaseModel):
    """What the administrator chooses for the Skype for Business partner trusts."""

    model_config = ConfigDict(extra="forbid")

    front_ends: Annotated[list[str], Server("skype")] = Field(
        min_length=1, description="inventory names of every Front End Server of the pool")
    partners: PartnerChoice = Field("both", description="exchange | sharepoint | both")
    topology: Topology = Field(
        "on-premises", description="on-premises | cross-premises (Exchange is Exchange Online, trusted through the tenant)")
    tenant: Annotated[str | None, Tenant()] = Field(
        None, description="cross-premises: inventory name of the Microsoft 365 tenant")
    external_web_fqdn: str | None = Field(
        None, description="cross-premises: the pool's external web services FQDN, e.g. webext.contoso.com")
    oauth_server_identity: str = Field("microsoft.sts", description="cross-premises: the pool's OAuth server for the tenant")
    exchange: Annotated[str | None, Server("exchange")] = Field(None, description="inventory name of the Exchange server")
    farm: Annotated[str | None, Server("sharepoint")] = Field(None, description="inventory name of the SharePoint farm")
    site_url: str | None = Field(None, description="the farm's web application Skype calls, e.g. https://sharepoint.contoso.com")
    thumbprint: str | None = Field(None, description="the OAuthTokenIssuer certificate, installed on every front end")
    certificate_subject: str | None = Field(
        None, description="or: the subject of that certificate (e.g. CN=contoso.com); the newest one with its key")
    realm: str | None = Field(None, description="the OAuth realm (default: the pool's default SIP domain)")
    roll_window_days: int = Field(30, ge=1, le=365, description="the certificate must stay valid longer than this")
    skype_metadata_url: str | None = Field(None, description="the pool's metadata (default: the first front end's web_url + /metadata/json/1)")
    exchange_metadata_url: str | None = Field(None, description="Exchange's metadata (default: its web_url + /autodiscover/metadata/json/1)")
    sharepoint_metadata_url: str | None = Field(None, description="the farm's metadata (default: its web_url + /_layouts/15/metadata/json/1)")
    exchange_autodiscover_url: str | None = Field(None, description="default: Exchange's web_url + /autodiscover/autodiscover.svc")
    exchange_identity: str = Field("microsoft.exchange", description="the partner application for Exchange on the pool")
    sharepoint_identity: str = Field("microsoft.sharepoint", description="the partner application for SharePoint on the pool")
    sharepoint_issuer_name: str = Field("Skype for Business Server", description="the farm's trusted issuer for the pool")
    test_sip_uri: str | None = Field(None, description="a user with an Exchange mailbox, for Test-CsExStorageConnectivity")
    skype_oauth_test_url: str | None = Field(
        None, description="where Exchange's Test-OAuthConnectivity calls the pool (default: the first front end's "
                          "web_url + /ucwa/oauth/v1/applications)")

    @field_validator("thumbprint")
    @classmethod
    def _thumbprint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        cleaned = re.sub(r"[\s:]", "", value).upper()
        if not _THUMBPRINT.match(cleaned):
            raise ValueError("expected a certificate thumbprint: 40 hexadecimal characters")
        return cleaned

    @field_validator("site_url", "skype_metadata_url", "exchange_metadata_url", "sharepoint_metadata_url",
                     "exchange_autodiscover_url", "skype_oauth_test_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not _URL.match(value):
            raise ValueError(f"expected a URL like https://server.contoso.com/…, not {value!r}")
        return value.rstrip("/") if value else value

    @field_validator("external_web_fqdn")
    @classmethod
    def _fqdn(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return host_spn(value, principal_id=SKYPE_PRINCIPAL_ID).split("/", 1)[1]
        except InputError as exc:
            raise ValueError(f"{exc.message}: expected the host name only, like webext.contoso.com") from None

    @field_validator("test_sip_uri")
    @classmethod
    def _sip(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^sip:[^@\s]+@[^@\s]+$", value, re.IGNORECASE):
            raise ValueError("expected a SIP URI like sip:alice@contoso.com")
        return value

    @model_validator(mode="after")
    def _choices(self) -> "Parameters":
        if len({s.lower() for s in self.front_ends}) != len(self.front_ends):
            raise ValueError("front_ends names a server twice")
        if self.thumbprint and self.certificate_subject:
            raise ValueError("give thumbprint or certificate_subject, not both")
        if self.topology == "cross-premises":
            return self._cross_premises()
        if self.tenant or self.external_web_fqdn:
            raise ValueError("tenant and external_web_fqdn are for topology: cross-premises only")
        if self.partners in ("exchange", "both") and not self.exchange:
            raise ValueError(f"partners: {self.partners} needs exchange (the Exchange server's inventory name)")
        if self.partners in ("exchange", "both") and not self.test_sip_uri:
            raise ValueError(f"partners: {self.partners} needs test_sip_uri (a user with a mailbox, for the proof)")
        return self._sharepoint_named()

    def _cross_premises(self) -> "Parameters":
        if not self.tenant:
            raise ValueError("topology: cross-premises needs tenant (the Microsoft 365 tenant's inventory name)")
        if not self.external_web_fqdn:
            raise ValueError("topology: cross-premises needs external_web_fqdn (the pool's external web services "
                             "FQDN, Get-CsService -WebServer: ExternalFqdn)")
        if self.exchange or self.exchange_metadata_url:
            raise ValueError("topology: cross-premises trusts Exchange Online through the tenant: leave out exchange "
                             "and exchange_metadata_url (an on-premises Exchange server)")
        return self._sharepoint_named()

    def _sharepoint_named(self) -> "Parameters":
        if self.partners in ("sharepoint", "both") and not (self.farm and self.site_url):
            raise ValueError(f"partners: {self.partners} needs farm and site_url (the SharePoint farm)")
        return self

    @property
    def exchange_online(self) -> bool:
        """Whether Exchange Online is a partner of this run (cross-premises with Exchange)."""
        return self.topology == "cross-premises" and self.partners in ("exchange", "both")


@dataclass(frozen=True)
class PartnerSpec:
    """One partner of this run: its kind, inventory name, identity on the pool and metadata."""

    kind: Literal["exchange", "sharepoint"]
    server: str
    identity: str
    metadata_url: str
    principal_id: str
    title: str


def _default_url(inventory: Any, server: str, path: str, *, source: str, field: str) -> str:
    web_url = inventory.servers[server].web_url
    if not web_url:
        raise InputError(f"{server} has no web_url in the inventory, so {field} is unknown", source=source, field=field,
                         hint=f"Add web_url to {server} in the inventory, or set {field} (…{path}).")
    return web_url.rstrip("/") + path


def partners_of(params: Parameters, inventory: Any, *, source: str = "parameters") -> list[PartnerSpec]:
    """The partners the parameters choose, each with its metadata URL (from the parameters or inventory)."""
    found = []
    if params.partners in ("exchange", "both") and params.exchange:
        url = params.exchange_metadata_url or _default_url(inventory, params.exchange, EXCHANGE_METADATA_PATH,
                                                           source=source, field="exchange_metadata_url")
        found.append(PartnerSpec("exchange", params.exchange, params.exchange_identity, url, EXCHANGE_PRINCIPAL_ID,
                                 "Exchange"))
    if params.partners in ("sharepoint", "both") and params.farm:
        url = params.sharepoint_metadata_url or _default_url(inventory, params.farm, SHAREPOINT_METADATA_PATH,
                                                             source=source, field="sharepoint_metadata_url")
        found.append(PartnerSpec("sharepoint", params.farm, params.sharepoint_identity, url, SHAREPOINT_PRINCIPAL_ID,
                                 "SharePoint"))
    return found


def validate_against(params: Parameters, inventory: Any, *, source: str) -> None:
    """Every metadata URL is known (from the parameters or the inventory's web_url)."""
    partners_of(params, inventory, source=source)
    if not params.skype_metadata_url:
        _default_url(inventory, params.front_ends[0], SKYPE_METADATA_PATH, source=source, field="skype_metadata_url")
    if params.exchange and params.partners != "sharepoint" and not params.exchange_autodiscover_url:
        _default_url(inventory, params.exchange, AUTODISCOVER_PATH, source=source, field="exchange_autodiscover_url")
    if params.exchange and params.partners != "sharepoint" and not params.skype_oauth_test_url:
        _default_url(inventory, params.front_ends[0], SKYPE_OAUTH_TEST_PATH, source=source, field="skype_oauth_test_url")


# -- facts ---------------------------------------------------------------------------------


def _pool(ctx: Any, name: str | None = None) -> SkypePool:
    name = name or ctx.params.front_ends[0]
    return SkypePool(ctx.remote(name), name=name)


def _farm(ctx: Any) -> Farm:
    return Farm(ctx.remote(ctx.params.farm), name=ctx.params.farm)


@dataclass(frozen=True)
class ChosenCertificate:
    """The OAuthTokenIssuer certificate of this run, as the first front end holds it."""

    certificate: StoreCertificate
    origin: str


class SkypeFacts:
    """What the steps read once per run (``ctx.facts_of(SkypeFacts)``); a fact is read on first use."""

    def __init__(self, ctx: Any) -> None:
        self._ctx = ctx

    @cached_property
    def partners(self) -> list[PartnerSpec]:
        return partners_of(self._ctx.params, self._ctx.inventory)

    @cached_property
    def sip_domain(self) -> str:
        return _pool(self._ctx).default_sip_domain()

    @property
    def realm(self) -> str:
        """The realm wanted: the parameter, else the default SIP domain."""
        return (self._ctx.params.realm or self.sip_domain).lower()

    @property
    def issuer(self) -> str:
        return f"{SKYPE_PRINCIPAL_ID}@{self.realm}"

    @cached_property
    def skype_metadata_url(self) -> str:
        p = self._ctx.params
        return p.skype_metadata_url or self._ctx.inventory.servers[p.front_ends[0]].web_url.rstrip("/") + SKYPE_METADATA_PATH

    @cached_property
    def autodiscover_url(self) -> str | None:
        p = self._ctx.params
        if p.exchange_online:
            return p.exchange_autodiscover_url or EXCHANGE_ONLINE_AUTODISCOVER_URL
        if not any(x.kind == "exchange" for x in self.partners):
            return None
        return p.exchange_autodiscover_url or self._ctx.inventory.servers[p.exchange].web_url.rstrip("/") + AUTODISCOVER_PATH

    @cached_property
    def chosen(self) -> ChosenCertificate:
        """The certificate named by thumbprint or subject, else the one assigned now.

        Raises :class:`CertificateError` when there is none to choose.
        """
        p, pool = self._ctx.params, _pool(self._ctx)
        certificates = pool.certificates()
        if p.thumbprint:
            found = next((c for c in certificates if c.thumbprint == p.thumbprint), None)
            if found is None:
                raise CertificateError(f"{pool.name} has no certificate {p.thumbprint} in LocalMachine\\My",
                                       hint="Import it (with its private key) on every front end, or fix thumbprint.")
            return ChosenCertificate(found, f"thumbprint {short_thumbprint(p.thumbprint)}")
        if p.certificate_subject:
            wanted = _subject_key(p.certificate_subject)
            matching = [c for c in certificates if _subject_key(c.subject) == wanted and c.has_private_key]
            if not matching:
                raise CertificateError(f"{pool.name} has no certificate with subject {p.certificate_subject} and its "
                                       "private key in LocalMachine\\My",
                                       hint="Import it on every front end, or fix certificate_subject.")
            newest = max(matching, key=lambda c: c.not_after or dt.datetime.min.replace(tzinfo=dt.timezone.utc))
            return ChosenCertificate(newest, f"subject {p.certificate_subject}")
        assigned = pool.oauth_token_issuer()
        if assigned is None:
            raise CertificateError("the pool has no OAuthTokenIssuer certificate, and the parameters name none",
                                   hint="Set thumbprint (or certificate_subject) to a certificate installed with its "
                                        "private key on every front end; then run again. Nothing was changed.")
        found = next((c for c in certificates if c.thumbprint == assigned.thumbprint), None)
        if found is None:
            raise CertificateError(f"the OAuthTokenIssuer certificate {assigned.thumbprint} is not in "
                                   f"LocalMachine\\My on {pool.name}",
                                   hint="Import it with its private key on every front end (it is not replicated "
                                        "when it was imported by hand), or name another one.")
        return ChosenCertificate(found, "assigned as OAuthTokenIssuer")

    def partner_metadata(self, partner: PartnerSpec) -> S2SMetadata:
        """The partner's metadata as this machine reads it (MetadataError naming URL and fix)."""
        server = self._ctx.inventory.servers[partner.server]
        return fetch_metadata(partner.metadata_url, ca_bundle=server.ca_bundle)

    def skype_metadata_for_farm(self) -> S2SMetadata:
        """The pool's metadata as the farm downloads it. In plan mode, before step 1 published the
        certificate and realm, what the pool will publish once it has."""
        url = self.skype_metadata_url
        try:
            live = parse_metadata(_farm(self._ctx).partner_metadata(url), url=url)
        except MetadataError:
            if self._ctx.mode != "plan":
                raise
            return self.predicted_metadata()
        if self._ctx.mode == "plan" and (live.issuer.lower() != self.issuer or
                                         self.chosen.certificate.thumbprint not in live.thumbprints):
            return self.predicted_metadata()
        return live

    def predicted_metadata(self) -> S2SMetadata:
        cert = x509.load_der_x509_certificate(self.chosen.certificate.der)
        return S2SMetadata(url=self.skype_metadata_url, issuer=self.issuer, principal_id=SKYPE_PRINCIPAL_ID,
                           realm=self.realm, name=None, service_name=SKYPE_PRINCIPAL_ID, signing_certificates=(cert,))


def _subject_key(subject: str) -> str:
    return ",".join(part.strip().lower() for part in subject.split(","))


def _facts(ctx: Any) -> SkypeFacts:
    return ctx.facts_of(SkypeFacts)


def _sharepoint(ctx: Any) -> bool:
    return any(p.kind == "sharepoint" for p in _facts(ctx).partners)


def _exchange(ctx: Any) -> bool:
    return any(p.kind == "exchange" for p in _facts(ctx).partners)


def _no_exchange(ctx: Any) -> str:
    """Why a step for an on-premises Exchange server has nothing to do in this run."""
    if ctx.params.exchange_online:
        return "Exchange is Exchange Online here: the pool trusts it through the tenant (cross-premises step)"
    return "Exchange is not a partner in this run"


# -- step 0: pre-flight --------------------------------------------------------------------


def _preflight_check(ctx: Any) -> Check:
    """Everything that can stop the trusts, read before anything changes; the first problem fails it."""
    p, known = ctx.params, _facts(ctx)
    found: list[str] = []
    evidence: dict[str, Any] = {"front_ends": {}, "partners": {}}
    wanted = (f"an OAuthTokenIssuer certificate of at least 2048 bits, valid beyond {p.roll_window_days} days, the "
              "same on every front end; each partner's metadata readable over https")

    def stop(problem: str, hint: str) -> Check:
        return Check(found="\n".join(found), wanted=wanted, evidence=evidence, failure=problem, hint=hint)

    try:
        chosen = known.chosen
        cert = dataclasses.replace(load_certificate(chosen.certificate.der),
                                   source=f"LocalMachine\\My on {p.front_ends[0]}")
        check_usable(cert)
    except CertificateError as exc:
        hint = (exc.hint or "use another certificate").rstrip(".")
        return stop(exc.message, f"{hint[:1].upper()}{hint[1:]}, install it on every front end and run with its "
                                 "thumbprint. Nothing was changed.")
    ours = chosen.certificate
    evidence["certificate"] = {"thumbprint": ours.thumbprint, "subject": ours.subject, "key_size": cert.key_size,
                               "not_after": cert.not_after.isoformat(), "origin": chosen.origin}
    found.append(f"certificate {short_thumbprint(ours.thumbprint)} ({ours.subject}, {cert.key_size} bits, valid to "
                 f"{cert.not_after:%Y-%m-%d}; {chosen.origin})")
    left = cert.not_after - dt.datetime.now(dt.timezone.utc)
    if left < dt.timedelta(days=p.roll_window_days):
        return stop(f"the certificate {short_thumbprint(ours.thumbprint)} expires on {cert.not_after:%Y-%m-%d %H:%M} UTC, "
                    f"within the roll window of {p.roll_window_days} days",
                    "Issue a new certificate, install it on every front end and roll to it ahead of the expiry "
                    "(Set-CsCertificate -Identity global -Type OAuthTokenIssuer -Thumbprint <new> -Roll -EffectiveDate "
                    "<at least 24 hours before the old one expires>); then run with its thumbprint. Nothing was changed.")

    for name in p.front_ends:
        held = _pool(ctx, name).certificate(ours.thumbprint)
        evidence["front_ends"][name] = bool(held and held.has_private_key)
        if held is None or not held.has_private_key:
            found.append(f"{name}: lacks {short_thumbprint(ours.thumbprint)}" + ("" if held is None else "'s private key"))
            return stop(f"{name} does not hold the certificate {ours.thumbprint} with its private key; the "
                        "OAuthTokenIssuer must be the same certificate on every front end",
                        f"Import the certificate with its private key into LocalMachine\\My on {name} (a certificate "
                        "imported by hand is not replicated), then run again. Nothing was changed.")
        found.append(f"{name}: holds it with its private key")

    for partner in known.partners:
        if not partner.metadata_url.lower().startswith("https://"):
            return stop(f"{partner.title}'s metadata endpoint {partner.metadata_url} is not https",
                        "S2S metadata must be read over https: fix the URL (or the partner's binding). Nothing was changed.")
        try:
            metadata = known.partner_metadata(partner)
        except MetadataError as exc:
            found.append(f"{partner.title}: metadata not usable")
            return stop(f"{partner.title}'s metadata at {partner.metadata_url} is not usable: {exc.message}",
                        (exc.hint or "") + f" Check {partner.metadata_url} answers with the partner's JSON metadata "
                        f"(or set {partner.kind}_metadata_url). Nothing was changed.")
        problem = _metadata_problem(partner, metadata)
        if problem:
            found.append(f"{partner.title}: metadata names {metadata.issuer}")
            return stop(problem, f"Point {partner.kind}_metadata_url (or the inventory's web_url of {partner.server}) "
                                 f"at {partner.title} itself. Nothing was changed.")
        evidence["partners"][partner.kind] = {"metadata_url": partner.metadata_url, "issuer": metadata.issuer,
                                              "signing_certificates": list(metadata.thumbprints)}
        found.append(f"{partner.title}: {metadata.issuer}, certificate {short_thumbprint(metadata.thumbprints[0])}")
    if p.topology == "cross-premises":
        try:
            evidence["tenant"] = _tenant_facts(ctx)
        except (MetadataError, GraphError) as exc:
            found.append(f"tenant {p.tenant}: not usable")
            return stop(f"the tenant {p.tenant} is not usable cross-premises: {exc.message}",
                        (exc.hint or "").rstrip(".") + ". Nothing was changed.")
        found.append(f"tenant {p.tenant}: ACS {evidence['tenant']['acs_issuer']}; Skype for Business Online "
                     f"principal {evidence['tenant']['skype_online_principal']}")
    return Check(found="\n".join(found), wanted=wanted, evidence=evidence)


def _tenant_facts(ctx: Any) -> dict[str, str]:
    """What the cross-premises step needs of the tenant, read now: its ACS metadata (the pool's OAuth
    server) and the Skype for Business Online principal (MetadataError / GraphError otherwise)."""
    spec = _tenant_spec(ctx)
    acs = fetch_metadata(spec.acs_metadata_url, ca_bundle=spec.ca_bundle)
    return {"acs_metadata_url": spec.acs_metadata_url, "acs_issuer": acs.issuer,
            "skype_online_principal": _skype_online(ctx).object_id()}


def _metadata_problem(partner: PartnerSpec, metadata: S2SMetadata) -> str | None:
    if metadata.principal_id != partner.principal_id:
        return (f"the metadata at {partner.metadata_url} is issued by {metadata.issuer}, not by {partner.title} "
                f"({partner.principal_id}@<realm>)")
    try:
        check_usable(load_certificate(metadata.signing_certificates[0].public_bytes(Encoding.DER)))
    except CertificateError as exc:
        return f"{partner.title}'s signing certificate in {partner.metadata_url} is not usable: {exc.message}"
    return None


def _preflight_verify(ctx: Any, found: Check) -> Proof:
    return Proof(ok=True, text="all prerequisites met")


PREFLIGHT = step("preflight", "Pre-flight: the OAuth certificate on every front end, each partner's metadata",
                 check=_preflight_check, verify=_preflight_verify)


# -- step 1a: the OAuthTokenIssuer certificate ---------------------------------------------

ROLL_LEAD = dt.timedelta(hours=24)  # Exchange caches the old key material this long (SFB-STAGE)


def _certificate_check(ctx: Any) -> Check:
    wanted_tp = _facts(ctx).chosen.certificate.thumbprint
    pool = _pool(ctx)
    assigned = pool.assigned("OAuthTokenIssuer")
    current = pool.oauth_token_issuer()
    pending = [a for a in assigned if current is None or a.thumbprint != current.thumbprint]
    wanted = f"OAuthTokenIssuer {short_thumbprint(wanted_tp)} (global: every front end)"
    evidence = {"current": current.thumbprint if current else None, "pending": [a.thumbprint for a in pending]}
    if current is not None and current.thumbprint == wanted_tp:
        return Check(found=f"OAuthTokenIssuer {short_thumbprint(wanted_tp)}", wanted=wanted, evidence=evidence)
    if any(a.thumbprint == wanted_tp for a in pending):
        return Check(found=f"rolling from {short_thumbprint(current.thumbprint) if current else 'none'} to "
                           f"{short_thumbprint(wanted_tp)}", wanted=wanted, evidence=evidence,
                     warnings=["the certificate is set to take over at its effective date; partners keep the old one "
                               "until then — run again after that date to refresh them"])
    if current is None:
        return Check(found="no OAuthTokenIssuer certificate", wanted=wanted, evidence=evidence,
                     changes=[f"assign {short_thumbprint(wanted_tp)} as OAuthTokenIssuer (Set-CsCertificate -Identity "
                              "global -Type OAuthTokenIssuer)"])
    at = dt.datetime.now(dt.timezone.utc) + ROLL_LEAD
    return Check(found=f"OAuthTokenIssuer {short_thumbprint(current.thumbprint)}", wanted=wanted, evidence=evidence,
                 changes=[f"roll to {short_thumbprint(wanted_tp)} effective {at:%Y-%m-%d %H:%M} UTC; "
                          f"{short_thumbprint(current.thumbprint)} signs until then"], data=at)


def _certificate_apply(ctx: Any, found: Check) -> list[str]:
    thumbprint = _facts(ctx).chosen.certificate.thumbprint
    _pool(ctx).assign_oauth_certificate(thumbprint, roll_at=found.data)
    return list(found.changes)


def _certificate_verify(ctx: Any, found: Check) -> Proof:
    wanted_tp = _facts(ctx).chosen.certificate.thumbprint
    lines, ok = [], True
    for name in ctx.params.front_ends:
        assigned = {a.thumbprint for a in _pool(ctx, name).assigned("OAuthTokenIssuer")}
        ok = ok and wanted_tp in assigned
        lines.append(f"{name}: Get-CsCertificate -Type OAuthTokenIssuer shows "
                     f"{', '.join(short_thumbprint(t) for t in sorted(assigned)) or 'nothing'}")
    return Proof(ok=ok, text="\n".join(lines), evidence={"thumbprint": wanted_tp},
                 hint="Check Central Management Store replication to the front end named (Get-CsManagementStoreReplicationStatus), then run again.")


OAUTH_CERTIFICATE = step("oauth-certificate", "Assign the OAuthTokenIssuer certificate", check=_certificate_check,
                         apply=_certificate_apply, verify=_certificate_verify)


# -- step 1b: realm, service name, Exchange autodiscover ------------------------------------


def _wanted_configuration(ctx: Any) -> dict[str, str]:
    known = _facts(ctx)
    wanted = {"realm": known.realm, "service_name": SKYPE_PRINCIPAL_ID}
    if known.autodiscover_url:
        wanted["exchange_autodiscover_url"] = known.autodiscover_url
    return wanted


_WORDS = {"realm": "Realm", "service_name": "ServiceName", "exchange_autodiscover_url": "ExchangeAutodiscoverUrl"}


def _configuration_check(ctx: Any) -> Check:
    known = _facts(ctx)
    conf = _pool(ctx).oauth_configuration()
    wanted = _wanted_configuration(ctx)
    differ = {k: v for k, v in wanted.items() if getattr(conf, k).lower() != v.lower()}
    found = ", ".join(f"{_WORDS[k]} '{getattr(conf, k)}'" for k in wanted)
    warnings = []
    effective = (conf.realm or known.sip_domain).lower()
    if effective != known.realm:
        warnings.append(f"the OAuth realm changes from {effective} to {known.realm}: every partner that trusts the pool "
                        "under the old realm must trust it again (this run does so for its partners)")
    return Check(found=found, wanted=", ".join(f"{_WORDS[k]} '{v}'" for k, v in wanted.items()),
                 changes=[f"set {_WORDS[k]} to '{v}'" for k, v in differ.items()], warnings=warnings, data=differ)


def _configuration_apply(ctx: Any, found: Check) -> list[str]:
    _pool(ctx).set_oauth_configuration(**found.data)
    return list(found.changes)


def _configuration_verify(ctx: Any, found: Check) -> Proof:
    known = _facts(ctx)
    conf = _pool(ctx).oauth_configuration()
    differ = [k for k, v in _wanted_configuration(ctx).items() if getattr(conf, k).lower() != v.lower()]
    text = f"Get-CsOAuthConfiguration: Realm '{conf.realm}', ServiceName '{conf.service_name}'"
    if differ:
        return Proof(ok=False, text=text + f"; still different: {', '.join(_WORDS[k] for k in differ)}",
                     hint="Set them with Set-CsOAuthConfiguration and run again.")
    server = ctx.inventory.servers[ctx.params.front_ends[0]]
    try:
        published = fetch_metadata(known.skype_metadata_url, ca_bundle=server.ca_bundle)
    except MetadataError as exc:
        return Proof(ok=False, text=text + f"; the pool's metadata is not readable: {exc.message}",
                     hint=f"Check that {known.skype_metadata_url} answers (the pool's web services).")
    tp = known.chosen.certificate.thumbprint
    ok = published.issuer.lower() == known.issuer and tp in published.thumbprints
    return Proof(ok=ok, text=text + f"; {known.skype_metadata_url} publishes {published.issuer} with "
                                    f"{', '.join(short_thumbprint(t) for t in published.thumbprints)}",
                 evidence={"metadata_issuer": published.issuer, "metadata_thumbprints": list(published.thumbprints)},
                 hint="The pool's metadata does not show the realm or certificate yet: check replication, then run again.")


OAUTH_CONFIGURATION = step("oauth-configuration", "Set the OAuth realm and service name",
                           check=_configuration_check, apply=_configuration_apply, verify=_configuration_verify)


# -- step 2: the pool trusts each partner --------------------------------------------------


def partner_application_step(partner: PartnerSpec) -> Step:
    """A step that makes the pool trust ``partner`` through a partner application from its metadata,
    full trust, enabled — the Get / New / Remove+New / Set pattern of the published scripts."""

    def live(ctx: Any) -> S2SMetadata:
        return _facts(ctx).partner_metadata(partner)

    def check(ctx: Any) -> Check:
        app = _pool(ctx).partner_application(partner.identity)
        metadata = live(ctx)
        wanted = (f"'{partner.identity}' from {partner.metadata_url}: {partner.principal_id}@{metadata.realm}, "
                  f"trust level {TRUST_LEVEL}, enabled")
        create = f"create partner application '{partner.identity}' from {partner.metadata_url} (trust level {TRUST_LEVEL})"
        if app is None:
            return Check(found=f"no partner application '{partner.identity}'", wanted=wanted, changes=[create],
                         data="new")
        found = (f"'{app.identity}': {app.application_identifier}@{app.realm}, {app.trust_level}, "
                 f"{'enabled' if app.enabled else 'disabled'}, {app.metadata_url or 'no metadata URL'}")
        evidence = {"application_identifier": app.application_identifier, "realm": app.realm}
        if app.application_identifier != partner.principal_id:
            return Check(found=found, wanted=wanted, evidence=evidence, data="replace",
                         changes=[f"remove '{app.identity}' (it stands for {app.application_identifier}) and {create}"])
        changes = []
        if not same_metadata_uri(app.metadata_url, partner.metadata_url) or app.realm != metadata.realm:
            changes.append(f"read {partner.metadata_url} again into '{app.identity}'")
        if app.trust_level != TRUST_LEVEL:
            changes.append(f"set its trust level to {TRUST_LEVEL}")
        if not app.enabled:
            changes.append("enable it")
        return Check(found=found, wanted=wanted, evidence=evidence, changes=changes, data="set")

    def apply(ctx: Any, found: Check) -> list[str]:
        pool = _pool(ctx)
        if found.data == "replace":
            pool.remove_partner_application(partner.identity)
        if found.data in ("new", "replace"):
            pool.new_partner_application(partner.identity, partner.metadata_url, trust_level=TRUST_LEVEL)
        else:
            pool.set_partner_application(partner.identity, metadata_url=partner.metadata_url, trust_level=TRUST_LEVEL,
                                         enabled=True)
        return list(found.changes)

    def verify(ctx: Any, found: Check) -> Proof:
        app = _pool(ctx).partner_application(partner.identity)
        metadata = live(ctx)
        if app is None:
            return Proof(ok=False, text=f"Get-CsPartnerApplication finds no '{partner.identity}'",
                         hint="Create it with New-CsPartnerApplication -MetadataUrl and run again.")
        problems = []
        if app.application_identifier != partner.principal_id:
            problems.append(f"ApplicationIdentifier is {app.application_identifier}")
        if app.realm != metadata.realm:
            problems.append(f"Realm is {app.realm}, the partner publishes {metadata.realm}")
        if app.trust_level != TRUST_LEVEL or not app.enabled:
            problems.append(f"trust level {app.trust_level}, enabled {app.enabled}")
        text = (f"'{app.identity}': ApplicationIdentifier {app.application_identifier}, Realm {app.realm}, "
                f"ApplicationTrustLevel {app.trust_level}, Enabled {app.enabled}")
        return Proof(ok=not problems, text=text + ("; " + "; ".join(problems) if problems else ""),
                     evidence={"identity": app.identity, "realm": app.realm},
                     hint=f"Remove '{partner.identity}' (Remove-CsPartnerApplication) and run again.")

    return step(f"partner-application:{partner.kind}", partner.title, check=check, apply=apply, verify=verify)


def _partner_parts(ctx: Any) -> list[tuple[str, Step]]:
    return [(f"{p.title} ({p.identity})", partner_application_step(p)) for p in _facts(ctx).partners]


SKYPE_TRUSTS_PARTNERS = fan_out("partner-applications", "Skype trusts each partner: a partner application from its metadata",
                                parts=_partner_parts, wanted="a partner application per partner", nothing="no partner")


# -- step 3b: SharePoint trusts Skype ------------------------------------------------------

_SKYPE_ON_SHAREPOINT = PARTNER_KINDS["skype"]


def _sharepoint_issuer_parts(ctx: Any) -> list[tuple[str, Step]]:
    if not _sharepoint(ctx):
        return []
    known = _facts(ctx)
    return [(ctx.params.farm, metadata_issuer_step(
        "sharepoint-issuer:skype", ctx.params.farm, farm=_farm, name=lambda c: c.params.sharepoint_issuer_name,
        metadata_url=lambda c: known.skype_metadata_url, partner=lambda c: known.skype_metadata_for_farm()))]


SHAREPOINT_ISSUER = fan_out("sharepoint-issuer", "SharePoint trusts Skype: a trusted token issuer from the pool's metadata",
                            parts=_sharepoint_issuer_parts, wanted="a trusted token issuer for the pool",
                            nothing="SharePoint is not a partner in this run")


def _sharepoint_permission_parts(ctx: Any) -> list[tuple[str, Step]]:
    if not _sharepoint(ctx):
        return []
    known = _facts(ctx)
    return [(ctx.params.farm, app_principal_permission_step(
        "sharepoint-permission:skype", ctx.params.farm, farm=_farm, site=lambda c: c.params.site_url,
        name_identifier=lambda c: known.issuer, scope=_SKYPE_ON_SHAREPOINT.scope, right=_SKYPE_ON_SHAREPOINT.right,
        app_only=_SKYPE_ON_SHAREPOINT.app_only))]


SHAREPOINT_PERMISSION = fan_out("sharepoint-permission", "SharePoint lets Skype in: its app principal permission",
                                parts=_sharepoint_permission_parts, wanted="a permission for the pool's principal",
                                nothing="SharePoint is not a partner in this run")


# -- step 3c: Exchange trusts Skype --------------------------------------------------------


def _exchange_server(ctx: Any) -> ExchangeServer:
    return ExchangeServer(ctx.remote(ctx.params.exchange), name=ctx.params.exchange)


def _exchange_domain(ctx: Any) -> str:
    """The domain of the application account's address: the realm Exchange's metadata names."""
    partner = next(p for p in _facts(ctx).partners if p.kind == "exchange")
    return _facts(ctx).partner_metadata(partner).realm


def _same_account(a: str, b: str) -> bool:
    return a.strip().lower().rsplit("/", 1)[-1] == b.strip().lower().rsplit("/", 1)[-1]


def _exchange_check(ctx: Any) -> Check:
    if not _exchange(ctx):
        return Check(found=_no_exchange(ctx), wanted="nothing on Exchange", skip=_no_exchange(ctx))
    known, ex = _facts(ctx), _exchange_server(ctx)
    url = known.skype_metadata_url
    app = ex.partner_application_for(url)
    account = ex.user(LYNC.account)
    missing = ex.missing_roles(account, LYNC.roles) if account else list(LYNC.roles)
    wanted = (f"one partner application from {url} for {known.issuer}, enabled, linked to {LYNC.account} with "
              f"{', '.join(LYNC.roles)}")
    found = [f"account {LYNC.account}: " + (f"roles missing: {', '.join(missing)}" if account and missing
                                             else "all roles" if account else "missing")]
    changes = []
    if account is None:
        changes.append(f"create the mail user {LYNC.account} (the application's linked account)")
    changes += [f"assign the role {role} to {LYNC.account}" for role in missing]
    thumbprint = known.chosen.certificate.thumbprint
    if app is None:
        found.append(f"no partner application for {url}")
        changes.append(f"create partner application LyncEnterprise-<id> from {url}, linked to {LYNC.account}, "
                       "accepting SIDs")
    else:
        held = [thumbprint_of(_b64decode(c)) for c in app.certificates]
        found.append(f"'{app.name}': {app.issuer}, {'enabled' if app.enabled else 'disabled'}, linked to "
                     f"{app.linked_account or 'nobody'}, certificates {', '.join(short_thumbprint(t) for t in held) or 'none'}")
        if app.issuer != known.issuer or (held and thumbprint not in held) or not held:
            changes.append(f"read {url} again into '{app.name}' (-RefreshAuthMetadata)")
        if not app.enabled or not account or not _same_account(app.linked_account, account) \
                or not app.accept_security_identifier_information:
            changes.append(f"enable '{app.name}', linked to {LYNC.account}, accepting SIDs")
    return Check(found="; ".join(found), wanted=wanted, changes=changes,
                 evidence={"application": app.name if app else None, "metadata_url": url},
                 data=app.name if app else None)


def _exchange_apply(ctx: Any, found: Check) -> list[str]:
    known, ex = _facts(ctx), _exchange_server(ctx)
    made = []
    account = ex.user(LYNC.account)
    if account is None:
        account = ex.new_application_account(LYNC.account, _exchange_domain(ctx))
        made.append(f"created the mail user {LYNC.account}")
    for role in ex.missing_roles(account, LYNC.roles):
        ex.assign_role(role, account)
        made.append(f"assigned {role} to {LYNC.account}")
    if found.data is None:
        # Exchange's script names each application LyncEnterprise-<new GUID>; this GUID follows from the
        # metadata URL, so a run that failed after creating it and its re-run agree on the name.
        name = f"LyncEnterprise-{uuid.uuid5(uuid.NAMESPACE_URL, known.skype_metadata_url.lower()).hex}"
        ex.new_partner_application(name, known.skype_metadata_url, linked_account=account,
                                   accept_security_identifier_information=LYNC.accept_security_identifier_information)
        return made + [f"created partner application {name} from {known.skype_metadata_url}"]
    app = ex.partner_application_for(known.skype_metadata_url)
    assert app is not None
    if any(c.startswith("read ") for c in found.changes):
        ex.refresh_partner_application(app.name)
        made.append(f"read {known.skype_metadata_url} again into '{app.name}'")
    if any(c.startswith("enable ") for c in found.changes):
        ex.set_partner_application(app.name, enabled=True, linked_account=account,
                                   accept_security_identifier_information=LYNC.accept_security_identifier_information)
        made.append(f"enabled '{app.name}', linked to {LYNC.account}")
    return made


def _exchange_verify(ctx: Any, found: Check) -> Proof:
    known, ex = _facts(ctx), _exchange_server(ctx)
    app = ex.partner_application_for(known.skype_metadata_url)
    account = ex.user(LYNC.account)
    hint = (f"Check with Get-PartnerApplication and Get-ManagementRoleAssignment -RoleAssignee {LYNC.account} on "
            f"{ctx.params.exchange}; remove a wrong application (Remove-PartnerApplication) and run again.")
    if app is None or account is None:
        return Proof(ok=False, text=f"no partner application for {known.skype_metadata_url}" if app is None
                     else f"no account {LYNC.account}", hint=hint)
    held = [thumbprint_of(_b64decode(c)) for c in app.certificates]
    missing = ex.missing_roles(account, LYNC.roles)
    problems = []
    if app.issuer != known.issuer:
        problems.append(f"it trusts {app.issuer}, the pool is {known.issuer}")
    if known.chosen.certificate.thumbprint not in held:
        problems.append("it does not hold the pool's OAuth certificate")
    if not app.enabled:
        problems.append("it is disabled")
    if missing:
        problems.append(f"{LYNC.account} lacks {', '.join(missing)}")
    text = (f"'{app.name}': {app.issuer}, certificate {', '.join(short_thumbprint(t) for t in held) or 'none'}, "
            f"linked to {app.linked_account}")
    if not missing:
        text += f"; {LYNC.account} holds {', '.join(LYNC.roles)}"
    return Proof(ok=not problems, text="; ".join([text, *problems]), evidence={"application": app.name}, hint=hint)


EXCHANGE_TRUSTS_SKYPE = step("exchange-partner-application",
                             "Exchange trusts Skype: a partner application from the pool's metadata",
                             check=_exchange_check, apply=_exchange_apply, verify=_exchange_verify)


def _b64decode(value: str) -> bytes:
    return base64.b64decode(value)


# -- step 4: cross-premises — the tenant, Exchange Online, Skype for Business Online ---------


def _oauth_server_check(ctx: Any) -> Check:
    identity, url = ctx.params.oauth_server_identity, _acs_metadata_url(ctx)
    server = _oauth_server(ctx)
    wanted = f"OAuth server '{identity}' from {url}"
    create = f"create the OAuth server '{identity}' from {url} (New-CsOAuthServer)"
    if server is None:
        return Check(found=f"no OAuth server '{identity}'", wanted=wanted, changes=[create], data="new")
    found = f"'{server.identity}' from {server.metadata_url}, realm {server.realm}"
    if same_metadata_uri(server.metadata_url, url):
        return Check(found=found, wanted=wanted)
    # Get/Remove/New is the published pattern: the URL of an OAuth server is not changed in place.
    return Check(found=found, wanted=wanted, data="replace",
                 changes=[f"remove '{server.identity}' (it reads another tenant's metadata) and {create}"])


def _oauth_server_apply(ctx: Any, found: Check) -> list[str]:
    pool, identity = _pool(ctx), ctx.params.oauth_server_identity
    if found.data == "replace":
        pool.remove_oauth_server(identity)
    pool.new_oauth_server(identity, _acs_metadata_url(ctx))
    return list(found.changes)


def _oauth_server_verify(ctx: Any, found: Check) -> Proof:
    server, tenant_id = _oauth_server(ctx), str(_tenant_spec(ctx).tenant_id).lower()
    hint = (f"Remove '{ctx.params.oauth_server_identity}' (Remove-CsOAuthServer) and run again; check that the pool "
            f"reaches {_acs_metadata_url(ctx)}.")
    if server is None:
        return Proof(ok=False, text=f"Get-CsOAuthServer finds no '{ctx.params.oauth_server_identity}'", hint=hint)
    ok = same_metadata_uri(server.metadata_url, _acs_metadata_url(ctx)) and server.realm.lower() == tenant_id
    return Proof(ok=ok, text=f"'{server.identity}': MetadataUrl {server.metadata_url}, Realm {server.realm}"
                             + ("" if ok else f"; wanted the tenant {tenant_id}"),
                 evidence={"identity": server.identity, "realm": server.realm}, hint=hint)


def _oauth_server(ctx: Any) -> OAuthServer | None:
    identity = ctx.params.oauth_server_identity.lower()
    return next((s for s in _pool(ctx).oauth_servers() if s.identity.lower() == identity), None)


def _tenant_spec(ctx: Any) -> Any:
    return ctx.inventory.tenant(ctx.params.tenant)


def _acs_metadata_url(ctx: Any) -> str:
    return _tenant_spec(ctx).acs_metadata_url


TENANT_OAUTH_SERVER = step("oauth-server", "The tenant as the pool's OAuth server", check=_oauth_server_check,
                           apply=_oauth_server_apply, verify=_oauth_server_verify)


def _exchange_online_check(ctx: Any) -> Check:
    identity = ctx.params.exchange_identity
    app = _pool(ctx).partner_application(identity)
    wanted = (f"'{identity}': {EXCHANGE_PRINCIPAL_ID} through the OAuth server (UseOAuthServer), trust level "
              f"{TRUST_LEVEL}, enabled")
    create = (f"create partner application '{identity}' for {EXCHANGE_PRINCIPAL_ID} with UseOAuthServer "
              f"(trust level {TRUST_LEVEL})")
    if app is None:
        return Check(found=f"no partner application '{identity}'", wanted=wanted, changes=[create], data="new")
    found = (f"'{app.identity}': {app.application_identifier}, "
             f"{'UseOAuthServer' if app.use_oauth_server else app.metadata_url or 'no OAuth server'}, "
             f"{app.trust_level}, {'enabled' if app.enabled else 'disabled'}")
    if app.application_identifier != EXCHANGE_PRINCIPAL_ID or not app.use_oauth_server:
        return Check(found=found, wanted=wanted, data="replace",
                     changes=[f"remove '{app.identity}' (not Exchange Online through the tenant) and {create}"])
    changes = ([f"set its trust level to {TRUST_LEVEL}"] if app.trust_level != TRUST_LEVEL else []) + \
              (["enable it"] if not app.enabled else [])
    return Check(found=found, wanted=wanted, changes=changes, data="set")


def _exchange_online_apply(ctx: Any, found: Check) -> list[str]:
    pool, identity = _pool(ctx), ctx.params.exchange_identity
    if found.data == "replace":
        pool.remove_partner_application(identity)
    if found.data in ("new", "replace"):
        pool.new_oauth_partner_application(identity, EXCHANGE_PRINCIPAL_ID, trust_level=TRUST_LEVEL)
    else:
        pool.set_partner_application(identity, trust_level=TRUST_LEVEL, enabled=True)
    return list(found.changes)


def _exchange_online_verify(ctx: Any, found: Check) -> Proof:
    identity = ctx.params.exchange_identity
    app = _pool(ctx).partner_application(identity)
    hint = f"Remove '{identity}' (Remove-CsPartnerApplication) and run again."
    if app is None:
        return Proof(ok=False, text=f"Get-CsPartnerApplication finds no '{identity}'", hint=hint)
    ok = (app.application_identifier == EXCHANGE_PRINCIPAL_ID and app.use_oauth_server and
          app.trust_level == TRUST_LEVEL and app.enabled)
    return Proof(ok=ok, text=f"'{app.identity}': ApplicationIdentifier {app.application_identifier}, UseOAuthServer "
                             f"{app.use_oauth_server}, ApplicationTrustLevel {app.trust_level}, Enabled {app.enabled}",
                 evidence={"identity": app.identity}, hint=hint)


EXCHANGE_ONLINE = step("exchange-online", "Skype trusts Exchange Online through the tenant",
                       check=_exchange_online_check, apply=_exchange_online_apply, verify=_exchange_online_verify)


def _skype_online(ctx: Any) -> Principal:
    return ctx.graph(ctx.params.tenant).principal(SKYPE_PRINCIPAL_ID)


SKYPE_ONLINE_KEY = key_upload_step(
    "skype-online-key", "The pool's OAuth certificate as a key of Skype for Business Online", principal=_skype_online,
    certificate=lambda ctx: load_certificate(_facts(ctx).chosen.certificate.der),
    display_name=lambda ctx: f"{ctx.params.front_ends[0]} pool OAuthTokenIssuer")

SKYPE_ONLINE_SPN = spn_step("skype-online-spn", "The pool's external web services FQDN as an SPN",
                            principal=_skype_online, host=lambda ctx: ctx.params.external_web_fqdn)


def _cross_premises_parts(ctx: Any) -> list[tuple[str, Step]]:
    p = ctx.params
    if p.topology != "cross-premises":
        return []
    parts = [(f"OAuth server ({p.oauth_server_identity})", TENANT_OAUTH_SERVER)]
    if p.exchange_online:
        parts.append((f"Exchange Online ({p.exchange_identity})", EXCHANGE_ONLINE))
    return parts + [(f"{p.tenant}: Skype for Business Online key", SKYPE_ONLINE_KEY),
                    (f"{p.tenant}: Skype for Business Online SPN", SKYPE_ONLINE_SPN)]


CROSS_PREMISES = fan_out("cross-premises", "Cross-premises: the tenant as OAuth server, Exchange Online, the pool's key "
                                           "and SPN on Skype for Business Online",
                         parts=_cross_premises_parts, wanted="the pool trusted by and trusting the tenant",
                         nothing="topology: on-premises — no tenant in this run")


# -- proof: each side's call ----------------------------------------------------------------


def _oauth_test_url(ctx: Any) -> str:
    p = ctx.params
    return p.skype_oauth_test_url or ctx.inventory.servers[p.front_ends[0]].web_url.rstrip("/") + SKYPE_OAUTH_TEST_PATH


def _proof_lines(ctx: Any) -> tuple[bool, list[str], dict[str, Any]]:
    storage = _pool(ctx).test_exchange_storage(ctx.params.test_sip_uri)
    oauth = _exchange_server(ctx).test_oauth(_oauth_test_url(ctx))
    lines = [f"Test-CsExStorageConnectivity {ctx.params.test_sip_uri}: {'passed' if storage.passed else 'failed'} — "
             f"{storage.detail.splitlines()[-1] if storage.detail else ''}",
             f"Test-OAuthConnectivity -TargetUri {_oauth_test_url(ctx)}: {oauth.result}"]
    evidence = {"storage": {"passed": storage.passed, "detail": storage.detail},
                "oauth": {"result": oauth.result, "detail": oauth.detail}}
    return storage.passed and oauth.passed, lines, evidence


def _proof_check(ctx: Any) -> Check:
    if not _exchange(ctx):
        return Check(found=_no_exchange(ctx), wanted="both tests pass", skip=_no_exchange(ctx))
    wanted = "Skype → Exchange (Test-CsExStorageConnectivity) and Exchange → Skype (Test-OAuthConnectivity) pass"
    if ctx.mode == "plan":
        _, lines, evidence = _proof_lines(ctx)
        return Check(found="\n".join(lines), wanted=wanted, evidence=evidence,
                     skip="proved after the changes are applied; the lines above are how they stand now")
    return Check(found="run once the trusts are in place", wanted=wanted)


def _proof_verify(ctx: Any, found: Check) -> Proof:
    ok, lines, evidence = _proof_lines(ctx)
    return Proof(ok=ok, text="\n".join(lines), evidence=evidence,
                 hint="Read the failing test's detail in the evidence: a 401 means the receiving side does not trust "
                      "the sender yet (its partner application, its certificate); run the runbook again after fixing it.")


PROOF = step("proof", "Proof: each side's OAuth call to the other succeeds", check=_proof_check, verify=_proof_verify)


STEPS = [PREFLIGHT, OAUTH_CERTIFICATE, OAUTH_CONFIGURATION, SKYPE_TRUSTS_PARTNERS, SHAREPOINT_ISSUER,
         SHAREPOINT_PERMISSION, EXCHANGE_TRUSTS_SKYPE, CROSS_PREMISES, PROOF]
