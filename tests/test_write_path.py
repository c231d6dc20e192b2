"""The mirror phase's write path: its first writes leave after a short first chunk, and each
acknowledged write updates its record's mirror row once, leaving the CRM's values and our
last written ones on it (what `unless_edited` compares with)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from crm_qualify.connector.model import FieldUpdate, RecordUpdate, Stage
from crm_qualify.connector.settings import Settings
from crm_qualify.connector.sync import engine
from crm_qualify.connector.sync.engine import DECIDED_WITH_KEY, RunOptions, SyncEngine
from crm_qualify.connector.sync.mirror import AckedWrite
from crm_qualify.connector.sync.state import StateStore

from tests.memory_adapter import MemoryAdapter
from tests.test_engine import NOW, cold_contact, hot_contact


@pytest.fixture
def store(tmp_path):
    store = StateStore(tmp_path / "state.sqlite")
    yield store
    store.close()


def test_the_mirror_phase_decides_a_short_first_chunk_then_doubles_up_to_the_chunk(
    store, monkeypatch
):
    monkeypatch.setattr(engine, "MIRROR_FIRST_CHUNK", 2)
    monkeypatch.setattr(engine, "MIRROR_CHUNK", 8)
    contacts = [cold_contact(f"c{n:02}") for n in range(21)]
    sizes: list[int] = []
    sync = SyncEngine(
        MemoryAdapter(contacts), Settings(), store, on_read=lambda c: sizes.append(len(c))
    )
    assert sync.run(RunOptions(now=NOW)).status == "ok"
    store.delete_meta("default", DECIDED_WITH_KEY)  # as after a rules change: everyone
    sizes.clear()

    again = sync.run(RunOptions(now=NOW + timedelta(days=1)))

    assert again.counts["read"] == 0
    assert again.counts["redecided"] == 21
    assert [n for n in sizes if n] == [2, 4, 8, 7], "phase one's batches were empty"


def test_the_mirror_phase_gives_freed_memory_back_every_few_chunks(store, monkeypatch):
    """Between chunks, not only at the run's end: a long phase would otherwise hold every
    page its chunks freed between objects that outlive them."""
    monkeypatch.setattr(engine, "MIRROR_FIRST_CHUNK", 2)
    monkeypatch.setattr(engine, "MIRROR_CHUNK", 2)
    monkeypatch.setattr(engine, "TRIM_EVERY_CHUNKS", 3)
    trims: list[int] = []
    decided: list[int] = []
    monkeypatch.setattr(engine, "give_back_free_memory", lambda: trims.append(sum(decided)))
    contacts = [cold_contact(f"c{n:02}") for n in range(15)]
    sync = SyncEngine(
        MemoryAdapter(contacts), Settings(), store, on_read=lambda c: decided.append(len(c))
    )
    assert sync.run(RunOptions(now=NOW)).status == "ok"
    store.delete_meta("default", DECIDED_WITH_KEY)  # as after a rules change: everyone
    trims.clear()
    decided.clear()

    again = sync.run(RunOptions(now=NOW + timedelta(days=1)))

    assert again.counts["redecided"] == 15, "8 chunks of 2 (the last of 1)"
    assert trims == [6, 12, 15], "after the 3rd and 6th chunk, and at the run's end"


def test_each_acknowledged_write_updates_its_mirror_row_once(store):
    adapter = MemoryAdapter([hot_contact(), cold_contact("c1"), cold_contact("c2")])
    sync = SyncEngine(adapter, Settings(), store)
    assert sync.run(RunOptions(now=NOW)).status == "ok"
    conn = store._conn
    conn.execute("CREATE TEMP TABLE updated (contact_id TEXT)")
    conn.execute(
        "CREATE TEMP TRIGGER count_updates AFTER UPDATE ON main.mirror"
        " BEGIN INSERT INTO updated VALUES (new.contact_id); END"
    )

    later = sync.run(RunOptions(now=NOW + timedelta(days=120)))

    assert later.status == "ok", later.errors
    written = {w.contact_id for w in store.writes_for_run(later.run_id)}
    assert written, "the hot contact cooled: its fields were written"
    tasks = Counter(t.contact_id for t in store.tasks_for_run(later.run_id))
    updates = Counter(row[0] for row in conn.execute("SELECT contact_id FROM updated"))
    assert {cid: updates[cid] for cid in written} == {cid: 1 + tasks[cid] for cid in written}
    # the one update left both the CRM's values and our last written ones on the row
    last = store.last_written("default", [("contact", cid) for cid in written])
    for cid in written:
        (mirrored,) = store.mirror.by_keys("default", [("contact", cid)]).values()
        assert {k: mirrored.contact.owned.get(k) for k in last[("contact", cid)]} == last[
            ("contact", cid)
        ]
        assert adapter.records[cid].owned.items() >= last[("contact", cid)].items()


def test_an_acknowledged_write_merges_into_the_mirrored_facts(store):
    """The CRM's values after a write: the written fields join the others, a written stage
    becomes the stage, a written null leaves no value, and our last written values keep it."""
    contact = hot_contact("m1")
    contact.owned = {"score": 40, "grade": "B2", "duplicate_group": "g-1"}
    other = cold_contact("m2")
    store.mirror.upsert("default", [contact, other], NOW)

    def acked(contact_id: str, **values: object) -> AckedWrite:
        changes = [FieldUpdate(field=k, new=v) for k, v in values.items()]
        update = RecordUpdate(contact_id=contact_id, object_type="contact", changes=changes)
        return AckedWrite(update, sent_at=NOW, acked_at=NOW + timedelta(seconds=1))

    store.mirror.record_batch(
        "default",
        [acked("m1", score=55, stage="mql", duplicate_group=None), acked("m2", score=3)],
        [],
        [],
        NOW,
    )

    mirrored = store.mirror.by_keys("default", [("contact", "m1"), ("contact", "m2")])
    first, second = mirrored[("contact", "m1")].contact, mirrored[("contact", "m2")].contact
    assert first.owned == {"score": 55, "grade": "B2", "stage": "mql"}
    assert first.stage is Stage.MQL
    assert first.events == contact.events, "the facts read are kept"
    assert second.owned == {"score": 3}
    assert second.stage is None, "a write without a stage leaves the stage as read"
    last = store.last_written("default", [("contact", "m1")])[("contact", "m1")]
    assert last == {"score": 55, "stage": "mql", "duplicate_group": None}
