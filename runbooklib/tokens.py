"""S2S (high-trust) tokens: build an actor token and the outer token that wraps it, decode
one, and verify it against trusted certificates with a precise reason when it fails.

Formats (see the design notes, "Tokens"):

* actor token — a JWT signed RS256 with the issuer's STS certificate; header carries
  ``x5t`` (base64url SHA-1 of the DER certificate); claims ``aud`` =
  ``<target principal>/<host>@<realm>``, ``iss`` = ``<issuer id>@<realm>``,
  ``nameid`` = ``<client id>@<realm>``, ``nbf``/``exp`` in epoch seconds.
* outer token — ``alg: none``, the same ``aud``, ``iss`` = the actor's ``nameid``,
  ``nameid`` = the user, ``nii``, and the actor in ``actortoken``; serialised with an empty
  signature. It is worth nothing by itself: only the signed actor inside vouches for it.

Building is used by the lab (a farm signing a call) and by tests; verification is what the
lab's SharePoint Online checks and what ``runbook token explain`` reports.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .errors import TokenError

__all__ = [
    "Reason",
    "S2SToken",
    "VerifiedToken",
    "audience",
    "build_actor_token",
    "build_outer_token",
    "decode_token",
    "verify_token",
    "x5t",
]

Reason = Literal[
    "malformed",
    "unsupported_alg",
    "unknown_x5t",
    "bad_signature",
    "expired",
    "not_yet_valid",
    "wrong_audience",
    "wrong_issuer",
    "wrong_nameid",
    "unsigned_without_actor",
    "not_trusted_for_delegation",
]

NII_ACTIVE_DIRECTORY = "urn:office:idp:activedirectory"
# Clock skew both sides tolerate; SharePoint allows a few minutes too.
DEFAULT_LEEWAY = 300

_HINTS: dict[str, str] = {
    "malformed": "The token is not a JWT of three dot-separated base64url parts: check what produced it.",
    "unsupported_alg": "S2S actor tokens are signed RS256; anything else is refused.",
    "unknown_x5t": "The signing certificate is not trusted by the receiver: upload the issuer's "
    "current STS certificate (for hybrid: ensure_key_credential on the SharePoint Online principal).",
    "bad_signature": "The token was not signed by the private key of the certificate its x5t names: "
    "the issuer uses a different key than the one registered (certificate replaced?).",
    "expired": "The token is past its exp: check the clocks of both sides, then issue a new token.",
    "not_yet_valid": "The token's nbf is in the future: the issuer's clock is ahead; fix time sync.",
    "wrong_audience": "The audience host is not one the receiver answers for: for hybrid, add the "
    "wildcard SPN for the farm's root domain to the SharePoint Online principal.",
    "wrong_issuer": "The issuer is not the one the receiver trusts: check the realm (tenant id) and issuer id.",
    "unsigned_without_actor": "An unsigned (alg none) token is only acceptable wrapped around a valid "
    "actor token; this one has none, or its actor failed verification.",
    "wrong_nameid": "The actor speaks for another identity than its issuer: an S2S actor's nameid must be "
    "<issuer id>@<realm>; check the client id the issuer signs with.",
    "not_trusted_for_delegation": "An outer (user) token may only wrap an actor marked "
    "trustedfordelegation=true: the issuer minted an app-only actor and wrapped it.",
}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def x5t(certificate: x509.Certificate) -> str:
    """The ``x5t`` header value: base64url of the SHA-1 of the DER certificate."""
    return _b64url(hashlib.sha1(certificate.public_bytes(serialization.Encoding.DER)).digest())


def audience(target_principal_id: str, host: str, realm: str) -> str:
    """``<target principal>/<host>@<realm>`` — the audience of an S2S token for ``host``."""
    return f"{target_principal_id}/{host.lower()}@{realm.lower()}"


def _epoch(value: dt.datetime | None) -> int:
    return int((value or dt.datetime.now(dt.timezone.utc)).timestamp())


def build_actor_token(
    *,
    certificate: x509.Certificate,
    private_key: rsa.RSAPrivateKey,
    issuer_id: str,
    realm: str,
    target_principal_id: str,
    target_host: str,
    client_id: str | None = None,
    not_before: dt.datetime | None = None,
    lifetime: dt.timedelta = dt.timedelta(hours=12),
    trusted_for_delegation: bool = False,
) -> str:
    """An RS256 actor token signed with ``private_key`` (the STS certificate's key)."""
    realm = realm.lower()
    nbf = _epoch(not_before)
    header = {"typ": "JWT", "alg": "RS256", "x5t": x5t(certificate)}
    claims: dict[str, object] = {
        "aud": audience(target_principal_id, target_host, realm),
        "iss": f"{issuer_id}@{realm}".lower(),
        "nameid": f"{client_id or issuer_id}@{realm}".lower(),
        "nbf": nbf,
        "exp": nbf + int(lifetime.total_seconds()),
    }
    if trusted_for_delegation:
        claims["trustedfordelegation"] = "true"
    signing_input = f"{_b64url(_json(header))}.{_b64url(_json(claims))}"
    signature = private_key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}"


