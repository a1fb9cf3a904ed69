"""The lab WinRM endpoint driven by the bare, unmodified pypsrp client (no runbooklib.remote).

If these pass, a runbook talking to the lab goes through the same WS-Man / PSRP exchanges it
would have with a Windows server: shells, fragments, key exchange, long polls and faults.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid

import pytest
import requests
from pypsrp.complex_objects import PSCredential, PSInvocationState
from pypsrp.exceptions import AuthenticationError, WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.serializer import TaggedValue
from pypsrp.wsman import WSMan

from winrm_fixtures import (  # noqa: F401 - fixtures
    PASSWORD, TEMPLATE_TEXT, USERNAME, WinRMLab, _clear_faults, not_recognized, winrm_lab,
)

COMMAND_NOT_FOUND = not_recognized("Get-LabNothing")


def wsman(lab: WinRMLab, *, password: str = PASSWORD, operation_timeout: int = 20) -> WSMan:
    return WSMan("127.0.0.1", port=lab.port, username=USERNAME, password=password, auth="basic",
                 cert_validation=str(lab.ca_bundle), operation_timeout=operation_timeout)


@pytest.fixture(scope="module")
def pool(winrm_lab: WinRMLab):
    with RunspacePool(wsman(winrm_lab)) as rp:
        yield rp


def run(pool: RunspacePool, build) -> PowerShell:
    ps = PowerShell(pool)
    build(ps)
    ps.invoke()
    return ps


def test_cmdlet_returns_typed_objects(pool):
    ps = run(pool, lambda p: p.add_cmdlet("Get-LabWidget").add_parameter("Identity", "w1")
             .add_parameter("Count", 3).add_parameter("Detailed"))
    assert ps.state == PSInvocationState.COMPLETED and not ps.had_errors
    [obj] = ps.output
    assert obj.types[0] == "Lab.Product.Widget"
    assert str(obj) == "Widget w1"  # pypsrp reads <ToString>
    props = obj.adapted_properties
    assert (props["Name"], props["Count"], props["Detailed"]) == ("w1", 3, True)
    assert props["Tags"] == ["a", "b"]
    # remoting serialises to depth 1: a nested object arrives as its ToString()
    assert props["Owner"] == "LAB\\owner"


def test_positional_argument_and_alias_bind(pool):
    ps = run(pool, lambda p: p.add_cmdlet("get-labwidget").add_argument("w2"))
    assert ps.output[0].adapted_properties["Name"] == "w2"
    ps = run(pool, lambda p: p.add_cmdlet("Get-LabWidget").add_parameter("Name", "w3"))
    assert ps.output[0].adapted_properties["Name"] == "w3"


def test_template_runs_with_bound_parameters(pool):
    ps = run(pool, lambda p: p.add_script(TEMPLATE_TEXT).add_parameter("Name", "w9").add_parameter("Size", 4))
    assert ps.state == PSInvocationState.COMPLETED, [str(e) for e in ps.streams.error]
    [obj] = ps.output
    assert obj.adapted_properties["Description"] == "w9 x 4"


def test_free_script_text_is_refused(pool):
    ps = run(pool, lambda p: p.add_script("Get-LabWidget -Identity w1"))
    assert ps.state == PSInvocationState.FAILED
    assert ps.output == []
    assert "no-language mode" in str(ps.streams.error[-1])
    assert ps.streams.error[-1].fq_error == "ScriptsNotAllowed"


def test_template_marker_with_unknown_version_is_refused(pool):
    script = TEMPLATE_TEXT.replace(" v1\n", " v7\n", 1)
    ps = run(pool, lambda p: p.add_script(script).add_parameter("Name", "w"))
    assert ps.state == PSInvocationState.FAILED
    assert "version 7" in str(ps.streams.error[-1])


def test_non_terminating_error_lands_in_error_stream_and_pipeline_completes(pool):
    ps = run(pool, lambda p: p.add_cmdlet("Get-LabThing").add_parameter("Identity", "missing"))
    assert ps.state == PSInvocationState.COMPLETED
    assert ps.output == ["after-error"]
    [error] = ps.streams.error
    assert str(error) == "The thing 'missing' was not found."
    assert error.fq_error == "ThingNotFound,Get-LabThing"
    assert error.message == "ObjectNotFound: (missing:String) [Get-LabThing], ArgumentException"
    assert error.command_name == "Get-LabThing"


def test_error_action_silently_continue_and_stop(pool):
    ps = run(pool, lambda p: p.add_cmdlet("Get-LabThing").add_parameter("Identity", "missing")
             .add_parameter("ErrorAction", "SilentlyContinue"))
    assert ps.state == PSInvocationState.COMPLETED and ps.streams.error == []
    assert ps.output == ["after-error"]
    ps = run(pool, lambda p: p.add_cmdlet("Get-LabThing").add_parameter("Identity", "missing")
             .add_parameter("ErrorAction", "Stop"))
    assert ps.state == PSInvocationState.FAILED and ps.output == []
    assert str(ps.streams.error[-1]) == "The thing 'missing' was not found."


def test_terminating_error_fails_the_pipeline(pool):
    ps = run(pool, lambda p: p.add_cmdlet("Remove-LabThing").add_argument("t1").add_parameter("Confirm", False))
    assert ps.state == PSInvocationState.FAILED and ps.had_errors
    error = ps.streams.error[-1]
    assert str(error) == "Cannot remove 't1': it is in use by the farm."
    assert error.fq_error == "ThingInUse,Remove-LabThing"
    assert error.exception.adapted_properties["Message"] == str(error)


def test_unknown_cmdlet_is_command_not_found(pool):
    ps = run(pool, lambda p: p.add_cmdlet("Get-LabNothing"))
    assert ps.state == PSInvocationState.FAILED
    error = ps.streams.error[-1]
    assert str(error) == COMMAND_NOT_FOUND
    assert error.fq_error == "CommandNotFoundException"
    assert error.message == "ObjectNotFound: (Get-LabNothing:String) [], CommandNotFoundException"


def test_parameter_binding_errors_use_powershell_texts(pool):
    ps = run(pool, lambda p: p.add_cmdlet("Get-LabWidget").add_parameter("Identity", "w").add_parameter("Colour", 1))
    assert ps.state == PSInvocationState.FAILED
    assert str(ps.streams.error[-1]) == "A parameter cannot be found that matches parameter name 'Colour'."
    assert ps.streams.error[-1].fq_error == "NamedParameterNotFound,Get-LabWidget"
    ps = run(pool, lambda p: p.add_cmdlet("Get-LabWidget").add_parameter("Count", 1))
    assert str(ps.streams.error[-1]) == (
        "Cannot process command because of one or more missing mandatory parameters: Identity."
    )


def test_secure_string_and_credential_arrive_decrypted(pool):
    pool.exchange_keys()
    ps = run(pool, lambda p: p.add_cmdlet("Test-LabSecret")
             .add_parameter("Secret", TaggedValue("SS", "s3cr3t-value"))
             .add_parameter("Credential", PSCredential(username="LAB\\svc-sts", password="cr3d-pw")))
    assert ps.state == PSInvocationState.COMPLETED, [str(e) for e in ps.streams.error]
    [result] = ps.output
    assert result == {"SecretType": "Secret", "Secret": "s3cr3t-value", "CredentialType": "Credential",
                      "UserName": "LAB\\svc-sts", "Password": "cr3d-pw"}


def test_three_mib_byte_array_arrives_intact(pool):
    data = os.urandom(3 * 1024 * 1024)
    ps = run(pool, lambda p: p.add_cmdlet("Measure-LabBytes").add_parameter("Data", data))
    assert ps.output == ["bytes", len(data), hashlib.sha256(data).hexdigest()]


def test_pipeline_input_reaches_the_handler(pool):
    ps = PowerShell(pool)
    ps.add_cmdlet("Format-LabInput")
    out = ps.invoke(input=["a", "b"])
    assert out == ["<a>", "<b>"]


def test_warning_and_verbose_streams(pool):
    ps = run(pool, lambda p: p.add_cmdlet("Write-LabNoise").add_parameter("Verbose"))
    assert ps.output == [USERNAME]
    assert [w.message for w in ps.streams.warning] == ["The widget cache is stale."]
    assert [v.message for v in ps.streams.verbose] == ["Reading widgets."]
    ps = run(pool, lambda p: p.add_cmdlet("Write-LabNoise").add_parameter("WarningAction", "SilentlyContinue"))
    assert ps.streams.warning == [] and ps.streams.verbose == []


def test_object_sent_back_arrives_deserialized_and_is_refused(pool):
    ps = run(pool, lambda p: p.add_cmdlet("Get-LabWidget").add_argument("w1"))
    back = run(pool, lambda p: p.add_cmdlet("Set-LabOwner").add_parameter("Widget", ps.output[0]))
    assert back.state == PSInvocationState.FAILED
    assert 'of type "Deserialized.Lab.Product.Widget"' in str(back.streams.error[-1])


def test_long_running_command_survives_operation_timeout_polls(winrm_lab):
    # OperationTimeout 2 s: the endpoint answers the Receive with the timeout fault after ~1 s and
    # pypsrp polls again, as it does against Windows.
    with RunspacePool(wsman(winrm_lab, operation_timeout=2)) as rp:
        started = time.monotonic()
        ps = run(rp, lambda p: p.add_cmdlet("Wait-LabJob").add_parameter("Seconds", 1.6))
        assert ps.output == ["finished"]
        assert 1.5 < time.monotonic() - started < 6


def test_two_pools_at_once(winrm_lab):
    results: dict[str, list] = {}

    def worker(name: str) -> None:
        with RunspacePool(wsman(winrm_lab)) as rp:
            out = []
            for i in range(5):
                ps = run(rp, lambda p: p.add_cmdlet("Get-LabWidget").add_argument(f"{name}-{i}"))
                out.append(ps.output[0].adapted_properties["Name"])
            results[name] = out

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert results == {n: [f"{n}-{i}" for i in range(5)] for n in ("a", "b")}


def test_error_fault_fails_next_pipeline(winrm_lab, pool):
    winrm_lab.server.faults.add("error", message="The farm database is unavailable.")
    ps = run(pool, lambda p: p.add_cmdlet("Get-LabWidget").add_argument("w"))
    assert ps.state == PSInvocationState.FAILED
    assert str(ps.streams.error[-1]) == "The farm database is unavailable."
    ps = run(pool, lambda p: p.add_cmdlet("Get-LabWidget").add_argument("w"))
    assert ps.state == PSInvocationState.COMPLETED


def test_wrong_password_is_refused_with_basic_challenge(winrm_lab):
    with pytest.raises(AuthenticationError):
        RunspacePool(wsman(winrm_lab, password="wrong")).open()
    resp = requests.post(winrm_lab.url, data=b"<x/>", auth=("LAB\\spadmin", "wrong"),
                         verify=str(winrm_lab.ca_bundle), timeout=5)
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"] == 'Basic realm="WSMAN"'


def test_unknown_shell_fault_echoes_message_id(winrm_lab):
    conn = wsman(winrm_lab)
    from pypsrp.shell import WinRS
    shell = WinRS(conn, "http://schemas.microsoft.com/powershell/Microsoft.PowerShell")
    from pypsrp.wsman import SelectorSet
    shell._selector_set = SelectorSet()
    shell._selector_set.add_option("ShellId", str(uuid.uuid4()).upper())
    with pytest.raises(WSManFaultError) as info:
        shell.receive("stdout")
    assert info.value.code == 2150858843
    assert "shell was not found" in info.value.reason


def test_one_pipeline_on_an_open_pool_is_two_requests(winrm_lab, pool):
    before = winrm_lab.endpoint.requests_handled
    run(pool, lambda p: p.add_cmdlet("Get-LabWidget").add_argument("w"))
    assert winrm_lab.endpoint.requests_handled - before == 2  # Command + Receive


def test_large_output_spans_several_receives(winrm_lab, pool):
    size = 1536 * 1024  # more than one 512000-byte envelope
    before = winrm_lab.endpoint.requests_handled
    ps = run(pool, lambda p: p.add_cmdlet("Get-LabBlob").add_parameter("Size", size))
    assert ps.output == [bytes(i % 251 for i in range(size))]
    assert winrm_lab.endpoint.requests_handled - before > 3


def test_text_with_markup_and_non_ascii_round_trips(pool):
    name = "Wídget <&> \"quoted\"\nline 2 _x000A_ ☃"
    ps = run(pool, lambda p: p.add_cmdlet("Get-LabWidget").add_parameter("Identity", name))
    assert ps.output[0].adapted_properties["Name"] == name


def test_stop_signal_ends_a_running_pipeline(pool):
    ps = PowerShell(pool)
    ps.add_cmdlet("Wait-LabJob").add_parameter("Seconds", 20)
    started = time.monotonic()
    ps.begin_invoke()
    ps.stop()
    assert ps.state == PSInvocationState.STOPPED
    after = run(pool, lambda p: p.add_cmdlet("Get-LabWidget").add_argument("after-stop"))
    assert after.output[0].adapted_properties["Name"] == "after-stop"
    assert time.monotonic() - started < 5


def test_malformed_request_gets_a_wsman_fault_not_a_crash(winrm_lab):
    resp = requests.post(winrm_lab.url, data=b"this is not soap", auth=(USERNAME, PASSWORD),
                         headers={"Content-Type": "application/soap+xml;charset=UTF-8"},
                         verify=str(winrm_lab.ca_bundle), timeout=5)
    assert resp.status_code == 500
    fault = WSMan._parse_wsman_fault(resp.text)
    assert fault.code == 2150858817 and "not well-formed" in fault.reason
