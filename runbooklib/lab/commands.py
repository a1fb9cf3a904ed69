"""``runbook lab up|down|status|reset``: the estate as a background service on loopback.

``up`` starts ``python -m runbooklib.lab.serve`` detached, logging to ``DIR/lab.log`` (the
previous run's log is kept as ``lab.log.1``), and returns once every server answers. It is
idempotent: an estate already serving DIR is left as it is. ``down`` stops only an estate that
``runbook lab up`` started — never a test or notebook process that started one in-process —
and never a process that merely inherited a stale pid from ``estate.json``.

Exit codes: 0 done (``status``: running and every server answers) · 1 otherwise.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

from ..errors import RunbookError
from .estate import (
    LOG_FILE,
    SERVED_BY_COMMAND,
    STATE_FILE,
    Estate,
    EstateStatus,
    clear_faults,
    forget_pid,
    inject_fault,
    pid_alive,
    probe_estate,
)
from .http import STANDING_FAULTS

__all__ = ["fault_command", "lab_command", "running_pid"]

_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 15.0
# What the process of a lab estate looks like: the background server or a foreground `lab up`.
_LAB_PROCESS = re.compile(r"runbooklib\.lab\.serve|\brunbook(?:lib\.cli)?(?:\.exe)?\s+lab\s+up\b")


def running_pid(lab_dir: Path) -> int | None:
    """The pid of the estate serving ``lab_dir`` (its servers answer with its token), if one runs."""
    status = probe_estate(lab_dir)
    return status.pid if status.serving and status.pid_alive else None


def _looks_like_lab(command: str | None) -> bool:
    return bool(command and _LAB_PROCESS.search(command))


@contextlib.contextmanager
def _exclusive(lab_dir: Path) -> Iterator[None]:
    """One `lab up|down|reset` at a time per directory (two `up`s would start two estates)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, as before
        yield
        return
    lab_dir.mkdir(parents=True, exist_ok=True)
    with open(lab_dir / ".lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _owner(status: EstateStatus) -> str:
    if status.served_by == SERVED_BY_COMMAND:
        return "started by 'runbook lab up'"
    return f"inside another program: {status.command or 'unknown command'}"


def _print_status(status: EstateStatus) -> bool:
    lab_dir = status.lab_dir
    if not status.serving:
        print(f"lab in {lab_dir}: not running (start it with 'runbook lab up --dir {lab_dir}')")
        if status.pid_alive:
            print(f"  note: {STATE_FILE} names pid {status.pid} ({status.command or 'unknown command'}), "
                  "which does not answer as this lab")
        return False
    print(f"lab in {lab_dir}: running (pid {status.pid}, {_owner(status)})")
    for name, port in status.ports.items():
        state = "answering" if status.answering.get(name) else "NOT ANSWERING"
        print(f"  {name:<10} https://127.0.0.1:{port}  {state}")
        if name in status.winrm_http_ports:
            print(f"  {'':<10} http://127.0.0.1:{status.winrm_http_ports[name]}   WinRM over http (messages sealed)")
    print(f"  inventory  {lab_dir / 'inventory.yaml'}")
    if status.served_by == SERVED_BY_COMMAND:
        print(f"  log        {lab_dir / LOG_FILE}")
    return status.running


def _log_tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").rstrip().splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def _start_failed(message: str, log_path: Path) -> RunbookError:
    tail = _log_tail(log_path)
    detail = f"\n{tail}" if tail else ""
    return RunbookError(f"{message}; the end of {log_path}:{detail}" if tail else message,
                        hint=f"See {log_path}, or run 'runbook lab up --foreground --dir {log_path.parent}'.")


def _refuse_unknown_process(status: EstateStatus) -> RunbookError:
    what = status.command or "a process this system does not let us inspect"
    return RunbookError(
        f"{status.lab_dir / STATE_FILE} names pid {status.pid}, which is alive but none of the lab's servers "
        f"answer ({what})",
        hint=(f"If it is a lab server that hung, stop it (kill {status.pid}) and run 'runbook lab up' again; "
              f"see {status.lab_dir / LOG_FILE}."),
    )


def _up(lab_dir: Path) -> int:
    status = probe_estate(lab_dir)
    if status.serving:
        return 0 if _print_status(status) else 1
    if status.pid_alive:
        if status.command is None or _looks_like_lab(status.command):
            raise _refuse_unknown_process(status)
        # After a reboot or a crash the recorded pid may belong to any program: never trust it.
        print(f"note: {lab_dir / STATE_FILE} named pid {status.pid}, which is now another program "
              f"({status.command[:80]}); starting a new estate", file=sys.stderr)
    elif status.pid is not None:
        print(f"note: the last estate in {lab_dir} (pid {status.pid}) ended without 'runbook lab down'",
              file=sys.stderr)

    lab_dir.mkdir(parents=True, exist_ok=True)
    log_path = lab_dir / LOG_FILE
    if log_path.exists():
        os.replace(log_path, log_path.with_name(LOG_FILE + ".1"))
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "runbooklib.lab.serve", "--dir", str(lab_dir)],
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise _start_failed(f"the lab stopped while starting (exit code {process.returncode})", log_path)
        new = probe_estate(lab_dir, timeout=1.0)
        if new.pid == process.pid and new.running:
            _report_moved_ports(status, new)
            _print_status(new)
            return 0
        time.sleep(0.1)
    process.terminate()
    raise _start_failed(f"the lab did not start within {_START_TIMEOUT:.0f} s", log_path)


