"""`runbook run` end to end with the step engine's fixture notebook: records, chain, failures, secrets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import scrapbook

from conftest import FIXTURE_NOTEBOOK, runbook

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("two-runs")
    work, archive = base / "work", base / "records"
    work.mkdir()
    first = runbook("run", str(FIXTURE_NOTEBOOK), "-p", f"workdir={work}", "--archive", str(archive),
                    "--ticket", "CHG-1")
    second = runbook("run", str(FIXTURE_NOTEBOOK), "-p", f"workdir={work}", "--archive", str(archive))
    return first, second, work, archive


def test_first_run_is_archived_with_three_scraps(two_runs):
    first, _, work, archive = two_runs
    assert first.returncode == 0, first.stderr
    assert (work / "first").exists() and (work / "second").exists()
    lines = (archive / "index.jsonl").read_text().splitlines()
    entry = json.loads(lines[0])
    assert entry["status"] == "succeeded" and entry["scenario"] == "steps-fixture"
    nb = scrapbook.read_notebook(str(archive / entry["path"]))
    scraps = nb.scraps.data_dict
    assert set(scraps) >= {"run", "steps", "changes"}
    run = scraps["run"]
    assert run["status"] == "succeeded" and run["mode"] == "apply" and run["ticket"] == "CHG-1"
    assert run["run_id"] == entry["run_id"]
    assert len(run["sha256"]["notebook"]) == 64
    assert {"runbooklib", "papermill", "pypsrp", "msgraph-sdk", "python"} <= set(run["versions"])
    assert [s["status"] for s in scraps["steps"]] == ["changed", "changed"]
    assert scraps["changes"] == 2
    assert str(archive / entry["path"]) in first.stdout


def test_second_run_changes_nothing_and_extends_the_chain(two_runs):
    _, second, _, archive = two_runs
    assert second.returncode == 0, second.stderr
    lines = (archive / "index.jsonl").read_text().splitlines()
    assert len(lines) == 2
    nb = scrapbook.read_notebook(str(archive / json.loads(lines[1])["path"]))
    assert nb.scraps.data_dict["changes"] == 0
    assert [s["status"] for s in nb.scraps.data_dict["steps"]] == ["ok", "ok"]
    verify = runbook("verify-archive", "--archive", str(archive))
    assert verify.returncode == 0 and "chain intact" in verify.stdout
    history = runbook("history", "--archive", str(archive), "--json")
    rows = [json.loads(line) for line in history.stdout.splitlines()]
    assert [r["changes"] for r in rows] == [2, 0]
    assert rows[0]["ticket"] == "CHG-1"


@pytest.mark.parametrize("tamper", ["edit", "delete", "reorder"])
def test_verify_archive_names_the_tampered_record(two_runs, tmp_path, tamper):
    archive = tmp_path / "records"
    shutil.copytree(two_runs[3], archive)
    index = archive / "index.jsonl"
    lines = index.read_text().splitlines()
    first_path = json.loads(lines[0])["path"]
    if tamper == "edit":
        record = archive / first_path
        record.write_text(record.read_text().replace('"succeeded"', '"planned"'))
    elif tamper == "delete":
        (archive / first_path).unlink()
    else:
        index.write_text("\n".join([lines[1], lines[0]]) + "\n")
    verify = runbook("verify-archive", "--archive", str(archive))
    assert verify.returncode == 1
    assert "MISMATCH" in verify.stdout
    assert Path(first_path).name in verify.stdout or json.loads(lines[1])["path"] in verify.stdout


def test_plan_mode_changes_nothing(tmp_path):
    result = runbook("run", str(FIXTURE_NOTEBOOK), "-p", f"workdir={tmp_path}", "--plan",
                     "--archive", str(tmp_path / "records"))
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "first").exists()
    entry = json.loads((tmp_path / "records" / "index.jsonl").read_text())
    assert entry["status"] == "planned"


def test_failed_step_is_archived_failed_with_hint_and_exit_1(tmp_path):
    archive = tmp_path / "records"
    result = runbook("run", str(FIXTURE_NOTEBOOK), "-p", f"workdir={tmp_path}", "-p", "fail_verify=true",
                     "--archive", str(archive))
    assert result.returncode == 1
    entry = json.loads((archive / "index.jsonl").read_text())
    assert entry["status"] == "failed"
    scraps = scrapbook.read_notebook(str(archive / entry["path"])).scraps.data_dict
    assert scraps["run"]["status"] == "failed"
    failed = [s for s in scraps["steps"] if s["status"] == "failed"]
    assert [s["id"] for s in failed] == ["marker-second"]
    assert "Create" in failed[0]["hint"]
    assert "Create" in result.stdout  # the hint reaches the terminal too


def test_sentinel_secret_never_reaches_the_archive(tmp_path):
    sentinel_env = "Sentinel-ENV-7f3a9c2e"
    sentinel_file = "Sentinel-FILE-b81d04aa"
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(sentinel_file + "\n")
    archive = tmp_path / "records"
    env = {"RUNBOOK_TEST_SENTINEL": sentinel_env}
    outputs = []
    for ref in ("env:RUNBOOK_TEST_SENTINEL", f"file:{secret_file}"):
        result = runbook("run", str(FIXTURE_NOTEBOOK), "-p", f"workdir={tmp_path}", "-p", f"secret_ref={ref}",
                         "-p", "raise_with_secret=true", "--archive", str(archive), env=env)
        assert result.returncode == 1, result.stderr
        outputs.append(result.stdout + result.stderr)
    blob = b"".join(p.read_bytes() for p in archive.rglob("*") if p.is_file())
    records = list(archive.rglob("*.ipynb"))
    assert len(records) == 2
    for sentinel in (sentinel_env, sentinel_file):
        assert sentinel.encode() not in blob
        assert all(sentinel not in out for out in outputs)
    # The run really did handle the secret: the redaction marks are there.
    assert b"********" in blob
    assert b"RuntimeError" in blob


def test_unknown_scenario_is_input_error(tmp_path):
    result = runbook("run", "no-such-scenario", "--archive", str(tmp_path / "records"))
    assert result.returncode == 2
    assert "unknown scenario" in result.stderr
    assert not (tmp_path / "records").exists()


def test_an_apply_run_shows_step_by_step_that_it_did_what_the_plan_of_its_ticket_said(tmp_path):
    archive = tmp_path / "records"
    common = ["-p", f"workdir={tmp_path}", "--archive", str(archive)]
    assert runbook("run", str(FIXTURE_NOTEBOOK), *common, "--plan", "--ticket", "CHG-7").returncode == 0
    applied = runbook("run", str(FIXTURE_NOTEBOOK), *common, "--ticket", "CHG-7")
    assert applied.returncode == 0, applied.stderr
    entries = [json.loads(line) for line in (archive / "index.jsonl").read_text().splitlines()]
    scraps = scrapbook.read_notebook(str(archive / entries[-1]["path"])).scraps.data_dict
    assert scraps["run"]["plan_run_id"] == entries[0]["run_id"]
    assert [s["plan"] for s in scraps["steps"]] == [f"as planned in run {entries[0]['run_id']}"] * 2
    assert scraps["run"]["warnings"] == []


def test_an_apply_run_that_departs_from_its_plan_says_so(tmp_path):
    archive = tmp_path / "records"
    common = ["-p", f"workdir={tmp_path}", "--archive", str(archive)]
    assert runbook("run", str(FIXTURE_NOTEBOOK), *common, "--plan", "--ticket", "CHG-8").returncode == 0
    (tmp_path / "first").write_text("made by hand after the plan was approved\n")
    applied = runbook("run", str(FIXTURE_NOTEBOOK), *common, "--ticket", "CHG-8")
    assert applied.returncode == 0, applied.stderr
    entries = [json.loads(line) for line in (archive / "index.jsonl").read_text().splitlines()]
    scraps = scrapbook.read_notebook(str(archive / entries[-1]["path"])).scraps.data_dict
    first, second = scraps["steps"]
    assert "none were needed any more" in first["plan"]
    assert second["plan"].startswith("as planned")
    assert any("differs from the approved plan" in w for w in scraps["run"]["warnings"])
    other_ticket = runbook("run", str(FIXTURE_NOTEBOOK), *common, "--ticket", "CHG-9")
    entries = [json.loads(line) for line in (archive / "index.jsonl").read_text().splitlines()]
    scraps = scrapbook.read_notebook(str(archive / entries[-1]["path"])).scraps.data_dict
    assert other_ticket.returncode == 0 and scraps["run"]["plan_run_id"] is None


def _last_scraps(archive):
    entries = [json.loads(line) for line in (archive / "index.jsonl").read_text().splitlines()]
    return entries, scrapbook.read_notebook(str(archive / entries[-1]["path"])).scraps.data_dict


def test_a_resumed_apply_counts_what_the_first_apply_did_as_planned(tmp_path):
    archive = tmp_path / "records"
    common = ["-p", f"workdir={tmp_path}", "--archive", str(archive), "--ticket", "CHG-10"]
    assert runbook("run", str(FIXTURE_NOTEBOOK), *common, "--plan").returncode == 0
    assert runbook("run", str(FIXTURE_NOTEBOOK), *common).returncode == 0
    assert runbook("run", str(FIXTURE_NOTEBOOK), *common).returncode == 0
    entries, scraps = _last_scraps(archive)
    assert all(s["plan"] == f"done as planned by run {entries[1]['run_id']} of the same ticket"
               for s in scraps["steps"])
    assert scraps["run"]["warnings"] == []


def test_a_plan_made_with_other_parameters_is_not_taken_for_this_apply(tmp_path):
    archive = tmp_path / "records"
    other = tmp_path / "other"
    other.mkdir()
    assert runbook("run", str(FIXTURE_NOTEBOOK), "-p", f"workdir={other}", "--archive", str(archive),
                   "--ticket", "CHG-11", "--plan").returncode == 0
    assert runbook("run", str(FIXTURE_NOTEBOOK), "-p", f"workdir={tmp_path}", "--archive", str(archive),
                   "--ticket", "CHG-11").returncode == 0
    _, scraps = _last_scraps(archive)
    assert scraps["run"]["plan_run_id"] is None
    assert all(s["plan"] is None for s in scraps["steps"])
    assert any("other parameters" in w for w in scraps["run"]["warnings"])
    assert runbook("run", str(FIXTURE_NOTEBOOK), "-p", f"workdir={tmp_path}", "--archive", str(archive),
                   "--ticket", "CHG-12").returncode == 0
    _, scraps = _last_scraps(archive)
    assert any("no plan of ticket CHG-12" in w for w in scraps["run"]["warnings"])
