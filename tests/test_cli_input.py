"""Bad input stops `runbook run` with exit 2 and a message naming the field, before anything runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import FIXTURE_NOTEBOOK, runbook
from runbooklib.cli import main

DATA = Path(__file__).parent / "data" / "inventories"
BAD_INVENTORIES = sorted(DATA.glob("bad-*.yaml"))


def _expected_field(path: Path) -> str:
    match = re.search(r"^# field: (.*)$", path.read_text(), re.M)
    assert match, f"{path.name} lacks its '# field:' header"
    return match.group(1)


@pytest.mark.parametrize("path", BAD_INVENTORIES, ids=lambda p: p.stem)
def test_malformed_inventory_exits_2_naming_the_field(path, tmp_path, capsys):
    archive = tmp_path / "records"
    work = tmp_path / "work"
    work.mkdir()
    code = main(["run", str(FIXTURE_NOTEBOOK), "--inventory", str(path), "-p", f"workdir={work}",
                 "--archive", str(archive)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert path.name in err
    field = _expected_field(path)
    if field != "-":
        assert field in err
    assert not archive.exists(), "nothing may be archived for invalid input"
    assert not any(work.iterdir()), "nothing may be changed for invalid input"


def test_there_are_at_least_twenty(tmp_path):
    assert len(BAD_INVENTORIES) >= 20


@pytest.mark.parametrize("override", ["workdir", "=x", "a..b=1"])
def test_malformed_override_exits_2(override, tmp_path, capsys):
    code = main(["run", str(FIXTURE_NOTEBOOK), "-p", override, "--archive", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: -p:"), err


def test_missing_secret_file_exits_2_before_running(tmp_path):
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        "servers:\n  sp-a:\n    role: sharepoint\n    winrm: https://127.0.0.1:1/wsman\n    auth: basic\n"
        "    username: LAB\\spadmin\n    password: file:secrets/nope\n"
    )
    result = runbook("run", str(FIXTURE_NOTEBOOK), "--inventory", str(inventory), "-p", f"workdir={tmp_path}",
                     "--archive", str(tmp_path / "records"))
    assert result.returncode == 2
    assert "servers.sp-a.password" in result.stderr
    assert not (tmp_path / "records").exists()
