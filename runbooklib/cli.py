"""The ``runbook`` command.

Exit codes: 0 succeeded (or planned) · 1 a step failed (the record is archived, marked failed), a
target stayed locked by another run (nothing changed), or with ``--require-plan`` the estate departs
from the approved plan (nothing changed) · 2 invalid input (parameters, inventory, secret references,
no approved plan for ``--require-plan``) — nothing contacted, nothing changed · 130 stopped by Ctrl-C at a step boundary
(the record is archived, marked interrupted).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from .errors import InputError, RunbookError

if TYPE_CHECKING:
    from .record import Archive, IndexEntry

__all__ = ["main"]

log = logging.getLogger("runbook")

DEFAULT_ARCHIVE = "records"
ARCHIVE_ENV = "RUNBOOK_ARCHIVE"


def _archive_dir(arg: str | None) -> Path:
    return Path(arg or os.environ.get(ARCHIVE_ENV) or DEFAULT_ARCHIVE)


def _file_interrupted(archive: Path) -> None:
    """Every command that touches the archive first files the runs that never finished."""
    from .journal import file_interrupted_runs

    for entry in file_interrupted_runs(archive):
        print(f"filed run {entry.run_id} ({entry.scenario}), which never finished, as {entry.status}: "
              f"{archive / entry.path}", file=sys.stderr)


def _open_archive(arg: str | None) -> Archive:
    """The archive a command reads, once the runs that never finished are filed in it."""
    from .record import Archive

    root = _archive_dir(arg)
    _file_interrupted(root)
    return Archive(root)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runbook",
        description="Set up, prove and audit Microsoft server-to-server (OAuth) trusts with runbook notebooks.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def run_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("target", metavar="SCENARIO", help="a scenario name (see 'runbook scenarios') or a notebook path")
        p.add_argument("--inventory", "-i", metavar="FILE", help="the inventory of servers and tenants (YAML)")
        p.add_argument("--params", metavar="FILE", help="the scenario's parameters (YAML)")
        p.add_argument("-p", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override one parameter (repeatable; dotted keys for nested values)")
        p.add_argument("--plan", action="store_true", help="only show what would change; change nothing")
        p.add_argument("--ticket", default="", metavar="ID", help="the change ticket this run belongs to")
        p.add_argument("--require-plan", action="store_true",
                       help="hold the apply to the ticket's approved plan: stop, changing nothing, where it departs")

    p_run = sub.add_parser("run", help="execute a runbook headless and archive the executed notebook")
    run_options(p_run)
    p_run.add_argument("--archive", metavar="DIR", help=f"archive directory (default ${ARCHIVE_ENV} or ./records)")
    p_run.add_argument("--quiet", "-q", action="store_true", help="print only the summary")
    p_run.add_argument("--lock-wait", type=float, metavar="SECONDS",
                       help="how long to wait for a server or tenant another run is changing (default 300)")

    p_prep = sub.add_parser("prepare", help="write a parameterized notebook for a guided run in JupyterLab")
    run_options(p_prep)
    p_prep.add_argument("--out", required=True, metavar="FILE.ipynb", help="where to write the notebook")
    p_prep.add_argument("--archive", metavar="DIR", help="where the ticket's plan is archived (default as for run)")

    p_arch = sub.add_parser("archive", help="archive a guided run's saved notebook as its record")
    p_arch.add_argument("notebook", metavar="FILE.ipynb", help="the notebook saved after a guided run")
    p_arch.add_argument("--archive", metavar="DIR", help=f"archive directory (default ${ARCHIVE_ENV} or ./records)")

    p_hist = sub.add_parser("history", help="list archived runs")
    p_hist.add_argument("--archive", metavar="DIR")
    p_hist.add_argument("--json", action="store_true", help="one JSON object per run")
    p_hist.add_argument("--ticket", metavar="T", help="only the runs of change ticket T")
    p_hist.add_argument("--scenario", metavar="S", help="only the runs of scenario S")
    p_hist.add_argument("--since", metavar="DATE",
                        help="only runs started at or after DATE (ISO 8601 date or date and time; UTC unless it says)")

    p_exp = sub.add_parser("export", help="one archived record as a page to read: HTML or Markdown")
    p_exp.add_argument("record", nargs="?", metavar="RUN_ID|RECORD", help="a run id or an archived record file")
    p_exp.add_argument("--ticket", metavar="T", help="without RUN_ID: the newest run of change ticket T")
    p_exp.add_argument("--format", choices=("html", "md"), default="html", help="html (default) or md")
    p_exp.add_argument("--out", metavar="FILE", help="where to write the page ('-': standard output; "
                                                      "default: <scenario>-<run id>.<format> here)")
    p_exp.add_argument("--archive", metavar="DIR")

    p_ver = sub.add_parser("verify-archive", help="check every record against the hash-chained index")
    p_ver.add_argument("--archive", metavar="DIR")

    sub.add_parser("scenarios", help="list the scenarios")

    p_lab = sub.add_parser("lab", help="the simulated estate on loopback: up, down, status, reset, fault")
    lab_sub = p_lab.add_subparsers(dest="action", metavar="ACTION")
    lab_sub.required = True
    for action, text in (("up", "start the lab in the background (idempotent)"), ("down", "stop it"),
                         ("status", "show its servers; exit 1 unless all answer"),
                         ("reset", "restore the initial estate")):
        p = lab_sub.add_parser(action, help=text)
        p.add_argument("--dir", default=".lab", metavar="DIR", help="lab directory (default .lab)")
        if action == "up":
            p.add_argument("--foreground", action="store_true", help="stay attached until Ctrl+C")
    p_fault = lab_sub.add_parser("fault", help="make a lab server misbehave for its next requests")
    p_fault.add_argument("server", help="lab server name, e.g. sp-a")
    p_fault.add_argument("kind", choices=["drop", "stall", "error", "no-outbound", "clear"])
    p_fault.add_argument("--count", type=int, default=1, help="how many requests (default 1)")
    p_fault.add_argument("--seconds", type=float, help="with stall: how long to hold each request")
    p_fault.add_argument("--message", help="with error: the error record's message")
    p_fault.add_argument("--path-prefix", help="only requests under this path, e.g. /wsman")
    p_fault.add_argument("--dir", default=".lab", metavar="DIR", help="lab directory (default .lab)")

    p_demo = sub.add_parser("demo", help="start the lab and run every scenario against it, headless")
    p_demo.add_argument("--archive", metavar="DIR")
    p_demo.add_argument("--lab-dir", default=".lab", metavar="DIR")
    p_demo.add_argument("--plan", action="store_true", help="plan only")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "prepare":
            return _cmd_prepare(args)
        if args.command == "archive":
            return _cmd_archive(args)
        if args.command == "history":
            return _cmd_history(args)
        if args.command == "export":
            return _cmd_export(args)
        if args.command == "verify-archive":
            return _cmd_verify(args)
        if args.command == "scenarios":
            return _cmd_scenarios()
        if args.command == "lab":
            if args.action == "fault":
                from .lab.commands import fault_command

                return fault_command(Path(args.dir), args.server, args.kind, count=args.count, seconds=args.seconds,
                                     message=args.message, path_prefix=args.path_prefix)
            from .lab.commands import lab_command

            return lab_command(args.action, Path(args.dir), foreground=getattr(args, "foreground", False))
        if args.command == "demo":
            from .demo import run_demo

            return run_demo(archive=_archive_dir(args.archive), lab_dir=Path(args.lab_dir), plan=args.plan)
    except InputError as exc:
        _error(exc)
        return 2
    except RunbookError as exc:
        _error(exc)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 2


def _error(exc: RunbookError) -> None:
    from .secrets import redact

    print(f"error: {redact(str(exc))}", file=sys.stderr)


# -- run / prepare ----------------------------------------------------------------------------


def _cmd_run(args: argparse.Namespace) -> int:
    from .execute import RunRequest, execute_run

    request = RunRequest.from_cli(
        target=args.target, inventory=args.inventory, params_file=args.params, overrides=args.overrides,
        plan=args.plan, ticket=args.ticket, require_plan=args.require_plan,
    )
    from .terminal import forgiving_streams

    archive = _archive_dir(args.archive)
    # Once the run has started, a terminal that went away must not change its exit code either.
    with forgiving_streams():
        _file_interrupted(archive)
        outcome = execute_run(request, archive=archive, echo=not args.quiet, lock_wait=args.lock_wait)
        print(outcome.summary_text())
        sys.stdout.flush()
    return outcome.exit_code


def _cmd_prepare(args: argparse.Namespace) -> int:
    from .execute import RunRequest, prepare_notebook

    request = RunRequest.from_cli(
        target=args.target, inventory=args.inventory, params_file=args.params, overrides=args.overrides,
        plan=args.plan, ticket=args.ticket, require_plan=args.require_plan,
    )
    out = prepare_notebook(request, Path(args.out), archive=_archive_dir(args.archive))
    print(f"prepared {out} — open it in JupyterLab and run it cell by cell")
    return 0


# -- archive ----------------------------------------------------------------------------------


def _cmd_archive(args: argparse.Namespace) -> int:
    from .execute import archive_guided_run

    root = _archive_dir(args.archive)
    _file_interrupted(root)
    entry = archive_guided_run(Path(args.notebook), root)
    print(f"archived run {entry.run_id} ({entry.scenario}, {entry.status}) as {root / entry.path}")
    return 0


def _history_row(archive: Archive, entry: IndexEntry) -> dict[str, Any]:
    """One run as ``history`` lists it: the index entry and what its record's scraps say."""
    from .record import read_notebook_scraps

    try:
        scraps = read_notebook_scraps(archive.read_record(entry))
    except (OSError, ValueError):  # an unreadable record still has its index line
        scraps = {}
    run = scraps.get("run") or {}
    return {
        "run_id": entry.run_id, "scenario": entry.scenario, "status": entry.status,
        "path": str(archive.root / entry.path), "recorded": entry.recorded,
        "mode": run.get("mode"), "ticket": run.get("ticket"), "user": run.get("user"),
        "started": run.get("started"), "changes": scraps.get("changes"),
    }