def _report_moved_ports(before: EstateStatus, after: EstateStatus) -> None:
    for name, old in before.ports.items():
        new = after.ports.get(name)
        if new and new != old:
            print(f"warning: {name}: port {old} is taken by another program; {name} now listens on {new}.\n"
                  f"  {after.lab_dir / 'inventory.yaml'} was rewritten with the new address: use the new "
                  "inventory. Lab state that names the old address (a partner's metadata endpoint) still "
                  "points at it; free the port and restart the lab to get it back.", file=sys.stderr)
    for name, old in before.winrm_http_ports.items():
        new = after.winrm_http_ports.get(name)
        if new and new != old:
            print(f"warning: {name}: port {old} (WinRM over http) is taken by another program; {name}'s http "
                  f"WinRM listener now listens on {new}. The inventory names the https listener and is unchanged.",
                  file=sys.stderr)


def _stop_process(pid: int) -> None:
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + _STOP_TIMEOUT
    while time.monotonic() < deadline and pid_alive(pid):
        _reap(pid)
        time.sleep(0.05)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)


def _reap(pid: int) -> None:
    # A child of this process (tests start `up` in-process) stays a zombie until reaped.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _down(lab_dir: Path) -> int:
    status = probe_estate(lab_dir)
    if status.pid is None:
        print(f"lab in {lab_dir}: not running")
        return 0
    if not status.pid_alive:
        forget_pid(lab_dir, status.pid)
        print(f"lab in {lab_dir}: not running (the last estate ended without 'runbook lab down')")
        return 0
    if not status.serving:
        if status.command is not None and not _looks_like_lab(status.command):
            forget_pid(lab_dir, status.pid)
            print(f"lab in {lab_dir}: not running ({STATE_FILE} named pid {status.pid}, which is now another "
                  "program; left alone, record cleared)")
            return 0
        if status.command is None or str(lab_dir) not in status.command:
            raise _refuse_unknown_process(status)
        # the background server of this very directory, no longer answering: stop it
    elif status.served_by != SERVED_BY_COMMAND:
        raise RunbookError(
            f"the estate in {lab_dir} runs {_owner(status)} (pid {status.pid}), not as 'runbook lab up'",
            hint="Stop it where it was started (Estate.stop(), or end that test or notebook).",
        )
    _stop_process(status.pid)
    forget_pid(lab_dir, status.pid)
    print(f"lab in {lab_dir}: stopped")
    return 0


def _reset(lab_dir: Path) -> int:
    status = probe_estate(lab_dir)
    if status.serving and status.served_by != SERVED_BY_COMMAND:
        raise RunbookError(f"the estate in {lab_dir} runs {_owner(status)}: reset it there (Estate.reset())")
    if status.serving:
        _down(lab_dir)
    Estate(lab_dir).reset_offline()
    print(f"lab in {lab_dir}: reset to its initial estate")
    if status.serving:
        return _up(lab_dir)
    return 0


def _foreground(lab_dir: Path) -> int:
    from .serve import serve

    return serve(lab_dir, announce=True)


def lab_command(action: str, lab_dir: Path, *, foreground: bool = False) -> int:
    """``runbook lab ACTION --dir lab_dir``; returns the exit code."""
    lab_dir = Path(lab_dir).resolve()
    if action == "status":
        return 0 if _print_status(probe_estate(lab_dir)) else 1
    if action == "up" and foreground:
        return _foreground(lab_dir)
    if action not in ("up", "down", "reset"):
        raise ValueError(action)
    if action != "up" and not lab_dir.exists():
        if action == "down":
            print(f"lab in {lab_dir}: not running (no such directory)")
            return 0
        print(f"no lab in {lab_dir}: nothing to reset ('runbook lab up --dir {lab_dir}' creates one)")
        return 1
    with _exclusive(lab_dir):
        if action == "up":
            return _up(lab_dir)
        if action == "down":
            return _down(lab_dir)
        return _reset(lab_dir)


def fault_command(lab_dir: Path, server: str, kind: str | None, *, count: int = 1, seconds: float | None = None,
                  message: str | None = None, path_prefix: str | None = None) -> int:
    """``runbook lab fault SERVER KIND|clear [--count N] …``.

    ``kind`` None or ``"clear"`` clears the server's pending faults.
    """
    lab_dir = Path(lab_dir).resolve()
    if kind in (None, "clear"):
        clear_faults(lab_dir, server)
        print(f"{server}: pending faults cleared")
        return 0
    options = {k: v for k, v in (("seconds", seconds), ("message", message), ("path_prefix", path_prefix))
               if v is not None}
    answer = inject_fault(lab_dir, server, kind, count, **options)
    if kind in STANDING_FAULTS:
        print(f"{server}: {kind} until 'runbook lab fault {server} clear'")
        return 0
    print(f"{server}: the next {count} request(s) will {kind}; {len(answer.get('faults') or [])} fault(s) pending")
    return 0
