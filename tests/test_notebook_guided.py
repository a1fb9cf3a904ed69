"""A guided run: `runbook prepare` writes the notebook an administrator opens in JupyterLab; nbval
executes it cell by cell against the lab, as JupyterLab would."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT, runbook

pytestmark = pytest.mark.slow


def test_prepared_hybrid_notebook_runs_cell_by_cell_under_nbval(lab, tmp_path):
    prepared = tmp_path / "hybrid-guided.ipynb"
    result = runbook("prepare", "sharepoint-hybrid", "--inventory", str(lab.inventory_path),
                     "--params", str(ROOT / "parameters" / "lab" / "sharepoint-hybrid.yaml"), "--out", str(prepared))
    assert result.returncode == 0, result.stderr
    nb = json.loads(prepared.read_text())
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and str(lab.inventory_path) in "".join(injected[0]["source"])
    assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")

    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "--nbval-lax",
         "--nbval-kernel-name", "python3", "--nbval-cell-timeout", "120", str(prepared)],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " passed" in run.stdout
    # The guided run really changed the lab: the farm's realm is now the tenant id.
    assert lab.farm("sp-a").realm == lab.tenant.tenant_id


def test_archiving_a_guided_run_scrubs_a_password_typed_into_a_cell(lab, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    from runbooklib.execute import kernel_name

    guided = tmp_path / "guided.ipynb"
    assert runbook("prepare", "sharepoint-hybrid", "--inventory", str(lab.inventory_path), "--plan",
                   "--params", str(ROOT / "parameters" / "lab" / "sharepoint-hybrid.yaml"),
                   "--out", str(guided)).returncode == 0
    nb = nbformat.read(guided, as_version=4)
    password = lab.password("sp-a")
    # What the redactor cannot see: a secret typed into a cell's source by the administrator.
    nb.cells.append(nbformat.v4.new_code_cell(f"# tried by hand: {password}"))
    NotebookClient(nb, kernel_name=kernel_name(), timeout=120,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    nbformat.write(nb, guided)
    archive = tmp_path / "records"
    result = runbook("archive", str(guided), "--archive", str(archive))
    assert result.returncode == 0, result.stderr
    blob = b"".join(p.read_bytes() for p in archive.rglob("*") if p.is_file())
    assert password.encode() not in blob and b"tried by hand: ********" in blob
    entry = json.loads((archive / "index.jsonl").read_text())
    assert entry["status"] == "planned" and entry["scenario"] == "sharepoint-hybrid"
