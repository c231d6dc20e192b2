"""Bulk ingest jobs a dead run closed and Salesforce applies late: the simulator lists them as
Get All Jobs does, and the adapter waits for this integration's before a rerun reads anything
(`in_flight.py`), so the old job never lands over the rerun's values. Jobs are processed on a
fake clock that the adapter's polling moves on (no sleeping)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import requests
from crm_qualify.adapters.salesforce.http import make_session
from crm_qualify.adapters.salesforce.in_flight import UNFINISHED
from crm_qualify.adapters.salesforce.simulator import SalesforceSimulator
from crm_qualify.adapters.salesforce.simulator.org import iso
from crm_qualify.connector.contract import AdapterError
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine
from simple_salesforce import Salesforce

from tests.fake_clock import FakeClock
from tests.salesforce.conftest import make_adapter

LISTED = {"id", "operation", "object", "createdById", "createdDate", "systemModstamp", "state",
          "concurrencyMode", "contentType", "apiVersion", "jobType", "lineEnding",
          "columnDelimiter"}  # fmt: skip
"""The fields of a job in Get All Jobs, as Salesforce's documented example lists them."""
LATE = 100.0
"""Seconds a closed job waits before it is applied."""


@pytest.fixture(scope="module")
def org() -> Iterator[SalesforceSimulator]:
    with SalesforceSimulator(records=120, seed=21) as sim:
        yield sim


@pytest.fixture
def clock(org) -> Iterator[FakeClock]:
    """A fresh fake clock, every earlier job applied before the test starts."""
    org.bulk.clock = lambda: float("inf")
    org.bulk.settle()
    clock = FakeClock()
    clock.now = 0.0
    org.bulk.clock, org.bulk.delay = (lambda: clock.now), LATE
    yield clock
    org.bulk.list_page = 1000


def adapter_on(org, clock: FakeClock, **options):
    adapter = make_adapter(org, **{"bulk_threshold": 20, **options})
    adapter.bulk_api.sleep, adapter.bulk_api.clock = clock.sleep, (lambda: clock.now)
    return adapter


def api(org, method: str, path: str, **kwargs) -> requests.Response:
    session = make_session(org.ca_bundle_path)
    headers = {"Authorization": f"Bearer {org.session_id}"}
    return session.request(method, f"{org.instance_url}/services/data/v59.0/{path}",
                           headers=headers, **kwargs)  # fmt: skip


def another_process(org, sobject: str, rows: list[dict[str, str]], close: bool = True) -> str:
    """An ingest job of our user made by simple-salesforce's own bulk2 calls, as a process that
    then died would have left it."""
    session = make_session(org.ca_bundle_path)
    sf = Salesforce(instance_url=org.instance_url, session_id=org.session_id, session=session,
                    version="59.0")  # fmt: skip
    client = getattr(sf.bulk2, sobject)._client
    job = client.create_job("update")
    client.upload_job_data(job["id"], csv_text(rows))
    if close:
        client.close_job(job["id"])
    return job["id"]


