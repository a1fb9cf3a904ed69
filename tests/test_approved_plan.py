"""`--require-plan`: an apply held to the approved plan of its ticket, end to end against the lab.

The plan is made once per module; each test then changes the lab the way an administrator might
between the approval and the change window, and runs the apply headless (`runbook run`) or
guided (a notebook from `runbook prepare`, executed cell by cell as JupyterLab would).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest
import scrapbook
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from conftest import ROOT, lab_state_bytes, runbook
from runbooklib.execute import kernel_name
from estate_template import new_estate
from runbooklib.lab.estate import Estate
from runbooklib.lab.tenant.directory import find_service_principal
from runbooklib.record import read_notebook_scraps

pytestmark = pytest.mark.slow

SPO = "00000003-0000-0ff1-ce00-000000000000"
TICKET = "CHG-4711"


def _params(scenario: str) -> Path:
    return ROOT / "parameters" / "lab" / f"{scenario}.yaml"


def _run(lab: Estate, archive: Path, scenario: str, *args: str):
    return runbook("run", scenario, "--inventory", str(lab.inventory_path), "--params", str(_params(scenario)),
                   "--archive", str(archive), "-q", *args)


def _entries(archive: Path) -> list[dict]:
    index = archive / "index.jsonl"
    return [json.loads(line) for line in index.read_text().splitlines()] if index.exists() else []


def _last_scraps(archive: Path) -> dict:
    return scrapbook.read_notebook(str(archive / _entries(archive)[-1]["path"])).scraps.data_dict


def _requests(lab: Estate) -> dict[str, int]:
    return {name: lab.server(name).requests for name in lab.hosts}


def _remove_a_foreign_key(lab: Estate) -> None:
    """Someone removes one of the keys other apps put on the SharePoint Online principal."""
    with lab.tenant.directory(write=True) as directory:
        find_service_principal(directory, app_id=SPO)["keyCredentials"].pop(0)


@pytest.fixture(scope="module")
def estate(tmp_path_factory):
    lab = new_estate(tmp_path_factory.mktemp("estate")).start()
    try:
        yield lab
    finally:
        lab.stop()


@pytest.fixture(scope="module")
def hybrid_plan(estate, tmp_path_factory):
    """The archive holding the ticket's approved plan of the hybrid trust, made on the initial lab."""
    archive = tmp_path_factory.mktemp("approved") / "records"
    estate.reset()
    planned = _run(estate, archive, "sharepoint-hybrid", "--plan", "--ticket", TICKET)
    assert planned.returncode == 0, planned.stdout + planned.stderr
    return archive


@pytest.fixture
def drifted(estate, hybrid_plan):
    """The lab as it was planned on, then changed by hand: a key gone from the tenant principal."""
    estate.reset()
    _remove_a_foreign_key(estate)
    yield estate
    estate.reset()


def test_a_drifted_estate_stops_the_apply_before_anything_changes(drifted, hybrid_plan, tmp_path):
    archive = tmp_path / "records"
    shutil.copytree(hybrid_plan, archive)  # the approved plan, and none of the other tests' runs
    before = lab_state_bytes(drifted)
    result = _run(drifted, archive, "sharepoint-hybrid", "--ticket", TICKET, "--require-plan")
    assert result.returncode == 1, result.stdout + result.stderr
    assert lab_state_bytes(drifted) == before, "a departing apply must change nothing on the lab"

    plan_id = _entries(archive)[0]["run_id"]
    assert _entries(archive)[-1]["status"] == "failed"
    scraps = _last_scraps(archive)
    assert scraps["run"]["status"] == "failed" and scraps["run"]["plan_run_id"] == plan_id
    assert scraps["changes"] == 0 and scraps["steps"] == []
    (departure,) = scraps["departures"]
    assert departure["step"] == "sts-certificate"
    assert "keep 2 existing key(s)" in departure["plan"] and "keep 1 existing key(s)" in departure["now"]
    assert any(w.startswith("sts-certificate departs from the approved plan") for w in scraps["run"]["warnings"])
    assert "PlanDeparted: sts-certificate departs from the approved plan" in result.stdout
    history = runbook("history", "--archive", str(archive), "--json")
    assert json.loads(history.stdout.splitlines()[-1])["status"] == "failed"


def test_a_check_that_cannot_run_when_re_planned_fails_the_apply_before_anything_changes(estate, hybrid_plan,
                                                                                          tmp_path):
    archive = tmp_path / "records"
    shutil.copytree(hybrid_plan, archive)
    estate.reset()
    estate.server("sp-a").faults.add("no-outbound")  # the farm can no longer fetch the ACS metadata
    try:
        before = lab_state_bytes(estate)
        result = _run(estate, archive, "sharepoint-hybrid", "--ticket", TICKET, "--require-plan")
        assert result.returncode == 1, result.stdout + result.stderr
        assert "step preflight failed while it was checked against the approved plan" in result.stdout
        assert lab_state_bytes(estate) == before
        scraps = _last_scraps(archive)
        assert scraps["run"]["status"] == "failed" and scraps["steps"] == [] and "departures" not in scraps
    finally:
        estate.reset()


