"""The simulator's external-id upserts and unique fields answer as Salesforce does, through
simple-salesforce's own calls; checked against the recorded answers in shared/fixtures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from crm_qualify.adapters.salesforce.http import make_session
from crm_qualify.adapters.salesforce.simulator import SalesforceSimulator
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "salesforce"
KEY = "CRMQ_Task_Key__c"
UPSERT = f"composite/sobjects/Task/{KEY}"


@pytest.fixture
def org() -> Iterator[SalesforceSimulator]:
    with SalesforceSimulator(records=40, seed=3) as simulator:
        yield simulator


@pytest.fixture
def sf(org) -> Salesforce:
    return Salesforce(
        instance_url=org.instance_url, session_id=org.session_id,
        session=make_session(org.ca_bundle_path), version=org.api_version,
    )  # fmt: skip


@pytest.fixture
def lead(org) -> str:
    return sorted(r["Id"] for r in org.org.records["Lead"].values() if not r["IsConverted"])[0]


def task(lead: str, key: str | None, **fields: Any) -> dict[str, Any]:
    record = {"attributes": {"type": "Task"}, "WhoId": lead, "Subject": "Call", **fields}
    return {**record, KEY: key} if key is not None else record


def upsert(sf: Salesforce, *records: dict[str, Any], all_or_none: bool = False) -> list[dict]:
    body = {"allOrNone": all_or_none, "records": list(records)}
    return sf.restful(UPSERT, method="PATCH", json=body)


def ours(org: SalesforceSimulator) -> list[dict[str, Any]]:
    return [t for t in org.org.live("Task") if t.get(KEY)]


def test_upsert_creates_then_updates_by_key_with_the_recorded_shapes(org, sf, lead):
    created = json.loads((FIXTURES / "composite_sobjects_upsert_created_200.json").read_text())
    failed = json.loads((FIXTURES / "composite_sobjects_upsert_item_error_200.json").read_text())
    (first,) = upsert(sf, task(lead, "k1", Description="one"))
    assert set(first) == set(created[0]) and first["created"] is True and first["success"]
    (again,) = upsert(sf, task(lead, "K1", Description="two"))
    assert again == {**first, "created": False}, "matched case-insensitively, updated"
    assert org.org.records["Task"][first["id"]]["Description"] == "two"
    (bad,) = upsert(sf, task(lead, "k2", Priority="Urgent"))
    assert set(bad) == set(failed[0]) and bad["created"] is False and not bad["success"]
    assert set(bad["errors"][0]) == set(failed[0]["errors"][0])
    assert len(ours(org)) == 1


def test_a_new_task_gets_the_default_status_and_an_upsert_keeps_a_closed_one_closed(org, sf, lead):
    (made,) = upsert(sf, task(lead, "k1"))
    record = org.org.records["Task"][made["id"]]
    assert (record["Status"], record["Priority"], record["IsClosed"]) == (
        "Not Started", "Normal", False,
    )  # fmt: skip
    sf.restful(f"sobjects/Task/{made['id']}", method="PATCH", json={"Status": "Completed"})
    (again,) = upsert(sf, task(lead, "k1", Subject="Call again"))
    assert not again["created"]
    assert org.org.records["Task"][made["id"]]["IsClosed"], "the salesperson's close stays"


def test_one_key_twice_in_a_request_fails_both_records(org, sf, lead):
    rows = upsert(sf, task(lead, "dup"), task(lead, "other"), task(lead, "DUP"))
    assert [r["success"] for r in rows] == [False, True, False]
    assert rows[0]["errors"][0]["statusCode"] == "DUPLICATE_VALUE"
    assert rows[0]["errors"][0]["fields"] == [KEY]
    assert [t[KEY] for t in ours(org)] == ["other"]


def test_per_record_refusals_in_an_upsert(org, sf, lead):
    rows = upsert(
        sf,
        task(lead, None),
        {**task(lead, "with-id"), "Id": "00T000000000001AAA"},
        task("00Q000000000000AAA", "nobody"),
        task(lead, "fine"),
    )
    codes = [r["errors"][0]["statusCode"] if r["errors"] else None for r in rows]
    assert codes == ["MISSING_ARGUMENT", "INVALID_FIELD", "INVALID_CROSS_REFERENCE_KEY", None]


def test_all_or_none_rolls_back_every_record(org, sf, lead):
    rows = upsert(sf, task(lead, "a"), task(lead, "b", Priority="Urgent"), all_or_none=True)
    assert [r["success"] for r in rows] == [False, False]
    assert rows[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert all(r["created"] is False for r in rows) and ours(org) == []


def test_only_an_external_id_field_can_be_upserted_on(sf, lead):
    with pytest.raises(SalesforceResourceNotFound) as missing:
        sf.restful("composite/sobjects/Task/Subject", method="PATCH",
                   json={"records": [task(lead, "k")]})  # fmt: skip
    assert missing.value.content[0]["errorCode"] == "NOT_FOUND"
    assert "Subject" in missing.value.content[0]["message"]


def test_a_plain_create_cannot_take_a_key_already_held(org, sf, lead):
    (made,) = upsert(sf, task(lead, "held"))
    rows = sf.restful("composite/sobjects", method="POST", json={"records": [
        task(lead, "HELD"), task(lead, "new"), task(lead, "new")]})  # fmt: skip
    assert [r["success"] for r in rows] == [False, True, False]
    assert rows[0]["errors"][0]["statusCode"] == "DUPLICATE_VALUE"
    assert made["id"] in rows[0]["errors"][0]["message"]
    with pytest.raises(SalesforceMalformedRequest) as single:
        sf.Task.create({"WhoId": lead, "Subject": "Call", KEY: "held"})
    assert single.value.content[0]["errorCode"] == "DUPLICATE_VALUE"
    other = sf.Task.create({"WhoId": lead, "Subject": "Call"})["id"]
    with pytest.raises(SalesforceMalformedRequest):
        sf.Task.update(other, {KEY: "held"})
    assert sorted(t[KEY] for t in ours(org)) == ["held", "new"]


def test_a_deleted_task_no_longer_holds_its_key(org, sf, lead):
    (made,) = upsert(sf, task(lead, "k"))
    sf.Task.delete(made["id"])
    (again,) = upsert(sf, task(lead, "k"))
    assert again["created"] and again["id"] != made["id"]


def test_simple_salesforce_single_record_upsert_and_lookup_by_key(org, sf, lead):
    key = "crmq:Lead:x:hot call/2026"
    assert sf.Task.upsert(f"{KEY}/{key.replace('/', '%2F')}", {"WhoId": lead}) == 201
    found = sf.Task.get_by_custom_id(KEY, key)
    assert found[KEY] == key and found["WhoId"] == lead
    assert sf.Task.upsert(f"{KEY}/{key.replace('/', '%2F')}", {"Subject": "Again"}) == 200
    assert [t["Subject"] for t in ours(org)] == ["Again"]
    with pytest.raises(SalesforceResourceNotFound):
        sf.Task.get_by_custom_id(KEY, "absent")


def test_describe_marks_the_key_external_and_unique(sf):
    fields = {f["name"]: f for f in sf.Task.describe()["fields"]}
    assert fields[KEY]["externalId"] and fields[KEY]["unique"] and fields[KEY]["idLookup"]
    assert not fields["Subject"]["externalId"]
    assert fields["Status"]["defaultValue"] == "Not Started"


@pytest.mark.parametrize(
    ("code", "field", "value"),
    [
        ("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "Rating", "Hot"),
        ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "CRMQ_Grade__c", "Z9"),
    ],
)
def test_configured_refusals_fail_the_record_naming_the_field(org, sf, lead, code, field, value):
    org.refuse("Lead", field, value, code)
    rows = sf.restful("composite/sobjects", method="PATCH", json={"records": [
        {"attributes": {"type": "Lead"}, "id": lead, field: value},
        {"attributes": {"type": "Lead"}, "id": lead, "Title": "CTO"},
    ]})  # fmt: skip
    assert [r["success"] for r in rows] == [False, True]
    assert rows[0]["errors"][0]["statusCode"] == code
    assert rows[0]["errors"][0]["fields"] == [field]
    with pytest.raises(ValueError, match="refusals are"):
        org.refuse("Lead", field, value, "DUPLICATE_VALUE")
