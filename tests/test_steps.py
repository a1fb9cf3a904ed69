"""The step engine: check → plan → apply → verify, as an administrator sees the results."""

from __future__ import annotations

import pytest

from runbooklib.errors import RemoteError, StepFailed
from runbooklib.steps import Check, Proof, Status, StepEngine, step


class Ctx:
    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.state: dict[str, str] = {}

    def warn(self, message: str) -> None:
        self.warnings.append(message)


def ensure(key: str, value: str, *, verify_ok: bool = True, apply_error: Exception | None = None, skip=None):
    def check(ctx: Ctx) -> Check:
        current = ctx.state.get(key)
        changes = [] if current == value else [f"set {key} to {value}"]
        return Check(found=f"{key}={current}", wanted=f"{key}={value}", changes=changes, skip=skip,
                     warnings=["mind the gap"] if key == "warned" else [])

    def apply(ctx: Ctx, found: Check):
        if apply_error:
            raise apply_error
        ctx.state[key] = value

    def verify(ctx: Ctx, found: Check) -> Proof:
        ok = verify_ok and ctx.state.get(key) == value
        return Proof(ok=ok, text=f"{key} reads back {ctx.state.get(key)}", hint="fix it by hand")

    return step(f"set-{key}", f"Set {key}", check=check, apply=apply, verify=verify)


def test_apply_changes_then_rerun_is_ok_with_no_changes():
    ctx = Ctx()
    first = StepEngine(ctx, mode="apply")
    result = first.run(ensure("realm", "abc"))
    assert result.status is Status.CHANGED
    assert result.changes == ["set realm to abc"]
    assert first.changes == 1
    again = StepEngine(ctx, mode="apply")
    result = again.run(ensure("realm", "abc"))
    assert result.status is Status.OK
    assert again.changes == 0
    assert "reads back abc" in result.proof


def test_plan_mode_lists_changes_and_touches_nothing():
    ctx = Ctx()
    engine = StepEngine(ctx, mode="plan")
    result = engine.run(ensure("realm", "abc"))
    assert result.status is Status.PLANNED
    assert result.changes == ["set realm to abc"]
    assert ctx.state == {}
    assert engine.changes == 0
    assert "would: set realm to abc" in str(result)


def test_failed_verify_fails_the_step_and_later_steps_are_skipped():
    ctx = Ctx()
    engine = StepEngine(ctx, mode="apply")
    failed = engine.run(ensure("a", "1", verify_ok=False))
    later = engine.run(ensure("b", "2"))
    assert failed.status is Status.FAILED
    assert failed.hint == "fix it by hand"
    assert later.status is Status.SKIPPED
    assert "b" not in ctx.state, "a step after a failure must not change anything"


def test_product_error_during_apply_is_a_failed_step_with_its_message_and_hint():
    ctx = Ctx()
    engine = StepEngine(ctx, mode="apply")
    error = RemoteError("sp-a: Set-SPAuthenticationRealm failed: Access denied.", hint="Run as a farm administrator.")
    result = engine.run(ensure("realm", "abc", apply_error=error))
    assert result.status is Status.FAILED
    assert "Access denied." in result.error
    assert result.hint == "Run as a farm administrator."


def test_unexpected_exception_still_ends_as_failed_result():
    ctx = Ctx()
    engine = StepEngine(ctx, mode="apply")
    result = engine.run(ensure("realm", "abc", apply_error=ZeroDivisionError("boom")))
    assert result.status is Status.FAILED
    assert "ZeroDivisionError" in result.error


def test_skip_and_warnings_reach_the_result_and_the_context():
    ctx = Ctx()
    engine = StepEngine(ctx, mode="apply")
    skipped = engine.run(ensure("x", "1", skip="only on SharePoint 2013"))
    warned = engine.run(ensure("warned", "1"))
    assert skipped.status is Status.SKIPPED and skipped.proof == "only on SharePoint 2013"
    assert ctx.warnings == ["mind the gap"]
    assert warned.warnings == ["mind the gap"]
    assert "Warning" in warned._repr_html_()


def test_result_renders_as_table_and_scrap():
    engine = StepEngine(Ctx(), mode="apply")
    result = engine.run(ensure("realm", "a<b"))
    html = result._repr_html_()
    for column in ("found", "wanted", "action", "result", "proof"):
        assert f">{column}<" in html
    assert "a&lt;b" in html
    scrap = result.to_scrap()
    assert scrap["status"] == "changed" and scrap["id"] == "set-realm"


def test_mode_is_checked():
    with pytest.raises(ValueError):
        StepEngine(Ctx(), mode="yolo")  # type: ignore[arg-type]


def test_several_changes_render_as_a_list_in_html():
    def check(ctx):
        return Check(found="x", wanted="y", changes=["first change", "second change"])

    engine = StepEngine(Ctx(), mode="plan")
    html = engine.run(step("two", "Two changes", check=check))._repr_html_()
    assert "<li>first change</li><li>second change</li>" in html
    assert "would:" in html


def test_running_the_failed_step_again_retries_it_and_the_run_carries_on():
    ctx = Ctx()
    engine = StepEngine(ctx, mode="apply")
    assert engine.run(ensure("a", "1", apply_error=RemoteError("farm busy"))).status is Status.FAILED
    assert engine.run(ensure("b", "2")).status is Status.SKIPPED
    retried = engine.run(ensure("a", "1"))
    assert retried.status is Status.CHANGED
    assert engine.failed is None
    assert engine.run(ensure("b", "2")).status is Status.CHANGED
    assert [(r.id, r.status) for r in engine.results] == [("set-a", Status.CHANGED), ("set-b", Status.CHANGED)]


def test_a_guided_run_that_never_ran_the_blocked_steps_does_not_succeed():
    from runbooklib.runner import Run

    run = Run(scenario="t", mode="apply", ticket="", parameters={}, inventory=None, inventory_path=None,
              run_context={})
    run.state = {}  # what the test steps of this module read and write
    with pytest.raises(StepFailed):
        run.step(ensure("a", "1", apply_error=RemoteError("farm busy")))
    run.step(ensure("b", "2"))          # skipped: a failed
    run.step(ensure("a", "1"))          # retried after the fix
    run.finish()                        # but b's cell was never run again
    assert run.status == "failed"
    assert any("not run after an earlier failure: set-b" in w for w in run.warnings)
