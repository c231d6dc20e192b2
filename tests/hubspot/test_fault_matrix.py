"""End to end through `SyncEngine`: one fault of each kind on each request a sync makes, then
syncs until settled. The portal must end exactly as after a clean sync: the same owned values
on every contact, the same task keys, and never two tasks with one key.

Each case gets a fresh simulated portal with the same seed and anchor (identical data) and a
fresh state store; every run uses the same `now`, so decisions are identical. Between the first
run (a walk: list pages carry the contacts and their links, nothing else is read) and the
second, a person edits one contact and completes a task of ours on another (`people_work`), so
the second run reads by search (v4 association reads for the edited contact) and by the task
sweep (a batch read of the other contact): every request kind below is made.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.connector.settings import CrmSettings, Settings, SyncSettings
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine
from crm_qualify.connector.sync.state import TASK_OWED, TASK_PENDING, StateStore

from tests.fault_cases import fault_cases
from tests.hubspot.conftest import FAST, make_adapter

ANCHOR = date(2026, 3, 2)
NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
CONTACTS = 80
MAX_RUNS = 6
OWNED = (
    "lifecyclestage",
    "crmq_score",
    "crmq_fit_score",
    "crmq_engagement_score",
    "crmq_intent_score",
    "crmq_temperature",
    "crmq_grade",
    "crmq_reasons",
    "crmq_rules_version",
    "crmq_renurture",
    "crmq_scored_at",
    "crmq_highest_stage",
    "crmq_customer_type",
    "crmq_disqualified",
)
FAULTS = ["429", "500", "502", "503", "reset", "drop", "lost", "timeout", "401"]
REQUESTS = [
    "tasks.search",
    "contacts.list",
    "contacts.search",
    "contacts.batch_read",
    "contacts.deals.associations",
    "contacts.tasks.associations",
    "tasks.contacts.associations",
    "deals.batch_read",
    "tasks.batch_read",
    "deals.pipelines",
    "contacts.batch_update",
    "tasks.batch_create",
]

WRITES = ["contacts.batch_update", "tasks.batch_create"]
"""Every fault meets these; reads meet them in rotation (`tests/fault_cases.py`)."""

IMMEDIATE_LOOKUP = SyncSettings(lookup_delay_seconds=0)
"""Runs follow each other at once here, and the simulator's search has no lag."""


def portal() -> HubSpotSimulator:
    sim = HubSpotSimulator(
        contacts=CONTACTS, seed=12, anchor=ANCHOR, custom_properties=True, **FAST
    )
    sim.start()
    return sim


def people_work(sim: HubSpotSimulator) -> None:
    """A contact edited and a keyed task completed a minute before `NOW` (inside the second
    run's window), the same in every case whatever the first run did."""
    edited, swept = sorted(sim.store.objects["contacts"])[5:7]
    now = int(NOW.timestamp() * 1000)
    with sim.store.lock:
        sim.store.update("contacts", edited, {"jobtitle": "Head of Ops"}, now - 60_000, human=True)
        task = sim.store.create(
            "tasks",
            {
                "hs_timestamp": "2026-03-03T09:00:00.000Z",
                "hs_task_subject": "Call back",
                "hs_task_status": "NOT_STARTED",
                "crmq_task_key": f"crmq:contacts:{swept}:by-hand",
            },
            now - 600_000,
        )
        sim.store.associate("tasks", task["id"], "contacts", swept, [204])
    sim.complete_task(task["id"], at=now - 60_000)


def settled(store: StateStore) -> bool:
    return not (
        store.tasks_in("default", TASK_PENDING)
        or store.tasks_in("default", TASK_OWED)
        or store.retries("default")
    )


def sync_until_settled(sim: HubSpotSimulator, state: Path) -> list[str]:
    """Runs (at least two: the second reads by search) until one ends ok with nothing left
    in flight; returns the runs' statuses."""
    adapter = make_adapter(sim, timeout_seconds=1.0, max_attempts=3)
    store = StateStore(state)
    engine = SyncEngine(
        adapter, Settings(crm=CrmSettings(adapter="hubspot"), sync=IMMEDIATE_LOOKUP), store
    )
    statuses: list[str] = []
    try:
        while len(statuses) < MAX_RUNS:
            statuses.append(engine.run(RunOptions(now=NOW)).status)
            if len(statuses) == 1:
                people_work(sim)
            if len(statuses) >= 2 and statuses[-1] == "ok" and settled(store):
                return statuses
    finally:
        store.close()
    raise AssertionError(f"not settled after {MAX_RUNS} runs: {statuses}")


def outcome(sim: HubSpotSimulator) -> tuple[dict[str, dict[str, Any]], Counter[tuple[str, str]]]:
    """Owned values per contact, and live tasks counted by (key, contact)."""
    owned = {
        oid: {p: record["properties"].get(p) for p in OWNED}
        for oid, record in sim.store.objects["contacts"].items()
    }
    tasks: Counter[tuple[str, str]] = Counter()
    for task_id, task in sim.store.objects["tasks"].items():
        key = task["properties"].get("crmq_task_key")
        if key and not task["archived"]:
            (contact,) = sim.store.associations("tasks", task_id, "contacts")
            tasks[(key, contact)] += 1
    return owned, tasks


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    sim = portal()
    try:
        statuses = sync_until_settled(sim, tmp_path_factory.mktemp("clean") / "state.sqlite")
        assert statuses == ["ok", "ok"]
        owned, tasks = outcome(sim)
        assert tasks and max(tasks.values()) == 1
        assert any(values["crmq_score"] for values in owned.values())
        yield owned, tasks
    finally:
        sim.stop()


@pytest.mark.parametrize(("kind", "request_kind"), fault_cases(FAULTS, REQUESTS, WRITES))
def test_one_fault_then_syncs_end_as_a_clean_sync(clean, tmp_path, kind, request_kind):
    sim = portal()
    try:
        sim.faults.add(kind, request=request_kind, delay=1.5)
        sync_until_settled(sim, tmp_path / "state.sqlite")
        assert sim.faults.pending() == 0, "the fault met its request"
        owned, tasks = outcome(sim)
    finally:
        sim.stop()
    assert max(tasks.values()) == 1, "no task key twice"
    assert (owned, tasks) == clean
