"""The audit record: scraps in the executed notebook, and the archive that keeps every run.

Scraps are glued the way scrapbook reads them (a display output with the
``application/scrapbook.scrap.json+json`` media type), but emitted directly: importing
scrapbook in the kernel costs seconds (it pulls pandas and jsonschema) for nothing.

Archive layout::

    <archive>/<scenario>/<yyyymmddTHHMMSSZ>-<run_id>.ipynb   written once, never overwritten
    <archive>/index.jsonl                                     one line per run, hash-chained

Each index line carries the sha256 of its record and the sha256 of the previous line's text, so
an edited, deleted or reordered record or line is detected by :meth:`Archive.verify`. ``index.head``
holds the number of lines and the hash of the last one, so losing the newest runs (record and
index line together) is detected too.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ._kernel import in_kernel
from .errors import ArchiveError

__all__ = [
    "Archive",
    "IndexEntry",
    "RUN_STATUSES",
    "SCRAP_MIME",
    "STEP_SCRAP",
    "glue",
    "read_notebook_scraps",
    "read_step_scraps",
    "sha256_bytes",
    "sha256_file",
    "utc_now",
    "utc_iso",
]

SCRAP_MIME = "application/scrapbook.scrap.json+json"
#: The scrap each step glues as it ends, so a run that never finishes still shows what it did.
STEP_SCRAP = "step"
#: How a recorded run can end. ``interrupted``: it stopped before it finished — the operator
#: pressed Ctrl-C (it stopped between two steps), or it was killed, lost its power or its kernel,
#: and the next command that touched the archive filed it.
RUN_STATUSES = ("succeeded", "planned", "failed", "interrupted")
SCRAP_VERSION = 1
GENESIS = "0" * 64
INDEX_NAME = "index.jsonl"
HEAD_NAME = "index.head"
_LOCK_NAME = ".index.lock"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def utc_iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    return sha256_bytes(Path(path).read_bytes())


def scrap_output(name: str, data: Any) -> dict[str, Any]:
    """The notebook output (nbformat dict) that carries one JSON scrap."""
    return {
        "output_type": "display_data",
        "data": {SCRAP_MIME: {"name": name, "data": data, "encoder": "json", "version": SCRAP_VERSION}},
        "metadata": {"scrapbook": {"name": name, "data": True, "display": False}},
    }


def glue(name: str, data: Any) -> None:
    """Record ``data`` (JSON-serialisable) in the current cell's output under ``name``.

    Outside a notebook kernel there is no cell to record into, and nothing is shown.
    """
    json.dumps(data)  # fail here, in the kernel, rather than as an unreadable record
    if not in_kernel():
        return
    from IPython.display import display

    output = scrap_output(name, data)
    display(output["data"], metadata=output["metadata"], raw=True)


def read_notebook_scraps(notebook: dict[str, Any]) -> dict[str, Any]:
    """Scraps of an executed notebook (nbformat dict); a later scrap of the same name wins."""
    scraps: dict[str, Any] = {}
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []) or []:
            payload = (output.get("data") or {}).get(SCRAP_MIME)
            if isinstance(payload, dict) and "name" in payload:
                scraps[payload["name"]] = payload.get("data")
    return scraps


def read_step_scraps(notebook: dict[str, Any]) -> list[dict[str, Any]]:
    """Every step's own scrap in the order the steps ended; a step run again keeps its last outcome."""
    found: dict[str, dict[str, Any]] = {}
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []) or []:
            payload = (output.get("data") or {}).get(SCRAP_MIME)
            if isinstance(payload, dict) and payload.get("name") == STEP_SCRAP and isinstance(payload.get("data"), dict):
                step = payload["data"]
                found.pop(str(step.get("id")), None)
                found[str(step.get("id"))] = step
    return list(found.values())


@dataclass(frozen=True)
class IndexEntry:
    """One line of ``index.jsonl``: a run, where its record is, and the links of the hash chain."""

    run_id: str
    scenario: str
    status: str
    path: str          # relative to the archive root, '/'-separated
    sha256: str        # of the record file
    prev: str          # sha256 of the previous index line's text
    recorded: str      # UTC ISO 8601

    def line(self) -> str:
        return json.dumps(
            {
                "run_id": self.run_id,
                "scenario": self.scenario,
                "status": self.status,
                "path": self.path,
                "sha256": self.sha256,
                "prev": self.prev,
                "recorded": self.recorded,
            },
            sort_keys=True,
        )


