"""Identifiers Microsoft fixed once for every estate: first-party principal ids, the paths where
products publish their S2S JSON metadata, and the issuers whose names never depend on a realm.

Every other module takes these from here, so each is written down once
(sources: ``s2s-facts.md``, ``oos-commands.md``, the KB 4010011 script).
"""

from __future__ import annotations

__all__ = [
    "ACS_PRINCIPAL_ID",
    "ACS_STS_ISSUER_NAME",
    "EVOSTS_ISSUER_NAME",
    "EXCHANGE_CONFIGURATION",
    "EXCHANGE_METADATA_PATH",
    "EXCHANGE_PRINCIPAL_ID",
    "OOS_APP_ID",
    "OOS_SHAREPOINT_ISSUER",
    "OOS_SQL_ISSUER",
    "POWERSHELL_CONFIGURATION",
    "REALM_INDEPENDENT_ISSUER_NAMES",
    "REALM_INDEPENDENT_REGISTERED_NAMES",
    "SHAREPOINT_METADATA_PATH",
    "SHAREPOINT_PRINCIPAL_ID",
    "SKYPE_METADATA_PATH",
    "SKYPE_PRINCIPAL_ID",
    "WORKFLOW_PRINCIPAL_ID",
    "online_service_name",
]

# First-party principals: the same id in every tenant and every on-premises farm.
SHAREPOINT_PRINCIPAL_ID = "00000003-0000-0ff1-ce00-000000000000"
EXCHANGE_PRINCIPAL_ID = "00000002-0000-0ff1-ce00-000000000000"
SKYPE_PRINCIPAL_ID = "00000004-0000-0ff1-ce00-000000000000"
# The Entra ID trust broker (ACS); after the hybrid trust a farm's ACS issuer is
# ``<ACS_PRINCIPAL_ID>@<tenant id>``.
ACS_PRINCIPAL_ID = "00000001-0000-0000-c000-000000000000"
# Workflow Manager (unconfirmed: see the lab's SharePoint texts). Its pairing with a farm is
# renewed with Register-SPWorkflowService -Force, never by re-registering its app principal.
WORKFLOW_PRINCIPAL_ID = "00000005-0000-0000-c000-000000000000"

# PowerShell session configurations (the runspace a remote session opens): every Windows
# server's default, and Exchange's commands-only one at http(s)://<server>/PowerShell.
POWERSHELL_CONFIGURATION = "Microsoft.PowerShell"
EXCHANGE_CONFIGURATION = "Microsoft.Exchange"

# Where each product serves its S2S metadata document, below its own host.
SHAREPOINT_METADATA_PATH = "/_layouts/15/metadata/json/1"
EXCHANGE_METADATA_PATH = "/autodiscover/metadata/json/1"
SKYPE_METADATA_PATH = "/metadata/json/1"

# Office Online Server signs as the "Microsoft Office Web Apps Service" first-party app, in two
# fixed realms of its own: one for SharePoint, one for SQL Server.
OOS_APP_ID = "67e3df25-268a-4324-a550-0de1c7f97287"
OOS_SHAREPOINT_ISSUER = f"{OOS_APP_ID}@bd2372e4-0a11-495c-9541-8377c6def195"
OOS_SQL_ISSUER = f"{OOS_APP_ID}@ffab2d74-c6ae-4375-819a-8555d49b699a"

# Issuers that Microsoft's own realm-change script (KB 4010011) leaves alone.
EVOSTS_ISSUER_NAME = "EvoSTS-Trust"
ACS_STS_ISSUER_NAME = "ACS_STS"
REALM_INDEPENDENT_ISSUER_NAMES = frozenset({EVOSTS_ISSUER_NAME.lower(), ACS_STS_ISSUER_NAME.lower()})
REALM_INDEPENDENT_REGISTERED_NAMES = frozenset({OOS_SHAREPOINT_ISSUER, OOS_SQL_ISSUER})

_ONLINE_SERVICES = {
    SHAREPOINT_PRINCIPAL_ID: "SharePoint Online",
    EXCHANGE_PRINCIPAL_ID: "Exchange Online",
    SKYPE_PRINCIPAL_ID: "Skype for Business Online",
}


def online_service_name(app_id: str) -> str | None:
    """The Microsoft 365 service a first-party principal stands for, or None for any other app."""
    return _ONLINE_SERVICES.get(app_id.lower())
