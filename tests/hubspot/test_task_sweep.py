"""Our tasks as HubSpot holds them (status, creation and completion times), and the sweep
that makes a salesperson completing one visible to the next incremental run: completing a
task does not touch its contact's `lastmodifieddate`. Over a real socket, on the simulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests
from crm_qualify.adapters.hubspot import adapter as adapter_module
from crm_qualify.adapters.hubspot import reader
from crm_qualify.adapters.hubspot.client import HubSpotError
from crm_qualify.adapters.hubspot.reader import Cursor
from crm_qualify.adapters.hubspot.records import Links
from crm_qualify.adapters.hubspot.simulator.values import format_ms
from crm_qualify.connector.model import Contact, PlannedTask

from tests.hubspot.conftest import make_adapter, translate_all

SECOND = 1000


@pytest.fixture
def adapter(sim):
    return make_adapter(sim, lookback_seconds=0)


def plan(contact_id: str, reason: str = "hot_call:20261122T2000") -> PlannedTask:
    return PlannedTask(
        key=f"crmq:contacts:{contact_id}:{reason}",
        contact_id=contact_id,
        object_type="contacts",
        kind="hot_call",
        subject="Call",
        due=datetime.now(UTC) + timedelta(hours=24),
        priority="high",
        task_type="call",
    )


def create(adapter, contact_id: str) -> str:
    (result,) = adapter.create_tasks([plan(contact_id)])
    assert result.ok and result.crm_id
    return result.crm_id


def read_one(adapter, contact_id: str) -> Contact:
    (contact,), errors = translate_all(adapter.read_contacts([("contacts", contact_id)]))
    assert errors == []
    return contact


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def at(stamp: int) -> datetime:
    return datetime.fromtimestamp(stamp / 1000, UTC)


def incremental(adapter, cursor: str, until: int) -> tuple[list[str], str]:
    """The contact ids an incremental run reads, and the cursor it ends with."""
    ids: list[str] = []
    last = cursor
    for batch in adapter.read_changed(cursor, until=at(until)):
        ids += [item.key[1] for item in batch.raw]
        last = batch.cursor or last
    return ids, last


def test_a_task_is_read_with_its_status_creation_and_completion_times(sim, adapter):
    contact_id = sorted(sim.store.objects["contacts"])[5]
    task_id = create(adapter, contact_id)
    (task,) = [t for t in read_one(adapter, contact_id).tasks if t.id == task_id]
    created = sim.store.objects["tasks"][task_id]["properties"]["hs_createdate"]
    assert task.created_at == datetime.fromisoformat(created.replace("Z", "+00:00"))
    assert (task.completed, task.completed_at, task.is_open) == (False, None, True)
    assert not task.changed_since_created, "as created: a rollback may remove it"

    done_at = ms(task.created_at) + 90 * SECOND
    sim.complete_task(task_id, at=done_at)
    props = sim.store.objects["tasks"][task_id]["properties"]
    assert props["hs_task_completion_date"] == format_ms(done_at), "HubSpot stamps completion"
    assert props["hs_lastmodifieddate"] == format_ms(done_at)
    (task,) = [t for t in read_one(adapter, contact_id).tasks if t.id == task_id]
    assert task.completed and task.completed_at == at(done_at) and not task.is_open
    assert task.modified_at == at(done_at) and task.changed_since_created

    sim.complete_task(task_id, completed=False, at=done_at + SECOND)
    assert "hs_task_completion_date" not in sim.store.objects["tasks"][task_id]["properties"]
    (task,) = [t for t in read_one(adapter, contact_id).tasks if t.id == task_id]
    assert (task.completed, task.completed_at) == (False, None)


def test_a_completed_task_brings_its_contact_into_the_next_incremental_run(sim, adapter):
    start = ms(datetime.now(UTC))
    *_, last = adapter.read_changed(None, until=at(start))  # the first run: a full walk
    cursor = last.cursor
    contact_id = sorted(sim.store.objects["contacts"])[7]
    contact_stamp = sim.store.objects["contacts"][contact_id]["properties"]["lastmodifieddate"]
    task_id = create(adapter, contact_id)

    # Our own new task, untouched since: creating it is not news.
    ids, cursor = incremental(adapter, cursor, start + 20 * SECOND)
    assert contact_id not in ids

    sim.complete_task(task_id, at=start + 100 * SECOND)
    props = sim.store.objects["contacts"][contact_id]["properties"]
    assert props["lastmodifieddate"] == contact_stamp, "completing a task leaves the contact"
    ids, cursor = incremental(adapter, cursor, start + 120 * SECOND)
    assert ids.count(contact_id) == 1
    assert Cursor.load(cursor) == Cursor(since=start + 120 * SECOND, activity=start + 120 * SECOND)

    ids, cursor = incremental(adapter, cursor, start + 140 * SECOND)
    assert contact_id not in ids, "swept once: the next window is past the completion"

    sim.complete_task(task_id, completed=False, at=start + 200 * SECOND)  # reopened
    ids, _ = incremental(adapter, cursor, start + 220 * SECOND)
    assert contact_id in ids


def test_a_contact_changed_and_swept_in_one_run_is_read_once(sim, adapter):
    start = ms(datetime.now(UTC))
    *_, last = adapter.read_changed(None, until=at(start))
    contact_id = sorted(sim.store.objects["contacts"])[9]
    task_id = create(adapter, contact_id)
    sim.complete_task(task_id, at=start + 100 * SECOND)
    sim.store.update("contacts", contact_id, {"firstname": "Ada"}, start + 100 * SECOND)
    ids, _ = incremental(adapter, last.cursor, start + 120 * SECOND)
    assert ids.count(contact_id) == 1


@pytest.mark.parametrize("leave_at", [1, 3])
def test_the_search_s_contacts_leave_before_the_sweeps_search(sim, adapter, monkeypatch, leave_at):
    """Enough contacts found by the search (`LEAVE_AT_SEARCH_END`) are handed over (read,
    decided and written by the core) while the sweeps search, and a contact only a sweep finds
    comes in a batch of its own; fewer wait for the sweeps' contacts to join them."""
    monkeypatch.setattr(adapter_module, "LEAVE_AT_SEARCH_END", leave_at)
    start = ms(datetime.now(UTC))
    *_, last = adapter.read_changed(None, until=at(start))
    edited, worked_on = sorted(sim.store.objects["contacts"])[17:19]
    task_id = create(adapter, worked_on)
    sim.complete_task(task_id, at=start + 100 * SECOND)
    sim.store.update("contacts", edited, {"firstname": "Ada"}, start + 100 * SECOND)
    task_searches = "POST /crm/v3/objects/tasks/search"
    before = sim.stats.by_endpoint[task_searches]

    handed = []
    for batch in adapter.read_changed(last.cursor, until=at(start + 120 * SECOND)):
        ids = [item.key[1] for item in batch.raw]
        handed.append((ids, sim.stats.by_endpoint[task_searches] - before))

    found = [(ids, searched) for ids, searched in handed if ids]
    if leave_at == 1:
        assert found == [([edited], 0), ([worked_on], 1)], "the search's batch before any sweep"
    else:
        assert found == [([edited, worked_on], 1)], "one batch, after the sweep"


