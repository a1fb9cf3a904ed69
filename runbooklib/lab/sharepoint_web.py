"""A simulated farm's web endpoints: S2S metadata, realm discovery, and the inbound oracle.

``/_layouts/15/metadata/json/1`` (and ``…/rootcertificate``)
    the farm's metadata documents (:meth:`SharePointFarm.metadata_document`).
``/_vti_bin/client.svc`` and ``/_api/…``
    without a token: the Bearer realm challenge (realm discovery). With a token: the proof
    that SharePoint in Microsoft 365 can call this farm through ACS — the inbound half of
    the hybrid trust. The farm accepts a bearer token when

    * its ``iss`` is the registered name of a trusted security token issuer that is a trust
      broker (``IsSelfIssuer`` False), e.g. ``00000001-0000-0000-c000-000000000000@<tenant id>``
      after the hybrid ACS step (``no_trusted_broker`` / ``issuer_not_trust_broker``);
    * that issuer's signing certificate — taken from its metadata when the issuer was
      created — is the one ``x5t`` names and verifies the signature (``unknown_x5t`` /
      ``bad_signature``), and the token is within its times (``expired`` / ``not_yet_valid``);
    * its audience is SharePoint (``00000003-…``) at one of the farm's public names (a web
      application URL or zone URL) in the farm's *current* realm (``wrong_audience`` /
      ``realm_mismatch``);
    * its ``nameid`` is an app principal registered on the farm (``principal_not_registered``).

    Token rules come from :mod:`.s2s_oracle` (the lab's own verifier, not the runbooks').
    A refusal is 401 with the same realm challenge, an ``x-ms-diagnostics`` header and
    ``X-Lab-S2S-Reason`` (the machine-readable reason); acceptance is 200 with a small JSON
    description of the site and who called.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import urlsplit

from . import _sharepoint_texts as T
from . import s2s_oracle
from . import sharepoint_objects as O
from .http import LabServer, Request, Response

if TYPE_CHECKING:
    from .sharepoint import SharePointFarm

__all__ = ["FarmWeb", "public_hosts"]

log = logging.getLogger(__name__)

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
    "wrong_issuer": 3000005,
    "unknown_x5t": 3000006,
    "bad_signature": 3000006,
    "unsupported_alg": 3000006,
    "expired": 3000006,
    "not_yet_valid": 3000006,
    "principal_not_registered": 3000007,
}

StateView = Callable[[], AbstractContextManager[dict[str, Any]]]


def public_hosts(state: dict[str, Any]) -> set[str]:
    """Every name the farm answers for: web application and zone URLs (``host`` or ``host:port``)."""
    hosts = {state["public_host"].lower()}
    for web_app in state["web_apps"]:
        urls = [web_app["url"]] + [zone["url"] for zone in web_app.get("zones", {}).values()]
        for url in urls:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
            hosts.add(host)
            if parts.port:
                hosts.add(f"{host}:{parts.port}")
    return hosts


class FarmWeb:
    """The web routes of one farm, reading the farm's state through ``view``."""

    def __init__(self, farm: "SharePointFarm", view: StateView) -> None:
        self.farm = farm
        self._view = view

    def mount(self, server: LabServer) -> None:
        from .sharepoint import METADATA_PATH, REALM_DISCOVERY_PATH

        server.mount(METADATA_PATH, self.serve_metadata)
        server.mount(REALM_DISCOVERY_PATH, self.serve_client)
        server.mount(API_PATH, self.serve_client)

    # ------------------------------------------------------------------------ metadata
    def serve_metadata(self, request: Request) -> Response:
        from .sharepoint import METADATA_PATH, ROOT_CERTIFICATE_PATH

        if request.method not in ("GET", "HEAD"):
            return Response.text("405 METHOD NOT ALLOWED", status=405)
        path = request.path.lower().rstrip("/")
        if path == METADATA_PATH:
            return Response.json(self.farm.metadata_document())
        if path == ROOT_CERTIFICATE_PATH:
            return Response.json(self.farm.root_certificate_document())
        return Response.text("404 NOT FOUND", status=404, content_type="text/html; charset=utf-8")

    # ------------------------------------------------------------------------ client.svc, _api
    def serve_client(self, request: Request) -> Response:
        with self._view() as state:
            realm = state["realm"]
            issuers = [dict(i) for i in state["trusted_issuers"]]
            principals = {p["name_identifier"].lower(): dict(p) for p in state["app_principals"]}
            hosts = public_hosts(state)
            sites = [(wa["url"], site) for wa in state["web_apps"] for site in wa["sites"]]
        challenge_issuers = [self.farm.name_identifier] + [i["registered_issuer_name"] for i in issuers]
        auth = request.header("authorization") or ""
        token = auth[6:].strip() if auth[:6].lower() == "bearer" else ""
        try:
            if not token:
                # An anonymous "Authorization: Bearer " probe is realm discovery: the challenge is the answer.
                raise s2s_oracle.Rejected("no_token", "There is no bearer token in the request.")
            broker = _trust_broker(token, issuers)
            accepted = s2s_oracle.verify(
                token,
                certificates=s2s_oracle.usable_certificates([O.load_pem(broker["signing_cert_pem"])]),
                issuer=broker["registered_issuer_name"],
                principal=T.SHAREPOINT_PRINCIPAL_ID,
                realm=realm,
                host_ok=lambda host: host in hosts,
            )
            principal = principals.get(accepted.nameid)
            if principal is None:
                raise s2s_oracle.Rejected(
                    "principal_not_registered",
                    f"The app principal {accepted.nameid} is not registered on this farm (Register-SPAppPrincipal).",
                )
        except s2s_oracle.Rejected as exc:
            if exc.reason != "no_token":
                log.info("%s: refused S2S token (%s): %s", self.farm.name, exc.reason, exc.detail)
            return _challenge(realm, challenge_issuers, exc)
        site_url = next((site["url"] for url, site in sites if urlsplit(url).hostname == accepted.audience.host), None)
        title = next((site["title"] for url, site in sites if site["url"] == site_url), None)
        return Response.json({
            "Title": title,
            "Url": site_url or f"https://{accepted.audience.host}",
            "AppPrincipal": accepted.nameid,
            "AppPrincipalDisplayName": principal["display_name"],
            "User": accepted.user,
            "Issuer": accepted.issuer,
            "Realm": realm,
        })


