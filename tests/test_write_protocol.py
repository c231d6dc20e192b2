"""The write protocol the core owns: intent before effect, obligations, per-record isolation,
records needing attention, failed and crashed runs, and state-store failures."""

from __future__ import annotations

import functools
import os
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from crm_qualify.connector.commands.sync import impact
from crm_qualify.connector.contract import (
    ContactBatch,
    RawContact,
    TaskResult,
    TranslationError,
    WriteResult,
)
from crm_qualify.connector.decision.decide import decide
from crm_qualify.connector.model import (
    Contact,
    EngagementEvent,
    EventType,
    PlannedTask,
    RecordUpdate,
    Stage,
)
from crm_qualify.connector.settings import Settings
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine
from crm_qualify.connector.sync.lease import Lease, LeaseHeld
from crm_qualify.connector.sync.state import (
    TASK_CREATED,
    TASK_OWED,
    TASK_PENDING,
    StateStore,
    StateStoreError,
    sync_lock_name,
)

from tests.memory_adapter import MemoryAdapter
from tests.test_engine import NOW, cold_contact, hot_contact


class Killed(BaseException):
    """Stands in for SIGKILL: nothing in the engine may catch it or clean up after it."""


def engine_for(adapter: MemoryAdapter, store: StateStore, **settings) -> SyncEngine:
    return SyncEngine(adapter, Settings(**settings), store)


def run(adapter: MemoryAdapter, store: StateStore, **settings):
    """One run; lost answers are looked up at once unless a test sets the delay."""
    settings.setdefault("sync", {"lookup_delay_seconds": 0})
    return engine_for(adapter, store, **settings).run(RunOptions(now=NOW))


def task_keys(adapter: MemoryAdapter) -> Counter[str]:
    return Counter(task.key for task in adapter.tasks.values())


@pytest.fixture
def store(tmp_path) -> Iterator[StateStore]:
    state = StateStore(tmp_path / "state.sqlite")
    yield state
    state.close()


def clean_state(contacts: Sequence[Contact], tmp_path) -> MemoryAdapter:
    """What one uneventful run leaves in the CRM, for comparison."""
    adapter = MemoryAdapter(contacts)
    state = StateStore(tmp_path / "clean.sqlite")
    assert run(adapter, state).status == "ok"
    state.close()
    return adapter


def owned(adapter: MemoryAdapter) -> dict[str, dict]:
    return {
        cid: {k: v for k, v in c.owned.items() if k != "scored_at"}
        for cid, c in adapter.records.items()
    }


# ----- crashes at every step ---------------------------------------------------------------------
class KillAt(MemoryAdapter):
    """Dies (like kill -9) at one point of the write path, once."""

    def __init__(self, contacts: Iterable[Contact], point: str) -> None:
        super().__init__(contacts)
        self.point = point

    def write_updates(self, updates: Sequence[RecordUpdate]) -> list[WriteResult]:
        if self.point == "before_write":
            self.point = ""
            raise Killed
        results = super().write_updates(updates)
        if self.point == "after_write":
            self.point = ""
            raise Killed
        return results

    def create_tasks(self, tasks: Sequence[PlannedTask]) -> list[TaskResult]:
        if self.point == "before_tasks":
            self.point = ""
            raise Killed
        results = super().create_tasks(tasks)
        if self.point == "after_tasks":
            self.point = ""
            raise Killed
        return results


@pytest.mark.parametrize("point", ["before_write", "after_write", "before_tasks", "after_tasks"])
def test_a_kill_anywhere_in_the_write_path_converges_to_the_clean_state(tmp_path, point):
    contacts = [hot_contact("h1"), hot_contact("h2"), cold_contact("c1")]
    clean = clean_state(contacts, tmp_path)
    adapter = KillAt(contacts, point)
    state = StateStore(tmp_path / "state.sqlite")
    with pytest.raises(Killed):
        run(adapter, state)
    (dead,) = state.runs()
    assert dead.status == "running"
    summary = run(adapter, state)
    assert summary.status == "ok", summary.errors
    assert state.run(dead.id).status == "crashed"
    assert owned(adapter) == owned(clean)
    assert task_keys(adapter) == task_keys(clean), "every hand-off and call exactly once"
    assert set(task_keys(adapter).values()) == {1}
    assert all(t.status == TASK_CREATED for t in state.all_tasks("default"))
    if point == "after_write":
        audit = state.writes_for_run(dead.id)
        assert audit, "writes that reached the CRM before the kill are in the audit trail"
        assert state.last_written("default", [("contact", "h1")])[("contact", "h1")]
    state.close()


