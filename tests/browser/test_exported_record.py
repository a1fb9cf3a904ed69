"""An exported record opened as its reader opens it: in a real browser, from a file, offline."""

from __future__ import annotations

import json

import pytest

from conftest import FIXTURE_NOTEBOOK, runbook

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_an_exported_failed_record_opens_cleanly_with_its_code_folded(page, console, artifacts, tmp_path):
    archive = tmp_path / "records"
    run = runbook("run", str(FIXTURE_NOTEBOOK), "-p", f"workdir={tmp_path}", "-p", "fail_verify=true",
                  "--ticket", "CHG-7", "--archive", str(archive))
    assert run.returncode == 1, run.stdout + run.stderr
    entry = json.loads((archive / "index.jsonl").read_text())
    html = tmp_path / "record.html"
    exported = runbook("export", "--ticket", "CHG-7", "--out", str(html), "--archive", str(archive))
    assert exported.returncode == 0, exported.stderr

    page.goto(html.as_uri())
    page.screenshot(path=str(artifacts / "record.png"), full_page=True)
    assert console.errors == []
    body = page.locator("body")
    assert f"Run {entry['run_id']}" in body.inner_text()
    assert "✖ failed · marker-second" in body.inner_text()
    assert entry["sha256"] in body.inner_text()
    # The calls are folded: their first lines show, their bodies only when opened.
    code = page.locator("details.runbook-code").first
    assert code.is_visible() and not code.locator("pre").first.is_visible()
    code.locator("summary").click()
    assert code.locator("pre").first.is_visible()
