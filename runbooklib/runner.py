"""What a runbook notebook calls: :func:`start` opens a run, ``run.step(...)`` runs each step,
``run.finish()`` closes it with a summary and the scraps the archive reads.

The run is also the context every step receives: its mode, the inventory, the scenario's
parameters, connections to the targets (opened once per target, on first use), and warnings.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ._kernel import in_kernel
from .approved_plan import DEPARTURES_SCRAP, ApprovedPlan, Departure, compare_with_plan, departure
from .errors import InputError, PlanDeparted, RunbookError, RunInterrupted, StepFailed
from .locks import DEFAULT_LOCK_WAIT, TargetLocks, describe_holder, lock_targets
from .manifest import run_manifest, user_name
from .record import STEP_SCRAP, glue, utc_iso, utc_now
from .steps import Mode, Status, Step, StepEngine, StepResult
from .targets import Targets, run_targets
from .terminal import deferred_interrupt

__all__ = ["Run", "Summary", "start"]

log = logging.getLogger(__name__)

F = TypeVar("F")


def _show(obj: Any) -> None:
    """Show a result: rich in a notebook, text elsewhere."""
    if in_kernel():
        from IPython.display import display

        display(obj)
    else:
        print(str(obj))


class Text(str):
    """Plain text that a notebook shows as preformatted text rather than as a quoted repr."""

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(str(self))}</pre>"


@dataclass
class Summary:
    scenario: str
    run_id: str
    mode: Mode
    status: str
    results: list[StepResult]
    changes: int
    warnings: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"Run {self.run_id} — {self.scenario} — {self.mode} — {self.status.upper()}"]
        for r in self.results:
            detail = "; ".join(r.changes) if r.changes and r.status in (Status.CHANGED, Status.PLANNED) \
                else r.proof.replace("\n", "; ")  # a step over several targets proves one per line
            lines.append(f"  {r.status.value:<8} {r.id:<28} {detail}")
        lines.append(f"  changes made: {self.changes}")
        for w in self.warnings:
            lines.append(f"  WARNING {w}")
        return "\n".join(lines)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))

    def _repr_html_(self) -> str:
        esc = html.escape
        cell = "style='text-align:left;vertical-align:top'"

        def detail(r: StepResult) -> str:
            if r.changes and r.status in (Status.CHANGED, Status.PLANNED):
                return "<br>".join(esc(c) for c in r.changes)
            return esc(r.proof)

        rows = "".join(
            f"<tr><td {cell}>{esc(r.title)}</td><td {cell}>{esc(r.status.value)}</td><td {cell}>{detail(r)}</td></tr>"
            for r in self.results
        )
        warn = "".join(f"<li>{esc(w)}</li>" for w in self.warnings)
        head = "".join(f"<th {cell}>{h}</th>" for h in ("step", "status", "changes / proof"))
        return (
            f"<h4>Run {esc(self.run_id)} — {esc(self.status)}</h4>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
            f"<p>Changes made: <b>{self.changes}</b></p>"
            + (f"<p><b>Warnings</b></p><ul>{warn}</ul>" if warn else "")
        )


class Run:
    """One execution of a runbook. Created by :func:`start`."""

    def __init__(self, *, scenario: str, mode: Mode, ticket: str, parameters: Any,
                 inventory: Any, inventory_path: Path | None, run_context: dict[str, Any]) -> None:
        self.scenario = scenario
        self.mode: Mode = mode
        self.ticket = ticket
        self.params = parameters
        self.inventory = inventory
        self.inventory_path = inventory_path
        #: The servers and tenants the scenario's parameters declare (none when it is unknown).
        self.targets = Targets()
        self.run_id: str = run_context.get("run_id") or uuid.uuid4().hex[:12]
        started = run_context.get("started")
        self.started = dt.datetime.fromisoformat(started.replace("Z", "+00:00")) if started else utc_now()
        self._context = run_context
        plan = run_context.get("plan")
        #: The approved plan this apply is compared with (its ticket's), if any.
        self.plan: ApprovedPlan | None = ApprovedPlan.from_context(plan) if plan else None
        #: With --require-plan: "whole-run" (re-plan every step before the first change) or
        #: "step-by-step" (a guided run: each step's cell holds itself to the plan).
        self.require_plan: str | None = run_context.get("require_plan") if self.plan and mode == "apply" else None
        self.minted_values: list[str] = []
        self._departed: dict[str, Departure] = {}
        self.engine = StepEngine(self, mode=mode, hold=self._hold_to_plan if self.require_plan else None)
        self.warnings: list[str] = []
        self._facts: dict[type, Any] = {}
        self._connections: Any = None
        self._graphs: dict[str, Any] = {}
        self.finished: dt.datetime | None = None
        self.status: str | None = None
        self.summary: Summary | None = None
        self.shells_opened_total: dict[str, int] = {}
        self._locks: TargetLocks | None = None

    # -- what steps use ------------------------------------------------------------------
    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)
            log.info("warning: %s", message)  # shown in the step's table; the log keeps a copy

    def minted(self, *values: str) -> None:
        """Name values this run made itself (a new certificate's thumbprint, in every form the
        steps' texts use): they differ on every run, so they are no departure from the plan."""
        self.minted_values.extend(v for v in values if v and v not in self.minted_values)

    def facts_of(self, kind: type[F]) -> F:
        """The scenario's typed facts for this run: one ``kind(run)``, whose facts are read on first use."""
        if kind not in self._facts:
            self._facts[kind] = kind(self)
        return self._facts[kind]

    def remote(self, server: str):
        """The remote PowerShell session to inventory server ``server`` (one per target per run)."""
        if self._connections is None:
            from .remote import RemoteConnections

            self._connections = RemoteConnections(self.inventory)
        return self._connections.session(server)

    def graph(self, tenant: str):
        """The Graph client for inventory tenant ``tenant`` (one per run)."""
        if tenant not in self._graphs:
            from .graph import GraphClient

            self._graphs[tenant] = GraphClient(self.inventory.tenant(tenant), lock_dir=self._lock_dir())
        return self._graphs[tenant]

    def _lock_dir(self) -> Path:
        """Where Graph writes to a tenant are serialised: the archive's (headless runs), else the
        user's cache — the same for every run this account starts on this machine."""
        if self._context.get("lock_dir"):
            return Path(self._context["lock_dir"])
        return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "s2s-runbooks" / "locks"

    def _hold_locks(self) -> None:
        """Lock every target an apply may change (plan runs change nothing and lock nothing).

        Taken before the first step; taken again if a guided run carries on after a failed
        step closed the run and let them go.
        """
        if self.mode != "apply" or not (self.targets.servers or self.targets.tenants):
            return
        if self._locks is None:
            self._locks = TargetLocks(self._lock_dir(), lock_targets(self.targets), run_id=self.run_id,
                                      scenario=self.scenario)
        if self._locks.held:
            return
        wait = float(self._context.get("lock_wait") or DEFAULT_LOCK_WAIT)
        self._locks.acquire(wait=wait, show=lambda text: _show(Text(text)), stop_requested=self._stop_requested)
        for target, holder in self._locks.taken_over.items():
            self.warn(f"the lock on {target} was left by {describe_holder(holder)}, which ended without "
                      "releasing it; check that run's record (runbook history)")

    def _stop_requested(self) -> bool:
        """Whether the operator asked a headless run to stop (``runbook run`` leaves a file for it)."""
        stop_file = self._context.get("stop_file")
        return bool(stop_file) and Path(stop_file).exists()

    def _interrupt(self, after: str | None) -> None:
        self._close("interrupted")
        where = f"after step {after}" if after else "before its first step"
        raise RunInterrupted(f"the run was stopped at the operator's request, {where}; "
                             f"{self.engine.changes} change(s) made",
                             hint="Run the runbook again with the same parameters: the steps already done "
                                  "are found as wanted and left alone.")

    @property
    def shells_opened(self) -> dict[str, int]:
        if self._connections is None:
            return {}
        return dict(getattr(self._connections, "shells_opened", {}))

    # -- the run ------------------------------------------------------------------------
    def step(self, step: Step) -> None:
        """Run one step, show its result, and stop the notebook if it failed.

        Results are shown, not returned, so a notebook cell shows each exactly once; callers in
        Python read :attr:`results`.
        """
        if self._stop_requested():
            self._interrupt(self.engine.results[-1].id if self.engine.results else None)
        try:
            self._hold_locks()
        except RunbookError as exc:
            self.fail(exc)
            raise
        # A Ctrl-C inside a step would cut a keyCredentials write or a realm change in half.
        with deferred_interrupt() as interrupt:
            result = self.engine.run(step)
        departed = self._departed.pop(result.id, None)
        if departed is not None:
            result.plan = f"departs from plan {departed.plan_run}: it said {departed.plan}"
        elif self.plan and result.status is not Status.FAILED:
            words, matches = compare_with_plan(result.status.value, result.intended, result.id, self.plan,
                                               self.minted_values)
            result.plan = words
            if not matches:
                result.warnings.append(f"differs from the approved plan: {words}")
                self.warn(f"step {result.id} differs from the approved plan: {words}")
        glue(STEP_SCRAP, result.to_scrap())  # what a run that never finishes is filed with
        _show(result)
        if departed is not None:
            self._stop_departed([departed])
        if interrupt.asked or self._stop_requested():
            self._interrupt(result.id)
        if result.status is Status.FAILED:
            self._close("failed")
            hint = f"{result.hint} In a guided run, fix the cause, then run this cell again and carry on."
            raise StepFailed(f"step {result.id} failed: {result.error}", hint=hint, step=result.id)

    # -- held to the approved plan (--require-plan) -----------------------------------------
    def _hold_to_plan(self, result: StepResult) -> tuple[str, str] | None:
        """The engine asks this after each check, before apply: a departure stops the step."""
        assert self.plan is not None
        found = departure(result.id, result.intended, self.plan, self.minted_values)
        if found is None:
            return None
        self._departed[result.id] = found
        return f"check: {found}", _DEPARTED_HINT.format(plan=self.plan.run_id, ticket=self.ticket, what="this step")

    def replan(self) -> list[Departure]:
        """Check every step of the scenario read-only, as a plan run does, and compare each with
        the approved plan; what departs is returned (nothing is changed, nothing locked)."""
        from .scenarios import find_scenario

        assert self.plan is not None
        info = find_scenario(self.scenario)
        steps = info.load().STEPS if info is not None else []
        engine = StepEngine(self, mode="plan")
        for planned in steps:
            engine.run(planned)
        failed = engine.failed
        if failed is not None:
            # Not a drift to judge but a check that cannot run (a target that does not answer…).
            _show(failed)
            raise StepFailed(f"step {failed.id} failed while it was checked against the approved plan: "
                             f"{failed.error}", hint=f"{failed.hint} Nothing was changed.", step=failed.id)
        found = [d for d in (departure(r.id, r.changes, self.plan, self.minted_values) for r in engine.results) if d]
        # The apply reads the estate afresh, as any apply run does: what the checks cached goes.
        self._facts.clear()
        lines = [f"Checked every step against the approved plan, run {self.plan.run_id} (nothing changed):"]
        lines += [f"  {'DEPARTS' if any(d.step == r.id for d in found) else 'agrees':<8} {r.id}"
                  for r in engine.results]
        _show(Text("\n".join(lines)))
        return found

    def _stop_departed(self, departures: list[Departure], *, what: str = "this step") -> None:
        """Close the run as failed, with its departures recorded, and stop it."""
        for found in departures:
            self.warn(str(found))
        glue(DEPARTURES_SCRAP, [d.to_scrap() for d in departures])
        self._close("failed")
        first = str(departures[0]) + (f" (and {len(departures) - 1} more step(s))" if len(departures) > 1 else "")
        hint = _DEPARTED_HINT.format(plan=self.plan.run_id if self.plan else "?", ticket=self.ticket, what=what)
        raise PlanDeparted(first, hint=hint, departures=departures)

    @property
    def results(self) -> list[StepResult]:
        return list(self.engine.results)

    def finish(self) -> None:
        """Close the run: record its outcome and show the summary (kept as :attr:`summary`)."""
        gaps = self.engine.not_run
        if gaps and not self.engine.failed:
            # A guided run retried a failed step but never ran the cells it had blocked.
            self.warn("not run after an earlier failure: " + ", ".join(r.id for r in gaps)
                      + " — run their cells, then this one")
        failed = self.engine.failed or gaps
        status = "failed" if failed else ("planned" if self.mode == "plan" else "succeeded")
        self.summary = self._close(status)
        _show(self.summary)

    def fail(self, error: BaseException) -> None:
        """Record a run that stopped outside any step (e.g. invalid input in a guided run)."""
        self.warn(f"run stopped: {error}")
        self._close("failed")

    def _close(self, status: str) -> Summary:
        self.status = status
        self.finished = utc_now()
        if self._locks is not None:
            self._locks.release()
        shells = self.shells_opened
        if self._connections is not None:
            self._connections.close()
        self.shells_opened_total = shells
        for client in self._graphs.values():
            close = getattr(client, "close", None)
            if callable(close):
                close()
        self._graphs.clear()
        self._connections = None
        glue("run", self.manifest(shells_opened=shells))
        glue("steps", [r.to_scrap() for r in self.engine.results])
        glue("changes", self.engine.changes)
        return Summary(self.scenario, self.run_id, self.mode, status, list(self.engine.results),
                       self.engine.changes, list(self.warnings))

    def manifest(self, *, shells_opened: dict[str, int] | None = None) -> dict[str, Any]:
        """The ``run`` scrap."""
        return run_manifest(
            scenario=self.scenario, run_id=self.run_id, status=self.status, started=self.started,
            finished=self.finished, ticket=self.ticket, mode=self.mode,
            notebook_sha256=self._context.get("source_sha256"),
            parameters_sha256=self._context.get("parameters_sha256"),
            inventory=self.inventory_path, parameters=self.params, warnings=self.warnings,
            shells_opened=shells_opened, plan_run_id=self.plan.run_id if self.plan else None,
            minted=self.minted_values,
        )

    def header(self) -> "Text":
        lines = [
            f"Run {self.run_id} · {self.scenario} · mode {self.mode.upper()}"
            + (" (nothing will be changed)" if self.mode == "plan" else ""),
            f"  by {user_name()} on {socket.gethostname()} at {utc_iso(self.started)} (UTC)",
        ]
        if self.ticket:
            held = " · held to" if self.require_plan else " · compared with"
            lines.append(f"  ticket {self.ticket}" + (f"{held} its plan, run {self.plan.run_id}" if self.plan else ""))
        for target in self.targets.lines():
            lines.append(f"  target {target}")
        return Text("\n".join(lines))


_DEPARTED_HINT = ("The estate is no longer as it was when plan run {plan} was approved, so {what} changed "
                  "nothing. Find out who changed it and why; then make a new plan (runbook run … --plan --ticket "
                  "{ticket}), have it approved, and run the apply again.")


def start(scenario: str, *, mode: Mode = "plan", ticket: str = "", inventory: str | Path | None = None,
          params: dict[str, Any] | None = None, run_context: dict[str, Any] | None = None) -> Run:
    """Open a run: validate everything before anything is contacted, then show the header.

    ``params`` are validated with the scenario's parameter model when the scenario is known.
    Invalid input raises :class:`InputError` (and, in a notebook, records a failed run).
    """
    from .secrets import install_redaction

    install_redaction()
    run_context = dict(run_context or {})
    inv = None
    inv_path = Path(inventory).resolve() if inventory else None
    run = Run(scenario=scenario, mode=mode, ticket=ticket, parameters=params or {}, inventory=None,
              inventory_path=inv_path, run_context=run_context)
    try:
        if mode not in ("apply", "plan"):
            raise InputError(f"mode must be 'plan' or 'apply', not {mode!r}", field="mode",
                             hint="Use mode = \"plan\" to preview and mode = \"apply\" to change.")
        if inv_path is not None:
            from .inventory import load_inventory

            inv = load_inventory(inv_path)
        run.inventory = inv
        from .scenarios import find_scenario

        info = find_scenario(scenario)
        if info is not None:
            run.params = info.validate(params or {}, inv, source="parameters")
            if inv is not None:
                run.targets = run_targets(run.params, inv)
    except RunbookError as exc:
        run.fail(exc)
        raise
    if run_context.get("plan_note"):
        run.warn(run_context["plan_note"])
    _show(run.header())
    if run.require_plan == "whole-run":
        try:
            departures = run.replan()
        except RunbookError as exc:
            run.fail(exc)
            raise
        if departures:
            run._stop_departed(departures, what="the run")
    try:
        run._hold_locks()
    except RunInterrupted:
        run._close("interrupted")
        raise
    except RunbookError as exc:
        run.fail(exc)
        raise
    return run
