"""The lab's own S2S token verifier: what a receiving product checks before it believes a token.

The lab's SharePoint Online (:mod:`runbooklib.lab.tenant.spo`) and the farms' web endpoints
(:mod:`runbooklib.lab.sharepoint.web`) judge tokens with this module. It is written apart from
:mod:`runbooklib.tokens` on purpose and must never import it: the runbooks' verifier is code
under test, and a bug in it would otherwise pass every end-to-end test that relies on the lab
to say "this trust works". Here, pyjwt parses and verifies RS256 and checks ``nbf``/``exp``;
the S2S rules (x5t, issuer, audience, name identifier, delegation) are written out below.

Rules, in the order they are checked (the first that fails names the rejection):

* a bearer token is present (``no_token``) and is a JWT (``malformed``);
* an ``alg: none`` token is accepted only as an *outer* token around a valid actor token
  (``actortoken``) that says ``trustedfordelegation: "true"``
  (``unsigned_without_actor`` / ``not_trusted_for_delegation``); its ``aud`` equals the
  actor's, its ``iss`` is the actor's ``nameid``, it names a user and is within its times;
* an actor token is RS256 (``unsupported_alg``), its ``x5t`` names a trusted certificate
  (``unknown_x5t``) whose key verifies the signature (``bad_signature``);
* ``nbf``/``exp`` hold within :data:`LEEWAY` seconds (``not_yet_valid`` / ``expired``);
* ``iss`` is the expected issuer (``wrong_issuer``);
* ``aud`` is ``<principal>/<host>@<realm>`` with the expected principal and a host the
  receiver answers for (``wrong_audience``), in the receiver's realm (``realm_mismatch``);
* ``nameid`` is the expected name identifier (``wrong_nameid``).

Which certificates are trusted is the caller's business; :func:`certificates_from_key_credentials`
turns a Graph ``keyCredentials`` collection into the set a Microsoft 365 service would use
(usage ``Verify``, key present, within its dates).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = [
    "LEEWAY",
    "Accepted",
    "Audience",
    "Rejected",
    "certificate_x5t",
    "certificates_from_key_credentials",
    "parse_audience",
    "split_name",
    "unverified_claims",
    "usable_certificates",
    "verify",
]

log = logging.getLogger(__name__)

# Clock skew tolerated on nbf/exp. Kept small: the lab's clocks are one clock, and a generous
# window would hide a token minted with the wrong times.
LEEWAY = 60


class Rejected(Exception):
    """The token is refused; ``reason`` is machine-readable, ``detail`` says why in words."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Audience:
    """An S2S audience ``<principal>/<host>@<realm>`` split into its parts (lower case)."""

    principal: str
    host: str
    realm: str


@dataclass(frozen=True)
class Accepted:
    """A token that passed every rule: what the receiver now believes."""

    issuer: str
    audience: Audience
    nameid: str
    certificate: x509.Certificate
    actor_claims: dict
    user: str | None = None  # the outer token's nameid (a user SID), None for an app-only token

    @property
    def raw_audience(self) -> str:
        return f"{self.audience.principal}/{self.audience.host}@{self.audience.realm}"


def certificate_x5t(certificate: x509.Certificate) -> str:
    """base64url (no padding) of the SHA-1 of the certificate's DER bytes."""
    digest = hashlib.sha1(certificate.public_bytes(serialization.Encoding.DER)).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def split_name(name: str) -> tuple[str, str]:
    """``<id>@<realm>`` (an ``iss``, a ``nameid``, a registered issuer name) → ``(id, realm)``, split
    at the last ``@``; the realm is empty when there is none."""
    principal_id, at, realm = name.rpartition("@")
    return (principal_id, realm) if at else (name, "")


def parse_audience(aud: object) -> Audience | None:
    """``<principal>/<host>@<realm>`` → its parts, or None when ``aud`` has another shape."""
    if not isinstance(aud, str) or "/" not in aud:
        return None
    principal, _, rest = aud.partition("/")
    host, realm = split_name(rest)
    if not principal or not host or not realm:
        return None
    return Audience(principal.lower(), host.lower(), realm.lower())


def _parse_time(value: object) -> dt.datetime | None:
    if not value:
        return None
    parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def usable_certificates(certificates: Iterable[x509.Certificate], *, now: dt.datetime | None = None) -> list[x509.Certificate]:
    """The certificates among ``certificates`` that are within their own validity now."""
    moment = now or dt.datetime.now(dt.timezone.utc)
    return [c for c in certificates if c.not_valid_before_utc <= moment <= c.not_valid_after_utc]


