"""Parameter values more than one scenario checks the same way: a web URL, a certificate thumbprint.

Each check returns the value as the scenario keeps it, or raises ValueError, which pydantic
reports against the parameter with the file and key it came from.
"""

from __future__ import annotations

import re

__all__ = ["clean_thumbprint", "web_url"]

_URL = re.compile(r"^https?://[^/\s]+(/.*)?$")
_THUMBPRINT = re.compile(r"^[0-9A-F]{40}$")


def web_url(value: str, *, expected: str) -> str:
    """An http(s) URL without its trailing slash; ``expected`` says what it should be, for the error."""
    if not _URL.match(value):
        raise ValueError(f"expected {expected}, like https://sharepoint.contoso.com")
    return value.rstrip("/")


def clean_thumbprint(value: str) -> str:
    """A certificate thumbprint as Windows shows it: 40 hexadecimal characters, upper case, written
    with or without spaces or colons."""
    cleaned = re.sub(r"[\s:]", "", value).upper()
    if not _THUMBPRINT.match(cleaned):
        raise ValueError("expected a certificate thumbprint: 40 hexadecimal characters")
    return cleaned
