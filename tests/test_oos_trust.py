"""The Office Online Server trust runbook, end to end: `runbook run` → papermill → the lab estate,
and its pre-flight stops run in process against the same estate."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Iterator

import jwt
import pytest
import scrapbook
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from archived_runs import bearer_answer
from conftest import ROOT, lab_state_bytes, runbook
from estate_template import new_estate
from runbooklib.errors import RemoteError, StepFailed
from runbooklib.inventory import load_inventory
from runbooklib.lab.estate import Estate
from runbooklib.oos import OosServer
from runbooklib.remote import RemoteConnections
from runbooklib.runner import start
from runbooklib.scenarios import oos_trust as oos
from runbooklib.wellknown import OOS_SHAREPOINT_ISSUER, OOS_SQL_ISSUER

pytestmark = pytest.mark.slow

LAB_PARAMS = ROOT / "parameters" / "lab" / "oos-trust.yaml"
PFX_PASSWORD = "Oos-Pfx-Pa55word!"
SITE = "https://sharepoint.contoso.lab"


@pytest.fixture(scope="module")
def estate(tmp_path_factory) -> Iterator[Estate]:
    lab = new_estate(tmp_path_factory.mktemp("oos-estate")).start()
    try:
        yield lab
    finally:
        lab.stop()


@pytest.fixture
def lab(estate: Estate) -> Iterator[Estate]:
    """The module's estate, back to its initial state (and without faults) after each test."""
    yield estate
    for name in estate.hosts:
        estate.server(name).faults.clear()
    estate.reset()


def _pfx(path: Path, *, key_size: int = 2048, days: int = 365, expired: bool = False) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "oos.contoso.lab")])
    ca = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Contoso Lab Issuing CA")])
    now = dt.datetime.now(dt.timezone.utc)
    start_at = now - dt.timedelta(days=days + 30) if expired else now - dt.timedelta(days=1)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(ca).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start_at)
            .not_valid_after(start_at + dt.timedelta(days=days)).sign(key, hashes.SHA256()))
    path.write_bytes(pkcs12.serialize_key_and_certificates(
        None, key, cert, None, serialization.BestAvailableEncryption(PFX_PASSWORD.encode())))
    return path


def run_oos(lab: Estate, archive: Path, *args: str, env: dict[str, str] | None = None):
    result = runbook("run", "oos-trust", "--inventory", str(lab.inventory_path), "--params", str(LAB_PARAMS),
                     "--archive", str(archive), *args, env=env)
    index = archive / "index.jsonl"
    entries = [json.loads(line) for line in index.read_text().splitlines()] if index.exists() else []
    scraps = scrapbook.read_notebook(str(archive / entries[-1]["path"])).scraps.data_dict if entries else {}
    return result, scraps


def pfx_args(path: Path) -> list[str]:
    return ["-p", "certificate=pfx", "-p", f"pfx_path={path}", "-p", "pfx_password=env:OOS_PFX_PASSWORD"]


def farm_answer(lab: Estate, token: str) -> tuple[int, str]:
    """sp-a's answer to an inbound S2S token at its root site."""
    return bearer_answer(lab.server("sp-a").url + "/_api/web", token, lab.ca_bundle)


def oos_token(lab: Estate, host: str = "oos-1") -> str:
    return lab.component(host).s2s_token(site_url=SITE, realm=lab.farm("sp-a").realm)


def end_state(lab: Estate) -> dict:
    """What the trust left behind, without ids and times: comparable across runs."""
    oos_state = lab.component("oos-1").snapshot()
    farm = lab.farm("sp-a").snapshot()
    machines = {name: {store: sorted((c["thumbprint"], c["friendly_name"], bool(c["key"]),
                                      tuple(sorted(c["key"]["acl"])) if c["key"] else ())
                                     for c in m["stores"][store]) for store in m["stores"]}
                for name, m in oos_state["machines"].items()}
    restarted = {name: m["iis_started"] >= oos_state["farm"]["settings_written"]
                 for name, m in oos_state["machines"].items()}
    issuers = sorted((i["name"], i["registered_issuer_name"]) for i in farm["trusted_issuers"])
    principals = sorted((p["name_identifier"], tuple(sorted((g["scope"], g["right"], g["app_only"])
                                                             for g in p["permissions"])))
                        for p in farm["app_principals"])
    return {"machines": machines, "restarted": restarted, "s2s": oos_state["farm"]["S2SCertificateName"],
            "issuers": issuers, "principals": principals, "roots": sorted(r["name"] for r in farm["root_authorities"])}


