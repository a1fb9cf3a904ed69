"""`runbook lab up|down|status|reset` as an administrator runs it: child processes, a background
estate, and no process left behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from runbooklib.inventory import load_inventory
from runbooklib.lab.estate import STATE_FILE, pid_alive, process_command
from runbooklib.remote import RemoteConnections
from runbooklib.sharepoint import ensure_sharepoint_shell

ROOT = Path(__file__).resolve().parents[1]
SERVERS = ("sp-a", "sp-b", "oos-1", "oos-2", "skype-fe1", "skype-fe2", "exchange", "contoso")
WINRM_HOSTS = {"sp-a", "sp-b", "oos-1", "oos-2", "skype-fe1", "skype-fe2", "exchange"}  # every server but the tenant


def lab(action: str, lab_dir: Path, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runbooklib.cli", "lab", action, "--dir", str(lab_dir)],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT, stdin=subprocess.DEVNULL)


def record(lab_dir: Path) -> dict:
    return json.loads((lab_dir / STATE_FILE).read_text())


def _kill_leftover(lab_dir: Path) -> None:
    """After `down`: no estate process of this directory may survive the test, whatever happened."""
    try:
        pid = record(lab_dir).get("pid")
    except (OSError, ValueError):
        return
    if pid and pid_alive(pid) and str(lab_dir) in (process_command(pid) or ""):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def lab_dir(tmp_path_factory) -> Iterator[Path]:
    """A lab started with `runbook lab up` (in the background), stopped with `down` at the end."""
    directory = tmp_path_factory.mktemp("cli") / ".lab"
    try:
        started = lab("up", directory)
        assert started.returncode == 0, started.stdout + started.stderr
        yield directory
    finally:
        lab("down", directory)
        _kill_leftover(directory)


@pytest.fixture
def spare_dir(tmp_path) -> Iterator[Path]:
    directory = tmp_path / ".lab"
    directory.mkdir()
    try:
        yield directory
    finally:
        if (directory / STATE_FILE).exists():
            lab("down", directory)
            _kill_leftover(directory)


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen]:
    """Some other program, as a stale pid in estate.json may now name after a crash or reboot."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


class FarmConnections(RemoteConnections):
    """Sessions with the SharePoint cmdlets loaded: a fresh runspace on a farm does not know them."""

    def session(self, target):
        session = super().session(target)
        ensure_sharepoint_shell(session)
        return session


def realm(lab_dir: Path, server: str = "sp-a") -> str:
    with FarmConnections(load_inventory(lab_dir / "inventory.yaml")) as conns:
        [value] = conns.invoke(server, "Get-SPAuthenticationRealm").output
        return value


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def test_up_leaves_the_estate_running_in_the_background_and_is_idempotent(lab_dir):
    pid = record(lab_dir)["pid"]
    assert pid_alive(pid) and pid != os.getpid()  # `up` returned; its estate lives on

    status = lab("status", lab_dir)
    assert status.returncode == 0, status.stdout
    for name in SERVERS:
        assert any(line.split()[:1] == [name] and line.endswith("answering") for line in status.stdout.splitlines())
    assert "NOT ANSWERING" not in status.stdout and f"pid {pid}" in status.stdout
    http_ports = record(lab_dir)["winrm_http_ports"]
    assert set(http_ports) == WINRM_HOSTS
    for port in http_ports.values():
        assert f"http://127.0.0.1:{port}   WinRM over http" in status.stdout

    again = lab("up", lab_dir)
    assert again.returncode == 0 and f"running (pid {pid}" in again.stdout
    assert record(lab_dir)["pid"] == pid

    with FarmConnections(load_inventory(lab_dir / "inventory.yaml")) as conns:
        assert conns.invoke("sp-b", "Get-SPFarm").output[0].BuildVersion.startswith("16.0.")


