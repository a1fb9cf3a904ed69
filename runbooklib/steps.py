"""The step engine: every change a runbook makes is a step that goes check → plan → apply → verify.

A step first *checks* what is there (read-only) and says what it found, what is wanted, and the
changes needed in words. In ``plan`` mode that is where it stops: the changes are reported as
planned and nothing is touched. In ``apply`` mode the step *applies* exactly those changes, then
*verifies* the end state independently of what apply returned; a failed verify fails the step.
A step with nothing to change still verifies, so a re-run proves the trust as it stands.

Results render as an HTML table in a notebook and as plain lines in a terminal or a diff.
"""

from __future__ import annotations

import enum
import html
import logging
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Protocol, TypeVar

from .errors import RunbookError, StepFailed

__all__ = [
    "Check",
    "Context",
    "FromRun",
    "Mode",
    "Proof",
    "Status",
    "Step",
    "StepEngine",
    "StepResult",
    "status_mark",
    "step",
]

log = logging.getLogger(__name__)

Mode = Literal["apply", "plan"]
T = TypeVar("T")
#: What a step factory takes for each thing it acts on or sets: a function of the run, read when
#: the step runs, so one factory serves several farms, servers or principals.
FromRun = Callable[[Any], T]
#: Asked with a checked step's result before apply: None to go on, or (error, hint) to stop it.
Hold = Callable[["StepResult"], "tuple[str, str] | None"]


class Status(str, enum.Enum):
    OK = "ok"
    CHANGED = "changed"
    PLANNED = "planned"
    FAILED = "failed"
    SKIPPED = "skipped"

    def __str__(self) -> str:
        return self.value


_MARKS = {
    Status.OK: "✔",
    Status.CHANGED: "✚",
    Status.PLANNED: "…",
    Status.FAILED: "✖",
    Status.SKIPPED: "–",
}


def status_mark(status: str) -> str:
    """The mark a step status is shown with (``✔`` ok, ``✖`` failed …); ``?`` for an unknown one."""
    try:
        return _MARKS[Status(status)]
    except ValueError:
        return "?"


_COLOURS = {
    Status.OK: "#1a7f37",
    Status.CHANGED: "#0969da",
    Status.PLANNED: "#9a6700",
    Status.FAILED: "#cf222e",
    Status.SKIPPED: "#6e7781",
}


@dataclass
class Check:
    """What a step's check found.

    ``changes`` lists, in the administrator's words, what apply would do; empty means the target
    is already as wanted. ``skip`` names why the step does not apply here (e.g. a SharePoint 2013-only
    step on a 2019 farm). ``failure`` says why the step cannot go on (with ``hint`` naming the fix),
    keeping what was found as evidence. ``data`` carries whatever apply needs from the check.
    """

    found: str
    wanted: str
    changes: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    skip: str | None = None
    failure: str | None = None
    hint: str | None = None
    data: Any = None


@dataclass
class Proof:
    """What verify established. ``ok`` False fails the step with ``hint``."""

    ok: bool
    text: str
    evidence: dict[str, Any] = field(default_factory=dict)
    hint: str | None = None


class Context(Protocol):
    """What a step may use: the run's mode plus whatever the scenario puts on it."""

    mode: Mode

    def warn(self, message: str) -> None: ...


class Step(Protocol):
    """check and verify only read; apply changes exactly what check listed."""

    id: str
    title: str

    def check(self, ctx: Any) -> Check: ...
    def apply(self, ctx: Any, check: Check) -> list[str] | None: ...
    def verify(self, ctx: Any, check: Check) -> Proof: ...


@dataclass
class FunctionStep:
    """A step made of plain functions; see :func:`step`."""

    id: str
    title: str
    check_fn: Callable[[Any], Check]
    apply_fn: Callable[[Any, Check], list[str] | None] | None = None
    verify_fn: Callable[[Any, Check], Proof] | None = None
    why: str = ""

    def check(self, ctx: Any) -> Check:
        return self.check_fn(ctx)

    def apply(self, ctx: Any, check: Check) -> list[str] | None:
        if self.apply_fn is None:
            raise StepFailed(
                f"step {self.id} found changes to make but has no way to make them",
                hint="This is a runbook defect: report it with the record.",
                step=self.id,
            )
        return self.apply_fn(ctx, check)

    def verify(self, ctx: Any, check: Check) -> Proof:
        if self.verify_fn is None:
            return Proof(ok=True, text="nothing further to prove")
        return self.verify_fn(ctx, check)


