"""Runs in progress, staged in the archive, and the filing of runs that never finished.

Before a headless run contacts anything it is journaled in the archive's staging area::

    <archive>/.staging/<run_id>/started.json    who runs what, since when (written and synced first)
    <archive>/.staging/<run_id>/notebook.ipynb  the executed notebook, saved by papermill as it runs
    <archive>/.staging/<run_id>/alive.lock      held (flock) by the runbook process while it lives
    <archive>/.staging/<run_id>/stop            left by Ctrl-C: the kernel stops at the next step boundary

The staging area lives inside the archive, not in a temporary folder, so what a crash leaves
is found by the next command that touches the archive (``run``, ``history``, ``verify-archive``,
``archive``): :func:`file_interrupted_runs` files every staged run whose process is gone as a
record with status ``interrupted`` — the cells it completed, the steps it ended and the changes
they made, and the hint to re-run — chained into the index like any other record.

A process that dies always lets go of its ``flock``, so "nobody holds ``alive.lock``" is exactly
"the run is over"; a run that is still going is never filed under it.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .manifest import run_manifest
from .record import Archive, IndexEntry, read_notebook_scraps, read_step_scraps, scrap_output, utc_now
from .scrub import record_secrets, scrub_text

__all__ = ["STAGING_DIR", "StagedRun", "file_interrupted_runs"]

log = logging.getLogger(__name__)

STAGING_DIR = ".staging"
_JOURNAL = "started.json"
_NOTEBOOK = "notebook.ipynb"
_ALIVE = "alive.lock"
_STOP = "stop"
RERUN_HINT = ("Run the runbook again with the same parameters: steps already done are found as wanted and left "
              "alone, and the rest are done.")


@dataclass
class StagedRun:
    """One run's place in the staging area, held by the process that runs it."""

    directory: Path
    _alive: IO[str]

    @classmethod
    def begin(cls, archive: Path, run_id: str, journal: dict[str, Any]) -> StagedRun:
        """Journal a run as started, before it contacts anything.

        ``journal`` holds what :func:`runbooklib.manifest.run_manifest` needs to record the run
        if it never finishes (scenario, started, mode, ticket, hashes, inventory, parameters).
        The directory is built under a temporary name and renamed when its lock is held, so
        :func:`file_interrupted_runs` never sees a staged run that is not yet alive.
        """
        staging = Path(archive) / STAGING_DIR
        staging.mkdir(parents=True, exist_ok=True, mode=0o700)
        building = staging / f"{run_id}.{uuid.uuid4().hex[:6]}.tmp"
        building.mkdir(mode=0o700)
        alive = open(building / _ALIVE, "a+", encoding="utf-8")
        fcntl.flock(alive, fcntl.LOCK_EX)
        _write_synced(building / _JOURNAL, json.dumps({**journal, "run_id": run_id, "pid": os.getpid()},
                                                       sort_keys=True, default=str))
        final = staging / run_id
        os.replace(building, final)
        _sync_dir(staging)
        return cls(final, alive)

    @property
    def notebook_path(self) -> Path:
        return self.directory / _NOTEBOOK

    @property
    def stop_path(self) -> Path:
        return self.directory / _STOP

    def request_stop(self) -> None:
        """Ask the kernel to stop at the next step boundary (it looks for this file)."""
        self.stop_path.touch()

    def discard(self) -> None:
        """The run is archived: remove its staging directory and let go of its lock."""
        shutil.rmtree(self.directory, ignore_errors=True)
        fcntl.flock(self._alive, fcntl.LOCK_UN)
        self._alive.close()


def file_interrupted_runs(archive: Path) -> list[IndexEntry]:
    """File every staged run whose process has ended as an ``interrupted`` record; the new entries.

    A staged run whose record is already in the index (its process died between archiving and
    cleaning up) is only cleaned up.
    """
    staging = Path(archive) / STAGING_DIR
    if not staging.is_dir():
        return []
    store = Archive(archive)
    filed = []
    for directory in sorted(p for p in staging.iterdir() if p.is_dir() and not p.name.endswith(".tmp")):
        entry = _file_if_over(store, directory)
        if entry is not None:
            filed.append(entry)
    return filed


