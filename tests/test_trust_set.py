"""The farm-to-farm trust set: which one-way trusts the parameters imply, for partners of every role.

The Exchange and Skype legs are covered here against an in-memory inventory; the SharePoint legs
and the lab Exchange's leg also run end to end in test_farm_to_farm.py.
"""

from __future__ import annotations

import pytest

from runbooklib.errors import InputError
from runbooklib.fan_out import fan_out
from runbooklib.inventory import Inventory
from runbooklib.scenarios import SCENARIOS
from runbooklib.steps import Check, Proof, StepEngine, step
from runbooklib.targets import run_targets
from runbooklib.wellknown import EXCHANGE_PRINCIPAL_ID, SKYPE_PRINCIPAL_ID

FARM_TO_FARM = SCENARIOS["farm-to-farm"]


def _inventory(**servers: tuple[str, str | None]) -> Inventory:
    """Servers by name → (role, web_url)."""
    entries = {}
    for name, (role, web_url) in servers.items():
        entry = {"role": role, "winrm": f"https://{name}.contoso.com:5986/wsman", "auth": "kerberos",
                 "username": "CONTOSO\\admin"}
        if web_url:
            entry["web_url"] = web_url
        entries[name] = entry
    return Inventory.model_validate({"servers": entries})


ESTATE = _inventory(**{"sp-a": ("sharepoint", "https://sharepoint.contoso.com"),
                       "sp-b": ("sharepoint", "https://collab.contoso.com"),
                       "exch": ("exchange", "https://mail.contoso.com"),
                       "pool": ("skype", "https://pool.contoso.com/"),
                       "nameless": ("exchange", None)})
PARAMS = {"farms": ["sp-a", "sp-b"], "exchange_servers": ["exch"], "skype_pools": ["pool"],
          "accepts": {"sp-a": ["sp-b", "exch", "pool"], "sp-b": ["sp-a"]},
          "web_applications": {"sp-a": "https://sharepoint.contoso.com", "sp-b": "https://collab.contoso.com"}}


def _validated(**changes):
    return FARM_TO_FARM.validate({**PARAMS, **changes}, ESTATE, source="params.yaml")


def test_each_accepted_partner_is_one_incoming_trust_with_its_roles_metadata_endpoint():
    module = FARM_TO_FARM.load()
    trusts = list(module.trusts_of(_validated(), ESTATE))
    assert [(t.receiver, t.sender) for t in trusts] == [("sp-a", "sp-b"), ("sp-a", "exch"), ("sp-a", "pool"),
                                                        ("sp-b", "sp-a")]
    by_sender = {t.sender: t for t in trusts}
    assert by_sender["sp-b"].metadata_url == "https://collab.contoso.com/_layouts/15/metadata/json/1"
    assert by_sender["sp-b"].root_certificate_url.endswith("/_layouts/15/metadata/json/1/rootcertificate")
    exchange = by_sender["exch"]
    assert exchange.metadata_url == "https://mail.contoso.com/autodiscover/metadata/json/1"
    assert exchange.kind.principal_id == EXCHANGE_PRINCIPAL_ID and exchange.root_certificate_url is None
    assert (exchange.kind.scope, exchange.kind.right, exchange.kind.app_only) == ("SiteSubscription", "FullControl", True)
    assert by_sender["pool"].metadata_url == "https://pool.contoso.com/metadata/json/1"
    assert by_sender["pool"].kind.principal_id == SKYPE_PRINCIPAL_ID


def test_the_table_shows_each_one_way_trust_outgoing_and_incoming():
    table = str(FARM_TO_FARM.load().trusts_of(_validated(), ESTATE))
    header, *rows = table.splitlines()
    assert header.split("  ")[0:1] == ["one-way trust"] and "outgoing from" in header and "incoming to" in header
    assert rows[1].split()[:6] == ["sp-a", "←", "exch", "exch", "(Exchange", "server)"]
    assert len(rows) == 4


def test_every_farm_and_partner_is_a_declared_target():
    targets = run_targets(_validated(), ESTATE)
    assert [s.name for s in targets.servers] == ["sp-a", "sp-b", "exch", "pool"]


@pytest.mark.parametrize("changes, field, words", [
    ({"accepts": {"sp-a": ["sp-a"]}}, "accepts.sp-a[0]", "its own requests"),
    ({"accepts": {"sp-a": ["sp-c"]}}, "accepts.sp-a[0]", "not listed among farms"),
    ({"accepts": {"exch": ["sp-a"]}}, "accepts.exch", "not one of farms"),
    ({"web_applications": {"sp-a": "https://sharepoint.contoso.com"}}, "web_applications.sp-b", "no web application"),
    ({"exchange_servers": ["exch", "nameless"], "accepts": {"sp-a": ["nameless"]}}, "accepts.sp-a[0]", "no web_url"),
    ({"accepts": {"sp-a": []}}, "accepts", "no trust to set up"),
])
def test_a_trust_set_that_cannot_work_is_refused_before_anything_is_contacted(changes, field, words):
    with pytest.raises(InputError) as caught:
        _validated(**changes)
    assert caught.value.field == field and words in caught.value.message


def test_a_metadata_url_override_replaces_the_address_from_the_inventory():
    params = _validated(exchange_servers=["exch", "nameless"], accepts={"sp-a": ["nameless"]},
                        metadata_urls={"nameless": "https://autodiscover.contoso.com/autodiscover/metadata/json/1/"})
    (trust,) = FARM_TO_FARM.load().trusts_of(params, ESTATE)
    assert trust.metadata_url == "https://autodiscover.contoso.com/autodiscover/metadata/json/1"


# -- one step over several targets ---------------------------------------------------------


def _part(name: str, log: list[str], *, changes=(), failure=None, skip=None):
    return step(name, name, check=lambda ctx: Check(found=f"{name} found", wanted=f"{name} wanted",
                                                    changes=list(changes), failure=failure, skip=skip),
                apply=lambda ctx, c: log.append(name) or [f"{name} done"],
                verify=lambda ctx, c: Proof(ok=True, text=f"{name} proven"))


class _Ctx:
    mode = "apply"

    def warn(self, message: str) -> None:
        pass


def test_fanned_out_step_shows_a_line_per_target_and_changes_only_those_that_need_it():
    log: list[str] = []
    fanned = fan_out("many", "Many", wanted="-", nothing="none", parts=lambda ctx: [
        ("a", _part("a", log, changes=["make a"])), ("b", _part("b", log)), ("c", _part("c", log, skip="n/a"))])
    result = StepEngine(_Ctx(), mode="apply").run(fanned)
    assert result.status.value == "changed" and log == ["a"]
    assert result.changes == ["a: a done"]
    assert result.found.splitlines() == ["a: a found", "b: b found", "c: c found"]
    assert result.proof.splitlines() == ["a: a proven", "b: b proven", "c: n/a"]
    assert "a: a found<br>b: b found" in result._repr_html_()


def test_one_target_that_cannot_go_on_stops_the_step_before_any_target_changes():
    log: list[str] = []
    fanned = fan_out("many", "Many", wanted="-", nothing="none", parts=lambda ctx: [
        ("a", _part("a", log, changes=["make a"])), ("b", _part("b", log, failure="b is broken"))])
    result = StepEngine(_Ctx(), mode="apply").run(fanned)
    assert result.status.value == "failed" and result.error == "check: b: b is broken" and log == []
