"""What the mirror promises, checked the same way against each CRM's simulator: a contact
left alone cools on the day the rules say, and an overdue open follow-up escalates once, with
no read of the contact; an idle rerun reads and writes nothing beyond the change pages; a
follow-up or a record a person deleted is neither escalated nor written again."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from crm_qualify.connector.commands.sync import impact
from crm_qualify.connector.decision.review import OVERDUE
from crm_qualify.connector.model import EventType
from crm_qualify.connector.settings import Settings
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine
from crm_qualify.connector.sync.mirror import _iso
from crm_qualify.connector.sync.state import StateStore

WRITES = ("update", "composite", "batch/create", "PATCH", "POST sobjects", "upsert")
DESCRIBES = ("GET properties", "GET describe")
"""Schema look-ups (a run that writes a field checks the owned fields first, `field_fit`):
no record read."""


def run(engine: SyncEngine, adapter: Any, now: datetime) -> tuple[Any, dict[str, int], int]:
    """One run at `now`: its summary, its read requests by name (no schema look-up), its
    write requests."""
    before = dict(adapter.usage().requests)
    summary = engine.run(RunOptions(now=now))
    assert summary.status == "ok", summary.errors
    after = adapter.usage().requests
    delta = {name: after.get(name, 0) - before.get(name, 0) for name in after}
    described = {k: n for k, n in delta.items() if n and k.startswith(DESCRIBES)}
    read = {
        k: n
        for k, n in delta.items()
        if n and k not in described and not any(w in k for w in WRITES)
    }
    return summary, read, sum(delta.values()) - sum(read.values()) - sum(described.values())


def only_change_pages(reads: dict[str, int], idle: dict[str, int], task_lookups: int = 0) -> bool:
    """A run's reads are no more than an idle rerun's: the changed-record pages only, and
    `task_lookups` requests more on tasks (a search or query of task keys)."""
    more = {name: n - idle.get(name, 0) for name, n in reads.items() if n > idle.get(name, 0)}
    return (
        set(reads) <= set(idle)
        and sum(more.values()) == task_lookups
        and all("task" in name.lower() for name in more)
    )


def check_time_reaches_untouched_contacts(adapter: Any, store: StateStore, settings: Settings):
    # the temperatures the seed set are a person's: kept under the default `unless_edited`,
    # which would leave them hot; here the temperature is ours to cool (`always`)
    fields = {**settings.fields}
    fields["temperature"] = fields["temperature"].model_copy(update={"policy": "always"})
    settings = settings.model_copy(
        update={
            "sync": settings.sync.model_copy(update={"lookup_delay_seconds": 0}),
            "fields": fields,
        }
    )
    engine = SyncEngine(adapter, settings, store)
    start = datetime.now(UTC)
    first, _, _ = run(engine, adapter, start)
    hot = [
        contact
        for chunk in store.mirrored_contacts(settings.crm.instance)
        for contact in chunk
        if contact.owned.get("temperature") == "hot"
    ]
    assert hot, "the seeded CRM has hot contacts"

    # Ages count whole days from each event's own time of day, so a minute may hold a decay
    # step of some contact (the seeded events made one from about 23:30 UTC): that contact's
    # review moment says so, and it alone may be decided and written again.
    idle_at = start + timedelta(minutes=1)
    due = store._query(
        "SELECT COUNT(*) FROM mirror_review WHERE recheck_at <= ?", (_iso(idle_at),)
    )[0][0]
    idle, idle_reads, idle_writes = run(engine, adapter, idle_at)
    assert idle.counts["read"] == 0 and idle.counts["redecided"] <= due
    assert idle.counts["records_written"] <= due and idle.counts["tasks_created"] == 0
    assert idle_writes == 0 or due

    overdue, overdue_reads, _ = run(engine, adapter, start + timedelta(days=3))
    created = first.counts["tasks_created"]
    assert overdue.counts["read"] == 0
    # and a look-up of the late follow-ups' keys (a deleted one is not escalated:
    # task_lookups.py): one request, as a HubSpot search body holds about 60 of our keys
    # and a Salesforce query about 190
    assert 0 < created <= 55, created
    assert only_change_pages(overdue_reads, idle_reads, task_lookups=1)
    assert overdue.counts["tasks_created"] == created > 0, "every follow-up is late and open"
    again, _, _ = run(engine, adapter, start + timedelta(days=3, hours=1))
    assert again.counts["tasks_created"] == 0, "each escalates once"

    later, later_reads, _ = run(engine, adapter, start + timedelta(days=200))
    assert later.counts["read"] == 0 and only_change_pages(later_reads, idle_reads), "no read"
    mirrored = {
        (contact.object_type, contact.id): contact.owned
        for chunk in store.mirrored_contacts(settings.crm.instance)
        for contact in chunk
    }
    crm = {}
    for batch in adapter.read_contacts([(c.object_type, c.id) for c in hot]):
        for raw in batch.raw:
            contact = raw.translate()
            crm[(contact.object_type, contact.id)] = contact.owned
    for contact in hot:
        key = (contact.object_type, contact.id)
        assert crm[key]["temperature"] != "hot", f"{key} cooled in the CRM"
        assert crm[key]["temperature"] == mirrored[key]["temperature"]


def check_a_deleted_follow_up_is_not_escalated(
    adapter: Any, store: StateStore, settings: Settings, delete: Callable[[str], None]
) -> None:
    """A person deletes one follow-up in the CRM: no read reports it, yet it is not escalated
    when every other late follow-up is, and it is looked up once only."""
    engine = SyncEngine(adapter, settings, store)
    start = datetime.now(UTC)
    first, _, _ = run(engine, adapter, start)
    followups = [t for t in store.tasks_for_run(first.run_id) if t.kind != "escalation"]
    assert len(followups) > 1 and all(t.crm_id for t in followups)
    gone = followups[0]
    delete(str(gone.crm_id))

    overdue, _, _ = run(engine, adapter, start + timedelta(days=3))
    assert overdue.counts["read"] == 0
    assert overdue.counts["tasks_created"] == first.counts["tasks_created"] - 1
    assert overdue.counts["tasks_planned"] == overdue.counts["tasks_created"], "as a dry run"
    escalation = f"{gone.key}:escalation"  # never created; gone if it was held owed
    held = store.tasks_by_key(settings.crm.instance, [escalation]).get(escalation)
    assert held is None or (held.status == "gone" and held.crm_id is None)
    assert store.tasks_by_key(settings.crm.instance, [gone.key])[gone.key].status == "gone"
    again, _, _ = run(engine, adapter, start + timedelta(days=3, hours=1))
    assert again.counts["tasks_created"] == 0


def check_a_record_deleted_in_the_crm_leaves_the_mirror_when_written(
    adapter: Any, store: StateStore, settings: Settings, delete: Callable[[str, str], None]
) -> None:
    """A person deletes a record; no incremental read reports it. The next rules change
    decides it from the mirror and its write finds it gone: it leaves the mirror (as a full
    read would drop it), the run is ok with no error nor record needing attention, and no
    later run writes to it again."""
    engine = SyncEngine(adapter, settings, store)
    start = datetime.now(UTC)
    run(engine, adapter, start)
    instance = settings.crm.instance
    mirrored = store.mirror.count(instance)
    victim = next(c for chunk in store.mirrored_contacts(instance) for c in chunk)
    delete(victim.object_type, victim.id)

    def with_demo_weight(points: float) -> SyncEngine:
        rules = settings.rules
        weights = {**rules.weights, EventType.DEMO_REQUEST: points}
        changed = rules.model_copy(update={"weights": weights})
        return SyncEngine(adapter, settings.model_copy(update={"rules": changed}), store)

    first, _, _ = run(with_demo_weight(33), adapter, start + timedelta(minutes=1))
    assert first.counts["records_gone"] == 1 and not first.errors
    assert first.counts["records_needing_attention"] == 0 and not store.attention(instance)
    assert store.mirror.count(instance) == mirrored - 1
    again, _, _ = run(with_demo_weight(31), adapter, start + timedelta(minutes=2))
    assert again.counts["records_gone"] == 0 and not again.errors
    assert again.counts["records_written"] == mirrored - 1

    # A record waiting for a re-read (a failed write's) that a person deleted meanwhile: its
    # re-read says so (logged, no error: the run stays ok), and it leaves the mirror and the
    # retry list.
    waiting = next(c for chunk in store.mirrored_contacts(instance) for c in chunk)
    store.add_retries(instance, [(waiting.object_type, waiting.id, "HTTP 503")])
    delete(waiting.object_type, waiting.id)
    engine = with_demo_weight(31)
    before = engine.run(RunOptions(now=start + timedelta(minutes=3)))
    assert before.counts["records_gone"] == 1 and before.counts["read_errors"] == 0
    assert before.status == "ok" and not before.errors
    assert not store.retries(instance) and store.mirror.count(instance) == mirrored - 2
    after, _, _ = run(engine, adapter, start + timedelta(minutes=4))
    assert not after.errors and after.counts["read_errors"] == 0


def check_a_late_follow_up_of_a_deleted_record_goes_with_it(
    adapter: Any, store: StateStore, settings: Settings, delete: Callable[[str, str], None]
) -> None:
    """A person deletes a record holding an open follow-up; no incremental read reports it.
    Once the follow-up is late, its escalation is refused for the missing record: the record
    leaves the mirror and the escalation goes with it (the person has no other record). It
    was owed again on every run, each ending partial with the record needing attention."""
    engine = SyncEngine(adapter, settings, store)
    start = datetime.now(UTC)
    first, _, _ = run(engine, adapter, start)
    instance = settings.crm.instance
    persons = engine.people.stored(
        instance, [(t.object_type, t.contact_id) for t in store.tasks_for_run(first.run_id)]
    )
    followup = next(
        t
        for t in store.tasks_for_run(first.run_id)
        if t.kind == "hot_call" and len(persons[(t.object_type, t.contact_id)].members) == 1
    )
    record = (followup.object_type, followup.contact_id)
    delete(*record)

    late, _, _ = run(engine, adapter, start + timedelta(days=3))
    assert late.counts["records_gone"] == 1 and not late.errors
    assert not store.attention(instance)
    assert "the rest is sent again" not in impact(late), "nothing is owed: it went with it"
    assert not store.mirror.by_keys(instance, [record])
    escalation = f"{followup.key}:escalation"  # never created; gone if it was held owed
    held = store.tasks_by_key(instance, [escalation]).get(escalation)
    assert held is None or (held.status == "gone" and held.crm_id is None)
    again, _, _ = run(engine, adapter, start + timedelta(days=3, hours=1))
    assert again.counts["tasks_planned"] == 0 and not again.errors


TITLE = "Head of Clocks"
"""The job title a person's edit gives a record (`touch`)."""