def test_an_estate_as_planned_is_applied_and_each_step_shows_it_as_planned(estate, tmp_path):
    # The OOS trust mints its self-signed certificate afresh on every run: a new thumbprint is no
    # departure from a plan that named the one its own run made.
    archive = tmp_path / "records"
    estate.reset()
    try:
        assert _run(estate, archive, "oos-trust", "--plan", "--ticket", TICKET).returncode == 0
        applied = _run(estate, archive, "oos-trust", "--ticket", TICKET, "--require-plan")
        assert applied.returncode == 0, applied.stdout + applied.stderr
        plan_id = _entries(archive)[0]["run_id"]
        scraps = _last_scraps(archive)
        assert scraps["run"]["status"] == "succeeded" and scraps["changes"] > 0
        assert [s["plan"] for s in scraps["steps"]] == [f"as planned in run {plan_id}"] * len(scraps["steps"])
        assert "departures" not in scraps and scraps["run"]["warnings"] == [
            "the certificate is self-signed: fit for a test estate only; use one from your CA in production"]
        issuers = {i["name"] for i in estate.farm("sp-a").snapshot()["trusted_issuers"]}
        assert "Office Online Server (SharePoint)" in issuers, "the apply really built the trust"
    finally:
        estate.reset()


@pytest.mark.parametrize(("command", "args", "says"), [
    ("run", ["--require-plan"], "needs the change ticket"),
    ("run", ["--ticket", "CHG-0000", "--require-plan"], "no plan of ticket CHG-0000"),
    ("run", ["--ticket", TICKET, "--require-plan", "-p", "prune_expired_keys=true"], "other parameters"),
    ("run", ["--ticket", TICKET, "--require-plan", "--plan"], "leave out --plan"),
    ("prepare", ["--ticket", TICKET, "--require-plan", "-p", "prune_expired_keys=true"], "other parameters"),
], ids=["no-ticket", "no-plan", "other-parameters", "with-plan", "prepare-other-parameters"])
def test_without_an_approved_plan_to_hold_to_nothing_is_contacted(estate, hybrid_plan, tmp_path, command, args, says):
    out = tmp_path / "guided.ipynb"
    before, records = _requests(estate), _entries(hybrid_plan)
    extra = ["--out", str(out)] if command == "prepare" else ["-q"]
    result = runbook(command, "sharepoint-hybrid", "--inventory", str(estate.inventory_path),
                     "--params", str(_params("sharepoint-hybrid")), "--archive", str(hybrid_plan), *extra, *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert says.lower() in result.stderr.lower()
    assert _requests(estate) == before and _entries(hybrid_plan) == records and not out.exists()


def test_a_guided_apply_stops_in_the_cell_of_the_departing_step(drifted, hybrid_plan, tmp_path):
    guided = tmp_path / "apply.ipynb"
    prepared = runbook("prepare", "sharepoint-hybrid", "--inventory", str(drifted.inventory_path),
                       "--params", str(_params("sharepoint-hybrid")), "--archive", str(hybrid_plan),
                       "--ticket", TICKET, "--require-plan", "--out", str(guided))
    assert prepared.returncode == 0, prepared.stderr
    before = lab_state_bytes(drifted)
    nb = nbformat.read(guided, as_version=4)
    client = NotebookClient(nb, kernel_name=kernel_name(), timeout=120,
                            resources={"metadata": {"path": str(ROOT / "notebooks")}})
    with pytest.raises(CellExecutionError) as stopped:
        client.execute()  # "Run All": stops at the first cell that errors
    assert stopped.value.ename == "PlanDeparted"
    assert stopped.value.evalue.startswith("sts-certificate departs from the approved plan")
    assert lab_state_bytes(drifted) == before

    ran = [c for c in nb.cells if c.cell_type == "code" and c.get("execution_count")]
    assert "run.step(hybrid.STS_KEY)" in ran[-1].source, "it stops in the departing step's own cell"
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert len(errors) == 1 and "What to do" in "\n".join(errors[0]["traceback"])
    scraps = read_notebook_scraps(nb)
    assert [d["step"] for d in scraps["departures"]] == ["sts-certificate"]
    assert scraps["run"]["status"] == "failed"
    assert [s["status"] for s in scraps["steps"]] == ["ok", "skipped", "ok", "failed"]

    nbformat.write(nb, guided)  # what "Save" in JupyterLab does; then the record is filed
    archive = tmp_path / "records"
    filed = runbook("archive", str(guided), "--archive", str(archive))
    assert filed.returncode == 0, filed.stderr
    assert _entries(archive)[-1]["status"] == "failed"


def test_a_guided_apply_that_agrees_with_its_plan_applies_cell_by_cell(estate, hybrid_plan, tmp_path):
    guided = tmp_path / "apply.ipynb"
    estate.reset()
    try:
        assert runbook("prepare", "sharepoint-hybrid", "--inventory", str(estate.inventory_path),
                       "--params", str(_params("sharepoint-hybrid")), "--archive", str(hybrid_plan),
                       "--ticket", TICKET, "--require-plan", "--out", str(guided)).returncode == 0
        nb = nbformat.read(guided, as_version=4)
        NotebookClient(nb, kernel_name=kernel_name(), timeout=120,
                       resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
        scraps = read_notebook_scraps(nb)
        plan_id = _entries(hybrid_plan)[0]["run_id"]
        assert scraps["run"]["status"] == "succeeded" and scraps["changes"] > 0
        assert {s["plan"] for s in scraps["steps"]} == {f"as planned in run {plan_id}"}
        assert estate.farm("sp-a").realm == estate.tenant.tenant_id
    finally:
        estate.reset()
