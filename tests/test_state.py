"""The state store: cursors, audit trail, task keys, retries and the cross-process lock."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import fields
from datetime import UTC, datetime

from crm_qualify.connector.model import Contact, FieldUpdate, PlannedTask, RecordUpdate
from crm_qualify.connector.sync.state import TASK_CREATED, TASK_PENDING, StateStore


def test_state_survives_reopening(tmp_path):
    path = tmp_path / "s.sqlite"
    store = StateStore(path)
    store.set_cursor("portal", "contacts", '{"ts": 1}')
    run_id = store.start_run("portal", mode="once", dry_run=False)
    update = RecordUpdate(contact_id="9", changes=[FieldUpdate(field="score", old=None, new=70)])
    store.record_writes(run_id, "portal", [update])
    store.finish_run(run_id, "ok", {"read": 1}, [])
    store.close()

    reopened = StateStore(path)
    assert reopened.get_cursor("portal", "contacts") == '{"ts": 1}'
    assert reopened.last_written("portal", [("contact", "9")]) == {("contact", "9"): {"score": 70}}
    (write,) = reopened.writes_for_run(run_id)
    assert (write.field, write.old, write.new) == ("score", None, 70)
    assert reopened.run(run_id).counts == {"read": 1}


def test_writes_recorded_as_acknowledged_are_kept_on_a_mirrored_record_too(tmp_path):
    """Acknowledged however they reach the trail: a record mirrored with nothing written yet
    answers its last writes from the mirror, as the trail does."""
    store = StateStore(tmp_path / "s.sqlite")
    store.mirror.upsert("portal", [Contact(id="9")], datetime(2026, 11, 20, tzinfo=UTC))
    run_id = store.start_run("portal", mode="once", dry_run=False)
    update = RecordUpdate(contact_id="9", changes=[FieldUpdate(field="score", old=None, new=70)])
    store.record_writes(run_id, "portal", [update])

    from_mirror = store.last_written("portal", [("contact", "9")])
    with store._tx() as conn:
        conn.execute("UPDATE mirror SET written = NULL")
    assert (
        from_mirror
        == store.last_written("portal", [("contact", "9")])
        == {("contact", "9"): {"score": 70}}
    )


def test_task_keys_move_from_pending_to_created(tmp_path):
    store = StateStore(tmp_path / "s.sqlite")
    task = PlannedTask(
        key="crmq:contact:1:hot_call:2026-W47",
        contact_id="1",
        kind="hot_call",
        subject="Call",
        due=datetime(2026, 11, 23, tzinfo=UTC),
    )
    store.mark_tasks_pending("p", "run-1", [task])
    assert store.tasks_by_key("p", [task.key])[task.key].status == TASK_PENDING
    store.mark_task_created("p", task.key, "T-1")
    record = store.tasks_by_key("p", [task.key])[task.key]
    assert (record.status, record.crm_id) == (TASK_CREATED, "T-1")
    assert [t.key for t in store.tasks_for_run("run-1")] == [task.key]


def test_an_owed_task_comes_back_from_the_ledger_as_it_was_planned(tmp_path):
    store = StateStore(tmp_path / "s.sqlite")
    task = PlannedTask(
        key="crmq:Lead:7:mql_handoff",
        object_type="Lead",
        contact_id="7",
        kind="mql_handoff",
        subject="Take over",
        body="Why: +40 demo request",
        owner_id="005A",
        due=datetime(2026, 11, 23, 9, 30, tzinfo=UTC),
        priority="high",
        task_type="call",
    )
    store.record_intents("run-1", "p", [], [task])

    assert store.owed_tasks("p", [task.key]) == [task]
    assert list(task.to_json()) == [f.name for f in fields(PlannedTask)]


def test_a_follow_up_on_its_way_is_waiting_until_it_is_no_longer_resent(tmp_path):
    """Pending, or owed and still resent: a new one of its kind waits for it. One owed that
    failed too often is resent only with its own key's plan: it holds nothing back."""
    store = StateStore(tmp_path / "s.sqlite")
    task = PlannedTask(
        key="crmq:Lead:1:hot_call:20261123T0900",
        object_type="Contact",
        contact_id="9",
        kind="hot_call",
        subject="Call",
        due=datetime(2026, 11, 23, tzinfo=UTC),
    )
    store.mark_tasks_pending("p", "run-1", [task])
    record = ("Contact", "9")
    assert store.waiting_follow_ups("p", [record], below_attempts=2) == {
        record: [("hot_call", task.key)]
    }
    store.mark_tasks_owed("p", [(task.key, "HTTP 503")])
    assert store.waiting_follow_ups("p", [record], below_attempts=2) == {
        record: [("hot_call", task.key)]
    }
    store.mark_tasks_owed("p", [(task.key, "HTTP 503")])
    assert store.waiting_follow_ups("p", [record], below_attempts=2) == {}


def test_lock_is_exclusive_until_released_or_expired(tmp_path):
    path = tmp_path / "s.sqlite"
    one, two = StateStore(path), StateStore(path)
    assert one.acquire_lock("sync:portal", "proc-1", ttl_seconds=60, now=1000.0)
    assert not two.acquire_lock("sync:portal", "proc-2", ttl_seconds=60, now=1001.0)
    assert two.acquire_lock("sync:portal", "proc-2", ttl_seconds=60, now=1061.0)
    two.release_lock("sync:portal", "proc-2")
    assert one.acquire_lock("sync:portal", "proc-1", ttl_seconds=60, now=1062.0)


def test_a_run_whose_process_is_gone_shows_as_crashed(tmp_path):
    """After a second SIGTERM (the process ends at once), `crm-qualify runs` showed the dead
    run as `running` until the next run started."""
    store = StateStore(tmp_path / "s.sqlite")
    corpse = subprocess.Popen([sys.executable, "-c", "pass"])
    corpse.wait()
    dead = store.start_run("default", mode="scheduled", dry_run=False)
    store._conn.execute(
        "UPDATE runs SET holder = ? WHERE id = ?", (f"{os.uname().nodename}:{corpse.pid}.x", dead)
    )
    alive = store.start_run("default", mode="once", dry_run=False)
    shown = {run.id: run.status for run in store.runs("default")}
    assert shown == {dead: "crashed", alive: "running"}
    store.close()


def test_intended_updates_read_back_share_short_values_but_never_mutable_ones(tmp_path):
    """A bulk call's 10,000 updates are read back from the audit trail: one string per
    repeated stage, not one per record; a list is each record's own."""
    store = StateStore(tmp_path / "s.sqlite")
    run_id = store.start_run("portal", mode="once", dry_run=False)
    updates = [
        RecordUpdate(
            contact_id=str(n),
            changes=[
                FieldUpdate(field="stage", old=None, new="marketingqualifiedlead"),
                FieldUpdate(field="score", old=n, new=1_000 + n % 2),
                FieldUpdate(field="tags", old=None, new=["hot"]),
                FieldUpdate(field="reasons", old=None, new="x" * 100),
            ],
        )
        for n in range(3)
    ]
    store.record_intents(run_id, "portal", updates, [])

    back = store.intended_updates(run_id, "portal", [("contact", str(n)) for n in range(3)])

    assert back == updates
    stages = [update.changes[0].new for update in back]
    assert stages[0] is stages[1] is stages[2]
    tags = [update.changes[2].new for update in back]
    assert tags[0] is not tags[1] and tags[0] == tags[1] == ["hot"]
    reasons = [update.changes[3].new for update in back]
    assert reasons[0] is not reasons[1]  # long texts are not kept: most are each record's own
