"""Scrubbing a record before it is archived: a second line of defence behind the kernel's redaction.

The kernel redacts every secret it resolves from what it shows; a record is scrubbed once more
in the ``runbook`` process, with the values its targets' secret references resolve to, because
cell *sources* and anything the kernel did not see are not covered by the kernel's redaction.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from .targets import Targets, run_targets

__all__ = ["record_secrets", "scrub_text"]

log = logging.getLogger(__name__)


def scrub_text(text: str, secrets: list[str]) -> str:
    """``text`` with every secret the redactor knows, and every value of ``secrets``, as ``********``."""
    from .secrets import redact

    text = redact(text)
    for value in sorted(set(secrets), key=len, reverse=True):
        if len(value) < 4:
            continue
        for form in {value, json.dumps(value)[1:-1]}:
            text = text.replace(form, "********")
    return text


def record_secrets(notebook: dict[str, Any], scenario: str) -> list[str]:
    """The secret values of a recorded run's targets, resolved here without prompting (what can be).

    The targets are read from the parameters papermill wrote into the notebook; parameters that
    do not name valid targets mean every secret of the inventory.
    """
    from .errors import RunbookError
    from .inventory import load_inventory, load_parameters
    from .scenarios import find_scenario

    parameters = (notebook.get("metadata", {}).get("papermill") or {}).get("parameters") or {}
    inventory = parameters.get("inventory")
    if not inventory or not Path(inventory).is_file():
        return []
    try:
        inv = load_inventory(Path(inventory))
    except RunbookError:
        log.warning("could not read the run's inventory %s to scrub its secrets", inventory)
        return []
    targets = Targets.whole(inv)
    info = find_scenario(scenario)
    if info is not None:
        model = info.load().Parameters
        try:
            declared = load_parameters({k: v for k, v in parameters.items() if k in model.model_fields}, model,
                                       source="the recorded run's parameters")
            targets = run_targets(declared, inv)
        except RunbookError:
            # Parameters the run itself refused: scrub every secret rather than guess its targets.
            log.warning("the recorded run's parameters do not name valid targets; scrubbing every inventory secret")
    return _resolvable([secret.reference for secret in targets.secrets()])


def _resolvable(refs: list[str]) -> list[str]:
    from .errors import RunbookError
    from .secrets import resolve_secret

    values = []
    for ref in refs:
        if str(ref).strip() != "prompt":
            try:
                values.append(resolve_secret(ref, purpose="scrubbing the archived record", interactive=False))
            except RunbookError:
                continue
    return values
