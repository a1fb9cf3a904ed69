"""The simulated Exchange server's web endpoints: its auth metadata and EWS as a token receiver.

``/autodiscover/metadata/json/1``
    the organization's auth metadata (:meth:`Organization.metadata_document`): the issuer
    ``00000002-0000-0ff1-ce00-000000000000@<realm>`` and its Auth certificates; ``location``
    echoes the URL asked for.
``/ews/exchange.asmx``
    EWS as a partner calls it with an S2S token (``Authorization: Bearer …``): accepted only
    through an enabled partner application created from the caller's metadata whose certificate
    signed the token (:meth:`Organization.judge`). No token: a 401 Bearer challenge naming
    Exchange's client id and realm. A refused token: 401 with ``x-ms-diagnostics``
    (``<code>;reason="…";error_category="…"``, as EWS answers) and ``X-Lab-S2S-Reason``.
    Accepted: 200 with a small JSON description of who called.
"""

from __future__ import annotations

import logging

from ..http import LabServer, Request, Response
from ..s2s import oracle
from ..s2s.receiver import REASON_HEADER, bearer_token, safe_detail
from . import texts as T
from .organization import Organization

__all__ = ["ExchangeWeb"]

log = logging.getLogger(__name__)


class ExchangeWeb:
    """The web routes of the Exchange server over its organization."""

    def __init__(self, org: Organization, name: str) -> None:
        self.org = org
        self.name = name

    def mount(self, server: LabServer) -> None:
        server.mount(T.METADATA_PATH, self.serve_metadata)
        server.mount(T.EWS_PATH, self.serve_ews)

    def serve_metadata(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return Response.text("405 METHOD NOT ALLOWED", status=405)
        if request.path.lower().rstrip("/") != T.METADATA_PATH:
            return Response.text("404 NOT FOUND", status=404)
        return Response.json(self.org.metadata_document(f"{request.server_url}{request.path}"))

    def serve_ews(self, request: Request) -> Response:
        token = bearer_token(request)
        try:
            if not token:
                raise oracle.Rejected("no_token", "There is no bearer token in the request.")
            accepted = self.org.judge(token, host=request.header("host"))
        except oracle.Rejected as exc:
            if exc.reason != "no_token":
                log.info("%s: EWS refused an S2S token (%s): %s", self.name, exc.reason, exc.detail)
            return self._challenge(exc)
        return Response.json({"Issuer": accepted.issuer, "Application": accepted.nameid, "User": accepted.user})

    def _challenge(self, rejected: oracle.Rejected) -> Response:
        with self.org.store.view() as state:
            realm = self.org.realm(state)
        response = Response.text("401 UNAUTHORIZED", status=401)
        # [U] the parameters of EWS's Bearer challenge beyond client_id and realm.
        response.headers["WWW-Authenticate"] = (f'Bearer client_id="{T.EXCHANGE_PRINCIPAL_ID}", realm="{realm}", '
                                                'token_types="app_asserted_user_v1 service_asserted_app_v1"')
        response.headers[REASON_HEADER] = rejected.reason
        if rejected.reason != "no_token":
            code = T.EWS_DIAGNOSTIC_CODES.get(rejected.reason, 2000001)
            category = T.EWS_ERROR_CATEGORIES.get(rejected.reason, "invalid_token")
            response.headers["x-ms-diagnostics"] = f'{code};reason="{safe_detail(rejected)}";error_category="{category}"'
        return response
