"""Fixtures for the lab tests: a whole estate on free loopback ports, in this process.

Import them into a test module (``from estate_fixtures import estate, clean_estate, lab_inventory,
connections``). They are not in ``tests/lab/conftest.py`` because a second non-package
``conftest`` module replaces ``tests/conftest.py`` in ``sys.modules`` and breaks every
``from conftest import …`` in ``tests/``; once those helpers live in a module of their own,
this file can become ``tests/lab/conftest.py`` unchanged.

``estate`` starts ``Estate(tmp_dir)`` once per test module (sp-a, sp-b and the contoso tenant,
with the inventory, CA bundle and secret files an administrator's ``runbook lab up`` writes)
and stops it after the module. Tests that change farm state or add faults should use
``clean_estate`` (or reset themselves) so the next test starts from the initial estate.
"""

from __future__ import annotations

from typing import Iterator

import pytest

from runbooklib.inventory import Inventory, load_inventory
from estate_template import new_estate
from runbooklib.lab.estate import Estate
from runbooklib.remote import RemoteConnections
from sharepoint_sessions import SharePointConnections


@pytest.fixture(scope="module")
def estate(tmp_path_factory) -> Iterator[Estate]:
    """A running lab estate of its own for this test module."""
    lab = new_estate(tmp_path_factory.mktemp("estate")).start()
    try:
        yield lab
    finally:
        lab.stop()


@pytest.fixture
def clean_estate(estate: Estate) -> Iterator[Estate]:
    """The module's estate; afterwards every pending fault is cleared and the initial state restored."""
    yield estate
    if not estate.hosts:  # a test stopped it and failed before starting it again
        estate.start()
    estate.reset()


@pytest.fixture
def lab_inventory(estate: Estate) -> Inventory:
    """The inventory the estate wrote, as a runbook loads it."""
    return load_inventory(estate.inventory_path)


@pytest.fixture
def connections(lab_inventory: Inventory) -> Iterator[RemoteConnections]:
    """PowerShell remoting to the estate's servers by inventory name (passwords from the secret files),
    with the SharePoint cmdlets loaded in each farm's session, as the runbooks load them."""
    with SharePointConnections(lab_inventory) as conns:
        yield conns
