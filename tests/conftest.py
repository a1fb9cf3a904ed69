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
    full_env = {**os.environ, **(env or {})}
    full_env.pop("RUNBOOK_ARCHIVE", None)
    return subprocess.run(
        [sys.executable, "-m", "runbooklib.cli", *args],
        capture_output=True, text=True, env=full_env, cwd=cwd or ROOT, timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def run_cli():
    return runbook
