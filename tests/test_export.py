"""`runbook export` and `runbook history` filters, end to end: a plan and a failed apply of one ticket
against the lab, exported as an administrator would hand them to a change board."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import shutil
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterator

import pytest

from conftest import ROOT, runbook
from runbooklib.inventory import load_inventory
from estate_template import new_estate
from runbooklib.lab.estate import Estate
from runbooklib.secrets import resolve_secret
from scenario_requests import requests_through

pytestmark = pytest.mark.slow

LAB_PARAMS = ROOT / "parameters" / "lab" / "sharepoint-hybrid.yaml"
TICKET = "CHG-4711"


@dataclass
class Run:
    entry: dict
    scraps: dict


@dataclass
class Records:
    archive: Path
    plan: Run
    failed: Run
    secret: str
    pages: dict[tuple[str, str], str]  # (plan|failed, html|md) → page

    def export(self, *args: str):
        return runbook("export", "--archive", str(self.archive), *args)


def _run(lab: Estate, archive: Path, *extra: str):
    return runbook("run", "sharepoint-hybrid", "--inventory", str(lab.inventory_path), "--params", str(LAB_PARAMS),
                   "--ticket", TICKET, "--archive", str(archive), *extra)


def _newest(archive: Path) -> Run:
    from runbooklib.record import read_notebook_scraps

    entry = json.loads((archive / "index.jsonl").read_text().splitlines()[-1])
    return Run(entry, read_notebook_scraps(json.loads((archive / entry["path"]).read_text())))


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> Iterator[Records]:
    base = tmp_path_factory.mktemp("export")
    lab = new_estate(base / "lab").start()
    try:
        archive = base / "records"
        plan = _run(lab, archive, "--plan")
        assert plan.returncode == 0, plan.stdout + plan.stderr
        planned = _newest(archive)
        # sp-a answers the step after the SPN with an error that quotes its administrator's password.
        inventory = load_inventory(lab.inventory_path)
        secret = resolve_secret(inventory.server("sp-a").password, purpose="the test's planted secret",
                                interactive=False, base_dir=inventory.base_dir)
        after = requests_through(lab, "sp-a", "sharepoint-hybrid", LAB_PARAMS, "spn")
        lab.server("sp-a").faults.add("error", after=after,
                                      message=f"Logon failure for LAB\\spadmin with password {secret}.")
        apply = _run(lab, archive)
        assert apply.returncode == 1, apply.stdout + apply.stderr
        failed = _newest(archive)
        pages = {}
        for name, run in (("plan", planned), ("failed", failed)):
            for fmt in ("html", "md"):
                out = base / f"{name}.{fmt}"
                result = runbook("export", run.entry["run_id"], "--format", fmt, "--out", str(out),
                                 "--archive", str(archive))
                assert result.returncode == 0, result.stdout + result.stderr
                assert str(out) in result.stdout
                pages[name, fmt] = out.read_text(encoding="utf-8")
        yield Records(archive, planned, failed, secret, pages)
    finally:
        lab.stop()


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def readable(page: str, fmt: str) -> str:
    """What a reader sees: the HTML's text, or the Markdown without its escapes."""
    if fmt == "html":
        parser = _Text()
        parser.feed(page)
        return "".join(parser.parts)
    return html.unescape(re.sub(r"\\(.)", r"\1", page.replace("<br>", "\n").replace("**", "")))


PAGES = [(name, fmt) for name in ("plan", "failed") for fmt in ("html", "md")]


@pytest.mark.parametrize("name,fmt", PAGES)
def test_the_page_shows_every_step_its_status_and_its_changes(records, name, fmt):
    run = getattr(records, name)
    text = readable(records.pages[name, fmt], fmt)
    assert run.scraps["steps"], "the run recorded its steps"
    for step in run.scraps["steps"]:
        assert re.search(rf"{re.escape(step['status'])} · {re.escape(step['id'])}", text), step["id"]
        for change in step["changes"]:
            assert change in text
    assert f"Run {run.entry['run_id']}" in text
    assert TICKET in text and run.scraps["run"]["user"] in text
    assert run.scraps["run"]["sha256"]["parameters"] in text and run.scraps["run"]["sha256"]["inventory"] in text
    assert f"changes made: {run.scraps['changes']}" in text


@pytest.mark.parametrize("name,fmt", PAGES)
def test_the_page_shows_the_warnings_and_where_the_record_sits_in_the_chain(records, name, fmt):
    run = getattr(records, name)
    text = readable(records.pages[name, fmt], fmt)
    assert run.scraps["run"]["warnings"]
    for warning in run.scraps["run"]["warnings"]:
        assert f"⚠ Warning: {warning}" in text
    assert run.entry["sha256"] in text
    position = 1 if name == "plan" else 2
    assert f"{position} of 2" in text
    if name == "failed":
        assert records.plan.entry["prev"] != run.entry["prev"] and run.entry["prev"] in text
    assert "runbook verify-archive" in text


