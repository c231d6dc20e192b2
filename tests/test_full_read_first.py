"""A full read decides a person once all of its records are known.

A first sync reads every record, in batches the CRM orders as it likes (Salesforce's Bulk
results come unordered, and Leads are read before Contacts). A record decided as soon as its
batch came in was decided alone whenever its duplicate sat in a later batch: the stage it
wrote only moves forward, so the person kept a stage its full facts do not give, and the
tasks planned for the lone record could differ from the person's. A full read therefore
reads and indexes everyone first and decides from the mirror after: the outcome cannot depend
on where the batch boundaries fall.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from crm_qualify.connector.decision.decide import decide as decide_contact
from crm_qualify.connector.model import Contact, EngagementEvent, EventType
from crm_qualify.connector.settings import Settings
from crm_qualify.connector.sync import engine
from crm_qualify.connector.sync.concurrency import Limits, Traffic
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine
from crm_qualify.connector.sync.people import Person
from crm_qualify.connector.sync.person_decisions import Member, decide_persons
from crm_qualify.connector.sync.state import StateStore

from tests.memory_adapter import MemoryAdapter

NOW = datetime(2026, 3, 3, 9, tzinfo=UTC)


def _event(kind: EventType, hours: int) -> EngagementEvent:
    return EngagementEvent(type=kind, at=NOW - timedelta(hours=hours))


def _record(
    cid: str,
    object_type: str,
    *,
    created_days_ago: int,
    read_order: int,
    email: str,
    events: list[EngagementEvent],
    **facts: object,
) -> Contact:
    return Contact(
        id=cid,
        object_type=object_type,
        created_at=NOW - timedelta(days=created_days_ago),
        updated_at=NOW - timedelta(hours=10) + timedelta(minutes=read_order),
        email=email,
        first_name="Kim",
        last_name=cid,
        company="Acme",
        events=events,
        **facts,
    )


def _org() -> list[Contact]:
    """Persons whose records are read far apart; the survivor (oldest) is read last."""
    demo, webinar = _event(EventType.DEMO_REQUEST, 3), _event(EventType.WEBINAR_ATTENDED, 2)
    pricing = _event(EventType.PRICING_PAGE_VIEW, 5)
    return [
        # read first, hot alone; its older twin on a free-mail address is read last
        _record(
            "L1",
            "Lead",
            created_days_ago=3,
            read_order=0,
            email="kim@acme.com",
            events=[demo, pricing],
            title="VP Sales",
            employees=400,
        ),
        _record(
            "C1",
            "Contact",
            created_days_ago=90,
            read_order=9,
            email="kim@acme.com",
            events=[],
            title="Student",
            employees=3,
        ),
        # the lone record is a lead; with its twin's webinar the person is an MQL
        _record(
            "L2", "Lead", created_days_ago=2, read_order=1, email="ann@globex.com", events=[demo]
        ),
        _record(
            "C2",
            "Contact",
            created_days_ago=60,
            read_order=8,
            email="ann@globex.com",
            events=[webinar, pricing],
        ),
        _record(
            "L3",
            "Lead",
            created_days_ago=10,
            read_order=2,
            email="solo@initech.com",
            events=[webinar],
        ),
        # the survivor is the Lead, which the mirror holds after the Contact (key order)
        _record(
            "L4",
            "Lead",
            created_days_ago=120,
            read_order=3,
            email="bo@umbrella.com",
            events=[pricing],
        ),
        _record(
            "C4",
            "Contact",
            created_days_ago=1,
            read_order=4,
            email="bo@umbrella.com",
            events=[demo, webinar],
        ),
    ]


def _sync(batch_size: int, tmp_path, name: str) -> MemoryAdapter:
    adapter = MemoryAdapter(_org(), batch_size=batch_size)
    adapter.traffic = Traffic(Limits(in_flight=2, write_batch=100, task_batch=100))
    store = StateStore(tmp_path / f"{name}.sqlite")
    try:
        summary = SyncEngine(adapter, Settings(), store).run(RunOptions(now=NOW))
        assert summary.status == "ok", summary.errors
        rerun = SyncEngine(adapter, Settings(), store).run(RunOptions(now=NOW))
        assert rerun.counts["fields_written"] == 0 and rerun.counts["tasks_created"] == 0
    finally:
        store.close()
    return adapter


def _outcome(adapter: MemoryAdapter) -> tuple[dict, list]:
    fields = {cid: (c.stage, dict(c.owned)) for cid, c in sorted(adapter.records.items())}
    tasks = sorted((t.key, t.contact_id) for t in adapter.tasks.values())
    return fields, tasks


@pytest.mark.parametrize(("batch_size", "chunk"), [(1, 2000), (2, 2000), (1, 1), (2, 3)])
def test_a_first_full_read_decides_the_same_whatever_the_batches(
    tmp_path, monkeypatch, batch_size, chunk
):
    together = _outcome(_sync(100, tmp_path, "together"))
    # phase two's chunks split persons too: a person decided whole is not decided again
    # while its records' writes fly
    monkeypatch.setattr(engine, "MIRROR_CHUNK", chunk)
    apart = _outcome(_sync(batch_size, tmp_path, f"apart{batch_size}"))
    assert apart == together
    fields, tasks = together
    assert all(fields[f"L{n}"][0] == fields[f"C{n}"][0] for n in (1, 2, 4))
    # one set of tasks per person, on its survivor
    assert {cid for _, cid in tasks} <= {"C1", "C2", "L3", "L4"}
    assert len({key for key, _ in tasks}) == len(tasks)


def test_a_person_decided_in_this_pass_is_not_decided_again_in_a_later_chunk():
    lead, contact = ("Lead", "L4"), ("Contact", "C4")
    records = {
        key: _record(
            key[1], key[0], created_days_ago=1, read_order=0, email="bo@umbrella.com", events=[]
        )
        for key in (lead, contact)
    }
    person = Person("Lead:L4", (lead, contact), lead)
    calls: list[str] = []

    def decide(merged: Contact, hot_since: datetime | None):
        calls.append(merged.id)
        return decide_contact(merged, Settings().rules, NOW, hot_since=hot_since)

    def load(keys):
        return {key: Member(records[key], None, True) for key in keys}

    decided: set[str] = set()
    first = list(decide_persons([records[contact]], {contact: person}, {}, load, decide, decided))
    assert sorted(c.id for c, _ in first) == ["C4", "L4"] and decided == {"Lead:L4"}
    # the chunk holding the survivor comes next: the person is decided already
    again = list(decide_persons([records[lead]], {lead: person}, {}, load, decide, decided))
    assert again == [] and len(calls) == 1
    # a new pass (or the pipelined read, which passes no set) decides it afresh
    fresh = list(decide_persons([records[lead]], {lead: person}, {}, load, decide, set()))
    assert sorted(c.id for c, _ in fresh) == ["C4", "L4"] and len(calls) == 2
