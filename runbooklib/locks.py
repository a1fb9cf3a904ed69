"""Per-target locks: one apply run at a time changes a given server or tenant.

An apply run locks every server and tenant it may change (its declared targets) before its
first step and releases them when it ends. Locks are ``flock`` locks on one file per target in
a lock directory — the archive's ``.locks`` for headless runs, a per-user folder for guided
runs without an archive — so they serialise every run that shares that directory.

They are always taken in one order (sorted by lock file name), so two runs whose target sets
overlap can never each hold what the other waits for. A second run waits a bounded time,
saying which run holds the target, since when and from which host, then stops with
:class:`~runbooklib.errors.TargetBusy` before it has changed anything.

The kernel drops an ``flock`` when its process dies, however it dies: a lock left by a killed
run is therefore never waited on. Its file still names the dead run, and the next run that
takes the lock says so (see :attr:`TargetLocks.taken_over`).

One process runs one runbook at a time: a run started in a kernel whose earlier run never
finished (a guided user ran the Start cell again) takes that abandoned run's locks over rather
than wait for itself.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .errors import RunInterrupted, TargetBusy
from .manifest import user_name
from .record import utc_iso, utc_now

if TYPE_CHECKING:
    from .targets import Targets

__all__ = ["DEFAULT_LOCK_WAIT", "LockTarget", "TargetLocks", "lock_targets"]

#: How long a run waits for a target another run holds (seconds).
DEFAULT_LOCK_WAIT = 300.0
_POLL = 0.2
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
# The lock files this process holds, and the run holding each.
_HELD_HERE: dict[Path, TargetLocks] = {}


@dataclass(frozen=True)
class LockTarget:
    """One lockable target: its inventory name and the identity its lock file is named after.

    A server is identified by its WinRM host and port and a tenant by its tenant id, so two
    inventories that name the same server differently still share its lock.
    """

    name: str
    kind: str      # server | tenant
    identity: str

    @property
    def file_name(self) -> str:
        return f"target-{self.kind}-{_UNSAFE.sub('_', self.identity.lower())}.lock"


def lock_targets(targets: Targets) -> list[LockTarget]:
    """The locks a run on ``targets`` takes, in the one order every run takes them."""
    found = []
    for server in targets.servers:
        parts = urlsplit(server.winrm)
        found.append(LockTarget(server.name, "server", f"{parts.hostname}-{parts.port or ''}"))
    for tenant in targets.tenants:
        found.append(LockTarget(tenant.name, "tenant", tenant.tenant_id))
    return sorted(found, key=lambda t: t.file_name)


class TargetLocks:
    """The locks one run holds on its targets; :meth:`acquire` takes them all or none."""

    def __init__(self, directory: Path, targets: Iterable[LockTarget], *, run_id: str, scenario: str) -> None:
        self.directory = Path(directory)
        self.targets = list(targets)
        self.run_id = run_id
        self.scenario = scenario
        self._held: list[IO[str]] = []
        #: What each lock file said of a run that died holding it, by target name.
        self.taken_over: dict[str, dict[str, Any]] = {}

    @property
    def held(self) -> bool:
        return bool(self._held)

    def acquire(self, *, wait: float = DEFAULT_LOCK_WAIT, show: Callable[[str], None] = print,
                stop_requested: Callable[[], bool] = lambda: False) -> None:
        """Take every lock in order, waiting up to ``wait`` seconds in all.

        Raises :class:`TargetBusy` (releasing what it took) when a target stays held, and
        :class:`RunInterrupted` when the operator asks the run to stop while it waits.
        """
        if self._held:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + wait
        try:
            for target in self.targets:
                self._take(target, deadline, wait, show, stop_requested)
        except BaseException:
            self.release()
            raise

    def _take(self, target: LockTarget, deadline: float, wait: float, show: Callable[[str], None],
              stop_requested: Callable[[], bool]) -> None:
        path = (self.directory / target.file_name).resolve()
        abandoned = _HELD_HERE.get(path)
        if abandoned is not None and abandoned is not self:
            abandoned.release()
        fh = open(path, "a+", encoding="utf-8")
        shown = False
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _read_holder(fh)
                if not shown:
                    show(f"{target.name} is being changed by {describe_holder(holder)}; "
                         f"waiting up to {wait:.0f} s for it to finish")
                    shown = True
                if stop_requested():
                    fh.close()
                    raise RunInterrupted(f"stopped while waiting for {target.name}; nothing was changed",
                                         hint="Run the runbook again when the other run has finished.") from None
                if time.monotonic() >= deadline:
                    fh.close()
                    raise TargetBusy(
                        f"{target.name} is being changed by {describe_holder(holder)}; "
                        f"this run waited {wait:.0f} s and changed nothing",
                        hint="Let that run finish (runbook history shows its outcome), then run this one again.",
                        target=target.name, holder=holder) from None
                time.sleep(_POLL)
        left = _read_holder(fh)
        if left.get("run_id"):
            # A released lock is emptied; a name left in it is a run that died holding it.
            self.taken_over[target.name] = left
        _write_holder(fh, {"run_id": self.run_id, "scenario": self.scenario, "target": target.name,
                           "pid": os.getpid(), "host": socket.gethostname(), "user": user_name(),
                           "since": utc_iso(utc_now())})
        self._held.append(fh)
        _HELD_HERE[path] = self

    def release(self) -> None:
        """Let go of every lock this run holds (idempotent)."""
        for path in [p for p, holder in _HELD_HERE.items() if holder is self]:
            del _HELD_HERE[path]
        while self._held:
            fh = self._held.pop()
            try:
                fh.seek(0)
                fh.truncate()
                fh.flush()
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
                fh.close()


def describe_holder(holder: dict[str, Any]) -> str:
    """A lock holder in words: ``run 3f2a… (sharepoint-hybrid) of alice on host app01, pid 4711, since …``."""
    if not holder.get("run_id"):
        return "another run (it has not said which yet)"
    return (f"run {holder['run_id']} ({holder.get('scenario') or 'unknown scenario'}) of {holder.get('user', '?')} "
            f"on host {holder.get('host', '?')}, pid {holder.get('pid', '?')}, since {holder.get('since', '?')}")


def _read_holder(fh: IO[str]) -> dict[str, Any]:
    try:
        fh.seek(0)
        data = json.loads(fh.read() or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_holder(fh: IO[str], holder: dict[str, Any]) -> None:
    fh.seek(0)
    fh.truncate()
    fh.write(json.dumps(holder, sort_keys=True))
    fh.flush()
