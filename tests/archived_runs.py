"""What tests read back after a run: the archive's index and the last record's scraps, and a lab
endpoint's answer to a bearer token."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


def index_entries(archive: Path) -> list[dict[str, Any]]:
    """The archive's index lines, oldest first; none when nothing was archived."""
    index = archive / "index.jsonl"
    return [json.loads(line) for line in index.read_text().splitlines()] if index.exists() else []


def last_scraps(archive: Path) -> dict[str, Any]:
    """The scraps of the newest record in ``archive``; empty when nothing was archived."""
    import scrapbook

    entries = index_entries(archive)
    return scrapbook.read_notebook(str(archive / entries[-1]["path"])).scraps.data_dict if entries else {}


def steps_by_id(scraps: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in scraps["steps"]}


def bearer_answer(url: str, token: str, ca_bundle: Path) -> tuple[int, str]:
    """(status, X-Lab-S2S-Reason) a lab endpoint gives a request with ``token`` as its bearer."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    context = ssl.create_default_context(cafile=str(ca_bundle))
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return response.status, ""
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("X-Lab-S2S-Reason", "")
