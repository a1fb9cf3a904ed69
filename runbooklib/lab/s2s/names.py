"""The ``<id>@<realm>`` names S2S gives principals and issuers, split the way the products do.

The lab keeps its own reading rather than importing ``runbooklib.principal_names``: the servers
and their token judges must not share code with the runbooks they are testing, or a mistake in
one would be agreed with by the other.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["PrincipalName", "split_principal_name"]


class PrincipalName(NamedTuple):
    """The two halves of ``<id>@<realm>``; ``realm`` is empty when the name has no ``@``."""

    id: str
    realm: str


def split_principal_name(name: str, *, lower: bool = False) -> PrincipalName:
    """Split ``name`` at its last ``@`` (the realm never holds one); ``lower`` folds the case,
    since products compare these names without it."""
    if lower:
        name = name.lower()
    principal_id, at, realm = name.rpartition("@")
    return PrincipalName(principal_id, realm) if at else PrincipalName(name, "")
