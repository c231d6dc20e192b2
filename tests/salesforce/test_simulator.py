"""The Salesforce simulator answers as Salesforce does, for the calls the adapter makes."""

from __future__ import annotations

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceExpiredSession, SalesforceMalformedRequest

from adapters.salesforce.http import make_session
from adapters.salesforce.simulator import SalesforceSimulator


@pytest.fixture(scope="module")
def sim():
    with SalesforceSimulator(records=2000, seed=8) as simulator:
        yield simulator


def client(sim) -> Salesforce:
    return Salesforce(
        instance_url=sim.instance_url, session_id=sim.session_id,
        session=make_session(sim.ca_bundle_path), version=sim.api_version,
    )  # fmt: skip


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
    from pathlib import Path

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
    missing = {"attributes": {"type": "Lead"}, "id": "00Q000000000000AAA", "Rating": "Hot"}
    item = client(sim).restful("composite/sobjects", method="PATCH", json={"records": [missing]})
    assert [set(row) for row in item] == [set(row) for row in recorded_item]
    assert set(item[0]["errors"][0]) == set(recorded_item[0]["errors"][0])
