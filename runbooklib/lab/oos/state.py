"""A simulated Office Online Server farm's configuration and the state file its servers share.

The farm is one JSON document (``state/oos.json``) kept by the lab's
:class:`~runbooklib.lab.store.StateStore`: the farm's settings (what Set-OfficeWebAppsFarm
changes, pushed to every member as the master does) and, per machine, what only that server
holds — its certificate stores with their private keys and key ACLs, the forest it is joined
to, and when IIS last started. Every server of the farm opens the same document.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..store import StateStore
from . import texts as T

__all__ = ["OosFarmDefinition", "OosMachineDefinition", "OosStore", "initial_state", "utc_text"]


SCHEMA = 1
KeyProvider = Literal["cng", "csp"]


def utc_text(moment: dt.datetime) -> str:
    """A moment as the state file keeps it (ISO 8601, UTC, microseconds)."""
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class OosMachineDefinition:
    """One farm member: its lab host name, Windows computer name, domain and forest, and the key
    storage provider a PFX import puts its private key in (CNG or the legacy CryptoAPI CSP)."""

    host: str
    computer: str
    key_provider: KeyProvider = "cng"
    domain: str = "contoso.lab"
    forest: str = "contoso.lab"


@dataclass(frozen=True)
class OosFarmDefinition:
    machines: tuple[OosMachineDefinition, ...]
    internal_url: str = "https://oos.contoso.lab/"

    @classmethod
    def preset(cls) -> "OosFarmDefinition":
        """The lab's farm: ``oos-1`` (keys in CNG) and ``oos-2`` (keys in the legacy CSP folder)."""
        return cls(machines=(OosMachineDefinition("oos-1", "OOS-1", "cng"),
                             OosMachineDefinition("oos-2", "OOS-2", "csp")))


def initial_state(definition: OosFarmDefinition) -> dict[str, Any]:
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
    return {
        "farm": {
            # Get-OfficeWebAppsFarm's settings the runbooks read; [C] names, [C] unset S2S is "".
            "InternalURL": definition.internal_url,
            "ExternalURL": None,
            "AllowHTTP": False,
            "AllowOutboundHttp": False,
            "SSLOffloaded": False,
            "CertificateName": "OOS TLS",
            "S2SCertificateName": "",
            "EditingEnabled": True,
            "AllowHttpSecureStoreConnections": False,
            "master": definition.machines[0].computer,
            "settings_written": utc_text(now),
        },
        "machines": {
            m.host: {
                "computer": m.computer,
                "domain": m.domain,
                "forest": m.forest,
                "key_provider": m.key_provider,
                "iis_started": utc_text(now + dt.timedelta(minutes=5)),
                "stores": {store: [] for store in T.STORES},
            }
            for m in definition.machines
        },
    }


class OosStore(StateStore):
    """The farm's state file (one lock rule, atomic 0600 writes, the initial state kept for reset)."""

    @classmethod
    def open(cls, path: Path, definition: OosFarmDefinition) -> "OosStore":
        store = cls.load_schema(Path(path), lambda: initial_state(definition), schema=SCHEMA, what="Office Online Server farm")
        assert isinstance(store, OosStore)
        return store
