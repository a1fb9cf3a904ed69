"""A guided run as an administrator does it: `runbook prepare`, then JupyterLab in a real browser,
cell by cell, save, `runbook archive` — and the record sits in the history beside a headless run."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT, runbook
from runbooklib.record import read_notebook_scraps

from .harness import NotebookPage

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCENARIO = "sharepoint-hybrid"
PARAMS = ROOT / "parameters" / "lab" / f"{SCENARIO}.yaml"
STEP_TABLE = ["found", "wanted", "action", "result", "proof"]
SUMMARY_TABLE = ["step", "status", "changes / proof"]


def _history(archive: Path) -> list[dict]:
    result = runbook("history", "--archive", str(archive), "--json")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_a_prepared_notebook_run_cell_by_cell_in_jupyterlab_is_filed_like_a_headless_run(
        lab, jupyter_lab, page, console, artifacts, tmp_path):
    guided, archive = jupyter_lab.root / f"{SCENARIO}-guided.ipynb", tmp_path / "records"
    common = ["--inventory", str(lab.inventory_path), "--params", str(PARAMS), "--ticket", "CHG-14"]
    prepared = runbook("prepare", SCENARIO, *common, "--out", str(guided))
    assert prepared.returncode == 0, prepared.stderr

    notebook = NotebookPage(page, jupyter_lab, guided.name).open()
    cells = notebook.run_cell_by_cell()
    page.screenshot(path=str(artifacts / "guided-run.png"), full_page=True)

    assert len(cells) == notebook.cell_count, f"stopped at cell {cells[-1].index}: {cells[-1].errors}"
    assert [(c.index, c.errors) for c in cells if c.errors] == []
    step_cells = [c for c in cells if "run.step(" in c.source]
    assert step_cells and all(c.prompt != "[ ]:" for c in step_cells)
    for c in step_cells:
        assert c.tables == [STEP_TABLE], f"cell {c.index} ({c.source.strip()}) shows no step table"
    summary = cells[-1]
    assert "run.finish()" in summary.source and summary.tables == [SUMMARY_TABLE]
    assert "succeeded" in summary.outputs[0]
    assert console.errors == []

    notebook.save()
    saved = nbformat.read(guided, as_version=4)
    assert not [o for c in saved.cells for o in c.get("outputs", []) if o.output_type == "error"]
    guided_run = read_notebook_scraps(saved)
    assert len(guided_run["steps"]) == len(step_cells)
    # The guided run really changed the lab.
    assert lab.farm("sp-a").realm == lab.tenant.tenant_id

    filed = runbook("archive", str(guided), "--archive", str(archive))
    assert filed.returncode == 0, filed.stderr
    headless = runbook("run", SCENARIO, *common, "--archive", str(archive), "--quiet")
    assert headless.returncode == 0, headless.stderr + headless.stdout

    rows = _history(archive)
    assert [r["run_id"] for r in rows][0] == guided_run["run"]["run_id"] and len(rows) == 2
    by_guided, by_headless = rows
    assert by_guided.keys() == by_headless.keys()
    for key in ("scenario", "mode", "status", "ticket", "user"):
        assert by_guided[key] == by_headless[key], key
    assert (by_guided["scenario"], by_guided["mode"], by_guided["status"]) == (SCENARIO, "apply", "succeeded")
    # The guided run made the changes; the headless one after it found them made.
    assert by_guided["changes"] > 0 and by_headless["changes"] == 0
    records = [Path(r["path"]).relative_to(archive) for r in rows]
    assert records[0].parent == records[1].parent
    assert [p.name.endswith(f"-{r['run_id']}.ipynb") for p, r in zip(records, rows)] == [True, True]
    step_ids = [[s["id"] for s in read_notebook_scraps(nbformat.read(archive / p, as_version=4))["steps"]]
                for p in records]
    assert step_ids[0] == step_ids[1]

    text = runbook("history", "--archive", str(archive)).stdout.splitlines()
    assert [line.split()[1:4] for line in text[1:]] == [[SCENARIO, "apply", "succeeded"]] * 2
    verified = runbook("verify-archive", "--archive", str(archive))
    assert verified.returncode == 0 and "2 record(s), chain intact" in verified.stdout, verified.stdout


def test_a_require_plan_notebook_on_a_drifted_lab_stops_in_the_departing_steps_cell(
        lab, jupyter_lab, page, console, artifacts, tmp_path):
    from conftest import lab_state_bytes
    from runbooklib.lab.tenant.directory import find_service_principal

    archive, ticket = tmp_path / "records", "CHG-14-DRIFT"
    common = ["--inventory", str(lab.inventory_path), "--params", str(PARAMS), "--ticket", ticket,
              "--archive", str(archive)]
    planned = runbook("run", SCENARIO, *common, "--plan", "--quiet")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    # After the change board approved the plan, someone removes a key from the SharePoint Online principal.
    with lab.tenant.directory(write=True) as directory:
        find_service_principal(directory, app_id="00000003-0000-0ff1-ce00-000000000000")["keyCredentials"].pop(0)
    guided = jupyter_lab.root / f"{SCENARIO}-require-plan.ipynb"
    prepared = runbook("prepare", SCENARIO, *common, "--require-plan", "--out", str(guided))
    assert prepared.returncode == 0, prepared.stderr
    before = lab_state_bytes(lab)

    cells = NotebookPage(page, jupyter_lab, guided.name).open().run_cell_by_cell()
    page.screenshot(path=str(artifacts / "stopped.png"), full_page=True)

    stopped = cells[-1]
    assert "run.step(hybrid.STS_KEY)" in stopped.source, f"stopped in cell {stopped.index}: {stopped.source}"
    assert [e["ename"] for e in stopped.errors] == ["PlanDeparted"]
    assert stopped.errors[0]["evalue"].startswith("sts-certificate departs from the approved plan")
    assert "departs from the approved plan" in "".join(stopped.outputs)  # what the administrator reads
    assert [(c.index, c.errors) for c in cells[:-1] if c.errors] == []
    assert lab_state_bytes(lab) == before, "a departing step must change nothing on the lab"
    assert console.errors == []
