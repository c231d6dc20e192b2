"""The simulator's Bulk API 2.0, driven by clients nobody here wrote: simple-salesforce's own
`sf.bulk2` query, query_all and upsert (and `query_all_iter` over REST), and plain requests
for what the documentation says of states, CSV, locators, limits and errors."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import requests
from crm_qualify.adapters.salesforce.http import make_session
from crm_qualify.adapters.salesforce.simulator import SalesforceSimulator
from simple_salesforce import Salesforce

KEY = "CRMQ_Task_Key__c"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0


@pytest.fixture(scope="module")
def org() -> Iterator[SalesforceSimulator]:
    with SalesforceSimulator(records=200, seed=11) as sim:
        sim.bulk.delay = 0
        yield sim


@pytest.fixture(scope="module")
def sf(org) -> Salesforce:
    session = make_session(org.ca_bundle_path)
    return Salesforce(
        instance_url=org.instance_url, session_id=org.session_id, session=session, version="59.0"
    )


def api(org, method: str, path: str, version: str = "59.0", **kwargs) -> requests.Response:
    session = make_session(org.ca_bundle_path)
    headers = {"Authorization": f"Bearer {org.session_id}", **kwargs.pop("headers", {})}
    url = f"{org.instance_url}/services/data/v{version}/{path}"
    return session.request(method, url, headers=headers, **kwargs)


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_bulk2_query_pages_every_live_contact_through_locators(org, sf):
    sets = list(sf.bulk2.Contact.query("SELECT Id, Email, Account.Name FROM Contact", 30, wait=0))
    found = [row for text in sets for row in rows(text)]
    live = {r["Id"]: r for r in org.org.live("Contact")}
    assert len(sets) == -(-len(live) // 30)
    assert {row["Id"] for row in found} == set(live) and len(found) == len(live)
    some = found[0]
    account = org.org.find(live[some["Id"]]["AccountId"])[1]
    assert some["Account.Name"] == account["Name"] and some["Email"] == live[some["Id"]]["Email"]


def test_bulk2_query_all_includes_deleted_records(org, sf):
    lead = next(iter(org.org.live("Lead")))
    org.org.update("Lead", lead["Id"], {"IsDeleted": True}, datetime.now(UTC))
    try:
        soql = f"SELECT Id, IsDeleted FROM Lead WHERE Id = '{lead['Id']}'"
        (live,) = sf.bulk2.Lead.query(soql, wait=0)
        (every,) = sf.bulk2.Lead.query_all(soql, wait=0)
        assert rows(live) == [] and rows(every) == [{"Id": lead["Id"], "IsDeleted": "true"}]
    finally:
        org.org.update("Lead", lead["Id"], {"IsDeleted": False}, datetime.now(UTC))


def test_bulk2_upsert_by_external_id_creates_once_then_updates(org, sf):
    who = next(iter(org.org.live("Lead")))["Id"]
    tasks = [{KEY: f"bulk-sim-{n}", "WhoId": who, "Subject": f"Call {n}"} for n in range(3)]
    first = sf.bulk2.Task.upsert(records=tasks, external_id_field=KEY, wait=0)
    again = sf.bulk2.Task.upsert(records=tasks, external_id_field=KEY, wait=0)
    assert first[0]["numberRecordsProcessed"] == 3 and first[0]["numberRecordsFailed"] == 0
    created = rows(sf.bulk2.Task.get_successful_records(first[0]["job_id"]))
    updated = rows(sf.bulk2.Task.get_successful_records(again[0]["job_id"]))
    assert {r["sf__Created"] for r in created} == {"true"}
    assert {r["sf__Created"] for r in updated} == {"false"}
    assert {r["sf__Id"] for r in created} == {r["sf__Id"] for r in updated}
    held = [t for t in org.org.live("Task") if (t.get(KEY) or "").startswith("bulk-sim-")]
    assert len(held) == 3 and {t["Status"] for t in held} == {"Not Started"}


def test_failed_rows_name_code_message_and_field(org, sf):
    lead = next(iter(org.org.live("Lead")))["Id"]
    records = [{"Id": lead, "CRMQ_Score__c": "many"}, {"Id": lead, "Rating": "Warm"}]
    (result,) = sf.bulk2.Lead.update(records=records, wait=0)
    assert result["numberRecordsFailed"] == 1
    (failed,) = rows(sf.bulk2.Lead.get_failed_records(result["job_id"]))
    assert failed["sf__Error"].startswith("INVALID_TYPE_ON_FIELD_IN_RECORD:")
    assert failed["sf__Error"].endswith(":CRMQ_Score__c --") and failed["CRMQ_Score__c"] == "many"
    assert org.org.find(lead)[1]["Rating"] == "Warm"


def test_query_all_iter_still_pages_over_rest(org, sf):
    org.page_size = 50
    try:
        found = list(sf.query_all_iter("SELECT Id FROM Contact"))
    finally:
        org.page_size = 2000
    assert len(found) == sum(1 for _ in org.org.live("Contact"))


def test_results_carry_the_documented_headers_and_the_last_locator_is_null(org):
    job = api(org, "POST", "jobs/query", json={"operation": "query",
              "query": "SELECT Id FROM Lead"}).json()  # fmt: skip
    assert job["state"] == "UploadComplete" and job["id"].startswith("750")
    assert api(org, "GET", f"jobs/query/{job['id']}").json()["state"] == "JobComplete"
    first = api(org, "GET", f"jobs/query/{job['id']}/results", params={"maxRecords": 10})
    assert first.headers["Content-Type"].startswith("text/csv")
    assert first.headers["Sforce-NumberOfRecords"] == "10" and len(rows(first.text)) == 10
    locator, pages = first.headers["Sforce-Locator"], 1
    while locator != "null":
        page = api(org, "GET", f"jobs/query/{job['id']}/results",
                   params={"maxRecords": 10, "locator": locator})  # fmt: skip
        assert page.text.startswith('"Id"')
        locator, pages = page.headers["Sforce-Locator"], pages + 1
    assert pages == -(-sum(1 for _ in org.org.live("Lead")) // 10)
    assert "api-usage=" in first.headers["Sforce-Limit-Info"]
    assert api(org, "GET", f"jobs/query/{job['id']}/results", "58.0").status_code == 409


def test_subqueries_and_unknown_objects_are_refused_as_salesforce_does(org):
    sub = api(org, "POST", "jobs/query", json={"operation": "query",
              "query": "SELECT Id, (SELECT Id FROM Tasks) FROM Lead"})  # fmt: skip
    assert sub.status_code == 400
    assert sub.json() == [{"message": "Aggregate Relationships not supported in Bulk Query",
                           "errorCode": "API_ERROR"}]  # fmt: skip
    offset = api(org, "POST", "jobs/query", json={"operation": "query",
                 "query": "SELECT Id FROM Lead LIMIT 5 OFFSET 5"})  # fmt: skip
    assert offset.status_code == 400  # the SOQL guide: OFFSET is not allowed in Bulk API SOQL
    unknown = api(org, "POST", "jobs/ingest", json={"object": "Nope", "operation": "insert"})
    assert unknown.status_code == 400 and unknown.json()[0]["errorCode"] == "INVALIDENTITY"
    gone = api(org, "GET", "jobs/query/7505g0000009999AAA")
    assert gone.status_code == 404 and gone.json()[0]["errorCode"] == "NOT_FOUND"


def test_an_ingest_job_moves_through_its_states_on_the_simulator_clock(org):
    clock = Clock()
    org.bulk.clock, org.bulk.delay = (lambda: clock.now), 30
    try:
        job = api(org, "POST", "jobs/ingest", json={"object": "Lead", "operation": "update"})
        assert job.json()["state"] == "Open" and job.json()["contentUrl"].endswith("/batches")
        path = f"jobs/ingest/{job.json()['id']}"
        lead = next(iter(org.org.live("Lead")))["Id"]
        put = api(org, "PUT", f"{path}/batches", data=f"Id,Title\n{lead},VP Bulk\n",
                  headers={"Content-Type": "text/csv"})  # fmt: skip
        assert put.status_code == 201
        closed = api(org, "PATCH", path, json={"state": "UploadComplete"}).json()
        assert closed["state"] == "UploadComplete"
        again = api(
            org, "PUT", f"{path}/batches", data="Id\n", headers={"Content-Type": "text/csv"}
        )
        assert again.status_code == 409 and again.json()[0]["errorCode"] == "INVALIDJOBSTATE"
        assert api(org, "GET", path).json()["state"] == "InProgress"
        assert org.org.find(lead)[1]["Title"] != "VP Bulk"
        clock.now = 31
        info = api(org, "GET", path).json()
        assert (info["state"], info["numberRecordsProcessed"], info["jobType"]) == (
            "JobComplete", 1, "V2Ingest",
        )  # fmt: skip
        assert org.org.find(lead)[1]["Title"] == "VP Bulk"
        late = api(org, "PATCH", path, json={"state": "Aborted"})
        assert late.status_code == 409
        assert late.json()[0]["message"] == "Aborting already Completed Job not allowed"
    finally:
        org.bulk.clock, org.bulk.delay = time.monotonic, 0


def test_an_unknown_column_fails_the_job_and_an_abort_leaves_rows_unprocessed(org):
    lead = next(iter(org.org.live("Lead")))["Id"]
    bad = api(org, "POST", "jobs/ingest", json={"object": "Lead", "operation": "update"}).json()
    api(org, "PUT", f"jobs/ingest/{bad['id']}/batches", data=f"Id,Nope__c\n{lead},x\n")
    api(org, "PATCH", f"jobs/ingest/{bad['id']}", json={"state": "UploadComplete"})
    info = api(org, "GET", f"jobs/ingest/{bad['id']}").json()
    assert info["state"] == "Failed"
    assert info["errorMessage"] == "InvalidBatch : Field name not found : Nope__c"
    undone = rows(api(org, "GET", f"jobs/ingest/{bad['id']}/unprocessedrecords").text)
    assert undone == [{"Id": lead, "Nope__c": "x"}]
    stopped = api(org, "POST", "jobs/ingest", json={"object": "Lead", "operation": "update"})
    path = f"jobs/ingest/{stopped.json()['id']}"
    api(org, "PUT", f"{path}/batches", data=f"Id,Title\n{lead},Never\n")
    assert api(org, "PATCH", path, json={"state": "Aborted"}).json()["state"] == "Aborted"
    assert rows(api(org, "GET", f"{path}/unprocessedrecords").text)[0]["Title"] == "Never"
    assert api(org, "GET", f"{path}/failedResults").text.startswith('"sf__Id","sf__Error","Id"')
    assert org.org.find(lead)[1]["Title"] != "Never"


def test_simple_salesforce_reads_every_ingest_result_including_unprocessed_rows(org, sf):
    lead = next(iter(org.org.live("Lead")))["Id"]
    (done,) = sf.bulk2.Lead.update(records=[{"Id": lead, "Title": "COO"}], wait=0)
    every = sf.bulk2.Lead.get_all_ingest_records(done["job_id"])  # unprocessedRecords too
    assert [r["sf__Id"] for r in every["successfulRecords"]] == [lead]
    assert every["failedRecords"] == every["unprocessedRecords"] == []
    stopped = api(org, "POST", "jobs/ingest", json={"object": "Lead", "operation": "update"})
    job = stopped.json()["id"]
    api(org, "PUT", f"jobs/ingest/{job}/batches", data=f"Id,Title\n{lead},Never\n")
    api(org, "PATCH", f"jobs/ingest/{job}", json={"state": "Aborted"})
    undone = rows(sf.bulk2.Lead.get_unprocessed_records(job))
    assert undone == [{"Id": lead, "Title": "Never"}]


def test_limits_count_query_jobs_and_ingest_batches(org):
    before = api(org, "GET", "limits").json()
    api(org, "POST", "jobs/query", json={"operation": "query", "query": "SELECT Id FROM Lead"})
    job = api(org, "POST", "jobs/ingest", json={"object": "Lead", "operation": "update"}).json()
    lead = next(iter(org.org.live("Lead")))["Id"]
    api(org, "PUT", f"jobs/ingest/{job['id']}/batches", data=f"Id,Title\n{lead},CTO\n")
    api(org, "PATCH", f"jobs/ingest/{job['id']}", json={"state": "UploadComplete"})
    after = api(org, "GET", "limits").json()
    for name, used in (("DailyBulkV2QueryJobs", 1), ("DailyBulkApiBatches", 1)):
        assert before[name]["Remaining"] - after[name]["Remaining"] == used
    assert after["DailyBulkV2QueryFileStorageMB"]["Max"] == 976_562
    assert after["DailyApiRequests"]["Remaining"] < before["DailyApiRequests"]["Remaining"]