def test_the_sweep_position_is_saved_only_once_the_sweep_is_done(sim, adapter):
    start = ms(datetime.now(UTC))
    contact_id = sorted(sim.store.objects["contacts"])[11]
    task_id = create(adapter, contact_id)
    sim.complete_task(task_id, at=start + 100 * SECOND)
    before = Cursor(since=start, activity=start)
    until = at(start + 120 * SECOND)

    steps = list(adapter.reader.changed(before, until))
    sweep = [(ids, cursor) for ids, cursor in steps if contact_id in ids]
    assert len(sweep) == 1
    assert sweep[0][1].activity == start, "mid-sweep, the cursor keeps the old sweep position"
    assert steps[-1] == ([], Cursor(since=ms(until), activity=ms(until)))

    # Interrupted during the sweep: the next run starts from a cursor whose contact search is
    # done but whose sweep is not, and sweeps the same window again.
    resumed = list(adapter.reader.changed(sweep[0][1], at(start + 130 * SECOND)))
    assert any(contact_id in ids for ids, _ in resumed)

    # HubSpot failing the association read past the retries fails the run: no step of it
    # carries the new sweep position.
    sim.faults.add("503", times=20, request="tasks.contacts.associations")
    steps = []
    with pytest.raises(HubSpotError):
        for step in adapter.reader.changed(before, until):
            steps.append(step)
    assert all(cursor.activity == start for _, cursor in steps)
    sim.faults.clear()


