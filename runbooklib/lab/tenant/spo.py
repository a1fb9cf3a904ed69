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
* is within ``nbf``/``exp`` and speaks (``nameid``) as that same farm identity;
* as an outer token, wraps such an actor token that is ``trustedfordelegation``.

The judgement is :mod:`.s2s_oracle`'s, the lab's own verifier — deliberately not
:mod:`runbooklib.tokens`, which is code under test.

Anything else gets 401 with SharePoint Online's ``WWW-Authenticate`` challenge (realm =
tenant id, which is also how realm discovery works) and an ``x-ms-diagnostics`` header naming
the reason; ``X-Lab-S2S-Reason`` repeats the machine-readable reason for tests and diagnosis.
"""

from __future__ import annotations

import logging

from ..http import Request, Response
from ..s2s import oracle as s2s_oracle
from ..s2s.receiver import REASON_HEADER, bearer_token, diagnostics, safe_detail
from .directory import (
    ACS_PRINCIPAL_ID,
    SPO_PRINCIPAL_ID,
    TenantView,
    find_service_principal,
    spn_covers,
)

__all__ = ["SharePointOnline"]

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
    "wrong_nameid": 3000007,
    "realm_mismatch": 3000003,
    "no_token": 3000000,
}


class SharePointOnline:
    """Route handler for the tenant's SharePoint Online endpoints."""

    def __init__(self, tenant: TenantView) -> None:
        self.tenant = tenant

    def handle(self, request: Request) -> Response:
        token = bearer_token(request)
        tid = self.tenant.tenant_id
        with self.tenant.directory() as directory:
            sp = find_service_principal(directory, app_id=SPO_PRINCIPAL_ID)
            keys = list(sp["keyCredentials"]) if sp else []
            spns = list(sp["servicePrincipalNames"]) if sp else []
        speaker = f"{SPO_PRINCIPAL_ID}@{tid}"
        try:
            accepted = s2s_oracle.verify(
                token,
                certificates=s2s_oracle.certificates_from_key_credentials(keys),
                issuer=speaker,
                principal=SPO_PRINCIPAL_ID,
                realm=tid,
                host_ok=lambda host: any(spn_covers(spn, host) for spn in spns),
                # A farm whose realm is the tenant id speaks as SharePoint in that realm.
                nameid=speaker,
            )
        except s2s_oracle.Rejected as exc:
            log.info("spo: rejected S2S token (%s): %s", exc.reason, exc.detail)
            return self._challenge(exc)
        body = {
            "Title": f"{self.tenant.name.capitalize()} (SharePoint Online, lab)",
            "Url": f"https://{self.tenant.spo_host}",
            "ServerRelativeUrl": "/",
            "Actor": accepted.nameid,
            "User": accepted.user,
            "Audience": accepted.raw_audience,
        }
        return Response.json(body)

    def _challenge(self, rejected: s2s_oracle.Rejected) -> Response:
        tid = self.tenant.tenant_id
        trusted_issuers = ",".join([
            f"{ACS_PRINCIPAL_ID}@*",
            "https://sts.windows.net/*/",
            "https://login.microsoftonline.com/*/v2.0",
            f"{SPO_PRINCIPAL_ID}@{tid}",
        ])
        refused = rejected.reason != "no_token"
        body = {"error_description": "Invalid JWT token. " + safe_detail(rejected)} if refused else {}
        response = Response.json(body, status=401)
        response.headers.update({
            "WWW-Authenticate": (
                f'Bearer realm="{tid}",client_id="{SPO_PRINCIPAL_ID}",'
                f'trusted_issuers="{trusted_issuers}",'
                'authorization_uri="https://login.windows.net/common/oauth2/authorize"'
            ),
            "x-ms-diagnostics": diagnostics(rejected, _DIAG_CODES),
            REASON_HEADER: rejected.reason,
        })
        return response
