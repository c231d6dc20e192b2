"""The rows the core lends an adapter for its own indexes (`connector/sync/adapter_state.py`):
scoped per instance and adapter, written in one transaction or not at all, a dry run's
writes kept out of the store, left alone by retention and VACUUM, and handed to the adapter
by the engine at the start of every run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from crm_qualify.connector.settings import CrmSettings, Settings
from crm_qualify.connector.sync import retention
from crm_qualify.connector.sync.adapter_state import AdapterState, Changes, Row
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine
from crm_qualify.connector.sync.state import StateStore

from tests.memory_adapter import MemoryAdapter


@pytest.fixture
def store(tmp_path) -> StateStore:
    state = StateStore(tmp_path / "state.sqlite")
    yield state
    state.close()


def seeded(store: StateStore, **options: Any) -> AdapterState:
    state = AdapterState(store, "eu", "crm", **options)
    changes = Changes()
    changes.put(
        "seen",
        [
            Row("ann@x.io", "c1", ["form-a", 10], 10),
            Row("ann@x.io", "c2", ["form-b", 20], 20),
            Row("bo@x.io", "c3", ["form-a", 30], 30),
        ],
    )
    changes.put("marks", [Row("form-a", "", {"newest": 30})])
    state.apply(changes)
    return state


def content(state: AdapterState, space: str) -> set[tuple[str, str, str, int | None]]:
    return {(r.key, r.item, repr(r.value), r.stamp) for r in state.all_rows(space)}


def test_rows_by_key_item_and_stamp_scoped_to_their_instance_and_adapter(store):
    state = seeded(store)
    found = state.rows("seen", ["ann@x.io", "nobody@x.io"])
    assert set(found) == {"ann@x.io"}
    assert sorted(r.item for r in found["ann@x.io"]) == ["c1", "c2"]
    assert [r.key for r in state.stamped("seen", 15, 30)] == ["ann@x.io"]
    changes = Changes()
    changes.put("seen", [Row("ann@x.io", "c1", ["form-a", 11], 11)])  # the same row again
    changes.drop_item("seen", "c3")
    state.apply(changes)
    assert content(state, "seen") == {
        ("ann@x.io", "c1", "['form-a', 11]", 11),
        ("ann@x.io", "c2", "['form-b', 20]", 20),
    }
    assert AdapterState(store, "us", "crm").all_rows("seen") == []
    assert AdapterState(store, "eu", "other").all_rows("seen") == []
    cleared = Changes()
    cleared.clear("seen")
    state.apply(cleared)
    assert state.all_rows("seen") == [] and len(state.all_rows("marks")) == 1


def test_changes_land_together_or_not_at_all(store):
    state = seeded(store)
    before = content(state, "seen")
    changes = Changes()
    changes.drop_item("seen", "c1")
    changes.put("seen", [Row("cy@x.io", "c9", ["form-a", 40], 40)])
    changes.put("marks", [Row("form-a", "", {"newest": object()})])  # cannot be stored
    with pytest.raises(TypeError):
        state.apply(changes)
    assert content(state, "seen") == before
    assert state.rows("marks", ["form-a"])["form-a"][0].value == {"newest": 30}


def test_a_read_only_handle_sees_its_own_writes_and_leaves_the_store_as_it_was(store):
    stored = content(seeded(store), "seen")
    dry = AdapterState(store, "eu", "crm", read_only=True)
    changes = Changes()
    changes.drop_item("seen", "c1")
    changes.put("seen", [Row("cy@x.io", "c9", ["form-a", 40], 40)])
    changes.put("seen", [Row("bo@x.io", "c3", ["form-a", 31], 31)])
    dry.apply(changes)
    assert {(r.key, r.item) for r in dry.all_rows("seen")} == {
        ("ann@x.io", "c2"),
        ("bo@x.io", "c3"),
        ("cy@x.io", "c9"),
    }
    assert [r.stamp for r in dry.rows("seen", ["bo@x.io"])["bo@x.io"]] == [31]
    assert sorted(r.key for r in dry.stamped("seen", 25, 50)) == ["bo@x.io", "cy@x.io"]
    cleared = Changes()
    cleared.clear("marks")
    dry.apply(cleared)
    assert dry.all_rows("marks") == []
    real = AdapterState(store, "eu", "crm")
    assert content(real, "seen") == stored
    assert len(real.all_rows("marks")) == 1


def test_retention_and_vacuum_leave_the_rows_alone(store):
    state = seeded(store)
    before = content(state, "seen")
    run_id = store.start_run("eu", mode="sync", dry_run=False)
    store.finish_run(run_id, "ok", {}, [])
    later = datetime.now(UTC) + timedelta(days=400)
    assert retention.prune(store, "eu", 30, now=later).runs == 1
    retention.vacuum(store)
    assert content(AdapterState(store, "eu", "crm"), "seen") == before


class StatefulMemoryAdapter(MemoryAdapter):
    """The in-memory CRM, noting the handles the engine gives it."""

    def __init__(self) -> None:
        super().__init__()
        self.handles: list[AdapterState] = []

    def use_state(self, state: AdapterState) -> None:
        self.handles.append(state)


def test_the_engine_hands_every_run_its_handle_read_only_in_a_dry_run(store):
    adapter = StatefulMemoryAdapter()
    engine = SyncEngine(adapter, Settings(crm=CrmSettings(adapter="memory")), store)
    assert engine.run(RunOptions()).status == "ok"
    assert engine.run(RunOptions(dry_run=True)).status == "ok"
    first, dry = adapter.handles
    assert (first.adapter, first.instance, first.read_only) == ("memory", "default", False)
    assert dry.read_only and dry.store is store