def step(id: str, title: str, *, check: Callable[[Any], Check],  # noqa: A002 - the contract's word
         apply: Callable[[Any, Check], list[str] | None] | None = None,
         verify: Callable[[Any, Check], Proof] | None = None, why: str = "") -> FunctionStep:
    """Build a step from its check, apply and verify functions."""
    return FunctionStep(id, title, check, apply, verify, why)


@dataclass
class StepResult:
    """The outcome of one step, as recorded in the ``steps`` scrap."""

    id: str
    title: str
    status: Status
    found: str = ""
    wanted: str = ""
    changes: list[str] = field(default_factory=list)
    proof: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    hint: str | None = None
    error: str | None = None
    plan: str | None = None  # how this outcome compares with the approved plan, when there is one
    blocked_by: str | None = None  # the failed step that kept this one from running
    intended: list[str] = field(default_factory=list)  # what check said to change, before apply

    @property
    def changed_count(self) -> int:
        return len(self.changes) if self.status is Status.CHANGED else 0

    def to_scrap(self) -> dict[str, Any]:
        """The ``steps`` scrap entry (JSON-safe)."""
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status.value,
            "changes": list(self.changes),
            "evidence": _json_safe(self.evidence),
            "hint": self.hint,
            "found": self.found,
            "wanted": self.wanted,
            "proof": self.proof,
            "warnings": list(self.warnings),
            "error": self.error,
            "plan": self.plan,
        }

    # -- rendering -------------------------------------------------------------------------
    def action_text(self) -> str:
        if self.status is Status.SKIPPED:
            return "none"
        if self.status is Status.FAILED and not self.changes:
            return "none (stopped)"
        if not self.changes:
            return "none — already as wanted"
        prefix = "would: " if self.status is Status.PLANNED else ""
        return prefix + "; ".join(self.changes)

    def __str__(self) -> str:
        lines = [f"{_MARKS[self.status]} {self.status.value:<8} {self.id} — {self.title}"]
        several = len(self.changes) > 1 and self.status in (Status.CHANGED, Status.PLANNED)
        action = ("would:" if self.status is Status.PLANNED else "") if several else self.action_text()
        for label, value in (("found", self.found), ("wanted", self.wanted), ("action", action or " ")):
            if value:
                lines.append(f"    {label:<7} {_indented(value)}".rstrip())
        if several:
            lines += [f"      - {change}" for change in self.changes]
        for label, value in (("proof", self.proof), ("plan", self.plan or "")):
            if value:
                lines.append(f"    {label:<7} {_indented(value)}")
        for warning in self.warnings:
            lines.append(f"    WARNING {warning}")
        if self.error:
            lines.append(f"    error   {self.error}")
        if self.hint:
            lines.append(f"    next    {self.hint}")
        return "\n".join(lines)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))

    def _repr_html_(self) -> str:
        colour = _COLOURS[self.status]
        esc = html.escape
        head = (
            f"<div style='font-weight:600;margin:4px 0'>{esc(self.title)} "
            f"<span style='color:{colour}'>{_MARKS[self.status]} {self.status.value}</span></div>"
        )
        if len(self.changes) > 1 and self.status in (Status.CHANGED, Status.PLANNED):
            prefix = "would:" if self.status is Status.PLANNED else ""
            action = prefix + "<ul style='margin:0;padding-left:1.2em'>" + "".join(
                f"<li>{esc(c)}</li>" for c in self.changes) + "</ul>"
        else:
            action = esc(self.action_text())
        # A step over several targets (runbooklib.fan_out) gives one line per target.
        cells = [_html_lines(self.found), _html_lines(self.wanted), action, esc(self.status.value),
                 _html_lines(self.proof)]
        row = "".join(f"<td style='text-align:left;vertical-align:top'>{c}</td>" for c in cells)
        table = (
            "<table><thead><tr>"
            + "".join(f"<th style='text-align:left'>{h}</th>" for h in ("found", "wanted", "action", "result", "proof"))
            + f"</tr></thead><tbody><tr>{row}</tr></tbody></table>"
        )
        extras = f"<div><b>Plan:</b> {esc(self.plan)}</div>" if self.plan else ""
        for warning in self.warnings:
            extras += (
                "<div style='background:#fff8c5;border-left:4px solid #9a6700;padding:4px 8px;margin:4px 0'>"
                f"<b>Warning:</b> {esc(warning)}</div>"
            )
        if self.error:
            extras += f"<div style='color:{colour}'><b>Error:</b> <pre>{esc(self.error)}</pre></div>"
        if self.hint:
            extras += f"<div><b>What to do:</b> {esc(self.hint)}</div>"
        return head + table + extras


