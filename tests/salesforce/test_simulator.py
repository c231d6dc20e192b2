"""The Salesforce simulator answers as Salesforce does: through requests and simple-salesforce.

`sim` is one read-only 2,000-record org shared by the module (paging needs more than a page of
rows); `org` is a fresh small org for each test that writes or exhausts something.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from crm_qualify.adapters.salesforce.http import make_session
from crm_qualify.adapters.salesforce.simulator import SalesforceSimulator, main
from simple_salesforce import Salesforce, SalesforceLogin
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

CRMQ_FIELDS = {
    "CRMQ_Score__c", "CRMQ_Temperature__c", "CRMQ_Reasons__c", "CRMQ_Fit_Score__c",
    "CRMQ_Engagement_Score__c", "CRMQ_Intent_Score__c", "CRMQ_Grade__c", "CRMQ_Rules_Version__c",
    "CRMQ_Renurture__c", "CRMQ_Scored_At__c", "CRMQ_Stage__c", "Qualification_Budget__c",
    "Qualification_Authority__c", "Qualification_Need__c", "Qualification_Timing__c",
    "CRMQ_Highest_Stage__c", "CRMQ_Customer_Type__c", "CRMQ_Disqualified__c",
}  # fmt: skip


@pytest.fixture(scope="module")
def sim():
    with SalesforceSimulator(records=2000, seed=8) as simulator:
        yield simulator


@pytest.fixture
def org() -> Iterator[SalesforceSimulator]:
    with SalesforceSimulator(records=300, seed=7, daily_limit=15000) as simulator:
        yield simulator


def client(sim) -> Salesforce:
    return Salesforce(
        instance_url=sim.instance_url, session_id=sim.session_id,
        session=make_session(sim.ca_bundle_path), version=sim.api_version,
    )  # fmt: skip


def http(sim: SalesforceSimulator) -> requests.Session:
    session = make_session(sim.ca_bundle_path)
    session.headers["Authorization"] = f"Bearer {sim.session_id}"
    return session


def api(sim: SalesforceSimulator, resource: str) -> str:
    return f"{sim.instance_url}/services/data/v59.0/{resource}"


def first(org: SalesforceSimulator, sobject: str, **where: object) -> dict:
    records = org.store.records[sobject].values()
    return next(r for r in records if all(r.get(k) == v for k, v in where.items()))


def test_queries_page_by_2000_with_a_snapshot_locator(sim):
    sf = client(sim)
    first = sf.query("SELECT Id FROM CampaignMember ORDER BY Id")
    assert not first["done"] and len(first["records"]) == 2000 and "nextRecordsUrl" in first
    everything = sf.query_all("SELECT Id FROM CampaignMember ORDER BY Id")
    ids = [r["Id"] for r in everything["records"]]
    assert len(ids) == everything["totalSize"] == len(set(ids))
    assert ids == sorted(ids)
    assert sf.api_usage["api-usage"].total == sim.daily_limit


def test_soql_filters_order_and_errors(sim):
    sf = client(sim)
    rows = sf.query(
        "SELECT Id, SystemModstamp FROM Lead WHERE IsConverted = false AND"
        " (Rating = 'Warm' OR Rating = 'Cold') AND SystemModstamp > 2020-01-01T00:00:00Z"
        " ORDER BY SystemModstamp, Id LIMIT 7"
    )["records"]
    assert 0 < len(rows) <= 7
    assert [r["SystemModstamp"] for r in rows] == sorted(r["SystemModstamp"] for r in rows)
    with pytest.raises(SalesforceMalformedRequest) as bad:
        sf.query("SELECT Nope FROM Lead")
    assert bad.value.content[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest) as malformed:
        sf.query("SELECT Id FROMM Lead")
    assert malformed.value.content[0]["errorCode"] == "MALFORMED_QUERY"


def test_collections_answer_per_record_in_order_and_cap_at_200(sim):
    sf = client(sim)
    lead = next(iter(sim.org.records["Lead"]))
    answer = sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": False, "records": [
        {"attributes": {"type": "Lead"}, "id": lead, "Rating": "Hot"},
        {"attributes": {"type": "Lead"}, "id": lead, "Rating": "Lukewarm"},
        {"attributes": {"type": "Lead"}, "id": lead, "IsConverted": True},
    ]})  # fmt: skip
    assert [row["success"] for row in answer] == [True, False, False]
    assert answer[1]["errors"][0]["statusCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert answer[2]["errors"][0]["statusCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    with pytest.raises(SalesforceMalformedRequest):
        sf.restful("composite/sobjects", method="PATCH", json={"records": [
            {"attributes": {"type": "Lead"}, "id": lead}] * 201})  # fmt: skip


def test_expired_sessions_answer_401_as_a_json_list(sim):
    sf = Salesforce(
        instance_url=sim.instance_url, session_id="00Dexpired",
        session=make_session(sim.ca_bundle_path), version=sim.api_version,
    )  # fmt: skip
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT Id FROM Lead")


def test_describe_lists_custom_fields_and_picklists(sim):
    fields = {f["name"]: f for f in client(sim).Lead.describe()["fields"]}
    assert fields["CRMQ_Score__c"]["custom"] and fields["CRMQ_Score__c"]["updateable"]
    assert {p["value"] for p in fields["Rating"]["picklistValues"]} == {"Hot", "Warm", "Cold"}
    assert not fields["IsConverted"]["updateable"]


def test_error_shapes_match_recorded_salesforce_answers(sim):
    import json

    fixtures = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "salesforce"
    recorded_401 = json.loads((fixtures / "error_401_invalid_session_id.json").read_text())
    recorded_item = json.loads(
        (fixtures / "composite_sobjects_update_item_error_200.json").read_text()
    )
    session = make_session(sim.ca_bundle_path)
    answer = session.get(
        f"{sim.instance_url}/services/data/v{sim.api_version}/query",
        params={"q": "SELECT Id FROM Lead"}, headers={"Authorization": "Bearer nope"},
    )  # fmt: skip
    assert answer.status_code == 401
    assert answer.json() == recorded_401
    assert answer.headers["WWW-Authenticate"] == "Token"  # as the recorded 401's headers
    missing = {"attributes": {"type": "Lead"}, "id": "00Q000000000000AAA", "Rating": "Hot"}
    item = client(sim).restful("composite/sobjects", method="PATCH", json={"records": [missing]})
    assert [set(row) for row in item] == [set(row) for row in recorded_item]
    assert set(item[0]["errors"][0]) == set(recorded_item[0]["errors"][0])
    recorded_bare = json.loads(
        (fixtures / "composite_sobjects_upsert_item_error_200.json").read_text()
    )
    bare = {"CRMQ_Task_Key__c": "no-attributes", "Subject": "x"}  # no `attributes` at all
    upserted = client(sim).restful(
        "composite/sobjects/Task/CRMQ_Task_Key__c", method="PATCH", json={"records": [bare]}
    )
    assert upserted == recorded_bare
    created = client(sim).restful("composite/sobjects", method="POST", json={"records": [bare]})
    assert created == [{k: v for k, v in recorded_bare[0].items() if k != "created"}]


# login --------------------------------------------------------------------------------------
def test_oauth_password_and_client_credentials_grants(org):
    token_url = f"{org.login_url}/services/oauth2/token"
    grant = {
        "grant_type": "password", "client_id": org.client_id, "client_secret": org.client_secret,
        "username": org.username, "password": org.password + org.security_token,
    }  # fmt: skip
    answer = requests.post(token_url, data=grant, verify=org.ca_bundle_path)
    assert answer.status_code == 200
    assert answer.json()["instance_url"] == org.instance_url
    token = answer.json()["access_token"]
    limits = requests.get(
        api(org, "limits"), headers={"Authorization": f"Bearer {token}"}, verify=org.ca_bundle_path
    )
    assert limits.status_code == 200

    machine = {k: grant[k] for k in ("client_id", "client_secret")}
    answer = requests.post(
        token_url, data={**machine, "grant_type": "client_credentials"}, verify=org.ca_bundle_path
    )
    assert answer.status_code == 200 and answer.json()["access_token"] != token

    wrong = requests.post(
        token_url, data={**grant, "password": org.password}, verify=org.ca_bundle_path
    )
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    assert org.password not in wrong.text


def test_soap_login_through_simple_salesforce(org):
    session = make_session(org.ca_bundle_path)
    session_id, host = SalesforceLogin(
        username=org.username, password=org.password, security_token=org.security_token,
        scratch_url=org.login_url, session=session, sf_version="59.0",
    )  # fmt: skip
    assert host == org.instance_url.removeprefix("https://")
    sf = Salesforce(instance=host, session_id=session_id, session=session, version="59.0")
    assert sf.query("SELECT Id FROM User")["totalSize"] == 5  # 4 people + the integration user

    with pytest.raises(SalesforceAuthenticationFailed, match="INVALID_LOGIN"):
        SalesforceLogin(
            username=org.username, password="nope", security_token=org.security_token,
            scratch_url=org.login_url, session=session,
        )  # fmt: skip


def test_bad_or_expired_session_is_a_401_error_list(org):
    answer = requests.get(
        api(org, "limits"), headers={"Authorization": "Bearer nope"}, verify=org.ca_bundle_path
    )
    assert answer.status_code == 401
    assert answer.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]
    sf = client(org)
    sf.query("SELECT Id FROM User LIMIT 1")
    org.expire_sessions()
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT Id FROM User LIMIT 1")


# metadata -----------------------------------------------------------------------------------
def test_versions_limits_and_usage_header(org):
    versions = requests.get(f"{org.instance_url}/services/data/", verify=org.ca_bundle_path)
    assert {"version": "59.0", "url": "/services/data/v59.0"} in versions.json()
    session = http(org)
    session.get(api(org, "limits"))
    answer = session.get(api(org, "limits"))
    assert answer.headers["Sforce-Limit-Info"] == "api-usage=2/15000"
    assert answer.json()["DailyApiRequests"] == {"Max": 15000, "Remaining": 15000 - 2}


def test_describe_has_the_custom_fields_and_picklists(org):
    sf = client(org)
    for sobject in ("Lead", "Contact"):
        fields = {f["name"]: f for f in getattr(sf, sobject).describe()["fields"]}
        assert set(fields) >= CRMQ_FIELDS
        assert all(fields[name]["custom"] and fields[name]["updateable"] for name in CRMQ_FIELDS)
        assert fields["CRMQ_Reasons__c"]["type"] == "textarea"
        assert fields["SystemModstamp"]["updateable"] is False
        values = [v["value"] for v in fields["Qualification_Budget__c"]["picklistValues"]]
        assert "Met" in values
        kinds = [v["value"] for v in fields["CRMQ_Customer_Type__c"]["picklistValues"]]
        assert kinds == ["One-time", "Recurring", "Mixed"]
        assert fields["CRMQ_Customer_Type__c"]["restrictedPicklist"] is True
        stages = [v["value"] for v in fields["CRMQ_Highest_Stage__c"]["picklistValues"]]
        assert stages[0] == "Target" and stages[-1] == "Customer"
        checkbox = fields["CRMQ_Disqualified__c"]
        assert checkbox["type"] == "boolean" and checkbox["nillable"] is False
        assert checkbox["defaultValue"] is False and checkbox["defaultedOnCreate"] is True
    lead = {f["name"]: f for f in sf.Lead.describe()["fields"]}
    assert [v["value"] for v in lead["Rating"]["picklistValues"]] == ["Hot", "Warm", "Cold"]
    assert lead["IsConverted"]["updateable"] is False
    task = {f["name"]: f for f in sf.Task.describe()["fields"]}
    assert task["CRMQ_Task_Key__c"]["custom"] is True
    statuses = {f["name"]: f for f in sf.CampaignMember.describe()["fields"]}["Status"]
    assert {"Responded", "Attended"} <= {v["value"] for v in statuses["picklistValues"]}


# seeded data --------------------------------------------------------------------------------
def test_seed_is_deterministic_and_realistic(sim):
    again = SalesforceSimulator(records=2000, seed=8, anchor=datetime.now(UTC).date())
    try:
        lead = next(iter(sim.store.records["Lead"].values()))
        assert again.store.records["Lead"][lead["Id"]]["Email"] == lead["Email"]
    finally:
        again.stop()
    leads = list(sim.store.records["Lead"].values())
    assert len(leads) + len(sim.store.records["Contact"]) >= 2000
    assert any(r["IsConverted"] and r["ConvertedContactId"] for r in leads)
    assert all(r["Company"] and r["OwnerId"].startswith("005") for r in leads)
    deals = list(sim.store.records["Opportunity"].values())
    assert {(d["IsClosed"], d["IsWon"]) for d in deals} == {
        (False, False),
        (True, True),
        (True, False),
    }
    assert sim.store.records["OpportunityContactRole"]
    assert {c["Type"] for c in sim.store.records["Campaign"].values()} >= {"Webinar", "Content"}


# SOQL ---------------------------------------------------------------------------------------
def test_query_all_pages_through_next_records_url(sim):
    sf = client(sim)
    total = len(sim.store.records["CampaignMember"])
    assert total > 2000
    page = sf.query("SELECT Id, Status FROM CampaignMember")
    assert page["totalSize"] == total and not page["done"] and len(page["records"]) == 2000
    assert page["nextRecordsUrl"].startswith("/services/data/v59.0/query/")
    assert page["records"][0]["attributes"]["type"] == "CampaignMember"
    rows = sf.query_all("SELECT Id FROM CampaignMember")["records"]
    assert sorted(r["Id"] for r in rows) == sorted(sim.store.records["CampaignMember"])


def test_batch_size_option_and_snapshot_paging(org):
    session = http(org)
    session.headers["Sforce-Query-Options"] = "batchSize=200"
    first_page = session.get(api(org, "query"), params={"q": "SELECT Id FROM Task"}).json()
    assert len(first_page["records"]) == 200 and not first_page["done"]
    ids = [r["Id"] for r in first_page["records"]]
    task = first(org, "Task")
    session.delete(api(org, f"sobjects/Task/{task['Id']}"))
    url = first_page["nextRecordsUrl"]
    while url:
        page = session.get(f"{org.instance_url}{url}").json()
        ids += [r["Id"] for r in page["records"]]
        url = page.get("nextRecordsUrl")
    assert sorted(ids) == sorted(org.store.records["Task"])  # the deleted task still listed


def test_query_all_includes_deleted_records(org):
    sf = client(org)
    task = first(org, "Task")
    sf.Task.delete(task["Id"])
    soql = f"SELECT Id, IsDeleted FROM Task WHERE Id = '{task['Id']}'"
    assert sf.query(soql)["totalSize"] == 0
    rows = sf.query_all(soql, include_deleted=True)["records"]
    assert [(r["Id"], r["IsDeleted"]) for r in rows] == [(task["Id"], True)]


def test_where_operators_order_and_limit(org):
    sf = client(org)
    leads = [r for r in org.store.records["Lead"].values() if not r["IsDeleted"]]

    def ids(soql: str) -> list[str]:
        return [r["Id"] for r in sf.query_all(soql)["records"]]

    expected = {r["Id"] for r in leads if r["Country"] in ("France", "Germany") and r["Rating"]}
    found = ids("SELECT Id FROM Lead WHERE Country IN ('France', 'Germany') AND Rating != null")
    assert set(found) == expected and expected
    expected = {r["Id"] for r in leads if r["Rating"] is None or r["NumberOfEmployees"] >= 600}
    assert set(ids("SELECT Id FROM Lead WHERE Rating = NULL OR NumberOfEmployees >= 600")) == (
        expected
    )
    expected = {r["Id"] for r in leads if r["Email"].lower().startswith("ana.")}
    assert set(ids("SELECT Id FROM Lead WHERE Email LIKE 'ana.%'")) == expected

    ordered = sf.query("SELECT Id, Country, LastName FROM Lead ORDER BY Country, LastName DESC")
    keys = [(r["Country"], r["LastName"]) for r in ordered["records"]]
    assert keys == sorted(keys, key=lambda k: (k[0], [-ord(c) for c in k[1]]))
    assert len(ids("SELECT Id FROM Lead ORDER BY Id LIMIT 7")) == 7


def test_date_and_datetime_literals(org):
    sf = client(org)
    person = first(org, "Lead", IsConverted=False)
    org.touch(person["Id"], {"Title": "Buyer"})
    since = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    recent = sf.query(f"SELECT Id FROM Lead WHERE SystemModstamp > {since}")["records"]
    assert [r["Id"] for r in recent] == [person["Id"]]
    today = sf.query("SELECT Id FROM Lead WHERE SystemModstamp = TODAY")["records"]
    assert person["Id"] in {r["Id"] for r in today}
    cutoff = (datetime.now(UTC) - timedelta(days=10)).date().isoformat()
    quiet = sf.query("SELECT Id FROM Lead WHERE SystemModstamp < LAST_N_DAYS:10")["records"]
    expected = {r["Id"] for r in org.store.records["Lead"].values() if r["SystemModstamp"] < cutoff}
    assert {r["Id"] for r in quiet} == expected and person["Id"] not in expected


def test_soql_errors_are_400_error_lists(org):
    sf = client(org)
    with pytest.raises(SalesforceMalformedRequest) as bad_field:
        sf.query("SELECT Id, Nope__c FROM Lead")
    assert bad_field.value.content[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest) as malformed:
        sf.query("SELECT Id FROM Lead WHERE")
    assert malformed.value.content[0]["errorCode"] == "MALFORMED_QUERY"
    with pytest.raises(SalesforceMalformedRequest) as relation:
        sf.query("SELECT Id FROM Lead WHERE Owner.Email = 'a@b.c'")
    assert relation.value.content[0]["errorCode"] == "INVALID_FIELD"


def test_very_long_query_string_is_414(org):
    ids = ", ".join(f"'00Q5g{n:013d}'" for n in range(1200))
    answer = http(org).get(
        api(org, "query"), params={"q": f"SELECT Id FROM Lead WHERE Id IN ({ids})"}
    )
    assert answer.status_code == 414
    assert answer.json()[0]["errorCode"] == "URI_TOO_LONG"


# writes -------------------------------------------------------------------------------------
def test_collection_update_answers_per_record_in_order(org):
    sf = client(org)
    a, b = [r["Id"] for r in list(org.store.records["Lead"].values())[:2]]
    before = org.store.records["Lead"][a]["SystemModstamp"]
    body = {"allOrNone": False, "records": [
        {"attributes": {"type": "Lead"}, "id": a, "CRMQ_Score__c": 71, "Rating": "Hot"},
        {"attributes": {"type": "Lead"}, "id": b, "IsConverted": True},
        {"attributes": {"type": "Lead"}, "id": "00Q5g0000000000XYZ", "CRMQ_Score__c": 1},
    ]}  # fmt: skip
    results = sf.restful("composite/sobjects", method="PATCH", json=body)
    assert [r["success"] for r in results] == [True, False, False]
    assert results[0] == {"id": a, "success": True, "errors": []}
    assert results[1]["errors"][0]["statusCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert results[1]["errors"][0]["fields"] == ["IsConverted"]
    assert results[2]["errors"][0]["statusCode"] == "INVALID_CROSS_REFERENCE_KEY"
    assert org.store.records["Lead"][a]["CRMQ_Score__c"] == 71
    assert org.store.records["Lead"][a]["SystemModstamp"] > before
    assert org.store.records["Lead"][b]["IsConverted"] is False
    assert org.stats.writes == 1


def test_collection_update_of_a_record_in_the_recycle_bin_says_it_is_deleted(org):
    sf = client(org)
    lead = list(org.store.records["Lead"])[0]
    assert sf.Lead.delete(lead) == 204
    body = {"allOrNone": False, "records": [
        {"attributes": {"type": "Lead"}, "id": lead, "CRMQ_Score__c": 5},
    ]}  # fmt: skip
    (result,) = sf.restful("composite/sobjects", method="PATCH", json=body)
    assert result["success"] is False
    assert result["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"
    assert org.stats.by_endpoint["PATCH /services/data/v59.0/composite/sobjects"] == 1
    assert org.stats.by_endpoint["PATCH composite/sobjects"] == 1


def test_all_or_none_rolls_back_every_record(org):
    sf = client(org)
    a = first(org, "Contact")["Id"]
    body = {"allOrNone": True, "records": [
        {"attributes": {"type": "Contact"}, "id": a, "CRMQ_Score__c": 12},
        {"attributes": {"type": "Contact"}, "id": a, "CRMQ_Stage__c": "Nonsense"},
    ]}  # fmt: skip
    results = sf.restful("composite/sobjects", method="PATCH", json=body)
    codes = [r["errors"][0]["statusCode"] for r in results]
    assert codes == ["ALL_OR_NONE_OPERATION_ROLLED_BACK", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"]
    assert org.store.records["Contact"][a]["CRMQ_Score__c"] is None and org.stats.writes == 0


def test_collection_create_delete_and_size_limit(org):
    sf = client(org)
    who = first(org, "Lead")["Id"]
    tasks = [
        {"attributes": {"type": "Task"}, "WhoId": who, "Subject": f"Call {n}",
         "Status": "Not Started", "CRMQ_Task_Key__c": f"crmq:{n}"}
        for n in range(3)
    ]  # fmt: skip
    created = sf.restful("composite/sobjects", method="POST", json={"records": tasks})
    ids = [r["id"] for r in created]
    assert all(r["success"] for r in created)
    assert [org.store.records["Task"][i]["CRMQ_Task_Key__c"] for i in ids] == [
        "crmq:0", "crmq:1", "crmq:2",
    ]  # fmt: skip
    deleted = sf.restful("composite/sobjects", method="DELETE", params={"ids": ",".join(ids)})
    assert [r["id"] for r in deleted if r["success"]] == ids
    assert all(org.store.records["Task"][i]["IsDeleted"] for i in ids)

    with pytest.raises(SalesforceMalformedRequest) as too_many:
        sf.restful("composite/sobjects", method="POST", json={"records": tasks * 67})
    assert too_many.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"


def test_single_record_crud(org):
    sf = client(org)
    who = first(org, "Contact")["Id"]
    created = sf.Task.create({"WhoId": who, "Subject": "Follow up", "Status": "Not Started"})
    task_id = created["id"]
    assert sf.Task.get(task_id)["Subject"] == "Follow up"
    assert sf.Task.update(task_id, {"Status": "Completed"}) == 204
    assert org.store.records["Task"][task_id]["IsClosed"] is True
    with pytest.raises(SalesforceMalformedRequest) as read_only:
        sf.Task.update(task_id, {"IsClosed": False})
    assert read_only.value.content == [
        {"message": read_only.value.content[0]["message"],
         "errorCode": "INVALID_FIELD_FOR_INSERT_UPDATE", "fields": ["IsClosed"]},
    ]  # fmt: skip
    assert sf.Task.delete(task_id) == 204
    with pytest.raises(SalesforceResourceNotFound) as gone:
        sf.Task.delete(task_id)
    assert gone.value.content[0]["errorCode"] == "ENTITY_IS_DELETED"
    lead = first(org, "Lead")
    subset = http(org).get(api(org, f"sobjects/Lead/{lead['Id']}"), params={"fields": "Email"})
    assert subset.json() == {"attributes": subset.json()["attributes"], "Email": lead["Email"]}


# limits and faults --------------------------------------------------------------------------
def test_daily_limit_refuses_with_403():
    with SalesforceSimulator(records=10, seed=2, daily_limit=2) as small:
        sf = client(small)
        sf.query("SELECT Id FROM Lead")
        sf.query("SELECT Id FROM Lead")
        with pytest.raises(SalesforceRefusedRequest) as refused:
            sf.query("SELECT Id FROM Lead")
        assert refused.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


def test_queued_faults(org):
    sf = client(org)
    a = first(org, "Lead")["Id"]
    org.faults.add("503", times=1, path_contains="/query")
    with pytest.raises(SalesforceGeneralError) as unavailable:
        sf.query("SELECT Id FROM Lead")
    assert unavailable.value.status == 503
    assert sf.query("SELECT Id FROM Lead LIMIT 1")["totalSize"] == 1

    org.faults.add("UNABLE_TO_LOCK_ROW", path_contains="composite/sobjects")
    body = {"records": [{"attributes": {"type": "Lead"}, "id": a, "CRMQ_Score__c": 5}]}
    locked = sf.restful("composite/sobjects", method="PATCH", json=body)
    assert locked[0]["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW"
    assert sf.restful("composite/sobjects", method="PATCH", json=body)[0]["success"]

    org.faults.add("REQUEST_LIMIT_EXCEEDED")
    with pytest.raises(SalesforceRefusedRequest):
        sf.query("SELECT Id FROM Lead LIMIT 1")
    org.faults.add("INVALID_SESSION_ID")
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT Id FROM Lead LIMIT 1")
    with pytest.raises(SalesforceExpiredSession):  # every session ended, not just one request
        sf.query("SELECT Id FROM Lead LIMIT 1")
    with pytest.raises(ValueError, match="unknown fault"):
        org.faults.add("418")
    with pytest.raises(ValueError, match="unknown request kind"):
        org.faults.add("503", request="bulk")


# scenarios ----------------------------------------------------------------------------------
def test_simulate_engagement_adds_activity_and_bumps_modstamp(org):
    before = {k: len(v) for k, v in org.store.records.items()}
    touched = org.simulate_engagement(10)
    assert len(touched) == 10
    after = {k: len(v) for k, v in org.store.records.items()}
    added = sum(after[k] - before[k] for k in ("Task", "CampaignMember", "Event"))
    assert added == 10
    since = datetime.now(UTC) - timedelta(minutes=1)
    sf = client(org)
    stamp = since.strftime("%Y-%m-%dT%H:%M:%SZ")
    leads = sf.query_all(f"SELECT Id FROM Lead WHERE SystemModstamp >= {stamp}")["records"]
    contacts = sf.query_all(f"SELECT Id FROM Contact WHERE SystemModstamp >= {stamp}")["records"]
    assert sorted(r["Id"] for r in leads + contacts) == sorted(touched)


def test_stats_reset(org):
    client(org).query("SELECT Id FROM Lead")
    assert org.stats.by_endpoint["GET query"] == 1
    org.stats.reset()
    assert sum(org.stats.by_endpoint.values()) == 0 and org.stats.writes == 0


def test_command_help(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    assert "--records" in capsys.readouterr().out


def test_faults_strike_only_their_request_kind(org):
    sf = client(org)
    lead = first(org, "Lead", IsConverted=False)["Id"]
    body = {"records": [{"attributes": {"type": "Task"}, "WhoId": lead, "Subject": "Call"}]}
    org.faults.add("500", request="create")
    org.faults.add("503", request="login")
    assert sf.query("SELECT Id FROM Lead LIMIT 1")["totalSize"] == 1, "neither strikes a query"
    with pytest.raises(SalesforceGeneralError) as failed:
        sf.restful("composite/sobjects", method="POST", json=body)
    assert (
        failed.value.status == 500 and failed.value.content[0]["errorCode"] == "UNKNOWN_EXCEPTION"
    )
    token_url = f"{org.login_url}/services/oauth2/token"
    grant = {"grant_type": "client_credentials", "client_id": org.client_id,
             "client_secret": org.client_secret}  # fmt: skip
    assert requests.post(token_url, data=grant, verify=org.ca_bundle_path).status_code == 503
    tasks = len(org.org.records["Task"])
    org.faults.add("lost", request="create")
    with pytest.raises(requests.ConnectionError):
        sf.restful("composite/sobjects", method="POST", json=body)
    assert len(org.org.records["Task"]) == tasks + 1, "applied, then the answer was lost"
    org.faults.add("502", request="query")
    with pytest.raises(SalesforceGeneralError) as gateway:
        sf.query("SELECT Id FROM Lead LIMIT 1")
    assert gateway.value.status == 502 and "Bad Gateway" in gateway.value.content
    assert org.faults.queue == []


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP])
def test_the_cli_removes_its_certificate_and_key_on_sigterm(stop: signal.Signals) -> None:
    """`simulate salesforce` stopped by SIGTERM (a service manager, `kill`) left its folder,
    with the TLS certificate and the JWT private key, in /tmp for good."""
    from pathlib import Path

    code = (
        "import sys; from crm_qualify.adapters.salesforce.simulator import main; sys.exit(main())"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--records", "20", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        lines = [proc.stdout.readline() for _ in range(4)]
        ca_bundle = Path(lines[3].split('"')[1])
        assert lines[3].startswith("ca_bundle") and ca_bundle.exists(), lines
    finally:
        proc.send_signal(stop)
    assert proc.wait(timeout=10) == 0
    assert not ca_bundle.parent.exists()