def _trust_broker(token: str, issuers: list[dict[str, Any]]) -> dict[str, Any]:
    """The trusted token issuer ``token`` names, if it is a trust broker; else :class:`Rejected`."""
    claims = s2s_oracle.unverified_claims(token)
    if "actortoken" in claims and isinstance(claims["actortoken"], str):
        claims = s2s_oracle.unverified_claims(claims["actortoken"])  # an outer token: its actor's issuer decides
    iss = str(claims.get("iss") or "").lower()
    issuer = next((i for i in issuers if i["registered_issuer_name"].lower() == iss), None)
    if issuer is None:
        brokers = [i["registered_issuer_name"] for i in issuers if not i["is_self_issuer"]]
        raise s2s_oracle.Rejected(
            "no_trusted_broker",
            f"The issuer {iss or '(none)'} is not a trusted security token issuer of this farm "
            f"(trust brokers: {', '.join(brokers) or 'none'}).",
        )
    if issuer["is_self_issuer"]:
        raise s2s_oracle.Rejected(
            "issuer_not_trust_broker",
            f"The trusted issuer '{issuer['name']}' ({iss}) is a self-issuer, not a trust broker (IsTrustBroker).",
        )
    return issuer


def _challenge(realm: str, trusted_issuers: list[str], rejected: s2s_oracle.Rejected) -> Response:
    response = Response.text("401 UNAUTHORIZED", status=401)
    response.headers["WWW-Authenticate"] = T.realm_challenge(realm, trusted_issuers)
    response.headers["X-Lab-S2S-Reason"] = rejected.reason
    if rejected.reason != "no_token":
        detail = rejected.detail.replace('"', "'")
        code = _DIAG_CODES.get(rejected.reason, 3001000)
        response.headers["x-ms-diagnostics"] = f'{code};reason="{detail}";category="invalid_client"'
    return response
