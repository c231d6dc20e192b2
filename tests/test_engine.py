"""The sync engine end to end through the in-memory adapter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from crm_qualify.connector.contract import AdapterError
from crm_qualify.connector.model import (
    Contact,
    EngagementEvent,
    EventType,
    FieldSource,
    FieldUpdate,
    Origin,
    RecordUpdate,
    Stage,
)
from crm_qualify.connector.settings import FieldPolicy, Settings
from crm_qualify.connector.sync.engine import CONTACTS_STREAM, RunOptions, SyncEngine
from crm_qualify.connector.sync.state import TASK_CREATED, StateStore

from tests.memory_adapter import MemoryAdapter

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def event(kind: EventType, days_ago: float = 1, count: int = 1) -> EngagementEvent:
    return EngagementEvent(type=kind, at=NOW - timedelta(days=days_ago), count=count)


def hot_contact(contact_id: str = "hot-1") -> Contact:
    """The brief's worked example: whitepaper 10 + webinar 20 + demo request 40."""
    return Contact(
        id=contact_id,
        email=f"{contact_id}@acme.example",
        title="IT Director",
        owner_id="owner-7",
        origin=Origin.INBOUND,
        stage=Stage.LEAD,
        updated_at=NOW - timedelta(days=1),
        events=[
            event(EventType.CONTENT_DOWNLOAD, 3),
            event(EventType.WEBINAR_ATTENDED, 2),
            event(EventType.DEMO_REQUEST, 1),
        ],
    )


def cold_contact(contact_id: str) -> Contact:
    return Contact(
        id=contact_id,
        email=f"{contact_id}@corp.example",
        origin=Origin.INBOUND,
        updated_at=NOW - timedelta(days=2),
        events=[event(EventType.PAGE_VIEW, 5)],
    )


@pytest.fixture
def store(tmp_path):
    store = StateStore(tmp_path / "state.sqlite")
    yield store
    store.close()


def make_engine(adapter: MemoryAdapter, store: StateStore, **fields: FieldPolicy) -> SyncEngine:
    settings = Settings(fields=fields) if fields else Settings()
    return SyncEngine(adapter, settings, store)


def run(engine: SyncEngine, **options) -> object:
    return engine.run(RunOptions(now=NOW, **options))


def test_full_run_writes_fields_tasks_audit_and_cursor(store):
    adapter = MemoryAdapter([hot_contact(), cold_contact("c1"), cold_contact("c2")])
    summary = run(make_engine(adapter, store))

    assert summary.status == "ok", summary.errors
    hot = adapter.records["hot-1"]
    assert hot.owned["score"] == 70
    assert hot.owned["stage"] == "mql"
    assert hot.owned["temperature"] == "hot"
    assert "+40 demo request" in hot.owned["reasons"]
    kinds = sorted(task.kind for task in adapter.tasks.values())
    assert kinds == ["hot_call", "mql_handoff"]
    assert all(task.owner_id == "owner-7" for task in adapter.tasks.values())
    audit = store.writes_for_run(summary.run_id)
    assert {w.field for w in audit if w.contact_id == "hot-1"} >= {"score", "stage", "reasons"}
    assert store.get_cursor("default", CONTACTS_STREAM) is not None
    assert summary.counts["tasks_created"] == 2


def test_second_run_with_nothing_changed_writes_nothing(store):
    adapter = MemoryAdapter([hot_contact(), cold_contact("c1")])
    engine = make_engine(adapter, store)
    run(engine)
    writes_before, tasks_before = adapter.calls["write_updates"], len(adapter.tasks)

    second = run(engine)

    assert adapter.skipped == 2, "our own writes bumped the records: known, not read"
    assert second.counts["read"] == 0
    assert second.counts["redecided"] == 0, "no decision can have moved since"
    assert second.counts["fields_written"] == 0
    assert adapter.calls["write_updates"] == writes_before
    assert len(adapter.tasks) == tasks_before


def test_dry_run_writes_nothing_and_keeps_the_cursor(store):
    adapter = MemoryAdapter([hot_contact(), cold_contact("c1")])
    reports = []
    engine = SyncEngine(adapter, Settings(), store, on_batch=reports.append)

    summary = engine.run(RunOptions(now=NOW, dry_run=True))

    assert adapter.write_calls() == 0
    assert "score" not in adapter.records["hot-1"].owned
    assert store.get_cursor("default", CONTACTS_STREAM) is None
    assert summary.counts["fields_planned"] > 0
    planned = [t.kind for r in reports for t in r.tasks]
    assert sorted(planned) == ["hot_call", "mql_handoff"]


