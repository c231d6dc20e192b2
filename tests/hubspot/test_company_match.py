"""Company matching by email domain: a contact with no associated company takes the
firmographics of the company whose `domain` is its business email domain, through one
companies search per read batch; free mail and a domain two companies hold never match."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.connector.mapping import load_mapping
from hubspot import HubSpot
from hubspot.crm.objects import SimplePublicObjectInputForCreate

from .conftest import FAST, make_adapter, translate_all


@pytest.fixture(scope="module")
def sim() -> Iterator[HubSpotSimulator]:
    with HubSpotSimulator(contacts=30, seed=11, **FAST) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def people(sim) -> dict[str, str]:
    """Companies in the portal (the token may not write companies), and contacts created
    over the API with no company: one at a company's domain, one at free mail, one at a
    domain two companies hold, one at no known domain."""
    crm = HubSpot(access_token=sim.token, host=sim.base_url).crm

    def company(name: str, domain: str, industry: str) -> str:
        props = {"name": name, "domain": domain, "industry": industry, "country": "Japan"}
        with sim.store.lock:
            return sim.store.create("companies", props, int(time.time() * 1000))["id"]

    def contact(email: str) -> str:
        props = {"email": email, "lastname": email.split("@")[0]}
        return crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties=props)).id

    made = {"company": company("Contoso Labs", "contoso-labs.test", "COMPUTER_SOFTWARE")}
    company("Twin One", "twins.test", "FINANCIAL_SERVICES")
    company("Twin Two", "twins.test", "FINANCIAL_SERVICES")
    made |= {
        "matched": contact("kim@contoso-labs.test"),
        "free_mail": contact("contoso@gmail.com"),
        "ambiguous": contact("lee@twins.test"),
        "unknown": contact("ray@nowhere-known.test"),
    }
    return made


def read(sim: HubSpotSimulator, people: dict[str, str], mapping: dict | None = None) -> dict:
    adapter = make_adapter(sim, mapping)
    wanted = [("contacts", people[k]) for k in ("matched", "free_mail", "ambiguous", "unknown")]
    contacts, errors = translate_all(adapter.read_contacts(wanted))
    assert errors == []
    return {c.id: c for c in contacts}


def test_a_contact_without_company_takes_the_firmographics_of_its_domain(sim, people):
    sim.stats.reset()
    found = read(sim, people)
    matched = found[people["matched"]]
    assert matched.account_id == people["company"]
    assert (matched.company, matched.industry, matched.country) == (
        "Contoso Labs",
        "Computer Software",
        "Japan",
    )
    assert sim.stats.by_endpoint.get("POST /crm/v3/objects/companies/search") == 1


def test_free_mail_ambiguous_and_unknown_domains_are_not_matched(sim, people):
    found = read(sim, people)
    for label in ("free_mail", "ambiguous", "unknown"):
        contact = found[people[label]]
        assert contact.account_id is None and contact.industry is None


def test_turned_off_by_the_mapping(sim, people):
    mapping = load_mapping("hubspot")
    mapping["companies"]["match_domain"] = False
    sim.stats.reset()
    found = read(sim, people, mapping)
    assert found[people["matched"]].account_id is None
    assert found[people["matched"]].industry is None
    assert "POST /crm/v3/objects/companies/search" not in sim.stats.by_endpoint
