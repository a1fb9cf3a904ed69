"""The product layer's shared parts: the session base every product client stands on, the
well-known ids, and the farm's realm rule for issuers that never follow it."""

from __future__ import annotations

from typing import Any

import pytest

from runbooklib.errors import RemoteError
from runbooklib.product import ProductClient, ShellLoader, as_bool, as_text
from runbooklib.remote import CommandResult
from runbooklib.sharepoint import TrustedIssuer
from runbooklib.sharepoint_trust import follows_farm_realm
from runbooklib.wellknown import OOS_SHAREPOINT_ISSUER, OOS_SQL_ISSUER

OFFICE_WEB_APPS = ShellLoader(template="officewebapps/load-officewebapps", product="Office Online Server PowerShell",
                              refusal="OfficeWebApps is not installed",
                              fix="Check that {server} is an Office Online Server of the farm.")


class OfficeWebAppsFarm(ProductClient):
    """As small as the next product client is meant to be."""

    loader = OFFICE_WEB_APPS

    def farm_url(self) -> str:
        return as_text(self._run("Get-OfficeWebAppsFarm")[0]["InternalURL"])


class ExchangeServer(ProductClient):
    """A commands-only endpoint: nothing to load."""

    def is_edge(self) -> bool:
        return as_bool(self._run("Get-ExchangeServer", Identity=self.name)[0]["IsEdgeServer"])


class RecordingSession:
    """A session double that records what was sent and answers from a table."""

    def __init__(self, answers: dict[str, Any], *, refuse_load: str | None = None) -> None:
        self.answers = answers
        self.refuse_load = refuse_load
        self.sent: list[tuple[str, dict[str, Any] | None]] = []
        self.state: dict[str, Any] = {}

    def invoke(self, cmdlet: str, parameters: dict[str, Any] | None = None) -> CommandResult:
        self.sent.append((cmdlet, parameters))
        return CommandResult(output=[self.answers[cmdlet]])

    def invoke_template(self, name: str, parameters: dict[str, Any] | None = None) -> CommandResult:
        self.sent.append((name, parameters))
        if self.refuse_load:
            raise RemoteError(f"template {name} failed", reason=self.refuse_load, cmdlet=name)
        return CommandResult(output=[{"Loaded": "module", "Version": "16.0.10417.20000"}])


def test_a_product_loads_its_cmdlets_once_per_session_for_every_client_of_it() -> None:
    session = RecordingSession({"Get-OfficeWebAppsFarm": {"InternalURL": "https://oos.contoso.lab"}})
    first, second = OfficeWebAppsFarm(session, name="oos-a"), OfficeWebAppsFarm(session, name="oos-a")
    assert first.farm_url() == second.farm_url() == "https://oos.contoso.lab"
    assert [name for name, _ in session.sent] == [OFFICE_WEB_APPS.template, "Get-OfficeWebAppsFarm",
                                                  "Get-OfficeWebAppsFarm"]
    assert first.shell().loaded == "module" and first.shell().version == "16.0.10417.20000"


def test_a_product_without_a_loader_sends_only_its_commands() -> None:
    session = RecordingSession({"Get-ExchangeServer": {"IsEdgeServer": "False"}})
    exchange = ExchangeServer(session, name="ex-a")
    assert exchange.shell() is None and exchange.is_edge() is False
    assert session.sent == [("Get-ExchangeServer", {"Identity": "ex-a"})]


def test_a_server_without_the_product_is_named_with_the_fix() -> None:
    session = RecordingSession({}, refuse_load="OfficeWebApps is not installed on this server")
    with pytest.raises(RemoteError) as caught:
        OfficeWebAppsFarm(session, name="sp-a").farm_url()
    assert str(caught.value).startswith("sp-a: the Office Online Server PowerShell cmdlets could not be loaded")
    assert caught.value.hint == "Check that sp-a is an Office Online Server of the farm."
    assert caught.value.target == "sp-a"


@pytest.mark.parametrize("name, registered, follows", [
    ("Contoso Expenses add-in", "8c1e6d2a-5b3f-4e7a-9d10-6f2b4a8c3e57@6c3f0000-0000-0000-0000-000000000001", True),
    ("Office Online Server", OOS_SHAREPOINT_ISSUER, False),
    ("Office Online Server (SQL)", OOS_SQL_ISSUER.upper(), False),
    ("EvoSTS-Trust", "00000001-0000-0000-c000-000000000000@6c3f0000-0000-0000-0000-000000000001", False),
    ("acs_sts", "00000001-0000-0000-c000-000000000000@6c3f0000-0000-0000-0000-000000000001", False),
    ("Any realm", "11111111-2222-3333-4444-555555555555@*", False),
])
def test_only_issuers_named_in_the_farm_realm_follow_it(name: str, registered: str, follows: bool) -> None:
    issuer = TrustedIssuer(name=name, registered_issuer_name=registered, is_self_issuer=True, metadata_endpoint=None)
    assert follows_farm_realm(issuer) is follows


def test_a_metadata_issuer_never_follows_the_farm_realm() -> None:
    issuer = TrustedIssuer(name="ACS", registered_issuer_name="00000001-0000-0000-c000-000000000000@t",
                           is_self_issuer=False, metadata_endpoint="https://accounts.example/metadata/json/1")
    assert follows_farm_realm(issuer) is False
