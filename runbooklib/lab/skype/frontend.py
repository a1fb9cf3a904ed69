"""What one simulated Skype for Business front end does, independent of how it was asked.

:class:`FrontEnd` is one front end over the pool's shared :class:`~.state.SkypeStore`: its own
certificate store and local assignments, the pool's replicated OAuth settings, the partner
metadata it downloads itself, the S2S tokens it signs and the tokens it judges. The cmdlets
(:mod:`.cmdlets`), templates (:mod:`.templates`) and web routes (:mod:`.web`) all call it.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import ssl
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..metadata_download import WEB_CONNECT_FAILED, FetchFailed, fetch_json, signing_certificates
from ..pki import KeyPair
from ..s2s import oracle
from . import texts as T
from .state import SkypeStore, utc_text

__all__ = ["FrontEnd", "PartnerMetadata", "StorageFailed", "UnknownIdentity", "dns_names"]

log = logging.getLogger(__name__)

USER_AGENT = "Microsoft Skype for Business Server (lab)"  # [U]


class UnknownIdentity(LookupError):
    """No object with that Identity."""


class StorageFailed(Exception):
    """Test-CsExStorageConnectivity failed; ``str()`` says why, as the cmdlet would."""


@dataclass(frozen=True)
class PartnerMetadata:
    """What a partner's metadata document gave: who it is, its realm and its signing certificates."""

    application_identifier: str
    realm: str
    certificates_pem: tuple[str, ...]


