"""Which authentication a real target can use from this machine, said before anything is contacted."""

from __future__ import annotations

import builtins

import pytest

from runbooklib.remote import auth_support_problem


def test_credssp_and_ntlm_are_available_out_of_the_box():
    # SharePoint cmdlets need CredSSP for the second hop: it is a dependency, not an option.
    assert auth_support_problem("credssp") is None
    assert auth_support_problem("ntlm") is None
    assert auth_support_problem("basic") is None


def test_kerberos_without_gssapi_names_the_extra_to_install(monkeypatch):
    real_import = builtins.__import__

    def no_gssapi(name, *args, **kwargs):
        if name == "gssapi":
            raise ImportError("No module named 'gssapi'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_gssapi)
    problem = auth_support_problem("kerberos")
    assert problem and "s2s-runbooks[kerberos]" in problem and "credssp" in problem


def test_a_run_against_a_kerberos_target_without_gssapi_exits_2(tmp_path, monkeypatch):
    try:
        import gssapi  # noqa: F401
        pytest.skip("this machine has GSSAPI")
    except ImportError:
        pass
    from conftest import ROOT, runbook

    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        "servers:\n  sp-a:\n    role: sharepoint\n    winrm: https://sp.contoso.com:5986/wsman\n    auth: kerberos\n"
        "    username: CONTOSO\\\\admin\n    password: env:NOPE_NOT_SET\n"
        "tenants:\n  contoso:\n    tenant_id: 6c3f3a8e-1f0e-4d3c-9a53-3a2b1c0d9e8f\n    domain: contoso.com\n"
        "    credential: {type: azure_cli}\n"
    )
    result = runbook("run", "sharepoint-hybrid", "--inventory", str(inventory), "--params",
                     str(ROOT / "parameters" / "lab" / "sharepoint-hybrid.yaml"), "-p", "tenant=contoso",
                     "--archive", str(tmp_path / "records"))
    assert result.returncode == 2, result.stderr
    assert "servers.sp-a.auth" in result.stderr and "kerberos" in result.stderr.lower()
