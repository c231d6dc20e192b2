"""The re-decide loop's shortcuts give what the long way gives (issue 9, `bench/rescore.py`):
`People.stored` answers a record alone from one row, the mirror's chunks say which records
are their own person alone (no look-up for them), and a review row that already holds the
decided values is left unwritten, and left out of the acknowledgement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from crm_qualify.connector.model import Contact
from crm_qualify.connector.settings import Settings
from crm_qualify.connector.sync.engine import DECIDED_WITH_KEY, RunOptions, SyncEngine
from crm_qualify.connector.sync.people import People, Person, person_key
from crm_qualify.connector.sync.state import StateStore

from tests.memory_adapter import MemoryAdapter
from tests.test_engine import cold_contact, hot_contact

INSTANCE = "default"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path):
    store = StateStore(tmp_path / "state.sqlite")
    yield store
    store.close()


def _people(store: StateStore, persons: dict[str, str]) -> People:
    """Ten indexed records (`Lead/0`..`Lead/9`, created a day apart); `persons`: record id ->
    the person stored for it (what `resolve` left)."""
    people = People(store)
    people.index(
        INSTANCE,
        [
            Contact(
                id=str(n),
                object_type="Lead",
                email=f"p{n}@example.org",
                created_at=NOW - timedelta(days=10 - n),
            )
            for n in range(10)
        ],
    )
    with store._tx() as conn:
        conn.executemany(
            "UPDATE people SET person = ? WHERE instance = ? AND object_type = 'Lead'"
            " AND contact_id = ?",
            [(person, INSTANCE, record) for record, person in persons.items()],
        )
    return people


def test_stored_persons_are_those_the_full_rows_give_for_records_alone_and_grouped(store):
    people = _people(
        store,
        {"1": "Lead:0", "3": "Lead:4", "5": "Lead:4", "7": "Lead:gone"},
    )
    keys = [("Lead", str(n)) for n in range(10)] + [("Lead", "missing"), ("Contact", "0")]
    found = people.stored(INSTANCE, keys)

    assert found == people._shared(INSTANCE, keys)  # the full rows of every person
    assert found[("Lead", "2")] == Person("Lead:2", (("Lead", "2"),), ("Lead", "2"))
    # alone, under a person named after a record that is not its own
    assert found[("Lead", "7")] == Person("Lead:gone", (("Lead", "7"),), ("Lead", "7"))
    pair = Person("Lead:0", (("Lead", "0"), ("Lead", "1")), ("Lead", "0"))
    assert found[("Lead", "0")] == found[("Lead", "1")] == pair
    # the person named after record 4 holds 3 and 5 too; record 4 is the oldest of them
    trio = found[("Lead", "4")]
    assert trio.members == (("Lead", "3"), ("Lead", "4"), ("Lead", "5"))
    assert found[("Lead", "3")] == found[("Lead", "5")] == trio
    assert ("Lead", "missing") not in found and ("Contact", "0") not in found


def test_stored_gives_a_grouped_record_its_whole_person_when_asked_alone(store):
    people = _people(store, {"8": "Lead:9"})

    found = people.stored(INSTANCE, [("Lead", "8")])

    assert found == {("Lead", "8"): Person("Lead:9", (("Lead", "8"), ("Lead", "9")), ("Lead", "8"))}


def _review_rows(store: StateStore) -> dict[str, tuple]:
    rows = store._query(
        "SELECT contact_id, hot_since, recheck_at FROM mirror_review WHERE instance = ?",
        (INSTANCE,),
    )
    return {row[0]: tuple(row[1:]) for row in rows}


def test_a_review_row_holding_the_decided_values_is_left_unwritten(store):
    contacts = [Contact(id=str(n)) for n in range(3)]
    store.mirror.upsert(INSTANCE, contacts, NOW)
    week = NOW + timedelta(days=7)
    decided = [(("contact", str(n)), None, week) for n in range(3)]
    store.mirror.record_batch(INSTANCE, [], [], decided, NOW)
    before = store._conn.total_changes

    moved = NOW + timedelta(hours=5)
    # the same moments in another offset are the same values: no write for them
    elsewhere = week.astimezone(timezone(timedelta(hours=-7)))
    store.mirror.record_batch(
        INSTANCE,
        [],
        [],
        [
            (("contact", "0"), None, week),
            (("contact", "1"), None, elsewhere),
            (("contact", "2"), NOW, moved),
        ],
        NOW,
    )

    assert store._conn.total_changes - before == 1  # only contact 2's row moved
    week_text = week.isoformat(timespec="microseconds")
    assert _review_rows(store) == {
        "0": (None, week_text),
        "1": (None, week_text),
        "2": (NOW.isoformat(timespec="microseconds"), moved.isoformat(timespec="microseconds")),
    }


def test_mirror_chunks_say_which_records_are_their_own_person_alone(store):
    people = _people(store, {"1": "Lead:0", "3": "Lead:4", "5": "Lead:4", "7": "Lead:gone"})
    # mirrored, 10 of them indexed; "10" is not (the look-up finds no person for it)
    store.mirror.upsert(INSTANCE, [Contact(id=str(n), object_type="Lead") for n in range(11)], NOW)
    keys = [("Lead", str(n)) for n in range(11)]
    stored = people.stored(INSTANCE, keys)

    chunks = store.mirror.chunks(
        INSTANCE, read_before=NOW + timedelta(hours=1), exclude=set(), due_by=None, size=4
    )
    alone = {(m.contact.object_type, m.contact.id): m.alone for chunk in chunks for m in chunk}

    assert alone == {
        key: key in stored and stored[key].members == (key,) and stored[key].key == person_key(key)
        for key in keys
    }
    assert [key for key, is_alone in alone.items() if is_alone] == [
        ("Lead", n) for n in ("2", "6", "8", "9")
    ]


def test_a_rules_change_decided_at_the_same_moment_records_no_review_row(store, monkeypatch):
    """The re-decide loop leaves out of the acknowledgement each decision whose review row
    holds its hot episode start and review moment already; a moved one is recorded."""
    contacts = [hot_contact(), cold_contact("c1"), cold_contact("c2")]
    engine = SyncEngine(MemoryAdapter(contacts), Settings(), store)
    assert engine.run(RunOptions(now=NOW)).status == "ok"
    rows = _review_rows(store)
    recorded: list[list] = []
    record_batch = store.mirror.record_batch

    def spy(instance, writes, tasks, decided, now):
        recorded.append(list(decided))
        record_batch(instance, writes, tasks, decided, now)

    monkeypatch.setattr(store.mirror, "record_batch", spy)
    store.delete_meta(INSTANCE, DECIDED_WITH_KEY)  # as after a rules change: all decided

    again = engine.run(RunOptions(now=NOW))

    assert again.counts["redecided"] == 3
    assert recorded and not any(recorded), "every review row held its values already"
    assert _review_rows(store) == rows
    recorded.clear()
    store.delete_meta(INSTANCE, DECIDED_WITH_KEY)
    engine.run(RunOptions(now=NOW + timedelta(days=200)))
    assert sorted(key for batch in recorded for key, *_ in batch) == [
        ("contact", cid) for cid in ("c1", "c2", "hot-1")
    ]
    assert _review_rows(store) != rows
