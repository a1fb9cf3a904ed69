"""runbooklib.graph through the real msgraph-sdk and azure-identity against the lab tenant."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Callable

import pytest

from runbooklib.errors import GraphError, InputError
from runbooklib.graph import GraphClient, wildcard_spn
from runbooklib.wellknown import EXCHANGE_PRINCIPAL_ID, SKYPE_PRINCIPAL_ID, SHAREPOINT_PRINCIPAL_ID as SPO_PRINCIPAL_ID
from runbooklib.lab.http import LabServer, Request, Response
from runbooklib.lab.pki import new_signing_certificate
from runbooklib.lab.tenant.graph import GraphApi

from tenant_lab import TenantLab, fresh, tenant_lab  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def graph(fresh: TenantLab):
    with fresh.graph() as client:
        yield client


def farm_cert(name: str = "SharePoint Security Token Service (contoso farm)"):
    return new_signing_certificate(name)


def test_tenant_id_is_the_inventorys(graph: GraphClient, fresh: TenantLab) -> None:
    assert graph.tenant_id() == fresh.tenant.tenant_id
    org = graph.organization()
    assert fresh.tenant.domain in org.verified_domains
    assert org.default_domain == fresh.tenant.domain


def test_spo_principal_shows_the_foreign_keys(graph: GraphClient, fresh: TenantLab) -> None:
    sp = graph.spo_principal()
    stored = fresh.tenant.service_principal(SPO_PRINCIPAL_ID)
    assert sp.app_id == SPO_PRINCIPAL_ID
    assert sp.object_id == stored["id"]
    assert sp.service_principal_names == stored["servicePrincipalNames"]
    assert sorted(k.thumbprint for k in sp.key_credentials) == sorted(
        k["customKeyIdentifier"] for k in stored["keyCredentials"]
    )
    assert len(sp.key_credentials) == 2


def test_adding_the_farm_key_keeps_both_foreign_keys_and_is_idempotent(graph: GraphClient, fresh: TenantLab) -> None:
    foreign = {k["keyId"]: k["key"] for k in fresh.tenant.key_credentials(SPO_PRINCIPAL_ID)}
    cert = farm_cert()
    planned = graph.plan_key_credential(cert)
    assert planned.action == "would_add" and not planned.changed
    assert len(fresh.tenant.key_credentials(SPO_PRINCIPAL_ID)) == 2  # planning wrote nothing

    change = graph.ensure_key_credential(cert, display_name="CN=contoso farm STS")
    assert change.action == "added" and change.changed
    stored = {k["keyId"]: k for k in fresh.tenant.key_credentials(SPO_PRINCIPAL_ID)}
    assert len(stored) == 3
    for key_id, key in foreign.items():  # same keyId, same certificate bytes
        assert stored[key_id]["key"] == key
    ours = stored[change.key_id]
    assert ours["customKeyIdentifier"] == change.thumbprint  # the hex thumbprint went over the wire
    assert ours["displayName"] == "CN=contoso farm STS"

    state_before = fresh.tenant.state_path.read_bytes()
    again = graph.ensure_key_credential(cert)
    assert again.action == "present" and not again.changed and again.changes == []
    assert fresh.tenant.state_path.read_bytes() == state_before
    assert graph.plan_key_credential(cert).action == "present"


class HoldFirstKeyWrite:
    """Wraps the lab's Graph route so two unserialised read-modify-writes of keyCredentials
    always overlap: the first PATCH of keyCredentials is held until another client has read
    the keys (a single-object GET with ``$select=keyCredentials``) — or, when nobody reads
    within ``bound`` seconds, because a lock keeps the other run waiting, until then.

    Without the runbook's lock the other run's read is answered from the state before the
    held write, so one of the two new keys is lost every time, not one run in five.
    """

    def __init__(self, graph: Callable[[Request], Response], *, bound: float) -> None:
        self._graph = graph
        self._bound = bound
        self._guard = threading.Lock()
        self._waiting: threading.Event | None = None
        self._used = False
        self.overlapped: bool | None = None  # did a read of the keys arrive while the write was held?

    def handle(self, request: Request) -> Response:
        if request.method == "PATCH" and b"keyCredentials" in request.body:
            with self._guard:
                first, self._used = not self._used, True
                if first:
                    self._waiting = threading.Event()
            if first:
                self.overlapped = self._waiting.wait(self._bound)
                with self._guard:
                    self._waiting = None
            return self._graph(request)
        response = self._graph(request)  # a read's answer is fixed before the held write goes on
        if request.method == "GET" and "keycredentials" in (request.query_value("$select") or "").lower():
            with self._guard:
                if self._waiting is not None:
                    self._waiting.set()
        return response


def test_two_processes_adding_keys_concurrently_both_survive(fresh: TenantLab, tmp_path: Path) -> None:
    # A server of its own for this test whose Graph holds the first key write (see HoldFirstKeyWrite).
    server = LabServer("contoso-held-write", fresh.ca.issue_server_certificate(["127.0.0.1", "localhost"]),
                       cert_dir=tmp_path / "tls")
    fresh.tenant.mount(server)
    hold = HoldFirstKeyWrite(GraphApi(fresh.tenant).handle, bound=2.0)
    server.mount("/v1.0/servicePrincipals", hold.handle, handles_error_faults=True)
    server.start()
    try:
        held = TenantLab(fresh.base, fresh.ca, fresh.tenant, server)
        _two_processes_add_a_key_each(held, tmp_path)
    finally:
        server.stop()
        fresh.tenant.servers.remove(server)
    assert hold.overlapped is False, "the second run read the keys while the first run's write was in flight"


def _two_processes_add_a_key_each(fresh: TenantLab, tmp_path: Path) -> None:
    inventory = fresh.write_inventory("concurrent.yaml")
    script = textwrap.dedent(
        """
        import sys, time
        from pathlib import Path
        from runbooklib.inventory import load_inventory
        from runbooklib.graph import GraphClient
        from runbooklib.lab.pki import new_signing_certificate
        inventory, name, lock_dir, go = sys.argv[1:5]
        spec = load_inventory(inventory).tenant("contoso")
        cert = new_signing_certificate(name)
        client = GraphClient(spec, lock_dir=Path(lock_dir))
        client.tenant_id()  # sign in and warm up before the start signal
        Path(go + "." + name).touch()
        while not Path(go).exists():
            time.sleep(0.01)
        change = client.ensure_key_credential(cert)
        print(change.action, change.thumbprint)
        client.close()
        """
    )
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(inventory), name, str(fresh.base / "locks"), str(go)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for name in ("farm-a", "farm-b")
    ]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"go.{n}").exists() for n in ("farm-a", "farm-b")):
        assert time.monotonic() < deadline, [p.communicate() for p in procs]
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.02)
    go.touch()
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    thumbs = {out.split()[1] for out, _ in outputs}
    assert all(out.split()[0] == "added" for out, _ in outputs)
    stored = {k["customKeyIdentifier"] for k in fresh.tenant.key_credentials(SPO_PRINCIPAL_ID)}
    assert len(stored) == 4 and thumbs <= stored


def test_throttled_twice_then_succeeds(graph: GraphClient, fresh: TenantLab) -> None:
    graph.tenant_id()  # signed in; now only Graph is throttled
    fresh.tenant.throttle_next(2)
    started = time.monotonic()
    assert graph.spo_principal().app_id == SPO_PRINCIPAL_ID
    assert 1.5 < time.monotonic() - started < 10  # honoured Retry-After: 1, twice


def test_403_names_the_missing_permission(fresh: TenantLab) -> None:
    reader = fresh.tenant.reader_app
    credential = {"type": "client_secret", "client_id": reader.client_id, "secret": "file:secrets/reader"}
    with fresh.graph(credential) as client:
        assert client.tenant_id() == fresh.tenant.tenant_id  # Organization.Read.All is enough here
        with pytest.raises(GraphError) as caught:
            client.ensure_key_credential(farm_cert())
    err = caught.value
    assert err.code == "Authorization_RequestDenied" and err.status == 403
    assert "Application.ReadWrite.All" in str(err) and reader.client_id in str(err)
    assert len(fresh.tenant.key_credentials(SPO_PRINCIPAL_ID)) == 2


def test_wrong_secret_is_a_sign_in_error_with_the_aadsts_code(fresh: TenantLab) -> None:
    (fresh.base / "inventory" / "secrets" / "wrong").write_text("not-the-secret")
    credential = {"type": "client_secret", "client_id": fresh.tenant.runbook_app.client_id,
                  "secret": "file:secrets/wrong"}
    with fresh.graph(credential) as client, pytest.raises(GraphError) as caught:
        client.tenant_id()
    assert caught.value.code == "AADSTS7000215"
    assert "not-the-secret" not in str(caught.value)


def test_device_code_sign_in_completes_headless(fresh: TenantLab) -> None:
    shown: list[str] = []
    credential = {"type": "device_code", "client_id": fresh.tenant.runbook_app.client_id}
    with fresh.graph(credential, prompt=shown.append) as client:
        assert client.tenant_id() == fresh.tenant.tenant_id
        change = client.ensure_key_credential(farm_cert())
    assert change.action == "added"
    assert len(shown) == 1 and f"{fresh.url}/devicelogin" in shown[0]
    assert any(len(word.rstrip(".")) == 9 and word.isupper() for word in shown[0].split())


def test_certificate_credential_works(fresh: TenantLab) -> None:
    credential = {"type": "certificate", "client_id": fresh.tenant.runbook_app.client_id,
                  "certificate": "file:secrets/contoso-app.pem"}
    with fresh.graph(credential) as client:
        assert client.tenant_id() == fresh.tenant.tenant_id


def test_certificate_not_registered_is_refused(fresh: TenantLab) -> None:
    other = new_signing_certificate("not registered")
    path = fresh.base / "inventory" / "secrets" / "other.pem"
    path.write_bytes(other.cert_pem + other.key_pem)
    credential = {"type": "certificate", "client_id": fresh.tenant.runbook_app.client_id,
                  "certificate": "file:secrets/other.pem"}
    with fresh.graph(credential) as client, pytest.raises(GraphError) as caught:
        client.tenant_id()
    assert caught.value.code == "AADSTS700027"


def test_prune_removes_only_expired_keys(graph: GraphClient, fresh: TenantLab) -> None:
    graph.ensure_key_credential(farm_cert())
    before = fresh.tenant.key_credentials(SPO_PRINCIPAL_ID)
    now = dt.datetime.now(dt.timezone.utc)
    expired = [k for k in before if dt.datetime.fromisoformat(k["endDateTime"].replace("Z", "+00:00")) < now]
    assert len(expired) == 1
    plan = graph.plan_prune_expired_key_credentials()
    assert plan.action == "would_prune" and [k.key_id for k in plan.removed] == [expired[0]["keyId"]]
    assert len(fresh.tenant.key_credentials(SPO_PRINCIPAL_ID)) == 3
    change = graph.prune_expired_key_credentials()
    assert change.action == "pruned" and len(change.changes) == 1
    after = {k["keyId"]: k["key"] for k in fresh.tenant.key_credentials(SPO_PRINCIPAL_ID)}
    assert after == {k["keyId"]: k["key"] for k in before if k["keyId"] != expired[0]["keyId"]}
    assert graph.prune_expired_key_credentials().action == "none"


def test_size_limit_says_to_prune(graph: GraphClient, fresh: TenantLab) -> None:
    fresh.tenant.set_size_limit(2)
    with pytest.raises(GraphError) as caught:
        graph.ensure_key_credential(farm_cert())
    assert caught.value.code == "Directory_ResourceSizeExceeded"
    assert "prune_expired_key_credentials" in str(caught.value)
    assert len(fresh.tenant.key_credentials(SPO_PRINCIPAL_ID)) == 2


def test_a_key_lost_on_write_fails_loudly(graph: GraphClient, fresh: TenantLab, monkeypatch) -> None:
    # Simulate another tool that rewrote keyCredentials between our read and our write.
    principal = graph.principal(SPO_PRINCIPAL_ID)
    original = principal._patch_keys

    def patch_then_lose(creds, action):
        original(creds, action)
        sp = fresh.tenant.service_principal(SPO_PRINCIPAL_ID)
        with fresh.tenant._directory(write=True) as directory:
            target = next(s for s in directory["servicePrincipals"] if s["id"] == sp["id"])
            target["keyCredentials"] = [k for k in target["keyCredentials"] if "fabrikam" not in k["displayName"]]

    monkeypatch.setattr(principal, "_patch_keys", patch_then_lose)
    with pytest.raises(GraphError) as caught:
        graph.ensure_key_credential(farm_cert())
    assert caught.value.code == "KeyCredentialLost"
    assert "fabrikam" in str(caught.value)


def test_ensure_spn_adds_the_wildcard_once(graph: GraphClient, fresh: TenantLab) -> None:
    spn = f"{SPO_PRINCIPAL_ID}/*.contoso.lab"
    assert graph.plan_spn("contoso.lab").action == "would_add"
    change = graph.ensure_spn("contoso.lab")
    assert change.action == "added" and change.spn == spn and change.warnings == []
    assert spn in fresh.tenant.spns(SPO_PRINCIPAL_ID)
    assert set(change.before) < set(fresh.tenant.spns(SPO_PRINCIPAL_ID))
    assert graph.ensure_spn("CONTOSO.lab").action == "present"


def test_ensure_spn_warns_about_another_spn_with_the_domain(graph: GraphClient, fresh: TenantLab, caplog) -> None:
    fresh.tenant.add_spn(SPO_PRINCIPAL_ID, f"{SPO_PRINCIPAL_ID}/sharepoint.contoso.lab")
    change = graph.ensure_spn("contoso.lab")
    assert change.action == "added"
    assert len(change.warnings) == 1 and "sharepoint.contoso.lab" in change.warnings[0]
    assert "sharepoint.contoso.lab" in caplog.text


def test_ensure_host_spn_adds_one_host_to_the_skype_principal_once(graph: GraphClient, fresh: TenantLab) -> None:
    skype = graph.principal(SKYPE_PRINCIPAL_ID)
    before = fresh.tenant.spns(SKYPE_PRINCIPAL_ID)
    assert skype.plan_host_spn("webext.contoso.lab").action == "would_add"
    change = skype.ensure_host_spn("WebExt.contoso.lab")
    assert change.action == "added" and change.spn == f"{SKYPE_PRINCIPAL_ID}/webext.contoso.lab"
    assert fresh.tenant.spns(SKYPE_PRINCIPAL_ID) == before + [change.spn]
    assert skype.ensure_host_spn("webext.contoso.lab").action == "present"
    with pytest.raises(InputError, match="not a host name"):
        skype.ensure_host_spn("https://webext.contoso.lab/")


def test_ensure_spn_names_the_principal_that_holds_it(graph: GraphClient, fresh: TenantLab) -> None:
    exchange = "00000002-0000-0ff1-ce00-000000000000"
    fresh.tenant.add_spn(exchange, wildcard_spn("fabrikam.lab"))
    with pytest.raises(GraphError) as caught:
        graph.ensure_spn("fabrikam.lab")
    assert caught.value.code == "Request_MultipleObjectsWithSameKeyValue"
    assert "Exchange" in str(caught.value)


@pytest.mark.parametrize("bad", ["https://contoso.lab", "contoso", "", "contoso.lab/path"])
def test_root_domain_is_checked_before_contacting_anything(bad: str) -> None:
    with pytest.raises(InputError):
        wildcard_spn(bad)


def test_msgraph_is_not_imported_with_the_module() -> None:
    code = "import sys, runbooklib.graph; print('msgraph' in sys.modules, 'azure.identity' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_state_written_by_graph_is_plain_json(fresh: TenantLab, graph: GraphClient) -> None:
    graph.ensure_spn("contoso.lab")
    data = json.loads(fresh.tenant.state_path.read_text())
    assert wildcard_spn("contoso.lab") in json.dumps(data["directory"])


def test_device_code_is_shown_on_stderr_outside_a_notebook(fresh: TenantLab, capsys) -> None:
    credential = {"type": "device_code", "client_id": fresh.tenant.runbook_app.client_id}
    with fresh.graph(credential) as client:
        assert client.tenant_id() == fresh.tenant.tenant_id
    err = capsys.readouterr().err
    assert f"{fresh.url}/devicelogin" in err and "enter the code" in err


def test_works_where_an_event_loop_is_already_running(graph: GraphClient, fresh: TenantLab) -> None:
    """A Jupyter kernel runs cells inside its own loop; the facade must not need that loop."""
    import asyncio

    async def cell() -> str:
        return graph.tenant_id()

    assert asyncio.run(cell()) == fresh.tenant.tenant_id


def test_azure_cli_without_a_sign_in_says_to_run_az_login(fresh: TenantLab, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(fresh.base))  # no 'az' here
    with fresh.graph({"type": "azure_cli"}) as client, pytest.raises(GraphError) as caught:
        client.tenant_id()
    assert caught.value.code == "AzureCliUnavailable"
    assert f"az login --tenant {fresh.tenant.tenant_id}" in str(caught.value)


def test_the_exchange_principal_gets_a_key_keeps_it_and_loses_only_expired_keys(graph: GraphClient,
                                                                                  fresh: TenantLab) -> None:
    exchange = graph.principal(EXCHANGE_PRINCIPAL_ID)
    spo_before = fresh.tenant.key_credentials(SPO_PRINCIPAL_ID)
    now = dt.datetime.now(dt.timezone.utc)
    short_lived = new_signing_certificate("Exchange auth certificate (old)", not_after=now + dt.timedelta(days=1))
    current = new_signing_certificate("Exchange auth certificate")

    assert exchange.read().app_id == EXCHANGE_PRINCIPAL_ID and exchange.key_credentials() == []
    planned = exchange.plan_key_credential(short_lived)
    assert planned.changes == [f"would add the certificate {planned.thumbprint} to the Exchange Online principal "
                               "(keeping its 0 key(s))"]
    first = exchange.ensure_key_credential(short_lived)
    second = exchange.ensure_key_credential(current)
    assert first.action == second.action == "added"
    assert second.changes == [f"added the certificate {second.thumbprint} to the Exchange Online principal "
                              "(1 existing key(s) kept)"]
    stored = {k["customKeyIdentifier"] for k in fresh.tenant.key_credentials(EXCHANGE_PRINCIPAL_ID)}
    assert stored == {first.thumbprint, second.thumbprint}
    assert exchange.ensure_key_credential(current).action == "present"
    assert exchange.read().key_for(second.thumbprint).key_id == second.key_id
    assert fresh.tenant.key_credentials(SPO_PRINCIPAL_ID) == spo_before, "another principal's keys changed"

    assert exchange.plan_prune_expired_key_credentials().action == "none"  # nothing has expired yet
    later = now + dt.timedelta(days=2)
    pruned = exchange.prune_expired_key_credentials(now=later)
    assert pruned.action == "pruned" and [k.key_id for k in pruned.removed] == [first.key_id]
    assert [k["keyId"] for k in fresh.tenant.key_credentials(EXCHANGE_PRINCIPAL_ID)] == [second.key_id]
    assert exchange.read().expired_keys(later) == []


def test_the_size_limit_and_spn_texts_name_the_principal_they_touch(graph: GraphClient, fresh: TenantLab) -> None:
    exchange = graph.principal(EXCHANGE_PRINCIPAL_ID)
    fresh.tenant.set_size_limit(0)
    with pytest.raises(GraphError) as caught:
        exchange.ensure_key_credential(farm_cert())
    assert caught.value.code == "Directory_ResourceSizeExceeded"
    assert "the Exchange Online principal holds too many keys" in str(caught.value)

    fresh.tenant.add_spn(EXCHANGE_PRINCIPAL_ID, f"{EXCHANGE_PRINCIPAL_ID}/mail.contoso.lab")
    change = exchange.ensure_spn("contoso.lab")
    assert change.spn == f"{EXCHANGE_PRINCIPAL_ID}/*.contoso.lab" and change.action == "added"
    assert change.changes == [f"added the SPN {change.spn} to the Exchange Online principal"]
    assert change.warnings and change.warnings[0].startswith("the Exchange Online principal also has the SPN")
    assert change.spn in fresh.tenant.spns(EXCHANGE_PRINCIPAL_ID)
    assert change.spn not in fresh.tenant.spns(SPO_PRINCIPAL_ID)