def test_crash_between_task_create_and_record_creates_no_duplicate(store):
    adapter = MemoryAdapter([hot_contact()])
    adapter.crash_after_task_create = True
    engine = SyncEngine(adapter, Settings(sync={"lookup_delay_seconds": 0}), store)

    first = run(engine)
    assert first.status == "failed"
    assert len(adapter.tasks) == 2, "the CRM did create them before the connection dropped"
    # a full read's cursor passes what it mirrored: the record stays due until its decision lands
    due = store._query("SELECT recheck_at FROM mirror_review WHERE contact_id = 'hot-1'")
    assert due == [(None,)]

    second = run(engine)

    assert second.status == "ok", second.errors
    assert len(adapter.tasks) == 2
    assert second.counts["tasks_recovered"] == 2
    keys = [task.key for task in adapter.tasks.values()]
    assert all(r.status == TASK_CREATED for r in store.tasks_by_key("default", keys).values())


def test_crash_between_write_and_cursor_save_does_not_duplicate_tasks(store, monkeypatch):
    # an incremental run saves its cursor once the batch's writes are acknowledged (a full
    # read's moves as it mirrors, before any write: the crash must come in a later run)
    adapter = MemoryAdapter([cold_contact("hot-1")])
    engine = make_engine(adapter, store)
    assert run(engine).status == "ok"
    record = adapter.records["hot-1"]
    record.events, record.title = hot_contact().events, "IT Director"
    record.updated_at = adapter._tick()

    def crash(*args, **kwargs):
        raise AdapterError("process killed before the checkpoint")

    monkeypatch.setattr(store, "set_cursor", crash)
    assert run(engine).status == "failed"
    monkeypatch.undo()

    second = run(engine)

    assert second.status == "ok", second.errors
    assert len(adapter.tasks) == 2
    assert second.counts["fields_written"] == 0


def test_failed_record_is_reported_the_rest_written_and_retried_next_run(store):
    adapter = MemoryAdapter([hot_contact(), cold_contact("c1"), cold_contact("c2")])
    adapter.fail_write_ids = {"c1"}
    engine = make_engine(adapter, store)

    first = run(engine)

    assert first.status == "partial"
    assert any(e.startswith("contact/c1: write: FIELD_INVALID") for e in first.errors)
    assert "score" in adapter.records["c2"].owned
    assert store.retries("default") == [("contact", "c1")]

    adapter.fail_write_ids = set()
    reads_before = adapter.calls.get("read_contacts", 0)
    second = run(engine)

    assert adapter.calls["read_contacts"] == reads_before + 1
    assert "score" in adapter.records["c1"].owned
    assert store.retries("default") == []
    assert second.status == "ok"


def test_unless_edited_keeps_a_persons_value_and_always_overwrites(store):
    adapter = MemoryAdapter([hot_contact()])
    engine = make_engine(
        adapter,
        store,
        temperature=FieldPolicy(policy="unless_edited"),
        grade=FieldPolicy(policy="always"),
    )
    run(engine)
    adapter.human_edit("hot-1", temperature="warm", grade="Z9")
    adapter.records["hot-1"].events.append(event(EventType.EMAIL_CLICK, 0.5))

    summary = run(engine)

    record = adapter.records["hot-1"]
    assert record.owned["temperature"] == "warm"
    assert record.owned["grade"] != "Z9"
    assert summary.counts["fields_held_back"] >= 1


def test_if_empty_writes_only_an_empty_field(store):
    contact = hot_contact()
    contact.owned = {"grade": "B2"}
    adapter = MemoryAdapter([contact])
    run(make_engine(adapter, store, grade=FieldPolicy(policy="if_empty")))
    assert adapter.records["hot-1"].owned["grade"] == "B2"
    assert adapter.records["hot-1"].owned["score"] == 70


def test_unowned_field_is_never_written(store):
    adapter = MemoryAdapter([hot_contact()])
    run(make_engine(adapter, store, reasons=FieldPolicy(owned=False)))
    assert "reasons" not in adapter.records["hot-1"].owned
    assert "score" in adapter.records["hot-1"].owned


def test_a_stage_a_person_set_further_along_is_never_downgraded(store):
    contact = cold_contact("manual-opp")
    contact.stage = Stage.OPPORTUNITY
    contact.owned = {"stage": "opportunity"}
    adapter = MemoryAdapter([contact])

    run(make_engine(adapter, store))

    assert adapter.records["manual-opp"].owned["stage"] == "opportunity"
    assert adapter.records["manual-opp"].stage == Stage.OPPORTUNITY


