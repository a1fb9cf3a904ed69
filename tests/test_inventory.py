"""The inventory and parameter files: valid ones load with absolute paths, every malformed one
fails with an InputError that names the file and the field."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, field_validator

from runbooklib.errors import InputError
from runbooklib.inventory import (
    InsecureTransportWarning,
    Inventory,
    apply_overrides,
    load_inventory,
    load_parameters,
)

DATA = Path(__file__).parent / "data" / "inventories"


class ExampleParameters(BaseModel):
    """A scenario parameter model in the shape scenario modules use."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["plan", "apply"] = "plan"
    farm: str
    tenant: str
    retries: int = 3
    sts_thumbprint: str | None = None

    @field_validator("sts_thumbprint")
    @classmethod
    def _thumbprint(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[0-9A-Fa-f]{40}", value):
            raise ValueError("expected a certificate thumbprint: 40 hex digits")
        return value.upper() if value else value


def _expectations(path: Path) -> dict[str, str]:
    """The `# key: value` header every malformed fixture carries."""
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        m = re.match(r"# (field|says|hides): (.*)$", line)
        if m:
            found[m.group(1)] = m.group(2)
    return found


BAD_INVENTORIES = sorted(DATA.glob("bad-*.yaml"))
BAD_PARAMETERS = sorted(DATA.glob("params-*.yaml"))


def test_there_are_at_least_twenty_malformed_files() -> None:
    assert len(BAD_INVENTORIES) + len(BAD_PARAMETERS) >= 20


def _check(err: InputError, path: Path) -> None:
    expect = _expectations(path)
    text = str(err)
    assert str(path.name) in (err.source or ""), text
    if expect["field"] != "-":
        assert err.field == expect["field"], text
        assert expect["field"] in text
    assert expect["says"] in text, text
    if "hides" in expect:
        assert expect["hides"] not in text
    # Plain words: no pydantic vocabulary leaks to the administrator.
    for jargon in ("model_type", "dict_type", "pydantic", "Input should be", "Value error", "For further"):
        assert jargon not in text, text


@pytest.mark.parametrize("path", BAD_INVENTORIES, ids=lambda p: p.stem)
def test_malformed_inventory_names_the_field(path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureTransportWarning)
        with pytest.raises(InputError) as info:
            load_inventory(path)
    assert info.value.exit_code == 2
    _check(info.value, path)


@pytest.mark.parametrize("path", BAD_PARAMETERS, ids=lambda p: p.stem)
def test_malformed_parameters_name_the_field(path: Path) -> None:
    with pytest.raises(InputError) as info:
        load_parameters(path, ExampleParameters, source=str(path))
    _check(info.value, path)


def test_yaml_syntax_error_gives_the_line() -> None:
    path = DATA / "bad-yaml-syntax.yaml"
    with pytest.raises(InputError) as info:
        load_inventory(path)
    broken = next(i for i, line in enumerate(path.read_text().splitlines(), 1) if "basic: [" in line)
    assert f"line {broken}" in str(info.value)


def test_valid_inventory_loads_with_absolute_paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # relative paths must not depend on the working directory
    inv = load_inventory(DATA / "valid.yaml")
    assert isinstance(inv, Inventory)
    assert inv.path == (DATA / "valid.yaml").resolve()
    sp = inv.server("sp-a")
    assert sp.name == "sp-a" and sp.role == "sharepoint" and sp.auth == "basic"
    assert sp.username == "LAB\\spadmin"
    assert sp.ca_bundle == (DATA / "ca.pem").resolve() and sp.ca_bundle.is_absolute()
    assert sp.password == f"file:{(DATA / 'secrets' / 'sp-a').resolve()}"
    assert sp.web_url == "https://127.0.0.1:59861" and sp.allow_http is False
    assert inv.server("oos-1").password == "env:OOS_ADMIN_PASSWORD"
    assert inv.server("exchange").password is None
    assert [s.name for s in inv.servers_with_role("oos")] == ["oos-1"]

    contoso = inv.tenant("contoso")
    assert contoso.tenant_id == "6c3f2b1a-0d4e-4f5a-9b8c-7d6e5f4a3b2c"
    assert contoso.domain == "contoso.lab"
    assert contoso.graph_url == "https://127.0.0.1:59870/v1.0"
    assert contoso.credential.type == "client_secret"
    assert contoso.credential.secret == f"file:{(DATA / 'secrets' / 'app').resolve()}"

    fabrikam = inv.tenant("fabrikam")
    assert fabrikam.authority == "https://login.microsoftonline.com"
    assert fabrikam.graph_url == "https://graph.microsoft.com/v1.0"
    assert fabrikam.acs_metadata_url == (
        "https://accounts.accesscontrol.windows.net/11111111-2222-3333-4444-555555555555/metadata/json/1"
    )
    assert fabrikam.credential.certificate == str((DATA / "ca.pem").resolve())
    assert fabrikam.credential.certificate_path == (DATA / "ca.pem").resolve()
    assert fabrikam.credential.certificate_password == "keyring:s2s-runbooks/fabrikam-app"


def test_loading_does_not_resolve_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    # The secret files named in valid.yaml do not exist and OOS_ADMIN_PASSWORD is unset:
    # references are checked for syntax only and resolved when used.
    monkeypatch.delenv("OOS_ADMIN_PASSWORD", raising=False)
    assert not (DATA / "secrets").exists()
    load_inventory(DATA / "valid.yaml")


def test_unknown_server_or_tenant_names_the_known_ones() -> None:
    inv = load_inventory(DATA / "valid.yaml")
    with pytest.raises(InputError) as info:
        inv.server("sp-b")
    assert info.value.field == "servers.sp-b"
    assert "did you mean 'sp-a'" in str(info.value) and "oos-1" in str(info.value)
    with pytest.raises(InputError) as info:
        inv.tenant("contso")
    assert info.value.field == "tenants.contso" and "did you mean 'contoso'" in str(info.value)


def test_http_with_allow_http_loads_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.warns(InsecureTransportWarning, match=r"servers\.sp-a\.winrm uses http://"):
        inv = load_inventory(DATA / "valid-http.yaml")
    assert inv.server("sp-a").winrm == "http://127.0.0.1:5985/wsman"
    assert inv.server("sp-a").allow_http is True
    assert any("not encrypted" in r.getMessage() for r in caplog.records)


def test_missing_inventory_file(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        load_inventory(tmp_path / "nope.yaml")
    assert "does not exist" in str(info.value) and "nope.yaml" in str(info.value)


def test_an_inventory_without_tenants_is_fine(tmp_path: Path) -> None:
    (tmp_path / "inv.yaml").write_text("servers: {}\ntenants:\n")
    inv = load_inventory(tmp_path / "inv.yaml")
    assert inv.servers == {} and inv.tenants == {}


def test_parameters_from_dict_and_file(tmp_path: Path) -> None:
    params = load_parameters({"farm": "sp-a", "tenant": "contoso"}, ExampleParameters, source="cell")
    assert params.mode == "plan" and params.retries == 3
    (tmp_path / "p.yaml").write_text("# all defaults but the targets\n")
    with pytest.raises(InputError) as info:
        load_parameters(tmp_path / "p.yaml", ExampleParameters, source="p.yaml")
    assert "farm" in str(info.value) and "required" in str(info.value)
    (tmp_path / "p.yaml").write_text("farm: sp-a\ntenant: contoso\nmode: apply\n")
    assert load_parameters(tmp_path / "p.yaml", ExampleParameters, source="p.yaml").mode == "apply"


def test_several_problems_are_all_listed() -> None:
    with pytest.raises(InputError) as info:
        load_parameters({"mode": "x", "retries": "y"}, ExampleParameters, source="cell")
    text = str(info.value)
    assert info.value.field == "mode"
    for field in ("retries", "farm", "tenant"):
        assert f"also {field}:" in text


def test_overrides_set_typed_values_by_dotted_key() -> None:
    base = {"mode": "apply", "tenant": {"name": "contoso"}}
    out = apply_overrides(base, ["mode=plan", "retries=5", "force=true", "tenant.region=eu", "x.y.z=1.5",
                                 "note=a: b: c", "empty="])
    assert out == {"mode": "plan", "retries": 5, "force": True,
                   "tenant": {"name": "contoso", "region": "eu"}, "x": {"y": {"z": 1.5}},
                   "note": "a: b: c", "empty": ""}
    assert base == {"mode": "apply", "tenant": {"name": "contoso"}}  # not modified in place


@pytest.mark.parametrize("bad", ["mode", "=plan", "a..b=1", "mode.sub=1"])
def test_bad_overrides_are_input_errors(bad: str) -> None:
    with pytest.raises(InputError) as info:
        apply_overrides({"mode": "apply"}, [bad])
    assert "-p" in str(info.value)


def test_public_names_are_sorted_and_exist() -> None:
    import runbooklib.inventory as module

    assert module.__all__ == sorted(module.__all__)
    assert all(hasattr(module, name) for name in module.__all__)
