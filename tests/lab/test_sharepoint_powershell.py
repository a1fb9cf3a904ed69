"""A remote session to a farm starts without the SharePoint cmdlets, as on a real server: the
snap-in (2013–2019) or module (Subscription Edition) must be loaded into each runspace, and the
runbooks' Farm client does so once per session. Real pypsrp against the lab endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from invocation_harness import run
from winrm_fixtures import Target, not_recognized
from runbooklib.errors import RemoteError
from runbooklib.lab.http import LabServer
from runbooklib.lab.pki import LabCA
from runbooklib.lab.sharepoint import FarmDefinition, SharePointFarm
from runbooklib.lab.sharepoint import texts as SPT
from runbooklib.lab.sharepoint.operations import FarmOperations
from runbooklib.lab.sharepoint.state import FarmStore
from runbooklib.lab.sharepoint.templates import (
    LOAD_TEMPLATE,
    PLAIN_POWERSHELL_TEMPLATES,
    TEMPLATE_PARAMETERS,
    register_templates,
)
from runbooklib.lab.sharepoint.product import FARM_LISTENER_AUTH
from runbooklib.lab.winrm.api import CommandTable
from runbooklib.lab.winrm.dispatch import first_command_of
from runbooklib.lab.winrm.endpoint import WinRMEndpoint
from runbooklib.remote import RemoteSession
from runbooklib.sharepoint import Farm, ensure_sharepoint_shell

USER, PASSWORD = "LAB\\spadmin", "sp lab password 1!"
SNAPIN, MODULE = "Microsoft.SharePoint.PowerShell", "SharePointServer"
TEMPLATES = Path(__file__).resolve().parents[2] / "runbooklib" / "templates" / "sharepoint"


@dataclass
class Served:
    farm: SharePointFarm
    server: LabServer
    endpoint: WinRMEndpoint
    target: Target

    def fresh(self) -> RemoteSession:
        """A new runspace pool: nothing loaded."""
        return RemoteSession.open(self.target, password=PASSWORD)


@pytest.fixture(scope="module")
def farms(tmp_path_factory) -> dict[str, Served]:
    """sp-a (SharePoint Server 2019) and sp-b (Subscription Edition), each behind its own endpoint.
    Tests here only read farm state, so the farms are shared by the module."""
    base = tmp_path_factory.mktemp("sp-powershell")
    ca = LabCA.open(base / "ca")
    served: dict[str, Served] = {}
    for name in ("sp-a", "sp-b"):
        farm = SharePointFarm.open(base / f"{name}.json", FarmDefinition.preset(name))
        server = LabServer(name, ca.issue_server_certificate(["127.0.0.1"]), cert_dir=base / "tls")
        endpoint = WinRMEndpoint(server_name=name, commands=farm.commands, accounts={USER: PASSWORD},
                                 auth=FARM_LISTENER_AUTH)
        endpoint.mount(server)
        server.start()
        served[name] = Served(farm, server, endpoint, Target(name, f"{server.url}/wsman", "credssp", USER,
                                                                ca.bundle_path))
    yield served
    for s in served.values():
        s.server.stop()


# ------------------------------------------------------------------------------ a fresh runspace

def test_a_fresh_runspace_does_not_know_the_sharepoint_cmdlets(farms):
    for name in ("sp-a", "sp-b"):
        with farms[name].fresh() as session:
            with pytest.raises(RemoteError) as failure:
                session.invoke("Get-SPFarm")
            assert failure.value.reason == not_recognized("Get-SPFarm")
            assert (failure.value.error_id, failure.value.category) == ("CommandNotFoundException", "ObjectNotFound")
            assert "snap-in" in str(failure.value)  # remote.py's hint names what to check

            looked_up = session.invoke("Get-Command", {"Name": "Get-SPFarm"})  # non-terminating
            assert looked_up.output == []
            [error] = looked_up.errors
            assert error.message == not_recognized("Get-SPFarm")
            assert error.fully_qualified_error_id == "CommandNotFoundException,Microsoft.PowerShell.Commands.GetCommandCommand"
            assert error.category == "ObjectNotFound"


def test_a_template_fails_at_the_first_sharepoint_cmdlet_its_script_calls_and_changes_nothing(farms):
    served = farms["sp-a"]
    before = served.farm.snapshot()
    with served.fresh() as session:
        with pytest.raises(RemoteError) as failure:
            session.invoke_template("sharepoint/set-oauth-over-http", {"Enabled": True})
        assert failure.value.reason == not_recognized("Get-SPSecurityTokenServiceConfig")
        with pytest.raises(RemoteError) as failure:
            session.invoke_template("sharepoint/register-app-principal", {
                "Site": "https://sharepoint.contoso.lab", "NameIdentifier": "x@y", "DisplayName": "x"})
        assert failure.value.reason == not_recognized("Get-SPSite")
        # Binding comes first, as for any script: a missing mandatory parameter is still that error.
        with pytest.raises(RemoteError, match="missing mandatory parameters: Enabled"):
            session.invoke_template("sharepoint/set-oauth-over-http")
    assert served.farm.snapshot() == before


# ------------------------------------------------------------------------------ 2013/2016/2019: the snap-in

def test_add_pssnapin_loads_the_cmdlets_into_that_runspace_only(farms):
    served = farms["sp-a"]
    with served.fresh() as first, served.fresh() as second:
        added = first.invoke("Add-PSSnapin", {"Name": SNAPIN})
        assert added.output == [] and added.errors == []
        [farm] = first.invoke("Get-SPFarm").output
        assert farm.BuildVersion == SPT.BUILD_VERSIONS["2019"]
        [info] = first.invoke("Get-Command", {"Name": "get-spfarm"}).output
        assert info.is_type("System.Management.Automation.CmdletInfo")
        assert (info.Name, info.Source, str(info)) == ("Get-SPFarm", SNAPIN, "Get-SPFarm")
        assert [s.Name for s in first.invoke("Get-PSSnapin").output] == ["Microsoft.PowerShell.Core", SNAPIN]

        # A second runspace pool on the same server inherits nothing.
        with pytest.raises(RemoteError) as failure:
            second.invoke("Get-SPFarm")
        assert failure.value.reason == not_recognized("Get-SPFarm")
        missing = second.invoke("Get-PSSnapin", {"Name": SNAPIN})
        assert missing.output == []
        [error] = missing.errors
        assert error.message == (f"No Windows PowerShell snap-ins matching the pattern '{SNAPIN}' were found. "
                                 "Check the pattern and then try the command again.")
        assert error.fully_qualified_error_id == "NoPSSnapInsFound,Microsoft.PowerShell.Commands.GetPSSnapinCommand"
        assert (error.category, error.target) == ("InvalidArgument", SNAPIN)
        [registered] = second.invoke("Get-PSSnapin", {"Name": SNAPIN, "Registered": True}).output
        assert registered.Name == SNAPIN  # registered on the server, just not added to this runspace

        # The first pool still has it.
        assert first.invoke("Get-SPAuthenticationRealm").output == [served.farm.realm]


def test_adding_the_snapin_twice_is_a_non_terminating_error(farms):
    with farms["sp-a"].fresh() as session:
        session.invoke("Add-PSSnapin", {"Name": SNAPIN})
        again = session.invoke("Add-PSSnapin", {"Name": SNAPIN})
        [error] = again.errors
        assert error.message == (f"Cannot add Windows PowerShell snap-in {SNAPIN} because it is already added. "
                                 "Verify the name of the snap-in and try again.")
        assert error.fully_qualified_error_id == "AddPSSnapInRead,Microsoft.PowerShell.Commands.AddPSSnapinCommand"
        assert error.category == "InvalidArgument"
        assert session.invoke("Add-PSSnapin", {"Name": SNAPIN, "ErrorAction": "SilentlyContinue"}).errors == []
        assert session.invoke("Get-SPFarm").output


def test_the_2019_farm_has_no_sharepoint_module(farms):
    with farms["sp-a"].fresh() as session:
        result = session.invoke("Import-Module", {"Name": MODULE})
        [error] = result.errors
        assert error.message == (f"The specified module '{MODULE}' was not loaded because no valid module file was "
                                 "found in any module directory.")
        assert error.fully_qualified_error_id == \
            "Modules_ModuleNotFound,Microsoft.PowerShell.Commands.ImportModuleCommand"
        assert (error.category, error.target) == ("ResourceUnavailable", MODULE)
        with pytest.raises(RemoteError, match="not recognized"):
            session.invoke("Get-SPFarm")


# ------------------------------------------------------------------------------ Subscription Edition: the module

def test_subscription_edition_refuses_the_snapin_and_imports_the_module(farms):
    with farms["sp-b"].fresh() as session:
        refused = session.invoke("Add-PSSnapin", {"Name": SNAPIN})
        [error] = refused.errors
        assert error.message == f"The Windows PowerShell snap-in '{SNAPIN}' is not installed on this computer."
        assert error.fully_qualified_error_id == "AddPSSnapInRead,Microsoft.PowerShell.Commands.AddPSSnapinCommand"
        assert (error.category, error.target) == ("InvalidArgument", SNAPIN)
        assert session.invoke("Add-PSSnapin", {"Name": SNAPIN, "ErrorAction": "SilentlyContinue"}).errors == []
        with pytest.raises(RemoteError, match="not recognized"):
            session.invoke("Get-SPFarm")
        assert session.invoke("Get-Module", {"Name": MODULE}).output == []
        [available] = session.invoke("Get-Module", {"Name": MODULE, "ListAvailable": True}).output
        assert available.Name == MODULE

        imported = session.invoke("Import-Module", {"Name": MODULE})
        assert imported.output == [] and imported.errors == []
        assert session.invoke("Import-Module", {"Name": MODULE}).errors == []  # again: silent
        [farm] = session.invoke("Get-SPFarm").output
        assert farm.BuildVersion == SPT.BUILD_VERSIONS["SE"]
        [info] = session.invoke("Get-Command", {"Name": "Get-SPFarm"}).output
        assert info.Source == MODULE
        assert [m.Name for m in session.invoke("Get-Module").output] == [MODULE]


def test_add_pssnapin_with_stop_is_terminating(farms):
    with farms["sp-b"].fresh() as session:
        with pytest.raises(RemoteError) as failure:
            session.invoke("Add-PSSnapin", {"Name": SNAPIN, "ErrorAction": "Stop"})
        assert failure.value.error_id == "AddPSSnapInRead"
        assert failure.value.reason == f"The Windows PowerShell snap-in '{SNAPIN}' is not installed on this computer."


# ------------------------------------------------------------------------------ the load template

@pytest.mark.parametrize("name, kind, version", [("sp-a", "snapin", "2019"), ("sp-b", "module", "SE")])
def test_the_load_template_loads_whichever_the_server_has_and_is_idempotent(farms, name, kind, version):
    with farms[name].fresh() as session:
        [first] = session.invoke_template(LOAD_TEMPLATE).output
        assert (first.Loaded, first.Version) == (kind, SPT.BUILD_VERSIONS[version])
        [second] = session.invoke_template(LOAD_TEMPLATE).output
        assert (second.Loaded, second.Version) == ("already", SPT.BUILD_VERSIONS[version])
        assert session.invoke("Get-SPAuthenticationRealm").output == [farms[name].farm.realm]
    with farms[name].fresh() as other:  # a new runspace loads again
        assert other.invoke_template(LOAD_TEMPLATE).output[0].Loaded == kind


def test_the_load_template_knows_a_snapin_loaded_by_hand(farms):
    with farms["sp-a"].fresh() as session:
        session.invoke("Add-PSSnapin", {"Name": SNAPIN})
        assert session.invoke_template(LOAD_TEMPLATE).output[0].Loaded == "already"


def test_the_load_template_throws_on_a_server_without_sharepoint_powershell(tmp_path):
    store = FarmStore.open(tmp_path / "f.json", FarmDefinition.preset("sp-a"))
    table = CommandTable()  # the templates, but no snap-in or module declared
    register_templates(table, FarmOperations(store, ca_bundle=None, metadata_timeout=1))
    result = run(table, LOAD_TEMPLATE)
    assert result.output == [] and result.terminating is not None
    assert result.terminating.message == SPT.sharepoint_powershell_missing()
    # ... which is the text the real script throws.
    script = (TEMPLATES / "load-sharepoint-powershell.ps1").read_text()
    assert SPT.sharepoint_powershell_missing().replace(SNAPIN, "$snapinName").replace(MODULE, "$moduleName") in script


def test_every_sharepoint_template_but_the_loader_needs_the_farms_powershell(farms):
    table = farms["sp-a"].farm.commands
    sharepoint_cmdlets = {e.name.lower() for e in table.cmdlets() if e.source == SNAPIN}
    assert "get-spfarm" in sharepoint_cmdlets and len(sharepoint_cmdlets) >= 20
    for name in TEMPLATE_PARAMETERS:
        entry = table.find_template(name, "1")
        if name in PLAIN_POWERSHELL_TEMPLATES:  # the loader, and templates calling no SharePoint cmdlet
            assert entry.source is None
            script = (TEMPLATES / f"{name.split('/', 1)[1]}.ps1").read_text()
            assert name == LOAD_TEMPLATE or first_command_of(script, sharepoint_cmdlets) is None, name
            continue
        assert entry.source == SNAPIN, name
        # The refusal names a real cmdlet of the script, never a made-up one.
        script = (TEMPLATES / f"{name.split('/', 1)[1]}.ps1").read_text()
        assert first_command_of(script, sharepoint_cmdlets) is not None, name
    assert {e.source for e in farms["sp-b"].farm.commands.cmdlets() if e.name.startswith(("Get-SP", "Set-SP"))} \
        == {MODULE}


def test_first_command_of_skips_comments_and_parameters():
    script = ("# runbook-template: x/y v1\nparam([string] $Site)\n# Get-SPSite -Identity in a comment\n"
              "<# Get-SPFarm\n   in a block #>\n$ErrorActionPreference = 'Stop'\n"
              "$x = Import-Module -Name m -ErrorAction SilentlyContinue; $c = Get-SPSecurityTokenServiceConfig\n"
              "Get-SPSite -Identity $Site\n")
    names = {"get-spsite", "get-spfarm", "get-spsecuritytokenserviceconfig"}
    assert first_command_of(script, names) == "Get-SPSecurityTokenServiceConfig"
    assert first_command_of("Write-Output 'Get-Thing'", {"get-spsite"}) is None


# ------------------------------------------------------------------------------ the runbooks' Farm client

class Recorder:
    """A session that records the commands sent through it (and shares the real session's state)."""

    def __init__(self, session: RemoteSession) -> None:
        self._session = session
        self.calls: list[str] = []

    @property
    def name(self) -> str:
        return self._session.name

    @property
    def state(self) -> dict[str, Any]:
        return self._session.state

    def invoke(self, cmdlet: str, parameters: dict[str, Any] | None = None):
        self.calls.append(cmdlet)
        return self._session.invoke(cmdlet, parameters)

    def invoke_template(self, name: str, parameters: dict[str, Any] | None = None):
        self.calls.append(name)
        return self._session.invoke_template(name, parameters)


@pytest.mark.parametrize("name, kind, version", [("sp-a", "snapin", "2019"), ("sp-b", "module", "SE")])
def test_the_farm_client_loads_sharepoint_powershell_once_per_session(farms, name, kind, version):
    served = farms[name]
    with served.fresh() as session:
        recorder = Recorder(session)
        requests_before = served.endpoint.requests_handled
        # The scenario makes a Farm per step over the run's one session: still one load.
        assert Farm(recorder, name=name).realm() == served.farm.realm
        assert Farm(recorder, name=name).build_version() == SPT.BUILD_VERSIONS[version]  # from the load
        issuers = Farm(recorder, name=name).trusted_issuers()
        assert [i.name for i in issuers] == [i["name"] for i in served.farm.snapshot()["trusted_issuers"]]
        assert recorder.calls == [LOAD_TEMPLATE, "Get-SPAuthenticationRealm", "Get-SPTrustedSecurityTokenIssuer"]
        # One pipeline is two WS-Man requests (Command, Receive): three pipelines in all.
        assert served.endpoint.requests_handled - requests_before == 6
        assert ensure_sharepoint_shell(session).loaded == kind  # remembered on the session, not rerun
        assert recorder.calls.count(LOAD_TEMPLATE) == 1
    with served.fresh() as new_session:  # a new runspace does not know the cmdlets: loaded again
        recorder = Recorder(new_session)
        assert Farm(recorder, name=name).realm() == served.farm.realm
        assert recorder.calls == [LOAD_TEMPLATE, "Get-SPAuthenticationRealm"]


def test_the_farm_client_names_a_server_without_sharepoint_powershell(tmp_path, farms):
    # A server whose endpoint answers the SharePoint templates but offers no snap-in or module.
    store = FarmStore.open(tmp_path / "f.json", FarmDefinition.preset("sp-a"))
    table = CommandTable()
    register_templates(table, FarmOperations(store, ca_bundle=None, metadata_timeout=1))
    ca = LabCA.open(tmp_path / "ca")
    server = LabServer("plain", ca.issue_server_certificate(["127.0.0.1"]), cert_dir=tmp_path / "tls")
    WinRMEndpoint(server_name="plain", commands=table, accounts={USER: PASSWORD},
                  auth=FARM_LISTENER_AUTH).mount(server)
    server.start()
    try:
        target = Target("plain", f"{server.url}/wsman", "credssp", USER, ca.bundle_path)
        with RemoteSession.open(target, password=PASSWORD) as session:
            with pytest.raises(RemoteError) as failure:
                Farm(session, name="plain").realm()
            assert "plain: the SharePoint PowerShell cmdlets could not be loaded" in failure.value.message
            assert "server of the SharePoint farm" in failure.value.hint
    finally:
        server.stop()
