"""A record read again while our write to it is still in flight.

A person's Lead is read and the person decided, which writes its Contact too (from the
mirror); later in the same run the Contact's own change is read. What that read says of the
owned fields predates the write in flight, so the Contact is not decided from it: it waits,
and is decided from the mirror once the write has landed. The writes gathering for a bulk
call are not sent early for it (they used to be: a drain that, at 100,000 Salesforce people,
turned one Bulk job of tasks into 13 short collections).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crm_qualify.connector.model import Contact, EngagementEvent, EventType
from crm_qualify.connector.settings import Settings
from crm_qualify.connector.sync.concurrency import Limits, Traffic
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine
from crm_qualify.connector.sync.state import StateStore

from tests.memory_adapter import MemoryAdapter

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)
BULK = Limits(in_flight=2, write_batch=200, task_batch=200, bulk_batch=1000, bulk_from=500)


def _person_record(cid: str, object_type: str, created_days_ago: int) -> Contact:
    return Contact(
        id=cid,
        object_type=object_type,
        created_at=NOW - timedelta(days=created_days_ago),
        updated_at=NOW - timedelta(days=1),
        email="kim@acme.example",
        first_name="Kim",
        last_name="Lee",
        company="Acme",
        title="CTO",
    )


def _other(number: int) -> Contact:
    return Contact(
        id=f"F{number}",
        created_at=NOW - timedelta(days=40),
        updated_at=NOW - timedelta(days=1),
        email=f"person{number}@firm{number}.example",
    )


def _touch(adapter: MemoryAdapter, cid: str, kind: EventType) -> None:
    """An outside change: a new event, and the CRM's modification stamp moves."""
    record = adapter.records[cid]
    record.events.append(EngagementEvent(type=kind, at=NOW - timedelta(hours=1)))
    record.updated_at = adapter._tick()


def test_a_record_read_again_while_its_write_flies_waits_without_sending_the_gathered_writes(
    tmp_path,
):
    contacts = [_person_record("L1", "Lead", 60), _person_record("C1", "Contact", 30)]
    adapter = MemoryAdapter([*contacts, *map(_other, range(4))], batch_size=1)
    adapter.traffic = Traffic(BULK)
    store = StateStore(tmp_path / "state.sqlite")
    first = SyncEngine(adapter, Settings(), store).run(RunOptions(now=NOW))
    assert first.status == "ok"

    _touch(adapter, "L1", EventType.WEBINAR_ATTENDED)  # read first: decides C1 with it
    for number in range(4):
        _touch(adapter, f"F{number}", EventType.EMAIL_OPEN)
    _touch(adapter, "C1", EventType.DEMO_REQUEST)  # read last, while that write flies
    writes_before = adapter.calls.get("write_updates", 0)
    sent_when_read: list[int] = []

    def on_read(batch: list[Contact]) -> None:
        if any(contact.id == "C1" for contact in batch) and not sent_when_read:
            sent_when_read.append(adapter.calls.get("write_updates", 0) - writes_before)

    later = NOW + timedelta(minutes=15)
    run = SyncEngine(adapter, Settings(), store, on_read=on_read).run(RunOptions(now=later))
    assert run.status == "ok" and not run.errors
    assert sent_when_read == [0], "reading C1 again sent the writes gathering for a bulk call"

    # C1's demo request reached the whole person, on both records, with one call task
    stages = {adapter.records[cid].owned.get("stage") for cid in ("L1", "C1")}
    temperatures = {adapter.records[cid].owned.get("temperature") for cid in ("L1", "C1")}
    assert temperatures == {"hot"} and len(stages) == 1
    calls = [t.key for t in adapter.tasks.values() if t.kind == "hot_call"]
    assert len(calls) == len(set(calls)) == 1

    # what landed is what deciding everyone afresh gives: nothing left to write
    full = SyncEngine(adapter, Settings(), store).run(RunOptions(now=later, full=True))
    assert full.status == "ok"
    assert full.counts["fields_written"] == 0 and full.counts["tasks_created"] == 0
    for key, mirrored in store.mirror.by_keys(
        "default", [("Lead", "L1"), ("Contact", "C1")]
    ).items():
        crm = adapter.records[key[1]].owned
        assert {k: crm.get(k) for k in mirrored.contact.owned} == mirrored.contact.owned
    store.close()
