"""A run survives its operator and its estate: `runbook run` against the lab, as an administrator runs it —
two applies at once, a run killed halfway, a run whose terminal went away."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import scrapbook

from conftest import ROOT, runbook
from scenario_requests import requests_through

pytestmark = pytest.mark.slow

SPO = "00000003-0000-0ff1-ce00-000000000000"
LAB_PARAMS = ROOT / "parameters" / "lab" / "sharepoint-hybrid.yaml"
# Outlasts the orphaned kernel, which notices within seconds that its parent is gone and exits.
_STALL_SECONDS = 20.0


def _run_args(lab, archive: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "runbooklib.cli", "run", "sharepoint-hybrid", "--inventory", str(lab.inventory_path),
            "--params", str(LAB_PARAMS), "--archive", str(archive), *extra]


def _spawn(lab, archive: Path, *extra: str, stdout=subprocess.PIPE) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "RUNBOOK_ARCHIVE"}
    return subprocess.Popen(_run_args(lab, archive, *extra), stdout=stdout, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=ROOT, stdin=subprocess.DEVNULL)


def _history(archive: Path) -> list[dict]:
    result = runbook("history", "--archive", str(archive), "--json")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def _farm_end_state(lab) -> dict:
    snapshot = lab.farm("sp-a").snapshot()
    return {"realm": snapshot["realm"],
            "issuers": sorted((i["name"], i["registered_issuer_name"]) for i in snapshot["trusted_issuers"]),
            "principals": sorted(p["name_identifier"].lower() for p in snapshot["app_principals"]),
            "keys": sorted(k.get("customKeyIdentifier") or "" for k in lab.tenant.key_credentials(SPO)),
            "spns": sorted(lab.tenant.spns(SPO))}


def test_two_applies_at_once_on_one_farm_one_waits_and_neither_meets_a_product_error(lab, tmp_path):
    archive = tmp_path / "records"
    first, second = _spawn(lab, archive), _spawn(lab, archive)
    outputs = [p.communicate(timeout=300) for p in (first, second)]
    codes = [first.returncode, second.returncode]
    text = "\n".join(out + err for out, err in outputs)
    assert "already exists" not in text, text
    assert 0 in codes, text
    rows = _history(archive)
    assert len(rows) == 2
    waited = [i for i, (out, err) in enumerate(outputs) if "waiting up to" in out + err]
    assert waited, "neither run said it was waiting for the other"
    for i in waited:
        row = next(r for r in rows if r["run_id"] in outputs[i][0])
        # It either ran after the first, finding everything done, or stopped without changing anything.
        assert (codes[i] == 0 and row["changes"] == 0) or (codes[i] == 1 and "is being changed by run" in text), text
    # The farm ends as one undisturbed run leaves it: a run afterwards changes nothing.
    again = runbook(*_run_args(lab, archive)[3:])
    assert again.returncode == 0, again.stdout + again.stderr
    assert _history(archive)[-1]["changes"] == 0


def test_a_run_killed_after_its_first_change_is_filed_interrupted_and_a_rerun_converges(lab, tmp_path):
    archive = tmp_path / "records"
    keys_before = len(lab.tenant.key_credentials(SPO))
    # The run is held in the step after the key upload: the tenant stalls that step's first
    # request (long enough for the kill to land there), so the kill never races the run's end.
    # By then papermill has saved the upload's cell, as it does before it starts the next one.
    tenant = lab.server("contoso")
    upload_done = requests_through(lab, "contoso", "sharepoint-hybrid", LAB_PARAMS, "sts-certificate")
    tenant.faults.add("stall", seconds=_STALL_SECONDS, after=upload_done)
    run = _spawn(lab, archive, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while tenant.faults.pending():
        assert run.poll() is None, "the run ended before the step after the key upload reached the tenant"
        assert time.monotonic() < deadline, "the run never reached the step after the key upload"
        time.sleep(0.05)
    assert len(lab.tenant.key_credentials(SPO)) == keys_before + 1, "the run is held before it added the farm's key"
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=30)

    rows = _history(archive)
    assert [r["status"] for r in rows] == ["interrupted"], rows
    assert rows[0]["changes"] >= 1
    record = scrapbook.read_notebook(rows[0]["path"]).scraps.data_dict
    steps = {s["id"]: s for s in record["steps"]}
    assert steps["sts-certificate"]["status"] == "changed"
    assert any("Run the runbook again" in w for w in record["run"]["warnings"])
    verify = runbook("verify-archive", "--archive", str(archive))
    assert verify.returncode == 0, verify.stdout + verify.stderr

    time.sleep(2)  # the orphaned kernel notices its parent is gone and exits, letting go of its locks
    again = runbook(*_run_args(lab, archive)[3:])
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(lab.tenant.key_credentials(SPO)) == keys_before + 1, "the re-run added the farm's key twice"
    assert [r["status"] for r in _history(archive)] == ["interrupted", "succeeded"]
    assert runbook("verify-archive", "--archive", str(archive)).returncode == 0


def test_a_run_whose_stdout_is_closed_mid_apply_finishes_and_archives_a_complete_record(lab, tmp_path):
    archive = tmp_path / "records"
    run = _spawn(lab, archive)
    assert run.stdout is not None and run.stderr is not None
    seen = ""
    while "changed" not in seen:  # the run's progress streams to the terminal; wait for its first change
        line = run.stderr.readline()
        assert line, f"the run ended before its first change: {seen}"
        seen += line
    run.stdout.close()     # the terminal goes away mid-apply
    run.stderr.close()
    code = run.wait(timeout=300)
    rows = _history(archive)
    record = scrapbook.read_notebook(rows[0]["path"]).scraps.data_dict
    assert code == 0, record["run"]["warnings"] + [s.get("error") for s in record["steps"]]
    assert [r["status"] for r in rows] == ["succeeded"]
    assert [s["id"] for s in record["steps"]][-1] == "sp2013-search-permission"
    assert record["changes"] > 0 and _farm_end_state(lab)["realm"] == lab.tenant.tenant_id
