"""The callers' side of a farm's S2S endpoints: a provider-hosted (high-trust) add-in, another farm.

:func:`addin_token` mints what a high-trust add-in sends (discovering the realm from the farm at
run time, as the add-in's TokenHelper does); :func:`farm_token` what a farm sends to a partner
farm, signed with its STS key; :func:`call_site` calls a site with either and
:func:`discover_realm` reads the realm from the farm's Bearer challenge.
"""

from __future__ import annotations

import json
import re
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from ..s2s.minting import mint
from . import texts as T
from .farm import SharePointFarm
from .state import AddinIssuerDefinition, FarmDefinition
from .web import CLIENT_SVC_PATH

__all__ = ["SiteAnswer", "addin_token", "call_site", "discover_realm", "farm_token"]

_REALM = re.compile(r'realm="([^"]*)"', re.IGNORECASE)
_DIAG_REASON = re.compile(r'reason="([^"]*)"')


def _context(ca_bundle: Path | str | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)


def discover_realm(site_url: str, *, ca_bundle: Path | str | None = None, timeout: float = 10.0) -> str:
    """The realm a farm names in the Bearer challenge of ``<site_url>/_vti_bin/client.svc``.

    ``site_url`` is where this machine reaches the site (in the lab, the farm server's URL plus
    the site's path). This is how a high-trust add-in learns the realm at run time.
    """
    request = urllib.request.Request(site_url.rstrip("/") + CLIENT_SVC_PATH, headers={"Authorization": "Bearer "})
    try:
        with urllib.request.urlopen(request, context=_context(ca_bundle), timeout=timeout) as response:
            challenge = response.headers.get("WWW-Authenticate", "")
    except urllib.error.HTTPError as exc:
        challenge = exc.headers.get("WWW-Authenticate", "")
    match = _REALM.search(challenge or "")
    if not match or not match.group(1):
        raise ValueError(f"{site_url}: no Bearer realm in the answer of {CLIENT_SVC_PATH} ({challenge!r})")
    return match.group(1).lower()


def _addin_definition(farm: SharePointFarm, addin: str | AddinIssuerDefinition) -> AddinIssuerDefinition:
    if isinstance(addin, AddinIssuerDefinition):
        return addin
    for seeded in FarmDefinition.preset(farm.name).initial_issuers:
        if seeded.name == addin:
            return seeded
    raise KeyError(f"farm {farm.name} seeds no add-in named {addin!r}; pass its AddinIssuerDefinition")


def addin_token(farm: SharePointFarm, addin: str | AddinIssuerDefinition, *, site_url: str,
                web_url: str | None = None, ca_bundle: Path | str | None = None, realm: str | None = None,
                user: str | None = None, lifetime: int = 3600, now: float | None = None) -> str:
    """The token a provider-hosted (high-trust) add-in sends to ``site_url`` (its public URL).

    ``addin`` is a seeded add-in's name (or its definition): its issuer id, client id and signing
    key (:meth:`SharePointFarm.addin_key_pair`) are what its web.config would hold. The realm is
    *not* configuration: unless ``realm`` is given, it is discovered from the farm at
    ``web_url`` (where this machine reaches the farm) plus the site's path, so after a realm
    change the add-in mints with the new realm, as a real one does.

    Without ``user`` the token is an app-only actor token; with a user SID it is an outer token
    (alg none) for that user around an actor token trusted for delegation.
    """
    definition = _addin_definition(farm, addin)
    realm, aud = _audience(site_url, web_url=web_url, ca_bundle=ca_bundle, realm=realm)
    return mint(farm.addin_key_pair(definition.name), aud=aud, iss=f"{definition.issuer_id.lower()}@{realm}",
                 nameid=f"{definition.client_id.lower()}@{realm}", user=user, lifetime=lifetime, now=now)


def farm_token(farm: SharePointFarm, *, site_url: str, web_url: str | None = None,
               ca_bundle: Path | str | None = None, realm: str | None = None, user: str | None = None,
               lifetime: int = 3600, now: float | None = None) -> str:
    """The token ``farm`` sends when it calls a partner farm's site at public ``site_url``.

    Signed with the farm's STS key; ``iss`` and ``nameid`` are the farm itself,
    ``00000003-0000-0ff1-ce00-000000000000@<its realm>``; the audience is SharePoint at the
    partner's host in the partner's realm — discovered from the partner at ``web_url`` unless
    ``realm`` is given. ``user`` as for :func:`addin_token`.
    """
    _, aud = _audience(site_url, web_url=web_url, ca_bundle=ca_bundle, realm=realm)
    own = farm.name_identifier.lower()
    return mint(farm.sts_key_pair(), aud=aud, iss=own, nameid=own, user=user, lifetime=lifetime, now=now)


def _audience(site_url: str, *, web_url: str | None, ca_bundle: Path | str | None,
              realm: str | None) -> tuple[str, str]:
    """(realm, ``00000003-…/<host>@<realm>``) for a call to the site at public ``site_url``."""
    public = urlsplit(site_url)
    if realm is None:
        if web_url is None:
            raise ValueError("give realm, or web_url to discover it from the farm")
        realm = discover_realm(web_url.rstrip("/") + public.path.rstrip("/"), ca_bundle=ca_bundle)
    realm = realm.lower()
    host = (public.hostname or "").lower()
    if public.port and public.port != {"https": 443, "http": 80}.get(public.scheme):
        host = f"{host}:{public.port}"
    return realm, f"{T.SHAREPOINT_PRINCIPAL_ID}/{host}@{realm}"


class SiteAnswer(NamedTuple):
    """What a farm answered: status, ``X-Lab-S2S-Reason`` ('' when accepted), JSON body (or None),
    and the refusal in words (from ``x-ms-diagnostics``, or ``X-Lab-S2S-Detail`` on a 403)."""

    status: int
    reason: str
    body: dict[str, Any] | None
    detail: str = ""


def call_site(web_url: str, site_url: str, token: str | None, *, ca_bundle: Path | str | None = None,
              endpoint: str = "/_api/web", timeout: float = 10.0) -> SiteAnswer:
    """Call ``endpoint`` of the site at public ``site_url`` through ``web_url`` with ``token``."""
    url = web_url.rstrip("/") + urlsplit(site_url).path.rstrip("/") + endpoint
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token or ''}",
                                                   "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, context=_context(ca_bundle), timeout=timeout) as response:
            return SiteAnswer(response.status, "", json.loads(response.read() or b"null"))
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            body = json.loads(raw) if raw and "json" in (exc.headers.get("Content-Type") or "") else None
        except ValueError:
            body = None
        diagnostics = exc.headers.get("x-ms-diagnostics") or ""
        match = _DIAG_REASON.search(diagnostics)
        detail = match.group(1) if match else exc.headers.get("X-Lab-S2S-Detail", "")
        return SiteAnswer(exc.code, exc.headers.get("X-Lab-S2S-Reason", ""), body, detail)
