"""A person whose survivor's write is still in flight when another of its records is read.

The person's decision plans its tasks on the survivor only. While the survivor's own write
flies it cannot take them, so the whole person waits for it: had the other record been
written alone, its stage would have crossed into MQL without the person's hand-off, and the
survivor's later decision would have found the person already an MQL (a hand-off lost for
good; a killed sync, rerun with both records read afresh, planned it, which is how the kill
loop found it).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crm_qualify.connector.model import Contact, EngagementEvent, EventType, Stage
from crm_qualify.connector.settings import Settings
from crm_qualify.connector.sync.concurrency import Limits, Traffic
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine
from crm_qualify.connector.sync.state import StateStore

from tests.memory_adapter import MemoryAdapter

NOW = datetime(2026, 3, 3, 9, tzinfo=UTC)


def person_record(cid: str, object_type: str, days: int, events: list[EngagementEvent]) -> Contact:
    """One person's records (the same email, name and company): the oldest (days=0) is the
    survivor."""
    return Contact(
        id=cid,
        object_type=object_type,
        created_at=NOW - timedelta(days=30 - days),
        updated_at=NOW - timedelta(hours=5 - days),
        email="kim@acme.com",
        first_name="Kim",
        last_name="Lee",
        company="Acme",
        events=events,
    )


def test_a_person_becoming_mql_while_its_survivors_write_flies_gets_its_handoff(tmp_path):
    demo = EngagementEvent(type=EventType.DEMO_REQUEST, at=NOW - timedelta(hours=3))
    webinar = EngagementEvent(type=EventType.WEBINAR_ATTENDED, at=NOW - timedelta(hours=2))
    # the survivor (oldest) alone is a lead; with its duplicate's webinar the person is an MQL
    survivor, twin = (
        person_record("L1", "Lead", 0, [demo]),
        person_record("C1", "Contact", 1, [webinar]),
    )
    adapter = MemoryAdapter([survivor, twin], batch_size=1)
    # L1's write waits for the next batch's, so it is in flight while C1's batch is decided
    adapter.traffic = Traffic(Limits(in_flight=2, write_batch=100, task_batch=100))
    store = StateStore(tmp_path / "state.sqlite")
    summary = SyncEngine(adapter, Settings(), store).run(RunOptions(now=NOW))
    assert summary.status == "ok"
    assert {adapter.records[cid].stage for cid in ("L1", "C1")} == {Stage.MQL}
    handoffs = [task for task in adapter.tasks.values() if task.kind == "mql_handoff"]
    assert [(t.key, t.contact_id) for t in handoffs] == [("crmq:Lead:L1:mql_handoff", "L1")]
    rerun = SyncEngine(adapter, Settings(), store).run(RunOptions(now=NOW))
    assert rerun.counts["fields_written"] == 0 and rerun.counts["tasks_created"] == 0
    store.close()
