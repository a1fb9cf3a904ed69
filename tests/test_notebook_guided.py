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
