"""Declared targets: a parameter model's marked fields — and only they — are a run's servers and tenants.

The end-to-end cases run a scenario whose parameters name a *list* of SharePoint front ends
(tests/notebooks/targets-fixture.ipynb) against the lab: every listed server is validated for its
role, its secrets are resolved before anything is contacted and scrubbed from the archive, and a
plain parameter that happens to equal a server's name makes nothing of that server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import pytest
import yaml
from pydantic import BaseModel

from conftest import ROOT
from runbooklib import scenarios
from runbooklib.errors import InputError
from runbooklib.inventory import Inventory
from runbooklib.targets import Server, Targets, Tenant, declared_targets, run_targets

NOTEBOOKS = ROOT / "tests" / "notebooks"
TARGETS_NOTEBOOK = NOTEBOOKS / "targets-fixture.ipynb"


def _inventory(**servers: str) -> Inventory:
    """An in-memory inventory: servers by name → role, and tenant contoso."""
    return Inventory.model_validate({
        "servers": {name: {"role": role, "winrm": f"https://{name}.contoso.com:5986/wsman", "auth": "kerberos",
                           "username": "CONTOSO\\admin"} for name, role in servers.items()},
        "tenants": {"contoso": {"tenant_id": "6c3f2b1a-0d4e-4f5a-9b8c-7d6e5f4a3b2c", "domain": "contoso.com",
                                "credential": {"type": "azure_cli"}}},
    })


class Pool(BaseModel):
    front_ends: Annotated[list[str], Server("skype")]
    edge: Annotated[str | None, Server("skype")] = None
    tenant: Annotated[str, Tenant()]
    display_name: str = ""


# -- reading the declarations ----------------------------------------------------------------


def test_only_marked_fields_are_declared_targets():
    assert declared_targets(Pool) == {"front_ends": Server("skype"), "edge": Server("skype"), "tenant": Tenant()}


def test_each_listed_server_and_the_tenant_are_targets_and_a_display_name_is_not():
    inv = _inventory(**{"fe1": "skype", "fe2": "skype", "sp-a": "sharepoint"})
    targets = run_targets(Pool(front_ends=["fe1", "fe2"], tenant="contoso", display_name="sp-a"), inv)
    assert [s.name for s in targets.servers] == ["fe1", "fe2"]
    assert [t.name for t in targets.tenants] == ["contoso"]


def test_a_server_named_twice_is_one_target():
    inv = _inventory(fe1="skype")
    targets = run_targets(Pool(front_ends=["fe1", "fe1"], edge="fe1", tenant="contoso"), inv)
    assert [s.name for s in targets.servers] == ["fe1"]


def test_an_unknown_list_element_names_its_position_and_the_known_servers():
    inv = _inventory(fe1="skype", fe2="skype")
    with pytest.raises(InputError) as caught:
        run_targets(Pool(front_ends=["fe1", "fe3"], tenant="contoso"), inv, source="pool.yaml")
    assert caught.value.field == "front_ends[1]"
    assert "no server named 'fe3'" in caught.value.message and caught.value.message.startswith("pool.yaml:")
    assert caught.value.hint == "Known servers: fe1, fe2."


def test_a_listed_server_of_another_role_names_the_role_wanted():
    inv = _inventory(fe1="skype", **{"sp-a": "sharepoint"})
    with pytest.raises(InputError) as caught:
        run_targets(Pool(front_ends=["fe1", "sp-a"], tenant="contoso"), inv)
    assert caught.value.field == "front_ends[1]"
    assert "sp-a is a sharepoint server, not a Skype for Business pool (role skype)" in caught.value.message
    assert "fe1" in caught.value.hint


def test_an_unknown_tenant_names_the_known_ones():
    with pytest.raises(InputError) as caught:
        run_targets(Pool(front_ends=[], tenant="fabrikam"), _inventory())
    assert caught.value.field == "tenant" and caught.value.hint == "Known tenants: contoso."


def test_the_hybrid_scenario_declares_its_farm_and_tenant():
    inv = _inventory(**{"sp-a": "sharepoint", "oos-1": "oos"})
    info = scenarios.find_scenario("sharepoint-hybrid")
    params = {"farm": "sp-a", "tenant": "contoso", "web_application": "https://sharepoint.contoso.com",
              "public_root_domain": "contoso.com", "app_principal_display_name": "oos-1"}
    targets = run_targets(info.validate(params, inv, source="p.yaml"), inv)
    assert [s.name for s in targets.servers] == ["sp-a"] and [t.name for t in targets.tenants] == ["contoso"]
    with pytest.raises(InputError) as caught:
        info.validate({**params, "farm": "oos-1"}, inv, source="p.yaml")
    assert caught.value.field == "farm" and "oos-1 is an oos server, not a SharePoint farm" in caught.value.message


def test_secrets_of_the_targets_say_where_the_inventory_holds_them():
    inv = Inventory.model_validate({
        "servers": {"fe1": {"role": "skype", "winrm": "https://fe1.contoso.com:5986/wsman", "auth": "basic",
                            "username": "CONTOSO\\admin", "password": "env:FE1_PASSWORD"}},
        "tenants": {"contoso": {"tenant_id": "6c3f2b1a-0d4e-4f5a-9b8c-7d6e5f4a3b2c", "domain": "contoso.com",
                                "credential": {"type": "client_secret", "client_id": "6c3f2b1a-0d4e-4f5a-9b8c-"
                                               "7d6e5f4a3b2d", "secret": "env:APP_SECRET"}}},
    })
    assert [tuple(s) for s in Targets.whole(inv).secrets()] == [
        ("servers.fe1.password", "env:FE1_PASSWORD"), ("tenants.contoso.credential.secret", "env:APP_SECRET")]


# -- end to end through the lab ---------------------------------------------------------------


@pytest.fixture
def registered(monkeypatch):
    """The targets fixture scenario in this process's registry (its notebook registers it in the kernel)."""
    monkeypatch.syspath_prepend(str(NOTEBOOKS))
    import targets_fixture

    monkeypatch.setitem(scenarios.SCENARIOS, "targets-fixture", targets_fixture.SCENARIO)
    return targets_fixture.SCENARIO


