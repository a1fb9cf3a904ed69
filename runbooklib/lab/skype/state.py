"""A simulated Skype for Business pool's configuration and the state file its front ends share.

The pool is one JSON document (``state/skype.json``) kept by the lab's
:class:`~runbooklib.lab.store.StateStore`:

* ``pool``: its FQDN, default SIP domain, web services names and the users homed on it;
* ``global``: what the Central Management Store replicates to every front end — the OAuth
  configuration, the OAuthTokenIssuer assignment (current, previous, and a rolled one waiting
  for its effective date), partner applications and OAuth servers;
* ``machines``: per front end, its LocalMachine\\My store (certificates with their keys) and
  its local certificate assignments (Default, WebServicesInternal, WebServicesExternal).

Each front end seeds its own Default certificate and a copy of the pool's OAuth certificate
(subject the SIP domain, not yet assigned): the runbook assigns it.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization

from ..pki import KeyPair, new_signing_certificate
from ..store import StateStore
from . import texts as T

__all__ = ["FrontEndDefinition", "PoolDefinition", "SkypeStore", "certificate_entry", "initial_state", "utc_text"]

log = logging.getLogger(__name__)

SCHEMA = 1


def utc_text(moment: dt.datetime) -> str:
    """A moment as the state file keeps it (ISO 8601, UTC, microseconds)."""
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")


def certificate_entry(pair: KeyPair, friendly_name: str) -> dict[str, Any]:
    """A LocalMachine\\My entry: the certificate, its friendly name and its private key."""
    return {
        "thumbprint": pair.certificate.fingerprint(hashes.SHA1()).hex().upper(),  # noqa: S303 - Windows' thumbprint
        "friendly_name": friendly_name,
        "cert_pem": pair.cert_pem.decode(),
        "key_pem": pair.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()).decode(),
    }


@dataclass(frozen=True)
class FrontEndDefinition:
    """One front end: its lab host name and its computer's FQDN."""

    host: str
    fqdn: str


@dataclass(frozen=True)
class PoolDefinition:
    front_ends: tuple[FrontEndDefinition, ...]
    fqdn: str = "pool01.contoso.lab"
    sip_domain: str = "contoso.lab"
    external_web_fqdn: str = "webext.contoso.lab"
    users: tuple[str, ...] = ("alice", "bob")

    @classmethod
    def preset(cls) -> "PoolDefinition":
        """The lab's pool: ``skype-fe1`` and ``skype-fe2``."""
        return cls(front_ends=(FrontEndDefinition("skype-fe1", "skype-fe1.contoso.lab"),
                               FrontEndDefinition("skype-fe2", "skype-fe2.contoso.lab")))


def initial_state(definition: PoolDefinition) -> dict[str, Any]:
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=30)
    end = start + dt.timedelta(days=2 * 365)
    # The SIP domain is the OAuth certificate's subject (SFB-PLAN): one copy on every front end.
    oauth = certificate_entry(new_signing_certificate(definition.sip_domain, not_before=start, not_after=end), "OAuth")
    machines = {}
    for fe in definition.front_ends:
        default = certificate_entry(new_signing_certificate(fe.fqdn, not_before=start, not_after=end), "Default")
        machines[fe.host] = {
            "fqdn": fe.fqdn,
            "store": [default, copy.deepcopy(oauth)],
            "assigned": {use: default["thumbprint"] for use in ("Default", "WebServicesInternal", "WebServicesExternal")},
        }
    return {
        "pool": {
            "fqdn": definition.fqdn,
            "sip_domain": definition.sip_domain,
            "external_web_fqdn": definition.external_web_fqdn,
            "users": [{"sip": f"sip:{u}@{definition.sip_domain}", "smtp": f"{u}@{definition.sip_domain}"}
                      for u in definition.users],
        },
        "global": {
            "oauth": dict(T.INITIAL_OAUTH),
            "oauth_certificate": {"current": None, "previous": None, "next": None},
            "partner_applications": [],
            "oauth_servers": [],
        },
        "machines": machines,
    }


class SkypeStore(StateStore):
    """The pool's state file (one lock rule, atomic 0600 writes, the initial state kept for reset)."""

    @classmethod
    def open(cls, path: Path, definition: PoolDefinition) -> "SkypeStore":
        def create() -> dict[str, Any]:
            first = initial_state(definition)
            log.info("created Skype for Business pool state at %s", path)
            return {"schema": SCHEMA, "initial": first, "current": copy.deepcopy(first)}

        def upgrade(doc: dict[str, Any]) -> bool:
            if doc.get("schema") != SCHEMA:
                raise ValueError(f"{path}: unsupported lab state schema {doc.get('schema')!r}; "
                                 "delete the lab directory or run `runbook lab reset`")
            return False

        store = cls.load(Path(path), create, upgrade=upgrade)
        assert isinstance(store, SkypeStore)
        return store