def check_a_clock_ahead_of_the_crm_misses_no_edit(
    adapter: Any, store: StateStore, settings: Settings, touch: Callable[[str], None]
) -> None:
    """Our clock six minutes ahead of the CRM's, more than the 300 s look-back: the read
    position was a moment of our clock, so a person's edit made just after a run lay before
    the next run's window and was never read by an incremental run (seen on Salesforce,
    until the next full read). Positions are now kept in the CRM's clock (its `Date`)."""
    ahead = 360.0
    adapter.client.crm_clock.ours = lambda: time.time() + ahead
    engine = SyncEngine(adapter, settings, store)
    run(engine, adapter, datetime.now(UTC) + timedelta(seconds=ahead))
    idle, _, _ = run(engine, adapter, datetime.now(UTC) + timedelta(seconds=ahead))
    assert idle.counts["read"] == 0
    edited = next(c for chunk in store.mirrored_contacts(settings.crm.instance) for c in chunk)
    touch(edited.id)
    later, _, _ = run(engine, adapter, datetime.now(UTC) + timedelta(seconds=ahead))
    assert later.counts["read"] >= 1, "the person's edit is read"
    key = (edited.object_type, edited.id)
    assert store.mirror.by_keys(settings.crm.instance, [key])[key].contact.title == TITLE