def _lab_inventory(lab, **changes: dict) -> Path:
    """The lab's inventory with server entries changed or added, written beside it (relative paths hold)."""
    data = yaml.safe_load(lab.inventory_path.read_text())
    for name, entry in changes.items():
        data["servers"][name] = {**data["servers"].get(name, {}), **entry}
    path = lab.dir / "targets-inventory.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _tripwire(lab, *names: str) -> None:
    """A pending fault on each server: any request to it would use the fault up."""
    for name in names:
        lab.server(name).faults.add("drop")


def _untouched(lab, *names: str) -> bool:
    return all(len(lab.server(name).faults.pending()) == 1 for name in names)


def _run(registered, inventory: Path, archive: Path, *params: str):
    from runbooklib.cli import main

    args = ["run", str(TARGETS_NOTEBOOK), "--inventory", str(inventory), "--archive", str(archive)]
    for param in params:
        args += ["-p", param]
    return main(args)


def _only_record(archive: Path) -> str:
    (entry,) = [json.loads(line) for line in (archive / "index.jsonl").read_text().splitlines()]
    return (archive / entry["path"]).read_text()


def test_every_listed_server_is_reached_and_its_secret_scrubbed_from_the_archive(lab, registered, tmp_path, capsys):
    archive = tmp_path / "records"
    inventory = _lab_inventory(lab)
    second = lab.dir / "secrets" / "sp-b"
    code = _run(registered, inventory, archive, "front_ends=[sp-a, sp-b]", f"plant_file={second}")
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    record = _only_record(archive)
    assert lab.password("sp-b") not in record and lab.password("sp-a") not in record
    assert "planted ********" in record, "the planted secret was printed, then scrubbed"
    assert "target sp-a: sharepoint at" in record and "target sp-b: sharepoint at" in record
    from runbooklib.record import read_notebook_scraps

    scraps = read_notebook_scraps(json.loads(record))
    assert [s["id"] for s in scraps["steps"]] == ["reach-sp-a", "reach-sp-b"]
    assert scraps["run"]["shells_opened"] == {"sp-a": 1, "sp-b": 1}


