"""Required fields, as Salesforce enforces them on every write path, driven through
simple-salesforce: a single create, sObject Collections and a Bulk API 2.0 insert refuse a Lead
without LastName or Company (REQUIRED_FIELD_MISSING, naming the fields), an update may not
clear one, and Lead Status is filled from its picklist's default as describe declares it."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from crm_qualify.adapters.salesforce.http import make_session
from crm_qualify.adapters.salesforce.simulator import SalesforceSimulator
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest


@pytest.fixture(scope="module")
def org() -> Iterator[SalesforceSimulator]:
    with SalesforceSimulator(records=40, seed=8) as sim:
        sim.bulk.delay = 0
        yield sim


@pytest.fixture(scope="module")
def sf(org) -> Salesforce:
    return Salesforce(
        instance_url=org.instance_url, session_id=org.session_id,
        session=make_session(org.ca_bundle_path), version=org.api_version,
    )  # fmt: skip


def test_a_single_create_without_required_fields_is_refused_naming_them(sf):
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Lead.create({"FirstName": "Ana"})
    assert caught.value.content == [{
        "message": "Required fields are missing: [LastName, Company]",
        "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["LastName", "Company"],
    }]  # fmt: skip
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Contact.create({"FirstName": "Ben", "LastName": ""})  # an empty string is null
    assert caught.value.content[0]["fields"] == ["LastName"]


def test_collections_fail_only_the_record_missing_a_field(sf, org):
    answer = sf.restful("composite/sobjects", method="POST", json={"records": [
        {"attributes": {"type": "Lead"}, "LastName": "Novak", "Company": "Acme"},
        {"attributes": {"type": "Lead"}, "Company": "Acme"},
    ]})  # fmt: skip
    assert answer[0]["success"] and not answer[1]["success"]
    assert answer[1]["errors"] == [{
        "statusCode": "REQUIRED_FIELD_MISSING",
        "message": "Required fields are missing: [LastName]", "fields": ["LastName"],
    }]  # fmt: skip
    assert org.org.records["Lead"][answer[0]["id"]]["Status"] == "Open - Not Contacted"


def test_bulk_insert_writes_the_error_into_failed_results(sf):
    records = [{"LastName": "Ito", "Company": "Acme"}, {"FirstName": "Kenji", "Company": "Acme"}]
    (result,) = sf.bulk2.Lead.insert(records=records, wait=0)
    assert (result["numberRecordsProcessed"], result["numberRecordsFailed"]) == (2, 1)
    (failed,) = csv.DictReader(io.StringIO(sf.bulk2.Lead.get_failed_records(result["job_id"])))
    assert failed["sf__Error"] == (
        "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --"
    )


def test_an_update_may_not_clear_a_required_field_but_may_leave_it_out(sf, org):
    lead = next(r["Id"] for r in org.org.live("Lead") if not r["IsConverted"])
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Lead.update(lead, {"Company": None})
    assert caught.value.content[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert sf.Lead.update(lead, {"Title": "CFO"}) == 204


def test_describe_marks_required_fields_and_the_lead_status_default(sf):
    fields = {f["name"]: f for f in sf.Lead.describe()["fields"]}
    assert not fields["LastName"]["nillable"] and not fields["Company"]["nillable"]
    status = fields["Status"]
    assert (status["nillable"], status["defaultedOnCreate"]) == (False, True)
    defaults = [p["value"] for p in status["picklistValues"] if p["defaultValue"]]
    assert defaults == ["Open - Not Contacted"]
    assert fields["FirstName"]["nillable"]
