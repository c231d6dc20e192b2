"""Every fault kind against every request kind, end to end through the sync engine over TLS:
sync until settled, then the org holds what a clean run leaves (the owned field values of
every person, one task per key with the same fields), and no task key twice."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from crm_qualify.adapters.salesforce.simulator import SalesforceSimulator
from crm_qualify.connector.mapping import load_mapping
from crm_qualify.connector.settings import CrmSettings, Settings, SyncSettings
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine
from crm_qualify.connector.sync.state import TASK_OWED, TASK_PENDING, StateStore

from tests.fault_cases import fault_cases
from tests.salesforce.conftest import make_adapter

FAULTS = ["429", "503", "500", "502", "reset", "lost", "timeout", "INVALID_SESSION_ID",
          "UNABLE_TO_LOCK_ROW"]  # fmt: skip
REQUESTS = ["login", "query", "queryMore", "task lookup", "update", "upsert"]
WRITES = ["update", "upsert"]
"""Every fault meets these; reads meet them in rotation (`tests/fault_cases.py`)."""
NOW = datetime.now(UTC)
RECORDS, SEED = 24, 21
KEY = "CRMQ_Task_Key__c"
TASK_FIELDS = ("WhoId", "Subject", "Description", "ActivityDate", "Priority", "TaskSubtype")
MAPPING = load_mapping("salesforce")
OBJECTS = ("Lead", "Contact")
OWNED = {
    sobject: list(MAPPING["objects"][sobject]["fields"].values()) for sobject in ("Lead", "Contact")
}


IMMEDIATE_LOOKUP = SyncSettings(lookup_delay_seconds=0)
"""Runs follow each other at once here, and the simulator's search has no lag."""


def org() -> SalesforceSimulator:
    sim = SalesforceSimulator(records=RECORDS, seed=SEED, anchor=NOW.date())
    sim.page_size = 5
    sim.faults.delay = 1.5
    return sim


def snapshot(sim: SalesforceSimulator) -> dict[str, Any]:
    """What a sync leaves in the org: owned values per person, our tasks by key."""
    people = {
        person["Id"]: {field: person.get(field) for field in OWNED[sobject]}
        for sobject in OWNED
        for person in sim.org.live(sobject)
        if not person.get("IsConverted")
    }
    ours = [task for task in sim.org.live("Task") if task.get(KEY)]
    return {
        "people": people,
        "tasks": {task[KEY]: {f: task.get(f) for f in TASK_FIELDS} for task in ours},
        "keys": Counter(task[KEY] for task in ours),
    }


def sync_until_settled(sim: SalesforceSimulator, tmp_path, runs: int = 4) -> list[str]:
    """Runs (each with a new adapter, as a restarted daemon) until one ends ok with nothing
    owed or pending; the statuses seen."""
    store = StateStore(tmp_path / "state.sqlite")
    settings = Settings(crm=CrmSettings(adapter="salesforce"), sync=IMMEDIATE_LOOKUP)
    statuses: list[str] = []
    try:
        for _ in range(runs):
            adapter = make_adapter(sim, timeout_seconds=1.0, max_attempts=4)
            summary = SyncEngine(adapter, settings, store).run(RunOptions(now=NOW))
            statuses.append(summary.status)
            unsettled = store.tasks_in("default", TASK_PENDING) + store.tasks_in(
                "default", TASK_OWED
            )
            if summary.status == "ok" and not unsettled:
                return statuses
    finally:
        store.close()
    raise AssertionError(f"not settled after {runs} runs: {statuses}")


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> dict[str, Any]:
    with org() as sim:
        assert sync_until_settled(sim, tmp_path_factory.mktemp("clean"), runs=1) == ["ok"]
        result = snapshot(sim)
    assert result["tasks"] and all(result["people"].values())
    return result


@pytest.mark.parametrize(("fault", "request_kind"), fault_cases(FAULTS, REQUESTS, WRITES))
def test_a_fault_leaves_the_org_as_a_clean_run_does(clean, tmp_path, fault, request_kind):
    with org() as sim:
        sim.faults.add(fault, request=request_kind)
        sync_until_settled(sim, tmp_path)
        assert sim.faults.queue == [], "the fault struck"
        after = snapshot(sim)
    assert max(after["keys"].values()) == 1, "no task key twice"
    assert after["tasks"] == clean["tasks"]
    assert after["people"] == clean["people"]
