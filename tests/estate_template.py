"""Fresh lab estates for tests without generating a fresh estate's keys each time.

A new lab directory makes every server create its initial state: a CA, farm, ACS and Entra ID
signing certificates, app credentials — about twenty RSA keys and the documents around them,
a second or more of CPU per estate. The suite starts dozens of estates. :func:`new_estate`
creates that initial state once per test process, in a directory of its own, and seeds each
new estate's directory with a copy of it: exactly what the estate would find after
``runbook lab down`` and ``up``, which the lab promises behaves as the first start did.

Only the initial state is copied — never ``estate.json`` (ports, control token, pid) or the
inventory — so each estate still binds free ports of its own and writes its own inventory.
Tests of the first start itself (the lab layout, ``runbook lab up`` on an empty directory)
use :class:`~runbooklib.lab.estate.Estate` directly. The template lives in a temporary
directory of this process and is removed at exit, so a changed initial state never outlives
the run that made it.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

from runbooklib.lab.estate import Estate

__all__ = ["new_estate"]

# What the first start of an estate creates and every later start reuses.
_INITIAL = ("ca.pem", "ca-key.pem", "secrets", "state")
_template: Path | None = None


def _template_dir() -> Path:
    global _template
    if _template is None:
        root = Path(tempfile.mkdtemp(prefix="lab-template-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        Estate(root / "lab").start().stop()
        _template = root / "lab"
    return _template


def new_estate(directory: Path | str, **options: Any) -> Estate:
    """An estate (not yet started) in ``directory``, seeded with this process's initial lab state."""
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise ValueError(f"{directory} is not empty: seed only a new lab directory")
    template = _template_dir()
    directory.mkdir(parents=True, exist_ok=True)
    for name in _INITIAL:
        source = template / name
        if source.is_dir():
            shutil.copytree(source, directory / name, ignore=shutil.ignore_patterns("*.lock"))
        else:
            shutil.copy2(source, directory / name)
    return Estate(directory, **options)
