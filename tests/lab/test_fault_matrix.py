"""The fault matrix: every scenario of the registry, with its remote calls on the lab failed in turn.

For each scenario, an undisturbed apply run is made once (per test module) to learn which lab
requests each step makes, on which server; then, for each step, a run is made in which one of
those requests is dropped (the connection closed without an answer), and a re-run after it
must converge to the undisturbed run's end state. The steps run in-process against an
in-process lab: the notebook path is covered by the end-to-end tests.

The sample: on each server a step talks to, its *first* request (the call never arrives: the
step fails before it changes anything) and its *last* one (usually the answer to a write or to
the verify read: the change may be made while the client never hears of it — the case a re-run
must recognise as already done). Dropping every request in between tests the same two
outcomes again at ~50 times the cost; these two per step and server are what the suite's
budget affords. New scenarios join the matrix through the registry, with no new test code.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from estate_fixtures import estate  # noqa: F401 - a fixture
from runbooklib.errors import StepFailed
from runbooklib.runner import start
from runbooklib.scenarios import SCENARIOS

pytestmark = pytest.mark.slow

CASES = [(name, step.id) for name, info in SCENARIOS.items() for step in info.load().STEPS]
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# Security identifiers a product mints for an account it creates (an application's mail user).
_SID = re.compile(r"S-1-5-21(?:-\d+){4}")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?")
# What a run mints besides ids: certificates and keys (PEM, base64 DER) and their thumbprints — a
# scenario that makes a self-signed certificate makes a new one on every undisturbed run too.
_MATERIAL = re.compile(r"-----BEGIN [A-Z ]+-----.*?-----END [A-Z ]+-----|[A-Za-z0-9+/]{64,}={0,2}|(?<![0-9A-Fa-f])[0-9A-Fa-f]{40}(?![0-9A-Fa-f])")


@dataclass
class Baseline:
    """An undisturbed apply of one scenario: each step's requests per server, and the end state."""

    windows: dict[str, dict[str, tuple[int, int]]]   # step id → server → [first, end) request numbers
    end_state: dict[str, Any]


_BASELINES: dict[str, Baseline] = {}


def _state(lab, initial_ids: set[str]) -> dict[str, Any]:
    """Every product's persisted state, with the ids a run mints and every timestamp made neutral:
    ids that were there before the run keep their identity, so a lost one shows."""
    found = {}
    for path in sorted(lab.state_dir.rglob("*.json")):
        text = _TIME.sub("<time>", path.read_text(encoding="utf-8"))
        for minted in (_UUID, _SID):
            text = minted.sub(lambda m: m.group(0).lower() if m.group(0).lower() in initial_ids else "<new id>", text)
        text = _MATERIAL.sub(lambda m: m.group(0) if m.group(0).lower() in initial_ids else "<new material>", text)
        found[str(path.relative_to(lab.state_dir))] = json.loads(text)
    return found


def _initial_ids(lab) -> set[str]:
    texts = [path.read_text(encoding="utf-8") for path in lab.state_dir.rglob("*.json")]
    return {m.group(0).lower() for text in texts for pattern in (_UUID, _SID, _MATERIAL) for m in pattern.finditer(text)}


def _apply(lab, scenario: str, *, per_step: dict | None = None):
    """An apply run of ``scenario`` from Python, as its notebook makes it; StepFailed propagates."""
    info = SCENARIOS[scenario]
    run = start(scenario, mode="apply", inventory=lab.inventory_path,
                params=yaml.safe_load(info.lab_parameters.read_text()))
    origin = {name: lab.server(name).requests for name in lab.hosts}
    try:
        for step in info.load().STEPS:
            before = {name: lab.server(name).requests - origin[name] for name in lab.hosts}
            try:
                run.step(step)
            finally:
                if per_step is not None:
                    per_step[step.id] = {name: (before[name], lab.server(name).requests - origin[name])
                                         for name in lab.hosts
                                         if lab.server(name).requests - origin[name] > before[name]}
        run.finish()
    finally:
        if run.status is None:
            run.fail(RuntimeError("the test stopped the run"))
    return run


def _baseline(lab, scenario: str) -> Baseline:
    if scenario not in _BASELINES:
        lab.reset()
        ids = _initial_ids(lab)
        windows: dict[str, dict[str, tuple[int, int]]] = {}
        run = _apply(lab, scenario, per_step=windows)
        assert run.status == "succeeded", run.summary
        _BASELINES[scenario] = Baseline(windows, _state(lab, ids))
    return _BASELINES[scenario]


@pytest.mark.parametrize(("scenario", "step_id"), CASES, ids=[f"{s}-{t}" for s, t in CASES])
def test_a_dropped_call_fails_its_step_and_a_rerun_converges(estate, scenario, step_id):  # noqa: F811
    lab = estate
    baseline = _baseline(lab, scenario)
    windows = baseline.windows.get(step_id, {})
    if not windows:
        pytest.skip(f"step {step_id} makes no remote call on the lab")
    for server, (first, end) in windows.items():
        for number in sorted({first, end - 1}):
            lab.reset()
            ids = _initial_ids(lab)
            lab.server(server).faults.add("drop", after=number)
            where = f"request {number + 1} on {server}"
            seen: dict[str, dict[str, tuple[int, int]]] = {}
            try:
                run = _apply(lab, scenario, per_step=seen)
            except StepFailed as failed:
                # The sample aims by request number: it hits the step it means only if every step
                # before makes the same requests as in the undisturbed run.
                order = list(baseline.windows)
                earlier = order[:order.index(step_id)]
                assert {s: seen.get(s) for s in earlier} == {s: baseline.windows[s] for s in earlier}, (
                    f"{where}: the steps before {step_id} made other requests than undisturbed: {seen}")
                assert failed.step == step_id, f"{where}: {failed}"
                assert failed.hint, f"{where}: the failure says nothing about what to do"
                assert step_id in str(failed), f"{where}: the failure does not name the step"
            else:
                # The client retried a request that changes nothing (opening a session, a read).
                assert run.status == "succeeded", f"{where}: {run.summary}"
            assert lab.server(server).faults.pending() == [], f"{where} was never made"

            rerun = _apply(lab, scenario)
            assert rerun.status == "succeeded", f"after {where}: {rerun.summary}"
            assert _state(lab, ids) == baseline.end_state, f"after {where} and a re-run the lab differs"
    lab.reset()


def test_throttled_and_unavailable_graph_answers_are_retried_within_the_sdk_budget(estate):  # noqa: F811
    lab = estate
    scenario = "sharepoint-hybrid"
    baseline = _baseline(lab, scenario)
    lab.reset()
    ids = _initial_ids(lab)
    graph = lab.server("contoso")
    graph.faults.add("error", path_prefix="/v1.0/", status=503)
    graph.faults.add("error", path_prefix="/v1.0/", status=429)
    run = _apply(lab, scenario)
    assert run.status == "succeeded" and run.engine.changes > 0, run.summary
    assert graph.faults.pending() == []
    assert _state(lab, ids) == baseline.end_state
    lab.reset()
