"""How a lab server signs the S2S tokens it sends, whatever product it is.

:func:`mint` makes an app-only *actor token* (RS256, ``x5t`` naming the signing certificate)
or, for a user, an unsigned *outer token* (``alg: none``) carrying that user's SID around an
actor token trusted for delegation — the two shapes SharePoint, Exchange and Skype for Business
send each other. The receivers judge them with :mod:`.oracle`.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt

from ..pki import KeyPair
from .oracle import certificate_x5t

__all__ = ["NII_ACTIVE_DIRECTORY", "mint"]

NII_ACTIVE_DIRECTORY = "urn:office:idp:activedirectory"


def _b64(obj: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).rstrip(b"=").decode()


def mint(pair: KeyPair, *, aud: str, iss: str, nameid: str, user: str | None = None, lifetime: int = 3600,
         now: float | None = None) -> str:
    """An actor token signed with ``pair`` (app-only), or an outer token for ``user`` (a SID) around one."""
    issued = int(time.time() if now is None else now)
    actor_claims: dict[str, Any] = {"aud": aud, "iss": iss, "nameid": nameid, "nbf": issued, "exp": issued + lifetime}
    if user is not None:
        actor_claims["trustedfordelegation"] = "true"
    actor = jwt.encode(actor_claims, pair.key_pem, algorithm="RS256",
                       headers={"typ": "JWT", "x5t": certificate_x5t(pair.certificate)})
    if user is None:
        return actor
    outer = {"aud": aud, "iss": nameid, "nameid": user.lower(), "nii": NII_ACTIVE_DIRECTORY,
             "actortoken": actor, "nbf": issued, "exp": issued + lifetime}
    return f"{_b64({'typ': 'JWT', 'alg': 'none'})}.{_b64(outer)}."
