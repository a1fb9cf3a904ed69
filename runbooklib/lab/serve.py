"""Serve the estate until SIGTERM or Ctrl+C: the process behind ``runbook lab up``.

``python -m runbooklib.lab.serve --dir DIR`` is what ``up`` starts in the background (its
output goes to ``DIR/lab.log``); ``runbook lab up --foreground`` runs :func:`serve` attached
to the terminal.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from ..errors import RunbookError
from .estate import SERVED_BY_COMMAND, Estate

__all__ = ["main", "serve"]

log = logging.getLogger(__name__)


def serve(lab_dir: Path, *, announce: bool = False) -> int:
    """Run the estate of ``lab_dir`` until SIGTERM/SIGINT (call from the main thread)."""
    stop = threading.Event()
    # Installed before start: a `lab down` during start-up still ends in a clean stop.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    estate = Estate(lab_dir, served_by=SERVED_BY_COMMAND).start()
    try:
        if announce:
            for name, (old, new) in estate.moved_ports.items():
                print(f"warning: {name}: port {old} is taken by another program; now on {new} "
                      f"({estate.inventory_path} rewritten)", file=sys.stderr)
            for name, host in estate.hosts.items():
                print(f"  {name:<10} {host.server.url}")
                if host.winrm_http:
                    print(f"  {'':<10} {host.winrm_http.url}  (WinRM over http)")
            print(f"lab up; inventory {estate.inventory_path}. Ctrl+C stops it.", flush=True)
        stop.wait()
    finally:
        estate.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runbooklib.lab.serve")
    parser.add_argument("--dir", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return serve(Path(args.dir).resolve())
    except RunbookError as exc:  # an expected refusal: one clear line in lab.log, no traceback
        log.error("%s", exc)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
