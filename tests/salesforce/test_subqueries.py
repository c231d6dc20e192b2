"""Relationship queries in the simulator, through simple-salesforce used directly: parent-to-
child subqueries (child sets as query results of their own, or null), child-to-parent paths,
child rows counting toward the page, cut child sets with their own locator, and the limits
Salesforce documents."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from crm_qualify.adapters.salesforce.http import make_session
from crm_qualify.adapters.salesforce.simulator import SalesforceSimulator
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

AGO = datetime.now(UTC) - timedelta(days=3)


@pytest.fixture
def org() -> Iterator[SalesforceSimulator]:
    with SalesforceSimulator(records=300, seed=7) as simulator:
        yield simulator


def client(sim: SalesforceSimulator, version: str | None = None) -> Salesforce:
    return Salesforce(
        instance_url=sim.instance_url, session_id=sim.session_id,
        session=make_session(sim.ca_bundle_path), version=version or sim.api_version,
    )  # fmt: skip


def open_leads(sim: SalesforceSimulator) -> list[str]:
    return sorted(r["Id"] for r in sim.org.live("Lead") if not r["IsConverted"])


def busy_lead(sim: SalesforceSimulator, lead: str, tasks: int) -> list[str]:
    """`tasks` more Tasks on the lead; their ids."""
    return [
        sim.org.insert("Task", {"WhoId": lead, "Subject": f"Call {n:04d}"}, AGO)["Id"]
        for n in range(tasks)
    ]


def refused(sf: Salesforce, soql: str) -> str:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query(soql)
    return caught.value.content[0]["errorCode"]


def test_child_sets_are_query_results_or_null(org):
    rows = client(org).query_all(
        "SELECT Id, (SELECT Id, Subject FROM Tasks), (SELECT Id, Status FROM CampaignMembers)"
        " FROM Lead WHERE IsConverted = false"
    )["records"]
    assert sorted(r["Id"] for r in rows) == open_leads(org)
    empty = full = 0
    for row in rows:
        tasks = sorted(t["Id"] for t in org.org.live("Task") if t["WhoId"] == row["Id"])
        members = [m["Id"] for m in org.org.live("CampaignMember") if m["LeadId"] == row["Id"]]
        found = row["CampaignMembers"]
        assert (found is None) == (not members)
        assert (sorted(m["Id"] for m in found["records"]) if found else []) == sorted(members)
        if not tasks:
            assert row["Tasks"] is None
            empty += 1
            continue
        full += 1
        assert row["Tasks"]["totalSize"] == len(tasks) and row["Tasks"]["done"] is True
        assert sorted(t["Id"] for t in row["Tasks"]["records"]) == tasks
        first = row["Tasks"]["records"][0]
        assert first["attributes"]["type"] == "Task"
        assert set(first) == {"attributes", "Id", "Subject"}
    assert empty and full


def test_child_to_parent_paths_nest_the_parent_or_null(org):
    sf = client(org)
    member = next(iter(org.org.live("CampaignMember")))
    campaign = org.org.records["Campaign"][member["CampaignId"]]
    (row,) = sf.query(
        f"SELECT Id, Campaign.Name, CampaignId, Campaign.Type FROM CampaignMember"
        f" WHERE Id = '{member['Id']}'"
    )["records"]
    assert row["Campaign"] == {
        "attributes": {
            "type": "Campaign",
            "url": f"/services/data/v{org.api_version}/sobjects/Campaign/{campaign['Id']}",
        },
        "Name": campaign["Name"],
        "Type": campaign["Type"],
    }
    assert list(row) == ["attributes", "Id", "Campaign", "CampaignId"]
    campaign["IsDeleted"] = True
    (gone,) = sf.query(f"SELECT Id, Campaign.Name FROM CampaignMember WHERE Id = '{member['Id']}'")[
        "records"
    ]
    assert gone["Campaign"] is None
    role = next(iter(org.org.live("OpportunityContactRole")))
    deal = org.org.records["Opportunity"][role["OpportunityId"]]
    (contact,) = sf.query(
        "SELECT Id, (SELECT OpportunityId, Opportunity.IsWon, Opportunity.Amount"
        f" FROM OpportunityContactRoles) FROM Contact WHERE Id = '{role['ContactId']}'"
    )["records"]
    (found,) = contact["OpportunityContactRoles"]["records"]
    assert found["Opportunity"]["IsWon"] == deal["IsWon"]
    assert found["Opportunity"]["Amount"] == deal["Amount"]


def test_a_subquery_filters_orders_and_limits_per_parent(org):
    first, second = open_leads(org)[:2]
    busy_lead(org, first, 5)
    busy_lead(org, second, 3)
    rows = client(org).query(
        "SELECT Id, (SELECT Subject FROM Tasks WHERE Subject LIKE 'Call 0%' ORDER BY Subject"
        f" DESC LIMIT 2) FROM Lead WHERE Id IN ('{first}', '{second}') ORDER BY Id"
    )["records"]
    subjects = [[t["Subject"] for t in row["Tasks"]["records"]] for row in rows]
    assert subjects == [["Call 0004", "Call 0003"], ["Call 0002", "Call 0001"]]
    assert [row["Tasks"]["totalSize"] for row in rows] == [2, 2]


def test_child_rows_count_toward_the_page_and_a_set_is_cut_at_499(org):
    leads = open_leads(org)[:5]
    for lead in leads:
        busy_lead(org, lead, 600)
    ids = ", ".join(f"'{lead}'" for lead in leads)
    sf = client(org)
    page = sf.query(f"SELECT Id, (SELECT Id FROM Tasks) FROM Lead WHERE Id IN ({ids}) ORDER BY Id")
    # 2,000 rows a page: four leads of 1 + 499 inline tasks each.
    assert len(page["records"]) == 4 and not page["done"] and page["totalSize"] == 5
    for row in page["records"]:
        tasks = row["Tasks"]
        assert tasks["done"] is False and len(tasks["records"]) == 499
        assert tasks["totalSize"] == sum(1 for t in org.org.live("Task") if t["WhoId"] == row["Id"])
        assert tasks["nextRecordsUrl"].startswith(f"/services/data/v{org.api_version}/query/")
    rest = sf.query_more(page["nextRecordsUrl"], identifier_is_url=True)
    assert [r["Id"] for r in rest["records"]] == leads[4:] and rest["done"]


def test_a_cut_child_set_pages_through_its_own_locator(org):
    lead = open_leads(org)[0]
    busy_lead(org, lead, 600)
    sf = client(org)
    soql = f"SELECT Id, (SELECT Id FROM Tasks ORDER BY Id) FROM Lead WHERE Id = '{lead}'"
    (row,) = sf.query(soql)["records"]
    ids = [t["Id"] for t in row["Tasks"]["records"]]
    more = sf.query_more(row["Tasks"]["nextRecordsUrl"], identifier_is_url=True)
    assert more["done"] and more["totalSize"] == row["Tasks"]["totalSize"]
    ids += [t["Id"] for t in more["records"]]
    assert ids == sorted(t["Id"] for t in org.org.live("Task") if t["WhoId"] == lead)


def test_paging_the_parent_invalidates_the_child_locators_of_the_page_before(org):
    leads = open_leads(org)[:5]
    for lead in leads:
        busy_lead(org, lead, 600)
    ids = ", ".join(f"'{lead}'" for lead in leads)
    sf = client(org)
    page = sf.query(f"SELECT Id, (SELECT Id FROM Tasks) FROM Lead WHERE Id IN ({ids}) ORDER BY Id")
    first, second = (row["Tasks"]["nextRecordsUrl"] for row in page["records"][:2])
    assert sf.query_more(first, identifier_is_url=True)["done"]  # before the parent moves on
    sf.query_more(page["nextRecordsUrl"], identifier_is_url=True)
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query_more(second, identifier_is_url=True)
    assert caught.value.content[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_a_smaller_batch_cuts_child_sets_shorter(org):
    lead = open_leads(org)[0]
    busy_lead(org, lead, 300)
    session = make_session(org.ca_bundle_path)
    session.headers.update(
        {"Authorization": f"Bearer {org.session_id}", "Sforce-Query-Options": "batchSize=200"}
    )
    answer = session.get(
        f"{org.instance_url}/services/data/v{org.api_version}/query",
        params={"q": f"SELECT Id, (SELECT Id FROM Tasks) FROM Lead WHERE Id = '{lead}'"},
    ).json()
    tasks = answer["records"][0]["Tasks"]
    assert len(tasks["records"]) == 199 and tasks["done"] is False


def test_two_custom_long_text_fields_cap_the_page_at_200():
    with SalesforceSimulator(records=600, seed=7) as sim:
        sf = client(sim)
        one = sf.query("SELECT Id, CRMQ_Reasons__c FROM Lead")
        assert len(one["records"]) == one["totalSize"] > 200
        two = sf.query("SELECT Id, CRMQ_Reasons__c, ConvertedContact.CRMQ_Reasons__c FROM Lead")
        assert len(two["records"]) == 200 and not two["done"]


def test_query_all_pages_parents_with_their_child_sets(org):
    org.page_size = 20
    rows = client(org).query_all(
        "SELECT Id, (SELECT Id FROM Events), (SELECT Id FROM OpportunityContactRoles) FROM Contact"
    )["records"]
    assert len(rows) == len(org.org.records["Contact"])
    for row in rows:
        events = [e["Id"] for e in org.org.live("Event") if e["WhoId"] == row["Id"]]
        assert sorted(e["Id"] for e in (row["Events"] or {"records": []})["records"]) == sorted(
            events
        )


def test_relationship_errors_and_limits(org):
    sf = client(org)
    assert refused(sf, "SELECT Id, (SELECT Id FROM Opportunities) FROM Lead") == "INVALID_TYPE"
    assert refused(sf, "SELECT Id, (SELECT Id FROM Contact.Tasks) FROM Lead") == "INVALID_TYPE"
    assert refused(sf, "SELECT Id, (SELECT Nope FROM Tasks) FROM Lead") == "INVALID_FIELD"
    assert refused(sf, "SELECT Id, Nope.Name FROM CampaignMember") == "INVALID_FIELD"
    assert refused(sf, "SELECT Id, Campaign.Nope FROM CampaignMember") == "INVALID_FIELD"
    assert refused(sf, "SELECT Id, Who.Name FROM Task") == "MALFORMED_QUERY"  # not simulated
    assert refused(sf, "SELECT Id, (SELECT Id FROM Tasks FROM Lead") == "MALFORMED_QUERY"
    many = ", ".join(["(SELECT Id FROM Tasks)"] * 21)
    assert refused(sf, f"SELECT Id, {many} FROM Lead") == "MALFORMED_QUERY"
    twenty = ", ".join(["(SELECT Id FROM Tasks)"] * 20)
    assert sf.query(f"SELECT Id, {twenty} FROM Lead LIMIT 1")["totalSize"] == 1
    assert sf.query("SELECT Id, (SELECT Id FROM Lead.Tasks) FROM Lead LIMIT 1")["totalSize"] == 1


def test_subqueries_nest_from_api_58(org):
    nested = (
        "SELECT Id, (SELECT Id, (SELECT Id FROM CampaignMembers) FROM Contacts) FROM Account"
        " ORDER BY Id"
    )
    assert refused(client(org, "57.0"), nested) == "MALFORMED_QUERY"
    rows = client(org, "59.0").query_all(nested)["records"]
    contacts = [c for row in rows if row["Contacts"] for c in row["Contacts"]["records"]]
    assert len(contacts) == len(org.org.records["Contact"])
    members = [m for c in contacts if c["CampaignMembers"] for m in c["CampaignMembers"]["records"]]
    assert len(members) == sum(1 for m in org.org.live("CampaignMember") if m["ContactId"])


def test_describe_lists_child_relationships_and_lookups(org):
    sf = client(org)
    children = {
        (r["relationshipName"], r["childSObject"], r["field"])
        for r in sf.Lead.describe()["childRelationships"]
    }
    assert children == {
        ("Tasks", "Task", "WhoId"), ("Events", "Event", "WhoId"),
        ("CampaignMembers", "CampaignMember", "LeadId"),
    }  # fmt: skip
    fields = {f["name"]: f for f in sf.CampaignMember.describe()["fields"]}
    assert (fields["CampaignId"]["referenceTo"], fields["CampaignId"]["relationshipName"]) == (
        ["Campaign"], "Campaign",
    )  # fmt: skip
    assert fields["Status"]["referenceTo"] == [] and fields["Status"]["relationshipName"] is None