def test_the_mql_hand_off_stays_owed_after_the_stage_landed(tmp_path, store):
    """The stage is written, then the process dies: the next run sees the contact at MQL
    already, but the hand-off the decision owed is still created."""
    adapter = KillAt([hot_contact("h1")], "before_tasks")
    with pytest.raises(Killed):
        run(adapter, store)
    assert adapter.records["h1"].stage is not None
    assert adapter.records["h1"].stage.rank >= Stage.MQL.rank
    assert {t.status for t in store.all_tasks("default")} == {TASK_PENDING}, "sent, unknown"
    assert run(adapter, store).status == "ok"
    kinds = Counter(task.kind for task in adapter.tasks.values())
    assert kinds["mql_handoff"] == 1


# ----- ambiguous and failed creations ------------------------------------------------------------
class LostAnswer(MemoryAdapter):
    """Creates the tasks, then reports the outcome as unknown (the answer was lost)."""

    lose = True

    def create_tasks(self, tasks: Sequence[PlannedTask]) -> list[TaskResult]:
        results = super().create_tasks(tasks)
        if self.lose:
            self.lose = False
            return [TaskResult(t.key, False, error="timeout", uncertain=True) for t in tasks]
        return results


def test_an_unknown_outcome_is_looked_up_never_resent(store):
    adapter = LostAnswer([hot_contact("h1")])
    first = run(adapter, store)
    assert first.counts["tasks_uncertain"] == 2
    assert {t.status for t in store.all_tasks("default")} == {TASK_PENDING}
    assert run(adapter, store, sync={"lookup_delay_seconds": 120}).status == "ok"
    assert "find_tasks" not in adapter.calls, "not looked up before the search index caught up"
    assert set(task_keys(adapter).values()) == {1}, "and not sent again meanwhile"
    assert run(adapter, store).status == "ok"
    assert set(task_keys(adapter).values()) == {1}, "no duplicate after the lost answer"
    assert adapter.calls["find_tasks"] == 1
    assert {t.status for t in store.all_tasks("default")} == {TASK_CREATED}


class LostWithoutLanding(MemoryAdapter):
    """The first create's answer is lost and the tasks never landed (a reset before HubSpot
    or Salesforce acted): the look-up finds none, so they are owed again."""

    lose = True

    def create_tasks(self, tasks: Sequence[PlannedTask]) -> list[TaskResult]:
        if self.lose:
            self.lose = False
            return [TaskResult(t.key, False, error="reset", uncertain=True) for t in tasks]
        return super().create_tasks(tasks)


def test_the_dry_run_lists_the_tasks_a_look_up_will_find_missing(store):
    """147 creates of unknown outcome: the dry run planned 0 tasks, the real run right after
    looked them up, found none and created 147."""
    adapter = LostWithoutLanding([hot_contact("h1")])
    assert run(adapter, store).counts["tasks_uncertain"] == 2
    planned: list[str] = []
    dry = engine_for(adapter, store, sync={"lookup_delay_seconds": 0})
    dry.on_batch = lambda report: planned.extend(t.key for t in report.tasks)
    assert dry.run(RunOptions(now=NOW, dry_run=True)).counts["tasks_planned"] == 2
    assert {t.status for t in store.all_tasks("default")} == {TASK_PENDING}, "nothing recorded"
    real = run(adapter, store)
    assert real.counts["tasks_created"] == 2 and sorted(task_keys(adapter)) == sorted(planned)


