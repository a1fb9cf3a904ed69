"""Shared test helpers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_NOTEBOOK = ROOT / "tests" / "notebooks" / "steps-fixture.ipynb"


def runbook(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 240) -> subprocess.CompletedProcess:
    """Run the `runbook` command as an administrator would, in a child process."""
    # The caller's own environment must not pick the archive; a test may choose one through env.
    full_env = {k: v for k, v in os.environ.items() if k != "RUNBOOK_ARCHIVE"}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "runbooklib.cli", *args],
        capture_output=True, text=True, env=full_env, cwd=cwd or ROOT, timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def run_cli():
    return runbook


@pytest.fixture
def lab(tmp_path):
    """A fresh lab estate in this process, on free loopback ports; stopped after the test."""
    from estate_template import new_estate

    estate = new_estate(tmp_path / "lab").start()
    try:
        yield estate
    finally:
        estate.stop()


def lab_state_bytes(estate) -> dict[str, bytes]:
    """Every persisted state file of an estate, for byte-for-byte comparisons."""
    return {str(p.relative_to(estate.state_dir)): p.read_bytes()
            for p in sorted(estate.state_dir.rglob("*")) if p.is_file() and not p.name.endswith(".lock")}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Papermill and browser files run first: with `-n`, the longest units started last would
    # leave one worker busy while the other idles. Whole files move, in their own order, so a
    # module's fixtures are still built once per worker.
    slow_files = {item.nodeid.split("::")[0] for item in items
                  if item.get_closest_marker("browser") or item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.nodeid.split("::")[0] not in slow_files)