def test_tasks_whose_contacts_could_not_be_read_are_swept_again(sim, adapter, monkeypatch):
    start = ms(datetime.now(UTC))
    contact_id = sorted(sim.store.objects["contacts"])[13]
    task_id = create(adapter, contact_id)
    sim.complete_task(task_id, at=start + 100 * SECOND)
    before, until = Cursor(since=start, activity=start), at(start + 120 * SECOND)

    def unreadable(client, from_type, ids, to_type):  # a 207 row for every task
        return Links(failed={i: "UNKNOWN: try again" for i in ids})

    monkeypatch.setattr(reader, "associated", unreadable)
    steps = list(adapter.reader.changed(before, until))
    assert all(contact_id not in ids for ids, _ in steps)
    assert steps[-1][1] == Cursor(since=ms(until), activity=start), "sweep not done"
    monkeypatch.undo()
    again = list(adapter.reader.changed(steps[-1][1], at(start + 130 * SECOND)))
    assert any(contact_id in ids for ids, _ in again)


def test_a_first_run_walks_without_sweeping(sim, adapter):
    contact_id = sorted(sim.store.objects["contacts"])[3]
    create(adapter, contact_id)
    steps = list(adapter.reader.changed(None, datetime.now(UTC)))
    walked = [i for ids, _ in steps for i in ids]
    assert walked.count(contact_id) == 1 and len(walked) == len(set(walked))
    assert steps[-1][1].activity is None, "the next run sweeps from where the walk began"


def test_the_simulator_completes_stamps_and_searches_tasks_as_hubspot_does(sim, adapter):
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {sim.token}"
    base = f"{sim.base_url}/crm/v3/objects/tasks"
    contact_id = sorted(sim.store.objects["contacts"])[15]
    task_id = create(adapter, contact_id)
    before = sim.store.objects["tasks"][task_id]["properties"]["hs_lastmodifieddate"]

    done = http.patch(
        f"{base}/{task_id}", json={"properties": {"hs_task_status": "COMPLETED"}}, timeout=5
    )
    assert done.status_code == 200
    props = done.json()["properties"]
    assert props["hs_task_completion_date"] and props["hs_lastmodifieddate"] >= before
    assert props["hs_task_completion_date"] == props["hs_lastmodifieddate"]
    refused = http.patch(
        f"{base}/{task_id}",
        json={"properties": {"hs_task_completion_date": "2026-01-01T00:00:00Z"}},
        timeout=5,
    )
    assert refused.status_code == 400, "the completion date is HubSpot's, read-only"

    def search(*filters: dict) -> list[str]:
        body = {"filterGroups": [{"filters": list(filters)}], "limit": 200}
        answer = http.post(f"{base}/search", json=body, timeout=5)
        assert answer.status_code == 200
        return [row["id"] for row in answer.json()["results"]]

    stamp = str(ms(datetime.fromisoformat(props["hs_lastmodifieddate"].replace("Z", "+00:00"))))
    ours = {"propertyName": "crmq_task_key", "operator": "HAS_PROPERTY"}
    since = {"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": stamp}
    assert search(ours, since) == [task_id]
    after = {"propertyName": "hs_lastmodifieddate", "operator": "GT", "value": stamp}
    assert search(ours, after) == []
    theirs = {"propertyName": "crmq_task_key", "operator": "NOT_HAS_PROPERTY"}
    assert task_id not in search(theirs, since)
