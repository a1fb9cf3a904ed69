"""The `run` scrap is built in one place: a record the kernel wrote and one `runbook run` wrote
for a notebook that stopped before it could record itself carry the same keys."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import FIXTURE_NOTEBOOK
from runbooklib.cli import main
from runbooklib.record import read_notebook_scraps

CONTRACT = {"scenario", "run_id", "status", "started", "finished", "user", "host", "ticket", "mode", "sha256",
            "versions", "parameters", "warnings", "shells_opened", "plan_run_id", "minted"}


def _run_scrap(archive: Path) -> dict:
    (line,) = (archive / "index.jsonl").read_text().splitlines()
    return read_notebook_scraps(json.loads((archive / json.loads(line)["path"]).read_text()))["run"]


def _stopping_before_start(tmp_path: Path) -> Path:
    """The fixture notebook with a cell that fails before the run starts: the kernel records nothing."""
    notebook = json.loads(FIXTURE_NOTEBOOK.read_text())
    notebook["cells"].insert(2, {"cell_type": "code", "execution_count": None, "id": "stop", "metadata": {},
                                 "outputs": [], "source": 'raise RuntimeError("stopped before the run started")'})
    path = tmp_path / "stops-early.ipynb"
    path.write_text(json.dumps(notebook))
    return path


def test_a_normal_and_a_failure_record_have_the_same_manifest_keys(tmp_path, capsys):
    work = tmp_path / "work"
    work.mkdir()
    assert main(["run", str(FIXTURE_NOTEBOOK), "-p", f"workdir={work}", "--ticket", "CHG-1",
                 "--archive", str(tmp_path / "normal")]) == 0
    assert main(["run", str(_stopping_before_start(tmp_path)), "-p", f"workdir={work}", "--ticket", "CHG-1",
                 "--archive", str(tmp_path / "failure")]) == 1
    capsys.readouterr()

    normal, failure = _run_scrap(tmp_path / "normal"), _run_scrap(tmp_path / "failure")

    assert set(normal) == set(failure) == CONTRACT
    assert set(normal["sha256"]) == set(failure["sha256"]) == {"notebook", "parameters", "inventory"}
    assert set(normal["versions"]) == set(failure["versions"])
    assert (normal["status"], failure["status"]) == ("succeeded", "failed")
    assert failure["ticket"] == "CHG-1" and failure["parameters"]["workdir"] == str(work)
    assert any("stopped before the run started" in w for w in failure["warnings"])
