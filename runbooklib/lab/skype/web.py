"""A simulated front end's web endpoints: the pool's S2S metadata and the inbound token check.

``/metadata/json/1``
    the pool's JSON metadata (:meth:`~.frontend.FrontEnd.metadata_document`): issuer
    ``00000004-0000-0ff1-ce00-000000000000@<realm>`` and the OAuthTokenIssuer certificate(s)
    this front end holds. Anonymous, as partners download it.
``/ucwa/oauth/v1/applications`` [U]
    where a partner (Exchange, SharePoint) calls the pool with an S2S token. Without a token:
    a Bearer challenge naming the pool's realm. A token is accepted only when its issuer is an
    enabled partner application and the certificate that application's metadata carried signed
    it (:meth:`~.frontend.FrontEnd.judge`); a refusal is a 401 with ``x-ms-diagnostics`` and
    ``X-Lab-S2S-Reason``, acceptance a 200 naming who called.
"""

from __future__ import annotations

import logging

from ..http import LabServer, Request, Response
from ..s2s import oracle
from ..s2s.receiver import REASON_HEADER, bearer_token, diagnostics
from . import texts as T
from .frontend import FrontEnd

__all__ = ["FrontEndWeb"]

log = logging.getLogger(__name__)

# [U] x-ms-diagnostics codes of the pool's refusals (the 2800x family is seen from SfB web services).
_DIAG_CODES = {"no_token": 28000, "malformed": 28001, "unknown_issuer": 28032, "unknown_x5t": 28033,
               "bad_signature": 28033, "expired": 28034, "not_yet_valid": 28034, "wrong_audience": 28035,
               "realm_mismatch": 28035, "wrong_nameid": 28036, "app_only_not_allowed": 28037}


class FrontEndWeb:
    """The web routes of one front end."""

    def __init__(self, fe: FrontEnd) -> None:
        self.fe = fe

    def mount(self, server: LabServer) -> None:
        server.mount(T.METADATA_PATH, self.serve_metadata)
        server.mount(T.OAUTH_ENDPOINT, self.serve_oauth)

    def serve_metadata(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return Response.text("405 METHOD NOT ALLOWED", status=405)
        if request.path.lower().rstrip("/") != T.METADATA_PATH:
            return Response.text("404 NOT FOUND", status=404)
        return Response.json(self.fe.metadata_document(request.server_url.rstrip("/") + request.path))

    def serve_oauth(self, request: Request) -> Response:
        with self.fe.store.view() as state:
            realm = self.fe.realm(state)
        try:
            accepted = self.fe.judge(bearer_token(request), host=request.header("host"))
        except oracle.Rejected as exc:
            if exc.reason != "no_token":
                log.info("%s: refused S2S token (%s): %s", self.fe.host, exc.reason, exc.detail)
            response = Response.text("401 UNAUTHORIZED", status=401)
            response.headers["WWW-Authenticate"] = (f'Bearer realm="{realm}", '
                                                    f'client_id="{T.SKYPE_PRINCIPAL_ID}"')
            response.headers[REASON_HEADER] = exc.reason
            if exc.reason != "no_token":
                response.headers["x-ms-diagnostics"] = diagnostics(exc, _DIAG_CODES)
            return response
        return Response.json({"issuer": accepted.issuer, "nameid": accepted.nameid, "user": accepted.user,
                              "realm": realm, "frontEnd": self.fe.host})
