"""A simulated farm's web endpoints: S2S metadata, realm discovery, and the inbound oracle.

``/_layouts/15/metadata/json/1`` (and ``…/rootcertificate``)
    the farm's metadata documents (:meth:`SharePointFarm.metadata_document`).
``[/sites/<name>]/_vti_bin/client.svc`` and ``[/sites/<name>]/_api/…``
    without a token: the Bearer realm challenge (realm discovery). With a token: the proof that
    a caller the farm trusts can reach that site collection. The site is the one at the request
    path in the web application whose public name the token's audience names.

Three kinds of caller are judged (token rules from :mod:`.s2s_oracle`, the lab's own verifier):

*SharePoint in Microsoft 365 through ACS* — the inbound half of the hybrid trust:

* ``iss`` is the registered name of a metadata-based trusted issuer that is a trust broker
  (``IsSelfIssuer`` False), e.g. ``00000001-0000-0000-c000-000000000000@<tenant id>`` after the
  hybrid ACS step (``no_trusted_broker`` / ``issuer_not_trust_broker``);
* that issuer's signing certificate — taken from its metadata when the issuer was created — is
  the one ``x5t`` names and verifies the signature (``unknown_x5t`` / ``bad_signature``), and the
  token is within its times (``expired`` / ``not_yet_valid``);
* its audience is SharePoint (``00000003-…``) at one of the farm's public names in the farm's
  *current* realm (``wrong_audience`` / ``realm_mismatch``);
* its ``nameid`` is an app principal registered on the farm (``principal_not_registered``).

*A partner server* (another farm, Exchange, Skype for Business) — its issuer was registered from
the partner's metadata as a self-issuer (not a trust broker), as a farm-to-farm trust does:

* ``iss`` is that issuer's registered name, ``<partner principal>@<partner realm>`` — the realm the
  issuer names, not necessarily this farm's (``unknown_issuer`` otherwise);
* the certificate the partner's metadata published when the issuer was created verifies the
  signature (``unknown_x5t`` / ``bad_signature``); times and audience (this farm's realm) as above;
* ``nameid`` is the partner itself (``issuer_not_trust_broker``), and it holds a right on the site
  collection asked for (``principal_not_registered`` / ``no_rights_on_site``), as for an add-in.

*A provider-hosted (high-trust) add-in* — its issuer is certificate-based (no metadata):

* ``iss`` = ``<issuer id>@<realm>`` is the registered name of a trusted issuer
  (``unknown_issuer``), and that realm is the farm's current realm (``realm_mismatch``: what
  KB 4010011 describes after Set-SPAuthenticationRealm, for an issuer or a token left in the old
  realm); signature, times and audience as above;
* ``nameid`` = ``<client id>@<farm realm>`` (``realm_mismatch``); a self-issuer speaks only for
  its own id — its issuer id *is* the client id [U] — while a trust broker may speak for any
  client id (``issuer_not_trust_broker``); the principal is registered (``principal_not_registered``);
* the principal has a right on the site collection asked for: a SiteCollection or Site grant
  there, or a SiteSubscription grant (``no_rights_on_site``); an app-only call (an actor token
  without a user token around it) needs a grant with the app-only policy (``app_only_not_allowed``).

*Office Online Server* — its issuers are certificate-based and named in fixed realms of their own
(``67e3df25-…@bd2372e4-…`` for SharePoint, ``…@ffab2d74-…`` for SQL Server), whatever the farm's realm:

* the issuer's certificate verifies the token (``unknown_x5t`` / ``bad_signature``), audience and
  times as above; its ``nameid`` is the issuer itself (``wrong_nameid``), an app principal with
  rights on the site (``no_rights_on_site``), app-only (``app_only_not_allowed``).

A refused token is 401 with the same realm challenge, an ``x-ms-diagnostics`` header and
``X-Lab-S2S-Reason`` (the machine-readable reason); a caller that is authenticated but has no
rights gets 403 with SharePoint's access-denied error and the same reason header. Acceptance is
200 with a small JSON description of the site and who called.

The add-in's side (minting its tokens, calling a site) is :mod:`.addin`.
"""

from __future__ import annotations

import copy
import logging
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Callable, NoReturn, Protocol
from urllib.parse import urlsplit

from ..http import LabServer, Request, Response
from ..s2s import oracle as s2s_oracle
from ..s2s.receiver import REASON_HEADER, bearer_token, diagnostics
from . import objects as O
from . import texts as T
from .state import site_url_of