def test_the_failed_step_shows_its_error_and_what_to_do(records):
    failed = [s for s in records.failed.scraps["steps"] if s["status"] == "failed"]
    assert [s["id"] for s in failed] == ["spo-app-principal"]
    changed = [s["id"] for s in records.failed.scraps["steps"] if s["status"] == "changed"]
    assert "sts-certificate" in changed and "spn" in changed
    for fmt in ("html", "md"):
        text = readable(records.pages["failed", fmt], fmt)
        assert "Logon failure for LAB" in text and f"What to do: {failed[0]['hint']}" in text
        assert "✖ failed" in text


@pytest.mark.parametrize("fmt", ["html", "md"])
def test_the_planted_secret_appears_in_no_page(records, fmt):
    for name in ("plan", "failed"):
        assert records.secret not in records.pages[name, fmt]
    # The run did meet the secret: the record keeps it redacted, and so does the page.
    assert "with password ********" in readable(records.pages["failed", fmt], fmt)


def test_the_html_page_is_self_contained_with_its_code_folded(records):
    page = records.pages["plan", "html"]
    assert "<script" not in page
    assert not re.search(r"""<link[^>]+href=|src=["']https?:""", page), "the page loads nothing from elsewhere"
    folded = re.findall(r"<details[^>]*>", page)
    assert folded and all("open" not in tag for tag in folded)
    assert "run.step(" in readable(page, "html")  # the calls are there, folded
    assert "run.step(" in records.pages["plan", "md"]


def test_the_newest_run_of_a_ticket_is_exported_without_a_run_id(records):
    result = records.export("--ticket", TICKET, "--format", "md", "--out", "-")
    assert result.returncode == 0, result.stderr
    assert f"Run {records.failed.entry['run_id']}" in result.stdout


def test_a_record_file_is_exported_like_its_run_id(records):
    record = records.archive / records.plan.entry["path"]
    result = records.export(str(record), "--format", "md", "--out", "-")
    assert result.returncode == 0, result.stderr
    assert result.stdout == records.pages["plan", "md"]


@pytest.mark.parametrize("args,words", [
    (["0123456789ab"], "no run '0123456789ab' is archived"),
    (["--ticket", "CHG-0000"], "no run of ticket 'CHG-0000'"),
    ([], "name the record to export"),
])
def test_an_unknown_run_or_ticket_is_invalid_input(records, args, words):
    result = records.export(*args)
    assert result.returncode == 2
    assert words in result.stderr


def test_a_record_changed_after_archiving_is_not_exported(records, tmp_path):
    archive = tmp_path / "records"
    shutil.copytree(records.archive, archive)
    record = archive / records.plan.entry["path"]
    record.write_text(record.read_text().replace("planned", "succeeded", 1))
    result = runbook("export", records.plan.entry["run_id"], "--archive", str(archive), "--out", str(tmp_path / "p.html"))
    assert result.returncode == 1
    assert "modified after it was archived" in result.stderr and "verify-archive" in result.stderr
    assert not (tmp_path / "p.html").exists()


def _history(records: Records, *args: str) -> list[str]:
    result = runbook("history", "--archive", str(records.archive), "--json", *args)
    assert result.returncode == 0, result.stderr
    return [json.loads(line)["run_id"] for line in result.stdout.splitlines()]


def test_history_filters_by_ticket_scenario_and_start(records):
    both = [records.plan.entry["run_id"], records.failed.entry["run_id"]]
    started = dt.datetime.fromisoformat(records.failed.scraps["run"]["started"].replace("Z", "+00:00"))
    assert _history(records, "--ticket", TICKET) == both
    assert _history(records, "--ticket", "CHG-0000") == []
    assert _history(records, "--scenario", "sharepoint-hybrid", "--since", (started - dt.timedelta(days=1)).date().isoformat()) == both
    assert _history(records, "--scenario", "oos-trust") == []
    assert _history(records, "--since", started.strftime("%Y-%m-%dT%H:%M:%S")) == [records.failed.entry["run_id"]]
    assert _history(records, "--since", (started + dt.timedelta(days=1)).date().isoformat()) == []


def test_history_refuses_a_date_it_cannot_read(records):
    result = runbook("history", "--archive", str(records.archive), "--since", "last tuesday")
    assert result.returncode == 2
    assert "'last tuesday' is not a date" in result.stderr and "2026-03-01" in result.stderr
