"""Benchmark: PowerShell remoting through runbooklib.remote against a lab WinRM endpoint.

The endpoint runs in its own process (as it does when the estate runs in the background), so
client and server do not share a GIL. Prints, never asserts:

* one pipeline on an already open runspace pool (target ≤ 25 ms),
* a cold connect + open pool + one pipeline + close (target ≤ 80 ms),
* how many shells RemoteConnections opened for a run of commands on one target (expected 1),
* one pipeline over NTLM with message encryption on plain HTTP (the default Windows listener)
  against the same over Basic on HTTPS, as a ratio.

Run: ``.venv/bin/python bench/bench_winrm.py [--warm N] [--cold N]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

WARM_TARGET_MS = 25.0
COLD_TARGET_MS = 80.0
USERNAME = "LAB\\bench"
PASSWORD = "bench-password-not-secret"


@dataclass
class Target:
    name: str
    winrm: str
    auth: str
    username: str
    ca_bundle: Path | None
    allow_http: bool = False


def serve(directory: Path) -> None:
    """Child process: run one lab server with a WinRM endpoint until stdin closes."""
    from runbooklib.lab.http import LabServer
    from runbooklib.lab.pki import LabCA
    from runbooklib.lab.winrm.api import CommandTable, Invocation, ParamSpec, PSObj
    from runbooklib.lab.winrm.endpoint import WinRMEndpoint

    table = CommandTable()

    @table.cmdlet("Get-BenchWidget", {"Identity": ParamSpec(mandatory=True, position=0)})
    def get_widget(inv: Invocation) -> None:
        inv.write_output(PSObj(["Bench.Widget", "System.Object"],
                               {"Name": inv.param("Identity"), "Size": 3, "Tags": ["a", "b"]},
                               to_string=f"Widget {inv.param('Identity')}"))

    ca = LabCA.open(directory / "ca")
    server = LabServer("bench", ca.issue_server_certificate(["127.0.0.1"]), cert_dir=directory / "tls")
    WinRMEndpoint(server_name="bench", commands=table, accounts={USERNAME: PASSWORD}).mount(server)
    server.start()
    plain = LabServer("bench-http", None, scheme="http")
    WinRMEndpoint(server_name="bench-http", commands=table, accounts={USERNAME: PASSWORD},
                  auth=("negotiate",)).mount(plain)
    plain.start()
    print(json.dumps({"url": f"{server.url}/wsman", "ca": str(ca.bundle_path),
                      "ntlm_url": f"{plain.url}/wsman"}), flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    server.stop()
    plain.stop()


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm", type=int, default=60, help="pipelines on an open pool")
    parser.add_argument("--cold", type=int, default=20, help="connect + pipeline + close cycles")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return

    from runbooklib.remote import RemoteConnections, RemoteSession

    with tempfile.TemporaryDirectory(prefix="bench-winrm-") as tmp:
        child = subprocess.Popen([sys.executable, __file__, "--serve", tmp], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
        try:
            info = json.loads(child.stdout.readline())
            target = Target("bench", info["url"], "basic", USERNAME, Path(info["ca"]))

            with RemoteSession.open(target, password=PASSWORD) as session:
                for _ in range(5):  # warm up TLS session, imports, server threads
                    session.invoke("Get-BenchWidget", {"Identity": "w"})
                warm, wrong = [], 0
                for i in range(args.warm):
                    start = time.perf_counter()
                    result = session.invoke("Get-BenchWidget", {"Identity": f"w{i}"})
                    warm.append(time.perf_counter() - start)
                    wrong += result.output[0]["Name"] != f"w{i}"  # a wrong answer is not a fast answer

            cold = []
            for i in range(args.cold):
                start = time.perf_counter()
                with RemoteSession.open(target, password=PASSWORD) as session:
                    session.invoke("Get-BenchWidget", {"Identity": f"c{i}"})
                cold.append(time.perf_counter() - start)

            ntlm_target = Target("bench-http", info["ntlm_url"], "ntlm", USERNAME, None, allow_http=True)
            with RemoteSession.open(ntlm_target, password=PASSWORD) as session:
                for _ in range(5):
                    session.invoke("Get-BenchWidget", {"Identity": "w"})
                ntlm = []
                for i in range(args.warm):
                    start = time.perf_counter()
                    result = session.invoke("Get-BenchWidget", {"Identity": f"n{i}"})
                    ntlm.append(time.perf_counter() - start)
                    wrong += result.output[0]["Name"] != f"n{i}"

            with RemoteConnections(lambda t: PASSWORD) as connections:
                for i in range(10):
                    connections.invoke(target, "Get-BenchWidget", {"Identity": f"r{i}"})
                shells = connections.shells_opened.get("bench", 0)
        finally:
            child.stdin.close()
            child.wait(timeout=10)

    warm_ms, cold_ms = _median_ms(warm), _median_ms(cold)
    print(f"one pipeline on an open pool      median {warm_ms:6.1f} ms  (target ≤ {WARM_TARGET_MS:.0f} ms, "
          f"ratio {warm_ms / WARM_TARGET_MS:.2f}, n={len(warm)}, min {min(warm) * 1000:.1f}, "
          f"max {max(warm) * 1000:.1f})")
    print(f"connect + pipeline + close        median {cold_ms:6.1f} ms  (target ≤ {COLD_TARGET_MS:.0f} ms, "
          f"ratio {cold_ms / COLD_TARGET_MS:.2f}, n={len(cold)}, min {min(cold) * 1000:.1f}, "
          f"max {max(cold) * 1000:.1f})")
    print(f"shells opened for 10 commands on one target: {shells} (expected 1)")
    ntlm_ms = _median_ms(ntlm)
    print(f"one pipeline, NTLM sealed over HTTP median {ntlm_ms:6.1f} ms  (Basic over HTTPS {warm_ms:.1f} ms, "
          f"ratio {ntlm_ms / warm_ms:.2f}, n={len(ntlm)})")
    if wrong:
        print(f"WARNING: {wrong} of {len(warm) + len(ntlm)} pipelines returned the wrong object")


if __name__ == "__main__":
    main()
