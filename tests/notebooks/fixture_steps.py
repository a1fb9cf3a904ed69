"""Steps for the engine's fixture notebook: each ensures a marker file exists in a directory."""

from __future__ import annotations

from pathlib import Path

from runbooklib.steps import Check, Proof, step


def marker(workdir: str, name: str, *, fail_verify: bool = False):
    path = Path(workdir) / name

    def check(ctx) -> Check:
        if path.exists():
            return Check(found=f"{name} exists", wanted=f"{name} exists", evidence={"path": str(path)})
        return Check(found=f"{name} missing", wanted=f"{name} exists", changes=[f"create {name}"])

    def apply(ctx, found: Check) -> list[str]:
        path.write_text("created by the fixture runbook\n")
        return [f"created {name}"]

    def verify(ctx, found: Check) -> Proof:
        if fail_verify or not path.exists():
            return Proof(ok=False, text=f"{name} is not there", hint=f"Create {path} by hand, then run again.")
        return Proof(ok=True, text=f"{name} exists ({path.stat().st_size} bytes)", evidence={"path": str(path)})

    return step(f"marker-{name}", f"Ensure marker file {name}", check=check, apply=apply, verify=verify)
