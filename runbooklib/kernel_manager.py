"""The kernel manager headless runs execute with: it shuts a finished kernel down without a Ctrl-C.

jupyter_client interrupts a kernel (SIGINT) before it asks it to shut down, so that a cell still
running lets go. Papermill shuts the kernel down only once it is done with it, but after a cell
that failed it does so without waiting for the kernel to finish that message; the interrupt then
lands inside the kernel's message handler, which logs ``KeyboardInterrupt caught in kernel`` to
the run's terminal — words that read like a failure the run never had. This manager skips that
interrupt during shutdown. A kernel that does not leave on the shutdown request is still
terminated, then killed, after jupyter_client's grace period; whatever else the kernel writes to
its stderr still reaches the terminal.
"""

from __future__ import annotations

from jupyter_client.manager import AsyncKernelManager

__all__ = ["QuietShutdownKernelManager"]


class QuietShutdownKernelManager(AsyncKernelManager):
    """An :class:`AsyncKernelManager` that sends no interrupt to a kernel it is shutting down."""

    async def _async_interrupt_kernel(self) -> None:
        if self.shutting_down:
            return
        await super()._async_interrupt_kernel()
