"""One step over several targets: the same kind of change made once per trust, farm or server.

:func:`fan_out` runs a sub-step for each labelled target and reports them as one step, one line
per target in each cell of its table (``sp-b ← sp-a: …``). Every target is checked before any is
changed, so one target's problem stops the step with nothing changed on the others.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from .steps import Check, Proof, Step, step

__all__ = ["Parts", "fan_out"]

#: The (label, sub-step) pairs a fanned-out step covers in this run.
Parts = Callable[[Any], Sequence[tuple[str, Step]]]


def fan_out(step_id: str, title: str, *, parts: Parts, wanted: str, nothing: str) -> Step:
    """A step running each of ``parts(ctx)`` as one part of itself.

    ``wanted`` is what the step wants when it has no part to run, which it then skips saying
    ``nothing``. A part that skips is shown, but neither applied nor verified.
    """

    def check(ctx: Any) -> Check:
        checks = [(label, sub, sub.check(ctx)) for label, sub in parts(ctx)]
        if not checks:
            return Check(found=nothing, wanted=wanted, skip=nothing)
        found = _lines((label, c.found) for label, _, c in checks)
        wanted_lines = _lines((label, c.wanted) for label, _, c in checks)
        evidence = {label: c.evidence for label, _, c in checks}
        warnings = [f"{label}: {w}" for label, _, c in checks for w in c.warnings]
        failed = next(((label, c) for label, _, c in checks if c.failure), None)
        if failed is not None:
            label, c = failed
            return Check(found=found, wanted=wanted_lines, evidence=evidence, warnings=warnings,
                         failure=f"{label}: {c.failure}", hint=c.hint)
        active = [(label, sub, c) for label, sub, c in checks if not c.skip]
        skipped = [(label, c.skip or "") for label, _, c in checks if c.skip]
        if not active:
            return Check(found=found, wanted=wanted_lines, evidence=evidence, warnings=warnings,
                         skip=_lines(skipped), hint=next((c.hint for _, _, c in checks if c.hint), None))
        changes = [f"{label}: {change}" for label, _, c in active for change in c.changes]
        return Check(found=found, wanted=wanted_lines, changes=changes, evidence=evidence, warnings=warnings,
                     data=(active, skipped))

    def apply(ctx: Any, found: Check) -> list[str]:
        active, _ = found.data
        made: list[str] = []
        for label, sub, c in active:
            if c.changes:
                done = sub.apply(ctx, c)
                made += [f"{label}: {m}" for m in (c.changes if done is None else done)]
        return made

    def verify(ctx: Any, found: Check) -> Proof:
        active, skipped = found.data
        proofs = [(label, sub.verify(ctx, c)) for label, sub, c in active]
        failing = [(label, p) for label, p in proofs if not p.ok]
        hint = next((f"{label}: {p.hint}" for label, p in failing if p.hint), None)
        return Proof(ok=not failing, text=_lines([(label, p.text) for label, p in proofs] + skipped),
                     evidence={label: p.evidence for label, p in proofs}, hint=hint)

    return step(step_id, title, check=check, apply=apply, verify=verify)


def _lines(pairs: Any) -> str:
    return "\n".join(f"{label}: {text}" for label, text in pairs)
