"""The merge trail comes with the people: a read from stored positions goes through queryAll,
so a record merged away in its window comes back among the people (deleted, `MasterRecordId`
naming its master) and its master is handed on with it (`merged_ids`), at no request of its
own. Other deleted records are not people, and deleted or archived child rows are not
engagement: the subqueries leave them out as `query` does. The simulator serves queryAll and
archived activities as Salesforce does, to simple-salesforce's own calls too."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from crm_qualify.adapters.salesforce import adapter as adapter_module
from crm_qualify.adapters.salesforce.simulator import SalesforceSimulator
from crm_qualify.adapters.salesforce.simulator.merge import merge
from crm_qualify.connector.model import Contact
from simple_salesforce import Salesforce

from tests.fake_clock import FakeClock
from tests.salesforce.conftest import make_adapter

KEY = "CRMQ_Task_Key__c"


@pytest.fixture(scope="module")
def org() -> Iterator[SalesforceSimulator]:
    with SalesforceSimulator(records=80, seed=5) as sim:
        yield sim


def knows_nothing(hits, by_others=False):
    """The core's `known` check of an incremental run, here with an empty mirror."""
    return set()


def read(adapter, cursor, known=knows_nothing) -> tuple[list[tuple[str, Contact]], str]:
    """(key, contact) of every record handed on, in order, and the last cursor."""
    until = datetime.now(UTC) + timedelta(seconds=1)  # SystemModstamp: the second included
    handed, last = [], cursor
    for batch in adapter.read_changed(cursor, until=until, known=known):
        handed += [(raw.key, raw.translate()) for raw in batch.raw]
        last = batch.cursor or last
    return handed, last


def first_run(org):
    """An adapter (lookback 0) and the cursor of a complete first read a minute ago."""
    org.page_size = 2000
    adapter = make_adapter(org, lookback_seconds=0)
    until = datetime.now(UTC) - timedelta(minutes=1)
    batches = list(adapter.read_changed(None, until=until, known=None))
    return adapter, batches[-1].cursor


def fresh_leads(org, n: int) -> list[str]:
    """`n` open leads no earlier test used (each test takes its own), by Id."""
    with org.org.lock:
        leads = sorted(
            r["Id"]
            for r in org.org.live("Lead")
            if not r["IsConverted"] and r.get("LastName") != "taken"
        )
    chosen = leads[:n]
    with org.org.lock:
        for lead in chosen:
            org.org.records["Lead"][lead]["LastName"] = "taken"
    return chosen


def test_a_merge_in_the_window_reaches_its_master_for_no_more_requests_than_an_edit(org):
    """The master comes with the id merged into it, the victim is never handed on as a
    person, and the read asks what it asks with a person's edit alone: no trail query."""
    adapter, cursor = first_run(org)
    edited, master, victim = fresh_leads(org, 3)
    org.touch(edited, {"Title": "Head of Sales"})
    adapter.client.requests.clear()
    handed, _ = read(adapter, cursor)
    assert [key for key, _ in handed] == [("Lead", edited)]
    with_an_edit = Counter(adapter.client.requests)

    org.merge(master, [victim])
    adapter.client.requests.clear()
    handed, _ = read(adapter, cursor)  # the same window, with the merge in it
    contacts = dict(handed)
    assert sorted(contacts) == [("Lead", edited), ("Lead", master)], "the victim is no person"
    assert contacts[("Lead", master)].merged_ids == [victim]
    assert contacts[("Lead", edited)].merged_ids == []
    assert adapter.client.requests == with_an_edit
    assert adapter.client.requests["GET queryAll Lead"] == 1


