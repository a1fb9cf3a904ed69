"""Session configurations with the real client: the runspace a server entry names is the one opened.

A test-only endpoint serves a commands-only configuration at ``/PowerShell``, as Exchange serves
``Microsoft.Exchange``: a cmdlet with parameters runs, a script or template is refused with
PowerShell's no-language parse error, and a configuration the server does not have is refused
with WinRM's fault, named in the runbook's error.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from runbooklib.errors import ConnectionFailed, RemoteError
from runbooklib.lab.http import LabServer
from runbooklib.lab.pki import LabCA
from runbooklib.lab.winrm.configurations import commands_only, full_language
from runbooklib.lab.winrm.endpoint import WinRMEndpoint
from runbooklib.remote import RemoteSession

from winrm_fixtures import PASSWORD, TEMPLATE_NAME, TEMPLATE_TEXT, USERNAME, Target, make_table

SCRIPTS_NOT_ALLOWED = ("The syntax is not supported by this runspace. This might be because it is in "
                       "no-language mode.")



@pytest.fixture(scope="module")
def exchange_like(tmp_path_factory):
    """One server: Microsoft.Exchange (commands only) at /PowerShell, Microsoft.PowerShell at /wsman."""
    base = tmp_path_factory.mktemp("configurations")
    ca = LabCA.open(base / "ca")
    server = LabServer("ex-test", ca.issue_server_certificate(["127.0.0.1"]), cert_dir=base / "tls")
    WinRMEndpoint(server_name="ex-test", commands=make_table(), accounts={USERNAME: PASSWORD},
                  auth=("negotiate", "credssp"), path="/PowerShell",
                  configurations=(commands_only("Microsoft.Exchange"),)).mount(server)
    WinRMEndpoint(server_name="ex-test", commands=make_table(), accounts={USERNAME: PASSWORD},
                  auth=("negotiate", "credssp"), configurations=(full_language(),)).mount(server)
    server.start()
    yield server, ca.bundle_path
    server.stop()


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("templates")
    (base / TEMPLATE_NAME).parent.mkdir(parents=True)
    (base / f"{TEMPLATE_NAME}.ps1").write_text(TEMPLATE_TEXT, encoding="utf-8")
    return base


def _target(exchange_like, path: str, configuration: str) -> Target:
    server, bundle = exchange_like
    return Target("ex-test", f"{server.url}{path}", "credssp", USERNAME, bundle, configuration)


def test_a_cmdlet_with_parameters_runs_in_the_commands_only_configuration(exchange_like):
    with RemoteSession.open(_target(exchange_like, "/PowerShell", "Microsoft.Exchange"), password=PASSWORD) as s:
        [found] = s.invoke("Get-LabWidget", {"Identity": "alpha"}).output
        assert found.Name == "alpha"


def test_a_template_is_refused_there_with_the_no_language_parse_error(exchange_like, templates):
    target = _target(exchange_like, "/PowerShell", "Microsoft.Exchange")
    with RemoteSession.open(target, password=PASSWORD, templates_dir=templates) as s:
        with pytest.raises(RemoteError) as failure:
            s.invoke_template(TEMPLATE_NAME, {"Name": "alpha"})
        assert failure.value.reason == SCRIPTS_NOT_ALLOWED
        assert (failure.value.error_id, failure.value.category) == ("ScriptsNotAllowed", "ParserError")
        # the session is still usable: a parse error fails the pipeline, not the runspace
        assert s.invoke("Get-LabWidget", {"Identity": "beta"}).output[0].Name == "beta"


def test_any_script_is_refused_there_as_pypsrp_sends_it(exchange_like):
    server, bundle = exchange_like
    wsman = WSMan("127.0.0.1", port=server.port, path="PowerShell", username=USERNAME, password=PASSWORD,
                  auth="credssp", cert_validation=str(bundle))
    with wsman, RunspacePool(wsman, configuration_name="Microsoft.Exchange") as pool:
        ps = PowerShell(pool)
        ps.add_script("Get-LabWidget -Identity alpha")
        ps.invoke()
        assert ps.had_errors
        assert str(ps.streams.error[-1]) == SCRIPTS_NOT_ALLOWED
        assert ps.streams.error[-1].fq_error == "ScriptsNotAllowed"


def test_the_same_template_runs_in_the_full_language_configuration(exchange_like, templates):
    target = _target(exchange_like, "/wsman", "Microsoft.PowerShell")
    with RemoteSession.open(target, password=PASSWORD, templates_dir=templates) as s:
        [row] = s.invoke_template(TEMPLATE_NAME, {"Name": "alpha", "Size": 2}).output
        assert row["Size"] == 2


@pytest.mark.parametrize("path, configuration", [("/PowerShell", "Microsoft.Exchange2"),
                                                 ("/wsman", "Microsoft.Exchange")])
def test_a_configuration_the_server_does_not_serve_is_named_in_the_error(exchange_like, path, configuration):
    # Over NTLM the client shows WinRM's own reason.
    target = _target(exchange_like, path, configuration)
    target.auth = "ntlm"
    with pytest.raises(ConnectionFailed) as failure:
        RemoteSession.open(target, password=PASSWORD)
    message = failure.value.message
    assert f"has no PowerShell session configuration {configuration}" in message
    assert (f"Cannot find the {configuration} session configuration in the WSMan: drive on the ex-test "
            "computer.") in message
    assert "configuration for ex-test in the inventory" in failure.value.hint
    assert "Get-PSSessionConfiguration" in failure.value.hint


def test_over_credssp_the_refused_configuration_is_still_named(exchange_like):
    # The CredSSP client drops the fault that answers its last handshake request; the error still
    # says the credentials were fine and which configuration to check.
    with pytest.raises(ConnectionFailed) as failure:
        RemoteSession.open(_target(exchange_like, "/PowerShell", "Microsoft.Exchange2"), password=PASSWORD)
    assert "accepted the CredSSP credentials" in failure.value.message
    assert "session configuration Microsoft.Exchange2" in failure.value.message
    assert "configuration for ex-test in the inventory" in failure.value.hint