def test_an_officewebapps_cmdlet_is_unknown_until_the_module_is_imported(lab):
    # As on a fresh WinRM session to the server: the OfficeWebApps cmdlets come with Import-Module.
    with RemoteConnections(load_inventory(lab.inventory_path)) as conns:
        session = conns.session("oos-1")
        with pytest.raises(RemoteError) as refused:
            session.invoke("Get-OfficeWebAppsFarm")
        assert refused.value.error_id == "CommandNotFoundException"
        assert "The term 'Get-OfficeWebAppsFarm' is not recognized as the name of a cmdlet" in str(refused.value)
        server = OosServer(session, name="oos-1")
        assert server.shell().loaded == "module" and server.farm_settings().internal_url


def test_self_signed_plan_changes_nothing_first_run_builds_the_trust_second_changes_nothing(lab, tmp_path):
    archive = tmp_path / "records"
    before = lab_state_bytes(lab)
    plan, scraps = run_oos(lab, archive, "--plan")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert scraps["run"]["status"] == "planned" and scraps["changes"] == 0
    assert lab_state_bytes(lab) == before, "a plan must change nothing"

    first, scraps = run_oos(lab, archive)
    assert first.returncode == 0, first.stdout + first.stderr
    steps = {s["id"]: s for s in scraps["steps"]}
    for step_id in ("oos-certificate", "oos-farm", "sharepoint-issuers", "app-permissions", "root-authority"):
        assert steps[step_id]["status"] == "changed", steps[step_id]
    state = end_state(lab)
    assert state["s2s"] == "OOS S2S" and all(state["restarted"].values())
    for machine in state["machines"].values():
        (thumbprint, name, has_key, acl), = machine["My"]
        assert name == "OOS S2S" and has_key and "NT AUTHORITY\\NETWORK SERVICE" in acl
        assert [c[0] for c in machine["Root"]] == [thumbprint]  # self-signed: trusted as a root
    issuers = dict(state["issuers"])
    assert issuers["Office Online Server (SharePoint)"] == OOS_SHAREPOINT_ISSUER
    assert issuers["Office Online Server (SQL Server)"] == OOS_SQL_ISSUER
    assert "Office Online Server S2S" in state["roots"]

    # The proof the lab gives: a token minted by oos-1 with its S2S certificate is accepted,
    # one signed with another key (same claims) is refused.
    assert farm_answer(lab, oos_token(lab)) == (200, "")
    assert farm_answer(lab, oos_token(lab, "oos-2")) == (200, "")
    forged = jwt.encode(jwt.decode(oos_token(lab), options={"verify_signature": False}),
                        rsa.generate_private_key(public_exponent=65537, key_size=2048), algorithm="RS256",
                        headers={"x5t": jwt.get_unverified_header(oos_token(lab))["x5t"]})
    assert farm_answer(lab, forged) == (401, "bad_signature")

    second, scraps = run_oos(lab, archive)
    assert second.returncode == 0, second.stdout + second.stderr
    assert scraps["changes"] == 0 and {s["status"] for s in scraps["steps"]} == {"ok"}
    assert end_state(lab) == state