__all__ = [
    "API_PATH",
    "CLIENT_SVC_PATH",
    "METADATA_PATH",
    "REALM_DISCOVERY_PATH",
    "ROOT_CERTIFICATE_PATH",
    "FarmDocuments",
    "FarmWeb",
    "public_hosts",
]

log = logging.getLogger(__name__)

METADATA_PATH = "/_layouts/15/metadata/json/1"
ROOT_CERTIFICATE_PATH = METADATA_PATH + "/rootcertificate"
REALM_DISCOVERY_PATH = "/_vti_bin/client.svc"
CLIENT_SVC_PATH = REALM_DISCOVERY_PATH
API_PATH = "/_api/"

# x-ms-diagnostics codes a farm sends with a refused token. The 3000003 (audience) and 3000006
# (signature/time) families are seen in the field; the mapping of each lab reason is the lab's
# choice (unconfirmed).
_DIAG_CODES = {
    "no_token": 3000000,
    "malformed": 3000001,
    "wrong_audience": 3000003,
    "realm_mismatch": 3000003,
    "no_trusted_broker": 3000005,
    "issuer_not_trust_broker": 3000005,
    "unknown_issuer": 3000005,
    "wrong_issuer": 3000005,
    "unknown_x5t": 3000006,
    "bad_signature": 3000006,
    "unsupported_alg": 3000006,
    "expired": 3000006,
    "not_yet_valid": 3000006,
    "principal_not_registered": 3000007,
    "wrong_nameid": 3000007,
}
# Reasons that mean "authenticated, not authorised": 403, not a new challenge.
_FORBIDDEN = frozenset({"no_rights_on_site", "app_only_not_allowed"})

StateView = Callable[[], AbstractContextManager[dict[str, Any]]]


class FarmDocuments(Protocol):
    """What the web routes need of the farm beyond its state: its name and metadata documents."""

    @property
    def name(self) -> str: ...

    def metadata_document(self) -> dict[str, Any]: ...

    def root_certificate_document(self) -> dict[str, Any]: ...


def public_hosts(state: dict[str, Any]) -> set[str]:
    """Every name the farm answers for: web application and zone URLs (``host`` or ``host:port``)."""
    hosts = {state["public_host"].lower()}
    for web_app in state["web_apps"]:
        for url in _zone_urls(web_app):
            hosts |= _names_of(url)
    return hosts


def _zone_urls(web_app: dict[str, Any]) -> list[str]:
    return [web_app["url"]] + [zone["url"] for zone in web_app.get("zones", {}).values()]


def _names_of(url: str) -> set[str]:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return {host, f"{host}:{parts.port}"} if parts.port else {host}


def _norm(url: str) -> str:
    return url.rstrip("/").lower()


@dataclass(frozen=True)
class _FarmView:
    """What the web endpoints need of the farm's state, copied under its lock."""

    realm: str
    issuers: list[dict[str, Any]]
    principals: dict[str, dict[str, Any]]
    hosts: set[str]
    web_apps: list[dict[str, Any]]

    @classmethod
    def of(cls, state: dict[str, Any]) -> "_FarmView":
        return cls(
            realm=state["realm"].lower(),
            issuers=[dict(i) for i in state["trusted_issuers"]],
            principals={p["name_identifier"].lower(): copy.deepcopy(p) for p in state["app_principals"]},
            hosts=public_hosts(state),
            web_apps=copy.deepcopy(state["web_apps"]),
        )

    def site(self, host: str, site_path: str) -> dict[str, Any] | None:
        """The site collection at ``site_path`` in the web application answering for ``host``."""
        web_app = next((wa for wa in self.web_apps if any(host in _names_of(u) for u in _zone_urls(wa))), None)
        if web_app is None:
            return None
        root = _norm(site_url_of(web_app["url"]))
        wanted = root + site_path.rstrip("/").lower()
        for site in sorted(web_app["sites"], key=lambda s: len(s["url"]), reverse=True):
            url = _norm(site["url"])
            if wanted == url or wanted.startswith(url + "/"):
                if url == root and _under_managed_path(site_path):
                    return None  # /sites/<name> with no site collection there: 404, not the root site
                return site
        return None


def _under_managed_path(site_path: str) -> bool:
    first = site_path.strip("/").split("/", 1)[0].lower()
    return bool(first) and first in T.MANAGED_PATHS


