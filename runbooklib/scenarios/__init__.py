"""The scenarios: one module per trust, each with its parameter model and ordered steps.

The registry below is what ``runbook scenarios``, ``runbook run`` and ``runbook demo`` read. A
scenario module is imported only when it is used, so the command line starts fast.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pydantic costs ~100 ms at import; `runbook scenarios` does not need it
    from pydantic import BaseModel

__all__ = ["ScenarioInfo", "SCENARIOS", "find_scenario", "project_root"]


def project_root() -> Path:
    """The checkout holding ``notebooks/`` and ``parameters/`` (runbooklib is installed editable)."""
    return Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ScenarioInfo:
    """A scenario of the registry: its name, what it builds, and the module holding its steps."""

    name: str
    title: str
    #: Holds `Parameters` (a pydantic model declaring its targets) and, when the scenario has
    #: checks of its own beyond its targets, `validate_against(params, inventory, source=...)`.
    module: str

    @property
    def notebook(self) -> Path:
        return project_root() / "notebooks" / f"{self.name}.ipynb"

    @property
    def lab_parameters(self) -> Path:
        return project_root() / "parameters" / "lab" / f"{self.name}.yaml"

    def load(self) -> Any:
        return importlib.import_module(self.module)

    def validate(self, params: dict[str, Any], inventory: Any, *, source: str) -> BaseModel:
        """Parameters as the scenario's typed model, checked against the inventory.

        Every declared target must be in the inventory with its role (see :mod:`runbooklib.targets`);
        then the scenario's own ``validate_against``, if it has one, runs.
        """
        from ..inventory import load_parameters
        from ..targets import run_targets

        module = self.load()
        model = load_parameters(params, module.Parameters, source=source)
        if inventory is not None:
            run_targets(model, inventory, source=source)
            check = getattr(module, "validate_against", None)
            if check is not None:
                check(model, inventory, source=source)
        return model


SCENARIOS: dict[str, ScenarioInfo] = {
    info.name: info
    for info in (
        ScenarioInfo(
            "sharepoint-hybrid",
            "SharePoint Server ↔ SharePoint in Microsoft 365 (hybrid, via Entra ID / ACS)",
            "runbooklib.scenarios.sharepoint_hybrid",
        ),
        ScenarioInfo(
            "oos-trust",
            "Office Online Server ↔ SharePoint Server (S2S trust for ODC refresh and the Power Pivot dashboard)",
            "runbooklib.scenarios.oos_trust",
        ),
        ScenarioInfo(
            "skype-partner",
            "Skype for Business Server ↔ Exchange and SharePoint (partner applications, on premises)",
            "runbooklib.scenarios.skype_partner",
        ),
        ScenarioInfo(
            "farm-to-farm",
            "SharePoint Server farms ↔ their on-premises partners (farm-to-farm, Exchange, Skype; one-way S2S trusts)",
            "runbooklib.scenarios.farm_to_farm",
        ),
    )
}


def find_scenario(name: str) -> ScenarioInfo | None:
    return SCENARIOS.get(name)


def available() -> list[ScenarioInfo]:
    """Scenarios whose module and notebook exist in this checkout."""
    found = []
    for info in SCENARIOS.values():
        if info.notebook.exists() and importlib.util.find_spec(info.module) is not None:
            found.append(info)
    return found