def test_an_unmapped_stage_is_left_alone(store):
    contact = hot_contact()
    contact.stage = None
    contact.owned = {"stage": "evangelist"}
    adapter = MemoryAdapter([contact])
    reports = []
    SyncEngine(adapter, Settings(), store, on_batch=reports.append).run(RunOptions(now=NOW))
    assert adapter.records["hot-1"].owned["stage"] == "evangelist"
    assert any(skip.field == "stage" for r in reports for _, skip in r.skips)


def test_limit_processes_at_most_n_and_does_not_move_the_cursor(store):
    adapter = MemoryAdapter([cold_contact(f"c{i}") for i in range(7)])
    summary = run(make_engine(adapter, store), limit=4)
    assert summary.counts["read"] == 4 and summary.counts["scored"] == 4
    assert sum("score" in record.owned for record in adapter.records.values()) == 4
    assert store.get_cursor("default", CONTACTS_STREAM) is None


def test_stop_event_ends_the_run_after_the_batch_in_flight(store):
    adapter = MemoryAdapter([cold_contact(f"c{i}") for i in range(9)], batch_size=3)
    engine = make_engine(adapter, store)
    engine.on_batch = lambda report: engine.stop.set()

    summary = run(engine)

    assert summary.status == "interrupted"
    assert summary.counts["read"] == 3
    assert store.get_cursor("default", CONTACTS_STREAM) is not None


def test_runs_are_recorded_with_counts_and_errors(store):
    adapter = MemoryAdapter([hot_contact(), cold_contact("c1")])
    adapter.fail_write_ids = {"c1"}
    summary = run(make_engine(adapter, store))
    (record,) = store.runs("default")
    assert record.id == summary.run_id
    assert record.status == "partial"
    assert record.counts["records_written"] == 1
    assert record.errors and "c1" in record.errors[0]