@dataclass(frozen=True)
class _Verdict:
    accepted: s2s_oracle.Accepted
    principal: dict[str, Any]
    addin: bool  # a high-trust add-in (rights on the site are checked), not ACS


class FarmWeb:
    """The web routes of one farm, reading the farm's state through ``view``."""

    def __init__(self, farm: FarmDocuments, view: StateView) -> None:
        self.farm = farm
        self._view = view

    def mount(self, server: LabServer) -> None:
        server.mount(METADATA_PATH, self.serve_metadata)
        server.mount(REALM_DISCOVERY_PATH, self.serve_client)
        server.mount(API_PATH, self.serve_client)
        for managed in T.MANAGED_PATHS:  # site collections below the root: /sites/<name>/_api/…
            server.mount(f"/{managed}/", self.serve_site_path)

    # ------------------------------------------------------------------------ metadata
    def serve_metadata(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return Response.text("405 METHOD NOT ALLOWED", status=405)
        path = request.path.lower().rstrip("/")
        if path == METADATA_PATH:
            return Response.json(self.farm.metadata_document())
        if path == ROOT_CERTIFICATE_PATH:
            return Response.json(self.farm.root_certificate_document())
        return _not_found()

    # ------------------------------------------------------------------------ site paths
    def serve_site_path(self, request: Request) -> Response:
        """``/sites/<name>/…``: the site's client.svc, _api and metadata, or 404."""
        lowered = request.path.lower()
        for marker in (CLIENT_SVC_PATH, API_PATH.rstrip("/"), METADATA_PATH):
            at = lowered.find(marker)
            if at > 0 and lowered[at + len(marker):at + len(marker) + 1] in ("", "/"):
                if marker == METADATA_PATH:
                    return self.serve_metadata(_with_path(request, request.path[at:]))
                return self._serve(request, request.path[:at])
        return _not_found()

    # ------------------------------------------------------------------------ client.svc, _api
    def serve_client(self, request: Request) -> Response:
        return self._serve(request, "")

    def _serve(self, request: Request, site_path: str) -> Response:
        with self._view() as state:
            farm = _FarmView.of(state)
        challenge_issuers = [f"{T.SHAREPOINT_PRINCIPAL_ID}@{farm.realm}"] + \
            [i["registered_issuer_name"] for i in farm.issuers]
        token = bearer_token(request)
        try:
            if not token:
                # An anonymous "Authorization: Bearer " probe is realm discovery: the challenge is the answer.
                raise s2s_oracle.Rejected("no_token", "There is no bearer token in the request.")
            verdict = _judge(token, farm)
            site = farm.site(verdict.accepted.audience.host, site_path)
            if site is None:
                return _not_found()
            if verdict.addin:
                _check_rights(verdict, site)
        except s2s_oracle.Rejected as exc:
            if exc.reason != "no_token":
                log.info("%s: refused S2S token (%s): %s", self.farm.name, exc.reason, exc.detail)
            if exc.reason in _FORBIDDEN:
                return _forbidden(exc)
            return _challenge(farm.realm, challenge_issuers, exc)
        accepted = verdict.accepted
        return Response.json({
            "Title": site["title"],
            "Url": site["url"],
            "AppPrincipal": accepted.nameid,
            "AppPrincipalDisplayName": verdict.principal["display_name"],
            "User": accepted.user,
            "Issuer": accepted.issuer,
            "Realm": farm.realm,
        })


# ---------------------------------------------------------------------------------- the rules
def _judge(token: str, farm: _FarmView) -> _Verdict:
    """Who ``token`` authenticates on ``farm`` (site rights aside), or :class:`s2s_oracle.Rejected`."""
    claims = s2s_oracle.unverified_claims(token)
    if "actortoken" in claims and isinstance(claims["actortoken"], str):
        claims = s2s_oracle.unverified_claims(claims["actortoken"])  # an outer token: its actor's issuer decides
    iss = str(claims.get("iss") or "").lower()
    issuer = next((i for i in farm.issuers if i["registered_issuer_name"].lower() == iss), None)
    if issuer is None:
        _refuse_unknown_issuer(token, iss, farm)
    if issuer["metadata_endpoint"] and issuer["is_self_issuer"]:
        return _judge_partner(token, issuer, farm)
    if issuer["metadata_endpoint"]:
        return _judge_broker(token, issuer, farm)
    if issuer["registered_issuer_name"].lower() in T.OOS_FIXED_REALM_ISSUERS:
        return _judge_fixed_realm(token, issuer, farm)
    return _judge_addin(token, issuer, farm)


def _verify(token: str, issuer: dict[str, Any], farm: _FarmView, *, expected_issuer: str | None = None) -> s2s_oracle.Accepted:
    return s2s_oracle.verify(
        token,
        certificates=s2s_oracle.usable_certificates([O.load_pem(issuer["signing_cert_pem"])]),
        issuer=expected_issuer or issuer["registered_issuer_name"],
        principal=T.SHAREPOINT_PRINCIPAL_ID,
        realm=farm.realm,
        host_ok=lambda host: host in farm.hosts,
    )


def _registered(accepted: s2s_oracle.Accepted, farm: _FarmView) -> dict[str, Any]:
    principal = farm.principals.get(accepted.nameid)
    if principal is None:
        raise s2s_oracle.Rejected(
            "principal_not_registered",
            f"The app principal {accepted.nameid} is not registered on this farm (Register-SPAppPrincipal).",
        )
    return principal


def _judge_broker(token: str, issuer: dict[str, Any], farm: _FarmView) -> _Verdict:
    """A metadata-based issuer (ACS after the hybrid step): only a trust broker may speak for others."""
    if issuer["is_self_issuer"]:
        raise s2s_oracle.Rejected(
            "issuer_not_trust_broker",
            f"The trusted issuer '{issuer['name']}' ({issuer['registered_issuer_name']}) is a self-issuer, "
            "not a trust broker (IsTrustBroker).",
        )
    accepted = _verify(token, issuer, farm)
    return _Verdict(accepted, _registered(accepted, farm), addin=False)


def _judge_partner(token: str, issuer: dict[str, Any], farm: _FarmView) -> _Verdict:
    """A metadata-based self-issuer: another farm, Exchange or Skype for Business, registered from
    its metadata. Its tokens are signed with the certificate that metadata published, name the
    partner in the realm the issuer names, and speak only for the partner itself."""
    accepted = _verify(token, issuer, farm)
    registered = issuer["registered_issuer_name"].lower()
    if accepted.nameid != registered:
        raise s2s_oracle.Rejected(
            "issuer_not_trust_broker",
            f"The trusted issuer '{issuer['name']}' ({registered}) is a self-issuer: it speaks only for "
            f"{registered}, not for {accepted.nameid or '(nobody)'}.",
        )
    return _Verdict(accepted, _registered(accepted, farm), addin=True)


def _judge_addin(token: str, issuer: dict[str, Any], farm: _FarmView) -> _Verdict:
    """A certificate-based issuer: a provider-hosted (high-trust) add-in."""
    accepted = _verify(token, issuer, farm)
    issuer_id, issuer_realm = s2s_oracle.split_name(issuer["registered_issuer_name"].lower())
    if issuer_realm != farm.realm:
        raise s2s_oracle.Rejected(
            "realm_mismatch",
            f"The trusted issuer '{issuer['name']}' is registered as {issuer['registered_issuer_name']}, in realm "
            f"{issuer_realm}; this farm's realm is {farm.realm} (KB 4010011): re-register it as "
            f"{issuer_id}@{farm.realm}.",
        )
    client_id, nameid_realm = s2s_oracle.split_name(accepted.nameid)
    if nameid_realm != farm.realm:
        raise s2s_oracle.Rejected(
            "realm_mismatch",
            f"The token speaks for {accepted.nameid or '(nobody)'}; an app principal here is "
            f"<client id>@{farm.realm}.",
        )
    if issuer["is_self_issuer"] and client_id != issuer_id:
        raise s2s_oracle.Rejected(
            "issuer_not_trust_broker",
            f"The trusted issuer '{issuer['name']}' ({issuer['registered_issuer_name']}) is a self-issuer: it "
            f"speaks only for {issuer_id}@{farm.realm}, not for {accepted.nameid} (that needs IsTrustBroker).",
        )
    return _Verdict(accepted, _registered(accepted, farm), addin=True)


def _judge_fixed_realm(token: str, issuer: dict[str, Any], farm: _FarmView) -> _Verdict:
    """An issuer named in a realm of its own (Office Online Server): it speaks only for itself,
    in any farm realm; its app principal needs rights like an add-in's."""
    accepted = _verify(token, issuer, farm)
    if accepted.nameid != issuer["registered_issuer_name"].lower():
        raise s2s_oracle.Rejected(
            "wrong_nameid",
            f"The token from '{issuer['name']}' speaks for {accepted.nameid or '(nobody)'}; that issuer speaks "
            f"only for {issuer['registered_issuer_name']}.",
        )
    return _Verdict(accepted, _registered(accepted, farm), addin=True)


def _refuse_unknown_issuer(token: str, iss: str, farm: _FarmView) -> NoReturn:
    """Refuse a token whose ``iss`` is no registered issuer, naming the likeliest cause."""
    issuer_id, iss_realm = s2s_oracle.split_name(iss)
    if issuer_id == T.ACS_PRINCIPAL_ID or not issuer_id:
        brokers = [i["registered_issuer_name"] for i in farm.issuers if not i["is_self_issuer"]]
        raise s2s_oracle.Rejected(
            "no_trusted_broker",
            f"The issuer {iss or '(none)'} is not a trusted security token issuer of this farm "
            f"(trust brokers: {', '.join(brokers) or 'none'}).",
        )
    # The same issuer id registered under another realm: the add-in and the farm disagree on the realm.
    known = next((i for i in farm.issuers if not i["metadata_endpoint"]
                  and s2s_oracle.split_name(i["registered_issuer_name"].lower())[0] == issuer_id), None)
    if known is None:
        raise s2s_oracle.Rejected("unknown_issuer",
                                  f"The issuer {iss} is not a trusted security token issuer of this farm.")
    if iss_realm != farm.realm:
        # Signature, times and audience first (a token in the old realm fails there), then the issuer's realm.
        _verify(token, known, farm, expected_issuer=iss)
        raise s2s_oracle.Rejected(
            "realm_mismatch",
            f"The token's issuer {iss} is in realm {iss_realm}; this farm's realm is {farm.realm} and the "
            f"issuer '{known['name']}' is registered as {known['registered_issuer_name']}.",
        )
    raise s2s_oracle.Rejected(
        "unknown_issuer",
        f"The issuer {iss} is not registered: '{known['name']}' is registered as "
        f"{known['registered_issuer_name']}, in a realm that is not the farm's realm {farm.realm} "
        f"(KB 4010011): re-register it as {iss}.",
    )


def _rights_on(principal: dict[str, Any], site: dict[str, Any]) -> list[dict[str, Any]]:
    """The principal's grants that reach ``site``: there (SiteCollection, Site on its root web) or everywhere."""
    url = _norm(site["url"])
    return [g for g in principal.get("permissions", [])
            if g["scope"] == "SiteSubscription" or (g["scope"] in ("SiteCollection", "Site") and _norm(g["target"]) == url)]


def _check_rights(verdict: _Verdict, site: dict[str, Any]) -> None:
    grants = [g for g in _rights_on(verdict.principal, site) if g.get("right", T.NO_PERMISSION) != T.NO_PERMISSION]
    nameid = verdict.accepted.nameid
    if not grants:
        raise s2s_oracle.Rejected(
            "no_rights_on_site",
            f"The app principal {nameid} has no right on {site['url']} (Set-SPAppPrincipalPermission).",
        )
    if verdict.accepted.user is None and T.APP_ONLY_NEEDS_POLICY and not any(g.get("app_only") for g in grants):
        raise s2s_oracle.Rejected(
            "app_only_not_allowed",
            f"The call is app-only (no user) but the app principal {nameid} may not use the app-only policy on "
            f"{site['url']} (Set-SPAppPrincipalPermission -EnableAppOnlyPolicy).",
        )


# ---------------------------------------------------------------------------------- responses
def _not_found() -> Response:
    return Response.text("404 NOT FOUND", status=404, content_type="text/html; charset=utf-8")


def _with_path(request: Request, path: str) -> Request:
    return Request(request.method, path, request.query, request.headers, request.body, request.client,
                   request.server_url)


def _challenge(realm: str, trusted_issuers: list[str], rejected: s2s_oracle.Rejected) -> Response:
    response = Response.text("401 UNAUTHORIZED", status=401)
    response.headers["WWW-Authenticate"] = T.realm_challenge(realm, trusted_issuers)
    response.headers[REASON_HEADER] = rejected.reason
    if rejected.reason != "no_token":
        response.headers["x-ms-diagnostics"] = diagnostics(rejected, _DIAG_CODES)
    return response


def _forbidden(rejected: s2s_oracle.Rejected) -> Response:
    return Response.json(T.access_denied_body(), status=403,
                         headers={REASON_HEADER: rejected.reason, "X-Lab-S2S-Detail": rejected.detail})
