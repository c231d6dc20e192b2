"""A record whose write the CRM refused is planned, sent and counted once in the run.

A record may be decided a second time in a run: it waited for its own write while its person
was decided (read phase), or its person's other record met it in a later chunk of the mirror
phase. Decided again from the mirror, which holds only what landed, a record whose write was
refused planned the very same changes again: they were counted twice, sent twice, refused
twice and reported twice, and the real run's planned counts no longer matched the dry run's
(a tester's Salesforce run with a reasons field too short for its text: 341 stages planned
for 337 contacts read, 56 write errors for 52 records). The dry run, which cannot know of
refusals, diffs a second decision against what it planned (`_as_planned`); so does the real
run, for what it planned and did not land.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from crm_qualify.connector.model import EngagementEvent, EventType
from crm_qualify.connector.settings import Settings
from crm_qualify.connector.sync import engine
from crm_qualify.connector.sync.concurrency import Limits, Traffic
from crm_qualify.connector.sync.engine import RunOptions, RunSummary, SyncEngine
from crm_qualify.connector.sync.state import StateStore

from tests.memory_adapter import MemoryAdapter
from tests.test_person_in_flight import NOW
from tests.test_person_in_flight import person_record as _record

PLANNED = ("fields_planned", "stages_moving", "temperatures_moving", "tasks_planned")


def _planned(summary: RunSummary) -> dict[str, int]:
    return {name: summary.counts[name] for name in PLANNED}


def _dry_then_real(adapter: MemoryAdapter, store: StateStore, now: datetime):
    dry = SyncEngine(adapter, Settings(), store).run(RunOptions(now=now, dry_run=True))
    real = SyncEngine(adapter, Settings(), store).run(RunOptions(now=now))
    return dry, real


def _assert_refused_once(dry: RunSummary, real: RunSummary, label: str) -> None:
    assert real.status == "partial"
    assert _planned(real) == _planned(dry), "the dry run cannot know of the refusal"
    assert real.counts["write_errors"] == 1
    assert real.counts["records_needing_attention"] == 1
    assert [error.split(":")[0] for error in real.errors] == [label]


@pytest.mark.parametrize("refused", ["L1", "C1"])
def test_a_record_decided_again_after_its_write_was_refused_is_not_planned_again(tmp_path, refused):
    """Read phase: both records of a person change; the second one read is decided while
    the first one's write flies, so that one waits and is decided again once it is answered
    (`_without_busy`, `_members`). Refused, its changes are not planned a second time."""
    adapter = MemoryAdapter([_record("L1", "Lead", 0, []), _record("C1", "Contact", 1, [])], 1)
    adapter.traffic = Traffic(Limits(in_flight=2, write_batch=100, task_batch=100))
    store = StateStore(tmp_path / "state.sqlite")
    assert SyncEngine(adapter, Settings(), store).run(RunOptions(now=NOW)).status == "ok"
    demo = EngagementEvent(type=EventType.DEMO_REQUEST, at=NOW - timedelta(hours=3))
    webinar = EngagementEvent(type=EventType.WEBINAR_ATTENDED, at=NOW - timedelta(hours=2))
    for cid, event in (("L1", demo), ("C1", webinar)):
        adapter.records[cid].events = [event]
        adapter.records[cid].updated_at = adapter._tick()
    adapter.refuse_write_ids = {refused}

    dry, real = _dry_then_real(adapter, store, NOW + timedelta(minutes=1))

    kind = "Lead" if refused == "L1" else "Contact"
    _assert_refused_once(dry, real, f"{kind}/{refused}")
    assert [a.contact_id for a in store.attention("default")] == [refused]
    store.close()


def test_a_person_decided_again_in_the_mirror_phase_plans_its_refused_record_once(
    tmp_path, monkeypatch
):
    """Mirror phase with held bulk updates, one record a chunk: the person is decided with
    its Contact (first in key order) and the Lead is written with it. The Lead's own chunk
    finds the person decided, but looking up its members takes the Contact, whose update is
    held, for a record waiting on its write: the person is decided again once the writes
    have landed (`_redecide_deferred`), and the Lead, its write refused, planned everything
    again (the tester's Salesforce run)."""
    monkeypatch.setattr(engine, "MIRROR_FIRST_CHUNK", 1)
    monkeypatch.setattr(engine, "MIRROR_CHUNK", 1)
    demo = EngagementEvent(type=EventType.DEMO_REQUEST, at=NOW - timedelta(hours=3))
    records = [_record("C1", "Contact", 0, [demo]), _record("L1", "Lead", 1, [])]
    adapter = MemoryAdapter(records, batch_size=1)
    adapter.traffic = Traffic(
        Limits(in_flight=2, write_batch=100, task_batch=100, bulk_batch=1000, bulk_from=500)
    )
    adapter.refuse_write_ids = {"L1"}
    store = StateStore(tmp_path / "state.sqlite")

    dry, real = _dry_then_real(adapter, store, NOW)

    assert real.details.get("read") == "full", "a first run reads everything, decides after"
    _assert_refused_once(dry, real, "Lead/L1")
    store.close()