def test_a_missing_secret_of_the_second_listed_server_exits_2_with_nothing_contacted(lab, registered, tmp_path,
                                                                                     capsys):
    archive = tmp_path / "records"
    inventory = _lab_inventory(lab, **{"sp-b": {"password": "file:secrets/no-such-secret"}})
    _tripwire(lab, *lab.hosts)
    code = _run(registered, inventory, archive, "front_ends=[sp-a, sp-b]")
    err = capsys.readouterr().err
    assert code == 2, err
    assert "servers.sp-b.password" in err
    assert not archive.exists()
    assert _untouched(lab, *lab.hosts), "a server was contacted"


def test_a_listed_server_of_another_role_exits_2_naming_it_with_nothing_contacted(lab, registered, tmp_path, capsys):
    archive = tmp_path / "records"
    sp_b = yaml.safe_load(lab.inventory_path.read_text())["servers"]["sp-b"]
    inventory = _lab_inventory(lab, **{"oos-1": {**sp_b, "role": "oos"}})
    _tripwire(lab, *lab.hosts)
    code = _run(registered, inventory, archive, "front_ends=[sp-a, oos-1]")
    err = capsys.readouterr().err
    assert code == 2, err
    assert "front_ends[1]" in err and "not a SharePoint farm (role sharepoint)" in err
    assert not archive.exists()
    assert _untouched(lab, *lab.hosts), "a server was contacted"


def test_a_display_name_equal_to_a_server_name_is_not_a_target(lab, registered, tmp_path, capsys):
    archive = tmp_path / "records"
    # sp-b's secret cannot be resolved: only a target's secrets are required.
    inventory = _lab_inventory(lab, **{"sp-b": {"password": "file:secrets/no-such-secret"}})
    _tripwire(lab, "sp-b")
    code = _run(registered, inventory, archive, "front_ends=[sp-a]", "display_name=sp-b")
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    assert _untouched(lab, "sp-b"), "sp-b was contacted"
    record = _only_record(archive)
    assert "target sp-a: sharepoint at" in record and "target sp-b" not in record


def test_a_guided_runs_archive_is_scrubbed_of_every_listed_servers_secret(lab, registered, tmp_path):
    from runbooklib.execute import archive_guided_run
    from runbooklib.record import read_notebook_scraps, scrap_output

    inventory = _lab_inventory(lab)
    leaked = lab.password("sp-b")
    # A saved guided run whose cell shows the second front end's password (as a careless print would).
    notebook = json.loads(TARGETS_NOTEBOOK.read_text())
    notebook["metadata"]["papermill"] = {"parameters": {"inventory": str(inventory), "front_ends": ["sp-a", "sp-b"],
                                                        "display_name": "Front ends"}}
    notebook["cells"][3]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": f"planted {leaked}\n"}]
    notebook["cells"][5]["outputs"] = [scrap_output("run", {
        "scenario": "targets-fixture", "run_id": "0123456789ab", "status": "succeeded",
        "started": "2025-01-02T03:04:05Z", "sha256": {"notebook": "0" * 64}})]
    saved = tmp_path / "guided.ipynb"
    saved.write_text(json.dumps(notebook))
    archive = tmp_path / "records"

    entry = archive_guided_run(saved, archive)

    record = (archive / entry.path).read_text()
    assert leaked not in record and "planted ********" in record
    assert read_notebook_scraps(json.loads(record))["run"]["run_id"] == "0123456789ab"
