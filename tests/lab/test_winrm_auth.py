"""Lab WinRM listeners authenticate as Windows ones do: NTLM and CredSSP with message encryption
over plain HTTP, CredSSP over HTTPS, Basic only where enabled; driven by the real pypsrp client."""

from __future__ import annotations

import base64
import http.client
import logging
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import spnego
from pypsrp.exceptions import AuthenticationError
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from runbooklib.errors import AuthenticationFailed
from runbooklib.lab.http import LabServer
from runbooklib.lab.pki import LabCA
from runbooklib.lab.winrm.api import CommandTable, Invocation, credentials_delegated
from runbooklib.lab.winrm.endpoint import WinRMEndpoint
from runbooklib.remote import RemoteSession

from winrm_fixtures import PASSWORD, USERNAME, Target, make_table

WINDOWS_AUTH = ("negotiate", "credssp")


def _table() -> CommandTable:
    table = make_table()

    @table.cmdlet("Get-LabLogon")
    def logon(inv: Invocation) -> None:
        inv.write_output({"User": inv.user, "Delegated": credentials_delegated(inv.session)})

    return table


@dataclass
class Listener:
    server: LabServer
    endpoint: WinRMEndpoint
    ca_bundle: Path

    @property
    def url(self) -> str:
        return f"{self.server.url}/wsman"

    def wsman(self, auth: str, *, password: str = PASSWORD, **options) -> WSMan:
        return WSMan("127.0.0.1", port=self.server.port, ssl=self.server.scheme == "https", auth=auth,
                     username=USERNAME, password=password, cert_validation=str(self.ca_bundle),
                     operation_timeout=10, read_timeout=15, **options)


@pytest.fixture(scope="module")
def listeners(tmp_path_factory):
    base = tmp_path_factory.mktemp("winrm-auth")
    ca = LabCA.open(base / "ca")
    made: dict[str, Listener] = {}
    for key, scheme, auth in (("http", "http", WINDOWS_AUTH), ("https", "https", WINDOWS_AUTH),
                              ("basic-http", "http", ("basic",))):
        tls = ca.issue_server_certificate(["127.0.0.1"]) if scheme == "https" else None
        server = LabServer(f"sp-{key}", tls, scheme=scheme, cert_dir=base / "tls")
        endpoint = WinRMEndpoint(server_name=f"sp-{key}", commands=_table(), accounts={USERNAME: PASSWORD},
                                 auth=auth)
        endpoint.mount(server)
        made[key] = Listener(server.start(), endpoint, ca.bundle_path)
    yield made
    for listener in made.values():
        listener.server.stop()


def _logon(wsman: WSMan) -> dict:
    with RunspacePool(wsman) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-LabLogon")
        [answer] = ps.invoke()
        assert not ps.had_errors
        return answer


@pytest.mark.parametrize("encryption", ["always", "auto"])
def test_ntlm_over_http_runs_a_pipeline_with_every_message_sealed(listeners, encryption):
    listener = listeners["http"]
    wsman = listener.wsman("ntlm", encryption=encryption)
    with RunspacePool(wsman) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-LabWidget").add_parameter("Identity", "w1").add_parameter("Count", 2)
        [widget] = ps.invoke()
        # larger than one Receive envelope: several sealed answers in a row
        blob = PowerShell(pool)
        blob.add_cmdlet("Get-LabBlob").add_parameter("Size", 300_000)
        [data] = blob.invoke()
    assert wsman.transport.encryption is not None  # pypsrp opened every answer with its NTLM context
    assert (str(widget), widget.adapted_properties["Count"]) == ("Widget w1", 2)
    assert data == bytes(i % 251 for i in range(300_000))


def test_ntlm_does_not_delegate_the_credentials(listeners):
    assert _logon(listeners["http"].wsman("ntlm")) == {"User": USERNAME, "Delegated": False}


@pytest.mark.parametrize("key", ["https", "http"])
def test_credssp_delegates_the_credentials(listeners, key):
    assert _logon(listeners[key].wsman("credssp")) == {"User": USERNAME, "Delegated": True}


def test_credssp_over_http_seals_messages_longer_than_one_tls_record(listeners):
    with RunspacePool(listeners["http"].wsman("credssp")) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Measure-LabBytes").add_parameter("Data", bytes(range(256)) * 200)  # 51 KiB sent
        kind, length, _ = ps.invoke()
    assert (kind, length) == ("bytes", 51_200)


