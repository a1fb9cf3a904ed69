"""How much the notebook costs over calling the same steps from Python, and shells per target.

Prints, for a no-change re-run of the hybrid runbook against a lab estate:
- the wall time of `runbook run` (papermill, kernel start, record, archive);
- the wall time of the same steps called directly from Python;
- the wall time of papermill running an empty notebook (the floor any notebook run pays);
- the ratio (notebook − empty notebook) / Python  — target ≤ 1.3;
- the WinRM shells opened per target during one run — target 1.
Benchmarks print; they never assert.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runbooklib.lab.estate import Estate  # noqa: E402

PARAMS = ROOT / "parameters" / "lab" / "sharepoint-hybrid.yaml"
REPEAT = 3


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runbooklib.cli", *args], capture_output=True, text=True, cwd=ROOT)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp, Estate(Path(tmp) / "lab") as lab:
        archive = Path(tmp) / "records"
        first = cli("run", "sharepoint-hybrid", "--inventory", str(lab.inventory_path), "--params", str(PARAMS),
                    "--archive", str(archive), "-q")
        if first.returncode != 0:
            print(first.stdout, first.stderr)
            return 1

        def notebook_run() -> None:
            cli("run", "sharepoint-hybrid", "--inventory", str(lab.inventory_path), "--params", str(PARAMS),
                "--archive", str(archive), "-q")

        script = (
            "import sys, json, yaml\n"
            "from runbooklib.runner import start\n"
            "from runbooklib.scenarios import sharepoint_hybrid as hybrid\n"
            f"run = start('sharepoint-hybrid', mode='apply', inventory={str(lab.inventory_path)!r}, "
            f"params=yaml.safe_load(open({str(PARAMS)!r})))\n"
            "[run.step(s) for s in hybrid.STEPS]\n"
            "run.finish()\n"
            "print('SHELLS', json.dumps(run.shells_opened_total))\n"
        )

        def python_run() -> None:
            # A fresh interpreter, like the kernel: imports are paid here too.
            out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
            python_run.shells = next((line[7:] for line in out.splitlines() if line.startswith("SHELLS ")), "?")  # type: ignore[attr-defined]

        empty = Path(tmp) / "empty.ipynb"
        empty.write_text(json.dumps({"cells": [{"cell_type": "code", "id": "a", "metadata": {"tags": ["parameters"]},
                                                "source": "x = 1", "outputs": [], "execution_count": None}],
                                     "metadata": {"kernelspec": {"name": "python3", "language": "python",
                                                                 "display_name": "Python 3"}},
                                     "nbformat": 4, "nbformat_minor": 5}))

        def empty_run() -> None:
            subprocess.run([sys.executable, "-m", "papermill", str(empty), str(Path(tmp) / "out.ipynb"), "-k", "python3",
                            "--no-progress-bar"], capture_output=True, check=True)

        python_times = [timed(python_run) for _ in range(REPEAT)]
        notebook_times = [timed(notebook_run) for _ in range(REPEAT)]
        empty_times = [timed(empty_run) for _ in range(REPEAT)]
        nb, py, floor = (statistics.median(t) for t in (notebook_times, python_times, empty_times))
        ratio = (nb - floor) / py if py else float("inf")
        records = [json.loads(line) for line in (archive / "index.jsonl").read_text().splitlines()]
        scraps_run = _run_scrap(archive / records[-1]["path"])
        print(f"no-change re-run, median of {REPEAT}:")
        print(f"  runbook run (notebook)      {nb:6.2f} s")
        print(f"  same steps from Python      {py:6.2f} s   (fresh interpreter, imports included)")
        print(f"  papermill, empty notebook   {floor:6.2f} s")
        print(f"  ratio (notebook − empty) / Python = {ratio:4.2f}   (target ≤ 1.3)")
        print(f"  notebook vs empty notebook        = {nb / floor:4.2f}×  (goal ≤ 2)")
        print(f"  shells opened per target, notebook run: {scraps_run.get('shells_opened')}   (target 1 each)")
        print(f"  shells opened per target, Python run:   {getattr(python_run, 'shells', {})}")
    return 0


def _run_scrap(path: Path) -> dict:
    from runbooklib.record import read_notebook_scraps

    return read_notebook_scraps(json.loads(path.read_text())).get("run") or {}


if __name__ == "__main__":
    sys.exit(main())