def test_down_and_up_keep_ports_and_state_and_reset_restores_the_initial_estate(lab_dir):
    initial_realm = realm(lab_dir)
    ports, pid = record(lab_dir)["ports"], record(lab_dir)["pid"]
    http_ports = record(lab_dir)["winrm_http_ports"]
    changed = str(uuid.uuid4())
    with FarmConnections(load_inventory(lab_dir / "inventory.yaml")) as conns:
        conns.invoke("sp-a", "Set-SPAuthenticationRealm", {"Realm": changed})

    down = lab("down", lab_dir)
    assert down.returncode == 0 and "stopped" in down.stdout
    assert not pid_alive(pid) and all(refused(port) for port in [*ports.values(), *http_ports.values()])
    status = lab("status", lab_dir)
    assert status.returncode == 1 and "not running" in status.stdout

    up = lab("up", lab_dir)
    assert up.returncode == 0, up.stderr
    assert record(lab_dir)["ports"] == ports and record(lab_dir)["pid"] != pid
    assert record(lab_dir)["winrm_http_ports"] == http_ports
    assert realm(lab_dir) == changed

    reset = lab("reset", lab_dir)
    assert reset.returncode == 0, reset.stderr
    assert "reset to its initial estate" in reset.stdout
    assert realm(lab_dir) == initial_realm
    assert record(lab_dir)["ports"] == ports
    assert lab("status", lab_dir).returncode == 0


def test_a_taken_port_moves_the_server_and_the_terminal_says_so(lab_dir):
    assert lab("down", lab_dir).returncode == 0
    old_port, old_http_port = record(lab_dir)["ports"]["sp-b"], record(lab_dir)["winrm_http_ports"]["sp-a"]
    with socket.socket() as squatter, socket.socket() as http_squatter:
        for sock, port in ((squatter, old_port), (http_squatter, old_http_port)):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the estate's connections linger
            sock.bind(("127.0.0.1", port))
            sock.listen()
        up = lab("up", lab_dir)
        assert up.returncode == 0, up.stderr
        new_port = record(lab_dir)["ports"]["sp-b"]
        assert new_port != old_port
        assert f"sp-b: port {old_port} is taken by another program; sp-b now listens on {new_port}" in up.stderr
        assert "inventory.yaml was rewritten" in up.stderr
        new_http_port = record(lab_dir)["winrm_http_ports"]["sp-a"]
        assert new_http_port != old_http_port
        assert (f"sp-a: port {old_http_port} (WinRM over http) is taken by another program; sp-a's http WinRM "
                f"listener now listens on {new_http_port}") in up.stderr
        inventory = load_inventory(lab_dir / "inventory.yaml")
        assert inventory.server("sp-b").winrm == f"https://127.0.0.1:{new_port}/wsman"
        assert realm(lab_dir, "sp-b")  # reachable at the address the rewritten inventory names


def test_a_stale_pid_is_never_signalled(spare_dir, bystander):
    stale = {"pid": bystander.pid, "ports": {"sp-a": 1}, "control_token": "gone", "served_by": "runbook lab"}
    (spare_dir / STATE_FILE).write_text(json.dumps(stale))

    status = lab("status", spare_dir)
    assert status.returncode == 1 and "not running" in status.stdout
    down = lab("down", spare_dir)
    assert down.returncode == 0 and "now another program" in down.stdout
    assert bystander.poll() is None and "pid" not in record(spare_dir)

    (spare_dir / STATE_FILE).write_text(json.dumps(stale))
    up = lab("up", spare_dir)
    assert up.returncode == 0, up.stderr
    assert f"named pid {bystander.pid}, which is now another program" in up.stderr
    assert bystander.poll() is None
    assert lab("status", spare_dir).returncode == 0


