"""The mirror: decisions that change with the clock or the rules reach contacts nobody touched,
with no read of them; own writes are known without a read; a full read drops deleted records."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from crm_qualify.connector.decision.rules import Rules
from crm_qualify.connector.model import FieldUpdate, RecordUpdate
from crm_qualify.connector.ops.report import build_report, sla_detail
from crm_qualify.connector.settings import FieldPolicy, Settings
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine
from crm_qualify.connector.sync.mirror import AckedWrite
from crm_qualify.connector.sync.state import StateStore

from tests.memory_adapter import MemoryAdapter
from tests.test_engine import NOW, cold_contact, hot_contact


@pytest.fixture
def store(tmp_path):
    store = StateStore(tmp_path / "state.sqlite")
    yield store
    store.close()


def synced(store: StateStore, settings: Settings | None = None) -> tuple[MemoryAdapter, SyncEngine]:
    adapter = MemoryAdapter([hot_contact(), cold_contact("c1"), cold_contact("c2")])
    engine = SyncEngine(adapter, settings or Settings(), store)
    first = engine.run(RunOptions(now=NOW))
    assert first.status == "ok", first.errors
    return adapter, engine


def reads(adapter: MemoryAdapter) -> int:
    return adapter.calls.get("read_contacts", 0)


def test_a_contact_left_alone_cools_and_is_flagged_for_renurture_without_being_read(store):
    adapter, engine = synced(store)
    assert adapter.records["hot-1"].owned["temperature"] == "hot"
    before = reads(adapter)

    later = engine.run(RunOptions(now=NOW + timedelta(days=200)))

    assert later.status == "ok", later.errors
    assert later.counts["read"] == 0 and reads(adapter) == before, "no read of anyone"
    assert later.counts["redecided"] == 3
    hot = adapter.records["hot-1"].owned
    assert hot["temperature"] == "cold"
    assert hot["renurture"] is True
    assert hot["score"] < 50


def test_an_idle_rerun_reads_and_writes_nothing(store):
    adapter, engine = synced(store)
    writes = adapter.calls["write_updates"]

    again = engine.run(RunOptions(now=NOW + timedelta(minutes=15)))

    assert again.counts["read"] == 0
    assert adapter.skipped == 3, "our own writes are known by their stamps"
    assert again.counts["fields_written"] == again.counts["tasks_created"] == 0
    assert adapter.calls["write_updates"] == writes


def test_a_person_edit_after_our_write_is_read_again(store):
    adapter, engine = synced(store)
    adapter.human_edit("c1", temperature="hot")

    again = engine.run(RunOptions(now=NOW + timedelta(minutes=15)))

    assert again.counts["read"] == 1
    assert again.counts["redecided"] == 0, "nobody else's decision can have moved"


def test_a_rules_change_rescores_everyone_from_the_mirror_after_a_dry_run_shows_it(store):
    adapter, _ = synced(store)
    old_version = adapter.records["c1"].owned["rules_version"]
    rules = Rules.model_validate({"thresholds": {"mql": 1}})
    engine = SyncEngine(adapter, Settings(rules=rules), store)
    writes = adapter.calls["write_updates"]

    dry = engine.run(RunOptions(now=NOW + timedelta(hours=1), dry_run=True))

    assert adapter.calls["write_updates"] == writes, "a dry run writes nothing"
    assert dry.details["previous_rules_version"] == old_version
    assert dry.counts["redecided"] == 3 and dry.counts["read"] == 0
    assert dry.counts["stages_moving"] >= 1

    real = engine.run(RunOptions(now=NOW + timedelta(hours=1)))

    assert real.counts["read"] == 0
    assert real.counts["stages_moving"] == dry.counts["stages_moving"]
    assert real.counts["fields_written"] == dry.counts["fields_planned"]
    assert real.counts["tasks_created"] == dry.counts["tasks_planned"]
    assert (
        {r.owned["rules_version"] for r in adapter.records.values()}
        == {real.details["rules_version"]}
        != {old_version}
    )
    assert store.runs("default", limit=1)[0].details["previous_rules_version"] == old_version


def test_an_overdue_open_follow_up_escalates_once_without_a_read(store):
    adapter, engine = synced(store)
    calls = [t for t in adapter.tasks.values() if t.kind == "hot_call"]
    assert len(calls) == 1
    before = reads(adapter)

    late = engine.run(RunOptions(now=calls[0].due + timedelta(hours=2)))
    again = engine.run(RunOptions(now=calls[0].due + timedelta(hours=30)))

    escalations = [
        t for t in adapter.tasks.values() if t.kind == "escalation" and ":hot_call:" in t.key
    ]
    assert len(escalations) == 1, "the overdue call escalated once"
    assert late.counts["read"] == again.counts["read"] == 0 and reads(adapter) == before


def test_a_follow_up_a_person_deleted_is_not_escalated_and_not_looked_up_again(store):
    adapter, engine = synced(store)
    tasks = {t.kind: crm_id for crm_id, t in adapter.tasks.items()}
    deleted = adapter.tasks.pop(tasks["hot_call"])  # no read reports it: the record is unchanged
    handoff = adapter.tasks[tasks["mql_handoff"]]
    late = max(deleted.due, handoff.due) + timedelta(days=2)

    dry = engine.run(RunOptions(now=late, dry_run=True))
    assert dry.counts["tasks_planned"] == 1, "the dry run plans what the run will"
    run = engine.run(RunOptions(now=late))
    escalated = [t.key for t in adapter.tasks.values() if t.kind == "escalation"]
    assert escalated == [f"{handoff.key}:escalation"], "the hand-off is still there: escalated"
    assert run.counts["read"] == 0 and adapter.calls["find_tasks"] == 2
    assert run.counts["tasks_planned"] == 1 and run.counts["follow_ups_gone"] == 1
    assert store.tasks_by_key("default", [deleted.key])[deleted.key].status == "gone"

    engine.run(RunOptions(now=late + timedelta(days=1)))
    assert adapter.calls["find_tasks"] == 2, "a follow-up known gone is not asked for again"
    assert len([t for t in adapter.tasks.values() if t.kind == "escalation"]) == 1

    sla = build_report(store, "default", late).sla["hot_call"]
    assert sla["deleted_in_crm"] == 1 and sla["removed_by_us"] == 0 and sla["tasks"] == 0
    assert "1 deleted in the CRM (not counted)" in sla_detail(sla)


def test_a_full_read_drops_deleted_records_from_the_mirror(store):
    adapter, engine = synced(store)
    assert store.mirror.count("default") == 3
    del adapter.records["c2"]

    incremental = engine.run(RunOptions(now=NOW + timedelta(minutes=5)))
    assert store.mirror.count("default") == 3, "an incremental read cannot see a deletion"
    assert incremental.counts["records_gone"] == 0

    full = engine.run(RunOptions(now=NOW + timedelta(minutes=10), full=True))

    assert full.status == "ok", full.errors
    assert full.counts["records_gone"] == 1
    assert store.mirror.count("default") == 2
    assert full.counts["fields_written"] == 0, "a full read of unchanged records writes nothing"


def test_a_reconciliation_is_due_after_the_configured_days(store):
    from crm_qualify.connector.sync.full_read import FULL_DONE_KEY

    adapter, engine = synced(store)
    reads_before = adapter.calls["read_changed"]
    engine.run(RunOptions(now=NOW + timedelta(minutes=5)))
    assert adapter.skipped == 3, "within the week: incremental, own writes known"

    store.set_meta("default", FULL_DONE_KEY, (NOW - timedelta(days=8)).isoformat())
    skipped = adapter.skipped
    due = engine.run(RunOptions(now=NOW + timedelta(minutes=10)))

    assert adapter.calls["read_changed"] == reads_before + 2
    assert adapter.skipped == skipped, "a full read leaves nothing out"
    assert due.counts["read"] == 3


def test_other_owned_fields_read_everyone_again_once_an_older_state_file_only_if_changed(store):
    from crm_qualify.connector.sync.fingerprints import READ_WITH_KEY

    adapter, engine = synced(store)
    store.delete_meta("default", READ_WITH_KEY)  # as a state file from before the key
    older = engine.run(RunOptions(now=NOW + timedelta(minutes=5)))
    assert older.counts["read"] == 0 and store.get_meta("default", READ_WITH_KEY)

    fields = {**Settings().fields, "duplicate": FieldPolicy(owned=True)}
    other = SyncEngine(adapter, Settings(fields=fields), store)
    dry = other.run(RunOptions(now=NOW + timedelta(minutes=10), dry_run=True))
    assert dry.counts["read"] == 3, "the dry run reads what the real run will"
    changed = other.run(RunOptions(now=NOW + timedelta(minutes=10)))
    assert changed.counts["read"] == 3 and changed.counts["records_gone"] == 0
    assert other.run(RunOptions(now=NOW + timedelta(minutes=15))).counts["read"] == 0

    store.delete_meta("default", READ_WITH_KEY)  # an older state file, and a change with it:
    back = SyncEngine(adapter, Settings(), store)  # decided with other fields, so read again
    assert back.run(RunOptions(now=NOW + timedelta(minutes=20))).counts["read"] == 3


def test_records_read_while_our_clock_ran_ahead_are_decided_again(store):
    """A full read under a clock a day ahead, then the clock set right: the records' read
    times lay in the future, every run took them for its own reads and left them out, and a
    rules change reached none of them."""
    ahead = datetime.now(UTC) + timedelta(days=1)
    store.mirror.upsert("default", [cold_contact("c1"), cold_contact("c2")], ahead)
    now = datetime.now(UTC)
    decided = [
        m.contact.id
        for chunk in store.mirror.chunks("default", read_before=now, exclude=set(), due_by=None)
        for m in chunk
    ]
    assert decided == ["c1", "c2"]


def test_records_needing_attention_wait_for_their_backoff_not_every_run(store):
    adapter, engine = synced(store)
    adapter.refuse_write_ids.add("hot-1")
    later = engine.run(RunOptions(now=NOW + timedelta(days=120)))
    assert later.counts["write_errors"] == 1
    attempts = adapter.calls["write_updates"]

    again = engine.run(RunOptions(now=NOW + timedelta(days=120, minutes=15)))

    assert again.counts["write_errors"] == 0
    assert adapter.calls["write_updates"] == attempts
    waiting = [
        m.contact.id
        for chunk in store.mirror.chunks(
            "default", read_before=NOW + timedelta(days=999), exclude=set(), due_by=None
        )
        for m in chunk
    ]
    assert sorted(waiting) == ["c1", "c2"], "the refused record waits for its re-read"


def test_meeting_a_refused_record_again_before_its_retry_is_no_attempt(store):
    """Each run within the read's look-back met the record again and counted an attempt: five
    runs in six minutes pushed its retry from an hour to a day away."""
    refusal = [("contact", "8", "cq_score", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST")]
    fingerprints = {"contact": "f1"}
    store.add_attention("default", refusal, fingerprints, NOW)
    for minutes in (1, 3, 5):
        store.add_attention("default", refusal, fingerprints, NOW + timedelta(minutes=minutes))
    (record,) = store.attention("default")
    assert (record.attempts, record.next_at) == (1, _at(NOW + timedelta(hours=1)))

    store.add_attention("default", refusal, fingerprints, NOW + timedelta(hours=1))
    (retried,) = store.attention("default")
    assert retried.attempts == 2, "met at its retry: an attempt"
    assert retried.next_at == _at(NOW + timedelta(hours=3))

    store.add_attention("default", refusal, {"contact": "f2"}, NOW + timedelta(hours=1, minutes=5))
    assert store.attention("default")[0].attempts == 3, "a new configuration tried it again"


def _at(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def test_only_contacts_whose_decision_can_have_moved_are_decided_again(store):
    adapter, engine = synced(store)

    soon = engine.run(RunOptions(now=NOW + timedelta(minutes=30)))
    next_day = engine.run(RunOptions(now=NOW + timedelta(days=1, hours=1)))
    page_views_decay = engine.run(RunOptions(now=NOW + timedelta(days=10)))

    assert soon.counts["redecided"] == 0, "nothing can have moved within half an hour"
    assert next_day.counts["redecided"] == 1, (
        "the hot lead's call can be overdue; the cold contacts' page views (5 days old) count"
        " in full for 9 more days"
    )
    assert page_views_decay.counts["redecided"] == 3, "the page views left the fresh window"


def test_our_last_writes_are_kept_on_the_mirror_and_agree_with_the_audit_trail(store):
    adapter, engine = synced(store)
    adapter.human_edit("c1", score=99)
    engine.run(RunOptions(now=NOW + timedelta(days=200)))
    keys = [("contact", cid) for cid in adapter.records]

    from_mirror = store.last_written("default", keys)
    with store._tx() as conn:
        conn.execute("UPDATE mirror SET written = NULL")
    from_audit = store.last_written("default", keys)

    assert from_mirror == from_audit
    assert from_mirror[("contact", "hot-1")]["temperature"] == "cold"


def test_unless_edited_keeps_a_person_s_value_with_history_from_before_the_mirror(store):
    settings = Settings(fields={"score": FieldPolicy(policy="unless_edited")})
    adapter, engine = synced(store, settings)
    with store._tx() as conn:  # as after an upgrade: writes known only to the audit trail
        conn.execute("UPDATE mirror SET written = NULL")
    adapter.human_edit("hot-1", score=1)
    engine.run(RunOptions(now=NOW + timedelta(days=200)))  # rewrites other fields

    assert adapter.records["hot-1"].owned["score"] == 1, "the person's value is kept"
    (written,) = store._query("SELECT written FROM mirror WHERE contact_id = 'hot-1'")[0]
    assert json.loads(written)["score"] == [70], "seeded from the audit trail, then patched"


def test_a_record_read_again_after_leaving_the_mirror_starts_its_writes_from_the_trail(store):
    """A new mirror row starts with nothing written only for a record the audit trail has
    never seen; one we wrote before (deleted and restored in the CRM) starts from the trail."""
    settings = Settings(fields={"score": FieldPolicy(policy="unless_edited")})
    adapter, engine = synced(store, settings)
    fresh = store._query("SELECT contact_id, written FROM mirror ORDER BY contact_id")
    assert all(written is not None for _, written in fresh), "every first write was patched"
    with store._tx() as conn:
        conn.execute("DELETE FROM mirror WHERE contact_id = 'hot-1'")
    adapter.human_edit("hot-1", score=1)  # read again as changed: a new mirror row

    engine.run(RunOptions(now=NOW + timedelta(days=200)))

    assert adapter.records["hot-1"].owned["score"] == 1, "the person's value is kept"
    (written,) = store._query("SELECT written FROM mirror WHERE contact_id = 'hot-1'")[0]
    assert json.loads(written)["score"] == [70], "seeded from the audit trail"


def test_review_moments_in_another_offset_are_compared_as_the_same_instant(store):
    """Event times can carry any UTC offset; the mirror compares review moments as text."""
    from datetime import timezone

    adapter, engine = synced(store)
    new_york = timezone(timedelta(hours=-5))
    soon = engine.run(RunOptions(now=(NOW + timedelta(minutes=30)).astimezone(new_york)))
    # One minute past the page views leaving the fresh window (12:00 UTC), as 07:01-05:00.
    later = engine.run(RunOptions(now=(NOW + timedelta(days=10, minutes=1)).astimezone(new_york)))

    assert soon.counts["redecided"] == 0
    assert later.counts["redecided"] == 3


def test_a_state_file_from_before_the_review_table_keeps_episodes_and_review_moments(tmp_path):
    """Hot episodes and review moments were columns of the mirror row; opening such a file
    moves them to their own table, so nobody gets a second call and nothing falls due early."""
    path = tmp_path / "state.sqlite"
    store = StateStore(path)
    adapter, engine = synced(store)
    review = "SELECT object_type, contact_id, hot_since, recheck_at FROM mirror_review ORDER BY 2"
    moved = store._query(review)
    with store._tx() as conn:  # as an older release left the file
        conn.executemany(
            "UPDATE mirror SET hot_since = ?, recheck_at = ? WHERE object_type = ?"
            " AND contact_id = ?",
            [(since, recheck, obj, cid) for obj, cid, since, recheck in moved],
        )
        conn.execute("DROP TABLE mirror_review")
    store.close()

    reopened = StateStore(path)
    try:
        assert reopened._query(review) == moved
        assert reopened.mirror.episodes("default", [("contact", "hot-1")])[("contact", "hot-1")]
        again = SyncEngine(adapter, Settings(), reopened)
        soon = again.run(RunOptions(now=NOW + timedelta(minutes=30)))
        assert soon.counts["redecided"] == 0 and adapter.calls["create_tasks"] == 1
    finally:
        reopened.close()


def test_a_stamp_of_our_write_is_ours_only_while_the_fields_we_never_write_are_as_read(store):
    """A change by someone else between our read and our write leaves our write's stamp on
    the record: the digest of the fields we never write (where the adapter gives one) tells
    it from our write alone. Without one, the stamp decides as before."""
    mirror, key = store.mirror, ("contact", "c1")
    read = cold_contact("c1").model_copy(update={"updated_at": NOW, "source_digest": "as-read"})
    mirror.upsert("default", [read], NOW)
    update = RecordUpdate(contact_id="c1", changes=[FieldUpdate(field="score", new=50)])
    ours = NOW + timedelta(minutes=5)
    acked = AckedWrite(update, ours - timedelta(seconds=1), ours, stamp=ours)
    mirror.record_batch("default", [acked], [], [], ours)

    def known(*hit) -> bool:
        return key in mirror.known_versions("default", [(key, *hit)])

    assert known(ours, "as-read"), "our write alone"
    assert not known(ours, "changed"), "someone's change, then our write"
    assert known(ours) and known(ours, None), "no digest: the stamp decides"
    assert known(NOW - timedelta(minutes=1), "older"), "a lagging index's older version"
    assert not known(ours + timedelta(seconds=1), "as-read"), "a later change"


def test_a_stamp_of_our_write_is_ours_only_while_the_owned_values_are_what_we_left(store):
    """A rep's edit of a field we own, between our read and our write, leaves the fields we
    never write as read: the owned values the hit carries tell it from our write, compared
    as the diff compares them (the CRM's "50" is our 50; our passenger is not compared)."""
    mirror, key = store.mirror, ("contact", "c1")
    owned = {"stage": "lead", "score": 10, "temperature": "cold"}
    read = cold_contact("c1").model_copy(
        update={"updated_at": NOW, "source_digest": "as-read", "owned": owned}
    )
    mirror.upsert("default", [read], NOW)
    changes = [FieldUpdate(field="score", new=50), FieldUpdate(field="scored_at", new="x")]
    ours = NOW + timedelta(minutes=5)
    update = RecordUpdate(contact_id="c1", changes=changes)
    mirror.record_batch("default", [AckedWrite(update, ours, ours, stamp=ours)], [], [], ours)

    def known(carried, stamp=ours) -> bool:
        return key in mirror.known_versions("default", [(key, stamp, "as-read", carried)])

    echoed = {"stage": "lead", "score": "50", "temperature": "cold", "scored_at": "x.000"}
    assert known(echoed), "our write alone, in the CRM's spelling"
    assert known(None), "no owned values: the digest and the stamp decide"
    assert not known({**echoed, "stage": "sql"}), "a rep moved the stage on"
    assert not known({**echoed, "temperature": "hot"}), "a rep set our field"
    assert not known({k: v for k, v in echoed.items() if k != "temperature"}), "cleared"
    assert known({**echoed, "stage": "sql"}, NOW), "the version read is known whatever it says"
    earlier = {**echoed, "score": "10"}
    assert known(earlier, ours - timedelta(seconds=30)), "a lagging index: our earlier values"
    assert not mirror.known_versions("default", [(key, ours, None, echoed)], by_others=True)


def test_a_hit_stamped_by_our_write_on_a_row_mirrored_without_a_digest_is_read_once(store):
    """Rows mirrored before digests were kept: a digest hit stamped by our write is read
    (then its digest is kept); a hit at the version read is still known."""
    mirror, key = store.mirror, ("contact", "c1")
    mirror.upsert("default", [cold_contact("c1").model_copy(update={"updated_at": NOW})], NOW)
    update = RecordUpdate(contact_id="c1", changes=[FieldUpdate(field="score", new=50)])
    ours = NOW + timedelta(minutes=5)
    mirror.record_batch("default", [AckedWrite(update, ours, ours, stamp=ours)], [], [], ours)

    assert not mirror.known_versions("default", [(key, ours, "d")])
    assert mirror.known_versions("default", [(key, NOW, "d")]) == {key}
    assert mirror.known_versions("default", [(key, ours)]) == {key}
