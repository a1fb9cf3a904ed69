"""One persisted state store for every lab server.

A server's state is one JSON document on disk. It holds private keys and secrets, so the file
is ``0600``; every write is atomic — a temporary file in the same directory, ``fsync``,
``os.replace`` — so a crash or a dropped connection never leaves half a change. The document
keeps the server's *initial* state beside its *current* one (two keys of the document), so
:meth:`StateStore.reset` brings back exactly the server the estate created (same ids, same
certificates).

The lock rule
-------------
Every read and every change holds the store's lock: a re-entrant thread lock for this process
and an exclusive ``flock`` on ``<stem>.lock`` beside the file, for another process using the
same lab directory (an estate in the background and a test or notebook inspecting it). Under
the lock the store re-reads the file when it changed since this store last read or wrote it,
and a change is on disk before the lock is released. Nested use in one thread takes the file
lock once.
"""

from __future__ import annotations

import copy
import fcntl
import json
import logging
import os
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

__all__ = ["StateStore", "write_private"]

log = logging.getLogger(__name__)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600, atomically (readers never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class StateStore:
    """A JSON document at ``path`` whose ``current`` part is the live state and ``initial`` part
    what :meth:`reset` restores. Create with :meth:`load`."""

    def __init__(self, path: Path, *, current: str = "current", initial: str = "initial") -> None:
        self.path = Path(path)
        self._current_key = current
        self._initial_key = initial
        self._lock_path = self.path.with_name(f"{self.path.stem}.lock")
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._doc: dict[str, Any] = {}
        self._mtime: int | None = None

    def __repr__(self) -> str:
        return f"<StateStore {self.path}>"

    @classmethod
    def load(cls, path: Path, create: Callable[[], dict[str, Any]] | None, *,
             upgrade: Callable[[dict[str, Any]], bool] | None = None, current: str = "current",
             initial: str = "initial") -> "StateStore":
        """Load ``path``; when it does not exist, write the document ``create()`` makes first.

        ``create`` is None when the caller cannot create one: a missing file is then
        :class:`FileNotFoundError`. ``upgrade`` checks an existing document (raising on one it
        cannot use) and brings it up to date in place, returning whether it changed anything.
        """
        store = cls(path, current=current, initial=initial)
        with store._locked():
            if store._mtime is None:
                if create is None:
                    raise FileNotFoundError(f"{path}: no lab state and nothing to create it from")
                store._doc = create()
                store.save()
            elif upgrade is not None and upgrade(store._doc):
                store.save()
        return store

    @classmethod
    def load_schema(cls, path: Path, initial: Callable[[], dict[str, Any]], *, schema: int, what: str) -> "StateStore":
        """Load ``path`` holding one server's state at ``schema``: created from ``initial()`` (kept
        as both the initial and the current state) when missing, refused at any other schema."""
        def create() -> dict[str, Any]:
            first = initial()
            log.info("created %s state at %s", what, path)
            return {"schema": schema, "initial": first, "current": copy.deepcopy(first)}

        def upgrade(doc: dict[str, Any]) -> bool:
            if doc.get("schema") != schema:
                raise ValueError(f"{path}: unsupported lab state schema {doc.get('schema')!r}; "
                                 "delete the lab directory or run `runbook lab reset`")
            return False

        return cls.load(Path(path), create, upgrade=upgrade)

    # ------------------------------------------------------------------ the lock
    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self._lock_path, "a+") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                self._depth = 1
                try:
                    self._reload_if_changed()
                    yield
                finally:
                    self._depth = 0
                    fcntl.flock(fh, fcntl.LOCK_UN)

    def _reload_if_changed(self) -> None:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            self._doc, self._mtime = {}, None
            return
        if mtime != self._mtime:  # another process wrote it (or this store has not read it yet)
            self._doc = json.loads(self.path.read_text(encoding="utf-8"))
            self._mtime = mtime

    # ------------------------------------------------------------------ access
    @contextmanager
    def document(self) -> Iterator[dict[str, Any] | None]:
        """The whole document under the lock (None before it exists); call :meth:`save` after changing it."""
        with self._locked():
            yield self._doc if self._mtime is not None else None

    @contextmanager
    def view(self) -> Iterator[dict[str, Any]]:
        """Read the current state (do not modify it)."""
        with self._locked():
            yield self._doc[self._current_key]

    @contextmanager
    def change(self) -> Iterator[dict[str, Any]]:
        """Modify the current state; written on success, rolled back on an exception."""
        with self._locked():
            before = copy.deepcopy(self._doc[self._current_key])
            try:
                yield self._doc[self._current_key]
            except BaseException:
                self._doc[self._current_key] = before
                raise
            if self._doc[self._current_key] != before:
                self.save()

    def reset(self) -> None:
        """Restore the initial state."""
        with self._locked():
            self._doc[self._current_key] = copy.deepcopy(self._doc[self._initial_key])
            self.save()

    def save(self) -> None:
        """Write the document as it is in memory (inside the lock when called from a change)."""
        with self._locked():
            write_private(self.path, json.dumps(self._doc, indent=1, sort_keys=True).encode("utf-8"))
            self._mtime = self.path.stat().st_mtime_ns
