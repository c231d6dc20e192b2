"""A company size the contact's own property holds but that cannot be read is that record's
error, naming the record and the property (docs/admin.md): never replaced by its company's
size ([companies] fill_missing is for an empty property) nor cut to the digits that fit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.adapters.hubspot.simulator.schema import definition
from crm_qualify.adapters.hubspot.simulator.values import now_ms
from crm_qualify.connector.mapping import load_mapping
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine

from tests.hubspot.conftest import FAST, make_adapter

SIZE = "employees_text"


@pytest.fixture
def sim() -> Iterator[HubSpotSimulator]:
    """A small portal: each test syncs it in full."""
    with HubSpotSimulator(contacts=30, seed=3, custom_properties=True, **FAST) as simulator:
        yield simulator


def contact_at(sim: HubSpotSimulator, company: str, email: str, size: str) -> str:
    with sim.store.lock:
        props = {"email": email, "firstname": "Ola", "lifecyclestage": "lead", SIZE: size}
        contact = sim.store.create("contacts", props, now_ms())["id"]
        sim.store.associate("contacts", contact, "companies", company, (1, 279))
    return contact


def test_a_size_that_is_no_number_fails_its_record_naming_the_property(sim, store, settings):
    sim.store.definitions["contacts"][SIZE] = definition(
        SIZE, "Employees (text)", "string", "text", "contactinformation", hubspot_defined=False
    )
    mapping = load_mapping("hubspot")
    mapping["objects"]["contacts"]["profile"]["employees"] = SIZE
    with sim.store.lock:
        company = sim.store.create("companies", {"name": "Tailspin", "numberofemployees": "47"}, 0)
    words = contact_at(sim, company["id"], "ola.words@tailspin-toys.com", "lots")
    huge = contact_at(sim, company["id"], "ola.huge@tailspin-toys.com", "9" * 22)
    fine = contact_at(sim, company["id"], "ola.fine@tailspin-toys.com", "1,000-5,000")

    run = SyncEngine(make_adapter(sim, mapping), settings, store).run(RunOptions())

    failed = {r.contact_id: r for r in store.attention(settings.crm.instance)}
    assert set(failed) & {words, huge, fine} == {words, huge}, run.errors
    assert all(failed[c].field == SIZE and SIZE in failed[c].reason for c in (words, huge))
    assert run.status != "failed", "the run goes on"
    mirrored = {c.id: c for chunk in store.mirrored_contacts("default") for c in chunk}
    assert words not in mirrored and huge not in mirrored
    assert mirrored[fine].employees == 1000