def build_outer_token(
    actor_token: str,
    *,
    user_id: str,
    nii: str = NII_ACTIVE_DIRECTORY,
    lifetime: dt.timedelta | None = None,
) -> str:
    """The unsigned outer token carrying a user identity (``user_id``: the user's SID) and the actor."""
    actor = decode_token(actor_token)
    nbf = int(time.time())
    exp = nbf + int(lifetime.total_seconds()) if lifetime else int(actor.claims.get("exp", nbf + 43200))
    claims = {
        "aud": actor.claims.get("aud"),
        "iss": actor.claims.get("nameid"),
        "nameid": user_id.lower(),
        "nii": nii,
        "actortoken": actor_token,
        "nbf": nbf,
        "exp": exp,
    }
    return f"{_b64url(_json({'typ': 'JWT', 'alg': 'none'}))}.{_b64url(_json(claims))}."


def _json(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


@dataclass(frozen=True)
class S2SToken:
    """A decoded (not yet verified) token; ``actor`` is the decoded actor of an outer token."""

    raw: str
    header: dict
    claims: dict
    signature: bytes
    actor: "S2SToken | None" = None

    @property
    def alg(self) -> str:
        return str(self.header.get("alg", ""))

    @property
    def x5t(self) -> str | None:
        value = self.header.get("x5t")
        return str(value) if value else None

    @property
    def signing_input(self) -> bytes:
        return self.raw.rsplit(".", 1)[0].encode("ascii")


def decode_token(token: str) -> S2SToken:
    """Split and decode a token without verifying anything; :class:`TokenError` ``malformed`` if it is not a JWT."""
    token = token.strip()
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    parts = token.split(".")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise _fail("malformed", "the token does not have three dot-separated parts")
    try:
        header = json.loads(_b64url_decode(parts[0]))
        claims = json.loads(_b64url_decode(parts[1]))
        signature = _b64url_decode(parts[2]) if parts[2] else b""
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise _fail("malformed", f"a part is not base64url JSON ({exc})") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise _fail("malformed", "header and claims must be JSON objects")
    actor = None
    nested = claims.get("actortoken")
    if isinstance(nested, str) and nested:
        actor = decode_token(nested)
    return S2SToken(token, header, claims, signature, actor)


@dataclass(frozen=True)
class VerifiedToken:
    """A token that passed verification. ``certificate`` signed the actor (or the token itself)."""

    token: S2SToken
    certificate: x509.Certificate
    audience: str
    issuer: str
    actor_nameid: str
    user_nameid: str | None = None
    notes: list[str] = field(default_factory=list)


def _fail(reason: str, detail: str) -> TokenError:
    return TokenError(f"S2S token rejected ({reason}): {detail}", hint=_HINTS.get(reason), reason=reason)


def verify_token(
    token: str | S2SToken,
    *,
    trusted_certificates: Iterable[x509.Certificate],
    audience: str | Callable[[str], bool] | None = None,
    issuer: str | None = None,
    nameid: str | None = None,
    now: float | None = None,
    leeway: int = DEFAULT_LEEWAY,
) -> VerifiedToken:
    """Verify an actor token, or an outer token with its actor, as a receiving server would.

    ``trusted_certificates`` are the certificates the receiver trusts for the issuer;
    ``audience`` is the exact audience or a predicate over it; ``issuer`` the expected actor
    issuer and ``nameid`` the identity the actor must speak for (both compared
    case-insensitively). An outer token is accepted only around an actor marked
    ``trustedfordelegation``. Raises :class:`TokenError` whose ``reason`` is one of :data:`Reason`.
    """
    decoded = decode_token(token) if isinstance(token, str) else token
    trusted = list(trusted_certificates)
    clock = time.time() if now is None else now
    if decoded.alg.lower() == "none":
        if decoded.actor is None:
            raise _fail("unsigned_without_actor", "the token is unsigned (alg none) and carries no actortoken")
        try:
            actor = _verify_signed(decoded.actor, trusted, audience, issuer, clock, leeway, nameid)
        except TokenError as exc:
            raise _fail(
                "unsigned_without_actor",
                f"the token is unsigned (alg none) and its actor token fails: {exc.message}",
            ) from exc
        if str(decoded.actor.claims.get("trustedfordelegation", "")).lower() != "true":
            raise _fail("not_trusted_for_delegation",
                        "the outer token wraps an actor that is not marked trustedfordelegation=true")
        _check_times(decoded, clock, leeway)
        if str(decoded.claims.get("aud", "")).lower() != actor.audience.lower():
            raise _fail("wrong_audience", f"outer aud {decoded.claims.get('aud')!r} differs from the actor's")
        if str(decoded.claims.get("iss", "")).lower() != actor.actor_nameid.lower():
            raise _fail("wrong_issuer", f"outer iss {decoded.claims.get('iss')!r} is not the actor's nameid")
        return VerifiedToken(
            decoded, actor.certificate, actor.audience, actor.issuer, actor.actor_nameid,
            user_nameid=str(decoded.claims.get("nameid") or "") or None,
        )
    return _verify_signed(decoded, trusted, audience, issuer, clock, leeway, nameid)


def _verify_signed(
    token: S2SToken,
    trusted: list[x509.Certificate],
    expected_audience: str | Callable[[str], bool] | None,
    expected_issuer: str | None,
    clock: float,
    leeway: int,
    expected_nameid: str | None = None,
) -> VerifiedToken:
    if token.alg != "RS256":
        raise _fail("unsupported_alg", f"alg {token.alg!r} (expected RS256)")
    thumb = token.x5t
    if not thumb:
        raise _fail("malformed", "the header has no x5t naming the signing certificate")
    cert = next((c for c in trusted if x5t(c) == thumb), None)
    if cert is None:
        raise _fail("unknown_x5t", f"x5t {thumb} names no trusted certificate")
    public_key = cert.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise _fail("unsupported_alg", "the trusted certificate does not hold an RSA key")
    try:
        public_key.verify(token.signature, token.signing_input, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise _fail("bad_signature", f"the signature does not verify with certificate x5t {thumb}") from None
    _check_times(token, clock, leeway)
    iss = str(token.claims.get("iss", ""))
    if expected_issuer is not None and iss.lower() != expected_issuer.lower():
        raise _fail("wrong_issuer", f"iss {iss!r} (expected {expected_issuer!r})")
    aud = str(token.claims.get("aud", ""))
    if expected_audience is not None:
        ok = expected_audience(aud) if callable(expected_audience) else aud.lower() == expected_audience.lower()
        if not ok:
            raise _fail("wrong_audience", f"aud {aud!r} is not accepted here")
    actor_nameid = str(token.claims.get("nameid", ""))
    if expected_nameid is not None and actor_nameid.lower() != expected_nameid.lower():
        raise _fail("wrong_nameid", f"nameid {actor_nameid!r} (expected {expected_nameid!r})")
    return VerifiedToken(token, cert, aud, iss, actor_nameid)


def _check_times(token: S2SToken, clock: float, leeway: int) -> None:
    try:
        nbf = float(token.claims["nbf"]) if "nbf" in token.claims else None
        exp = float(token.claims["exp"])
    except (KeyError, TypeError, ValueError):
        raise _fail("malformed", "exp (and nbf, when present) must be epoch seconds") from None
    if exp + leeway < clock:
        when = dt.datetime.fromtimestamp(exp, dt.timezone.utc).isoformat()
        raise _fail("expired", f"exp {when} has passed")
    if nbf is not None and nbf - leeway > clock:
        when = dt.datetime.fromtimestamp(nbf, dt.timezone.utc).isoformat()
        raise _fail("not_yet_valid", f"nbf {when} is in the future")
