"""Who is calling a lab WinRM endpoint: HTTP authentication as a Windows WinRM listener does it.

A listener accepts the schemes its service configuration enables (``winrm/config/service/auth``);
the lab names them as that configuration does:

* ``basic``: ``Authorization: Basic`` on each request, over HTTPS only (a listener with
  ``AllowUnencrypted=false``, the default, refuses it over HTTP);
* ``negotiate``: SPNEGO or raw NTLM in ``Authorization: Negotiate`` (pypsrp ``auth="ntlm"`` or
  ``"negotiate"``); the security context is bound to the TCP connection and, over HTTP, seals
  every message (:mod:`.sealing`);
* ``credssp``: ``Authorization: CredSSP`` (pypsrp ``auth="credssp"``); bound to the connection
  like NTLM, and the client delegates its credentials, so the server may use them for a second
  hop.

pyspnego is the acceptor for NTLM and CredSSP. It reads the accounts it accepts from the file
``NTLM_USER_FILE`` names; each endpoint writes its own (``DOMAIN:USER:PASSWORD`` lines, mode
0600, in a private directory) and points the variable at it only while one of its acceptors
steps, under one process-wide lock, so servers with different accounts never see each other's.

A refusal is ``401`` with one ``WWW-Authenticate`` header per enabled scheme, nothing else said,
as Windows answers a missing, unknown or wrong credential alike.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import os
import shutil
import tempfile
import threading
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal

import spnego
from spnego.exceptions import SpnegoError

from ...errors import InputError
from ..http import Request, Response
from .sealing import CREDSSP_PROTOCOL, SPNEGO_PROTOCOL

__all__ = [
    "AUTH_SCHEMES",
    "BASIC_REALM",
    "DEFAULT_AUTH",
    "AuthScheme",
    "Authenticated",
    "Authenticator",
    "Challenge",
    "Principal",
]

log = logging.getLogger(__name__)

AuthScheme = Literal["basic", "negotiate", "credssp"]
AUTH_SCHEMES: tuple[AuthScheme, ...] = ("negotiate", "basic", "credssp")  # the order offers are listed in
DEFAULT_AUTH: tuple[AuthScheme, ...] = ("basic",)
BASIC_REALM = "WSMAN"

# What a 401 offers for each scheme, one WWW-Authenticate header each.                      [U: order]
_OFFER = {"negotiate": "Negotiate", "basic": f'Basic realm="{BASIC_REALM}"', "credssp": "CredSSP"}
_HEADER_SCHEME = {"negotiate": "negotiate", "basic": "basic", "credssp": "credssp"}
_SEALING = {"negotiate": SPNEGO_PROTOCOL, "credssp": CREDSSP_PROTOCOL}
_STATE_KEY = "winrm.auth"
# pyspnego's NTLM acceptor reads this variable when it checks a response: see the module docstring.
_USER_FILE_VARIABLE = "NTLM_USER_FILE"
_acceptor_lock = threading.Lock()


@dataclass(frozen=True)
class Principal:
    """The account a request runs as.

    ``sealing`` is the message-encryption protocol of the connection's security context (None
    for Basic); ``delegated`` says the server holds the account's credentials (CredSSP), so a
    second hop from it works.
    """

    user: str
    scheme: AuthScheme
    delegated: bool = False
    sealing: str | None = None
    context: Any = None  # the pyspnego acceptor that seals and opens this connection's messages


@dataclass(frozen=True)
class Authenticated:
    """Authenticated as ``principal``; ``www_authenticate`` is a last handshake token for the answer."""

    principal: Principal
    www_authenticate: str | None = None


@dataclass(frozen=True)
class Challenge:
    """Not (yet) authenticated: answer with ``response`` (a 401, maybe carrying the next token)."""

    response: Response


@dataclass
class _Handshake:
    scheme: AuthScheme
    context: Any
    principal: Principal | None = None


class Authenticator:
    """The schemes one endpoint accepts, for its accounts (user name as clients send it → password)."""

    def __init__(self, *, server_name: str, schemes: Iterable[str], accounts: dict[str, str]) -> None:
        enabled = tuple(dict.fromkeys(s.lower() for s in schemes))
        unknown = [s for s in enabled if s not in AUTH_SCHEMES]
        if unknown or not enabled:
            raise InputError(f"{server_name}: WinRM authentication {', '.join(unknown) or '(none)'} is not one "
                             "the lab listener knows", hint="Use basic, negotiate and/or credssp.")
        self.server_name = server_name
        self.schemes: tuple[AuthScheme, ...] = tuple(s for s in AUTH_SCHEMES if s in enabled)
        self._accounts: dict[str, tuple[str, str]] = {}
        self._user_dir: Path | None = None
        self.set_accounts(accounts)

    def set_accounts(self, accounts: dict[str, str]) -> None:
        """Replace the accepted accounts (e.g. after a lab password rotation)."""
        self._accounts = {name.lower(): (name, password) for name, password in accounts.items()}
        if "negotiate" in self.schemes or "credssp" in self.schemes:
            self._write_user_file()

    def challenge(self) -> Response:
        """The 401 a request without acceptable credentials gets."""
        return Response(401, b"", {"WWW-Authenticate": [_OFFER[s] for s in self.schemes]})

    def authenticate(self, request: Request) -> Authenticated | Challenge:
        """The request's principal, or the 401 to answer (a refusal or the next handshake leg)."""
        scheme, _, token = (request.header("authorization") or "").strip().partition(" ")
        scheme = _HEADER_SCHEME.get(scheme.lower(), scheme.lower())
        handshake: _Handshake | None = request.connection.state.get(_STATE_KEY)  # type: ignore[assignment]
        if not scheme:
            # A connection-bound context vouches for every later request on its connection.
            if handshake is not None and handshake.principal is not None:
                return Authenticated(handshake.principal)
            return Challenge(self.challenge())
        if scheme not in self.schemes:
            log.info("%s: WinRM request refused: %s authentication is not enabled", self.server_name, scheme)
            return Challenge(self.challenge())
        if scheme == "basic":
            return self._basic(request, token)
        return self._step(request, scheme, token, handshake)

    # ------------------------------------------------------------------ Basic

    def _basic(self, request: Request, token: str) -> Authenticated | Challenge:
        if not request.connection.secure:
            log.info("%s: WinRM request refused: Basic over plain HTTP (unencrypted traffic is not allowed)",
                     self.server_name)
            return Challenge(self.challenge())
        try:
            user, sep, password = base64.b64decode(token.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            sep = ""
        if not sep:
            return self._refused("Basic", "malformed credentials")
        account = self._accounts.get(user.lower())
        # Compare even for an unknown user, so both refusals cost the same.
        expected = account[1] if account else "\0" * max(len(password), 1)
        matches = hmac.compare_digest(password.encode("utf-8"), expected.encode("utf-8"))
        if account is None or not matches:
            return self._refused("Basic", f"wrong user name or password for {user}")
        return Authenticated(Principal(user=account[0], scheme="basic"))

    # ------------------------------------------------------------------ NTLM / CredSSP

    def _step(self, request: Request, scheme: AuthScheme, token: str,
              handshake: _Handshake | None) -> Authenticated | Challenge:
        try:
            in_token = base64.b64decode(token.strip(), validate=True)
        except binascii.Error:
            return self._refused(scheme, "a token that is not base64")
        state = request.connection.state
        if handshake is None or handshake.principal is not None or handshake.scheme != scheme:
            # A new handshake on this connection replaces whatever context it had.
            handshake = _Handshake(scheme, None)
            state[_STATE_KEY] = handshake
        try:
            with self._acceptor():
                if handshake.context is None:
                    handshake.context = spnego.server(protocol="negotiate" if scheme == "negotiate" else "credssp")
                out_token = handshake.context.step(in_token)
        except (SpnegoError, ValueError, OSError) as exc:
            state.pop(_STATE_KEY, None)
            return self._refused(scheme, f"{type(exc).__name__}: {exc}")
        header = _OFFER[scheme].split(" ")[0]
        if not handshake.context.complete:
            if out_token is None:
                state.pop(_STATE_KEY, None)
                return self._refused(scheme, "the handshake ended without completing")
            if scheme == "credssp" and handshake.context.get_extra_info("auth_stage") == "Authentication failure":
                # CredSSP tells the client why in an error token; the handshake is over.
                state.pop(_STATE_KEY, None)
                log.info("%s: WinRM request refused: CredSSP authentication failed", self.server_name)
            return Challenge(Response(401, b"", {"WWW-Authenticate": f"{header} {_b64(out_token)}"}))
        principal = self._principal(handshake, scheme)
        if principal is None:
            state.pop(_STATE_KEY, None)
            return self._refused(scheme, f"{handshake.context.client_principal} has no account here")
        handshake.principal = principal
        log.debug("%s: %s authenticated %s", self.server_name, scheme, principal.user)
        # SPNEGO's last leg (its mechListMIC) travels on the successful answer.
        return Authenticated(principal, f"{header} {_b64(out_token)}" if out_token else None)

    def _principal(self, handshake: _Handshake, scheme: AuthScheme) -> Principal | None:
        context = handshake.context
        account = self._accounts.get((context.client_principal or "").lower())
        if account is None:
            return None
        delegated = scheme == "credssp" and context.get_extra_info("client_credential") is not None
        return Principal(user=account[0], scheme=scheme, delegated=delegated, sealing=_SEALING[scheme],
                         context=context)

    def _refused(self, scheme: str, why: str) -> Challenge:
        log.info("%s: WinRM request refused: %s authentication failed (%s)", self.server_name, scheme, why)
        return Challenge(self.challenge())

    # ------------------------------------------------------------------ the acceptors' account file

    def _write_user_file(self) -> None:
        lines = []
        for name, password in self._accounts.values():
            if any(c in password for c in ":\r\n") or any(c in name for c in ":\r\n"):
                raise InputError(f"{self.server_name}: the lab's NTLM account store cannot hold the account "
                                 f"{name}: its name or password contains ':' or a line break",
                                 hint="Give the lab account a password without ':' or line breaks.")
            domain, _, user = name.rpartition("\\")
            lines.append(f"{domain}:{user}:{password}\n")
        if self._user_dir is None:
            self._user_dir = Path(tempfile.mkdtemp(prefix="lab-winrm-users-"))  # mode 0700
            weakref.finalize(self, shutil.rmtree, self._user_dir, True)
        path = self._user_dir / "ntlm-users"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.writelines(lines)

    @contextmanager
    def _acceptor(self) -> Iterator[None]:
        assert self._user_dir is not None
        with _acceptor_lock:
            previous = os.environ.get(_USER_FILE_VARIABLE)
            os.environ[_USER_FILE_VARIABLE] = str(self._user_dir / "ntlm-users")
            try:
                yield
            finally:
                if previous is None:
                    os.environ.pop(_USER_FILE_VARIABLE, None)
                else:
                    os.environ[_USER_FILE_VARIABLE] = previous


def _b64(token: bytes) -> str:
    return base64.b64encode(token).decode("ascii")
