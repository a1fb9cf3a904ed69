"""The runbooks' Exchange client (runbooklib/exchange.py) against the lab's Exchange, reached as the
inventory says: NTLM to ``/PowerShell``, the ``Microsoft.Exchange`` session configuration, cmdlets only."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes

from estate_fixtures import clean_estate, estate, lab_inventory  # noqa: F401 - fixtures
from runbooklib.errors import RemoteError
from runbooklib.exchange import APPLICATION_TYPES, ExchangeServer
from runbooklib.lab.sharepoint.web import METADATA_PATH as SP_METADATA
from runbooklib.remote import RemoteConnections

SHAREPOINT = APPLICATION_TYPES["SharePoint"]


@pytest.fixture
def exchange(clean_estate, lab_inventory):
    with RemoteConnections(lab_inventory) as connections:
        yield ExchangeServer(connections.session("exchange"), name="exchange")


def test_auth_config_names_the_certificate_exchange_signs_with(clean_estate, exchange):
    config = exchange.auth_config()
    certificate = clean_estate.component("exchange").auth_key_pair().certificate
    assert config.current_thumbprint == certificate.fingerprint(hashes.SHA1()).hex().upper()
    assert (config.service_name, config.realm, config.previous_thumbprint) == (
        "00000002-0000-0ff1-ce00-000000000000", "", "")


def test_a_partner_application_is_made_once_and_found_again_by_its_metadata_url(clean_estate, exchange):
    url = clean_estate.server("sp-a").url + SP_METADATA
    assert exchange.partner_application_for(url) is None
    assert exchange.user(SHAREPOINT.account) is None
    account = exchange.new_application_account(SHAREPOINT.account, "contoso.lab")
    assert exchange.user(SHAREPOINT.account) == account == "contoso.lab/Users/SharePointEnterprise-ApplicationAccount"
    missing = exchange.missing_roles(account, SHAREPOINT.roles)
    assert missing == list(SHAREPOINT.roles)
    for role in missing:
        exchange.assign_role(role, account)
    assert exchange.missing_roles(account, SHAREPOINT.roles) == []

    made = exchange.new_partner_application("SharePointEnterprise-sp-a", url, linked_account=account,
                                            accept_security_identifier_information=True)
    farm = clean_estate.farm("sp-a")
    assert made.issuer == farm.name_identifier.lower() and made.enabled and made.linked_account == account
    # Found again whatever the URL's case or trailing slash: a re-run changes nothing.
    assert exchange.partner_application_for(url.upper() + "/") == made
    exchange.set_partner_application(made.name, enabled=False)
    assert exchange.partner_application_for(url).enabled is False


def test_a_missing_linked_account_is_exchanges_own_error(clean_estate, exchange):
    url = clean_estate.server("sp-a").url + SP_METADATA
    with pytest.raises(RemoteError) as failure:
        exchange.new_partner_application("x", url, linked_account="nobody", accept_security_identifier_information=False)
    assert failure.value.reason == ("The operation couldn't be performed because object 'nobody' couldn't be found "
                                    "on 'DC01.contoso.lab'.")
    assert exchange.partner_application_for(url) is None


def test_oauth_test_reports_the_refusal_of_a_farm_that_does_not_trust_exchange(exchange):
    verdict = exchange.test_oauth("https://collab.contoso.lab/_api/web", mailbox="Administrator")
    assert not verdict.passed and verdict.result == "Error"
    assert "(401) Unauthorized" in verdict.detail
