"""psrpcore server side of one lab WinRM endpoint: a :class:`Shell` per WS-Man shell (= runspace pool).

Each shell owns one ``ServerRunspacePool`` and a lock: psrpcore is not thread-safe, and the
HTTP server answers each request in its own thread while pipelines run in worker threads.
Every touch of the pool or its pipelines happens under the shell's lock; a condition on that
lock wakes long-polling Receives when output appears.

A shell also owns its runspace's session state (:attr:`Shell.session`): one dict, created with the
shell and dropped with it, handed to every pipeline run in it — what a real runspace remembers
between commands (loaded snap-ins and modules).

psrpcore keeps one outbound queue for the pool and all its pipelines, but WS-Man hands data out
per target (a Receive names one CommandId, or none for the pool). The shell therefore drains
psrpcore's queue into one queue per target and serves each Receive from its own.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from psrpcore import (
    CreatePipelineEvent,
    EndOfPipelineInputEvent,
    PipelineInputEvent,
    PSRPPayload,
    ServerPipeline,
    ServerRunspacePool,
    StreamType,
)
from psrpcore.types import ErrorRecord, PSInvocationState, PSRPMessageType

from . import soap
from ._psrpcore_hooks import fail_pipeline
from .api import new_session
from .dispatch import CommandSpec, PipelineOutcome, PipelineSink

__all__ = ["Shell", "PipelineRunner"]

log = logging.getLogger(__name__)

# runner(commands, pipeline input, sink, session) -> outcome; runs in the pipeline's worker thread.
PipelineRunner = Callable[[list[CommandSpec], list[Any], PipelineSink, dict[str, Any]], PipelineOutcome]

# Once a pipeline has output but is still running, a Receive waits this long for it to finish so
# that a short command costs exactly one Receive (measured: 2 WS-Man requests per pipeline).
_LINGER_SECONDS = 0.05
# Markup around each rsp:Stream element in a Receive answer.
_STREAM_OVERHEAD = 160


@dataclass
class _Run:
    pipeline: ServerPipeline
    command_id: str
    commands: list[CommandSpec] | None = None
    no_input: bool = True
    input: list[Any] = field(default_factory=list)
    input_done: bool = False
    started: bool = False
    finished: bool = False
    stop_requested: bool = False


class _Sink:
    """The streams of one running pipeline; every write takes the shell lock."""

    def __init__(self, shell: "Shell", run: _Run) -> None:
        self._shell = shell
        self._run = run

    def _write(self, fn: Callable[[], None]) -> None:
        with self._shell._cond:
            if self._run.stop_requested or self._run.pipeline.state != PSInvocationState.Running:
                return
            fn()
            self._shell._cond.notify_all()

    def output(self, value: Any) -> None:
        self._write(lambda: self._run.pipeline.write_output(value))

    def error(self, record: ErrorRecord) -> None:
        self._write(lambda: self._run.pipeline.prepare_message(record, message_type=PSRPMessageType.ErrorRecord))

    def warning(self, message: str) -> None:
        self._write(lambda: self._run.pipeline.write_warning(message))

    def verbose(self, message: str) -> None:
        self._write(lambda: self._run.pipeline.write_verbose(message))

    @property
    def stopping(self) -> bool:
        return self._run.stop_requested


class Shell:
    """One WS-Man shell: a PSRP runspace pool and its pipelines."""

    def __init__(self, *, owner: str, client_ip: str, runner: PipelineRunner, delegated: bool = False,
                 no_language: bool = False) -> None:
        self.owner = owner
        self.client_ip = client_ip
        self.shell_id = ""
        self._runner = runner
        self._cond = threading.Condition(threading.Lock())
        self._pool = ServerRunspacePool()
        self._queues: dict[uuid.UUID | None, deque[bytes]] = {}
        self._runs: dict[uuid.UUID, _Run] = {}
        self.closed = False
        # The runspace's session state, shared by this shell's pipelines (the dispatcher's only
        # writes are whole-key dict operations, which need no lock beyond the GIL).
        self.session: dict[str, Any] = new_session(delegated=delegated, no_language=no_language)

    # ------------------------------------------------------------------ inbound

    def open(self, creation_fragment: bytes, shell_id: str | None) -> str:
        """Feed the Create's ``creationXml`` (SessionCapability + InitRunspacePool); returns the ShellId."""
        with self._cond:
            self._feed(creation_fragment)
            self.shell_id = (shell_id or str(self._pool.runspace_pool_id)).upper()
            self._cond.notify_all()
        return self.shell_id

    def command(self, command_id: str, first_fragment: bytes) -> str:
        """A Command: create the pipeline *before* feeding its first fragment (psrpcore needs it)."""
        pipeline_id = uuid.UUID(command_id)
        with self._cond:
            pipeline = ServerPipeline(self._pool, pipeline_id)
            self._runs[pipeline_id] = _Run(pipeline=pipeline, command_id=command_id.upper())
            self._feed(first_fragment)
            self._cond.notify_all()
        return command_id.upper()

    def send(self, data: bytes) -> None:
        """A Send: more fragments of a pipeline's creation or input, or pool messages (key exchange)."""
        with self._cond:
            self._feed(data)
            self._cond.notify_all()

    def _feed(self, data: bytes) -> None:
        self._pool.receive_data(PSRPPayload(data, StreamType.default, None))
        while True:
            event = self._pool.next_event()
            if event is None:
                break
            if isinstance(event, CreatePipelineEvent):
                run = self._runs.get(event.pipeline_id)
                if run is None:
                    continue
                powershell = event.pipeline
                run.commands = [
                    CommandSpec(c.command_text, bool(c.is_script), list(c.parameters), bool(c.end_of_statement))
                    for c in powershell.commands
                ]
                run.no_input = bool(powershell.no_input)
                self._maybe_start(run)
            elif isinstance(event, PipelineInputEvent):
                run = self._runs.get(event.pipeline_id)
                if run is not None:
                    run.input.append(event.data)
            elif isinstance(event, EndOfPipelineInputEvent):
                run = self._runs.get(event.pipeline_id)
                if run is not None:
                    run.input_done = True
                    self._maybe_start(run)
            # Everything else (capability, init, key exchange, runspace availability) psrpcore
            # answers itself by queueing the reply.

    def _maybe_start(self, run: _Run) -> None:
        if run.started or run.commands is None or not (run.no_input or run.input_done):
            return
        run.started = True
        run.pipeline.start()
        thread = threading.Thread(target=self._execute, args=(run,), daemon=True,
                                  name=f"psrp-{run.command_id[:8]}")
        thread.start()

    def _execute(self, run: _Run) -> None:
        assert run.commands is not None
        try:
            outcome = self._runner(run.commands, list(run.input), _Sink(self, run), self.session)
        except Exception:  # the runner already turns handler errors into outcomes; this is a lab bug
            log.exception("pipeline %s crashed", run.command_id)
            outcome = PipelineOutcome()
        with self._cond:
            if not run.stop_requested and run.pipeline.state == PSInvocationState.Running:
                if outcome.failure is not None:
                    fail_pipeline(run.pipeline, outcome.failure)
                else:
                    run.pipeline.complete()
            run.finished = True
            self._cond.notify_all()

    # ------------------------------------------------------------------ outbound

    def _drain(self, chunk: int) -> None:
        while True:
            payload = self._pool.data_to_send(chunk)
            if payload is None:
                return
            self._queues.setdefault(payload.pipeline_id, deque()).append(payload.data)

    def receive(self, command_id: str | None, *, max_envelope_size: int, timeout: float
                ) -> tuple[list[bytes], bool]:
        """Wait for data for the pool (``command_id`` None) or one pipeline.

        Returns the PSRP chunks and whether the command is Done. Raises the WS-Man operation
        timeout fault when nothing arrived within ``timeout`` seconds (the client polls again).
        """
        budget = soap.receive_budget(max_envelope_size)
        target = uuid.UUID(command_id) if command_id else None
        deadline = time.monotonic() + max(timeout, 0.2)
        linger_until: float | None = None
        with self._cond:
            run = self._runs.get(target) if target else None
            if target is not None and run is None:
                return [], True  # already finished and handed out (or never existed)
            while True:
                self._drain(budget - _STREAM_OVERHEAD)
                queue = self._queues.get(target)
                finished = run is None or run.finished
                now = time.monotonic()
                if queue:
                    if finished:
                        break
                    if linger_until is None:
                        linger_until = now + _LINGER_SECONDS
                    if now >= linger_until:
                        break
                    self._cond.wait(min(linger_until, deadline) - now)
                    continue
                if run is not None and run.finished:
                    break
                if self.closed:
                    raise soap.WSManFault.shell_not_found(self.shell_id)
                if now >= deadline:
                    raise soap.WSManFault.operation_timeout()
                self._cond.wait(deadline - now)

            chunks: list[bytes] = []
            used = 0
            while queue:
                size = len(queue[0]) + _STREAM_OVERHEAD
                if chunks and used + size > budget:
                    break
                chunks.append(queue.popleft())
                used += size
            done = False
            if run is not None and run.finished and not queue:
                done = True
                self._forget(target)
            return chunks, done

    def _forget(self, target: uuid.UUID | None) -> None:
        run = self._runs.pop(target, None) if target else None
        self._queues.pop(target, None)
        if run is not None:
            try:
                run.pipeline.close()
            except Exception:  # already gone from the pool table
                pass

    # ------------------------------------------------------------------ control

    def signal(self, command_id: str, code: str) -> None:
        """``powershell/signal/ctrl_c`` stops a running pipeline; Terminate releases it."""
        target = uuid.UUID(command_id)
        with self._cond:
            run = self._runs.get(target)
            if run is None:
                return
            if not run.finished:
                run.stop_requested = True
                if run.pipeline.state == PSInvocationState.Running:
                    run.pipeline.stop()
                run.finished = True
            if code.lower().endswith("terminate") or code.lower().endswith("ctrl_c"):
                self._forget(target)
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self.closed = True
            for run in self._runs.values():
                run.stop_requested = True
            self._runs.clear()
            self._queues.clear()
            self._pool.pipeline_table.clear()
            try:
                self._pool.close()
            except Exception:  # a pool that never opened cannot be closed; it is dropped either way
                pass
            self._cond.notify_all()

    @property
    def protocol_version(self) -> str | None:
        cap = self._pool.their_capability
        return str(cap.protocolversion) if cap is not None else None

    def pipeline_count(self) -> int:
        with self._cond:
            return len(self._runs)
