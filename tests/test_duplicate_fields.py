"""The duplicate flag, group id and review task (issue 14's optional part), on the in-memory
CRM: off by default; when on, every record of a group carries the flag and the person's key,
a record alone or leaving a group is cleared, and the group's owner gets one review task, once
ever, that is never escalated. Rollback and dry runs handle the fields like any owned field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from crm_qualify.connector.decision.decide import decide
from crm_qualify.connector.decision.person import merge_person
from crm_qualify.connector.decision.rules import Rules
from crm_qualify.connector.model import Contact, DuplicateReview, ExistingTask
from crm_qualify.connector.settings import FieldPolicy, Settings, load_settings
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine
from crm_qualify.connector.sync.rollback import rollback
from crm_qualify.connector.sync.state import StateStore

from tests.memory_adapter import MemoryAdapter

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
ON = {"duplicate": FieldPolicy(owned=True), "duplicate_group": FieldPolicy(owned=True)}


def record(cid: str, days_old: int, email: str, owner: str | None = None) -> Contact:
    return Contact(
        id=cid,
        email=email,
        first_name="Kim",
        last_name=cid,
        company="Acme",
        owner_id=owner,
        created_at=NOW - timedelta(days=days_old),
        updated_at=NOW - timedelta(days=1),
    )


def crm() -> MemoryAdapter:
    """A pair (A the older, owned by owner-a; B owned by owner-b) and a record alone."""
    return MemoryAdapter(
        [
            record("A", 300, "kim@acme.example", "owner-a"),
            record("B", 20, "KIM@acme.example", "owner-b"),
            record("C", 100, "lee@globex.example", "owner-c"),
        ]
    )


def engine(adapter: MemoryAdapter, store: StateStore, settings: Settings) -> SyncEngine:
    return SyncEngine(adapter, settings, store)


def turned_on(**rules) -> Settings:
    return Settings(fields=ON, identity={"review_task": True}, rules=rules)


@pytest.fixture
def store(tmp_path):
    store = StateStore(tmp_path / "state.sqlite")
    yield store
    store.close()


def reviews(adapter: MemoryAdapter) -> list:
    return [task for task in adapter.tasks.values() if task.kind == "duplicate_review"]


def test_by_default_nothing_new_is_written_nor_created(store, tmp_path):
    settings = Settings()
    assert not settings.fields["duplicate"].owned and not settings.fields["duplicate_group"].owned
    assert not settings.identity.review_task
    path = tmp_path / "crm-qualify.toml"
    path.write_text('[fields.duplicate]\npolicy = "if_empty"\n[fields.score]\npolicy = "always"\n')
    loaded = load_settings(path).fields
    assert not loaded["duplicate"].owned, "a policy alone does not turn the optional field on"
    assert loaded["duplicate"].policy == "if_empty" and loaded["score"].owned

    adapter = crm()
    assert engine(adapter, store, settings).run(RunOptions(now=NOW)).status == "ok"
    for contact in adapter.records.values():
        assert "duplicate" not in contact.owned and "duplicate_group" not in contact.owned
    assert reviews(adapter) == []


def test_each_record_of_a_group_carries_the_flag_and_the_persons_key(store):
    adapter = crm()
    first = engine(adapter, store, turned_on()).run(RunOptions(now=NOW))
    assert first.status == "ok", first.errors
    owned = {cid: contact.owned for cid, contact in adapter.records.items()}
    assert owned["A"]["duplicate"] is True and owned["A"]["duplicate_group"] == "contact:A"
    assert owned["B"]["duplicate"] is True and owned["B"]["duplicate_group"] == "contact:A"
    assert owned["C"]["duplicate"] is False and owned["C"].get("duplicate_group") is None

    [review] = reviews(adapter)
    assert (review.contact_id, review.owner_id) == ("A", "owner-a"), "the survivor's owner"
    assert review.key == "crmq:contact:A:duplicate_review"
    assert review.subject.startswith("Review possible duplicates: 2 records of Kim")
    assert "- contact/A (suggested survivor" in review.body and "- contact/B" in review.body
    assert "Matched by email" in review.body and "confidence 0.99" in review.body
    assert review.due == NOW + timedelta(hours=Rules().followup.mql_sla_hours)
    assert review.priority == "low" and review.task_type == "todo"

    tasks_before, writes_before = len(adapter.tasks), adapter.calls["write_updates"]
    again = engine(adapter, store, turned_on()).run(RunOptions(now=NOW + timedelta(minutes=5)))
    assert again.counts["fields_written"] == 0 and again.counts["tasks_created"] == 0
    assert (len(adapter.tasks), adapter.calls["write_updates"]) == (tasks_before, writes_before)


def test_turning_the_review_on_later_reviews_known_groups_without_reading(store):
    adapter = crm()
    assert engine(adapter, store, Settings(fields=ON)).run(RunOptions(now=NOW)).status == "ok"
    assert reviews(adapter) == []

    later = engine(adapter, store, turned_on()).run(RunOptions(now=NOW + timedelta(minutes=5)))

    assert later.counts["read"] == 0, "[identity] is part of what a decision depends on"
    assert later.counts["redecided"] == 3
    [review] = reviews(adapter)
    assert (review.contact_id, review.owner_id) == ("A", "owner-a")


def test_a_matching_rule_turned_on_later_groups_the_mirrored_records_it_matches(store):
    """Persons are made when records are read: a changed matching rule reads everyone once
    (a full read, its dry run too), which indexes and groups every record under it."""
    a = record("A", 300, "kim@acme.example", "owner-a")
    b = record("B", 20, "kimberly@globex.example", "owner-b")
    b.last_name, b.company = "A", "Globex"  # only the phone (and the name) says they are one
    a.phone, b.phone = "+1 650 253 0000", "(650) 253-0000"
    adapter = MemoryAdapter([a, b])

    def settings(phone: bool) -> Settings:
        return Settings(fields=ON, identity={"phone": {"enabled": phone}, "review_task": True})

    assert engine(adapter, store, settings(False)).run(RunOptions(now=NOW)).status == "ok"
    assert reviews(adapter) == [] and adapter.records["B"].owned["duplicate"] is False

    on = engine(adapter, store, settings(True))
    dry = on.run(RunOptions(now=NOW + timedelta(minutes=5), dry_run=True))
    assert dry.counts["read"] == 2 and dry.counts["tasks_planned"] == 1
    later = on.run(RunOptions(now=NOW + timedelta(minutes=5)))
    assert later.counts["read"] == 2 and later.counts["tasks_created"] == 1
    assert [review.contact_id for review in reviews(adapter)] == ["A"]
    assert adapter.records["B"].owned["duplicate_group"] == "contact:A"
    assert on.run(RunOptions(now=NOW + timedelta(minutes=10))).counts["read"] == 0


def test_a_group_that_grows_or_loses_a_record_keeps_its_id_and_its_one_review(store):
    adapter = crm()
    engine(adapter, store, turned_on()).run(RunOptions(now=NOW))
    later = NOW + timedelta(hours=1)
    newcomer = record("D", 1, "kim@ACME.example", "owner-d")
    newcomer.updated_at = later
    adapter.records["D"] = newcomer
    leaving = adapter.records["B"]
    leaving.email, leaving.last_name, leaving.updated_at = "bo@initech.example", "Bo", later

    summary = engine(adapter, store, turned_on()).run(RunOptions(now=later + timedelta(hours=1)))

    assert summary.status == "ok", summary.errors
    owned = {cid: contact.owned for cid, contact in adapter.records.items()}
    assert (owned["D"]["duplicate"], owned["D"]["duplicate_group"]) == (True, "contact:A")
    assert (owned["A"]["duplicate"], owned["A"]["duplicate_group"]) == (True, "contact:A")
    assert owned["B"]["duplicate"] is False and owned["B"]["duplicate_group"] is None, "cleared"
    assert len(reviews(adapter)) == 1, "the person's review exists: not created again"


def test_a_dry_run_lists_the_fields_and_the_review_and_rollback_restores_them(store):
    adapter = crm()
    planned = []
    dry = SyncEngine(adapter, turned_on(), store, on_batch=planned.append)
    dry.run(RunOptions(now=NOW, dry_run=True))
    fields = {
        (update.contact_id, change.field): change.new
        for report in planned
        for update in report.updates
        for change in update.changes
    }
    assert fields[("B", "duplicate")] is True and fields[("B", "duplicate_group")] == "contact:A"
    assert [t.kind for r in planned for t in r.tasks].count("duplicate_review") == 1
    assert adapter.write_calls() == 0

    summary = engine(adapter, store, turned_on()).run(RunOptions(now=NOW))
    assert adapter.records["B"].owned["duplicate_group"] == "contact:A"
    report = rollback(adapter, store, "default", summary.run_id)
    assert report.status == "ok", report.errors
    for contact in adapter.records.values():
        assert contact.owned.get("duplicate") is None, "never set before the run"
        assert contact.owned.get("duplicate_group") is None


def person_with_review(owner: str | None, tasks: list[ExistingTask] = ()) -> Contact:
    a = record("A", 300, "kim@acme.example", owner).model_copy(update={"tasks": list(tasks)})
    b = record("B", 20, "kim@acme.example")
    review = DuplicateReview(records=["contact/A", "contact/B"])
    return merge_person("contact:A", [a, b], ("contact", "A"), review)


def test_a_survivor_without_an_owner_goes_to_the_default_owner_then_the_round_robin():
    rules = Rules.model_validate({"followup": {"default_owner_id": "boss"}})
    [task] = decide(person_with_review(None), rules, NOW).tasks
    assert task.owner_id == "boss" and "Matched by" not in task.body
    pool = Rules.model_validate({"followup": {"round_robin": ["r1", "r2"]}})
    [task] = decide(person_with_review(None), pool, NOW).tasks
    assert task.owner_id in {"r1", "r2"}


@pytest.mark.parametrize(
    "key",
    ["crmq:contact:A:duplicate_review", "crmq:contact:Z:duplicate_review"],
    ids=["its own", "moved onto it by a merge, naming another person"],
)
def test_a_review_the_person_carries_is_neither_planned_again_nor_escalated(key):
    overdue = ExistingTask(
        id="t1",
        key=key,
        due=NOW - timedelta(days=30),
        created_at=NOW - timedelta(days=32),
    )
    assert decide(person_with_review("owner-a", [overdue]), Rules(), NOW).tasks == []


def test_grouping_rules_an_upgrade_changes_read_and_regroup_everyone_once(store, monkeypatch):
    """Persons are made as records are read: a release that changes who is one person (Daniel
    and Daniela Meyer were one) left the persons made before it until each record changed or
    the weekly full read came, and one of two hot leads got no call meanwhile."""
    from crm_qualify.connector.sync import fingerprints

    adapter = crm()
    assert engine(adapter, store, turned_on()).run(RunOptions(now=NOW)).counts["read"] == 3
    later = NOW + timedelta(minutes=5)
    assert engine(adapter, store, turned_on()).run(RunOptions(now=later)).counts["read"] == 0

    monkeypatch.setattr(fingerprints, "GROUPING_VERSION", fingerprints.GROUPING_VERSION + 1)
    upgraded = engine(adapter, store, turned_on()).run(RunOptions(now=later + timedelta(1)))
    assert upgraded.counts["read"] == 3, "a full read indexes and regroups every record"
    again = engine(adapter, store, turned_on()).run(RunOptions(now=later + timedelta(2)))
    assert again.counts["read"] == 0
