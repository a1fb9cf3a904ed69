"""What a headless run leaves on the terminal: no kernel shutdown noise, but every real kernel error."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from conftest import runbook

pytestmark = pytest.mark.slow

# The kernel notes every Ctrl-C (SIGINT) it is sent, even between messages, where ipykernel
# would ignore it: on a busy machine papermill shuts the kernel down while it is still handling
# the failed cell, and an interrupt sent then is logged as "KeyboardInterrupt caught in kernel".
NOTE_CTRL_C_THEN_FAIL = """\
import signal
from pathlib import Path
def note(signum, frame):
    Path({marker!r}).write_text("interrupted")
kernel = get_ipython().kernel
signal.signal(signal.SIGINT, note)
kernel.pre_handler_hook = kernel.post_handler_hook = lambda: None
raise RuntimeError("the runbook stopped here on purpose")
"""

DIE = """\
import os, sys
sys.__stderr__.write("kernel fixture: giving up the ghost\\n")
sys.__stderr__.flush()
os._exit(3)
"""


def _notebook(path: Path, source: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell(source)]
    nbformat.write(nb, path)
    return path


def test_a_failed_run_ends_without_kernel_shutdown_noise(tmp_path):
    marker = tmp_path / "interrupted"
    source = NOTE_CTRL_C_THEN_FAIL.format(marker=str(marker))
    result = runbook("run", str(_notebook(tmp_path / "ctrl-c.ipynb", source)),
                     "--archive", str(tmp_path / "records"))
    terminal = result.stdout + result.stderr
    assert result.returncode == 1, terminal
    assert "the runbook stopped here on purpose" in terminal
    assert "KeyboardInterrupt" not in terminal
    assert "IPKernelApp" not in terminal
    assert not marker.exists(), "the kernel was sent a Ctrl-C while it was shut down"


def test_a_kernel_that_dies_still_says_so_on_the_terminal(tmp_path):
    archive = tmp_path / "records"
    result = runbook("run", str(_notebook(tmp_path / "die.ipynb", DIE)), "--archive", str(archive))
    assert result.returncode == 1
    assert "kernel fixture: giving up the ghost" in result.stderr  # the kernel's own stderr
    assert "DeadKernelError" in result.stdout
    entry = json.loads((archive / "index.jsonl").read_text())
    assert entry["status"] == "failed"