def certificates_from_key_credentials(key_credentials: Iterable[dict], *, now: dt.datetime | None = None) -> list[x509.Certificate]:
    """Certificates a service principal's ``keyCredentials`` let it trust for token verification.

    Only keys with usage ``Verify``, a certificate in ``key`` and ``startDateTime`` ≤ now ≤
    ``endDateTime`` count (and the certificate itself must not have expired); a ``Sign`` key
    or an expired one is never a reason to accept a token.
    """
    moment = now or dt.datetime.now(dt.timezone.utc)
    trusted: list[x509.Certificate] = []
    for cred in key_credentials:
        if str(cred.get("usage", "")).lower() != "verify" or not cred.get("key"):
            continue
        start, end = _parse_time(cred.get("startDateTime")), _parse_time(cred.get("endDateTime"))
        if (start and moment < start) or (end and moment > end):
            continue
        try:
            trusted.append(x509.load_der_x509_certificate(base64.b64decode(cred["key"])))
        except ValueError:
            log.warning("keyCredential %s holds no readable certificate; ignored", cred.get("keyId"))
    return usable_certificates(trusted, now=moment)


# ---------------------------------------------------------------------------------- verify
NameidRule = str | Callable[[str], bool] | None


def verify(
    token: str,
    *,
    certificates: Sequence[x509.Certificate],
    issuer: str,
    principal: str,
    realm: str,
    host_ok: Callable[[str], bool],
    nameid: NameidRule = None,
    now: float | None = None,
    leeway: int = LEEWAY,
) -> Accepted:
    """Accept ``token`` (an actor token, or an outer token around one) or raise :class:`Rejected`.

    ``certificates`` are the receiver's trusted signing certificates for ``issuer`` (the
    expected ``iss``); the audience must name ``principal`` and ``realm`` and a host for which
    ``host_ok`` is true; ``nameid`` is the expected actor name identifier (exact, or a
    predicate), or None to leave that to the caller.
    """
    token = (token or "").strip()
    if not token:
        raise Rejected("no_token", "There is no bearer token in the request.")
    clock = time.time() if now is None else now
    header = _header(token)
    alg = str(header.get("alg", ""))
    if alg.lower() == "none":
        return _verify_outer(token, certificates=certificates, issuer=issuer, principal=principal, realm=realm,
                             host_ok=host_ok, nameid=nameid, clock=clock, leeway=leeway)
    return _verify_actor(token, header, certificates=certificates, issuer=issuer, principal=principal, realm=realm,
                         host_ok=host_ok, nameid=nameid, clock=clock, leeway=leeway)


def _header(token: str) -> dict:
    if token.count(".") != 2:
        raise Rejected("malformed", "The token is not a JWT (three dot-separated parts).")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise Rejected("malformed", f"The token header cannot be read ({exc}).") from None
    return header


def _unverified_claims(token: str) -> dict:
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise Rejected("malformed", f"The token claims cannot be read ({exc}).") from None
    if not isinstance(claims, dict):
        raise Rejected("malformed", "The token claims are not a JSON object.")
    return claims


def _check_times(claims: dict, clock: float, leeway: int, what: str) -> None:
    try:
        exp = float(claims["exp"])
        nbf = float(claims["nbf"]) if "nbf" in claims else None
    except (KeyError, TypeError, ValueError):
        raise Rejected("malformed", f"The {what} needs exp (and nbf, when present) in epoch seconds.") from None
    if exp + leeway < clock:
        raise Rejected("expired", f"The {what} expired at {_when(exp)}.")
    if nbf is not None and nbf - leeway > clock:
        raise Rejected("not_yet_valid", f"The {what} is not valid before {_when(nbf)}.")


