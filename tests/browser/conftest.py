"""Fixtures of the real-browser tests; what each gives is described in harness.py."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any, Iterator

import pytest

from .harness import CHROMIUM, ConsoleLog, JupyterLabServer, chromium_missing

ARTIFACTS = Path(__file__).resolve().parents[2] / "build" / "test-artifacts" / "browser"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any):
    # The page fixture reads this to keep a screenshot of a failed test.
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture(scope="session")
def chromium_present() -> None:
    """Skips the test when the machine has no Chromium, saying why."""
    reason = chromium_missing()
    if reason:
        pytest.skip(reason)


# Per test, not per session: while Playwright's sync API is started it keeps an event loop running
# in this thread, and every later asyncio.run() in the same worker (the Graph client's) would fail.
@pytest.fixture
def chromium(chromium_present: None) -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def jupyter_lab(chromium_present: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterLabServer]:
    """One JupyterLab server for the session, serving a temporary root directory."""
    import os

    from runbooklib.execute import kernel_name

    kernel_name()  # writes the runbook kernelspec and puts it on JUPYTER_PATH, as `runbook prepare` does
    base = tmp_path_factory.mktemp("jupyterlab")
    root = base / "root"
    root.mkdir()
    server = JupyterLabServer.start(root, base / "state", env={"JUPYTER_PATH": os.environ["JUPYTER_PATH"]})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """build/test-artifacts/browser/<test name>/, emptied for this run of the test."""
    directory = ARTIFACTS / re.sub(r"[^\w.-]+", "_", request.node.name)
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return directory


@pytest.fixture
def page(chromium: Any, artifacts: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser page; a failed test leaves ``failure.png`` in its artifact directory."""
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    new_page = context.new_page()
    try:
        yield new_page
    finally:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            new_page.screenshot(path=str(artifacts / "failure.png"), full_page=True)
        context.close()


@pytest.fixture
def console(page: Any) -> ConsoleLog:
    """The console errors and uncaught exceptions of ``page``, from its first navigation on."""
    return ConsoleLog.attach(page)
