"""The one place where the lab reaches into psrpcore's private API.

psrpcore 0.3.1 (pinned ``==0.3.1`` in pyproject for this reason) has public calls to end a
server pipeline Completed (``complete()``) or Stopped (``stop()``) but none to end it *Failed*
with an error record — which is what a real server sends when a cmdlet throws a terminating
error (the client then sees ``PipelineState`` Failed with ``ExceptionAsErrorRecord``). The
private ``_change_state`` does exactly that: it queues the PipelineState message with the
record and moves the pipeline to the state.

If psrpcore is upgraded, this is the function to re-check (the protocol tests fail loudly if
the hook stops working: a terminating error would no longer reach the client).
"""

from __future__ import annotations

import psrpcore
from psrpcore.types import ErrorRecord, PSInvocationState

__all__ = ["fail_pipeline", "PSRPCORE_VERSION"]

PSRPCORE_VERSION = getattr(psrpcore, "__version__", "0.3.1")


def fail_pipeline(pipeline: psrpcore.ServerPipeline, record: ErrorRecord) -> None:
    """End a running ``pipeline`` Failed, carrying ``record`` as the reason (caller holds the shell lock)."""
    if pipeline.state not in (PSInvocationState.Running, PSInvocationState.Stopping):
        pipeline.start()
    pipeline._change_state(PSInvocationState.Failed, error=record)  # noqa: SLF001 - see module docstring
