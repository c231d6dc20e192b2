"""What a run counts and records: a failed run's acknowledged writes, the dry run's plan."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from crm_qualify.connector.commands.sync import impact
from crm_qualify.connector.contract import AdapterError, TaskResult, WriteResult
from crm_qualify.connector.decision.rules import Rules
from crm_qualify.connector.model import Contact
from crm_qualify.connector.settings import FieldPolicy, Settings
from crm_qualify.connector.sync.concurrency import Limits, Traffic
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine
from crm_qualify.connector.sync.state import StateStore

from tests.memory_adapter import MemoryAdapter
from tests.test_engine import NOW, cold_contact, hot_contact

KEY = ("contact", "hot-1")


def _settings(**changes: object) -> Settings:
    fields = {"temperature": FieldPolicy(policy="unless_edited")}
    return Settings(sync={"lookup_delay_seconds": 0}, fields=fields, **changes)


def _turns_hot(adapter: MemoryAdapter) -> None:
    record = adapter.records["hot-1"]
    record.events, record.title = hot_contact().events, "IT Director"
    record.updated_at = adapter._tick()


def test_a_failed_runs_acknowledged_writes_reach_the_mirror_and_its_counts(tmp_path, caplog):
    """`create_tasks` fails as a whole after the batch's field writes were acknowledged: the
    mirror takes those values and the batch's hot episode as after a successful run, so the
    next run knows the record's new version as ours, and deciding it from the mirror later
    neither rewrites its fields from empty nor calls it a second time; the run counts what
    landed."""
    adapter = MemoryAdapter([cold_contact("hot-1"), cold_contact("c1")])
    store = StateStore(tmp_path / "state.sqlite")
    assert SyncEngine(adapter, _settings(), store).run(RunOptions(now=NOW)).status == "ok"
    _turns_hot(adapter)
    adapter.crash_after_task_create = True

    failed = SyncEngine(adapter, _settings(), store).run(RunOptions(now=NOW))

    assert failed.status == "failed"
    acked = store.writes_for_run(failed.run_id)
    assert acked and not store.open_intents("default"), "every field write was acknowledged"
    assert (
        store.mirror.by_keys("default", [KEY])[KEY].contact.owned == adapter.records["hot-1"].owned
    )
    assert store.mirror.episodes("default", [KEY])[KEY] is not None, "its hot episode"
    assert failed.counts["records_written"] == 1
    assert failed.counts["fields_written"] == len(acked) == failed.counts["fields_planned"]
    assert failed.counts["stages_moved"] == failed.counts["stages_moving"] == 1
    assert failed.counts["temperatures_moved"] == failed.counts["temperatures_moving"] == 1

    rerun = SyncEngine(adapter, _settings(), store).run(RunOptions(now=NOW))

    assert rerun.status == "ok", rerun.errors
    assert rerun.counts["read"] == 0, "our own write: known, not read"
    assert rerun.counts["fields_written"] == 0
    assert rerun.counts["tasks_recovered"] == 2 and len(adapter.tasks) == 2

    rules = Rules.model_validate({"thresholds": {"mql": 1}})  # everyone decided again
    with caplog.at_level(logging.INFO):
        changed = SyncEngine(adapter, _settings(rules=rules), store).run(RunOptions(now=NOW))

    assert changed.status == "ok", changed.errors
    assert changed.counts["redecided"] == 2 and changed.counts["read"] == 0
    calls = [task for task in adapter.tasks.values() if task.kind == "hot_call"]
    assert len(calls) == 1, "the same hot episode: no second call"
    assert adapter.records["hot-1"].owned["temperature"] == "hot"
    rewritten = [w for w in store.writes_for_run(changed.run_id) if w.contact_id == "hot-1"]
    assert all(w.old is not None for w in rewritten), rewritten
    assert "cleared" not in caplog.text
    store.close()


class _SecondCreateFails(MemoryAdapter):
    """The second task request fails as a whole, the first one's task created."""

    def create_tasks(self, tasks):
        if self.calls.get("create_tasks", 0) == 1:
            raise AdapterError("HTTP 502 after retries")
        return super().create_tasks(tasks)


def test_a_failed_run_counts_what_landed_as_a_successful_one_does(tmp_path):
    adapter = _SecondCreateFails([cold_contact("hot-1"), cold_contact("c1")])
    adapter.traffic = Traffic(Limits(write_batch=100, task_batch=1))  # a request per task
    store = StateStore(tmp_path / "state.sqlite")
    assert SyncEngine(adapter, _settings(), store).run(RunOptions(now=NOW)).status == "ok"
    _turns_hot(adapter)

    failed = SyncEngine(adapter, _settings(), store).run(RunOptions(now=NOW))

    assert failed.status == "failed" and len(adapter.tasks) == 1
    recorded = store.runs("default", limit=1)[0].counts
    assert recorded["tasks_created"] == failed.counts["tasks_created"] == 1
    assert recorded["fields_written"] == failed.counts["fields_planned"] > 0
    assert recorded["records_written"] == 1 and recorded["stages_moved"] == 1
    assert "moved: 1 stage(s), 1 temperature(s), 1 task(s)" in impact(failed)
    assert "planned 1 stage(s), 1 temperature(s), 2 task(s)" in impact(failed)
    store.close()


class _Refusing(MemoryAdapter):
    """A CRM whose refusals name the field in their text already, as the field's own."""

    def write_updates(self, updates):
        return [
            WriteResult(u.contact_id, False, "score: value 30 not allowed", False, "score")
            for u in updates
        ]

    def create_tasks(self, tasks):
        return [TaskResult(t.key, False, error="owner: inactive", field="owner") for t in tasks]