def test_pfx_run_keeps_its_password_out_of_archive_and_terminal_and_converges(lab, tmp_path):
    archive = tmp_path / "records"
    pfx = _pfx(tmp_path / "oos-s2s.pfx")
    env = {"OOS_PFX_PASSWORD": PFX_PASSWORD}
    assert farm_answer(lab, "x.y.z")[0] == 401
    first, scraps = run_oos(lab, archive, *pfx_args(pfx), env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert {s["id"]: s["status"] for s in scraps["steps"]}["root-authority"] == "skipped"  # CA-issued
    second, scraps = run_oos(lab, archive, *pfx_args(pfx), env=env)
    assert second.returncode == 0 and scraps["changes"] == 0, second.stdout
    assert farm_answer(lab, oos_token(lab)) == (200, "")
    for text in (first.stdout, first.stderr, second.stdout, second.stderr,
                 *(p.read_text(errors="replace") for p in archive.rglob("*") if p.is_file())):
        assert PFX_PASSWORD not in text
    assert "env:OOS_PFX_PASSWORD" in (archive / json.loads((archive / "index.jsonl").read_text()
                                                           .splitlines()[-1])["path"]).read_text()


def test_a_missing_pfx_password_is_invalid_input_before_anything_is_contacted(lab, tmp_path):
    before = lab_state_bytes(lab)
    result, _ = run_oos(lab, tmp_path / "records", *pfx_args(_pfx(tmp_path / "a.pfx")))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "OOS_PFX_PASSWORD" in result.stdout + result.stderr
    assert lab_state_bytes(lab) == before


def _params(**overrides) -> dict:
    params = {"oos_servers": ["oos-1", "oos-2"], "farm": "sp-a", "site_url": SITE, "certificate": "self-signed"}
    params.update(overrides)
    return params


def _preflight_stops(lab: Estate, params: dict) -> str:
    before = lab_state_bytes(lab)
    run = start("oos-trust", mode="apply", inventory=lab.inventory_path, params=params)
    with pytest.raises(StepFailed):
        run.step(oos.PREFLIGHT)
    assert lab_state_bytes(lab) == before, "pre-flight must change nothing"
    result = run.results[-1]
    assert result.hint
    return f"{result.error} {result.hint}"


@pytest.mark.parametrize("case", ["wrong password", "expired", "1024-bit"])
def test_an_unusable_pfx_stops_at_preflight(lab, tmp_path, monkeypatch, case):
    monkeypatch.setenv("OOS_PFX_PASSWORD", "not-the-password" if case == "wrong password" else PFX_PASSWORD)
    pfx = _pfx(tmp_path / "c.pfx", key_size=1024 if case == "1024-bit" else 2048, expired=case == "expired")
    message = _preflight_stops(lab, _params(certificate="pfx", pfx_path=str(pfx), pfx_password="env:OOS_PFX_PASSWORD"))
    expected = {"wrong password": "password", "expired": "expired", "1024-bit": "1024-bit"}[case]
    assert expected in message


def test_a_farm_without_a_user_profile_service_stops_at_preflight(lab):
    lab.farm("sp-a").set_user_profile_service(False)
    assert "User Profile service application" in _preflight_stops(lab, _params())


def test_servers_in_different_forests_stop_at_preflight(lab):
    lab.component("oos-2").join_forest("fabrikam.lab")
    message = _preflight_stops(lab, _params())
    assert "oos-2 in fabrikam.lab" in message and "same forest" in message


def test_oos_2_unreachable_mid_run_fails_with_a_hint_and_a_rerun_converges(lab, tmp_path, monkeypatch):
    monkeypatch.setenv("OOS_PFX_PASSWORD", PFX_PASSWORD)
    pfx = _pfx(tmp_path / "s2s.pfx")
    params = _params(certificate="pfx", pfx_path=str(pfx), pfx_password="env:OOS_PFX_PASSWORD")
    run = start("oos-trust", mode="apply", inventory=lab.inventory_path, params=params)
    run.step(oos.PREFLIGHT)
    lab.server("oos-2").faults.add("drop", count=1000)
    with pytest.raises(StepFailed):
        run.step(oos.IMPORT)
    result = run.results[-1]
    assert result.status.value == "failed" and "oos-2" in (result.error or "") and result.hint
    run.finish()
    lab.server("oos-2").faults.clear()

    archive = tmp_path / "records"
    rerun, scraps = run_oos(lab, archive, *pfx_args(pfx), env={"OOS_PFX_PASSWORD": PFX_PASSWORD})
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    recovered = end_state(lab)

    lab.reset()  # the same change, undisturbed (in process: the notebook is not the point here)
    undisturbed = start("oos-trust", mode="apply", inventory=lab.inventory_path, params=params)
    for each in oos.STEPS:
        undisturbed.step(each)
    undisturbed.finish()
    assert undisturbed.status == "succeeded"
    assert end_state(lab) == recovered
