"""runbooklib.remote against the lab WinRM endpoint (real pypsrp underneath, real TLS, Basic auth)."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path

import pytest

from runbooklib.errors import AuthenticationFailed, ConnectionFailed, InputError, RemoteError
from runbooklib.lab.pki import LabCA
from runbooklib.remote import (
    CommandResult,
    RemoteConnections,
    RemoteCredential,
    RemoteObject,
    RemoteSession,
    SecureValue,
    load_template,
)

from winrm_fixtures import (  # noqa: F401 - fixtures
    PASSWORD, TEMPLATE_NAME, TEMPLATE_TEXT, USERNAME, Target, WinRMLab, _clear_faults, not_recognized, winrm_lab,
)


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("templates")
    path = base / f"{TEMPLATE_NAME}.ps1"
    path.parent.mkdir(parents=True)
    path.write_text(TEMPLATE_TEXT, encoding="utf-8")
    (base / "lab" / "unmarked.ps1").write_text("param($Name)\nGet-LabWidget $Name\n", encoding="utf-8")
    return base


@pytest.fixture(scope="module")
def session(winrm_lab: WinRMLab, templates: Path):
    with RemoteSession.open(winrm_lab.target(), password=PASSWORD, templates_dir=templates) as s:
        yield s


def test_cmdlet_output_becomes_plain_python(session):
    result = session.invoke("Get-LabWidget", {"Identity": "w1", "Count": 2, "Detailed": None})
    assert isinstance(result, CommandResult) and result.ok
    [widget] = result.output
    assert isinstance(widget, RemoteObject) and isinstance(widget, dict)
    assert widget.type_names == ["Deserialized.Lab.Product.Widget", "Deserialized.System.Object"]
    assert widget.is_type("Lab.Product.Widget")
    assert (widget["Name"], widget.Count, widget["Detailed"], widget["Tags"]) == ("w1", 2, True, ["a", "b"])
    assert str(widget) == "Widget w1"
    assert widget["Owner"] == "LAB\\owner"  # depth-1 serialisation, as in a real remote session


def test_template_runs_with_bound_parameters(session):
    result = session.invoke_template(TEMPLATE_NAME, {"Name": "w7", "Size": 3})
    assert result.output[0]["Description"] == "w7 x 3"


def test_template_files_are_checked_before_anything_is_sent(session, templates):
    with pytest.raises(InputError, match="must start with the line '# runbook-template: lab/unmarked v<N>'"):
        session.invoke_template("lab/unmarked")
    with pytest.raises(InputError, match="does not exist"):
        session.invoke_template("lab/nothing-here")
    with pytest.raises(InputError, match="not of the form"):
        load_template("../etc/passwd", templates)


def test_non_terminating_error_is_reported_not_raised(session):
    result = session.invoke("Get-LabThing", {"Identity": "ghost"})
    assert result.output == ["after-error"]
    [error] = result.errors
    assert (error.message, error.error_id, error.category, error.target, error.command) == (
        "The thing 'ghost' was not found.", "ThingNotFound", "ObjectNotFound", "ghost", "Get-LabThing")
    assert error.fully_qualified_error_id == "ThingNotFound,Get-LabThing"
    assert not result.ok


def test_error_action_silently_continue_suppresses_the_error(session):
    result = session.invoke("Get-LabThing", {"Identity": "ghost", "ErrorAction": "SilentlyContinue"})
    assert result.errors == [] and result.output == ["after-error"]


def test_terminating_error_raises_remote_error(session):
    with pytest.raises(RemoteError) as info:
        session.invoke("Remove-LabThing", {"Identity": "t9", "Confirm": False})
    err = info.value
    assert str(err) == "Remove-LabThing failed on sp-test: Cannot remove 't9': it is in use by the farm."
    assert (err.target, err.cmdlet, err.error_id, err.category) == ("sp-test", "Remove-LabThing", "ThingInUse",
                                                                    "ResourceBusy")
    assert err.reason == "Cannot remove 't9': it is in use by the farm."


def test_unknown_cmdlet_and_unknown_parameter(session):
    with pytest.raises(RemoteError) as info:
        session.invoke("Get-LabNothing")
    assert info.value.reason == not_recognized("Get-LabNothing")
    assert info.value.error_id == "CommandNotFoundException" and "module or snap-in" in info.value.hint
    with pytest.raises(RemoteError) as info:
        session.invoke("Get-LabWidget", {"Identity": "w", "Colour": "red"})
    assert info.value.reason == "A parameter cannot be found that matches parameter name 'Colour'."
    assert info.value.error_id == "NamedParameterNotFound"


def test_secure_string_and_credential_arrive_decrypted(session):
    result = session.invoke("Test-LabSecret", {
        "Secret": SecureValue("s3cr3t-value"),
        "Credential": RemoteCredential("LAB\\svc-sts", "cr3d-pw"),
    })
    assert result.output == [{"SecretType": "Secret", "Secret": "s3cr3t-value", "CredentialType": "Credential",
                              "UserName": "LAB\\svc-sts", "Password": "cr3d-pw"}]
    assert "s3cr3t" not in repr(SecureValue("s3cr3t-value"))
    assert "cr3d" not in repr(RemoteCredential("LAB\\svc-sts", "cr3d-pw"))


def test_three_mib_byte_array_arrives_intact(session):
    data = os.urandom(3 * 1024 * 1024)
    result = session.invoke("Measure-LabBytes", {"Data": data})
    assert result.output == ["bytes", len(data), hashlib.sha256(data).hexdigest()]


def test_received_object_sent_back_is_refused_like_the_product(session):
    widget = session.invoke("Get-LabWidget", {"Identity": "w1"}).output[0]
    with pytest.raises(RemoteError, match='of type "Deserialized.Lab.Product.Widget"'):
        session.invoke("Set-LabOwner", {"Widget": widget})


def test_warnings_are_collected(session):
    result = session.invoke("Write-LabNoise")
    assert result.warnings == ["The widget cache is stale."] and result.output == [USERNAME]


def test_invalid_names_are_refused_before_sending(session):
    with pytest.raises(InputError):
        session.invoke("Get-LabWidget; Remove-Item C:\\", {})
    with pytest.raises(InputError):
        session.invoke("Get-LabWidget", {"Identity; rm": "x"})


def test_one_pool_per_target_reused_and_two_pools_at_once(winrm_lab, templates):
    before = winrm_lab.endpoint.shells_created
    with RemoteConnections(lambda t: PASSWORD, templates_dir=templates) as connections:
        a, b = winrm_lab.target("sp-a"), winrm_lab.target("sp-b")
        outputs: dict[str, list] = {}

        def work(target):
            outputs[target.name] = [connections.invoke(target, "Get-LabWidget", {"Identity": f"{target.name}-{i}"})
                                    .output[0]["Name"] for i in range(4)]

        threads = [threading.Thread(target=work, args=(t,)) for t in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert outputs == {n: [f"{n}-{i}" for i in range(4)] for n in ("sp-a", "sp-b")}
        assert connections.shells_opened == {"sp-a": 1, "sp-b": 1}
        assert connections.session(a) is connections.session(a)
    assert winrm_lab.endpoint.shells_created - before == 2
    assert winrm_lab.endpoint.open_shells == 1  # only the module's shared session is left


def test_wrong_password_is_authentication_failed(winrm_lab, caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthenticationFailed) as info:
        RemoteSession.open(winrm_lab.target(), password="not-the-password")
    text = str(info.value)
    assert "refused the user name or password for LAB\\spadmin" in text
    assert "sp-test" in text and winrm_lab.url in text
    assert info.value.hint and "secret reference" in info.value.hint
    assert "not-the-password" not in text and "not-the-password" not in caplog.text


def test_dropped_connection_is_connection_failed_and_reopened(winrm_lab, templates):
    with RemoteConnections(lambda t: PASSWORD, templates_dir=templates) as connections:
        target = winrm_lab.target("sp-drop")
        connections.invoke(target, "Get-LabWidget", {"Identity": "w"})
        winrm_lab.server.faults.add("drop")
        with pytest.raises(ConnectionFailed) as info:
            connections.invoke(target, "Get-LabWidget", {"Identity": "w"})
        assert not isinstance(info.value, AuthenticationFailed)
        message = str(info.value)
        assert "sp-drop" in message and winrm_lab.url in message and "closed without an answer" in message
        assert "Get-LabWidget" in message
        # the next use opens a fresh session
        assert connections.invoke(target, "Get-LabWidget", {"Identity": "w2"}).output[0]["Name"] == "w2"
        assert connections.shells_opened == {"sp-drop": 2}


def test_dropped_connection_while_opening(winrm_lab):
    winrm_lab.server.faults.add("drop")
    with pytest.raises(ConnectionFailed, match="while opening the session"):
        RemoteSession.open(winrm_lab.target(), password=PASSWORD)


def test_error_fault_is_remote_error(winrm_lab, session):
    winrm_lab.server.faults.add("error", message="The SharePoint configuration database is unavailable.")
    with pytest.raises(RemoteError) as info:
        session.invoke("Get-LabWidget", {"Identity": "w"})
    assert info.value.reason == "The SharePoint configuration database is unavailable."
    assert session.invoke("Get-LabWidget", {"Identity": "w"}).output[0]["Name"] == "w"


def test_untrusted_certificate_is_connection_failed(winrm_lab, tmp_path):
    other_ca = LabCA.open(tmp_path / "other-ca")
    target = Target("sp-test", winrm_lab.url, "basic", USERNAME, other_ca.bundle_path)
    with pytest.raises(ConnectionFailed, match="not trusted by the CA bundle"):
        RemoteSession.open(target, password=PASSWORD)


def test_basic_over_http_is_refused(winrm_lab):
    target = Target("sp-test", winrm_lab.url.replace("https://", "http://"), "basic", USERNAME, None)
    with pytest.raises(InputError, match="in clear"):
        RemoteSession.open(target, password=PASSWORD)


def test_connections_from_an_inventory_resolve_the_password_reference(winrm_lab, templates, monkeypatch):
    from runbooklib.inventory import Inventory

    monkeypatch.setenv("LAB_TEST_WINRM_PASSWORD", PASSWORD)
    inventory = Inventory.model_validate({"servers": {"sp-inv": {
        "role": "sharepoint", "winrm": winrm_lab.url, "auth": "basic", "username": USERNAME,
        "password": "env:LAB_TEST_WINRM_PASSWORD", "ca_bundle": str(winrm_lab.ca_bundle),
    }}})
    with RemoteConnections(inventory, templates_dir=templates) as connections:
        assert connections.session("sp-inv").invoke("Get-LabWidget", {"Identity": "i"}).output[0]["Name"] == "i"
        assert connections.shells_opened == {"sp-inv": 1}