class LateWrites(MemoryAdapter):
    """A CRM that applies some accepted writes later (Salesforce's closed ingest jobs)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.waits: list[int] = []
        self.still_running = False

    def finish_writes_in_flight(self) -> int:
        self.waits.append(self.calls.get("read_changed", 0) + self.calls.get("read_contacts", 0))
        if self.still_running:
            raise AdapterError("ingest job 750x still InProgress after 600 s")
        return 1


def test_a_dead_runs_late_writes_are_waited_for_before_anything_is_read(store, monkeypatch):
    adapter = LateWrites([hot_contact()])
    engine = make_engine(adapter, store)
    assert run(engine).status == "ok" and adapter.waits == [], "no dead run: nothing to wait for"
    record = adapter.records["hot-1"]
    record.events = [*record.events, event(EventType.PRICING_PAGE_VIEW, 0.5)]
    record.updated_at = adapter._tick()

    def killed(*args, **kwargs):
        raise AdapterError("process killed with the job closed")

    monkeypatch.setattr(adapter, "write_updates", killed)
    assert run(engine).status == "failed"
    monkeypatch.undo()
    assert store.open_intents("default"), "the killed run's writes stay intents"
    adapter.still_running = True
    stuck = run(engine)
    assert stuck.status == "failed" and "still InProgress" in stuck.errors[0]
    assert adapter.waits == [2], "asked before any read of this run"
    assert store.open_intents("default"), "nothing settled while the job may still land"
    adapter.still_running = False
    rerun = run(engine)
    assert rerun.status == "ok" and rerun.counts["writes_waited_for"] == 1
    assert adapter.waits == [2, 2] and not store.open_intents("default")


def test_a_stage_a_person_cleared_is_neither_refilled_nor_handed_over(tmp_path):
    """HubSpot moves a stage back only once a person clears it; a run in between used to
    write the old stage again and plan a first hand-off for a contact already worked."""
    person_set = hot_contact("a")
    person_set.stage = Stage.SQL
    person_set.owned = {"stage": "sql"}
    adapter = MemoryAdapter([person_set])
    store = StateStore(tmp_path / "state.sqlite")
    first = SyncEngine(adapter, Settings(), store).run(RunOptions(now=NOW))
    assert first.status == "ok" and adapter.records["a"].owned["stage"] == "sql"
    assert not [t for t in adapter.tasks.values() if t.kind == "mql_handoff"]
    adapter.human_edit("a", stage=None)
    adapter.records["a"].stage = None
    again = SyncEngine(adapter, Settings(), store).run(RunOptions(now=NOW + timedelta(hours=1)))
    assert again.status == "ok"
    assert adapter.records["a"].owned["stage"] is None, "left as the person put it"
    assert not [t for t in adapter.tasks.values() if t.kind == "mql_handoff"]


def test_a_temperature_kept_under_unless_edited_gets_no_hot_call(tmp_path):
    """A Rating a person set (before our first write, or since our last one) is kept: a
    call task for a lead the CRM shows warm or cold contradicted the record, and the report's
    hot leads. The hand-off stays; the dry run plans what the real run creates."""
    rated = hot_contact("rated")
    rated.owned = {"temperature": "cold"}
    by_rep = FieldSource(by="person", at=NOW - timedelta(days=3), value="cold")
    rated.owned_sources = {"temperature": by_rep}
    adapter = MemoryAdapter([rated, hot_contact("plain"), cold_contact("edited")])
    store = StateStore(tmp_path / "state.sqlite")
    planned = []
    dry = SyncEngine(adapter, Settings(), store, on_batch=planned.append)
    assert dry.run(RunOptions(now=NOW, dry_run=True)).status == "ok"
    first = SyncEngine(adapter, Settings(), store).run(RunOptions(now=NOW))

    assert first.status == "ok", first.errors
    assert adapter.records["rated"].owned["temperature"] == "cold"
    made = sorted((t.contact_id, t.kind) for t in adapter.tasks.values())
    assert made == [("plain", "hot_call"), ("plain", "mql_handoff"), ("rated", "mql_handoff")]
    assert sorted((t.contact_id, t.kind) for r in planned for t in r.tasks) == made
    adapter.human_edit("edited", temperature="warm")
    adapter.records["edited"].events = hot_contact().events
    again = SyncEngine(adapter, Settings(), store).run(RunOptions(now=NOW + timedelta(hours=1)))
    assert again.status == "ok", again.errors
    assert adapter.records["edited"].owned["temperature"] == "warm"
    assert {t.kind for t in adapter.tasks.values() if t.contact_id == "edited"} == {"mql_handoff"}
    store.close()


def test_a_follow_up_refused_for_a_record_deleted_since_goes_to_the_persons_other_record(
    tmp_path,
):
    """The person's survivor is deleted between runs: its write answers `gone` and the CRM
    refuses its task (without saying why, as HubSpot refuses an association to a deleted
    contact). The task is owed again on the other record, and the next run creates it there:
    the hand-off too, although that run finds the record at MQL already."""
    adapter, store = one_person_synced(tmp_path, cold_contact("a"))
    adapter.delete("a")
    adapter.records["b"].events = hot_contact().events
    adapter.records["b"].updated_at = adapter._tick()
    later = NOW + timedelta(hours=1)
    refused = SyncEngine(adapter, Settings(), store).run(RunOptions(now=later))
    assert refused.status == "ok", refused.errors
    assert refused.counts["tasks_planned_again"] > 0
    assert refused.counts["records_needing_attention"] == 0
    assert not adapter.tasks
    assert {(t.contact_id, t.status) for t in store.all_tasks("default")} == {("b", "owed")}
    assert adapter.records["b"].owned["stage"] == "mql"
    again = SyncEngine(adapter, Settings(), store).run(RunOptions(now=later + timedelta(hours=1)))
    assert again.status == "ok", again.errors
    assert {t.contact_id for t in adapter.tasks.values()} == {"b"}
    assert {t.kind for t in adapter.tasks.values()} == {"hot_call", "mql_handoff"}
    assert all(":contact:a:" in f":{t.key}:" for t in adapter.tasks.values()), "same keys"
    last = SyncEngine(adapter, Settings(), store).run(RunOptions(now=later + timedelta(hours=2)))
    assert last.counts["tasks_created"] == 0 and len(adapter.tasks) == 2


def one_person_synced(tmp_path, older: Contact) -> tuple[MemoryAdapter, StateStore]:
    """`older` and a newer record "b" of the same person (one mailbox), synced once: `older`
    is the survivor, which the person's follow-ups go to."""
    newer = cold_contact("b")
    older.created_at, newer.created_at = NOW - timedelta(days=9), NOW - timedelta(days=3)
    newer.email = older.email
    adapter = MemoryAdapter([older, newer])
    store = StateStore(tmp_path / "state.sqlite")
    assert SyncEngine(adapter, Settings(), store).run(RunOptions(now=NOW)).status == "ok"
    return adapter, store


