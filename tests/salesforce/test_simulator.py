"""The Salesforce simulator answers as the REST API does: through requests and simple-salesforce."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from simple_salesforce import Salesforce, SalesforceLogin
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)

from adapters.salesforce.simulator import SalesforceSimulator, main

CRMQ_FIELDS = {
    "CRMQ_Score__c", "CRMQ_Temperature__c", "CRMQ_Reasons__c", "CRMQ_Fit_Score__c",
    "CRMQ_Engagement_Score__c", "CRMQ_Intent_Score__c", "CRMQ_Grade__c", "CRMQ_Rules_Version__c",
    "CRMQ_Renurture__c", "CRMQ_Scored_At__c", "CRMQ_Stage__c", "Qualification_Budget__c",
    "Qualification_Authority__c", "Qualification_Need__c", "Qualification_Timing__c",
}  # fmt: skip


@pytest.fixture(scope="module")
def big() -> Iterator[SalesforceSimulator]:
    """A read-only org with more than one default page (2,000 rows) of campaign members."""
    with SalesforceSimulator(records=2000, seed=1) as simulator:
        yield simulator


@pytest.fixture
def sim() -> Iterator[SalesforceSimulator]:
    with SalesforceSimulator(records=120, seed=7, daily_limit=15000) as simulator:
        yield simulator


def http(sim: SalesforceSimulator) -> requests.Session:
    session = requests.Session()
    session.verify = sim.ca_bundle_path
    session.headers["Authorization"] = f"Bearer {sim.session_id}"
    return session


def client(sim: SalesforceSimulator) -> Salesforce:
    session = requests.Session()
    session.verify = sim.ca_bundle_path
    return Salesforce(
        instance_url=sim.instance_url, session_id=sim.session_id, session=session, version="59.0"
    )


def api(sim: SalesforceSimulator, resource: str) -> str:
    return f"{sim.instance_url}/services/data/v59.0/{resource}"


def first(sim: SalesforceSimulator, sobject: str, **where: object) -> dict:
    records = sim.store.records[sobject].values()
    return next(r for r in records if all(r.get(k) == v for k, v in where.items()))


# login --------------------------------------------------------------------------------------
def test_oauth_password_and_client_credentials_grants(sim):
    token_url = f"{sim.login_url}/services/oauth2/token"
    grant = {
        "grant_type": "password", "client_id": sim.client_id, "client_secret": sim.client_secret,
        "username": sim.username, "password": sim.password + sim.security_token,
    }  # fmt: skip
    answer = requests.post(token_url, data=grant, verify=sim.ca_bundle_path)
    assert answer.status_code == 200
    assert answer.json()["instance_url"] == sim.instance_url
    token = answer.json()["access_token"]
    limits = requests.get(
        api(sim, "limits"), headers={"Authorization": f"Bearer {token}"}, verify=sim.ca_bundle_path
    )
    assert limits.status_code == 200

    machine = {k: grant[k] for k in ("client_id", "client_secret")}
    answer = requests.post(
        token_url, data={**machine, "grant_type": "client_credentials"}, verify=sim.ca_bundle_path
    )
    assert answer.status_code == 200 and answer.json()["access_token"] != token

    wrong = requests.post(
        token_url, data={**grant, "password": sim.password}, verify=sim.ca_bundle_path
    )
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    assert sim.password not in wrong.text


def test_soap_login_through_simple_salesforce(sim):
    session = requests.Session()
    session.verify = sim.ca_bundle_path
    session_id, host = SalesforceLogin(
        username=sim.username, password=sim.password, security_token=sim.security_token,
        scratch_url=sim.login_url, session=session, sf_version="59.0",
    )  # fmt: skip
    assert host == sim.instance_url.removeprefix("https://")
    sf = Salesforce(instance=host, session_id=session_id, session=session, version="59.0")
    assert sf.query("SELECT Id FROM User")["totalSize"] == 4

    with pytest.raises(SalesforceAuthenticationFailed, match="INVALID_LOGIN"):
        SalesforceLogin(
            username=sim.username, password="nope", security_token=sim.security_token,
            scratch_url=sim.login_url, session=session,
        )  # fmt: skip


def test_bad_or_expired_session_is_a_401_error_list(sim):
    answer = requests.get(
        api(sim, "limits"), headers={"Authorization": "Bearer nope"}, verify=sim.ca_bundle_path
    )
    assert answer.status_code == 401
    assert answer.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]
    sf = client(sim)
    sf.query("SELECT Id FROM User LIMIT 1")
    sim.expire_sessions()
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT Id FROM User LIMIT 1")


# metadata -----------------------------------------------------------------------------------
def test_versions_limits_and_usage_header(sim):
    versions = requests.get(f"{sim.instance_url}/services/data/", verify=sim.ca_bundle_path)
    assert {"version": "59.0", "url": "/services/data/v59.0"} in versions.json()
    session = http(sim)
    session.get(api(sim, "limits"))
    answer = session.get(api(sim, "limits"))
    assert answer.headers["Sforce-Limit-Info"] == "api-usage=2/15000"
    assert answer.json()["DailyApiRequests"] == {"Max": 15000, "Remaining": 15000 - 2}


def test_describe_has_the_custom_fields_and_picklists(sim):
    sf = client(sim)
    for sobject in ("Lead", "Contact"):
        fields = {f["name"]: f for f in getattr(sf, sobject).describe()["fields"]}
        assert CRMQ_FIELDS <= set(fields)
        assert all(fields[name]["custom"] and fields[name]["updateable"] for name in CRMQ_FIELDS)
        assert fields["CRMQ_Reasons__c"]["type"] == "textarea"
        assert fields["SystemModstamp"]["updateable"] is False
        values = [v["value"] for v in fields["Qualification_Budget__c"]["picklistValues"]]
        assert "Met" in values
    lead = {f["name"]: f for f in sf.Lead.describe()["fields"]}
    assert [v["value"] for v in lead["Rating"]["picklistValues"]] == ["Hot", "Warm", "Cold"]
    assert lead["IsConverted"]["updateable"] is False
    task = {f["name"]: f for f in sf.Task.describe()["fields"]}
    assert task["CRMQ_Task_Key__c"]["custom"] is True
    statuses = {f["name"]: f for f in sf.CampaignMember.describe()["fields"]}["Status"]
    assert {"Responded", "Attended"} <= {v["value"] for v in statuses["picklistValues"]}


# seeded data --------------------------------------------------------------------------------
def test_seed_is_deterministic_and_realistic(big):
    again = SalesforceSimulator(records=2000, seed=1, anchor=datetime.now(UTC).date())
    try:
        lead = next(iter(big.store.records["Lead"].values()))
        assert again.store.records["Lead"][lead["Id"]]["Email"] == lead["Email"]
    finally:
        again.stop()
    leads = list(big.store.records["Lead"].values())
    assert len(leads) + len(big.store.records["Contact"]) >= 2000
    assert any(r["IsConverted"] and r["ConvertedContactId"] for r in leads)
    assert all(r["Company"] and r["OwnerId"].startswith("005") for r in leads)
    deals = list(big.store.records["Opportunity"].values())
    assert {(d["IsClosed"], d["IsWon"]) for d in deals} == {(False, False), (True, True), (True, False)}
    assert big.store.records["OpportunityContactRole"]
    assert {c["Type"] for c in big.store.records["Campaign"].values()} >= {"Webinar", "Content"}


# SOQL ---------------------------------------------------------------------------------------
def test_query_all_pages_through_next_records_url(big):
    sf = client(big)
    total = len(big.store.records["CampaignMember"])
    assert total > 2000
    page = sf.query("SELECT Id, Status FROM CampaignMember")
    assert page["totalSize"] == total and not page["done"] and len(page["records"]) == 2000
    assert page["nextRecordsUrl"].startswith("/services/data/v59.0/query/")
    assert page["records"][0]["attributes"]["type"] == "CampaignMember"
    rows = sf.query_all("SELECT Id FROM CampaignMember")["records"]
    assert sorted(r["Id"] for r in rows) == sorted(big.store.records["CampaignMember"])


def test_batch_size_option_and_snapshot_paging(sim):
    session = http(sim)
    session.headers["Sforce-Query-Options"] = "batchSize=200"
    first_page = session.get(api(sim, "query"), params={"q": "SELECT Id FROM Task"}).json()
    assert len(first_page["records"]) == 200 and not first_page["done"]
    ids = [r["Id"] for r in first_page["records"]]
    task = first(sim, "Task")
    session.delete(api(sim, f"sobjects/Task/{task['Id']}"))
    url = first_page["nextRecordsUrl"]
    while url:
        page = session.get(f"{sim.instance_url}{url}").json()
        ids += [r["Id"] for r in page["records"]]
        url = page.get("nextRecordsUrl")
    assert sorted(ids) == sorted(sim.store.records["Task"])  # the deleted task still listed


def test_query_all_includes_deleted_records(sim):
    sf = client(sim)
    task = first(sim, "Task")
    sf.Task.delete(task["Id"])
    soql = f"SELECT Id, IsDeleted FROM Task WHERE Id = '{task['Id']}'"
    assert sf.query(soql)["totalSize"] == 0
    rows = sf.query_all(soql, include_deleted=True)["records"]
    assert [(r["Id"], r["IsDeleted"]) for r in rows] == [(task["Id"], True)]


def test_where_operators_order_and_limit(sim):
    sf = client(sim)
    leads = [r for r in sim.store.records["Lead"].values() if not r["IsDeleted"]]

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


def test_date_and_datetime_literals(sim):
    sf = client(sim)
    person = first(sim, "Lead", IsConverted=False)
    sim.touch(person["Id"], {"Title": "Buyer"})
    since = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    recent = sf.query(f"SELECT Id FROM Lead WHERE SystemModstamp > {since}")["records"]
    assert [r["Id"] for r in recent] == [person["Id"]]
    today = sf.query("SELECT Id FROM Lead WHERE SystemModstamp = TODAY")["records"]
    assert person["Id"] in {r["Id"] for r in today}
    old = sf.query("SELECT Id FROM Lead WHERE CreatedDate < LAST_N_DAYS:10")["totalSize"]
    assert old == sum(1 for r in sim.store.records["Lead"].values() if r["Id"] != person["Id"])


def test_soql_errors_are_400_error_lists(sim):
    sf = client(sim)
    with pytest.raises(SalesforceMalformedRequest) as bad_field:
        sf.query("SELECT Id, Nope__c FROM Lead")
    assert bad_field.value.content[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest) as malformed:
        sf.query("SELECT Id FROM Lead WHERE")
    assert malformed.value.content[0]["errorCode"] == "MALFORMED_QUERY"
    with pytest.raises(SalesforceMalformedRequest) as relation:
        sf.query("SELECT Id FROM Lead WHERE Owner.Email = 'a@b.c'")
    assert relation.value.content[0]["errorCode"] == "INVALID_FIELD"


def test_very_long_query_string_is_414(sim):
    ids = ", ".join(f"'00Q5g{n:013d}'" for n in range(1200))
    answer = http(sim).get(api(sim, "query"), params={"q": f"SELECT Id FROM Lead WHERE Id IN ({ids})"})
    assert answer.status_code == 414
    assert answer.json()[0]["errorCode"] == "URI_TOO_LONG"


# writes -------------------------------------------------------------------------------------
def test_collection_update_answers_per_record_in_order(sim):
    sf = client(sim)
    a, b = [r["Id"] for r in list(sim.store.records["Lead"].values())[:2]]
    before = sim.store.records["Lead"][a]["SystemModstamp"]
    body = {"allOrNone": False, "records": [
        {"attributes": {"type": "Lead"}, "id": a, "CRMQ_Score__c": 71, "CRMQ_Temperature__c": "Hot"},
        {"attributes": {"type": "Lead"}, "id": b, "IsConverted": True},
        {"attributes": {"type": "Lead"}, "id": "00Q5g0000000000XYZ", "CRMQ_Score__c": 1},
    ]}  # fmt: skip
    results = sf.restful("composite/sobjects", method="PATCH", json=body)
    assert [r["success"] for r in results] == [True, False, False]
    assert results[0] == {"id": a, "success": True, "errors": []}
    assert results[1]["errors"][0]["statusCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert results[1]["errors"][0]["fields"] == ["IsConverted"]
    assert results[2]["errors"][0]["statusCode"] == "INVALID_CROSS_REFERENCE_KEY"
    assert sim.store.records["Lead"][a]["CRMQ_Score__c"] == 71
    assert sim.store.records["Lead"][a]["SystemModstamp"] > before
    assert sim.store.records["Lead"][b]["IsConverted"] is False
    assert sim.stats.writes == 1
    assert sim.stats.by_endpoint["PATCH /services/data/v59.0/composite/sobjects"] == 1
    assert sim.stats.by_endpoint["PATCH composite/sobjects"] == 1


def test_all_or_none_rolls_back_every_record(sim):
    sf = client(sim)
    a = first(sim, "Contact")["Id"]
    body = {"allOrNone": True, "records": [
        {"attributes": {"type": "Contact"}, "id": a, "CRMQ_Score__c": 12},
        {"attributes": {"type": "Contact"}, "id": a, "CRMQ_Stage__c": "Nonsense"},
    ]}  # fmt: skip
    results = sf.restful("composite/sobjects", method="PATCH", json=body)
    codes = [r["errors"][0]["statusCode"] for r in results]
    assert codes == ["ALL_OR_NONE_OPERATION_ROLLED_BACK", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"]
    assert sim.store.records["Contact"][a]["CRMQ_Score__c"] is None and sim.stats.writes == 0


def test_collection_create_delete_and_size_limit(sim):
    sf = client(sim)
    who = first(sim, "Lead")["Id"]
    tasks = [
        {"attributes": {"type": "Task"}, "WhoId": who, "Subject": f"Call {n}",
         "Status": "Not Started", "CRMQ_Task_Key__c": f"crmq:{n}"}
        for n in range(3)
    ]  # fmt: skip
    created = sf.restful("composite/sobjects", method="POST", json={"records": tasks})
    ids = [r["id"] for r in created]
    assert all(r["success"] for r in created)
    assert [sim.store.records["Task"][i]["CRMQ_Task_Key__c"] for i in ids] == [
        "crmq:0", "crmq:1", "crmq:2",
    ]  # fmt: skip
    deleted = sf.restful("composite/sobjects", method="DELETE", params={"ids": ",".join(ids)})
    assert [r["id"] for r in deleted if r["success"]] == ids
    assert all(sim.store.records["Task"][i]["IsDeleted"] for i in ids)

    with pytest.raises(SalesforceMalformedRequest) as too_many:
        sf.restful("composite/sobjects", method="POST", json={"records": tasks * 67})
    assert too_many.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"


def test_single_record_crud(sim):
    sf = client(sim)
    who = first(sim, "Contact")["Id"]
    created = sf.Task.create({"WhoId": who, "Subject": "Follow up", "Status": "Not Started"})
    task_id = created["id"]
    assert sf.Task.get(task_id)["Subject"] == "Follow up"
    assert sf.Task.update(task_id, {"Status": "Completed"}) == 204
    assert sim.store.records["Task"][task_id]["IsClosed"] is True
    with pytest.raises(SalesforceMalformedRequest) as read_only:
        sf.Task.update(task_id, {"IsClosed": False})
    assert read_only.value.content == [
        {"message": read_only.value.content[0]["message"],
         "errorCode": "INVALID_FIELD_FOR_INSERT_UPDATE", "fields": ["IsClosed"]},
    ]  # fmt: skip
    assert sf.Task.delete(task_id) == 204
    with pytest.raises(SalesforceGeneralError):  # 404 ENTITY_IS_DELETED
        sf.Task.delete(task_id)
    lead = first(sim, "Lead")
    subset = http(sim).get(api(sim, f"sobjects/Lead/{lead['Id']}"), params={"fields": "Email"})
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


def test_queued_faults(sim):
    sf = client(sim)
    a = first(sim, "Lead")["Id"]
    sim.faults.add("503", times=1, path_contains="/query")
    with pytest.raises(SalesforceGeneralError) as unavailable:
        sf.query("SELECT Id FROM Lead")
    assert unavailable.value.status == 503
    assert sf.query("SELECT Id FROM Lead LIMIT 1")["totalSize"] == 1

    sim.faults.add("UNABLE_TO_LOCK_ROW", path_contains="composite/sobjects")
    body = {"records": [{"attributes": {"type": "Lead"}, "id": a, "CRMQ_Score__c": 5}]}
    locked = sf.restful("composite/sobjects", method="PATCH", json=body)
    assert locked[0]["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW"
    assert sf.restful("composite/sobjects", method="PATCH", json=body)[0]["success"]

    sim.faults.add("REQUEST_LIMIT_EXCEEDED")
    with pytest.raises(SalesforceRefusedRequest):
        sf.query("SELECT Id FROM Lead LIMIT 1")
    sim.faults.add("INVALID_SESSION_ID")
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT Id FROM Lead LIMIT 1")
    with pytest.raises(SalesforceExpiredSession):  # every session ended, not just one request
        sf.query("SELECT Id FROM Lead LIMIT 1")
    with pytest.raises(ValueError, match="unknown fault"):
        sim.faults.add("500")


# scenarios ----------------------------------------------------------------------------------
def test_simulate_engagement_adds_activity_and_bumps_modstamp(sim):
    before = {k: len(v) for k, v in sim.store.records.items()}
    touched = sim.simulate_engagement(10)
    assert len(touched) == 10
    after = {k: len(v) for k, v in sim.store.records.items()}
    added = sum(after[k] - before[k] for k in ("Task", "CampaignMember", "Event"))
    assert added == 10
    since = datetime.now(UTC) - timedelta(minutes=1)
    sf = client(sim)
    stamp = since.strftime("%Y-%m-%dT%H:%M:%SZ")
    leads = sf.query_all(f"SELECT Id FROM Lead WHERE SystemModstamp >= {stamp}")["records"]
    contacts = sf.query_all(f"SELECT Id FROM Contact WHERE SystemModstamp >= {stamp}")["records"]
    assert sorted(r["Id"] for r in leads + contacts) == sorted(touched)


def test_stats_reset(sim):
    client(sim).query("SELECT Id FROM Lead")
    assert sim.stats.by_endpoint["GET query"] == 1
    sim.stats.reset()
    assert sum(sim.stats.by_endpoint.values()) == 0 and sim.stats.writes == 0


def test_command_help(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    assert "--records" in capsys.readouterr().out
