"""The whole lab estate in one process, driven as a runbook drives it: through the inventory it
writes, runbooklib.remote (pypsrp over HTTPS) and plain HTTPS clients."""

from __future__ import annotations

import json
import os
import socket
import ssl
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import requests

from runbooklib.errors import ConnectionFailed, InputError, RemoteError, RunbookError
from runbooklib.inventory import load_inventory
from runbooklib.lab.estate import (
    SHAREPOINT_FARMS,
    STATE_FILE,
    TENANT,
    Estate,
    clear_faults,
    inject_fault,
    pending_faults,
    probe_estate,
)
from runbooklib.lab.http import CONTROL_HEADER, CONTROL_PATH
from runbooklib.lab.exchange.product import EXCHANGE
from runbooklib.lab.oos.product import OOS
from runbooklib.lab.skype.product import SKYPE
from runbooklib.lab.pki import new_signing_certificate
from runbooklib.lab.sharepoint import METADATA_PATH, ROOT_CERTIFICATE_PATH
from runbooklib.metadata import discover_realm, fetch_metadata

from estate_fixtures import clean_estate, connections, estate, lab_inventory  # noqa: F401 - fixtures
from sharepoint_sessions import SharePointConnections

ROOT = Path(__file__).resolve().parents[2]
BUILDS = {"sp-a": "16.0.10337.12109", "sp-b": "16.0.18526.20508"}  # SharePoint 2019 and Subscription Edition


@pytest.fixture(scope="module", autouse=True)
def initial(estate: Estate) -> dict[str, dict]:
    """Each farm's state as the fresh estate started (taken before any test changes it)."""
    return {name: estate.farm(name).snapshot() for name in SHAREPOINT_FARMS}


def _file_references(inventory) -> list[str]:
    refs = [server.password for server in inventory.servers.values()]
    for tenant in inventory.tenants.values():
        refs += [tenant.credential.secret, tenant.credential.certificate]
    return [ref for ref in refs if ref and ref.startswith("file:")]


def _connection_refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


# ------------------------------------------------------------------------------ inventory and servers

def test_inventory_loads_and_every_secret_file_it_names_is_private(estate):
    inventory = load_inventory(estate.inventory_path)
    assert sorted(inventory.servers) == sorted([*SHAREPOINT_FARMS, *OOS.hosts, *SKYPE.hosts, *EXCHANGE.hosts])
    assert list(inventory.tenants) == [TENANT]
    exchange = inventory.server("exchange")  # Exchange's own remote PowerShell, commands only
    assert (exchange.role, exchange.configuration) == ("exchange", "Microsoft.Exchange")
    assert exchange.winrm == f"https://127.0.0.1:{estate.ports['exchange']}/PowerShell"
    assert exchange.web_url == f"https://127.0.0.1:{estate.ports['exchange']}"
    for name in OOS.hosts:  # each its own WinRM endpoint
        spec = inventory.server(name)
        assert spec.role == "oos" and spec.winrm == f"https://127.0.0.1:{estate.ports[name]}/wsman"
    for name in SHAREPOINT_FARMS:
        spec = inventory.server(name)
        # a farm is reached as a real one is: CredSSP over HTTPS, for the second hop to SQL Server
        assert spec.role == "sharepoint" and spec.auth == "credssp"
        assert spec.configuration == "Microsoft.PowerShell" and not spec.allow_http
        assert spec.winrm == f"https://127.0.0.1:{estate.ports[name]}/wsman"
        assert spec.web_url == f"https://127.0.0.1:{estate.ports[name]}"
        assert spec.ca_bundle == estate.ca_bundle and spec.ca_bundle.is_file()
    refs = _file_references(inventory)
    assert len(refs) >= 3  # two farm passwords and the tenant app's secret at least
    for ref in refs:
        path = Path(ref.removeprefix("file:"))
        path = path if path.is_absolute() else estate.dir / path
        assert path.is_file(), ref
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, ref
    assert stat.S_IMODE((estate.dir / STATE_FILE).stat().st_mode) == 0o600  # it holds the control token


def test_get_spfarm_on_both_farms(connections):
    for name in SHAREPOINT_FARMS:
        [farm] = connections.invoke(name, "Get-SPFarm").output
        assert farm.is_type("Microsoft.SharePoint.Administration.SPFarm")
        assert farm.BuildVersion == BUILDS[name]
    assert connections.shells_opened == {name: 1 for name in SHAREPOINT_FARMS}


def test_each_farm_serves_its_metadata_and_realm_at_web_url(estate, lab_inventory):
    ca = estate.ca_bundle
    for name in SHAREPOINT_FARMS:
        farm, web_url = estate.farm(name), lab_inventory.server(name).web_url
        metadata = fetch_metadata(web_url + METADATA_PATH, ca_bundle=ca)
        assert metadata.issuer == farm.name_identifier and metadata.realm == farm.realm
        assert metadata.signing_certificates == (farm.sts_key_pair().certificate,)
        root = fetch_metadata(web_url + ROOT_CERTIFICATE_PATH, ca_bundle=ca)
        assert root.signing_certificates == (farm.root_key_pair().certificate,)
        assert discover_realm(web_url, ca) == farm.realm
    # The two farms are distinct servers, not one server answering twice.
    assert estate.farm("sp-a").realm != estate.farm("sp-b").realm


