"""Remote sessions to lab farms with the SharePoint cmdlets loaded, as the runbooks have them.

A fresh runspace on a farm does not know Get-SPFarm (the snap-in or module is not loaded: see
test_sharepoint_powershell.py). Tests that call SharePoint cmdlets directly load them first,
through the same :func:`runbooklib.sharepoint.ensure_sharepoint_shell` the runbooks' ``Farm`` uses.
"""

from __future__ import annotations

from typing import Any

from runbooklib.remote import RemoteConnections, RemoteSession
from runbooklib.sharepoint import ensure_sharepoint_shell


def open_sharepoint_session(target: Any, *, password: str) -> RemoteSession:
    """A new session to a farm, SharePoint cmdlets loaded."""
    session = RemoteSession.open(target, password=password)
    try:
        ensure_sharepoint_shell(session)
    except BaseException:
        session.close()
        raise
    return session


class SharePointConnections(RemoteConnections):
    """RemoteConnections whose sessions to SharePoint servers have the SharePoint cmdlets loaded
    (again after a lost session is replaced: a new runspace starts without them)."""

    def session(self, target: Any) -> RemoteSession:
        session = super().session(target)
        spec = self._target(target)
        if getattr(spec, "role", "sharepoint") == "sharepoint":
            ensure_sharepoint_shell(session)
        return session