def dns_names(cert: x509.Certificate) -> list[str]:
    """The certificate's Subject Alternative Names (DNS), as Windows lists them in DnsNameList."""
    try:
        return list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                    .get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        return []


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _moment(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


def _ci(doc: dict[str, Any], key: str) -> Any:
    return next((v for k, v in doc.items() if k.lower() == key.lower()), None)


def read_partner_metadata(doc: dict[str, Any], url: str) -> PartnerMetadata:
    """The partner a JSON metadata document names, or :class:`FetchFailed` when it names none.

    Exchange's document has ``realm``; SharePoint's only ``issuer`` (``<id>@<realm>``): both count.
    """
    certificates = signing_certificates(doc, url)
    issuer = str(_ci(doc, "issuer") or "")
    issuer_id, _, issuer_realm = issuer.partition("@")
    application = str(_ci(doc, "serviceName") or issuer_id or "").lower()
    realm = str(_ci(doc, "realm") or issuer_realm or "").lower()
    if not application or not realm:
        raise FetchFailed(f"The metadata document at {url} names no issuer.", "System.InvalidOperationException")
    pems = tuple(c.public_bytes(serialization.Encoding.PEM).decode() for c in certificates)
    return PartnerMetadata(application, realm, pems)


class FrontEnd:
    """One front end (``host``) of the pool kept in ``store``."""

    def __init__(self, store: SkypeStore, host: str, *, ca_bundle: Path | None, timeout: float = 10.0) -> None:
        self.store = store
        self.host = host
        self.ca_bundle = ca_bundle
        self.timeout = timeout
        # Whether this server has no outbound access (the lab's standing ``no-outbound`` fault).
        self.outbound_blocked: Callable[[], bool] = lambda: False

    # --- reads (inside store.view()/change()) -------------------------------------------------
    def machine(self, state: dict[str, Any]) -> dict[str, Any]:
        return state["machines"][self.host]

    def find(self, state: dict[str, Any], thumbprint: str) -> dict[str, Any] | None:
        wanted = thumbprint.replace(" ", "").upper()
        return next((c for c in self.machine(state)["store"] if c["thumbprint"] == wanted), None)

    @staticmethod
    def realm(state: dict[str, Any]) -> str:
        """The OAuth realm: the configured one, else the default SIP domain [C]."""
        return (state["global"]["oauth"]["Realm"] or state["pool"]["sip_domain"]).lower()

    @staticmethod
    def oauth_assignment(state: dict[str, Any], now: dt.datetime | None = None) -> dict[str, Any]:
        """The OAuthTokenIssuer assignment as it is at ``now``: a rolled certificate whose
        effective date has come is current, the one before it previous."""
        assignment = dict(state["global"]["oauth_certificate"])
        pending = assignment.get("next")
        if pending and _moment(pending["effective"]) <= (now or _now()):
            assignment = {"previous": assignment.get("current"), "current": pending, "next": None}
        return assignment

    def signing_pair(self, state: dict[str, Any]) -> KeyPair | None:
        """The current OAuthTokenIssuer certificate with its key, if this front end holds it."""
        current = self.oauth_assignment(state)["current"]
        entry = self.find(state, current["thumbprint"]) if current else None
        if entry is None:
            return None
        key = serialization.load_pem_private_key(entry["key_pem"].encode(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return KeyPair(x509.load_pem_x509_certificate(entry["cert_pem"].encode()), key)

    def published_certificates(self, state: dict[str, Any]) -> list[x509.Certificate]:
        """The OAuth certificates this front end publishes: current, next and previous it holds, unexpired."""
        assignment = self.oauth_assignment(state)
        found = []
        for role in ("current", "next", "previous"):
            entry = self.find(state, assignment[role]["thumbprint"]) if assignment.get(role) else None
            if entry is not None:
                found.append(x509.load_pem_x509_certificate(entry["cert_pem"].encode()))
        return oracle.usable_certificates(found)

    # --- certificates --------------------------------------------------------------------------
    def assign(self, uses: list[str], thumbprint: str, *, roll: bool, effective: dt.datetime | None) -> None:
        """Set-CsCertificate: ``uses`` get ``thumbprint`` (which this computer's store must hold)."""
        wanted = thumbprint.replace(" ", "").upper()
        with self.store.change() as state:
            if self.find(state, wanted) is None:
                raise UnknownIdentity(wanted)
            for use in uses:
                if use in T.GLOBAL_CERT_TYPES:
                    self._assign_global(state, wanted, roll=roll, effective=effective)
                else:
                    self.machine(state)["assigned"][use] = wanted

    def _assign_global(self, state: dict[str, Any], thumbprint: str, *, roll: bool,
                       effective: dt.datetime | None) -> None:
        now = _now()
        assignment = self.oauth_assignment(state, now)
        entry = {"thumbprint": thumbprint, "effective": utc_text(effective or now), "updated": utc_text(now)}
        if roll and assignment["current"] is not None:
            assignment["next"] = entry
        else:
            if assignment["current"] and assignment["current"]["thumbprint"] != thumbprint:
                assignment["previous"] = assignment["current"]
            assignment["current"], assignment["next"] = entry, None
        state["global"]["oauth_certificate"] = assignment

    # --- partner metadata ----------------------------------------------------------------------
    def download_metadata(self, url: str) -> PartnerMetadata:
        """The partner at ``url`` as this front end downloads it, from its own network."""
        if self.outbound_blocked():
            log.info("metadata %s: %s has no outbound access (lab fault)", url, self.host)
            raise FetchFailed(WEB_CONNECT_FAILED)
        if urlsplit(url).scheme.lower() not in ("http", "https"):
            raise FetchFailed(WEB_CONNECT_FAILED)
        doc = fetch_json(url, ca_bundle=self.ca_bundle, timeout=self.timeout, user_agent=USER_AGENT)
        return read_partner_metadata(doc, url)

    # --- the pool's own metadata ---------------------------------------------------------------
    def metadata_document(self, location: str) -> dict[str, Any]:
        """``/metadata/json/1`` as this front end serves it now (Exchange's schema [U])."""
        with self.store.view() as state:
            realm = self.realm(state)
            certificates = self.published_certificates(state)
        issuer = f"{T.SKYPE_PRINCIPAL_ID}@{realm}"
        return {
            "id": f"_{uuid.uuid5(uuid.NAMESPACE_URL, issuer)}",
            "version": "1.0",
            "name": T.METADATA_NAME,
            "realm": realm,
            "serviceName": T.SKYPE_PRINCIPAL_ID,
            "issuer": issuer,
            "allowedAudiences": [issuer],
            "keys": [{"usage": "signing", "keyinfo": {"x5t": oracle.certificate_x5t(c)},
                      "keyvalue": {"type": "x509Certificate",
                                   "value": base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()}}
                     for c in certificates],
            "endpoints": [{"location": location, "protocol": "OAuth2", "usage": "metadata"}],
        }

    # --- tokens --------------------------------------------------------------------------------
    def s2s_token(self, *, principal: str, host: str, realm: str, user_smtp: str | None = None,
                  lifetime: int = T.TOKEN_LIFETIME, now: float | None = None) -> str:
        """The token this front end sends to ``principal`` at ``host`` in ``realm``, signed with the
        pool's OAuthTokenIssuer certificate: app-only, or for ``user_smtp`` (an outer token)."""
        with self.store.view() as state:
            pair = self.signing_pair(state)
            own = f"{T.SKYPE_PRINCIPAL_ID}@{self.realm(state)}"
        if pair is None:
            raise StorageFailed(T.STORAGE_NO_CERTIFICATE)
        issued = int(time.time() if now is None else now)
        aud = f"{principal}/{host.lower()}@{realm.lower()}"
        actor_claims: dict[str, Any] = {"aud": aud, "iss": own, "nameid": own, "nbf": issued, "exp": issued + lifetime}
        if user_smtp:
            actor_claims["trustedfordelegation"] = "true"
        actor = jwt.encode(actor_claims, pair.key_pem, algorithm="RS256",
                           headers={"typ": "JWT", "x5t": oracle.certificate_x5t(pair.certificate)})
        if not user_smtp:
            return actor
        outer = {"aud": aud, "iss": own, "nameid": user_smtp.lower(), "smtp": user_smtp.lower(),
                 "sip": user_smtp.lower(), "nii": "urn:office:idp:activedirectory", "actortoken": actor,
                 "nbf": issued, "exp": issued + lifetime}
        return ".".join((_b64({"typ": "JWT", "alg": "none"}), _b64(outer), ""))

    def judge(self, token: str, *, host: str | None = None) -> oracle.Accepted:
        """Accept a partner's token or raise :class:`oracle.Rejected`: its issuer must be an enabled
        partner application (ApplicationIdentifier@Realm) whose metadata certificate signed it, its
        audience the pool (its FQDN, this front end's, or ``host`` — the name the request came to)."""
        claims = oracle.unverified_claims(token) if token else {}
        actor = claims.get("actortoken")
        iss = str((oracle.unverified_claims(actor) if isinstance(actor, str) else claims).get("iss") or "").lower()
        with self.store.view() as state:
            realm = self.realm(state)
            hosts = {state["pool"]["fqdn"].lower(), self.machine(state)["fqdn"].lower()} | ({host.lower()} if host else set())
            apps = [a for a in state["global"]["partner_applications"]
                    if f"{a['ApplicationIdentifier']}@{a['Realm']}".lower() == iss]
        app = next((a for a in apps if a["Enabled"]), None)
        if token and app is None:
            raise oracle.Rejected("unknown_issuer", f"The issuer {iss or '(none)'} is no enabled partner application "
                                                   "of this pool (Get-CsPartnerApplication).")
        certificates = [x509.load_pem_x509_certificate(p.encode()) for p in (app or {}).get("certificates", [])]
        accepted = oracle.verify(token, certificates=oracle.usable_certificates(certificates), issuer=iss,
                                 principal=T.SKYPE_PRINCIPAL_ID, realm=realm, host_ok=lambda h: h in hosts)
        assert app is not None
        if accepted.user is None and app["ApplicationTrustLevel"] == "User":
            raise oracle.Rejected("app_only_not_allowed", f"The partner application {app['Identity']} has trust "
                                                          "level User: it cannot act for itself.")
        if accepted.nameid != iss:
            raise oracle.Rejected("wrong_nameid", f"The token speaks for {accepted.nameid}; the partner "
                                                  f"application {app['Identity']} speaks only for {iss}.")
        return accepted

    # --- Test-CsExStorageConnectivity ----------------------------------------------------------
    def store_to_exchange(self, sip_uri: str) -> list[str]:
        """Write an item to the user's mailbox through EWS as the Storage Service; the log lines.

        Raises :class:`StorageFailed` with the cmdlet's words.
        """
        with self.store.view() as state:
            user = next((u for u in state["pool"]["users"] if u["sip"].lower() == sip_uri.lower()), None)
            autodiscover = state["global"]["oauth"]["ExchangeAutodiscoverUrl"]
            exchange = next((a for a in state["global"]["partner_applications"]
                             if a["ApplicationIdentifier"] == T.EXCHANGE_PRINCIPAL_ID and a["Enabled"]), None)
        if user is None:
            raise UnknownIdentity(sip_uri)
        if not autodiscover:
            raise StorageFailed(T.storage_failed(T.STORAGE_NO_AUTODISCOVER))
        if exchange is None:
            raise StorageFailed(T.storage_failed(T.STORAGE_NO_EXCHANGE_PARTNER))
        where = urlsplit(autodiscover)
        ews = f"{where.scheme}://{where.netloc}{T.EWS_PATH}"
        try:
            # [U] app-only: the lab's Exchange resolves a user token's user by SID, which the pool does not know.
            token = self.s2s_token(principal=T.EXCHANGE_PRINCIPAL_ID, host=where.netloc, realm=exchange["Realm"])
        except StorageFailed as exc:
            raise StorageFailed(T.storage_failed(str(exc))) from None
        status, said = self._post(ews, token, user["smtp"])
        lines = [f"Autodiscover: {autodiscover}", f"Exchange Web Services: {ews}",
                 f"OAuth token issued by {T.SKYPE_PRINCIPAL_ID}@{self._realm()} (app-only) for {user['smtp']}"]
        if status != 200:
            raise StorageFailed(T.storage_failed(said))
        return [*lines, f"Item written to the Conversation History folder of {user['smtp']}.", T.STORAGE_PASSED]

    def _realm(self) -> str:
        with self.store.view() as state:
            return self.realm(state)

    def _post(self, url: str, token: str, mailbox: str) -> tuple[int, str]:
        if self.outbound_blocked():
            return 0, WEB_CONNECT_FAILED
        body = json.dumps({"operation": "CreateItem", "folder": "ConversationHistory", "mailbox": mailbox}).encode()
        request = urllib.request.Request(url, data=body, method="POST", headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json", "User-Agent": USER_AGENT})
        context = ssl.create_default_context(cafile=str(self.ca_bundle) if self.ca_bundle else None)
        try:
            with urllib.request.urlopen(request, context=context, timeout=self.timeout) as response:  # noqa: S310
                return response.status, ""
        except urllib.error.HTTPError as exc:
            reason = exc.headers.get("x-ms-diagnostics") or ""
            return exc.code, f"The request failed with HTTP status {exc.code}: {exc.reason}." + (
                f" x-ms-diagnostics: {reason}" if reason else "")
        except (urllib.error.URLError, OSError) as exc:
            return 0, f"{WEB_CONNECT_FAILED} ({url}): {getattr(exc, 'reason', exc)}"


def _b64(obj: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).rstrip(b"=").decode()