def csv_text(rows: list[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def another_user(org) -> str:
    return next(u["Id"] for u in org.org.live("User") if u["Id"] != org.org.integration_user)


def leads(org, count: int) -> list[str]:
    return [r["Id"] for r in org.org.live("Lead") if not r.get("IsConverted")][:count]


def jobs_used(adapter) -> dict[str, int]:
    return {k: v for k, v in adapter.usage().requests.items() if "jobs/" in k}


def test_get_all_jobs_lists_every_users_jobs_as_salesforce_does(org, clock):
    lead = leads(org, 1)[0]
    ours = another_process(org, "Lead", [{"Id": lead, "Title": "VP Sales"}])
    theirs = org.bulk.submit(another_user(org), "Lead", "update", b"Id,Title\n" + lead.encode())
    answer = api(org, "GET", "jobs/ingest").json()
    assert answer["done"] is True and answer["nextRecordsUrl"] is None
    listed = {job["id"]: job for job in answer["records"]}
    assert set(listed[ours]) == LISTED and listed[ours]["jobType"] == "V2Ingest"
    assert listed[ours]["createdById"] == org.org.integration_user
    assert listed[theirs]["createdById"] == another_user(org)
    assert listed[ours]["state"] == "InProgress" and listed[ours]["apiVersion"] == 59.0
    assert listed[ours]["systemModstamp"] >= listed[ours]["createdDate"]
    assert api(org, "GET", "jobs/ingest", params={"jobType": "Classic"}).json()["records"] == []
    assert api(org, "GET", "jobs/ingest", params={"jobType": "V2Query"}).status_code == 400
    queries = api(org, "GET", "jobs/query").json()["records"]
    assert all(job["jobType"] == "V2Query" for job in queries)
    org.bulk.list_page = 1
    first = api(org, "GET", "jobs/ingest").json()
    assert not first["done"] and len(first["records"]) == 1
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/jobs/ingest?queryLocator=01g")
    paged, page = first["records"], first
    while not page["done"]:
        page = api(org, "GET", page["nextRecordsUrl"].split("/v59.0/", 1)[1]).json()
        paged += page["records"]
    assert [job["id"] for job in paged] == [job["id"] for job in answer["records"]]
    stale = api(org, "GET", "jobs/ingest", params={"queryLocator": "01g5gNOSUCHTHING-2"})
    assert stale.status_code == 400 and stale.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_our_dead_runs_job_is_waited_for_and_no_one_elses(org, clock):
    first, second, third = leads(org, 3)
    ours = another_process(org, "Lead", [{"Id": first, "Title": "Head of Late Jobs"}])
    never_closed = another_process(org, "Lead", [{"Id": third, "Title": "Open"}], close=False)
    org.bulk.delay = 10 * LATE
    theirs = org.bulk.submit(another_user(org), "Lead", "update", f"Id,Title\n{second},X".encode())
    not_ours = another_process(org, "Account", [{"Id": next(iter(org.org.live("Account")))["Id"]}])
    adapter = adapter_on(org, clock)
    assert adapter.finish_writes_in_flight() == 1
    assert org.org.find(first)[1]["Title"] == "Head of Late Jobs", "applied before returning"
    assert org.bulk.jobs[ours].state == "JobComplete"
    assert org.bulk.jobs[theirs].state == "InProgress", "another user's job is not waited for"
    assert org.bulk.jobs[not_ours].state == "InProgress", "nor one on an object we never write"
    assert org.bulk.jobs[never_closed].state == "Open", "an open job is never processed: left"
    used = jobs_used(adapter)
    assert used["GET jobs/ingest"] == 1 and used["GET jobs/ingest/{id}"] >= 2
    assert set(used) == {"GET jobs/ingest", "GET jobs/ingest/{id}"}, "nothing aborted or made"
    unknown = adapter_on(org, clock)
    unknown.client.integration_user = lambda: None
    assert unknown.finish_writes_in_flight() == 1, "user unknown: every user's job is waited for"
    assert org.bulk.jobs[theirs].state == "JobComplete"


def test_a_job_still_running_after_the_patience_ends_the_run_naming_it(org, clock):
    lead = leads(org, 1)[0]
    job_id = another_process(org, "Lead", [{"Id": lead, "Title": "Slow"}])
    adapter = adapter_on(org, clock, bulk_timeout_seconds=30)
    with pytest.raises(AdapterError, match=f"{job_id} \\(InProgress\\).*bulk_timeout_seconds"):
        adapter.finish_writes_in_flight()
    assert clock.now == pytest.approx(30), "patience measured on the adapter's clock"
    assert org.bulk.jobs[job_id].state == "InProgress", "never aborted: it may still land"


def test_rest_only_with_nothing_in_flight_costs_one_request(org, clock):
    adapter = adapter_on(org, clock, bulk_threshold=0)
    assert adapter.finish_writes_in_flight() == 0
    assert jobs_used(adapter) == {"GET jobs/ingest": 1}


def test_a_job_on_the_last_page_is_found_through_next_records_url(org, clock):
    late = another_process(org, "Lead", [{"Id": leads(org, 1)[0], "Title": "Last page"}])
    org.bulk.list_page = 2
    pages = -(-sum(job.kind == "ingest" for job in org.bulk.jobs.values()) // 2)
    adapter = adapter_on(org, clock, bulk_threshold=0)
    assert pages > 2 and adapter.finish_writes_in_flight() == 1
    assert org.bulk.jobs[late].state == "JobComplete"
    used = jobs_used(adapter)
    assert (used["GET jobs/ingest"], used["GET jobs/ingest (more)"]) == (1, pages - 1)


class Killed(BaseException):
    """The process dies: nothing of the run catches it."""


def test_a_rerun_waits_for_the_dead_runs_job_so_its_own_values_stay(
    org, clock, store, settings, monkeypatch
):
    dying = adapter_on(org, clock)

    def die_after_closing(kind, job_id, until=None):  # noqa: ANN001, ANN202
        raise Killed

    monkeypatch.setattr(dying.bulk_api, "wait", die_after_closing)
    with pytest.raises(Killed):
        SyncEngine(dying, settings, store).run(RunOptions(full=True))
    closed = [job for job in org.bulk.jobs.values() if job.created_by == org.org.integration_user
              and job.kind == "ingest" and job.state in UNFINISHED]  # fmt: skip
    assert closed and store.open_intents("default"), "the dead run's job is not applied yet"
    person = next(row["Id"] for row in csv.DictReader(io.StringIO(closed[0].upload.decode())))
    sobject = org.org.find(person)[0]
    sent = next(row for row in csv.DictReader(io.StringIO(closed[0].upload.decode())))
    at = datetime.now(UTC)
    with org.org.lock:  # a person logs a demo meeting: the decision changes
        org.org.insert("Event", {"WhoId": person, "Subject": "Demo meeting", "Type": "Meeting",
                                 "ActivityDateTime": iso(at)}, at)  # fmt: skip
        org.org.update(sobject, person, {}, at)
    org.bulk.delay = 3.0  # the rerun's own jobs are applied first: nothing orders them
    rerun_adapter = adapter_on(org, clock)
    rerun = SyncEngine(rerun_adapter, settings, store).run(RunOptions())
    assert rerun.status == "ok" and rerun.counts["writes_waited_for"] == len(closed)
    rerun_score = org.org.find(person)[1]["CRMQ_Score__c"]
    assert rerun_score != float(sent["CRMQ_Score__c"]), "the meeting changed the decision"
    clock.now += 10 * LATE
    rerun_adapter.describe("Lead")  # any request lets the org apply whatever is still due
    assert org.org.find(person)[1]["CRMQ_Score__c"] == rerun_score, "the rerun's value stays"
    assert all(job.state == "JobComplete" for job in closed)