def test_a_refusal_names_its_field_once(tmp_path):
    store = StateStore(tmp_path / "state.sqlite")

    summary = SyncEngine(_Refusing([hot_contact()]), _settings(), store).run(RunOptions(now=NOW))

    assert "contact/hot-1: score: value 30 not allowed" in summary.errors, summary.errors
    assert "contact/hot-1: owner: inactive" in summary.errors, summary.errors
    store.close()


def _twins() -> list[Contact]:
    """Two records of one person (the same mailbox and name), and two people alone."""
    twins = [
        cold_contact(cid).model_copy(
            update={"email": "kim@acme.example", "first_name": "Kim", "last_name": "Lee"}
        )
        for cid in ("A", "B")
    ]
    return [*twins, cold_contact("c1"), cold_contact("c2")]


PLANNED = ("scored", "read", "redecided", "fields_planned", "tasks_planned")
MOVING = ("stages_moving", "temperatures_moving")


@pytest.mark.parametrize("later", [timedelta(hours=1), timedelta(days=200)])
@pytest.mark.parametrize("rules_change", [False, True])
def test_the_dry_run_plans_what_the_real_run_does_for_a_person_of_two_records(
    tmp_path, later, rules_change
):
    """One record of a person changed, its duplicate did not: both are decided once, in the
    read phase, by the dry run as by the real run (not again from the mirror)."""
    adapter = MemoryAdapter(_twins())
    store = StateStore(tmp_path / "state.sqlite")
    assert SyncEngine(adapter, _settings(), store).run(RunOptions(now=NOW)).status == "ok"
    now = NOW + later
    adapter.edit("A", events=hot_contact().events, title="IT Director")
    rules = Rules.model_validate({"thresholds": {"mql": 1}}) if rules_change else Rules()
    engine = SyncEngine(adapter, _settings(rules=rules), store)

    dry = engine.run(RunOptions(now=now, dry_run=True))
    real = engine.run(RunOptions(now=now))

    assert real.status == "ok", real.errors
    assert {k: dry.counts[k] for k in PLANNED + MOVING} == {
        k: real.counts[k] for k in PLANNED + MOVING
    }
    assert real.counts["fields_written"] == dry.counts["fields_planned"]
    assert real.counts["tasks_created"] == dry.counts["tasks_planned"]
    assert [real.counts[f"{k}_moved"] for k in ("stages", "temperatures")] == [
        dry.counts[k] for k in MOVING
    ]
    everyone = rules_change or later >= timedelta(days=200)  # c1 and c2 due as well
    assert real.counts["scored"] == (4 if everyone else 2), "each record decided once"
    assert real.counts["read"] + real.counts["redecided"] == real.counts["scored"] - 1  # B
    store.close()


def test_the_dry_run_plans_once_for_a_person_decided_in_two_batches(tmp_path):
    """A person's two records read in two batches (one re-read by id for its failed write, the
    other changed): the real run's second decision found the first one's writes landed and
    wrote nothing; the dry run, whose writes never land, listed every change twice (3,800
    planned against 3,740 written)."""
    adapter = MemoryAdapter(_twins(), batch_size=1)
    store = StateStore(tmp_path / "state.sqlite")
    engine = SyncEngine(adapter, _settings(), store)
    assert engine.run(RunOptions(now=NOW)).status == "ok"
    adapter.fail_write_ids.add("A")
    adapter.edit("A", events=hot_contact().events, title="IT Director")
    assert engine.run(RunOptions(now=NOW)).counts["write_errors"]
    adapter.fail_write_ids.clear()
    adapter.edit("B", title="CTO")

    dry = engine.run(RunOptions(now=NOW, dry_run=True))
    real = engine.run(RunOptions(now=NOW))

    assert real.status == "ok", real.errors
    assert dry.counts["fields_planned"] == real.counts["fields_written"] > 0
    assert dry.counts["tasks_planned"] == real.counts["tasks_created"]
    store.close()


def _person_of_two() -> list[Contact]:
    """A Lead (the survivor) and its duplicate Contact, read apart: one record a batch."""
    return [
        Contact(
            id=cid,
            object_type=object_type,
            created_at=NOW - timedelta(days=days),
            updated_at=NOW - timedelta(days=2),
            email="kim@acme.example",
            first_name="Kim",
            last_name="Lee",
            events=events,
        )
        for cid, object_type, days, events in (
            ("L1", "Lead", 30, hot_contact().events[:2]),
            ("C1", "Contact", 29, []),
        )
    ]


def test_a_field_held_back_counts_and_logs_once_for_a_record_decided_twice(tmp_path, caplog):
    """A person set the Contact's temperature; the Contact changes, then the Lead: the
    person is decided with each, the Contact's temperature held back each time. The run
    counts it once (it had counted and logged it twice, and the dry run differed)."""
    adapter = MemoryAdapter(_person_of_two(), batch_size=1)
    adapter.traffic = Traffic(Limits(in_flight=2, write_batch=100, task_batch=100))
    store = StateStore(tmp_path / "state.sqlite")
    assert SyncEngine(adapter, _settings(), store).run(RunOptions(now=NOW)).status == "ok"
    adapter.human_edit("C1", temperature="cold")
    adapter.edit("C1", events=hot_contact().events)
    adapter.edit("L1", title="CTO")
    runs = {}
    for dry_run in (True, False):
        caplog.clear()
        with caplog.at_level(logging.INFO):
            runs[dry_run] = SyncEngine(adapter, _settings(), store).run(
                RunOptions(now=NOW, dry_run=dry_run)
            )
        assert runs[dry_run].status == "ok", runs[dry_run].errors
        assert caplog.text.count("Contact/C1: temperature kept") == 1, caplog.text

    assert runs[True].counts["fields_held_back"] == runs[False].counts["fields_held_back"] == 1
    assert adapter.records["C1"].owned["temperature"] == "cold"
    store.close()
