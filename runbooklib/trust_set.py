"""Who must trust whom: the one-way S2S trusts that SharePoint farms and their partners imply.

A server-to-server trust is one-way. A farm that must *accept* requests from a partner (another
farm, Exchange, Skype for Business) is configured to trust that partner: an incoming trust on the
farm, an outgoing one from the partner's side. A runbook's parameters say, for each farm, whose
requests it accepts; :func:`trust_set` turns that into :class:`Trust` rows, each with the
partner's metadata endpoint, and :class:`TrustSet` shows them as a table.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence

from .errors import InputError
from .wellknown import (
    EXCHANGE_METADATA_PATH,
    EXCHANGE_PRINCIPAL_ID,
    SHAREPOINT_METADATA_PATH,
    SHAREPOINT_PRINCIPAL_ID,
    SKYPE_METADATA_PATH,
    SKYPE_PRINCIPAL_ID,
)

if TYPE_CHECKING:
    from .inventory import Inventory

__all__ = ["PARTNER_KINDS", "PartnerKind", "Trust", "TrustSet", "trust_set"]

ROOT_CERTIFICATE_SUFFIX = "/rootcertificate"


@dataclass(frozen=True)
class PartnerKind:
    """What a farm needs to know to trust a partner of one role.

    ``scope``/``right``/``app_only``: the app principal permission the farm grants the partner.
    """

    role: str
    title: str
    principal_id: str
    metadata_path: str
    publishes_root_certificate: bool
    scope: str
    right: str
    app_only: bool = False


PARTNER_KINDS: dict[str, PartnerKind] = {
    # SharePointDsc's SPRemoteFarmTrust: issuer and root authority from the farm's metadata,
    # FullControl at SiteCollection scope (s2s-facts.md) [C].
    "sharepoint": PartnerKind("sharepoint", "SharePoint farm", SHAREPOINT_PRINCIPAL_ID, SHAREPOINT_METADATA_PATH,
                              publishes_root_certificate=True, scope="SiteCollection", right="FullControl"),
    # Exchange site mailboxes: FullControl tenant-wide with the app-only policy [C]; a
    # …/rootcertificate endpoint of Exchange is not documented [U], so none is registered.
    "exchange": PartnerKind("exchange", "Exchange server", EXCHANGE_PRINCIPAL_ID, EXCHANGE_METADATA_PATH,
                            publishes_root_certificate=False, scope="SiteSubscription", right="FullControl",
                            app_only=True),
    # Skype for Business calling SharePoint: the right it needs is not documented here [U].
    "skype": PartnerKind("skype", "Skype for Business pool", SKYPE_PRINCIPAL_ID, SKYPE_METADATA_PATH,
                         publishes_root_certificate=False, scope="SiteSubscription", right="FullControl"),
}


@dataclass(frozen=True)
class Trust:
    """One one-way trust: ``receiver`` (a farm) accepts S2S requests from ``sender``."""

    receiver: str
    sender: str
    kind: PartnerKind
    metadata_url: str

    @property
    def label(self) -> str:
        return f"{self.receiver} ← {self.sender}"

    @property
    def root_certificate_url(self) -> str | None:
        """Where the partner publishes its root certificate, or None when it publishes none."""
        if not self.kind.publishes_root_certificate:
            return None
        return self.metadata_url.rstrip("/") + ROOT_CERTIFICATE_SUFFIX

    def describe(self) -> dict[str, str]:
        return {"incoming_to": self.receiver, "outgoing_from": self.sender, "partner": self.kind.title,
                "metadata": self.metadata_url}


@dataclass(frozen=True)
class TrustSet:
    """The one-way trusts of a run, in the order the parameters list them."""

    trusts: tuple[Trust, ...]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.trusts)

    def __len__(self) -> int:
        return len(self.trusts)

    def receivers(self) -> list[str]:
        return list(dict.fromkeys(t.receiver for t in self.trusts))

    def rows(self) -> list[tuple[str, str, str, str, str]]:
        """(trust, outgoing from, incoming to, configured on, partner metadata) per trust."""
        return [(t.label, f"{t.sender} ({t.kind.title})", t.receiver, t.receiver, t.metadata_url)
                for t in self.trusts]

    _HEADER = ("one-way trust", "outgoing from", "incoming to", "configured on", "partner metadata")

    def __str__(self) -> str:
        rows = [self._HEADER, *self.rows()]
        widths = [max(len(r[i]) for r in rows) for i in range(len(self._HEADER))]
        return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)

    def _repr_pretty_(self, p, cycle) -> None:  # type: ignore[no-untyped-def]
        p.text(str(self))

    def _repr_html_(self) -> str:
        cell = "style='text-align:left;vertical-align:top'"
        head = "".join(f"<th {cell}>{h}</th>" for h in self._HEADER)
        body = "".join("<tr>" + "".join(f"<td {cell}>{html.escape(c)}</td>" for c in row) + "</tr>"
                       for row in self.rows())
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def trust_set(accepts: Mapping[str, Sequence[str]], inventory: Inventory, *,
              metadata_urls: Mapping[str, str] | None = None, source: str = "parameters") -> TrustSet:
    """The trusts ``accepts`` (farm → the servers whose requests it accepts) implies.

    A partner's metadata endpoint is ``metadata_urls[partner]`` when given, else its inventory
    ``web_url`` with its role's metadata path. Raises :class:`InputError` naming the field for a
    farm that trusts itself, a partner of a role that issues no S2S tokens to farms, or a partner
    with no address.
    """
    overrides = dict(metadata_urls or {})
    trusts = []
    for receiver, senders in accepts.items():
        for i, sender in enumerate(senders):
            where = f"accepts.{receiver}[{i}]"
            if sender == receiver:
                raise InputError(f"{receiver} is listed as accepting its own requests", source=source, field=where,
                                 hint="A farm trusts itself already; list only its partners.")
            server = inventory.servers.get(sender)
            if server is None:
                raise InputError(f"no server named {sender!r} in the inventory", source=source, field=where,
                                 hint=f"Known servers: {', '.join(sorted(inventory.servers)) or 'none'}.")
            kind = PARTNER_KINDS.get(server.role)
            if kind is None:
                raise InputError(f"{sender} has role {server.role}, which sends no S2S requests to a farm",
                                 source=source, field=where,
                                 hint=f"Partners are servers of role {', '.join(sorted(PARTNER_KINDS))}.")
            url = overrides.get(sender)
            if url is None:
                if not server.web_url:
                    raise InputError(f"{sender} has no web_url in the inventory, so its metadata endpoint is unknown",
                                     source=source, field=where,
                                     hint=f"Add web_url to {sender} in the inventory, or set metadata_urls.{sender} "
                                          f"to its metadata endpoint (…{kind.metadata_path}).")
                url = server.web_url.rstrip("/") + kind.metadata_path
            trusts.append(Trust(receiver, sender, kind, url))
    return TrustSet(tuple(trusts))
