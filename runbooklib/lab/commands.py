"""``runbook lab up|down|status|reset``: the estate as a background service on loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from ..errors import RunbookError
from .estate import STATE_FILE, Estate

__all__ = ["lab_command", "running_pid"]

_START_TIMEOUT = 60.0


def running_pid(lab_dir: Path) -> int | None:
    """The pid of the estate serving ``lab_dir``, if one is running."""
    path = lab_dir / STATE_FILE
    try:
        pid = json.loads(path.read_text()).get("pid")
    except (OSError, ValueError):
        return None
    if not pid:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def _ports(lab_dir: Path) -> dict[str, int]:
    try:
        return json.loads((lab_dir / STATE_FILE).read_text()).get("ports") or {}
    except (OSError, ValueError):
        return {}


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _print_status(lab_dir: Path) -> bool:
    pid = running_pid(lab_dir)
    if pid is None:
        print(f"lab in {lab_dir}: not running (start it with 'runbook lab up --dir {lab_dir}')")
        return False
    print(f"lab in {lab_dir}: running (pid {pid})")
    for name, port in sorted(_ports(lab_dir).items()):
        state = "answering" if _answers(port) else "NOT ANSWERING"
        print(f"  {name:<10} https://127.0.0.1:{port}  {state}")
    print(f"  inventory  {lab_dir / 'inventory.yaml'}")
    return True


def _up(lab_dir: Path) -> int:
    if running_pid(lab_dir) is not None:
        _print_status(lab_dir)
        return 0
    lab_dir.mkdir(parents=True, exist_ok=True)
    log_path = lab_dir / "lab.log"
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "runbooklib.lab.serve", "--dir", str(lab_dir)],
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RunbookError(f"the lab stopped while starting (exit code {process.returncode})",
                               hint=f"See {log_path} for the reason.")
        if running_pid(lab_dir) == process.pid and (lab_dir / "inventory.yaml").exists():
            ports = _ports(lab_dir)
            if ports and all(_answers(p) for p in ports.values()):
                _print_status(lab_dir)
                return 0
        time.sleep(0.1)
    process.terminate()
    raise RunbookError(f"the lab did not start within {_START_TIMEOUT:.0f} s", hint=f"See {log_path}.")


def _down(lab_dir: Path) -> int:
    pid = running_pid(lab_dir)
    if pid is None:
        print(f"lab in {lab_dir}: not running")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and running_pid(lab_dir) == pid:
        time.sleep(0.1)
    if running_pid(lab_dir) == pid:
        os.kill(pid, signal.SIGKILL)
    print(f"lab in {lab_dir}: stopped")
    return 0


def _reset(lab_dir: Path) -> int:
    was_running = running_pid(lab_dir) is not None
    if was_running:
        _down(lab_dir)
    estate = Estate(lab_dir)
    estate.reset_offline()
    print(f"lab in {lab_dir}: reset to its initial estate")
    if was_running:
        return _up(lab_dir)
    return 0


def _foreground(lab_dir: Path) -> int:
    from .serve import serve

    return serve(lab_dir, announce=True)


def lab_command(action: str, lab_dir: Path, *, foreground: bool = False) -> int:
    lab_dir = lab_dir.resolve()
    if action == "up":
        return _foreground(lab_dir) if foreground else _up(lab_dir)
    if action == "down":
        return _down(lab_dir)
    if action == "status":
        return 0 if _print_status(lab_dir) else 1
    if action == "reset":
        return _reset(lab_dir)
    raise ValueError(action)
