"""Incremental reads against the simulator: engagement that does not touch the person's record
is still seen, the sweep's position moves only once the sweep is done, and our own tasks are
not mistaken for engagement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crm_qualify.adapters.salesforce.reader import Cursor

from tests.salesforce.conftest import make_adapter


def run(adapter, cursor, until):
    """Every id read and the last cursor, as the engine would save it."""
    ids, last = [], cursor
    for batch in adapter.read_changed(cursor, until=until):
        ids += [raw.translate().id for raw in batch.raw]
        last = batch.cursor or last
    return ids, last


def open_lead(sim) -> str:
    return sorted(r["Id"] for r in sim.org.records["Lead"].values() if not r["IsConverted"])[0]


def a_contact(sim) -> str:
    return sorted(sim.org.records["Contact"])[0]


def synced(sim):
    """An adapter with lookback 0 and the cursor of a complete first run a minute ago."""
    adapter = make_adapter(sim, lookback_seconds=0)
    first = datetime.now(UTC) - timedelta(minutes=1)
    ids, cursor = run(adapter, None, first)
    assert ids
    return adapter, cursor


def test_a_campaign_response_alone_brings_its_lead_back(sim):
    adapter, cursor = synced(sim)
    lead = open_lead(sim)
    stamp_before = sim.org.records["Lead"][lead]["SystemModstamp"]
    campaign = sorted(sim.org.records["Campaign"])[0]
    sim.org.insert(
        "CampaignMember",
        {"CampaignId": campaign, "LeadId": lead, "Status": "Responded", "HasResponded": True},
        datetime.now(UTC) - timedelta(seconds=5),
    )
    assert sim.org.records["Lead"][lead]["SystemModstamp"] == stamp_before, "person untouched"
    ids, _ = run(adapter, cursor, datetime.now(UTC))
    assert ids == [lead]


def test_a_won_opportunity_brings_its_contact_back(sim):
    adapter, cursor = synced(sim)
    contact = a_contact(sim)
    now = datetime.now(UTC) - timedelta(seconds=5)
    opportunity = sim.org.insert(
        "Opportunity",
        {"Name": "Renewal", "StageName": "Prospecting", "IsClosed": False, "IsWon": False},
        datetime.now(UTC) - timedelta(days=3),
    )
    sim.org.insert(
        "OpportunityContactRole",
        {"OpportunityId": opportunity["Id"], "ContactId": contact},
        datetime.now(UTC) - timedelta(days=3),
    )
    sim.org.update(
        "Opportunity", opportunity["Id"], {"StageName": "Closed Won", "IsClosed": True,
                                           "IsWon": True}, now,
    )  # fmt: skip
    ids, _ = run(adapter, cursor, datetime.now(UTC))
    assert ids == [contact]


def test_our_open_tasks_are_not_engagement_but_a_closed_one_is(sim):
    adapter, cursor = synced(sim)
    lead = open_lead(sim)
    key = "CRMQ_Task_Key__c"
    task = sim.org.insert(
        "Task",
        {"WhoId": lead, "Subject": "Call", "Status": "Not Started", "IsClosed": False, key: "k1"},
        datetime.now(UTC) - timedelta(seconds=5),
    )
    ids, _ = run(adapter, cursor, datetime.now(UTC))
    assert ids == []
    sim.org.update("Task", task["Id"], {"Status": "Completed", "IsClosed": True}, datetime.now(UTC))
    ids, _ = run(adapter, cursor, datetime.now(UTC) + timedelta(seconds=1))
    assert ids == [lead]


def test_a_person_changed_and_engaged_is_read_once(sim):
    adapter, cursor = synced(sim)
    lead = open_lead(sim)
    at = datetime.now(UTC) - timedelta(seconds=5)
    sim.org.insert("Event", {"WhoId": lead, "Subject": "Demo"}, at)
    sim.org.update("Lead", lead, {"Title": "CTO"}, at)
    ids, _ = run(adapter, cursor, datetime.now(UTC))
    assert ids == [lead]


def test_the_sweep_position_moves_only_after_the_sweep(sim):
    adapter, cursor = synced(sim)
    swept = Cursor.load(cursor).activity
    lead = open_lead(sim)
    sim.org.insert("Event", {"WhoId": lead, "Subject": "Demo"}, datetime.now(UTC))
    until = datetime.now(UTC) + timedelta(seconds=1)
    cursors = [b.cursor for b in adapter.read_changed(cursor, until=until)]
    states = [Cursor.load(c) for c in cursors]
    assert all(s.activity == swept for s in states[:-1]), "interrupted: the sweep runs again"
    assert states[-1].activity != swept
    assert all(p[0] == states[-1].activity for p in states[-1].positions.values())


def test_cursor_round_trip_and_the_earlier_format():
    cursor = Cursor({"Lead": ("2026-11-22T10:00:00.000+0000", "00Q1")}, "2026-11-22T10:00:00Z")
    assert Cursor.load(cursor.dump()) == cursor
    earlier = Cursor.load('{"Lead": ["2026-11-21T10:00:00Z", "00Q9"]}')
    assert earlier.positions == {"Lead": ("2026-11-21T10:00:00Z", "00Q9")}
    assert earlier.sweep_from() == "2026-11-21T10:00:00Z"
    assert Cursor.load("not json") == Cursor() and Cursor().sweep_from() is None