def test_tenant_answers_openid_discovery_over_the_ca_bundle(estate, lab_inventory):
    tenant = lab_inventory.tenant(TENANT)
    url = f"{tenant.authority}/{tenant.tenant_id}/v2.0/.well-known/openid-configuration"
    discovery = requests.get(url, verify=str(tenant.ca_bundle), timeout=10).json()
    assert discovery["issuer"] == f"{tenant.authority}/{tenant.tenant_id}/v2.0"
    assert discovery["token_endpoint"].startswith(f"{tenant.authority}/{tenant.tenant_id}/")
    with pytest.raises(requests.exceptions.SSLError):  # real TLS: not trusted without the lab CA
        requests.get(url, timeout=10)


# ------------------------------------------------------------------------------ persistence and reset

def test_changes_and_ports_survive_stop_and_start(clean_estate):
    estate = clean_estate
    realm = str(uuid.uuid4())
    root_cert = new_signing_certificate("Office Online Server")
    with SharePointConnections(load_inventory(estate.inventory_path)) as conns:
        conns.invoke("sp-a", "Set-SPAuthenticationRealm", {"Realm": realm})
        conns.invoke_template("sp-b", "sharepoint/new-trusted-root-authority-from-certificate",
                              {"Name": "OOS farm", "CertificateRawData": root_cert.cert_der})
    ports, inventory_text = estate.ports, estate.inventory_path.read_text()
    http_ports = estate.winrm_http_ports

    estate.stop()
    assert all(_connection_refused(port) for port in [*ports.values(), *http_ports.values()])
    assert "pid" not in json.loads((estate.dir / STATE_FILE).read_text())
    estate.start()

    assert estate.ports == ports
    assert estate.winrm_http_ports == http_ports and http_ports
    assert estate.inventory_path.read_text() == inventory_text
    with SharePointConnections(load_inventory(estate.inventory_path)) as conns:
        assert conns.invoke("sp-a", "Get-SPAuthenticationRealm").output == [realm]
        [root] = conns.invoke("sp-b", "Get-SPTrustedRootAuthority", {"Identity": "OOS farm"}).output
        assert root.Name == "OOS farm"


def test_reset_restores_the_initial_estate(clean_estate, initial):
    estate = clean_estate
    with SharePointConnections(load_inventory(estate.inventory_path)) as conns:
        conns.invoke("sp-a", "Set-SPAuthenticationRealm", {"Realm": str(uuid.uuid4())})
        conns.invoke_template("sp-a", "sharepoint/set-oauth-over-http", {"Enabled": True})
        conns.invoke_template("sp-b", "sharepoint/new-trusted-root-authority-from-certificate",
                              {"Name": "Partner", "CertificateRawData": new_signing_certificate("p").cert_der})
        assert all(estate.farm(n).snapshot() != initial[n] for n in SHAREPOINT_FARMS)
        app_id = estate.tenant.runbook_app.client_id
        spns_before = estate.tenant.spns(app_id)
        estate.tenant.add_spn(app_id, "https://lab-reset-check.contoso.lab")
        estate.server("sp-a").faults.add("drop", 3)

        estate.reset()

        assert {n: estate.farm(n).snapshot() for n in SHAREPOINT_FARMS} == initial
        assert estate.tenant.spns(app_id) == spns_before
        assert estate.server("sp-a").faults.pending() == []
        # ... and that is what a client sees, on the sessions it already had open.
        assert conns.invoke("sp-a", "Get-SPAuthenticationRealm").output == [initial["sp-a"]["realm"]]
        assert conns.invoke("sp-b", "Get-SPTrustedRootAuthority", {"Identity": "Partner"}).errors


def test_a_second_estate_on_the_same_directory_is_refused(estate, connections):
    with pytest.raises(RunbookError, match="already serves"):
        Estate(estate.dir).start()
    assert connections.invoke("sp-a", "Get-SPFarm").output  # the running one is untouched


