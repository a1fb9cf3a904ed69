"""How many requests a lab host answers while an undisturbed apply runs up to a given step.

Tests use it to make a fault land on the request right after that step (``after=N``): the run
is made in-process, as the notebook makes it, and the lab is reset afterwards.
"""

from __future__ import annotations

from pathlib import Path

import yaml


def requests_through(lab, host: str, scenario: str, params_file: Path, step_id: str) -> int:
    """Requests ``host`` answers in an undisturbed apply of ``scenario`` up to the end of ``step_id``."""
    from runbooklib.runner import start
    from runbooklib.scenarios import SCENARIOS

    server = lab.server(host)
    origin = server.requests
    run = start(scenario, mode="apply", inventory=lab.inventory_path, params=yaml.safe_load(params_file.read_text()))
    try:
        for step in SCENARIOS[scenario].load().STEPS:
            run.step(step)
            if step.id == step_id:
                return server.requests - origin
        raise AssertionError(f"{scenario} has no step {step_id}")
    finally:
        if run.status is None:
            run.fail(RuntimeError("the test learned what it needed"))
        lab.reset()
