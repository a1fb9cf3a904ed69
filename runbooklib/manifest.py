"""The ``run`` scrap: what a record says about the run that made it, built in this one place.

A run records it itself when it finishes or fails (:class:`runbooklib.runner.Run`); when the
kernel could not, ``runbook run`` records it from outside (:mod:`runbooklib.execute`). Both are
read by the archive, ``runbook history`` and the plan comparison, so both have the same keys.
"""

from __future__ import annotations

import datetime as dt
import getpass
import platform
import socket
from collections.abc import Iterable, Mapping
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from .record import sha256_file, utc_iso

__all__ = ["run_manifest", "user_name", "versions"]

# Distributions whose versions a record keeps; runbooklib is installed as s2s-runbooks.
_VERSIONED = {"runbooklib": "s2s-runbooks", "papermill": "papermill", "pypsrp": "pypsrp",
              "msgraph-sdk": "msgraph-sdk"}


def versions() -> dict[str, str]:
    """Python's version and those of the libraries a run depends on."""
    found = {"python": platform.python_version()}
    for label, dist in _VERSIONED.items():
        try:
            found[label] = importlib_metadata.version(dist)
        except importlib_metadata.PackageNotFoundError:
            found[label] = "not installed"
    return found


def user_name() -> str:
    """The account running this process, or ``unknown`` where there is none (some containers)."""
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def run_manifest(*, scenario: str, run_id: str, status: str | None, started: dt.datetime,
                 finished: dt.datetime | None, ticket: str, mode: str, notebook_sha256: str | None,
                 parameters_sha256: str | None, inventory: Path | None, parameters: Any,
                 warnings: Iterable[str] = (), shells_opened: Mapping[str, int] | None = None,
                 plan_run_id: str | None = None, minted: Iterable[str] = ()) -> dict[str, Any]:
    """The ``run`` scrap of one run; parameters and warnings are redacted.

    ``minted``: values the run made itself (:meth:`runbooklib.runner.Run.minted`), which the
    comparison with an approved plan does not count as departures.

    ``parameters`` is the scenario's validated model or, when there is none, the raw mapping.
    """
    from .secrets import redact, redact_data

    if hasattr(parameters, "model_dump"):
        parameters = parameters.model_dump(mode="json")
    return {
        "scenario": scenario,
        "run_id": run_id,
        "status": status,
        "started": utc_iso(started),
        "finished": utc_iso(finished) if finished else None,
        "user": user_name(),
        "host": socket.gethostname(),
        "ticket": ticket or None,
        "mode": mode,
        "sha256": {
            "notebook": notebook_sha256,
            "parameters": parameters_sha256,
            "inventory": sha256_file(inventory) if inventory else None,
        },
        "versions": versions(),
        "parameters": redact_data(dict(parameters or {})),
        "warnings": [redact(w) for w in warnings],
        "shells_opened": dict(shells_opened or {}),
        "plan_run_id": plan_run_id,
        "minted": list(minted),
    }
