"""The archive: written once, hash-chained, and verifiable."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from runbooklib.errors import ArchiveError
from runbooklib.record import Archive, read_notebook_scraps, scrap_output

START = dt.datetime(2026, 11, 25, 10, 0, 0, tzinfo=dt.timezone.utc)


def notebook(status: str) -> bytes:
    nb = {"cells": [{"cell_type": "code", "source": "", "metadata": {}, "execution_count": 1,
                     "outputs": [scrap_output("run", {"status": status}), scrap_output("changes", 3)]}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(nb).encode()


@pytest.fixture
def archive(tmp_path):
    a = Archive(tmp_path / "records")
    a.add(notebook("succeeded"), scenario="demo", run_id="run1", status="succeeded", started=START)
    a.add(notebook("failed"), scenario="demo", run_id="run2", status="failed", started=START)
    a.add(notebook("planned"), scenario="other", run_id="run3", status="planned", started=START)
    return a


def test_layout_index_and_chain(archive):
    entries = archive.entries()
    assert [e.path for e in entries] == [
        "demo/20261125T100000Z-run1.ipynb",
        "demo/20261125T100000Z-run2.ipynb",
        "other/20261125T100000Z-run3.ipynb",
    ]
    assert entries[0].prev == "0" * 64
    assert entries[1].prev != entries[2].prev
    assert archive.verify() == []
    assert read_notebook_scraps(archive.read_record(entries[1])) == {"run": {"status": "failed"}, "changes": 3}


def test_a_record_is_never_overwritten(archive):
    with pytest.raises(ArchiveError, match="already exists"):
        archive.add(b"{}", scenario="demo", run_id="run1", status="succeeded", started=START)
    assert archive.verify() == []


def test_edited_record_is_named(archive):
    path = archive.root / "demo/20261125T100000Z-run2.ipynb"
    path.write_bytes(path.read_bytes().replace(b"failed", b"succeeded"))
    problems = archive.verify()
    assert len(problems) == 1 and problems[0].startswith("demo/20261125T100000Z-run2.ipynb")
    assert "modified" in problems[0]


def test_deleted_record_is_named(archive):
    (archive.root / "other/20261125T100000Z-run3.ipynb").unlink()
    assert any("run3" in p and "missing" in p for p in archive.verify())


def test_reordered_index_breaks_the_chain(archive):
    lines = archive.index_path.read_text().splitlines()
    lines[0], lines[1] = lines[1], lines[0]
    archive.index_path.write_text("\n".join(lines) + "\n")
    problems = archive.verify()
    assert any("chain broken" in p for p in problems)


def test_removed_index_line_leaves_an_unindexed_record(archive):
    lines = archive.index_path.read_text().splitlines()
    archive.index_path.write_text("\n".join(lines[:1] + lines[2:]) + "\n")
    problems = archive.verify()
    assert any("run2" in p and "not in the index" in p for p in problems)
    assert any("chain broken" in p for p in problems)


def test_unsafe_names_are_refused(tmp_path):
    with pytest.raises(ArchiveError):
        Archive(tmp_path).add(b"{}", scenario="../escape", run_id="r", status="failed", started=START)


def test_losing_the_newest_run_with_its_index_line_is_detected(archive):
    lines = archive.index_path.read_text().splitlines()
    newest = json.loads(lines[-1])["path"]
    (archive.root / newest).unlink()
    archive.index_path.write_text("\n".join(lines[:-1]) + "\n")
    problems = archive.verify()
    assert any("newest run(s) were removed" in p for p in problems), problems


def test_a_missing_head_is_reported(archive):
    (archive.root / "index.head").unlink()
    assert any("index.head is missing" in p for p in archive.verify())
