"""A scenario whose targets are a list of servers, for the targets fixture notebook.

Each listed front end is reached once (a harmless read); ``display_name`` is a plain parameter,
so naming a server in it must make nothing of that server.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict

from runbooklib.scenarios import ScenarioInfo
from runbooklib.steps import Check, Proof, step
from runbooklib.targets import Server, Tenant

SCENARIO = ScenarioInfo("targets-fixture", "fixture: a list of SharePoint front ends", "targets_fixture")


class Parameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    front_ends: Annotated[list[str], Server("sharepoint")]
    tenant: Annotated[str | None, Tenant()] = None
    display_name: str = "Front ends"
    #: A file whose text the notebook prints before any target is reached: a secret mishandled.
    plant_file: str = ""


def reach(name: str):
    """A read-only step that opens a session to ``name`` and lists its registered snap-ins."""

    def check(ctx) -> Check:
        result = ctx.remote(name).invoke("Get-PSSnapin", {"Registered": True})
        return Check(found=f"{name} answers", wanted=f"{name} answers",
                     evidence={"snap-ins": len(result.output)})

    def verify(ctx, found: Check) -> Proof:
        return Proof(ok=True, text=f"{name} answered")

    return step(f"reach-{name}", f"Reach front end {name}", check=check, verify=verify)
