"""``runbook export``: an archived record as one page a change board or an auditor reads.

The page is built from the archived record only — the scrubbed notebook, its scraps and its
index line — so it cannot show anything the archive does not already keep, secrets included.
It is assembled as a notebook of Markdown cells (header, run warnings, one section per step,
summary, the cells that ran, footer) and rendered by nbconvert: as one self-contained HTML page
(styles inline, no scripts, code cells folded) or as Markdown for tickets that take text.

The footer names the record's sha256 and its place in the hash chain (its index line, the
previous line's hash and its own), which is what ``runbook verify-archive`` checks.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .errors import ArchiveError, InputError
from .record import GENESIS, Archive, IndexEntry, read_notebook_scraps, read_step_scraps, sha256_bytes, sha256_file
from .steps import status_mark

__all__ = ["ChainPlace", "ExportFormat", "find_record", "render_record"]

ExportFormat = Literal["html", "md"]
FORMATS: tuple[str, ...] = ("html", "md")
_TEMPLATES = Path(__file__).parent / "export_templates"
_HTML_TEMPLATE = "runbook-html"
# What Markdown would read as markup in a value; '<' '>' '&' are escaped as HTML entities.
_MARKUP = re.compile(r"([\\`*_\[\]|#~])")
# How a run ended, marked as its steps are (runbooklib.record.RUN_STATUSES).
_RUN_MARKS = {"succeeded": "✔", "planned": "…", "failed": "✖", "interrupted": "■"}


@dataclass(frozen=True)
class ChainPlace:
    """Where a record sits in the archive's hash chain."""

    entry: IndexEntry
    position: int        # 1-based line of index.jsonl
    count: int           # lines in the index
    line_sha256: str     # sha256 of this record's index line (the next line's ``prev``)


def find_record(archive: Archive, selector: str | None, *, ticket: str | None = None) -> ChainPlace:
    """The record a run id, a record file or (without either) the newest run of ``ticket`` names.

    Raises :class:`InputError` when nothing in the archive matches.
    """
    if bool(selector) == bool(ticket):
        raise InputError("give a run id (or record file), or --ticket, but not both" if selector
                         else "name the record to export", field="RUN_ID",
                         hint="See 'runbook history' for run ids; --ticket T exports the newest run of ticket T.")
    entries = archive.entries()
    if ticket:
        for position in range(len(entries), 0, -1):
            entry = entries[position - 1]
            if (_scraps(archive, entry).get("run") or {}).get("ticket") == ticket:
                return _place(entries, position)
        raise InputError(f"no run of ticket {ticket!r} is archived in {archive.root}", field="--ticket",
                         hint="Check the ticket with 'runbook history --ticket T', or pass --archive DIR.")
    assert selector is not None
    for position, entry in enumerate(entries, start=1):
        if entry.run_id == selector:
            return _place(entries, position)
    path = Path(selector)
    if path.is_file():
        resolved, digest = path.resolve(), sha256_file(path)
        for position, entry in enumerate(entries, start=1):
            if (archive.root / entry.path).resolve() == resolved or entry.sha256 == digest:
                return _place(entries, position)
        raise InputError(f"{selector} is not a record of the archive {archive.root}", field="RECORD",
                         hint="Export records from the archive they were filed in (--archive DIR).")
    raise InputError(f"no run {selector!r} is archived in {archive.root}", field="RUN_ID",
                     hint="See 'runbook history' for run ids, or pass --archive DIR.")


def render_record(archive: Archive, place: ChainPlace, fmt: ExportFormat) -> str:
    """The page of one record, as HTML or Markdown.

    Raises :class:`ArchiveError` if the record no longer matches the sha256 its index line holds:
    a page must never vouch for a record that was changed after it was archived.
    """
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}", field="--format", hint="Use html or md.")
    record_path = archive.root / place.entry.path
    data = record_path.read_bytes()
    if sha256_bytes(data) != place.entry.sha256:
        raise ArchiveError(f"{place.entry.path} was modified after it was archived (sha256 mismatch)",
                           hint="Run 'runbook verify-archive' and investigate before relying on this record.")
    import nbformat

    notebook = nbformat.reads(data.decode("utf-8"), as_version=4)
    page = _page_notebook(notebook, place, archive)
    if fmt == "html":
        from nbconvert import HTMLExporter

        exporter = HTMLExporter(extra_template_basedirs=[str(_TEMPLATES)], template_name=_HTML_TEMPLATE)
    else:
        from nbconvert import MarkdownExporter

        exporter = MarkdownExporter()
    body, _ = exporter.from_notebook_node(page)
    return body


# -- the page, as a notebook -------------------------------------------------------------------


def _page_notebook(record: Any, place: ChainPlace, archive: Archive) -> Any:
    import nbformat

    scraps = read_notebook_scraps(record)
    run = scraps.get("run") or {}
    steps = scraps.get("steps") or read_step_scraps(record)
    cells = [_header(run, place)]
    if run.get("warnings"):
        cells.append(_warnings(run["warnings"]))
    cells += [_step(step) for step in steps]
    cells.append(_summary(run, steps, scraps.get("changes"), place))
    code = [c for c in record.cells if c.cell_type == "code" and c.source.strip()]
    if code:
        cells.append("## The cells that ran\n\nThe runbook's code, as recorded; the sections above are what it did.")
    page = nbformat.v4.new_notebook()
    page.metadata = {"title": f"Run {place.entry.run_id} — {place.entry.scenario}",
                     "language_info": {"name": "python"}}
    page.cells = [nbformat.v4.new_markdown_cell(text) for text in cells]
    page.cells += [nbformat.v4.new_code_cell(c.source) for c in code]
    page.cells.append(nbformat.v4.new_markdown_cell(_footer(place, archive)))
    return page


