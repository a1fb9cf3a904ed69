"""The lab's SharePoint Online: the oracle that a hybrid trust really works.

Served on the tenant's server at ``/_vti_bin/client.svc`` and ``/_api/…`` (the ``spo_url``
of the inventory; its public name is ``<tenant>.sharepoint.com``). A request is accepted
when its bearer token is an S2S actor token (or an ``alg: none`` outer token around one)
that:

* is issued by ``00000003-0000-0ff1-ce00-000000000000@<tenant id>`` — a farm whose realm is
  the tenant id, speaking as SharePoint;
* names in ``x5t`` a certificate in the SharePoint Online principal's ``keyCredentials``
  (current keys only) and is signed by that certificate's key;
* has an audience ``00000003-0000-0ff1-ce00-000000000000/<host>@<tenant id>`` whose host is
  covered by one of the principal's SPNs (``…/*.contoso.lab`` covers ``sp.contoso.lab``);
* is within ``nbf``/``exp``.

Anything else gets 401 with SharePoint Online's ``WWW-Authenticate`` challenge (realm =
tenant id, which is also how realm discovery works) and an ``x-ms-diagnostics`` header naming
the reason; ``X-Lab-S2S-Reason`` repeats the machine-readable reason for tests and diagnosis.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from typing import TYPE_CHECKING

from cryptography import x509

from ..errors import TokenError
from ..tokens import verify_token
from .http import Request, Response
from .tenant import ACS_PRINCIPAL_ID, SPO_PRINCIPAL_ID, _find_sp

if TYPE_CHECKING:
    from .tenant import Tenant

__all__ = ["SharePointOnline", "spn_covers"]

log = logging.getLogger(__name__)

# x-ms-diagnostics codes. SharePoint Online uses 3000003 for an audience it does not serve and
# 3001000 for a general failure; the mapping of the other reasons is the lab's choice.
_DIAG_CODES = {
    "wrong_audience": 3000003,
    "expired": 3000006,
    "not_yet_valid": 3000006,
    "unknown_x5t": 3000005,
    "bad_signature": 3000005,
    "wrong_issuer": 3000007,
    "no_token": 3000000,
}


def spn_covers(spn: str, host: str) -> bool:
    """Whether a SharePoint SPN (``<principal>/<host or *.domain>``) covers ``host``."""
    prefix = f"{SPO_PRINCIPAL_ID}/"
    if not spn.lower().startswith(prefix):
        return False
    pattern = spn[len(prefix):].lower().rstrip("/")
    host = host.lower().split(":")[0]
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


class SharePointOnline:
    """Route handler for the tenant's SharePoint Online endpoints."""

    def __init__(self, tenant: "Tenant") -> None:
        self.tenant = tenant

    def handle(self, request: Request) -> Response:
        auth = request.header("authorization") or ""
        token = auth[7:].strip() if auth.lower().startswith("bearer") else ""
        if not token:
            return self._challenge("no_token", "There is no bearer token in the request.")
        tid = self.tenant.tenant_id
        with self.tenant._directory() as directory:
            sp = _find_sp(directory, app_id=SPO_PRINCIPAL_ID)
            keys = list(sp["keyCredentials"]) if sp else []
            spns = list(sp["servicePrincipalNames"]) if sp else []
        now = dt.datetime.now(dt.timezone.utc)
        trusted = []
        for key in keys:
            end = dt.datetime.fromisoformat(key["endDateTime"].replace("Z", "+00:00"))
            start = dt.datetime.fromisoformat(key["startDateTime"].replace("Z", "+00:00"))
            if key.get("key") and start <= now <= end:
                trusted.append(x509.load_der_x509_certificate(base64.b64decode(key["key"])))

        def audience_ok(aud: str) -> bool:
            principal, _, rest = aud.partition("/")
            host, _, realm = rest.rpartition("@")
            return (
                principal.lower() == SPO_PRINCIPAL_ID
                and realm.lower() == tid
                and any(spn_covers(spn, host) for spn in spns)
            )

        try:
            verified = verify_token(
                token, trusted_certificates=trusted, audience=audience_ok, issuer=f"{SPO_PRINCIPAL_ID}@{tid}"
            )
        except TokenError as exc:
            log.info("spo: rejected S2S token: %s", exc.message)
            return self._challenge(exc.reason or "malformed", exc.message)
        body = {
            "Title": f"{self.tenant.name.capitalize()} (SharePoint Online, lab)",
            "Url": f"https://{self.tenant.spo_host}",
            "ServerRelativeUrl": "/",
            "Actor": verified.actor_nameid,
            "User": verified.user_nameid,
            "Audience": verified.audience,
        }
        return Response.json(body)

    def _challenge(self, reason: str, detail: str) -> Response:
        tid = self.tenant.tenant_id
        trusted_issuers = ",".join([
            f"{ACS_PRINCIPAL_ID}@*",
            "https://sts.windows.net/*/",
            "https://login.microsoftonline.com/*/v2.0",
            f"{SPO_PRINCIPAL_ID}@{tid}",
        ])
        code = _DIAG_CODES.get(reason, 3001000)
        safe_detail = detail.replace('"', "'")
        response = Response.json(
            {"error_description": "Invalid JWT token. " + safe_detail} if reason != "no_token" else {},
            status=401,
        )
        response.headers.update({
            "WWW-Authenticate": (
                f'Bearer realm="{tid}",client_id="{SPO_PRINCIPAL_ID}",'
                f'trusted_issuers="{trusted_issuers}",'
                'authorization_uri="https://login.windows.net/common/oauth2/authorize"'
            ),
            "x-ms-diagnostics": f'{code};reason="{safe_detail}";category="invalid_client"',
            "X-Lab-S2S-Reason": reason,
        })
        return response