def test_up_refuses_a_lab_process_that_does_not_answer(spare_dir):
    # A lab server of this directory that hangs: `up` must not start a second one over its state.
    hung = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                             "runbooklib.lab.serve", "--dir", str(spare_dir)])
    try:
        (spare_dir / STATE_FILE).write_text(json.dumps({"pid": hung.pid, "ports": {"sp-a": 1},
                                                        "control_token": "t", "served_by": "runbook lab"}))
        up = lab("up", spare_dir)
        assert up.returncode == 1
        assert f"names pid {hung.pid}, which is alive but none of the lab's servers answer" in up.stderr
        assert f"kill {hung.pid}" in up.stderr and hung.poll() is None
        # `down` may stop it: it is this directory's lab server.
        assert lab("down", spare_dir).returncode == 0
        assert hung.wait(timeout=10) == -signal.SIGTERM
    finally:
        hung.kill()
        hung.wait()


def test_a_lab_that_cannot_start_shows_why(spare_dir):
    state = spare_dir / "state"
    state.mkdir()
    (state / "sp-a.json").write_text(json.dumps({"schema": "from-the-future", "current": {}}))
    up = lab("up", spare_dir)
    assert up.returncode == 1
    assert "the lab stopped while starting" in up.stderr
    assert "unsupported lab state schema 'from-the-future'" in up.stderr  # the end of lab.log, quoted
    assert "lab.log" in up.stderr


def test_lab_fault_makes_the_next_command_fail_with_the_message_then_clears(lab_dir):
    from runbooklib.errors import RemoteError

    fault = subprocess.run([sys.executable, "-m", "runbooklib.cli", "lab", "fault", "sp-a", "error", "--message",
                            "The farm is in maintenance.", "--path-prefix", "/wsman", "--dir", str(lab_dir)],
                           capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert fault.returncode == 0, fault.stderr
    with FarmConnections(load_inventory(lab_dir / "inventory.yaml")) as conns:
        with pytest.raises(RemoteError) as caught:
            conns.session("sp-a").invoke("Get-SPFarm")
        assert "The farm is in maintenance." in str(caught.value)
        assert conns.session("sp-a").invoke("Get-SPFarm").output, "a fault is used up by one request"
    subprocess.run([sys.executable, "-m", "runbooklib.cli", "lab", "fault", "sp-b", "drop", "--count", "3",
                    "--dir", str(lab_dir)], check=True, capture_output=True, timeout=60, cwd=ROOT)
    cleared = subprocess.run([sys.executable, "-m", "runbooklib.cli", "lab", "fault", "sp-b", "clear", "--dir",
                              str(lab_dir)], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert cleared.returncode == 0 and "cleared" in cleared.stdout
    with FarmConnections(load_inventory(lab_dir / "inventory.yaml")) as conns:
        assert conns.session("sp-b").invoke("Get-SPFarm").output


def test_lab_fault_no_outbound_holds_until_cleared(lab_dir):
    from runbooklib.errors import RemoteError
    from runbooklib.sharepoint import Farm

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "runbooklib.cli", "lab", "fault", *args, "--dir", str(lab_dir)],
                              capture_output=True, text=True, timeout=60, cwd=ROOT)

    inventory = load_inventory(lab_dir / "inventory.yaml")
    acs_url = inventory.tenant("contoso").acs_metadata_url
    blocked = cli("sp-a", "no-outbound")
    assert blocked.returncode == 0 and "until" in blocked.stdout, blocked.stderr
    with FarmConnections(inventory) as conns:
        farm = Farm(conns.session("sp-a"), name="sp-a")
        for _ in range(2):  # not used up by a request: the farm stays cut off
            with pytest.raises(RemoteError) as caught:
                farm.partner_metadata(acs_url)
            assert "Unable to connect to the remote server" in str(caught.value)
        assert farm.build_version(), "requests to the farm itself still work"
    assert cli("sp-a", "clear").returncode == 0
    with FarmConnections(inventory) as conns:
        assert '"issuer"' in Farm(conns.session("sp-a"), name="sp-a").partner_metadata(acs_url)
