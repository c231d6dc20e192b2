"""Every simulated fault against each request the adapter writes with (and the task lookup
that resolves an unknown outcome), over real TLS: the per-record results say what happened,
and after the core's protocol (look uncertain keys up, resend what is missing) the org holds
exactly one task per key."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from crm_qualify.adapters.salesforce import SalesforceAdapter
from crm_qualify.adapters.salesforce.simulator import SalesforceSimulator
from crm_qualify.adapters.salesforce.tasks import TaskWriter
from crm_qualify.connector.contract import TaskResult
from crm_qualify.connector.model import FieldUpdate, PlannedTask, RecordUpdate

from tests.salesforce.conftest import make_adapter

KEY = "CRMQ_Task_Key__c"
FAULTS = ["429", "503", "500", "502", "reset", "lost", "timeout", "INVALID_SESSION_ID",
          "UNABLE_TO_LOCK_ROW"]  # fmt: skip
NOT_APPLIED = {"503", "500", "502", "reset"}
"""Transient failures that may have landed, as the client sees them; the simulator applied
none of these."""
APPLIED = {"lost", "timeout"}


@pytest.fixture
def org() -> Iterator[SalesforceSimulator]:
    with SalesforceSimulator(records=30, seed=9) as simulator:
        simulator.faults.delay = 1.5
        yield simulator
        assert simulator.faults.queue == [], "every queued fault struck"


@pytest.fixture
def adapter(org) -> SalesforceAdapter:
    adapter = make_adapter(org, timeout_seconds=1.0, max_attempts=4)
    adapter.client.login()
    return adapter


def leads(org: SalesforceSimulator, n: int = 3) -> list[str]:
    return sorted(r["Id"] for r in org.org.records["Lead"].values() if not r["IsConverted"])[:n]


def planned(org: SalesforceSimulator) -> list[PlannedTask]:
    return [
        PlannedTask(
            key=f"crmq:Lead:{lead}:hot_call", contact_id=lead, object_type="Lead",
            kind="hot_call", subject="Call", due=datetime.now(UTC) + timedelta(days=1),
            priority="high", task_type="call",
        )
        for lead in leads(org)
    ]  # fmt: skip


def keys_in_org(org: SalesforceSimulator) -> list[str]:
    return sorted(t[KEY] for t in org.org.live("Task") if t.get(KEY))


def settle(adapter: SalesforceAdapter, tasks: list[PlannedTask], results: list[TaskResult]) -> None:
    """What the core does: look uncertain keys up, then send what is not there."""
    uncertain = [t.key for t, r in zip(tasks, results, strict=True) if r.uncertain]
    found = adapter.find_tasks(uncertain) if uncertain else {}
    missing = [t for t, r in zip(tasks, results, strict=True) if not r.ok and t.key not in found]
    assert all(r.ok for r in adapter.create_tasks(missing))


@pytest.mark.parametrize("fault", FAULTS)
def test_field_updates_under_a_fault(org, adapter, fault):
    targets = leads(org)
    org.faults.add(fault, request="update")
    results = adapter.write_updates(
        [RecordUpdate(contact_id=lead, object_type="Lead",
                      changes=[FieldUpdate(field="score", new=60 + n)])
         for n, lead in enumerate(targets)]
    )  # fmt: skip
    if fault == "UNABLE_TO_LOCK_ROW":
        assert [r.ok for r in results] == [False, True, True]
        assert results[0].retryable and "UNABLE_TO_LOCK_ROW" in results[0].error
        targets = targets[1:]
    else:
        assert all(r.ok for r in results), [r.error for r in results]
    assert all(org.org.records["Lead"][lead]["CRMQ_Score__c"] is not None for lead in targets)


@pytest.mark.parametrize("fault", FAULTS)
def test_task_upserts_under_a_fault_end_with_one_task_per_key(org, adapter, fault):
    tasks = planned(org)
    org.faults.add(fault, request="upsert")
    results = adapter.create_tasks(tasks)
    if fault in NOT_APPLIED | APPLIED:
        assert all(r.uncertain and not r.ok for r in results), results
        assert keys_in_org(org) == (sorted(t.key for t in tasks) if fault in APPLIED else [])
    elif fault == "UNABLE_TO_LOCK_ROW":
        assert [r.ok for r in results] == [False, True, True]
        assert results[0].retryable and not results[0].uncertain
    else:
        assert all(r.ok for r in results), results
    settle(adapter, tasks, results)
    assert keys_in_org(org) == sorted(t.key for t in tasks)


@pytest.mark.parametrize("fault", FAULTS)
def test_a_resent_upsert_updates_instead_of_duplicating(org, adapter, fault):
    tasks = planned(org)
    org.faults.add(fault, request="upsert")
    adapter.create_tasks(tasks)
    again = adapter.create_tasks(tasks)
    assert all(r.ok for r in again)
    assert keys_in_org(org) == sorted(t.key for t in tasks)


@pytest.mark.parametrize("fault", FAULTS)
def test_the_task_lookup_under_a_fault_still_finds_every_key(org, adapter, fault):
    tasks = planned(org)
    made = {t.key: r.crm_id for t, r in zip(tasks, adapter.create_tasks(tasks), strict=True)}
    org.faults.add(fault, request="task lookup")
    assert adapter.find_tasks([t.key for t in tasks]) == made
    org.faults.add(fault, request="task lookup")
    assert dict(adapter.existing_task_keys()) == made


@pytest.mark.parametrize("fault", FAULTS)
def test_deleting_our_tasks_under_a_fault(org, adapter, fault):
    tasks = planned(org)
    ids = [r.crm_id for r in adapter.create_tasks(tasks)]
    org.faults.add(fault, request="delete")
    results = adapter.close_tasks(ids)
    expected = [False, True, True] if fault == "UNABLE_TO_LOCK_ROW" else [True] * 3
    assert [r.ok for r in results] == expected
    assert len(keys_in_org(org)) == expected.count(False)


class _Answering:
    """A client stub that answers every call with one canned body."""

    def __init__(self, answer: object) -> None:
        self.answer = answer

    def restful(self, *args: object, **kwargs: object) -> object:
        return self.answer


def _lone_task() -> PlannedTask:
    return PlannedTask(
        key="crmq:k", contact_id="00Q5g0000000001AAA", object_type="Lead", kind="hot_call",
        subject="Call", due=datetime.now(UTC) + timedelta(days=1),
    )  # fmt: skip


def _writer(client) -> TaskWriter:
    """Task writes only: these tests never query."""
    return TaskWriter(client, KEY, query=None, query_in=None)  # type: ignore[arg-type]


def test_a_key_held_by_a_racing_upsert_is_looked_up_not_reported():
    held = {"success": False, "created": False, "errors": [{
        "statusCode": "DUPLICATE_VALUE", "fields": [],
        "message": f"duplicate value found: {KEY} duplicates value on record with id: 00T1",
    }]}  # fmt: skip
    (result,) = _writer(_Answering([held])).create([_lone_task()])
    assert result.uncertain and not result.ok


@pytest.mark.parametrize("answer", [[], {"id": "00T1"}, None, ["not a row"]])
def test_an_answer_of_the_wrong_shape_leaves_the_tasks_uncertain(answer):
    (result,) = _writer(_Answering(answer)).create([_lone_task()])
    assert result.uncertain and not result.ok