def _when(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _verify_actor(token: str, header: dict, *, certificates: Sequence[x509.Certificate], issuer: str, principal: str,
                  realm: str, host_ok: Callable[[str], bool], nameid: NameidRule, clock: float,
                  leeway: int) -> Accepted:
    alg = str(header.get("alg", ""))
    if alg != "RS256":
        raise Rejected("unsupported_alg", f"The token is signed with {alg or 'no algorithm'}; S2S tokens are RS256.")
    thumb = str(header.get("x5t") or "").rstrip("=")
    if not thumb:
        raise Rejected("malformed", "The token header has no x5t naming its signing certificate.")
    cert = next((c for c in certificates if certificate_x5t(c) == thumb), None)
    if cert is None:
        raise Rejected("unknown_x5t", f"The signing certificate x5t {thumb} is not a trusted key of the issuer.")
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise Rejected("unsupported_alg", "The trusted certificate holds no RSA key.")
    try:
        # pyjwt checks the signature; times are checked below so that the reasons stay ours.
        claims = jwt.decode(token, key, algorithms=["RS256"],
                            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                                     "verify_aud": False, "verify_iss": False})
    except jwt.InvalidSignatureError:
        raise Rejected("bad_signature", f"The signature does not verify with the certificate x5t {thumb}.") from None
    except jwt.PyJWTError as exc:
        raise Rejected("malformed", f"The token cannot be verified ({exc}).") from None
    _check_times(claims, clock, leeway, "token")
    iss = str(claims.get("iss", ""))
    if iss.lower() != issuer.lower():
        raise Rejected("wrong_issuer", f"The issuer {iss or '(none)'} is not {issuer}.")
    aud = parse_audience(claims.get("aud"))
    if aud is None:
        raise Rejected("wrong_audience", f"The audience {claims.get('aud')!r} is not <principal>/<host>@<realm>.")
    if aud.principal != principal.lower():
        raise Rejected("wrong_audience", f"The audience names principal {aud.principal}, not {principal}.")
    if aud.realm != realm.lower():
        raise Rejected("realm_mismatch", f"The token is for realm {aud.realm}; this receiver's realm is {realm.lower()}.")
    if not host_ok(aud.host):
        raise Rejected("wrong_audience", f"The audience host {aud.host} is not a name this receiver answers for.")
    actor_nameid = str(claims.get("nameid", ""))
    if nameid is not None:
        ok = nameid(actor_nameid) if callable(nameid) else actor_nameid.lower() == nameid.lower()
        if not ok:
            expected = nameid if isinstance(nameid, str) else "a known name identifier"
            raise Rejected("wrong_nameid", f"The token speaks for {actor_nameid or '(nobody)'}, not {expected}.")
    return Accepted(iss.lower(), aud, actor_nameid.lower(), cert, claims)


def _verify_outer(token: str, *, certificates: Sequence[x509.Certificate], issuer: str, principal: str, realm: str,
                  host_ok: Callable[[str], bool], nameid: NameidRule, clock: float, leeway: int) -> Accepted:
    claims = _unverified_claims(token)
    actor_token = claims.get("actortoken")
    if not isinstance(actor_token, str) or not actor_token:
        raise Rejected("unsigned_without_actor", "The token is unsigned (alg none) and carries no actor token.")
    try:
        actor = _verify_actor(actor_token, _header(actor_token), certificates=certificates, issuer=issuer,
                              principal=principal, realm=realm, host_ok=host_ok, nameid=nameid, clock=clock,
                              leeway=leeway)
    except Rejected as exc:
        raise Rejected("unsigned_without_actor",
                       f"The token is unsigned (alg none) and its actor token is refused ({exc.reason}): {exc.detail}") from None
    if str(actor.actor_claims.get("trustedfordelegation", "")).lower() != "true":
        raise Rejected("not_trusted_for_delegation",
                       "The actor token does not say trustedfordelegation=true, so it cannot speak for a user.")
    _check_times(claims, clock, leeway, "outer token")
    if str(claims.get("aud", "")).lower() != actor.raw_audience:
        raise Rejected("wrong_audience", f"The outer audience {claims.get('aud')!r} differs from the actor's.")
    if str(claims.get("iss", "")).lower() != actor.nameid:
        raise Rejected("wrong_issuer", f"The outer issuer {claims.get('iss')!r} is not the actor {actor.nameid}.")
    user = str(claims.get("nameid", "")).lower()
    if not user:
        raise Rejected("malformed", "The outer token names no user (nameid).")
    return Accepted(actor.issuer, actor.audience, actor.nameid, actor.certificate, actor.actor_claims, user=user)


def unverified_claims(token: str) -> dict:
    """The claims of a token without checking anything (to find which issuer to ask)."""
    return _unverified_claims((token or "").strip())
