"""Real-browser tests: JupyterLab driven through Debian's Chromium with Playwright.

The pieces, each usable alone:

- :class:`JupyterLabServer` starts ``jupyter lab --no-browser`` on a free loopback port with a
  token of its own, a temporary root directory and the kernelspec of the running interpreter
  (the one ``runbook prepare`` writes into a notebook), and stops it again.
- :class:`ConsoleLog` collects what a page reports as broken: console errors and uncaught
  exceptions.
- :class:`NotebookPage` is a notebook open in JupyterLab, used as an administrator uses it: run
  the current cell (Shift+Enter) and wait until the kernel is idle again, read each cell's
  outputs, save.

The fixtures in ``tests/browser/conftest.py`` put them together: ``chromium`` (one browser per
test session, or a skip saying why there is none), ``jupyter_lab`` (one server per session),
``page`` (a fresh page; a screenshot of it is kept when the test fails), ``console`` (its
console errors) and ``artifacts`` (``build/test-artifacts/browser/<test name>/``, for screenshots).

Any local HTML page, an exported record for instance, is checked the same way from a test module
in ``tests/browser/``::

    def test_exported_record_page_loads_cleanly(page, console, artifacts, tmp_path):
        html = tmp_path / "record.html"            # written by the code under test
        page.goto(html.as_uri())
        page.screenshot(path=artifacts / "record.png", full_page=True)
        assert console.errors == []
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = Path(os.environ.get("RUNBOOK_TEST_CHROMIUM", "/usr/bin/chromium"))

# JupyterLab's own timings: a kernel starts in seconds, a lab step may talk to several servers.
START_TIMEOUT_S = 60.0
CELL_TIMEOUT_MS = 180_000
UI_TIMEOUT_MS = 30_000

_CELLS = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell"
_KERNEL_STATUS = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator"
_EXECUTED_PROMPT = re.compile(r"^\[\d+\]:$")


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not os.access(CHROMIUM, os.X_OK):
        return (f"no Chromium at {CHROMIUM}: install Debian's chromium (apt-get install chromium; .ci/run does) "
                "or point RUNBOOK_TEST_CHROMIUM at one")
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright is not installed: pip install -e '.[test]'"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class JupyterLabServer:
    """A JupyterLab server of its own, serving ``root``."""

    root: Path
    port: int
    token: str
    process: subprocess.Popen
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, root: Path, state: Path, *, env: dict[str, str] | None = None) -> "JupyterLabServer":
        """Start JupyterLab on ``root``; its settings, workspaces and runtime files live under ``state``.

        ``env`` is the environment of the server and so of its kernels (JUPYTER_PATH must reach the
        runbook kernelspec).
        """
        port, token = free_port(), secrets.token_hex(16)
        for sub in ("config", "data", "runtime", "settings", "workspaces"):
            (state / sub).mkdir(parents=True, exist_ok=True)
        # JupyterLab would ask, in a toast over the notebook, whether to fetch its news feed.
        notification = state / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
        notification.parent.mkdir(parents=True, exist_ok=True)
        notification.write_text(json.dumps({"fetchNews": "false"}))
        # Every cell stays in the page: with windowing, JupyterLab takes cells out of the page while
        # they are scrolled away, and a cell is then not where its index says.
        tracker = state / "settings" / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
        tracker.parent.mkdir(parents=True, exist_ok=True)
        tracker.write_text(json.dumps({"windowingMode": "none"}))
        full_env = {**os.environ, **(env or {}),
                    # Nothing from the developer's own Jupyter set-up reaches the test.
                    "JUPYTER_CONFIG_DIR": str(state / "config"), "JUPYTER_DATA_DIR": str(state / "data"),
                    "JUPYTER_RUNTIME_DIR": str(state / "runtime")}
        full_env.pop("RUNBOOK_ARCHIVE", None)
        log_path = state / "jupyterlab.log"
        args = [
            sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}", f"--LabApp.user_settings_dir={state / 'settings'}",
            f"--LabApp.workspaces_dir={state / 'workspaces'}",
            # window.jupyterapp: the notebook model, to tell an error output from text on stderr.
            "--LabApp.expose_app_in_browser=True",
            # No calls to the internet: no news feed, no update check.
            "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
        if os.geteuid() == 0:
            args.append("--allow-root")  # CI runs as root
        with log_path.open("wb") as log:
            process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       env=full_env, cwd=root)
        server = cls(root=root, port=port, token=token, process=process, log_path=log_path)
        server._wait_until_up()
        return server

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/api/status?token={self.token}", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)  # polling a condition, with a deadline
        self.stop()
        raise RuntimeError(f"JupyterLab did not answer within {START_TIMEOUT_S:.0f} s:\n{self.log_tail()}")

    def url(self, relative: str) -> str:
        """The JupyterLab address of a file under ``root`` (the token logs the browser in)."""
        return f"{self.base_url}/lab/tree/{relative}?token={self.token}"

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class ConsoleLog:
    """Console errors and uncaught exceptions of one page, in the order they happened."""

    errors: list[str] = field(default_factory=list)

    @classmethod
    def attach(cls, page: Any) -> "ConsoleLog":
        log = cls()
        page.on("console", lambda msg: log.errors.append(f"console: {msg.text}") if msg.type == "error" else None)
        page.on("pageerror", lambda exc: log.errors.append(f"uncaught: {exc}"))
        return log


@dataclass
class CellView:
    """What JupyterLab shows of one cell."""

    index: int
    kind: str                # "code" or "markdown"
    source: str
    prompt: str              # "[3]:" once run
    outputs: list[str]       # the text of each output
    tables: list[list[str]]  # the header cells of each rendered HTML table
    errors: list[dict[str, str]]  # each error output's ename and evalue
    stderr: list[str]        # text the cell wrote to stderr (warnings, logging)


class NotebookPage:
    """A notebook open in JupyterLab, in one browser page."""

    def __init__(self, page: Any, server: JupyterLabServer, relative: str) -> None:
        self.page = page
        self.server = server
        self.relative = relative

    def open(self) -> "NotebookPage":
        """Open the notebook and wait until its kernel has started and is idle."""
        # ``reset``: a fresh workspace, so notebooks an earlier test left open in this server's
        # workspace do not come back beside this one.
        self.page.goto(self.server.url(self.relative) + "&reset")
        self.page.wait_for_selector(_CELLS, timeout=START_TIMEOUT_S * 1000)
        # A notebook whose kernel JupyterLab cannot start asks for one in a dialog instead.
        self.page.wait_for_selector(f"{_KERNEL_STATUS}[data-status='idle'], .jp-Dialog", state="attached",
                                    timeout=START_TIMEOUT_S * 1000)
        dialog = self.page.locator(".jp-Dialog")
        if dialog.count():
            raise AssertionError(f"JupyterLab opened {self.relative} with a dialog: {dialog.first.inner_text()}")
        return self

    @property
    def cell_count(self) -> int:
        """The number of cells in the notebook (JupyterLab may not have attached them all to the page yet)."""
        import nbformat

        return len(nbformat.read(self.server.root / self.relative, as_version=4).cells)

    def cell(self, index: int) -> Any:
        return self.page.locator(_CELLS).nth(index)

    def select(self, index: int) -> None:
        """Click into a cell's prompt, as a person picks the cell to run next."""
        self.cell(index).locator(".jp-Cell-inputWrapper .jp-InputPrompt").click()
        self.page.wait_for_function(
            "([sel, i]) => document.querySelectorAll(sel)[i]?.classList.contains('jp-mod-active')",
            arg=[_CELLS, index], timeout=UI_TIMEOUT_MS)

    def active_index(self) -> int:
        return self.page.evaluate(
            "sel => [...document.querySelectorAll(sel)].findIndex(c => c.classList.contains('jp-mod-active'))",
            _CELLS)

    def run_current_cell(self, *, advance: bool = True) -> int:
        """Run the active cell (Shift+Enter, or Ctrl+Enter to stay) and wait until the kernel is idle.

        Returns the index of the cell that ran.
        """
        index = self.active_index()
        is_code = "jp-CodeCell" in (self.cell(index).get_attribute("class") or "")
        self.page.keyboard.press("Shift+Enter" if advance else "Control+Enter")
        if is_code:
            # The prompt reads "[*]:" while the cell runs and "[n]:" once it has finished.
            self.page.wait_for_function(
                "([sel, i, re]) => new RegExp(re).test("
                "document.querySelectorAll(sel)[i]?.querySelector('.jp-InputPrompt')?.textContent.trim() ?? '')",
                arg=[_CELLS, index, _EXECUTED_PROMPT.pattern], timeout=CELL_TIMEOUT_MS)
            self._wait_idle(timeout=CELL_TIMEOUT_MS)
        return index

    def run_cell_by_cell(self, *, stop_on_error: bool = True) -> list[CellView]:
        """Run every cell from the first, one at a time, as an administrator steps through a runbook.

        Stops after the first cell that shows an error when ``stop_on_error``; returns what ran.
        """
        self.select(0)
        ran: list[CellView] = []
        last = self.cell_count - 1
        while True:
            index = self.run_current_cell(advance=self.active_index() < last)
            ran.append(self.read_cell(index))
            if (stop_on_error and ran[-1].errors) or index >= last:
                return ran

    def read_cell(self, index: int) -> CellView:
        """What the cell shows (text, tables) and what its outputs are (errors by name, stderr)."""
        return CellView(**self.page.evaluate(
            """([sel, i]) => {
                const cell = document.querySelectorAll(sel)[i];
                const outs = [...cell.querySelectorAll('.jp-OutputArea-output')];
                const model = window.jupyterapp.shell.currentWidget.content.widgets[i].model;
                const raw = model.type === 'code' ? model.outputs.toJSON() : [];
                return {
                    index: i,
                    kind: model.type,
                    source: model.sharedModel.getSource(),
                    prompt: cell.querySelector('.jp-InputPrompt')?.textContent.trim() ?? '',
                    outputs: outs.map(o => o.textContent),
                    tables: outs.flatMap(o => [...o.querySelectorAll('table')].map(
                        t => [...t.querySelectorAll('th')].map(th => th.textContent.trim()))),
                    errors: raw.filter(o => o.output_type === 'error').map(o => ({ename: o.ename, evalue: o.evalue})),
                    stderr: raw.filter(o => o.output_type === 'stream' && o.name === 'stderr').map(o => o.text),
                };
            }""", [_CELLS, index]))

    def save(self) -> None:
        """Save with Ctrl+S and wait until JupyterLab no longer marks the notebook as changed."""
        self.page.keyboard.press("Control+s")
        self.page.wait_for_function(
            "() => !document.querySelector('.lm-TabBar-tab.jp-mod-current.jp-mod-dirty')", timeout=UI_TIMEOUT_MS)

    def _wait_idle(self, *, timeout: float) -> None:
        self.page.wait_for_selector(f"{_KERNEL_STATUS}[data-status='idle']", state="attached", timeout=timeout)
