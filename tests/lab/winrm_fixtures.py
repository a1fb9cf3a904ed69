"""A lab server with a WinRM endpoint and a small test command table, for the WinRM tests.

The table models a fictional product ("Lab") with the behaviours the runbooks rely on:
typed objects, non-terminating "not found" errors, terminating errors, secrets, credentials,
large byte[] parameters, a script template, and a cmdlet that needs a live object.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from runbooklib.lab.http import LabServer
from runbooklib.lab.pki import LabCA
from runbooklib.lab.winrm.api import (
    CommandTable,
    Credential,
    DeserializedObject,
    ErrorSpec,
    Invocation,
    ParamSpec,
    PSObj,
    Secret,
    TerminatingError,
)
from runbooklib.lab.winrm.endpoint import WinRMEndpoint

USERNAME = "LAB\\spadmin"
PASSWORD = "Pa55-w0rd!lab"
TEMPLATE_NAME = "lab/describe-widget"
TEMPLATE_TEXT = (
    f"# runbook-template: {TEMPLATE_NAME} v1\n"
    "param(\n    [Parameter(Mandatory = $true)][string] $Name,\n    [int] $Size = 1\n)\n"
    "$widget = Get-LabWidget -Identity $Name\n"
    "[pscustomobject]@{ Name = $widget.Name; Size = $Size; Description = \"$($widget.Name) x $Size\" }\n"
)


def not_recognized(name: str) -> str:
    """What Windows PowerShell says of a command it does not have (CommandNotFoundException)."""
    return (f"The term '{name}' is not recognized as the name of a cmdlet, function, script file, or operable "
            "program. Check the spelling of the name, or if a path was included, verify that the path is correct "
            "and try again.")


def widget(name: str, count: int = 1, detailed: bool = False) -> PSObj:
    return PSObj(
        type_names=["Lab.Product.Widget", "System.Object"],
        properties={
            "Name": name,
            "Count": count,
            "Detailed": detailed,
            "Id": "4c1e3d52-7a53-4c5c-9d86-2f0f6f7d8a11",
            "Tags": ["a", "b"],
            "Owner": PSObj(["Lab.Product.Owner", "System.Object"], {"Login": "LAB\\owner"}, to_string="LAB\\owner"),
        },
        to_string=f"Widget {name}",
    )


def make_table() -> CommandTable:
    table = CommandTable()

    @table.cmdlet("Get-LabWidget", {
        "Identity": ParamSpec(mandatory=True, position=0, aliases=("Name",)),
        "Count": ParamSpec(),
        "Detailed": ParamSpec(switch=True),
    })
    def get_widget(inv: Invocation) -> None:
        inv.write_output(widget(inv.param("Identity"), inv.param("Count", 1), bool(inv.param("Detailed"))))

    @table.cmdlet("Get-LabThing", {"Identity": ParamSpec(mandatory=True, position=0)})
    def get_thing(inv: Invocation) -> None:
        identity = inv.param("Identity")
        if identity != "present":
            inv.write_error(ErrorSpec(
                message=f"The thing '{identity}' was not found.",
                error_id="ThingNotFound",
                category="ObjectNotFound",
                exception_type="System.ArgumentException",
                target=identity,
            ))
        inv.write_output("after-error")

    @table.cmdlet("Remove-LabThing", {"Identity": ParamSpec(mandatory=True, position=0),
                                      "Confirm": ParamSpec(switch=True)})
    def remove_thing(inv: Invocation) -> None:
        raise TerminatingError(ErrorSpec(
            message=f"Cannot remove '{inv.param('Identity')}': it is in use by the farm.",
            error_id="ThingInUse",
            category="ResourceBusy",
            exception_type="System.InvalidOperationException",
            target=inv.param("Identity"),
        ))

    @table.cmdlet("Test-LabSecret", {"Secret": ParamSpec(), "Credential": ParamSpec()})
    def test_secret(inv: Invocation) -> None:
        secret, credential = inv.param("Secret"), inv.param("Credential")
        inv.write_output({
            "SecretType": type(secret).__name__,
            "Secret": secret.value if isinstance(secret, Secret) else None,
            "CredentialType": type(credential).__name__,
            "UserName": credential.username if isinstance(credential, Credential) else None,
            "Password": credential.password if isinstance(credential, Credential) else None,
        })

    @table.cmdlet("Measure-LabBytes", {"Data": ParamSpec(mandatory=True)})
    def measure(inv: Invocation) -> None:
        data = inv.param("Data")
        inv.write_output(type(data).__name__)
        inv.write_output(len(data))
        inv.write_output(hashlib.sha256(data).hexdigest())

    @table.cmdlet("Write-LabNoise")
    def noise(inv: Invocation) -> None:
        inv.write_warning("The widget cache is stale.")
        inv.write_verbose("Reading widgets.")
        inv.write_output(inv.user)

    @table.cmdlet("Set-LabOwner", {"Widget": ParamSpec(mandatory=True)})
    def set_owner(inv: Invocation) -> None:
        value = inv.param("Widget")
        if isinstance(value, DeserializedObject):
            raise TerminatingError(ErrorSpec(
                message=(
                    "Cannot bind parameter 'Widget'. Cannot convert the \"" + (value.to_string or "") + "\" value "
                    "of type \"" + value.type_names[0] + "\" to type \"Lab.Product.Widget\"."
                ),
                error_id="CannotConvertArgumentNoMessage",
                category="InvalidArgument",
                exception_type="System.Management.Automation.ParameterBindingException",
            ))
        inv.write_output("ok")

    @table.cmdlet("Wait-LabJob", {"Seconds": ParamSpec(mandatory=True)})
    def wait_job(inv: Invocation) -> None:
        deadline = time.monotonic() + float(inv.param("Seconds"))
        while time.monotonic() < deadline and not inv.stopping:
            time.sleep(0.02)
        inv.write_output("finished")

    @table.cmdlet("Get-LabBlob", {"Size": ParamSpec(mandatory=True)})
    def get_blob(inv: Invocation) -> None:
        size = int(inv.param("Size"))
        inv.write_output(bytes(i % 251 for i in range(size)))

    @table.cmdlet("Format-LabInput")
    def format_input(inv: Invocation) -> None:
        for item in inv.input:
            inv.write_output(f"<{item}>")

    @table.template(TEMPLATE_NAME, 1, {"Name": ParamSpec(mandatory=True), "Size": ParamSpec()})
    def describe(inv: Invocation) -> None:
        name, size = inv.param("Name"), inv.param("Size", 1)
        inv.write_output(PSObj(
            ["System.Management.Automation.PSCustomObject", "System.Object"],
            {"Name": name, "Size": size, "Description": f"{name} x {size}"},
        ))

    return table


@dataclass
class WinRMLab:
    server: LabServer
    endpoint: WinRMEndpoint
    ca_bundle: Path

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return f"{self.server.url}/wsman"

    def target(self, name: str = "sp-test", *, username: str = USERNAME) -> "Target":
        return Target(name=name, winrm=self.url, auth="basic", username=username, ca_bundle=self.ca_bundle)


@dataclass
class Target:
    """Shaped like inventory.ServerSpec as far as remote.py needs it."""

    name: str
    winrm: str
    auth: str
    username: str
    ca_bundle: Path | None
    configuration: str = ""  # the default session configuration, as in an inventory without one
    allow_http: bool = False


def start_lab(directory: Path, *, name: str = "sp-test") -> WinRMLab:
    ca = LabCA.open(directory / "ca")
    server = LabServer(name, ca.issue_server_certificate(["127.0.0.1", "localhost"]), cert_dir=directory / "tls")
    endpoint = WinRMEndpoint(server_name=name, commands=make_table(), accounts={USERNAME: PASSWORD})
    endpoint.mount(server)
    server.start()
    return WinRMLab(server, endpoint, ca.bundle_path)


@pytest.fixture(scope="module")
def winrm_lab(tmp_path_factory) -> WinRMLab:
    lab = start_lab(tmp_path_factory.mktemp("winrm"))
    yield lab
    lab.server.stop()


@pytest.fixture(autouse=True)
def _clear_faults(request) -> None:
    yield
    if "winrm_lab" in request.fixturenames:
        request.getfixturevalue("winrm_lab").server.faults.clear()