def _indented(text: str) -> str:
    """A value's further lines aligned under its first, in the plain-text table."""
    return text.replace("\n", "\n" + " " * 12)


def _html_lines(text: str) -> str:
    return "<br>".join(html.escape(line) for line in text.split("\n"))


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return str(value)


class StepEngine:
    """Runs steps in order for one run and keeps their results.

    After a failed step every later step is reported ``skipped`` without touching anything:
    a runbook never builds on a step it could not prove.
    """

    def __init__(self, ctx: Any, *, mode: Mode, hold: Hold | None = None) -> None:
        if mode not in ("apply", "plan"):
            raise ValueError(f"mode must be 'apply' or 'plan', not {mode!r}")
        self.ctx = ctx
        self.mode: Mode = mode
        self.results: list[StepResult] = []
        #: Asked after each check of an apply, before anything changes: a refusal fails the step.
        self.hold = hold

    @property
    def failed(self) -> StepResult | None:
        return next((r for r in self.results if r.status is Status.FAILED), None)

    @property
    def changes(self) -> int:
        return sum(r.changed_count for r in self.results)

    @property
    def not_run(self) -> list[StepResult]:
        """Steps skipped because an earlier step failed, and not run since (a guided run's gaps)."""
        return [r for r in self.results if r.blocked_by]

    def run(self, step: Step) -> StepResult:
        failed = self.failed
        if failed is None or failed.id == step.id:
            # Running a failed (or skipped) step again retries it: in a guided run the administrator
            # fixes the cause, re-runs that cell and carries on from there. Its earlier outcome goes.
            self.results = [r for r in self.results
                            if not (r.id == step.id and r.status in (Status.FAILED, Status.SKIPPED))]
        else:
            result = StepResult(step.id, step.title, Status.SKIPPED,
                                proof=f"not run: step {failed.id} failed",
                                hint=f"Fix the cause of step {failed.id}, run its cell again, then this one.",
                                blocked_by=failed.id)
            self.results.append(result)
            return result
        result = self._run(step)
        self.results.append(result)
        log.info("step %s: %s", step.id, result.status.value)
        return result

    def _run(self, step: Step) -> StepResult:
        result = StepResult(step.id, step.title, Status.FAILED)
        phase = "check"
        try:
            check = step.check(self.ctx)
            result.found, result.wanted = check.found, check.wanted
            result.evidence.update(check.evidence)
            result.warnings.extend(check.warnings)
            for warning in check.warnings:
                _warn(self.ctx, warning)
            if check.failure:
                result.error = f"check: {check.failure}"
                result.hint = check.hint or "Correct the cause above and run the runbook again."
                return result
            if check.skip:
                result.status = Status.SKIPPED
                result.proof = check.skip
                result.hint = check.hint
                return result
            result.changes = list(check.changes)
            result.intended = list(check.changes)
            refusal = self.hold(result) if self.hold is not None and self.mode == "apply" else None
            if refusal is not None:
                result.changes = []  # none made; ``intended`` keeps what it would have done
                result.error, result.hint = refusal
                return result
            if check.changes and self.mode == "plan":
                result.status = Status.PLANNED
                result.proof = "not applied (plan mode)"
                return result
            if check.changes:
                phase = "apply"
                made = step.apply(self.ctx, check)
                if made is not None:
                    result.changes = list(made)
            # Verify is read-only, so with nothing to change plan mode proves the state too.
            phase = "verify"
            proof = step.verify(self.ctx, check)
            result.proof = proof.text
            result.evidence.update(proof.evidence)
            if not proof.ok:
                result.status = Status.FAILED
                result.error = f"verification failed: {proof.text}"
                result.hint = proof.hint or check.hint or "Inspect the evidence, correct the target, and run the runbook again."
                return result
            result.status = Status.CHANGED if result.changes else Status.OK
            return result
        except RunbookError as exc:
            result.status = Status.FAILED
            result.error = f"{phase}: {exc.message}"
            result.hint = exc.hint or "Correct the cause above and run the runbook again; completed steps are skipped as already done."
            return result
        except Exception as exc:  # a defect must still end in an archived, failed record
            log.error("step %s raised unexpectedly:\n%s", step.id, traceback.format_exc())
            result.status = Status.FAILED
            result.error = f"{phase}: {type(exc).__name__}: {exc}"
            result.hint = "Unexpected error: keep this record and report it; the traceback is in the run log."
            return result


def _warn(ctx: Any, message: str) -> None:
    warn = getattr(ctx, "warn", None)
    if callable(warn):
        warn(message)
