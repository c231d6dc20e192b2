"""A number with more digits than its field holds: refused by the simulator as Salesforce
refuses it, whichever API writes it, and never read as a headcount if an org holds one anyway.

Salesforce describes an `int` field with `digits` (Lead and Account `NumberOfEmployees`: 8) and
a double, currency or percent field with `precision` and `scale`; a value with more digits
before the point than that (`digits`, or `precision - scale`) fails with
NUMBER_OUTSIDE_VALID_RANGE naming the field."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from crm_qualify.adapters.salesforce.http import make_session
from crm_qualify.adapters.salesforce.simulator import SalesforceSimulator
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from tests.salesforce.conftest import make_adapter

OUT_OF_RANGE = "NUMBER_OUTSIDE_VALID_RANGE"
TOO_MANY = 2_000_000_000
"""Ten digits: more than `NumberOfEmployees` holds."""


@pytest.fixture
def org() -> Iterator[SalesforceSimulator]:
    with SalesforceSimulator(records=40, seed=3) as sim:
        sim.bulk.delay = 0
        yield sim


@pytest.fixture
def sf(org) -> Salesforce:
    session = make_session(org.ca_bundle_path)
    return Salesforce(
        instance_url=org.instance_url, session_id=org.session_id, session=session, version="59.0"
    )


def open_leads(org: SalesforceSimulator) -> list[str]:
    return sorted(r["Id"] for r in org.org.live("Lead") if not r["IsConverted"])


def employees(org: SalesforceSimulator, lead: str) -> int | None:
    return org.org.records["Lead"][lead]["NumberOfEmployees"]


def test_describe_gives_each_number_field_its_digits(sf):
    lead = {f["name"]: f for f in sf.Lead.describe()["fields"]}
    assert (lead["NumberOfEmployees"]["type"], lead["NumberOfEmployees"]["digits"]) == ("int", 8)
    assert (lead["CRMQ_Score__c"]["precision"], lead["CRMQ_Score__c"]["scale"]) == (3, 0)
    amount = {f["name"]: f for f in sf.Opportunity.describe()["fields"]}["Amount"]
    assert (amount["type"], amount["precision"], amount["scale"]) == ("currency", 18, 2)


def test_a_record_update_beyond_the_field_s_digits_is_refused_naming_the_field(org, sf):
    lead = open_leads(org)[0]
    before = employees(org, lead)
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.Lead.update(lead, {"NumberOfEmployees": TOO_MANY})
    (error,) = refused.value.content
    assert (error["errorCode"], error["fields"]) == (OUT_OF_RANGE, ["NumberOfEmployees"])
    assert str(TOO_MANY) in error["message"]
    assert employees(org, lead) == before
    assert sf.Lead.update(lead, {"NumberOfEmployees": 99_999_999}) == 204, "eight digits fit"
    assert sf.Lead.update(lead, {"NumberOfEmployees": -40}) == 204, "no sign rule of its own"
    with pytest.raises(SalesforceMalformedRequest, match=OUT_OF_RANGE):
        sf.Lead.update(lead, {"CRMQ_Score__c": 1000.0})  # Number(3, 0)


def test_collections_and_composite_refuse_only_the_record_that_does_not_fit(org, sf):
    a, b = open_leads(org)[:2]
    records = [
        {"attributes": {"type": "Lead"}, "id": a, "NumberOfEmployees": 10**8},
        {"attributes": {"type": "Lead"}, "id": b, "NumberOfEmployees": 250},
    ]
    first, second = sf.restful(
        "composite/sobjects", method="PATCH", json={"allOrNone": False, "records": records}
    )
    assert first["errors"][0]["statusCode"] == OUT_OF_RANGE and second["success"] is True
    assert employees(org, b) == 250 and employees(org, a) != 10**8

    url = f"/services/data/v{org.api_version}/sobjects/Lead/{b}"
    big = {"method": "PATCH", "referenceId": "big", "url": url,
           "body": {"NumberOfEmployees": -(10**9)}}  # fmt: skip
    answer = sf.restful("composite", method="POST", json={"compositeRequest": [big]})
    (result,) = answer["compositeResponse"]
    assert (result["httpStatusCode"], result["body"][0]["errorCode"]) == (400, OUT_OF_RANGE)
    assert employees(org, b) == 250


def test_a_bulk_upload_fails_the_row_that_does_not_fit(org, sf):
    a, b = open_leads(org)[:2]
    records = [{"Id": a, "NumberOfEmployees": TOO_MANY}, {"Id": b, "NumberOfEmployees": 120}]
    (result,) = sf.bulk2.Lead.update(records=records, wait=0)
    assert result["numberRecordsFailed"] == 1
    (failed,) = csv.DictReader(io.StringIO(sf.bulk2.Lead.get_failed_records(result["job_id"])))
    assert failed["sf__Error"].startswith(f"{OUT_OF_RANGE}:")
    assert failed["sf__Error"].endswith(":NumberOfEmployees --") and failed["sf__Id"] == a
    assert employees(org, b) == 120 and employees(org, a) != TOO_MANY


def test_a_headcount_an_org_holds_beyond_its_digits_is_a_record_error_not_a_score(
    org, store, settings
):
    """Past the API's check (data the simulator was given directly): the person is not scored,
    and the run names the record and the field."""
    lead, other = open_leads(org)[:2]
    org.touch(lead, {"NumberOfEmployees": TOO_MANY})
    run = SyncEngine(make_adapter(org), settings, store).run(RunOptions())
    assert run.status == "partial", "one record failed, the others were scored"
    (error,) = [e for e in run.errors if lead in e]
    assert "NumberOfEmployees" in error and "more digits than the field's 8" in error
    assert org.org.records["Lead"][lead]["CRMQ_Score__c"] is None
    assert org.org.records["Lead"][other]["CRMQ_Score__c"] is not None
    (attention,) = [a for a in store.attention("default") if a.contact_id == lead]
    assert attention.field == "NumberOfEmployees"


@pytest.mark.parametrize(
    ("value", "says"),
    [(-40, "a count cannot be negative: -40"), (12.5, "not a whole number: 12.5")],
)
def test_a_bad_headcount_is_reported_as_what_is_wrong_with_it(
    org, sf, store, settings, value, says
):
    """The simulator takes both as sent (the field has no sign rule of its own): the run
    names the record, the field and what is wrong with the value."""
    lead = open_leads(org)[0]
    assert sf.Lead.update(lead, {"NumberOfEmployees": value}) == 204
    SyncEngine(make_adapter(org), settings, store).run(RunOptions())
    (attention,) = [a for a in store.attention("default") if a.contact_id == lead]
    assert (attention.field, attention.reason) == (
        "NumberOfEmployees",
        f"NumberOfEmployees: {says}",
    )
