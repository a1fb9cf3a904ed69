"""The command line around the runs: `scenarios`, `prepare` (guided runs), `history`, RUNBOOK_ARCHIVE."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import FIXTURE_NOTEBOOK, runbook
from runbooklib.execute import kernel_name
from runbooklib.record import read_notebook_scraps


def runbook_with_archive_env(*args: str, archive, cwd) -> subprocess.CompletedProcess:
    """Like conftest.runbook, but with RUNBOOK_ARCHIVE set (that helper always removes it)."""
    return subprocess.run(
        [sys.executable, "-m", "runbooklib.cli", *args],
        capture_output=True, text=True, env={**os.environ, "RUNBOOK_ARCHIVE": str(archive)}, cwd=cwd,
        timeout=240, stdin=subprocess.DEVNULL,
    )


# -- scenarios ----------------------------------------------------------------------------------


def test_scenarios_lists_sharepoint_hybrid():
    result = runbook("scenarios")
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("sharepoint-hybrid "))
    assert "SharePoint" in line
    assert "ready" in line or "not yet available" in line


# -- prepare ------------------------------------------------------------------------------------


def _code_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def test_prepare_injects_parameters_and_writes_no_outputs(tmp_path):
    out = tmp_path / "guided" / "X.ipynb"
    work = tmp_path / "work"
    result = runbook("prepare", str(FIXTURE_NOTEBOOK), "-p", f"workdir={work}", "--ticket", "CHG-9",
                     "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout
    nb = nbformat.read(out, as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1
    source = injected[0].source
    assert f'workdir = "{work}"' in source
    assert 'ticket = "CHG-9"' in source and 'mode = "apply"' in source
    # It follows the notebook's own parameters cell, so the injected values win.
    cells = nb.cells
    assert "parameters" in cells[cells.index(injected[0]) - 1].metadata.get("tags", [])
    for cell in _code_cells(nb):
        assert cell.outputs == [] and cell.execution_count is None
    assert not work.exists(), "preparing runs nothing"


def test_prepare_plan_injects_plan_mode(tmp_path):
    out = tmp_path / "P.ipynb"
    result = runbook("prepare", str(FIXTURE_NOTEBOOK), "-p", f"workdir={tmp_path}", "--plan", "--out", str(out))
    assert result.returncode == 0, result.stderr
    nb = nbformat.read(out, as_version=4)
    injected = next(c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert 'mode = "plan"' in injected.source


def test_prepare_refuses_to_overwrite(tmp_path):
    out = tmp_path / "X.ipynb"
    out.write_text("my own notes\n")
    result = runbook("prepare", str(FIXTURE_NOTEBOOK), "-p", f"workdir={tmp_path}", "--out", str(out))
    assert result.returncode == 2
    assert "already exists" in result.stderr and "--out" in result.stderr
    assert out.read_text() == "my own notes\n"


def test_prepare_with_bad_input_exits_2_and_writes_nothing(tmp_path):
    out = tmp_path / "X.ipynb"
    result = runbook("prepare", str(tmp_path / "missing.ipynb"), "--out", str(out))
    assert result.returncode == 2
    assert not out.exists()


@pytest.mark.slow
def test_prepared_notebook_runs_cell_by_cell_to_a_run_scrap(tmp_path):
    out = tmp_path / "X.ipynb"
    work = tmp_path / "work"
    work.mkdir()
    result = runbook("prepare", str(FIXTURE_NOTEBOOK), "-p", f"workdir={work}", "--ticket", "CHG-9",
                     "--out", str(out))
    assert result.returncode == 0, result.stderr
    nb = nbformat.read(out, as_version=4)
    # As JupyterLab would: every cell in order, no papermill involved. The fixture imports its
    # steps module from beside the source notebook, hence that working directory.
    NotebookClient(nb, kernel_name=kernel_name(), timeout=120,
                   resources={"metadata": {"path": str(FIXTURE_NOTEBOOK.parent)}}).execute()
    scraps = read_notebook_scraps(nb)
    run = scraps["run"]
    assert run["status"] == "succeeded" and run["mode"] == "apply" and run["ticket"] == "CHG-9"
    prepared_context = nb.metadata["papermill"]["parameters"]["run_context"]
    assert "run_id" not in prepared_context, "each execution of a prepared notebook is its own run"
    assert len(run["run_id"]) == 12
    assert run["sha256"]["notebook"] == prepared_context["source_sha256"]
    assert scraps["changes"] == 2
    assert {p.name for p in work.iterdir()} == {"first", "second"}


# -- history and RUNBOOK_ARCHIVE ----------------------------------------------------------------


@pytest.fixture(scope="module")
def archive_of_two_runs(tmp_path_factory):
    """A planned run (with --archive), then an applied one (archive given by RUNBOOK_ARCHIVE only)."""
    base = tmp_path_factory.mktemp("history")
    # Not named "records", so a run that ignored RUNBOOK_ARCHIVE could not land here by default.
    work, archive = base / "work", base / "archive"
    work.mkdir()
    planned = runbook("run", str(FIXTURE_NOTEBOOK), "-p", f"workdir={work}", "--plan", "--ticket", "CHG-PLAN",
                      "--archive", str(archive), "--quiet")
    assert planned.returncode == 0, planned.stderr
    applied = runbook_with_archive_env("run", str(FIXTURE_NOTEBOOK), "-p", f"workdir={work}",
                                       "--ticket", "CHG-APPLY", "--quiet", archive=archive, cwd=work)
    assert applied.returncode == 0, applied.stderr
    return base, archive


def _history_rows(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


@pytest.mark.slow
def test_history_json_shows_both_runs(archive_of_two_runs):
    _, archive = archive_of_two_runs
    result = runbook("history", "--archive", str(archive), "--json")
    assert result.returncode == 0, result.stderr
    rows = _history_rows(result.stdout)
    assert [(r["status"], r["mode"], r["ticket"], r["changes"]) for r in rows] == [
        ("planned", "plan", "CHG-PLAN", 0),
        ("succeeded", "apply", "CHG-APPLY", 2),
    ]
    assert all(r["scenario"] == "steps-fixture" for r in rows)
    assert len({r["run_id"] for r in rows}) == 2
    for row in rows:
        assert os.path.isfile(row["path"])


@pytest.mark.slow
def test_history_text_shows_both_runs(archive_of_two_runs):
    _, archive = archive_of_two_runs
    rows = _history_rows(runbook("history", "--archive", str(archive), "--json").stdout)
    result = runbook("history", "--archive", str(archive))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:5] == ["recorded", "scenario", "mode", "status", "changes"]
    assert len(lines) == 3
    for row, line in zip(rows, lines[1:]):
        fields = line.split()
        assert fields[1:] == ["steps-fixture", row["mode"], row["status"], str(row["changes"]), row["run_id"],
                              row["ticket"]]


@pytest.mark.slow
def test_runbook_archive_env_is_honoured_without_archive_option(archive_of_two_runs):
    base, archive = archive_of_two_runs
    # The applied run went to RUNBOOK_ARCHIVE, not to ./records in its working directory.
    assert len((archive / "index.jsonl").read_text().splitlines()) == 2
    assert not (base / "work" / "records").exists()
    by_env = runbook_with_archive_env("history", "--json", archive=archive, cwd=base / "work")
    by_option = runbook("history", "--archive", str(archive), "--json")
    assert by_env.returncode == 0, by_env.stderr
    assert _history_rows(by_env.stdout) == _history_rows(by_option.stdout)
    assert len(_history_rows(by_env.stdout)) == 2
    # --archive wins over the environment.
    elsewhere = runbook_with_archive_env("history", "--archive", str(base / "empty"), archive=archive,
                                         cwd=base / "work")
    assert elsewhere.returncode == 0
    assert "no runs archived" in elsewhere.stdout


def test_history_of_an_empty_archive_says_so(tmp_path):
    result = runbook("history", "--archive", str(tmp_path / "records"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"no runs archived in {tmp_path / 'records'}"
    assert runbook("history", "--archive", str(tmp_path / "records"), "--json").stdout == ""


# -- archiving a guided run --------------------------------------------------------------------


@pytest.mark.slow
def test_a_guided_runs_saved_notebook_is_archived_once_under_its_own_run_id(tmp_path):
    guided, work, archive = tmp_path / "guided.ipynb", tmp_path / "work", tmp_path / "records"
    work.mkdir()
    assert runbook("prepare", str(FIXTURE_NOTEBOOK), "-p", f"workdir={work}", "--ticket", "CHG-5",
                   "--out", str(guided)).returncode == 0
    not_run = runbook("archive", str(guided), "--archive", str(archive))
    assert not_run.returncode == 2 and "no finished run" in not_run.stderr
    assert not archive.exists()

    nb = nbformat.read(guided, as_version=4)
    NotebookClient(nb, kernel_name=kernel_name(), timeout=120,
                   resources={"metadata": {"path": str(FIXTURE_NOTEBOOK.parent)}}).execute()
    nbformat.write(nb, guided)  # what "Save" in JupyterLab does
    run_id = read_notebook_scraps(nb)["run"]["run_id"]

    archived = runbook("archive", str(guided), "--archive", str(archive))
    assert archived.returncode == 0, archived.stderr
    entry = json.loads((archive / "index.jsonl").read_text())
    assert entry["run_id"] == run_id and entry["status"] == "succeeded" and entry["scenario"] == "steps-fixture"
    assert runbook("verify-archive", "--archive", str(archive)).returncode == 0
    again = runbook("archive", str(guided), "--archive", str(archive))
    assert again.returncode == 1 and "already exists" in again.stderr
    history = runbook("history", "--archive", str(archive), "--json")
    assert json.loads(history.stdout.splitlines()[0])["ticket"] == "CHG-5"


@pytest.mark.slow
def test_a_guided_apply_compares_itself_with_the_plan_of_its_ticket(tmp_path):
    work, archive, guided = tmp_path / "work", tmp_path / "records", tmp_path / "apply.ipynb"
    work.mkdir()
    planned = runbook("run", str(FIXTURE_NOTEBOOK), "-p", f"workdir={work}", "--plan", "--ticket", "CHG-20",
                      "--archive", str(archive))
    assert planned.returncode == 0, planned.stderr
    assert runbook("prepare", str(FIXTURE_NOTEBOOK), "-p", f"workdir={work}", "--ticket", "CHG-20",
                   "--archive", str(archive), "--out", str(guided)).returncode == 0
    nb = nbformat.read(guided, as_version=4)
    NotebookClient(nb, kernel_name=kernel_name(), timeout=120,
                   resources={"metadata": {"path": str(FIXTURE_NOTEBOOK.parent)}}).execute()
    scraps = read_notebook_scraps(nb)
    plan_id = json.loads((archive / "index.jsonl").read_text().splitlines()[0])["run_id"]
    assert scraps["run"]["plan_run_id"] == plan_id
    assert [s["plan"] for s in scraps["steps"]] == [f"as planned in run {plan_id}"] * 2
