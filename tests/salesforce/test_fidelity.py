"""Simulator fidelity, driven through simple-salesforce's own calls: who wrote a record, SOQL
the real API refuses, 15-character ids, URLs in the request's version, describe global and
basic information, the Bulk entries of /limits, Task defaults; and the adapter's incremental
query never sending an empty Id literal."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from crm_qualify.adapters.salesforce.http import make_session
from crm_qualify.adapters.salesforce.simulator import SalesforceSimulator
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound

from .conftest import make_adapter


@pytest.fixture
def org() -> Iterator[SalesforceSimulator]:
    with SalesforceSimulator(records=60, seed=3) as simulator:
        yield simulator


def client(sim: SalesforceSimulator, version: str | None = None) -> Salesforce:
    return Salesforce(
        instance_url=sim.instance_url, session_id=sim.session_id,
        session=make_session(sim.ca_bundle_path), version=version or sim.api_version,
    )  # fmt: skip


def refused(sf: Salesforce, soql: str) -> str:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query(soql)
    return caught.value.content[0]["errorCode"]


def test_records_say_who_created_and_last_modified_them(org):
    sf = client(org)
    integration = org.org.integration_user
    assert (
        sf.query(f"SELECT Name FROM User WHERE Id = '{integration}'")["records"][0]["Name"]
        == "Integration User"
    )
    lead = sf.query("SELECT Id, CreatedById, LastModifiedById FROM Lead LIMIT 1")["records"][0]
    assert lead["CreatedById"] == lead["LastModifiedById"] == org.org.ui_user != integration
    sf.Lead.update(lead["Id"], {"Title": "CTO"})
    after = sf.Lead.get(lead["Id"])
    assert (after["CreatedById"], after["LastModifiedById"]) == (org.org.ui_user, integration)
    created = sf.Task.create({"WhoId": lead["Id"], "Subject": "Call"})
    task = sf.Task.get(created["id"])
    assert task["CreatedById"] == task["LastModifiedById"] == integration
    org.touch(lead["Id"], {"Title": "CFO"})
    assert sf.Lead.get(lead["Id"])["LastModifiedById"] == org.org.ui_user
    fields = {f["name"]: f for f in sf.Lead.describe()["fields"]}
    assert fields["CreatedById"]["type"] == "reference" and not fields["CreatedById"]["updateable"]


def test_task_defaults_come_from_the_picklists(org):
    sf = client(org)
    lead = sf.query("SELECT Id FROM Lead LIMIT 1")["records"][0]["Id"]
    task = sf.Task.get(sf.Task.create({"WhoId": lead, "Subject": "Call"})["id"])
    assert (task["Status"], task["Priority"], task["IsClosed"]) == ("Not Started", "Normal", False)
    fields = {f["name"]: f for f in sf.Task.describe()["fields"]}
    for name, value in (("Status", "Not Started"), ("Priority", "Normal")):
        defaults = [p["value"] for p in fields[name]["picklistValues"] if p["defaultValue"]]
        assert defaults == [value] and fields[name]["defaultedOnCreate"]


@pytest.mark.parametrize(
    "where",
    [
        "SystemModstamp > 2026-01-01",  # a date literal on a datetime field
        "SystemModstamp > '2026-01-01T00:00:00Z'",  # a quoted datetime
        "LastName = 5",  # a number on a string field
        "NumberOfEmployees > '10'",  # a string on a number field
        "IsConverted = 'true'",
    ],
)
def test_soql_with_literals_of_the_wrong_type_is_refused(org, where):
    assert refused(client(org), f"SELECT Id FROM Lead WHERE {where}") == "INVALID_FIELD"


@pytest.mark.parametrize("literal", ["''", "'00Q5g00000'", r"'00Q\' OR Id != \''"])
def test_malformed_id_literals_are_refused(org, literal):
    code = refused(client(org), f"SELECT Id FROM Lead WHERE Id > {literal}")
    assert code == "INVALID_QUERY_FILTER_OPERATOR"


def test_well_typed_literals_still_work(org):
    sf = client(org)
    assert sf.query("SELECT Id FROM Lead WHERE SystemModstamp > 2000-01-01T00:00:00Z")["totalSize"]
    assert sf.query("SELECT Id FROM Lead WHERE CreatedDate = LAST_N_DAYS:9999")["totalSize"]
    assert sf.query("SELECT Id FROM Lead WHERE NumberOfEmployees > 0 AND IsConverted = false")
    assert sf.query("SELECT Id FROM Task WHERE ActivityDate > 2000-01-01")["totalSize"]


def test_object_and_relationship_names_are_read_without_case(org):
    sf = client(org)
    rows = sf.query("select id, (select id from tasks) from lead order by id limit 3")["records"]
    assert len(rows) == 3 and {r["attributes"]["type"] for r in rows} == {"Lead"}
    assert all("Tasks" in r for r in rows)


def test_offset_skips_rows_up_to_2000(org):
    sf = client(org)
    ids = [r["Id"] for r in sf.query("SELECT Id FROM Contact ORDER BY Id")["records"]]
    page = sf.query("SELECT Id FROM Contact ORDER BY Id LIMIT 5 OFFSET 3")["records"]
    assert [r["Id"] for r in page] == ids[3:8]
    assert refused(sf, "SELECT Id FROM Contact OFFSET 2001") == "NUMBER_OUTSIDE_VALID_RANGE"
    assert refused(sf, "SELECT Id, (SELECT Id FROM Tasks OFFSET 1) FROM Lead") == "MALFORMED_QUERY"


def test_nulls_first_or_last_places_empty_values(org):
    sf = client(org)
    titled = [r["Id"] for r in org.org.live("Lead") if r["Title"] is not None]
    for lead in titled[:2]:  # two leads without a title, whatever the seed gave
        org.touch(lead, {"Title": None})
    soql = "SELECT Title FROM Lead ORDER BY Title {} NULLS {}"
    last = [r["Title"] for r in sf.query_all(soql.format("ASC", "LAST"))["records"]]
    first = [r["Title"] for r in sf.query_all(soql.format("DESC", "FIRST"))["records"]]
    assert last[-1] is None and last[0] is not None
    assert first[0] is None and first[-1] is not None


def test_fifteen_character_ids_find_their_record(org):
    sf = client(org)
    full = sf.query("SELECT Id FROM Lead LIMIT 1")["records"][0]["Id"]
    short = full[:15]
    assert [r["Id"] for r in sf.query(f"SELECT Id FROM Lead WHERE Id = '{short}'")["records"]] == [
        full
    ]
    assert sf.query(f"SELECT Id FROM Lead WHERE Id IN ('{short}')")["totalSize"] == 1
    assert sf.Lead.get(short)["Id"] == full
    sf.Lead.update(short, {"Title": "VP Marketing"})
    assert sf.Lead.get(full)["Title"] == "VP Marketing"


def test_a_record_in_the_recycle_bin_is_not_found_but_queryall_still_returns_it(org):
    sf = client(org)
    lead = sf.query("SELECT Id FROM Lead LIMIT 1")["records"][0]["Id"]
    sf.Lead.delete(lead)
    with pytest.raises(SalesforceResourceNotFound) as caught:
        sf.Lead.get(lead)
    assert caught.value.content == [
        {"message": "entity is deleted", "errorCode": "ENTITY_IS_DELETED"}
    ]
    rows = sf.query_all(f"SELECT Id, IsDeleted FROM Lead WHERE Id = '{lead}'", include_deleted=True)
    assert [(r["Id"], r["IsDeleted"]) for r in rows["records"]] == [(lead, True)]


def test_urls_carry_the_version_of_the_request(org):
    org.page_size = 20
    sf = client(org, "61.0")
    page = sf.query("SELECT Id FROM Lead")
    assert page["nextRecordsUrl"].startswith("/services/data/v61.0/query/")
    assert page["records"][0]["attributes"]["url"].startswith("/services/data/v61.0/sobjects/")
    more = sf.query_more(page["nextRecordsUrl"], identifier_is_url=True)
    assert more["records"][0]["attributes"]["url"].startswith("/services/data/v61.0/")
    assert (
        client(org)
        .query("SELECT Id FROM Lead LIMIT 1")["records"][0]["attributes"]["url"]
        .startswith(f"/services/data/v{org.api_version}/")
    )


def test_describe_global_and_basic_information(org):
    sf = client(org, "61.0")
    described = sf.describe()
    assert described["encoding"] == "UTF-8" and described["maxBatchSize"] == 200
    objects = {o["name"]: o for o in described["sobjects"]}
    assert {"Lead", "Contact", "Task", "Account"} <= set(objects)
    assert objects["Lead"]["keyPrefix"] == "00Q" and objects["Lead"]["queryable"]
    assert objects["Lead"]["urls"]["describe"] == "/services/data/v61.0/sobjects/Lead/describe"
    info = sf.Lead.metadata()
    assert info["objectDescribe"]["name"] == "Lead" and info["recentItems"] == []


def test_limits_include_the_bulk_entries(org):
    limits = client(org).limits()
    assert limits["DailyBulkApiBatches"]["Max"] == 15_000
    assert limits["DailyBulkV2QueryJobs"]["Max"] == 10_000
    assert limits["DailyBulkV2QueryFileStorageMB"]["Max"] == 976_562
    assert all(v["Remaining"] <= v["Max"] for v in limits.values())


def test_the_incremental_query_never_sends_an_empty_id_literal(org):
    """With the lookback on, the keyset has no last id: the second becomes `>=`, never
    `Id > ''` (which the simulator, like Salesforce, refuses)."""
    adapter = make_adapter(org)
    sent: list[str] = []
    original = adapter._query

    def spy(what, soql, deleted=False):  # noqa: ANN001
        sent.append(soql)
        return original(what, soql, deleted)

    adapter._query = spy
    first = list(adapter.read_changed(None, until=datetime.now(UTC)))
    cursor = first[-1].cursor
    again = list(adapter.read_changed(cursor, until=datetime.now(UTC)))
    assert again and all("''" not in s for s in sent)
    assert any("SystemModstamp >= " in s for s in sent)