def _file_if_over(store: Archive, directory: Path) -> IndexEntry | None:
    try:
        alive = open(directory / _ALIVE, "a+", encoding="utf-8")
    except OSError:
        return None
    with alive:
        try:
            fcntl.flock(alive, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None  # its process is still running it
        try:
            journal = json.loads((directory / _JOURNAL).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            log.warning("%s holds no readable journal; left in place for inspection", directory)
            return None
        run_id = str(journal.get("run_id") or directory.name)
        if any(entry.run_id == run_id for entry in store.entries()):
            shutil.rmtree(directory, ignore_errors=True)
            return None
        notebook, lost = _staged_notebook(directory, journal)
        scraps = read_notebook_scraps(notebook)
        status = str((scraps.get("run") or {}).get("status") or "")
        if not status:
            status = "interrupted"
            _append_interrupted_record(notebook, journal, lost)
        secrets = record_secrets(notebook, str(journal.get("scenario") or ""))
        text = scrub_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", secrets)
        started = dt.datetime.fromisoformat(str(journal["started"]).replace("Z", "+00:00"))
        entry = store.add(text.encode("utf-8"), scenario=str(journal["scenario"]), run_id=run_id, status=status,
                          started=started)
        shutil.rmtree(directory, ignore_errors=True)
        log.info("filed run %s, which never finished, as %s", run_id, status)
        return entry


def _staged_notebook(directory: Path, journal: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The notebook as papermill last saved it, or the runbook itself if no save survived; and
    whether the executed cells were lost."""
    for path in (directory / _NOTEBOOK, Path(str(journal.get("source") or ""))):
        try:
            return json.loads(path.read_text(encoding="utf-8")), path != directory / _NOTEBOOK
        except (OSError, ValueError):
            continue
    return {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, True


def _append_interrupted_record(notebook: dict[str, Any], journal: dict[str, Any], lost: bool) -> None:
    steps = read_step_scraps(notebook)
    changes = sum(len(s.get("changes") or []) for s in steps if s.get("status") == "changed")
    cells = sum(1 for c in notebook.get("cells", []) if c.get("cell_type") == "code" and c.get("execution_count"))
    last = steps[-1]["id"] if steps else None
    said = (f"the run stopped before it finished (killed, power lost or kernel died), after step {last}"
            if last else "the run stopped before it finished (killed, power lost or kernel died), before any step ended")
    warnings = [said, f"{cells} cell(s) had completed; {changes} change(s) made", RERUN_HINT,
                "recorded by the next runbook command that touched the archive"]
    if lost:
        warnings.append("the executed notebook was not saved before the run stopped: the cells above are the runbook's")
    run = run_manifest(
        scenario=str(journal["scenario"]), run_id=str(journal["run_id"]), status="interrupted",
        started=dt.datetime.fromisoformat(str(journal["started"]).replace("Z", "+00:00")), finished=utc_now(),
        ticket=str(journal.get("ticket") or ""), mode=str(journal.get("mode") or "apply"),
        notebook_sha256=journal.get("source_sha256"), parameters_sha256=journal.get("parameters_sha256"),
        inventory=Path(journal["inventory"]) if journal.get("inventory") and Path(journal["inventory"]).is_file() else None,
        parameters=journal.get("parameters") or {}, warnings=warnings, plan_run_id=journal.get("plan_run_id"),
    )
    notebook.setdefault("cells", []).append({
        "cell_type": "code",
        "execution_count": None,
        "id": f"runbook-interrupted-{journal['run_id']}",
        "metadata": {"tags": ["runbook-interrupted-record"]},
        "source": "# Recorded by `runbook`: this run never finished.",
        "outputs": [
            {"output_type": "stream", "name": "stderr", "text": "".join(f"{w}\n" for w in warnings)},
            scrap_output("run", run),
            scrap_output("steps", steps),
            scrap_output("changes", changes),
        ],
    })


def _write_synced(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