def _header(run: dict[str, Any], place: ChainPlace) -> str:
    entry = place.entry
    status = str(run.get("status") or entry.status)
    hashes = run.get("sha256") or {}
    rows = [
        ("scenario", entry.scenario), ("run id", entry.run_id), ("mode", run.get("mode")),
        ("status", f"{_RUN_MARKS.get(status, '?')} {status}"), ("who", run.get("user")), ("where", run.get("host")),
        ("started", run.get("started")), ("finished", run.get("finished")), ("ticket", run.get("ticket")),
        ("compared with plan", run.get("plan_run_id")), ("notebook sha256", hashes.get("notebook")),
        ("parameters sha256", hashes.get("parameters")), ("inventory sha256", hashes.get("inventory")),
        ("runbooklib", (run.get("versions") or {}).get("runbooklib")),
    ]
    title = f"# Run {_md(entry.run_id)} — {_md(entry.scenario)} — {_md(str(run.get('mode') or '?'))} — " \
            f"{_md(status.upper())}"
    return title + "\n\n" + _table(("", ""), [(k, v) for k, v in rows if v])


def _warnings(warnings: list[str]) -> str:
    return "## Warnings\n\n" + "\n\n".join(_warning(w) for w in warnings)


def _warning(text: str) -> str:
    return f"> ⚠ **Warning:** {_md(text)}"


def _step(step: dict[str, Any]) -> str:
    status = str(step.get("status") or "?")
    lines = [f"## {status_mark(status)} {_md(status)} · {_md(str(step.get('id')))} — {_md(str(step.get('title') or ''))}"]
    action = _action(status, step.get("changes") or [])
    rows = [("found", step.get("found")), ("wanted", step.get("wanted")), ("action", action),
            ("result", f"{status_mark(status)} {status}"), ("proof", step.get("proof")), ("plan", step.get("plan"))]
    lines.append(_table(("", ""), [(k, v) for k, v in rows if v]))
    lines += [_warning(w) for w in step.get("warnings") or []]
    if step.get("error"):
        lines.append(f"**Error:** {_md(step['error'])}")
    if step.get("hint"):
        lines.append(f"**What to do:** {_md(step['hint'])}")
    return "\n\n".join(lines)


def _action(status: str, changes: list[str]) -> str:
    """What a step did or would do, in the words of its table in the notebook."""
    if status == "skipped":
        return "none"
    if not changes:
        return "none (stopped)" if status == "failed" else "none — already as wanted"
    return ("would: " if status == "planned" else "") + "; ".join(changes)


def _summary(run: dict[str, Any], steps: list[dict[str, Any]], changes: Any, place: ChainPlace) -> str:
    status = str(run.get("status") or place.entry.status)
    rows = []
    for step in steps:
        detail = "; ".join(step.get("changes") or []) if step.get("status") in ("changed", "planned") \
            else step.get("proof") or step.get("error") or ""
        rows.append((f"{status_mark(str(step.get('status')))} {step.get('status')}", step.get("id"), detail))
    text = f"## Summary\n\n**{_md(status.upper())}** — changes made: **{_md(str(changes if changes is not None else '-'))}**"
    if rows:
        text += "\n\n" + _table(("status", "step", "changes / proof"), rows)
    return text


def _footer(place: ChainPlace, archive: Archive) -> str:
    entry = place.entry
    previous = "none: the first record (the chain starts at 64 zeros)" if entry.prev == GENESIS else entry.prev
    rows = [("record", entry.path), ("record sha256", entry.sha256),
            ("index line", f"{place.position} of {place.count}"), ("recorded", entry.recorded),
            ("previous line's sha256", previous), ("this line's sha256", place.line_sha256)]
    check = (f"To check this page against the archive, run `runbook verify-archive --archive {archive.root}` "
             "(the chain must be intact) and compare the record's sha256 above with "
             f"`sha256sum {archive.root / entry.path}`.")
    return "---\n\n## Record\n\n" + _table(("", ""), rows) + "\n\n" + _md(check, code_spans=True)


# -- Markdown helpers -------------------------------------------------------------------------


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(":--" for _ in header) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_md(str(v)).replace("\n", "<br>") for v in row) + " |")
    return "\n".join(lines)


def _md(text: str, *, code_spans: bool = False) -> str:
    """``text`` shown as it is in Markdown and in the HTML it renders to (no markup, no tags)."""
    if code_spans:  # keep `…` as code, escape everything around it
        parts = str(text).split("`")
        return "`".join(p if i % 2 else _md(p) for i, p in enumerate(parts))
    return _MARKUP.sub(r"\\\1", html.escape(str(text), quote=False))


def _scraps(archive: Archive, entry: IndexEntry) -> dict[str, Any]:
    try:
        return read_notebook_scraps(archive.read_record(entry))
    except (OSError, ValueError):
        return {}


def _place(entries: list[IndexEntry], position: int) -> ChainPlace:
    entry = entries[position - 1]
    return ChainPlace(entry, position, len(entries), sha256_bytes(entry.line().encode()))
