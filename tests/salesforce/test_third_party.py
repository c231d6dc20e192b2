"""simple-salesforce, a client nobody here wrote, driving the simulator with its own calls:
JWT and client-credentials logins (it sends the secret as HTTP Basic), query_all_iter through
nextRecordsUrl, COUNT(), describe, upsert and get by external id, updated / deleted,
/composite with a reference between subrequests; plus ids with their real checksum and the
431 for an oversized request head.

simple-salesforce always logs in at https://<domain>.salesforce.com: a transport adapter sends
those requests to the simulator instead (certificate checks stay on, against its CA)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from crm_qualify.adapters.salesforce.simulator import SalesforceSimulator
from crm_qualify.adapters.salesforce.simulator.ids import full_id
from crm_qualify.adapters.salesforce.simulator.schema import PREFIX
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce


class ToSimulator(HTTPAdapter):
    """Requests for *.salesforce.com go to the simulator; every request trusts its CA."""

    def __init__(self, sim: SalesforceSimulator) -> None:
        super().__init__()
        self.sim = sim

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        parts = urlsplit(request.url or "")
        if (parts.hostname or "").endswith(".salesforce.com"):
            request.url = self.sim.login_url + (request.url or "")[len(f"https://{parts.netloc}") :]
        kwargs["verify"] = self.sim.ca_bundle_path
        return super().send(request, **kwargs)


@pytest.fixture(scope="module")
def sim() -> Iterator[SalesforceSimulator]:
    with SalesforceSimulator(records=60, seed=6) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def session(sim) -> requests.Session:
    session = requests.Session()
    session.mount("https://", ToSimulator(sim))
    return session


@pytest.fixture(scope="module")
def sf(sim, session) -> Salesforce:
    """Logged in with simple-salesforce's own JWT bearer flow (privatekey_file)."""
    return Salesforce(username=sim.username, consumer_key=sim.client_id,
                      privatekey_file=sim.jwt_key_path, domain="login", session=session,
                      version=sim.api_version)  # fmt: skip


def test_simple_salesforce_logs_in_with_jwt_and_with_client_credentials_as_basic(sim, sf, session):
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == sum(1 for _ in sim.org.live("Lead"))
    before = sim.stats.by_endpoint["POST /services/oauth2/token"]
    app = Salesforce(consumer_key=sim.client_id, consumer_secret=sim.client_secret, domain="sim",
                     session=session, version=sim.api_version)  # fmt: skip
    assert app.query("SELECT Id FROM User LIMIT 1")["records"]
    assert sim.stats.by_endpoint["POST /services/oauth2/token"] == before + 1


def test_query_all_iter_pages_through_every_record(sim, sf):
    sim.page_size = 7
    try:
        ids = [r["Id"] for r in sf.query_all_iter("SELECT Id FROM Contact ORDER BY Id")]
    finally:
        sim.page_size = 2000
    assert ids == sorted(r["Id"] for r in sim.org.live("Contact"))
    assert sim.stats.by_endpoint["GET query/more"] >= len(ids) // 7


def test_count_with_a_filter_and_of_a_field(sf, sim):
    converted = sum(1 for r in sim.org.live("Lead") if r["IsConverted"])
    answer = sf.query("SELECT COUNT() FROM Lead WHERE IsConverted = true")
    assert (answer["totalSize"], answer["records"]) == (converted, [])
    rows = sf.query("SELECT COUNT(ConvertedContactId) FROM Lead")["records"]
    assert rows[0]["expr0"] == converted


def test_describe_global_and_describe(sf):
    names = {o["name"] for o in sf.describe()["sobjects"]}
    assert {"Lead", "Contact", "Account", "Task"} <= names
    fields = {f["name"]: f for f in sf.Task.describe()["fields"]}
    assert fields["CRMQ_Task_Key__c"]["externalId"] and fields["CRMQ_Task_Key__c"]["unique"]