def test_a_master_handed_on_before_its_victim_came_is_handed_on_again_with_it(org, monkeypatch):
    """A batch cut between a master and its victim (same stamp, the master's Id first):
    the master is read again by id, once, and handed on with the trail after its victim."""
    adapter, cursor = first_run(org)
    master, victim = fresh_leads(org, 2)
    assert master < victim
    org.merge(master, [victim])
    monkeypatch.setattr(adapter_module, "BATCH", 1)
    org.page_size = 1  # one person a page: the master's batch leaves before the next page
    try:
        adapter.client.requests.clear()
        handed, _ = read(adapter, cursor)
    finally:
        org.page_size = 2000
    masters = [contact for key, contact in handed if key == ("Lead", master)]
    assert [c.merged_ids for c in masters] == [[], [victim]]
    assert ("Lead", victim) not in [key for key, _ in handed]
    twice = [key for key, n in Counter(key for key, _ in handed).items() if n == 2]
    assert ("Lead", master) in twice  # the earlier tests' merges are in the window too
    assert adapter.client.requests["GET query Lead"] == len(twice), "each master by id, once"


def test_a_merge_made_as_the_integration_user_reaches_its_master_by_id(org):
    """A script merging through the partner API as our user: the people query leaves the
    master out (its last change is ours), so it is read by id with the sweep's people."""
    adapter, cursor = first_run(org)
    master, victim = fresh_leads(org, 2)
    with org.org.lock:
        merge(org.org, master, [victim], datetime.now(UTC), org.org.integration_user)
    assert org.org.records["Lead"][master]["LastModifiedById"] == org.org.integration_user
    contacts = dict(read(adapter, cursor)[0])
    assert contacts[("Lead", master)].merged_ids == [victim]
    assert ("Lead", victim) not in contacts


def test_a_record_deleted_without_a_merge_is_no_person_and_no_trail(org):
    """Deleted in the window with no master: not read (a deletion leaves the mirror with
    the next full read, as before), and no one is handed on for it."""
    adapter, cursor = first_run(org)
    before = dict(read(adapter, cursor)[0])
    (gone,) = fresh_leads(org, 1)
    with org.org.lock:
        org.org.update("Lead", gone, {"IsDeleted": True}, datetime.now(UTC))
    after = dict(read(adapter, cursor)[0])
    assert ("Lead", gone) not in after
    assert after == before, "the earlier tests' changes, and nothing for the deletion"


def test_deleted_and_archived_child_rows_are_not_engagement(org):
    """A call and one of our tasks deleted, a call archived, a meeting deleted: the
    incremental read (queryAll, subqueries filtered) gives the person exactly what a full
    read (query) gives, without them."""
    adapter, cursor = first_run(org)
    (lead,) = fresh_leads(org, 1)
    now = datetime.now(UTC)
    call = {"WhoId": lead, "TaskSubtype": "Call", "Status": "Completed"}
    with org.org.lock:
        kept = org.org.insert("Task", {**call, "Subject": "Call kept"}, now)
        deleted = org.org.insert("Task", {**call, "Subject": "Call deleted"}, now)
        archived = org.org.insert("Task", {**call, "Subject": "Call archived"}, now)
        ours = org.org.insert("Task", {"WhoId": lead, "Subject": "Follow up", KEY: "k-del"}, now)
        meeting = org.org.insert("Event", {"WhoId": lead, "Subject": "Demo deleted",
                                           "ActivityDateTime": org_time(now)}, now)  # fmt: skip
        for record in (deleted, ours, meeting):
            sobject = "Event" if record is meeting else "Task"
            org.org.update(sobject, record["Id"], {"IsDeleted": True}, now)
        org.org.archive(archived["Id"])
    org.touch(lead, {"Title": "CTO"})  # read by the people query itself, not by the sweep
    by_id: list[str] = []
    pages_by_id = adapter._pages_by_id

    def spy(mapping, ids):  # noqa: ANN001, ANN202
        by_id.extend(ids)
        return pages_by_id(mapping, ids)

    adapter._pages_by_id = spy
    incremental = dict(read(adapter, cursor)[0])[("Lead", lead)]
    details = {event.detail for event in incremental.events}
    assert "Call kept" in details
    assert not details & {"Call deleted", "Call archived", "Demo deleted"}
    assert "k-del" not in {task.key for task in incremental.tasks}
    assert lead not in by_id, "read by the queryAll people query, not by id"
    full, _ = read(make_adapter(org, bulk_threshold=0), None, known=None)
    assert dict(full)[("Lead", lead)] == incremental
    assert kept["Id"] not in {t.id for t in incremental.tasks}, "a call is an event, no task"


