"""Lead-to-account matching on a full read through Bulk API 2.0: every Account and open
Opportunity comes from two query jobs, staged once per read, and each Lead is linked exactly
as the REST path's per-page Account queries link it (same Account, same open deals, same
firmographics; a guess stays unlinked on both paths), without one `GET query Account`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from crm_qualify.adapters.salesforce import SalesforceAdapter
from crm_qualify.adapters.salesforce.simulator import SalesforceSimulator
from crm_qualify.connector.mapping import load_mapping
from crm_qualify.connector.model import Contact

from tests.salesforce.conftest import make_adapter, settings_for

THRESHOLD = 50


@dataclass
class Read:
    leads: dict[str, Contact]
    cursor: str | None


class Clock:
    """The simulator's and the adapter's time: the adapter's sleep moves it on."""

    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="module")
def org() -> Iterator[tuple[SalesforceSimulator, dict[str, str], Clock]]:
    clock = Clock()
    with SalesforceSimulator(records=160, seed=33) as sim:
        labels = _cases(sim)
        sim.bulk.clock, sim.bulk.delay = (lambda: clock.now), 3.0
        sim.page_size = 40  # the first REST page is smaller than the object: Bulk reads on
        yield sim, labels, clock


def _cases(sim: SalesforceSimulator) -> dict[str, str]:
    """Accounts and the Leads that test the rule: by domain (an open and a closed deal), by
    normalised name, domain before name, two Accounts on one domain, two Accounts of one
    normalised name, free mail (even where an Account's website is the free-mail host)."""
    at = datetime.now(UTC)
    with sim.org.lock:

        def account(name: str, website: str | None, **more: Any) -> str:
            return sim.org.insert("Account", {"Name": name, "Website": website, **more}, at)["Id"]

        def deal(account_id: str, closed: bool, amount: int) -> None:
            sim.org.insert("Opportunity", {
                "Name": "deal", "AccountId": account_id, "StageName": "Closed Lost" if closed
                else "Proposal", "IsClosed": closed, "IsWon": False, "CloseDate": "2027-01-01",
                "Amount": amount, "Type": "Subscription",
            }, at)  # fmt: skip

        def lead(email: str, company: str) -> str:
            fields = {"LastName": "Case", "Email": email, "Company": company,
                      "Status": "Open - Not Contacted", "IsConverted": False}  # fmt: skip
            return sim.org.insert("Lead", fields, at)["Id"]

        northwind = account("Northwind Traders, Inc.", "https://www.Northwind.test/",
                            Industry="Logistics", NumberOfEmployees=800,
                            BillingCountry="Germany")  # fmt: skip
        deal(northwind, closed=False, amount=40_000)
        deal(northwind, closed=True, amount=9_000)
        account("Fabrikam", None, Industry="Manufacturing", BillingCountry="France")
        account("Twin Alpha", "twin.test")
        account("Twin Beta", "http://twin.test/contact")
        account("Contoso Ltd", None)
        account("Contoso, Inc.", "contoso-group.test")
        account("Mail Fans", "https://gmail.com")
        return {
            "Northwind": northwind,
            "by_domain": lead("ana@northwind.test", "NW"),
            "by_name": lead("bo@elsewhere.test", "FABRIKAM SA"),
            "domain_first": lead("cy@northwind.test", "Fabrikam"),
            "twin_domain": lead("di@twin.test", "Twin Alpha"),
            "twin_name": lead("ed@other.test", "Contoso"),
            "free_mail": lead("northwind@gmail.com", "Freelance"),
        }


def _leads(adapter: SalesforceAdapter, cursor: str | None = None, known: Any = None) -> Read:
    """The Leads a read gives, and the cursor it ends with."""
    batches = list(adapter.read_changed(cursor, until=datetime.now(UTC), known=known))
    people = (raw.translate() for batch in batches for raw in batch.raw)
    return Read({c.id: c for c in people if c.object_type == "Lead"}, batches[-1].cursor)


def _bulk(sim: SalesforceSimulator, clock: Clock, mapping: dict | None = None):
    settings = settings_for(sim, bulk_threshold=THRESHOLD)
    adapter = SalesforceAdapter.from_config(settings, mapping or load_mapping("salesforce"))
    adapter.bulk_api.sleep, adapter.bulk_api.clock = clock.sleep, (lambda: clock.now)
    return adapter


@pytest.fixture(scope="module")
def reads(org) -> dict[str, tuple[SalesforceAdapter, Read]]:
    sim, _, clock = org
    bulk, rest = _bulk(sim, clock), make_adapter(sim, bulk_threshold=0)
    return {"bulk": (bulk, _leads(bulk)), "rest": (rest, _leads(rest))}


def _link(lead: Contact) -> tuple[Any, ...]:
    deals = sorted((d.id, d.status, d.amount, d.recurring, d.created_at) for d in lead.deals)
    return lead.account_id, deals, lead.industry, lead.employees, lead.country


def test_bulk_and_rest_link_every_lead_alike(reads):
    bulk, rest = reads["bulk"][1].leads, reads["rest"][1].leads
    assert bulk.keys() == rest.keys() and len(bulk) > THRESHOLD
    assert {i: _link(c) for i, c in bulk.items()} == {i: _link(c) for i, c in rest.items()}
    linked = [c for c in bulk.values() if c.account_id]
    assert len(linked) > THRESHOLD
    assert any(c.deals for c in linked)


def test_a_bulk_full_read_asks_no_account_query(reads):
    bulk, rest = reads["bulk"][0].usage().requests, reads["rest"][0].usage().requests
    assert "GET query Account" not in bulk
    assert bulk["POST jobs/query"] == 2 + 5 + 2  # people, child sets, Accounts + open deals
    assert rest["GET query Account"] >= 1  # per batch of Leads handed to the core


def test_the_rule_holds_on_both_paths(org, reads):
    _, labels, _ = org
    for path in ("bulk", "rest"):
        leads = reads[path][1].leads
        matched = leads[labels["by_domain"]]
        assert matched.account_id == labels["Northwind"], path
        assert (matched.industry, matched.employees, matched.country) == (
            "Logistics", 800, "Germany"
        )  # fmt: skip
        assert [(d.status, d.amount, d.recurring) for d in matched.deals] == [
            ("open", 40_000.0, True)
        ], path
        assert leads[labels["domain_first"]].account_id == labels["Northwind"], path
        by_name = leads[labels["by_name"]]
        assert by_name.account_id is not None and by_name.industry == "Manufacturing", path
        for guess in ("twin_domain", "twin_name", "free_mail"):
            lead = leads[labels[guess]]
            assert (lead.account_id, lead.deals) == (None, []), (path, guess)


def test_turned_off_no_account_job_is_made(org):
    sim, labels, clock = org
    mapping = load_mapping("salesforce")
    mapping["accounts"]["match_leads"] = False
    adapter = _bulk(sim, clock, mapping)
    assert _leads(adapter).leads[labels["by_domain"]].account_id is None
    assert adapter.usage().requests["POST jobs/query"] == 2 + 5


def test_an_incremental_read_after_it_matches_through_rest(org, reads):
    sim, labels, _ = org
    adapter, full = reads["bulk"]
    jobs = adapter.usage().requests["POST jobs/query"]
    sim.touch(labels["by_domain"], {"Title": "CEO"})
    changed = _leads(adapter, full.cursor, known=lambda hits, by_others=False: set())
    assert changed.leads[labels["by_domain"]].account_id == labels["Northwind"]
    assert adapter.usage().requests["GET query Account"] == 1
    assert adapter.usage().requests["POST jobs/query"] == jobs
