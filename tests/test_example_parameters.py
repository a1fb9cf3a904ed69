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


def _variants() -> list[tuple[Path, str]]:
    """Shipped ``<scenario>-<variant>.yaml`` files (e.g. skype-partner-cross-premises), each with its scenario."""
    found = []
    for path in sorted((ROOT / "parameters").glob("*/*.yaml")):
        owner = next((n for n in SCENARIOS if path.stem.startswith(f"{n}-")), None)
        if owner and path.stem not in SCENARIOS:
            found.append((path, owner))
    return found


def test_the_cross_premises_variant_is_shipped():
    assert (ROOT / "parameters" / "lab" / "skype-partner-cross-premises.yaml", "skype-partner") in _variants()


@pytest.mark.parametrize("path, name", _variants(), ids=lambda v: getattr(v, "name", v))
def test_shipped_variants_validate_against_their_scenario_model(path, name):
    load_parameters(path, SCENARIOS[name].load().Parameters, source=str(path))