def _cmd_history(args: argparse.Namespace) -> int:
    since = _since(args.since) if args.since else None
    archive = _open_archive(args.archive)
    rows: list[dict[str, Any]] = []
    for entry in archive.entries():
        if args.scenario and entry.scenario != args.scenario:
            continue
        row = _history_row(archive, entry)
        if args.ticket and row["ticket"] != args.ticket:
            continue
        if since and _moment(row["started"] or entry.recorded) < since:
            continue
        rows.append(row)
    if args.json:
        for row in rows:
            print(json.dumps(row, sort_keys=True))
        return 0
    if not rows:
        filtered = args.ticket or args.scenario or args.since
        print(f"no runs {'match in' if filtered else 'archived in'} {archive.root}")
        return 0
    print(f"{'recorded':<21} {'scenario':<20} {'mode':<6} {'status':<10} {'changes':>7}  run id        ticket")
    for row in rows:
        print(f"{row['recorded']:<21} {row['scenario']:<20} {row['mode'] or '-':<6} {row['status']:<10} "
              f"{row['changes'] if row['changes'] is not None else '-':>7}  {row['run_id']:<13} {row['ticket'] or ''}")
    return 0


def _since(text: str) -> dt.datetime:
    """``--since``: an ISO 8601 date (midnight UTC) or date and time (UTC unless it names an offset)."""
    try:
        moment = _moment(text.strip())
    except ValueError:
        raise InputError(f"{text!r} is not a date", field="--since",
                         hint="Give an ISO 8601 date or date and time, e.g. 2026-03-01 or 2026-03-01T14:30Z.") from None
    return moment


def _moment(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def _cmd_export(args: argparse.Namespace) -> int:
    from .export import find_record, render_record

    archive = _open_archive(args.archive)
    place = find_record(archive, args.record, ticket=args.ticket)
    page = render_record(archive, place, args.format)
    if args.out == "-":
        sys.stdout.write(page)
        return 0
    out = Path(args.out or f"{place.entry.scenario}-{place.entry.run_id}.{args.format}")
    try:
        out.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror}", field="--out",
                         hint="Choose a file in a directory you can write to.") from None
    print(f"exported run {place.entry.run_id} ({place.entry.scenario}, {place.entry.status}) to {out}")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    archive = _open_archive(args.archive)
    problems = archive.verify()
    if problems:
        for problem in problems:
            print(f"MISMATCH {problem}")
        print(f"archive {archive.root}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"archive {archive.root}: {len(archive.entries())} record(s), chain intact")
    return 0


def _cmd_scenarios() -> int:
    from .scenarios import SCENARIOS, available

    ready = {info.name for info in available()}
    for info in SCENARIOS.values():
        state = "ready" if info.name in ready else "not yet available"
        print(f"{info.name:<22} {state:<18} {info.title}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
