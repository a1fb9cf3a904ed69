"""Per-target locks: one order, a bounded wait that names the holder, a dead holder never waited on."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from runbooklib.errors import TargetBusy
from runbooklib.locks import LockTarget, TargetLocks

FARM = LockTarget("sp-a", "server", "127.0.0.1-5986")
TENANT = LockTarget("contoso", "tenant", "6c3f0000-0000-0000-0000-000000000001")


def _holder(tmp_path, run_id: str) -> subprocess.Popen:
    """Another process running a run that holds sp-a and contoso until its stdin closes."""
    script = ("import sys\n"
              "from runbooklib.locks import LockTarget, TargetLocks\n"
              f"locks = TargetLocks({str(tmp_path)!r}, [LockTarget('sp-a', 'server', '127.0.0.1-5986'), "
              f"LockTarget('contoso', 'tenant', '6c3f0000-0000-0000-0000-000000000001')], run_id={run_id!r}, "
              "scenario='sharepoint-hybrid')\n"
              "locks.acquire(wait=0)\nprint('held', flush=True)\nsys.stdin.read()\nlocks.release()\n")
    holder = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_run_waits_then_stops_naming_the_run_that_holds_the_target(tmp_path):
    holder = _holder(tmp_path, "run-one")
    try:
        shown: list[str] = []
        second = TargetLocks(tmp_path, [FARM, TENANT], run_id="run-two", scenario="sharepoint-hybrid")
        with pytest.raises(TargetBusy) as busy:
            second.acquire(wait=0.3, show=shown.append)
        assert busy.value.holder["run_id"] == "run-one" and not second.held
        assert "run run-one" in str(busy.value) and "changed nothing" in str(busy.value)
        assert shown and "waiting up to" in shown[0] and "on host" in shown[0]
    finally:
        holder.communicate("", timeout=30)
    second.acquire(wait=0)
    assert second.held and not second.taken_over, "a lock released by its run names no dead run"
    second.release()


def test_a_lock_left_by_a_killed_run_is_taken_at_once_and_its_run_named(tmp_path):
    # A process that takes the lock and dies without releasing it (as kill -9 leaves it).
    script = ("import os\n"
              "from runbooklib.locks import LockTarget, TargetLocks\n"
              f"locks = TargetLocks({str(tmp_path)!r}, [LockTarget('sp-a', 'server', '127.0.0.1-5986')], "
              "run_id='dead-run', scenario='sharepoint-hybrid')\n"
              "locks.acquire(wait=0)\nos._exit(9)\n")
    subprocess.run([sys.executable, "-c", script], check=False, timeout=60)
    assert json.loads((tmp_path / FARM.file_name).read_text())["run_id"] == "dead-run"
    locks = TargetLocks(tmp_path, [FARM], run_id="next-run", scenario="sharepoint-hybrid")
    locks.acquire(wait=0)
    assert locks.taken_over["sp-a"]["run_id"] == "dead-run"
    locks.release()


def test_a_run_started_again_in_the_same_process_takes_over_the_abandoned_runs_locks(tmp_path):
    abandoned = TargetLocks(tmp_path, [FARM], run_id="first-start", scenario="sharepoint-hybrid")
    abandoned.acquire(wait=0)
    again = TargetLocks(tmp_path, [FARM], run_id="second-start", scenario="sharepoint-hybrid")
    again.acquire(wait=0)
    assert again.held and not abandoned.held
    again.release()
