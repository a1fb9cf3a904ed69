"""The parameter files we ship are valid: the lab ones run the demo, the examples are a real estate's."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from runbooklib.inventory import load_inventory, load_parameters
from runbooklib.scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("kind", ["lab", "examples"])
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_shipped_parameters_validate_against_the_scenario_model(kind, name):
    path = ROOT / "parameters" / kind / f"{name}.yaml"
    assert path.exists(), f"{path} is missing"
    load_parameters(path, SCENARIOS[name].load().Parameters, source=str(path))


def test_example_inventory_is_valid_once_its_files_exist(tmp_path):
    inventory = tmp_path / "inventory.yaml"
    shutil.copy(ROOT / "parameters" / "examples" / "inventory.yaml", inventory)
    for referenced in ("contoso-root-ca.pem", "runbook-app.pfx"):
        (tmp_path / referenced).write_text("placeholder\n")
    inv = load_inventory(inventory)
    for name, server in inv.servers.items():
        assert server.winrm.startswith("https://") and server.password and ":" in server.password, name
    example_params = load_parameters(ROOT / "parameters" / "examples" / "sharepoint-hybrid.yaml",
                                     SCENARIOS["sharepoint-hybrid"].load().Parameters, source="example")
    SCENARIOS["sharepoint-hybrid"].validate(example_params.model_dump(), inv, source="example")