class RefuseTasks(MemoryAdapter):
    refuse = 1

    def create_tasks(self, tasks: Sequence[PlannedTask]) -> list[TaskResult]:
        if self.refuse:
            self.refuse -= 1
            return [TaskResult(t.key, False, error="owner locked") for t in tasks]
        return super().create_tasks(tasks)


def test_a_refused_task_stays_owed_and_is_created_next_run(store):
    adapter = RefuseTasks([hot_contact("h1")])
    first = run(adapter, store)
    assert first.status == "partial" and first.counts["task_errors"] == 2
    # each refused task named, the record needing attention counted once
    assert "contact/h1: task hot_call: owner locked" in first.errors
    assert "contact/h1: task mql_handoff: owner locked" in first.errors
    assert {t.status for t in store.all_tasks("default")} == {TASK_OWED}
    assert run(adapter, store).status == "ok"
    assert sorted(task_keys(adapter).values()) == [1, 1]


def test_a_record_whose_two_tasks_are_refused_needs_attention_once(store):
    """A hot MQL's call and hand-off refused for good (an owner that does not exist): the
    run said 'records needing attention 4' for 2 records and listed each twice alike."""
    first = run(RefuseOwner([hot_contact("h1")]), store)
    assert first.counts["task_errors"] == 2 and first.counts["records_needing_attention"] == 1
    assert len(store.attention("default")) == 1
    assert len(set(first.errors)) == len(first.errors) == 2


def test_the_run_says_what_landed_not_what_it_planned(store):
    """'moved: 51 task(s)' was printed for a run whose one create request failed: planned
    counts, though none landed."""
    adapter = RefuseTasks([hot_contact("h1"), hot_contact("h2")])
    adapter.refuse_write_ids.add("h2")
    summary = run(adapter, store)
    assert summary.counts["stages_moving"] == 2 and summary.counts["stages_moved"] == 1
    line = impact(summary)
    assert line.startswith("moved: 1 stage(s), 1 temperature(s), 0 task(s),"), line
    assert "; planned 2 stage(s), 2 temperature(s), 4 task(s): the rest is sent again" in line


def test_a_second_state_file_on_the_same_portal_creates_no_duplicate(tmp_path):
    adapter = MemoryAdapter([hot_contact("h1"), hot_contact("h2")])
    one = StateStore(tmp_path / "one.sqlite")
    assert run(adapter, one).status == "ok"
    before = task_keys(adapter)
    for record in adapter.records.values():  # the CRM's stage says lead again: plans re-run
        record.stage = Stage.LEAD
        record.owned.pop("stage", None)
    two = StateStore(tmp_path / "two.sqlite")
    summary = run(adapter, two)
    assert summary.counts["tasks_found_in_crm"] == len(before)
    assert task_keys(adapter) == before
    one.close()
    two.close()


# ----- per-record isolation --------------------------------------------------------------------
class RawRecords(MemoryAdapter):
    """Hands the core raw records, one of them untranslatable."""

    def read_changed(
        self, cursor: str | None, *, until: datetime, known: object = None
    ) -> Iterator[ContactBatch]:
        def bad() -> Contact:
            raise TranslationError("num_employees", "'many' is not a number")

        def crash() -> Contact:
            return {}["missing"]

        raw = [
            RawContact(
                f"contact/{c.id}", functools.partial(c.model_copy, deep=True), ("contact", c.id)
            )
            for c in self.records.values()
        ]
        raw.insert(1, RawContact("contact/bad-1", bad, ("contact", "bad-1")))
        raw.insert(2, RawContact("contact/bug-1", crash, ("contact", "bug-1")))
        yield ContactBatch(raw=raw, cursor=None)


def test_one_bad_value_never_stops_the_batch(store):
    adapter = RawRecords([hot_contact("h1"), cold_contact("c1")])
    summary = run(adapter, store)
    assert summary.status == "partial"
    assert "contact/bad-1: num_employees: 'many' is not a number" in summary.errors
    assert any(e.startswith("contact/bug-1: record: KeyError") for e in summary.errors)
    assert adapter.records["h1"].owned["stage"] == "mql"
    attention = {(a.contact_id, a.field) for a in store.attention("default")}
    assert attention == {("bad-1", "num_employees"), ("bug-1", None)}


