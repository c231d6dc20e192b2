"""A person's record deleted in Salesforce: the run that learns it is gone (a full read that
no longer meets it, or a read by id that finds it gone) decides the person's records left
without it, in that run: its activity no longer counts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from crm_qualify.adapters.salesforce.simulator import SalesforceSimulator
from crm_qualify.connector.settings import CrmSettings, Settings
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine
from crm_qualify.connector.sync.state import StateStore

from tests.salesforce.conftest import make_adapter

CONFIG = Settings(crm=CrmSettings(adapter="salesforce"))
DEMO_AND_QUOTE = ("Demo request form", "Pricing quote request")


@pytest.fixture
def sim() -> Iterator[SalesforceSimulator]:
    with SalesforceSimulator(records=40, seed=5) as simulator:
        yield simulator


def one_person_twice(
    sim: SalesforceSimulator, store: StateStore, engaged: str = "newer"
) -> tuple[str, str]:
    """Two Leads of one person, one (`engaged`: the newer or the older, which is the
    survivor) with two email replies and a demo and a quote asked for, synced once: (the
    engaged, the other). The other's score counts what the engaged one did, and the person
    is an MQL on both."""
    earlier, now = datetime.now(UTC) - timedelta(days=30), datetime.now(UTC)
    asked = [c for c in sim.org.live("Campaign") if c["Name"] in DEMO_AND_QUOTE]
    person = {"FirstName": "Ines", "LastName": "Varga", "Email": "ines@initech.example",
              "Company": "Initech", "Title": "CTO", "Status": "Open - Not Contacted"}  # fmt: skip
    with sim.org.lock:
        older = sim.org.insert("Lead", person, earlier)["Id"]
        newer = sim.org.insert("Lead", person, earlier + timedelta(days=1))["Id"]
        records = (newer, older) if engaged == "newer" else (older, newer)
        for day in (2, 3):
            sim.org.insert("Task", {"WhoId": records[0], "Subject": "Re: your proposal",
                                    "TaskSubtype": "Email", "Status": "Completed"},
                           earlier + timedelta(days=day))  # fmt: skip
        for campaign in asked:
            sim.org.insert("CampaignMember", {"CampaignId": campaign["Id"], "LeadId": records[0],
                                              "Status": "Responded", "HasResponded": True,
                                              "FirstRespondedDate": now.date().isoformat()},
                           now - timedelta(hours=1))  # fmt: skip
    assert SyncEngine(make_adapter(sim), CONFIG, store).run(RunOptions()).status == "ok"
    other = sim.org.records["Lead"][records[1]]
    assert "email reply x2" in other["CRMQ_Reasons__c"] and other["CRMQ_Stage__c"] == "MQL"
    return records


def check_left(sim: SalesforceSimulator, left: str, before: float) -> None:
    """The Lead left is decided on its own facts: lower, nothing of the deleted one's in its
    reasons, still an MQL (a stage never moves back)."""
    lead = sim.org.records["Lead"][left]
    reasons = lead["CRMQ_Reasons__c"] or ""
    assert "email reply" not in reasons and "demo request" not in reasons, reasons
    assert lead["CRMQ_Score__c"] < before
    assert lead["CRMQ_Stage__c"] == "MQL"


@pytest.mark.parametrize("engaged", ["newer", "older"])
def test_a_full_read_decides_what_is_left_of_a_person_without_its_deleted_record(
    sim, store, engaged
):
    """The engaged Lead is deleted, the survivor (older) or not."""
    gone, left = one_person_twice(sim, store, engaged)
    before = sim.org.records["Lead"][left]["CRMQ_Score__c"]
    with sim.org.lock:
        sim.org.delete("Lead", gone, datetime.now(UTC))

    dry = SyncEngine(make_adapter(sim), CONFIG, store).run(RunOptions(full=True, dry_run=True))
    full = SyncEngine(make_adapter(sim), CONFIG, store).run(RunOptions(full=True))

    assert full.status == "ok", full.errors
    assert full.counts["records_gone"] == 1
    check_left(sim, left, before)
    assert dry.counts["records_gone"] == 1, "the dry run is the real run minus the writes"
    assert dry.counts["fields_planned"] == full.counts["fields_written"] > 0


def test_a_read_by_id_that_finds_a_record_gone_decides_the_persons_other_record(sim, store):
    """`sync --once --contact Lead/<id>` of the deleted Lead: the Lead left is decided in
    that run, though it was not asked for."""
    gone, left = one_person_twice(sim, store)
    before = sim.org.records["Lead"][left]["CRMQ_Score__c"]
    with sim.org.lock:
        sim.org.delete("Lead", gone, datetime.now(UTC))

    by_id = [("Lead", gone)]
    dry = SyncEngine(make_adapter(sim), CONFIG, store).run(
        RunOptions(contact_ids=by_id, dry_run=True)
    )
    run = SyncEngine(make_adapter(sim), CONFIG, store).run(RunOptions(contact_ids=by_id))

    assert run.status == "ok", run.errors
    assert run.counts["records_gone"] == 1
    assert dry.counts["records_gone"] == 1, "the dry run is the real run minus the writes"
    check_left(sim, left, before)


@pytest.mark.parametrize("rules", [{}, {"thresholds": {"mql": 50}}], ids=["same", "changed"])
def test_a_dry_full_read_finds_a_record_it_cannot_translate_needing_attention_not_gone(
    sim, store, rules
):
    """A Lead whose Task carries a date out of range fails its read: the real run keeps it
    (needing attention) and so must the dry run before it, which found it 'no longer in the
    CRM' (it only missed it among the records it translated); and with the rules changed, it
    planned that Lead's new rules version from the mirror, where the real run leaves it to
    its retry."""
    assert SyncEngine(make_adapter(sim), CONFIG, store).run(RunOptions()).status == "ok"
    config = CONFIG.model_copy(update={"rules": Settings(rules=rules).rules})
    lead = next(iter(sim.org.live("Lead")))["Id"]
    with sim.org.lock:
        sim.org.insert("Task", {"WhoId": lead, "Subject": "Call", "TaskSubtype": "Call",
                                "Status": "Completed", "ActivityDate": "9999-12-31"},
                       datetime.now(UTC))  # fmt: skip

    planned: set[str] = set()
    dry = SyncEngine(make_adapter(sim), config, store)
    dry.on_batch = lambda report: planned.update(u.contact_id for u in report.updates)
    dry = dry.run(RunOptions(full=True, dry_run=True))
    full = SyncEngine(make_adapter(sim), config, store).run(RunOptions(full=True))

    assert lead not in planned
    assert dry.counts["fields_planned"] == full.counts["fields_written"]
    assert any(f"Lead/{lead}" in error for error in full.errors), full.errors
    assert full.counts["records_gone"] == 0
    assert full.counts["records_needing_attention"] == 1
    assert dry.counts["records_gone"] == 0, "the dry run is the real run minus the writes"
    assert dry.counts["records_needing_attention"] == 1
    assert ("Lead", lead) in store.mirror.keys("default")
