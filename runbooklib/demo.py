"""``runbook demo``: start the lab, run every available scenario against it headless, summarise.

The demo is the README's first command, so it must explain itself on a fresh clone: when no
scenario exists yet it says so and succeeds; otherwise each scenario runs with the lab's
inventory and its ``parameters/lab/<scenario>.yaml``, one after the other, and a table shows
what each run did and where its record is. One scenario's bad input or failure does not stop
the others. The lab is left running so the administrator can look at it (or run a scenario
again); the last lines say how to stop it.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InputError, RunbookError

if TYPE_CHECKING:  # imported at use: the command line must not pay for papermill at start-up
    from .execute import RunOutcome
    from .scenarios import ScenarioInfo

__all__ = ["DemoRow", "format_table", "run_demo"]

log = logging.getLogger(__name__)

DEMO_TICKET = "demo"


@dataclass
class DemoRow:
    """What one scenario's demo run came to."""

    scenario: str
    status: str  # a run status (succeeded, planned, failed) or "invalid input" / "error"
    changes: int | None = None  # changes made
    record: Path | None = None
    planned: int = 0  # changes a plan-mode run listed
    seconds: float = 0.0
    message: str = ""  # why the run did not happen or failed, for the line under the table

    @property
    def exit_code(self) -> int:
        if self.status in ("succeeded", "planned"):
            return 0
        if self.status == "invalid input":
            return 2
        return 1


def run_demo(*, archive: Path, lab_dir: Path, plan: bool = False) -> int:
    """Bring the lab up and run every available scenario; 0 only when every run succeeded (or planned).

    Otherwise the highest exit code of the rows: 2 when some scenario's input was invalid, 1 when
    a run failed.
    """
    from .scenarios import available

    out = sys.stdout
    scenarios = available()
    if not scenarios:
        print("no scenarios yet: this checkout has no runbook notebook to run.", file=out)
        print(f"The lab can still be started on its own: runbook lab up --dir {lab_dir}", file=out)
        return 0

    _lab_up(lab_dir)
    inventory = lab_dir / "inventory.yaml"
    mode = "plan" if plan else "apply"
    print(f"\nrunning {len(scenarios)} scenario(s) against the lab ({mode} mode), records in {archive}",
          file=out, flush=True)
    rows = []
    for info in scenarios:
        print(f"  {info.name} ... ", end="", file=out, flush=True)
        row = _run_one(info, inventory=inventory, archive=archive, plan=plan)
        print(f"{row.status} ({row.seconds:.1f} s)", file=out, flush=True)
        rows.append(row)

    print("", file=out)
    print(format_table(rows), file=out)
    notes = [f"{row.scenario}: {row.message}" for row in rows if row.message]
    if notes:
        print("", *notes, sep="\n", file=out)
    print(f"\nThe lab is still running. Stop it with: runbook lab down --dir {lab_dir}", file=out)
    print(f"Archived runs: runbook history --archive {archive}", file=out)
    return max(row.exit_code for row in rows)


def _lab_up(lab_dir: Path) -> None:
    from .lab.commands import lab_command

    # `lab up` is idempotent: a lab already running in lab_dir is reused as it is.
    code = lab_command("up", lab_dir)
    if code != 0:
        raise RunbookError(f"the lab in {lab_dir} did not start (exit code {code})",
                           hint=f"See {lab_dir / 'lab.log'}, or run 'runbook lab up --dir {lab_dir} --foreground'.")


def _run_one(info: ScenarioInfo, *, inventory: Path, archive: Path, plan: bool) -> DemoRow:
    """Run one scenario headless; every error becomes a row, so the next scenario still runs."""
    from .execute import RunRequest, execute_run
    from .secrets import redact

    started = time.monotonic()
    params = info.lab_parameters
    try:
        request = RunRequest.from_cli(
            target=info.name, inventory=str(inventory), params_file=str(params) if params.exists() else None,
            overrides=[], plan=plan, ticket=DEMO_TICKET,
        )
        outcome = execute_run(request, archive=archive, echo=False)
    except InputError as exc:
        return DemoRow(info.name, "invalid input", seconds=time.monotonic() - started, message=redact(str(exc)))
    except RunbookError as exc:
        log.debug("demo run of %s failed", info.name, exc_info=True)
        return DemoRow(info.name, "error", seconds=time.monotonic() - started, message=redact(str(exc)))
    planned = sum(len(step.get("changes") or []) for step in outcome.steps if step.get("status") == "planned")
    return DemoRow(info.name, outcome.status, outcome.changes, outcome.record, planned=planned,
                   seconds=time.monotonic() - started, message=_failure_message(outcome))


def _failure_message(outcome: RunOutcome) -> str:
    """The failed step's error and hint (or the run's error), as one line under the table."""
    from .secrets import redact

    if outcome.status in ("succeeded", "planned"):
        return ""
    for step in outcome.steps:
        if step.get("status") == "failed":
            hint = f" — next: {step['hint']}" if step.get("hint") else ""
            return redact(f"step {step.get('id')} failed: {step.get('error') or ''}{hint}")
    return redact(outcome.error or "the run failed")


def _shown(path: Path | None) -> str:
    """Relative to the working directory when the record is under it, else absolute."""
    if path is None:
        return "-"
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _changes_cell(row: DemoRow) -> str:
    if row.status == "planned":
        return f"{row.planned} planned"
    return "-" if row.changes is None else str(row.changes)


def format_table(rows: list[DemoRow]) -> str:
    """The summary table: scenario, status, changes (made, or listed by a plan), record path."""
    header = ("scenario", "status", "changes", "record")
    body = [(r.scenario, r.status, _changes_cell(r), _shown(r.record)) for r in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(3)]
    lines = []
    for cells in [header, *body]:
        lines.append(f"{cells[0]:<{widths[0]}}  {cells[1]:<{widths[1]}}  {cells[2]:>{widths[2]}}  {cells[3]}")
    return "\n".join(lines)