class UntranslatableRecord(MemoryAdapter):
    """A record the CRM holds with a value no translation takes (`bad` in `self.bad`): read
    by id (a retry) and among the changed records alike, until a person deletes it."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.bad = {"bad-1"}

    def _raw(self, batch: ContactBatch) -> ContactBatch:
        def bad() -> Contact:
            raise TranslationError("num_employees", "'many' is not a number")

        raw = [RawContact(f"contact/{i}", bad, ("contact", i)) for i in sorted(self.bad)]
        return ContactBatch(contacts=batch.contacts, raw=raw, cursor=batch.cursor)

    def read_changed(self, cursor, *, until, known=None):
        for batch in super().read_changed(cursor, until=until, known=known):
            yield self._raw(batch)

    def read_contacts(self, ids):
        for batch in super().read_contacts(ids):
            yield self._raw(batch) if any(i in self.bad for _, i in ids) else batch


def test_a_record_met_twice_in_a_run_is_reported_once_and_a_full_read_lets_it_go(store):
    """Read again by id (its retry was due) and met among the changed records: each error
    was reported and counted twice ("read errors 8, records needing attention 8" for 4). And
    once deleted in the CRM, `errors` listed it for good: never translated, it was never in
    the mirror a full read prunes."""
    adapter = UntranslatableRecord([hot_contact("h1")], batch_size=10)
    first = run(adapter, store)
    assert first.counts["read_errors"] == first.counts["records_needing_attention"] == 1
    retry_due = NOW + timedelta(hours=2)
    engine = engine_for(adapter, store, sync={"lookup_delay_seconds": 0})
    again = engine.run(RunOptions(now=retry_due))
    assert adapter.calls["read_contacts"] == 1, "re-read by id: its retry was due"
    assert again.errors == ["contact/bad-1: num_employees: 'many' is not a number"]
    assert again.counts["read_errors"] == again.counts["records_needing_attention"] == 1
    assert [a.contact_id for a in store.attention("default")] == ["bad-1"]

    adapter.bad.clear()  # a person deleted it
    engine.run(RunOptions(now=retry_due, full=True))
    assert store.attention("default") == []


def test_a_full_read_lets_go_of_a_deleted_record_that_needed_attention(store):
    """Its error was cleared, but the mirror kept it: the full read's prune skips a record
    waiting for a retry, and the retry was cleared only after it."""
    adapter = MemoryAdapter([hot_contact("h1"), cold_contact("c1")])
    adapter.refuse_write_ids.add("h1")
    run(adapter, store)
    assert [a.contact_id for a in store.attention("default")] == ["h1"]
    adapter.delete("h1")
    engine = engine_for(adapter, store, sync={"lookup_delay_seconds": 0})
    summary = engine.run(RunOptions(now=NOW + timedelta(minutes=5), full=True))
    assert store.attention("default") == []
    assert store.mirror.keys("default") == {("contact", "c1")}
    assert summary.counts["records_gone"] == 1


class PicklistRefusal(MemoryAdapter):
    def write_updates(self, updates: Sequence[RecordUpdate]) -> list[WriteResult]:
        results = super().write_updates([u for u in updates if u.contact_id != "c1"])
        refused = WriteResult("c1", False, "bad value for restricted picklist", False, "Rating")
        by_id = {r.contact_id: r for r in results}
        return [by_id.get(u.contact_id, refused) for u in updates]


def test_a_refused_value_needs_attention_until_the_configuration_changes(store):
    adapter = PicklistRefusal([hot_contact("h1"), cold_contact("c1")])
    first = run(adapter, store)
    assert "contact/c1: Rating: bad value for restricted picklist" in first.errors
    (record,) = store.attention("default")
    assert (record.contact_id, record.field, record.attempts) == ("c1", "Rating", 1)
    engine = engine_for(adapter, store, sync={"lookup_delay_seconds": 0})
    engine.run(RunOptions(now=NOW))
    assert adapter.calls.get("read_contacts", 0) == 0, (
        "on backoff: not re-read while nothing changed"
    )
    operations = {"logging": {"level": "DEBUG"}, "server": {"port": 9200}}
    engine_for(adapter, store, sync={"lookup_delay_seconds": 0}, **operations).run(
        RunOptions(now=NOW)
    )
    assert adapter.calls.get("read_contacts", 0) == 0, "logs and the server change no outcome"
    settings = Settings(rules={"thresholds": {"mql": 55}}, sync={"lookup_delay_seconds": 0})
    changed = SyncEngine(adapter, settings, store)
    changed.run(RunOptions(now=NOW))
    assert adapter.calls.get("read_contacts", 0) == 1, "a configuration change retries it at once"


# ----- failed and crashed runs -------------------------------------------------------------------
class Broken(MemoryAdapter):
    def read_changed(self, cursor, *, until, known=None):
        raise RuntimeError("bug in the adapter")


def test_an_unexpected_error_ends_the_run_failed_with_its_reason(store):
    summary = run(Broken([cold_contact("c1")]), store)
    assert summary.status == "failed"
    assert summary.errors == ["unexpected RuntimeError: bug in the adapter"]
    assert store.run(summary.run_id).status == "failed"


# ----- state-store failures ----------------------------------------------------------------------
class FailingStore(StateStore):
    """Fails its Nth write transaction the way sqlite does when the disk fills up."""

    fail_on = -1

    def _tx(self):
        self.fail_on -= 1
        if self.fail_on == 0:
            raise StateStoreError(
                f"state store {self.path}: cannot write: database or disk is full"
            )
        return super()._tx()


@pytest.mark.parametrize("fail_on", range(1, 12))
def test_no_crm_write_without_an_audit_row_whatever_write_fails(tmp_path, fail_on):
    adapter = MemoryAdapter([hot_contact("h1"), cold_contact("c1")])
    state = FailingStore(tmp_path / "state.sqlite")
    state.fail_on = fail_on
    try:
        summary = run(adapter, state)
    except StateStoreError:
        assert fail_on == 1, "only a run that cannot be recorded at all raises"
        assert adapter.write_calls() == 0
    else:
        assert summary.status == "failed", f"write {fail_on} failed: the run must say so"
        assert any("disk is full" in e for e in summary.errors)
    state.fail_on = -1
    audited = {(w.contact_id, w.field) for r in state.runs() for w in state.writes_for_run(r.id)}
    landed = {(cid, f) for cid, c in adapter.records.items() for f in c.owned}
    assert landed <= audited, "every value in the CRM has an audit row"
    ledger = {t.key for t in state.all_tasks("default")}
    assert set(task_keys(adapter)) <= ledger, "every task in the CRM is in the ledger"
    assert run(adapter, state).status == "ok"
    assert set(task_keys(adapter).values()) <= {1}
    state.close()


def test_a_corrupt_state_file_is_a_clear_error(tmp_path):
    path = tmp_path / "state.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StateStoreError, match="damaged; restore it from a backup"):
        StateStore(path)


def test_a_locked_state_file_is_a_clear_error_and_nothing_is_sent(tmp_path):
    path = tmp_path / "state.sqlite"
    StateStore(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    adapter = MemoryAdapter([hot_contact("h1")])
    try:
        with pytest.raises(StateStoreError, match="another process holds the file"):
            state = StateStore(path, busy_timeout_ms=50)
            run(adapter, state)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert adapter.write_calls() == 0


# ----- the lease ---------------------------------------------------------------------------------
def test_a_dead_holder_on_this_host_is_taken_over_at_once(store):
    corpse = subprocess.Popen([sys.executable, "-c", "pass"])
    corpse.wait()
    host = os.uname().nodename
    assert store.acquire_lock(sync_lock_name("default"), f"{host}:{corpse.pid}:sync:x", 60, 0)
    with Lease(store, "default", "sync", clock=lambda: 1.0) as lease:
        assert store.lock_info(lease.name)[0] == lease.holder


def test_a_lease_left_by_this_pids_earlier_process_is_taken_over_at_once(store):
    """A container's process is pid 1 after every restart: the lease its killed predecessor
    left (pid 1 on the same host) was taken for the restarted daemon's own, and its first
    runs were skipped, "a daemon (pid 1 on vm) holds the sync lease"."""
    earlier = f"{os.uname().nodename}:{os.getpid()}.0ld1ncar:daemon:abc"
    assert store.acquire_lock(sync_lock_name("default"), earlier, 60, time.time())
    with Lease(store, "default", "sync") as lease:
        assert store.lock_info(lease.name)[0] == lease.holder
    sibling = Lease(store, "default", "sync")
    with Lease(store, "default", "rollback"), pytest.raises(LeaseHeld):
        sibling.acquire()  # another lease of this very process still counts


def test_a_zombie_holder_is_taken_over_at_once(store):
    """Killed and not yet reaped by its parent: the pid still answers a signal."""
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.time() + 10
    while Path(f"/proc/{zombie.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
        assert time.time() < deadline
        time.sleep(0.01)
    try:
        holder = f"{os.uname().nodename}:{zombie.pid}.abcdef12:daemon:x"
        assert store.acquire_lock(sync_lock_name("default"), holder, 60, time.time())
        with Lease(store, "default", "sync") as lease:
            assert store.lock_info(lease.name)[0] == lease.holder
    finally:
        zombie.wait()


def test_a_live_holder_is_named_in_the_refusal(store):
    holder = f"{os.uname().nodename}:{os.getpid()}:daemon:abc"
    assert store.acquire_lock(sync_lock_name("default"), holder, 60, time.time())
    with pytest.raises(LeaseHeld, match=rf"daemon \(pid {os.getpid()} on .*\) holds .* until"):
        Lease(store, "default", "sync").acquire()


def test_the_heartbeat_keeps_a_short_lease_alive(store):
    with Lease(store, "default", "sync", ttl_seconds=0.3) as lease:
        time.sleep(0.5)
        holder, expires = store.lock_info(lease.name)
        assert holder == lease.holder and expires > time.time()


# ----- the admin's view --------------------------------------------------------------------------
def test_errors_lists_records_needing_attention_and_runs_shows_crashed(tmp_path, capsys):
    from crm_qualify.connector.cli import main

    path = tmp_path / "state.sqlite"
    state = StateStore(path)
    adapter = KillAt([hot_contact("h1")], "after_write")
    with pytest.raises(Killed):
        run(adapter, state)
    # c1 changed after h1: the killed full read goes on from its cursor and reads it
    later = cold_contact("c1").model_copy(update={"updated_at": NOW})
    refusing = PicklistRefusal([hot_contact("h1"), later])
    run(refusing, state)
    state.close()
    config = tmp_path / "crm-qualify.toml"
    config.write_text(f"[crm]\nadapter = 'hubspot'\n[sync]\nstate_path = '{path}'\n")
    assert main(["errors", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "1 record(s) need attention" in out
    assert "contact/c1" in out and "Rating" in out and "restricted picklist" in out
    assert main(["runs", "--config", str(config)]) == 0
    (crashed,) = [line for line in capsys.readouterr().out.splitlines() if "crashed" in line]
    assert " ? " in crashed, "what a dead run read is not known: not shown as 0"
    dead = next(r for r in StateStore(path).runs() if r.status == "crashed")
    assert dead.details.get("rules_version"), "the rules it wrote with, kept from its start"


def test_a_state_file_from_the_first_release_gains_the_new_columns(tmp_path):
    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE field_writes (seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL,"
        " instance TEXT NOT NULL, object_type TEXT NOT NULL, contact_id TEXT NOT NULL,"
        " field TEXT NOT NULL, old TEXT, new TEXT, at TEXT NOT NULL);"
        "INSERT INTO field_writes (run_id, instance, object_type, contact_id, field, old, new, at)"
        " VALUES ('r1', 'default', 'contact', '9', 'score', 'null', '70', '2026-01-01');"
    )
    old.commit()
    old.close()
    state = StateStore(path)
    assert state.last_written("default", [("contact", "9")]) == {("contact", "9"): {"score": 70}}
    state.close()


@pytest.mark.parametrize(
    ("pragma", "message"),
    [
        ("PRAGMA max_page_count = {pages}", "the disk is full"),
        ("PRAGMA query_only = ON", "read-only"),
    ],
)
def test_a_real_sqlite_write_failure_stops_before_the_next_crm_call(tmp_path, pragma, message):
    """sqlite's own 'database or disk is full' (the file may not grow past its size at open)
    and read-only errors: a clear error, and no CRM value without its audit row."""
    adapter = MemoryAdapter([hot_contact(f"h{n}") for n in range(6)] + [cold_contact("c1")])
    state = StateStore(tmp_path / "state.sqlite")
    pages = state._conn.execute("PRAGMA page_count").fetchone()[0]
    state._conn.execute(pragma.format(pages=pages + 2))
    try:
        summary = run(adapter, state)
    except StateStoreError as exc:
        assert message in str(exc)
        assert adapter.write_calls() == 0, "a run that cannot be recorded sends nothing"
    else:
        assert summary.status == "failed"
        assert any(message in error for error in summary.errors), summary.errors
        audited = {
            (w.contact_id, w.field) for r in state.runs() for w in state.writes_for_run(r.id)
        }
        landed = {(cid, f) for cid, c in adapter.records.items() for f in c.owned}
        assert landed <= audited, "every value in the CRM has an audit row"
    state.close()


class RefuseOwner(MemoryAdapter):
    def create_tasks(self, tasks: Sequence[PlannedTask]) -> list[TaskResult]:
        return [TaskResult(t.key, False, error="owner inactive", retryable=False) for t in tasks]


def test_a_task_refused_again_at_run_start_is_listed_as_needing_attention(store):
    adapter = RefuseOwner([hot_contact("h1")])
    run(adapter, store)
    store.clear_retries("default", [("contact", "h1")])
    again = run(adapter, store)
    assert any("owner inactive" in error for error in again.errors)
    attention = [(a.contact_id, a.field) for a in store.attention("default")]
    assert attention == [("h1", "task hot_call")]  # the first refused, by its kind


def test_a_record_a_write_finds_gone_leaves_its_persons_decision_by_the_next_run(store):
    """One person of two records, hot by b's activity. b is deleted in the CRM while a gets
    a page view: the run reads a, decides the person with b's mirrored facts, and its write
    to b is answered 'gone', so b leaves the mirror. a's written score still counted b's
    activity, until the next full read; the next run decides a again without it."""
    a = cold_contact("a").model_copy(update={"email": "kim@acme.example"})
    b = hot_contact("b").model_copy(update={"email": "kim@acme.example"})
    adapter = MemoryAdapter([a, b])
    assert run(adapter, store).status == "ok"
    with_b = adapter.records["a"].owned["score"]
    adapter.delete("b")
    viewed = EngagementEvent(type=EventType.PAGE_VIEW, at=NOW - timedelta(hours=1))
    adapter.edit("a", events=[*adapter.records["a"].events, viewed])
    second = run(adapter, store)
    assert second.counts["records_gone"] == 1, (second.errors, dict(second.counts))
    assert adapter.records["a"].owned["score"] >= with_b, "decided with b's facts this run"

    later = engine_for(adapter, store, sync={"lookup_delay_seconds": 0})
    assert later.run(RunOptions(now=NOW + timedelta(minutes=5))).status == "ok"
    alone = decide(adapter.records["a"], Settings().rules, NOW + timedelta(minutes=5))
    assert adapter.records["a"].owned["score"] == alone.score.total < with_b
