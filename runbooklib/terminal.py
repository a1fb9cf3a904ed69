"""The operator's terminal does not steer a run.

An apply that stops halfway — between writing a principal's keys and proving them, or in the
middle of a realm change — leaves the estate in a state no step planned. So while a run
executes, the terminal it was started from may go away without stopping it:

* a closed stdout or stderr (a pipe whose reader exited, a lost SSH session) silences the
  output; writes are dropped, never raised (:func:`detached_from_terminal`);
* SIGHUP (the terminal hung up) is ignored;
* Ctrl-C (SIGINT) is a *request*: the run stops at the next step boundary and is recorded
  ``interrupted`` with what it did. In the kernel, :func:`deferred_interrupt` holds a Ctrl-C
  that arrives inside a step (a guided run's "interrupt kernel") until the step has ended.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO

__all__ = ["Interrupt", "deferred_interrupt", "detached_from_terminal", "forgiving_streams"]

_STOPPING = ("\nCtrl-C: the run stops after the current step and is recorded as interrupted "
             "(a step is never cut in half).\n")


class _ForgivingStream:
    """A text stream that goes quiet, instead of raising, once the other end has gone away."""

    def __init__(self, stream: TextIO, fd: int) -> None:
        self._stream = stream
        self._fd = fd
        self.gone = False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                self._stream.write(text)
                self._stream.flush()
            except (OSError, ValueError):
                self._go_quiet()
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                self._go_quiet()

    def _go_quiet(self) -> None:
        self.gone = True
        # Whatever is still buffered, and the interpreter's flush at exit, now go to /dev/null:
        # a broken pipe must not turn a finished run's exit code into 120.
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self._fd)
            os.close(null)
        except OSError:
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextmanager
def forgiving_streams() -> Iterator[None]:
    """Within the body, writes to a stdout or stderr whose reader has gone are dropped, not raised."""
    saved = (sys.stdout, sys.stderr)
    if not isinstance(sys.stdout, _ForgivingStream):
        sys.stdout = _ForgivingStream(sys.stdout, 1)  # type: ignore[assignment]
    if not isinstance(sys.stderr, _ForgivingStream):
        sys.stderr = _ForgivingStream(sys.stderr, 2)  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


@contextmanager
def detached_from_terminal(on_interrupt: Callable[[], None]) -> Iterator[None]:
    """Run the body so that the terminal can only *ask* it to stop.

    ``on_interrupt`` is called on the first Ctrl-C (e.g. to ask the kernel to stop at the next
    step boundary); later ones only repeat that the run is stopping. Signal handlers can only
    be set in the main thread; elsewhere only the streams are made forgiving.
    """
    saved_signals: dict[int, Any] = {}
    asked = threading.Event()

    def interrupt(signum: int, frame: Any) -> None:
        sys.stderr.write(_STOPPING)
        if not asked.is_set():
            asked.set()
            on_interrupt()

    if threading.current_thread() is threading.main_thread():
        saved_signals[signal.SIGINT] = signal.signal(signal.SIGINT, interrupt)
        saved_signals[signal.SIGHUP] = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with forgiving_streams():
            yield
    finally:
        for signum, handler in saved_signals.items():
            signal.signal(signum, handler)


@dataclass
class Interrupt:
    """Whether a Ctrl-C arrived while :func:`deferred_interrupt` held it."""

    asked: bool = False


@contextmanager
def deferred_interrupt() -> Iterator[Interrupt]:
    """Hold a Ctrl-C (SIGINT) that arrives inside the body until the body has ended.

    The caller reads :attr:`Interrupt.asked` afterwards and stops there. Outside the main
    thread, where no handler can be set, the body runs as it is.
    """
    held = Interrupt()
    if threading.current_thread() is not threading.main_thread():
        yield held
        return

    def hold(signum: int, frame: Any) -> None:
        held.asked = True

    previous = signal.signal(signal.SIGINT, hold)
    try:
        yield held
    finally:
        signal.signal(signal.SIGINT, previous)
