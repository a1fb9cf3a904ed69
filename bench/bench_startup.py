"""Benchmark: how fast the ``runbook`` command answers when it runs no notebook.

``runbook --help``, ``runbook history`` on an empty archive and ``runbook scenarios`` should not
pay for papermill (nor the Graph and PowerShell clients): the command line imports them only
when a run needs them. Prints, never asserts:

* the wall time of each command (median and best of N child processes), next to a bare
  ``python -c pass`` for scale,
* whether papermill — and which other heavy libraries — got imported, read from
  ``python -X importtime`` in a separate child (so the timing runs are not slowed by it),
* the slowest imports of each command, cumulative.

Run: ``.venv/bin/python bench/bench_startup.py [--repeat N]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Imported only by runs; the commands measured here should need none of them.
HEAVY = ("papermill", "nbclient", "jupyter_client", "scrapbook", "msgraph", "azure.identity", "pypsrp", "psrpcore")


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "runbooklib.cli", *args]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("RUNBOOK_ARCHIVE", None)
    return env


def wall_times(argv: list[str], repeat: int, cwd: Path) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, env=_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - start)
    return times


def imported_modules(argv: list[str], cwd: Path) -> list[tuple[str, int]]:
    """(module, cumulative µs) for every module the command imported, from -X importtime."""
    result = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], cwd=cwd, env=_env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, check=False)
    modules = []
    for line in result.stderr.splitlines():
        # "import time:   self [us] | cumulative | imported package"
        if not line.startswith("import time:") or "imported package" in line:
            continue
        _, cumulative, name = line[len("import time:"):].split("|")
        modules.append((name.strip(), int(cumulative)))
    return modules


def heavy_imports(modules: list[tuple[str, int]]) -> list[str]:
    names = {name for name, _ in modules}
    return [h for h in HEAVY if h in names]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="child processes per command (default 5)")
    parser.add_argument("--top", type=int, default=5, help="slowest imports listed per command (default 5)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        cwd = Path(tmp)
        empty_archive = cwd / "records"  # never created: history on an archive with no runs
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "runbook --help": _cli("--help"),
            "runbook history (empty archive)": _cli("history", "--archive", str(empty_archive)),
            "runbook scenarios": _cli("scenarios"),
        }
        print(f"{'command':<34} {'median':>8} {'best':>8}  papermill  other heavy imports")
        details = {}
        for label, argv in commands.items():
            times = wall_times(argv, args.repeat, cwd)
            modules = imported_modules(argv, cwd)
            heavy = heavy_imports(modules)
            papermill = "-" if label.startswith("python") else ("IMPORTED" if "papermill" in heavy else "no")
            others = ", ".join(h for h in heavy if h != "papermill") or "-"
            print(f"{label:<34} {statistics.median(times) * 1000:>6.0f}ms {min(times) * 1000:>6.0f}ms  "
                  f"{papermill:<9}  {others}")
            details[label] = modules
        print()
        for label, modules in details.items():
            if label.startswith("python"):
                continue
            # Top-level packages only: their cumulative time includes their submodules.
            top = sorted(((n, us) for n, us in modules if "." not in n), key=lambda m: m[1], reverse=True)
            listed = ", ".join(f"{n} {us / 1000:.0f}ms" for n, us in top[:args.top])
            print(f"slowest imports, {label}: {listed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
