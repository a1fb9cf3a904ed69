"""What counts as a departure from an approved plan (runbooklib.approved_plan), rule by rule."""

from __future__ import annotations

from runbooklib.approved_plan import ApprovedPlan, PlannedStep, departure

PLAN = ApprovedPlan("plan-run", {
    "keys": PlannedStep("planned", ("add key 4DE270… (valid to 2041-11-28); keep 2 existing key(s)",)),
    "issuers": PlannedStep("planned", ("create the issuer 'OOS' from certificate 4DE270…", "grant it FullControl")),
    "tenant": PlannedStep("ok"),
}, minted=("4DE270…",))


def test_a_change_the_plan_did_not_list_departs_and_names_both_sides():
    found = departure("keys", ["add key 4DE270… (valid to 2041-11-28); keep 1 existing key(s)"], PLAN, ["9F00AB…"])
    assert found is not None
    assert found.plan == "add key 4DE270… (valid to 2041-11-28); keep 2 existing key(s)"
    assert found.now == "add key 4DE270… (valid to 2041-11-28); keep 1 existing key(s)"
    assert str(found).startswith("keys departs from the approved plan (run plan-run)")


def test_a_value_each_run_mints_afresh_is_no_departure_but_one_read_from_the_estate_is():
    assert departure("issuers", ["create the issuer 'OOS' from certificate 9F00AB…"], PLAN, ["9F00AB…"]) is None
    # The same text with a thumbprint this run did not make: another certificate than approved.
    assert departure("issuers", ["create the issuer 'OOS' from certificate 9F00AB…"], PLAN, []) is not None


def test_needing_fewer_changes_than_approved_is_no_departure():
    assert departure("issuers", ["grant it FullControl"], PLAN, []) is None
    assert departure("keys", [], PLAN, []) is None


def test_a_change_where_the_plan_found_nothing_to_do_or_in_a_step_it_did_not_have_departs():
    assert departure("tenant", ["set the tenant id"], PLAN, []).plan == "nothing to change (ok)"
    assert departure("spn", ["add SPN x"], PLAN, []).plan == "nothing (the step is not in the plan)"
