"""`runbook demo`: the lab comes up, every available scenario runs headless, a summary table.

The scenario registry is pointed at the step engine's fixture notebook, registered under a few
names with different lab parameters, so the demo's own behaviour is tested without waiting for
the real scenarios (and without their run time).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import FIXTURE_NOTEBOOK
from runbooklib import scenarios
from runbooklib.demo import run_demo
from runbooklib.lab.commands import lab_command, running_pid
from runbooklib.scenarios import ScenarioInfo

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class FixtureScenario(ScenarioInfo):
    """The fixture notebook as a scenario, with its lab parameters in a file of the test's choosing."""

    params_file: Path = Path("missing.yaml")

    @property
    def notebook(self) -> Path:
        return FIXTURE_NOTEBOOK

    @property
    def lab_parameters(self) -> Path:
        return self.params_file


@pytest.fixture(scope="module")
def lab_dir(tmp_path_factory):
    """One lab for the module, stopped at the end whatever happened."""
    path = tmp_path_factory.mktemp("demo-lab") / "lab"
    yield path
    lab_command("down", path)
    assert running_pid(path) is None


@pytest.fixture
def register(monkeypatch, tmp_path):
    """Replace the registry with fixture scenarios: register(name, params_text) for each."""
    registry: dict[str, ScenarioInfo] = {}
    monkeypatch.setattr(scenarios, "SCENARIOS", registry)

    def add(name: str, params_text: str) -> Path:
        params = tmp_path / f"{name}.yaml"
        params.write_text(params_text)
        registry[name] = FixtureScenario(name, f"fixture {name}", "demo_fixture_scenario", params)
        return params

    return add


def _table_rows(stdout: str) -> dict[str, list[str]]:
    """The summary table's rows by scenario: [status, changes, record]."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:4] == ["scenario", "status", "changes", "record"])
    rows = {}
    for line in lines[start + 1:]:
        if not line.strip():
            break
        match = re.fullmatch(r"(\S+)\s+(invalid input|\S+)\s+(\d+ planned|\d+|-)\s+(\S+)", line)
        assert match, f"not a table row: {line!r}"
        rows[match[1]] = [match[2], match[3], match[4]]
    return rows


def test_all_scenarios_succeed_exit_0_and_the_lab_stays_up(lab_dir, register, tmp_path, capsys):
    work_a, work_b = tmp_path / "a", tmp_path / "b"
    work_a.mkdir()
    work_b.mkdir()
    register("fixture-one", f"workdir: {work_a}\n")
    register("fixture-two", f"workdir: {work_b}\n")
    archive = tmp_path / "records"

    code = run_demo(archive=archive, lab_dir=lab_dir)
    out = capsys.readouterr().out

    assert code == 0, out
    assert running_pid(lab_dir.resolve()) is not None, "the demo leaves the lab running"
    assert f"runbook lab down --dir {lab_dir}" in out
    rows = _table_rows(out)
    assert list(rows) == ["fixture-one", "fixture-two"]
    index = [json.loads(line) for line in (archive / "index.jsonl").read_text().splitlines()]
    assert [e["scenario"] for e in index] == ["fixture-one", "fixture-two"]
    for entry in index:
        status, changes, record = rows[entry["scenario"]]
        assert (status, changes) == ("succeeded", "2")
        assert Path(record) == archive / entry["path"] and Path(record).is_file()
    # The runs really ran against their own parameters.
    assert {p.name for p in work_a.iterdir()} == {"first", "second"} == {p.name for p in work_b.iterdir()}
    # They ran with the lab's inventory and under the demo's ticket.
    records = [json.loads((archive / e["path"]).read_text()) for e in index]
    text = json.dumps(records)
    assert str(lab_dir.resolve() / "inventory.yaml") in text


def test_one_failed_scenario_makes_exit_1_and_the_next_still_runs(lab_dir, register, tmp_path, capsys):
    register("fixture-failing", f"workdir: {tmp_path}\nfail_verify: true\n")
    work = tmp_path / "ok"
    work.mkdir()
    register("fixture-ok", f"workdir: {work}\n")
    archive = tmp_path / "records"

    code = run_demo(archive=archive, lab_dir=lab_dir)
    out = capsys.readouterr().out

    assert code == 1, out
    rows = _table_rows(out)
    assert rows["fixture-failing"][0] == "failed"
    assert rows["fixture-ok"][:2] == ["succeeded", "2"]
    assert Path(rows["fixture-failing"][2]).is_file(), "a failed run is archived too"
    # The failed step's hint is shown under the table.
    assert "fixture-failing: step marker-second failed" in out and "Create" in out


def test_invalid_input_is_reported_in_its_row_and_the_others_still_run(lab_dir, register, tmp_path, capsys):
    register("fixture-bad", "workdir: /tmp\nno_such_parameter: 3\n")
    work = tmp_path / "ok"
    work.mkdir()
    register("fixture-ok", f"workdir: {work}\n")
    archive = tmp_path / "records"

    code = run_demo(archive=archive, lab_dir=lab_dir, plan=True)
    out = capsys.readouterr().out

    assert code == 2, out
    rows = _table_rows(out)
    assert rows["fixture-bad"] == ["invalid input", "-", "-"]
    assert "no_such_parameter" in out
    assert rows["fixture-ok"][:2] == ["planned", "2 planned"], "the plan's changes are counted"
    assert not any(work.iterdir()), "plan mode changes nothing"
    index = [json.loads(line) for line in (archive / "index.jsonl").read_text().splitlines()]
    assert [(e["scenario"], e["status"]) for e in index] == [("fixture-ok", "planned")]


def test_no_scenarios_yet_says_so_and_succeeds(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(scenarios, "SCENARIOS", {})
    lab = tmp_path / "lab"
    code = run_demo(archive=tmp_path / "records", lab_dir=lab)
    out = capsys.readouterr().out
    assert code == 0
    assert "no scenarios yet" in out
    assert running_pid(lab) is None and not (tmp_path / "records").exists()


def test_make_demos_command_runs_the_real_runbooks_against_a_fresh_lab(tmp_path):
    """What `make demo` runs, with the real registry: every scenario succeeds on a fresh lab."""
    from conftest import runbook

    lab_dir, archive = tmp_path / ".lab", tmp_path / "records"
    try:
        result = runbook("demo", "--lab-dir", str(lab_dir), "--archive", str(archive), timeout=400)
        assert result.returncode == 0, result.stdout + result.stderr
        available = [info.name for info in scenarios.available()]
        assert {"sharepoint-hybrid", "skype-partner"} <= set(available)
        for name in available:
            row = next(line for line in result.stdout.splitlines() if line.startswith(name) and "succeeded" in line)
            assert int(row.split()[2]) > 0, row  # a fresh lab always needs changes
        entries = [json.loads(line) for line in (archive / "index.jsonl").read_text().splitlines()]
        assert {e["scenario"] for e in entries} == set(available)
        assert all(e["status"] == "succeeded" for e in entries)
        assert f"runbook lab down --dir {lab_dir}" in result.stdout
    finally:
        lab_command("down", lab_dir)