def test_basic_is_refused_where_not_enabled_with_the_enabled_schemes_offered(listeners):
    listener = listeners["https"]
    with pytest.raises(AuthenticationError):
        _logon(listener.wsman("basic"))
    answer = requests.post(listener.url, data=b"<x/>", verify=str(listener.ca_bundle),
                           headers={"Content-Type": "application/soap+xml;charset=UTF-8"},
                           auth=(USERNAME, PASSWORD))
    assert answer.status_code == 401
    assert answer.raw.headers.getlist("WWW-Authenticate") == ["Negotiate", "CredSSP"]


def test_basic_over_plain_http_is_refused_even_where_enabled(listeners):
    listener = listeners["basic-http"]
    with pytest.raises(AuthenticationError):
        _logon(listener.wsman("basic", encryption="never"))
    answer = requests.post(listener.url, data=b"")
    assert answer.status_code == 401 and answer.headers["WWW-Authenticate"] == 'Basic realm="WSMAN"'


def test_an_unencrypted_body_over_http_is_refused_on_an_ntlm_listener(listeners):
    with pytest.raises(AuthenticationError):
        _logon(listeners["http"].wsman("ntlm", encryption="never"))


def test_the_ntlm_context_belongs_to_its_connection(listeners):
    listener = listeners["http"]
    client = spnego.client(USERNAME, PASSWORD, hostname="127.0.0.1", service="http", protocol="ntlm",
                           options=spnego.NegotiateOptions.wrapping_winrm)
    first = http.client.HTTPConnection("127.0.0.1", listener.server.port, timeout=10)
    token = client.step()
    while True:
        first.request("POST", "/wsman", body=b"",
                      headers={"Authorization": "Negotiate " + base64.b64encode(token).decode()})
        answer = first.getresponse()
        answer.read()
        if answer.status != 401:
            break
        token = client.step(base64.b64decode(answer.getheader("WWW-Authenticate").split(" ", 1)[1]))
    assert answer.status == 200

    def blank(connection: http.client.HTTPConnection) -> int:
        connection.request("POST", "/wsman", body=b"")
        response = connection.getresponse()
        response.read()
        return response.status

    second = http.client.HTTPConnection("127.0.0.1", listener.server.port, timeout=10)
    assert (blank(first), blank(second)) == (200, 401)
    first.close()
    second.close()


@pytest.mark.parametrize("key, auth", [("http", "ntlm"), ("https", "credssp"), ("http", "credssp")])
def test_a_wrong_password_names_server_and_account_never_the_password(listeners, key, auth, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "Wr0ng-but-secret:pass"
    target = Target(f"sp-{key}", listeners[key].url, auth, USERNAME, listeners[key].ca_bundle, allow_http=True)
    with pytest.raises(AuthenticationFailed) as failure:
        RemoteSession.open(target, password=wrong)
    text = f"{failure.value}\n{failure.value.hint}"
    assert f"sp-{key}" in text and USERNAME in text and "password" in text
    assert wrong not in text and wrong not in caplog.text and PASSWORD not in caplog.text


def test_runbooks_reach_an_ntlm_listener_over_http(listeners, tmp_path):
    target = Target("sp-http", listeners["http"].url, "ntlm", USERNAME, None, allow_http=True)
    with RemoteSession.open(target, password=PASSWORD) as session:
        result = session.invoke("Get-LabWidget", {"Identity": "w9"})
    assert result.ok and str(result.output[0]) == "Widget w9"


def test_listeners_with_different_accounts_accept_only_their_own(tmp_path):
    servers = []
    try:
        for name, password in (("sp-one", "one-Passw0rd"), ("sp-two", "two-Passw0rd")):
            server = LabServer(name, None, scheme="http")
            WinRMEndpoint(server_name=name, commands=_table(), accounts={USERNAME: password},
                          auth=("negotiate",)).mount(server)
            servers.append((server.start(), password))
        (one, one_password), (two, two_password) = servers
        for server, right, other in ((one, one_password, two_password), (two, two_password, one_password)):
            listener = Listener(server, None, Path("unused"))  # type: ignore[arg-type]
            assert _logon(listener.wsman("ntlm", password=right))["User"] == USERNAME
            with pytest.raises(AuthenticationError):
                _logon(listener.wsman("ntlm", password=other))
    finally:
        for server, _ in servers:
            server.stop()