class Archive:
    """The directory of run records and its hash-chained index."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    @property
    def index_path(self) -> Path:
        return self.root / INDEX_NAME

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / _LOCK_NAME, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def add(self, notebook: bytes, *, scenario: str, run_id: str, status: str,
            started: dt.datetime) -> IndexEntry:
        """Store one executed notebook as a new record and chain it into the index."""
        for label, value in (("scenario", scenario), ("run_id", run_id)):
            if not _SAFE_NAME.match(value):
                raise ArchiveError(f"cannot archive a run with {label} {value!r}",
                                   hint="Use letters, digits, '-', '_' and '.' only.")
        stamp = started.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        relative = f"{scenario}/{stamp}-{run_id}.ipynb"
        target = self.root / relative
        with self._locked():
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with open(target, "xb") as fh:  # 'x': a record is never overwritten
                    fh.write(notebook)
                    fh.flush()
                    os.fsync(fh.fileno())
            except FileExistsError:
                raise ArchiveError(f"a record already exists at {target}",
                                   hint="A run is archived once; run the runbook again for a new record.") from None
            lines = self._read_lines()
            entry = IndexEntry(
                run_id=run_id,
                scenario=scenario,
                status=status,
                path=relative,
                sha256=sha256_bytes(notebook),
                prev=sha256_bytes(lines[-1].encode()) if lines else GENESIS,
                recorded=utc_iso(utc_now()),
            )
            with open(self.index_path, "a", encoding="utf-8") as fh:
                fh.write(entry.line() + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            self._write_head(len(lines) + 1, sha256_bytes(entry.line().encode()))
        return entry

    def _write_head(self, count: int, last: str) -> None:
        temporary = self.root / (HEAD_NAME + ".tmp")
        with open(temporary, "w", encoding="utf-8") as fh:
            fh.write(json.dumps({"count": count, "last": last}) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temporary, self.root / HEAD_NAME)
        directory = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself must survive a crash
        finally:
            os.close(directory)

    def _read_lines(self) -> list[str]:
        if not self.index_path.exists():
            return []
        return [line for line in self.index_path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def _verify_head(self, lines: list[str]) -> list[str]:
        head_path = self.root / HEAD_NAME
        if not head_path.exists():
            return [f"{HEAD_NAME} is missing: the newest runs cannot be checked"] if lines else []
        try:
            head = json.loads(head_path.read_text(encoding="utf-8"))
            count, last = int(head["count"]), str(head["last"])
        except (ValueError, KeyError, TypeError):
            return [f"{HEAD_NAME} is not readable"]
        if count > len(lines):
            return [f"index holds {len(lines)} run(s) but {HEAD_NAME} recorded {count}: "
                    "the newest run(s) were removed or the index was cut"]
        if count < len(lines):
            return [f"index holds {len(lines)} run(s) but {HEAD_NAME} recorded {count}: a line was added "
                    "outside 'runbook', or the machine stopped while a run was being archived"]
        if lines and last != sha256_bytes(lines[-1].encode()):
            return [f"the last index line does not match {HEAD_NAME}: it was replaced or edited"]
        return []

    def entries(self) -> list[IndexEntry]:
        """Index entries, oldest first."""
        result = []
        for number, line in enumerate(self._read_lines(), start=1):
            try:
                result.append(IndexEntry(**json.loads(line)))
            except (ValueError, TypeError) as exc:
                raise ArchiveError(f"{self.index_path}: line {number} is not a valid index entry ({exc})",
                                   hint="Run 'runbook verify-archive' to see every problem.") from None
        return result

    def ticket_runs(self, scenario: str, ticket: str) -> list[tuple[IndexEntry, dict[str, Any]]]:
        """Every archived run of ``scenario`` for change ticket ``ticket``, oldest first, with its scraps."""
        if not ticket or not self.index_path.exists():
            return []
        found = []
        for entry in self.entries():
            if entry.scenario != scenario:
                continue
            try:
                scraps = read_notebook_scraps(self.read_record(entry))
            except (OSError, ValueError):
                continue
            if (scraps.get("run") or {}).get("ticket") == ticket:
                found.append((entry, scraps))
        return found

    def read_record(self, entry: IndexEntry) -> dict[str, Any]:
        return json.loads((self.root / entry.path).read_text(encoding="utf-8"))

    def verify(self) -> list[str]:
        """Every inconsistency between the index, the chain and the record files, in words."""
        if not self.root.exists():
            return []
        with self._locked():  # a run being archived right now must not look like tampering
            return self._verify()

    def _verify(self) -> list[str]:
        problems: list[str] = []
        lines = self._read_lines()
        previous = GENESIS
        indexed: set[str] = set()
        for number, line in enumerate(lines, start=1):
            try:
                data = json.loads(line)
                entry = IndexEntry(**data)
            except (ValueError, TypeError):
                problems.append(f"index line {number}: not a valid entry")
                previous = sha256_bytes(line.encode())
                continue
            indexed.add(entry.path)
            if entry.prev != previous:
                problems.append(
                    f"{entry.path}: index chain broken at line {number} "
                    "(a line before it was edited, removed or reordered)"
                )
            record = self.root / entry.path
            if not record.exists():
                problems.append(f"{entry.path}: record is missing (deleted or moved)")
            elif sha256_file(record) != entry.sha256:
                problems.append(f"{entry.path}: record was modified after it was archived (sha256 mismatch)")
            previous = sha256_bytes(line.encode())
        problems += self._verify_head(lines)
        if self.root.exists():
            for path in sorted(self.root.glob("*/*.ipynb")):
                relative = path.relative_to(self.root).as_posix()
                if relative not in indexed:
                    problems.append(f"{relative}: record is not in the index")
        return problems
