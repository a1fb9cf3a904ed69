"""Every lab host that serves WinRM also listens on plain http, as a Windows server's default
listener does: the real pypsrp client reaches each one with NTLM (messages sealed) and CredSSP,
Basic is refused there, and the listener is the same server — its state, its faults."""

from __future__ import annotations

import json
import logging
import uuid

import pytest
import requests
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from runbooklib.errors import AuthenticationFailed, ConnectionFailed, RemoteError
from runbooklib.inventory import Inventory, ServerSpec, load_inventory
from runbooklib.lab.estate import LAB_USER, Estate, clear_faults, inject_fault
from runbooklib.lab.http import CONTROL_HEADER, CONTROL_PATH
from runbooklib.lab.sharepoint import METADATA_PATH
from runbooklib.remote import RemoteSession

from estate_fixtures import clean_estate, estate, lab_inventory  # noqa: F401 - fixtures
from sharepoint_sessions import SharePointConnections, open_sharepoint_session

_SOAP = {"Content-Type": "application/soap+xml;charset=UTF-8"}


def _winrm_hosts(estate: Estate) -> list[str]:
    return [name for name, host in estate.hosts.items() if host.server.routes("winrm")]


def _over_http(estate: Estate, inventory: Inventory, name: str, auth: str) -> ServerSpec:
    """The inventory's entry for ``name``, pointed at the host's plain-http WinRM listener."""
    return inventory.server(name).model_copy(
        update={"winrm": estate.winrm_http_url(name), "allow_http": True, "auth": auth})


def _get_command(wsman: WSMan, configuration: str) -> list[str]:
    with RunspacePool(wsman, configuration_name=configuration) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-Command").add_parameter("Name", "Get-PSSnapin")
        output = ps.invoke()
        assert not ps.had_errors, ps.streams.error
    return [str(info.adapted_properties.get("Name") or info) for info in output]


def test_every_host_that_serves_winrm_has_a_plain_http_listener(estate):
    hosts = _winrm_hosts(estate)
    assert {"sp-a", "sp-b"} <= set(hosts)
    assert set(estate.winrm_http_ports) == set(hosts)
    inventory = load_inventory(estate.inventory_path)
    for name in hosts:
        path = "/PowerShell" if inventory.server(name).role == "exchange" else "/wsman"  # Exchange's own endpoint
        assert estate.winrm_http_url(name) == f"http://127.0.0.1:{estate.winrm_http_ports[name]}{path}"
        assert estate.winrm_http_ports[name] != estate.ports[name]
    record = json.loads((estate.dir / "estate.json").read_text())
    assert record["winrm_http_ports"] == estate.winrm_http_ports
    # The inventory still names the https listener.
    assert all(load_inventory(estate.inventory_path).server(n).winrm.startswith("https://") for n in hosts)


@pytest.mark.parametrize("auth", ["ntlm", "credssp"])
def test_pypsrp_reaches_every_winrm_host_over_http(estate, lab_inventory, auth):
    for name in _winrm_hosts(estate):
        if auth == "credssp" and lab_inventory.server(name).role == "exchange":
            continue  # Exchange's PowerShell virtual directory takes Kerberos (Negotiate), never CredSSP
        spec = _over_http(estate, lab_inventory, name, auth)
        wsman = WSMan("127.0.0.1", port=estate.winrm_http_ports[name], path=spec.winrm.split("/", 3)[3],
                      ssl=False, auth=auth, username=LAB_USER, password=estate.password(name),
                      encryption="always", operation_timeout=10, read_timeout=15)
        assert _get_command(wsman, spec.configuration) == ["Get-PSSnapin"], name
        assert wsman.transport.encryption is not None  # every message was sealed by the auth context


