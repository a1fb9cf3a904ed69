"""Serve the estate until SIGTERM or Ctrl+C (the background process of ``runbook lab up``)."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path

from .estate import Estate


def serve(lab_dir: Path, *, announce: bool = False) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    estate = Estate(lab_dir).start()
    if announce:
        for name, host in estate.hosts.items():
            print(f"  {name:<10} {host.server.url}")
        print(f"lab up; inventory {estate.inventory_path}. Ctrl+C stops it.", flush=True)
    try:
        stop.wait()
    finally:
        estate.stop()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m runbooklib.lab.serve")
    parser.add_argument("--dir", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return serve(Path(args.dir).resolve())


if __name__ == "__main__":
    raise SystemExit(main())