def dry_then_real(
    adapter: MemoryAdapter, store: StateStore, now: datetime
) -> tuple[list[str], list[str]]:
    """The task keys a full dry run lists, and those the full run then creates, sorted."""
    listed: list[str] = []
    engine = SyncEngine(
        adapter, Settings(), store, on_batch=lambda r: listed.extend(t.key for t in r.tasks)
    )
    engine.run(RunOptions(now=now, dry_run=True, full=True))
    SyncEngine(adapter, Settings(), store).run(RunOptions(now=now, full=True))
    return sorted(listed), sorted(t.key for t in adapter.tasks.values())


def test_a_dry_run_lists_each_owed_task_once_as_the_real_run_creates_it(tmp_path):
    """Owed tasks (their creation failed last run) are listed first, as the real run creates
    them first; planned again by the same decisions, they used to be listed a second time."""
    adapter = MemoryAdapter([hot_contact("a"), hot_contact("b")])
    store = StateStore(tmp_path / "state.sqlite")
    adapter.fail_tasks = True
    failed = SyncEngine(adapter, Settings(), store).run(RunOptions(now=NOW))
    assert failed.counts["task_errors"] == 4 and not adapter.tasks
    adapter.fail_tasks = False
    listed, created = dry_then_real(adapter, store, NOW + timedelta(hours=1))
    assert listed == created and len(listed) == 4


def test_after_a_dead_run_a_dry_run_reads_and_plans_what_the_real_run_does(tmp_path):
    """A run died with writes intended, some of which landed (their records changed): the
    real run settles those intents by re-reading the records first; the dry run settles
    nothing, and used to read and decide those records a second time with the changed ones."""
    adapter = MemoryAdapter([hot_contact("a"), cold_contact("b"), cold_contact("c")])
    store = StateStore(tmp_path / "state.sqlite")
    assert SyncEngine(adapter, Settings(), store).run(RunOptions(now=NOW)).status == "ok"
    dead = store.start_run("default", mode="once", dry_run=False)
    intents = []
    for contact_id in ("a", "b"):
        old = adapter.records[contact_id].owned.get("score")
        intents.append(
            RecordUpdate(
                contact_id=contact_id,
                changes=[FieldUpdate(field="score", old=old, new=(old or 0) + 1)],
            )
        )
        adapter.human_edit(contact_id, score=(old or 0) + 1)  # it landed before the crash
    store.record_writes(dead, "default", intents, "intended")
    later = NOW + timedelta(hours=1)
    planned: list[tuple[str, str]] = []
    dry = SyncEngine(
        adapter,
        Settings(),
        store,
        on_batch=lambda r: planned.extend(
            (u.contact_id, c.field) for u in r.updates for c in u.changes
        ),
    ).run(RunOptions(now=later, dry_run=True))
    real = SyncEngine(adapter, Settings(), store).run(RunOptions(now=later))
    written = [(w.contact_id, w.field) for w in store.writes_for_run(real.run_id)]
    assert dry.counts["scored"] == real.counts["scored"] == 2
    assert sorted(planned) == sorted(written) and len(set(planned)) == len(planned)


def test_a_dry_run_lists_an_owed_hot_call_once_though_its_episode_began_in_a_dead_run(tmp_path):
    """A run died after its hot calls were owed and before their episodes were recorded: the
    real run creates the owed call first and decides the same episode from it; the dry run
    (which creates nothing) used to plan a call of a new episode beside the owed one."""
    adapter = MemoryAdapter([hot_contact("a"), hot_contact("b")])
    store = StateStore(tmp_path / "state.sqlite")
    adapter.fail_tasks = True
    SyncEngine(adapter, Settings(), store).run(RunOptions(now=NOW))
    adapter.fail_tasks = False
    with store._tx() as conn:  # as a killed run leaves it
        conn.execute("UPDATE mirror_review SET hot_since = NULL")
    listed, created = dry_then_real(adapter, store, NOW + timedelta(hours=1))
    assert listed == created


