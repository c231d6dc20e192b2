"""Each fault kind against each request the adapter makes, over a real socket.

Creates are never resent blindly: a create that may have landed comes back `uncertain`, and
`find_tasks` before a resend leaves exactly one task per key. Idempotent requests (field
updates, reads, look-ups, archives) ride out every transient fault with retries. One
simulator serves the whole module; the client's timeout is short so `timeout` faults are
quick, and long enough (1 s) that a loaded machine does not time out an answered request.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from crm_qualify.adapters.hubspot import HubSpotAdapter
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.connector.contract import AuthError, TaskResult
from crm_qualify.connector.model import FieldUpdate, PlannedTask, RecordUpdate

from tests.hubspot.conftest import FAST, make_adapter, translate_all

TIMEOUT = 1.0
DELAY = 1.5  # how long a `timeout` fault holds the answer: past the client's timeout
NOT_SERVED = ["429", "500", "502", "503", "reset", "drop"]
SERVED = ["lost", "timeout"]
TRANSIENT = NOT_SERVED + SERVED
CREATE_OUTCOME = {
    "429": (False, True),  # (uncertain, landed): a throttle proves HubSpot never acted
    **{kind: (True, False) for kind in ["500", "502", "503", "reset", "drop"]},
    **{kind: (True, True) for kind in SERVED},
}


@pytest.fixture(scope="module")
def portal() -> Iterator[HubSpotSimulator]:
    with HubSpotSimulator(contacts=60, seed=6, custom_properties=True, **FAST) as sim:
        yield sim


@pytest.fixture
def sim(portal: HubSpotSimulator) -> Iterator[HubSpotSimulator]:
    portal.faults.clear()
    yield portal
    portal.faults.clear()


@pytest.fixture
def adapter(sim: HubSpotSimulator) -> HubSpotAdapter:
    return make_adapter(sim, timeout_seconds=TIMEOUT, max_attempts=3)


def contact_ids(sim: HubSpotSimulator) -> list[str]:
    return sorted(sim.store.objects["contacts"])


def planned(contact_id: str, tag: str) -> PlannedTask:
    return PlannedTask(
        key=f"crmq:contacts:{contact_id}:hot_call:{tag}",
        contact_id=contact_id,
        object_type="contacts",
        kind="hot_call",
        subject="Call back",
        due=datetime(2026, 1, 5, 9, tzinfo=UTC),
        priority="high",
        task_type="call",
    )


def tasks_with(sim: HubSpotSimulator, key: str) -> list[str]:
    return [
        task_id
        for task_id, task in sim.store.objects["tasks"].items()
        if task["properties"].get("crmq_task_key") == key and not task["archived"]
    ]


def settle(adapter: HubSpotAdapter, tasks: list[PlannedTask], results: list[TaskResult]) -> None:
    """What the engine does with uncertain creates: look the keys up, resend the rest."""
    uncertain = [t for t, r in zip(tasks, results, strict=True) if r.uncertain]
    found = adapter.find_tasks([t.key for t in uncertain])
    resend = [t for t in uncertain if t.key not in found]
    assert all(r.ok for r in adapter.create_tasks(resend))


@pytest.mark.parametrize("kind", TRANSIENT)
def test_a_create_that_may_have_landed_is_uncertain_and_never_duplicated(sim, adapter, kind):
    ids = contact_ids(sim)[:3]
    tasks = [planned(i, f"create-{kind}") for i in ids]
    sim.faults.add(kind, request="tasks.batch_create", delay=DELAY)
    results = adapter.create_tasks(tasks)
    assert sim.faults.pending() == 0
    uncertain, landed = CREATE_OUTCOME[kind]
    assert [r.uncertain for r in results] == [uncertain] * 3
    assert [r.ok for r in results] == [not uncertain] * 3
    assert all(len(tasks_with(sim, t.key)) == int(landed) for t in tasks)
    settle(adapter, tasks, results)
    assert all(len(tasks_with(sim, t.key)) == 1 for t in tasks), "exactly one task per key"


def test_an_expired_token_on_a_create_stops_the_call_and_creates_nothing(sim, adapter):
    task = planned(contact_ids(sim)[3], "create-401")
    sim.faults.add("401", request="tasks.batch_create")
    with pytest.raises(AuthError):
        adapter.create_tasks([task])
    assert tasks_with(sim, task.key) == []


def test_a_refused_task_is_named_by_property_and_the_others_created(sim, adapter):
    ids = contact_ids(sim)[4:8]
    tasks = [planned(i, "refused") for i in ids]
    tasks[2].owner_id = "no-such-owner"
    results = adapter.create_tasks(tasks)
    assert [r.ok for r in results] == [True, True, False, True]
    refused = results[2]
    assert (refused.retryable, refused.uncertain, refused.field) == (
        False,
        False,
        "hubspot_owner_id",
    )
    assert tasks_with(sim, tasks[2].key) == []


@pytest.mark.parametrize("kind", TRANSIENT)
def test_field_updates_ride_out_every_transient_fault(sim, adapter, kind):
    ids = contact_ids(sim)[10:14]
    score = 10 + TRANSIENT.index(kind)
    updates = [
        RecordUpdate(contact_id=i, changes=[FieldUpdate(field="score", new=score)]) for i in ids
    ]
    sim.faults.add(kind, request="contacts.batch_update", delay=DELAY)
    results = adapter.write_updates(updates)
    assert sim.faults.pending() == 0
    assert [r.ok for r in results] == [True] * 4
    assert {sim.store.objects["contacts"][i]["properties"]["crmq_score"] for i in ids} == {
        str(score)
    }


def test_an_update_that_fails_every_attempt_is_retryable_for_each_record(sim, adapter):
    """503 on every attempt (max_attempts=3): nothing was applied, and every record of the
    call comes back failed for now, so the engine keeps its intent and the next run sends
    it again; the call does not raise."""
    ids = contact_ids(sim)[27:29]
    before = [sim.store.objects["contacts"][i]["properties"].get("crmq_score") for i in ids]
    sim.faults.add("503", times=3, request="contacts.batch_update")
    results = adapter.write_updates(
        [RecordUpdate(contact_id=i, changes=[FieldUpdate(field="score", new=77)]) for i in ids]
    )
    assert sim.faults.pending() == 0
    assert [(r.ok, r.retryable) for r in results] == [(False, True)] * 2
    assert all("503" in (r.error or "") for r in results)
    after = [sim.store.objects["contacts"][i]["properties"].get("crmq_score") for i in ids]
    assert after == before


def test_an_expired_token_on_an_update_stops_the_call(sim, adapter):
    contact_id = contact_ids(sim)[14]
    sim.faults.add("401", request="contacts.batch_update")
    with pytest.raises(AuthError):
        adapter.write_updates(
            [RecordUpdate(contact_id=contact_id, changes=[FieldUpdate(field="score", new=1)])]
        )


def test_a_refused_value_is_not_retryable_and_names_the_property(sim, adapter):
    ids = contact_ids(sim)[15:18]
    updates = [
        RecordUpdate(contact_id=i, changes=[FieldUpdate(field="temperature", new="warm")])
        for i in ids
    ]
    updates[1] = RecordUpdate(
        contact_id=ids[1], changes=[FieldUpdate(field="temperature", new="lukewarm")]
    )
    results = adapter.write_updates(updates)
    assert [r.ok for r in results] == [True, False, True]
    assert (results[1].retryable, results[1].field) == (False, "crmq_temperature")


def test_a_value_the_mapping_cannot_write_is_refused_before_sending_and_names_the_property(
    sim, adapter
):
    """`target` has no lifecyclestage value: that record's update is refused by name, not
    sent, and the other records of the call land."""
    ids = contact_ids(sim)[24:27]
    updates = [RecordUpdate(contact_id=i, changes=[FieldUpdate(field="score", new=9)]) for i in ids]
    updates[1] = RecordUpdate(contact_id=ids[1], changes=[FieldUpdate(field="stage", new="target")])
    before = sim.store.objects["contacts"][ids[1]]["properties"].get("lifecyclestage")
    results = adapter.write_updates(updates)
    assert [r.ok for r in results] == [True, False, True]
    assert (results[1].retryable, results[1].field) == (False, "lifecyclestage")
    assert "target" in (results[1].error or "")
    assert sim.store.objects["contacts"][ids[1]]["properties"].get("lifecyclestage") == before
    assert sim.store.objects["contacts"][ids[0]]["properties"]["crmq_score"] == "9"


def test_a_failed_row_of_a_batch_update_names_its_record(sim, adapter):
    ids = contact_ids(sim)[18:21]
    sim.faults.add("207", ids=[ids[0]], request="contacts.batch_update")
    results = adapter.write_updates(
        [RecordUpdate(contact_id=i, changes=[FieldUpdate(field="score", new=5)]) for i in ids]
    )
    assert [r.ok for r in results] == [False, True, True]
    assert (results[0].retryable, results[0].field) == (False, "crmq_score")


@pytest.mark.parametrize("kind", TRANSIENT)
def test_key_lookups_and_archives_ride_out_every_transient_fault(sim, adapter, kind):
    tasks = [planned(i, f"lookup-{kind}") for i in contact_ids(sim)[21:23]]
    created = make_adapter(sim).create_tasks(tasks)  # set-up: not under the short timeout
    sim.faults.add(kind, request="tasks.search", delay=DELAY)
    found = adapter.find_tasks([t.key for t in tasks])
    assert found == {t.key: r.crm_id for t, r in zip(tasks, created, strict=True)}
    sim.faults.add(kind, request="tasks.batch_archive", delay=DELAY)
    closed = adapter.close_tasks(list(found.values()))
    assert sim.faults.pending() == 0
    assert all(r.ok for r in closed)
    assert all(tasks_with(sim, t.key) == [] for t in tasks)


READS = [
    "contacts.batch_read",
    "contacts.deals.associations",
    "contacts.tasks.associations",
    "deals.batch_read",
    "deals.pipelines",
]


@pytest.mark.parametrize("request_kind", READS)
@pytest.mark.parametrize("kind", ["500", "502", "reset", "lost"])
def test_reads_ride_out_transient_faults(sim, kind, request_kind):
    ids = contact_ids(sim)[:40]
    clean, _ = translate_all(make_adapter(sim).read_contacts([("contacts", i) for i in ids]))
    adapter = make_adapter(sim, timeout_seconds=TIMEOUT)
    sim.faults.add(kind, request=request_kind)
    contacts, errors = translate_all(adapter.read_contacts([("contacts", i) for i in ids]))
    assert sim.faults.pending() == 0
    assert not errors
    assert contacts == clean


def test_a_failed_row_of_a_batch_read_is_a_transient_error(sim, adapter):
    ids = contact_ids(sim)[:6]
    sim.faults.add("207", ids=[ids[2]], request="contacts.batch_read")
    contacts, errors = translate_all(adapter.read_contacts([("contacts", i) for i in ids]))
    assert [c.id for c in contacts] == [i for i in ids if i != ids[2]]
    (error,) = errors
    assert (error.record, error.key, error.transient) == (
        f"contacts/{ids[2]}",
        ("contacts", ids[2]),
        True,
    )


def test_a_contact_whose_deal_could_not_be_read_is_read_again(sim, adapter):
    ids = [i for i in contact_ids(sim) if sim.store.associations("contacts", i, "deals")][:3]
    deal = sim.store.associations("contacts", ids[1], "deals")[0]
    sim.faults.add("207", ids=[deal], request="deals.batch_read")
    contacts, errors = translate_all(adapter.read_contacts([("contacts", i) for i in ids]))
    failed = {e.key[1] for e in errors if e.transient and e.key}
    assert ids[1] in failed, "its deal is unknown: it is read again, not decided without it"
    assert {c.id for c in contacts} == set(ids) - failed
