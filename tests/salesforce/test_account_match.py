"""Lead-to-account matching: a Lead whose business email domain or company matches an
existing Account takes the Account's fit fields it lacks and its open opportunities (an
active cycle), with one Account query per page of Leads read; free mail never matches."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from crm_qualify.adapters.salesforce import SalesforceAdapter
from crm_qualify.adapters.salesforce import adapter as adapter_module
from crm_qualify.adapters.salesforce.accounts import queried, website_domain
from crm_qualify.adapters.salesforce.simulator import SalesforceSimulator
from crm_qualify.adapters.salesforce.staging import Staging
from crm_qualify.connector.decision.decide import decide
from crm_qualify.connector.decision.rules import Rules
from crm_qualify.connector.mapping import load_mapping
from crm_qualify.connector.model import Stage

from .conftest import make_adapter, settings_for


@pytest.fixture(scope="module")
def sim() -> Iterator[SalesforceSimulator]:
    with SalesforceSimulator(records=20, seed=9) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def people(sim) -> dict[str, str]:
    """Two Accounts (one with an open and a closed opportunity) and Leads that match them by
    domain, by company name, by free mail only, and not at all."""
    at = datetime.now(UTC)
    with sim.org.lock:
        northwind = sim.org.insert("Account", {"Name": "Northwind Traders, Inc.",
                                               "Website": "https://www.northwind-traders.test/",
                                               "Industry": "Logistics", "NumberOfEmployees": 800,
                                               "BillingCountry": "Germany"}, at)  # fmt: skip
        sim.org.insert("Opportunity", {"Name": "Northwind renewal", "AccountId": northwind["Id"],
                                       "StageName": "Prospecting", "CloseDate": "2027-03-01",
                                       "IsClosed": False, "IsWon": False, "Amount": 40000},
                       at)  # fmt: skip
        sim.org.insert("Opportunity", {"Name": "Northwind pilot", "AccountId": northwind["Id"],
                                       "StageName": "Closed Lost", "IsClosed": True, "IsWon": False,
                                       "CloseDate": "2026-01-01"}, at)  # fmt: skip
        sim.org.insert(
            "Account",
            {
                "Name": "Fabrikam",
                "Website": "fabrikam.test",
                "Industry": "Manufacturing",
                "BillingCountry": "France",
            },
            at,
        )

        def lead(last: str, email: str, company: str, **more: object) -> str:
            fields = {"LastName": last, "Email": email, "Company": company,
                      "Status": "Open - Not Contacted", "IsConverted": False, **more}  # fmt: skip
            return sim.org.insert("Lead", fields, at)["Id"]

        return {
            "by_domain": lead("Domain", "ana@northwind-traders.test", "NW"),
            "by_name": lead("Name", "bo@elsewhere.test", "FABRIKAM SA", Country="Spain"),
            "free_mail": lead("Free", "northwind@gmail.com", "Freelance"),
            "no_match": lead("None", "cy@unknown-co.test", "Unknown Co"),
        }


@pytest.fixture(scope="module")
def read(sim, people):
    batches = list(make_adapter(sim).read_contacts([("Lead", i) for i in people.values()]))
    return {raw.key[1]: raw.translate() for b in batches for raw in b.raw}


def test_a_lead_matched_by_domain_takes_the_account_fit_and_open_deal(people, read):
    lead = read[people["by_domain"]]
    assert lead.account_id is not None and lead.account_id.startswith("001")
    assert (lead.industry, lead.employees, lead.country) == ("Logistics", 800, "Germany")
    assert [(d.status, d.amount) for d in lead.deals] == [("open", 40000.0)]
    decision = decide(lead, Rules(), datetime.now(UTC))
    assert decision.stage is Stage.OPPORTUNITY


def test_a_lead_matched_by_normalised_company_keeps_its_own_values(people, read):
    lead = read[people["by_name"]]
    assert lead.account_id is not None
    assert (lead.industry, lead.country) == ("Manufacturing", "Spain")
    assert lead.deals == []


def test_free_mail_and_unmatched_leads_are_not_linked(people, read):
    for label in ("free_mail", "no_match"):
        lead = read[people[label]]
        assert lead.account_id is None and lead.industry is None and lead.deals == []


def test_one_account_query_per_page_of_leads(sim, people):
    adapter = make_adapter(sim)
    asked: list[str] = []
    query = adapter._query

    def counting(what: str, soql: str, deleted: bool = False):  # noqa: ANN202
        asked.append(what)
        return query(what, soql, deleted)

    adapter._query = counting  # type: ignore[method-assign]
    batches = list(adapter.read_contacts([("Lead", i) for i in people.values()]))
    assert sum(len(b.raw) for b in batches) == 4
    assert asked.count("GET query Account") == 1
    assert asked.count("GET query Lead") == 1


def test_a_read_asks_each_domain_and_company_once(sim, people):
    """Pages of one read share their look-ups: what an earlier page asked is not asked again,
    and its Accounts are still found."""
    adapter = make_adapter(sim)
    asked: list[str] = []

    def pages(what: str, soql: str):  # noqa: ANN202
        asked.append(soql)
        return adapter._query(what, soql)

    staging = Staging()
    candidates = queried(pages, adapter.accounts, staging)
    first = candidates(["northwind-traders.test"], ["FABRIKAM SA"])
    again = candidates(["northwind-traders.test", "unknown-co.test"], ["FABRIKAM SA"])
    assert len(asked) == 2
    assert "unknown-co.test" in asked[1]
    assert "northwind" not in asked[1] and "fabrikam" not in asked[1].lower()
    names = {"Northwind Traders, Inc.", "Fabrikam"}
    assert {a.row["Name"] for a in first} == {a.row["Name"] for a in again} == names
    staged = candidates(["northwind-traders.test"], [])  # from the staging: its open deal too
    assert [(a.row["Name"], a.row["Industry"]) for a in staged] == [
        ("Northwind Traders, Inc.", "Logistics")
    ]
    assert [d["Amount"] for d in staged[0].opportunities] == [40000]
    assert len(asked) == 2
    staging.close()


def test_a_read_looks_a_company_up_once_across_its_batches(sim, people, monkeypatch):
    """Two Leads of one company in different batches of a read: both linked, one look-up."""
    with sim.org.lock:
        fields = {"LastName": "Again", "Email": "eve@northwind-traders.test", "Company": "NW",
                  "Status": "Open - Not Contacted", "IsConverted": False}  # fmt: skip
        again = sim.org.insert("Lead", fields, datetime.now(UTC))["Id"]
    monkeypatch.setattr(adapter_module, "BATCH", 2)
    adapter = make_adapter(sim)
    asked: list[str] = []
    query = adapter._query

    def counting(what: str, soql: str, deleted: bool = False):  # noqa: ANN202
        if what == "GET query Account":
            asked.append(soql)
        return query(what, soql, deleted)

    adapter._query = counting  # type: ignore[method-assign]
    batches = list(adapter.read_changed(None, until=datetime.now(UTC)))
    batch_of = {raw.key[1]: n for n, b in enumerate(batches) for raw in b.raw if raw.key}
    leads = {i: raw.translate() for b in batches for raw in b.raw if (i := raw.key and raw.key[1])}
    assert batch_of[people["by_domain"]] != batch_of[again]
    assert leads[again].account_id is not None
    assert leads[again].account_id == leads[people["by_domain"]].account_id
    assert leads[again].industry == "Logistics" and len(leads[again].deals) == 1
    assert sum("northwind-traders.test" in soql for soql in asked) == 1


def test_turned_off_by_the_mapping(sim, people):
    mapping = load_mapping("salesforce")
    mapping["accounts"]["match_leads"] = False
    adapter = SalesforceAdapter.from_config(settings_for(sim), mapping)
    batches = list(adapter.read_contacts([("Lead", people["by_domain"])]))
    assert [raw.translate().account_id for b in batches for raw in b.raw] == [None]


@pytest.mark.parametrize(
    ("website", "domain"),
    [("https://www.Acme.com/about", "acme.com"), ("acme.com", "acme.com"),
     ("http://shop.acme.com:8080", "shop.acme.com"), ("not a site", None), ("", None)],
)  # fmt: skip
def test_website_domain(website, domain):
    assert website_domain(website) == domain
