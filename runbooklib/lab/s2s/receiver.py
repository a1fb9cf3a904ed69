"""The HTTP half of an S2S receiver, shared by every lab product that judges bearer tokens.

A receiving product (a SharePoint farm's web endpoints, SharePoint Online; Exchange and Skype
for Business next) takes the bearer token of a request (:func:`bearer_token`), judges it with
:mod:`.oracle` and its own rules, and refuses with a 401 or 403 carrying its Bearer challenge,
an ``x-ms-diagnostics`` header (:func:`diagnostics`: a product's code for the reason, the reason
in words) and :data:`REASON_HEADER`, the machine-readable reason tests and diagnosis read.
"""

from __future__ import annotations

from typing import Mapping

from ..http import Request
from .oracle import Rejected

__all__ = ["GENERAL_FAILURE", "REASON_HEADER", "bearer_token", "diagnostics", "safe_detail"]

REASON_HEADER = "X-Lab-S2S-Reason"
# The x-ms-diagnostics code of a reason a product has no code for (SharePoint's general failure).
GENERAL_FAILURE = 3001000


def bearer_token(request: Request) -> str:
    """The token of ``Authorization: Bearer <token>``; '' when there is none (a realm discovery probe)."""
    auth = request.header("authorization") or ""
    return auth[6:].strip() if auth[:6].lower() == "bearer" else ""


def diagnostics(rejected: Rejected, codes: Mapping[str, int]) -> str:
    """The ``x-ms-diagnostics`` value refusing a token: ``<code>;reason="<detail>";category="invalid_client"``."""
    code = codes.get(rejected.reason, GENERAL_FAILURE)
    return f'{code};reason="{safe_detail(rejected)}";category="invalid_client"'


def safe_detail(rejected: Rejected) -> str:
    """The refusal in words, fit for a quoted header value."""
    return rejected.detail.replace('"', "'")
