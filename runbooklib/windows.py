"""What the runbooks ask any Windows server about itself, whatever product it runs.

:func:`computer_domain` reads, through the server's remote session, the Active Directory
domain and forest the computer is joined to (template ``windows/get-computer-domain``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import RemoteError
from .product import as_text

__all__ = ["ComputerDomain", "computer_domain"]

COMPUTER_DOMAIN_TEMPLATE = "windows/get-computer-domain"


@dataclass(frozen=True)
class ComputerDomain:
    """A computer's name and the domain and forest it is joined to (lower case)."""

    computer: str
    domain: str
    forest: str


def computer_domain(session: Any, *, name: str) -> ComputerDomain:
    """The domain and forest of the server behind ``session`` (inventory name ``name``)."""
    rows = list(session.invoke_template(COMPUTER_DOMAIN_TEMPLATE).output)
    if not rows:
        raise RemoteError(f"{name}: the computer's domain could not be read",
                          hint=f"Check that {name} is joined to an Active Directory domain.", target=name)
    row = rows[-1]
    return ComputerDomain(as_text(row.get("ComputerName")), as_text(row.get("Domain")).lower(),
                          as_text(row.get("Forest")).lower())