@pytest.mark.parametrize("tasks_go_too", [True, False], ids=["salesforce", "hubspot"])
def test_open_follow_ups_that_went_with_a_deleted_record_are_owed_to_the_person(
    tmp_path, tasks_go_too
):
    """The person's survivor got its hot call and hand-off, then a person deleted it: on
    Salesforce its tasks go with it. The open ones are owed again, same keys, to the record
    left; a completed one is not; on HubSpot (tasks kept) nothing is created again."""
    adapter, store = one_person_synced(tmp_path, hot_contact("a"))
    made = {t.kind: crm_id for crm_id, t in adapter.tasks.items()}
    assert set(made) == {"hot_call", "mql_handoff"}
    adapter.completed_tasks.add(made["mql_handoff"])  # taken over: done, read next run
    adapter.human_edit("a", grade="B1")
    SyncEngine(adapter, Settings(), store).run(RunOptions(now=NOW + timedelta(hours=1)))
    keys = {t.kind: t.key for t in adapter.tasks.values()}
    adapter.delete("a", with_tasks=tasks_go_too)
    later = NOW + timedelta(hours=2)
    full = SyncEngine(adapter, Settings(), store).run(RunOptions(now=later, full=True))
    assert full.counts["records_gone"] == 1
    listed: list[tuple[str, str]] = []
    SyncEngine(
        adapter,
        Settings(),
        store,
        on_batch=lambda r: listed.extend((t.contact_id, t.key) for t in r.tasks),
    ).run(RunOptions(now=later + timedelta(hours=1), dry_run=True))
    again = SyncEngine(adapter, Settings(), store).run(RunOptions(now=later + timedelta(hours=1)))
    assert again.status == "ok", again.errors
    on_b = {t.kind: t.key for t in adapter.tasks.values() if t.contact_id == "b"}
    assert sorted(listed) == sorted(("b", key) for key in on_b.values()), "the dry run too"
    if tasks_go_too:
        assert on_b == {"hot_call": keys["hot_call"]}, "the open call, not the completed hand-off"
    else:
        assert on_b == {} and again.counts["tasks_created"] == 0
    last = SyncEngine(adapter, Settings(), store).run(RunOptions(now=later + timedelta(hours=2)))
    assert last.counts["tasks_created"] == 0


def test_every_run_gives_its_freed_memory_back_at_its_end(store, monkeypatch):
    """Failed or not: the daemon waits for its next run at the level the run left."""
    from crm_qualify.connector.sync import engine as engine_module

    trims: list[int] = []
    monkeypatch.setattr(engine_module, "give_back_free_memory", lambda: trims.append(1))
    adapter = MemoryAdapter([hot_contact()])
    engine = make_engine(adapter, store)
    assert run(engine).status == "ok"
    assert trims == [1]

    def down(*args, **kwargs):
        raise AdapterError("portal down")

    monkeypatch.setattr(adapter, "read_changed", down)
    assert run(engine).status == "failed"
    assert trims == [1, 1]


def test_a_contact_the_rules_cannot_decide_is_reported_by_name_and_the_run_goes_on(
    store, monkeypatch
):
    """A decision that raises (a rule meeting data it was not written for) is that record's
    error, named, and the record needs attention (`crm-qualify errors`); the other records
    are written. Nothing is retried at the same version: once the record changes, it is
    decided again."""
    from crm_qualify.connector.sync import engine as engine_module

    real_decide = engine_module.decide

    def decide_or_fail(contact, rules, now, *, hot_since=None):
        if contact.id == "c1" and contact.title is None:
            raise OverflowError("date value out of range")
        return real_decide(contact, rules, now, hot_since=hot_since)

    adapter = MemoryAdapter([hot_contact(), cold_contact("c1"), cold_contact("c2")])
    engine = make_engine(adapter, store)
    monkeypatch.setattr(engine_module, "decide", decide_or_fail)
    summary = run(engine)

    assert summary.status == "partial"
    (error,) = summary.errors
    assert "c1" in error and "cannot score: OverflowError: date value out of range" in error
    assert adapter.records["hot-1"].owned["stage"] == "mql"
    assert adapter.records["c2"].owned.get("score") is not None
    assert not adapter.records["c1"].owned
    assert summary.counts["scored"] == 2
    (attention,) = store.attention("default")
    assert attention.contact_id == "c1" and "OverflowError" in attention.reason

    later = NOW + timedelta(minutes=5)
    same = engine.run(RunOptions(now=later))
    assert same.status == "ok" and same.counts["read"] == 0 and not same.errors

    adapter.edit("c1", title="Buyer")
    fixed = engine.run(RunOptions(now=later + timedelta(minutes=5)))
    assert fixed.status == "ok", fixed.errors
    assert adapter.records["c1"].owned.get("score") is not None
    assert store.attention("default") == []