@pytest.mark.parametrize("auth", ["ntlm", "credssp"])
def test_a_wrong_password_over_http_names_server_and_account(estate, lab_inventory, auth, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "Wr0ng-but-secret-" + uuid.uuid4().hex[:8]
    for name in _winrm_hosts(estate):
        with pytest.raises(AuthenticationFailed) as failure:
            RemoteSession.open(_over_http(estate, lab_inventory, name, auth), password=wrong)
        text = f"{failure.value}\n{failure.value.hint}"
        assert name in text and LAB_USER in text and estate.winrm_http_url(name) in text
        assert wrong not in text and wrong not in caplog.text


def test_basic_is_refused_on_both_listeners_of_a_lab_that_does_not_enable_it(estate):
    password = estate.password("sp-a")
    for url, verify in ((estate.winrm_http_url("sp-a"), True),
                        (f"{estate.server('sp-a').url}/wsman", str(estate.ca_bundle))):
        answer = requests.post(url, data=b"<x/>", headers=_SOAP, auth=(LAB_USER, password), verify=verify,
                               timeout=10)
        assert answer.status_code == 401, url
        assert answer.raw.headers.getlist("WWW-Authenticate") == ["Negotiate", "CredSSP"]


def test_basic_enabled_works_over_https_and_stays_refused_over_http(tmp_path):
    with Estate(tmp_path / "basic-lab", basic_auth=True) as lab:
        inventory = load_inventory(lab.inventory_path)
        https = inventory.server("sp-a").model_copy(update={"auth": "basic"})
        with RemoteSession.open(https, password=lab.password("sp-a")) as session:
            assert session.invoke("Get-PSSnapin").ok
        answer = requests.post(lab.winrm_http_url("sp-a"), data=b"<x/>", headers=_SOAP,
                               auth=(LAB_USER, lab.password("sp-a")), timeout=10)
        assert answer.status_code == 401  # AllowUnencrypted=false: never Basic in clear
        assert 'Basic realm="WSMAN"' in answer.raw.headers.getlist("WWW-Authenticate")


def test_the_http_listener_is_the_same_server_with_the_same_farm_state(clean_estate, lab_inventory):
    estate, realm = clean_estate, str(uuid.uuid4())
    with SharePointConnections(lab_inventory) as conns:  # over https, as the inventory says
        conns.invoke("sp-a", "Set-SPAuthenticationRealm", {"Realm": realm})
    with open_sharepoint_session(_over_http(estate, lab_inventory, "sp-a", "credssp"),
                                 password=estate.password("sp-a")) as session:
        assert session.invoke("Get-SPAuthenticationRealm").output == [realm]


def test_the_http_listener_serves_winrm_only(estate):
    port = estate.winrm_http_ports["sp-a"]
    assert requests.get(f"http://127.0.0.1:{port}{METADATA_PATH}", timeout=10).status_code == 404
    # The control token never travels in clear: the http listener takes none.
    answer = requests.post(f"http://127.0.0.1:{port}{CONTROL_PATH}", json={"kind": "drop"},
                           headers={CONTROL_HEADER: estate.control_token()}, timeout=10)
    assert answer.status_code == 403 and estate.server("sp-a").faults.pending() == []


def test_faults_set_on_a_host_apply_to_its_http_listener(clean_estate, lab_inventory):
    estate = clean_estate
    target = _over_http(estate, lab_inventory, "sp-b", "ntlm")
    estate.server("sp-b").faults.add("drop")
    with pytest.raises(ConnectionFailed, match=r"sp-b \(http://127\.0\.0\.1:\d+/wsman\).*closed without an answer"):
        RemoteSession.open(target, password=estate.password("sp-b"))
    assert estate.server("sp-b").faults.pending() == []  # used up by the http listener's request

    message = "The WinRM service on sp-b is shutting down."
    with RemoteSession.open(target, password=estate.password("sp-b")) as session:
        inject_fault(estate.dir, "sp-b", "error", message=message)  # as `runbook lab fault` sets it
        with pytest.raises(RemoteError, match=message):
            session.invoke("Get-PSSnapin")
        assert session.invoke("Get-PSSnapin").ok  # one fault, one failure
    clear_faults(estate.dir, "sp-b")
