"""The adapter's Bulk API 2.0 path against the simulator: a full read of a large object and a
large write set go through jobs polled on a fake clock (no sleeping), give what REST gives,
route per-record failures like REST errors, and never duplicate a task whatever the job's
outcome."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from crm_qualify.adapters.salesforce import bulk as bulk_module
from crm_qualify.adapters.salesforce import endpoints
from crm_qualify.adapters.salesforce.client import SalesforceCallError
from crm_qualify.adapters.salesforce.reader import Cursor
from crm_qualify.adapters.salesforce.simulator import SalesforceSimulator
from crm_qualify.connector.model import FieldUpdate, PlannedTask, RecordUpdate
from crm_qualify.connector.sync import engine as engine_module
from crm_qualify.connector.sync.concurrency import ReadAbandoned
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine

from tests.fake_clock import FakeClock
from tests.salesforce.conftest import make_adapter

KEY = "CRMQ_Task_Key__c"


@pytest.fixture(scope="module")
def org() -> Iterator[SalesforceSimulator]:
    with SalesforceSimulator(records=300, seed=21) as sim:
        yield sim


@pytest.fixture
def clock(org) -> Iterator[FakeClock]:
    clock = FakeClock()
    org.bulk.clock, org.bulk.delay = (lambda: clock.now), 3.0
    org.page_size = 40
    yield clock
    org.page_size = 2000


@pytest.fixture
def fresh_org() -> Iterator[tuple[SalesforceSimulator, FakeClock]]:
    """An org no other test has written to: its tasks are all still to plan."""
    with SalesforceSimulator(records=1000, seed=22) as sim:
        clock = FakeClock()
        sim.bulk.clock, sim.bulk.delay = (lambda: clock.now), 3.0
        yield sim, clock


def bulk_adapter(org, clock: FakeClock, **options):
    adapter = make_adapter(org, bulk_threshold=50, **options)
    adapter.bulk_api.sleep, adapter.bulk_api.clock = clock.sleep, (lambda: clock.now)
    return adapter


def contacts(adapter, cursor=None, known=None):
    batches = list(adapter.read_changed(cursor, until=datetime.now(UTC), known=known))
    people = {c.id: c for b in batches for c in (r.translate() for r in b.raw)}
    return people, batches


def jobs(adapter) -> dict[str, int]:
    return {k: v for k, v in adapter.usage().requests.items() if "jobs/" in k}


def test_a_full_read_through_bulk_gives_what_rest_gives(org, clock):
    adapter = bulk_adapter(org, clock)
    through_bulk, batches = contacts(adapter)
    through_rest, _ = contacts(make_adapter(org, bulk_threshold=0))
    assert through_bulk == through_rest and len(through_bulk) > 100
    assert any(c.tasks or c.events for c in through_bulk.values())
    used = jobs(adapter)
    # people of each object, each child set once, Accounts and open Opportunities for Leads
    assert used["POST jobs/query"] == 2 + 5 + 2
    assert used["GET jobs/query/{id}"] >= 9 and clock.naps[0] == 0.5
    assert max(clock.naps) <= 20 and sum(clock.naps) >= 3.0
    cursor = Cursor.load(batches[-1].cursor)
    stamp = cursor.positions["Lead"][0]
    assert all(position == (stamp, "") for position in cursor.positions.values())


def test_an_incremental_read_stays_on_rest(org, clock):
    adapter = bulk_adapter(org, clock)
    _, batches = contacts(adapter)
    before = dict(adapter.usage().requests)
    org.touch(next(iter(org.org.live("Lead")))["Id"], {"Title": "CEO"})
    changed, _ = contacts(adapter, batches[-1].cursor, known=lambda hits, by_others=False: set())
    assert any(c.title == "CEO" for c in changed.values())
    assert jobs(adapter) == {k: v for k, v in before.items() if "jobs/" in k}


def test_bulk_updates_route_each_failure_to_its_record_and_field(org, clock):
    adapter = bulk_adapter(org, clock)
    leads = [r["Id"] for r in org.org.live("Lead") if not r.get("IsConverted")][:60]
    org.refuse("Lead", "CRMQ_Grade__c", "Z9")
    updates = [
        RecordUpdate(contact_id=lead, object_type="Lead", changes=[
            FieldUpdate(field="grade", new="Z9" if n == 3 else "A1"),
            FieldUpdate(field="score", new=71.0),
        ])
        for n, lead in enumerate(leads)
    ]  # fmt: skip
    results = adapter.write_updates(updates)
    assert [r.contact_id for r in results] == leads
    refused = results[3]
    assert not refused.ok and refused.field == "CRMQ_Grade__c" and not refused.retryable
    assert refused.error.startswith("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST: ")
    assert all(r.ok for n, r in enumerate(results) if n != 3)
    assert org.org.find(leads[0])[1]["CRMQ_Score__c"] == 71.0
    assert org.org.find(leads[3])[1]["CRMQ_Score__c"] != 71.0
    assert jobs(adapter)["POST jobs/ingest"] == 1
    assert "GET jobs/ingest/{id}/failedResults" in jobs(adapter)
    assert "PATCH composite/sobjects" not in adapter.usage().requests


def test_a_bulk_update_of_a_lead_converted_since_it_was_read_comes_back_gone(org, clock):
    """Salesforce refuses it (`CANNOT_UPDATE_CONVERTED_LEAD` in the job's failed results):
    the record is gone to the core, as through REST, not a failure to retry."""
    adapter = bulk_adapter(org, clock)
    leads = [r["Id"] for r in org.org.live("Lead") if not r.get("IsConverted")][:60]
    org.convert_lead(leads[5])
    updates = [
        RecordUpdate(contact_id=lead, object_type="Lead",
                     changes=[FieldUpdate(field="score", new=64.0)])
        for lead in leads
    ]  # fmt: skip
    results = adapter.write_updates(updates)
    converted = results[5]
    assert not converted.ok and converted.gone and not converted.retryable
    assert converted.error.startswith("CANNOT_UPDATE_CONVERTED_LEAD: ")
    assert all(r.ok and not r.gone for n, r in enumerate(results) if n != 5)
    assert "PATCH composite/sobjects" not in adapter.usage().requests


def test_an_objects_few_updates_beside_a_job_go_in_a_collection(org, clock):
    adapter = bulk_adapter(org, clock)
    leads = [r["Id"] for r in org.org.live("Lead") if not r.get("IsConverted")][60:120]
    people = [r["Id"] for r in org.org.live("Contact")][:3]
    mixed = [*leads[:30], *people, *leads[30:]]
    kinds = {person: "Contact" for person in people}
    updates = [
        RecordUpdate(contact_id=record, object_type=kinds.get(record, "Lead"),
                     changes=[FieldUpdate(field="score", new=float(n))])
        for n, record in enumerate(mixed)
    ]  # fmt: skip
    before = dict(adapter.usage().requests)

    results = adapter.write_updates(updates)

    assert [r.contact_id for r in results] == mixed and all(r.ok for r in results)
    assert all(org.org.find(r)[1]["CRMQ_Score__c"] == float(n) for n, r in enumerate(mixed))
    used = {k: v - before.get(k, 0) for k, v in adapter.usage().requests.items()}
    assert used["POST jobs/ingest"] == 1  # the Leads' job; one job for 3 Contacts costs 4
    assert used["PATCH composite/sobjects"] == 1


def planned(org, count: int, tag: str) -> list[PlannedTask]:
    due = datetime.now(UTC) + timedelta(days=2)
    people = [r["Id"] for r in org.org.live("Contact")][:count]
    return [
        PlannedTask(key=f"crmq:{tag}:{person}", contact_id=person, object_type="Contact",
                    kind="hot_call", subject="Follow up", body="hot", due=due, priority="high",
                    task_type="call")
        for person in people
    ]  # fmt: skip


def test_bulk_task_upserts_never_make_a_second_task(org, clock):
    adapter = bulk_adapter(org, clock)
    tasks = planned(org, 55, "bulk-once")
    first = adapter.create_tasks(tasks)
    again = adapter.create_tasks(tasks)
    assert all(r.ok and r.crm_id for r in first + again)
    assert [r.crm_id for r in first] == [r.crm_id for r in again]
    held = [t for t in org.org.live("Task") if (t.get(KEY) or "").startswith("crmq:bulk-once:")]
    assert len(held) == 55
    assert adapter.find_tasks([t.key for t in tasks]) == {
        t.key: r.crm_id for t, r in zip(tasks, first, strict=True)
    }


def test_a_key_planned_twice_in_one_job_is_sent_once_and_both_get_its_task(org, clock):
    """The external id is compared case-insensitively: a second row of the same key in one
    job would fail as a duplicate (or make a second task); the first planned goes out."""
    adapter = bulk_adapter(org, clock)
    tasks = planned(org, 60, "bulk-twice")
    twin = replace(tasks[0], key=tasks[0].key.upper(), subject="Second plan")
    results = adapter.create_tasks([*tasks, twin])
    assert all(r.ok and r.crm_id for r in results)
    assert results[-1].crm_id == results[0].crm_id
    held = [t for t in org.org.live("Task") if (t.get(KEY) or "").casefold().startswith(
        "crmq:bulk-twice:")]  # fmt: skip
    assert len(held) == 60
    assert {t["Subject"] for t in held} == {"Follow up"}


def test_a_job_past_its_timeout_is_aborted_and_its_records_retried(org, clock):
    adapter = bulk_adapter(org, clock, bulk_timeout_seconds=5)
    org.bulk.delay = 60
    tasks = planned(org, 52, "bulk-slow")
    results = adapter.create_tasks(tasks)
    assert all(not r.ok and r.retryable and not r.uncertain for r in results)
    assert "Aborted" in results[0].error
    assert not [t for t in org.org.live("Task") if (t.get(KEY) or "").startswith("crmq:bulk-slow")]


def test_a_lost_upload_answer_aborts_the_job_and_nothing_lands(org, clock):
    adapter = bulk_adapter(org, clock)
    org.faults.add("lost", path_contains="/batches")
    results = adapter.create_tasks(planned(org, 51, "bulk-lost"))
    assert all(not r.ok and r.retryable and not r.uncertain for r in results)
    clock.now += 1000
    adapter.describe("Task")  # any request lets the org finish what it would
    assert not [t for t in org.org.live("Task") if (t.get(KEY) or "").startswith("crmq:bulk-lost")]
    assert list(org.bulk.jobs.values())[-1].state == "Aborted"


@pytest.mark.parametrize("fault", ["INVALID_SESSION_ID", "429"])
def test_an_upload_sent_again_sends_the_whole_csv_again(org, clock, fault):
    """The CSV is uploaded from a temporary file: a second attempt (after a new login, or a
    refusal before processing) must send it from its start, not from where the first left."""
    adapter = bulk_adapter(org, clock)
    org.faults.add(fault, path_contains="/batches")
    tasks = planned(org, 53, f"bulk-again-{fault}")
    results = adapter.create_tasks(tasks)
    assert all(r.ok for r in results), results[0]
    prefix = f"crmq:bulk-again-{fault}:"
    landed = [t for t in org.org.live("Task") if (t.get(KEY) or "").startswith(prefix)]
    assert len(landed) == 53
    assert adapter.usage().requests["PUT jobs/ingest/{id}/batches"] == 2


def test_a_disk_that_cannot_hold_the_csv_leaves_the_records_unsent_and_no_job(
    org, clock, monkeypatch
):
    adapter = bulk_adapter(org, clock)

    def full(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("crm_qualify.adapters.salesforce.bulk_writes.tempfile.TemporaryFile", full)
    jobs_before = len(org.bulk.jobs)
    results = adapter.create_tasks(planned(org, 52, "bulk-disk"))
    assert all(not r.ok and r.retryable and not r.uncertain for r in results)
    assert "No space left" in results[0].error
    assert len(org.bulk.jobs) == jobs_before, "no job was opened for data never written"


def test_a_job_that_cannot_be_followed_leaves_its_tasks_uncertain(org, clock, monkeypatch):
    adapter = bulk_adapter(org, clock, max_attempts=1)

    def unreachable(kind, job_id):  # noqa: ANN001
        raise SalesforceCallError("GET jobs/ingest/{id}", 503, "SERVER_UNAVAILABLE", "down")

    monkeypatch.setattr(adapter.bulk_api, "status", unreachable)
    tasks = planned(org, 50, "bulk-unknown")
    results = adapter.create_tasks(tasks)
    assert all(r.uncertain and not r.ok for r in results)
    clock.now += 10
    found = adapter.find_tasks([t.key for t in tasks])
    assert len(found) == 50  # the job did land: the core's look-up finds every key


def test_a_full_sync_through_bulk_then_an_idle_rerun_writes_nothing(org, clock, store, settings):
    adapter = bulk_adapter(org, clock)
    engine = SyncEngine(adapter, settings, store)
    first = engine.run(RunOptions(full=True))
    assert first.counts["records_written"] >= 50 and not first.counts["write_errors"]
    assert jobs(adapter)["POST jobs/ingest"] >= 1
    rerun = engine.run(RunOptions())
    assert rerun.counts["records_written"] == 0 and rerun.counts["tasks_created"] == 0


def _update_jobs(org, before: set[str]) -> dict[str, list[int]]:
    """Records processed by each ingest job of Leads and Contacts since `before`."""
    found: dict[str, list[int]] = {}
    for job_id, job in org.bulk.jobs.items():
        if job_id not in before and job.kind == "ingest" and job.object != "Task":
            found.setdefault(job.object, []).append(job.processed)
    return found


def test_a_full_syncs_writes_leave_in_full_jobs_past_the_flights_bound(
    fresh_org, store, settings, monkeypatch
):
    """A bulk call takes 300 records here (the bound a call gathers in memory), decided 50 at
    a time. The mirror phase's tasks wait in the ledger, owed, and leave in one job at the end
    of the phase, none in collections; each lands once, and joins its contact in the mirror.
    Its updates wait as intents in the audit trail until one object's fill a call: each
    object's take as few jobs as its count allows (calls of 300 records decided, split per
    object, took more), none stays intended, and an idle rerun writes nothing."""
    monkeypatch.setattr(endpoints, "BULK_JOB", 300)
    monkeypatch.setattr(engine_module, "MIRROR_FIRST_CHUNK", 50)
    monkeypatch.setattr(engine_module, "MIRROR_CHUNK", 50)
    org, clock = fresh_org
    adapter = bulk_adapter(org, clock)
    before = set(org.bulk.jobs)
    engine = SyncEngine(adapter, settings, store)
    summary = engine.run(RunOptions(full=True))
    assert summary.status == "ok" and not summary.counts["write_errors"]
    ingest = [job for i, job in org.bulk.jobs.items() if i not in before and job.kind == "ingest"]
    task_jobs = [job for job in ingest if job.object == "Task"]
    created = summary.counts["tasks_created"]
    assert created >= 50, "the org's people must plan a job's worth of tasks"
    assert len(task_jobs) == 1 and task_jobs[0].processed == created
    assert not adapter.usage().requests.get("PATCH composite/sobjects/Task")
    by_object = _update_jobs(org, before)
    assert set(by_object) == {"Lead", "Contact"}
    for sobject, sizes in by_object.items():
        assert len(sizes) == -(-sum(sizes) // 300), f"{sobject} jobs {sizes}"
    assert sum(map(sum, by_object.values())) == summary.counts["records_written"]
    assert not adapter.usage().requests.get("PATCH composite/sobjects")
    assert not store.open_intents(settings.crm.instance)
    ledger = store.all_tasks(settings.crm.instance)
    assert sum(task.status == "created" for task in ledger) == created
    assert not store.tasks_in(settings.crm.instance, "owed")
    mirrored = store.mirror.by_keys(
        settings.crm.instance, [(task.object_type, task.contact_id) for task in ledger]
    )
    keys = {task.key for m in mirrored.values() for task in m.contact.tasks}
    assert {task.key for task in ledger if task.status == "created"} <= keys
    rerun = engine.run(RunOptions())
    assert rerun.counts["records_written"] == 0 and rerun.counts["tasks_created"] == 0


def _engine_stopping_in_the_mirror_phase(fresh_org, store, settings, monkeypatch) -> SyncEngine:
    """An engine over the fresh org whose first run stops after two mirror chunks of 50."""
    monkeypatch.setattr(engine_module, "MIRROR_FIRST_CHUNK", 50)
    monkeypatch.setattr(engine_module, "MIRROR_CHUNK", 50)
    org, clock = fresh_org
    engine = SyncEngine(bulk_adapter(org, clock), settings, store)
    chunks = 0

    def stop_after_two_chunks(contacts):
        nonlocal chunks
        chunks += engine._redeciding
        if chunks == 2:
            engine.stop.set()

    engine.on_read = stop_after_two_chunks
    return engine


def test_held_tasks_of_a_stopped_run_are_created_once_by_the_next(
    fresh_org, store, settings, monkeypatch
):
    """A stop during the mirror phase sends none of its held tasks: they stay owed in the
    ledger, and the next run's start creates each exactly once."""
    org = fresh_org[0]
    engine = _engine_stopping_in_the_mirror_phase(fresh_org, store, settings, monkeypatch)
    stopped = engine.run(RunOptions(full=True))
    owed = {task.key for task in store.tasks_in(settings.crm.instance, "owed")}
    assert stopped.status == "interrupted" and stopped.counts["tasks_created"] == 0
    assert owed and not store.tasks_in(settings.crm.instance, "pending")
    engine.stop.clear()
    engine.on_read = None
    rerun = engine.run(RunOptions())
    ledger = {task.key: task.status for task in store.all_tasks(settings.crm.instance)}
    assert all(ledger[key] == "created" for key in owed)
    in_crm = [task[KEY] for task in org.org.live("Task") if task.get(KEY) in owed]
    assert sorted(in_crm) == sorted(owed)
    assert rerun.counts["tasks_created"] >= len(owed)