def check_a_clock_far_from_the_crm_s_decides_nothing(
    adapter: Any, store: StateStore, settings: Settings
) -> None:
    """Our clock three days ahead of the CRM's (a host whose time sync failed; a user test
    ran the connector under faketime): runs decided and wrote on our clock, so follow-ups
    fell overdue and were escalated, scores decayed and hot leads cooled days early, and
    once the clock was set right the next run re-heated them and called a hot lead again
    whose call had been made. A run whose clock is further from the CRM's than
    `sync.max_clock_offset_minutes` now stops before deciding anything, naming both."""
    real = adapter.client.crm_clock.ours
    adapter.client.crm_clock.ours = lambda: time.time() + 3 * 86400
    engine = SyncEngine(adapter, settings, store)
    refused = engine.run(RunOptions())
    assert refused.status == "failed"
    assert "our clock is 72.0 hours ahead of the CRM's" in " ".join(refused.errors)
    assert "max_clock_offset_minutes" in " ".join(refused.errors)
    assert refused.counts["fields_written"] == 0 and refused.counts["tasks_created"] == 0
    assert not store.tasks_for_run(refused.run_id)
    assert "across 0 contact(s) decided" in impact(refused), "read is not decided"
    assert not store.mirror.count(settings.crm.instance), "nothing read was kept"
    adapter.client.crm_clock.ours = real
    first = engine.run(RunOptions())
    assert first.status == "ok", first.errors
    assert first.counts["fields_written"] > 0 and store.tasks_for_run(first.run_id)
    assert first.counts["records_gone"] == 0, "the refused run's clock started no full read"


