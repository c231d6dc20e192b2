"""A lead converted between runs leaves the mirror as soon as a read learns of it, over real
TLS: the read of its Contact brings the conversion (`ConvertedContactId`), the adapter hands
the lead on as gone, like a record merged away, and the person goes on as the Contact.
Nothing is planned for the lead again: Salesforce would refuse every write to it
(CANNOT_UPDATE_CONVERTED_LEAD)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from crm_qualify.adapters.salesforce.simulator import SalesforceSimulator
from crm_qualify.connector.settings import CrmSettings, Settings
from crm_qualify.connector.sync.engine import BatchReport, RunOptions, SyncEngine
from crm_qualify.connector.sync.state import StateStore

from tests.salesforce.conftest import make_adapter

LATER = datetime.now(UTC) + timedelta(days=20)
"""When the runs after the conversions decide: the leads' scores have decayed, so a lead
still mirrored would be planned a write."""


@pytest.fixture
def sim() -> Iterator[SalesforceSimulator]:
    with SalesforceSimulator(records=300, seed=5) as simulator:
        yield simulator


def settings() -> Settings:
    return Settings(crm=CrmSettings(adapter="salesforce"))


def convert_qualified(sim: SalesforceSimulator, store: StateStore) -> list[str]:
    """A first sync, then a salesperson converts the leads it made MQL or SQL (half of them
    with a new opportunity); returns their ids."""
    assert SyncEngine(make_adapter(sim), settings(), store).run(RunOptions()).status == "ok"
    qualified = sorted(
        i
        for i, lead in sim.org.records["Lead"].items()
        if not lead["IsConverted"] and lead.get("CRMQ_Stage__c") in ("MQL", "SQL")
    )
    assert len(qualified) >= 11
    converted = qualified[:11]
    for n, lead in enumerate(converted):
        sim.convert_lead(lead, opportunity=n % 2 == 0)
    return converted


def mirrored(store: StateStore) -> set[tuple[str, str]]:
    return {(c.object_type, c.id) for chunk in store.mirrored_contacts("default") for c in chunk}


def test_the_read_that_learns_of_a_conversion_drops_the_lead_from_the_mirror(sim, store):
    converted = convert_qualified(sim, store)
    assert {("Lead", lead) for lead in converted} <= mirrored(store)

    run = SyncEngine(make_adapter(sim), settings(), store).run(RunOptions())

    assert run.status == "ok", run.errors
    assert run.counts["records_gone"] == len(converted)
    assert not {("Lead", lead) for lead in converted} & mirrored(store)
    contacts = {sim.org.records["Lead"][lead]["ConvertedContactId"] for lead in converted}
    assert {("Contact", contact) for contact in contacts} <= mirrored(store)


def test_an_incremental_read_hands_the_converted_leads_on_as_gone(sim, store):
    converted = convert_qualified(sim, store)
    cursor = store.get_cursor("default", "contacts")
    batches = list(make_adapter(sim).read_changed(cursor, until=datetime.now(UTC)))
    gone = [e for b in batches for e in b.errors]
    assert {("Lead", lead) for lead in converted} <= {e.key for e in gone}
    assert all(e.gone and e.field == "IsConverted" for e in gone)
    assert len({e.key for e in gone}) == len(gone), "each conversion said once"
    read = {raw.key for b in batches for raw in b.raw}
    contacts = {sim.org.records["Lead"][lead]["ConvertedContactId"] for lead in converted}
    assert {("Contact", contact) for contact in contacts} <= read


def test_nothing_is_planned_for_a_converted_lead_dry_or_real(sim, store):
    """The lead was decided with its contact in the batch that read the contact (refused,
    stored `failed`) and listed by the dry run: it leaves the identity index first."""
    converted = set(convert_qualified(sim, store))
    planned: list[str] = []

    def on_batch(report: BatchReport) -> None:
        planned.extend(u.contact_id for u in report.updates if u.contact_id in converted)
        planned.extend(t.contact_id for t in report.tasks if t.contact_id in converted)

    dry = SyncEngine(make_adapter(sim), settings(), store, on_batch=on_batch)
    assert dry.run(RunOptions(dry_run=True, now=LATER)).status == "ok"
    assert planned == [], "the dry run lists no write to a converted lead"

    run = SyncEngine(make_adapter(sim), settings(), store, on_batch=on_batch).run(
        RunOptions(now=LATER)
    )

    assert run.status == "ok", run.errors
    assert planned == []
    failed = store._conn.execute(
        "SELECT contact_id, field FROM field_writes WHERE status = 'failed'"
    ).fetchall()
    assert failed == []