def test_upsert_and_get_by_external_id(sf, sim):
    lead = next(r["Id"] for r in sim.org.live("Lead") if not r["IsConverted"])
    body = {"WhoId": lead, "Subject": "Call back"}
    assert sf.Task.upsert("CRMQ_Task_Key__c/tp-1", body) == 201
    assert sf.Task.upsert("CRMQ_Task_Key__c/tp-1", {"Subject": "Call back today"}) == 200
    task = sf.Task.get_by_custom_id("CRMQ_Task_Key__c", "tp-1")
    assert (task["Subject"], task["Status"], task["Priority"]) == (
        "Call back today", "Not Started", "Normal",
    )  # fmt: skip
    assert task["OwnerId"] == sim.org.integration_user  # the creator owns it


def test_updated_and_deleted_since_a_moment(sf, sim):
    start = datetime.now(UTC) - timedelta(minutes=2)
    lead = next(r["Id"] for r in sim.org.live("Lead") if not r["IsConverted"])
    sf.Lead.update(lead, {"Title": "CFO"})
    gone = sf.Task.create({"WhoId": lead, "Subject": "Draft"})["id"]
    sf.Task.delete(gone)
    end = datetime.now(UTC) + timedelta(minutes=2)
    assert lead in sf.Lead.updated(start, end)["ids"]
    deleted = sf.Task.deleted(start, end)
    assert [r["id"] for r in deleted["deletedRecords"]] == [gone]
    assert {"earliestDateAvailable", "latestDateCovered"} <= set(deleted)


def test_composite_quotes_an_earlier_answer(sf, sim):
    version = f"/services/data/v{sim.api_version}"
    answer = sf.restful("composite", method="POST", json={"compositeRequest": [
        {"method": "GET", "referenceId": "lead",
         "url": f"{version}/query?q=SELECT+Id+FROM+Lead+WHERE+IsConverted+=+false+LIMIT+1"},
        {"method": "POST", "referenceId": "task", "url": f"{version}/sobjects/Task",
         "body": {"WhoId": "@{lead.records[0].Id}", "Subject": "From composite"}},
        {"method": "GET", "referenceId": "bad", "url": f"{version}/query?q=SELECT+Id+FROM+Nope"},
    ]})  # fmt: skip
    first, second, third = answer["compositeResponse"]
    assert (first["httpStatusCode"], second["httpStatusCode"]) == (200, 201)
    created = sim.org.records["Task"][second["body"]["id"]]
    assert created["WhoId"] == first["body"]["records"][0]["Id"]
    assert (third["httpStatusCode"], third["body"][0]["errorCode"]) == (400, "INVALID_TYPE")


def test_all_or_none_composite_rolls_every_subrequest_back(sf, sim):
    version = f"/services/data/v{sim.api_version}"
    tasks = sum(1 for _ in sim.org.live("Task"))
    answer = sf.restful("composite", method="POST", json={"allOrNone": True, "compositeRequest": [
        {"method": "POST", "referenceId": "ok", "url": f"{version}/sobjects/Task",
         "body": {"Subject": "Kept?"}},
        {"method": "POST", "referenceId": "bad", "url": f"{version}/sobjects/Task",
         "body": {"Subject": "x", "Priority": "Urgent"}},
    ]})  # fmt: skip
    codes = [(r["httpStatusCode"], r["body"][0]["errorCode"]) for r in answer["compositeResponse"]]
    assert codes == [(400, "PROCESSING_HALTED"), (400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST")]
    assert sum(1 for _ in sim.org.live("Task")) == tasks


def test_every_id_carries_its_real_checksum(sim):
    for sobject in PREFIX:
        for record_id in list(sim.org.records[sobject])[:3]:
            assert record_id == full_id(record_id[:15]), (sobject, record_id)
    assert full_id("001dM00003jU9Gx") == "001dM00003jU9GxQAK"  # a recorded Account id
    assert full_id("00Q5g0000000001")[-3:] == "EAA"


def test_a_request_head_over_16384_bytes_is_refused_with_431(sim, sf):
    url = f"{sim.instance_url}/services/data/v{sim.api_version}/limits"
    headers = {"Authorization": f"Bearer {sim.session_id}", "X-Padding": "p" * 16_400}
    answer = requests.get(url, headers=headers, verify=sim.ca_bundle_path, timeout=10)
    assert answer.status_code == 431
    assert answer.json()[0]["errorCode"] == "REQUEST_HEADER_FIELDS_TOO_LARGE"
    headers["X-Padding"] = "p" * 100
    assert requests.get(url, headers=headers, verify=sim.ca_bundle_path, timeout=10).ok
