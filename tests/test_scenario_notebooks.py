"""Each scenario notebook hands every parameter of its model to the run — none silently dropped."""

from __future__ import annotations

import ast
import json

import pytest

from runbooklib.scenarios import SCENARIOS

SCENARIO_NAMES = sorted(name for name, info in SCENARIOS.items() if info.notebook.exists())


def _cells(info):
    return [("".join(c["source"]), c) for c in json.loads(info.notebook.read_text())["cells"] if c["cell_type"] == "code"]


@pytest.mark.parametrize("name", SCENARIO_NAMES)
def test_every_model_field_is_a_parameter_and_reaches_start(name):
    info = SCENARIOS[name]
    fields = set(info.load().Parameters.model_fields)
    cells = _cells(info)
    parameters_cell = next(src for src, c in cells if "parameters" in c["metadata"].get("tags", []))
    assigned = {t.id for node in ast.parse(parameters_cell).body if isinstance(node, ast.Assign)
                for t in node.targets if isinstance(t, ast.Name)}
    assert fields <= assigned, f"missing from the parameters cell: {sorted(fields - assigned)}"
    assert {"inventory", "mode", "ticket", "run_context"} <= assigned

    start_cell = next(src for src, _ in cells if "start(" in src)
    call = next(n for n in ast.walk(ast.parse(start_cell)) if isinstance(n, ast.Call)
                and getattr(n.func, "id", None) == "start")
    params = next(k.value for k in call.keywords if k.arg == "params")
    passed = {k.arg for k in params.keywords}
    assert passed == fields, f"start(params=...) differs from the model: {sorted(passed ^ fields)}"


@pytest.mark.parametrize("name", SCENARIO_NAMES)
def test_every_step_of_the_scenario_has_its_own_cell(name):
    info = SCENARIOS[name]
    module = info.load()
    sources = "\n".join(src for src, _ in _cells(info))
    for attribute, value in vars(module).items():
        if value in module.STEPS:
            assert f"run.step(hybrid.{attribute})" in sources or f".{attribute})" in sources, attribute
    assert sources.rstrip().endswith("run.finish()")