def test_lab_down_never_stops_an_estate_running_inside_another_program(estate):
    result = subprocess.run([sys.executable, "-m", "runbooklib.cli", "lab", "down", "--dir", str(estate.dir)],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 1
    assert "inside another program" in result.stderr and str(os.getpid()) in result.stderr
    assert probe_estate(estate.dir).running


# ------------------------------------------------------------------------------ faults in-process

def test_drop_fails_the_command_clearly_and_changes_nothing(clean_estate, connections, initial):
    estate = clean_estate
    connections.invoke("sp-a", "Get-SPFarm")
    estate.server("sp-a").faults.add("drop")
    with pytest.raises(ConnectionFailed, match=r"sp-a \(https://127\.0\.0\.1:\d+/wsman\).*closed without an answer"
                                               r" while running Set-SPAuthenticationRealm") as failure:
        connections.invoke("sp-a", "Set-SPAuthenticationRealm", {"Realm": str(uuid.uuid4())})
    assert "Test-WSMan" in str(failure.value)
    assert estate.farm("sp-a").snapshot() == initial["sp-a"]  # no partial state
    # The next command opens a new session and sees the farm unchanged.
    assert connections.invoke("sp-a", "Get-SPAuthenticationRealm").output == [initial["sp-a"]["realm"]]
    assert connections.shells_opened["sp-a"] == 2


def test_drop_while_opening_a_session(clean_estate, lab_inventory):
    clean_estate.server("sp-b").faults.add("drop")
    with SharePointConnections(lab_inventory) as conns:
        with pytest.raises(ConnectionFailed, match="sp-b .* while opening the session"):
            conns.invoke("sp-b", "Get-SPFarm")
        assert conns.invoke("sp-b", "Get-SPFarm").output


def test_stall_then_drop(clean_estate, connections):
    connections.invoke("sp-b", "Get-SPFarm")
    clean_estate.server("sp-b").faults.add("stall", seconds=0.5)
    started = time.monotonic()
    with pytest.raises(ConnectionFailed, match="sp-b"):
        connections.invoke("sp-b", "Get-SPFarm")
    assert time.monotonic() - started >= 0.5


def test_error_fault_is_a_remote_error_carrying_its_message(clean_estate, connections, initial):
    message = "The SharePoint Timer Service is not running on this server."
    connections.session("sp-a")  # opened, SharePoint cmdlets loaded: the fault hits the next command
    clean_estate.server("sp-a").faults.add("error", message=message)
    with pytest.raises(RemoteError) as failure:
        connections.invoke("sp-a", "Set-SPAuthenticationRealm", {"Realm": str(uuid.uuid4())})
    assert failure.value.reason == message and failure.value.cmdlet == "Set-SPAuthenticationRealm"
    assert message in str(failure.value)
    assert clean_estate.farm("sp-a").snapshot() == initial["sp-a"]
    assert connections.invoke("sp-a", "Get-SPFarm").output  # one fault, one failure


# ------------------------------------------------------------------------------ faults over HTTPS

def test_faults_through_the_control_endpoint(clean_estate, connections):
    estate = clean_estate
    connections.invoke("sp-b", "Get-SPFarm")
    message = "Access to the configuration database was denied."
    answer = inject_fault(estate.dir, "sp-b", "error", message=message)
    assert answer["server"] == "sp-b" and [f["kind"] for f in answer["faults"]] == ["error"]
    with pytest.raises(RemoteError, match=message):
        connections.invoke("sp-b", "Get-SPFarm")

    inject_fault(estate.dir, "sp-b", "drop")
    with pytest.raises(ConnectionFailed, match="closed without an answer"):
        connections.invoke("sp-b", "Get-SPFarm")

    inject_fault(estate.dir, "sp-a", "drop", 2, path_prefix="/wsman")
    assert [f["kind"] for f in pending_faults(estate.dir, "sp-a")] == ["drop", "drop"]
    clear_faults(estate.dir, "sp-a")
    assert pending_faults(estate.dir, "sp-a") == []
    assert connections.invoke("sp-a", "Get-SPFarm").output


def _wrong(token: str) -> str:
    """The token with its last character changed (a random token may already end in "x")."""
    return token[:-1] + ("y" if token.endswith("x") else "x")


def test_control_endpoint_refuses_a_wrong_token(estate):
    port = estate.ports["sp-a"]
    request = urllib.request.Request(
        f"https://127.0.0.1:{port}{CONTROL_PATH}", method="POST",
        data=json.dumps({"kind": "drop", "count": 5}).encode(),
        headers={CONTROL_HEADER: _wrong(estate.control_token()), "Content-Type": "application/json"},
    )
    context = ssl.create_default_context(cafile=str(estate.ca_bundle))
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, context=context, timeout=10)
    assert refused.value.code == 403
    assert estate.server("sp-a").faults.pending() == []


def test_fault_requests_are_checked_before_anything_is_sent(estate):
    with pytest.raises(InputError, match="no server 'sp-z'"):
        inject_fault(estate.dir, "sp-z", "drop")
    with pytest.raises(InputError, match="unknown fault kind 'explode'"):
        inject_fault(estate.dir, "sp-a", "explode")
    with pytest.raises(InputError, match="unknown fault option"):
        inject_fault(estate.dir, "sp-a", "stall", second=3)
    with pytest.raises(RunbookError, match="no lab estate"):
        inject_fault(estate.dir / "elsewhere", "sp-a", "drop")
    assert estate.server("sp-a").faults.pending() == []