def org_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def test_a_resumed_full_read_through_bulk_takes_the_trail_from_a_query_all_job(org):
    """A full read resumed from a stored position whose rest goes through Bulk API 2.0: the
    people job is a queryAll job, and the master still comes with its victim."""
    clock = FakeClock()
    org.bulk.clock, org.bulk.delay = (lambda: clock.now), 1.0
    adapter, cursor = first_run(org)
    master, victim = fresh_leads(org, 2)
    org.merge(master, [victim])
    resumed = make_adapter(org, lookback_seconds=0, bulk_threshold=1)
    resumed.bulk_api.sleep, resumed.bulk_api.clock = clock.sleep, (lambda: clock.now)
    org.page_size = 1  # the first REST page holds one person: the rest is Bulk's
    try:
        handed, _ = read(resumed, cursor, known=None)
    finally:
        org.page_size = 2000
    people = dict(handed)
    assert ("Lead", victim) not in people
    assert people[("Lead", master)].merged_ids == [victim]
    operations = {job.operation for job in list(org.bulk.jobs.values()) if job.kind == "query"}
    assert "queryAll" in operations


# the simulator, to simple-salesforce's own calls ------------------------------------------------
@pytest.fixture(scope="module")
def sf(org) -> Salesforce:
    return Salesforce(
        instance_url=org.instance_url,
        session_id=org.session_id,
        version=org.api_version,
        session=ca_session(org),
    )


def ca_session(org) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = org.ca_bundle_path
    return session


def test_query_all_brings_deleted_and_archived_rows_which_query_leaves_out(org, sf):
    (lead,) = fresh_leads(org, 1)
    now = datetime.now(UTC)
    with org.org.lock:
        live = org.org.insert("Task", {"WhoId": lead, "Subject": "live"}, now)
        gone = org.org.insert("Task", {"WhoId": lead, "Subject": "gone"}, now)
        old = org.org.insert("Task", {"WhoId": lead, "Subject": "old", "Status": "Completed"}, now)
        org.org.update("Task", gone["Id"], {"IsDeleted": True}, now)
        org.org.archive(old["Id"])
    soql = (
        "SELECT Id, IsDeleted, IsArchived FROM Task"
        f" WHERE WhoId = '{lead}' AND Subject IN ('live', 'gone', 'old')"
    )
    queried = {r["Id"] for r in sf.query_all(soql)["records"]}
    every = {r["Id"]: r for r in sf.query_all(soql, include_deleted=True)["records"]}
    assert queried == {live["Id"]}
    assert set(every) == {live["Id"], gone["Id"], old["Id"]}
    assert every[gone["Id"]]["IsDeleted"] is True and every[old["Id"]]["IsArchived"] is True

    def tasks(where: str) -> set[str]:
        soql = f"SELECT Id, (SELECT Id FROM Tasks{where}) FROM Lead WHERE Id = '{lead}'"
        (row,) = sf.query_all(soql, include_deleted=True)["records"]
        return {t["Id"] for t in row["Tasks"]["records"]}

    assert {live["Id"], gone["Id"], old["Id"]} <= tasks(""), "queryAll reaches subqueries"
    filtered = tasks(" WHERE IsDeleted = false AND IsArchived = false")
    assert live["Id"] in filtered and not {gone["Id"], old["Id"]} & filtered


def test_query_all_pages_through_every_merged_record_by_its_locator(org, sf):
    masters = fresh_leads(org, 3)
    victims = fresh_leads(org, 3)
    for master, victim in zip(masters, victims, strict=True):
        org.merge(master, [victim])
    org.page_size = 1
    try:
        rows = sf.query_all(
            "SELECT Id, MasterRecordId FROM Lead WHERE IsDeleted = true AND MasterRecordId != null",
            include_deleted=True,
        )["records"]
    finally:
        org.page_size = 2000
    found = {r["Id"]: r["MasterRecordId"] for r in rows}
    assert dict(zip(victims, masters, strict=True)).items() <= found.items()
