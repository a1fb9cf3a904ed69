"""The simulated Exchange organization's configuration, kept in one state file.

``state/exchange.json`` (the lab's :class:`~runbooklib.lab.store.StateStore`) holds what the
cmdlets read and change: the auth configuration with its Auth certificate and private key, the
partner applications with the certificates their metadata published when they were created or
last refreshed, the auth servers, the directory's users and mail users, and the management role
assignments. The initial state is what Exchange Setup leaves: a self-signed "Microsoft Exchange
Server Auth Certificate" as the current one, an empty realm, and the disabled "Exchange Online"
partner application with its linked account and roles.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..pki import KeyPair, new_signing_certificate
from ..store import StateStore
from . import texts as T

__all__ = ["ExchangeDefinition", "ExchangeStore", "initial_state", "key_pair_of", "new_user", "utc_text"]


SCHEMA = 1


def utc_text(moment: dt.datetime | None = None) -> str:
    return (moment or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class ExchangeDefinition:
    """One Exchange server and its organization: lab host name, Windows computer name, the
    organization's name and default accepted domain, and the names clients reach it by."""

    host: str = "exchange"
    computer: str = "EXCHANGE"
    organization: str = "Contoso"
    domain: str = "contoso.lab"
    public_names: tuple[str, ...] = ("mail.contoso.lab", "autodiscover.contoso.lab")

    @property
    def domain_controller(self) -> str:
        return f"DC01.{self.domain}"


def _pair_to_state(pair: KeyPair) -> dict[str, str]:
    return {"cert_pem": pair.cert_pem.decode(), "key_pem": pair.key_pem.decode()}


def key_pair_of(entry: dict[str, str]) -> KeyPair:
    """The certificate and key a state entry holds."""
    return KeyPair.from_pem(entry["cert_pem"], entry["key_pem"])


def new_user(definition_domain: str, name: str, *, recipient_type: str, external_email: str | None = None) -> dict[str, Any]:
    """A directory user (``User``, ``UserMailbox`` or ``MailUser``) as the state keeps it."""
    alias = name.replace(" ", "")
    return {
        "id": str(uuid.uuid4()),
        "name": name,
        "sam_account_name": alias[:20],
        "upn": f"{alias}@{definition_domain}",
        "sid": f"S-1-5-21-2127521184-1604012920-1887927527-{uuid.uuid4().int % 90000 + 10000}",
        "recipient_type": recipient_type,
        "external_email": external_email,
        "hidden": False,
    }


def initial_state(definition: ExchangeDefinition) -> dict[str, Any]:
    # [C] Setup's self-signed Auth certificate (five years [U]).
    auth = new_signing_certificate(T.AUTH_CERTIFICATE_SUBJECT,
                                   not_after=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=5 * 365))
    online_account = new_user(definition.domain, T.EXCHANGE_ONLINE_ACCOUNT, recipient_type="User")
    admin = new_user(definition.domain, "Administrator", recipient_type="UserMailbox")
    now = utc_text()
    return {
        "host": definition.host,
        "computer": definition.computer,
        "organization": definition.organization,
        "domain": definition.domain,
        "domain_controller": definition.domain_controller,
        "public_names": list(definition.public_names),
        "auth_config": {
            "current": _pair_to_state(auth),
            "previous": None,
            "next": None,
            "next_effective": None,
            "realm": "",   # [C] empty by default: the metadata then names the default accepted domain
            "service_name": T.EXCHANGE_PRINCIPAL_ID,
        },
        "partner_applications": [{
            "id": str(uuid.uuid4()), "name": T.EXCHANGE_ONLINE_APP,
            "application_identifier": T.EXCHANGE_PRINCIPAL_ID, "auth_metadata_url": None, "realm": "",
            "use_auth_server": True, "accept_sid": False, "enabled": False,
            "linked_account": online_account["id"], "certificates": [], "created": now, "changed": now,
        }],
        "auth_servers": [],
        "users": [admin, online_account],
        "role_assignments": [
            {"id": str(uuid.uuid4()), "name": f"{role}-{T.EXCHANGE_ONLINE_ACCOUNT}"[:64], "role": role,
             "user": online_account["id"], "enabled": True}
            for role in T.EXCHANGE_ONLINE_ROLES
        ],
    }


class ExchangeStore(StateStore):
    """The organization's state file (one lock rule, atomic 0600 writes, the initial state kept for reset)."""

    @classmethod
    def open(cls, path: Path, definition: ExchangeDefinition) -> "ExchangeStore":
        store = cls.load_schema(Path(path), lambda: initial_state(definition), schema=SCHEMA, what="Exchange organization")
        assert isinstance(store, ExchangeStore)
        return store
