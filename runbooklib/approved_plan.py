"""An apply run held to the plan its change ticket approved.

A change board approves a *plan record*: a plan-mode run of the scenario, archived under the
ticket. An apply run with the same ticket is compared with it step by step. Without
``--require-plan`` a departure is a warning of the run; with it, a departure stops the run
before anything changes (:class:`~runbooklib.errors.PlanDeparted`).

What counts as the approved plan: the newest plan record of the ticket that ended ``planned``
and was made with the same parameters and inventory (by the sha256 its ``run`` scrap keeps).

What counts as a departure: a step that would now make a change the plan did not list. A step
that now needs fewer of the approved changes (or none: done by hand, or by an earlier apply of
the ticket) changes nothing that was not approved and is not one. Values a run mints itself — a
new self-signed certificate's thumbprint — differ on every run; the run names them
(:meth:`runbooklib.runner.Run.minted`, the ``minted`` key of the ``run`` scrap) and they are
compared as ``<minted>``.

A run stopped by a departure records it in the ``departures`` scrap: a list of
``{"step", "plan", "now"}`` — the step's id, what the approved plan said of it, and what it would
do now.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import ArchiveError, InputError

if TYPE_CHECKING:
    from .execute import RunRequest
    from .record import Archive

__all__ = ["DEPARTURES_SCRAP", "ApprovedPlan", "Departure", "PlannedStep", "compare_with_plan", "departure",
           "find_plan", "neutral", "require_plan"]

#: The scrap a run stopped by departures from its plan records them in.
DEPARTURES_SCRAP = "departures"
MINTED = "<minted>"


@dataclass(frozen=True)
class PlannedStep:
    """What the plan said of one step: its status (``planned``, ``ok``, ``skipped``) and changes."""

    status: str
    changes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ApprovedPlan:
    """The plan record an apply run is compared with, as the kernel receives it in ``run_context``."""

    run_id: str
    steps: dict[str, PlannedStep]
    #: Steps that apply runs of the ticket after the plan already changed: step id → run id.
    done: dict[str, str] = field(default_factory=dict)
    #: What the plan run minted itself (see the module docstring).
    minted: tuple[str, ...] = ()

    def to_context(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "done": dict(self.done), "minted": list(self.minted),
                "steps": {sid: {"status": s.status, "changes": list(s.changes)} for sid, s in self.steps.items()}}

    @classmethod
    def from_context(cls, data: dict[str, Any]) -> "ApprovedPlan":
        steps = {sid: PlannedStep(str(s.get("status")), tuple(s.get("changes") or []))
                 for sid, s in (data.get("steps") or {}).items()}
        return cls(str(data["run_id"]), steps, dict(data.get("done") or {}), tuple(data.get("minted") or ()))


@dataclass(frozen=True)
class Departure:
    """One step whose check departs from the approved plan."""

    step: str
    plan: str   # what the approved plan said of the step
    now: str    # what the step would do now
    plan_run: str

    def __str__(self) -> str:
        return (f"{self.step} departs from the approved plan (run {self.plan_run}): the plan said {self.plan}; "
                f"now it would {self.now}")

    def to_scrap(self) -> dict[str, str]:
        return {"step": self.step, "plan": self.plan, "now": self.now}


def neutral(texts: Iterable[str], minted: Iterable[str]) -> list[str]:
    """``texts`` with every value the run minted replaced by ``<minted>`` (longest first, so a
    full thumbprint goes before its short form)."""
    values = sorted({v for v in minted if v}, key=len, reverse=True)
    result = []
    for text in texts:
        for value in values:
            text = text.replace(value, MINTED)
        result.append(text)
    return result


def _said(planned: PlannedStep | None) -> str:
    if planned is None:
        return "nothing (the step is not in the plan)"
    if planned.status == "planned" and planned.changes:
        return "; ".join(planned.changes)
    return f"nothing to change ({planned.status})"


def departure(step_id: str, changes: Sequence[str], plan: ApprovedPlan, minted: Iterable[str]) -> Departure | None:
    """How a step that would now make ``changes`` departs from ``plan``, or None when it does not."""
    if not changes:
        return None
    planned = plan.steps.get(step_id)
    approved = set(neutral(planned.changes, plan.minted)) if planned and planned.status == "planned" else set()
    unapproved = [c for c, n in zip(changes, neutral(changes, minted)) if n not in approved]
    if not unapproved:
        return None
    return Departure(step_id, _said(planned), "; ".join(changes), plan.run_id)


def compare_with_plan(status: str, intended: Sequence[str], step_id: str, plan: ApprovedPlan,
                      minted: Iterable[str]) -> tuple[str, bool]:
    """How a step's outcome in an apply run compares with the approved plan: (words, matches).

    ``intended`` is what the step's check meant to change; it is compared with what the plan
    listed, word for word but for the values each run minted.
    """
    plan_run = plan.run_id
    planned = plan.steps.get(step_id)
    if planned is None:
        return f"not in plan {plan_run}", False
    was, listed = planned.status, list(planned.changes)
    if status == "changed" and was == "planned":
        if neutral(intended, minted) == neutral(listed, plan.minted):
            return f"as planned in run {plan_run}", True
        return f"changed other things than plan {plan_run} listed: planned {listed}, found {list(intended)}", False
    if status == "ok" and was == "planned":
        earlier = plan.done.get(step_id)
        if earlier:
            return f"done as planned by run {earlier} of the same ticket", True
        return f"plan {plan_run} listed {len(listed)} change(s), but none were needed any more", False
    if status == "changed" and was in ("ok", "skipped"):
        return f"changed although plan {plan_run} found nothing to change", False
    if status == was:
        return f"as planned in run {plan_run}", True
    return f"{status} where plan {plan_run} was {was}", status != "failed"


# -- finding the plan ---------------------------------------------------------------------


def find_plan(archive: Archive, request: RunRequest) -> tuple[ApprovedPlan | None, str]:
    """The approved plan of ``request``'s ticket, or None and why there is none (in words)."""
    ticket, scenario = request.ticket, request.scenario
    try:
        runs = archive.ticket_runs(scenario, ticket)
    except ArchiveError as exc:
        return None, f"the plan of ticket {ticket} could not be looked up ({exc.message})"
    plans = [i for i, (_, scraps) in enumerate(runs) if (scraps.get("run") or {}).get("mode") == "plan"]
    if not plans:
        return None, f"no plan of ticket {ticket} for {scenario} is in the archive {archive.root}"
    inventory_sha = hashlib.sha256(request.inventory.read_bytes()).hexdigest() if request.inventory else None
    wanted = {"parameters": request.parameters_sha256(), "inventory": inventory_sha}
    matching = [i for i in plans if {k: ((runs[i][1].get("run") or {}).get("sha256") or {}).get(k)
                                     for k in wanted} == wanted]
    succeeded = [i for i in matching if runs[i][0].status == "planned"]
    if not succeeded:
        newest = runs[(matching or plans)[-1]][0]
        if matching:
            return None, f"the plan of ticket {ticket} (run {newest.run_id}) ended {newest.status}"
        return None, (f"the plan of ticket {ticket} (run {newest.run_id}) was made with other parameters "
                      "or another inventory")
    index = succeeded[-1]
    entry, scraps = runs[index]
    done: dict[str, str] = {}
    for later, later_scraps in runs[index + 1:]:
        if (later_scraps.get("run") or {}).get("mode") == "apply":
            for step in later_scraps.get("steps") or []:
                if step.get("status") == "changed":
                    done.setdefault(step["id"], later.run_id)
    steps = {step["id"]: PlannedStep(step["status"], tuple(step.get("changes") or []))
             for step in scraps.get("steps") or []}
    minted = tuple((scraps.get("run") or {}).get("minted") or ())
    return ApprovedPlan(entry.run_id, steps, done, minted), ""


def require_plan(archive: Archive, request: RunRequest) -> ApprovedPlan:
    """The approved plan of ``request``'s ticket; :class:`InputError` (exit 2) when there is none."""
    plan, why = find_plan(archive, request)
    if plan is None:
        raise InputError(f"{why}: --require-plan has nothing to hold this apply to", field="--require-plan",
                         hint=f"Make the plan with the same parameters and inventory (runbook run {request.scenario} "
                              f"… --plan --ticket {request.ticket} --archive {archive.root}), have its record "
                              "approved, then run this again. Nothing was contacted.")
    return plan