def test_a_person_decided_again_plans_its_held_task_once(fresh_org, store, settings, monkeypatch):
    """Records decided while their own write was in flight are decided again at the end of
    the phase (`_redecide_deferred`), while the phase's tasks are still held: their keys are
    not planned a second time, so the run's counts match what it created."""
    monkeypatch.setattr(engine_module, "MIRROR_FIRST_CHUNK", 50)
    monkeypatch.setattr(engine_module, "MIRROR_CHUNK", 50)
    org, clock = fresh_org
    summary = SyncEngine(bulk_adapter(org, clock), settings, store).run(RunOptions(full=True))
    assert summary.counts["redecided"] > 1, "some persons are decided again"
    assert summary.counts["tasks_planned"] == summary.counts["tasks_created"] > 0


def test_held_updates_of_a_stopped_run_are_settled_by_the_next(
    fresh_org, store, settings, monkeypatch
):
    """A stop during the mirror phase sends none of its held updates: they stay intended,
    and the next run reads those records again, settles the intents and writes what the
    rules say, once; the run after it writes nothing."""
    org = fresh_org[0]
    engine = _engine_stopping_in_the_mirror_phase(fresh_org, store, settings, monkeypatch)
    stopped = engine.run(RunOptions(full=True))
    intended = store.open_intents(settings.crm.instance)
    assert stopped.status == "interrupted" and stopped.counts["records_written"] == 0
    assert len(intended) >= 50
    engine.stop.clear()
    engine.on_read = None
    rerun = engine.run(RunOptions())
    assert rerun.status == "ok" and not store.open_intents(settings.crm.instance)
    assert rerun.counts["records_written"] >= len(intended)
    for (sobject, record_id), mirrored in store.mirror.by_keys(
        settings.crm.instance, sorted(intended)
    ).items():
        row = org.org.records[sobject][record_id]
        assert mirrored.contact.owned.get("score") == row.get("CRMQ_Score__c")
    idle = engine.run(RunOptions())
    assert idle.counts["records_written"] == 0 and idle.counts["tasks_created"] == 0


def test_a_bulk_querys_poll_wait_ends_when_the_read_is_given_up(fresh_org, monkeypatch):
    """Ctrl-C during a first sync's Bulk query: the poll's wait (up to `POLL_MAX`) ends at
    once, as a retry's backoff does, instead of when the next poll is due. The job never
    ends here: the simulator's bulk clock stands still."""
    org, _ = fresh_org
    monkeypatch.setattr(bulk_module, "POLL_FIRST", 30.0)
    adapter = make_adapter(org, bulk_threshold=50)
    outcome: list[BaseException | None] = []

    def read() -> None:
        try:
            contacts(adapter)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - what the reader ended on
            outcome.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    deadline = time.monotonic() + 10
    while not adapter.bulk_api.jobs["query"] and time.monotonic() < deadline:
        time.sleep(0.02)  # the query job is created; its first poll waits 30 s
    assert adapter.bulk_api.jobs["query"] == 1
    with adapter.traffic.abandon_reads():
        reader.join(2.0)
        assert not reader.is_alive(), "the poll's 30 s wait was not cut short"
    assert isinstance(outcome[0], ReadAbandoned)
