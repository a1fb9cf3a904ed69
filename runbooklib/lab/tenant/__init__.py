"""The lab's Microsoft 365 tenant (``contoso``).

=====================  ==========================================================================
:mod:`.tenant`         :class:`Tenant` over its state directory: Entra ID, ACS metadata, token endpoint
:mod:`.directory`      well-known principal ids, service principals and their keys, SPN coverage
:mod:`.graph`          the Microsoft Graph v1.0 subset the runbooks use
:mod:`.spo`            SharePoint Online: the S2S receiver that proves a hybrid trust works
:mod:`.product`        how the estate starts, resets and lists the tenant
=====================  ==========================================================================
"""

from .directory import (
    ACS_PRINCIPAL_ID,
    EXCHANGE_PRINCIPAL_ID,
    GRAPH_RESOURCE,
    SKYPE_PRINCIPAL_ID,
    SPO_PRINCIPAL_ID,
)
from .tenant import AcsRefused, AppCredentials, Tenant

__all__ = [
    "ACS_PRINCIPAL_ID",
    "EXCHANGE_PRINCIPAL_ID",
    "GRAPH_RESOURCE",
    "SKYPE_PRINCIPAL_ID",
    "SPO_PRINCIPAL_ID",
    "AcsRefused",
    "AppCredentials",
    "Tenant",
]