def check_a_follow_up_a_person_rescheduled_is_not_escalated(
    adapter: Any, store: StateStore, settings: Settings, reschedule: Callable[[str], None]
) -> None:
    """A salesperson moves one open follow-up's due date a month ahead: the incremental runs
    never read it (our own open tasks were left out of the activity sweep), so it was
    escalated three days later while a full read would not have."""
    engine = SyncEngine(adapter, settings, store)
    start = datetime.now(UTC)
    first, _, _ = run(engine, adapter, start)
    followups = [t for t in store.tasks_for_run(first.run_id) if t.kind == "hot_call"]
    assert len(followups) > 1
    moved = followups[0]
    reschedule(str(moved.crm_id))

    late, _, _ = run(engine, adapter, start + timedelta(days=3))
    escalation = f"{moved.key}:escalation"
    assert escalation not in store.tasks_by_key(settings.crm.instance, [escalation])
    assert late.counts["tasks_created"] == first.counts["tasks_created"] - 1


def check_every_follow_up_is_reviewed_by_its_due_time(
    adapter: Any, store: StateStore, settings: Settings
) -> None:
    """A person of two records (a Lead and a Contact) was decided twice in the first run, the
    second time before its hand-off was created: that decision set the record's next review
    a week out, and the hand-off, due in two days, was escalated days late."""
    engine = SyncEngine(adapter, settings, store)
    first, _, _ = run(engine, adapter, datetime.now(UTC))
    instance = settings.crm.instance
    grace = timedelta(hours=settings.rules.followup.escalate_after_hours)
    late = []
    for task in store.tasks_for_run(first.run_id):
        if task.kind == "escalation":
            continue
        (review,) = store._query(
            "SELECT recheck_at FROM mirror_review WHERE instance = ? AND object_type = ?"
            " AND contact_id = ?",
            (instance, task.object_type, task.contact_id),
        )
        assert task.due is not None
        if datetime.fromisoformat(review[0]) > datetime.fromisoformat(task.due) + grace + OVERDUE:
            late.append((task.key, task.due, review[0]))
    assert not late, late


def check_a_follow_up_read_back_escalates_at_its_sla_time(
    adapter: Any, store: StateStore, settings: Settings, touch: Callable[[str], None]
) -> None:
    """Salesforce keeps a task's due date only: once a person's edit had the record read
    again, its hot call was due at the end of that date, and its escalation came up to a day
    later than for a call whose record nobody touched."""
    engine = SyncEngine(adapter, settings, store)
    start = datetime.now(UTC)
    first, _, _ = run(engine, adapter, start)
    call = next(t for t in store.tasks_for_run(first.run_id) if t.kind == "hot_call")
    touch(call.contact_id)
    again, _, _ = run(engine, adapter, start + timedelta(minutes=1))
    assert again.counts["read"] >= 1, "the record and its tasks are read again"
    assert call.due is not None
    run(engine, adapter, datetime.fromisoformat(call.due) + timedelta(minutes=1))
    escalation = f"{call.key}:escalation"
    assert escalation in store.tasks_by_key(settings.crm.instance, [escalation])


OLD_ESCALATION_SUBJECT = "Overdue follow-up on Ben Olsen (Company 273)"
"""An escalation's subject before it named the follow-up that is overdue."""


def check_escalations_are_found_by_key_whatever_their_subject(
    adapter: Any, store: StateStore, settings: Settings, retitle: Callable[[str], None], path: Path
) -> None:
    """The escalations already in a CRM carry the subject of an older version ("Overdue
    follow-up on …", or whatever a person made of it): neither the run that made them nor a
    new state file on the same CRM creates them again, as tasks are found by key alone."""
    engine = SyncEngine(adapter, settings, store)
    start = datetime.now(UTC)
    run(engine, adapter, start)
    overdue, _, _ = run(engine, adapter, start + timedelta(days=3))
    escalations = [t for t in store.tasks_for_run(overdue.run_id) if t.kind == "escalation"]
    assert escalations and all(t.crm_id for t in escalations)
    for escalation in escalations:
        retitle(str(escalation.crm_id))
    again, _, _ = run(engine, adapter, start + timedelta(days=3, hours=1))
    assert again.counts["tasks_created"] == 0
    fresh = StateStore(path)
    try:
        rebuilt = SyncEngine(adapter, settings, fresh).run(
            RunOptions(now=start + timedelta(days=3, hours=2))
        )
        assert rebuilt.status == "ok", rebuilt.errors
        assert rebuilt.counts["tasks_created"] == 0, "no escalation made twice"
        keys = [escalation.key for escalation in escalations]
        found = fresh.tasks_by_key(settings.crm.instance, keys)
        assert {key: (found[key].status, found[key].crm_id) for key in keys} == {
            escalation.key: ("created", escalation.crm_id) for escalation in escalations
        }, "each found in the CRM by its key"
    finally:
        fresh.close()
