"""What the simulated Exchange organization does, independent of how it was asked.

:class:`Organization` is the server over its :class:`~.state.ExchangeStore`: its realm and
issuer, the metadata document it publishes, the partner metadata it downloads (from its own
network: the host's ``no-outbound`` fault leaves it unable to connect), its S2S tokens, and its
judgement of the tokens partners send it. The cmdlets (:mod:`.cmdlets`) and the web routes
(:mod:`.web`) both call it.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from ..metadata_download import (
    WEB_CONNECT_FAILED,
    FetchFailed,
    fetch_json,
    issuer_of,
    signing_certificates,
)
from ..pki import KeyPair
from ..s2s import oracle
from ..s2s.minting import mint
from . import texts as T
from .state import ExchangeStore, key_pair_of, utc_text

__all__ = ["Organization", "PartnerMetadata", "thumbprint"]

USER_AGENT = "ExchangeServicesClient/15.02.1544.004"  # [U]


def thumbprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - Windows' thumbprint is SHA-1


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@dataclass(frozen=True)
class PartnerMetadata:
    """What Exchange keeps of a partner's downloaded metadata: who it is and its certificates."""

    application_identifier: str
    realm: str
    certificates: tuple[str, ...]  # PEM


class Organization:
    """The Exchange server ``exchange`` and its organization over the state file."""

    def __init__(self, store: ExchangeStore, *, ca_bundle: Path | None, metadata_timeout: float = 10.0) -> None:
        self.store = store
        self.ca_bundle = ca_bundle
        self.metadata_timeout = metadata_timeout
        # Set by the product when mounted: whether the server's outbound connections are blocked,
        # and where a public name is served in the lab (what DNS is to a real server).
        self.outbound_blocked: Callable[[], bool] = lambda: False
        self.resolve: Callable[[str], str | None] = lambda name: None

    # --- identity ----------------------------------------------------------------------------
    def realm(self, state: dict[str, Any]) -> str:
        """[C] AuthConfig.Realm, or the default accepted domain when it is empty."""
        return (state["auth_config"]["realm"] or state["domain"]).lower()

    def issuer(self, state: dict[str, Any]) -> str:
        return f"{state['auth_config']['service_name']}@{self.realm(state)}"

    def auth_key_pair(self) -> KeyPair:
        with self.store.view() as state:
            return key_pair_of(state["auth_config"]["current"])

    def metadata_document(self, location: str) -> dict[str, Any]:
        """``/autodiscover/metadata/json/1``: field names as Exchange writes them; ``location``
        echoes the URL that was asked for. Keys: the current and previous Auth certificates that
        have not expired [C] EX-DECOMP."""
        with self.store.view() as state:
            config = state["auth_config"]
            certs = [key_pair_of(config[which]).certificate for which in ("current", "previous") if config[which]]
            issuer = self.issuer(state)
            realm = self.realm(state)
        keys = [{"usage": "signing", "keyinfo": {"x5t": oracle.certificate_x5t(c)},
                 "keyvalue": {"type": "x509Certificate",
                              "value": base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()}}
                for c in oracle.usable_certificates(certs)]
        return {"id": f"_{uuid.uuid5(uuid.NAMESPACE_URL, issuer)}", "version": "1.0", "name": T.METADATA_NAME,
                "realm": realm, "serviceName": T.EXCHANGE_PRINCIPAL_ID, "issuer": issuer,
                "allowedAudiences": [issuer], "keys": keys,
                "endpoints": [{"location": location, "protocol": "OAuth2", "usage": "metadata"}]}

    # --- partners' metadata ------------------------------------------------------------------
    def download_metadata(self, url: str) -> PartnerMetadata:
        """The partner's metadata at ``url`` as this server downloads it, or :class:`FetchFailed`
        carrying Exchange's words."""
        if self.outbound_blocked():
            raise FetchFailed(T.metadata_download_failed(url, WEB_CONNECT_FAILED))
        try:
            doc = fetch_json(url, ca_bundle=self.ca_bundle, timeout=self.metadata_timeout, user_agent=USER_AGENT)
            issuer = issuer_of(doc, url)
            certificates = signing_certificates(doc, url)
        except FetchFailed as exc:
            if exc.exception_type == "System.Net.WebException":
                raise FetchFailed(T.metadata_download_failed(url, str(exc))) from exc
            raise FetchFailed(T.metadata_invalid(url), exc.exception_type) from exc
        app_id, realm = oracle.split_name(issuer)
        return PartnerMetadata(app_id, realm, tuple(_pem(c) for c in certificates))

    # --- tokens Exchange sends ---------------------------------------------------------------
    def s2s_token(self, *, audience: str, user_sid: str | None = None, lifetime: int = T.TOKEN_LIFETIME,
                  now: float | None = None) -> str:
        """The S2S token Exchange sends, signed with its current Auth certificate.

        ``audience`` is ``<principal>/<host>@<realm>`` of the receiver; ``iss`` and ``nameid`` are
        Exchange itself (``00000002-…@<realm>``). Without ``user_sid`` an app-only actor token;
        with it, an outer token (alg none) for that user around an actor token trusted for delegation.
        """
        with self.store.view() as state:
            own = self.issuer(state)
            pair = key_pair_of(state["auth_config"]["current"])
        return mint(pair, aud=audience, iss=own, nameid=own, user=user_sid, lifetime=lifetime, now=now)

    # --- tokens partners send ----------------------------------------------------------------
    def judge(self, token: str, *, host: str | None = None) -> oracle.Accepted:
        """Accept ``token`` as EWS would, or raise :class:`~..s2s.oracle.Rejected`.

        The token's issuer must be the ``<ApplicationIdentifier>@<Realm>`` of an enabled partner
        application created from metadata; the certificate that metadata published (at creation or
        the last ``-RefreshAuthMetadata``) must have signed it; its audience is Exchange at one of
        this server's names (``host`` too, when given) in this organization's realm.
        """
        with self.store.view() as state:
            realm = self.realm(state)
            names = {n.lower() for n in state["public_names"]} | ({host.lower()} if host else set())
            apps = [dict(a) for a in state["partner_applications"]]
            users = {u["sid"].lower() for u in state["users"]}
        claims = oracle.unverified_claims(token)
        if isinstance(claims.get("actortoken"), str):
            claims = oracle.unverified_claims(claims["actortoken"])
        iss = str(claims.get("iss") or "").lower()
        app = next((a for a in apps if a["auth_metadata_url"]
                    and f"{a['application_identifier']}@{a['realm']}".lower() == iss), None)
        if app is None:
            raise oracle.Rejected("unknown_issuer",
                                  f"The token's issuer {iss or '(none)'} is no partner application of this organization.")
        if not app["enabled"]:
            raise oracle.Rejected("application_disabled", f"The partner application '{app['name']}' is disabled.")
        accepted = oracle.verify(
            token, certificates=oracle.usable_certificates(x509.load_pem_x509_certificate(p.encode())
                                                           for p in app["certificates"]),
            issuer=iss, principal=T.EXCHANGE_PRINCIPAL_ID, realm=realm, host_ok=lambda h: h in names)
        if accepted.user is not None and accepted.user not in users:
            raise oracle.Rejected("user_not_found", T.USER_NOT_FOUND)
        return accepted

    # --- bookkeeping -------------------------------------------------------------------------
    @staticmethod
    def touch(entry: dict[str, Any]) -> None:
        entry["changed"] = utc_text()

